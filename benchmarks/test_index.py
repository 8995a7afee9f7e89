"""Group ``index``: building an index from scratch, per engine, corpus and size.

The timed build runs in this process (``benchmark.pedantic``; one round above 10k passages); the same
build also runs in its own subprocess (``lab.built``) for peak RSS and the size on disk, and that index
is the one the ``open``, ``search``, ``snippet`` and ``update`` groups use.
"""

from __future__ import annotations

import pytest

from benchmarks._common import (
    ENGINES,
    Recorder,
    dir_size,
    engine_cases,
    fresh_dir,
    reset_analysis_caches,
    rounds_for,
    size_label,
    term_count,
)


@pytest.mark.parametrize("engine,corpus,size", engine_cases("build"))
def test_index(benchmark, lab, tmp_path, engine, corpus, size):
    benchmark.group = "index"
    eng = ENGINES[engine]
    passages = lab.passages(corpus, size)
    path = tmp_path / "index"

    def setup():
        reset_analysis_caches()
        return (passages, corpus, fresh_dir(path)), {}

    rec = Recorder(eng.build)
    benchmark.pedantic(rec, setup=setup, rounds=rounds_for(len(passages)))
    assert rec.results[-1] == len(passages)

    best = min(rec.seconds)
    tokens = term_count(corpus, size)
    sub = lab.built(engine, corpus, size)
    benchmark.extra_info.update(
        engine=engine,
        corpus=corpus,
        size=size_label(size),
        passages=len(passages),
        tokens=tokens,
        docs_per_s=len(passages) / best,
        tokens_per_s=tokens / best,
        disk_mb=dir_size(path) / 2**20,
        subprocess_docs_per_s=sub["docs_per_s"],
        peak_rss_mb=sub["peak_rss_mb"],
        loaded_rss_mb=sub["loaded_rss_mb"],
    )
