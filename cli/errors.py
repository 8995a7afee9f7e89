"""The command line's one error boundary, without typer: an exception in, an exit code and one line out.

Exit codes: 2 a user's mistake (usage, a missing or unreadable source, a bad query, not an index, a
locked index...), 3 a damaged index, 4 a failure of the environment (a full disk, an I/O error, a worker
that died) or of telusur itself (a bug), 128 + N for signal N. ``cli.app`` (typer) and ``cli.main`` (the
fast ``search query``) both map errors here, so a message cannot depend on which path ran.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import traceback

from search import (
    IndexCorrupt,
    IndexLocked,
    IndexNotFound,
    InvalidDocument,
    QuerySyntaxError,
    SearchError,
    WorkerFailed,
)
from search.storage import LOCK

from .sources import SourceError

EXIT_STALE, EXIT_USAGE, EXIT_CORRUPT, EXIT_FAILURE = 1, 2, 3, 4


class UsageMistake(Exception):
    """A mistake on the command line that a command finds itself (an unknown ``--lang``): exit 2."""


def _is_users_os_error(e: OSError) -> bool:
    """A path the user cannot use (permissions, a read-only disk) rather than a failing machine."""
    return isinstance(e, PermissionError) or e.errno in (errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG)


def describe(e: BaseException, debug: bool = False) -> tuple[int, str]:
    """The exit code and the one-line message (without ``error: ``) for ``e``; with ``debug`` the traceback
    of a failure (exit 4) is printed on stderr first. An empty message means: print nothing."""
    if isinstance(e, BrokenPipeError):
        return _broken_pipe(), ""
    code, message = _classify(e)
    if code == EXIT_FAILURE:
        if debug:
            traceback.print_exception(e)
            print(getattr(e, "worker_traceback", ""), end="", file=sys.stderr)  # where a worker failed
        else:
            message += "; rerun with --debug for the traceback"
    return code, message


def _broken_pipe() -> int:
    """stdout's reader went away (``search query ... | head``): not a failure, so no message. stdout is
    pointed at /dev/null so the flush at exit cannot fail again, and the exit code is the one a tool
    killed by SIGPIPE has (128 + 13), which shells treat as a quiet end of a pipeline."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    return 128 + signal.SIGPIPE


def _classify(e: BaseException) -> tuple[int, str]:
    if isinstance(e, UsageMistake):
        return EXIT_USAGE, str(e)
    if isinstance(e, IndexCorrupt):
        if e.path and os.path.basename(e.path) == LOCK:  # the lock file's own message says what to do
            return EXIT_CORRUPT, str(e)
        return EXIT_CORRUPT, f"{e} (rebuild the index, or restore it from a copy)"
    if isinstance(e, IndexLocked):
        return EXIT_USAGE, f"{e}; here: retry with --wait SECONDS"
    if isinstance(e, IndexNotFound):
        return EXIT_USAGE, f"{e} (build one with: search index FILES --index PATH)"
    if isinstance(e, QuerySyntaxError):
        return EXIT_USAGE, f"cannot read the query: {e} (see: search query --help)"
    if isinstance(e, (InvalidDocument, SourceError)):
        return EXIT_USAGE, f"{e} (nothing was changed)"
    if isinstance(e, WorkerFailed):
        return EXIT_FAILURE, str(e).splitlines()[0]
    if isinstance(e, SearchError):  # IncompatibleIndex, InvalidArgument, DocumentNotFound, a bad dataset...
        return EXIT_USAGE, str(e)
    if isinstance(e, OSError):
        message = f"{e.filename or ''}: {e.strerror or e}".strip(": ") if e.strerror else str(e)
        return (EXIT_USAGE if _is_users_os_error(e) else EXIT_FAILURE), message
    if isinstance(e, KeyboardInterrupt):
        signum = getattr(e, "signum", signal.SIGINT)
        return 128 + signum, f"interrupted by {signal.Signals(signum).name}; the index keeps its last commit"
    return EXIT_FAILURE, f"telusur failed: {type(e).__name__}: {e} (a bug; please report it)"
