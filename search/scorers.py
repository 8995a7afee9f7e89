"""Scorers: one ``Weight`` bound to one segment, giving the sparse scores of its passages.

A scorer is Lucene's ``Scorer`` in numpy form: instead of ``nextDoc``/``score`` one passage at a time it
returns the whole sparse vector (sorted passage ids, float64 scores) at once, and it ``explain``s one
passage with the same arithmetic, so an explanation's parts give the score the search gives.

Every sum runs in clause order (0 + s1 + s2 + ...), whatever the path (sparse, dense, merge), so a
passage's score does not depend on the segment layout and equals its explanation's sum.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import bm25
from .arrays import run_firsts, sorted_unique
from .bm25 import Explanation
from .query import FILTER, MUST, MUST_NOT, SHOULD
from .sloppy import sloppy_frequencies

if TYPE_CHECKING:
    from .weights import BooleanWeight, PhraseWeight, TermWeight, Weight

Vec = tuple[np.ndarray, np.ndarray]  # (sorted unique passage ids, float64 scores)

# combine clauses over a dense array once their postings reach 1/DENSE_RATIO of a segment's passages,
# and in a segment of at most DENSE_SMALL passages below 12,000 + 18 per posting: there an array of every
# passage costs less than sorting the postings (2 cores, 2 clauses: at 5,000 passages 4.7-7.5 us against
# 8.2-18.6 us for 30-1,000 postings; at 25,000 passages the sort wins below about 700 postings)
DENSE_RATIO = 4
DENSE_SMALL = 65_536
# a conjunction looks its shortest clause's passages up in a longer clause through a dense array of the
# segment's passages when they are more than 1/GATHER_DENSE of (passages + the longer clause's postings)
# (a binary search costs about 45-57 ns a passage there, the dense array 1-3 ns an element)
GATHER_DENSE = 32
TOP_SCORES = 64  # best scores kept per cached term: floors for ranked ORs
# a phrase reads (and the snapshot keeps) a term's whole decoded positions once its candidates are at
# least 1/FULL_POSITIONS_RATIO of the term's postings; fewer candidates decode their own positions only
FULL_POSITIONS_RATIO = 4
EMPTY: Vec = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


class Scorer:
    """Scores of one weight in one segment (``si``): ``vec`` for every matching passage, ``explain`` for one."""

    __slots__ = ("weight", "si")

    def __init__(self, weight: Weight, si: int) -> None:
        self.weight = weight
        self.si = si

    def vec(self, top_n: int = 0) -> Vec:
        """(sorted passage ids, scores) of every live passage that matches; with ``top_n`` a scorer may
        leave out passages that cannot be among the segment's ``top_n`` best (scores stay exact)."""
        raise NotImplementedError

    def explain(self, pid: int) -> Explanation:
        """The parts of passage ``pid``'s score (value 0.0 when it does not match)."""
        raise NotImplementedError


