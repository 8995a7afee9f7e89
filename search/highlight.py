"""Snippets and highlights from token offsets: which words of a passage matched, and its best window.

The passage is analyzed again with its own language's analyzer (offsets included), so a query "cross"
highlights "crossing". The window is scored as SQLite FTS5 does: most distinct query terms first, then
most matches, then a window that starts a sentence; ties go to the earliest window.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Collection
from itertools import chain
from operator import itemgetter

import numpy as np

from analyzers import Analyzer
from analyzers.base import TOKEN_RE

SNIPPET_WORDS = 32
# Matches of one passage that take part in choosing its snippet window (all of them are highlighted).
MAX_WINDOW_MATCHES = 50_000
# Up to this many matches a window is chosen by counting in Python (``_best_window_few``); more take the
# linear numpy path.
FEW_MATCHES = 8
_SENTENCE_END = re.compile(r"[.!?\n]")
# C-level getters: with map() they walk matches and regex matches with no Python step per item
_TERM, _START, _END = itemgetter(0), itemgetter(1), itemgetter(2)
_SPAN, _MATCH_START = re.Match.span, re.Match.start


def highlight_spans(text: str, analyzer: Analyzer, terms: Collection[str]) -> list[tuple[str, int, int]]:
    """(term, start, end) of every token of ``text`` whose term is one of ``terms``."""
    return analyzer.match_spans(text, terms)


def best_window(text: str, matches: list[tuple[str, int, int]], words: int = SNIPPET_WORDS) -> tuple[int, int]:
    """The [start, end) character span of the best ``words``-word window of ``text`` for ``matches``.

    Candidate windows start at (or 4 words before) a match, or at its sentence's start. Nothing is
    sorted and no candidate is visited per match: each match adds one to the match count of every
    window start that holds it, and one to the distinct terms of the starts where it is its term's
    first match inside the window (the starts after its term's previous match), both as difference
    arrays over word positions. So the cost is linear in the words and matches of the passage.
    ``matches`` come in text order, as ``highlight_spans`` gives them (a list out of order is put in
    order first). Only the first ``MAX_WINDOW_MATCHES`` matches are considered: a passage of one word
    repeated a million times gets a window near its start rather than unbounded work.
    """
    if len(matches) <= FEW_MATCHES:
        return _best_window_few(text, matches, words)
    bounds = np.fromiter(chain.from_iterable(map(_SPAN, TOKEN_RE.finditer(text))), dtype=np.int64)
    n = len(bounds) // 2
    if n <= words:
        return 0, len(text)
    starts, ends = bounds[0::2], bounds[1::2]
    matches = matches[:MAX_WINDOW_MATCHES]
    at = np.fromiter(map(_START, matches), dtype=np.int64, count=len(matches))
    if len(at) > 1 and bool((at[1:] < at[:-1]).any()):  # a caller's list out of text order
        order = np.argsort(at, kind="stable")
        at, matches = at[order], [matches[i] for i in order.tolist()]
    word = np.maximum(np.searchsorted(starts, at, side="right") - 1, 0)  # the word holding each match
    # the word of each match's term's previous match (-words: none): matches grouped by term, in text
    # order within a term (a stable sort of small term numbers, which numpy does as a radix sort)
    ids = {t: i for i, t in enumerate(dict.fromkeys(map(_TERM, matches)))}
    term = np.fromiter(map(ids.__getitem__, map(_TERM, matches)), dtype=np.int64, count=len(matches))
    order = np.argsort(term.astype(np.uint16) if len(ids) <= 1 << 16 else term, kind="stable")
    previous = np.full(len(matches), -words, dtype=np.int64)
    same = term[order[1:]] == term[order[:-1]]
    previous[order[1:][same]] = word[order[:-1][same]]
    # window start c holds the match at word w when w - words < c <= w, and counts it as a distinct term
    # when also its term's previous match is before c
    size = n + 1
    leave = np.bincount(word + 1, minlength=size)
    count = np.cumsum(np.bincount(np.maximum(word - words + 1, 0), minlength=size) - leave)
    distinct = np.cumsum(np.bincount(np.maximum(np.maximum(previous, word - words) + 1, 0), minlength=size) - leave)
    # sentence starts: word 0 and every word after a gap holding . ! ? or a line break
    stops = np.fromiter(map(_MATCH_START, _SENTENCE_END.finditer(text)), dtype=np.int64)
    after = np.searchsorted(starts, stops, side="right")  # the first word starting after the stop
    inside = (after > 0) & (after < n)
    stops, after = stops[inside], after[inside]
    sentence = np.zeros(n, dtype=bool)
    sentence[0] = True
    sentence[after[stops >= ends[after - 1]]] = True
    sentence_of = np.maximum.accumulate(np.where(sentence, np.arange(n), 0))  # each word's sentence start
    last_start = n - words
    candidate = np.zeros(last_start + 1, dtype=bool)
    candidate[0] = True
    candidate[np.minimum(np.maximum(word - 4, 0), last_start)] = True
    candidate[np.minimum(word, last_start)] = True
    own = sentence_of[word]
    candidate[np.minimum(own[word - own < words // 2], last_start)] = True
    # most distinct terms, then most matches, then a sentence start; argmax keeps the earliest of ties
    score = (distinct[: last_start + 1] * (len(matches) + 1) + count[: last_start + 1]) * 2
    score += sentence[: last_start + 1]
    score[~candidate] = -1
    best = int(np.argmax(score))
    return _window_span(text, starts, ends, best, n, words)


def _window_span(text: str, starts, ends, best: int, n: int, words: int) -> tuple[int, int]:
    """The characters of the ``words``-word window starting at word ``best`` (closing punctuation kept)."""
    end_word = min(best + words, n) - 1
    start = int(starts[best]) if best else 0
    end = int(ends[end_word])
    while end < len(text) and text[end] in ".!?,;:)\"'\u201d":
        end += 1
    return start, end


def _best_window_few(text: str, matches: list[tuple[str, int, int]], words: int) -> tuple[int, int]:
    """``best_window`` for a passage with at most ``FEW_MATCHES`` matches (a search's usual hit), in
    plain Python: the same candidates and the same score, each candidate counted over the matches,
    where the difference arrays' dozen numpy calls cost ten times the counting (110 us a hit)."""
    spans = list(map(_SPAN, TOKEN_RE.finditer(text)))
    n = len(spans)
    if n <= words:
        return 0, len(text)
    starts = [a for a, _ in spans]
    ends = [b for _, b in spans]
    if any(matches[i][1] > matches[i + 1][1] for i in range(len(matches) - 1)):
        matches = sorted(matches, key=_START)  # a caller's list out of text order (stable, as argsort's)
    word = [max(bisect_right(starts, m[1]) - 1, 0) for m in matches]
    # each match's term's previous match's word, -words when it is the first
    seen: dict[str, int] = {}
    previous = []
    for m, w in zip(matches, word):
        previous.append(seen.get(m[0], -words))
        seen[m[0]] = w
    sentence = {0}
    for stop in map(_MATCH_START, _SENTENCE_END.finditer(text)):
        after = bisect_right(starts, stop)
        if 0 < after < n and stop >= ends[after - 1]:
            sentence.add(after)
    firsts = sorted(sentence)
    last_start = n - words
    candidates = {0}
    for w in word:
        candidates.add(min(max(w - 4, 0), last_start))
        candidates.add(min(w, last_start))
        own = firsts[bisect_right(firsts, w) - 1]  # the start of the sentence holding word w
        if w - own < words // 2:
            candidates.add(min(own, last_start))
    scale = len(matches) + 1
    best, best_score = 0, -1
    for c in sorted(candidates):  # ties keep the earliest start, as argmax does
        count = distinct = 0
        for w, prev in zip(word, previous):
            if w - words < c <= w:
                count += 1
                if max(prev, w - words) < c:
                    distinct += 1
        score = (distinct * scale + count) * 2 + (c in sentence)
        if score > best_score:
            best, best_score = c, score
    return _window_span(text, starts, ends, best, n, words)


def make_snippet(
    text: str, analyzer: Analyzer, terms: Collection[str], words: int = SNIPPET_WORDS
) -> tuple[str, list[tuple[int, int]], list[tuple[int, int]]]:
    """(snippet, highlights in the snippet, highlights in ``text``): plain text with offset pairs."""
    matches = highlight_spans(text, analyzer, terms)
    start, end = best_window(text, matches, words)
    starts = list(map(_START, matches))  # in text order
    full = list(zip(starts, map(_END, matches)))
    window = full[bisect_left(starts, start) : bisect_right(starts, end)]
    inside = [(s - start, e - start) for s, e in window if e <= end]
    return text[start:end], inside, full
