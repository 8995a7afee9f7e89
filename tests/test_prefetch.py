"""``Index.prefetch``: a long-lived process fills its bounded caches at start (so its memory stays where
it starts) without changing a single answer, and ``Analyzer.prime`` fills a run cache without ever
clearing it."""

from __future__ import annotations

import random

import pytest

import analyzers
from search import Document, Index, searcher, segment

WORDS = "pajak daerah negara warga kota hukum budget river mountain city people law market".split()


def _corpus(n: int, seed: int = 3) -> list[Document]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        words = [rng.choice(WORDS) + rng.choice(["", "an", "nya", "s"]) for _ in range(rng.randint(20, 60))]
        docs.append(Document(id=f"d{i}", text=" ".join(words), title=f"T {i}"))
    return docs


@pytest.fixture()
def small_caches():
    """Budgets small enough that prefetch stops at its share, restored afterwards."""
    old_decoded, old_scores = segment.DECODED.budget, searcher.SCORE_CACHE_BYTES
    segment.DECODED.resize(0)  # empty the process-wide cache, then give it a small budget
    segment.DECODED.resize(2 << 20)
    searcher.set_score_cache_bytes(256 << 10)
    yield
    segment.DECODED.resize(old_decoded)
    searcher.set_score_cache_bytes(old_scores)


def _answers(index: Index, queries: list[str]) -> list[list[tuple]]:
    return [
        [(h.doc_id, h.passage, round(h.score, 9), h.to_dict()["snippet"]) for h in index.search(q, k=5)]
        for q in queries
    ]


def test_prefetch_fills_the_caches_to_its_share_and_changes_no_answer(tmp_path, small_caches) -> None:
    path = tmp_path / "ix"
    index = Index.create(path)
    with index.writer() as w:
        w.add_many(_corpus(3000))
    queries = ["pajak kota", "river law", "warganya hukum", '"negara warga"', "budget -market"]
    cold = Index.open(path)
    expected = _answers(cold, queries)
    cold.close()
    segment.DECODED.resize(0)
    segment.DECODED.resize(2 << 20)

    index = Index.open(path)
    got = index.prefetch(share=0.5, seconds=10)
    # the decoded cache holds half its budget and no more than a block over it; not every document fit
    used = segment.DECODED.budget - segment.DECODED.room()
    assert segment.DECODED.budget // 2 <= used < segment.DECODED.budget
    assert 0 < got["documents"] < 3000
    assert got["searches"] > 0
    assert index._snapshot.score_cache_room < searcher.SCORE_CACHE_BYTES  # warm-up searches filled some
    assert _answers(index, queries) == expected


def test_prime_fills_a_run_cache_to_its_share_and_never_clears_it() -> None:
    a = analyzers.get("en")
    old_cache, old_limit = a._cache, a.cache_limit
    try:
        a._cache = {}
        a.cache_limit = 100
        texts = [" ".join(f"word{i}x{j}" for j in range(30)) for i in range(20)]
        assert a.prime(texts, share=0.5) == 50
        held = dict(a._cache)
        assert a.prime(texts, share=0.5) == 50  # already at its share: nothing added, nothing cleared
        assert a._cache == held
        assert a.prime(texts, share=1.0) == 100
        assert all(a._cache[run] == (a.term(run.lower()),) for run in a._cache)
    finally:
        a._cache, a.cache_limit = old_cache, old_limit
