"""Group ``open``: time to open a built index (``open``) and to the first answer after opening
(``open+query``, which exposes work an engine defers from opening to its first search)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.config import load_average, size_label
from benchmarks.engines import ENGINES, Opened
from benchmarks.runner import Recorder, engine_cases

OPEN_ROUNDS = 20


@pytest.mark.parametrize("case", ["open", "open+query"])
@pytest.mark.parametrize("engine,corpus,size", engine_cases("search"))
def test_open(benchmark, lab, engine, corpus, size, case):
    benchmark.group = "open"
    eng = ENGINES[engine]
    path = Path(lab.built(engine, corpus, size)["path"])
    query = lab.queries(corpus, size)["1-term"][0]
    handles: list[Opened] = []

    def open_index():
        handles.append(eng.open(path, corpus))
        return handles[-1].search(query) if case == "open+query" else handles[-1]

    def setup():
        while handles:
            handles.pop().close()
        return (), {}

    rec = Recorder(open_index)
    load = load_average()
    warm = 1 if benchmark.enabled else 0
    benchmark.pedantic(rec, setup=setup, rounds=OPEN_ROUNDS, warmup_rounds=warm)
    rec.drop(warm)
    setup()
    result = rec.results[-1]
    assert result if case == "open+query" else isinstance(result, Opened)
    benchmark.extra_info.update(
        engine=engine,
        corpus=corpus,
        size=size_label(size),
        case=case,
        passages=len(lab.passages(corpus, size)),
        min_ms=min(rec.seconds) * 1000,
        median_ms=sorted(rec.seconds)[len(rec.seconds) // 2] * 1000,
        load_1m=load,
    )
