"""bm25s fed telusur's terms (token lists), ``method="lucene"``, in its fastest documented configuration:
the numba backend for retrieval when numba is installed (``pip install bm25s[core]``), the corpus saved
with the index and loaded with ``mmap=True``. Indexing is numpy/scipy on one core; no phrases, booleans
or incremental add."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmarks.analysis import passage_terms, telusur_terms
from benchmarks.corpora import Passage
from benchmarks.engines.base import Engine, Hit, Opened, Unsupported
from benchmarks.queries import Query


def backend() -> str:
    """``numba`` where it imports (bm25s's fast retrieval path), else ``numpy``."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return "numpy"
    return "numba"


class Bm25sEngine(Engine):
    name = "bm25s"
    shapes = ("1-term", "2-term", "3-term")  # no positions: no phrases, no boolean operators
    can_update = False  # bm25s rebuilds its matrix from scratch; there is no add
    module = "bm25s"
    preload = ("analyzers",)

    def setup(self, cores: int) -> str:
        return f'BM25(method="lucene", backend="{backend()}"), 1 core'

    def build(self, passages: Sequence[Passage], lang: str, path: Path, cores: int = 1) -> int:
        import bm25s

        terms = passage_terms(lang)
        retriever = bm25s.BM25(method="lucene", backend=backend())
        retriever.index([terms(p) for p in passages], show_progress=False)
        retriever.save(str(path), corpus=[{"id": p.id, "text": p.text} for p in passages], show_progress=False)
        return int(retriever.scores["num_docs"])

    def open(self, path: Path, lang: str) -> Opened:
        return _Bm25sOpened(path, lang)


class _Bm25sOpened(Opened):
    def __init__(self, path: Path, lang: str) -> None:
        import bm25s

        self.retriever = bm25s.BM25.load(
            str(path), load_corpus=True, mmap=True, show_progress=False, override_params={"backend": backend()}
        )
        self.terms = telusur_terms(lang)

    def search(self, query: Query) -> list[Hit]:
        if query.shape not in Bm25sEngine.shapes:
            raise Unsupported
        tokens = [t for w in query.words for t in self.terms(w)]
        docs, scores = self.retriever.retrieve([tokens], k=10, show_progress=False, n_threads=1)
        return [(d["id"], d["text"]) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]
