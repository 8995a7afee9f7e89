"""Block-max evaluation of a ranked OR: only the postings blocks that can reach a segment's top n.

A segment stores, per postings block of 128 passages, the block's last passage id, its largest tf and
its smallest passage length (format 2). BM25 grows with tf and falls with length, so
``idf * (max_tf / (max_tf + k1 * (1 - b + b * min_len / avgdl)) + delta)`` bounds every score in the block
(Ding & Suel, "Faster top-k document retrieval using block-max indexes", SIGIR 2011). Here, with numpy:

1. a threshold: the exact scores of the passages in the blocks with the highest bounds give a score
   the n-th best passage (or document) reaches at least;
2. a block of one term survives when its bound plus the other terms' largest bounds over the same
   passage range (the blocks that overlap it) reach the threshold; no other block can hold a passage
   of the top n, whichever terms that passage has;
3. the passages of the surviving blocks are scored exactly: every term's contribution is read from the
   block of that term holding the passage (decoded for those blocks only), summed in clause order.

The result holds every passage scoring at least the threshold with its exact score, the same float
as exhaustive evaluation gives (same per-term arithmetic, same summation order), so the top n of a
segment are those of exhaustive evaluation, ties included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import bm25
from .arrays import sorted_unique

if TYPE_CHECKING:
    from .scorers import TermScorer, Vec

# bounds are widened by this relative margin so float rounding in the bound never drops a passage
BOUND_SLACK = 1e-9


class TermBlocks:
    """One term's postings blocks in one segment: skip data, score bounds, and exact block decoding."""

    __slots__ = ("scorer", "reader", "slot", "last", "first", "ub", "live", "_decoded")

    def __init__(self, scorer: TermScorer) -> None:
        w = scorer.weight
        ctx = w.ctx
        seg = ctx.snap.segments[scorer.si]
        self.scorer = scorer
        self.reader = seg.reader
        self.live = seg.live_passages
        self.slot = ctx.slot(w.key, scorer.si)
        self._decoded: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if self.slot < 0:
            self.last = np.empty(0, dtype=np.int64)
            self.first = self.last
            self.ub = np.empty(0, dtype=np.float64)
            return
        last, max_tf, min_len = self.reader.block_bounds(self.slot)
        self.last = last.astype(np.int64)
        self.first = np.empty_like(self.last)
        if self.last.shape[0]:
            self.first[0] = 0
            self.first[1:] = self.last[:-1] + 1
        st = w.stats
        norm = bm25.length_norms(min_len, st.avgdl, ctx.k1, ctx.b)
        self.ub = bm25.term_scores(w.idf, max_tf, norm, w.delta) * (1.0 + BOUND_SLACK)

    @property
    def n_blocks(self) -> int:
        return int(self.last.shape[0])

    def blocks_of(self, pids: np.ndarray) -> np.ndarray:
        """The block that would hold each of ``pids`` (sorted), -1 past the last block."""
        j = self.last.searchsorted(pids)
        j[j >= self.n_blocks] = -1
        return j

    def postings(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(passage ids, tfs) of the live postings in ``blocks`` (sorted unique block numbers)."""
        want = [int(j) for j in blocks if int(j) not in self._decoded]
        if want:
            got = self.reader.postings_blocks(self.slot, np.asarray(want, dtype=np.int64))
            for j, (p, t) in zip(want, got):
                if self.live is not None:
                    keep = self.live[p]
                    p, t = p[keep], t[keep]
                self._decoded[j] = (p, t)
        parts = [self._decoded[int(j)] for j in blocks]
        if not parts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        return np.concatenate([p for p, _ in parts]), np.concatenate([t for _, t in parts])

    def scores_at(self, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of ``cand`` holding the term, their scores), reading only the blocks holding ``cand``."""
        if self.n_blocks == 0 or cand.shape[0] == 0:
            return np.zeros(cand.shape[0], dtype=bool), np.empty(0, dtype=np.float64)
        j = self.blocks_of(cand)
        blocks = sorted_unique(j[j >= 0])
        pids, tfs = self.postings(blocks)
        if pids.shape[0] == 0:
            return np.zeros(cand.shape[0], dtype=bool), np.empty(0, dtype=np.float64)
        idx = np.minimum(pids.searchsorted(cand), pids.shape[0] - 1)
        hit = pids[idx] == cand
        w = self.scorer.weight
        tf = tfs[idx[hit]]
        scores = bm25.term_scores(w.idf, tf, w.norms(self.scorer.si)[cand[hit]], w.delta)
        return hit, scores


def _range_max(ub: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(ub[lo[i] : hi[i] + 1]) for every i (lo <= hi, both < len(ub)), with one ``reduceat``."""
    padded = np.append(ub, 0.0)
    idx = np.empty(2 * lo.shape[0], dtype=np.int64)
    idx[0::2] = lo
    idx[1::2] = hi + 1
    return np.maximum.reduceat(padded, idx)[0::2]


def _other_bounds(terms: list[TermBlocks], t: int) -> np.ndarray:
    """Per block of term ``t``: the sum over the other terms of their largest bound in the blocks that
    overlap its passage range (0 where a term has no block there)."""
    me = terms[t]
    total = np.zeros(me.n_blocks, dtype=np.float64)
    for s, other in enumerate(terms):
        if s == t or other.n_blocks == 0:
            continue
        lo = other.last.searchsorted(me.first)  # first block whose last passage >= the range start
        hi = np.minimum(other.last.searchsorted(me.last), other.n_blocks - 1)
        inside = lo < other.n_blocks
        if inside.any():
            total[inside] += _range_max(other.ub, lo[inside], np.maximum(hi[inside], lo[inside]))
    return total


def exact_scores(terms: list[TermBlocks], cand: np.ndarray) -> np.ndarray:
    """Exact ranked-OR scores of the passages ``cand`` (sorted): each term's score added in clause
    order, starting from 0.0, as exhaustive evaluation adds them."""
    acc = np.zeros(cand.shape[0], dtype=np.float64)
    for tb in terms:
        hit, scores = tb.scores_at(cand)
        acc[hit] += scores
    return acc


def _threshold(scores: np.ndarray, cand: np.ndarray, top_n: int, p_doc: np.ndarray | None) -> float:
    """A score the ``top_n``-th best passage (with ``p_doc``: document, by its best passage) of the
    segment reaches: the ``top_n``-th best of these exact scores; 0.0 when there are fewer."""
    if p_doc is not None:
        docs = p_doc[cand]
        order = np.lexsort((-scores, docs))
        first = np.concatenate(([True], docs[order][1:] != docs[order][:-1]))
        scores = scores[order][first]
    if scores.shape[0] < top_n:
        return 0.0
    return float(np.partition(scores, scores.shape[0] - top_n)[scores.shape[0] - top_n])


def block_max_or(scorers: list[TermScorer], top_n: int, per_document: bool) -> Vec:
    """The passages of a ranked OR of terms in one segment that can be among its ``top_n`` best (by
    passage, or by document with ``per_document``), with their exact scores, read block by block."""
    terms = [TermBlocks(sc) for sc in scorers]
    reader = scorers[0].weight.ctx.snap.segments[scorers[0].si].reader
    p_doc = reader.p_doc if per_document and reader.n_docs != reader.n_passages else None
    # 1. a threshold from the blocks with the highest bounds
    flat = [(float(tb.ub[j]), t, int(j)) for t, tb in enumerate(terms) for j in np.argsort(-tb.ub)[:4]]
    flat.sort(reverse=True)
    want = max(2, -(-2 * top_n // 128))
    seed_blocks: dict[int, list[int]] = {}
    for _, t, j in flat[: want + len(terms)]:
        seed_blocks.setdefault(t, []).append(j)
    seeds = [terms[t].postings(sorted_unique(np.asarray(js, dtype=np.int64)))[0] for t, js in seed_blocks.items()]
    cand = sorted_unique(np.concatenate(seeds)) if seeds else np.empty(0, dtype=np.int64)
    theta = _threshold(exact_scores(terms, cand), cand, top_n, p_doc) if cand.shape[0] else 0.0
    # 2. the blocks that can reach it
    found = []
    for t, tb in enumerate(terms):
        if tb.n_blocks == 0:
            continue
        keep = np.flatnonzero(tb.ub + _other_bounds(terms, t) >= theta)
        if keep.shape[0]:
            found.append(tb.postings(keep)[0])
    if not found:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    # 3. exact scores of their passages; those below the threshold cannot rank
    cand = sorted_unique(np.concatenate(found))
    acc = exact_scores(terms, cand)
    ok = acc >= theta if theta > 0.0 else acc > 0.0
    return cand[ok], acc[ok]