class TermScorer(Scorer):
    """One analyzed term: BM25 over its postings (``title:`` keeps the passages whose title has it)."""

    __slots__ = ("_arrays",)
    weight: TermWeight

    def __init__(self, weight: TermWeight, si: int) -> None:
        self.weight = weight
        self.si = si
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(passage ids, scores, best ``TOP_SCORES`` scores descending) over the whole segment, memoized
        by the scorer and per query, and kept in the snapshot's score cache for frequent terms."""
        got = self._arrays
        if got is not None:  # a ranked OR's floor reads them again after ``vec``
            return got
        w = self.weight
        ctx = w.ctx
        memo_key = (w.lang, w.term, self.si)
        got = ctx._term_memo.get(memo_key)
        if got is None:
            # every term, however rare: recomputing a short list costs ~10 numpy calls a query, more
            # than keeping it (at 10k passages most query terms have fewer than 128 postings a segment)
            got = ctx.snap.cached_arrays(self._cache_key(), self._compute, 1)
            ctx._term_memo[memo_key] = got
        self._arrays = got  # type: ignore[assignment]
        return got  # type: ignore[return-value]

    def dense_scores(self) -> np.ndarray:
        """``vec``'s scores spread over every passage of the segment (0.0 where the term is absent), kept
        in the snapshot's score cache: a conjunction reads a frequent term's scores at the passages of
        its rarer terms without scattering them again (Lucene keeps frequent clauses' bitsets so)."""
        w = self.weight
        reader = w.ctx.snap.segments[self.si].reader

        def compute() -> tuple[np.ndarray]:
            pids, scores = self.vec()
            acc = np.zeros(reader.n_passages, dtype=np.float64)
            acc[pids] = scores
            return (acc,)

        key = (*self._cache_key(), "dense", w.field, w.count)
        return w.ctx.snap.cached_arrays(key, compute, 1)[0]

    def _cache_key(self) -> tuple:
        """What this term's scores in this segment depend on: the snapshot's cache key."""
        w = self.weight
        ctx = w.ctx
        cache_key: tuple = (self.si, w.key, ctx.k1, ctx.b, w.delta)
        if ctx.statistics is not None:  # scores depend on the given N, avgdl and df
            st = ctx.statistics.lang_stats(w.lang)
            cache_key += (st.n_passages, st.total_length, ctx.statistics.df(w.key))
        return cache_key

    def masked_arrays(self, keep: np.ndarray, mask_key: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``arrays()`` restricted to the passages ``keep`` passes: (passage ids, scores, best
        ``TOP_SCORES`` kept scores descending), kept in the snapshot's score cache under ``mask_key`` (the
        language and the filters ``keep`` stands for). The same filter recurs across queries, as a clicked
        facet does: the word's masked scores are then read, not gathered again. None where the plain
        arrays do not apply (a title word, a repeated keyword)."""
        w = self.weight
        if w.field == "title" or w.count != 1:
            return None
        if w.ctx.slots(w.key)[self.si] < 0:
            return EMPTY[0], EMPTY[1], EMPTY[1]

        def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            pids, scores = self.arrays()[:2]
            hit = keep[pids]
            pids, scores = pids[hit], scores[hit]
            return pids, scores, _best(scores)

        return w.ctx.snap.cached_arrays((*self._cache_key(), "mask", mask_key), compute, 1)  # type: ignore[return-value]

    def _compute(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = self.weight
        pids, tfs = w.ctx.postings(w.key)[self.si]
        if pids.shape[0] == 0:
            return EMPTY[0], EMPTY[1], EMPTY[1]
        scores = bm25.term_scores(w.idf, tfs, w.norms(self.si)[pids], w.delta)
        return pids.astype(np.int64), scores, _best(scores)

    def vec(self, top_n: int = 0) -> Vec:
        w = self.weight
        if w.ctx.slots(w.key)[self.si] < 0:
            return EMPTY  # not in this segment's dictionary: nothing to look up or score
        pids, scores = self.arrays()[:2]
        if pids.shape[0] and w.field == "title":
            tpids, _ = w.ctx.postings(f"{w.lang}:title:{w.term}")[self.si]
            keep = np.isin(pids, tpids, assume_unique=True)
            pids, scores = pids[keep], scores[keep]
        if w.count != 1:  # a keyword query repeats the word: its score counts that many times
            scores = scores * w.count
        return pids, scores

    def explain(self, pid: int) -> Explanation:
        w = self.weight
        label = f"{'title:' if w.field else ''}{w.term} [{w.lang}]"
        if value_at(self.vec(), pid) is None:
            return Explanation(0.0, f"no match for {label}", [])
        tf = tf_at(w.ctx.postings(w.key)[self.si], pid)
        st = w.stats
        dl = int(w.ctx.snap.segments[self.si].reader.p_len[pid])
        e = bm25.explain_term(label, st.n_passages, w.df, tf, dl, st.avgdl, w.ctx.k1, w.ctx.b, delta=w.delta)
        if w.count == 1:
            return e
        return Explanation(
            w.count * e.value,
            f"{label} repeated in the query, product of:",
            [Explanation(float(w.count), "times the keyword query has the word"), e],
        )


class PhraseScorer(Scorer):
    """Words at their relative offsets: BM25 with the phrase count as tf and the sum of the words' idf.

    Candidates are the passages holding every word (rarest first); positions are read for those only.
    """

    __slots__ = ()
    weight: PhraseWeight

    def matches(self) -> Vec:
        """(passage ids, phrase counts) in this segment: independent of the statistics, so memoized on
        the context (a shard's second phase reuses its first phase's)."""
        w = self.weight
        ctx = w.ctx
        memo_key = (w.prefix, w.words, w.offsets, self.si, w.slop)
        found = ctx._phrases.get(memo_key)
        if found is None:
            # a phrase's matches depend on the snapshot only: kept across queries like frequent terms' scores
            found = ctx.snap.cached_arrays(
                ("phrase", *memo_key),
                lambda: phrase_matches(ctx, w.prefix, w.words, w.offsets, self.si, w.slop),
                0,
            )
            ctx._phrases[memo_key] = found  # type: ignore[assignment]
        return found  # type: ignore[return-value]

    def vec(self, top_n: int = 0) -> Vec:
        pids, freq = self.matches()
        if pids.shape[0] == 0:
            return EMPTY
        w = self.weight
        return pids, bm25.term_scores(w.idf, freq, w.norms(self.si)[pids], w.delta)

    def explain(self, pid: int) -> Explanation:
        w = self.weight
        label = f'{"title:" if w.field else ""}"{" ".join(w.words)}" [{w.lang}]'
        pids, freq = self.matches()
        f = value_at((pids, freq), pid)
        if f is None:
            return Explanation(0.0, f"no match for {label}", [])
        st = w.stats
        dl = int(w.ctx.snap.segments[self.si].reader.p_len[pid])
        e = bm25.explain_term(label, st.n_passages, 0, float(f), dl, st.avgdl, w.ctx.k1, w.ctx.b, delta=w.delta)
        idf_parts = [Explanation(v, f"idf({t}), from N = {st.n_passages}, df = {df}") for t, v, df in w.idf_parts()]
        e.details[0] = Explanation(w.idf, "idf of the phrase, sum of:", idf_parts)
        e.value = w.idf * e.details[1].value  # the product of its parts, as scoring computes it
        return e


class BooleanScorer(Scorer):
    """Clauses combined: MUST and FILTER intersect, SHOULD unite, MUST_NOT removes whole documents;
    scores are the sum of the MUST and SHOULD clauses' scores in clause order (FILTER adds nothing)."""

    __slots__ = ("children",)
    weight: BooleanWeight

    def __init__(self, weight: BooleanWeight, si: int) -> None:
        super().__init__(weight, si)
        self.children = [(occur, child.scorer(si)) for occur, child in weight.clauses]

    def vec(self, top_n: int = 0) -> Vec:
        w = self.weight
        si = self.si
        if top_n and w.ranked_or and w.ctx.pruning == "blockmax":
            # a ranked OR of plain words, block by block, only when asked for: on 50k Indonesian passages
            # block-max was 7-40x slower than the exhaustive path below on 2- and 3-word queries (RESULTS.md,
            # "Block-max against exhaustive"), so "auto" does not choose it until a benchmark shows it winning
            from .blockmax import block_max_or

            terms: list[TermScorer] = [sc for _, sc in self.children]  # type: ignore[misc]
            return block_max_or(terms, top_n, w.ctx.per_document)
        if w.ranked_or:
            return self._ranked_or(top_n)
        if w.conjunction:
            return self._conjunction()
        must: list[Vec] = []
        scored: list[Vec] = []
        plain: list[TermScorer | None] = []
        must_not: list[Vec] = []
        not_pids: list[np.ndarray] = []
        filters: list[np.ndarray] = []
        # FILTER clauses that are masks (search.filters): applied to each clause before combining, so
        # fewer passages are added up and a ranked OR's floor can be taken among the kept passages
        keep: np.ndarray | None = None
        # the masks' keys: a plain word's scores restricted to them are cached under them (None: a mask
        # without a key, never cached)
        mask_keys: list[str] | None = []
        is_mask: list[bool] = []
        for occur, sc in self.children:
            m = _bool_mask(sc) if occur == FILTER else None
            is_mask.append(m is not None)
            if m is not None:
                keep = m if keep is None else keep & m
                key = getattr(sc.weight, "key", None)
                mask_keys = None if key is None or mask_keys is None else [*mask_keys, key]
        tops: list[np.ndarray | None] = []  # per scored clause: its best kept scores, where cached
        for (occur, sc), plain_term, keys, masked in zip(self.children, w.plain, w.not_keys, is_mask):
            if occur == MUST_NOT:
                not_pids.extend(self._not_matches(sc, keys))
                continue
            if masked:
                continue
            top = None
            if keep is not None and mask_keys is not None and plain_term and isinstance(sc, TermScorer):
                got = sc.masked_arrays(keep, (w.lang, *mask_keys))
                if got is not None:
                    vec, top = (got[0], got[1]), got[2]
                else:
                    vec = sc.vec()
            else:
                vec = sc.vec()
            if occur == FILTER:
                filters.append(vec[0])
                continue
            if keep is not None and top is None and vec[0].shape[0]:
                hit = keep[vec[0]]
                vec = (vec[0][hit], vec[1][hit])
            tops.append(top)
            if occur == MUST:
                must.append(vec)
            scored.append(vec)
            plain.append(sc if plain_term else None)  # type: ignore[arg-type]
        if not scored:
            return EMPTY  # only negative (or filter) clauses match nothing
        if not_pids:  # one exclusion for every NOT clause: the documents they match, whole
            must_not.append(documents_of(w.ctx.snap.segments[si].reader, not_pids))
        n_passages = w.ctx.snap.segments[si].reader.n_passages
        if len(scored) > 1 and not must and not filters and _dense(_total(scored), n_passages):
            if must_not:
                floor = 0.0
            elif keep is None:
                floor = self._floor(plain, top_n)
            else:
                floor = self._masked_floor(scored, plain, top_n, tops)
            return dense_combine(scored, must, must_not, n_passages, floor)
        if not must_not and not filters and len(scored) == 1:
            if top_n and keep is None and plain[0] is not None and (floor := self._floor(plain, top_n)) > 0.0:
                p, sc = scored[0]  # only the passages that can still rank (fewer to select from later)
                ranks = sc >= floor
                return p[ranks], sc[ranks]
            return scored[0]
        if not must and not must_not and not filters and len(scored) < 8:
            return sparse_sum(scored)
        if must:
            ids = must[0][0]
            for p, _ in must[1:]:
                ids = intersect_sorted(ids, p)
        elif len(scored) == 1:
            ids = scored[0][0]
        else:
            ids = union([p for p, _ in scored], n_passages)
        for f in filters:
            ids = intersect_sorted(ids, f)
        for p, _ in must_not:
            if ids.shape[0] and p.shape[0]:
                ids = ids[~np.isin(ids, p, assume_unique=True)]
        if ids.shape[0] == 0:
            return EMPTY
        if len(scored) == 1 and ids.shape[0] == scored[0][0].shape[0]:
            return ids, scored[0][1]
        if len(must) == len(scored):  # every scored clause holds every id: gather, no membership test
            return ids, _gather_sum(ids, scored)
        return ids, _sum_at(ids, scored)

    def _ranked_or(self, top_n: int) -> Vec:
        """The general path below for a ranked OR of plain words (every clause a SHOULD term, no mask):
        the same decisions and the same float sums, without the bookkeeping other clauses need (most
        queries are such ORs, and at 10k passages that bookkeeping was a sizeable share of a query)."""
        plain: list[TermScorer] = [sc for _, sc in self.children]  # type: ignore[misc]
        scored = [sc.vec() for sc in plain]
        if len(scored) == 1:
            p, s = scored[0]
            if top_n and p.shape[0] > top_n and (floor := self._floor(plain, top_n)) > 0.0:
                ranks = s >= floor  # only the passages that can still rank (fewer to select from later)
                return p[ranks], s[ranks]
            return scored[0]
        n_passages = self.weight.ctx.snap.segments[self.si].reader.n_passages
        if _dense(_total(scored), n_passages):
            return dense_combine(scored, [], [], n_passages, self._floor(plain, top_n), positive=True)
        if len(scored) < 8:
            ids, sums = sparse_sum(scored)
            if ids.shape[0] > top_n and (floor := self._floor(plain, top_n)) > 0.0:
                ranks = sums >= floor  # only the passages that can still rank, as the dense path keeps
                return ids[ranks], sums[ranks]
            return ids, sums
        ids = union([p for p, _ in scored], n_passages)
        if ids.shape[0] == 0:
            return EMPTY
        return ids, _sum_at(ids, scored)

    def _conjunction(self) -> Vec:
        """The general path below for MUST terms alone ("a AND b"): the same passages and the same
        clause-order sums, without the bookkeeping other clauses need.

        The shortest clause's passages are looked up in each longer clause, shortest first: by binary
        search when they are few, else by scattering the longer clause's scores over an array of the
        segment's passages and reading it at them (a plain term scores above 0 wherever it is; other
        term weights are always searched). Two clauses of 13,000
        and 30,000 postings in 32,000 passages: 78 us against 749 us by binary search."""
        vecs = [sc.vec() for _, sc in self.children]
        order = sorted(range(len(vecs)), key=lambda i: vecs[i][0].shape[0])
        ids, first = vecs[order[0]]
        if ids.shape[0] == 0:
            return EMPTY
        snap = self.weight.ctx.snap
        n_passages = snap.segments[self.si].reader.n_passages
        at: dict[int, np.ndarray] = {order[0]: first}  # clause -> its scores at ``ids``
        for i in order[1:]:
            p, s = vecs[i]
            sc = self.children[i][1]
            # a plain term's scores are all above 0, so a read of 0.0 means absent; an expanded (blended)
            # term's idf can fall below 0 in a shard's first phase: it is searched instead
            if type(sc) is TermScorer and ids.shape[0] * GATHER_DENSE > n_passages + p.shape[0]:
                if p.shape[0] * DENSE_RATIO > n_passages and snap.keeps(8 * n_passages):
                    got = sc.dense_scores()[ids]  # a frequent term: its dense scores are kept
                else:
                    acc = np.zeros(n_passages, dtype=np.float64)
                    acc[p] = s
                    got = acc[ids]
                hit = got > 0.0
            else:
                idx = p.searchsorted(ids)
                np.minimum(idx, p.shape[0] - 1, out=idx)
                hit = p[idx] == ids
                got = s[idx]
            ids = ids[hit]
            if ids.shape[0] == 0:
                return EMPTY
            at = {c: v[hit] for c, v in at.items()}
            at[i] = got[hit]
        total = at[0]
        for c in range(1, len(vecs)):
            total = total + at[c]  # clause order: ((s0 + s1) + s2), as the general path adds
        return ids, total

    def _not_matches(self, sc: Scorer, keys: tuple[str, ...]) -> list[np.ndarray]:
        """Passages of this segment a NOT clause matches: under the weight's language, and for a plain
        word under every other language of the index too (a document's passages can be detected as
        different languages); only passage ids are read for the other languages."""
        found = [sc.vec()[0]]
        for key in keys:
            found.append(sc.weight.ctx.postings(key)[self.si][0])
        return found

    def _floor(self, plain: list[TermScorer | None], top_n: int) -> float:
        """A score every passage of this segment's ``top_n`` best reaches: the ``top_n``-th best score
        of any single term (a passage's sum is at least each of its terms' scores). 0.0 when unknown.

        Only for passage-level ranking: with one passage per document, or ``per_document=False``.
        """
        ctx = self.weight.ctx
        reader = ctx.snap.segments[self.si].reader
        if not top_n or top_n > TOP_SCORES or (ctx.per_document and reader.n_docs != reader.n_passages):
            return 0.0
        floor = 0.0
        for t in plain:
            if t is not None:
                top = t.arrays()[2]
                if top.shape[0] >= top_n:
                    floor = max(floor, float(top[top_n - 1]))
        return floor

    def _masked_floor(
        self, scored: list[Vec], plain: list[TermScorer | None], top_n: int, tops: list[np.ndarray | None]
    ) -> float:
        """``_floor`` among the passages a filter keeps (``scored`` already masked): the ``top_n``-th best
        of each plain term's kept scores (``tops``: the best kept, where cached), under the same conditions."""
        ctx = self.weight.ctx
        reader = ctx.snap.segments[self.si].reader
        if not top_n or top_n > TOP_SCORES or (ctx.per_document and reader.n_docs != reader.n_passages):
            return 0.0
        floor = 0.0
        for (_, s), t, top in zip(scored, plain, tops):
            if t is not None and s.shape[0] >= top_n:
                if top is not None:
                    floor = max(floor, float(top[top_n - 1]))
                else:
                    floor = max(floor, float(np.partition(s, s.shape[0] - top_n)[s.shape[0] - top_n]))
        return floor

    def explain(self, pid: int) -> Explanation:
        w = self.weight
        matched = value_at(self.vec(), pid) is not None
        parts: list[Explanation] = []
        reader = w.ctx.snap.segments[self.si].reader
        for (occ, sc), keys in zip(self.children, w.not_keys):
            e = sc.explain(pid)
            if occ == MUST_NOT:
                if e.value > 0:
                    parts.append(Explanation(0.0, "excluded: matches a NOT clause", [e]))
                elif value_at(documents_of(reader, self._not_matches(sc, keys)), pid) is not None:
                    parts.append(Explanation(0.0, "excluded: another passage of this document matches a NOT clause"))
                continue
            if occ == FILTER:
                if value_at(sc.vec(), pid) is None:
                    parts.append(Explanation(0.0, "excluded: does not pass a filter", [e]))
                continue
            if e.value > 0 or occ == MUST:
                parts.append(e if occ == SHOULD else Explanation(e.value, f"{occ} clause, sum of:", [e]))
        if not matched:
            return Explanation(0.0, "no match", parts)
        return Explanation(sum(p.value for p in parts), "sum of:", parts)


