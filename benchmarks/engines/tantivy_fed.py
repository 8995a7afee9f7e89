"""tantivy-py fed telusur's analysis: the terms (text, then title) joined by spaces into a field with
the ``whitespace`` tokenizer, raw text and title stored only. The engine-only comparison, and the only
one for Indonesian (tantivy has no Indonesian stemmer). Writer defaults except ``num_threads`` = cores."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.analysis import passage_terms, telusur_analyzer
from benchmarks.corpora import Passage
from benchmarks.engines.base import Engine, Hit, Opened, Unsupported
from benchmarks.queries import Query


class TantivyFedEngine(Engine):
    name = "tantivy-fed"
    module = "tantivy"
    preload = ("analyzers",)
    max_cores = 2
    fields: tuple[str, ...] = ("terms",)

    def setup(self, cores: int) -> str:
        return f"writer(num_threads={cores}), default heap"

    def schema(self) -> Any:
        import tantivy

        sb = tantivy.SchemaBuilder()
        sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
        sb.add_text_field("terms", stored=False, tokenizer_name="whitespace", index_option="position")
        sb.add_bytes_field("title", stored=True)  # stored only: tantivy-py text fields are always indexed
        sb.add_bytes_field("text", stored=True)
        return sb.build()

    def terms_for(self, lang: str) -> Callable[[Passage], list[str]] | None:
        """What makes a passage's terms (None: tantivy analyzes itself)."""
        return passage_terms(lang)

    def document(self, p: Passage, terms: Callable[[Passage], list[str]]) -> Any:
        import tantivy

        doc = tantivy.Document()
        doc.add_text("id", p.id)
        doc.add_text("terms", " ".join(terms(p)))
        doc.add_bytes("title", p.title.encode())
        doc.add_bytes("text", p.text.encode())
        return doc

    def _write(self, index: Any, passages: Sequence[Passage], lang: str, cores: int) -> int:
        writer = index.writer(num_threads=cores)
        terms = self.terms_for(lang)
        for p in passages:
            writer.add_document(self.document(p, terms))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        return index.searcher().num_docs

    def build(self, passages: Sequence[Passage], lang: str, path: Path, cores: int = 1) -> int:
        import tantivy

        path.mkdir(parents=True, exist_ok=True)
        return self._write(tantivy.Index(self.schema(), path=str(path), reuse=False), passages, lang, cores)

    def add(self, path: Path, passages: Sequence[Passage], lang: str) -> int:
        import tantivy

        return self._write(tantivy.Index.open(str(path)), passages, lang, self.max_cores)

    def query_text(self, query: Query, lang: str) -> str:
        columns = telusur_analyzer(lang).analyze_columns
        return query.render([columns(w)[0][0] for w in query.words])

    def open(self, path: Path, lang: str) -> Opened:
        return TantivyOpened(self, path, lang)


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class TantivyOpened(Opened):
    def __init__(self, engine: TantivyFedEngine, path: Path, lang: str) -> None:
        import tantivy

        self.engine = engine
        self.lang = lang
        self.index = tantivy.Index.open(str(path))
        self.searcher = self.index.searcher()

    def _docs(self, query: Query) -> tuple[Any, list[Any]]:
        q = self.index.parse_query(self.engine.query_text(query, self.lang), list(self.engine.fields))
        res = self.searcher.search(q, 10)
        return q, [self.searcher.doc(addr) for _, addr in res.hits]

    def search(self, query: Query) -> list[Hit]:
        _, docs = self._docs(query)
        return [(d["id"][0], _str(d["text"][0])) for d in docs]

    def prepare_snippets(self, query: Query) -> Any:
        if not self.engine.can_snippet:
            raise Unsupported
        return self._docs(query)

    def snippets(self, prepared: Any) -> list[str]:
        import tantivy

        q, docs = prepared
        gen = tantivy.SnippetGenerator.create(self.searcher, q, self.index.schema, "text")
        return [gen.snippet_from_doc(d).to_html() for d in docs]
