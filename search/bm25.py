"""BM25 as Lucene (>= 8) defines it, as pure functions, and the ``Explanation`` tree that shows its parts.

    idf(N, df)   = ln(1 + (N - df + 0.5) / (df + 0.5))
    score(term)  = idf * (tf / (tf + k1 * (1 - b + b * dl / avgdl)) + delta)

Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond" (2009); Lucene's
BM25Similarity drops the constant (k1 + 1) factor, which does not change the order. ``delta`` is
BM25+'s lower bound (Lv & Zhai, "Lower-Bounding Term Frequency Normalization", CIKM 2011): a passage
that has the term scores at least ``delta * idf`` for it, however long the passage, so one more query
word matched outweighs a shorter passage. It is per language (``DELTA``): 0 (plain BM25) for English.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

K1 = 1.2
B = 0.75
# BM25+ lower bound per language, in the units of tf / (tf + norm) (so (k1 + 1) * delta in the paper's).
# Indonesian 0.125: chosen on TyDi-id train and dev (0.05 to 0.45 tried, docs/quality.md); English 0:
# every delta tried lowered SciFact train (0.05: 0.7004, 0.125: 0.6994 against 0.7031).
DELTA: dict[str, float] = {"id": 0.125}


def delta(lang: str) -> float:
    """The BM25+ lower bound of a matching term's tf part in ``lang`` (0.0: plain BM25)."""
    return DELTA.get(lang, 0.0)


def idf(n_passages: int, df: int) -> float:
    """Lucene's BM25 idf: always positive, so a matching term never lowers a score."""
    return math.log(1.0 + (n_passages - df + 0.5) / (df + 0.5))


def length_norms(dl: np.ndarray, avgdl: float, k1: float, b: float) -> np.ndarray:
    """k1 * (1 - b + b * dl / avgdl) for every passage length in ``dl`` (cached per snapshot)."""
    return k1 * (1.0 - b + b * (dl.astype(np.float64) / avgdl))


def term_scores(idf_value: float, tf: np.ndarray, norm: np.ndarray, delta: float = 0.0) -> np.ndarray:
    """Vectorized term score over postings: ``tf`` and the passages' ``length_norms`` side by side (an
    integer ``tf`` is cast to float64 by each operation, exactly: no cast of its own), plus BM25+'s
    ``delta`` in the tf part (0.0 leaves plain BM25's values bit for bit)."""
    if delta:
        return idf_value * (tf / (tf + norm) + delta)
    return idf_value * (tf / (tf + norm))


@dataclass(frozen=True)
class LangStats:
    """BM25 collection statistics of one language: live passages and their total length."""

    n_passages: int
    total_length: int

    @property
    def avgdl(self) -> float:
        return self.total_length / self.n_passages if self.n_passages else 1.0


class CollectionStatistics(Protocol):
    """What BM25 needs from a collection (tantivy's ``Bm25StatisticsProvider``): per language N and the
    total length (so avgdl), and the df of a term key. A query scores through this interface: an index
    uses its own snapshot's, a shard of a sharded index is given the sums over every shard, so its
    scores equal those of one index holding every document."""

    def lang_stats(self, lang: str) -> LangStats: ...

    def df(self, key: str) -> int: ...


@dataclass(frozen=True)
class FixedStatistics:
    """Statistics given from outside: per-language ``LangStats`` and the df of the keys a query needs.

    Plain data (``to_json``/``from_json``) so it can travel to a shard in another process or machine.
    A key it was not given is a programming error (the coordinator gathers every key the query uses).
    """

    langs: dict[str, LangStats]
    dfs: dict[str, int]

    def lang_stats(self, lang: str) -> LangStats:
        return self.langs.get(lang, LangStats(0, 0))

    def df(self, key: str) -> int:
        return self.dfs[key]

    @classmethod
    def total(cls, parts: Iterable[FixedStatistics]) -> FixedStatistics:
        """The statistics of a union of disjoint collections: every count summed."""
        langs: dict[str, list[int]] = {}
        dfs: dict[str, int] = {}
        for part in parts:
            for lang, st in part.langs.items():
                t = langs.setdefault(lang, [0, 0])
                t[0] += st.n_passages
                t[1] += st.total_length
            for key, df in part.dfs.items():
                dfs[key] = dfs.get(key, 0) + df
        return cls({k: LangStats(*v) for k, v in sorted(langs.items()) if v[0]}, dfs)

    def to_json(self) -> dict[str, Any]:
        return {"langs": {k: [v.n_passages, v.total_length] for k, v in self.langs.items()}, "dfs": dict(self.dfs)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FixedStatistics:
        return cls({k: LangStats(int(v[0]), int(v[1])) for k, v in data["langs"].items()}, dict(data["dfs"]))


@dataclass
class Explanation:
    """A score and how it was made: ``value`` = f(``details``), labelled with the formula."""

    value: float
    description: str
    details: list[Explanation] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A plain-JSON form of the tree."""
        return {"value": self.value, "description": self.description, "details": [d.to_dict() for d in self.details]}

    def format(self, indent: int = 0) -> str:
        """The tree as indented text, one part a line."""
        lines = [f"{'  ' * indent}{self.value:.6g} = {self.description}"]
        lines.extend(d.format(indent + 1) for d in self.details)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def explain_term(
    label: str,
    n_passages: int,
    df: int,
    tf: float,
    dl: int,
    avgdl: float,
    k1: float,
    b: float,
    weight: float = 1.0,
    delta: float = 0.0,
) -> Explanation:
    """The parts of one term's (or phrase's) score for one passage, with the same arithmetic as scoring."""
    idf_value = idf(n_passages, df)
    norm = k1 * (1.0 - b + b * (dl / avgdl))
    tf_part = tf / (tf + norm) + delta if delta else tf / (tf + norm)
    value = weight * idf_value * tf_part
    idf_exp = Explanation(
        idf_value,
        "idf, computed as ln(1 + (N - df + 0.5) / (df + 0.5)) from:",
        [
            Explanation(float(n_passages), "N, live passages of this language"),
            Explanation(float(df), "df, live passages with the term"),
        ],
    )
    tf_details = [
        Explanation(float(tf), "tf, occurrences in the passage"),
        Explanation(k1, "k1, term saturation"),
        Explanation(b, "b, length normalization"),
        Explanation(float(dl), "dl, passage length in terms (title included)"),
        Explanation(avgdl, "avgdl, average passage length of this language"),
    ]
    formula = "tf / (tf + k1 * (1 - b + b * dl / avgdl))"
    if delta:
        formula += " + delta"
        tf_details.append(Explanation(delta, "delta, the lower bound of a matching term (BM25+)"))
    tf_exp = Explanation(tf_part, f"{formula} from:", tf_details)
    parts = [idf_exp, tf_exp]
    if weight != 1.0:
        parts.insert(0, Explanation(weight, "language weight of the query"))
    return Explanation(value, f"weight({label}), product of:", parts)
