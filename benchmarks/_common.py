"""What every benchmark suite shares: configuration, corpus loading, query generation, engine adapters.

The suites (``test_*.py``) only choose cases and time calls; everything that knows about a corpus file
or a peer engine's API lives here, so the engines are driven the same way in every group and in the
build subprocess (``_build.py``).

Engines (each passage of a corpus is one document everywhere: id, title, text; title and text are both
searchable, as telusur indexes a passage's title with its text, and the text is stored):

* ``baseline``: bare analysis, regex ``\\w+`` split + lower + PyStemmer ``stemWords``; no index. The
  ceiling for any engine that analyzes in Python on one core.
* ``whoosh``: whoosh 2.7.4, ``RegexTokenizer | LowercaseFilter | StopFilter | PyStemmerFilter`` with
  telusur's stopword list over one field of text + title; text and title stored.
* ``tantivy``: tantivy-py fed telusur's own terms (text, then title) joined by spaces into a field indexed
  with the ``whitespace`` tokenizer (positions kept), raw text and title in stored-only fields.
* ``tantivy-en_stem``: tantivy-py analyzing English itself with its ``en_stem`` tokenizer, text and
  title as two stored fields searched together (English only).
* ``bm25s``: bm25s ``method="lucene"`` indexing telusur's terms of text and title (token lists); the
  corpus saved with it.
* ``telusur``: this project.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# -- configuration -------------------------------------------------------------------------------------

SMOKE_PASSAGES = 300
SMOKE_QUERIES = 5
SEED = 20240607


def data_dir() -> Path:
    """The shared data folder: ``$TELUSUR_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("TELUSUR_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


_smoke_flag = False


def set_smoke(on: bool) -> None:
    """Called by conftest when pytest runs with ``--benchmark-disable``."""
    global _smoke_flag
    _smoke_flag = on


def smoke() -> bool:
    """Smoke mode (``BENCH_SMOKE=1`` or ``--benchmark-disable``): ~300 passages, one size, seconds."""
    return _smoke_flag or os.environ.get("BENCH_SMOKE", "") not in ("", "0")


def sizes() -> list[int | None]:
    """Corpus sizes in passages from ``BENCH_SIZES`` (default ``10000,50000,full``); None means full."""
    if smoke():
        return [SMOKE_PASSAGES]
    out: list[int | None] = []
    for item in os.environ.get("BENCH_SIZES", "10000,50000,full").split(","):
        item = item.strip().lower()
        if not item:
            continue
        if item == "full":
            out.append(None)
        elif item.isdigit() and int(item) > 0:
            out.append(int(item))
        else:
            raise ValueError(f"BENCH_SIZES item {item!r} is neither a positive integer nor 'full'")
    return out


def size_label(size: int | None) -> str:
    return "full" if size is None else str(size)


def parse_size(label: str) -> int | None:
    return None if label == "full" else int(label)


def queries_per_shape() -> int:
    """How many distinct queries per shape (``BENCH_QUERIES``, default 100; 5 in smoke mode)."""
    return SMOKE_QUERIES if smoke() else int(os.environ.get("BENCH_QUERIES", "100"))


def rounds_for(n_docs: int, small: int = 3) -> int:
    """Rounds for one-shot work (a build, an update): ``small`` up to 10k passages, one above."""
    if smoke():
        return 1
    return small if n_docs <= 10_000 else 1


# -- corpora -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CorpusSpec:
    name: str  # also the language code: "en" or "id"
    folder: str
    stemmer: str  # PyStemmer algorithm

    @property
    def path(self) -> Path:
        return data_dir() / self.folder / "passages.jsonl.gz"


CORPORA = {
    "en": CorpusSpec("en", "enwiki-extract-bulk", "english"),
    "id": CorpusSpec("id", "id-peraturan-bulk", "indonesian"),
}


@dataclass(frozen=True, slots=True)
class Passage:
    id: str
    title: str
    text: str


def missing_data_reason(corpus: str) -> str | None:
    """Why a corpus cannot be benchmarked (file absent), or None."""
    path = CORPORA[corpus].path
    if not path.is_file():
        return f"benchmark corpus not found: {path} (set TELUSUR_DATA to the shared data folder)"
    return None


_LOADED: dict[str, tuple[list[Passage], bool]] = {}  # corpus -> (prefix read so far, whole file?)


def load_passages(corpus: str, n: int | None) -> list[Passage]:
    """The first ``n`` passages of a corpus (all when None), in file order; the prefix is cached."""
    have, whole = _LOADED.get(corpus, ([], False))
    if whole or (n is not None and len(have) >= n):
        return have if n is None else have[:n]
    out: list[Passage] = []
    with gzip.open(CORPORA[corpus].path, "rt", encoding="utf-8") as f:
        for line in itertools.islice(f, n):
            rec = json.loads(line)
            out.append(Passage(rec["_id"], rec.get("title") or "", rec["text"]))
    _LOADED[corpus] = (out, n is None or len(out) < n)
    return out


def corpus_size(corpus: str, size: int | None) -> int:
    """The number of passages a size stands for."""
    return len(load_passages(corpus, size))


def update_batch(corpus: str, size: int | None) -> list[Passage]:
    """1% new passages (at least one) to add to an index of ``size``: the next ones in the file, or,
    for the full corpus, copies of the first ones under new ids."""
    base = load_passages(corpus, size)
    k = max(1, len(base) // 100)
    if size is not None:
        more = load_passages(corpus, size + k)[size:]
        if len(more) == k:
            return more
    return [Passage(p.id + "~new", p.title, p.text) for p in base[:k]]


# -- analysis ------------------------------------------------------------------------------------------

BASELINE_WORD_RE = re.compile(r"\w+")


def baseline_analyzer(lang: str) -> Callable[[str], list[str]]:
    """The bare analysis baseline: regex ``\\w+`` split + lower + PyStemmer stemWords (a new stemmer,
    so its word cache starts cold)."""
    import Stemmer

    stem_words = Stemmer.Stemmer(CORPORA[lang].stemmer).stemWords
    findall = BASELINE_WORD_RE.findall
    return lambda text: stem_words(findall(text.lower()))


def telusur_analyzer(lang: str) -> Any:
    """telusur's registered analyzer for ``lang`` (the shared instance the index uses)."""
    import analyzers

    return analyzers.get(lang)


def reset_analysis_caches() -> None:
    """Empty telusur's shared stem caches so that a repeated build starts as cold as the first one.

    Benchmark-only: it reaches into the analyzer's private cache on purpose (engines fed by telusur's
    terms, and telusur itself, would otherwise get a warm cache from the previous round).
    """
    import analyzers

    for name in analyzers.names():
        an = analyzers.get(name)
        for attr in ("_cache", "_multi"):
            c = getattr(an, attr, None)
            if hasattr(c, "clear"):
                c.clear()


def telusur_terms(lang: str) -> Callable[[str], list[str]]:
    columns = telusur_analyzer(lang).analyze_columns
    return lambda text: columns(text)[0]


def whoosh_analyzer(lang: str) -> Any:
    """whoosh's chain with the same stopwords and stemmer as telusur."""
    from whoosh.analysis import LowercaseFilter, RegexTokenizer, StopFilter

    stop = telusur_analyzer(lang).stopwords
    return (
        RegexTokenizer(r"\w+")
        | LowercaseFilter()
        | StopFilter(stoplist=stop, minsize=1)
        | PyStemmerFilter(CORPORA[lang].stemmer)
    )


def tantivy_en_stem_analyzer() -> Any:
    """tantivy's ``en_stem`` chain (simple tokenizer, remove_long 40, lowercase, English stemmer)."""
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def _whoosh_filter_base() -> type:
    try:
        from whoosh.analysis import Filter
    except ImportError:  # whoosh absent: the engine is skipped, the class is still importable
        return object
    return Filter


class PyStemmerFilter(_whoosh_filter_base()):  # type: ignore[misc]
    """A whoosh filter stemming with PyStemmer. Pickled into whoosh's index, so it keeps only the
    algorithm name and rebuilds the (unpicklable) stemmer on load."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._stem: Callable[[str], str] | None = None

    def __getstate__(self) -> dict[str, str]:
        return {"algorithm": self.algorithm}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.algorithm = state["algorithm"]
        self._stem = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PyStemmerFilter) and other.algorithm == self.algorithm

    __hash__ = None  # type: ignore[assignment]

    def __call__(self, tokens: Iterable[Any]) -> Iterable[Any]:
        stem = self._stem
        if stem is None:
            import Stemmer

            stem = self._stem = Stemmer.Stemmer(self.algorithm).stemWord
        for t in tokens:
            if not t.stopped:
                t.text = stem(t.text)
            yield t


ANALYSES: dict[str, tuple[tuple[str, ...], Callable[[str], Callable[[str], Sequence[Any]]]]] = {
    # name -> (languages, factory(lang) -> text -> tokens); each factory returns a cold analyzer
    "baseline": (("en", "id"), baseline_analyzer),
    "telusur-columns": (("en", "id"), lambda lang: _cold(lambda: telusur_terms(lang))),
    "telusur-tokens": (("en", "id"), lambda lang: _cold(lambda: telusur_analyzer(lang).analyze)),
    "whoosh": (("en", "id"), lambda lang: _whoosh_texts(whoosh_analyzer(lang))),
    "tantivy-en_stem": (("en",), lambda lang: tantivy_en_stem_analyzer().analyze),
}


def _cold(make: Callable[[], Callable[[str], Sequence[Any]]]) -> Callable[[str], Sequence[Any]]:
    reset_analysis_caches()
    return make()


def _whoosh_texts(an: Any) -> Callable[[str], list[str]]:
    return lambda text: [t.text for t in an(text)]


def passage_terms(lang: str) -> Callable[[Passage], list[str]]:
    """A passage's terms by telusur's analysis: the text's, then the title's (what engines fed
    pre-analyzed terms index)."""
    terms = telusur_terms(lang)
    return lambda p: terms(p.text) + terms(p.title) if p.title else terms(p.text)


@cache
def _term_count(corpus: str, size: int | None) -> int:
    terms = passage_terms(corpus)
    return sum(len(terms(p)) for p in load_passages(corpus, size))


def term_count(corpus: str, size: int | None) -> int:
    """Indexed terms (telusur's analysis of text and title, stopwords removed): the token count behind
    every engine's tokens/s, so the figures compare."""
    return _term_count(corpus, size)


# -- queries -------------------------------------------------------------------------------------------

SHAPES = ("1-term", "2-term", "3-term", "phrase", "boolean")


@dataclass(frozen=True, slots=True)
class Query:
    """One benchmark query: its shape and its surface words (lowercase, alphabetic, not stopwords)."""

    shape: str
    words: tuple[str, ...]

    def render(self, words: Sequence[str] | None = None) -> str:
        """The query in the user syntax telusur, whoosh and tantivy share; ``words`` replaces the surface
        words (engines fed pre-analyzed terms pass the terms)."""
        w = self.words if words is None else tuple(words)
        if self.shape == "phrase":
            return f'"{w[0]} {w[1]}"'
        if self.shape == "boolean":
            return f"{w[0]} AND {w[1]}"
        return " ".join(w)


QUERY_SAMPLE = 5000


@cache
def make_queries(corpus: str, size: int | None, per_shape: int, seed: int = SEED) -> dict[str, list[Query]]:
    """Queries for a corpus size, drawn with a fixed seed from (up to) 5,000 of its passages.

    Terms are drawn with probability proportional to their document frequency (telusur's stopwords are
    never terms); a term is only used when its most common surface form is alphabetic and stems to it
    with plain PyStemmer too, so every engine's own analysis finds the same term. Phrases are adjacent
    word pairs of a passage; a boolean query ``a AND b`` takes ``b`` from a passage containing ``a``.
    """
    import numpy as np
    import Stemmer

    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    passages = load_passages(corpus, size)
    sample = passages if len(passages) <= QUERY_SAMPLE else rng.sample(passages, QUERY_SAMPLE)
    an = telusur_analyzer(corpus)
    stem = Stemmer.Stemmer(CORPORA[corpus].stemmer).stemWord

    surfaces: dict[str, Counter[str]] = defaultdict(Counter)
    docs: list[list[tuple[str, str, int]]] = []  # per passage: (term, surface, position)
    for p in sample:
        toks = []
        for t in an.analyze(p.text):
            s = p.text[t.start : t.end].lower()
            if s.isalpha() and stem(s) == t.term:
                toks.append((t.term, s, t.position))
                surfaces[t.term][s] += 1
        docs.append(toks)
    postings: dict[str, list[int]] = defaultdict(list)
    for i, toks in enumerate(docs):
        for term in {t for t, _, _ in toks}:
            postings[term].append(i)
    terms = sorted(postings)
    if len(terms) < 3:
        raise ValueError(f"corpus {corpus!r} at size {size_label(size)} has too few terms to query")
    surface = {t: surfaces[t].most_common(1)[0][0] for t in terms}
    df = np.array([len(postings[t]) for t in terms], dtype=float)
    p = df / df.sum()

    out: dict[str, list[Query]] = {}
    for n in (1, 2, 3):
        out[f"{n}-term"] = [
            Query(f"{n}-term", tuple(surface[terms[j]] for j in nrng.choice(len(terms), n, replace=False, p=p)))
            for _ in range(per_shape)
        ]
    phrases = []
    while len(phrases) < per_shape:
        toks = docs[rng.randrange(len(docs))]
        pairs = [(a[1], b[1]) for a, b in itertools.pairwise(toks) if b[2] == a[2] + 1 and a[0] != b[0]]
        if pairs:
            phrases.append(Query("phrase", rng.choice(pairs)))
    out["phrase"] = phrases
    booleans = []
    while len(booleans) < per_shape:
        a = terms[int(nrng.choice(len(terms), p=p))]
        others = sorted({t for t, _, _ in docs[rng.choice(postings[a])]} - {a})
        if others:
            booleans.append(Query("boolean", (surface[a], surface[rng.choice(others)])))
    out["boolean"] = booleans
    return out


# -- engines -------------------------------------------------------------------------------------------

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
    name = ""
    languages: tuple[str, ...] = ("en", "id")
    shapes: tuple[str, ...] = SHAPES
    can_search = True
    can_update = True
    can_snippet = False
    same_analysis = True  # analyzes exactly like telusur (so every generated query must hit)
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

    def build(self, passages: Sequence[Passage], lang: str, path: Path) -> int:
        """Build an index of ``passages`` from scratch at ``path``; the number of documents it holds."""
        raise NotImplementedError

    def add(self, path: Path, passages: Sequence[Passage], lang: str) -> int:
        """Add ``passages`` to the index at ``path`` and commit; the number of documents after."""
        raise Unsupported

    def open(self, path: Path, lang: str) -> Opened:
        raise Unsupported


class BaselineEngine(Engine):
    name = "baseline"
    can_search = can_update = False
    same_analysis = False
    module = "Stemmer"

    def build(self, passages: Sequence[Passage], lang: str, path: Path) -> int:
        analyze = baseline_analyzer(lang)
        n = 0
        for p in passages:
            analyze(p.text)
            n += 1
        return n


# whoosh ---------------------------------------------------------------------------------------------


class WhooshEngine(Engine):
    name = "whoosh"
    can_snippet = True
    same_analysis = False
    module = "whoosh"
    preload = ("whoosh.index", "whoosh.fields", "whoosh.qparser", "whoosh.analysis", "analyzers", "Stemmer")
    limitmb = 256

    def _schema(self, lang: str) -> Any:
        from whoosh.fields import ID, STORED, TEXT, Schema

        return Schema(id=ID(stored=True, unique=True), title=STORED, text=STORED, body=TEXT(whoosh_analyzer(lang)))

    def _write(self, ix: Any, passages: Sequence[Passage]) -> int:
        w = ix.writer(limitmb=self.limitmb)
        for p in passages:
            w.add_document(id=p.id, title=p.title, text=p.text, body=f"{p.text}\n{p.title}")
        w.commit()
        return ix.doc_count()

    def build(self, passages: Sequence[Passage], lang: str, path: Path) -> int:
        from whoosh.index import create_in

        path.mkdir(parents=True, exist_ok=True)
        return self._write(create_in(str(path), self._schema(lang)), passages)

    def add(self, path: Path, passages: Sequence[Passage], lang: str) -> int:
        from whoosh.index import open_dir

        return self._write(open_dir(str(path)), passages)

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


# tantivy --------------------------------------------------------------------------------------------


class TantivyEngine(Engine):
    """tantivy-py given telusur's terms as space-joined text in a ``whitespace``-tokenized field."""

    name = "tantivy"
    module = "tantivy"
    preload = ("analyzers",)
    fields: tuple[str, ...] = ("terms",)
    heap_size = 256_000_000

    def schema(self) -> Any:
        import tantivy

        sb = tantivy.SchemaBuilder()
        sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
        sb.add_text_field("terms", stored=False, tokenizer_name="whitespace", index_option="position")
        sb.add_bytes_field("title", stored=True)  # stored only: tantivy-py text fields are always indexed
        sb.add_bytes_field("text", stored=True)
        return sb.build()

    def document(self, p: Passage, terms: Callable[[Passage], list[str]]) -> Any:
        import tantivy

        doc = tantivy.Document()
        doc.add_text("id", p.id)
        doc.add_text("terms", " ".join(terms(p)))
        doc.add_bytes("title", p.title.encode())
        doc.add_bytes("text", p.text.encode())
        return doc

    def _write(self, index: Any, passages: Sequence[Passage], lang: str) -> int:
        writer = index.writer(heap_size=self.heap_size)
        terms = passage_terms(lang)
        for p in passages:
            writer.add_document(self.document(p, terms))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        return index.searcher().num_docs

    def build(self, passages: Sequence[Passage], lang: str, path: Path) -> int:
        import tantivy

        path.mkdir(parents=True, exist_ok=True)
        return self._write(tantivy.Index(self.schema(), path=str(path), reuse=False), passages, lang)

    def add(self, path: Path, passages: Sequence[Passage], lang: str) -> int:
        import tantivy

        return self._write(tantivy.Index.open(str(path)), passages, lang)

    def query_text(self, query: Query, lang: str) -> str:
        columns = telusur_analyzer(lang).analyze_columns
        return query.render([columns(w)[0][0] for w in query.words])

    def open(self, path: Path, lang: str) -> Opened:
        return _TantivyOpened(self, path, lang)


class TantivyEnStemEngine(TantivyEngine):
    """tantivy-py analyzing English itself with its built-in ``en_stem`` tokenizer."""

    name = "tantivy-en_stem"
    languages = ("en",)
    can_snippet = True
    same_analysis = False
    fields = ("text", "title")

    def schema(self) -> Any:
        import tantivy

        sb = tantivy.SchemaBuilder()
        sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
        sb.add_text_field("title", stored=True, tokenizer_name="en_stem", index_option="position")
        sb.add_text_field("text", stored=True, tokenizer_name="en_stem", index_option="position")
        return sb.build()

    def document(self, p: Passage, terms: Callable[[Passage], list[str]]) -> Any:
        import tantivy

        doc = tantivy.Document()
        doc.add_text("id", p.id)
        doc.add_text("title", p.title)
        doc.add_text("text", p.text)
        return doc

    def query_text(self, query: Query, lang: str) -> str:
        return query.render()


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _TantivyOpened(Opened):
    def __init__(self, engine: TantivyEngine, path: Path, lang: str) -> None:
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


# bm25s ----------------------------------------------------------------------------------------------


class Bm25sEngine(Engine):
    name = "bm25s"
    shapes = ("1-term", "2-term", "3-term")  # no positions: no phrases, no boolean operators
    can_update = False  # bm25s rebuilds its matrix from scratch; there is no add
    module = "bm25s"
    preload = ("analyzers",)

    def build(self, passages: Sequence[Passage], lang: str, path: Path) -> int:
        import bm25s

        terms = passage_terms(lang)
        retriever = bm25s.BM25(method="lucene")
        retriever.index([terms(p) for p in passages], show_progress=False)
        retriever.save(str(path), corpus=[{"id": p.id, "text": p.text} for p in passages], show_progress=False)
        return int(retriever.scores["num_docs"])

    def open(self, path: Path, lang: str) -> Opened:
        return _Bm25sOpened(path, lang)


class _Bm25sOpened(Opened):
    def __init__(self, path: Path, lang: str) -> None:
        import bm25s

        self.retriever = bm25s.BM25.load(str(path), load_corpus=True, mmap=True, show_progress=False)
        self.terms = telusur_terms(lang)

    def search(self, query: Query) -> list[Hit]:
        if query.shape not in Bm25sEngine.shapes:
            raise Unsupported
        tokens = [t for w in query.words for t in self.terms(w)]
        docs, scores = self.retriever.retrieve([tokens], k=10, show_progress=False)
        return [(d["id"], d["text"]) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


# telusur --------------------------------------------------------------------------------------------


class TelusurEngine(Engine):
    name = "telusur"
    can_snippet = True
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

    def _write(self, index: Any, passages: Sequence[Passage], lang: str) -> int:
        from search import Document

        with index.writer() as w:  # add_many: the parent validates and batches, two worker processes analyze
            w.add_many(Document(id=p.id, text=p.text, title=p.title, lang=lang) for p in passages)
        return len(index)

    def build(self, passages: Sequence[Passage], lang: str, path: Path) -> int:
        from search import Index

        index = Index.create(path, passage_words=self.passage_words, default_language=lang)
        return self._write(index, passages, lang)

    def add(self, path: Path, passages: Sequence[Passage], lang: str) -> int:
        from search import Index

        return self._write(Index.open(path), passages, lang)

    def open(self, path: Path, lang: str) -> Opened:
        return _TelusurOpened(path)


class _TelusurOpened(Opened):
    def __init__(self, path: Path) -> None:
        from search import Index

        self.index = Index.open(path)

    def search(self, query: Query) -> list[Hit]:
        return [(_hit_id(h), h.text) for h in self.index.search(query.render(), k=10)]

    def prepare_snippets(self, query: Query) -> Any:
        return self.index.search(query.render(), k=10)

    def snippets(self, prepared: Any) -> list[str]:
        return [h.snippet for h in prepared]

    def close(self) -> None:
        close = getattr(self.index, "close", None)
        if close is not None:
            close()


def _hit_id(hit: Any) -> str:
    for attr in ("id", "doc_id", "passage_id"):
        v = getattr(hit, attr, None)
        if v is not None:
            return str(v)
    return ""


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        BaselineEngine(),
        WhooshEngine(),
        TantivyEngine(),
        TantivyEnStemEngine(),
        Bm25sEngine(),
        TelusurEngine(),
    )
}


# -- the build subprocess ------------------------------------------------------------------------------


def dir_size(path: Path) -> int:
    """Bytes of all files under ``path`` (0 when it does not exist)."""
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_build(engine: str, corpus: str, size: int | None, outdir: Path) -> dict[str, Any]:
    """Build in a fresh interpreter (``python -m benchmarks._build``) so peak RSS is the engine's own;
    the index lands in ``outdir/index``. Returns the subprocess's JSON report."""
    outdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("TELUSUR_DATA", str(data_dir()))
    cmd = [sys.executable, "-m", "benchmarks._build", engine, corpus, size_label(size), str(outdir)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"build subprocess failed ({' '.join(cmd[2:])}), exit {proc.returncode}:\n{tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- timing helpers ------------------------------------------------------------------------------------


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 and mean of latencies, in milliseconds (nearest-rank on the sorted samples)."""
    if not seconds:
        return {}
    s = sorted(seconds)

    def rank(q: float) -> float:
        return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))] * 1000

    return {
        "p50_ms": rank(0.50),
        "p95_ms": rank(0.95),
        "p99_ms": rank(0.99),
        "mean_ms": statistics.fmean(s) * 1000,
        "samples": len(s),
    }


class Recorder:
    """Wraps a call so each benchmark round's own duration and result are kept (for percentiles and for
    asserting on what the benchmarked call returned)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.seconds: list[float] = []
        self.results: list[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = self.fn(*args, **kwargs)
        self.seconds.append(time.perf_counter() - t0)
        self.results.append(out)
        return out

    def drop(self, n: int) -> None:
        """Forget the first ``n`` rounds (the warm-up)."""
        del self.seconds[:n], self.results[:n]


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    return path


# -- cases and the session's shared state --------------------------------------------------------------


def engine_cases(kind: str, *, with_shapes: bool = False) -> list[Any]:
    """pytest params (engine, corpus, size[, shape]) for a group: ``build``, ``search``, ``snippet`` or
    ``update``; cases whose data or engine is missing are kept, marked skip with the reason."""
    import pytest

    wanted = {
        "build": lambda e: True,
        "search": lambda e: e.can_search,
        "snippet": lambda e: e.can_snippet,
        "update": lambda e: e.can_update,
    }[kind]
    out = []
    for size in sizes():
        for corpus in CORPORA:
            for eng in ENGINES.values():
                if corpus not in eng.languages or not wanted(eng):
                    continue
                reason = missing_data_reason(corpus) or eng.unavailable()
                marks = [pytest.mark.skip(reason=reason)] if reason else []
                base = f"{eng.name}-{corpus}-{size_label(size)}"
                if with_shapes:
                    out += [
                        pytest.param(eng.name, corpus, size, shape, id=f"{base}-{shape}", marks=marks)
                        for shape in eng.shapes
                    ]
                else:
                    out.append(pytest.param(eng.name, corpus, size, id=base, marks=marks))
    return out


ANALYZE_PASSAGES = 10_000


def analysis_cases() -> list[Any]:
    """pytest params (analysis, corpus, size) for the ``analyze`` group: one size, the smallest
    configured, at most 10k passages (analysis cost per passage does not depend on corpus size)."""
    import pytest

    size = min([ANALYZE_PASSAGES] + [s for s in sizes() if s is not None])
    out = []
    for corpus in CORPORA:
        for name, (languages, _) in ANALYSES.items():
            if corpus in languages:
                marks = []
                if reason := missing_data_reason(corpus):
                    marks.append(pytest.mark.skip(reason=reason))
                out.append(pytest.param(name, corpus, size, id=f"{name}-{corpus}-{size}", marks=marks))
    return out


class Lab:
    """The session's built indexes, opened indexes and queries, each made once and shared by the groups."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.builds: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._opened: dict[tuple[str, str, str], Opened] = {}

    def passages(self, corpus: str, size: int | None) -> list[Passage]:
        return load_passages(corpus, size)

    def built(self, engine: str, corpus: str, size: int | None) -> dict[str, Any]:
        """The subprocess build report (index path, build time, peak RSS, disk size) for a case."""
        key = (engine, corpus, size_label(size))
        if key not in self.builds:
            report = run_build(engine, corpus, size, self.workdir / "-".join(key))
            report["tokens"] = term_count(corpus, size)
            report["tokens_per_s"] = report["tokens"] / report["build_s"] if report["build_s"] else None
            self.builds[key] = report
        return self.builds[key]

    def opened(self, engine: str, corpus: str, size: int | None) -> Opened:
        key = (engine, corpus, size_label(size))
        if key not in self._opened:
            path = Path(self.built(engine, corpus, size)["path"])
            self._opened[key] = ENGINES[engine].open(path, corpus)
        return self._opened[key]

    def queries(self, corpus: str, size: int | None) -> dict[str, list[Query]]:
        return make_queries(corpus, size, queries_per_shape())

    def close(self) -> None:
        for o in self._opened.values():
            o.close()
        self._opened.clear()
