"""Groups ``search`` and ``snippet``: query latency on a built index, per query shape.

Every round is one query (top 10 with stored text), cycling through the shape's query list after one
untimed pass over it; p50/p95/p99 over the rounds go to ``extra_info``. Shape ``phrase-cold`` times
phrases run for the first time in the process (each round a new one), which warm rounds hide.
Snippets are their own case: the search runs untimed in the round's setup and only making snippets
for its hits is timed.
"""

from __future__ import annotations

import itertools

import pytest

from benchmarks.config import SEED, load_average, queries_per_shape, size_label, smoke
from benchmarks.engines import ENGINES
from benchmarks.queries import Query, make_queries
from benchmarks.runner import Recorder, engine_cases, percentiles_ms

REPEATS = 2  # passes over the query list per case (1 in smoke mode)
MISS_TOLERANCE = 0.1  # engines with their own analysis may miss a few generated queries


def _run_queries(benchmark, fn, setup_arg, queries):
    it = itertools.cycle(queries)
    rec = Recorder(fn)
    rec.load = load_average()
    warm = len(queries) if benchmark.enabled else 0
    benchmark.pedantic(
        rec,
        setup=lambda: ((setup_arg(next(it)),), {}),
        rounds=len(queries) * (1 if smoke() else REPEATS),
        warmup_rounds=warm,
    )
    rec.drop(warm)
    return rec


def _check_misses(engine, results):
    misses = sum(1 for r in results if not r)
    allowed = 0 if ENGINES[engine].same_analysis else int(MISS_TOLERANCE * len(results))
    assert misses <= allowed, f"{engine}: {misses} of {len(results)} queries found nothing"
    return misses


@pytest.mark.parametrize("engine,corpus,size,shape", engine_cases("search", with_shapes=True))
def test_search(benchmark, lab, engine, corpus, size, shape):
    benchmark.group = "search"
    opened = lab.opened(engine, corpus, size)
    queries = lab.queries(corpus, size)[shape]
    rec = _run_queries(benchmark, opened.search, lambda q: q, queries)
    misses = _check_misses(engine, rec.results)
    assert all(len(hits) <= 10 and all(text for _, text in hits) for hits in rec.results)
    benchmark.extra_info.update(
        engine=engine,
        corpus=corpus,
        size=size_label(size),
        passages=len(lab.passages(corpus, size)),
        shape=shape,
        queries=len(queries),
        misses=misses,
        load_1m=rec.load,
        **percentiles_ms(rec.seconds),
    )


def cold_phrases(corpus: str, size: int | None, n: int) -> list[Query]:
    """``n`` phrases none of the search group's queries hold: adjacent word pairs drawn as the ``phrase``
    shape's are, with later seeds, so each is new to an engine that has run the group's queries."""
    seen = {q.words for qs in make_queries(corpus, size, queries_per_shape()).values() for q in qs}
    out: list[Query] = []
    for seed in range(SEED + 1, SEED + 1000):
        for q in make_queries(corpus, size, queries_per_shape(), seed=seed)["phrase"]:
            if q.words not in seen and len(out) < n:
                seen.add(q.words)
                out.append(q)
        if len(out) >= n:
            break
    return out


@pytest.mark.parametrize(
    "engine,corpus,size",
    [
        pytest.param(*p.values[:3], id=p.id.replace("-phrase", "-phrase-cold"), marks=p.marks)
        for p in engine_cases("search", with_shapes=True)
        if p.values[3] == "phrase"
    ],
)
def test_search_cold_phrase(benchmark, lab, engine, corpus, size):
    """Phrases seen for the first time: every round is a phrase this process never ran (caches that keep
    a phrase's matches cannot answer it; the terms' postings and positions may be decoded already when
    an earlier phrase shared a word, as in a long-running server)."""
    benchmark.group = "search"
    opened = lab.opened(engine, corpus, size)
    queries = cold_phrases(corpus, size, queries_per_shape() + 1)
    opened.search(queries[0])  # first-use work (imports, first checks) is not a phrase's cost
    it = iter(queries[1:])
    rec = Recorder(opened.search)
    rec.load = load_average()
    benchmark.pedantic(rec, setup=lambda: ((next(it),), {}), rounds=len(queries) - 1, warmup_rounds=0)
    misses = _check_misses(engine, rec.results)
    benchmark.extra_info.update(
        engine=engine,
        corpus=corpus,
        size=size_label(size),
        passages=len(lab.passages(corpus, size)),
        shape="phrase-cold",
        queries=len(queries) - 1,
        misses=misses,
        load_1m=rec.load,
        **percentiles_ms(rec.seconds),
    )


@pytest.mark.parametrize("engine,corpus,size", engine_cases("snippet"))
def test_snippet(benchmark, lab, engine, corpus, size):
    benchmark.group = "snippet"
    opened = lab.opened(engine, corpus, size)
    queries = lab.queries(corpus, size)["2-term"]
    rec = _run_queries(benchmark, opened.snippets, opened.prepare_snippets, queries)
    misses = _check_misses(engine, [[s for s in snippets if s] for snippets in rec.results])
    benchmark.extra_info.update(
        engine=engine,
        corpus=corpus,
        size=size_label(size),
        passages=len(lab.passages(corpus, size)),
        shape="snippets of top 10, 2-term",
        queries=len(queries),
        misses=misses,
        load_1m=rec.load,
        **percentiles_ms(rec.seconds),
    )
