"""The writer side of the crash harness (tests/test_reliability.py): a deterministic script of commits.

Step ``s`` of the script is a fixed list of operations (put or delete a document) drawn from a random
generator seeded with ``s`` alone, so the live documents after step ``s`` are known without looking at
the index: ``expected_after(s)``. Every commit also writes the step number into the document
``MARKER_ID``, so after a crash the index says which commit it holds, and the parent checks that this
commit is the last one whose ``commit()`` returned (or the one in flight, whole) and that every document
of it is there, byte for byte.

``run`` is the child process's body (started with the ``fork`` context, or as ``python crash_worker.py``):
it resumes the script from the step the index holds, commits step after step and appends each step
number to a log file with ``fsync`` once ``commit()`` returned. ``arm_tripwire`` makes it kill itself at
the n-th write-path event (a chunk written, an fsync, the rename of ``meta.json``, a merge...), so every
phase of a commit is hit deterministically, next to the parent's SIGKILLs at random moments.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
import traceback
from pathlib import Path

MARKER_ID = "__step__"
N_IDS = 40
COMMON = "zebra"  # in every document's text: a search for it must find every live document
WORDS = (
    "rumah makan kota jalan orang besar kecil sungai gunung pasar sekolah kereta perahu laut pulau "
    "river mountain pass border road village market bridge harbour island train school forest valley"
).split()
LANGS = ("en", "id", None)


def _text(rng: random.Random, step: int) -> str:
    sentences = []
    for _ in range(rng.randint(1, 8)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 25))]
        sentences.append(" ".join(words).capitalize() + ".")
    sentences.insert(rng.randrange(len(sentences) + 1), f"{COMMON.capitalize()} nomor s{step}.")
    return " ".join(sentences)


def step_ops(step: int) -> list[tuple[str, str, str, str | None]]:
    """The operations of commit ``step``: ("put" | "delete", doc id, text, lang), the same in every run."""
    rng = random.Random(f"telusur-crash-{step}")
    ops: list[tuple[str, str, str, str | None]] = []
    for _ in range(rng.randint(1, 7)):
        doc_id = f"doc-{rng.randrange(N_IDS)}"
        if rng.random() < 0.25:
            ops.append(("delete", doc_id, "", None))
        else:
            ops.append(("put", doc_id, _text(rng, step), rng.choice(LANGS)))
    return ops


def apply_step(state: dict[str, tuple[str, str | None]], step: int) -> None:
    """Apply step ``step``'s operations to ``state`` (doc id -> (text, lang)) in place."""
    for op, doc_id, text, lang in step_ops(step):
        if op == "delete":
            state.pop(doc_id, None)
        else:
            state[doc_id] = (text, lang)


def expected_after(step: int) -> dict[str, tuple[str, str | None]]:
    """The live documents (without the marker) once commit ``step`` is in the index."""
    state: dict[str, tuple[str, str | None]] = {}
    for s in range(1, step + 1):
        apply_step(state, s)
    return state


def read_log(path: Path) -> int:
    """The last step the log says was committed (0 when none)."""
    try:
        lines = Path(path).read_text().split()
    except FileNotFoundError:
        return 0
    return int(lines[-1]) if lines else 0


