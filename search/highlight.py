"""Snippets and highlights from token offsets: which words of a passage matched, and its best window.

The passage is analyzed again with its own language's analyzer (offsets included), so a query "cross"
highlights "crossing". The window is scored as SQLite FTS5 does: most distinct query terms first, then
most matches, then a window that starts a sentence; ties go to the earliest window.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Collection
from itertools import chain, compress, islice
from operator import itemgetter

import numpy as np

from analyzers import Analyzer
from analyzers.base import RUN_RE, TOKEN_RE

from .arrays import sorted_unique
from .errors import InvalidArgument

SNIPPET_WORDS = 32
# Matches of one passage that take part in choosing its snippet window (all of them are highlighted).
MAX_WINDOW_MATCHES = 50_000
# Up to this many matches a window is chosen by counting in Python (``_best_window_few``); more take
# numpy's binary searches (``_best_start``).
FEW_MATCHES = 8
# Passages longer than this are laid out per distinct run, in pieces (``_long_snippet``): nothing per word.
LAYOUT_CHARS = 16_384
# ... in pieces of about this many characters (``_pieces``).
CHUNK_CHARS = 1 << 14
_GAP = re.compile(r"\s")
MARK_EVERY = 64
# distinct runs a long passage's layout table holds before it starts again (``_RunTable``)
RUN_TABLE_LIMIT = 1 << 16
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
    visited per word or per candidate and match pair: a window's matches and distinct terms are counted
    with binary searches over the matches' words (``_best_start``), so the cost is linear in the words
    and about linear in the matches. ``matches`` come in text order, as ``highlight_spans`` gives them (a
    list out of order is put in order first). Only the first ``MAX_WINDOW_MATCHES`` matches are
    considered: a passage of one word repeated a million times gets a window near its start rather than
    unbounded work.
    """
    if len(matches) <= FEW_MATCHES:
        return _best_window_few(text, matches, words)
    bounds = np.fromiter(chain.from_iterable(map(_SPAN, TOKEN_RE.finditer(text))), dtype=np.int64)
    starts, ends = bounds[0::2], bounds[1::2]
    n = len(starts)
    if n <= words:
        return 0, len(text)
    matches = matches[:MAX_WINDOW_MATCHES]
    at = np.fromiter(map(_START, matches), dtype=np.int64, count=len(matches))
    if len(at) > 1 and bool((at[1:] < at[:-1]).any()):  # a caller's list out of text order
        order = np.argsort(at, kind="stable")
        at, matches = at[order], [matches[i] for i in order.tolist()]
    ids = {t: i for i, t in enumerate(dict.fromkeys(map(_TERM, matches)))}
    term = np.fromiter(map(ids.__getitem__, map(_TERM, matches)), dtype=np.int64, count=len(matches))
    word = np.maximum(np.searchsorted(starts, at, side="right") - 1, 0)  # the word holding each match
    # sentence starts: word 0 and every word after a gap holding . ! ? or a line break
    stops = np.fromiter(map(_MATCH_START, _SENTENCE_END.finditer(text)), dtype=np.int64)
    sentence = sorted_unique(np.concatenate(([0], _sentence_starts(starts, ends, stops)[0])))
    best = _best_start(word, term, len(ids), sentence, n, words)
    return _window_span(text, int(starts[best]), best, words, lambda i: int(ends[i]), n)


