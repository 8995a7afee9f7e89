"""The index writer: analyzes documents into a buffer, flushes immutable segments, merges, commits atomically.

One writer at a time holds the index's write lock. Nothing a writer does is visible until ``commit``
replaces ``meta.json``; leaving a ``with index.writer()`` block commits, an exception rolls back.
Memory is bounded by the buffer (``buffer_tokens``), not by the corpus: a full buffer becomes a
segment file, which the next commit names.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
from array import array
from collections.abc import Callable, Iterable
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analyzers import tokenize
from analyzers.language import detect_document

from .columns import document_values
from .documents import Document, split_passages
from .errors import IndexCorrupt, InvalidDocument, SearchError
from .files import read_checked
from .segment import SegmentData, SegmentReader, file_checksum, write_segment
from .settings import IndexSettings
from .storage import LOCK, META, WriteLock, write_meta

if TYPE_CHECKING:
    from .index import Index

TITLE_GAP = 100  # position gap between a passage's text and its title, so phrases never span both
MERGE_FACTOR = 8  # segments of one size tier merged together
BUFFER_TOKENS = 4_000_000


def content_hash(doc_id: str, text: str, title: str, lang: str, meta_json: str) -> str:
    """``Document.content_hash`` from the fields, in one BLAKE2b call (the same digest: each value is
    length-prefixed, and hashing the concatenation equals hashing the parts in turn)."""
    h = hashlib.blake2b(digest_size=16)
    for value in (doc_id, text, title, lang, meta_json):  # part by part: a huge text is not copied twice
        data = value.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


class _Buffer:
    """Analyzed documents not yet written: a token stream in columns plus passage and document tables."""

    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self.keys: list[str] = [""]  # term id 0 marks a stopword's slot in the run cache; never written
        self.vocab: dict[str, dict[str, int]] = {}
        # One slot per word position, 0 for a stopword: each passage appends its text's slots, then its
        # title's slots twice (as text terms, then as title-field terms). Positions, passage ids and
        # lengths follow from the slot counts at flush, in numpy, instead of per token in Python.
        self.tok_tid = array("I")
        self.p_body = array("I")  # text slots per passage
        self.p_title = array("I")  # title slots per passage (stored twice)
        self._indexed = 0
        self.p_doc = array("I")
        self.p_no = array("I")
        self.p_start = array("Q")
        self.p_end = array("Q")
        self.p_lang: list[str] = []
        self.doc_ids: list[str] = []
        self.doc_texts: list[str] = []
        self.doc_titles: list[str] = []
        self.doc_metas: list[str] = []
        self.doc_langs: list[str] = []
        self.doc_hashes: list[str] = []
        self.ids: set[str] = set()
        self._titles: dict[str, tuple[str, list[int], list[int], list[int]]] = {}
        self._runs: dict[str, dict[str, tuple[int, ...]]] = {}  # lang -> word run -> term id per slot
        self._title_texts: set[tuple[str, str]] = set()  # (lang, title) seen, for the surface words

    def __len__(self) -> int:
        return len(self.doc_ids)

    @property
    def n_tokens(self) -> int:
        """Indexed tokens buffered (stopword slots not counted): what ``buffer_tokens`` bounds."""
        return self._indexed

    def _ids(self, prefix: str, terms: list[str]) -> list[int]:
        vocab = self.vocab.get(prefix)
        if vocab is None:
            vocab = self.vocab[prefix] = {}
        ids = list(map(vocab.get, terms))
        if None in ids:
            keys = self.keys
            for i, t in enumerate(terms):
                if ids[i] is None:
                    tid = vocab.get(t)
                    if tid is None:
                        tid = vocab[t] = len(keys)
                        keys.append(prefix + t)
                    ids[i] = tid
        return ids  # type: ignore[return-value]

    def _flat(self, lang: str, raw: list[str]) -> list[int]:
        """The term id of every slot of a passage's word runs (0: a stopword), through a per-buffer cache
        from word run to its slots' term ids: ``columns_from_raw`` and the vocabulary in one step."""
        runs = self._runs.get(lang)
        if runs is None:
            runs = self._runs[lang] = {}
        try:
            return list(chain.from_iterable(map(runs.__getitem__, raw)))
        except KeyError:
            self._fill_runs(lang, runs, raw)
            return list(chain.from_iterable(map(runs.__getitem__, raw)))

    def _fill_runs(self, lang: str, runs: dict[str, tuple[int, ...]], raw: list[str]) -> None:
        """Cache the term ids of each slot of the new runs of ``raw``, assigning ids in first-seen order (as
        ``_ids`` would on the passage's terms, so segments are identical). The new runs are found and
        ordered by C-level passes (a set difference, then a filter over ``raw``): most passages of real
        text bring a few never seen before, and a Python loop over all their runs cost more than the rest."""
        an = self.settings.analyzer(lang)
        new = set(raw).difference(runs)
        missing = list(dict.fromkeys(filter(new.__contains__, raw)))
        vocab = self.vocab.get(f"{lang}:")
        if vocab is None:
            vocab = self.vocab[f"{lang}:"] = {}
        keys = self.keys
        prefix = f"{lang}:"
        for run, slots in zip(missing, an.run_terms(missing)):
            ids = []
            for t in slots:
                if not t:
                    ids.append(0)
                    continue
                tid = vocab.get(t)
                if tid is None:
                    tid = vocab[t] = len(keys)
                    keys.append(prefix + t)
                ids.append(tid)
            runs[run] = tuple(ids)

    def add(self, doc: Document) -> None:
        """Analyze ``doc`` passage by passage and append it (the indexing hot path)."""
        self.add_fields(doc.id, doc.text, doc.title, doc.lang, doc.meta_json())

    def _title(self, lang: str, title: str) -> tuple[list[int], list[int]]:
        """The title's slots in ``lang`` as text-term ids and as title-field ids (0: a stopword). The last
        title per language is kept, since consecutive passages of one document share it. The passage's
        text terms have their ids already, so new title terms get theirs after them."""
        hit = self._titles.get(lang)
        if hit is not None and hit[0] == title:
            return hit[1], hit[2]
        tterms, tpos = self.settings.analyzer(lang).analyze_columns(title) if title else ([], [])
        if title:
            self._title_texts.add((lang, title))
        text_flat: list[int] = []
        title_flat: list[int] = []
        if tterms:
            text_ids = self._ids(f"{lang}:", tterms)
            title_ids = self._ids(f"{lang}:title:", tterms)
            text_flat = [0] * (tpos[-1] + 1)
            title_flat = [0] * (tpos[-1] + 1)
            for p, a, b in zip(tpos, text_ids, title_ids):
                text_flat[p] = a
                title_flat[p] = b
        self._titles[lang] = (title, text_flat, title_flat)
        return text_flat, title_flat

    def add_fields(self, doc_id: str, text: str, title: str, lang: str | None, meta_json: str) -> None:
        """``add`` for a validated document given as its fields (``meta_json`` as ``Document.meta_json``)."""
        settings = self.settings
        spans = split_passages(text, settings.passage_words)
        if lang is not None:
            langs = [lang] * len(spans)
            # one passage's words at a time: a huge document never holds all its words as strings at once
            raws = iter([tokenize(text)]) if len(spans) == 1 else (tokenize(text[s:e]) for s, e in spans)
        else:
            raws = [tokenize(text)] if len(spans) == 1 else [tokenize(text[s:e]) for s, e in spans]
            texts = [text] if len(spans) == 1 else [text[s:e] for s, e in spans]
            langs = [settings.default_language if c == "und" else c for c in detect_document(list(zip(raws, texts)))]
        d = len(self.doc_ids)
        tok = self.tok_tid
        for no, ((start, end), raw, plang) in enumerate(zip(spans, raws, langs)):
            flat = self._flat(plang, raw)
            tok.extend(flat)
            self.p_body.append(len(flat))
            text_flat, title_flat = self._title(plang, title)
            if text_flat:
                tok.extend(text_flat)
                tok.extend(title_flat)
            self.p_title.append(len(text_flat))
            self._indexed += len(flat) - flat.count(0) + 2 * (len(text_flat) - text_flat.count(0))
            self.p_doc.append(d)
            self.p_no.append(no)
            self.p_start.append(start)
            self.p_end.append(end)
            self.p_lang.append(plang)
        self.doc_ids.append(doc_id)
        self.doc_texts.append(text)
        self.doc_titles.append(title)
        self.doc_metas.append(meta_json)
        self.doc_langs.append(lang or "")
        self.doc_hashes.append(content_hash(doc_id, text, title, lang or "", meta_json))
        self.ids.add(doc_id)

    def surface_words(self) -> dict[str, str]:
        """``"<lang>:<word>"`` -> term key of every indexed word in the buffer (text and titles)."""
        out: dict[str, str] = {}
        keys = self.keys
        for lang, runs in self._runs.items():
            an = self.settings.analyzer(lang)
            prefix = f"{lang}:"
            for run, ids in runs.items():
                if len(ids) == 1 and run.isalnum():
                    if ids[0]:
                        out[prefix + (run.lower() if run.isascii() else an.run_words(run)[0])] = keys[ids[0]]
                    continue
                for word, tid in zip(an.run_words(run), ids):
                    if tid:
                        out[prefix + word] = keys[tid]
        for lang, title in self._title_texts:
            an = self.settings.analyzer(lang)
            for run in tokenize(title):
                for word, term in zip(an.run_words(run), an.run_terms([run])[0]):
                    if term:
                        out[f"{lang}:{word}"] = f"{lang}:{term}"
        return out

    def to_segment_data(self) -> SegmentData:
        langs = sorted(set(self.p_lang))
        code = {lang: i for i, lang in enumerate(langs)}
        tid, pid, pos, p_len = _slot_columns(
            np.frombuffer(self.tok_tid, dtype=np.uint32),
            np.frombuffer(self.p_body, dtype=np.uint32),
            np.frombuffer(self.p_title, dtype=np.uint32),
        )
        return SegmentData(
            keys=self.keys[1:],
            tok_tid=tid - np.uint32(1),
            tok_pid=pid,
            tok_pos=pos,
            p_doc=np.frombuffer(self.p_doc, dtype=np.uint32),
            p_no=np.frombuffer(self.p_no, dtype=np.uint32),
            p_start=np.frombuffer(self.p_start, dtype=np.uint64),
            p_end=np.frombuffer(self.p_end, dtype=np.uint64),
            p_len=p_len,
            p_lang=np.array([code[x] for x in self.p_lang], dtype=np.uint8),
            langs=langs,
            doc_ids=self.doc_ids,
            doc_texts=self.doc_texts,
            doc_titles=self.doc_titles,
            doc_metas=self.doc_metas,
            doc_langs=self.doc_langs,
            doc_hashes=self.doc_hashes,
            surface=self.surface_words(),
            fields=self.settings.fields,
        )


