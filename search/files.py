"""Opening an index's files safely: regular files only, sizes checked before a byte is read.

Every reader of an index file goes through here, so a file replaced by a FIFO (which would block the
reader forever), a link to ``/dev/zero`` (which never ends) or a file larger than its commit recorded is
refused with ``IndexCorrupt`` naming it, before reading. A file the process may not read is a
``PermissionError`` saying so: it is not damage, and rebuilding would not help.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import IndexCorrupt

# meta.json holds one small entry per segment: 64 MiB is hundreds of thousands of segments.
MAX_META_BYTES = 64 << 20


def open_checked(path: Path, what: str, *, size: int | None = None, limit: int | None = None) -> BinaryIO:
    """``path`` opened for binary reading once it is known to be a regular file of the right size.

    ``what`` names the file in messages ("segment file seg_1.seg"); ``size`` is the byte count the commit
    recorded (any other size is damage); ``limit`` caps a file whose size no commit records. A missing
    file raises ``FileNotFoundError`` (callers say what a missing file means).
    """
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it has no effect on regular files
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except PermissionError as e:
        message = f"{what} cannot be read: permission denied (the file is not damaged; fix its permissions)"
        raise PermissionError(e.errno, message, str(path)) from None
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise FileNotFoundError(e.errno, f"{what} is missing", str(path)) from None
        if e.errno == errno.ELOOP:
            raise IndexCorrupt(f"{what} is a symbolic link loop, not an index file", str(path)) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IndexCorrupt(
                f"{what} is not a regular file ({describe_kind(st.st_mode)}); refusing to read it", str(path)
            )
        if size is not None and st.st_size != size:
            raise IndexCorrupt(f"{what} has {st.st_size} bytes; the commit recorded {size}", str(path))
        if limit is not None and st.st_size > limit:
            raise IndexCorrupt(f"{what} has {st.st_size} bytes, more than the limit of {limit}", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_checked(path: Path, what: str, *, size: int | None = None, limit: int | None = None) -> bytes:
    """The whole of ``path`` (see ``open_checked``), reading no more than its checked size."""
    with open_checked(path, what, size=size, limit=limit) as f:
        expected = os.fstat(f.fileno()).st_size
        data = f.read(expected + 1)  # one byte more tells a file that grew while being read
    if len(data) != expected:
        raise IndexCorrupt(f"{what} changed size while being read ({expected} -> {len(data)}+ bytes)", str(path))
    return data


def describe_kind(mode: int) -> str:
    """What a file that is not regular is, for messages: "a FIFO", "a directory", ..."""
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"
