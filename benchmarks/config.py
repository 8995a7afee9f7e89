"""Benchmark configuration from the environment: data folder, smoke mode, sizes, cores, rounds.

Every suite and the build subprocess read their knobs here, so one variable means the same thing in
every group (see the table in ``benchmarks/README.md``).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMOKE_PASSAGES = 300
SMOKE_QUERIES = 5
SEED = 20240607


def data_dir() -> Path:
    """The shared data folder: ``$TELUSUR_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("TELUSUR_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


_smoke_flag = False


def set_smoke(on: bool) -> None:
    """Called by conftest when pytest runs with ``--benchmark-disable``."""
    global _smoke_flag
    _smoke_flag = on


def smoke() -> bool:
    """Smoke mode (``BENCH_SMOKE=1`` or ``--benchmark-disable``): ~300 passages, one size, seconds."""
    return _smoke_flag or os.environ.get("BENCH_SMOKE", "") not in ("", "0")


def sizes() -> list[int | None]:
    """Corpus sizes in passages from ``BENCH_SIZES`` (default ``10000,50000,full``); None means full."""
    if smoke():
        return [SMOKE_PASSAGES]
    out: list[int | None] = []
    for item in os.environ.get("BENCH_SIZES", "10000,50000,full").split(","):
        item = item.strip().lower()
        if not item:
            continue
        if item == "full":
            out.append(None)
        elif item.isdigit() and int(item) > 0:
            out.append(int(item))
        else:
            raise ValueError(f"BENCH_SIZES item {item!r} is neither a positive integer nor 'full'")
    return out


def size_label(size: int | None) -> str:
    return "full" if size is None else str(size)


def parse_size(label: str) -> int | None:
    return None if label == "full" else int(label)


def available_cores() -> list[int]:
    """The CPUs this process may run on (its affinity set), in order."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: no affinity, count only
        return list(range(os.cpu_count() or 1))


def core_counts() -> list[int]:
    """How many cores each build comparison gets (``BENCH_CORES``, default ``1,2``), capped at what the
    machine has; every engine of one comparison is pinned to the same first N cores."""
    have = len(available_cores())
    out: list[int] = []
    for item in os.environ.get("BENCH_CORES", "1,2").split(","):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit() or int(item) < 1:
            raise ValueError(f"BENCH_CORES item {item!r} is not a positive integer")
        n = min(int(item), have)
        if n not in out:
            out.append(n)
    return out


def queries_per_shape() -> int:
    """How many distinct queries per shape (``BENCH_QUERIES``, default 100; 5 in smoke mode)."""
    return SMOKE_QUERIES if smoke() else int(os.environ.get("BENCH_QUERIES", "100"))


def rounds_for(n_docs: int, small: int = 3) -> int:
    """Rounds for one-shot work (a build, an update): ``small`` up to 10k passages, one above."""
    if smoke():
        return 1
    return small if n_docs <= 10_000 else 1


def load_average() -> float | None:
    """The 1-minute load average (what ``uptime`` shows first), recorded beside every timing."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None
