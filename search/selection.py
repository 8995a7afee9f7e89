"""Top-k selection over score arrays: partial selection first, then sort only the winners; and the
collection of a search's rows over every (language, segment) into one ranking."""

from __future__ import annotations

import itertools
from bisect import bisect_right
from typing import TYPE_CHECKING

import numpy as np

from .errors import InvalidArgument

if TYPE_CHECKING:
    from .searcher import Snapshot


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, plus every index tied with the k-th (unordered).

    Ties at the boundary are all kept so the caller can break them by document id and passage,
    which keeps results deterministic and equal to what a fresh index returns.
    """
    n = scores.shape[0]
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if k >= n:
        return np.arange(n)
    part = np.argpartition(scores, n - k)
    threshold = scores[part[n - k]]
    return (scores >= threshold).nonzero()[0]


def check_count(name: str, value: object) -> int:
    """``value`` as an int >= 0 (numpy integers too), or ``InvalidArgument`` naming ``name``."""
    if type(value) is int and value >= 0:  # the common case, before the checks below
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidArgument(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


Row = tuple[float, str, int, str, int, int]  # (score, doc id, passage no, lang, segment, pid)
SORT_ALL = 256  # up to this many candidate rows, top_rows sorts them all instead of partitioning
SORT_LIST = 64  # up to this many, it sorts them as Python numbers (no numpy call)


def top_rows(
    snap: Snapshot,
    found: list[tuple[str, int, np.ndarray, np.ndarray]],
    weights: dict[str, float],
    need: int,
    per_document: bool,
) -> list[Row]:
    """The best ``need`` rows (score, doc id, passage no, lang, segment, pid) of ``found`` (lang, segment,
    passage ids, unweighted scores) after weighing each language's scores, ordered by score, then
    document id, then passage number (the order a single fresh index gives, whatever the segments).

    Partial selection picks the best candidates (all ties at the boundary included); only tied scores
    need document ids, which are decoded for the picked rows alone. With ``per_document`` a document's
    later passages are skipped, and the selection widens until enough documents are found.
    """
    if not found:
        return []
    n = 0
    for f in found:
        n += f[2].shape[0]
    if n <= SORT_LIST:
        return _top_rows_listed(snap, found, weights, need, per_document)
    if len(found) == 1:
        lg, si, pids, scores = found[0]
        if weights[lg] != 1.0:
            scores = scores * weights[lg]
        bounds = [0]
    else:
        scores = np.concatenate([f[3] * weights[f[0]] if weights[f[0]] != 1.0 else f[3] for f in found])
        pids = np.concatenate([f[2] for f in found])
        # where each part begins in the joined arrays: a picked row's part by bisection (no per-row array)
        bounds = list(itertools.accumulate((f[2].shape[0] for f in found[:-1]), initial=0))
    segments = snap.segments
    m = need
    n = scores.shape[0]
    while True:
        if n <= SORT_ALL:  # few rows: one sort beats a partition, a mask and a sort of the winners
            order = (-scores).argsort(kind="stable")
            if m < n:
                order = order[: int(np.count_nonzero(scores >= scores[order[m - 1]]))]
        else:
            picked = top_k_indices(scores, m)
            order = picked[(-scores[picked]).argsort(kind="stable")]
        rows = []
        # a few rows: Python ints and floats read once, cheaper than numpy scalar reads row by row
        for i, pid, score in zip(order.tolist(), pids[order].tolist(), scores[order].tolist()):
            lg, si = found[bisect_right(bounds, i) - 1][:2]
            doc_id, p_no = segments[si].reader.passage_row(pid)
            rows.append((score, doc_id, p_no, lg, si, pid))
        rows.sort(key=_row_order)
        if per_document:
            seen: set[str] = set()
            rows = [row for row in rows if not (row[1] in seen or seen.add(row[1]))]
        if len(rows) >= need or order.shape[0] >= n:
            return rows[:need]
        m = max(m * 4, need + (need - len(rows)) * 8)


def _top_rows_listed(
    snap: Snapshot, found: list[tuple[str, int, np.ndarray, np.ndarray]], weights: dict[str, float], need: int,
    per_document: bool,
) -> list[Row]:
    """``top_rows`` for a few candidates (at most ``SORT_LIST``): read as Python numbers and sorted by
    ``list.sort``, since a numpy call costs more than sorting them. Picks the same rows: the ``m`` best
    scores and every score tied with the m-th (the weighted scores are the same float products)."""
    cands: list[tuple[float, int, int]] = []
    for fi, (lg, _, pids, scores) in enumerate(found):
        w = weights[lg]
        cands.extend(zip((scores if w == 1.0 else scores * w).tolist(), itertools.repeat(fi), pids.tolist()))
    cands.sort(reverse=True)  # by score (equal scores in any order: every tie with the m-th is taken)
    segments = snap.segments
    m, n = need, len(cands)
    done = 0  # candidates already made rows
    rows: list[Row] = []
    while True:
        end = n if m >= n else m
        if end < n:
            bar = cands[end - 1][0]
            while end < n and cands[end][0] >= bar:  # every score tied with the m-th
                end += 1
        for score, fi, pid in cands[done:end]:
            lg, si = found[fi][:2]
            doc_id, p_no = segments[si].reader.passage_row(pid)
            rows.append((score, doc_id, p_no, lg, si, pid))
        done = end
        rows.sort(key=_row_order)
        kept = rows
        if per_document:
            seen: set[str] = set()
            kept = [row for row in rows if not (row[1] in seen or seen.add(row[1]))]
        if len(kept) >= need or end >= n:
            return kept[:need]
        m = max(m * 4, need + (need - len(kept)) * 8)


def _row_order(row: Row) -> tuple[float, str, int]:
    return (-row[0], row[1], row[2])
