"""``search serve --workers N`` on Linux: N server processes, each with its own listening socket on the
same port (``SO_REUSEPORT``), so the kernel spreads connections across them.

uvicorn's own ``--workers`` shares one socket among its processes, and whichever process is in ``accept``
first takes every connection that is waiting: with keep-alive clients one worker ended up with all four
connections of a load test while the other idled (2 workers served 0.70x of 1). With a socket per process
the kernel hashes each new connection to one of the sockets, as nginx's ``reuseport`` does.

The parent binds every socket before any worker starts (a port in use fails once, at start, with one
line), spawns the workers (``spawn``: no process inherits another's threads), restarts a worker that
dies, and on SIGTERM or Ctrl-C asks each to stop; a worker answers the requests in flight first.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
import time
from typing import Any

#: How long a worker may take to stop after SIGTERM before it is killed (on top of its own grace time).
STOP_MARGIN = 5.0
#: Restarts allowed within ``RESTART_WINDOW`` seconds before the server gives up (a crash loop).
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0


def supported() -> bool:
    """The kernel balances connections over ``SO_REUSEPORT`` sockets (Linux; elsewhere uvicorn's workers)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class PortUnavailable(OSError):
    """The port cannot be bound (in use, or not permitted)."""


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on ``host:port`` in one ``SO_REUSEPORT`` group (port 0: the first
    socket's port for all)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    out: list[socket.socket] = []
    try:
        # first a plain bind, without SO_REUSEPORT: it fails if anything listens there, another telusur
        # server's group included (which a reuse-port bind would silently join)
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            port = probe.getsockname()[1]
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            out.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(2048)
            sock.set_inheritable(True)
    except OSError as e:
        for sock in out:
            sock.close()
        raise PortUnavailable(e.errno, f"cannot listen on {host}:{port}: {e.strerror}") from None
    return out


def _serve_one(options: dict[str, Any], sock: socket.socket) -> None:
    """A worker process: one uvicorn server on its own socket."""
    import uvicorn

    uvicorn.Server(uvicorn.Config(**options)).run(sockets=[sock])


def run_workers(options: dict[str, Any], host: str, port: int, workers: int, grace: float) -> None:
    """Serve with ``workers`` processes until SIGTERM/SIGINT; ``options`` are ``uvicorn.Config``'s."""
    sockets = bind_sockets(host, port, workers)
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def start(i: int) -> multiprocessing.process.BaseProcess:
        proc = ctx.Process(target=_serve_one, args=(options, sockets[i]), name=f"telusur-serve-{i}", daemon=False)
        proc.start()
        return proc

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    procs = [start(i) for i in range(workers)]
    restarts: list[float] = []
    try:
        if not options.get("log_level") == "warning":
            print(f"telusur: {workers} workers on http://{host}:{sockets[0].getsockname()[1]}", file=sys.stderr)
        while not stopping:
            time.sleep(0.2)
            for i, proc in enumerate(procs):
                if proc.exitcode is None or stopping:
                    continue
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < RESTART_WINDOW] + [now]
                if len(restarts) > MAX_RESTARTS:
                    print(f"error: server workers keep failing (last exit code {proc.exitcode})", file=sys.stderr)
                    stopping = True
                    break
                print(f"telusur: worker {i} exited with {proc.exitcode}; starting a new one", file=sys.stderr)
                procs[i] = start(i)
    finally:
        for proc in procs:
            if proc.exitcode is None:
                proc.terminate()  # SIGTERM: uvicorn answers what is in flight, then exits
        deadline = time.monotonic() + grace + STOP_MARGIN
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                proc.kill()
                proc.join()
        for sock in sockets:
            sock.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
