""""Did you mean": the query with its unknown words replaced by the likeliest words of the index.

Per language of the index, every word of the query that the index does not know (no passage holds
its term), or knows from at most ``RARE_DF`` passages while a word one edit away is ``RARE_RATIO``
times as common, is replaced by its best neighbour among the surface words: the fewest edits
(``search.expand``, Elasticsearch's AUTO distance, at least one edit), then the most passages that hold
the neighbour together with another word of the query (the whole query as context: "warga rusai
kabur" -> "rusia", which appears beside "warga", rather than the equally near "rusak"), then document
frequency, then the letters kept at both ends. The language whose words the corrected query knows best gives the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analyzers import Analyzer
from analyzers.base import TOKEN_RE, split_word

from .expand import MAX_EXPANSIONS, auto_distance, segment_lexicon
from .segment import key_hash

RARE_DF = 2
RARE_RATIO = 100
MIN_LETTERS = 3  # shorter words have too many neighbours to correct
CONTEXT_CANDIDATES = 8  # neighbours per word whose co-occurrence with the query is counted


@dataclass
class _Word:
    start: int
    end: int
    word: str  # normalized


def _affix(a: str, b: str) -> int:
    """Letters two words share at their start and end: among neighbours of one term ("pemerintah",
    "pemerintahan" for "pemerintahn"), the one that keeps the typed word's ending."""
    n = min(len(a), len(b))
    p = 0
    while p < n and a[p] == b[p]:
        p += 1
    s = 0
    while s < n - p and a[-1 - s] == b[-1 - s]:
        s += 1
    return p + s


