"""Reliability: crash safety under SIGKILL, corruption detection, concurrent use, disk full, read-only.

The crash harness runs the deterministic commit script of ``tests/crash_worker.py`` in forked children
and kills them (at random moments, and at chosen write-path events); after every kill the index must
open, hold exactly the last committed step's documents, search, verify, and accept the next writer.
"""

from __future__ import annotations

import collections
import errno
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import search.segment as segment
import search.storage as storage
from search import (
    Document,
    IncompatibleIndex,
    Index,
    IndexCorrupt,
    IndexLocked,
    IndexNotFound,
    parallel,
)

sys.path.insert(0, str(Path(__file__).parent))
import crash_worker  # noqa: E402
from crash_worker import COMMON, MARKER_ID, WORDS, expected_after, read_log  # noqa: E402

FORK = multiprocessing.get_context("fork")
QUERIES = [COMMON, "rumah besar", '"river mountain"', "+kota -jalan", "title:judul", "bridge OR pasar", "lang:id laut"]


# -- helpers --------------------------------------------------------------------------------------------


def check_committed(path: Path, logged: int) -> int:
    """Open the index after a crash and check it holds commit ``logged`` (or ``logged + 1``, whole).

    Returns the step the index holds.
    """
    index = Index.open(path)
    marker = index.get(MARKER_ID)
    step = int(marker.text) if marker is not None else 0
    assert step in (logged, logged + 1), f"index holds step {step}, the last commit that returned is {logged}"
    expected = expected_after(step)
    ids = set(expected) | ({MARKER_ID} if marker is not None else set())
    assert len(index) == len(ids)
    assert set(index.content_hashes()) == ids
    for doc_id, (text, lang) in expected.items():
        doc = index.get(doc_id)
        assert doc is not None, f"step {step}: committed document {doc_id} is lost"
        assert (doc.text, doc.lang, doc.title) == (text, lang, f"judul {doc_id}"), f"step {step}: {doc_id} differs"
    assert index.get("doc-never") is None
    hits = index.search(COMMON, k=1000)
    assert sorted(h.doc_id for h in hits) == sorted(expected)
    for q in QUERIES[1:]:
        for h in index.search(q, k=50):
            assert h.doc_id in ids and h.score > 0
            assert h.text in index.get(h.doc_id).text
    index.verify()
    return step


def run_worker(
    path: Path,
    log: Path,
    errfile: Path,
    *,
    kill_after: float | None,
    after_step: int = 0,
    tripwire: int = 0,
    only: str = "",
    max_steps: int = 10**6,
    buffer_tokens: int = 150,
) -> int:
    """Run the worker in a forked child; kill it ``kill_after`` s after its log reached ``after_step`` (None:
    let it finish). Returns its exit code.

    Waiting for a logged commit, not for a time, is what makes the worker progress between kills on a
    loaded machine (where starting the child alone can take longer than a random delay)."""
    errfile.unlink(missing_ok=True)
    proc = FORK.Process(
        target=crash_worker.run, args=(str(path), str(log), max_steps, buffer_tokens, str(errfile), tripwire, only)
    )
    proc.start()
    if kill_after is not None:
        started = time.monotonic()
        while read_log(log) < after_step and proc.exitcode is None and not errfile.exists():
            assert time.monotonic() - started < 300, f"the worker logged no commit {after_step} in 300 s (a hang)"
            time.sleep(0.002)
        proc.join(kill_after)
        if proc.exitcode is None:
            os.kill(proc.pid, signal.SIGKILL)
    proc.join(60)
    assert proc.exitcode is not None, "the worker hangs"
    if errfile.exists():
        pytest.fail(f"the worker failed:\n{errfile.read_text()}")
    return proc.exitcode


def uncommitted_files(path: Path) -> set[str]:
    meta = json.loads((path / "meta.json").read_text())
    named = {e["name"] for e in meta["segments"]} | {e["deletes"]["name"] for e in meta["segments"] if e["deletes"]}
    return {p.name for p in path.iterdir() if p.name.startswith("seg_") and p.name not in named} | (
        {"meta.json.tmp"} if (path / "meta.json.tmp").exists() else set()
    )


def small_index(path: Path, n: int = 30, passage_words: int = 20) -> Index:
    rng = random.Random(4)
    index = Index.create(path, passage_words=passage_words)
    with index.writer() as w:
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 60))) + f". {COMMON}."
            w.add(Document(id=f"d{i}", text=text, title=f"judul {i}", meta={"i": i}))
    return index


# -- 1. crash harness -----------------------------------------------------------------------------------


def test_sigkill_at_random_moments_never_loses_a_commit(tmp_path):
    """50 SIGKILLs at random moments; every time the index holds exactly the last commit that returned.

    Each kill comes a random 0-0.25 s after the worker logged a chosen number (0, 1 or 2) of new commits:
    the moments stay random (starting up, mid-commit, between commits) and the progress between kills is
    counted, not left to how fast a loaded machine runs the child."""
    path, log, err = tmp_path / "idx", tmp_path / "log", tmp_path / "err"
    Index.create(path, passage_words=30)
    rng = random.Random(20240508)
    in_flight = left_files = asked = 0
    step = 0
    for _ in range(50):
        more = rng.choice((0, 1, 2))
        asked += more
        code = run_worker(path, log, err, kill_after=rng.uniform(0.0, 0.25), after_step=step + more)
        assert code == -signal.SIGKILL
        left_files += bool(uncommitted_files(path))
        # the last commit known to be durable: the log's, or the in-flight commit an earlier check found
        logged = max(read_log(log), step)
        assert logged >= step + more
        step = check_committed(path, logged)
        in_flight += step == logged + 1
    # the next writer proceeds at once (the dead writer's lock is free) and finishes its commits
    assert run_worker(path, log, err, kill_after=None, max_steps=step + 3) == 0
    assert check_committed(path, read_log(log)) == step + 3  # the log was written by the finishing run
    assert not uncommitted_files(path)
    print(
        f"\ncrash harness: 50 random kills, {step} commits reached ({asked} waited for), {in_flight} found the"
        f" in-flight commit whole, {left_files} left uncommitted files behind"
    )
    assert step >= asked >= 20


