"""The recommended English analysis chain: Unicode tokenizer, NFKC + casefold, stopwords, Snowball stems."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from analyzers.base import Analyzer, load_wordlist

from .stemmer import stem

#: Bump when the terms produced for some input change (tokenizer, stopwords, stemmer options).
VERSION = "2"
VERSIONS = ("2",)

STOPWORDS = load_wordlist(Path(__file__).with_name("stopwords.txt"))


def make_analyzer(
    *,
    stem_words: bool = True,
    stopwords: bool = True,
    reduplication: bool = True,
    index_stopwords: bool = False,
    protected_words: Iterable[str] | None = None,
    compounds: bool = True,
    stem_repairs: bool = True,
    version: str = VERSION,
) -> Analyzer:
    """A new English analyzer; the options exist for ablations (see docs/quality.md).

    English stopwords stay out of the index by default (``index_stopwords=True`` indexes them and
    drops them from ranked queries only, as the Indonesian analyzer does). ``protected_words``: words
    never stemmed (none by default). ``compounds`` and ``stem_repairs`` are accepted as every analyzer's
    options (English opens no closed compounds and repairs no stems).
    """
    if version not in VERSIONS:
        raise ValueError(f"unknown English analyzer version {version!r}; this telusur has {VERSIONS}")
    return Analyzer(
        "en",
        version,
        stopwords=STOPWORDS if stopwords and not index_stopwords else (),
        query_stopwords=STOPWORDS if stopwords and index_stopwords else (),
        stemmer=stem if stem_words else None,
        reduplication=reduplication,
        protected=protected_words or (),
    )
