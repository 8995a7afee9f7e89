"""Weights: a query node bound to one language's analysis and statistics, once per search.

Lucene's ``Query -> Weight -> Scorer``: a ``Query`` (``search.query``) is what the user asked; a
``Weight`` is that node analyzed under one language and bound to the statistics it scores with (idf,
N, avgdl: the snapshot's own, or a sharded index's global ``CollectionStatistics``), computed once
however many segments it runs over; ``Weight.scorer(si)`` gives the ``Scorer`` (``search.scorers``)
that reads one segment's postings. ``QueryWeight`` is the root over every language a query searches,
and ``language_weights`` how much each language's scores count.

Extension points: ``WEIGHT_FACTORIES`` maps a query node type to a function building its weight (a
new node type, say an expanded fuzzy term, registers one); a ``BooleanQuery`` clause with occurrence
``FILTER`` restricts the passages without adding to their scores (``MaskWeight`` turns any per-segment
passage mask into such a clause).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

import analyzers

from . import bm25, filters
from .bm25 import Explanation, LangStats
from .errors import InvalidArgument
from .query import (
    FILTER,
    MAX_NESTING,
    MAX_QUERY_TERMS,
    MUST,
    MUST_NOT,
    SHOULD,
    BooleanQuery,
    FieldFilter,
    ParsedQuery,
    PhraseQuery,
    Query,
    TermQuery,
    parse_query,
)
from .scorers import BooleanScorer, PhraseScorer, Scorer, TermScorer, Vec
from .searcher import AnalyzedTerm

if TYPE_CHECKING:
    from .searcher import QueryContext

MIN_LANGUAGE_WEIGHT = 1e-3


class Weight:
    """A query node bound to one language (``lang``) of one search (``ctx``: analysis, postings and
    statistics); ``scorer(si)`` reads segment ``si``."""

    __slots__ = ("ctx", "lang")

    def __init__(self, ctx: QueryContext, lang: str) -> None:
        self.ctx = ctx
        self.lang = lang

    def scorer(self, si: int) -> Scorer:
        raise NotImplementedError

    def terms(self) -> Iterator[str]:
        """The analyzed terms this weight scores (for highlighting)."""
        return iter(())

    @property
    def stats(self) -> LangStats:
        """N and total length of this weight's language: the given statistics', else the snapshot's."""
        return self.ctx.stats(self.lang)

    @property
    def delta(self) -> float:
        """BM25+'s lower bound of a matching term's tf part in this language (``bm25.DELTA``)."""
        return bm25.delta(self.lang)

    def norms(self, si: int) -> np.ndarray:
        """BM25 length norms of every passage of segment ``si`` under this language's avgdl."""
        ctx = self.ctx
        return ctx.snap.norms(si, self.stats.avgdl, ctx.k1, ctx.b)


class TermWeight(Weight):
    """One analyzed term; ``field="title"`` scores the text's term on passages whose title has it;
    ``count`` multiplies its scores (a keyword query that repeats the word: ``QueryContext.clauses``)."""

    __slots__ = ("term", "field", "key", "_idf", "count")

    def __init__(self, ctx: QueryContext, lang: str, term: str, field: str | None = None, count: int = 1) -> None:
        self.ctx = ctx  # Weight's fields, set here: a query makes one TermWeight per word and language
        self.lang = lang
        self.term = term
        self.field = field
        self.key = f"{lang}:{term}"
        self._idf: float | None = None
        self.count = count

    @property
    def df(self) -> int:
        return self.ctx.df(self.key)

    @property
    def idf(self) -> float:
        """BM25 idf of the term, computed once (on first use: a term absent everywhere never needs it)."""
        if self._idf is None:
            self._idf = bm25.idf(self.stats.n_passages, self.df)
        return self._idf

    def scorer(self, si: int) -> TermScorer:
        return TermScorer(self, si)

    def terms(self) -> Iterator[str]:
        yield self.term


class PhraseWeight(Weight):
    """Terms at relative ``offsets``: scored as one term whose idf is the sum of the terms' idf."""

    __slots__ = ("words", "offsets", "field", "prefix", "_idf", "slop")

    def __init__(
        self,
        ctx: QueryContext,
        lang: str,
        terms: list[str],
        offsets: list[int],
        field: str | None = None,
        slop: int = 0,
    ) -> None:
        super().__init__(ctx, lang)
        self.words = tuple(terms)
        self.offsets = tuple(offsets)
        self.field = field
        self.slop = slop  # > 0: a sloppy phrase (``search.sloppy``), its frequency a sum of 1/(1 + distance)
        self.prefix = f"{lang}:title:" if field == "title" else f"{lang}:"
        self._idf: float | None = None

    def terms(self) -> Iterator[str]:
        yield from self.words

    def idf_parts(self) -> list[tuple[str, float, int]]:
        """(term, idf, df) of every term, in phrase order (a title phrase uses the text terms' df)."""
        n = self.stats.n_passages
        out = []
        for t in self.words:
            df = self.ctx.df(f"{self.lang}:{t}")
            out.append((t, bm25.idf(n, df), df))
        return out

    @property
    def idf(self) -> float:
        if self._idf is None:
            n, ctx, lang = self.stats.n_passages, self.ctx, self.lang
            total = 0  # the sum ``idf_parts`` explains, in the same order
            for t in self.words:
                total += bm25.idf(n, ctx.df(f"{lang}:{t}"))
            self._idf = total
        return self._idf

    def scorer(self, si: int) -> PhraseScorer:
        return PhraseScorer(self, si)


