"""Group ``index``: building an index from scratch, per engine, corpus, size and number of cores.

Every engine of one comparison is pinned to the same first N cores (``BENCH_CORES``, default 1 and 2)
and configured for them (telusur ``add_many(workers=N)``, tantivy ``num_threads=N``, whoosh
``procs=N``); one-core engines (the baseline, bm25s, the ``writer.add`` loop) are built on one core only.
The timed build runs in this process (``benchmark.pedantic``; one round above 10k passages); at the
engine's largest core count the same build also runs in its own pinned subprocess (``lab.built``) for
peak RSS, and that index is the one the ``open``, ``search``, ``snippet`` and ``update`` groups use.
``analysis_s`` is the time the engine's analysis chain alone takes on one core over the same passages
(the analysis column; for tantivy's own ``en_stem``, its analyzer called from Python).

``per_ceiling`` divides the build's docs/s by the single-core analysis ceiling (the bare baseline over
the same passages' text, on the first core) measured right before and right after the build, in this
process: on a shared machine whose load drifts between cases, that ratio is the comparable one.
"""

from __future__ import annotations

import time

import pytest

from benchmarks.analysis import analysis_seconds, baseline_analyzer, reset_analysis_caches, term_count
from benchmarks.config import load_average, rounds_for, size_label
from benchmarks.engines import ENGINES
from benchmarks.runner import Recorder, default_cores, dir_size, engine_cases, fresh_dir, pinned


def _ceiling_seconds(passages, corpus) -> float:
    """Seconds the bare analysis baseline takes over the passages' text on one (pinned) core."""
    with pinned(1):
        analyze = baseline_analyzer(corpus)
        t0 = time.perf_counter()
        for p in passages:
            analyze(p.text)
        return time.perf_counter() - t0


@pytest.mark.parametrize("engine,corpus,size,cores", engine_cases("build"))
def test_index(benchmark, lab, tmp_path, engine, corpus, size, cores):
    benchmark.group = "index"
    eng = ENGINES[engine]
    passages = lab.passages(corpus, size)
    path = tmp_path / "index"

    def setup():
        reset_analysis_caches()
        return (passages, corpus, fresh_dir(path), cores), {}

    rec = Recorder(eng.build)
    rec.load = load_average()
    before = _ceiling_seconds(passages, corpus)
    with pinned(cores) as cpus:
        benchmark.pedantic(rec, setup=setup, rounds=rounds_for(len(passages)))
    after = _ceiling_seconds(passages, corpus)
    assert rec.results[-1] == len(passages)
    ceiling = len(passages) / ((before + after) / 2)

    best = min(rec.seconds)
    tokens = term_count(corpus, size)
    # the own-process build (peak RSS, the index other groups search) runs at the engine's default cores
    sub = lab.built(engine, corpus, size) if cores == default_cores(engine) else {}
    benchmark.extra_info.update(
        engine=engine,
        corpus=corpus,
        size=size_label(size),
        case=f"{cores}core",
        cores=cores,
        cpus=cpus,
        setup=eng.setup(cores),
        passages=len(passages),
        tokens=tokens,
        seconds=best,
        docs_per_s=len(passages) / best,
        tokens_per_s=tokens / best,
        ceiling_docs_per_s=ceiling,
        per_ceiling=len(passages) / best / ceiling,
        analysis=eng.analysis,
        analysis_s=analysis_seconds(eng.analysis, corpus, size),
        disk_mb=dir_size(path) / 2**20,
        subprocess_docs_per_s=sub.get("docs_per_s"),
        peak_rss_mb=sub.get("peak_rss_mb"),
        tree_peak_pss_mb=sub.get("tree_peak_pss_mb"),
        loaded_rss_mb=sub.get("loaded_rss_mb"),
        load_1m=rec.load,
    )
