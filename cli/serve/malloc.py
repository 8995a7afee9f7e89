"""The C allocator's settings for a server process: one malloc arena for every thread.

glibc gives each new thread its own arena (up to 8 per core). A search allocates in whichever thread the
event loop's executor picks, and cache entries made in one thread are freed by another, so each arena
keeps its own free holes and the process's heap grows for hours while every bounded cache stays at its
budget: 200,000 queries over HTTP grew RssAnon by 30% with caches full, and the same searches from two
threads in one process grew it 14% in 25,000 queries where one thread stayed flat (+0.5%). Searches
run mostly under the GIL, so sharing one arena costs them little. Measured in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_ARENA_MAX = -8  # glibc's malloc.h


def share_malloc_arena() -> bool:
    """Make threads created from now on allocate in the existing arena (``mallopt(M_ARENA_MAX, 1)``),
    as ``MALLOC_ARENA_MAX=1`` would at process start. Call it before starting threads. True when set;
    False where the C library is not glibc (musl, macOS), which leaves the allocator as it is."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(1)))
    except (OSError, AttributeError):
        return False
