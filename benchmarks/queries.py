"""Benchmark queries: five shapes drawn once per corpus size with a fixed seed, so every engine answers
the same queries (see ``make_queries`` for how terms are chosen)."""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from benchmarks.analysis import telusur_analyzer
from benchmarks.config import SEED, size_label
from benchmarks.corpora import CORPORA, load_passages

SHAPES = ("1-term", "2-term", "3-term", "phrase", "boolean")


@dataclass(frozen=True, slots=True)
class Query:
    """One benchmark query: its shape and its surface words (lowercase, alphabetic, not stopwords)."""

    shape: str
    words: tuple[str, ...]

    def render(self, words: Sequence[str] | None = None) -> str:
        """The query in the user syntax telusur, whoosh and tantivy share; ``words`` replaces the surface
        words (engines fed pre-analyzed terms pass the terms)."""
        w = self.words if words is None else tuple(words)
        if self.shape == "phrase":
            return f'"{w[0]} {w[1]}"'
        if self.shape == "boolean":
            return f"{w[0]} AND {w[1]}"
        return " ".join(w)


QUERY_SAMPLE = 5000


@cache
def make_queries(corpus: str, size: int | None, per_shape: int, seed: int = SEED) -> dict[str, list[Query]]:
    """Queries for a corpus size, drawn with a fixed seed from (up to) 5,000 of its passages.

    Terms are drawn with probability proportional to their document frequency (telusur's stopwords are
    never terms); a term is only used when its most common surface form is alphabetic and stems to it
    with plain PyStemmer too, so every engine's own analysis finds the same term. Phrases are adjacent
    word pairs of a passage; a boolean query ``a AND b`` takes ``b`` from a passage containing ``a``.
    """
    import numpy as np
    import Stemmer

    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    passages = load_passages(corpus, size)
    sample = passages if len(passages) <= QUERY_SAMPLE else rng.sample(passages, QUERY_SAMPLE)
    an = telusur_analyzer(corpus)
    stem = Stemmer.Stemmer(CORPORA[corpus].stemmer).stemWord

    surfaces: dict[str, Counter[str]] = defaultdict(Counter)
    docs: list[list[tuple[str, str, int]]] = []  # per passage: (term, surface, position)
    for p in sample:
        toks = []
        for t in an.analyze(p.text):
            s = p.text[t.start : t.end].lower()
            if s.isalpha() and stem(s) == t.term:
                toks.append((t.term, s, t.position))
                surfaces[t.term][s] += 1
        docs.append(toks)
    postings: dict[str, list[int]] = defaultdict(list)
    for i, toks in enumerate(docs):
        for term in {t for t, _, _ in toks}:
            postings[term].append(i)
    terms = sorted(postings)
    if len(terms) < 3:
        raise ValueError(f"corpus {corpus!r} at size {size_label(size)} has too few terms to query")
    surface = {t: surfaces[t].most_common(1)[0][0] for t in terms}
    df = np.array([len(postings[t]) for t in terms], dtype=float)
    p = df / df.sum()

    out: dict[str, list[Query]] = {}
    for n in (1, 2, 3):
        out[f"{n}-term"] = [
            Query(f"{n}-term", tuple(surface[terms[j]] for j in nrng.choice(len(terms), n, replace=False, p=p)))
            for _ in range(per_shape)
        ]
    phrases = []
    while len(phrases) < per_shape:
        toks = docs[rng.randrange(len(docs))]
        pairs = [(a[1], b[1]) for a, b in itertools.pairwise(toks) if b[2] == a[2] + 1 and a[0] != b[0]]
        if pairs:
            phrases.append(Query("phrase", rng.choice(pairs)))
    out["phrase"] = phrases
    booleans = []
    while len(booleans) < per_shape:
        a = terms[int(nrng.choice(len(terms), p=p))]
        others = sorted({t for t, _, _ in docs[rng.choice(postings[a])]} - {a})
        if others:
            booleans.append(Query("boolean", (surface[a], surface[rng.choice(others)])))
    out["boolean"] = booleans
    return out
