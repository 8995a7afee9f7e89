"""The server's threads share one malloc arena (``search/malloc.py``): counted with glibc's own
``malloc_info`` in a fresh process whose threads allocate, against the same process without the call."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_THREADS = """
import ctypes, re, sys, tempfile, threading
if sys.argv[1] == "share":
    from search.malloc import share_malloc_arena
    assert share_malloc_arena()
def work(ready, go):
    kept = [bytearray(4096) for _ in range(200)]  # past pymalloc: glibc's malloc in this thread
    ready.release()
    go.acquire()
ready, go = threading.Semaphore(0), threading.Semaphore(0)
threads = [threading.Thread(target=work, args=(ready, go)) for _ in range(4)]
for t in threads:
    t.start()
for _ in threads:
    ready.acquire()  # every thread has allocated and is still alive
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
path = tempfile.mktemp()
fp = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, fp)
libc.fclose(fp)
for _ in threads:
    go.release()
print(len(re.findall(r'<heap nr="', open(path).read())))
"""


def _arenas(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _THREADS, mode], cwd=REPO, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's"
)
def test_server_threads_share_one_malloc_arena() -> None:
    assert _arenas("default") > 1  # the control: glibc gives new threads arenas of their own
    assert _arenas("share") == 1


def test_share_malloc_arena_is_called_before_the_app_starts_threads(monkeypatch) -> None:
    from cli.serve import app as serve_app

    calls: list[str] = []
    monkeypatch.setattr(serve_app, "share_malloc_arena", lambda: calls.append("arena") or True)
    monkeypatch.setattr(serve_app, "create_app", lambda config: calls.append("app") or object())
    monkeypatch.setattr(serve_app.ServeConfig, "from_json", staticmethod(lambda text: text))
    monkeypatch.setenv(serve_app.CONFIG_ENV, "{}")
    monkeypatch.setattr(serve_app.gc, "freeze", lambda: None)
    serve_app.app_from_environment()
    assert calls == ["arena", "app"]
