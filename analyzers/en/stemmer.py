"""English stemmer: Snowball `english` through PyStemmer. A pure `str -> str` that knows nothing of tokens."""

from __future__ import annotations

from analyzers.base import snowball_stemmer

stem = snowball_stemmer("english")
