"""glibc's malloc knobs where they matter: one arena for a server's threads, big arrays mapped in a flush.

Both are no-ops where the C library is not glibc (musl, macOS), which leaves the allocator as it is.

* ``share_malloc_arena``: glibc gives each new thread its own arena (up to 8 per core). A server runs
  searches in whichever thread its executor picks, and cache entries made in one thread are freed by
  another, so each arena keeps its own free holes and the heap grows for hours while every bounded
  cache stays at its budget: 200,000 queries over HTTP grew RssAnon by 30% with caches full; the same
  searches from two threads in one process grew it 14% in 25,000 where one thread stayed flat (+0.5%).
  Searches run mostly under the GIL, so sharing one arena costs them little.
* ``large_arrays_mapped``: glibc serves a large allocation with its own ``mmap`` (given back at free)
  only above a threshold that rises to the size of the largest mapping freed so far (up to 32 MiB).
  A flush frees its big slot arrays first, so its later temporaries (a few MiB each) came from the heap
  and stayed there as holes: a 50 MB document's flush grew the process by 101 MB inside the postings
  step and by 15 MB with a fixed threshold. A flush that holds such a document sets it to 128 KiB
  and, after, to the ceiling the rising rule reaches anyway, so searches keep their arrays on the heap
  as before (``flush_arrays``). Other flushes keep the heap: each big array mapped anew costs a page
  fault and a zeroed page for every 4 KiB it touches, a tenth of a 50,000-passage build's CPU, and
  mapping lowered no peak there (50k and 175k passages on two workers: the same tree PSS).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import platform
from collections.abc import Iterator
from typing import Any

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
M_ARENA_MAX = -8
MAPPED_FROM = 128 << 10  # glibc's own starting threshold
HEAP_UP_TO = 32 << 20  # the ceiling of glibc's rising threshold on 64-bit systems


@functools.lru_cache(maxsize=1)
def _glibc() -> Any:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None


def share_malloc_arena() -> bool:
    """Make threads created from now on allocate in the existing arena (``mallopt(M_ARENA_MAX, 1)``),
    as ``MALLOC_ARENA_MAX=1`` would at process start. Call it before starting threads. True when set."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, 1))


@contextlib.contextmanager
def large_arrays_mapped() -> Iterator[None]:
    """Inside: every allocation of ``MAPPED_FROM`` bytes or more is its own mapping, returned to the
    system when freed (a flush's temporaries leave no holes in the heap). After: a fixed threshold of
    ``HEAP_UP_TO``, where glibc's rising rule would have taken it."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, MAPPED_FROM)
    try:
        yield
    finally:
        if libc is not None:
            libc.mallopt(M_MMAP_THRESHOLD, HEAP_UP_TO)


#: A flush holding a document of at least this many characters maps its big arrays (see the module's
#: docstring); smaller documents' flushes reuse the heap.
HUGE_DOCUMENT_CHARS = 8 << 20


def flush_arrays(largest_document_chars: int) -> contextlib.AbstractContextManager[None]:
    """The allocation mode of a flush whose largest document has ``largest_document_chars`` characters:
    ``large_arrays_mapped`` for a huge one, the heap as it is otherwise."""
    if largest_document_chars >= HUGE_DOCUMENT_CHARS:
        return large_arrays_mapped()
    return contextlib.nullcontext()
