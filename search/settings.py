"""Index settings, stored in ``meta.json``: passage size, BM25 defaults, default language, analyzers.

Analyzers are stored by name, version and options, never as objects, so an index keeps opening after
code changes; the writer and the searcher both get their analyzers from here, so they always agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import analyzers
from analyzers import Analyzer

from . import bm25
from .errors import IncompatibleIndex

ANALYZER_OPTIONS = ("stem_words", "stopwords", "reduplication")


@dataclass(frozen=True)
class IndexSettings:
    """What an index was built with. ``analyzer_options`` (e.g. ``{"stem_words": False}``) are for ablations."""

    passage_words: int = 120
    k1: float = bm25.K1
    b: float = bm25.B
    default_language: str = "en"
    analyzer_options: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.passage_words, int) or self.passage_words < 0:
            raise ValueError(f"passage_words must be an integer >= 0, got {self.passage_words!r}")
        if not (self.k1 >= 0):
            raise ValueError(f"k1 must be >= 0, got {self.k1!r}")
        if not (0.0 <= self.b <= 1.0):
            raise ValueError(f"b must be in [0, 1], got {self.b!r}")
        if self.default_language not in analyzers.names():
            raise ValueError(f"default_language must be one of {analyzers.names()}, got {self.default_language!r}")
        unknown = set(self.analyzer_options) - set(ANALYZER_OPTIONS)
        if unknown:
            raise ValueError(f"unknown analyzer options {sorted(unknown)}; valid: {list(ANALYZER_OPTIONS)}")
        object.__setattr__(self, "_analyzers", {})

    def analyzer(self, lang: str) -> Analyzer:
        """The analyzer this index uses for ``lang`` (one shared instance per settings object)."""
        cache: dict[str, Analyzer] = self._analyzers  # type: ignore[attr-defined]
        an = cache.get(lang)
        if an is None:
            an = analyzers.get(lang, **self.analyzer_options)
            cache[lang] = an
        return an

    def to_json(self) -> dict[str, Any]:
        """The settings plus each analyzer's name and version, for ``meta.json``."""
        out = asdict(self)
        out["analyzers"] = {name: {"version": analyzers.get(name).version} for name in analyzers.names()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexSettings:
        """Settings read back from ``meta.json``; an analyzer this code does not know is an error."""
        for name in data.get("analyzers", {}):
            if name not in analyzers.names():
                raise IncompatibleIndex(f"index uses analyzer {name!r}, which this telusur does not have")
        try:
            return cls(
                passage_words=int(data["passage_words"]),
                k1=float(data["k1"]),
                b=float(data["b"]),
                default_language=str(data["default_language"]),
                analyzer_options=dict(data.get("analyzer_options", {})),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise IncompatibleIndex(f"index settings cannot be read: {e}") from None


def analyzer_versions_match(data: dict[str, Any]) -> bool:
    """Whether the index was built with the analyzer versions this code has (else: consider a rebuild)."""
    stored = data.get("analyzers", {})
    return all(stored.get(n, {}).get("version") == analyzers.get(n).version for n in analyzers.names())
