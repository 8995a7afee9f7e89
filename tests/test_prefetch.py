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


def _big_slots(reader) -> list[int]:
    """The slots of the words in more than ``codec.SMALL`` passages, most postings first."""
    df = reader._layout.df
    big = np.flatnonzero(df > codec.SMALL)
    return big[np.argsort(-df[big], kind="stable")].tolist()


def _held(reader, slots: list[int]) -> list[int]:
    return [slot for slot in slots if segment.DECODED.get((reader._uid, "p", slot)) is not None]


def test_prefetch_postings_decodes_the_words_in_most_passages_first_within_its_share(tmp_path, small_caches) -> None:
    """The postings a query's first read would decode (words in more than ``codec.SMALL`` passages) are
    decoded most postings first while each fits above what the cache must keep free (the next one
    would not), evicting nothing; a later read of a held word decodes nothing; a word the cache would
    refuse is skipped without decoding."""
    path = tmp_path / "ix"
    with Index.create(path).writer() as w:
        w.add_many(_corpus(3000))
    reader = max((s.reader for s in Index.open(path)._snapshot.segments), key=lambda r: r.n_passages)
    order = _big_slots(reader)
    assert len(order) > 20
    sizes = [segment._postings_bytes(int(reader._layout.df[s])) + segment._ENTRY_BYTES for s in order]
    budget = segment.DECODED.budget
    keep_free = budget - budget // 8
    slots = reader.prefetch_postings(keep_free)
    n = len(slots)
    assert 0 < n < len(order) and slots == order[:n] and _held(reader, order) == order[:n]
    room = segment.DECODED.room()
    assert room == budget - sum(sizes[:n]) and room - sizes[n] <= keep_free < room
    calls = []
    real = reader._frame
    reader._frame = lambda *a: calls.append(a) or real(*a)  # type: ignore[method-assign]
    reader.postings(order[0])
    assert calls == []  # held: nothing decoded again
    segment.DECODED.resize(0)
    segment.DECODED.resize(sizes[0] * 8 - 8)  # the most frequent word is now over an eighth of the budget
    calls.clear()
    slots = reader.prefetch_postings(0)
    assert slots and order[0] not in slots and all(c[0] != order[0] for c in calls)


def test_several_indexes_each_keep_their_words_and_a_full_share_keeps_them_too(tmp_path, small_caches) -> None:
    """As ``search serve`` prefetches two indexes (shares 1/2, then 1): both end holding the postings
    of their most frequent words, and the second's text and searches did not push the first's out (its
    searches stop at the cache's first eviction); the cache ends nearly full, within its budget."""
    indexes = []
    for name, seed in (("a", 3), ("b", 4)):
        with Index.create(tmp_path / name).writer() as w:
            w.add_many(_corpus(3000, seed=seed))
        indexes.append(Index.open(tmp_path / name))
    got = [ix.prefetch(share=(i + 1) / 2, seconds=1) for i, ix in enumerate(indexes)]
    for ix, g in zip(indexes, got):
        reader = max((s.reader for s in ix._snapshot.segments), key=lambda r: r.n_passages)
        order = _big_slots(reader)
        # the most frequent words, prefetched, are all still held (searches may have decoded others)
        assert g["terms"] > 0 and set(order[: g["terms"]]) <= set(_held(reader, order))
    assert 0 <= segment.DECODED.room() < segment.DECODED.budget // 8


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


@pytest.fixture()
def big_cache():
    """A budget nothing is evicted from (an eighth of it is the largest entry), restored afterwards."""
    old = segment.DECODED.budget
    yield
    segment.DECODED.resize(0)
    segment.DECODED.resize(old)


def test_the_decoded_cache_counts_what_its_entries_really_take(tmp_path, big_cache) -> None:
    """The decoded cache's budget is the process's memory for it: entries are counted at their real size
    (below it, a server's memory climbs past its ``--cache-mb``; far above it, the budget holds fewer
    entries than it could: text blocks were counted at twice their size). Measured with Python's 2-tuple
    free list emptied, as in a full cache, where the tuples are allocated."""
    import gc
    import tracemalloc

    rng = random.Random(5)
    long_text = " ".join(rng.choice(["kota", "négara", "wargä", "law"]) for _ in range(30_000))  # non-ASCII
    index = Index.create(tmp_path / "ix")
    with index.writer() as w:
        w.add_many(_corpus(2000))
        w.add(Document(id="long", text=long_text, title="long"))
        w.add_many(Document(id=f"tiny{i}", text=f"kota {i}", title="") for i in range(3000))  # many a block
    reader = max((s.reader for s in Index.open(tmp_path / "ix")._snapshot.segments), key=lambda r: r.n_docs)
    firsts = reader.stored_layout()[0]
    n_blocks = firsts.shape[0] - 1
    assert n_blocks > 50 and int(np.diff(firsts).max()) > 100  # blocks of a few documents, and of many
    long_doc = next(d for d in range(reader.n_docs) if reader.string("doc_id", d) == "long")
    assert len(long_text.encode()) > segment.LONG_DOC_BYTES
    reader.passage_text(0)  # the first read loads the dictionary and the views: not an entry
    reader.postings(0)
    slots = range(reader._layout.df.shape[0])
    assert sum(reader.df(s) <= codec.SMALL for s in slots) > 100 and any(reader.df(s) > codec.BIG_DF for s in slots)

    def measured(read) -> tuple[int, int]:
        segment.DECODED.resize(0)
        segment.DECODED.resize(1 << 30)
        gc.collect()
        hold = [(i, i) for i in range(100_000)]  # empties the 2-tuple free list; freed after the count
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            read()
            real = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        del hold
        return real, segment.DECODED.budget - segment.DECODED.room()

    def every_block() -> None:
        for b in range(n_blocks):
            reader._doc_block(b)

    def every_term() -> None:
        for s in slots:
            reader.postings(s)

    last = reader.passage_range(long_doc)[-1]
    for read in (every_block, every_term, lambda: reader.passage_text(last)):  # the last: a block, a table
        real, counted = measured(read)
        # 1% of slack below: a few hundred bytes of a decompressor's or an iterator's leftovers are no entry
        assert 0.99 * real <= counted <= 1.3 * real, (read, real, counted)