def _sum_at(ids: np.ndarray, scored: list[Vec]) -> np.ndarray:
    """Each of ``ids``' sum of its scores in ``scored``, clause by clause (the same float order whatever
    the segment layout)."""
    acc = np.zeros(ids.shape[0], dtype=np.float64)
    for p, s in scored:
        if p.shape[0] == 0:
            continue
        idx = p.searchsorted(ids)
        idx_c = np.minimum(idx, p.shape[0] - 1)
        hit = p[idx_c] == ids
        acc[hit] += s[idx_c[hit]]
    return acc


def _best(scores: np.ndarray) -> np.ndarray:
    """The ``TOP_SCORES`` best of ``scores`` (all when fewer), descending, in a new array."""
    top = scores.copy()
    n = top.shape[0]
    if n > TOP_SCORES:
        top.partition(n - TOP_SCORES)
        top = top[n - TOP_SCORES :]
    top.sort()
    return top[::-1].copy()


def _total(scored: list[Vec]) -> int:
    """How many postings the clauses hold together."""
    total = 0
    for p, _ in scored:
        total += p.shape[0]
    return total


def _dense(total: int, n_passages: int) -> bool:
    """Whether clauses of ``total`` postings over ``n_passages`` are cheaper to add up in a dense array."""
    return total * DENSE_RATIO > n_passages or (n_passages <= DENSE_SMALL and n_passages < 12_000 + 18 * total)


