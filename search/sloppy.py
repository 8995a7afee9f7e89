"""Sloppy phrase matching: how often a phrase's words occur near their places, each match weighted by its
distance, as Lucene's ``SloppyPhraseScorer`` counts it.

A phrase ``"a b c"~N`` matches where every word sits within ``N`` position moves of its place in the
phrase: with each word's position shifted back by its offset in the phrase, a match's length is the
largest shifted position minus the smallest, and it counts when that length is at most ``N``. Each
match adds ``1 / (1 + length)`` to the phrase's frequency (Lucene's ``computeSlopFactor``), so an exact
occurrence counts 1, one word apart 1/2, and BM25 then scores the frequency like a term's. The matches
are the ones Lucene's sliding window finds: take the word at the smallest shifted position, move it
forward while that does not pass the next smallest (keeping the shortest length), count the match,
repeat until a word runs out of positions. Pure: arrays in, arrays out; knows nothing of segments.
"""

from __future__ import annotations

import heapq

import numpy as np


def sloppy_frequencies(
    positions: list[tuple[np.ndarray, np.ndarray]], offsets: list[int], candidates: np.ndarray, slop: int
) -> tuple[np.ndarray, np.ndarray]:
    """(passage ids, sloppy frequencies > 0) of a phrase in ``candidates`` (sorted passage ids holding
    every word). ``positions[i]`` is word i's (passage id, position) pairs in those passages, ordered by
    passage then position; ``offsets[i]`` its place in the phrase."""
    n = len(positions)
    bounds = []
    for ppid, _ in positions:
        lo = np.searchsorted(ppid, candidates, side="left")
        hi = np.searchsorted(ppid, candidates, side="right")
        bounds.append((lo.tolist(), hi.tolist()))
    shifted = [(ppos.astype(np.int64) - off).tolist() for (_, ppos), off in zip(positions, offsets)]
    out_pids: list[int] = []
    out_freqs: list[float] = []
    for c, pid in enumerate(candidates.tolist()):
        lists = [shifted[i][bounds[i][0][c] : bounds[i][1][c]] for i in range(n)]
        if any(not x for x in lists):
            continue
        freq = _phrase_freq(lists, slop)
        if freq > 0.0:
            out_pids.append(pid)
            out_freqs.append(freq)
    return np.array(out_pids, dtype=np.int64), np.array(out_freqs, dtype=np.float64)


def _phrase_freq(lists: list[list[int]], slop: int) -> float:
    """Lucene's ``SloppyPhraseScorer.phraseFreq`` over each word's sorted shifted positions."""
    idx = [0] * len(lists)
    heap = [(lst[0], i) for i, lst in enumerate(lists)]
    end = max(p for p, _ in heap)
    heapq.heapify(heap)
    freq = 0.0
    pos, i = heapq.heappop(heap)
    match = end - pos
    nxt = heap[0][0] if heap else pos
    while True:
        idx[i] += 1  # advance the word at the smallest position
        if idx[i] >= len(lists[i]):
            break
        pos = lists[i][idx[i]]
        end = max(end, pos)
        if not heap or pos > nxt:  # done shortening this match: count it, take the next smallest
            if match <= slop:
                freq += 1.0 / (1.0 + match)
            heapq.heappush(heap, (pos, i))
            pos, i = heapq.heappop(heap)
            nxt = heap[0][0] if heap else pos
            match = end - pos
        else:
            match = min(match, end - pos)
    if match <= slop:
        freq += 1.0 / (1.0 + match)
    return freq
