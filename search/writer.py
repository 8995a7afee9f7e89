"""The index writer: analyzes documents into a buffer, flushes immutable segments, merges, commits atomically.

One writer at a time holds the index's write lock. Nothing a writer does is visible until ``commit``
replaces ``meta.json``; leaving a ``with index.writer()`` block commits, an exception rolls back.
Memory is bounded by the buffer (``buffer_tokens``), not by the corpus: a full buffer becomes a
segment file, which the next commit names.
"""

from __future__ import annotations

import hashlib
import math
import os
from array import array
from collections.abc import Iterable
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analyzers import tokenize
from analyzers.language import decide, stopword_evidence

from .documents import Document, split_passages
from .errors import IndexCorrupt, InvalidDocument, SearchError
from .segment import SegmentData, SegmentReader, file_checksum, write_segment
from .settings import IndexSettings
from .storage import LOCK, META, WriteLock, write_meta

if TYPE_CHECKING:
    from .index import Index

TITLE_GAP = 100  # position gap between a passage's text and its title, so phrases never span both
MERGE_FACTOR = 8  # segments of one size tier merged together
BUFFER_TOKENS = 4_000_000


class _Buffer:
    """Analyzed documents not yet written: a token stream in columns plus passage and document tables."""

    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self.keys: list[str] = []
        self.vocab: dict[str, dict[str, int]] = {}
        self.tok_tid = array("I")
        self.tok_pid = array("I")
        self.tok_pos = array("I")
        self.p_doc = array("I")
        self.p_no = array("I")
        self.p_start = array("Q")
        self.p_end = array("Q")
        self.p_len = array("I")
        self.p_lang: list[str] = []
        self.doc_ids: list[str] = []
        self.doc_texts: list[str] = []
        self.doc_titles: list[str] = []
        self.doc_metas: list[str] = []
        self.doc_langs: list[str] = []
        self.doc_hashes: list[str] = []
        self.ids: set[str] = set()

    def __len__(self) -> int:
        return len(self.doc_ids)

    @property
    def n_tokens(self) -> int:
        return len(self.tok_tid)

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

    def add(self, doc: Document) -> None:
        """Analyze ``doc`` passage by passage and append it (the indexing hot path)."""
        settings = self.settings
        text = doc.text
        spans = split_passages(text, settings.passage_words)
        raws = [tokenize(text)] if len(spans) == 1 else [tokenize(text[s:e]) for s, e in spans]
        if doc.lang is not None:
            langs = [doc.lang] * len(spans)
        else:
            evidence = [stopword_evidence(r) for r in raws]
            doc_lang, _ = decide(sum(e[0] for e in evidence), sum(e[1] for e in evidence))
            if doc_lang == "und":
                doc_lang = settings.default_language
            langs = []
            for e in evidence:
                code, _ = decide(*e)
                langs.append(doc_lang if code == "und" else code)
        titles: dict[str, tuple[list[str], list[int]]] = {}
        d = len(self.doc_ids)
        for no, ((start, end), raw, lang) in enumerate(zip(spans, raws, langs)):
            an = settings.analyzer(lang)
            terms, positions = an.columns_from_raw(raw)
            if lang not in titles:
                titles[lang] = an.analyze_columns(doc.title) if doc.title else ([], [])
            tterms, tpos = titles[lang]
            pid = len(self.p_doc)
            if tterms:
                off = (positions[-1] if positions else 0) + TITLE_GAP
                shifted = [p + off for p in tpos]
                ids = self._ids(f"{lang}:", terms + tterms)
                pos = positions + shifted
                ids += self._ids(f"{lang}:title:", tterms)
                pos += shifted
            else:
                ids = self._ids(f"{lang}:", terms)
                pos = positions
            self.tok_tid.extend(ids)
            self.tok_pos.extend(pos)
            self.tok_pid.extend(repeat(pid, len(ids)))
            self.p_doc.append(d)
            self.p_no.append(no)
            self.p_start.append(start)
            self.p_end.append(end)
            self.p_len.append(len(terms) + len(tterms))
            self.p_lang.append(lang)
        self.doc_ids.append(doc.id)
        self.doc_texts.append(text)
        self.doc_titles.append(doc.title)
        self.doc_metas.append(doc.meta_json())
        self.doc_langs.append(doc.lang or "")
        self.doc_hashes.append(doc.content_hash())
        self.ids.add(doc.id)

    def to_segment_data(self) -> SegmentData:
        langs = sorted(set(self.p_lang))
        code = {lang: i for i, lang in enumerate(langs)}
        return SegmentData(
            keys=self.keys,
            tok_tid=np.frombuffer(self.tok_tid, dtype=np.uint32),
            tok_pid=np.frombuffer(self.tok_pid, dtype=np.uint32),
            tok_pos=np.frombuffer(self.tok_pos, dtype=np.uint32),
            p_doc=np.frombuffer(self.p_doc, dtype=np.uint32),
            p_no=np.frombuffer(self.p_no, dtype=np.uint32),
            p_start=np.frombuffer(self.p_start, dtype=np.uint64),
            p_end=np.frombuffer(self.p_end, dtype=np.uint64),
            p_len=np.frombuffer(self.p_len, dtype=np.uint32),
            p_lang=np.array([code[x] for x in self.p_lang], dtype=np.uint8),
            langs=langs,
            doc_ids=self.doc_ids,
            doc_texts=self.doc_texts,
            doc_titles=self.doc_titles,
            doc_metas=self.doc_metas,
            doc_langs=self.doc_langs,
            doc_hashes=self.doc_hashes,
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
    for reader, deleted in sources:
        a = reader.a
        live_docs = np.ones(reader.n_docs, dtype=bool)
        live_docs[deleted] = False
        live_p = live_docs[reader.p_doc]
        new_pid = np.cumsum(live_p, dtype=np.int64) - 1 + pid_base
        new_doc = np.cumsum(live_docs, dtype=np.int64) - 1 + doc_base
        seg_keys = reader.keys()
        ids = np.fromiter((key_ids.setdefault(k, len(key_ids)) for k in seg_keys), dtype=np.int64, count=len(seg_keys))
        lo = a["term_post_lo"].astype(np.int64)
        hi = a["term_post_hi"].astype(np.int64)
        order = np.argsort(lo, kind="stable")
        slot_of_posting = np.repeat(order, (hi - lo)[order])
        tf = reader.post_tf.astype(np.int64)
        tid_tok = np.repeat(ids[slot_of_posting], tf)
        pid_tok = np.repeat(reader.post_pid.astype(np.int64), tf)
        keep = live_p[pid_tok]
        cols["tid"].append(tid_tok[keep])
        cols["pid"].append(new_pid[pid_tok[keep]])
        cols["pos"].append(np.asarray(a["positions"])[keep])
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
    )


