"""Bulk indexing on several cores: worker processes analyze batches of documents and write segments.

The parent (``IndexWriter.add_many``) validates documents and cuts them into batches by a token estimate,
never by timing; batch ``i`` goes to worker ``i % workers`` (round robin, the last two batches cut again
so the workers end together: ``assigned``), and a worker flushes its buffer into a segment file once it
holds ``buffer_tokens`` tokens, at a batch boundary. So which documents land in
which segment depends only on the input, and the parent names the segments in the order of their first
batch: the same input gives byte-identical indexes however the workers are scheduled.

Transport is bytes over pipes (``Connection.send_bytes``): a batch goes to a worker as its documents'
``[id, text, title, lang, meta_json]`` fields laid end to end, their lengths in characters, then all of
them as one UTF-8 text (``_pack_batch``: a join and an encode, where ``json.dumps`` escaped every string,
seven times the cost, a tenth of the parent's work per document; the worker decodes the text once and
slices it). Nothing is unpickled. Workers answer with plain JSON messages (``done``, ``segment``,
``bye``, ``error``).
Workers write segments under temporary ``seg_tmp_*`` names; the parent renames them, and nothing is
visible until the writer's commit names them in ``meta.json``. Any failure (a bad document in the
parent, an exception or a crash in a worker) stops every worker and removes the files of this call.
Useful for: building large indexes. Not useful for: a handful of documents (``add_many`` keeps those in
process, since starting workers costs more than analyzing them).

Workers never hold the index's write lock and never outlive the parent: a forked child closes the
inherited lock descriptor (``storage`` registers that with ``os.register_at_fork``) and every descriptor of
the parent's pipe ends, so the parent's death is an end of file on its inbox; on Linux the kernel also
kills a worker whose parent dies (``PR_SET_PDEATHSIG``). Workers ignore SIGINT: the parent decides, stops
them and removes their files. While other threads are alive in the parent, forking could copy a lock a
thread holds, so workers then start from a ``forkserver`` (which, like ``spawn``, imports the caller's main
module: scripts need an ``if __name__ == "__main__":`` guard there).
"""

from __future__ import annotations

import errno
import gc
import itertools
import json
import multiprocessing
import os
import queue
import signal
import struct
import sys
import threading
import time
import traceback
from array import array
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from .builder import SegmentBuilder
from .errors import SearchError, WorkerFailed
from .malloc import flush_arrays
from .segment import write_segment
from .settings import IndexSettings

# A batch is about 1/32 of a writer buffer (some 900 passages of 120 words): round robin gives every
# worker the same share within one batch, and a build of 10k passages, cut in eighths, left one worker
# idle for a fifth of the build. Inputs of fewer than ``IN_PROCESS_BATCHES`` + 1 batches (an eighth of a
# buffer) are analyzed in the writer's process: starting workers would cost more.
BATCHES_PER_BUFFER = 32
IN_PROCESS_BATCHES = 4
IN_FLIGHT = 2  # batches sent to one worker and not yet done: one being analyzed, one waiting
TMP_PREFIX = "seg_tmp_"  # "seg_" so a writer opening after a crash removes leftovers
STALL_SECONDS = 600.0  # no message from any busy worker for this long: give up rather than hang
_calls = itertools.count()


def default_workers() -> int:
    """Workers for ``add_many(workers=None)``: up to 2 on Linux (fork or forkserver), else 1.

    Spawned workers (macOS, Windows) re-import the caller's main module, which breaks scripts without
    an ``if __name__ == "__main__":`` guard, so there they are opt-in: ``add_many(docs, workers=2)``.
    """
    if start_method() not in ("fork", "forkserver"):
        return 1
    return max(1, min(2, os.cpu_count() or 1))


