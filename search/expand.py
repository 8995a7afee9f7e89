"""Term expansion over a sorted word list: fuzzy (edit distance), prefix and wildcard.

Pure functions over a ``Lexicon`` (a sorted list of unique words); knows nothing of segments or scores.
A segment's surface-word dictionary is sorted, so a prefix is a ``bisect`` range and a wildcard scans
only the range of its literal prefix.

Fuzzy matching uses the optimal string alignment distance (Levenshtein plus adjacent transpositions,
Lucene's and Elasticsearch's default: "teh" is one edit from "the"). A full scan of a 137k-word
dictionary with rapidfuzz's C++ distance takes ~45 ms a word, a pure-Python walk of the sorted list as a
trie (a Levenshtein automaton without the DFA) ~350 ms; so candidates come from a positional bigram
filter first and only they are measured: a word within ``k`` edits of a query of ``n`` letters shares at
least ``n + 1 - 3k`` of the query's ``n + 1`` padded bigrams, each within ``k`` places of where the query
has it (an insertion or deletion shifts what follows by one place, a substitution destroys at most two
bigrams, a transposition three). That lower bound is a necessary condition, so the filter never loses a
match; on the same dictionary a fuzzy lookup costs ~0.5-5 ms.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np

#: Expansions kept per fuzzy, prefix or wildcard word (Lucene's and Elasticsearch's default for fuzzy
#: queries is 50): each one is a postings lookup and a scored clause.
MAX_EXPANSIONS = 50
MAX_EDITS = 2  # Lucene's automata stop at two edits: past that, almost every short word matches

_START, _END = "\x02", "\x03"  # padding: the first and last letters make bigrams of their own


def auto_distance(word: str) -> int:
    """Elasticsearch's ``fuzziness: AUTO``: 0 edits up to 2 letters, 1 up to 5, 2 from 6 letters on."""
    n = len(word)
    return 0 if n <= 2 else 1 if n <= 5 else 2


def fuzzy_boost(distance: int, query_word: str, word: str) -> float:
    """Lucene's FuzzyTermsEnum boost: ``1 - edits / min(len(query word), len(word))`` (1 when exact)."""
    if distance == 0:
        return 1.0
    shorter = min(len(query_word), len(word))
    return max(0.0, 1.0 - distance / shorter) if shorter else 0.0