class MaskWeight(Weight):
    """A non-scoring restriction given as a function of the segment: ``mask(si)`` returns a bool array
    over the segment's passages (or sorted passage ids). Put it in a ``BooleanWeight`` as a ``FILTER``
    clause: it removes passages and adds nothing to scores."""

    __slots__ = ("mask", "label", "key")

    def __init__(
        self,
        ctx: QueryContext,
        lang: str,
        mask: Callable[[int], np.ndarray],
        label: str = "filter",
        key: str | None = None,
    ) -> None:
        super().__init__(ctx, lang)
        self.mask = mask
        self.label = label
        # what the mask depends on besides the snapshot and the language (None: unknown, never cached):
        # a word's scores restricted to the mask are cached under it
        self.key = key

    def scorer(self, si: int) -> Scorer:
        return _MaskScorer(self, si)


class _MaskScorer(Scorer):
    __slots__ = ()
    weight: MaskWeight

    def vec(self, top_n: int = 0) -> Vec:
        m = np.asarray(self.weight.mask(self.si))
        pids = m.nonzero()[0] if m.dtype == bool else m.astype(np.int64)
        return pids, np.zeros(pids.shape[0], dtype=np.float64)

    def passage_mask(self) -> np.ndarray | None:
        """The mask as a bool per passage (None when it is given as passage ids): ``BooleanScorer``
        applies such masks to each clause before combining them."""
        m = np.asarray(self.weight.mask(self.si))
        return m if m.dtype == bool else None

    def explain(self, pid: int) -> Explanation:
        from .scorers import value_at

        ok = value_at(self.vec(), pid) is not None
        return Explanation(0.0, f"{self.weight.label}: {'passes' if ok else 'fails'}")


class BooleanWeight(Weight):
    """Clauses with occurrences (must, should, must_not, filter), each a weight of the same language.

    ``plain[i]``: clause i is a bare word of a ranked OR (its best scores give a ranked OR a floor);
    ``not_keys[i]``: for a NOT word, its term keys under the index's other languages (a document is
    excluded whichever language its passage was detected as).
    """

    __slots__ = ("clauses", "plain", "not_keys", "ranked_or", "conjunction")

    def __init__(
        self,
        ctx: QueryContext,
        lang: str,
        clauses: list[tuple[str, Weight]],
        plain: list[bool] | None = None,
        not_keys: list[tuple[str, ...]] | None = None,
    ) -> None:
        super().__init__(ctx, lang)
        self.clauses = clauses
        self.plain = plain if plain is not None else [False] * len(clauses)
        self.not_keys = not_keys if not_keys is not None else [()] * len(clauses)
        # only plain words, all SHOULD, each counted once: a ranked OR (block-max evaluation applies)
        ranked_or = conjunction = True
        for (occ, c), p in zip(clauses, self.plain):
            term = isinstance(c, TermWeight)
            if ranked_or and not (p and occ == SHOULD and term and c.count == 1):  # type: ignore[union-attr]
                ranked_or = False
            if conjunction and not (occ == MUST and term):
                conjunction = False
        self.ranked_or = ranked_or
        # two or more MUST terms and nothing else ("a AND b"): an intersection, scored clause by clause
        self.conjunction = conjunction and len(clauses) > 1

    def scorer(self, si: int) -> BooleanScorer:
        return BooleanScorer(self, si)

    def terms(self) -> Iterator[str]:
        for occur, w in self.clauses:
            if occur not in (MUST_NOT, FILTER):
                yield from w.terms()


def _leaf_weight(ctx: QueryContext, lang: str, node: TermQuery | PhraseQuery) -> Weight | None:
    terms, offsets = ctx.leaf_terms(lang, node)
    if not terms:
        return None
    if len(terms) == 1:
        return TermWeight(ctx, lang, terms[0], node.field)
    return PhraseWeight(ctx, lang, terms, offsets, node.field, getattr(node, "slop", 0))