def _gather_sum(ids: np.ndarray, scored: list[Vec]) -> np.ndarray:
    """``_sum_at`` when every clause of ``scored`` holds every one of ``ids`` (a conjunction): each
    clause's scores gathered at the ids' positions and added in clause order (the same floats:
    0 + s1 is s1)."""
    acc: np.ndarray | None = None
    for p, s in scored:
        got = s[p.searchsorted(ids)]
        acc = got if acc is None else acc + got
    return acc  # type: ignore[return-value]


def _bool_mask(sc: Scorer) -> np.ndarray | None:
    """The bool-per-passage mask of a mask scorer (``weights.MaskWeight``), or None for any other scorer."""
    get = getattr(sc, "passage_mask", None)
    return get() if get is not None else None


# -- phrase matching -----------------------------------------------------------------------------------------


def phrase_matches(
    ctx, prefix: str, terms: tuple[str, ...], offsets: tuple[int, ...], si: int, slop: int = 0
) -> Vec:
    """(passage ids, phrase counts) of a phrase in segment ``si``; with ``slop``, sloppy frequencies
    (``search.sloppy``: each match within ``slop`` position moves counts 1 / (1 + its distance)).

    Candidates are the passages holding every term (rarest term first); then each term's positions
    in those passages become sorted keys (passage << 32 | position - offset) and are intersected.
    """
    lists = []
    for t, off in zip(terms, offsets):
        pids, _ = ctx.postings(prefix + t)[si]
        if pids.shape[0] == 0:
            return EMPTY
        lists.append((pids.shape[0], ctx.slot(prefix + t, si), off, pids))
    lists.sort(key=lambda x: x[0])
    cand = lists[0][3]
    for *_, pids in lists[1:]:
        cand = intersect_sorted(cand, pids)
        if cand.shape[0] == 0:
            return EMPTY
    # a word twice in a phrase would let one occurrence stand for both in a sloppy window (Lucene
    # tracks repeats apart); such a phrase is matched exactly instead
    if slop and len(set(terms)) == len(terms):
        positions = [term_positions(ctx, si, prefix, ctx.slot(prefix + t, si), cand) for t in terms]
        return sloppy_frequencies(positions, list(offsets), cand, slop)
    keys: np.ndarray | None = None
    last = len(lists) - 1
    for i, (_, slot, off, _) in enumerate(lists):
        ppid, ppos = term_positions(ctx, si, prefix, slot, cand)
        k = (ppid << 32) | (ppos - off + (1 << 31))
        keys = k if keys is None else intersect_sorted(keys, k)
        if keys.shape[0] == 0:
            return EMPTY
        # later terms only need the passages still in the running
        if i < last and keys.shape[0] < cand.shape[0]:
            cand = sorted_unique(keys >> 32)
    assert keys is not None
    owners = keys >> 32
    starts = run_firsts(owners).nonzero()[0]
    return owners[starts], np.diff(starts, append=owners.shape[0])


