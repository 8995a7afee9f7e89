"""Snippets and highlights from token offsets: which words of a passage matched, and its best window.

The passage is analyzed again with its own language's analyzer (offsets included), so a query "cross"
highlights "crossing". The window is scored as SQLite FTS5 does: most distinct query terms first, then
most matches, then a window that starts a sentence; ties go to the earliest window.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import numpy as np

from analyzers import Analyzer
from analyzers.base import TOKEN_RE

SNIPPET_WORDS = 32
# Matches of one passage that take part in choosing its snippet window (all of them are highlighted).
MAX_WINDOW_MATCHES = 50_000
_SENTENCE_END = re.compile(r"[.!?\n]")


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
    bounds = np.fromiter((x for m in TOKEN_RE.finditer(text) for x in m.span()), dtype=np.int64)
    n = len(bounds) // 2
    if n <= words:
        return 0, len(text)
    starts, ends = bounds[0::2], bounds[1::2]
    matches = matches[:MAX_WINDOW_MATCHES]
    at = np.fromiter((s for _, s, _ in matches), dtype=np.int64, count=len(matches))
    if len(at) > 1 and bool((at[1:] < at[:-1]).any()):  # a caller's list out of text order
        order = np.argsort(at, kind="stable")
        at, matches = at[order], [matches[i] for i in order.tolist()]
    word = np.maximum(np.searchsorted(starts, at, side="right") - 1, 0)  # the word holding each match
    previous = np.empty(len(matches), dtype=np.int64)  # the word of the term's previous match
    last: dict[str, int] = {}
    for i, (match, w) in enumerate(zip(matches, word.tolist())):
        previous[i] = last.get(match[0], -words)
        last[match[0]] = w
    # window start c holds the match at word w when w - words < c <= w, and counts it as a distinct term
    # when also its term's previous match is before c
    size = n + 1
    leave = np.bincount(word + 1, minlength=size)
    count = np.cumsum(np.bincount(np.maximum(word - words + 1, 0), minlength=size) - leave)
    distinct = np.cumsum(np.bincount(np.maximum(np.maximum(previous, word - words) + 1, 0), minlength=size) - leave)
    # sentence starts: word 0 and every word after a gap holding . ! ? or a line break
    stops = np.fromiter((m.start() for m in _SENTENCE_END.finditer(text)), dtype=np.int64)
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
    end_word = min(best + words, n) - 1
    start = int(starts[best]) if best else 0
    end = int(ends[end_word])
    while end < len(text) and text[end] in ".!?,;:)\"'\u201d":
        end += 1
    return start, end


def make_snippet(
    text: str, analyzer: Analyzer, terms: Collection[str], words: int = SNIPPET_WORDS
) -> tuple[str, list[tuple[int, int]], list[tuple[int, int]]]:
    """(snippet, highlights in the snippet, highlights in ``text``): plain text with offset pairs."""
    matches = highlight_spans(text, analyzer, terms)
    start, end = best_window(text, matches, words)
    full = [(s, e) for _, s, e in matches]
    inside = [(s - start, e - start) for s, e in full if s >= start and e <= end]
    return text[start:end], inside, full