def _boolean_weight(ctx: QueryContext, lang: str, node: BooleanQuery) -> BooleanWeight | None:
    node, flt = filters.split(node)  # metadata filters: one non-scoring mask clause (search.filters)
    clauses: list[tuple[str, Weight]] = []
    plain: list[bool] = []
    not_keys: list[tuple[str, ...]] = []
    for occur, child in ctx.clauses(node, lang):
        w = create_weight(ctx, lang, child)
        if w is None:
            continue
        keys: tuple[str, ...] = ()
        if occur == MUST_NOT and isinstance(child, TermQuery):
            field = "title:" if child.field == "title" else ""
            keys = tuple(
                f"{other}:{field}{terms[0]}"
                for other in ctx.snap.languages
                if other != lang and len(terms := ctx.analyze(other, child.text)[0]) == 1
            )
        clauses.append((occur, w))
        plain.append(isinstance(child, AnalyzedTerm) and child.field is None)
        not_keys.append(keys)
    if flt is not None:
        wants_words = any(o != MUST_NOT for o, _ in node.clauses)
        if wants_words and all(o == MUST_NOT for o, _ in clauses):
            return None  # the words have no terms in this language: the filter cannot match alone
        # beside words a filter only drops passages; with none (filters alone) it lists what it keeps
        clauses.append((FILTER if wants_words else MUST, filters.mask_weight(ctx, lang, flt)))
        plain.append(False)
        not_keys.append(())
    if not clauses:
        return None
    if len(clauses) == 1 and not plain[0] and clauses[0][0] in (SHOULD, MUST):
        only = clauses[0][1]
        if isinstance(only, (PhraseWeight, TermWeight)):
            return only  # a group of one phrase or field term scores as it does (Lucene rewrites it so)
    return BooleanWeight(ctx, lang, clauses, plain, not_keys)


# node type -> (context, language, node) -> its weight, or None when it has no terms in that language
WEIGHT_FACTORIES: dict[type, Callable[[Any, str, Any], Weight | None]] = {
    TermQuery: _leaf_weight,
    PhraseQuery: _leaf_weight,
    BooleanQuery: _boolean_weight,
    # a filter alone (a group's filters are gathered by _boolean_weight): a mask of what it keeps
    FieldFilter: lambda ctx, lang, node: filters.mask_weight(ctx, lang, BooleanQuery(((MUST, node),))),
}


def create_weight(ctx: QueryContext, lang: str, node: Query | AnalyzedTerm | Weight) -> Weight | None:
    """``node`` bound to ``lang``'s analysis and ``ctx``'s statistics; None when it has no terms there.

    A ``Weight`` passes through (a caller may build a clause's weight itself, a filter mask say).
    """
    if isinstance(node, Weight):
        return node
    factory = WEIGHT_FACTORIES.get(type(node))
    if factory is None:
        if isinstance(node, AnalyzedTerm):
            return TermWeight(ctx, lang, node.term, node.field, node.count)
        raise InvalidArgument(f"query clause must be a query object, got {type(node).__name__}")
    return factory(ctx, lang, node)


Found = list[tuple[str, int, np.ndarray, np.ndarray]]  # (lang, segment, passage ids, unweighted scores)


class QueryWeight:
    """A query's root bound under every language it searches: one weight per language (None where
    the query has no terms), evaluated segment by segment."""

    __slots__ = ("ctx", "langs", "by_lang")

    def __init__(self, ctx: QueryContext, root: Query, langs: list[str]) -> None:
        self.ctx = ctx
        self.langs = list(langs)
        self.by_lang: dict[str, Weight | None] = {lg: create_weight(ctx, lg, root) for lg in self.langs}

    def found(self, top_n: int = 0) -> Found:
        """(lang, segment, passage ids, unweighted scores) of every (language, segment) that matches;
        with ``top_n`` a segment may leave out passages that cannot be among its ``top_n`` best."""
        out: Found = []
        n_segments = len(self.ctx.snap.segments)
        for lg in self.langs:
            w = self.by_lang[lg]
            if w is None:
                continue
            for si in range(n_segments):
                pids, scores = w.scorer(si).vec(top_n)
                if pids.shape[0]:
                    out.append((lg, si, pids, scores))
        return out

    def matching_languages(self) -> list[str]:
        """The languages in which the query matches at least one passage of the snapshot."""
        n_segments = len(self.ctx.snap.segments)
        return [
            lg
            for lg in self.langs
            if (w := self.by_lang[lg]) is not None and any(w.scorer(si).vec()[0].shape[0] for si in range(n_segments))
        ]

    def explain(self, lang: str, si: int, pid: int, weights: dict[str, float]) -> Explanation:
        """The parts of passage ``pid`` of segment ``si`` (a ``lang`` passage) under language ``weights``."""
        if lang not in self.by_lang:
            return Explanation(0.0, f"no match: the query is restricted to {self.langs}, the passage is {lang!r}")
        w = self.by_lang[lang]
        if w is None:
            return Explanation(0.0, "no match: the query has no terms in this language")
        e = w.scorer(si).explain(pid)
        lw = weights.get(lang, 1.0)
        if lw == 1.0 or e.value == 0.0:
            return e
        return Explanation(
            lw * e.value,
            f"language weight x BM25 ({lang}), product of:",
            [Explanation(lw, f"language weight: P({lang} | query) / max P"), e],
        )