class IndexWriter:
    """Adds, updates and deletes documents; ``commit`` makes them visible atomically.

    Use as a context manager: ``with index.writer() as w: w.add(doc)`` commits on exit and rolls back
    on an exception. A second writer (thread or process) gets ``IndexLocked``, or waits ``timeout`` s.
    """

    def __init__(self, index: Index, *, timeout: float = 0.0, buffer_tokens: int = BUFFER_TOKENS) -> None:
        self._index = index
        self._dir: Path = index.path
        self._lock = WriteLock(self._dir)
        self._lock.acquire(timeout)
        try:
            index.refresh()
            self._start(index._snapshot)
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

    # -- documents ------------------------------------------------------------------------------------
    def _live_ids(self) -> dict[str, tuple[str, int]]:
        if self._ids is None:
            names = [s.reader.name for s in self._snap.segments]
            self._ids = {k: (names[si], di) for k, (si, di) in self._snap.id_map().items()}
        return self._ids

    def _check_open(self) -> None:
        if self._closed:
            raise SearchError("this writer is closed; open a new one with index.writer()")

    def add(self, doc: Document) -> None:
        """Add a new document; ``InvalidDocument`` if it is malformed or its id is already in the index."""
        self._check_open()
        if not isinstance(doc, Document):
            raise InvalidDocument(f"expected a Document, got {type(doc).__name__}")
        doc.validate()
        if doc.id in self._buffer.ids or doc.id in self._live_ids():
            raise InvalidDocument(f"document id {doc.id!r} is already in the index; use update() to replace it")
        self._buffer.add(doc)
        if self._buffer.n_tokens >= self._buffer_tokens:
            self.flush()

    def add_many(self, docs: Iterable[Document]) -> int:
        """Add every document of ``docs``; returns how many were added."""
        n = 0
        for doc in docs:
            self.add(doc)
            n += 1
        return n

    def update(self, doc: Document) -> None:
        """Replace the whole document with ``doc.id`` (or add it when there is none)."""
        self._check_open()
        if not isinstance(doc, Document):
            raise InvalidDocument(f"expected a Document, got {type(doc).__name__}")
        doc.validate()
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
        size, checksum = write_segment(path, data)
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
            if file_checksum(path) != e["checksum"]:
                raise IndexCorrupt(f"segment file {e['name']} fails its checksum; run `search check`", str(path))
        data = merge_segment_data([(self._readers[e["name"]], self._deleted_of(e["name"])) for e in entries])
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
        """Make every change since the last commit visible, atomically (``meta.json`` is replaced last)."""
        self._check_open()
        self.flush()
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
                with open(dpath, "wb") as f:
                    f.write(raw)
                    f.flush()
                    os.fsync(f.fileno())
                e = dict(
                    e,
                    deletes={
                        "name": dname,
                        "size": len(raw),
                        "count": int(dels.size),
                        "checksum": hashlib.blake2b(raw, digest_size=16).hexdigest(),
                    },
                )
                self._old_deleted[name] = dels
            entries.append(e)
        self._deleted = {}
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
        keep = {META, LOCK}
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
