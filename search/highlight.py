"""Snippets and highlights from token offsets: which words of a passage matched, and its best window.

The passage is analyzed again with its own language's analyzer (offsets included), so a query "cross"
highlights "crossing". The window is scored as SQLite FTS5 does: most distinct query terms first, then
most matches, then a window that starts a sentence; ties go to the earliest window.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection

from analyzers import Analyzer
from analyzers.base import TOKEN_RE

SNIPPET_WORDS = 32
# Matches of one passage that take part in choosing its snippet window (all of them are highlighted).
MAX_WINDOW_MATCHES = 50_000


def highlight_spans(text: str, analyzer: Analyzer, terms: Collection[str]) -> list[tuple[str, int, int]]:
    """(term, start, end) of every token of ``text`` whose term is one of ``terms``."""
    return analyzer.match_spans(text, terms)


def best_window(text: str, matches: list[tuple[str, int, int]], words: int = SNIPPET_WORDS) -> tuple[int, int]:
    """The [start, end) character span of the best ``words``-word window of ``text`` for ``matches``.

    Candidate windows start at (or 4 words before) a match, or at its sentence's start; one sliding
    pass over the matches in word order counts each candidate's matches and distinct terms, so the cost
    is linear in the matches (after a sort), not matches x candidates. Only the first
    ``MAX_WINDOW_MATCHES`` matches are considered: a passage of one word repeated a million times gets
    a window near its start rather than unbounded work.
    """
    spans = [m.span() for m in TOKEN_RE.finditer(text)]
    if len(spans) <= words:
        return 0, len(text)
    starts = [s for s, _ in spans]
    match_words = sorted((bisect_left(starts, s + 1) - 1, term) for term, s, _ in matches[:MAX_WINDOW_MATCHES])
    sentence_starts = [0] + [
        i for i in range(1, len(spans)) if any(ch in ".!?\n" for ch in text[spans[i - 1][1] : spans[i][0]])
    ]
    candidates = {0}
    for w, _ in match_words:
        candidates.update((max(0, w - 4), w))
        s = sentence_starts[bisect_left(sentence_starts, w + 1) - 1]
        if w - s < words // 2:
            candidates.add(s)
    last = len(spans) - words
    sentence_set = set(sentence_starts)
    counts: dict[str, int] = {}  # term -> matches inside the current window
    lo = hi = 0  # match_words[lo:hi] are the matches inside [c, c + words)
    best_key = None
    best = 0
    for c in sorted({min(c, last) for c in candidates}):
        while hi < len(match_words) and match_words[hi][0] < c + words:
            term = match_words[hi][1]
            counts[term] = counts.get(term, 0) + 1
            hi += 1
        while lo < hi and match_words[lo][0] < c:
            term = match_words[lo][1]
            counts[term] -= 1
            if not counts[term]:
                del counts[term]
            lo += 1
        key = (len(counts), hi - lo, c in sentence_set, -c)
        if best_key is None or key > best_key:
            best_key, best = key, c
    end_word = min(best + words, len(spans)) - 1
    start = spans[best][0] if best else 0
    end = spans[end_word][1]
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
