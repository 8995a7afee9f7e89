"""Groups ``search`` and ``snippet``: query latency on a built index, per query shape.

Every round is one query (top 10 with stored text), cycling through the shape's query list after one
untimed pass over it; p50/p95/p99 over the rounds go to ``extra_info``. Snippets are their own case:
the search runs untimed in the round's setup and only making snippets for its hits is timed.
"""

from __future__ import annotations

import itertools

import pytest

from benchmarks.config import load_average, size_label, smoke
from benchmarks.engines import ENGINES
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
