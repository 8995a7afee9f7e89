"""Build one engine's index in this (fresh) process and print a JSON report on the last stdout line.

    python -m benchmarks._build ENGINE CORPUS SIZE OUTDIR

SIZE is a passage count or ``full``; the index goes to ``OUTDIR/index``. The corpus is loaded before the
clock starts, and the peak-RSS mark is reset after loading (Linux ``clear_refs``), so ``peak_rss_mb`` is
the high-water mark during the build itself (corpus in memory included, reported as ``loaded_rss_mb``).
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from pathlib import Path

from benchmarks._common import CORPORA, ENGINES, dir_size, load_passages, parse_size


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    engine_name, corpus, size_arg, outdir = argv
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
    t0 = time.perf_counter()
    docs = engine.build(passages, corpus, path)
    seconds = time.perf_counter() - t0
    peak = _status_mb("VmHWM") if reset else None
    if peak is None:  # ru_maxrss is KiB on Linux and includes the corpus loading
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "engine": engine_name,
        "corpus": corpus,
        "size": size_arg,
        "passages": len(passages),
        "docs": docs,
        "build_s": seconds,
        "docs_per_s": len(passages) / seconds if seconds > 0 else None,
        "loaded_rss_mb": loaded,
        "peak_rss_mb": peak,
        "peak_is_build_only": reset,
        "disk_mb": dir_size(path) / 2**20,
        "path": str(path),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