def _best_start(word, term, terms: int, sentence, n: int, words: int) -> int:
    """The first word of the best window: ``word`` and ``term`` (numbered below ``terms``) of each match
    in text order, ``sentence`` the sorted words that start a sentence (0 among them), ``n`` words.

    A window starting at word c holds the matches with c <= w < c + words, and counts a match as a new
    distinct term when its term's previous match is before c as well: both are counts of matches whose
    interval holds c, so each is a difference of two binary searches over sorted ends, evaluated only at
    the candidate starts (a match's word, 4 words before it, its sentence's start when near; and 0).
    """
    # the word of each match's term's previous match (-words: none): matches grouped by term, in text
    # order within a term (a stable sort of small term numbers, which numpy does as a radix sort)
    order = np.argsort(term.astype(np.uint16) if terms <= 1 << 16 else term, kind="stable")
    previous = np.full(len(word), -words, dtype=np.int64)
    same = term[order[1:]] == term[order[:-1]]
    previous[order[1:][same]] = word[order[:-1][same]]
    last_start = n - words
    own = sentence[np.searchsorted(sentence, word, side="right") - 1]  # each match's sentence start
    near = own[word - own < words // 2]
    candidate = sorted_unique(
        np.minimum(np.concatenate(([0], np.maximum(word - 4, 0), word, near)), last_start)
    )
    # matches in the window: c <= w < c + words; new distinct terms: also previous < c, i.e.
    # max(previous, w - words) < c <= w, and that max is never above w
    before = np.searchsorted(word, candidate)
    count = np.searchsorted(word, candidate + words) - before
    distinct = np.searchsorted(np.sort(np.maximum(previous, word - words)), candidate) - before
    at = np.minimum(np.searchsorted(sentence, candidate), len(sentence) - 1)
    # most distinct terms, then most matches, then a sentence start; argmax keeps the earliest of ties
    score = (distinct * (len(word) + 1) + count) * 2 + (sentence[at] == candidate)
    return int(candidate[int(np.argmax(score))])


def _window_span(text: str, first_start: int, best: int, words: int, end_of, n: int) -> tuple[int, int]:
    """The characters of the ``words``-word window starting at word ``best`` (its start ``first_start``;
    ``end_of(i)`` gives word i's end), closing punctuation kept."""
    start = first_start if best else 0
    end = end_of(min(best + words, n) - 1)
    while end < len(text) and text[end] in ".!?,;:)\"'\u201d":
        end += 1
    return start, end


def _best_window_few(text: str, matches: list[tuple[str, int, int]], words: int) -> tuple[int, int]:
    """``best_window`` for a passage with at most ``FEW_MATCHES`` matches (a search's usual hit), in
    plain Python: the same candidates and the same score, each candidate counted over the matches,
    where a dozen numpy calls cost ten times the counting (110 us a hit)."""
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
    return _window_span(text, starts[best], best, words, ends.__getitem__, n)


def make_snippet(
    text: str, analyzer: Analyzer, terms: Collection[str], words: int = SNIPPET_WORDS
) -> tuple[str, list[tuple[int, int]], list[tuple[int, int]]]:
    """(snippet, highlights in the snippet, highlights in ``text``): plain text with offset pairs."""
    if isinstance(words, bool) or not isinstance(words, int) or words < 1:
        raise InvalidArgument(f"a snippet needs words >= 1, got {words!r}")
    if len(text) > LAYOUT_CHARS:
        return _long_snippet(text, analyzer, terms, words)
    matches = highlight_spans(text, analyzer, terms)
    start, end = best_window(text, matches, words)
    starts = list(map(_START, matches))  # in text order
    full = list(zip(starts, map(_END, matches)))
    window = full[bisect_left(starts, start) : bisect_right(starts, end)]
    inside = [(s - start, e - start) for s, e in window if e <= end]
    return text[start:end], inside, full


def _long_snippet(
    text: str, analyzer: Analyzer, terms: Collection[str], words: int
) -> tuple[str, list[tuple[int, int]], list[tuple[int, int]]]:
    """``make_snippet`` for a long passage, in pieces, keeping nothing per word: each piece's words and
    matches are placed at its runs' starts with numpy from the layouts of its distinct runs
    (``_RunTable``); across pieces only the matches, their words, the sentence starts and every
    ``MARK_EVERY``-th word's start are kept, and the window's end words are found again from those
    marks. So memory is the matches, one piece and a bounded table of distinct runs, and a long passage
    costs per character what a short one does."""
    table = _RunTable(analyzer, frozenset(terms))
    marks = []  # the start of every ``MARK_EVERY``-th word, to find the window's words again
    got_start, got_end, got_term, got_word, got_sentence = [], [], [], [], [np.zeros(1, dtype=np.int64)]
    # the sentence starts a window can use are at most ``near`` words before a match's word (see
    # ``_best_start``): those are kept, the others dropped once no later match can be that near
    near = max(words, 4)
    undecided = np.zeros(0, dtype=np.int64)
    n = 0
    stop_pending = False  # a sentence stop after the last word so far: the next word starts a sentence
    for pos, cut in _pieces(text):
        starts, ends, match_start, match_end, term = table.piece(text, pos, cut)
        stops = np.fromiter(map(_MATCH_START, _SENTENCE_END.finditer(text, pos, cut)), dtype=np.int64)
        if not len(starts):
            stop_pending = stop_pending or len(stops) > 0
            continue
        marks.append(starts[-n % MARK_EVERY :: MARK_EVERY].copy())  # a copy: a view keeps the piece
        word = n + np.searchsorted(starts, match_start, side="right") - 1
        got_start.append(match_start)
        got_end.append(match_end)
        got_term.append(term)
        got_word.append(word)
        local, trailing = _sentence_starts(starts, ends, stops)
        found = np.concatenate((undecided, [n] if stop_pending else [], n + local)).astype(np.int64)
        following = np.searchsorted(word, found)  # the first match at or after each sentence start
        keep = following < len(word)
        keep[keep] = word[following[keep]] - found[keep] <= near
        got_sentence.append(found[keep])
        n += len(starts)
        undecided = found[~keep & (found >= n - near)]
        stop_pending = trailing
    match_start, match_end = _joined(got_start), _joined(got_end)
    if n <= words:
        start, end = 0, len(text)
    else:
        sentence = sorted_unique(np.concatenate(got_sentence))
        cap = slice(0, MAX_WINDOW_MATCHES)
        best = _best_start(_joined(got_word)[cap], _joined(got_term)[cap], len(table.ids), sentence, n, words)
        marked = _joined(marks)
        start, end = _window_span(
            text, _word_span(text, marked, best)[0], best, words, lambda i: _word_span(text, marked, i)[1], n
        )
    window = slice(int(np.searchsorted(match_start, start)), int(np.searchsorted(match_start, end, side="right")))
    shown = match_end[window] <= end
    inside = list(zip((match_start[window][shown] - start).tolist(), (match_end[window][shown] - start).tolist()))
    return text[start:end], inside, list(zip(match_start.tolist(), match_end.tolist()))


def _sentence_starts(starts: np.ndarray, ends: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, bool]:
    """The words (of a text, or of a piece of one) that start a sentence: the gap before them holds a
    stop, not a stop inside the word before, which may be in an earlier piece. And whether a stop
    follows the last word."""
    after = np.searchsorted(starts, stops, side="right")  # the first word starting after each stop
    inside = after < len(starts)
    after, held = after[inside], stops[inside]
    gap = (after == 0) | (held >= ends[np.maximum(after - 1, 0)])
    return after[gap], bool((stops[~inside] >= ends[-1]).any())


def _pieces(text: str):
    """(pos, cut) spans covering ``text`` of about ``CHUNK_CHARS`` each, cut at white space (which no
    run holds, so every run lies inside one piece); the last piece takes up to 1.5 times that."""
    pos, size = 0, len(text)
    while pos < size:
        gap = _GAP.search(text, pos + CHUNK_CHARS) if size - pos > CHUNK_CHARS * 3 // 2 else None
        cut = gap.start() if gap else size
        yield pos, cut
        pos = cut


class _RunTable:
    """The distinct runs of one passage, numbered across its pieces, with their layouts
    (``Analyzer.run_layout``: once per distinct run, not once per piece) as flat growing columns: per
    run its count and first row of words and of matches; per row a word's (start, end) or a match's
    (term number, start, end) in the run. Started again between pieces once it holds
    ``RUN_TABLE_LIMIT`` runs, so its memory is bounded whatever the passage; term numbers (``ids``)
    hold for the whole passage."""

    def __init__(self, analyzer: Analyzer, terms: frozenset[str]) -> None:
        self.analyzer = analyzer
        self.terms = terms
        self.ids: dict[str, int] = {}
        self._start()

    def _start(self) -> None:
        self.number: dict[str, int] = {}
        self.word_runs = [_Growing(), _Growing()]  # count, first row
        self.word_rows = [_Growing(), _Growing()]  # start, end
        self.match_runs = [_Growing(), _Growing()]
        self.match_rows = [_Growing(), _Growing(), _Growing()]  # term number, start, end

    def _add(self, runs: set[str]) -> None:
        """Number ``runs`` (new to the table) and append their layouts: a run of letters and digits with
        one term (most runs) is one word and at most one match spanning it, laid out in bulk; the rest
        through ``Analyzer.run_layout``."""
        runs_list = list(runs)
        got = self.analyzer.run_terms(runs_list)
        plain_mask = [len(t) == 1 and r.isalnum() for r, t in zip(runs_list, got)]
        plain = list(compress(runs_list, plain_mask))
        plain_terms = [t[0] for t in compress(got, plain_mask)]
        layout = self.analyzer.run_layout([r for r, p in zip(runs_list, plain_mask) if not p], self.terms)
        first = len(self.number)
        self.number.update(zip(plain, range(first, first + len(plain))))
        first += len(plain)
        self.number.update(zip(layout, range(first, first + len(layout))))
        ids, wanted = self.ids, self.terms
        # plain runs: one word (0, len); a match (term, 0, len) when the term is wanted
        lengths = np.fromiter(map(len, plain), dtype=np.int64, count=len(plain))
        hit = np.fromiter(map(wanted.__contains__, plain_terms), dtype=bool, count=len(plain))
        hit &= np.fromiter(map(bool, plain_terms), dtype=bool, count=len(plain))  # "" is a stopword's
        hit_ids = [ids.setdefault(t, len(ids)) for t in compress(plain_terms, hit.tolist())]
        self._append(
            self.word_runs, self.word_rows, np.ones(len(plain), dtype=np.int64), [np.zeros_like(lengths), lengths]
        )
        self._append(
            self.match_runs,
            self.match_rows,
            hit.astype(np.int64),
            [np.array(hit_ids, dtype=np.int64), np.zeros(len(hit_ids), dtype=np.int64), lengths[hit]],
        )
        # the others (hyphens, apostrophes, inner stops, compounds): their own layouts
        matches = [[(ids.setdefault(t, len(ids)), s, e) for t, s, e in m] for _, m in layout.values()]
        for shapes, per_run, rows in (
            ([w for w, _ in layout.values()], self.word_runs, self.word_rows),
            (matches, self.match_runs, self.match_rows),
        ):
            counts, *fields = _table(shapes, len(rows))
            self._append(per_run, rows, counts, fields)

    @staticmethod
    def _append(per_run: list[_Growing], rows: list[_Growing], counts: np.ndarray, fields: list[np.ndarray]) -> None:
        per_run[1].extend(np.cumsum(counts) - counts + rows[0].size)
        per_run[0].extend(counts)
        for column, values in zip(rows, fields):
            column.extend(values)

    def piece(self, text: str, pos: int, cut: int) -> tuple[np.ndarray, ...]:
        """The words' starts and ends in ``text[pos:cut]``, and its matches' starts, ends and term
        numbers, all in text order."""
        if len(self.number) >= RUN_TABLE_LIMIT:
            self._start()
        found = RUN_RE.findall(text, pos, cut)
        base = np.fromiter(map(_MATCH_START, RUN_RE.finditer(text, pos, cut)), dtype=np.int64, count=len(found))
        new = set(found).difference(self.number)
        if new:
            self._add(new)
        run = np.fromiter(map(self.number.__getitem__, found), dtype=np.intp, count=len(found))
        at, row = _place(run, self.word_runs[0].view, self.word_runs[1].view)
        m_at, m_row = _place(run, self.match_runs[0].view, self.match_runs[1].view)
        return (
            base[at] + self.word_rows[0].view[row],
            base[at] + self.word_rows[1].view[row],
            base[m_at] + self.match_rows[1].view[m_row],
            base[m_at] + self.match_rows[2].view[m_row],
            self.match_rows[0].view[m_row],
        )


class _Growing:
    """An int64 column that grows by doubling (amortized linear appends)."""

    __slots__ = ("_data", "size")

    def __init__(self) -> None:
        self._data = np.zeros(64, dtype=np.int64)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        end = self.size + values.shape[0]
        if end > self._data.shape[0]:
            grown = np.zeros(max(end, 2 * self._data.shape[0]), dtype=np.int64)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : end] = values
        self.size = end

    @property
    def view(self) -> np.ndarray:
        return self._data[: self.size]


def _word_span(text: str, marks: np.ndarray, i: int) -> tuple[int, int]:
    """The span of word ``i``: ``TOKEN_RE`` matches the same words in the text as in its runs, so it is
    found by matching on from the marked word before it."""
    found = TOKEN_RE.finditer(text, int(marks[i // MARK_EVERY]))
    return next(islice(found, i % MARK_EVERY, None)).span()


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _table(rows: list, width: int) -> tuple[np.ndarray, ...]:
    """Per-run rows of ``width``-tuples as flat columns: the row counts, then each field's column."""
    counts = np.fromiter(map(len, rows), dtype=np.intp, count=len(rows))
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(rows)), dtype=np.int64, count=int(counts.sum()) * width)
    return (counts, *(flat[i::width] for i in range(width)))


def _place(run: np.ndarray, counts: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every item of every run occurrence, in text order: the occurrence it belongs to and its row in
    the flat table (``counts`` and ``first`` row of each distinct run)."""
    per = counts[run]
    at = np.repeat(np.arange(len(run)), per)
    within = np.arange(len(at)) - np.repeat(np.cumsum(per) - per, per)
    return at, first[run][at] + within
