"""``Index.prefetch``: a long-lived process fills its bounded caches at start (so its memory stays where
it starts) without changing a single answer, and ``Analyzer.prime`` fills a run cache without ever
clearing it."""

from __future__ import annotations

import random

import numpy as np
import pytest

import analyzers
from search import Document, Index, codec, searcher, segment

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
    assert 0 < got["documents"] < 3000 and got["terms"] > 0
    assert got["searches"] > 0
    assert index._snapshot.score_cache_room < searcher.SCORE_CACHE_BYTES  # warm-up searches filled some
    assert _answers(index, queries) == expected


def test_prefetch_decodes_the_words_in_most_passages_first_within_its_share(tmp_path, small_caches) -> None:
    """The postings a query's first read would decode (words in more than ``codec.SMALL`` passages) are
    decoded at prefetch, most postings first, until the cache's free room reaches what it must keep;
    a later read of a held word decodes nothing; a budget that holds them all holds every one."""
    path = tmp_path / "ix"
    with Index.create(path).writer() as w:
        w.add_many(_corpus(3000))
    reader = max((s.reader for s in Index.open(path)._snapshot.segments), key=lambda r: r.n_passages)
    df = reader._layout.df
    big = np.flatnonzero(df > codec.SMALL)
    order = big[np.argsort(-df[big], kind="stable")].tolist()
    assert len(order) > 20

    def held() -> list[int]:
        return [slot for slot in order if segment.DECODED.get((reader._uid, "p", slot)) is not None]

    budget = segment.DECODED.budget
    n = reader.prefetch_postings(keep_free=budget - budget // 8)  # an eighth of the budget
    assert 0 < n < len(order) and held() == order[:n]  # a prefix of the most frequent words
    used = budget - segment.DECODED.room()
    largest = max(p.nbytes + t.nbytes + 200 for p, t in map(reader.postings, order[:n]))
    assert budget // 8 <= used < budget // 8 + largest
    calls = []
    real = reader._frame
    reader._frame = lambda *a: calls.append(a) or real(*a)  # type: ignore[method-assign]
    reader.postings(order[0])
    assert calls == []  # held: nothing decoded again

    segment.DECODED.resize(64 << 20)
    assert reader.prefetch_postings(keep_free=0) == len(order) and held() == order


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