class WrappedFile:
    """A file object whose writes pass through ``before_write`` first (for kill points and fake full disks)."""

    def __init__(self, f) -> None:
        self._f = f

    def before_write(self, chunk) -> None:
        """Called with every chunk before it is written; may raise."""

    def write(self, chunk) -> int:
        self.before_write(chunk)
        return self._f.write(chunk)

    def __getattr__(self, attr: str):
        return getattr(self._f, attr)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def child_pids(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux ``/proc``; [] elsewhere)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            out.extend(int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except OSError:
            pass
    return out


def holds_file(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (Linux ``/proc``)."""
    target = str(Path(path).resolve())
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            pass
    return False


def still_holds(pid: int, path: Path, grace: float = 0.5) -> bool:
    """Whether process ``pid`` still has ``path`` open after ``grace`` seconds (a child forked a moment
    ago holds copies of every descriptor until its after-fork hooks run)."""
    deadline = time.monotonic() + grace
    while holds_file(pid, path):
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.01)
    return False


def arm_tripwire(n: int, record: Path, only: str = "", sig: int = signal.SIGKILL, lock: Path | None = None) -> None:
    """Kill this process with ``sig`` at the ``n``-th write-path event; ``record`` gets the event's name.

    ``only`` counts events of that name alone ("merge", "rename meta.json", ...); "" counts them all.
    Only this process's events count (forked indexing workers inherit the wrappers and ignore them).
    ``record`` with the suffix ".children" gets a line per child process alive at the kill: its pid and
    whether it still has ``lock`` open half a second later (1) or not (0).

    Events: a chunk written to a segment file, an fsync, a rename, a file removed, a segment written,
    a merge, the directory fsync after the rename of ``meta.json``; in bulk builds also a batch sent to a
    worker ("send batch") and a message from one ("worker message"). ``only="merge write"`` counts the
    chunks a background merge's process writes (each merge from 0) and kills the writer in the middle of
    that merge's output.
    """
    import search.parallel as parallel
    import search.segment as segment
    import search.storage as storage
    import search.writer as writer

    count = [0]
    fsync = os.fsync
    me = os.getpid()

    def event(name: str) -> None:
        if os.getpid() != me:
            if only == "merge write" and name == "segment chunk" and in_merge_process():
                merge_write()
            return
        if only and name != only:
            return
        count[0] += 1
        if count[0] >= n:
            children = [(c, lock is not None and still_holds(c, lock)) for c in child_pids(me)]
            lines = "".join(f"{c} {int(held)}\n" for c, held in children)
            for target, text in ((record, name), (Path(record).with_suffix(".children"), lines)):
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.write(fd, text.encode())
                fsync(fd)
                os.close(fd)
            os.kill(me, sig)
            if sig != signal.SIGKILL:
                time.sleep(5)  # the signal's default action ends the process here
                os._exit(99)

    def in_merge_process() -> bool:
        import multiprocessing

        return multiprocessing.current_process().name == "telusur-merge"

    def merge_write() -> None:
        """In a background merge's process (forked from the writer, so it has these wrappers): at its
        ``n``-th chunk written, kill the writer, which takes the merge down with it (parent-death signal)
        with its output half written."""
        count[0] += 1
        if count[0] < n:
            return
        fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"merge write")
        fsync(fd)
        os.close(fd)
        os.kill(me, sig)
        time.sleep(30)  # the parent-death signal ends this process here
        os._exit(98)

    def wrap(owner: object, attr: str, name: str) -> None:
        original = getattr(owner, attr)

        def wrapper(*args, **kwargs):
            event(name)
            return original(*args, **kwargs)

        setattr(owner, attr, wrapper)

    wrap(os, "fsync", "fsync")
    wrap(os, "replace", "rename meta.json")
    wrap(os, "unlink", "remove file")
    wrap(storage, "fsync_dir", "fsync directory")
    wrap(writer, "write_segment", "segment write")
    wrap(writer, "merge_segments", "merge")  # a merge inside commit (force_merge, shards)
    wrap(writer, "BackgroundMerge", "merge")  # a merge started in its own process after a commit
    wrap(writer.IndexWriter, "_apply_merge", "merge")  # a finished merge joining the next commit
    wrap(parallel, "_send_to_worker", "send batch")
    wrap(parallel._Pool, "_handle", "worker message")

    class _File(WrappedFile):
        """A segment file whose every write is an event (so a kill can leave half a segment)."""

        def before_write(self, chunk) -> None:
            event("segment chunk")

    segment.open = lambda *a, **k: _File(open(*a, **k))  # type: ignore[attr-defined]


def run(
    path: str, log: str, max_steps: int, buffer_tokens: int, error_file: str, tripwire: int = 0, only: str = ""
) -> None:
    """The child's body: resume the script at the index's step and commit until ``max_steps``."""
    try:
        from search import Document, Index

        if tripwire:
            arm_tripwire(tripwire, Path(error_file + ".event"), only)
        index = Index.open(path)
        marker = index.get(MARKER_ID)
        step = int(marker.text) if marker is not None else 0
        state = expected_after(step)
        log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        w = index.writer(buffer_tokens=buffer_tokens)  # timeout 0: a dead writer's lock must be free at once
        while step < max_steps:
            step += 1
            for op, doc_id, text, lang in step_ops(step):
                if op == "delete":
                    w.delete(doc_id)
                    state.pop(doc_id, None)
                elif doc_id in state:
                    w.update(Document(id=doc_id, text=text, title=f"judul {doc_id}", lang=lang, meta={"step": step}))
                    state[doc_id] = (text, lang)
                else:
                    w.add(Document(id=doc_id, text=text, title=f"judul {doc_id}", lang=lang, meta={"step": step}))
                    state[doc_id] = (text, lang)
            w.update(Document(id=MARKER_ID, text=str(step), lang="en"))
            w.commit()
            os.write(log_fd, f"{step}\n".encode())
            os.fsync(log_fd)
            if step % 4 == 0:  # reopen now and then: a writer's start and end are crash points too
                w.close()
                w = index.writer(buffer_tokens=buffer_tokens)
        w.close()
    except BaseException:
        Path(error_file).write_text(traceback.format_exc())
        os._exit(1)
    os._exit(0)


def bulk_documents(n: int) -> list:
    """``n`` documents for a bulk build, the same in every run."""
    from search import Document

    rng = random.Random("telusur-bulk")
    return [
        Document(id=f"bulk-{i:05d}", text=_text(rng, i), title=f"judul bulk {i}", lang=rng.choice(LANGS))
        for i in range(n)
    ]


def run_bulk(path: str, n_docs: int, buffer_tokens: int, error_file: str, tripwire: int, only: str, sig: int) -> None:
    """A child's body: one writer adds ``n_docs`` documents with ``add_many`` on two worker processes and
    commits, killed by ``sig`` at the ``tripwire``-th ``only`` event (see ``arm_tripwire``)."""
    try:
        from search import Index

        index = Index.open(path)
        docs = bulk_documents(n_docs)
        arm_tripwire(tripwire, Path(error_file + ".event"), only, sig, Path(path) / "write.lock")
        with index.writer(buffer_tokens=buffer_tokens) as w:
            w.add_many(docs, workers=2)
    except BaseException:
        Path(error_file).write_text(traceback.format_exc())
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), sys.argv[7])