class Lexicon:
    """A sorted list of unique words, with what fuzzy lookups need built on the first fuzzy lookup."""

    def __init__(self, words: Sequence[str]) -> None:
        self.words = words
        self._bigrams: tuple[np.ndarray, ...] | None = None

    def __len__(self) -> int:
        return len(self.words)

    # -- prefix and wildcard ------------------------------------------------------------------------
    def prefix_range(self, prefix: str) -> tuple[int, int]:
        """[lo, hi) of the words starting with ``prefix``."""
        lo = bisect.bisect_left(self.words, prefix)
        hi = bisect.bisect_left(self.words, prefix + "\U0010ffff", lo) if prefix else len(self.words)
        # a word may itself contain U+10FFFF after the prefix: step over those (never in practice)
        while hi < len(self.words) and self.words[hi].startswith(prefix):
            hi += 1
        return lo, hi

    def prefix(self, prefix: str, limit: int = MAX_EXPANSIONS) -> list[int]:
        """Indices of at most ``limit`` words starting with ``prefix``, in dictionary order."""
        lo, hi = self.prefix_range(prefix)
        return list(range(lo, min(hi, lo + max(limit, 0))))

    def wildcard(self, pattern: str, limit: int = MAX_EXPANSIONS) -> list[int]:
        """Indices of at most ``limit`` words matching ``pattern`` (``*``: any run, ``?``: one letter).

        Only the range of the literal prefix before the first wildcard is scanned, in dictionary order.
        """
        cut = min((i for i in (pattern.find("*"), pattern.find("?")) if i >= 0), default=len(pattern))
        lo, hi = self.prefix_range(pattern[:cut])
        rx = wildcard_regex(pattern)
        out: list[int] = []
        for i in range(lo, hi):
            if len(out) >= limit:
                break
            if rx.fullmatch(self.words[i]):
                out.append(i)
        return out

    # -- fuzzy --------------------------------------------------------------------------------------
    def warm(self) -> None:
        """Build the bigram index now (a server's start) rather than at the first fuzzy word."""
        self._index()

    def _index(self) -> tuple[np.ndarray, ...]:
        """Positional bigram index: sorted bigram keys, each key's [start, end) into word ids and positions."""
        if self._bigrams is None:
            words = self.words
            lens = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
            text = "".join(f"{_START}{w}{_END}" for w in words)
            codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
            padded = lens + 2
            first = np.zeros(len(words), dtype=np.int64)
            if len(words):
                first[1:] = np.cumsum(padded)[:-1]
            wid = np.repeat(np.arange(len(words), dtype=np.int32), padded)
            keep = codes[:-1] != ord(_END)  # no bigram across two words
            keys = ((codes[:-1] << np.uint64(21)) | codes[1:])[keep]
            ids = wid[:-1][keep]
            pos = (np.arange(codes.shape[0] - 1, dtype=np.int64) - first[wid[:-1]])[keep].astype(np.int32)
            order = np.lexsort((pos, keys))  # by bigram, then position: a window is one slice
            keys, ids, pos = keys[order], ids[order], pos[order]
            uniq, starts = np.unique(keys, return_index=True)
            ends = np.append(starts[1:], keys.shape[0]).astype(np.int64)
            self._bigrams = (uniq, starts.astype(np.int64), ends, ids, pos, lens)
        return self._bigrams

    def candidates(self, word: str, k: int) -> np.ndarray:
        """Indices of the words that may be within ``k`` edits of ``word`` (a superset; see the module)."""
        uniq, starts, ends, ids, pos, lens = self._index()
        n = len(word)
        in_length = (lens >= n - k) & (lens <= n + k)
        padded = f"{_START}{word}{_END}"
        need = n + 1 - 3 * k
        if need <= 0:
            return np.flatnonzero(in_length)
        parts = []
        for i in range(n + 1):
            key = (ord(padded[i]) << 21) | ord(padded[i + 1])
            j = int(np.searchsorted(uniq, key))
            if j < uniq.shape[0] and int(uniq[j]) == key:
                s, e = int(starts[j]), int(ends[j])
                # the words holding this bigram within k places of i; a word holding it twice there
                # counts twice, which only adds candidates (the bound stays a necessary condition)
                window = pos[s:e]
                lo = s + int(np.searchsorted(window, i - k, "left"))
                hi = s + int(np.searchsorted(window, i + k, "right"))
                parts.append(ids[lo:hi])
        if len(parts) < need:
            return np.empty(0, dtype=np.int64)
        counts = np.bincount(np.concatenate(parts), minlength=len(self.words))
        return np.flatnonzero((counts >= need) & in_length)

    def fuzzy(self, word: str, k: int, limit: int = MAX_EXPANSIONS) -> list[tuple[int, int]]:
        """(index, distance) of at most ``limit`` words within ``k`` edits of ``word``, nearest first,
        ties in dictionary order (Lucene keeps the best-boosted terms the same way)."""
        if k < 0 or k > MAX_EDITS:
            raise ValueError(f"edit distance must be 0 to {MAX_EDITS}, got {k}")
        if limit <= 0 or not self.words:
            return []
        if k == 0:
            i = bisect.bisect_left(self.words, word)
            return [(i, 0)] if i < len(self.words) and self.words[i] == word else []
        from rapidfuzz import process  # 25-40 ms to import: only when a word is fuzzy
        from rapidfuzz.distance import OSA

        cand = self.candidates(word, k)
        if cand.shape[0] == 0:
            return []
        words = self.words
        # one C++ call over every candidate (a call per candidate cost ~2 us each in Python)
        dist = process.cdist([word], [words[i] for i in cand.tolist()], scorer=OSA.distance, score_cutoff=k)[0]
        near = dist <= k  # past the cutoff rapidfuzz answers k + 1
        ids, dist = cand[near], dist[near]
        order = np.lexsort((ids, dist))[:limit]  # nearest first, ties in dictionary order
        return list(zip(ids[order].tolist(), dist[order].tolist()))


_EMPTY_LEXICON: tuple[Lexicon, list[str]] = (Lexicon([]), [])
# per segment reader: language -> (lexicon of its surface words, each word's term key); kept as long as
# some snapshot holds the reader
_LEXICONS: WeakKeyDictionary[Any, dict[str, tuple[Lexicon, list[str]]]] = WeakKeyDictionary()
_LOCK = threading.Lock()


def segment_lexicon(reader: Any, lang: str) -> tuple[Lexicon, list[str]]:
    """The sorted surface words of ``lang`` in a segment (anything with ``surface_words()``, which lists
    (``"<lang>:<word>"``, term key) in sorted order) and each word's term key; built once per reader."""
    with _LOCK:
        got = _LEXICONS.get(reader)
    if got is None:
        words: dict[str, tuple[list[str], list[str]]] = {}
        for surface, key in reader.surface_words():
            lg, _, word = surface.partition(":")
            ws, ks = words.setdefault(lg, ([], []))
            ws.append(word)
            ks.append(key)
        got = {lg: (Lexicon(ws), ks) for lg, (ws, ks) in words.items()}
        with _LOCK:
            _LEXICONS[reader] = got
    return got.get(lang, _EMPTY_LEXICON)


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """``*`` as any run of characters, ``?`` as one, everything else literal."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)