def _slot_columns(
    slots: np.ndarray, body: np.ndarray, title: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Term ids, passage ids, positions and passage lengths from the buffer's slot stream.

    Per passage the stream holds ``body`` text slots, then ``title`` slots as text terms and ``title``
    slots as title-field terms; 0 marks a stopword, which takes a position but is not indexed. A text
    slot's position is its index; title slots sit ``TITLE_GAP`` after the last indexed text position
    (or after 0), so a phrase never spans text and title. The length counts indexed text and title terms.
    """
    # int32 throughout and temporaries dropped early: this runs on a full buffer, so its peak memory is
    # the writer's (a buffer holds far fewer than 2**31 slots)
    body = body.astype(np.int32)
    title = title.astype(np.int32)
    per = body + 2 * title
    n_p = per.shape[0]
    pid = np.repeat(np.arange(n_p, dtype=np.int32), per)
    first = (np.cumsum(per, dtype=np.int64) - per).astype(np.int32)
    pos = np.arange(slots.shape[0], dtype=np.int32)
    pos -= first[pid]  # index of each slot within its passage
    in_body = pos < body[pid]
    indexed = slots != 0
    last = np.full(n_p, -1, dtype=np.int32)
    has = per > 0
    if slots.shape[0]:
        marks = np.where(in_body & indexed, pos, np.int32(-1))
        last[has] = np.maximum.reduceat(marks, first[has])
        del marks
    offset = np.maximum(last, 0) + np.int32(TITLE_GAP)
    counts_body = np.bincount(pid[in_body & indexed], minlength=n_p)
    counts_title = np.bincount(pid[~in_body & indexed], minlength=n_p) // 2
    # title slots: j = index after the text; the second copy (title field) restarts at 0
    in_title = ~in_body
    j = pos[in_title] - body[pid[in_title]]
    title_of = title[pid[in_title]]
    j = np.where(j >= title_of, j - title_of, j)
    pos[in_title] = offset[pid[in_title]] + j
    del j, title_of, in_title, in_body
    return (
        slots[indexed],
        pid[indexed].astype(np.uint32),
        pos[indexed].astype(np.uint32),
        (counts_body + counts_title).astype(np.uint32),
    )


def merge_segment_data(sources: list[tuple[SegmentReader, np.ndarray]]) -> SegmentData:
    """One segment's data from the live documents of several segments, straight from their postings.

    No text is analyzed again: each source's token stream is rebuilt from postings and positions,
    dead passages are dropped, passage and document ids renumbered, and term ids mapped to one vocabulary.
    """
    key_ids: dict[str, int] = {}
    langs = sorted({lang for r, _ in sources for lang in r.langs})
    lang_code = {lang: i for i, lang in enumerate(langs)}
    cols: dict[str, list] = {
        k: [] for k in ("tid", "pid", "pos", "p_doc", "p_no", "p_start", "p_end", "p_len", "p_lang")
    }
    docs: dict[str, list[str]] = {
        k: [] for k in ("doc_id", "doc_text", "doc_title", "doc_meta", "doc_lang", "doc_hash")
    }
    pid_base = doc_base = 0
    surface: dict[str, str] = {}
    for reader, deleted in sources:
        a = reader.a
        live_docs = np.ones(reader.n_docs, dtype=bool)
        live_docs[deleted] = False
        live_p = live_docs[reader.p_doc]
        new_pid = np.cumsum(live_p, dtype=np.int64) - 1 + pid_base
        new_doc = np.cumsum(live_docs, dtype=np.int64) - 1 + doc_base
        seg_keys = reader.keys()
        ids = np.fromiter((key_ids.setdefault(k, len(key_ids)) for k in seg_keys), dtype=np.int64, count=len(seg_keys))
        slots, pids, tf, pos = reader.all_postings()
        tid_tok = np.repeat(ids[slots], tf)
        pid_tok = np.repeat(pids, tf)
        keep = live_p[pid_tok]
        cols["tid"].append(tid_tok[keep])
        cols["pid"].append(new_pid[pid_tok[keep]])
        cols["pos"].append(pos[keep])
        surface.update(reader.surface_words())
        cols["p_doc"].append(new_doc[reader.p_doc[live_p]])
        for name in ("p_no", "p_start", "p_end", "p_len"):
            cols[name].append(np.asarray(a[name])[live_p])
        remap = np.array([lang_code[x] for x in reader.langs], dtype=np.uint8)
        cols["p_lang"].append(remap[reader.p_lang[live_p]] if len(remap) else np.zeros(0, np.uint8))
        keep_docs = np.flatnonzero(live_docs).tolist()
        for name in docs:
            values = reader.strings(name)
            docs[name].extend(values[i] for i in keep_docs)
        pid_base += int(live_p.sum())
        doc_base += len(keep_docs)

    def cat(name: str, dtype) -> np.ndarray:
        parts = cols[name]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return SegmentData(
        keys=list(key_ids),
        tok_tid=cat("tid", np.uint32),
        tok_pid=cat("pid", np.uint32),
        tok_pos=cat("pos", np.uint32),
        p_doc=cat("p_doc", np.uint32),
        p_no=cat("p_no", np.uint32),
        p_start=cat("p_start", np.uint64),
        p_end=cat("p_end", np.uint64),
        p_len=cat("p_len", np.uint32),
        p_lang=cat("p_lang", np.uint8),
        langs=langs,
        doc_ids=docs["doc_id"],
        doc_texts=docs["doc_text"],
        doc_titles=docs["doc_title"],
        doc_metas=docs["doc_meta"],
        doc_langs=docs["doc_lang"],
        doc_hashes=docs["doc_hash"],
        surface=surface,
    )


def _write_error(directory: Path, path: Path, e: OSError) -> OSError:
    """``e`` with a message naming the file and saying the last commit stands (errno kept: ENOSPC...)."""
    reason = e.strerror or str(e)
    return OSError(
        e.errno,
        f"cannot write {path.name} to the index at {directory}: {reason} (the last commit is intact)",
        str(path),
    )


class IndexWriter:
    """Adds, updates and deletes documents; ``commit`` makes them visible atomically.

    Use as a context manager: ``with index.writer() as w: w.add(doc)`` commits on exit and rolls back
    on an exception. A second writer (thread or process) gets ``IndexLocked``, or waits ``timeout`` s.
    """

    def __init__(self, index: Index, *, timeout: float = 0.0, buffer_tokens: int = BUFFER_TOKENS) -> None:
        self._index = index
        self._dir: Path = index.path
        # files never removed as unreferenced: a sharded index keeps its previous commit's files here
        # until its manifest has moved past them
        self.retain: set[str] = set()
        self._lock = WriteLock(self._dir)
        self._lock.acquire(timeout)
        try:
            index.refresh()
            self._start(index._snapshot)
            self._verify_deletions()
            # a writer killed mid-flush leaves files no commit names; their names would be reused
            self._remove_unreferenced(self._meta)
        except BaseException:
            self._lock.release()
            raise
        self._buffer_tokens = buffer_tokens
        self._closed = False

    def _start(self, snap) -> None:
        self._snap = snap
        self._settings: IndexSettings = self._index.settings
        self._meta = snap.meta
        self._entries: list[dict] = [dict(e) for e in snap.meta["segments"]]
        self._readers: dict[str, SegmentReader] = {s.reader.name: s.reader for s in snap.segments}
        self._deleted: dict[str, set[int]] = {}
        self._old_deleted: dict[str, np.ndarray] = {s.reader.name: s.deleted_docs for s in snap.segments}
        self._next = int(snap.meta["next_segment"])
        self._new_files: list[Path] = []
        self._ids: dict[str, tuple[str, int]] | None = None
        self._buffer = _Buffer(self._settings)

    def _verify_deletions(self) -> None:
        """Check every deletions file against its checksum before this writer relies on it.

        The writer carries deletions forward: a commit that deletes more of a segment writes the old
        set plus the new into a new file with a fresh checksum, and a merge drops the deleted documents
        for good. A damaged file read as it is would be laundered into a valid commit (a deleted
        document back, a live one gone), so a mismatch is ``IndexCorrupt`` naming the file. The files
        are small (4 bytes per deleted document), and the live-id map every add and delete consults
        is built from them, so they are all checked when the writer opens.
        """
        for e in self._entries:
            dels = e.get("deletes")
            if not dels:
                continue
            path = self._dir / dels["name"]
            try:
                raw = read_checked(path, f"deletions file {dels['name']}", size=dels["size"])
            except FileNotFoundError:
                raise IndexCorrupt(f"deletions file {dels['name']} is missing", str(path)) from None
            if hashlib.blake2b(raw, digest_size=16).hexdigest() != dels["checksum"]:
                raise IndexCorrupt(
                    f"deletions file {dels['name']} fails its checksum (damaged); nothing was written", str(path)
                )
            seen = self._old_deleted.get(e["name"])
            if seen is not None and not np.array_equal(seen, np.frombuffer(raw, dtype="<u4")):
                raise IndexCorrupt(f"deletions file {dels['name']} changed after it was read", str(path))

    # -- documents ------------------------------------------------------------------------------------
    def _live_ids(self) -> dict[str, tuple[str, int]]:
        if self._ids is None:
            names = [s.reader.name for s in self._snap.segments]
            self._ids = {k: (names[si], di) for k, (si, di) in self._snap.id_map().items()}
        return self._ids

    def _check_open(self) -> None:
        if self._closed:
            raise SearchError("this writer is closed; open a new one with index.writer()")

    def _check_new(self, doc: Document, pending: set[str] | None = None) -> None:
        if not isinstance(doc, Document):
            raise InvalidDocument(f"expected a Document, got {type(doc).__name__}")
        doc.validate()
        document_values(self._settings.fields, doc.meta, doc.id)  # declared fields' types, before any change
        if doc.id in self._buffer.ids or doc.id in self._live_ids() or (pending is not None and doc.id in pending):
            raise InvalidDocument(f"document id {doc.id!r} is already in the index; use update() to replace it")

    def add(self, doc: Document) -> None:
        """Add a new document; ``InvalidDocument`` if it is malformed or its id is already in the index."""
        self._check_open()
        self._check_new(doc)
        self._buffer.add(doc)
        if self._buffer.n_tokens >= self._buffer_tokens:
            self.flush()

    def add_many(
        self,
        docs: Iterable[Document],
        *,
        workers: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Add every document of ``docs`` (any iterable, read once); returns how many were added.

        ``workers`` processes analyze and write segments (None: ``min(2, cpu_count)``; 1: this process,
        like ``add`` in a loop). With several workers the documents are validated here first, and a bad
        one (``InvalidDocument``) or a failing worker (``WorkerFailed``) keeps nothing of this call. The
        result is the same index whatever the number of workers (equal search results and scores), and
        byte-identical files for the same input and number of workers. ``progress(n)`` is called as
        documents are indexed (analyzed into this writer or by a worker), ``n`` at a time, adding up to
        the result: what a progress bar counts, rather than documents handed out.
        """
        from . import parallel  # worker processes: imported by the writers that use them

        self._check_open()
        n_workers = parallel.default_workers() if workers is None else int(workers)
        if n_workers > 1 and parallel.start_method() is None:
            n_workers = 1
        if n_workers <= 1:
            n = 0
            for doc in docs:
                self.add(doc)
                n += 1
                if progress is not None:
                    progress(1)
            return n
        batch_ids: list[list[str]] = []
        batches = self._batches(docs, parallel.batch_tokens(self._buffer_tokens), batch_ids)
        head = list(itertools.islice(batches, 2))
        if len(head) < 2:  # one batch: analyzing it here is cheaper than starting processes
            for batch in head:
                for fields in batch:
                    self._buffer.add_fields(*fields)
                    if self._buffer.n_tokens >= self._buffer_tokens:
                        self.flush()
                    if progress is not None:
                        progress(1)
            return sum(map(len, batch_ids))
        segments = parallel.build_segments(
            self._dir,
            self._settings,
            itertools.chain(head, batches),
            workers=n_workers,
            buffer_tokens=self._buffer_tokens,
            progress=progress,
        )
        self._register(segments, batch_ids)
        return sum(map(len, batch_ids))

    def _batches(self, docs: Iterable[Document], limit: int, batch_ids: list[list[str]]):
        """Validated documents as field lists, cut by estimated tokens (deterministic, never by timing)."""
        from . import parallel  # worker processes: imported by the writers that use them

        pending: set[str] = set()
        batch: list[list] = []
        tokens = 0
        for doc in docs:
            self._check_new(doc, pending)
            pending.add(doc.id)
            batch.append([doc.id, doc.text, doc.title, doc.lang, doc.meta_json()])
            tokens += parallel.estimate_tokens(doc.text, doc.title)
            if tokens >= limit:
                batch_ids.append([f[0] for f in batch])
                yield batch
                batch, tokens = [], 0
        if batch:
            batch_ids.append([f[0] for f in batch])
            yield batch

    def _register(self, segments: list[dict], batch_ids: list[list[str]]) -> None:
        """Name worker-written segments in order and record them exactly as ``flush`` does."""
        from . import parallel  # worker processes: imported by the writers that use them

        try:
            ids = self._live_ids()
            for seg in segments:
                name = f"seg_{self._next:06d}.tls"
                self._next += 1
                path = self._dir / name
                os.replace(self._dir / seg["tmp"], path)
                self._new_files.append(path)
                self._readers[name] = SegmentReader(path)
                entry = {k: seg[k] for k in ("size", "checksum", "docs", "passages")}
                self._entries.append(dict(entry, name=name, deletes=None))
                doc_ids = [i for b in seg["batches"] for i in batch_ids[b]]
                if len(doc_ids) != seg["docs"]:
                    raise IndexCorrupt(f"segment {name} holds {seg['docs']} documents, expected {len(doc_ids)}")
                for di, doc_id in enumerate(doc_ids):
                    ids[doc_id] = (name, di)
        finally:
            parallel.remove_temporary(self._dir)  # the files not renamed when this failed

    def update(self, doc: Document) -> None:
        """Replace the whole document with ``doc.id`` (or add it when there is none)."""
        self._check_open()
        if not isinstance(doc, Document):
            raise InvalidDocument(f"expected a Document, got {type(doc).__name__}")
        doc.validate()
        document_values(self._settings.fields, doc.meta, doc.id)  # a bad value must not delete the old one
        self.delete(doc.id)
        self.add(doc)

    def delete(self, doc_id: str) -> bool:
        """Delete the document ``doc_id``; returns whether there was one."""
        self._check_open()
        if doc_id in self._buffer.ids:
            self.flush()
        loc = self._live_ids().pop(doc_id, None)
        if loc is None:
            return False
        self._deleted.setdefault(loc[0], set()).add(loc[1])
        return True

    # -- segments -------------------------------------------------------------------------------------
    def _write(self, data: SegmentData) -> dict:
        name = f"seg_{self._next:06d}.tls"
        self._next += 1
        path = self._dir / name
        self._new_files.append(path)
        try:
            size, checksum = write_segment(path, data)
        except OSError as e:
            raise _write_error(self._dir, path, e) from e
        self._readers[name] = SegmentReader(path)
        return {
            "name": name,
            "size": size,
            "checksum": checksum,
            "docs": len(data.doc_ids),
            "passages": int(len(data.p_doc)),
            "deletes": None,
        }

    def flush(self) -> None:
        """Write the buffered documents as a new (not yet committed) segment."""
        if not len(self._buffer):
            return
        buf = self._buffer
        entry = self._write(buf.to_segment_data())
        self._entries.append(entry)
        ids = self._live_ids()
        for di, doc_id in enumerate(buf.doc_ids):
            ids[doc_id] = (entry["name"], di)
        self._buffer = _Buffer(self._settings)

    def _deleted_of(self, name: str) -> np.ndarray:
        old = self._old_deleted.get(name)
        new = self._deleted.get(name)
        if not new:
            return old if old is not None else np.empty(0, np.int64)
        merged = set(new)
        if old is not None:
            merged.update(old.tolist())
        return np.array(sorted(merged), dtype=np.int64)

    def _merge(self, entries: list[dict], gen: int) -> dict | None:
        for e in entries:  # never merge damaged data into a new segment
            path = self._dir / e["name"]
            if file_checksum(path, e["size"]) != e["checksum"]:
                raise IndexCorrupt(f"segment file {e['name']} fails its checksum; run `search check`", str(path))
        data = merge_segment_data([(self._readers[e["name"]], self._deleted_of(e["name"])) for e in entries])
        data.fields = self._settings.fields  # columns rebuilt from the stored meta of the live documents
        if not data.doc_ids:
            return None
        return self._write(data)

    def _plan_merges(self, entries: list[dict]) -> list[list[dict]]:
        tiers: dict[int, list[dict]] = {}
        for e in entries:
            live = e["docs"] - (e["deletes"]["count"] if e.get("deletes") else 0)
            tiers.setdefault(int(math.log(max(live, 1), MERGE_FACTOR)), []).append(e)
        return [group for _, group in sorted(tiers.items()) if len(group) >= MERGE_FACTOR]

    # -- commit ---------------------------------------------------------------------------------------
    def commit(self) -> None:
        """Make every change since the last commit visible, atomically (``meta.json`` is replaced last).

        With no change since the last commit this does nothing: the generation stays, so an unchanged
        re-index (``search index`` in CI) leaves every file of the index as it was."""
        self._check_open()
        self.flush()
        if not any(self._deleted.values()) and [e["name"] for e in self._entries] == [
            e["name"] for e in self._meta["segments"]
        ]:
            return  # nothing changed: no new generation, so not one byte of the index is rewritten
        gen = int(self._meta["generation"]) + 1
        entries: list[dict] = []
        for e in self._entries:
            name = e["name"]
            if self._deleted.get(name):
                dels = self._deleted_of(name)
                if dels.size >= e["docs"]:
                    continue  # every document deleted: drop the segment
                dname = f"{name[:-4]}.{gen}.del"
                raw = dels.astype("<u4").tobytes()
                dpath = self._dir / dname
                self._new_files.append(dpath)
                try:
                    with open(dpath, "wb") as f:
                        f.write(raw)
                        f.flush()
                        os.fsync(f.fileno())
                except OSError as e:
                    raise _write_error(self._dir, dpath, e) from e
                e = dict(
                    e,
                    deletes={
                        "name": dname,
                        "size": len(raw),
                        "count": int(dels.size),
                        "checksum": hashlib.blake2b(raw, digest_size=16).hexdigest(),
                    },
                )
            entries.append(e)
        # self._deleted and self._old_deleted stay as they are until meta.json is replaced (``_start``
        # resets them): a commit that fails (disk full) can be retried with every change still pending
        while True:
            groups = self._plan_merges(entries)
            if not groups:
                break
            group = groups[0]
            names = {e["name"] for e in group}
            merged = self._merge(group, gen)
            first = next(i for i, e in enumerate(entries) if e["name"] in names)
            rest = [e for e in entries if e["name"] not in names]
            if merged is not None:
                rest.insert(min(first, len(rest)), merged)
            entries = rest
        meta = dict(self._meta)
        meta.update(generation=gen, next_segment=self._next, segments=entries)
        write_meta(self._dir, meta)
        self._new_files = []
        snap = self._index._install(meta, self._readers)
        self._remove_unreferenced(meta)
        self._start(snap)

    def _remove_unreferenced(self, meta: dict) -> None:
        keep = {META, LOCK} | self.retain
        for e in meta["segments"]:
            keep.add(e["name"])
            if e.get("deletes"):
                keep.add(e["deletes"]["name"])
        for path in self._dir.iterdir():
            if path.name not in keep and (path.name.startswith("seg_") or path.name == META + ".tmp"):
                try:
                    path.unlink()
                except OSError:
                    pass  # still open elsewhere (Windows): removed by a later commit
        for name in list(self._readers):
            if name not in keep:
                del self._readers[name]

    def rollback(self) -> None:
        """Forget every change since the last commit and remove the files written for them."""
        for path in self._new_files:
            self._readers.pop(path.name, None)
            try:
                path.unlink()
            except OSError:
                pass
        self._start(self._snap)

    def close(self) -> None:
        """Release the write lock (uncommitted changes are rolled back)."""
        if not self._closed:
            try:
                if self._new_files or len(self._buffer):
                    self.rollback()
            finally:
                self._closed = True
                self._lock.release()

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
            else:
                self.rollback()
        finally:
            self.close()

    def __del__(self) -> None:
        try:
            if not self._closed:
                self._lock.release()
        except Exception:
            pass
