"""Indonesian stemmer: Snowball `indonesian` through PyStemmer. A pure `str -> str` that knows nothing of tokens."""

from __future__ import annotations

import Stemmer

_STEMMER = Stemmer.Stemmer("indonesian")
# PyStemmer's own word cache is off: each analyzer caches whole runs already, so PyStemmer would only see
# words it has not stemmed before, and its cache bookkeeping made stemming those about 5x slower.
_STEMMER.maxCacheSize = 0


def stem(word: str) -> str:
    """The Snowball indonesian stem of one normalized (lowercased) word."""
    return _STEMMER.stemWord(word)
