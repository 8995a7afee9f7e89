"""telusur's text analysis: text in, tokens out. Knows nothing of indexes.

``analyzers.get("id")`` / ``analyzers.get("en")`` give the registered analyzers by name; an index stores
these names and versions, never analyzer objects. ``detect_language(text)`` tells Indonesian from English.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analyzers import en as _en
from analyzers import id as _id
from analyzers.base import Analyzer, Token, normalize_word, tokenize
from analyzers.language import (
    LANGUAGES,
    detect_from_tokens,
    detect_language,
    language_probabilities,
    stopword_evidence,
)

_FACTORIES: dict[str, Callable[..., Analyzer]] = {"id": _id.make_analyzer, "en": _en.make_analyzer}
_DEFAULTS: dict[str, Analyzer] = {}


def versions(name: str) -> tuple[str, ...]:
    """The analyzer versions of ``name`` this code can rebuild (oldest first; the last is current)."""
    return {"id": _id.VERSIONS, "en": _en.VERSIONS}[name]


def names() -> list[str]:
    """The registered analyzer names."""
    return sorted(_FACTORIES)


def registered(name: object) -> bool:
    """Whether ``name`` is a registered analyzer name (``names()`` without building a sorted list: a
    check made for every document added)."""
    return isinstance(name, str) and name in _FACTORIES


def get(name: str, **options: Any) -> Analyzer:
    """The analyzer registered as ``name`` ("id" or "en").

    Without options the shared default instance is returned (its stem cache is shared by every caller);
    options (``stem_words``, ``stopwords``, ``reduplication``, ``index_stopwords``, ``compounds``,
    ``stem_repairs``) build a new analyzer for ablations; ``version`` rebuilds an older version's
    analysis for an index made with it, and ``protected_words`` replaces the shipped list of words
    never stemmed.
    """
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown analyzer {name!r}; choose one of: {', '.join(names())}") from None
    if options:
        return factory(**options)
    if name not in _DEFAULTS:
        _DEFAULTS[name] = factory()
    return _DEFAULTS[name]


__all__ = [
    "LANGUAGES",
    "Analyzer",
    "Token",
    "detect_from_tokens",
    "detect_language",
    "get",
    "language_probabilities",
    "names",
    "normalize_word",
    "registered",
    "stopword_evidence",
    "tokenize",
    "versions",
]
