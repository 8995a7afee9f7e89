"""Build one engine's index in this (fresh) process and print a JSON report on the last stdout line.

    python -m benchmarks._build ENGINE CORPUS SIZE OUTDIR [CORES]

SIZE is a passage count or ``full``; the index goes to ``OUTDIR/index``; the process pins itself to its
first CORES CPUs (default 1) and the engine is configured for that many (threads, workers, processes).
The corpus is loaded before the clock starts, and the peak-RSS mark is reset after loading (Linux
``clear_refs``), so ``peak_rss_mb`` is the high-water mark during the build itself (corpus in memory
included, reported as ``loaded_rss_mb``).

Engines that build in worker processes (telusur's ``add_many`` forks two) are measured as a process tree:
``peak_rss_mb`` is then this process's high-water mark plus each worker's own (``VmHWM``, read by a
sampling thread every 20 ms while the worker lives), an upper bound since forked workers share the
parent's pages until they write them; ``tree_peak_pss_mb`` is the largest sampled sum of proportional
set sizes (shared pages divided among the processes sharing them), the tree's real footprint at the
sampled instants. ``parent_peak_rss_mb`` and ``worker_peak_rss_mb`` keep the parts.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

from benchmarks.config import load_average, parse_size
from benchmarks.corpora import CORPORA, load_passages
from benchmarks.engines import ENGINES
from benchmarks.runner import dir_size, pinned


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _proc_kb(pid: int | str, name: str, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (a scan of /proc: the kernel's ``children`` file is not always there)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(pid):
            out.append(int(entry.name))
    return out


class TreeSampler(threading.Thread):
    """Samples this process and its children every ``interval`` seconds: each child's ``VmHWM`` (kept
    per pid, the last value read) and the largest sum of ``Pss`` over the tree."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.stop = threading.Event()
        self.child_hwm_kb: dict[int, int] = {}
        self.tree_pss_kb = 0
        self.samples = 0

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            self.sample(me)
            self.stop.wait(self.interval)
        self.sample(me)

    def sample(self, me: int) -> None:
        pss = _proc_kb("self", "smaps_rollup", "Pss") or 0
        for child in _children(me):
            hwm = _proc_kb(child, "status", "VmHWM")
            if hwm:
                self.child_hwm_kb[child] = max(hwm, self.child_hwm_kb.get(child, 0))
            pss += _proc_kb(child, "smaps_rollup", "Pss") or 0
        self.tree_pss_kb = max(self.tree_pss_kb, pss)
        self.samples += 1


def _reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    if len(argv) not in (4, 5) or (len(argv) == 5 and not argv[4].isdigit()):
        print(__doc__, file=sys.stderr)
        return 2
    engine_name, corpus, size_arg, outdir = argv[:4]
    cores = int(argv[4]) if len(argv) == 5 else 1
    if engine_name not in ENGINES or corpus not in CORPORA:
        print(f"engine one of {sorted(ENGINES)}, corpus one of {sorted(CORPORA)}", file=sys.stderr)
        return 2
    engine = ENGINES[engine_name]
    reason = engine.unavailable()  # also imports everything the build uses, before the clock starts
    if reason:
        print(reason, file=sys.stderr)
        return 3
    passages = load_passages(corpus, parse_size(size_arg))
    path = Path(outdir) / "index"
    gc.collect()
    loaded = _status_mb("VmRSS")
    reset = _reset_peak()
    sampler = TreeSampler()
    sampler.start()
    load = load_average()
    with pinned(cores) as cpus:
        t0 = time.perf_counter()
        docs = engine.build(passages, corpus, path, cores)
        seconds = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    parent = _status_mb("VmHWM") if reset else None
    if parent is None:  # ru_maxrss is KiB on Linux and includes the corpus loading
        parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = [kb / 1024 for kb in sampler.child_hwm_kb.values()]
    # the last samples may miss a worker's final growth; RUSAGE_CHILDREN has the largest reaped child's peak
    largest_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if workers and largest_child > max(workers):
        workers[workers.index(max(workers))] = largest_child
    report = {
        "engine": engine_name,
        "corpus": corpus,
        "size": size_arg,
        "cores": cores,
        "cpus": cpus,
        "setup": engine.setup(cores),
        "load_1m": load,
        "passages": len(passages),
        "docs": docs,
        "build_s": seconds,
        "docs_per_s": len(passages) / seconds if seconds > 0 else None,
        "loaded_rss_mb": loaded,
        "peak_rss_mb": parent + sum(workers),
        "parent_peak_rss_mb": parent,
        "worker_peak_rss_mb": workers,
        "tree_peak_pss_mb": sampler.tree_pss_kb / 1024,
        "rss_samples": sampler.samples,
        "peak_is_build_only": reset,
        "disk_mb": dir_size(path) / 2**20,
        "path": str(path),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
