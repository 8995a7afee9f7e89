"""Fuzzy, prefix and wildcard words bound to an index: expanded, then scored as Lucene scores them.

A ``FuzzyQuery``, ``PrefixQuery`` or ``WildcardQuery`` (``search.query``) is expanded over the surface
words of every segment of the snapshot under one language (``search.expand`` over each segment's
sorted surface-word dictionary, so "pemerintahn~" finds "pemerintahan" although the index keeps only
the stem "perintah"), at most ``MAX_EXPANSIONS`` words over the whole snapshot (nearest first, then in
dictionary order: the same set whatever the segment layout), each word mapped to its analyzed term.

Scoring follows Lucene's ``TopTermsBlendedFreqScoringRewrite``: every expanded term scores BM25 with
one blended document frequency, the largest df among the expansions (a rare misspelling must not
outrank the common word it is a misspelling of), times a boost that shrinks with the distance,
``1 - edits / min(len(query word), len(word))`` (an exact word keeps 1, so exact matches rank
first); a passage's score is the sum over the terms it holds. Prefix and wildcard expansions have
boost 1.

Registers the three node types in ``weights.WEIGHT_FACTORIES``; highlighting asks the weights for
their terms, so snippets mark the expanded words.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import numpy as np

from analyzers import normalize_word
from analyzers.base import CONTENT, TOKEN_RE, split_word

from . import bm25
from .bm25 import Explanation
from .expand import MAX_EXPANSIONS, auto_distance, fuzzy_boost, segment_lexicon
from .query import MUST_NOT, SHOULD, BooleanQuery, FuzzyQuery, ParsedQuery, PrefixQuery, TermQuery, WildcardQuery
from .scorers import EMPTY, TOP_SCORES, BooleanScorer, Scorer, TermScorer, Vec
from .weights import WEIGHT_FACTORIES, BooleanWeight, TermWeight, Weight, create_weight

#: fuzzy=True: a word the index does not know expands to its nearest neighbours only (measured in
#: docs/quality.md: typo recovery 112% / 100% of the loss on SciFact / TyDi-id, against 94% / 95% with
#: every neighbour within the distance)
NEAREST_ONLY = True


def _known(ctx: QueryContext, text: str) -> bool:
    """Whether some segment saw ``text`` as a word, in any language (a word of the index is no typo,
    even where another language's passages lack it)."""
    word = query_word(text)
    for seg in ctx.snap.segments:
        for lang in ctx.snap.languages:
            words = segment_lexicon(seg.reader, lang)[0].words
            i = bisect.bisect_left(words, word)
            if i < len(words) and words[i] == word:
                return True
    return False

if TYPE_CHECKING:
    from .searcher import QueryContext

@dataclass(frozen=True)
class Expansion:
    """One expanded term: the nearest surface word that gave it, its distance, its boost and its df
    (the context's: kept with the expansion, so a repeated word blends its df without a lookup)."""

    term: str
    word: str
    distance: int
    boost: float
    df: int = 0


def query_word(text: str) -> str:
    """The word a fuzzy query matches, tokenized and normalized as the indexer makes surface words
    ("Cells." -> "cells"); "" unless the text is exactly one word."""
    words = [w for m in TOKEN_RE.finditer(text) for w, _, _ in split_word(m.group())]
    return words[0] if len(words) == 1 else ""


def _pattern(text: str) -> str:
    """A prefix or wildcard normalized as words are (case, NFKC); the ``*`` stay."""
    return normalize_word(text.strip())


def expand(ctx: QueryContext, lang: str, node: FuzzyQuery | PrefixQuery | WildcardQuery) -> list[Expansion]:
    """The terms ``node`` stands for under ``lang`` over the whole snapshot (memoized per search).

    A context given its expansions (``ctx.expansions``: a shard of a sharded index, whose coordinator
    chose them over every shard's words) uses those."""
    given = getattr(ctx, "expansions", None)
    if given is not None:
        return _with_df(ctx, lang, given.get((lang, node), ()))
    memo = _memo(ctx)
    # the word's own term is read through the context's analysis (its query stopwords) and df
    memo_key = (lang, node, ctx.query_lang, ctx.statistics is None)
    got = memo.get(memo_key)
    if got is not None:
        return got
    found = surface_matches(ctx.snap.segments, lang, node)
    own = own_term(ctx, lang, node)
    got = _with_df(ctx, lang, choose_expansions(lang, node, found, own, ctx.df(f"{lang}:{own}") if own else 0))
    if ctx.statistics is None:  # given statistics (a shard) may change with every query
        with _MEMO_LOCK:
            memo[memo_key] = got
            while len(memo) > EXPANSION_CACHE:
                memo.popitem(last=False)
    return got


def _with_df(ctx: QueryContext, lang: str, exps) -> list[Expansion]:
    """``exps`` each with its df under the context's statistics (kept with the expansion, so a memoized
    word blends its df without a lookup)."""
    return [e if e.df else dataclasses.replace(e, df=ctx.df(f"{lang}:{e.term}")) for e in exps]


def multiterm_word(node: FuzzyQuery | PrefixQuery | WildcardQuery) -> str:
    """The normalized word (fuzzy) or pattern (prefix, wildcard) ``node`` is matched with."""
    return query_word(node.text) if isinstance(node, FuzzyQuery) else _pattern(node.text)


def surface_matches(segments, lang: str, node: FuzzyQuery | PrefixQuery | WildcardQuery) -> dict[str, tuple[int, str]]:
    """The surface words of ``segments`` under ``lang`` that ``node`` matches, each with its distance and
    term key: the best ``MAX_EXPANSIONS`` (nearest, then in dictionary order). Every segment's best hold
    the best of all, so the best of several shards' answers are those of one index."""
    word = multiterm_word(node)
    found: dict[str, tuple[int, str]] = {}  # surface word -> (distance, term key)
    if word:
        k = (auto_distance(word) if node.distance is None else node.distance) if isinstance(node, FuzzyQuery) else 0
        for seg in segments:
            lex, keys = segment_lexicon(seg.reader, lang)
            if isinstance(node, FuzzyQuery):
                hits = lex.fuzzy(word, k, MAX_EXPANSIONS)
            elif isinstance(node, PrefixQuery):
                hits = [(i, 0) for i in lex.prefix(word, MAX_EXPANSIONS)]
            else:
                hits = [(i, 0) for i in lex.wildcard(word, MAX_EXPANSIONS)]
            for i, d in hits:
                w = lex.words[i]
                if w not in found or d < found[w][0]:
                    found[w] = (d, keys[i])
    return dict(sorted(found.items(), key=lambda item: (item[1][0], item[0]))[:MAX_EXPANSIONS])


def own_term(ctx: QueryContext, lang: str, node: FuzzyQuery | PrefixQuery | WildcardQuery) -> str | None:
    """A fuzzy word's own analyzed term under ``lang`` (None for prefixes, wildcards and what does not
    analyze to one term): it matches at distance 0 where the index has it."""
    if not isinstance(node, FuzzyQuery) or not query_word(node.text):
        return None
    terms = ctx.analyze(lang, node.text)[0]
    return terms[0] if len(terms) == 1 else None


def choose_expansions(
    lang: str,
    node: FuzzyQuery | PrefixQuery | WildcardQuery,
    found: dict[str, tuple[int, str]],
    own: str | None,
    own_df: int,
) -> list[Expansion]:
    """The expansions of ``node``: its own term ``own`` when it has passages (``own_df``), then the
    matched surface words ``found`` of this language, the best boost per term."""
    word = multiterm_word(node)
    best = sorted(found.items(), key=lambda item: (item[1][0], item[0]))[:MAX_EXPANSIONS]
    prefix = f"{lang}:"
    by_term: dict[str, Expansion] = {}
    if own is not None and own_df > 0:
        # the word's own term, where the index has it although it never saw this surface form
        # ("kebijakannya~" still matches "kebijakan" through the stem): distance 0, as Lucene's
        # fuzzy query matches its own term
        by_term[own] = Expansion(own, word, 0, 1.0, own_df)
    for w, (d, key) in best:
        if not key.startswith(prefix):
            continue
        term = key[len(prefix) :]
        boost = fuzzy_boost(d, word, w)
        old = by_term.get(term)
        if boost > 0 and (old is None or boost > old.boost):
            by_term[term] = Expansion(term, w, d, boost)
    return list(by_term.values())


_MEMOS: WeakKeyDictionary = WeakKeyDictionary()
_MEMO_LOCK = threading.Lock()


EXPANSION_CACHE = 4096  # expansions kept per snapshot (a repeated query expands nothing again)


def _memo(ctx: QueryContext) -> OrderedDict:
    """Expansions by (language, node), per snapshot: they depend on its segments only."""
    with _MEMO_LOCK:
        got = _MEMOS.get(ctx.snap)
        if got is None:
            got = _MEMOS[ctx.snap] = OrderedDict()
        return got


class BlendedTermWeight(TermWeight):
    """An expanded term: BM25 with the expansions' blended df, times the expansion's boost."""

    __slots__ = ("boost", "blended_df", "word", "distance")

    def __init__(
        self, ctx: QueryContext, lang: str, exp: Expansion, blended_df: int, field: str | None = None
    ) -> None:
        super().__init__(ctx, lang, exp.term, field)
        self.boost = exp.boost
        self.blended_df = blended_df
        self.word = exp.word
        self.distance = exp.distance

    @property
    def df(self) -> int:
        return self.blended_df

    def scorer(self, si: int) -> BlendedTermScorer:
        return BlendedTermScorer(self, si)


class BlendedTermScorer(TermScorer):
    """A ``TermScorer`` whose scores are boosted and use the blended df (kept apart from plain terms'
    cached scores, which have the term's own df)."""

    __slots__ = ()
    weight: BlendedTermWeight

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = self.weight
        memo = w.ctx._term_memo
        memo_key = ("blended", w.lang, w.term, w.boost, w.blended_df, self.si)
        got = memo.get(memo_key)  # type: ignore[call-overload]
        if got is None:
            ctx = w.ctx
            # kept in the snapshot's score cache as plain terms are (a repeated query costs a lookup)
            cache_key: tuple = (self.si, w.key, ctx.k1, ctx.b, w.delta, "blended", w.blended_df, w.boost)
            if ctx.statistics is not None:
                st = ctx.statistics.lang_stats(w.lang)
                cache_key += (st.n_passages, st.total_length)

            def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                pids, scores, top = self._compute()
                return pids, scores * w.boost, top * w.boost

            got = ctx.snap.cached_arrays(cache_key, compute)
            memo[memo_key] = got  # type: ignore[index]
        return got  # type: ignore[return-value]

    def explain(self, pid: int) -> Explanation:
        e = super().explain(pid)
        w = self.weight
        if e.value == 0.0:
            return e
        e.description = f"{e.description} (df blended over the expansions: the largest)"
        if w.boost == 1.0:
            return e
        return Explanation(
            w.boost * e.value,
            f"expansion {w.word!r} x BM25, product of:",
            [Explanation(w.boost, f"boost, 1 - {w.distance} edits / min(query length, word length)"), e],
        )


class ExpandedWeight(Weight):
    """The expanded terms of one word, scored as one merged posting per segment (Lucene's blended
    rewrite, a disjunction scored once per passage): a passage's score is the sum, in expansion order,
    of the boosted BM25 scores of the expanded terms it holds, all with the blended df's idf.

    The merged posting depends on the snapshot, the expansions, the statistics and BM25's parameters
    only, so it is kept in the snapshot's score cache: a repeated fuzzy or prefix word costs one lookup
    per segment instead of a postings read and a scored clause per expansion. ``clauses`` (one
    ``BlendedTermWeight`` per expansion, built on demand) explain a passage term by term.
    """

    __slots__ = ("exps", "blended_df", "field", "_idf", "_clauses")

    def __init__(
        self, ctx: QueryContext, lang: str, exps: list[Expansion], blended_df: int, field: str | None = None
    ) -> None:
        super().__init__(ctx, lang)
        self.exps = exps
        self.blended_df = blended_df
        self.field = field
        self._idf: float | None = None
        self._clauses: list[tuple[str, Weight]] | None = None

    @property
    def idf(self) -> float:
        """BM25 idf of every expanded term: from the blended df."""
        if self._idf is None:
            self._idf = bm25.idf(self.stats.n_passages, self.blended_df)
        return self._idf

    @property
    def clauses(self) -> list[tuple[str, Weight]]:
        """One SHOULD clause per expansion, in expansion order (what explanations show)."""
        if self._clauses is None:
            self._clauses = [
                (SHOULD, BlendedTermWeight(self.ctx, self.lang, e, self.blended_df, self.field)) for e in self.exps
            ]
        return self._clauses

    def scorer(self, si: int) -> ExpandedScorer:
        return ExpandedScorer(self, si)

    def terms(self) -> Iterator[str]:
        for e in self.exps:
            yield e.term


class ExpandedScorer(Scorer):
    """The merged posting of an ``ExpandedWeight`` in one segment."""

    __slots__ = ()
    weight: ExpandedWeight

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(passage ids, summed scores, best ``TOP_SCORES`` scores descending) of the word in this
        segment, from the snapshot's score cache."""
        w = self.weight
        ctx = w.ctx
        st = w.stats
        # everything the scores depend on: the terms and boosts, the idf (N, blended df), the norms
        cache_key = (
            self.si,
            "expanded",
            w.lang,
            w.field,
            tuple((e.term, e.boost) for e in w.exps),
            w.idf,
            st.n_passages,
            st.total_length,
            ctx.k1,
            ctx.b,
            w.delta,
        )
        return ctx.snap.cached_arrays(cache_key, self._compute, 0)  # type: ignore[return-value]

    def _compute(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = self.weight
        ctx = w.ctx
        si = self.si
        idf = w.idf
        norms = w.norms(si)
        n_passages = ctx.snap.segments[si].reader.n_passages
        acc: np.ndarray | None = None
        for e in w.exps:  # expansion order: each passage's sum is 0 + s1 + s2 + ..., as clauses add up
            key = f"{w.lang}:{e.term}"
            pids, tfs = ctx.postings(key)[si]
            if pids.shape[0] and w.field == "title":
                tpids, _ = ctx.postings(f"{w.lang}:title:{e.term}")[si]
                keep = np.isin(pids, tpids, assume_unique=True)
                pids, tfs = pids[keep], tfs[keep]
            if pids.shape[0] == 0:
                continue
            if acc is None:
                acc = np.zeros(n_passages, dtype=np.float64)
            acc[pids] += bm25.term_scores(idf, tfs, norms[pids], w.delta) * e.boost
        if acc is None:
            return EMPTY[0], EMPTY[1], EMPTY[1]
        ids = np.flatnonzero(acc)
        scores = acc[ids]
        n = scores.shape[0]
        top = np.partition(scores, n - TOP_SCORES)[n - TOP_SCORES :] if n > TOP_SCORES else scores.copy()
        return ids, scores, np.sort(top)[::-1].copy()

    def vec(self, top_n: int = 0) -> Vec:
        pids, scores = self.arrays()[:2]
        return pids, scores

    def explain(self, pid: int) -> Explanation:
        w = self.weight
        # the same parts as the expansions scored as separate clauses (their sum is this scorer's score)
        return BooleanScorer(BooleanWeight(w.ctx, w.lang, w.clauses), self.si).explain(pid)


def _expanded_weight(ctx: QueryContext, lang: str, node: FuzzyQuery | PrefixQuery | WildcardQuery) -> Weight | None:
    if isinstance(node, FuzzyQuery) and not node.typed:
        # fuzzy=True makes every bare word fuzzy, but a function word stays exact ("yang~" would
        # otherwise add "uang" and "sang"); the word's analysis decides under this language
        kinds = ctx.analyze_query(lang, node.text)[2]
        if kinds and any(k != CONTENT for k in kinds) or not query_word(node.text):
            return create_weight(ctx, lang, TermQuery(node.text, node.field))
    exps = expand(ctx, lang, node)
    if not exps:
        return None
    if isinstance(node, FuzzyQuery) and not node.typed and NEAREST_ONLY:
        # fuzzy=True: an unknown word's nearest neighbours only (a typo is most often one edit)
        nearest = min(e.distance for e in exps)
        exps = [e for e in exps if e.distance == nearest]
    blended = max(e.df for e in exps)
    return ExpandedWeight(ctx, lang, exps, blended, node.field)


for _node in (FuzzyQuery, PrefixQuery, WildcardQuery):
    WEIGHT_FACTORIES[_node] = _expanded_weight


def rewrite(
    parsed: ParsedQuery,
    ctx: QueryContext | None = None,
    *,
    fuzzy: bool = False,
    prefix_last: bool = False,
    typo: Callable[[str], bool] | None = None,
) -> ParsedQuery:
    """``parsed`` with its bare words fuzzy (``fuzzy``, which needs the search's ``ctx``) and its last
    word a prefix (``prefix_last``: search as you type, unless the text ends with a space, which says
    the word is complete).

    ``fuzzy`` makes a bare word fuzzy with the automatic distance only where the index cannot match it
    as typed: a word some segment saw, or whose term has passages, is no typo and stays exact (so exact
    matches rank first and a correct query keeps its ranking); so do words a clause excludes and what
    is not one word ("e-mail" keeps its parts). A repeated unknown word counts once. ``typo`` (a word's
    text -> whether the index cannot match it) replaces ``ctx``'s answer: a sharded index's coordinator
    decides it over every shard.
    """
    if not fuzzy and not prefix_last:
        return parsed
    root = parsed.root
    if prefix_last and parsed.text and not parsed.text[-1].isspace() and root.clauses:
        occur, last = root.clauses[-1]
        if type(last) is TermQuery and occur != MUST_NOT and parsed.text.rstrip().endswith(last.text):
            root = BooleanQuery(root.clauses[:-1] + ((occur, PrefixQuery(last.text, last.field)),))
    if fuzzy:
        if typo is None:
            if ctx is None:
                raise ValueError("fuzzy rewriting needs the search's QueryContext")
            typo = functools.partial(_typo_candidate, ctx)
        root = _fuzzy_words(root, typo)
    return parsed.with_root(root)


def _typo_candidate(ctx: QueryContext, text: str) -> bool:
    """Whether ``text`` is one word that the index cannot match as typed, in any language."""
    if not query_word(text) or _known(ctx, text):
        return False
    for lang in ctx.snap.languages:
        terms = ctx.analyze(lang, text)[0]
        if len(terms) != 1 or ctx.df(f"{lang}:{terms[0]}") > 0:
            return False
    return True


def fuzzy_candidates(node: BooleanQuery) -> list[str]:
    """The texts of the words ``fuzzy=True`` may make fuzzy (what ``rewrite`` asks ``typo`` about)."""
    out: list[str] = []
    for occur, child in node.clauses:
        if type(child) is TermQuery and occur != MUST_NOT and query_word(child.text):
            out.append(child.text)
        elif isinstance(child, BooleanQuery) and occur != MUST_NOT:
            out.extend(fuzzy_candidates(child))
    return list(dict.fromkeys(out))


def _fuzzy_words(node: BooleanQuery, typo: Callable[[str], bool]) -> BooleanQuery:
    out = []
    seen: set[tuple[str, str | None]] = set()
    for occur, child in node.clauses:
        if type(child) is TermQuery and occur != MUST_NOT and typo(child.text):
            sig = (query_word(child.text), child.field)
            if occur == SHOULD and sig in seen:
                continue
            seen.add(sig)
            child = FuzzyQuery(child.text, None, child.field, typed=False)
        elif isinstance(child, BooleanQuery) and occur != MUST_NOT:
            child = _fuzzy_words(child, typo)
        out.append((occur, child))
    return BooleanQuery(tuple(out))