@pytest.mark.parametrize(
    "only, hits",
    [
        (None, [3, 17, 41, 77, 120, 160, 230, 300, 410, 520]),  # any event: chunks, fsyncs, renames...
        ("segment chunk", [1, 4, 9]),  # half-written segment files
        ("fsync", [1, 2, 5]),  # a segment, a deletions file, meta.json.tmp written, not yet named
        ("rename meta.json", [1, 2]),  # just before the atomic step
        ("fsync directory", [1, 2]),  # just after it
        ("remove file", [1, 3]),  # while removing files the new commit no longer names
        ("merge", [1, 2]),  # a merge starting, a finished merge taken into a commit
        ("merge write", [1, 3, 6]),  # a background merge half written: its writer (and so it) killed
    ],
)
def test_sigkill_at_each_write_path_event(tmp_path, only, hits):
    """Deterministic kills at chosen events of the write path (tripwires), each followed by the full check."""
    path, log, err = tmp_path / "idx", tmp_path / "log", tmp_path / "err"
    Index.create(path, passage_words=30)
    events = collections.Counter()
    step = 0
    for n in hits:
        code = run_worker(path, log, err, kill_after=None, tripwire=n, only=only or "", max_steps=step + 200)
        assert code == -signal.SIGKILL, "the tripwire never fired"
        events[Path(str(err) + ".event").read_text()] += 1
        step = check_committed(path, max(read_log(log), step))
    assert only is None or events[only] == len(hits)
    assert run_worker(path, log, err, kill_after=None, max_steps=step + 2) == 0
    assert check_committed(path, read_log(log)) == step + 2
    assert not uncommitted_files(path), "a finished writer left files no commit names"


