"""Tokens, the Unicode tokenizer and the Analyzer chain (tokenize -> normalize -> stopwords -> stem).

Two paths give the same terms and positions:

* ``Analyzer.analyze(text)`` returns ``Token`` objects with character offsets into the original text,
  for highlighting and for people;
* ``Analyzer.analyze_columns(text)`` returns two plain lists (terms, positions) with no offsets, for the
  indexer. ``tokenize`` cuts the text into raw word runs with one cheap regex; a per-analyzer cache maps
  each run to its terms, so a repeated word costs one dict lookup instead of splitting, normalization and
  stemming.
"""

from __future__ import annotations

import operator
import re
import string
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain, compress, islice
from pathlib import Path

from analyzers.marks import mark_class

# Python's ``\w`` does not include combining marks, so without them a decomposed "cafe\u0301" would split
# before its accent (and an NFKC-normalized term could never equal "café"); Devanagari and Thai words
# would fall apart at their vowel signs. The class comes from a table per Unicode version (analyzers.marks).
_MARKS = mark_class()

# A word is letters and digits of any script (not "_") with the combining marks that follow them; an
# apostrophe inside a word is kept (Russia's, Jum'at); a number keeps its inner separators (1.000, 3,5);
# hyphenated words stay one match and are split (or collapsed, for reduplication) by `split_word`.
# (`[^\W_]+(?:[M]+[^\W_]*)*` is `[^\W_]+(?:[M]+[^\W_]+)*[M]*` with the marks class once: compiling
# the pattern costs half as much, and every search run compiles it.)
_WORD = rf"[^\W_]+(?:[{_MARKS}]+[^\W_]*)*"
_ATOM = rf"\d+(?:[.,]\d+)+|{_WORD}(?:['\u2019]{_WORD})*"
TOKEN_RE = re.compile(rf"(?:{_ATOM})(?:-(?:{_ATOM}))*")

# The indexer's first pass: maximal runs of word characters, marks and inner separators. Every TOKEN_RE
# match lies inside one run and TOKEN_RE finds the same matches in a run as in the whole text (its
# matches never look past a run), so a run is split into TOKEN_RE matches once per distinct run, in the
# stem cache, instead of running the slower TOKEN_RE over every text.
RUN_RE = re.compile(rf"[\w{_MARKS}]+(?:[-.,'\u2019][\w{_MARKS}]+)*")
_MATCH_START = re.Match.start  # map(_MATCH_START, finditer(...)): match starts without a Python step each
_MATCH_GROUP = re.Match.group
_MATCH_SPAN = re.Match.span
#: Texts up to this many characters are matched by ``Analyzer.match_spans`` in one regex pass.
ONE_PASS_CHARS = 16_384

_CACHE_LIMIT = 1_000_000

#: The kinds of query words (``Analyzer.query_columns``): scored always; scored unless the query is a
#: question; scored only when nothing else is; never scored (a stopword of the query's other language).
CONTENT, FUNCTION, QUESTION, FOREIGN = 0, 1, 2, 3


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
    """The raw word runs of ``text`` (surface forms, not yet normalized): the indexer's shared first step.

    A run may hold several tokens ("a_b", "3.5kg", "end.Next"); ``Analyzer.columns_from_raw`` splits it
    with ``TOKEN_RE`` exactly as ``Analyzer.analyze`` would, once per distinct run.
    """
    return RUN_RE.findall(text)


# Characters that never belong to a word run (not letters, digits, "_" or marks): stripped from the ends
# of a whitespace word, what is left is that word's only run when it is all letters and digits.
_EDGES = "".join(c for c in string.punctuation if c != "_") + "\u201c\u201d\u2018\u2019\u00ab\u00bb\u2013\u2014\u2026"


def runs_of_words(words: list[str]) -> list[str]:
    """``tokenize(text)`` from ``text.split()``: the same runs, found word by word.

    A run holds no white space, so each run lies in one whitespace word. Most words are all letters and
    digits, and are their one run: one C-level pass over the list finds them, where the run regex steps
    through every character. A word with punctuation around it ("(word),") is its stripped self when
    that is letters and digits; the rest (hyphens, inner separators, marks, "_") go through the regex.
    The list is returned as it is when every word is a run. An indexer that has split a text to count
    its words (``split_passages``) gets its runs for less than ``tokenize`` costs."""
    odd = list(compress(range(len(words)), map(operator.not_, map(str.isalnum, words))))
    if not odd:
        return words
    out: list[str] = []
    at = 0
    for i in odd:
        out += words[at:i]
        out += runs_of_word(words[i])
        at = i + 1
    out += words[at:]
    return out


