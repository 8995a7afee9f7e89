"""A snapshot of one commit, and a search's view of it: analysis, postings and statistics.

A ``Snapshot`` holds the mmapped segments a ``meta.json`` names, their deletions, and the BM25
statistics of every language over its live passages in all segments (N, total length): a segment
without deletions gives the sums its header recorded at write, so opening reads no passage table.
It never changes; a new commit gives a new snapshot, so searches in other threads keep a consistent view.

A ``QueryContext`` is one search over a snapshot (Lucene's ``IndexSearcher`` for one query): it
analyzes the query under each language (term keys are ``"<lang>:<term>"``, so a passage matches
through its own language's analysis), finds and memoizes postings, and answers the statistics BM25
needs (the snapshot's own, or given ones: a shard of a sharded index scores with every shard's).
Weights (``search.weights``) bind query nodes to it; scorers (``search.scorers``) evaluate them.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import analyzers
from analyzers import Analyzer, normalize_word
from analyzers.base import FOREIGN, FUNCTION, QUESTION

from . import bm25, filters
from .bm25 import CollectionStatistics, LangStats
from .errors import IndexCorrupt
from .files import read_checked
from .query import SHOULD, BooleanQuery, FieldFilter, FuzzyQuery, PhraseQuery, Query, TermQuery
from .scorers import Vec
from .segment import SegmentReader, key_hash


class AnalyzedTerm:
    """One term already analyzed for a language (never analyzed again: stems are not idempotent);
    ``count``: how many times a keyword query repeats it (its score counts that many times).

    A value (equal and hashed by its fields, never changed once made); a plain slotted class rather than
    a frozen dataclass, since every word of every query makes one (3.5x cheaper to build)."""

    __slots__ = ("term", "field", "count")

    def __init__(self, term: str, field: str | None = None, count: int = 1) -> None:
        self.term = term
        self.field = field
        self.count = count

    def _key(self) -> tuple[str, str | None, int]:
        return (self.term, self.field, self.count)

    def __eq__(self, other: object) -> bool:
        return type(other) is AnalyzedTerm and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"AnalyzedTerm(term={self.term!r}, field={self.field!r}, count={self.count})"


_NO_STATS = LangStats(0, 0)
SCORE_CACHE_BYTES = 256 << 20


def set_score_cache_bytes(budget: int) -> None:
    """Bound every snapshot's score cache in this process (read at each insert): a server sizes it for
    long-lived worker processes (``search serve --cache-mb``)."""
    global SCORE_CACHE_BYTES
    SCORE_CACHE_BYTES = max(0, int(budget))

SCORE_CACHE_MIN_POSTINGS = 128
SNAPSHOT_MEMO_KEYS = 1 << 16  # term keys whose slots (and df) a snapshot remembers; emptied when full
_EMPTY = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


@dataclass
class SegmentView:
    """A segment in a snapshot: its reader, which documents are deleted, and its first global passage id."""

    reader: SegmentReader
    deleted_docs: np.ndarray  # sorted local doc ids
    base: int
    live_passages: np.ndarray | None = None  # bool per passage; None when nothing is deleted
    live_docs: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.deleted_docs.size:
            live = np.ones(self.reader.n_docs, dtype=bool)
            live[self.deleted_docs] = False
            self.live_docs = live
            self.live_passages = live[self.reader.p_doc]

    @property
    def n_live_docs(self) -> int:
        return self.reader.n_docs - int(self.deleted_docs.size)


class Snapshot:
    """The committed state an ``Index`` searches: segments, deletions, per-language statistics."""

    def __init__(self, directory: Path, meta: dict, segments: list[SegmentView]) -> None:
        self.directory = directory
        self.meta = meta
        self.generation: int = meta["generation"]
        self.segments = segments
        self.n_passages = sum(s.reader.n_passages for s in segments)
        totals: dict[str, list[int]] = {}
        for seg in segments:
            r = seg.reader
            live = seg.live_passages
            if live is None:  # counted when the segment was written: opening reads no passage
                per_lang = r.lang_stats()
            else:  # deletions: the live passages' own sums, O(passages) for this segment
                codes, lens = r.p_lang[live], r.p_len[live]
                per_lang = [
                    (int(np.count_nonzero(codes == c)), int(lens[codes == c].sum(dtype=np.int64)))
                    for c in range(len(r.langs))
                ]
            for lang, (n, length) in zip(r.langs, per_lang):
                if n:
                    t = totals.setdefault(lang, [0, 0])
                    t[0] += n
                    t[1] += length
        self.stats: dict[str, LangStats] = {k: LangStats(v[0], v[1]) for k, v in sorted(totals.items())}
        # whether any segment has deletions: df then counts live postings instead of reading the dictionary
        self.has_deletions = any(seg.live_passages is not None for seg in segments)
        self._id_map: dict[str, tuple[int, int]] | None = None
        self._norms: dict[tuple[int, str, float, float], np.ndarray] = {}
        self._scores: OrderedDict[tuple, tuple[np.ndarray, ...]] = OrderedDict()
        self._scores_bytes = 0
        self._scores_lock = threading.Lock()
        # term key -> its dictionary slot in every segment, and its df when no segment has deletions:
        # both fixed for the snapshot's life, so a word seen by an earlier query is not looked up again
        self.slot_cache: dict[str, list[int]] = {}
        self.df_cache: dict[str, int] = {}

    def cached_arrays(
        self, key: tuple, compute: Callable[[], tuple[np.ndarray, ...]], min_rows: int = SCORE_CACHE_MIN_POSTINGS
    ) -> tuple[np.ndarray, ...]:
        """Arrays derived from one term's postings in one segment, kept in a small LRU cache.

        Frequent terms recur across queries: their scores change only with a new snapshot (N, df, avgdl)
        or other k1/b, both part of the key; their position offsets and a phrase's matches never change.
        Arrays of at least ``min_rows`` rows only; at most ``SCORE_CACHE_BYTES`` in all.
        """
        got = self._scores.get(key)  # read without the lock, as ``segment.DECODED`` reads
        if got is not None:
            try:
                self._scores.move_to_end(key)
            except KeyError:  # evicted by another thread since the read
                pass
            return got
        got = compute()
        if got[0].shape[0] >= min_rows:
            size = sum(a.nbytes for a in got) + 200
            with self._scores_lock:
                if key not in self._scores:
                    self._scores[key] = got
                    self._scores_bytes += size
                    while self._scores_bytes > SCORE_CACHE_BYTES and self._scores:
                        _, old = self._scores.popitem(last=False)
                        self._scores_bytes -= sum(a.nbytes for a in old) + 200
        return got

    def keeps(self, nbytes: int) -> bool:
        """Whether an entry of ``nbytes`` is small enough for the score cache (at most 1/64 of its budget:
        one array must not push out dozens of frequent terms)."""
        return nbytes * 64 <= SCORE_CACHE_BYTES

    @property
    def score_cache_room(self) -> int:
        """Bytes of the score cache's budget still free."""
        with self._scores_lock:
            return SCORE_CACHE_BYTES - self._scores_bytes

    def peek_arrays(self, key: tuple) -> tuple[np.ndarray, ...] | None:
        """What ``cached_arrays`` keeps under ``key``, or None (nothing is computed)."""
        with self._scores_lock:
            got = self._scores.get(key)
            if got is not None:
                self._scores.move_to_end(key)
            return got

    def norms(self, si: int, avgdl: float, k1: float, b: float) -> np.ndarray:
        """BM25 length norms of every passage of segment ``si`` under ``avgdl`` (memoized)."""
        key = (si, avgdl, k1, b)
        got = self._norms.get(key)
        if got is None:
            got = bm25.length_norms(self.segments[si].reader.p_len, avgdl, k1, b)
            if len(self._norms) > 64:
                self._norms.clear()
            self._norms[key] = got
        return got

    @property
    def languages(self) -> list[str]:
        """Languages with at least one live passage."""
        return list(self.stats)

    def n_docs(self) -> int:
        return sum(s.n_live_docs for s in self.segments)

    def id_map(self) -> dict[str, tuple[int, int]]:
        """Live document id -> (segment index, local doc id), built on first use."""
        if self._id_map is None:
            m: dict[str, tuple[int, int]] = {}
            for si, seg in enumerate(self.segments):
                ids = seg.reader.strings("doc_id")
                live = seg.live_docs
                for di, doc_id in enumerate(ids):
                    if live is None or live[di]:
                        m[doc_id] = (si, di)
            self._id_map = m
        return self._id_map


