"""A bounded HTTP load generator for the ``serve`` benchmarks: keep-alive connections, one thread each.

Run as its own process (``python -m benchmarks._serve_load``) so it can be pinned apart from the server
with ``taskset`` and its GIL never slows the process that measures. Every request is a fixed GET built
once; the cost per request on the client is a send and a parse of the status line and length.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlencode


def search_path(index: str, query: str, **params: object) -> str:
    return f"/v1/indexes/{index}/search?" + urlencode({"q": query, **params})


def run(port: int, paths: list[str], connections: int, seconds: float, max_requests: int) -> dict:
    """Send the paths round-robin over ``connections`` for ``seconds`` (or ``max_requests`` in total)."""
    counts = [0] * connections
    errors: list[str] = []
    stop = time.perf_counter() + seconds
    budget = [max_requests]
    lock = threading.Lock()

    workers: dict[int, int] = {}  # server process id -> requests its connections carried

    def attach() -> tuple[http.client.HTTPConnection, int]:
        """A keep-alive connection and the server process that accepted it (``/health`` names it)."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/health")
        return conn, int(json.loads(conn.getresponse().read())["pid"])

    def worker(n: int) -> None:
        conn, pid = attach()
        i = n
        while time.perf_counter() < stop:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            try:
                conn.request("GET", paths[i % len(paths)])
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(str(response.status))
            except (OSError, http.client.HTTPException) as e:
                errors.append(repr(e))
                conn.close()
                conn, pid = attach()
            counts[n] += 1
            with lock:
                workers[pid] = workers.get(pid, 0) + 1
            i += connections
        conn.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "requests": sum(counts),
        "seconds": elapsed,
        "qps": sum(counts) / elapsed,
        "errors": errors[:5],
        "per_worker": sorted(workers.values(), reverse=True),  # how the kernel spread the connections
    }


def main() -> None:
    port, paths_file, connections, seconds, max_requests = sys.argv[1:6]
    with open(paths_file, encoding="utf-8") as f:
        paths = json.load(f)
    print(json.dumps(run(int(port), paths, int(connections), float(seconds), int(max_requests))))


if __name__ == "__main__":
    main()
