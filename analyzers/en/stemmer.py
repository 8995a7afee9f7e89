"""English stemmer: Snowball `english` through PyStemmer. A pure `str -> str` that knows nothing of tokens."""

from __future__ import annotations

import Stemmer

_STEMMER = Stemmer.Stemmer("english")


def stem(word: str) -> str:
    """The Snowball english stem of one normalized (lowercased) word."""
    return _STEMMER.stemWord(word)