def language_weights(parsed: ParsedQuery, langs: list[str]) -> dict[str, float]:
    """How much each language's scores count for this query: P(lang | query) / max P.

    BM25 scores of different languages are not comparable as they stand (a few passages misdetected
    as English make Indonesian words look rare there), so a confident Indonesian question ranks
    Indonesian passages first while an ambiguous query ("Upper Lars") treats both alike. The
    likeliest language has weight 1, so a one-language result keeps its unweighted scores.
    """
    if len(langs) < 2:
        return {x: 1.0 for x in langs}
    probs = parsed.language_probabilities
    top = max(probs.get(x, 0.0) for x in langs)
    if top <= 0:
        return {x: 1.0 for x in langs}
    return {x: max(probs.get(x, 0.0) / top, MIN_LANGUAGE_WEIGHT) for x in langs}


def query_languages(parsed: ParsedQuery, lang: str | None, held: list[str]) -> tuple[list[str], str | None]:
    """The languages a query searches (of ``held``, the languages the index holds, after the ``lang``
    argument and ``lang:`` filters) and the query's likeliest language by stopword evidence (None: one
    language, or undecided), whose stopwords the query drops under the other languages (an English
    "of" must not match Indonesian passages just because "of" is no Indonesian stopword).
    """
    langs = list(held)
    if lang is not None:
        if lang not in analyzers.names():
            raise InvalidArgument(f"unknown lang {lang!r}; choose one of {analyzers.names()}")
        langs = [x for x in langs if x == lang]
    if parsed.langs:
        langs = [x for x in langs if x in parsed.langs]
    if parsed.exclude_langs:  # -lang:en / NOT lang:en: that language's passages are left out
        langs = [x for x in langs if x not in parsed.exclude_langs]
    stop: str | None = None
    if len(langs) > 1:
        n_id, n_en = analyzers.stopword_evidence(analyzers.tokenize(" ".join(parsed.words)))
        if n_id != n_en:
            stop = "id" if n_id > n_en else "en"
    return langs, stop


def _positive_leaves(node: BooleanQuery, negated: bool = False):
    for occur, child in node.clauses:
        neg = negated or occur in (MUST_NOT, FILTER)
        if isinstance(child, BooleanQuery):
            yield from _positive_leaves(child, neg)
        elif not neg and not isinstance(child, FieldFilter):
            yield child


def highlight_terms(ctx: QueryContext, root: BooleanQuery, lang: str) -> frozenset[str]:
    """The analyzed terms under ``lang`` a hit highlights: every positive word and phrase of the query,
    less the query stopwords a ranked OR left out (``ctx.dropped``); other node types contribute the
    terms their weights score."""
    terms: set[str] = set()
    for leaf in _positive_leaves(root):
        if isinstance(leaf, PhraseQuery):
            terms.update(ctx.analyze(lang, leaf.text)[0])
        elif isinstance(leaf, TermQuery):  # not the query stopwords the ranking left out
            terms.update(t for t in ctx.analyze(lang, leaf.text)[0] if (lang, t) not in ctx.dropped)
        elif (w := create_weight(ctx, lang, leaf)) is not None:
            terms.update(w.terms())
    return frozenset(terms)


def checked_query(query: object) -> ParsedQuery:
    """A query string parsed, or a caller's ``ParsedQuery`` checked against the parser's limits.

    A tree built in code may be nested or wide beyond what the parser allows; evaluating it recurses,
    so it is refused (``InvalidArgument``) instead of failing deep inside with a ``RecursionError``.
    Clauses must be query nodes a weight can be built for (``WEIGHT_FACTORIES``).
    """
    if isinstance(query, str):
        return parse_query(query)
    if not isinstance(query, ParsedQuery) or not isinstance(query.root, BooleanQuery):
        raise InvalidArgument(f"query must be a string or a ParsedQuery, got {type(query).__name__}")
    terms: set[object] = set()
    stack = [(query.root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING + 1:
            raise InvalidArgument(f"query tree nested more than {MAX_NESTING} deep")
        for _, child in node.clauses:
            if isinstance(child, BooleanQuery):
                stack.append((child, depth + 1))
            elif type(child) in WEIGHT_FACTORIES:
                terms.add(child)
                if len(terms) > MAX_QUERY_TERMS:
                    raise InvalidArgument(f"query has more than {MAX_QUERY_TERMS} distinct terms")
            else:
                raise InvalidArgument(f"query clause must be a query object, got {type(child).__name__}")
    return query