def runs_of_word(word: str) -> list[str]:
    """The word runs of one whitespace word (``tokenize(word)``): itself when it is letters and digits,
    its stripped self when punctuation only surrounds such a word ("(word),"), else the regex's runs
    (none, one or several: "--", "e-mail", "a/b")."""
    if word.isalnum():
        return [word]
    bare = word.strip(_EDGES)
    return [bare] if bare.isalnum() else RUN_RE.findall(word)


def snowball_stemmer(algorithm: str) -> Callable[[str], str]:
    """A ``str -> str`` Snowball stemmer (PyStemmer) that is safe to call from many threads.

    PyStemmer objects keep state while stemming and "must not be called concurrently", so each thread
    gets its own. PyStemmer's word cache is off: analyzers cache whole runs already, so the stemmer only
    sees words it has not stemmed before, and that cache's bookkeeping made those about 5x slower.
    """
    import threading

    import Stemmer

    local = threading.local()

    def own() -> Stemmer.Stemmer:
        try:
            return local.stemmer
        except AttributeError:
            stemmer = local.stemmer = Stemmer.Stemmer(algorithm)
            stemmer.maxCacheSize = 0
            return stemmer

    def stem(word: str) -> str:
        try:
            stemmer = local.stemmer
        except AttributeError:
            stemmer = own()
        return stemmer.stemWord(word)

    def many(words: list[str]) -> list[str]:
        return own().stemWords(words)  # one C call for the list: the same stems as stemWord one by one

    stem.__doc__ = f"The Snowball {algorithm} stem of one normalized (lowercased) word."
    stem.many = many  # type: ignore[attr-defined]  # see ``stem_words``
    return stem


def stem_words(stemmer: Callable[[str], str], words: list[str]) -> list[str]:
    """``[stemmer(w) for w in words]``, through the stemmer's own list method (``many``) when it has one
    (PyStemmer's ``stemWords``: no Python call per word, what indexing many new words at once needs)."""
    many = getattr(stemmer, "many", None)
    return many(words) if many is not None else list(map(stemmer, words))


def _protecting(stemmer: Callable[[str], str], protected: frozenset[str]) -> Callable[[str], str]:
    """``stemmer`` that returns a protected word unchanged."""

    def stem(word: str) -> str:
        return word if word in protected else stemmer(word)

    def many(words: list[str]) -> list[str]:
        stems = stem_words(stemmer, words)
        for i in compress(range(len(words)), map(protected.__contains__, words)):
            stems[i] = words[i]
        return stems

    stem.__doc__ = stemmer.__doc__
    stem.many = many  # type: ignore[attr-defined]
    return stem


def load_wordlist(path: Path) -> frozenset[str]:
    """Read a resource word list: one word per line; ``#`` starts a comment (a whole line or a line's end)."""
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            words.append(normalize_word(line))
    return frozenset(words)


