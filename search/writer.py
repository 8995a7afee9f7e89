"""The index writer: the transaction over an index (adds, updates, deletes, ``commit``).

One writer at a time holds the index's write lock. Nothing a writer does is visible until ``commit``
replaces ``meta.json``; leaving a ``with index.writer()`` block commits, an exception rolls back.
Documents go into a ``SegmentBuilder`` (``builder``), which becomes a segment file once it holds
``buffer_tokens`` tokens; merges are chosen and done by ``merge``; ``meta.json`` and the lock are
``storage``'s. The writer knows the index only through a ``CommitTarget``: where the latest commit is,
and a call to publish a new one.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .builder import SegmentBuilder
from .columns import document_values
from .documents import Document
from .errors import IndexCorrupt, InvalidArgument, InvalidDocument, SearchError
from .malloc import flush_arrays
from .merge import BackgroundMerge, SegmentSize, TieredMergePolicy, merge_segments
from .segment import SegmentData, SegmentReader, file_checksum, write_segment
from .settings import IndexSettings
from .storage import (
    FORMAT_VERSION,
    WriteLock,
    remove_unreferenced,
    verify_deletions,
    write_deletions,
    write_error,
    write_meta,
)

BUFFER_TOKENS = 4_000_000
#: Background merges run at once while a closing writer finishes the merges its last commit wanted
#: (nothing else runs then, so two use both cores of a small machine); while the writer is in use, one.
#: Fixed rather than the machine's core count: the merges of a round are committed together, so the
#: commits a build makes, and so its files, must not depend on the machine.
CLOSE_MERGES = 2


@dataclass(frozen=True)
class Committed:
    """The commit a writer starts from (or has just published): ``meta.json``'s content, the readers of
    its segments, each segment's deleted documents, and the live document ids (built on first use: a
    writer that only adds to a fresh index never needs them)."""

    meta: dict
    readers: dict[str, SegmentReader]
    deleted: dict[str, np.ndarray]
    live_ids: Callable[[], dict[str, tuple[str, int]]]  # doc id -> (segment name, local doc number)


class CommitTarget(Protocol):
    """What a writer needs from the index it writes: its folder and settings, the latest commit (read
    again from disk), and a call making a new commit the one readers see. ``Index`` hands one to its
    writers; nothing else of the index is reachable from here."""

    path: Path
    settings: IndexSettings

    def latest(self) -> Committed: ...

    def publish(self, meta: dict, readers: dict[str, SegmentReader]) -> Committed: ...


class IndexWriter:
    """Adds, updates and deletes documents; ``commit`` makes them visible atomically.

    Use as a context manager: ``with index.writer() as w: w.add(doc)`` commits on exit and rolls back
    on an exception. A second writer (thread or process) gets ``IndexLocked``, or waits ``timeout`` s.
    """

    def __init__(self, target: CommitTarget, *, timeout: float = 0.0, buffer_tokens: int = BUFFER_TOKENS) -> None:
        self._target = target
        self._dir: Path = target.path
        # files never removed as unreferenced: a sharded index keeps its previous commit's files here
        # until its manifest has moved past them
        self.retain: set[str] = set()
        # merges run in a child process while commits go on (False: inside commit, as a sharded index's
        # shards need: their commits must name exactly what the manifest names)
        self.background_merges = True
        self._merges: list[BackgroundMerge] = []  # running, in the order they started
        self._merge_at_close = False  # the last thing done was a commit: close finishes its merges
        self._lock = WriteLock(self._dir)
        self._lock.acquire(timeout)
        try:
            self._start(target.latest())
            verify_deletions(self._dir, self._entries, self._old_deleted)
            # a writer killed mid-flush leaves files no commit names; their names would be reused
            self._remove_unreferenced(self._meta)
        except BaseException:
            self._lock.release()
            raise
        self._buffer_tokens = buffer_tokens
        self.merge_policy = TieredMergePolicy()  # which segments each commit merges (replaceable)
        self._closed = False

    def _start(self, start: Committed) -> None:
        self._snap = start
        self._settings: IndexSettings = self._target.settings
        self._meta = start.meta
        self._entries: list[dict] = [dict(e) for e in start.meta["segments"]]
        self._readers: dict[str, SegmentReader] = dict(start.readers)
        self._deleted: dict[str, set[int]] = {}
        self._old_deleted: dict[str, np.ndarray] = dict(start.deleted)
        self._next = int(start.meta["next_segment"])
        self._new_files: list[Path] = []
        self._ids: dict[str, tuple[str, int]] | None = None
        self._buffer = SegmentBuilder(self._settings)

    # -- documents ------------------------------------------------------------------------------------
    def _live_ids(self) -> dict[str, tuple[str, int]]:
        """Live document id -> (segment name, local doc number) of the pending state, built on first use
        (a copy of the snapshot's while the segments are still the snapshot's)."""
        if self._ids is None:
            if not self._deleted and [e["name"] for e in self._entries] == [e["name"] for e in self._meta["segments"]]:
                self._ids = dict(self._snap.live_ids())
            else:
                ids: dict[str, tuple[str, int]] = {}
                for e in self._entries:
                    name = e["name"]
                    dead = set(self._deleted_of(name).tolist())
                    for di, doc_id in enumerate(self._readers[name].strings("doc_id")):
                        if di not in dead:
                            ids[doc_id] = (name, di)
                self._ids = ids
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
        if self._buffer.full(self._buffer_tokens):
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
        limit = parallel.batch_tokens(self._buffer_tokens)
        cut = self._batches(docs, limit)
        head = list(itertools.islice(cut, parallel.IN_PROCESS_BATCHES + 1))
        if len(head) <= parallel.IN_PROCESS_BATCHES:  # a few batches: cheaper here than starting processes
            for batch in head:
                for fields in batch:
                    self._buffer.add_fields(*fields)
                    if self._buffer.full(self._buffer_tokens):
                        self.flush()
                    if progress is not None:
                        progress(1)
            return sum(map(len, head))
        batch_ids: list[list[str]] = []
        segments = parallel.build_segments(
            self._dir,
            self._settings,
            _recorded(parallel.assigned(_handing_over(head, cut), n_workers, limit), batch_ids),
            workers=n_workers,
            buffer_tokens=self._buffer_tokens,
            progress=progress,
        )
        self._register(segments, batch_ids)
        return sum(map(len, batch_ids))

    def _batches(self, docs: Iterable[Document], limit: int) -> Iterator[list[list[Any]]]:
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
                yield batch
                batch, tokens = [], 0
        if batch:
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
            size, checksum = write_segment(path, data, consume=True)
        except OSError as e:
            raise write_error(self._dir, path, e) from e
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
        with flush_arrays(buf.largest_text):  # a huge document's temporaries leave no holes (search/malloc.py)
            entry = self._write(buf.to_segment_data())
        self._entries.append(entry)
        ids = self._live_ids()
        for di, doc_id in enumerate(buf.doc_ids):
            ids[doc_id] = (entry["name"], di)
        self._buffer = SegmentBuilder(self._settings)

    def _deleted_of(self, name: str) -> np.ndarray:
        old = self._old_deleted.get(name)
        new = self._deleted.get(name)
        if not new:
            return old if old is not None else np.empty(0, np.int64)
        merged = set(new)
        if old is not None:
            merged.update(old.tolist())
        return np.array(sorted(merged), dtype=np.int64)

    def _sizes(self, entries: list[dict]) -> list[SegmentSize]:
        return [SegmentSize.of_entry(e) for e in entries]

    def _merge(self, entries: list[dict], gen: int) -> dict | None:
        for e in entries:  # never merge damaged data into a new segment
            path = self._dir / e["name"]
            if file_checksum(path, e["size"]) != e["checksum"]:
                raise IndexCorrupt(f"segment file {e['name']} fails its checksum; run `search check`", str(path))
        name = f"seg_{self._next:06d}.tls"
        self._next += 1
        path = self._dir / name
        sources = [(self._readers[e["name"]], self._deleted_of(e["name"])) for e in entries]
        self._new_files.append(path)
        try:
            merged = merge_segments(path, sources, fields=self._settings.fields)
        except OSError as e:
            raise write_error(self._dir, path, e) from e
        if merged is None:
            return None
        size, checksum, docs, passages = merged
        self._readers[name] = SegmentReader(path)
        return {"name": name, "size": size, "checksum": checksum, "docs": docs, "passages": passages, "deletes": None}

    # -- commit ---------------------------------------------------------------------------------------
    def commit(self, *, max_segments: int | None = None) -> None:
        """Make every change since the last commit visible, atomically (``meta.json`` is replaced last).

        With no change since the last commit this does nothing: the generation stays, so an unchanged
        re-index (``search index`` in CI) leaves every file of the index as it was. ``max_segments``:
        see ``force_merge``."""
        if max_segments is not None and (
            isinstance(max_segments, bool) or not isinstance(max_segments, int) or max_segments < 1
        ):
            raise InvalidArgument(f"max_segments must be a whole number of at least 1, not {max_segments!r}")
        self._commit(max_segments)

    def force_merge(self, max_segments: int = 1) -> None:
        """Commit, merging the index down to at most ``max_segments`` segments with no deleted documents
        left (for static indexes built once, as in CI: fewer segments open and search faster). Merges
        stay at most ``merge_policy.max_merge_at_once`` wide, in rounds, so memory stays a merge's."""
        self.commit(max_segments=max_segments)

    def _commit(self, force: int | None) -> None:
        self._check_open()
        self.flush()
        if self._merges:  # finished background merges join this commit; a forced one waits for them
            self._collect(wait=force is not None)
        if (
            not any(self._deleted.values())
            and [e["name"] for e in self._entries] == [e["name"] for e in self._meta["segments"]]
            and (force is None or not self.merge_policy.find_forced_merges(self._sizes(self._entries), force))
        ):
            return  # nothing changed: no new generation, so not one byte of the index is rewritten
        gen = int(self._meta["generation"]) + 1
        deleted = {e["name"]: self._deleted_of(e["name"]) for e in self._entries if self._deleted.get(e["name"])}
        for e in self._entries:
            # the snapshot this commit publishes maps new deletions to passages (``p_doc``): a damaged
            # passage table is refused here, before any deletions file is written, not once meta.json
            # names them (a segment losing every document is dropped: its table is never read)
            if e["name"] in deleted and deleted[e["name"]].size < e["docs"]:
                _ = self._readers[e["name"]].p_doc
        entries: list[dict] = []
        for e in self._entries:
            name = e["name"]
            if name in deleted:
                dels = deleted[name]
                if dels.size >= e["docs"]:
                    continue  # every document deleted: drop the segment
                dname = f"{name[:-4]}.{gen}.del"
                self._new_files.append(self._dir / dname)
                e = dict(e, deletes=write_deletions(self._dir, dname, dels))
            entries.append(e)
        # self._deleted and self._old_deleted stay as they are until meta.json is replaced (``_start``
        # resets them): a commit that fails (disk full) can be retried with every change still pending
        policy = self.merge_policy
        merged_here = False  # a merge in this commit renumbers documents: the id map is read again after it
        while force is not None or not self.background_merges:
            sizes = self._sizes(entries)
            groups = policy.find_merges(sizes) if force is None else policy.find_forced_merges(sizes, force)
            if not groups:
                break
            for group_names in groups:
                names = set(group_names)
                group = [e for e in entries if e["name"] in names]  # index order: documents keep theirs
                merged = self._merge(group, gen)
                merged_here = True
                first = next(i for i, e in enumerate(entries) if e["name"] in names)
                rest = [e for e in entries if e["name"] not in names]
                if merged is not None:
                    rest.insert(min(first, len(rest)), merged)
                entries = rest
        meta = dict(self._meta)
        # (a version 2, 3 or 4 index becomes version 5 here: its new segments hold the current layout)
        meta.update(format_version=FORMAT_VERSION, generation=gen, next_segment=self._next, segments=entries)
        write_meta(self._dir, meta)
        self._new_files = []
        snap = self._target.publish(meta, self._readers)
        self._remove_unreferenced(meta)
        ids = self._ids
        self._start(snap)
        if ids is not None and not merged_here:
            # the map already holds what this commit published (adds registered, deletes popped, merges
            # taken in remapped): kept, a commit onto 2M documents no longer rebuilds it from the snapshot
            self._ids = ids
        self._merge_at_close = True
        if self.background_merges and not self._merges:
            self._start_merges(1)

    # -- background merges ------------------------------------------------------------------------------
    def _start_merges(self, limit: int) -> int:
        """Start, each in a child process, the merges the policy picks over the committed segments that
        touch no segment already being merged, until ``limit`` run; how many started."""
        busy = {n for m in self._merges for n in m.names}
        started = 0
        for group_names in self.merge_policy.find_merges(self._sizes(self._entries)):
            if len(self._merges) >= limit:
                break
            names = set(group_names)
            if names & busy:
                continue
            group = [e for e in self._entries if e["name"] in names]  # index order: documents keep theirs
            name = f"seg_{self._next:06d}.tls"
            self._next += 1
            deleted = [self._deleted_of(e["name"]) for e in group]
            try:
                m = BackgroundMerge(self._dir / name, group, deleted, self._settings.fields)
            except (OSError, RuntimeError):
                break  # no process to run it in: the merge waits for a later commit
            self._merges.append(m)
            busy |= names
            started += 1
        return started

    def _collect(self, wait: bool) -> bool:
        """Take in the finished background merges, in the order they started (``wait``: wait for them
        all); whether one was applied. Damage found in a source is ``IndexCorrupt``; a merge that failed
        otherwise is dropped (its sources stay, and a later commit merges them again) unless it failed
        with an error worth reporting."""
        applied = False
        failed: Exception | None = None
        for m in list(self._merges):
            message = m.poll(wait)
            if message is None:
                continue
            self._merges.remove(m)
            try:
                applied = self._take_in(m, message) or applied
            except Exception as e:  # the other finished merges are taken in all the same; the first error is raised
                failed = failed or e
        if failed is not None:
            raise failed
        return applied

    def _take_in(self, m: BackgroundMerge, message: dict) -> bool:
        if "done" in message and message["done"] is not None and self._apply_merge(m, message["done"]):
            return True
        m.remove_files()
        if "corrupt" in message:
            raise IndexCorrupt(
                f"segment file {message['corrupt']} fails its checksum; run `search check` (nothing was merged;"
                " the commits before stand)",
                message["path"],
            )
        if "error" in message:
            from .errors import WorkerFailed

            raise WorkerFailed(f"a background merge failed: {message['error']} (no commit was affected)")
        return False

    def _apply_merge(self, m: BackgroundMerge, done: list) -> bool:
        """Replace a finished merge's sources by its segment in the pending state, carrying over the
        documents deleted since it started; False (nothing changed) if a source is no longer there."""
        size, checksum, docs, passages = done
        where = {e["name"]: i for i, e in enumerate(self._entries)}
        if any(n not in where or self._entries[where[n]]["docs"] != e["docs"] for n, e in zip(m.names, m.entries)):
            return False
        name = m.path.name
        new_deleted: list[np.ndarray] = []
        remap: dict[str, np.ndarray] = {}
        base = 0
        for source, e, start in zip(m.names, m.entries, m.deleted):
            live = np.ones(int(e["docs"]), dtype=bool)
            live[start] = False
            new_doc = np.cumsum(live, dtype=np.int64) - 1 + base
            new_doc[~live] = -1
            remap[source] = new_doc
            later = np.setdiff1d(self._deleted_of(source), start)
            new_deleted.append(new_doc[later])
            base += int(live.sum())
        if base != docs:
            return False
        moves: list[tuple[str, tuple[str, int]]] = []
        if self._ids is not None:
            # only the merged documents move in the id map: read from the sources' id columns (not by
            # walking the whole map: a merge of ten small segments onto 1M documents touched all 1M),
            # and before any state changes, so a failed read leaves the pending state as it was
            ids = self._ids
            for source in m.names:
                new_doc = remap[source]
                for di, doc_id in enumerate(self._readers[source].strings("doc_id")):
                    if ids.get(doc_id) == (source, di):
                        moves.append((doc_id, (name, int(new_doc[di]))))
        self._readers[name] = SegmentReader(self._dir / name)
        self._new_files.append(self._dir / name)
        first = min(where[n] for n in m.names)
        rest = [e for e in self._entries if e["name"] not in remap]
        rest.insert(
            min(first, len(rest)),
            {"name": name, "size": size, "checksum": checksum, "docs": docs, "passages": passages, "deletes": None},
        )
        self._entries = rest
        for source in m.names:
            self._deleted.pop(source, None)
            self._old_deleted.pop(source, None)
        gone = np.concatenate(new_deleted) if new_deleted else np.zeros(0, np.int64)
        if gone.size:
            self._deleted[name] = set(gone.tolist())
        if self._ids is not None:  # pending adds and deletes keep pointing at the right documents
            self._ids.update(moves)
        # (no map yet: ``_live_ids`` builds it from the pending segments when it is first needed)
        return True

    def _finish_merges(self) -> None:
        """Run the merges the policy wants (at close), in rounds of up to ``CLOSE_MERGES`` at once: a
        round's merges are started together, waited for, and committed together, so the commits do not
        depend on which merge ends first."""
        self._ids = None  # closing: no add or delete follows, so the id map is let go (2M ids: ~200 MB)
        failures = 0
        while failures < 2:
            self._start_merges(CLOSE_MERGES)
            if not self._merges:
                return
            for m in self._merges:
                m.poll(wait=True)
            gen = int(self._meta["generation"])
            self._commit(None)
            if int(self._meta["generation"]) == gen:
                failures += 1  # the merge failed or was dropped: try once more, then leave it for later

    def _abort_merges(self) -> None:
        merges, self._merges = self._merges, []
        for m in merges:
            m.abort()

    def _remove_unreferenced(self, meta: dict) -> None:
        # a merge in progress: its file, its spills, and its sources (it may not have opened them yet)
        merging = tuple(name for m in self._merges for name in (m.path.name, *m.names))
        keep = remove_unreferenced(self._dir, meta, self.retain, keep_prefixes=merging)
        for name in list(self._readers):
            if name not in keep:
                del self._readers[name]

    def rollback(self) -> None:
        """Forget every change since the last commit and remove the files written for them (a background
        merge in progress is stopped)."""
        self._abort_merges()
        self._merge_at_close = False
        for path in self._new_files:
            self._readers.pop(path.name, None)
            try:
                path.unlink()
            except OSError:
                pass
        self._start(self._snap)

    def close(self) -> None:
        """Release the write lock (uncommitted changes are rolled back). Merges the last commit started
        in the background are waited for and committed first, so a closed writer leaves them done."""
        if not self._closed:
            try:
                if self._new_files or len(self._buffer):
                    self.rollback()
                elif self._merge_at_close and self.background_merges:
                    try:
                        self._finish_merges()  # the merges the last commit left: done and committed now
                    except BaseException:
                        self.rollback()  # a merge taken in but not committed: its file goes now
                        raise
            finally:
                self._abort_merges()
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


def _recorded(batches: Iterator[tuple[int, list[list[Any]]]], ids: list[list[str]]) -> Iterator:
    """``batches`` as they come, each one's document ids appended to ``ids`` (batch number ``i``'s at
    ``ids[i]``: how the segments a worker wrote are registered)."""
    for w, batch in batches:
        ids.append([fields[0] for fields in batch])
        yield w, batch
        del batch  # sent: not kept while the next is read


def _handing_over(head: list, rest: Iterator) -> Iterator:
    """The batches of ``head`` and then of ``rest``, each of ``head`` dropped as it is handed out, so a batch
    holding a huge document is not kept alive for the whole build."""
    head.reverse()
    while head:
        yield head.pop()
    yield from rest
