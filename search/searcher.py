"""A snapshot of one commit and the query evaluation over it: exact BM25 per language, vectorized.

A ``Snapshot`` holds the mmapped segments a ``meta.json`` names, their deletions, and the BM25
statistics of every language over its live passages in all segments (N, total length). It never
changes; a new commit gives a new snapshot, so searches in other threads keep a consistent view.

Evaluation runs per (language, segment): the query is analyzed with each language's analyzer and
matched against that language's terms only (term keys are ``"<lang>:<term>"``), so a passage matches
through its own language's analysis. Each clause gives a sparse vector (sorted passage ids, scores);
booleans combine them in clause order, so a passage's score is summed in the same order whatever the
segment layout, and equals the score a fresh index of the live documents gives.
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

from . import bm25
from .bm25 import CollectionStatistics, Explanation, LangStats
from .errors import IndexCorrupt
from .files import read_checked
from .query import MUST, MUST_NOT, SHOULD, BooleanQuery, PhraseQuery, Query, TermQuery
from .segment import SegmentReader, key_hash

Vec = tuple[np.ndarray, np.ndarray]  # (sorted unique passage ids, float64 scores)


@dataclass(frozen=True)
class AnalyzedTerm:
    """One term already analyzed for a language (never analyzed again: stems are not idempotent)."""

    term: str
    field: str | None = None


SCORE_CACHE_BYTES = 256 << 20
# combine clauses over a dense array once their postings reach 1/DENSE_RATIO of a segment's passages
DENSE_RATIO = 4
SCORE_CACHE_MIN_POSTINGS = 128
TOP_SCORES = 64  # best scores kept per cached term: floors for ranked ORs
_EMPTY: Vec = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


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
            for code, lang in enumerate(r.langs):
                mask = r.p_lang == code
                if live is not None:
                    mask &= live
                n = int(np.count_nonzero(mask))
                if n:
                    t = totals.setdefault(lang, [0, 0])
                    t[0] += n
                    t[1] += int(r.p_len[mask].sum(dtype=np.int64))
        self.stats: dict[str, LangStats] = {k: LangStats(v[0], v[1]) for k, v in sorted(totals.items())}
        self._id_map: dict[str, tuple[int, int]] | None = None
        self._norms: dict[tuple[int, str, float, float], np.ndarray] = {}
        self._scores: OrderedDict[tuple, tuple[np.ndarray, ...]] = OrderedDict()
        self._scores_bytes = 0
        self._scores_lock = threading.Lock()

    def cached_arrays(self, key: tuple, compute: Callable[[], tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
        """Arrays derived from one term's postings in one segment, kept in a small LRU cache.

        Frequent terms recur across queries: their scores change only with a new snapshot (N, df, avgdl)
        or other k1/b, both part of the key; their position offsets never change. Long postings only; at
        most ``SCORE_CACHE_BYTES`` in all.
        """
        with self._scores_lock:
            got = self._scores.get(key)
            if got is not None:
                self._scores.move_to_end(key)
                return got
        got = compute()
        if got[0].shape[0] >= SCORE_CACHE_MIN_POSTINGS:
            size = sum(a.nbytes for a in got)
            with self._scores_lock:
                if key not in self._scores:
                    self._scores[key] = got
                    self._scores_bytes += size
                    while self._scores_bytes > SCORE_CACHE_BYTES and self._scores:
                        _, old = self._scores.popitem(last=False)
                        self._scores_bytes -= sum(a.nbytes for a in old)
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

    Scores are plain BM25 per language; the caller weighs languages afterwards.
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
        # (lang, term) of query stopwords a ranked OR left out (not highlighted either)
        self.dropped: set[tuple[str, str]] = set()

    def share_postings(self, other: QueryContext) -> None:
        """Reuse ``other``'s postings, slots, phrase matches and analyses (same snapshot and query
        analysis): they do not depend on the statistics, so a shard's second phase does not find them
        again."""
        assert other.snap is self.snap and other.query_lang == self.query_lang
        self._postings, self._slots, self._terms, self._df = other._postings, other._slots, other._terms, other._df
        self._phrases = other._phrases

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
        return got

    # -- postings ---------------------------------------------------------------------------------------
    def postings(self, key: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """Live (passage ids, tf) of ``key`` in every segment, in segment order."""
        got = self._postings.get(key)
        if got is None:
            h = key_hash(key)
            got = []
            slots = self._slots[key] = []
            for seg in self.snap.segments:
                slot = seg.reader.find(key, h)
                slots.append(slot)
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
        """The dictionary slot of ``key`` in segment ``si`` (-1: absent), looked up once per query."""
        self.postings(key)
        return self._slots[key][si]

    def df(self, key: str) -> int:
        """Passages holding ``key``: the given statistics' count, else this snapshot's live postings."""
        if self.statistics is not None:
            return self.statistics.df(key)
        self.postings(key)
        return self._df[key]

    def stats(self, lang: str) -> LangStats:
        if self.statistics is not None:
            return self.statistics.lang_stats(lang)
        return self.snap.stats[lang]

    # -- leaves -----------------------------------------------------------------------------------------
    def term_vec(self, lang: str, term: str, si: int, field: str | None) -> Vec:
        """Scores of one analyzed term in segment ``si`` (title:term scores the text's term on titles only)."""
        pids, scores, _ = self._scored(lang, term, si)
        if pids.shape[0] and field == "title":
            tpids, _ = self.postings(f"{lang}:title:{term}")[si]
            keep = np.isin(pids, tpids, assume_unique=True)
            pids, scores = pids[keep], scores[keep]
        return pids, scores

    def _scored(self, lang: str, term: str, si: int) -> tuple[np.ndarray, ...]:
        """(passage ids, scores, best scores) of a term in a segment, memoized per query and snapshot."""
        memo_key = (lang, term, si)
        got = self._term_memo.get(memo_key)
        if got is None:
            key = f"{lang}:{term}"
            cache_key: tuple = (si, key, self.k1, self.b)
            if self.statistics is not None:  # scores depend on the given N, avgdl and df
                st = self.statistics.lang_stats(lang)
                cache_key += (st.n_passages, st.total_length, self.statistics.df(key))
            got = self.snap.cached_arrays(cache_key, lambda: self._score_term(lang, key, si))
            self._term_memo[memo_key] = got
        return got

    def _score_term(self, lang: str, key: str, si: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pids, tfs = self.postings(key)[si]
        if pids.shape[0] == 0:
            return _EMPTY[0], _EMPTY[1], _EMPTY[1]
        idf = bm25.idf(self.stats(lang).n_passages, self.df(key))
        scores = bm25.term_scores(idf, tfs, self.snap.norms(si, self.stats(lang).avgdl, self.k1, self.b)[pids])
        n = scores.shape[0]
        top = np.partition(scores, n - TOP_SCORES)[n - TOP_SCORES :] if n > TOP_SCORES else scores.copy()
        return pids.astype(np.int64), scores, np.sort(top)[::-1].copy()

    def phrase_vec(self, lang: str, terms: list[str], offsets: list[int], si: int, field: str | None) -> Vec:
        """Scores of a phrase: passages where every term sits at its relative offset; tf = phrase count.

        Candidates are the passages holding every term (rarest term first); then each term's positions
        in those passages become sorted keys (passage << 32 | position - offset) and are intersected.
        """
        prefix = f"{lang}:title:" if field == "title" else f"{lang}:"
        memo_key = (prefix, tuple(terms), tuple(offsets), si)
        found = self._phrases.get(memo_key)
        if found is None:
            found = self._phrases[memo_key] = self._phrase_matches(prefix, terms, offsets, si)
        pids, freq = found
        if pids.shape[0] == 0:
            return _EMPTY
        st = self.stats(lang)
        idf = sum(bm25.idf(st.n_passages, self.df(f"{lang}:{t}")) for t in terms)
        scores = bm25.term_scores(idf, freq, self.snap.norms(si, st.avgdl, self.k1, self.b)[pids])
        return pids, scores

    def _phrase_matches(self, prefix: str, terms: list[str], offsets: list[int], si: int) -> Vec:
        """(passage ids, phrase counts) of a phrase in segment ``si``: independent of the statistics."""
        reader = self.snap.segments[si].reader
        lists = []
        for t, off in zip(terms, offsets):
            pids, _ = self.postings(prefix + t)[si]
            if pids.shape[0] == 0:
                return _EMPTY
            lists.append((pids.shape[0], self.slot(prefix + t, si), off, pids))
        lists.sort(key=lambda x: x[0])
        cand = lists[0][3]
        for *_, pids in lists[1:]:
            cand = _intersect_sorted(cand, pids)
            if cand.shape[0] == 0:
                return _EMPTY
        keys: np.ndarray | None = None
        for _, slot, off, _ in lists:
            starts = self.snap.cached_arrays((si, "pos", prefix, slot), lambda s=slot: (reader.position_starts(s),))[0]
            ppid, ppos = reader.positions_of(slot, cand, starts)
            k = (ppid.astype(np.int64) << 32) | (ppos.astype(np.int64) - off + (1 << 31))
            keys = k if keys is None else _intersect_sorted(keys, k)
            if keys.shape[0] == 0:
                return _EMPTY
            # later terms only need the passages still in the running
            cand = np.unique(keys >> 32) if keys.shape[0] < cand.shape[0] else cand
        owners = keys >> 32
        starts = np.flatnonzero(np.concatenate(([True], owners[1:] != owners[:-1])))
        return owners[starts], np.diff(np.append(starts, owners.shape[0]))

    # -- tree -------------------------------------------------------------------------------------------
    def leaf_terms(self, lang: str, node: TermQuery | PhraseQuery) -> tuple[list[str], list[int]]:
        terms, positions = self.analyze(lang, node.text)
        if positions:
            first = positions[0]
            positions = [p - first for p in positions]
        return terms, positions

    def evaluate(
        self, lang: str, node: Query | AnalyzedTerm, si: int, occur: str = SHOULD, top_n: int = 0
    ) -> Vec | None:
        """Sparse scores of ``node`` in segment ``si`` under ``lang``; None when it has no terms at all.

        With ``top_n`` (a search's offset + k, at the root only) a ranked OR may return just the passages
        that can be among this segment's ``top_n`` best; their scores are exact either way.
        """
        if isinstance(node, AnalyzedTerm):
            return self.term_vec(lang, node.term, si, node.field)
        if isinstance(node, BooleanQuery):
            return self.boolean_vec(lang, node, si, top_n)
        terms, offsets = self.leaf_terms(lang, node)
        if not terms:
            return None
        if len(terms) == 1:
            return self.term_vec(lang, terms[0], si, node.field)
        return self.phrase_vec(lang, terms, offsets, si, node.field)

    def clauses(self, node: BooleanQuery, lang: str) -> list[tuple[str, Query | AnalyzedTerm]]:
        """The clauses of ``node`` under ``lang``'s analysis.

        A SHOULD word becomes its analyzed terms (a bare "e-mail" or "anti-mobilisasi" is a ranked OR of
        its parts; as +must or -must_not it stays a phrase), and a repeated SHOULD term counts once.
        Among the SHOULD words, question words are dropped, and so are function words when the query
        is a question (holds a question word): a keyword query scores every word it has. Nothing is
        dropped when nothing else would be left to score (function words are indexed, so a query of
        function words only still finds them).
        """
        kinds = [
            k
            for occur, child in node.clauses
            if occur == SHOULD and isinstance(child, TermQuery)
            for k in self.analyze_query(lang, child.text)[2]
        ]
        cut = FUNCTION if QUESTION in kinds else QUESTION  # drop kinds >= cut
        only_words = all(occur == SHOULD and isinstance(child, TermQuery) for occur, child in node.clauses)
        if only_words and all(k >= cut for k in kinds):
            cut = FOREIGN
        out: list[tuple[str, Query | AnalyzedTerm]] = []
        seen: set[tuple[str, str | None]] = set()
        for occur, child in node.clauses:
            if occur == SHOULD and isinstance(child, TermQuery):
                terms, _, kind = self.analyze_query(lang, child.text)
                if any(k >= cut for k in kind):
                    self.dropped.update((lang, t) for t, k in zip(terms, kind) if k >= cut)
                    terms = [t for t, k in zip(terms, kind) if k < cut]
                for t in terms:
                    sig = (t, child.field)
                    if sig not in seen:
                        seen.add(sig)
                        out.append((SHOULD, AnalyzedTerm(t, child.field)))
                continue
            out.append((occur, child))
        return out

    def boolean_vec(self, lang: str, node: BooleanQuery, si: int, top_n: int = 0) -> Vec | None:
        must: list[Vec] = []
        scored: list[Vec] = []
        plain: list[AnalyzedTerm | None] = []
        must_not: list[Vec] = []
        any_terms = False
        not_pids: list[np.ndarray] = []
        for occur, child in self.clauses(node, lang):
            if occur == MUST_NOT:
                matched = self._not_matches(lang, child, si)
                if matched is not None:
                    any_terms = True
                    not_pids.extend(matched)
                continue
            vec = self.evaluate(lang, child, si, occur)
            if vec is None:
                continue
            any_terms = True
            if occur == MUST:
                must.append(vec)
            scored.append(vec)
            plain.append(child if isinstance(child, AnalyzedTerm) and child.field is None else None)
        if not any_terms:
            return None
        if not scored:
            return _EMPTY  # only negative clauses match nothing
        if not_pids:  # one exclusion for every NOT clause: the documents they match, whole
            must_not.append(self._documents_of(si, not_pids))
        n_passages = self.snap.segments[si].reader.n_passages
        if len(scored) > 1 and not must and sum(p.shape[0] for p, _ in scored) * DENSE_RATIO > n_passages:
            floor = self._floor(lang, si, plain, top_n) if not must_not else 0.0
            return _dense_combine(scored, must, must_not, n_passages, floor)
        if not must_not and len(scored) == 1:
            return scored[0]
        if not must and not must_not and len(scored) < 8:
            return _sparse_sum(scored)
        if must:
            ids = must[0][0]
            for p, _ in must[1:]:
                ids = _intersect_sorted(ids, p)
        elif len(scored) == 1:
            ids = scored[0][0]
        else:
            ids = _union([p for p, _ in scored], n_passages)
        for p, _ in must_not:
            if ids.shape[0] and p.shape[0]:
                ids = ids[~np.isin(ids, p, assume_unique=True)]
        if ids.shape[0] == 0:
            return _EMPTY
        if len(scored) == 1 and ids.shape[0] == scored[0][0].shape[0]:
            return ids, scored[0][1]
        acc = np.zeros(ids.shape[0], dtype=np.float64)
        for p, s in scored:  # clause order: the same float sum whatever the segment layout
            if p.shape[0] == 0:
                continue
            idx = np.searchsorted(p, ids)
            idx_c = np.minimum(idx, p.shape[0] - 1)
            hit = p[idx_c] == ids
            acc[hit] += s[idx_c[hit]]
        return ids, acc

    def _not_matches(self, lang: str, child: Query | AnalyzedTerm, si: int) -> list[np.ndarray] | None:
        """Passages of segment ``si`` that match a NOT clause: under ``lang``, and a plain word under every
        other language of the index too (a document's passages can be detected as different languages); a
        phrase or a group under ``lang``. None when ``child`` has no terms under ``lang`` (as ``evaluate``).
        Only passage ids are read for the other languages (no scores, no statistics)."""
        vec = self.evaluate(lang, child, si, MUST_NOT)
        if vec is None:
            return None
        found = [vec[0]]
        if isinstance(child, TermQuery):
            for other in self.snap.languages:
                terms = self.analyze(other, child.text)[0] if other != lang else []
                if len(terms) == 1:
                    field = "title:" if child.field == "title" else ""
                    found.append(self.postings(f"{other}:{field}{terms[0]}")[si][0])
        return found

    def _documents_of(self, si: int, pid_lists: list[np.ndarray]) -> Vec:
        """Every passage of the documents the passages in ``pid_lists`` belong to, sorted: what NOT clauses
        remove, because excluding a word means excluding the documents that contain it. One mask over the
        segment's passages, however many clauses (a 10,000-word query must not concatenate them)."""
        reader = self.snap.segments[si].reader
        if not any(p.shape[0] for p in pid_lists):
            return _EMPTY
        hit = np.zeros(reader.n_passages, dtype=bool)
        for p in pid_lists:
            hit[p] = True
        p_doc = reader.p_doc
        every = np.flatnonzero(np.isin(p_doc, np.unique(p_doc[hit])))
        return every, np.zeros(every.shape[0], dtype=np.float64)

    def _floor(self, lang: str, si: int, terms: list[AnalyzedTerm | None], top_n: int) -> float:
        """A score every passage of this segment's ``top_n`` best reaches: the ``top_n``-th best score
        of any single term (a passage's sum is at least each of its terms' scores). 0.0 when unknown.

        Only for passage-level ranking: with one passage per document, or ``per_document=False``.
        """
        reader = self.snap.segments[si].reader
        if not top_n or top_n > TOP_SCORES or (self.per_document and reader.n_docs != reader.n_passages):
            return 0.0
        floor = 0.0
        for t in terms:
            if t is not None:
                top = self._scored(lang, t.term, si)[2]
                if top.shape[0] >= top_n:
                    floor = max(floor, float(top[top_n - 1]))
        return floor

    # -- explain ----------------------------------------------------------------------------------------
    def explain(
        self, lang: str, node: Query | AnalyzedTerm, si: int, pid: int, occur: str = SHOULD
    ) -> Explanation | None:
        """The parts of ``node``'s score for passage ``pid`` of segment ``si`` (None: no terms)."""
        vec = self.evaluate(lang, node, si, occur)
        if vec is None:
            return None
        value = _value_at(vec, pid)
        if isinstance(node, BooleanQuery):
            parts = []
            for occ, child in self.clauses(node, lang):
                e = self.explain(lang, child, si, pid, occ)
                if e is None:
                    continue
                if occ == MUST_NOT:
                    if e.value > 0:
                        parts.append(Explanation(0.0, "excluded: matches a NOT clause", [e]))
                    elif (matched := self._not_matches(lang, child, si)) is not None and _value_at(
                        self._documents_of(si, matched), pid
                    ) is not None:
                        why = "excluded: another passage of this document matches a NOT clause"
                        parts.append(Explanation(0.0, why))
                    continue
                if e.value > 0 or occ == MUST:
                    parts.append(e if occ == SHOULD else Explanation(e.value, f"{occ} clause", [e]))
            return Explanation(value or 0.0, "sum of:" if value else "no match", parts)
        if isinstance(node, AnalyzedTerm):
            terms, offsets, fld = [node.term], [0], node.field
        else:
            terms, offsets = self.leaf_terms(lang, node)
            fld = node.field
        reader = self.snap.segments[si].reader
        st = self.stats(lang)
        dl = int(reader.p_len[pid])
        if len(terms) == 1:
            key = f"{lang}:{terms[0]}"
            tf = _tf_at(self.postings(key)[si], pid) if value is not None else 0
            label = f"{'title:' if fld else ''}{terms[0]} [{lang}]"
            e = bm25.explain_term(label, st.n_passages, self.df(key), tf, dl, st.avgdl, self.k1, self.b)
            if value is None:
                return Explanation(0.0, f"no match for {label}", [])
            return e
        freq = 0.0 if value is None else _phrase_freq(self, lang, terms, offsets, si, pid, fld)
        idf_parts = [Explanation(bm25.idf(st.n_passages, self.df(f"{lang}:{t}")), f"idf({t})") for t in terms]
        idf_sum = sum(e.value for e in idf_parts)
        e = bm25.explain_term(f'"{" ".join(terms)}" [{lang}]', st.n_passages, 0, freq, dl, st.avgdl, self.k1, self.b)
        e.details[-2] = Explanation(idf_sum, "idf, sum of the phrase terms' idf:", idf_parts)
        e.value = value or 0.0
        return e


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
        for lang in langs:
            for t in analyze(lang, node.text)[0]:
                keys[f"{lang}:{t}"] = None

    walk(root)
    return list(keys)


def _intersect_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The common values of two sorted arrays of unique values, by binary search of the shorter one."""
    if a.shape[0] > b.shape[0]:
        a, b = b, a
    if a.shape[0] == 0:
        return a
    idx = np.searchsorted(b, a)
    np.minimum(idx, b.shape[0] - 1, out=idx)
    return a[b[idx] == a]


def _sparse_sum(scored: list[Vec]) -> Vec:
    """Union of a few short clauses with summed scores: one stable sort, then a segmented sum.

    The stable sort keeps each passage's clause contributions in clause order, and with fewer than 8
    clauses ``add.reduceat`` sums them one after another (numpy sums 8 or more pairwise), the same
    float order as the dense path.
    """
    pids = np.concatenate([p for p, _ in scored])
    if pids.shape[0] == 0:
        return _EMPTY
    scores = np.concatenate([s for _, s in scored])
    order = np.argsort(pids, kind="stable")
    pids = pids[order]
    starts = np.flatnonzero(np.concatenate(([True], pids[1:] != pids[:-1])))
    return pids[starts], np.add.reduceat(scores[order], starts)


def _dense_combine(scored: list[Vec], must: list[Vec], must_not: list[Vec], n_passages: int, floor: float = 0.0) -> Vec:
    """Combine clauses over a dense per-passage array: cheaper than set operations for long postings.

    Scores are added clause by clause, so each passage's sum has the same order as the sparse path.
    """
    acc = np.zeros(n_passages, dtype=np.float64)
    for p, s in scored:
        acc[p] += s  # passage ids are unique within a clause
    if must:
        count = np.zeros(n_passages, dtype=np.int32)
        for p, _ in must:
            count[p] += 1
        ok = count == len(must)
    elif must_not:
        ok = acc > 0.0  # every matching clause adds a positive score (idf > 0, tf >= 1)
    else:
        # with a floor, only passages that can still rank are returned (fewer to select from later)
        ids = np.flatnonzero(acc >= floor) if floor > 0.0 else np.flatnonzero(acc)
        return ids, acc[ids]
    for p, _ in must_not:
        ok[p] = False
    ids = np.flatnonzero(ok)
    return ids, acc[ids]


def _union(pid_lists: list[np.ndarray], n_passages: int) -> np.ndarray:
    total = sum(p.shape[0] for p in pid_lists)
    if total * 8 > n_passages:
        mask = np.zeros(n_passages, dtype=bool)
        for p in pid_lists:
            mask[p] = True
        return np.flatnonzero(mask)
    return np.unique(np.concatenate(pid_lists))


def _value_at(vec: Vec, pid: int) -> float | None:
    p, s = vec
    i = int(np.searchsorted(p, pid))
    if i < p.shape[0] and int(p[i]) == pid:
        return float(s[i])
    return None


def _tf_at(postings: tuple[np.ndarray, np.ndarray], pid: int) -> int:
    p, tf = postings
    i = int(np.searchsorted(p, pid))
    if i < p.shape[0] and int(p[i]) == pid:
        return int(tf[i])
    return 0


def _phrase_freq(ctx: QueryContext, lang: str, terms, offsets, si: int, pid: int, field) -> float:
    reader = ctx.snap.segments[si].reader
    prefix = f"{lang}:title:" if field == "title" else f"{lang}:"
    sets = []
    for t, off in zip(terms, offsets):
        slot = reader.find(prefix + t)
        if slot < 0:
            return 0.0
        ppid, ppos = reader.positions(slot)
        sets.append({int(x) - off for x in ppos[ppid == pid]})
    common = set.intersection(*sets) if sets else set()
    return float(len(common))


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
