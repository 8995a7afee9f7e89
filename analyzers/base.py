"""Tokens, the Unicode tokenizer and the Analyzer chain (tokenize -> normalize -> stopwords -> stem).

Two paths give the same terms and positions:

* ``Analyzer.analyze(text)`` returns ``Token`` objects with character offsets into the original text,
  for highlighting and for people;
* ``Analyzer.analyze_columns(text)`` returns two plain lists (terms, positions) with no offsets, for the
  indexer. It keeps a per-analyzer cache from the raw surface form to its terms, so a repeated word costs
  one dict lookup instead of normalization plus stemming.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import compress
from pathlib import Path

# A word is letters and digits of any script (not "_"); an apostrophe inside a word is kept (Russia's,
# Jum'at); a number keeps its inner separators (1.000, 3,5); hyphenated words stay one match and are
# split (or collapsed, for reduplication) by `_split_normalize`.
_ATOM = r"\d+(?:[.,]\d+)+|[^\W_]+(?:['\u2019][^\W_]+)*"
TOKEN_RE = re.compile(rf"(?:{_ATOM})(?:-(?:{_ATOM}))*")

_CACHE_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class Token:
    """One analyzed term: its position (stopwords leave gaps) and [start, end) offsets in the text."""

    term: str
    position: int
    start: int
    end: int


def normalize_word(word: str) -> str:
    """NFKC-normalize and casefold one word; drop an English possessive "'s"."""
    if word.isascii():
        w = word.lower()
    else:
        w = unicodedata.normalize("NFKC", word).casefold().replace("\u2019", "'")
    if w.endswith("'s"):
        w = w[:-2]
    return w


def split_word(raw: str) -> list[tuple[str, int, int]]:
    """Split one tokenizer match into (normalized word, start, end) parts, offsets relative to ``raw``.

    Reduplication (``orang-orang``, ``Anak-anak``: all parts equal) gives one word spanning the whole
    match; other hyphenated words (``anti-mobilisasi``, ``e-mail``) give their parts.
    """
    if "-" not in raw:
        return [(normalize_word(raw), 0, len(raw))]
    parts = []
    start = 0
    for piece in raw.split("-"):
        parts.append((normalize_word(piece), start, start + len(piece)))
        start += len(piece) + 1
    if all(p[0] == parts[0][0] for p in parts):
        return [(parts[0][0], 0, len(raw))]
    return parts


def tokenize(text: str) -> list[str]:
    """The raw tokenizer matches of ``text`` (surface forms, not yet normalized): the shared first step."""
    return TOKEN_RE.findall(text)


def load_wordlist(path: Path) -> frozenset[str]:
    """Read a resource word list: one word per line, ``#`` starts a comment line."""
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            words.append(normalize_word(line))
    return frozenset(words)


class Analyzer:
    """A language's analysis chain: Unicode tokenizer, normalization, stopwords (gaps kept), stemming.

    ``name`` and ``version`` are what an index stores; change ``version`` whenever the terms this
    analyzer produces for some input change, so indexes built before can be told apart.
    """

    def __init__(
        self,
        name: str,
        version: str,
        *,
        stopwords: Iterable[str] = (),
        stemmer: Callable[[str], str] | None = None,
        reduplication: bool = True,
    ) -> None:
        self.name = name
        self.version = version
        self.stopwords = frozenset(stopwords)
        self.stemmer = stemmer
        self.reduplication = reduplication
        # raw surface form -> "" (stopword), a term, or a tuple of terms-or-"" (hyphenated words)
        self._cache: dict[str, str | tuple[str, ...]] = {}
        self._multi: set[str] = set()

    def __repr__(self) -> str:
        return f"Analyzer({self.name!r}, version={self.version!r})"

    # -- one word ---------------------------------------------------------------------------------
    def term(self, word: str) -> str:
        """The index term of one normalized word, or "" when it is a stopword."""
        if word in self.stopwords or not word:
            return ""
        return self.stemmer(word) if self.stemmer is not None else word

    def _parts(self, raw: str) -> list[tuple[str, int, int]]:
        parts = split_word(raw)
        if not self.reduplication and len(parts) == 1 and "-" in raw:
            start = 0
            parts = []
            for piece in raw.split("-"):
                parts.append((normalize_word(piece), start, start + len(piece)))
                start += len(piece) + 1
        return parts

    def _compute(self, raw: str) -> str | tuple[str, ...]:
        parts = self._parts(raw)
        if len(parts) == 1:
            return self.term(parts[0][0])
        self._multi.add(raw)
        return tuple(self.term(p[0]) for p in parts)

    # -- whole texts ------------------------------------------------------------------------------
    def analyze(self, text: str) -> list[Token]:
        """Tokens with positions and character offsets into ``text``, in order; stopwords leave gaps."""
        out: list[Token] = []
        pos = 0
        for m in TOKEN_RE.finditer(text):
            base = m.start()
            for word, s, e in self._parts(m.group()):
                t = self.term(word)
                if t:
                    out.append(Token(t, pos, base + s, base + e))
                pos += 1
        return out

    def analyze_columns(self, text: str) -> tuple[list[str], list[int]]:
        """The same terms and positions as ``analyze`` as two lists, without offsets: the indexer's path."""
        return self.columns_from_raw(TOKEN_RE.findall(text))

    def columns_from_raw(self, raw: list[str]) -> tuple[list[str], list[int]]:
        """Terms and positions for raw tokenizer matches (see ``tokenize``), through the stem cache."""
        cache = self._cache
        try:
            vals = [cache[t] for t in raw]
        except KeyError:
            if len(cache) > _CACHE_LIMIT:
                cache.clear()
                self._multi.clear()
            compute = self._compute
            for t in raw:
                if t not in cache:
                    cache[t] = compute(t)
            vals = [cache[t] for t in raw]
        if self._multi and not self._multi.isdisjoint(raw):
            terms: list[str] = []
            positions: list[int] = []
            pos = 0
            for v in vals:
                if isinstance(v, tuple):
                    for t in v:
                        if t:
                            terms.append(t)
                            positions.append(pos)
                        pos += 1
                else:
                    if v:
                        terms.append(v)
                        positions.append(pos)
                    pos += 1
            return terms, positions
        return list(compress(vals, vals)), list(compress(range(len(vals)), vals))  # type: ignore[arg-type]

    def query_terms(self, text: str) -> list[str]:
        """The distinct terms of a query text, in first-seen order (a repeated query term counts once)."""
        terms, _ = self.analyze_columns(text)
        return list(dict.fromkeys(terms))
