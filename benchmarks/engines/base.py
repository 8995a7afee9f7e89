"""What every engine adapter implements: build (on a given number of cores), add, open, search."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.corpora import Passage
from benchmarks.queries import SHAPES, Query

Hit = tuple[str, str]  # (passage id, stored text)


class Unsupported(Exception):
    """An engine cannot do this (bm25s has no phrases; the baseline has no index)."""


class Opened:
    """An index opened for searching."""

    def search(self, query: Query) -> list[Hit]:
        """The top 10 for ``query``, with stored text."""
        raise Unsupported

    def prepare_snippets(self, query: Query) -> Any:
        """The untimed part of a snippet case: the search whose hits get snippets."""
        raise Unsupported

    def snippets(self, prepared: Any) -> list[str]:
        """Snippets for the top 10 of a prepared search (the timed part)."""
        raise Unsupported

    def close(self) -> None:
        pass


class Engine:
    """One engine as its users would run it. ``build`` gets the number of cores of the comparison (the
    runner pins the process to that many CPUs before calling it); an engine that cannot use more than
    ``max_cores`` is only built at counts up to it, and the report shows its figure beside bigger ones."""

    name = ""
    languages: tuple[str, ...] = ("en", "id")
    shapes: tuple[str, ...] = SHAPES
    can_search = True
    can_update = True
    can_snippet = False
    same_analysis = True  # analyzes exactly like telusur (so every generated query must hit)
    analysis = "telusur-columns"  # the ``ANALYSES`` chain this engine's build runs (the analysis column)
    max_cores = 1  # the most cores a build can use
    module = ""  # the import whose absence skips the engine
    preload: tuple[str, ...] = ()  # further modules build/open use, imported before any clock starts

    def unavailable(self) -> str | None:
        """Why this engine cannot run here (a missing package), or None. Imports what the engine uses,
        so that no timed call pays for an import."""
        for module in (self.module, *self.preload):
            if not module:
                continue
            try:
                __import__(module)
            except Exception as exc:  # an import of a half-written telusur may fail with anything
                return f"{self.name}: cannot import {module} ({type(exc).__name__}: {exc})"
        return None

    def setup(self, cores: int) -> str:
        """How the engine is configured on ``cores`` cores, as shown in the report."""
        return f"{cores} core" + ("s" if cores > 1 else "")

    def build(self, passages: Sequence[Passage], lang: str, path: Path, cores: int = 1) -> int:
        """Build an index of ``passages`` from scratch at ``path`` on ``cores`` cores; the number of
        documents it holds."""
        raise NotImplementedError

    def add(self, path: Path, passages: Sequence[Passage], lang: str) -> int:
        """Add ``passages`` to the index at ``path`` and commit; the number of documents after."""
        raise Unsupported

    def open(self, path: Path, lang: str) -> Opened:
        raise Unsupported
