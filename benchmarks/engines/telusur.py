"""telusur itself: ``add_many`` with one worker per core (1: in this process), and a ``writer.add``
loop (always one core)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.corpora import Passage
from benchmarks.engines.base import Engine, Hit, Opened
from benchmarks.queries import Query


class TelusurEngine(Engine):
    name = "telusur"
    can_snippet = True
    max_cores = 2
    module = "search"
    preload = ("analyzers",)
    passage_words = 120

    def unavailable(self) -> str | None:
        reason = super().unavailable()
        if reason is None:
            import search

            if not all(hasattr(search, a) for a in ("Index", "Document")):
                reason = "telusur: search.Index / search.Document not there yet"
        return reason

    def setup(self, cores: int) -> str:
        return f"add_many(workers={cores})" + (" in process" if cores == 1 else "")

    def _write(self, index: Any, passages: Sequence[Passage], lang: str, cores: int) -> int:
        from search import Document

        with index.writer() as w:
            w.add_many((Document(id=p.id, text=p.text, title=p.title, lang=lang) for p in passages), workers=cores)
        return len(index)

    def build(self, passages: Sequence[Passage], lang: str, path: Path, cores: int = 1) -> int:
        from search import Index

        index = Index.create(path, passage_words=self.passage_words, default_language=lang)
        return self._write(index, passages, lang, cores)

    def add(self, path: Path, passages: Sequence[Passage], lang: str) -> int:
        from search import Index

        return self._write(Index.open(path), passages, lang, self.max_cores)

    def open(self, path: Path, lang: str) -> Opened:
        return _TelusurOpened(path)


class TelusurAddEngine(TelusurEngine):
    """The same index built by calling ``writer.add`` once per document (what a caller's own loop does)."""

    name = "telusur-add"
    can_search = can_update = can_snippet = False
    max_cores = 1

    def setup(self, cores: int) -> str:
        return "writer.add loop"

    def build(self, passages: Sequence[Passage], lang: str, path: Path, cores: int = 1) -> int:
        from search import Document, Index

        index = Index.create(path, passage_words=self.passage_words, default_language=lang)
        with index.writer() as w:
            add = w.add
            for p in passages:
                add(Document(id=p.id, text=p.text, title=p.title, lang=lang))
        return len(index)


class _TelusurOpened(Opened):
    def __init__(self, path: Path) -> None:
        from search import Index

        self.index = Index.open(path)

    def search(self, query: Query) -> list[Hit]:
        return [(h.doc_id, h.text) for h in self.index.search(query.render(), k=10)]

    def prepare_snippets(self, query: Query) -> Any:
        return self.index.search(query.render(), k=10)

    def snippets(self, prepared: Any) -> list[str]:
        return [h.snippet for h in prepared]

    def close(self) -> None:
        self.index.close()