BULK_DOCS = 400
BULK_BUFFER = 2000  # tokens: about 12 worker segments, so the commit merges them


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has exited (gone, or a zombie nobody reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


needs_proc = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to see workers")


@needs_proc
@pytest.mark.parametrize(
    "only, n, sig",
    [
        ("send batch", 1, signal.SIGKILL),  # workers just started
        ("send batch", 20, signal.SIGKILL),  # workers busy, pipes full
        ("send batch", 20, signal.SIGTERM),
        ("worker message", 1, signal.SIGKILL),
        ("worker message", 40, signal.SIGTERM),  # segments written by workers, not yet renamed
        ("rename meta.json", 2, signal.SIGKILL),  # the parent renaming worker segments
        ("merge", 1, signal.SIGKILL),  # the merge started once the build committed (its process dies too)
        ("fsync directory", 1, signal.SIGTERM),  # just after the commit
    ],
)
def test_killed_bulk_build_frees_the_lock_and_its_workers_at_once(tmp_path, only, n, sig):
    """A bulk build (two worker processes) killed at several points: no worker ever holds the write lock,
    the workers die with their parent, the next writer gets the lock within a second, and the index
    holds the last commit exactly (the build whole, or none of it)."""
    path, err = tmp_path / "idx", tmp_path / "err"
    before = set(small_index(path, n=5).content_hashes())
    proc = FORK.Process(target=crash_worker.run_bulk, args=(str(path), BULK_DOCS, BULK_BUFFER, str(err), n, only, sig))
    proc.start()
    proc.join(120)
    assert proc.exitcode is not None, "the bulk build hangs"
    if err.exists():
        pytest.fail(f"the bulk build failed:\n{err.read_text()}")
    assert proc.exitcode == -sig, "the tripwire never fired"
    died = time.monotonic()
    assert Path(str(err) + ".event").read_text() == only
    children = [tuple(map(int, line.split())) for line in Path(str(err) + ".children").read_text().splitlines()]
    if only in ("send batch", "worker message"):
        assert len(children) == 2, f"expected two live workers at the kill, found {children}"
    assert all(held == 0 for _, held in children), f"a worker had write.lock open: {children}"

    index = Index.open(path)
    with index.writer(timeout=1.0):  # IndexLocked if anything still held the lock after a second
        assert not list(path.glob("seg_tmp_*")), "the next writer keeps a dead build's files"
    # the kernel ends them with their parent (no wall-clock bound: a loaded machine reaps late)
    while not all(process_gone(pid) for pid, _ in children) and time.monotonic() - died < 30.0:
        time.sleep(0.02)
    assert all(process_gone(pid) for pid, _ in children), "a worker outlived its parent"
    ids = set(index.content_hashes())
    built = {d.id for d in crash_worker.bulk_documents(BULK_DOCS)}
    assert ids in (before, before | built), "the index holds part of a build"
    if only in ("fsync directory", "merge"):  # merges start in their own process once the build committed
        assert ids == before | built
    else:
        assert ids == before
    index.verify()


@pytest.fixture(scope="module")
def bulk_jsonl(tmp_path_factory) -> Path:
    """A JSONL file large enough that ``search index`` runs its workers for a while."""
    path = tmp_path_factory.mktemp("bulk") / "bulk.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for doc in crash_worker.bulk_documents(40_000):  # builds got faster: keep the workers visible a while
            f.write(json.dumps({"id": doc.id, "text": doc.text, "lang": doc.lang}) + "\n")
    return path


@needs_proc
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_sigint_stops_a_cli_build_cleanly(tmp_path, bulk_jsonl, sig):
    """``search index`` stopped by SIGTERM (to the process) or SIGINT (to its process group, as Ctrl-C)
    while its workers run: one error line, exit 128 + signal, nothing committed, no file left, the
    workers gone and the lock free at once."""
    path = tmp_path / "idx"
    cli = Path(sys.executable).parent / "search"
    proc = subprocess.Popen(
        [str(cli), "index", str(bulk_jsonl), "--index", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # Ctrl-C reaches a terminal's foreground job: a suite started in the background of a shell
        # (`pytest &`) passes SIGINT down ignored, and the build then rightly ran to its end (exit 0)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        workers = crash_worker.child_pids(proc.pid)
        if len(workers) == 2 and list(path.glob("seg_tmp_*")):
            break
        time.sleep(0.005)
    assert len(workers) == 2, "the build ended before its workers could be seen; use a larger corpus"
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    name = signal.Signals(sig).name
    assert err.strip().splitlines() == [f"error: interrupted by {name}; the index keeps its last commit"]
    assert "Traceback" not in err and out == ""
    assert all(process_gone(pid) for pid in workers)
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "write.lock"], "files left behind"
    index = Index.open(path)
    assert len(index) == 0 and index.stats()["generation"] == 0
    with index.writer():  # timeout 0: IndexLocked unless the lock is free at once
        pass


_THREADED_BUILD = """
import os, sys, threading
sys.path.insert(0, sys.argv[2])
import crash_worker
from search import Index, parallel

stop = threading.Event()
threading.Thread(target=stop.wait).start()  # another thread alive, as under a progress bar or a server
assert parallel.start_method() == "forkserver", parallel.start_method()

def no_fork():
    raise AssertionError("forked while another thread was alive")

os.fork = no_fork
index = Index.create(sys.argv[1], passage_words=30)
with index.writer(buffer_tokens=3000) as w:
    w.add_many(crash_worker.bulk_documents(400), workers=2)
stop.set()
print(len(index), len(index.search("zebra", k=1000)))
"""


@pytest.mark.skipif(parallel.start_method() != "fork", reason="the forkserver switch is for Linux")
def test_workers_start_from_a_forkserver_while_other_threads_are_alive(tmp_path):
    """Forking a threaded process is unsafe (and warned about from Python 3.12): with another thread
    alive, workers come from a forkserver, warnings are errors, and the build is the same."""
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", _THREADED_BUILD, str(tmp_path / "idx"), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.split() == ["400", "400"]
    fresh = Index.create(tmp_path / "fresh", passage_words=30)
    with fresh.writer() as w:
        w.add_many(crash_worker.bulk_documents(400), workers=1)
    index = Index.open(tmp_path / "idx")
    assert index.content_hashes() == fresh.content_hashes()
    assert [(h.doc_id, h.score) for h in index.search("river zebra", k=50)] == [
        (h.doc_id, h.score) for h in fresh.search("river zebra", k=50)
    ]


# -- 2. corruption ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def damaged_base(tmp_path_factory) -> Path:
    """An index of two segments and a deletions file, to copy and damage."""
    path = tmp_path_factory.mktemp("corrupt") / "base"
    index = small_index(path, n=40)
    with index.writer() as w:
        for i in range(40, 50):
            w.add(Document(id=f"d{i}", text=f"Sungai besar {COMMON} river mountain.", title=f"judul {i}", lang="id"))
        for i in range(0, 40, 6):
            w.delete(f"d{i}")
    return path


def copy_of(base: Path, tmp_path: Path) -> Path:
    path = tmp_path / "copy"
    shutil.copytree(base, path)
    return path


def largest_file(path: Path) -> Path:
    return max((p for p in path.iterdir() if p.name != "write.lock"), key=lambda p: p.stat().st_size)


def array_offset(path: Path, name: str) -> int:
    """Where array ``name`` of a segment file starts (read from its header)."""
    raw = path.read_bytes()
    hlen = int.from_bytes(raw[8:16], "little")
    header = json.loads(raw[16 : 16 + hlen])
    base = -(-(16 + hlen) // segment.ALIGN) * segment.ALIGN
    return base + header["arrays"][name][0]


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def test_flipped_byte_in_largest_file_is_named_by_verify(damaged_base, tmp_path):
    path = copy_of(damaged_base, tmp_path)
    target = largest_file(path)
    assert target.name.endswith(".tls")
    flip(target, array_offset(target, "doc_data") + 5)  # stored text: only read (and checked) when shown
    with pytest.raises(IndexCorrupt) as info:
        Index.open(path, verify=True)
    assert Path(info.value.path) == target and target.name in str(info.value)
    index = Index.open(path)
    with pytest.raises(IndexCorrupt) as info:
        index.verify()
    assert Path(info.value.path) == target and target.name in str(info.value)


def test_flipped_bit_in_a_deletions_file_is_never_laundered_into_a_commit(damaged_base, tmp_path):
    """One flipped bit turns "d6 deleted" into "d7 deleted" (size and range are fine). Opening checks a
    deletions file's checksum, and a writer of an index opened before the damage must refuse it rather
    than write the damaged set into a new file with a fresh checksum (which once made a deleted document
    come back and a live one vanish, with `check` passing)."""
    from typer.testing import CliRunner

    from cli.app import app

    path = copy_of(damaged_base, tmp_path)
    meta = json.loads((path / "meta.json").read_text())
    entry = next(e for e in meta["segments"] if e["deletes"])
    dfile = path / entry["deletes"]["name"]
    assert np.frombuffer(dfile.read_bytes(), "<u4")[1] == 6  # d6 was deleted
    index = Index.open(path)  # opened before the damage
    data = bytearray(dfile.read_bytes())
    data[4] ^= 0x01  # 6 -> 7
    dfile.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt) as info:
        Index.open(path)  # only the checksum can tell, and a deletions file is small enough to check
    assert Path(info.value.path) == dfile and "checksum" in str(info.value)
    before = (path / "meta.json").read_bytes()

    with pytest.raises(IndexCorrupt) as info:
        with index.writer() as w:
            w.delete("d1")
    assert Path(info.value.path) == dfile and dfile.name in str(info.value)
    result = CliRunner().invoke(app, ["delete", "d1", "--index", str(path)])
    assert result.exit_code == 3 and dfile.name in result.output
    assert (path / "meta.json").read_bytes() == before, "a refused writer changed the commit"
    result = CliRunner().invoke(app, ["check", "--index", str(path)])
    assert result.exit_code == 3 and dfile.name in result.output  # still damaged, still named

    dfile.write_bytes(bytes(data[:4]) + bytes([data[4] ^ 0x01]) + bytes(data[5:]))  # repaired: writes work
    with Index.open(path).writer() as w:
        assert w.delete("d1")
    index = Index.open(path, verify=True)
    assert "d6" not in index and "d7" in index and "d1" not in index


@pytest.mark.parametrize("array", ["p_doc", "p_len", "doc_block_off"])
def test_a_delete_in_a_segment_with_a_damaged_passage_table_is_refused_before_anything_is_written(
    damaged_base, tmp_path, array
):
    """Deleting a document of a segment that had no deletions maps them to passages only when the commit
    publishes; a damaged passage table there was found after meta.json named the deletions, so the
    writer raised although its commit stood. Now the writer refuses first: ``IndexCorrupt`` naming the
    segment, meta.json and the directory unchanged, the document still there once the file is repaired."""
    path = copy_of(damaged_base, tmp_path)
    seg = next(p for p in sorted(path.glob("seg_*.tls")) if not list(path.glob(f"{p.stem}.*.del")))
    segments = Index.open(path)._snapshot.segments
    doc_id = segments[-1].reader.strings("doc_id")[0]
    other = next(d for d in segments[0].reader.strings("doc_id") if d in Index.open(path).content_hashes())
    original = seg.read_bytes()
    flip(seg, array_offset(seg, array))
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    w = Index.open(path).writer()
    w.delete(other)  # a sound segment's deletions too: their file must not be written either
    w.delete(doc_id)
    with pytest.raises(IndexCorrupt) as info:
        w.commit()
    assert Path(info.value.path).name == seg.name
    held = {p.name: p.read_bytes() for p in path.iterdir() if p.name != "write.lock"}  # (it names the writer)
    assert held == {k: v for k, v in before.items() if k != "write.lock"}  # the writer still open
    w.close()
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    seg.write_bytes(original)
    assert doc_id in Index.open(path, verify=True).content_hashes()


def test_truncated_segment_is_named_at_plain_open(damaged_base, tmp_path):
    path = copy_of(damaged_base, tmp_path)
    target = largest_file(path)
    with open(target, "r+b") as f:
        f.truncate(target.stat().st_size // 2)
    with pytest.raises(IndexCorrupt) as info:
        Index.open(path)
    assert Path(info.value.path) == target and target.name in str(info.value)


@pytest.mark.parametrize(
    "damage",
    [
        "empty",
        "not json",
        "json list",
        "flipped checksum",
        "flipped format",
        "flipped version",
        "no checksum",
        "missing field",
    ],
)
def test_damaged_meta_json_is_index_corrupt(damaged_base, tmp_path, damage):
    path = copy_of(damaged_base, tmp_path)
    meta_path = path / "meta.json"
    text = meta_path.read_text()
    meta = json.loads(text)
    if damage == "empty":
        meta_path.write_bytes(b"")
    elif damage == "not json":
        meta_path.write_text(text[: len(text) // 2])
    elif damage == "json list":
        meta_path.write_text("[1, 2]")
    elif damage == "flipped checksum":
        meta_path.write_text(text.replace(meta["checksum"], meta["checksum"][::-1]))
    elif damage == "flipped format":
        meta_path.write_text(text.replace('"telusur-index"', '"telusur-indey"'))
    elif damage == "flipped version":
        meta_path.write_text(text.replace(f'"format_version": {storage.FORMAT_VERSION}', '"format_version": 7'))
    elif damage == "no checksum":
        del meta["checksum"]
        meta_path.write_text(json.dumps(meta))
    else:  # a commit with a valid checksum but no segment list (written by a broken tool)
        del meta["segments"]
        storage.write_meta(path, meta)
    with pytest.raises(IndexCorrupt) as info:
        Index.open(path)
    assert Path(info.value.path).name == "meta.json"


def test_missing_segment_or_deletions_file_is_index_corrupt(damaged_base, tmp_path):
    path = copy_of(damaged_base, tmp_path)
    meta = json.loads((path / "meta.json").read_text())
    for entry in meta["segments"]:
        for name in [entry["name"]] + ([entry["deletes"]["name"]] if entry["deletes"] else []):
            (path / name).rename(tmp_path / name)
            with pytest.raises(IndexCorrupt) as info:
                Index.open(path)
            assert Path(info.value.path).name == name and name in str(info.value)
            (tmp_path / name).rename(path / name)
    Index.open(path, verify=True)


def test_unknown_format_version_is_incompatible(damaged_base, tmp_path):
    path = copy_of(damaged_base, tmp_path)
    meta = json.loads((path / "meta.json").read_text())
    meta["format_version"] = 99  # as a future telusur would write it: with a valid checksum
    storage.write_meta(path, meta)
    with pytest.raises(IncompatibleIndex, match="99"):
        Index.open(path)


def test_not_an_index_is_index_not_found(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("hello")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "meta.json").write_text('{"name": "some other tool"}')
    for path in ("empty", "a-file", "missing", "other"):
        with pytest.raises(IndexNotFound):
            Index.open(tmp_path / path)


def _segment_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name.startswith("seg_"))


def test_merge_refuses_damaged_segment_and_keeps_the_commit(tmp_path):
    """Checksums run before every merge: damaged data is never merged into a new, valid-looking segment.

    The eleventh commit is durable before its merge starts (merges run in a child process after the
    commit); the merge finds the damage and ``close()`` reports it, with that commit kept and nothing
    merged. The writer's merges inside commit (``background_merges = False``, as a shard's) refuse it
    too, and that commit fails with meta.json untouched."""
    path = tmp_path / "idx"
    index = Index.create(path, passage_words=0)
    for i in range(10):  # ten small segments: the eleventh commit merges ten of them
        with index.writer() as w:
            w.add(Document(id=f"d{i}", text=f"{COMMON} rumah nomor {i}", lang="id"))
    victims = [path / e["name"] for e in json.loads((path / "meta.json").read_text())["segments"]]
    for victim in victims:
        flip(victim, array_offset(victim, "doc_data") + 2)
    before = (path / "meta.json").read_bytes()

    # inside commit: the commit fails and changes nothing
    with pytest.raises(IndexCorrupt) as info:
        with index.writer() as w:
            w.background_merges = False
            w.add(Document(id="d10", text=f"{COMMON} rumah nomor 10", lang="id"))
    assert Path(info.value.path) in victims
    assert (path / "meta.json").read_bytes() == before
    assert len(Index.open(path)) == 10
    assert _segment_files(path) == sorted(e["name"] for e in json.loads(before)["segments"]), (
        "the failed commit's new segment was not removed"
    )

    # in the background: the commit stands, the merge is refused, close() says so
    with pytest.raises(IndexCorrupt, match="nothing was merged") as info:
        with index.writer() as w:
            w.add(Document(id="d10", text=f"{COMMON} rumah nomor 10", lang="id"))
    assert Path(info.value.path) in victims
    after = json.loads((path / "meta.json").read_text())
    assert after["generation"] == json.loads(before)["generation"] + 1  # the add, and no merge commit
    names = [e["name"] for e in after["segments"]]
    assert names[:10] == [e["name"] for e in json.loads(before)["segments"]] and len(names) == 11
    assert _segment_files(path) == sorted(names), "the refused merge's output was not removed"
    assert len(Index.open(path)) == 11 and "d10" in Index.open(path).content_hashes()


def test_random_damage_never_crashes_or_misleads(damaged_base, tmp_path):
    """Hundreds of random bit flips and truncations, in a child interpreter (a segfault or hang would show)."""
    script = Path(__file__).parent / "corrupt_fuzz.py"
    trials = int(os.environ.get("TELUSUR_CORRUPTION_TRIALS", "300"))
    proc = subprocess.run(
        [sys.executable, str(script), str(damaged_base), str(tmp_path / "work"), str(trials), "8"],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\ncorruption fuzz: {summary}")
    assert summary["trials"] == trials and summary["failures"] == 0


# -- 3. concurrency ---------------------------------------------------------------------------------------


def test_second_writer_in_a_thread_is_locked_or_waits(tmp_path):
    path = tmp_path / "idx"
    index = small_index(path, n=5)
    first = index.writer()
    got: dict[str, object] = {}

    def second(key: str, timeout: float) -> None:
        started = time.monotonic()
        try:
            with Index.open(path).writer(timeout=timeout) as w:
                w.add(Document(id=f"from-{key}", text=f"{COMMON} dari thread"))
            got[key] = ("ok", time.monotonic() - started)
        except IndexLocked as e:
            got[key] = (e, time.monotonic() - started)

    t = threading.Thread(target=second, args=("now", 0.0))
    t.start()
    t.join(10)
    err, elapsed = got["now"]
    assert isinstance(err, IndexLocked)  # timeout 0: refused without waiting
    assert f"pid {os.getpid()}" in str(err) and err.holder and str(os.getpid()) in err.holder
    waiter = threading.Thread(target=second, args=("waits", 20.0))
    waiter.start()
    time.sleep(0.4)
    first.add(Document(id="from-first", text=f"{COMMON} pertama"))
    first.commit()
    first.close()
    waiter.join(20)
    status, elapsed = got["waits"]
    assert status == "ok" and elapsed >= 0.3
    index.refresh()
    assert "from-first" in index and "from-waits" in index and "from-now" not in index


def _hold_writer(path: str, conn) -> None:
    try:
        with Index.open(path).writer() as w:
            w.add(Document(id="from-child", text=f"{COMMON} anak"))
            conn.send(("holding", os.getpid()))
            conn.recv()  # wait for "release"
        conn.send(("done", None))
    finally:
        os._exit(0)


def test_second_writer_in_another_process_is_locked_or_waits(tmp_path):
    path = tmp_path / "idx"
    index = small_index(path, n=5)
    parent, child = FORK.Pipe()
    proc = FORK.Process(target=_hold_writer, args=(str(path), child))
    proc.start()
    assert parent.poll(20)
    assert parent.recv() == ("holding", proc.pid)
    with pytest.raises(IndexLocked) as info:
        index.writer()  # timeout 0: refused without waiting
    assert f"pid {proc.pid}" in str(info.value)

    threading.Timer(0.5, parent.send, args=("release",)).start()
    started = time.monotonic()
    with index.writer(timeout=30) as w:  # waits for the child's commit and takes the lock over
        assert time.monotonic() - started >= 0.3
        assert "from-child" in index  # the writer starts from the latest commit
        w.add(Document(id="from-parent", text=f"{COMMON} induk"))
    proc.join(20)
    assert "from-parent" in index and "from-child" in index


def _reader(path: str, conn) -> None:
    """Search a snapshot while the parent commits and merges; report what was seen."""
    try:
        index = Index.open(path)
        before = [(h.doc_id, h.score) for h in index.search(COMMON, k=1000)]
        texts = {h.doc_id: h.text for h in index.search(COMMON, k=1000)}
        conn.send(("ready", len(before)))
        rounds = 0
        deadline = time.monotonic() + 60
        while (not conn.poll(0.0) or rounds < 3) and time.monotonic() < deadline:
            hits = index.search(COMMON, k=1000)
            assert [(h.doc_id, h.score) for h in hits] == before, "the snapshot changed without refresh()"
            assert all(h.text == texts[h.doc_id] for h in hits)
            assert len(index) == len(before)
            rounds += 1
        conn.recv()
        # the parent's merge removed files this snapshot maps: they must still read
        assert [(h.doc_id, h.score) for h in index.search(COMMON, k=1000)] == before
        assert index.refresh()
        after = index.search(COMMON, k=1000)
        conn.send(("after", rounds, len(after), len(index)))
    except BaseException as e:
        conn.send(("error", repr(e)))
    finally:
        os._exit(0)


def test_reader_process_keeps_its_snapshot_while_a_writer_merges(tmp_path):
    path = tmp_path / "idx"
    index = Index.create(path)
    for i in range(0, 10, 2):  # five small segments: the writer's commits below merge them away
        with index.writer() as w:
            for j in (i, i + 1):
                w.add(Document(id=f"d{j}", text=f"{COMMON} rumah {j}. River pass {j}."))
    parent, child = FORK.Pipe()
    proc = FORK.Process(target=_reader, args=(str(path), child))
    proc.start()
    assert parent.poll(20)
    assert parent.recv() == ("ready", 10)
    files_before = {p.name for p in path.iterdir()}
    for i in range(9):  # nine commits of one segment each: merges, and old files removed
        with index.writer() as w:
            w.add(Document(id=f"new-{i}", text=f"{COMMON} baru {i}"))
            if i == 4:
                w.delete("d0")
    assert "seg_000001.tls" in files_before and not (path / "seg_000001.tls").exists(), "nothing was merged"
    parent.send("go")
    assert parent.poll(30)
    msg = parent.recv()
    proc.join(10)
    assert msg[0] == "after", msg
    assert msg[2] == msg[3] == 10 + 9 - 1


def test_eight_threads_search_while_a_thread_commits(tmp_path):
    """Every search sees one committed state whole: its count of COMMON and its ids belong to one commit."""
    path = tmp_path / "idx"
    index = small_index(path, n=20)
    commits = 15
    states = [frozenset(f"d{i}" for i in range(20))]
    for c in range(commits):  # commit c: five new documents with COMMON, two old ones deleted
        live = set(states[-1]) | {f"c{c}-{j}" for j in range(5)}
        live -= {sorted(states[-1])[0], sorted(states[-1])[1]}
        states.append(frozenset(live))
    by_count = {len(s): s for s in states}
    assert len(by_count) == len(states)  # the count names the commit
    done = threading.Event()
    errors: list[BaseException] = []
    seen: collections.Counter[int] = collections.Counter()

    def writer() -> None:
        try:
            for c in range(commits):
                with index.writer(buffer_tokens=40) as w:
                    for j in range(5):
                        w.add(Document(id=f"c{c}-{j}", text=f"{COMMON} kota jalan nomor {c} {j}. River pass."))
                    for doc_id in sorted(states[c])[:2]:
                        assert w.delete(doc_id)
                time.sleep(0.05)  # let the searchers run between commits as well as during them
        except BaseException as e:
            errors.append(e)
        finally:
            done.set()

    def searcher(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not done.is_set():
                hits = index.search(COMMON, k=1000)
                ids = {h.doc_id for h in hits}
                assert len(ids) in by_count, f"a search saw {len(ids)} documents: no commit had that many"
                assert ids == by_count[len(ids)]
                seen[len(ids)] += 1
                h = hits[rng.randrange(len(hits))]
                assert COMMON in h.text.lower() or COMMON in (index.get(h.doc_id) or h).text.lower()
                index.search(rng.choice(QUERIES), k=5)
                assert len(index) in by_count
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=searcher, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    w = threading.Thread(target=writer)
    w.start()
    w.join(120)
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    assert {h.doc_id for h in index.search(COMMON, k=1000)} == states[-1]
    assert len(seen) >= 2, "the searches never overlapped a commit"


def _create(path: str, barrier, conn) -> None:
    try:
        barrier.wait(10)
        try:
            Index.create(path, passage_words=25)
            conn.send("created")
        except Exception as e:  # what a losing creator sees
            conn.send(f"{type(e).__name__}: {e}")
    finally:
        os._exit(0)


def test_concurrent_creators_make_one_index_and_no_spurious_error(tmp_path):
    """Four processes create the same new index at once, twenty times: one creates it, the others are
    told it already exists (never a missing meta.json.tmp, never "not empty" for a half-made index)."""
    outcomes: collections.Counter[str] = collections.Counter()
    for round_ in range(20):
        path = tmp_path / f"idx{round_}"
        barrier = FORK.Barrier(4)
        pipes = [FORK.Pipe(duplex=False) for _ in range(4)]
        procs = [FORK.Process(target=_create, args=(str(path), barrier, w)) for _, w in pipes]
        for proc in procs:
            proc.start()
        results = sorted(r.recv() if r.poll(30) else "no answer" for r, _ in pipes)
        for proc in procs:
            proc.join(30)
        outcomes.update(results)
        assert results.count("created") == 1, results
        assert all(r == "created" or "an index already exists" in r for r in results), results
        index = Index.open(path)
        assert index.settings.passage_words == 25 and len(index) == 0
        assert sorted(p.name for p in path.iterdir()) == ["meta.json", "write.lock"]
    print(f"\nconcurrent creators: {dict(outcomes)}")


def test_two_cli_runs_creating_one_index_both_succeed(tmp_path):
    """Two `search index --wait` runs building the same new index at once both succeed: the creation is
    atomic, the loser updates what the winner built (the lock orders them), and the result is exact."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(30):
        (src / f"f{i}.txt").write_text(f"{COMMON} berkas nomor {i} {WORDS[i % len(WORDS)]}", encoding="utf-8")
    cli = Path(sys.executable).parent / "search"
    for round_ in range(3):
        path = tmp_path / f"idx{round_}"
        procs = [
            subprocess.Popen(
                [str(cli), "index", str(src), "--index", str(path), "--wait", "60"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0 and err.startswith("indexed:"), err
        index = Index.open(path, verify=True)
        assert sorted(index.content_hashes()) == sorted(f"f{i}.txt" for i in range(30))


def _hold_writer_until(path: str, conn) -> None:
    """Hold the writer until told; then replace a.txt's content, add c.txt as the sources have it, commit."""
    try:
        index = Index.open(path)
        with index.writer() as w:
            conn.send("holding")
            conn.recv()
            w.update(Document(id="a.txt", text=f"{COMMON} written by another writer"))
            w.add(Document(id="c.txt", text=f"{COMMON} c from the other writer"))
        conn.send("committed")
    finally:
        os._exit(0)


@needs_proc
def test_wait_plans_after_taking_the_lock(tmp_path):
    """`search index --wait` plans from the commit it gets the lock at, not from the one before it waited:
    another writer's change to a.txt is undone (the sources win) and its c.txt is no "already in the
    index" error."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text(f"{COMMON} a from the sources", encoding="utf-8")
    (src / "b.txt").write_text(f"{COMMON} b from the sources", encoding="utf-8")
    path = tmp_path / "idx"
    index = Index.create(path, passage_words=30)
    with index.writer() as w:
        w.add(Document(id="a.txt", text=f"{COMMON} a from the sources"))
        w.add(Document(id="old.txt", text=f"{COMMON} removed from the sources"))
    (src / "c.txt").write_text(f"{COMMON} c from the sources", encoding="utf-8")
    parent, child = FORK.Pipe()
    holder = FORK.Process(target=_hold_writer_until, args=(str(path), child))
    holder.start()
    assert parent.poll(20) and parent.recv() == "holding"
    cli = Path(sys.executable).parent / "search"
    proc = subprocess.Popen(
        [str(cli), "index", str(src), "--index", str(path), "--wait", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not crash_worker.holds_file(proc.pid, path / "write.lock") and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    time.sleep(0.2)  # it is waiting for the lock
    parent.send("go")
    assert parent.poll(20) and parent.recv() == "committed"
    holder.join(20)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err.startswith("indexed: 1 new, 2 changed, 1 removed, 0 unchanged"), err
    index = Index.open(path)
    expected = {p.name: p.read_text(encoding="utf-8") for p in src.iterdir()}
    assert {i: index.get(i).text for i in index.content_hashes()} == expected


# -- 4. disk full and read-only ------------------------------------------------------------------------


class _FullDisk(crash_worker.WrappedFile):
    """A file whose writes fail with ENOSPC after ``room`` bytes, as on a full disk."""

    def __init__(self, f, room: int) -> None:
        super().__init__(f)
        self._room = room

    def before_write(self, chunk) -> None:
        n = len(memoryview(chunk).cast("B"))
        if n > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= n


def full_disk(room: int, names: tuple[str, ...]):
    """An ``open`` that gives ``_FullDisk`` files for paths whose name contains one of ``names``."""

    def fake_open(file, mode="r", *args, **kwargs):
        f = open(file, mode, *args, **kwargs)
        if "w" in mode or "x" in mode:
            if any(n in Path(file).name for n in names):
                return _FullDisk(f, room)
        return f

    return fake_open


def snapshot_of(index: Index) -> list:
    return [(h.doc_id, h.passage, h.score) for h in index.search(COMMON, k=1000, per_document=False)]


@pytest.mark.parametrize(
    "where, module, names, room",
    [
        ("segment file, at once", segment, (".tls",), 0),
        ("segment file, half written", segment, (".tls",), 3000),
        ("deletions file", storage, (".del",), 0),
        ("meta.json", storage, ("meta.json",), 10),
    ],
    ids=["segment-at-once", "segment-half-written", "deletions", "meta-json"],
)
def test_disk_full_fails_clearly_and_keeps_the_last_commit(tmp_path, monkeypatch, where, module, names, room):
    path = tmp_path / "idx"
    index = small_index(path, n=20)
    before_meta = (path / "meta.json").read_bytes()
    before = snapshot_of(index)
    files_before = sorted(p.name for p in path.iterdir())
    monkeypatch.setattr(module, "open", full_disk(room, names), raising=False)
    w = index.writer(buffer_tokens=200)
    w.delete("d3")
    w.update(Document(id="d4", text=f"{COMMON} versi baru", lang="id"))
    for i in range(10):
        w.add(Document(id=f"n{i}", text=f"{COMMON} rumah makan besar nomor {i}. " * 3, lang="id"))
    with pytest.raises(OSError) as info:
        w.commit()
    assert info.value.errno == errno.ENOSPC
    message = str(info.value)
    assert "No space left on device" in message and str(path) in message, message
    # the previous commit stands, for this handle and a fresh one
    assert (path / "meta.json").read_bytes() == before_meta
    assert snapshot_of(index) == before
    fresh = Index.open(path, verify=True)
    assert snapshot_of(fresh) == before and len(fresh) == 20
    # with room again, the same writer's retry commits every change once
    monkeypatch.undo()
    w.commit()
    w.close()
    after = Index.open(path, verify=True)
    assert len(after) == 20 - 1 + 10 and "d3" not in after
    assert after.get("d4").text == f"{COMMON} versi baru"
    assert sorted(h.doc_id for h in after.search(COMMON, k=1000)) == sorted(
        {f"d{i}" for i in range(20)} - {"d3"} | {f"n{i}" for i in range(10)}
    )
    assert files_before  # (the failed attempt's files are removed by the commit that follows)
    named = {e["name"] for e in json.loads((path / "meta.json").read_text())["segments"]}
    assert {p.name for p in path.iterdir() if p.name.endswith(".tls")} == named


def test_disk_full_inside_a_with_block_rolls_back_and_unlocks(tmp_path, monkeypatch):
    path = tmp_path / "idx"
    index = small_index(path, n=10)
    before_meta = (path / "meta.json").read_bytes()
    monkeypatch.setattr(segment, "open", full_disk(100, (".tls",)), raising=False)
    with pytest.raises(OSError, match="No space left on device"):
        with index.writer() as w:
            w.add(Document(id="x", text=f"{COMMON} " * 50))
    monkeypatch.undo()
    assert (path / "meta.json").read_bytes() == before_meta
    assert sorted(p.name for p in path.iterdir() if p.name.startswith("seg_")) == sorted(
        e["name"] for e in json.loads(before_meta)["segments"]
    ), "the failed commit's files were left behind"
    with index.writer(timeout=0) as w:  # the lock was released
        w.add(Document(id="x", text=COMMON))
    assert len(index) == 11


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_reads_work_and_writer_fails_clearly(tmp_path):
    path = tmp_path / "idx"
    index = small_index(path, n=10)
    before = snapshot_of(index)
    path.chmod(0o555)
    try:
        reopened = Index.open(path, verify=True)
        assert snapshot_of(reopened) == before
        with pytest.raises(OSError) as info:
            with reopened.writer() as w:
                w.add(Document(id="x", text=COMMON))
        assert str(path) in str(info.value)
        assert snapshot_of(Index.open(path)) == before
    finally:
        path.chmod(0o755)


def test_read_only_file_system_writer_fails_clearly(tmp_path, monkeypatch):
    """The same as a read-only directory, simulated for root: every file creation fails with EROFS."""
    path = tmp_path / "idx"
    index = small_index(path, n=10)
    before = snapshot_of(index)
    real_open = os.open

    def ro_open(file, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", ro_open)
    with pytest.raises(OSError) as info:
        index.writer()
    assert info.value.errno == errno.EROFS and "write.lock" in str(info.value)
    assert snapshot_of(Index.open(path)) == before
    assert snapshot_of(index) == before


# -- 5. sources: unreadable folders, links, globs, compressed files -----------------------------------------


def _cli(*args: object):
    from typer.testing import CliRunner

    from cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _as_nobody(args: list[str], conn) -> None:
    """Run the CLI in this forked child as an unprivileged user (the interpreter is already loaded)."""
    try:
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
        except OSError as e:
            conn.send(("cannot drop privileges", str(e)))
            return
        result = _cli(*args)
        conn.send((result.exit_code, result.output))
    except BaseException as e:  # pragma: no cover - reported to the test
        conn.send(("crashed", repr(e)))
    finally:
        os._exit(0)


def run_unprivileged(*args: object) -> tuple[object, str]:
    """The CLI's exit code and output, run by a user that permissions apply to (root ignores them).

    The interpreter lives where that user may not read, so the child must not import anything new: a
    run of the same command on a copy first loads every module (and the language model) it needs.
    """
    parent, child = FORK.Pipe(duplex=False)
    proc = FORK.Process(target=_as_nobody, args=([str(a) for a in args], child))
    proc.start()
    assert parent.poll(120), "the unprivileged run hangs"
    code, out = parent.recv()
    proc.join(30)
    if code == "cannot drop privileges":
        pytest.skip(f"cannot run as an unprivileged user here: {out}")
    assert code != "crashed", out
    return code, out


@pytest.fixture
def open_tmp():
    """A folder every user may enter (pytest's own tmp folder is private to root)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="telusur-perm-"))
    path.chmod(0o777)
    yield path
    for p in [path, *path.rglob("*")]:
        try:
            p.chmod(0o777)
        except OSError:
            pass
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="needs POSIX permissions")
def test_unreadable_folder_or_file_is_an_error_that_changes_nothing(open_tmp):
    """`chmod 000` on a subfolder once made `search index` report its files removed (exit 0) and `--check`
    say fresh. Run as an unprivileged user: an unreadable folder or file anywhere under a source is an
    error naming it (exit 2) and the index keeps every document."""
    src, idx = open_tmp / "src", open_tmp / "idx"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text(f"{COMMON} a", encoding="utf-8")
    (src / "sub" / "b.txt").write_text(f"{COMMON} b", encoding="utf-8")
    (src / "sub" / "deeper" / "c.md").write_text(f"# C\n{COMMON} c", encoding="utf-8")
    for p in [src, *src.rglob("*")]:
        p.chmod(0o777 if p.is_dir() else 0o666)
    warm = open_tmp / "warm"
    shutil.copytree(src, warm / "src")
    for extra in ([], ["--check"], ["--glob", "*.md"]):
        _cli("index", warm / "src", "--index", warm / "idx", *extra)
    (warm / "src" / "sub").chmod(0o000)
    _cli("index", warm / "src", "--index", warm / "idx")  # the error path, too
    code, out = run_unprivileged("index", src, "--index", idx)
    assert code == 0 and "3 new" in out, out
    before = (idx / "meta.json").read_bytes()

    sub, deeper = src / "sub", src / "sub" / "deeper"
    for target, mode in ((deeper, 0o000), (sub, 0o000), (sub, 0o666), (src / "a.txt", 0o000)):
        target.chmod(mode)
        for extra in ([], ["--check"]):
            code, out = run_unprivileged("index", src, "--index", idx, *extra)
            lines = out.strip().splitlines()
            assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (target, mode, out)
            assert str(target) in out and "cannot be read" in out
        assert (idx / "meta.json").read_bytes() == before, "an unreadable source changed the index"
        target.chmod(0o777 if target.is_dir() else 0o666)
    code, out = run_unprivileged("index", src, "--index", idx, "--check")
    assert code == 0 and "fresh: 3" in out
    assert len(Index.open(idx)) == 3


def test_symlinks_are_not_followed_by_default_and_never_outside(tmp_path):
    """A link to /etc/passwd inside a source folder was indexed and served. Links inside a folder are
    skipped (with a note) unless --follow-symlinks, which follows them only inside the folder."""
    src, outside, idx = tmp_path / "src", tmp_path / "outside", tmp_path / "idx"
    (src / "docs").mkdir(parents=True)
    outside.mkdir()
    (src / "a.txt").write_text(f"{COMMON} alpha", encoding="utf-8")
    (src / "docs" / "b.txt").write_text(f"{COMMON} bravo", encoding="utf-8")
    (outside / "secret.txt").write_text("rahasia sekali", encoding="utf-8")
    (src / "secret.txt").symlink_to(outside / "secret.txt")  # a file outside
    (src / "out").symlink_to(outside, target_is_directory=True)  # a folder outside
    (src / "passwd.txt").symlink_to("/etc/passwd")
    (src / "again.txt").symlink_to(src / "a.txt")  # a file inside
    (src / "docs" / "loop").symlink_to(src, target_is_directory=True)  # a folder inside: a loop

    result = _cli("index", src, "--index", idx)
    assert result.exit_code == 0, result.output
    assert "skipped 5 symbolic links" in result.output and "--follow-symlinks" in result.output
    index = Index.open(idx)
    assert sorted(index.content_hashes()) == ["a.txt", "docs/b.txt"]
    assert index.search("rahasia") == [] and index.search("root") == []

    result = _cli("index", src, "--index", idx, "--follow-symlinks")
    assert result.exit_code == 0, result.output
    assert "skipped 3 symbolic links" in result.output  # the ones leading outside
    index = Index.open(idx)
    assert sorted(index.content_hashes()) == ["a.txt", "again.txt", "docs/b.txt"]  # the loop walked once
    assert index.search("rahasia") == [] and index.search("root") == []
    # a PATH named on the command line is the user's own choice, link or not
    assert _cli("index", src / "secret.txt", "--index", tmp_path / "idx2").exit_code == 0
    assert len(Index.open(tmp_path / "idx2")) == 1


@pytest.mark.parametrize("pattern", ["../*", "../outside/*.txt", "/etc/*", "sub/../../*", "", "C:/x"])
def test_globs_cannot_leave_the_folder(tmp_path, pattern):
    """`--glob '../*'` indexed files outside the folder and `--glob '/etc/*'` was a traceback: both are a
    clear error (exit 2) before anything is made."""
    src, idx = tmp_path / "src", tmp_path / "idx"
    src.mkdir()
    (src / "a.txt").write_text(f"{COMMON} a", encoding="utf-8")
    (tmp_path / "outside.txt").write_text("luar", encoding="utf-8")
    result = _cli("index", src, "--index", idx, "--glob", pattern)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: --glob"), result.output
    assert "Traceback" not in result.output and not idx.exists()


def test_globs_match_relative_to_the_folder(tmp_path):
    src, idx = tmp_path / "src", tmp_path / "idx"
    (src / "notes" / "old").mkdir(parents=True)
    for rel in ("a.md", "notes/b.md", "notes/old/c.md", "notes/d.txt", "e.rst"):
        (src / rel).write_text(f"{COMMON} {rel}", encoding="utf-8")
    for pattern, expected in [
        ("*.md", ["a.md", "notes/b.md", "notes/old/c.md"]),
        ("notes/*.md", ["notes/b.md"]),
        ("notes/**/*.md", ["notes/b.md", "notes/old/c.md"]),
        ("./*.rst", ["e.rst"]),
    ]:
        shutil.rmtree(idx, ignore_errors=True)
        result = _cli("index", src, "--index", idx, "--glob", pattern)
        assert result.exit_code == 0, (pattern, result.output)
        assert sorted(Index.open(idx).content_hashes()) == expected, pattern
    result = _cli("index", src, "--index", idx, "--glob", "*.pdf")
    assert result.exit_code == 2 and "no files match --glob '*.pdf'" in result.output


def test_gzip_sources_read_as_their_plain_forms(tmp_path):
    import gzip

    src, idx = tmp_path / "src", tmp_path / "idx"
    src.mkdir()
    lines = [{"id": "j1", "text": f"{COMMON} jsonl satu", "title": "Satu"}, {"id": "j2", "text": f"{COMMON} dua"}]
    (src / "docs.jsonl.gz").write_bytes(gzip.compress("\n".join(json.dumps(x) for x in lines).encode()))
    (src / "plain.txt.gz").write_bytes(gzip.compress(f"{COMMON} teks biasa".encode()))
    (src / "note.md.gz").write_bytes(gzip.compress(f"# Judul Catatan\n{COMMON} catatan".encode()))
    (src / "other.gz").write_bytes(gzip.compress(b"not a known kind"))
    result = _cli("index", src, "--index", idx)
    assert result.exit_code == 0, result.output
    index = Index.open(idx)
    assert sorted(index.content_hashes()) == ["j1", "j2", "note.md.gz", "plain.txt.gz"]
    assert index.get("note.md.gz").title == "Judul Catatan" and index.get("j1").title == "Satu"
    assert index.get("plain.txt.gz").text == f"{COMMON} teks biasa"
    (src / "broken.txt.gz").write_bytes(gzip.compress(b"abc")[:-6])
    result = _cli("index", src, "--index", idx)
    assert result.exit_code == 2 and "broken.txt.gz" in result.output and "gzip" in result.output
    assert len(Index.open(idx)) == 4