def term_positions(ctx, si: int, prefix: str, slot: int, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(passage id, position), int64, of a term's occurrences in the passages ``cand`` of segment ``si``.

    Candidates that cover a good part of the term's postings (phrases of common words: at Indonesian 50k
    most phrases pair words found in most passages) read the term's whole decoded positions, which
    the snapshot keeps (common words recur across phrases); a few candidates decode their own alone.
    """
    reader = ctx.snap.segments[si].reader
    snap = ctx.snap
    pids, tfs = reader.postings(slot)
    full_key = (si, "positions", prefix, slot)
    full = snap.peek_arrays(full_key)
    if full is None and cand.shape[0] * FULL_POSITIONS_RATIO >= pids.shape[0]:
        full = snap.cached_arrays(full_key, lambda: reader.positions(slot), 0)
    if full is not None and cand.shape[0] == pids.shape[0]:
        return full[0], full[1]  # every posting is a candidate
    starts = snap.cached_arrays((si, "pos", prefix, slot), lambda: (reader.position_starts(slot),))[0]
    if full is None:
        return reader.positions_of(slot, cand, starts)
    idx = pids.searchsorted(cand)
    lens = tfs[idx]
    run_start = lens.cumsum() - lens
    at = (starts[idx] - run_start).repeat(lens) + np.arange(int(run_start[-1] + lens[-1]) if lens.shape[0] else 0)
    return cand.repeat(lens), full[1][at]


# -- sparse vector algebra -----------------------------------------------------------------------------------


def documents_of(reader, pid_lists: list[np.ndarray]) -> Vec:
    """Every passage of the documents the passages in ``pid_lists`` belong to, sorted: what NOT clauses
    remove, because excluding a word means excluding the documents that contain it. One mask over the
    segment's passages, however many clauses (a 10,000-word query must not concatenate them)."""
    if not any(p.shape[0] for p in pid_lists):
        return EMPTY
    hit = np.zeros(reader.n_passages, dtype=bool)
    for p in pid_lists:
        hit[p] = True
    p_doc = reader.p_doc
    every = np.flatnonzero(np.isin(p_doc, sorted_unique(p_doc[hit])))
    return every, np.zeros(every.shape[0], dtype=np.float64)


