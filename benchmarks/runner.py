"""Running the cases: pinning to N cores, the build subprocess, timing helpers, pytest cases and the
session's ``Lab`` of built and opened indexes shared by the groups."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.analysis import ANALYSES, term_count
from benchmarks.config import (
    REPO,
    available_cores,
    core_counts,
    data_dir,
    queries_per_shape,
    size_label,
    sizes,
)
from benchmarks.corpora import CORPORA, Passage, load_passages, missing_data_reason
from benchmarks.engines import ENGINES, Opened
from benchmarks.queries import Query, make_queries

# -- cores ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def pinned(cores: int) -> Iterator[list[int]]:
    """Run the block on the first ``cores`` CPUs of this process's affinity set (Linux; elsewhere a
    no-op). Threads and processes started inside inherit it, so an engine's worker threads or processes
    share exactly those cores; the previous set is restored after."""
    if not hasattr(os, "sched_setaffinity"):
        yield available_cores()[:cores]
        return
    before = os.sched_getaffinity(0)
    chosen = available_cores()[:cores]
    os.sched_setaffinity(0, chosen)
    try:
        yield chosen
    finally:
        os.sched_setaffinity(0, before)


def default_cores(engine: str) -> int:
    """The cores an engine's shared index (searched by the other groups) is built with: the most of the
    configured counts it can use."""
    return max(engine_core_counts(engine))


def engine_core_counts(engine: str) -> list[int]:
    """The configured core counts an engine is built at: each count it can use, and its own maximum in
    place of bigger ones (a one-core engine is built on one core whatever the comparison)."""
    return sorted({min(c, ENGINES[engine].max_cores) for c in core_counts()})


# -- the build subprocess ------------------------------------------------------------------------------


def dir_size(path: Path) -> int:
    """Bytes of all files under ``path`` (0 when it does not exist)."""
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_build(engine: str, corpus: str, size: int | None, outdir: Path, cores: int) -> dict[str, Any]:
    """Build in a fresh interpreter (``python -m benchmarks._build``) pinned to ``cores`` CPUs, so peak
    RSS is the engine's own; the index lands in ``outdir/index``. Returns the subprocess's JSON report."""
    outdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("TELUSUR_DATA", str(data_dir()))
    cmd = [sys.executable, "-m", "benchmarks._build", engine, corpus, size_label(size), str(outdir), str(cores)]
    # BENCH_BUILD_NICE: the build runs at that niceness, for runs that build only to time queries or
    # opening (on a shared machine the untimed builds then yield to others; never for the index group)
    niceness = int(os.environ.get("BENCH_BUILD_NICE", "0") or 0)
    preexec = (lambda: os.nice(niceness)) if niceness > 0 else None
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False, preexec_fn=preexec
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"build subprocess failed ({' '.join(cmd[2:])}), exit {proc.returncode}:\n{tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- timing helpers ------------------------------------------------------------------------------------


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 and mean of latencies, in milliseconds (nearest-rank on the sorted samples)."""
    if not seconds:
        return {}
    s = sorted(seconds)

    def rank(q: float) -> float:
        return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))] * 1000

    return {
        "p50_ms": rank(0.50),
        "p95_ms": rank(0.95),
        "p99_ms": rank(0.99),
        "mean_ms": statistics.fmean(s) * 1000,
        "samples": len(s),
    }


def paired_shape(times: dict[str, list[float]], first: str, second: str) -> dict[str, Any]:
    """A by-hand A/B's figures for one query shape: each side's p50 and the median of the paired
    differences (``second`` minus ``first``, query by query), in microseconds."""
    pairs = [(y - x) * 1e6 for x, y in zip(times[first], times[second])]
    return {
        "queries": len(times[first]),
        "p50_us": {side: round(statistics.median(v) * 1e6, 1) for side, v in times.items()},
        "paired_difference_p50_us": round(statistics.median(pairs), 1),
    }


def write_report(report: dict[str, Any], out: Path | None) -> None:
    """A by-hand A/B's report with the load it ran at: printed as one JSON line, and written to ``out``."""
    report["load_1m"] = os.getloadavg()[0]
    print(json.dumps(report))
    if out:
        out.write_text(json.dumps(report, indent=1))


