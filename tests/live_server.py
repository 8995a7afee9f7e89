"""A real ``search serve`` process on a free loopback port, for tests that need HTTP, signals or workers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, proc: subprocess.Popen, port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def live_server(
    log_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    start_timeout: float = 120.0,
    prefix: list[str] | None = None,
) -> Iterator[LiveServer]:
    """Start ``search serve --port P ARGS...`` (after ``prefix``, e.g. ``taskset -c 0``); yield once
    ``/health`` answers 200; stop it afterwards."""
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    cmd = [
        *(prefix or []),
        sys.executable,
        "-c",
        "from cli.app import main; main()",
        "serve",
        "--port",
        str(port),
        *args,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = LiveServer(proc, port, log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"search serve exited with {proc.returncode}:\n{server.log_text()}")
            try:
                if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"search serve did not become healthy:\n{server.log_text()}")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
