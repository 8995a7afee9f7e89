"""whoosh 2.7.4 with the same stopwords and stemmer as telusur, one indexed field (text + title), text
and title stored. On more than one core it runs its multi-process writer (``procs``, ``multisegment``),
the configuration its documentation gives for indexing speed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.analysis import whoosh_analyzer
from benchmarks.corpora import Passage
from benchmarks.engines.base import Engine, Hit, Opened
from benchmarks.queries import Query


class WhooshEngine(Engine):
    name = "whoosh"
    can_snippet = True
    same_analysis = False
    analysis = "whoosh"
    max_cores = 2
    module = "whoosh"
    preload = ("whoosh.index", "whoosh.fields", "whoosh.qparser", "whoosh.analysis", "whoosh.multiproc", "analyzers")
    limitmb = 256

    def setup(self, cores: int) -> str:
        if cores > 1:
            return f"writer(procs={cores}, multisegment=True, limitmb={self.limitmb})"
        return f"writer(limitmb={self.limitmb})"

    def _schema(self, lang: str) -> Any:
        from whoosh.fields import ID, STORED, TEXT, Schema

        return Schema(id=ID(stored=True, unique=True), title=STORED, text=STORED, body=TEXT(whoosh_analyzer(lang)))

    def _write(self, ix: Any, passages: Sequence[Passage], cores: int) -> int:
        if cores > 1:
            w = ix.writer(procs=cores, multisegment=True, limitmb=self.limitmb)
        else:
            w = ix.writer(limitmb=self.limitmb)
        for p in passages:
            w.add_document(id=p.id, title=p.title, text=p.text, body=f"{p.text}\n{p.title}")
        w.commit()
        return ix.doc_count()

    def build(self, passages: Sequence[Passage], lang: str, path: Path, cores: int = 1) -> int:
        from whoosh.index import create_in

        path.mkdir(parents=True, exist_ok=True)
        return self._write(create_in(str(path), self._schema(lang)), passages, cores)

    def add(self, path: Path, passages: Sequence[Passage], lang: str) -> int:
        from whoosh.index import open_dir

        return self._write(open_dir(str(path)), passages, 1)

    def open(self, path: Path, lang: str) -> Opened:
        return _WhooshOpened(path)


class _WhooshOpened(Opened):
    def __init__(self, path: Path) -> None:
        from whoosh.index import open_dir
        from whoosh.qparser import OrGroup, QueryParser

        self.ix = open_dir(str(path))
        self.searcher = self.ix.searcher()
        # OR of the terms, like every other engine here (whoosh's parser defaults to AND)
        self.parser = QueryParser("body", self.ix.schema, group=OrGroup)

    def search(self, query: Query) -> list[Hit]:
        results = self.searcher.search(self.parser.parse(query.render()), limit=10)
        return [(h["id"], h["text"]) for h in results]

    def prepare_snippets(self, query: Query) -> Any:
        return self.searcher.search(self.parser.parse(query.render()), limit=10)

    def snippets(self, prepared: Any) -> list[str]:
        return [h.highlights("body", text=h["text"]) for h in prepared]

    def close(self) -> None:
        self.searcher.close()
        self.ix.close()
