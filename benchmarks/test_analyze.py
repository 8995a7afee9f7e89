"""Group ``analyze``: text to terms, per analysis chain, on the first 10k passages (smoke: 300).

Each round starts from a cold analyzer (a new stemmer, telusur's stem cache emptied), as a fresh index
build does. The bare baseline is the ceiling for any engine analyzing in Python on one core.
"""

from __future__ import annotations

import pytest

from benchmarks.analysis import ANALYSES
from benchmarks.config import load_average, rounds_for
from benchmarks.corpora import load_passages
from benchmarks.runner import Recorder, analysis_cases


@pytest.mark.parametrize("analysis,corpus,size", analysis_cases())
def test_analyze(benchmark, analysis, corpus, size):
    benchmark.group = "analyze"
    texts = [p.text for p in load_passages(corpus, size)]
    make = ANALYSES[analysis][1]

    def analyze_all(analyze):
        return sum(len(analyze(t)) for t in texts)

    rec = Recorder(analyze_all)
    load = load_average()
    benchmark.pedantic(rec, setup=lambda: ((make(corpus),), {}), rounds=rounds_for(len(texts)))
    tokens = rec.results[-1]
    assert tokens > len(texts)
    best = min(rec.seconds)
    benchmark.extra_info.update(
        engine=analysis,
        corpus=corpus,
        size=str(len(texts)),
        passages=len(texts),
        tokens=tokens,
        docs_per_s=len(texts) / best,
        tokens_per_s=tokens / best,
        cores=1,
        load_1m=load,
    )
