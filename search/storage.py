"""The index directory: ``meta.json`` (the commit point, replaced atomically), deletions files, the
removal of files no commit names, the write lock.

A commit is visible once ``meta.json`` names it: new files are written and fsynced first, then
``meta.json.tmp`` is written, fsynced and renamed over ``meta.json``, then the directory is fsynced.
A crash at any moment leaves either the old or the new commit; files no commit names are removed later.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import stat
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IncompatibleIndex, IndexCorrupt, IndexLocked, IndexNotFound
from .files import MAX_META_BYTES, describe_kind, read_checked

META = "meta.json"
LOCK = "write.lock"
MAX_LOCK_BYTES = 4096  # the lock file names its holder: "pid N on HOST"
FORMAT = "telusur-index"
#: 2: compressed postings, block bounds, surface words, compressed stored fields; 3: stored fields in
#: zstd; 4: the postings of terms in more than ``codec.BIG_DF`` passages as zstd frames of byte planes;
#: 5: stored fields in 4 KB blocks compressed with the segment's own zstd dictionary
FORMAT_VERSION = 5
#: older formats this code reads and writes as they are: a version 2, 3 or 4 index is searched as it is,
#: and its first commit makes it version 5 (its new segments hold the current layout)
COMPATIBLE_VERSIONS = (4, 3, 2)
OLD_VERSIONS = (1,)  # formats `search export` still reads, so their documents can be rebuilt


def _canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


#: errnos meaning "this file system cannot fsync a directory": nothing to make durable there, not a failure
_NO_DIR_FSYNC = {errno.EINVAL, errno.EBADF, getattr(errno, "ENOTSUP", 0), getattr(errno, "EOPNOTSUPP", 0)} - {0}


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it is durable.

    Where directories cannot be opened (Windows) or the file system does not fsync them (EINVAL and
    kin) there is nothing to do; any other error (EIO, ...) propagates: the rename may not survive a
    crash, and the caller must not report the commit as durable."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in _NO_DIR_FSYNC:
            raise
    finally:
        os.close(fd)


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    """Atomically replace ``meta.json`` with ``meta`` plus its own checksum: write, fsync, rename, fsync dir."""
    write_checksummed_json(directory, META, meta, f"{META} of the index at {directory}")


def write_checksummed_json(directory: Path, name: str, obj: dict[str, Any], what: str) -> None:
    """Atomically replace ``directory/name`` with ``obj`` plus its own checksum (a commit point such as
    ``meta.json`` or a sharded index's ``shards.json``): write ``name.tmp``, fsync, rename, fsync dir.
    ``what`` names the file in the ``OSError`` raised when it cannot be written."""
    body = dict(obj)
    body.pop("checksum", None)
    body["checksum"] = hashlib.blake2b(_canonical(body), digest_size=16).hexdigest()
    data = json.dumps(body, sort_keys=True, indent=1, ensure_ascii=False).encode("utf-8") + b"\n"
    tmp = directory / (name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / name)
    except OSError as e:  # disk full, read-only...: the old file still stands
        try:
            tmp.unlink()
        except OSError:
            pass
        reason = e.strerror or str(e)
        raise OSError(e.errno, f"cannot write {what}: {reason} (the last commit is intact)", str(tmp)) from e
    fsync_dir(directory)


def rebuild_command(directory: Path, meta: dict[str, Any]) -> str:
    """The shell commands that rebuild an index of an older format from its own stored documents."""
    settings = meta.get("settings")
    words = settings.get("passage_words") if isinstance(settings, dict) else None
    option = f" --passage-words {words}" if isinstance(words, int) and not isinstance(words, bool) else ""
    return (
        f"rebuild it: search export --index {directory} > docs.jsonl"
        f" && search index docs.jsonl --index NEW_FOLDER{option}"
    )


def read_meta(directory: Path, versions: tuple[int, ...] = ()) -> dict[str, Any]:
    """Read and check ``meta.json``: precise errors for a missing, damaged or too-new index.

    ``versions`` are older format versions the caller can read too (export reads version 1)."""
    directory = Path(directory)
    if not directory.exists():
        raise IndexNotFound(f"no index at {directory}: the path does not exist")
    if not directory.is_dir():
        raise IndexNotFound(f"no index at {directory}: it is a file, not an index directory")
    path = directory / META
    try:
        raw = read_checked(path, f"{META} of {directory}", limit=MAX_META_BYTES)
    except FileNotFoundError:
        check_no_orphans(directory)
        raise IndexNotFound(f"no index at {directory}: {META} is missing (not a telusur index)") from None
    try:
        meta = json.loads(raw.decode("utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError) as e:
        raise IndexCorrupt(f"{META} of {directory} is damaged: {e}", str(path)) from None
    except RecursionError:
        raise IndexCorrupt(f"{META} of {directory} is damaged: JSON nested too deep", str(path)) from None
    # The checksum first: a flipped byte in "format" or "format_version" is damage, not another format.
    # Only a file with no checksum at all may be someone else's meta.json.
    body = dict(meta)
    stored = body.pop("checksum", None)
    if stored is not None and stored != hashlib.blake2b(_canonical(body), digest_size=16).hexdigest():
        raise IndexCorrupt(f"{META} of {directory} fails its checksum (damaged)", str(path))
    if meta.get("format") != FORMAT:
        raise IndexNotFound(f"no index at {directory}: {META} is not a telusur index file")
    version = meta.get("format_version")
    readable = (FORMAT_VERSION, *COMPATIBLE_VERSIONS, *versions)
    if not (isinstance(version, int) and not isinstance(version, bool) and version in readable):
        how = rebuild_command(directory, meta) if version in OLD_VERSIONS else "rebuild the index with this version"
        raise IncompatibleIndex(
            f"index at {directory} has format version {version!r}; this telusur reads versions"
            f" {(FORMAT_VERSION, *COMPATIBLE_VERSIONS)}"
            f" ({how})"
        )
    if stored is None:
        raise IndexCorrupt(f"{META} of {directory} has no checksum (damaged)", str(path))
    return meta


def check_no_orphans(directory: Path) -> None:
    """``IndexCorrupt`` when ``directory`` has segment or deletions files but no ``meta.json``.

    Segments without their commit point are a damaged index, not "no index": one message says so,
    whether the folder is read, checked or built into.
    """
    names = sorted(p.name for p in Path(directory).glob("seg_*") if p.name.endswith((".tls", ".del")))
    if names and not (Path(directory) / META).exists():
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise IndexCorrupt(
            f"{META} is missing from {directory}, which holds index files ({shown}): the index is damaged",
            str(Path(directory) / META),
        )


def write_error(directory: Path, path: Path, e: OSError) -> OSError:
    """``e`` with a message naming the file and saying the last commit stands (errno kept: ENOSPC...)."""
    reason = e.strerror or str(e)
    return OSError(
        e.errno,
        f"cannot write {path.name} to the index at {directory}: {reason} (the last commit is intact)",
        str(path),
    )


def write_deletions(directory: Path, name: str, deleted: np.ndarray) -> dict[str, Any]:
    """Write a segment's deleted local document numbers as ``name`` (fsynced); return its ``meta.json``
    entry (name, size, count, checksum)."""
    raw = np.asarray(deleted).astype("<u4").tobytes()
    path = directory / name
    try:
        with open(path, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise write_error(directory, path, e) from e
    return {
        "name": name,
        "size": len(raw),
        "count": int(np.asarray(deleted).size),
        "checksum": hashlib.blake2b(raw, digest_size=16).hexdigest(),
    }


def verify_deletions(directory: Path, entries: list[dict], seen: dict[str, np.ndarray]) -> None:
    """Check every deletions file ``entries`` name against its checksum (and against ``seen``, what a
    reader loaded from it), before a writer relies on them.

    A writer carries deletions forward: a commit that deletes more of a segment writes the old set plus
    the new into a new file with a fresh checksum, and a merge drops the deleted documents for good. A
    damaged file read as it is would be laundered into a valid commit (a deleted document back, a live
    one gone), so a mismatch is ``IndexCorrupt`` naming the file. The files are small (4 bytes per
    deleted document), so they are all checked when a writer opens.
    """
    for e in entries:
        dels = e.get("deletes")
        if not dels:
            continue
        path = directory / dels["name"]
        try:
            raw = read_checked(path, f"deletions file {dels['name']}", size=dels["size"])
        except FileNotFoundError:
            raise IndexCorrupt(f"deletions file {dels['name']} is missing", str(path)) from None
        if hashlib.blake2b(raw, digest_size=16).hexdigest() != dels["checksum"]:
            raise IndexCorrupt(
                f"deletions file {dels['name']} fails its checksum (damaged); nothing was written", str(path)
            )
        old = seen.get(e["name"])
        if old is not None and not np.array_equal(old, np.frombuffer(raw, dtype="<u4")):
            raise IndexCorrupt(f"deletions file {dels['name']} changed after it was read", str(path))


def remove_unreferenced(
    directory: Path, meta: dict[str, Any], retain: set[str] = frozenset(), keep_prefixes: tuple[str, ...] = ()
) -> set[str]:
    """Remove the segment and deletions files (and a stray ``meta.json.tmp``) that ``meta`` does not name
    and ``retain`` does not keep, nor start with one of ``keep_prefixes`` (a merge in progress): what a
    failed or killed writer, or a merge, left behind. Returns the names kept."""
    keep = {META, LOCK} | set(retain)
    for e in meta["segments"]:
        keep.add(e["name"])
        if e.get("deletes"):
            keep.add(e["deletes"]["name"])
    for path in directory.iterdir():
        if path.name in keep or (keep_prefixes and path.name.startswith(keep_prefixes)):
            continue
        if path.name.startswith("seg_") or path.name == META + ".tmp":
            try:
                path.unlink()
            except OSError:
                pass  # still open elsewhere (Windows): removed by a later commit
    return keep


class WriteLock:
    """The one-writer lock: an OS file lock (``flock``) on ``write.lock``, released when the process dies.

    Because the OS drops the lock with its holder, a lock left by a killed writer is taken over safely;
    the file's text (pid and host) only names the holder in the error message. A ``flock`` belongs to the
    open file, which a forked child shares: children close their copy at once (``_forget_in_child``), so
    a child that outlives its parent never keeps the index locked, and never unlocks it for the parent.
    """

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK
        self._fd: int | None = None
        _locks.add(self)

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; ``IndexLocked`` names the holder otherwise."""
        try:
            # O_NOFOLLOW: truncating the lock file must never truncate what a link points to
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            if not os.access(self.path.parent, os.W_OK):  # the lock file may exist in a read-only directory
                os.close(fd)
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self.path.parent))
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise IndexCorrupt(f"{LOCK} is a symbolic link, not a lock file; remove it", str(self.path)) from None
            reason = e.strerror or str(e)
            raise OSError(
                e.errno,
                f"cannot open a writer on the index at {self.path.parent}: {reason} (reading still works)",
                str(self.path),
            ) from e
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # a FIFO or a device: locking and truncating it mean nothing
            os.close(fd)
            raise IndexCorrupt(f"{LOCK} is {describe_kind(mode)}, not a lock file; remove it", str(self.path))
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                _lock_fd(fd)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    holder = self.holder()
                    os.close(fd)
                    who = f" by {holder}" if holder else ""
                    raise IndexLocked(
                        f"index at {self.path.parent} is locked{who}: another writer is open"
                        " (wait for it to finish, or pass a timeout)",
                        holder,
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd

    def holder(self) -> str | None:
        """Who holds the lock, as its file says (best effort: ``None`` when it cannot be told).

        Read through ``files.read_checked`` like every index file: a lock file replaced by a FIFO or a
        link to ``/dev/zero`` names no holder instead of hanging or filling memory.
        """
        try:
            data = read_checked(self.path, LOCK, limit=MAX_LOCK_BYTES)
        except (OSError, IndexCorrupt):
            return None
        return data.decode("utf-8", errors="replace").strip() or None

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            _unlock_fd(self._fd)
            os.close(self._fd)
            self._fd = None


_locks: weakref.WeakSet[WriteLock] = weakref.WeakSet()


def _forget_in_child() -> None:
    """After a fork, in the child: close the copies of the lock descriptors without unlocking (the lock
    belongs to the shared open file; ``flock(LOCK_UN)`` here would release the parent's lock)."""
    for lock in list(_locks):
        fd, lock._fd = lock._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


try:
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # Windows
    import msvcrt

    def _lock_fd(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]

    def _unlock_fd(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
