"""Indonesian stemmer: Snowball `indonesian` through PyStemmer. A pure `str -> str` that knows nothing of tokens.

``repaired(repairs)`` is the same stemmer with the stems that mangle a root mapped back to it
(``stem_repairs.txt``: ``merdeka`` -> ``rdeka`` becomes ``merdeka``, the stem of ``kemerdekaan``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from analyzers.base import snowball_stemmer, stem_words

stem = snowball_stemmer("indonesian")


def repaired(repairs: Mapping[str, str], stemmer: Callable[[str], str] = stem) -> Callable[[str], str]:
    """``stemmer`` whose stems found in ``repairs`` are replaced by their root."""
    table = dict(repairs)
    get = table.get

    def fixed(word: str) -> str:
        s = stemmer(word)
        return get(s, s)

    def many(words: list[str]) -> list[str]:
        return [get(s, s) for s in stem_words(stemmer, words)]

    fixed.__doc__ = f"{stemmer.__doc__} Mangled stems repaired ({len(table)} roots)."
    fixed.many = many  # type: ignore[attr-defined]  # see analyzers.base.stem_words
    return fixed
