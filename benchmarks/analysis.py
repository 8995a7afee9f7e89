"""Analysis chains (text to terms) as each engine runs them, cold, for the ``analyze`` group and for the
analysis column of the ``index`` group.

* ``baseline``: regex ``\\w+`` split + lower + PyStemmer ``stemWords``: the single-core analysis ceiling
  for any engine analyzing in Python.
* ``telusur-columns`` / ``telusur-tokens``: telusur's analyzer as the writer runs it (term columns) and
  as a caller sees it (token objects).
* ``whoosh``: whoosh's chain with telusur's stopwords and PyStemmer.
* ``tantivy-en_stem``: tantivy's own ``en_stem`` chain (simple tokenizer, remove_long 40, lowercase,
  English stemmer), called from Python.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

from benchmarks.corpora import CORPORA, Passage, load_passages

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


def passage_terms(lang: str) -> Callable[[Passage], list[str]]:
    """A passage's terms by telusur's analysis: the text's, then the title's (what engines fed
    pre-analyzed terms index)."""
    terms = telusur_terms(lang)
    return lambda p: terms(p.text) + terms(p.title) if p.title else terms(p.text)


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


def _cold(make: Callable[[], Callable[[str], Sequence[Any]]]) -> Callable[[str], Sequence[Any]]:
    reset_analysis_caches()
    return make()


def _whoosh_texts(an: Any) -> Callable[[str], list[str]]:
    return lambda text: [t.text for t in an(text)]


ANALYSES: dict[str, tuple[tuple[str, ...], Callable[[str], Callable[[str], Sequence[Any]]]]] = {
    # name -> (languages, factory(lang) -> text -> tokens); each factory returns a cold analyzer
    "baseline": (("en", "id"), baseline_analyzer),
    "telusur-columns": (("en", "id"), lambda lang: _cold(lambda: telusur_terms(lang))),
    "telusur-tokens": (("en", "id"), lambda lang: _cold(lambda: telusur_analyzer(lang).analyze)),
    "whoosh": (("en", "id"), lambda lang: _whoosh_texts(whoosh_analyzer(lang))),
    "tantivy-en_stem": (("en",), lambda lang: tantivy_en_stem_analyzer().analyze),
}


@cache
def analysis_seconds(analysis: str, corpus: str, size: int | None) -> float:
    """Seconds one core takes to analyze the text and title of every passage of a size with a cold
    ``analysis`` chain: the analysis share of an engine's build, reported as its own column."""
    analyze = ANALYSES[analysis][1](corpus)
    passages = load_passages(corpus, size)
    t0 = time.perf_counter()
    for p in passages:
        analyze(p.text)
        if p.title:
            analyze(p.title)
    return time.perf_counter() - t0


@cache
def _term_count(corpus: str, size: int | None) -> int:
    terms = passage_terms(corpus)
    return sum(len(terms(p)) for p in load_passages(corpus, size))


def term_count(corpus: str, size: int | None) -> int:
    """Indexed terms (telusur's analysis of text and title, stopwords removed): the token count behind
    every engine's tokens/s, so the figures compare."""
    return _term_count(corpus, size)
