"""The embedding API: ``Index`` (create, open, write, search, explain) and ``Hit`` (a ranked passage)."""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import analyzers

from . import bm25, filters, multiterm, searcher, segment
from .bm25 import CollectionStatistics, Explanation
from .columns import segment_columns
from .documents import Document
from .errors import DocumentNotFound, IndexCorrupt, InvalidArgument, SearchError
from .expand import segment_lexicon
from .highlight import make_snippet
from .query import MUST, BooleanQuery, ParsedQuery, parse_query
from .searcher import QueryContext, Snapshot, open_segments
from .segment import SegmentReader, file_checksum
from .selection import Row, check_count, top_rows
from .settings import IndexSettings, analyzer_versions_match, check_bm25_parameters
from .storage import FORMAT, FORMAT_VERSION, LOCK, META, WriteLock, check_no_orphans, read_meta, write_meta
from .suggest import Suggester
from .weights import Found, QueryWeight, checked_query, highlight_terms, language_weights, query_languages
from .writer import Committed, IndexWriter

if TYPE_CHECKING:
    from .sharded import ShardedIndex

# the argument checks every search API shares (kept under their old names for callers)
_count = check_count
_parsed = checked_query


class QueryTerms:
    """What one search's hits highlight under each language (``weights.highlight_terms``) and that
    language's analyzer, worked out when a hit first makes its snippet: ranking, and a caller that
    reads ids and texts only, never pay for it."""

    __slots__ = ("_ctx", "_root", "_by_lang")

    def __init__(self, ctx: QueryContext, root: BooleanQuery) -> None:
        self._ctx = ctx
        self._root = root
        self._by_lang: dict[str, tuple[frozenset[str], analyzers.Analyzer]] = {}

    def get(self, lang: str) -> tuple[frozenset[str], analyzers.Analyzer]:
        got = self._by_lang.get(lang)
        if got is None:
            ctx = self._ctx
            got = self._by_lang[lang] = (highlight_terms(ctx, self._root, lang), ctx.analyzer(lang))
        return got


class Hit:
    """One ranked passage. ``text``, ``title`` and ``meta`` are read on first access; ``snippet``,
    ``snippet_highlights`` and ``highlights`` are computed on first access, so ranking pays for neither.

    ``highlights`` are (start, end) offsets into ``text``; ``snippet_highlights`` into ``snippet``.
    """

    __slots__ = ("doc_id", "passage", "score", "lang", "_snap", "_si", "_pid", "_terms", "_cache")

    def __init__(
        self,
        snap: Snapshot,
        si: int,
        pid: int,
        doc_id: str,
        passage: int,
        score: float,
        lang: str,
        terms: frozenset[str] | QueryTerms,
        analyzer: analyzers.Analyzer | None = None,
    ) -> None:
        self.doc_id = doc_id
        self.passage = passage
        self.score = score
        self.lang = lang
        self._snap = snap
        self._si = si
        self._pid = pid
        # (terms to highlight, analyzer), or the search's ``QueryTerms`` that gives them on first use
        self._terms: tuple[frozenset[str], analyzers.Analyzer] | QueryTerms = (
            terms if isinstance(terms, QueryTerms) else (terms, analyzer)  # type: ignore[assignment]
        )
        self._cache: dict[str, Any] = {}

    def _highlighting(self) -> tuple[frozenset[str], analyzers.Analyzer]:
        """The analyzed query terms this hit's snippet highlights, and the analyzer of its language."""
        got = self._terms
        if isinstance(got, QueryTerms):
            got = self._terms = got.get(self.lang)
        return got

    def __repr__(self) -> str:
        return f"Hit(doc_id={self.doc_id!r}, passage={self.passage}, score={self.score:.4f}, lang={self.lang!r})"

    def _doc(self) -> int:
        return int(self._snap.segments[self._si].reader.p_doc[self._pid])

    @property
    def text(self) -> str:
        """The passage's text (a slice of the document's text)."""
        got = self._cache.get("text")
        if got is None:
            got = self._cache["text"] = self._snap.segments[self._si].reader.passage_text(self._pid)
        return got

    @property
    def title(self) -> str:
        """The document's title ("" when it has none)."""
        return self._snap.segments[self._si].reader.string("doc_title", self._doc())

    @property
    def meta(self) -> dict[str, Any]:
        """The document's metadata ({} when it has none)."""
        return _stored_meta(self._snap.segments[self._si].reader, self._doc()) or {}

    def _snippet(self) -> tuple[str, list[tuple[int, int]], list[tuple[int, int]]]:
        if "snippet" not in self._cache:
            terms, analyzer = self._highlighting()
            self._cache["snippet"] = make_snippet(self.text, analyzer, terms)
        return self._cache["snippet"]

    @property
    def snippet(self) -> str:
        """The best window of the passage for the query, as plain text."""
        return self._snippet()[0]

    @property
    def snippet_highlights(self) -> list[tuple[int, int]]:
        """(start, end) offsets of the matched words in ``snippet``."""
        return self._snippet()[1]

    @property
    def highlights(self) -> list[tuple[int, int]]:
        """(start, end) offsets of the matched words in ``text``."""
        return self._snippet()[2]

    def to_dict(self) -> dict[str, Any]:
        """The hit as plain JSON-ready data (offsets as [start, end] lists)."""
        return {
            "doc_id": self.doc_id,
            "passage": self.passage,
            "score": self.score,
            "lang": self.lang,
            "title": self.title,
            "text": self.text,
            "snippet": self.snippet,
            "snippet_highlights": [list(p) for p in self.snippet_highlights],
            "highlights": [list(p) for p in self.highlights],
            "meta": self.meta,
        }