class Analyzer:
    """A language's analysis chain: Unicode tokenizer, normalization, stopwords (gaps kept), stemming.

    Stopwords come in three lists with three jobs: ``stopwords`` are never indexed (each leaves a
    position gap); ``query_stopwords`` (function words) are indexed like any word, so phrases and
    keyword queries match them, but a ranked query that is a question drops them; ``question_words``
    (interrogatives) mark a query as a question and are dropped from ranked queries, and so are two
    consecutive words of a ``question_pairs`` entry (the spelling apart of a one-word question word:
    "di mana" for "dimana"). See ``query_columns``. ``protected`` words are indexed as they are, never
    stemmed (a stem exclusion list, as Lucene's keyword marker).

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
        query_stopwords: Iterable[str] = (),
        question_words: Iterable[str] = (),
        question_pairs: Iterable[tuple[str, str]] = (),
        protected: Iterable[str] = (),
        compounds: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.stopwords = frozenset(stopwords)
        self.question_words = frozenset(question_words) - self.stopwords
        self.query_stopwords = frozenset(query_stopwords) - self.stopwords - self.question_words
        # two words that ask a question together though neither does alone ("di mana", "dari mana"):
        # both are question words where they follow each other in a query
        self.question_pairs = frozenset((normalize_word(a), normalize_word(b)) for a, b in question_pairs)
        self.protected = frozenset(normalize_word(w) for w in protected)
        if stemmer is not None and self.protected:
            stemmer = _protecting(stemmer, self.protected)
        self.stemmer = stemmer
        self.reduplication = reduplication
        # a closed compound written as one word -> the words of its usual open spelling ("ibukota" ->
        # ("ibu", "kota")), each its own token and position, so both spellings meet
        self.compounds = {normalize_word(w): tuple(parts) for w, parts in (compounds or {}).items()}
        # raw word run -> its terms in order, "" for a stopword (a run usually holds one word); bounded
        self._cache: dict[str, tuple[str, ...]] = {}
        self.cache_limit = _CACHE_LIMIT

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
        if self.compounds and any(self._compound(p[0]) for p in parts):
            parts = [q for p in parts for q in self._open(*p)]
        return parts

    def _compound(self, word: str) -> tuple[str, ...] | None:
        """The open spelling of a closed compound, also with a suffix ("ibukotanya" -> "ibu", "kotanya")."""
        pieces = self.compounds.get(word)
        if pieces is None and self.stemmer is not None:
            base = self.stemmer(word)
            pieces = self.compounds.get(base)
            if pieces is not None:
                if base == word or not word.startswith(base):
                    return None
                pieces = (*pieces[:-1], pieces[-1] + word[len(base) :])
        return pieces

    def _open(self, word: str, start: int, end: int) -> list[tuple[str, int, int]]:
        """A closed compound's words with their spans in the text (all of it when the lengths differ)."""
        pieces = self._compound(word)
        if pieces is None:
            return [(word, start, end)]
        if sum(map(len, pieces)) != end - start:
            return [(p, start, end) for p in pieces]
        out = []
        for p in pieces:
            out.append((p, start, start + len(p)))
            start += len(p)
        return out

    def _compute(self, run: str) -> tuple[str, ...]:
        return tuple(self.term(word) for m in TOKEN_RE.finditer(run) for word, _, _ in self._parts(m.group()))

    def _resolve(self, runs: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The terms of each distinct run, from the cache or computed now (and cached).

        Callers read the returned dict, never the shared cache after filling it: the cache is bounded
        (``cache_limit`` entries; full, its oldest half is dropped) and another thread may drop entries at
        any moment, so a lookup must never depend on what is still in it.
        """
        cache = self._cache
        known: dict[str, tuple[str, ...]] = {}
        missing: list[str] = []
        for run in set(runs):
            got = cache.get(run)
            if got is None:
                missing.append(run)
            else:
                known[run] = got
        if not missing:
            return known
        new: dict[str, tuple[str, ...]] = {}
        plain: list[str] = []
        for run in missing:
            if run.isalnum():  # letters and digits only: TOKEN_RE matches the whole run as one word
                plain.append(run)
            else:
                new[run] = self._compute(run)
        if plain:
            words = [r.lower() if r.isascii() else normalize_word(r) for r in plain]
            stopwords = self.stopwords
            stems = words if self.stemmer is None else list(map(self.stemmer, words))
            terms = ["" if w in stopwords or not w else t for w, t in zip(words, stems)]
            new.update(zip(plain, zip(terms)))  # zip(terms) gives the 1-tuples
            compounds = self.compounds
            if compounds:  # a closed compound (or one with a suffix: its stem is one) is two words
                for run, w, t in zip(plain, words, stems):
                    if (w in compounds or t in compounds) and self._compound(w):
                        new[run] = self._compute(run)
        over = len(cache) + len(new) - self.cache_limit
        if over > 0:
            # a long-lived process sees unboundedly many words: drop the oldest half (and what the new
            # entries need), never grow; the memory they held is reused in place, so a server's memory
            # stays flat instead of falling and climbing again as an emptied cache refills
            for run in list(islice(cache, max(over, len(cache) // 2))):
                cache.pop(run, None)  # another thread may have dropped it already
        cache.update(new)
        known.update(new)
        return known

    def prime(self, texts: Iterable[str], share: float = 0.9) -> int:
        """Fill the shared run cache from ``texts`` until it holds ``share`` of ``cache_limit`` entries
        (a server's warm-up: the words of its stored passages are the words its snippets will analyze).
        Returns the entries held; never clears the cache to make room."""
        target = int(self.cache_limit * min(max(share, 0.0), 1.0))
        cache = self._cache
        for text in texts:
            room = target - len(cache)
            if room <= 0:
                break
            runs = [r for r in dict.fromkeys(RUN_RE.findall(text)) if r not in cache][:room]
            if runs:
                self._resolve(runs)
        return len(cache)

    def terms_of_runs(
        self, runs: list[str]
    ) -> tuple[list[str], list[str], list[str], dict[str, tuple[tuple[str, str], ...]]]:
        """The surface words and terms of distinct raw word runs, computed in bulk, neither reading nor
        filling the shared cache (for the index writer, which caches runs per buffer).

        Returns the runs of letters and digits that are one slot, their words (``run_words``) and their
        terms ("" for a stopword) as three lists, and every other run -> its (word, term) per slot. Equal
        to ``run_words`` and ``run_terms``, with C-level passes over the list (lowercasing, stopwords,
        PyStemmer's ``stemWords``) instead of Python calls per run: a new run costs about its stem."""
        alnum = list(map(str.isalnum, runs))
        plain = list(compress(runs, alnum))
        other = {run: self._word_terms(run) for run in compress(runs, map(operator.not_, alnum))}
        words = list(map(str.lower, plain))
        for i in compress(range(len(plain)), map(operator.not_, map(str.isascii, plain))):
            words[i] = normalize_word(plain[i])
        stems = words if self.stemmer is None else stem_words(self.stemmer, words)
        terms = list(stems)
        for i in compress(range(len(words)), map(self.stopwords.__contains__, words)):
            terms[i] = ""
        if "" in words:
            for i in compress(range(len(words)), map(operator.not_, words)):
                terms[i] = ""
        compounds = self.compounds
        if compounds:  # a closed compound (or one with a suffix: its stem is one) is several words
            hits = compounds.keys() & (set(words) | set(stems))
            if hits:
                split = [
                    i for i, (w, t) in enumerate(zip(words, stems)) if (w in hits or t in hits) and self._compound(w)
                ]
                for i in reversed(split):
                    other[plain[i]] = self._word_terms(plain[i])
                    del plain[i], words[i], terms[i]
        return plain, words, terms, other

    def _word_terms(self, run: str) -> tuple[tuple[str, str], ...]:
        """(word, term) of each slot of a run: ``run_words`` and ``run_terms`` at once."""
        return tuple((w, self.term(w)) for m in TOKEN_RE.finditer(run) for w, _, _ in self._parts(m.group()))

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
        return self.columns_from_raw(RUN_RE.findall(text))

    def columns_from_raw(self, raw: list[str]) -> tuple[list[str], list[int]]:
        """Terms and positions for the raw word runs of a text (see ``tokenize``), through the stem cache.

        Each run maps to a tuple of terms ("" for a stopword, which still takes a position); flattening
        the tuples gives one slot per position, so terms and positions are two C-level ``compress`` calls.
        """
        cache = self._cache
        try:
            flat = list(chain.from_iterable(map(cache.__getitem__, raw)))
        except KeyError:
            known = self._resolve(raw)
            flat = list(chain.from_iterable(map(known.__getitem__, raw)))
        return list(compress(flat, flat)), list(compress(range(len(flat)), flat))

    def run_terms(self, runs: Iterable[str]) -> list[tuple[str, ...]]:
        """The terms of each raw word run (see ``tokenize``): one entry per position, "" for a stopword.

        For callers that keep their own per-run caches (the index writer maps runs straight to term ids).
        """
        runs = list(runs)
        known = self._resolve(runs)
        return [known[r] for r in runs]

    def match_spans(self, text: str, terms: Iterable[str]) -> list[tuple[str, int, int]]:
        """(term, start, end) of every token of ``text`` whose term is in ``terms``: offsets on demand.

        Equal to filtering ``analyze(text)``, in linear work with no Python step per word: the word runs
        and their starts come from two regex passes, the runs holding a wanted term are picked with
        ``compress``, and each distinct matching run is split into tokens once (a passage of one word
        repeated 20,000 times splits it once, not 20,000 times).
        """
        wanted = frozenset(terms)
        if not wanted:
            return []
        # a passage's size: one regex pass, its match objects kept for the starts of the matching runs (20%
        # less time a hit); a longer text: the runs as strings now, the starts from a second pass, so its
        # memory is not a match object per word
        found = list(RUN_RE.finditer(text)) if len(text) <= ONE_PASS_CHARS else None
        runs = RUN_RE.findall(text) if found is None else list(map(_MATCH_GROUP, found))
        known = self._resolve(runs)
        spans: dict[str, list[tuple[str, int, int]]] = {}
        for run, got in known.items():
            if not wanted.isdisjoint(got):
                spans[run] = [span for span in self._token_spans(run) if span[0] in wanted]
        if not spans:
            return []
        out: list[tuple[str, int, int]] = []
        append = out.append
        starts = map(_MATCH_START, RUN_RE.finditer(text) if found is None else found)
        for run, base in compress(zip(runs, starts), map(spans.__contains__, runs)):
            for t, s, e in spans[run]:
                append((t, base + s, base + e))
        return out

    def run_layout(
        self, runs: Iterable[str], terms: Iterable[str]
    ) -> dict[str, tuple[tuple[tuple[int, int], ...], tuple[tuple[str, int, int], ...]]]:
        """For each distinct run of ``runs``: the (start, end) of its words (``TOKEN_RE`` matches) and the
        (term, start, end) of its tokens whose term is in ``terms``, offsets in the run (as ``analyze``).

        A long passage's snippet is laid out from these once per distinct run, placed at each run's start
        with array arithmetic, instead of a regex pass and a tuple per word of the text (the snippet code
        lays out runs of letters and digits with one term, most runs, in bulk itself).
        """
        wanted = frozenset(terms)
        out: dict[str, tuple[tuple[tuple[int, int], ...], tuple[tuple[str, int, int], ...]]] = {}
        for run, got in self._resolve(runs).items():
            words = tuple(map(_MATCH_SPAN, TOKEN_RE.finditer(run)))
            if wanted.isdisjoint(got):
                out[run] = (words, ())
            else:
                out[run] = (words, tuple(span for span in self._token_spans(run) if span[0] in wanted))
        return out

    def _token_spans(self, run: str) -> list[tuple[str, int, int]]:
        """(term, start, end) of each indexed token of one word run, offsets in the run (as ``analyze``)."""
        out = []
        for m in TOKEN_RE.finditer(run):
            start = m.start()
            for word, s, e in self._parts(m.group()):
                t = self.term(word)
                if t:
                    out.append((t, start + s, start + e))
        return out

    def query_columns(self, text: str) -> tuple[list[str], list[int], list[int]]:
        """Terms and positions of a query text (as ``analyze``), and each word's kind: ``QUESTION`` (a
        question word), ``FUNCTION`` (a query stopword) or ``CONTENT``; a ranked query decides from the
        kinds which indexed words to score."""
        terms: list[str] = []
        positions: list[int] = []
        kinds: list[int] = []
        pos = 0
        before = ""  # the previous word, for ``question_pairs``
        for m in TOKEN_RE.finditer(text):
            for word, _, _ in self._parts(m.group()):
                t = self.term(word)
                if t:
                    if (before, word) in self.question_pairs and positions and positions[-1] == pos - 1:
                        kinds[-1] = QUESTION
                        kinds.append(QUESTION)
                    else:
                        kinds.append(self.word_kind(word))
                    terms.append(t)
                    positions.append(pos)
                before = word
                pos += 1
        return terms, positions, kinds

    def question_pair(self, first: str, second: str) -> bool:
        """Whether the last word of the text ``first`` and the first word of ``second`` are a question
        pair ("di" "mana"): what a query of separate words ("Di", "mana", "letak") needs to know."""
        if not self.question_pairs:
            return False
        a = [w for m in TOKEN_RE.finditer(first) for w, _, _ in self._parts(m.group())]
        b = [w for m in TOKEN_RE.finditer(second) for w, _, _ in self._parts(m.group())]
        return bool(a and b) and (a[-1], b[0]) in self.question_pairs

    def word_kind(self, word: str) -> int:
        """``QUESTION``, ``FUNCTION`` or ``CONTENT`` for one normalized query word."""
        if word in self.question_words:
            return QUESTION
        return FUNCTION if word in self.query_stopwords else CONTENT

    def run_words(self, run: str) -> tuple[str, ...]:
        """The normalized surface word of each slot of a raw word run (see ``run_terms``; stopwords too):
        what the index's surface-word dictionary keeps, for prefix and fuzzy expansion."""
        if run.isalnum():
            word = run.lower() if run.isascii() else normalize_word(run)
            return (self._compound(word) or (word,)) if self.compounds else (word,)
        return tuple(word for m in TOKEN_RE.finditer(run) for word, _, _ in self._parts(m.group()))

    def query_terms(self, text: str) -> list[str]:
        """The distinct terms of a query text, in first-seen order (a repeated query term counts once)."""
        terms, _ = self.analyze_columns(text)
        return list(dict.fromkeys(terms))