class Suggester:
    """Corrections over one snapshot's segments (``segments``: readers with live passage masks)."""

    def __init__(self, segments: list, analyzer: Callable[[str], Analyzer], langs: list[str]) -> None:
        self.segments = segments
        self.analyzer = analyzer
        self.langs = langs
        self._pids: dict[str, list[np.ndarray]] = {}

    # -- statistics ---------------------------------------------------------------------------------
    def term_key(self, lang: str, word: str) -> str | None:
        terms = self.analyzer(lang).analyze_columns(word)[0]
        return f"{lang}:{terms[0]}" if len(terms) == 1 else None

    def pids(self, key: str) -> list[np.ndarray]:
        """Live passage ids holding ``key``, per segment."""
        got = self._pids.get(key)
        if got is None:
            got = []
            h = key_hash(key)
            for seg in self.segments:
                slot = seg.reader.find(key, h)
                if slot < 0:
                    got.append(np.empty(0, dtype=np.int64))
                    continue
                pids = seg.reader.postings(slot)[0]
                if seg.live_passages is not None:
                    pids = pids[seg.live_passages[pids]]
                got.append(pids)
            self._pids[key] = got
        return got

    def df(self, key: str | None) -> int:
        return 0 if key is None else sum(int(p.shape[0]) for p in self.pids(key))

    def neighbours(self, lang: str, word: str) -> dict[str, tuple[int, str]]:
        """Surface words near ``word`` over every segment: word -> (distance, term key)."""
        k = max(1, auto_distance(word))
        found: dict[str, tuple[int, str]] = {}
        for seg in self.segments:
            lex, keys = segment_lexicon(seg.reader, lang)
            for i, d in lex.fuzzy(word, k, MAX_EXPANSIONS):
                w = lex.words[i]
                if d and (w not in found or d < found[w][0]):
                    found[w] = (d, keys[i])
        return found

    # -- the query ----------------------------------------------------------------------------------
    def correct(self, lang: str, words: list[_Word], rare: bool = True) -> tuple[int, int, list[str]]:
        """(words known after correction, edits made, the words) under ``lang``; with ``rare`` False only
        the words the index does not know at all are corrected."""
        keys = [self.term_key(lang, w.word) for w in words]
        dfs = [self.df(k) for k in keys]
        out = [w.word for w in words]
        known = sum(1 for d in dfs if d)
        edits = 0
        for i, w in enumerate(words):
            if keys[i] is None or len(w.word) < MIN_LETTERS or not w.word.isalpha() or dfs[i] > RARE_DF:
                continue
            if dfs[i] and not rare:
                continue
            near = self.neighbours(lang, w.word)
            if not near:
                continue
            ranked = sorted(near.items(), key=lambda item: (item[1][0], -self.df(item[1][1]), item[0]))
            ranked = ranked[:CONTEXT_CANDIDATES]
            if dfs[i]:  # a rare word of the index: replaced only by a far more common one edit away
                ranked = [r for r in ranked if r[1][0] == 1 and self.df(r[1][1]) >= RARE_RATIO * dfs[i]]
                if not ranked:
                    continue
            context = [k for j, k in enumerate(keys) if j != i and k is not None and dfs[j]]
            best = min(
                ranked,
                key=lambda item: (
                    item[1][0],
                    -self._together(item[1][1], context),
                    -self.df(item[1][1]),
                    -_affix(w.word, item[0]),
                    item[0],
                ),
            )
            out[i] = best[0]
            edits += best[1][0]
            known += 0 if dfs[i] else 1
        return known, edits, out

    def _knows_all(self, lang: str, words: list[_Word]) -> bool:
        """Every word that ``correct`` could replace is in the index under ``lang``."""
        keys = (self.term_key(lang, w.word) for w in words)
        return all(key is None or self._known(key) for key in keys)

    def _known(self, key: str) -> bool:
        """Some live passage holds ``key``: the dictionary answers for a segment without deletions, so the
        check a server makes on every query with hits decodes no postings."""
        if key in self._pids:
            return self.df(key) > 0
        h = key_hash(key)
        for seg in self.segments:
            slot = seg.reader.find(key, h)
            if slot >= 0 and (seg.live_passages is None or seg.live_passages[seg.reader.postings(slot)[0]].any()):
                return True
        return False

    def knows_all(self, text: str) -> bool:
        """One of the index's languages knows every word of ``text`` that a suggestion could replace (so
        with ``rare`` False there is nothing to suggest, whatever the language order)."""
        words = _words(text)
        return not words or any(self._knows_all(lang, words) for lang in self.langs)

    def _together(self, key: str, context: list[str]) -> int:
        """Passages holding ``key`` and at least one of the ``context`` terms."""
        if not context:
            return 0
        total = 0
        mine = self.pids(key)
        for si in range(len(self.segments)):
            if mine[si].shape[0] == 0:
                continue
            others = [self.pids(c)[si] for c in context]
            others = [o for o in others if o.shape[0]]
            if others:
                total += int(np.isin(mine[si], np.concatenate(others)).sum())
        return total

    def suggest(self, text: str, order: list[str], rare: bool = True) -> str | None:
        """The corrected ``text`` (unchanged apart from the replaced words), or None when nothing is
        corrected; ``order`` ranks the languages when their corrections know as many words; ``rare``
        False leaves the words the index knows (however rarely) as they are."""
        words = _words(text)
        if not words:
            return None
        if not rare and any(lang in self.langs and self._knows_all(lang, words) for lang in order):
            return None  # a language knows every word: nothing to correct, no lexicon walked
        best: tuple | None = None
        for rank, lang in enumerate(order):
            if lang not in self.langs:
                continue
            known, edits, out = self.correct(lang, words, rare)
            score = (known, -edits, -rank)
            if best is None or score > best[0]:
                best = (score, out)
        if best is None:
            return None
        out = best[1]
        if all(o == w.word for o, w in zip(out, words)):
            return None
        pieces, at = [], 0
        for o, w in zip(out, words):
            if o != w.word:
                pieces.append(text[at : w.start])
                pieces.append(o)
                at = w.end
        pieces.append(text[at:])
        return "".join(pieces)


def _words(text: str) -> list[_Word]:
    """The words of ``text`` a suggestion could replace, with their offsets."""
    words: list[_Word] = []
    for m in TOKEN_RE.finditer(text):
        for w, s, e in split_word(m.group()):
            if w:
                words.append(_Word(m.start() + s, m.start() + e, w))
    return words