CREATE_LOCK_SECONDS = 10.0
PARSE_CACHE_QUERIES = 4096  # query strings (and query texts per language) an index keeps parsed (analyzed)


def _check_creatable(path: Path) -> None:
    """``SearchError`` unless ``path`` is missing or an empty directory (a lock file left by an
    interrupted creator, or a temporary ``meta.json`` it never renamed, count as empty)."""
    if not path.exists():
        return
    if not path.is_dir():
        raise SearchError(f"cannot create an index at {path}: it is a file")
    exists = SearchError(f"an index already exists at {path}; open it with Index.open")
    if (path / META).exists():
        raise exists
    check_no_orphans(path)
    if any(p.name not in (LOCK, META + ".tmp") for p in path.iterdir()):
        if (path / META).exists():  # a concurrent creator finished between the two looks
            raise exists
        raise SearchError(f"cannot create an index at {path}: the directory is not empty")


def _committed(snap: Snapshot) -> Committed:
    """A snapshot as the writer sees a commit: plain data, segment names instead of positions."""
    names = [s.reader.name for s in snap.segments]

    def live_ids() -> dict[str, tuple[str, int]]:
        return {k: (names[si], di) for k, (si, di) in snap.id_map().items()}

    return Committed(
        meta=snap.meta,
        readers={s.reader.name: s.reader for s in snap.segments},
        deleted={s.reader.name: s.deleted_docs for s in snap.segments},
        live_ids=live_ids,
    )


class _WriterLink:
    """The ``CommitTarget`` an ``Index`` gives its writers: the latest commit, and publishing a new one."""

    def __init__(self, index: Index) -> None:
        self._index = index
        self.path = index.path
        self.settings = index.settings

    def latest(self) -> Committed:
        self._index.refresh()
        return _committed(self._index._snapshot)

    def publish(self, meta: dict, readers: dict[str, SegmentReader]) -> Committed:
        return _committed(self._index._install(meta, readers))


