"""Group ``update``: adding 1% new passages to a built index and committing.

Each round starts from an untimed copy of the index the ``index`` group built; only opening a writer,
adding and committing is timed. bm25s has no incremental add (its matrix is rebuilt from scratch, see
the ``index`` group) and the baseline has no index, so neither appears here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks.config import load_average, rounds_for, size_label
from benchmarks.corpora import update_batch
from benchmarks.engines import ENGINES
from benchmarks.runner import Recorder, engine_cases, fresh_dir


@pytest.mark.parametrize("engine,corpus,size", engine_cases("update"))
def test_update(benchmark, lab, tmp_path, engine, corpus, size):
    benchmark.group = "update"
    eng = ENGINES[engine]
    n = len(lab.passages(corpus, size))
    src = Path(lab.built(engine, corpus, size)["path"])
    batch = update_batch(corpus, size)
    dst = tmp_path / "index"

    def setup():
        shutil.copytree(src, fresh_dir(dst))
        return (dst, batch, corpus), {}

    rec = Recorder(eng.add)
    load = load_average()
    benchmark.pedantic(rec, setup=setup, rounds=rounds_for(n))
    assert rec.results[-1] == n + len(batch)
    best = min(rec.seconds)
    benchmark.extra_info.update(
        engine=engine,
        corpus=corpus,
        size=size_label(size),
        passages=n,
        added=len(batch),
        seconds=best,
        docs_per_s=len(batch) / best,
        load_1m=load,
    )
