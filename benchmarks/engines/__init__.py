"""One adapter per engine, each driving it as its users would; ``ENGINES`` maps names to them."""

from __future__ import annotations

from benchmarks.engines.base import Engine, Hit, Opened, Unsupported
from benchmarks.engines.baseline import BaselineEngine
from benchmarks.engines.bm25s_peer import Bm25sEngine
from benchmarks.engines.tantivy_en_stem import TantivyEnStemEngine
from benchmarks.engines.tantivy_fed import TantivyFedEngine
from benchmarks.engines.telusur import TelusurAddEngine, TelusurEngine
from benchmarks.engines.whoosh_peer import WhooshEngine

ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        TelusurEngine(),
        TelusurAddEngine(),
        BaselineEngine(),
        TantivyEnStemEngine(),
        TantivyFedEngine(),
        Bm25sEngine(),
        WhooshEngine(),
    )
}

__all__ = ["ENGINES", "Engine", "Hit", "Opened", "Unsupported"]