class Index:
    """A persistent, segment-based index of passages, searched with exact BM25 per language.

    Searches use the latest snapshot and may run in many threads while one thread writes; a commit
    made through ``writer()`` is visible to the next search, other processes' commits after ``refresh()``.
    """

    def __init__(self, path: Path, meta: dict, snapshot: Snapshot) -> None:
        self.path = path
        self.settings = IndexSettings.from_json(meta["settings"])
        self._snapshot = snapshot
        self._snapshot_lock = threading.Lock()  # install (a commit here) and refresh (others' commits)
        self._query_stopwords: dict[str, frozenset[str]] = {}  # per query language: what it drops
        # what does not change with the snapshot, kept across searches (bounded, emptied when full): a
        # query string's parse (immutable objects), and a query text's analysis per language
        self._parsed: dict[tuple[str, str | None], ParsedQuery] = {}
        self._analyses: dict[tuple, tuple[list[str], list[int], list[int]]] = {}

    # -- lifecycle ------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        passage_words: int = 120,
        k1: float = bm25.K1,
        b: float = bm25.B,
        default_language: str = "en",
        analyzer_options: dict[str, bool] | None = None,
        protected_words: Iterable[str] | None = None,
        fields: dict[str, str] | None = None,
    ) -> Index:
        """Create an empty index at ``path`` (a new or empty directory); the settings are stored in it.

        ``fields`` declares metadata fields for filters and facets (``{"year": "int", "source":
        "keyword", "tags": "keyword[]"}``): each document's ``meta`` values of them are checked at
        add and stored as columns in every segment. Fields are fixed at creation.

        ``protected_words`` are words never stemmed, replacing the shipped Indonesian list
        (``analyzers/id/protected_words.txt``); ``[]`` stems every word. Atomic against a concurrent
        creator: the first ``meta.json`` is written under the write lock, so of two processes creating
        one index, one creates it and the other gets "already exists".
        """
        path = Path(path)
        k1, b = check_bm25_parameters(k1, b)
        protected = protected_words
        if protected is not None and not isinstance(protected, str):  # a str is refused by the settings
            protected = tuple(protected)
        settings = IndexSettings(
            passage_words,
            k1,
            b,
            default_language,
            dict(analyzer_options or {}),
            protected_words=protected,
            fields=dict(fields) if isinstance(fields, dict) else fields,  # type: ignore[arg-type]
        )
        _check_creatable(path)  # before anything is made, not even the lock file
        path.mkdir(parents=True, exist_ok=True)
        lock = WriteLock(path)
        lock.acquire(timeout=CREATE_LOCK_SECONDS)  # a concurrent creator holds it for a moment only
        try:
            _check_creatable(path)  # again, under the lock: another creator may have finished meanwhile
            meta = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "generation": 0,
                "next_segment": 1,
                "segments": [],
                "settings": settings.to_json(),
            }
            write_meta(path, meta)
        finally:
            lock.release()
        return cls.open(path)

    @classmethod
    def open(cls, path: str | Path, *, verify: bool = False) -> Index | ShardedIndex:
        """Open an existing index; ``verify=True`` also checks every file's full checksum.

        A folder holding a sharded index's manifest opens as a ``ShardedIndex`` (the same reading and
        writing API, over every shard).
        """
        path = Path(path)
        if not (path / META).exists() and (path / "shards.json").is_file():
            from .sharded import ShardedIndex

            return ShardedIndex.open(path, verify=verify)
        meta, segments = _load(path)
        index = cls(path, meta, Snapshot(path, meta, segments))
        if verify:
            index.verify()
        return index

    def refresh(self) -> bool:
        """Pick up commits made by other processes; returns whether the snapshot changed.

        Only a newer generation replaces the snapshot: a refresh racing this index's own writer (or
        another refresh) never puts back an older commit."""
        with self._snapshot_lock:
            current = self._snapshot
            meta = read_meta(self.path)
            if meta["generation"] <= current.generation:
                return False
            reuse = {s.reader.name: s.reader for s in current.segments}
            meta, segments = _load(self.path, reuse, meta)
            if meta["generation"] <= self._snapshot.generation:
                return False
            self._snapshot = Snapshot(self.path, meta, segments)
            return True

    def _install(self, meta: dict, readers: dict[str, SegmentReader]) -> Snapshot:
        """Make a commit of this index's writer the current snapshot (under the lock ``refresh`` takes;
        an older generation than the current one is never installed)."""
        with self._snapshot_lock:
            if meta["generation"] < self._snapshot.generation:
                return self._snapshot
            snap = Snapshot(self.path, meta, open_segments(self.path, meta, readers))
            self._snapshot = snap
            return snap

    def writer(self, *, timeout: float = 0.0, buffer_tokens: int | None = None) -> IndexWriter:
        """The index's one writer; ``IndexLocked`` if another holds it after ``timeout`` seconds."""
        kwargs = {} if buffer_tokens is None else {"buffer_tokens": buffer_tokens}
        return IndexWriter(_WriterLink(self), timeout=timeout, **kwargs)

    def close(self) -> None:
        """Nothing to release explicitly: segment files are unmapped once no snapshot or ``Hit`` refers
        to them. Kept so callers can pair ``open`` with ``close``."""

    # -- reading --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._snapshot.n_docs()

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and doc_id in self._snapshot.id_map()

    def get(self, doc_id: str) -> Document | None:
        """The stored document ``doc_id``, or None."""
        snap = self._snapshot
        loc = snap.id_map().get(doc_id)
        if loc is None:
            return None
        r = snap.segments[loc[0]].reader
        return Document(
            id=doc_id,
            text=r.string("doc_text", loc[1]),
            title=r.string("doc_title", loc[1]),
            lang=r.string("doc_lang", loc[1]) or None,
            meta=_stored_meta(r, loc[1]),
        )

    def content_hashes(self) -> dict[str, str]:
        """Every live document id with its ``Document.content_hash()`` (to skip unchanged re-adds)."""
        snap = self._snapshot
        out: dict[str, str] = {}
        for seg in snap.segments:
            hashes = seg.reader.strings("doc_hash")
            for di, doc_id in enumerate(seg.reader.strings("doc_id")):
                if seg.live_docs is None or seg.live_docs[di]:
                    out[doc_id] = hashes[di]
        return out

    def stats(self) -> dict[str, Any]:
        """Counts, per-language BM25 statistics, settings and size on disk."""
        snap = self._snapshot
        size = (self.path / META).stat().st_size
        for e in snap.meta["segments"]:
            size += e["size"] + (e["deletes"]["size"] if e.get("deletes") else 0)
        return {
            "path": str(self.path),
            "documents": snap.n_docs(),
            "passages": sum(s.n_passages for s in snap.stats.values()),
            "segments": len(snap.segments),
            "generation": snap.generation,
            "languages": {lang: {"passages": s.n_passages, "avgdl": s.avgdl} for lang, s in snap.stats.items()},
            "settings": self.settings.to_json(),
            "analyzers_current": analyzer_versions_match(snap.meta["settings"]),
            "size_bytes": size,
        }

    def verify(self) -> None:
        """Check every file's full checksum against the commit, and every segment section's checksum and
        structure; ``IndexCorrupt`` names the damaged file."""
        meta = self._snapshot.meta
        for e in meta["segments"]:
            files = [(e["name"], e["checksum"], e["size"])]
            if e.get("deletes"):
                files.append((e["deletes"]["name"], e["deletes"]["checksum"], e["deletes"]["size"]))
            for name, checksum, size in files:
                path = self.path / name
                try:
                    actual = file_checksum(path, size)
                except FileNotFoundError:
                    raise IndexCorrupt(f"index file {name} is missing", str(path)) from None
                if actual != checksum:
                    raise IndexCorrupt(f"index file {name} fails its checksum (damaged)", str(path))
        for seg in self._snapshot.segments:  # opening checked headers only: every section's structure too
            seg.reader.check_all()

    def warm(self) -> None:
        """Load now what the first query of this process would otherwise load on its way: each segment's
        section checksums and id column, the query language model, and the surface-word lexicons that
        fuzzy words and "did you mean" walk (for a long-lived process: its first query then costs what
        later ones do; the server asks ``suggest`` on every search, whose first lexicon build took ~1 s).
        Opening checks only headers; this also checks every section and derives the postings layout
        and each language's BM25 length norms, which a first query would otherwise pay for."""
        analyzers.language.preload_language_model()
        snap = self._snapshot
        for si, seg in enumerate(snap.segments):
            seg.reader.warm()
            for lang in snap.languages:
                segment_lexicon(seg.reader, lang)[0].warm()
                snap.norms(si, snap.stats[lang].avgdl, self.settings.k1, self.settings.b)

    def prefetch(self, share: float = 0.75, seconds: float = 5.0) -> dict[str, int]:
        """Fill this process's bounded caches now rather than over its first hours, the decoded cache
        until ``share`` of its budget is used: of the part this call fills, stored text blocks take half,
        then the postings of the words in most passages (a query's first read of such a word decodes
        it) a quarter, and searches the rest; each language's analyzer run cache from those passages'
        words; the snapshot's BM25 score cache by searching pairs of those words (with snippets) until
        ``share`` of it is used or ``seconds`` pass. Nothing is evicted on the way but by the last
        search's hits: a server with several indexes calls it for each with a growing ``share``, each
        filling the next part. For a long-lived process (``search serve``): its memory then stays where
        it starts, and its first queries find warm caches. Returns the terms whose postings the cache
        holds, the text blocks' documents, analyzer entries and warm-up searches."""
        snap = self._snapshot
        keep_free = int(segment.DECODED.budget * (1.0 - share))
        part = max(0, segment.DECODED.room() - keep_free)  # what this call fills
        by_size = sorted(snap.segments, key=lambda v: -v.reader.n_passages)  # the largest segments first
        texts: dict[str, list[str]] = {lang: [] for lang in snap.languages}
        n_docs = 0
        for seg in snap.segments:
            r = seg.reader
            held = r.prefetch_text(keep_free + part // 2)
            n_docs += len(held)
            if not len(held):
                continue
            lo, hi = r.passage_range(held.start).start, r.passage_range(held.stop - 1).stop
            langs, starts, ends, docs = r.p_lang[lo:hi], r.a["p_start"][lo:hi], r.a["p_end"][lo:hi], r.p_doc[lo:hi]
            for code, s, e, d in zip(langs.tolist(), starts.tolist(), ends.tolist(), docs.tolist()):
                if seg.live_docs is None or seg.live_docs[d]:
                    texts.setdefault(r.langs[code], []).append(r.string("doc_text", d)[s:e])
        prefetched = [(seg.reader, seg.reader.prefetch_postings(keep_free + part // 4)) for seg in by_size]
        entries = sum(analyzers.get(lang).prime(t, share) for lang, t in texts.items() if t)
        rng = random.Random(0)
        words = {
            lang: [w for t in ts[:2000] for w in analyzers.base.RUN_RE.findall(t) if w.isalpha() and len(w) > 3]
            for lang, ts in texts.items()
        }
        words = {lang: ws for lang, ws in words.items() if len(ws) > 1}
        searches = 0
        deadline = time.monotonic() + max(0.0, seconds)
        floor = int(searcher.SCORE_CACHE_BYTES * (1.0 - share))
        slow = searcher.SCORE_CACHE_BYTES // 200  # a batch adding less has filled what queries fill here
        # the searches stop once the decoded cache's part is filled or a search made it evict: what came
        # before (this call's words, another index's) stays
        evictions = segment.DECODED.evictions

        def filled() -> bool:
            return segment.DECODED.room() <= keep_free or segment.DECODED.evictions > evictions

        while words and not filled() and snap.score_cache_room > floor and time.monotonic() < deadline:
            room = snap.score_cache_room
            for ws in itertools.islice(itertools.cycle(words.values()), 50 * len(words)):  # a batch
                if filled():
                    break
                for hit in self.search(f"{rng.choice(ws)} {rng.choice(ws)}", k=10):
                    hit.to_dict()
                searches += 1
            if room - snap.score_cache_room < slow:
                break
        n_terms = sum(r.held_postings(slots) for r, slots in prefetched)
        return {"terms": n_terms, "documents": n_docs, "analyzer_entries": entries, "searches": searches}

    # -- searching ------------------------------------------------------------------------------------
    @property
    def fields(self) -> dict[str, str]:
        """The declared metadata fields (name -> type) filters and facets can use."""
        return dict(self.settings.fields)

    def parse(self, query: str | ParsedQuery, filter: str | None = None) -> ParsedQuery:
        """``query`` parsed with this index's declared fields (a ``ParsedQuery`` checked), plus ``filter``:
        filters only (``InvalidArgument`` for words in it), joined to the query's root as a must."""
        return cached_parse(self._parsed, query, filter, self.settings.fields)

    def facets(
        self,
        query: str | ParsedQuery,
        fields: Iterable[str],
        *,
        filter: str | None = None,
        lang: str | None = None,
    ) -> dict[str, dict[str | int, int]]:
        """How many documents matching ``query`` hold each value of each of ``fields`` (declared fields):
        ``{"source": {"kemenkeu": 12, ...}, "year": {2020: 3, ...}}``, most frequent first (then by
        value). Every match counts, not only the top k; a document counts once per value it holds."""
        snap = self._snapshot
        names = check_facet_fields(fields, self.settings.fields)
        parsed = self.parse(query, filter)
        ctx, langs = self._context(snap, parsed, lang, None, None)
        return count_facets(snap, QueryWeight(ctx, parsed.root, langs).found(0), names)

    def _context(
        self, snap: Snapshot, parsed: ParsedQuery, lang: str | None, k1: float | None, b: float | None
    ) -> tuple[QueryContext, list[str]]:
        """A query context over ``snap`` and the languages to search."""
        langs, stop = query_languages(parsed, lang, snap.languages)
        return self.query_context(snap, stop, k1, b), langs

    def query_context(
        self,
        snap: Snapshot,
        stop: str | None,
        k1: float | None,
        b: float | None,
        statistics: CollectionStatistics | None = None,
    ) -> QueryContext:
        """A query context dropping ``stop``'s query stopwords under other languages (see
        ``query_languages``), scoring with ``statistics`` (None: the snapshot's own)."""
        s = self.settings
        stopwords: frozenset[str] = frozenset()
        if stop is not None:
            stopwords = self._query_stopwords.get(stop)  # type: ignore[assignment]
            if stopwords is None:
                an = s.analyzer(stop)
                stopwords = self._query_stopwords[stop] = an.stopwords | an.query_stopwords | an.question_words
        if k1 is None and b is None:
            k1, b = float(s.k1), float(s.b)  # checked when the settings were made
        else:
            k1, b = check_bm25_parameters(s.k1 if k1 is None else k1, s.b if b is None else b)
        ctx = QueryContext(snap, k1, b, s.analyzer, stopwords, stop, statistics)
        if len(self._analyses) >= PARSE_CACHE_QUERIES:
            self._analyses.clear()
        ctx.analyses = self._analyses
        return ctx

    @staticmethod
    def language_weights(parsed: ParsedQuery, langs: list[str]) -> dict[str, float]:
        """How much each language's scores count for this query (``weights.language_weights``)."""
        return language_weights(parsed, langs)

    def search(
        self,
        query: str | ParsedQuery,
        k: int = 10,
        offset: int = 0,
        *,
        lang: str | None = None,
        per_document: bool = True,
        k1: float | None = None,
        b: float | None = None,
        filter: str | None = None,
        fuzzy: bool = False,
        prefix_last: bool = False,
    ) -> list[Hit]:
        """The best passages for ``query``, best first: by score, then document id, then passage number.

        ``per_document=True`` keeps each document's best passage only. ``lang`` restricts results to
        one language. ``k1``/``b`` override the index's BM25 parameters for this search. ``filter``
        is filters in the query syntax (``"source:setneg year:>=2020"``, ``"-lang:en"``), applied as
        the query's own filters are: they drop passages and never change a score.
        ``fuzzy=True`` makes every bare word fuzzy with the automatic distance (``word~``; exact
        matches rank first); ``prefix_last=True`` makes the last word a prefix (``word*``: search as
        you type; not when the text ends with a space).
        """
        k, offset = _count("k", k), _count("offset", offset)
        snap = self._snapshot
        parsed = self.parse(query, filter)
        ctx, langs = self._context(snap, parsed, lang, k1, b)
        parsed = multiterm.rewrite(parsed, ctx, fuzzy=fuzzy, prefix_last=prefix_last)
        ctx.per_document = per_document
        found = QueryWeight(ctx, parsed.root, langs).found(offset + k)
        if not found or k == 0:
            return []
        if len(langs) == 1:  # one language searched: its scores count as they are
            weights = {langs[0]: 1.0}
        else:
            weights = language_weights(parsed, unfiltered_languages(ctx, parsed, langs, found))
        rows = top_rows(snap, found, weights, offset + k, per_document)
        return self._hits(snap, ctx, parsed, rows[offset:])

    def suggest(self, query: str, *, rare_words: bool = True) -> str | None:
        """ "Did you mean": ``query`` with the words the index does not know (or barely knows) replaced
        by their likeliest neighbours of the index, or None when there is nothing to correct
        (``search.suggest``: fewest edits, then co-occurrence with the query's other words, then
        document frequency, under the language whose words the corrected query knows best).
        ``rare_words=False`` corrects only words the index does not know at all: the front ends ask so
        when the query found something, since a rare word that matched is a word the user meant."""
        if not isinstance(query, str):
            raise InvalidArgument(f"query must be a string, got {type(query).__name__}")
        snap = self._snapshot
        suggester = Suggester(snap.segments, self.settings.analyzer, snap.languages)
        if not rare_words and suggester.knows_all(query):
            return None  # the common case of a query with hits: no language model, no lexicon
        probs = analyzers.language_probabilities(query)
        order = sorted(snap.languages, key=lambda x: -probs.get(x, 0.0))
        return suggester.suggest(query, order, rare_words)

    def _hits(self, snap: Snapshot, ctx: QueryContext, parsed: ParsedQuery, rows: list[Row]) -> list[Hit]:
        """``Hit`` objects for ranked rows (score, doc id, passage no, lang, segment, pid); text stays lazy."""
        ctx.forget_arrays()  # the hits keep ctx for their highlight terms: not the arrays it read
        terms = QueryTerms(ctx, parsed.root)
        return [Hit(snap, si, pid, doc_id, p_no, score, lg, terms) for score, doc_id, p_no, lg, si, pid in rows]

    def explain(
        self,
        query: str | ParsedQuery,
        doc_id: str,
        passage: int = 0,
        *,
        k1: float | None = None,
        b: float | None = None,
        fuzzy: bool = False,
        prefix_last: bool = False,
    ) -> Explanation:
        """The score ``search`` gives passage ``passage`` of ``doc_id`` for ``query``, as a tree of its parts."""
        parsed = self.parse(query)
        if fuzzy or prefix_last:
            ctx = self._context(self._snapshot, parsed, None, k1, b)[0] if fuzzy else None
            parsed = multiterm.rewrite(parsed, ctx, fuzzy=fuzzy, prefix_last=prefix_last)
        if isinstance(passage, bool) or not isinstance(passage, (int, np.integer)):
            raise InvalidArgument(f"passage must be an integer, got {passage!r}")
        if not isinstance(doc_id, str):
            raise InvalidArgument(f"doc_id must be a string, got {type(doc_id).__name__}")
        return self._explain(parsed, doc_id, passage, k1, b)

    def _explain(
        self,
        parsed: ParsedQuery,
        doc_id: str,
        passage: int,
        k1: float | None,
        b: float | None,
        decided: tuple[list[str], str | None] | None = None,
        statistics: CollectionStatistics | None = None,
        weights: dict[str, float] | None = None,
        expansions: dict | None = None,
    ) -> Explanation:
        """``explain``; a sharded index gives its global view: the languages and stopword language it
        decided (``decided``), the ``statistics`` of every shard, the language ``weights`` and the
        ``expansions`` of its fuzzy, prefix and wildcard words over every shard."""
        snap = self._snapshot
        loc = snap.id_map().get(doc_id)
        if loc is None:
            raise DocumentNotFound(f"no document {doc_id!r} in the index")
        si, di = loc
        r = snap.segments[si].reader
        prange = r.passage_range(di)
        if not 0 <= passage < len(prange):
            raise DocumentNotFound(f"document {doc_id!r} has passages 0..{len(prange) - 1}, not {passage}")
        pid = prange[passage]
        lang = r.langs[int(r.p_lang[pid])]
        if decided is None:
            ctx, langs = self._context(snap, parsed, None, k1, b)
        else:
            langs = list(decided[0])
            ctx = self.query_context(snap, decided[1], k1, b, statistics)
            if expansions is not None:
                ctx.expansions = expansions  # type: ignore[attr-defined]
        if lang not in langs:
            return Explanation(0.0, f"no match: the query is restricted to {langs}, the passage is {lang!r}")
        qw = QueryWeight(ctx, parsed.root, langs)
        if weights is None and qw.by_lang[lang] is None:
            weights = {}
        elif weights is None:
            weights = language_weights(parsed, unfiltered_languages(ctx, parsed, langs, None))
        return qw.explain(lang, si, pid, weights)


def unfiltered_languages(ctx: QueryContext, parsed: ParsedQuery, langs: list[str], found: Found | None) -> list[str]:
    """The languages the query's words match, its filters left out: the languages its scores are weighed
    over, so that a filter removing every passage of a language changes no score. ``found``: what the
    search found (those languages match; only the others are evaluated again, without the filters)."""
    matched = set() if found is None else {f[0] for f in found}
    if found is not None and not filters.has_filters(parsed.root):
        return sorted(matched)
    rest = [x for x in langs if x not in matched]
    if rest:
        matched.update(QueryWeight(ctx, filters.strip(parsed.root), rest).matching_languages())
    return sorted(matched)


def cached_parse(
    cache: dict[tuple[str, str | None], ParsedQuery],
    query: str | ParsedQuery,
    filter: str | None,
    fields: dict[str, str],
) -> ParsedQuery:
    """``parse_with_fields``, query and filter texts kept parsed in ``cache`` (one per set of ``fields``;
    at most ``PARSE_CACHE_QUERIES``, emptied when full): a service sees the same queries again, and a
    parse costs more than a small search (a ``ParsedQuery`` is never changed in place)."""
    if isinstance(query, str) and (filter is None or isinstance(filter, str)):
        got = cache.get((query, filter))
        if got is not None:
            return got
    parsed = parse_with_fields(query, filter, fields)
    if isinstance(query, str):
        if len(cache) >= PARSE_CACHE_QUERIES:
            cache.clear()
        cache[(query, filter)] = parsed  # only what parsed without an error
    return parsed


def parse_with_fields(query: str | ParsedQuery, filter: str | None, fields: dict[str, str]) -> ParsedQuery:
    """``Index.parse`` for an index declaring ``fields`` (a sharded index parses as one index does)."""
    parsed = checked_query(parse_query(query, fields) if isinstance(query, str) else query)
    filters.check_fields(parsed.root, fields)
    if filter is None:
        return parsed
    return with_filter(parsed, filter, fields)


def with_filter(parsed: ParsedQuery, text: str, fields: dict[str, str]) -> ParsedQuery:
    """``parsed`` restricted by the filters in ``text`` (the ``filter=`` of a search): its field filters
    as one more must clause of the root, its ``lang:`` restrictions joined to the query's."""
    if not isinstance(text, str):
        raise InvalidArgument(f"filter must be a string, got {type(text).__name__}")
    f = parse_query(text, fields)
    if any(not filters.is_filter(c) for _, c in f.root.clauses):
        raise InvalidArgument(
            f"filter {text!r} holds words; it takes filters only (declared fields: {sorted(fields)}, lang:, -lang:),"
            " the words go in the query"
        )
    root = parsed.root
    if f.root.clauses:
        root = BooleanQuery(root.clauses + ((MUST, f.root),))
    langs = parsed.langs
    excluded = tuple(dict.fromkeys(parsed.exclude_langs + f.exclude_langs))
    if f.langs is not None:
        both = [x for x in f.langs if langs is None or x in langs]
        langs = tuple(both) if both else f.langs
        if not both:  # lang:id in the query, lang:en in the filter: nothing can match
            excluded = tuple(analyzers.names())
    return ParsedQuery(root, langs, parsed.text, parsed.words, excluded)


def check_facet_fields(fields: object, declared: dict[str, str]) -> list[str]:
    """The facet field names, each declared, or ``InvalidArgument`` naming the declared ones."""
    if isinstance(fields, str) or not isinstance(fields, Iterable):
        raise InvalidArgument(f"facet fields must be a list of field names, got {fields!r}")
    names = list(dict.fromkeys(fields))
    for name in names:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none: declare fields with Index.create(fields=...)"
            raise InvalidArgument(f"cannot count {name!r}: it is not a declared field (declared: {known})")
    return names


def count_facets(snap: Snapshot, found: Found, names: list[str]) -> dict[str, dict[str | int, int]]:
    """Per field, how many documents of the matched passages ``found`` hold each value (from the columns)."""
    by_segment: dict[int, np.ndarray] = {}
    for _, si, pids, _ in found:
        reader = snap.segments[si].reader
        m = by_segment.get(si)
        if m is None:
            m = by_segment[si] = np.zeros(reader.n_docs, dtype=bool)
        m[reader.p_doc[pids]] = True
    out: dict[str, dict[str | int, int]] = {}
    for name in names:
        totals: dict[str | int, int] = {}
        for si, docs in by_segment.items():
            col = segment_columns(snap.segments[si].reader).get(name)
            if col is None:
                continue
            picked = col.values[docs[col.owner]]
            if col.dictionary is None:
                vals, counts = np.unique(picked, return_counts=True)
                keys: list = vals.tolist()
            else:
                counts = np.bincount(picked, minlength=len(col.dictionary))
                nz = np.flatnonzero(counts)
                keys, counts = [col.dictionary[i] for i in nz.tolist()], counts[nz]
            for key, c in zip(keys, counts.tolist()):
                totals[key] = totals.get(key, 0) + c
        out[name] = dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def _stored_meta(reader: SegmentReader, doc: int) -> dict[str, Any] | None:
    """A document's stored metadata (None when it has none); ``IndexCorrupt`` when it is not JSON."""
    raw = reader.string("doc_meta", doc)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise IndexCorrupt(f"segment file {reader.name} is damaged (stored metadata)", str(reader.path)) from None


def _load(path: Path, reuse: dict[str, SegmentReader] | None = None, meta: dict | None = None):
    """Read the commit and open its segments, retrying when a concurrent commit removed a file."""
    for attempt in range(5):
        if meta is None:
            meta = read_meta(path)
        try:
            IndexSettings.from_json(meta["settings"])
            views = open_segments(path, meta, reuse)
            for view in views:  # a damaged segment header could name a language no analyzer reads
                unknown = set(view.reader.langs) - set(analyzers.names())
                if unknown:
                    raise IndexCorrupt(
                        f"segment file {view.reader.name} names unknown languages {sorted(unknown)}",
                        str(view.reader.path),
                    )
            return meta, views
        except IndexCorrupt:
            fresh = read_meta(path)
            if attempt == 4 or fresh["generation"] == meta["generation"]:
                raise
            meta = fresh
        except (KeyError, TypeError) as e:
            raise IndexCorrupt(f"{META} of {path} is missing a field: {e}", str(path / META)) from None
    raise AssertionError("unreachable")