def intersect_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The common values of two sorted arrays of unique values, by binary search of the shorter one."""
    if a.shape[0] > b.shape[0]:
        a, b = b, a
    if a.shape[0] == 0:
        return a
    idx = b.searchsorted(a)
    np.minimum(idx, b.shape[0] - 1, out=idx)
    return a[b[idx] == a]


def sparse_sum(scored: list[Vec]) -> Vec:
    """Union of a few short clauses with summed scores: one stable sort of the passage ids numbers the
    distinct passages, then each clause adds its scores at its passages' numbers, clause after clause
    (((0 + s1) + s2) + s3, as the dense path and ``explain`` add them; ``np.add.reduceat`` would add
    s1 + (s2 + s3) from three clauses on).
    """
    pids = np.concatenate([p for p, _ in scored])
    n = pids.shape[0]
    if n == 0:
        return EMPTY
    order = pids.argsort(kind="stable")
    ordered = pids[order]
    first = run_firsts(ordered)
    ids = ordered[first]
    if ids.shape[0] == n:  # no passage in two clauses: each sum is one score
        return ids, np.concatenate([s for _, s in scored])[order]
    number = np.empty(n, dtype=np.intp)
    number[order] = first.cumsum() - 1
    acc = np.zeros(ids.shape[0], dtype=np.float64)
    lo = 0
    for p, s in scored:  # a clause's passages are distinct: one fancy add per clause
        hi = lo + p.shape[0]
        acc[number[lo:hi]] += s
        lo = hi
    return ids, acc


def dense_combine(
    scored: list[Vec], must: list[Vec], must_not: list[Vec], n_passages: int, floor: float = 0.0, positive: bool = False
) -> Vec:
    """Combine clauses over a dense per-passage array: cheaper than set operations for long postings.

    Scores are added clause by clause, so each passage's sum has the same order as the sparse path.
    A passage matches when it is in a clause (every MUST clause, when there are some), whatever its
    sum: a group of filters or of NOT words matches with 0.0, and a shard's first phase may score an
    expanded word below 0. ``positive``: every clause scores above 0 (plain words), so a nonzero sum
    is a match and no match mask is built. With ``floor`` > 0 only passages reaching it are returned
    (fewer to select from later)."""
    acc = np.zeros(n_passages, dtype=np.float64)
    for p, s in scored:
        acc[p] += s  # passage ids are unique within a clause
    if must:
        count = np.zeros(n_passages, dtype=np.int32)
        for p, _ in must:
            count[p] += 1
        ok = count == len(must)
    elif floor > 0.0 and not must_not:  # a zero or negative sum cannot reach a positive floor
        ids = (acc >= floor).nonzero()[0]
        return ids, acc[ids]
    elif positive and not must_not:
        ids = acc.nonzero()[0]
        return ids, acc[ids]
    else:
        ok = np.zeros(n_passages, dtype=bool)
        for p, _ in scored:
            ok[p] = True
    for p, _ in must_not:
        ok[p] = False
    ids = ok.nonzero()[0]
    return ids, acc[ids]


def union(pid_lists: list[np.ndarray], n_passages: int) -> np.ndarray:
    """The sorted union of sorted passage-id arrays (a mask when they are long)."""
    total = sum(p.shape[0] for p in pid_lists)
    if total * 8 > n_passages:
        mask = np.zeros(n_passages, dtype=bool)
        for p in pid_lists:
            mask[p] = True
        return mask.nonzero()[0]
    return sorted_unique(np.concatenate(pid_lists))


def value_at(vec: Vec, pid: int) -> float | None:
    """The value of ``vec`` at passage ``pid`` (None: absent)."""
    p, s = vec
    i = int(p.searchsorted(pid))
    if i < p.shape[0] and int(p[i]) == pid:
        return float(s[i])
    return None


def tf_at(postings: tuple[np.ndarray, np.ndarray], pid: int) -> int:
    """The term frequency at passage ``pid`` of (passage ids, tfs) postings (0: absent)."""
    p, tf = postings
    i = int(p.searchsorted(pid))
    if i < p.shape[0] and int(p[i]) == pid:
        return int(tf[i])
    return 0
