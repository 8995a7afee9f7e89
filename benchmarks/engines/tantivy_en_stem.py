"""tantivy-py as its users run it on English: its own ``en_stem`` tokenizer on stored text and title
fields searched together, writer defaults except ``num_threads`` = cores. The English anchor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.corpora import Passage
from benchmarks.engines.tantivy_fed import TantivyFedEngine
from benchmarks.queries import Query


class TantivyEnStemEngine(TantivyFedEngine):
    name = "tantivy-en_stem"
    languages = ("en",)
    can_snippet = True
    same_analysis = False
    analysis = "tantivy-en_stem"
    preload = ()
    fields = ("text", "title")

    def schema(self) -> Any:
        import tantivy

        sb = tantivy.SchemaBuilder()
        sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
        sb.add_text_field("title", stored=True, tokenizer_name="en_stem", index_option="position")
        sb.add_text_field("text", stored=True, tokenizer_name="en_stem", index_option="position")
        return sb.build()

    def terms_for(self, lang: str) -> None:
        return None

    def document(self, p: Passage, terms: Callable[[Passage], list[str]] | None) -> Any:
        import tantivy

        doc = tantivy.Document()
        doc.add_text("id", p.id)
        doc.add_text("title", p.title)
        doc.add_text("text", p.text)
        return doc

    def query_text(self, query: Query, lang: str) -> str:
        return query.render()
