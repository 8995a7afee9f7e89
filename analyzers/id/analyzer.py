"""The recommended Indonesian analysis chain: Unicode tokenizer, NFKC + casefold, stopwords, Snowball stems."""

from __future__ import annotations

from pathlib import Path

from analyzers.base import Analyzer, load_wordlist

from .stemmer import stem

#: Bump when the terms produced for some input change (tokenizer, stopwords, stemmer options).
VERSION = "2"

STOPWORDS = load_wordlist(Path(__file__).with_name("stopwords.txt"))


def make_analyzer(*, stem_words: bool = True, stopwords: bool = True, reduplication: bool = True) -> Analyzer:
    """A new Indonesian analyzer; the options exist for ablations (see docs/quality.md)."""
    return Analyzer(
        "id",
        VERSION,
        stopwords=STOPWORDS if stopwords else (),
        stemmer=stem if stem_words else None,
        reduplication=reduplication,
    )
