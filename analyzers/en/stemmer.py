"""English stemmer: Snowball `english` through PyStemmer. A pure `str -> str` that knows nothing of tokens."""

from __future__ import annotations

import threading

import Stemmer

# PyStemmer objects keep state while stemming and "must not be called concurrently", so each thread
# gets its own (searches run in many threads while a writer indexes).
_LOCAL = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    s = Stemmer.Stemmer("english")
    # PyStemmer's own word cache is off: each analyzer caches whole runs already, so PyStemmer only sees
    # words it has not stemmed before, and its cache bookkeeping made stemming those about 5x slower.
    s.maxCacheSize = 0
    _LOCAL.stemmer = s
    return s


def stem(word: str) -> str:
    """The Snowball english stem of one normalized (lowercased) word."""
    try:
        s = _LOCAL.stemmer
    except AttributeError:
        s = _stemmer()
    return s.stemWord(word)
