"""Index settings, stored in ``meta.json``: passage size, BM25 defaults, default language, analyzers.

Analyzers are stored by name, version and options, never as objects, so an index keeps opening after
code changes; the writer and the searcher both get their analyzers from here, so they always agree.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import analyzers
from analyzers import Analyzer, normalize_word

from . import bm25
from .columns import check_fields
from .errors import IncompatibleIndex, InvalidArgument

ANALYZER_OPTIONS = ("stem_words", "stopwords", "reduplication", "index_stopwords", "compounds", "stem_repairs")


def check_bm25_parameters(k1: object, b: object) -> tuple[float, float]:
    """``(k1, b)`` as floats, or ``InvalidArgument``: k1 finite and >= 0, b in [0, 1].

    Outside these a score can be negative, infinite or NaN, which breaks ranking silently.
    """
    values = []
    for name, value, valid in (("k1", k1, "a finite number >= 0"), ("b", b, "a number in [0, 1]")):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgument(f"{name} must be {valid}, got {value!r}")
        values.append(float(value))
    k1f, bf = values
    if not (math.isfinite(k1f) and k1f >= 0):
        raise InvalidArgument(f"k1 must be a finite number >= 0, got {k1!r}")
    if not (0.0 <= bf <= 1.0):
        raise InvalidArgument(f"b must be a number in [0, 1], got {b!r}")
    return k1f, bf


@dataclass(frozen=True)
class IndexSettings:
    """What an index was built with. ``analyzer_options`` (e.g. ``{"stem_words": False}``) are for ablations."""

    passage_words: int = 120
    k1: float = bm25.K1
    b: float = bm25.B
    default_language: str = "en"
    analyzer_options: dict[str, bool] = field(default_factory=dict)
    #: analyzer name -> the version the index was built with (empty: this code's current versions)
    analyzer_versions: dict[str, str] = field(default_factory=dict)
    #: words no analyzer stems, replacing the shipped Indonesian list; None: the shipped list
    protected_words: tuple[str, ...] | None = None
    #: declared metadata fields (name -> type, see ``columns.FIELD_TYPES``), stored as segment columns
    fields: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.passage_words, bool) or not isinstance(self.passage_words, int) or self.passage_words < 0:
            raise InvalidArgument(f"passage_words must be an integer >= 0, got {self.passage_words!r}")
        check_bm25_parameters(self.k1, self.b)
        if self.default_language not in analyzers.names():
            raise InvalidArgument(f"default_language must be one of {analyzers.names()}, got {self.default_language!r}")
        unknown = set(self.analyzer_options) - set(ANALYZER_OPTIONS)
        if unknown:
            raise InvalidArgument(f"unknown analyzer options {sorted(unknown)}; valid: {list(ANALYZER_OPTIONS)}")
        if self.protected_words is not None:
            words = self.protected_words
            if isinstance(words, str) or not all(isinstance(w, str) and w.strip() for w in words):
                raise InvalidArgument(f"protected_words must be a list of non-empty words, got {words!r}")
            object.__setattr__(self, "protected_words", tuple(sorted({normalize_word(w.strip()) for w in words})))
        for name, version in self.analyzer_versions.items():
            if name not in analyzers.names() or version not in analyzers.versions(name):
                raise IncompatibleIndex(
                    f"index uses analyzer {name!r} version {version!r}, which this telusur cannot reproduce "
                    f"(it has versions {list(analyzers.versions(name)) if name in analyzers.names() else []}); "
                    "rebuild the index"
                )
        object.__setattr__(self, "fields", check_fields(self.fields))
        object.__setattr__(self, "_analyzers", {})

    def analyzer(self, lang: str) -> Analyzer:
        """The analyzer this index uses for ``lang`` (one shared instance per settings object)."""
        cache: dict[str, Analyzer] = self._analyzers  # type: ignore[attr-defined]
        an = cache.get(lang)
        if an is None:
            options: dict[str, Any] = dict(self.analyzer_options)
            version = self.analyzer_versions.get(lang)
            if version is not None and version != analyzers.get(lang).version:
                options["version"] = version  # an index keeps the analysis it was built with
            if self.protected_words is not None:
                options["protected_words"] = self.protected_words
            an = analyzers.get(lang, **options)
            cache[lang] = an
        return an

    def to_json(self) -> dict[str, Any]:
        """The settings plus each analyzer's name and version, for ``meta.json``."""
        out = asdict(self)
        versions = out.pop("analyzer_versions")
        if not self.fields:  # indexes without declared fields keep the settings they always had
            del out["fields"]
        if self.protected_words is None:
            del out["protected_words"]
        else:
            out["protected_words"] = list(self.protected_words)
        out["analyzers"] = {
            name: {"version": versions.get(name, analyzers.get(name).version)} for name in analyzers.names()
        }
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
                protected_words=None if data.get("protected_words") is None else tuple(data["protected_words"]),
                fields=dict(data.get("fields") or {}),
                analyzer_versions={
                    str(name): str(info["version"])
                    for name, info in data.get("analyzers", {}).items()
                    if isinstance(info, dict) and "version" in info
                },
            )
        except (KeyError, TypeError, ValueError) as e:
            raise IncompatibleIndex(f"index settings cannot be read: {e}") from None


def analyzer_versions_match(data: dict[str, Any]) -> bool:
    """Whether the index was built with the analyzer versions this code has (else: consider a rebuild)."""
    stored = data.get("analyzers", {})
    return all(stored.get(n, {}).get("version") == analyzers.get(n).version for n in analyzers.names())