class Recorder:
    """Wraps a call so each benchmark round's own duration and result are kept (for percentiles and for
    asserting on what the benchmarked call returned)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.seconds: list[float] = []
        self.results: list[Any] = []
        self.load: float | None = None  # the 1-minute load average when the case started

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = self.fn(*args, **kwargs)
        self.seconds.append(time.perf_counter() - t0)
        self.results.append(out)
        return out

    def drop(self, n: int) -> None:
        """Forget the first ``n`` rounds (the warm-up)."""
        del self.seconds[:n], self.results[:n]


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    return path


# -- cases ---------------------------------------------------------------------------------------------


def engine_cases(kind: str, *, with_shapes: bool = False) -> list[Any]:
    """pytest params for a group: ``build`` (engine, corpus, size, cores: every configured core count
    the engine can use), ``search`` (with shapes), ``snippet`` or ``update`` (engine, corpus, size).
    Cases whose data or engine is missing are kept, marked skip with the reason."""
    import pytest

    wanted = {
        "build": lambda e: True,
        "search": lambda e: e.can_search,
        "snippet": lambda e: e.can_snippet,
        "update": lambda e: e.can_update,
    }[kind]
    out = []
    for size in sizes():
        for corpus in CORPORA:
            for eng in ENGINES.values():
                if corpus not in eng.languages or not wanted(eng):
                    continue
                reason = missing_data_reason(corpus) or eng.unavailable()
                marks = [pytest.mark.skip(reason=reason)] if reason else []
                base = f"{eng.name}-{corpus}-{size_label(size)}"
                if kind == "build":
                    out += [
                        pytest.param(eng.name, corpus, size, cores, id=f"{base}-{cores}core", marks=marks)
                        for cores in engine_core_counts(eng.name)
                    ]
                elif with_shapes:
                    out += [
                        pytest.param(eng.name, corpus, size, shape, id=f"{base}-{shape}", marks=marks)
                        for shape in eng.shapes
                    ]
                else:
                    out.append(pytest.param(eng.name, corpus, size, id=base, marks=marks))
    return out


ANALYZE_PASSAGES = 10_000


def analysis_cases() -> list[Any]:
    """pytest params (analysis, corpus, size) for the ``analyze`` group: one size, the smallest
    configured, at most 10k passages (analysis cost per passage does not depend on corpus size)."""
    import pytest

    size = min([ANALYZE_PASSAGES] + [s for s in sizes() if s is not None])
    out = []
    for corpus in CORPORA:
        for name, (languages, _) in ANALYSES.items():
            if corpus in languages:
                marks = []
                if reason := missing_data_reason(corpus):
                    marks.append(pytest.mark.skip(reason=reason))
                out.append(pytest.param(name, corpus, size, id=f"{name}-{corpus}-{size}", marks=marks))
    return out


# -- the session's shared state ------------------------------------------------------------------------


class Lab:
    """The session's built indexes, opened indexes and queries, each made once and shared by the groups."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.builds: dict[tuple[str, str, str, int], dict[str, Any]] = {}
        self._opened: dict[tuple[str, str, str], Opened] = {}

    def passages(self, corpus: str, size: int | None) -> list[Passage]:
        return load_passages(corpus, size)

    def built(self, engine: str, corpus: str, size: int | None, cores: int | None = None) -> dict[str, Any]:
        """The subprocess build report (index path, build time, peak RSS, disk size) for a case; without
        ``cores``, the build the other groups search (``default_cores``)."""
        cores = default_cores(engine) if cores is None else cores
        key = (engine, corpus, size_label(size), cores)
        if key not in self.builds:
            outdir = self.workdir / f"{engine}-{corpus}-{size_label(size)}-{cores}core"
            report = run_build(engine, corpus, size, outdir, cores)
            report["tokens"] = term_count(corpus, size)
            report["tokens_per_s"] = report["tokens"] / report["build_s"] if report["build_s"] else None
            self.builds[key] = report
        return self.builds[key]

    def opened(self, engine: str, corpus: str, size: int | None) -> Opened:
        key = (engine, corpus, size_label(size))
        if key not in self._opened:
            path = Path(self.built(engine, corpus, size)["path"])
            self._opened[key] = ENGINES[engine].open(path, corpus)
        return self._opened[key]

    def queries(self, corpus: str, size: int | None) -> dict[str, list[Query]]:
        return make_queries(corpus, size, queries_per_shape())

    def close(self) -> None:
        for o in self._opened.values():
            o.close()
        self._opened.clear()
