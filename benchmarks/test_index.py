"""Group ``index``: building an index from scratch, per engine, corpus, size and number of cores.

Every engine of one comparison is pinned to the same first N cores (``BENCH_CORES``, default 1 and 2)
and configured for them (telusur ``add_many(workers=N)``, tantivy ``num_threads=N``, whoosh
``procs=N``); one-core engines (the baseline, bm25s, the ``writer.add`` loop) are built on one core only.
The timed build runs in this process (``benchmark.pedantic``; one round above 10k passages); the same
build also runs in its own pinned subprocess (``lab.built``) for peak RSS and the size on disk, and the
largest-core subprocess index is the one the ``open``, ``search``, ``snippet`` and ``update`` groups use.
``analysis_s`` is the time the engine's analysis chain alone takes on one core over the same passages
(the analysis column; for tantivy's own ``en_stem``, its analyzer called from Python).
"""

from __future__ import annotations

import pytest

from benchmarks.analysis import analysis_seconds, reset_analysis_caches, term_count
from benchmarks.config import load_average, rounds_for, size_label
from benchmarks.engines import ENGINES
from benchmarks.runner import Recorder, dir_size, engine_cases, fresh_dir, pinned


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
    with pinned(cores) as cpus:
        benchmark.pedantic(rec, setup=setup, rounds=rounds_for(len(passages)))
    assert rec.results[-1] == len(passages)

    best = min(rec.seconds)
    tokens = term_count(corpus, size)
    sub = lab.built(engine, corpus, size, cores)
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
        analysis=eng.analysis,
        analysis_s=analysis_seconds(eng.analysis, corpus, size),
        disk_mb=dir_size(path) / 2**20,
        subprocess_docs_per_s=sub["docs_per_s"],
        peak_rss_mb=sub["peak_rss_mb"],
        tree_peak_pss_mb=sub.get("tree_peak_pss_mb"),
        loaded_rss_mb=sub["loaded_rss_mb"],
        load_1m=rec.load,
    )