class QueryContext:
    """One search over a snapshot: BM25 parameters, analyzers, and a per-query memo of postings.

    Scores are BM25 per language (BM25+ where ``bm25.DELTA`` says); the caller weighs languages afterwards.
    """

    def __init__(
        self,
        snap: Snapshot,
        k1: float,
        b: float,
        analyzer: Callable[[str], Analyzer] = analyzers.get,
        query_stopwords: frozenset[str] = frozenset(),
        query_lang: str | None = None,
        statistics: CollectionStatistics | None = None,
    ) -> None:
        self.snap = snap
        # None: the snapshot's own statistics; else N, avgdl and df come from here (a shard of a sharded
        # index scores with the statistics of every shard)
        self.statistics = statistics
        self.per_document = True
        # how a ranked OR skips what cannot reach the top n: "auto" (today: exhaustive, since block-max
        # lost to it in every measurement so far), "blockmax" (forced), or "none" (exhaustive); every
        # mode returns the same top n with the same scores
        self.pruning = "auto"
        self._term_memo: dict[tuple[str, str, int], tuple[np.ndarray, ...]] = {}
        self.analyzer = analyzer
        # stopwords of the query's likeliest language, dropped under every language's analysis: an
        # English "of" must not match Indonesian passages just because "of" is no Indonesian stopword
        # (not under that language itself, whose analyzer knows its own stopwords)
        self.query_stopwords = query_stopwords
        self.query_lang = query_lang
        self.k1 = k1
        self.b = b
        self._postings: dict[str, list[Vec]] = {}
        self._df: dict[str, int] = {}
        self._slots: dict[str, list[int]] = {}
        self._phrases: dict[tuple, Vec] = {}  # (prefix, terms, offsets, segment) -> (passage ids, counts)
        self._terms: dict[tuple[str, str], tuple[list[str], list[int], list[int]]] = {}
        # analyses kept across searches by the caller (``Index``: same analyzers), keyed by language, text
        # and the query language whose stopwords are dropped; None: this search's own memo only
        self.analyses: dict[tuple, tuple[list[str], list[int], list[int]]] | None = None
        # (lang, term) of query stopwords a ranked OR left out (not highlighted either)
        self.dropped: set[tuple[str, str]] = set()

    def share_postings(self, other: QueryContext) -> None:
        """Reuse ``other``'s postings, slots, phrase matches and analyses (same snapshot and query
        analysis): they do not depend on the statistics, so a shard's second phase does not find them
        again."""
        assert other.snap is self.snap and other.query_lang == self.query_lang
        self._postings, self._slots, self._terms, self._df = other._postings, other._slots, other._terms, other._df
        self._phrases = other._phrases

    def forget_arrays(self) -> None:
        """Let go of the postings, scores and phrase matches this search read (new memos: another
        context may share the old ones). A search's hits keep its context for their highlight terms,
        which need its analyses only; a caller holding hits must not hold a query's arrays too."""
        self._postings = {}
        self._term_memo = {}
        self._phrases = {}

    def mark_dropped(self, root: BooleanQuery, langs: list[str]) -> None:
        """Fill ``dropped`` as evaluating ``root`` under ``langs`` does, without evaluating it (for
        highlighting hits found by another context: a shard's fetch after its search)."""
        stack = [root]
        while stack:
            node = stack.pop()
            for lang in langs:
                self.clauses(node, lang)
            stack.extend(c for _, c in node.clauses if isinstance(c, BooleanQuery))

    # -- analysis ---------------------------------------------------------------------------------------
    def analyze(self, lang: str, text: str) -> tuple[list[str], list[int]]:
        """Terms and positions of a query text under ``lang``'s analyzer (memoized): every indexed word,
        query stopwords included, as phrases and highlighting need them."""
        terms, positions, _ = self.analyze_query(lang, text)
        return terms, positions

    def analyze_query(self, lang: str, text: str) -> tuple[list[str], list[int], list[int]]:
        """``analyze`` plus each term's word kind (``analyzers.base.CONTENT/FUNCTION/QUESTION``) under
        ``lang``'s analyzer; a stopword of the query's likeliest language (``query_stopwords``) is
        ``FOREIGN`` under the other languages (never scored): an English "of" must not match Indonesian
        passages."""
        key = (lang, text)
        got = self._terms.get(key)
        if got is None and self.analyses is not None:
            got = self.analyses.get((lang, text, self.query_lang))
            if got is not None:
                self._terms[key] = got
        if got is None:
            an = self.analyzer(lang)
            if self.query_stopwords and lang != self.query_lang and not self.query_stopwords <= an.stopwords:
                terms: list[str] = []
                positions: list[int] = []
                kinds: list[int] = []
                for t in an.analyze(text):
                    word = normalize_word(text[t.start : t.end])
                    terms.append(t.term)
                    positions.append(t.position)
                    kinds.append(FOREIGN if word in self.query_stopwords else an.word_kind(word))
                got = (terms, positions, kinds)
            else:
                got = an.query_columns(text)
            self._terms[key] = got
            if self.analyses is not None:
                self.analyses[(lang, text, self.query_lang)] = got
        return got

    # -- postings ---------------------------------------------------------------------------------------
    def slots(self, key: str) -> list[int]:
        """The dictionary slot of ``key`` in every segment (-1: absent), looked up once per query."""
        got = self._slots.get(key)
        if got is None:
            shared = self.snap.slot_cache
            got = shared.get(key)
            if got is None:
                h = key_hash(key)
                got = [seg.reader.find(key, h) for seg in self.snap.segments]
                if len(shared) >= SNAPSHOT_MEMO_KEYS:
                    shared.clear()
                shared[key] = got
            self._slots[key] = got
        return got

    def postings(self, key: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """Live (passage ids, tf) of ``key`` in every segment, in segment order."""
        got = self._postings.get(key)
        if got is None:
            got = []
            for seg, slot in zip(self.snap.segments, self.slots(key)):
                if slot < 0:
                    got.append((_EMPTY[0], _EMPTY[0]))
                    continue
                pids, tfs = seg.reader.postings(slot)
                if seg.live_passages is not None:
                    keep = seg.live_passages[pids]
                    pids, tfs = pids[keep], tfs[keep]
                got.append((pids, tfs))
            self._postings[key] = got
            self._df[key] = sum(int(p.shape[0]) for p, _ in got)
        return got

    def slot(self, key: str, si: int) -> int:
        """The dictionary slot of ``key`` in segment ``si`` (-1: absent)."""
        return self.slots(key)[si]

    def df(self, key: str) -> int:
        """Passages holding ``key``: the given statistics' count, else this snapshot's live postings (from
        the dictionary when no segment has deletions: nothing is decoded)."""
        if self.statistics is not None:
            return self.statistics.df(key)
        got = self._df.get(key)
        if got is None:
            if self.snap.has_deletions:
                self.postings(key)
                return self._df[key]
            shared = self.snap.df_cache
            got = shared.get(key)
            if got is None:
                got = sum(seg.reader.df(slot) for seg, slot in zip(self.snap.segments, self.slots(key)) if slot >= 0)
                if len(shared) >= SNAPSHOT_MEMO_KEYS:
                    shared.clear()
                shared[key] = got
            self._df[key] = got
        return got

    def stats(self, lang: str) -> LangStats:
        """N and total length of ``lang``: the given statistics', else the snapshot's (0, 0 when absent)."""
        if self.statistics is not None:
            return self.statistics.lang_stats(lang)
        return self.snap.stats.get(lang, _NO_STATS)

    # -- tree -------------------------------------------------------------------------------------------
    def leaf_terms(self, lang: str, node: TermQuery | PhraseQuery) -> tuple[list[str], list[int]]:
        terms, positions = self.analyze(lang, node.text)
        if positions:
            first = positions[0]
            positions = [p - first for p in positions]
        return terms, positions

    def clauses(self, node: BooleanQuery, lang: str) -> list[tuple[str, Query | AnalyzedTerm]]:
        """The clauses of ``node`` under ``lang``'s analysis.

        A SHOULD word becomes its analyzed terms (a bare "e-mail" or "anti-mobilisasi" is a ranked OR of
        its parts; as +must or -must_not it stays a phrase). Among the SHOULD words, question words are
        dropped, and so are function words when the query is a question (holds a question word): a
        keyword query scores every word it has. Nothing is dropped when nothing else would be left to
        score (function words are indexed, so a query of function words only still finds them). A
        repeated SHOULD term is one clause; in a keyword query its score counts once per repetition
        (``AnalyzedTerm.count``, as Lucene and bm25s count a repeated query word), in a question once
        (questions repeat words that do not find the answer: docs/quality.md, issue 16). Only languages
        with question words (Indonesian) tell the two apart; elsewhere a repeated term counts once.
        """
        node = filters.split(node)[0]  # filters are a mask clause (weights), never scored words
        cl = node.clauses
        analyze = self.analyze_query
        # the SHOULD words' analyses (terms, positions, kinds), by clause; analyzed once here
        words: dict[int, tuple[list[str], list[int], list[int]]] = {}
        only_words = True
        for i, (occur, child) in enumerate(cl):
            if occur == SHOULD and _is_word(child):
                words[i] = analyze(lang, child.text)  # type: ignore[union-attr]
            else:
                only_words = False
        word_kinds = {i: got[2] for i, got in words.items()}
        an = self.analyzer(lang)
        if an.question_pairs and len(words) > 1:  # "Di" "mana" as two words of the query ask as "dimana" does
            at = list(words)
            for i, j in zip(at, at[1:]):
                a, b = cl[i][1], cl[j][1]
                if j == i + 1 and word_kinds[i] and word_kinds[j] and an.question_pair(a.text, b.text):  # type: ignore[union-attr]
                    word_kinds[i] = [*word_kinds[i][:-1], QUESTION]
                    word_kinds[j] = [QUESTION, *word_kinds[j][1:]]
        kinds = [k for ks in word_kinds.values() for k in ks]
        cut = FUNCTION if QUESTION in kinds else QUESTION  # drop kinds >= cut
        if only_words and all(k >= cut for k in kinds):
            cut = FOREIGN
        out: list[tuple[str, Query | AnalyzedTerm]] = []
        seen: dict[tuple[str, str | None], int] = {}  # a SHOULD term -> its clause's index in ``out``
        # a keyword query counts a repeated word each time, where the language tells questions apart
        # (English has no question words: its claims and questions would count too, which cost SciFact)
        keyword = QUESTION not in kinds and bool(an.question_words)
        # "langkah langkah" typed for "langkah-langkah": the index holds a reduplicated word once (its
        # analyzer folds reduplication), so the query's word spelled twice in a row counts once too
        spelled_apart = an.reduplication
        for at_clause, (occur, child) in enumerate(cl):
            got = words.get(at_clause)
            if got is None:
                out.append((occur, child))
                continue
            terms, kind = got[0], word_kinds[at_clause]
            if isinstance(child, FuzzyQuery):  # a word search(fuzzy=True) made fuzzy: dropped as the word would be
                if kind and all(k >= cut for k in kind):
                    self.dropped.update((lang, t) for t in terms)
                else:
                    out.append((occur, child))
                continue
            if any(k >= cut for k in kind):
                self.dropped.update((lang, t) for t, k in zip(terms, kind) if k >= cut)
                terms = [t for t, k in zip(terms, kind) if k < cut]
            field = child.field  # type: ignore[union-attr]
            for t in terms:
                sig = (t, field)
                at = seen.get(sig)
                if at is None:
                    seen[sig] = len(out)
                    out.append((SHOULD, AnalyzedTerm(t, field)))
                elif keyword and not (spelled_apart and _repeats_previous(node, at_clause)):
                    term = out[at][1]
                    out[at] = (SHOULD, AnalyzedTerm(t, field, term.count + 1))  # type: ignore[union-attr]
        return out


def _repeats_previous(node: BooleanQuery, i: int) -> bool:
    """Clause ``i`` is the same SHOULD word as the clause right before it (case aside)."""
    if i == 0:
        return False
    (o1, a), (o2, b) = node.clauses[i - 1], node.clauses[i]
    return (
        o1 == o2 == SHOULD
        and isinstance(a, TermQuery)
        and isinstance(b, TermQuery)
        and a.field == b.field
        and a.text.casefold() == b.text.casefold()
    )


def _is_word(node: object) -> bool:
    """A bare word as the ranked-OR rules see it: a term, or a term made fuzzy by ``fuzzy=True``."""
    return isinstance(node, TermQuery) or (isinstance(node, FuzzyQuery) and not node.typed)


def query_term_keys(
    root: BooleanQuery, langs: list[str], analyze: Callable[[str, str], tuple[list[str], list[int]]]
) -> list[str]:
    """Every term key (``"<lang>:<term>"``) whose df scoring ``root`` under ``langs`` may read, with
    ``analyze`` a ``QueryContext.analyze`` (negated and title-only words included: a title match is
    scored with the text term's idf)."""
    keys: dict[str, None] = {}

    def walk(node: Query) -> None:
        if isinstance(node, BooleanQuery):
            for _, child in node.clauses:
                walk(child)
            return
        if isinstance(node, FieldFilter):  # filters read columns, no term statistics
            return
        for lang in langs:
            for t in analyze(lang, node.text)[0]:
                keys[f"{lang}:{t}"] = None

    walk(root)
    return list(keys)


def open_segments(directory: Path, meta: dict, reuse: dict[str, SegmentReader] | None = None) -> list[SegmentView]:
    """Open (or reuse) the segments ``meta`` names, checking each file's size against the commit."""
    views: list[SegmentView] = []
    base = 0
    for entry in meta["segments"]:
        name = entry["name"]
        path = directory / name
        reader = (reuse or {}).get(name)
        if reader is None:
            try:
                reader = SegmentReader(path, size=entry["size"])
            except IndexCorrupt as e:
                if "is missing" in str(e):
                    raise IndexCorrupt(f"segment file {name} is missing from {directory}", str(path)) from None
                raise
        deleted = np.empty(0, dtype=np.int64)
        dels = entry.get("deletes")
        if dels:
            dpath = directory / dels["name"]
            try:
                raw = read_checked(dpath, f"deletions file {dels['name']}", size=dels["size"])
            except FileNotFoundError:
                raise IndexCorrupt(f"deletions file {dels['name']} is missing", str(dpath)) from None
            # a deletions file is small (4 bytes a deleted document): its checksum is worth checking at
            # open, since a flipped id in range would silently hide one document and show another
            if hashlib.blake2b(raw, digest_size=16).hexdigest() != dels.get("checksum"):
                raise IndexCorrupt(f"deletions file {dels['name']} fails its checksum (damaged)", str(dpath))
            deleted = np.frombuffer(raw, dtype="<u4").astype(np.int64)
            if deleted.size and int(deleted.max()) >= reader.n_docs:
                raise IndexCorrupt(f"deletions file {dels['name']} names documents that do not exist", str(dpath))
        views.append(SegmentView(reader, deleted, base))
        base += reader.n_passages
    return views