def start_method() -> str | None:
    """The start method for workers: on Linux fork (starts in milliseconds) while this process runs one
    thread, else forkserver (forking a threaded process can copy a lock another thread holds, and Python
    3.12 warns about it); spawn elsewhere; None if there is none."""
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods:
        if threading.active_count() > 1 and "forkserver" in methods:
            return "forkserver"
        return "fork"
    return "spawn" if "spawn" in methods else None


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (best effort; other systems rely on the
    pipe's end of file and the parent-pid check)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def estimate_tokens(text: str, title: str) -> int:
    """A cheap token estimate for batching (about six characters per word); never used for results."""
    return (len(text) + len(title)) // 6 + 1


def batch_tokens(buffer_tokens: int) -> int:
    """The estimated tokens per batch for a writer buffer of ``buffer_tokens``."""
    return max(1, buffer_tokens // BATCHES_PER_BUFFER)


def _tokens(batch: list[list[Any]]) -> int:
    return sum(estimate_tokens(fields[1], fields[2]) for fields in batch)


def assigned(
    batches: Iterable[list[list[Any]]], workers: int, limit: int
) -> Iterator[tuple[int, list[list[Any]]]]:
    """Each batch (cut at ``limit`` estimated tokens) with the worker it goes to: round robin, but the
    input's last two batches are cut again so that the workers end at one level of estimated tokens,
    each within a document of it (every worker is filled to the level, its documents those whose middle
    falls in its share, in input order). A rule on the input alone, so builds stay byte-identical. Plain
    round robin left the worker given the last batch working alone for its length: 50k English passages
    are 35 batches, 18 for one worker and 17 for the other, and one core idled for a tenth of the build.
    Two batches are held back to know which are the last, never one of over twice ``limit`` (a huge
    document: it goes at once, so the parent never holds more than one)."""
    sent = [0] * workers
    held: list[tuple[list[list[Any]], int]] = []
    i = 0
    for batch in batches:
        tokens = _tokens(batch)
        held.append((batch, tokens))
        del batch
        while len(held) > 2 or (held and held[-1][1] > 2 * limit):
            first, tokens = held.pop(0)
            w = i % workers
            sent[w] += tokens
            i += 1
            yield w, first
            del first  # sent: not kept while the next is read
    tail = [fields for batch, _ in held for fields in batch]
    del held
    est = [estimate_tokens(fields[1], fields[2]) for fields in tail]
    order = sorted(range(workers), key=lambda w: (sent[w], w))  # the least fed first
    shares = list(itertools.accumulate(max(0.0, _level(sent, sum(est)) - sent[w]) for w in order))
    pieces: list[list[list[Any]]] = [[] for _ in order]
    k, done = 0, 0
    for fields, e in zip(tail, est):
        while k < len(order) - 1 and done + e / 2 > shares[k]:
            k += 1
        pieces[k].append(fields)
        done += e
    del tail
    for w, piece in zip(order, pieces):
        if piece:
            yield w, piece


def _level(sent: list[int], more: int) -> float:
    """The level every worker below it is filled to when ``more`` tokens are shared out (water filling:
    a worker already above it gets none)."""
    low = sorted(sent)
    total = 0
    for k, s in enumerate(low, 1):
        total += s
        level = (total + more) / k
        if k == len(low) or level <= low[k]:
            return level
    return float(more)


def _send(conn: Connection, message: dict[str, Any]) -> None:
    """A worker's message to the parent, as JSON."""
    conn.send_bytes(json.dumps(message, ensure_ascii=False).encode("utf-8"))


_BATCH = b"B"
_FINISH = b"F"
_HEAD = struct.Struct("<cqq")  # kind, batch number, number of fields
FIELDS = 5  # id, text, title, lang, meta_json


def _pack_batch(batch_no: int, batch: list[list[Any]]) -> bytes:
    """A batch as bytes: a head, every field's length in characters (int64), then the fields as one UTF-8
    text. ``lang`` None (detect it) travels as "", never a language's name."""
    flat = list(itertools.chain.from_iterable(batch))
    flat[3::FIELDS] = [lang or "" for lang in flat[3::FIELDS]]
    chars = array("q", map(len, flat))
    return _HEAD.pack(_BATCH, batch_no, len(flat)) + chars.tobytes() + "".join(flat).encode("utf-8")


def _unpack_batch(raw: bytes) -> tuple[int, list[Any]]:
    """``_pack_batch``'s batch number and its fields, end to end."""
    _, batch_no, n = _HEAD.unpack_from(raw)
    start = _HEAD.size + 8 * n
    ends = list(itertools.accumulate(array("q", raw[_HEAD.size : start])))
    text = str(memoryview(raw)[start:], "utf-8")
    flat: list[Any] = list(map(text.__getitem__, map(slice, [0, *ends[:-1]], ends)))
    flat[3::FIELDS] = [lang or None for lang in flat[3::FIELDS]]
    return batch_no, flat


def _send_to_worker(conn: Connection, message: bytes) -> None:
    """The parent's message (a packed batch, or ``_FINISH``) to a worker it started."""
    conn.send_bytes(message)


def _worker(
    inbox: Connection,
    outbox: Connection,
    directory: str,
    settings_json: str,
    buffer_tokens: int,
    prefix: str,
    parent_pid: int | None,
    inherited: list[Connection] | None = None,
) -> None:
    """A worker process: analyze batches into a ``SegmentBuilder``, write a segment when it is full.

    A reader thread drains the inbox, so the parent's sends return at once and flow control is the
    parent's ``IN_FLIGHT`` count; it also ends the worker when the parent has gone (no orphans): the
    inbox reaches its end of file, or the parent pid changes. ``inherited`` are the parent's pipe ends a
    forked child got by copy; closing them leaves the parent the only writer of this worker's inbox.
    ``parent_pid`` is the caller's pid when forked from it (None under a forkserver, the real parent).
    """
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops the workers
    for conn in inherited or ():
        conn.close()
    ppid = os.getppid()
    if parent_pid is not None and ppid != parent_pid:
        return  # forked, and the parent died before the death signal was set: nothing to do
    pending: queue.Queue[bytes | None] = queue.Queue()

    def read() -> None:
        try:
            while True:
                if inbox.poll(1.0):
                    pending.put(inbox.recv_bytes())
                elif os.getppid() != ppid:
                    break
        except (EOFError, OSError):
            pass
        pending.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        settings = IndexSettings.from_json(json.loads(settings_json))
        buf = SegmentBuilder(settings)
        batches: list[int] = []
        written = 0

        def flush() -> None:
            nonlocal buf, batches, written
            name = f"{prefix}{written}.tls"
            with flush_arrays(buf.largest_text):  # a huge document's temporaries leave no holes (malloc.py)
                data = buf.to_segment_data()
                size, checksum = write_segment(Path(directory) / name, data, consume=True)
            entry = {"tmp": name, "size": size, "checksum": checksum, "docs": len(data.doc_ids)}
            _send(outbox, {"segment": dict(entry, passages=int(len(data.p_doc)), batches=batches)})
            buf, batches, written = SegmentBuilder(settings), [], written + 1

        while True:
            raw = pending.get()
            if raw is None:
                return  # the parent closed the pipe or died: it cleans up
            if raw[:1] == _BATCH:
                batch_no, flat = _unpack_batch(raw)
                del raw
                for i in range(0, len(flat), FIELDS):
                    buf.add_fields(*flat[i : i + FIELDS])
                batches.append(batch_no)
                if buf.full(buffer_tokens):
                    flush()
                _send(outbox, {"done": batch_no, "docs": len(flat) // FIELDS})
            elif raw == _FINISH:
                if len(buf):
                    flush()
                _send(outbox, {"bye": True})
                return
    except BaseException as e:  # report everything, including MemoryError, then exit
        try:
            _send(outbox, {"error": _one_line(e), "traceback": traceback.format_exc()})
        except Exception:
            pass


def _one_line(e: BaseException) -> str:
    """A worker's failure as one line naming the file and the cause (``cannot write /idx/x.tls: No space
    left on device (ENOSPC)``), so the parent's message is readable without the worker's traceback."""
    if isinstance(e, OSError) and e.strerror:
        code = errno.errorcode.get(e.errno or 0, str(e.errno))
        target = f"cannot write {e.filename}: " if e.filename else ""
        return f"{target}{e.strerror} ({code})"
    text = f"{type(e).__name__}: {e}".strip()
    return text.splitlines()[0] if text else type(e).__name__


class _Pool:
    """The worker processes of one ``add_many`` call and the parent's side of their pipes."""

    def __init__(
        self,
        directory: Path,
        settings: IndexSettings,
        workers: int,
        buffer_tokens: int,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.progress = progress
        method = start_method()
        if method is None:
            raise SearchError("no multiprocessing start method here; use workers=1")
        ctx = multiprocessing.get_context(method)
        self.directory = directory
        self.tag = f"{TMP_PREFIX}{os.getpid()}_{next(_calls)}_"
        settings_json = json.dumps(settings.to_json())
        self.procs: list[Any] = []
        self.inboxes: list[Connection] = []
        self.outboxes: list[Connection] = []
        self.in_flight = [0] * workers
        self.finished = [False] * workers
        self.segments: list[dict[str, Any]] = []
        forked = method == "fork"
        if method == "forkserver":
            # preload the builder instead of the caller's main module: workers start fast, and the
            # forkserver itself never runs the caller's script (only effective before it first starts)
            ctx.set_forkserver_preload(["search.builder"])
        gc.freeze()  # forked children share the parent's objects instead of copying pages the GC touches
        try:
            for w in range(workers):
                in_recv, in_send = ctx.Pipe(duplex=False)
                out_recv, out_send = ctx.Pipe(duplex=False)
                # a forked child gets copies of every pipe end the parent holds; it closes the parent's
                inherited = [*self.inboxes, *self.outboxes, in_send, out_recv] if forked else None
                args = (
                    in_recv,
                    out_send,
                    str(directory),
                    settings_json,
                    buffer_tokens,
                    f"{self.tag}{w}_",
                    os.getpid() if forked else None,
                    inherited,
                )
                proc = ctx.Process(target=_worker, args=args, name=f"telusur-index-{w}", daemon=True)
                self.procs.append(proc)
                self.inboxes.append(in_send)
                self.outboxes.append(out_recv)
                proc.start()
                in_recv.close()
                out_send.close()
        finally:
            gc.unfreeze()

    def _handle(self, w: int, raw: bytes) -> None:
        message = json.loads(raw)
        if "error" in message:
            failed = WorkerFailed(f"indexing worker {w} failed: {message['error']}")
            failed.worker_traceback = message.get("traceback", "")  # type: ignore[attr-defined]  # for --debug
            raise failed
        if "done" in message:
            self.in_flight[w] -= 1
            if self.progress is not None:  # the batch's documents are analyzed (in the worker's buffer)
                self.progress(message.get("docs", 0))
        if "segment" in message:
            self.segments.append(message["segment"])
        if message.get("bye"):
            self.finished[w] = True

    def _wait(self) -> None:
        """Wait for one round of messages (or a worker's death) and handle them."""
        busy = [w for w in range(len(self.procs)) if not self.finished[w]]
        waitables: list[Any] = [self.outboxes[w] for w in busy] + [self.procs[w].sentinel for w in busy]
        ready = wait(waitables, timeout=STALL_SECONDS)
        if not ready:
            raise WorkerFailed(f"indexing workers sent nothing for {STALL_SECONDS:.0f} s; stopped them")
        for w in busy:
            box = self.outboxes[w]
            try:
                while box.poll():
                    self._handle(w, box.recv_bytes())
            except EOFError:
                pass
            if not self.finished[w] and self.procs[w].sentinel in ready:
                self._gone(w)

    def _gone(self, w: int) -> None:
        """Raise ``WorkerFailed`` for worker ``w``, which has exited: its own error message when it sent
        one before it went, else its exit code."""
        box = self.outboxes[w]
        try:
            while box.poll():
                self._handle(w, box.recv_bytes())
        except (EOFError, OSError):
            pass
        self.procs[w].join(timeout=5.0)  # the sentinel fires just before the exit status is there
        code = self.procs[w].exitcode
        raise WorkerFailed(f"indexing worker {w} (pid {self.procs[w].pid}) exited with code {code}")

    def _send(self, w: int, message: bytes) -> None:
        """Send to worker ``w``; a worker that has gone (a broken pipe: it failed or was killed
        between two sends) is reported as ``_wait`` would, by its message or its exit code."""
        try:
            _send_to_worker(self.inboxes[w], message)
        except OSError:
            self._gone(w)

    def run(self, batches: Iterable[tuple[int, list[list[Any]]]]) -> list[dict[str, Any]]:
        """Send every batch to its worker (``assigned``); return the written segments ordered by their
        first batch."""
        n = len(self.procs)
        for i, (w, batch) in enumerate(batches):
            while self.in_flight[w] >= IN_FLIGHT:
                self._wait()
            self.in_flight[w] += 1
            self._send(w, _pack_batch(i, batch))
            del batch  # sent: not kept while the next is read or the workers finish
        for w in range(n):
            self._send(w, _FINISH)
        while not all(self.finished):
            self._wait()
        for proc in self.procs:
            proc.join(timeout=STALL_SECONDS)
        return sorted(self.segments, key=lambda s: s["batches"][0])

    def close(self, *, remove_files: bool) -> None:
        """Stop the workers (terminating any still running) and, on failure, remove their files."""
        for box in self.inboxes:
            box.close()
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + 10.0
        for proc in self.procs:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for box in self.outboxes:
            box.close()
        if remove_files:
            remove_temporary(self.directory, self.tag)


def remove_temporary(directory: Path, prefix: str = TMP_PREFIX) -> None:
    """Remove worker-written segment files that were never renamed (a failed or interrupted call)."""
    for path in directory.glob(f"{prefix}*"):
        try:
            path.unlink()
        except OSError:
            pass


def build_segments(
    directory: Path,
    settings: IndexSettings,
    batches: Iterable[tuple[int, list[list[Any]]]],
    *,
    workers: int,
    buffer_tokens: int,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Analyze ``batches`` (lists of ``[id, text, title, lang, meta_json]``, each with the worker it goes
    to: ``assigned``) on ``workers`` processes.

    Returns one entry per segment file written, ordered by first batch: ``tmp`` (its temporary name in
    ``directory``), ``size``, ``checksum``, ``docs``, ``passages`` and ``batches`` (the batch numbers it
    holds, in order). The caller renames the files; on any exception none of them is left behind.
    ``progress(n)`` is called in this process as a worker reports a batch of ``n`` documents analyzed.
    """
    pool = _Pool(directory, settings, workers, buffer_tokens, progress)
    ok = False
    try:
        segments = pool.run(batches)
        ok = True
        return segments
    finally:
        pool.close(remove_files=not ok)
