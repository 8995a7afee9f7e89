"""The bare analysis baseline: no index, only ``\\w+`` + lower + PyStemmer over each passage's text.
Its docs/s is the single-core ceiling for any engine analyzing in Python."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmarks.analysis import baseline_analyzer
from benchmarks.corpora import Passage
from benchmarks.engines.base import Engine


class BaselineEngine(Engine):
    name = "baseline"
    can_search = can_update = False
    same_analysis = False
    analysis = "baseline"
    module = "Stemmer"

    def setup(self, cores: int) -> str:
        return "regex + lower + PyStemmer, 1 core"

    def build(self, passages: Sequence[Passage], lang: str, path: Path, cores: int = 1) -> int:
        analyze = baseline_analyzer(lang)
        n = 0
        for p in passages:
            analyze(p.text)
            n += 1
        return n
