"""The ``scale`` group: peak memory (PSS of the whole process tree) building ever larger indexes.

    python -m benchmarks.scale [SIZES] [MODES]      e.g.  python -m benchmarks.scale 100000,400000 cli,add_many
    python -m benchmarks.scale commits INDEX [N] [DOCS]   N commits of DOCS documents onto a built index
    python -m benchmarks.scale open INDEX                 force_merge(1), then the time to open it
    python -m benchmarks.scale plot                       memory and throughput against passages indexed

For each size a JSONL corpus is written to a temporary folder: English (``enwiki-extract-bulk``) and
Indonesian (``id-peraturan-bulk``) passages interleaved line by line, each corpus repeated under new ids
with a light change to the text (the repetition number as a word) once it runs out, so any size can be
built. Each build runs in a fresh subprocess, ``search index`` (mode ``cli``) or ``IndexWriter.add_many``
over a stream of documents read from the file (mode ``add_many``), while this process samples the
proportional set size (``/proc/PID/smaps_rollup``: shared pages divided among the processes sharing
them) of the subprocess and every descendant (indexing workers, merges) every 0.25 s. Reported per
build: the tree's peak PSS, the wall time, passages per second, the 1-minute load average at start and
end, and the samples (seconds, MB) for a plot; in mode ``cli`` also the documents indexed as time goes
(the indexing bar's count, written by the build process to a side file). Results go to
``benchmarks/results/scale.json``. ``TELUSUR_SCALE_WORK`` keeps the corpora and indexes in a folder of
your choice (they are reused: the 2M corpus takes minutes to write), instead of a temporary one.

``commits`` times ``commit()`` of small batches onto an existing index while the writer's background
merges run (new segments keep the merge policy busy), beside the bare cost of a small file's write and
fsync plus the directory's fsync on the same disk (what any durable commit pays at least).
``open`` force-merges an index to one segment and times ``Index.open`` in fresh processes.

Not in the default test run (minutes per size): run it by hand, as above.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.config import REPO, load_average
from benchmarks.corpora import CORPORA

RESULTS = REPO / "benchmarks" / "results" / "scale.json"
INTERVAL = 0.25

ADD_MANY = """
import json, sys
from search import Document, Index
def docs(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            yield Document(id=rec["id"], text=rec["text"], title=rec["title"], lang=rec["lang"])
index = Index.create(sys.argv[2])
with index.writer() as w:
    n = w.add_many(docs(sys.argv[1]))
print(n)
"""


def _records(corpus: str):
    """Passages of one bulk corpus forever: the file, then again under new ids with a varied text."""
    for rep in itertools.count():
        with gzip.open(CORPORA[corpus].path, "rt", encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                text = rec["text"] if rep == 0 else f"{rec['text']} r{rep}"
                doc_id = rec["_id"] if rep == 0 else f"{rec['_id']}~{rep}"
                yield {"id": doc_id, "title": rec.get("title") or "", "text": text, "lang": corpus}


def write_corpus(path: Path, n: int) -> Path:
    """``n`` passages, English and Indonesian interleaved, as JSONL (see the module text). Written under
    a temporary name and renamed when whole: a failed write (a corpus missing) leaves no file that a
    later run would take for the corpus."""
    streams = [_records("en"), _records("id")]
    part = path.with_name(path.name + ".part")
    with part.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps(next(streams[i % 2]), ensure_ascii=False) + "\n")
    part.replace(path)
    return path


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _tree(root: int) -> list[int]:
    """``root`` and every descendant (one scan of /proc per sample)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, frontier = [root], [root]
    while frontier:
        frontier = [p for p, pp in parent.items() if pp in frontier]
        out.extend(frontier)
    return out


def measure(cmd: list[str], env: dict[str, str], live: Path | None = None) -> dict:
    """Run ``cmd``, sampling its process tree's PSS; the peak, the wall time and the samples (also
    appended to ``live`` as they are taken, with the load every minute, so a run stopped or still going
    can be read)."""
    load_start = load_average()
    t0 = time.monotonic()
    nice = os.nice(0)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []
    peak = 0
    out_live = live.open("w", buffering=1) if live is not None else None
    if out_live is not None:
        out_live.write(f"# t0 {t0}\n")
    next_load = 0.0
    while proc.poll() is None:
        kb = sum(_pss_kb(p) for p in _tree(proc.pid))
        peak = max(peak, kb)
        t = round(time.monotonic() - t0, 2)
        samples.append((t, round(kb / 1024, 1)))
        if out_live is not None:
            load = ""
            if t >= next_load:
                load, next_load = f" load {load_average()}", t + 60
            out_live.write(f"{t} {round(kb / 1024, 1)}{load}\n")
        time.sleep(INTERVAL)
    if out_live is not None:
        out_live.close()
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {
        "t0": t0,  # monotonic, to align the progress side file (dropped before saving)
        "seconds": round(time.monotonic() - t0, 1),
        "peak_pss_mb": round(peak / 1024, 1),
        "nice": nice,
        "load_start": load_start,
        "load_end": load_average(),
        "samples": samples,
        "stderr_tail": err.strip().splitlines()[-1:] if err.strip() else [],
    }


# `search index` itself, with the indexing bar's count written to a side file every PROGRESS_STEP
# documents (monotonic seconds and the count): the bar draws nothing when stderr is not a terminal
CLI_WITH_PROGRESS = """
import atexit, os, sys, time
import cli.app as app
log = open(os.environ["TELUSUR_SCALE_PROGRESS"], "w", buffering=1)
count = [0, 0]
plain = app._progress.advance
def advance(self, n=1):
    if self.unit == "docs":
        count[0] += n
        if count[0] >= count[1]:
            log.write(f"{time.monotonic():.2f} {count[0]}\\n")
            count[1] = count[0] + 5000
    plain(self, n)
app._progress.advance = advance
atexit.register(lambda: log.write(f"{time.monotonic():.2f} {count[0]}\\n"))
from cli.main import main
sys.argv[0] = "search"
sys.exit(main())
"""


def build(size: int, mode: str, work: Path) -> dict:
    corpus = work / f"corpus-{size}.jsonl"
    if not corpus.exists():
        write_corpus(corpus, size)
    index = work / f"index-{mode}-{size}"
    if index.exists():
        raise RuntimeError(f"{index} exists: remove it first (a build starts from an empty index)")
    progress = work / f"progress-{mode}-{size}.txt"
    env = dict(os.environ, PYTHONPATH=str(REPO), TELUSUR_SCALE_PROGRESS=str(progress))
    if mode == "cli":
        cmd = [sys.executable, "-c", CLI_WITH_PROGRESS, "index", str(corpus), "--index", str(index)]
    elif mode == "add_many":
        cmd = [sys.executable, "-c", ADD_MANY, str(corpus), str(index)]
    else:
        raise ValueError(f"mode {mode!r}: cli or add_many")
    progress.unlink(missing_ok=True)
    got = measure(cmd, env, live=work / f"pss-{mode}-{size}.txt")
    t0 = got.pop("t0")
    got.update(size=size, mode=mode, passages_per_s=round(size / got["seconds"], 1))
    if progress.exists():  # (seconds since the build started, documents indexed)
        rows = [line.split() for line in progress.read_text().splitlines() if line.strip()]
        got["indexed"] = [(round(float(t) - t0, 2), int(n)) for t, n in rows]
    got["index_mb"] = round(sum(p.stat().st_size for p in index.iterdir()) / 2**20, 1)
    got["segments"] = len(json.loads((index / "meta.json").read_text())["segments"])
    return got


def _work_dir(tmp: str) -> Path:
    work = os.environ.get("TELUSUR_SCALE_WORK")
    if work:
        Path(work).mkdir(parents=True, exist_ok=True)
        return Path(work)
    return Path(tmp)


def fsync_cost(folder: Path, n: int = 100) -> list[float]:
    """Seconds to write a small file, fsync it, rename it and fsync the folder: the least any durable
    commit pays on this disk (meta.json is written the same way)."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        tmp = folder / "fsync-probe.tmp"
        with tmp.open("wb") as f:
            f.write(b"x" * 4096)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / "fsync-probe")
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        out.append(time.perf_counter() - t)
    (folder / "fsync-probe").unlink()
    return out


def _quantiles(xs: list[float]) -> dict:
    ys = sorted(xs)
    return {
        "median_ms": round(1000 * ys[len(ys) // 2], 2),
        "p95_ms": round(1000 * ys[min(len(ys) - 1, int(0.95 * len(ys)))], 2),
        "max_ms": round(1000 * ys[-1], 2),
    }


def commits(index_path: Path, n: int = 100, docs: int = 10) -> dict:
    """``n`` commits of ``docs`` new documents each onto the index at ``index_path`` with one writer, its
    merges in the background; each ``commit()`` timed, with the merges started and taken in meanwhile."""
    from search import Document, Index

    index = Index.open(index_path)
    passages = index.stats()["passages"]
    lines = []
    with gzip.open(CORPORA["id"].path, "rt", encoding="utf-8") as f:
        for line in itertools.islice(f, n * docs):
            lines.append(json.loads(line))
    run = int(time.time())  # ids new to the index however often this runs
    times: list[float] = []
    adds: list[float] = []
    merges_started = merges_taken = busy = 0
    load_start = load_average()
    fsync = fsync_cost(index_path)
    w = index.writer()
    try:
        for c in range(n):
            t_add = time.perf_counter()
            for rec in lines[c * docs : (c + 1) * docs]:
                w.add(Document(id=f"commit{run}-{c}-{rec['_id']}", text=f"{rec['text']} c{c}", lang="id"))
            running = list(w._merges)
            before = len(w._entries)
            t = time.perf_counter()
            w.commit()
            times.append(time.perf_counter() - t)
            adds.append(t - t_add)  # the adds before it (the first add after a commit loads the live ids)
            merges_taken += int(len(w._entries) < before + 1)  # fewer segments than one more: merged
            merges_started += sum(m not in running for m in w._merges)
            busy += int(bool(w._merges))
        segments_before_close = len(w._entries)
    finally:
        t = time.perf_counter()
        w.close()  # waits for the last merges and commits them
    close_s = time.perf_counter() - t
    return {
        "index": str(index_path),
        "passages": passages,
        "commits": n,
        "docs_per_commit": docs,
        "commit": _quantiles(times),
        "commit_s": [round(x, 5) for x in times],
        "adds_before_each_commit": _quantiles(adds),
        "fsync": _quantiles(fsync),
        "merges_started": merges_started,
        "merges_taken_in": merges_taken,
        "commits_leaving_a_merge_running": busy,
        "segments_before_close": segments_before_close,
        "close_s": round(close_s, 2),
        "nice": os.nice(0),
        "load_start": load_start,
        "load_end": load_average(),
    }


OPEN_ONCE = """
import sys, time
t = time.perf_counter()
from search import Index
t1 = time.perf_counter()
index = Index.open(sys.argv[1])
t2 = time.perf_counter()
print(round(1000 * (t2 - t1), 3), round(1000 * (t1 - t), 3), len(index))
"""


def open_time(index_path: Path, runs: int = 7) -> dict:
    """``force_merge(1)`` on the index (if it has more than one segment), then ``Index.open`` timed in
    ``runs`` fresh processes (the page cache warm after the first) and in this process."""
    from search import Index

    index = Index.open(index_path)
    merge_s = None
    if index.stats()["segments"] > 1:
        t = time.perf_counter()
        with index.writer() as w:
            w.force_merge(1)
        merge_s = round(time.perf_counter() - t, 1)
    load_start = load_average()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    fresh = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", OPEN_ONCE, str(index_path)], env=env, capture_output=True, text=True
        )
        fresh.append(float(out.stdout.split()[0]))
    here = []
    for _ in range(runs):
        t = time.perf_counter()
        Index.open(index_path)
        here.append(1000 * (time.perf_counter() - t))
    return {
        "index": str(index_path),
        "force_merge_s": merge_s,
        "segments": Index.open(index_path).stats()["segments"],
        "passages": Index.open(index_path).stats()["passages"],
        "open_fresh_process_ms": fresh,
        "open_in_process_ms": [round(x, 3) for x in here],
        "nice": os.nice(0),
        "load_start": load_start,
        "load_end": load_average(),
    }


def _live_runs(work: Path) -> list[dict]:
    """Builds still running (or stopped) in ``work``, read from their side files as run records."""
    runs = []
    for pss in sorted(work.glob("pss-cli-*.txt")):
        size = int(pss.stem.rsplit("-", 1)[1])
        lines = pss.read_text().splitlines()
        if not lines or not lines[0].startswith("# t0 "):
            continue
        t0 = float(lines[0].split()[2])
        rows = [line.split() for line in lines[1:] if line.strip()]
        samples = [(float(r[0]), float(r[1])) for r in rows if len(r) >= 2]
        loads = [float(r[3]) for r in rows if len(r) >= 4 and r[3] != "None"]
        progress = work / f"progress-cli-{size}.txt"
        indexed = []
        if progress.exists():
            indexed = [
                (round(float(t) - t0, 2), int(n))
                for t, n in (x.split() for x in progress.read_text().splitlines() if x.strip())
            ]
        runs.append(
            {
                "mode": "cli",
                "size": size,
                "samples": samples,
                "indexed": indexed,
                "live": True,
                "peak_pss_mb": max((m for _, m in samples), default=0.0),
                "load_start": loads[0] if loads else None,
                "load_end": loads[-1] if loads else None,
            }
        )
    return runs


def _rate(indexed: list, window: float = 60.0) -> tuple[list[float], list[float]]:
    """Documents per second over ``window`` seconds, placed at the documents indexed at the window's end."""
    xs, ys = [], []
    j = 0
    for i, (t, n) in enumerate(indexed):
        while indexed[j][0] < t - window:
            j += 1
        if i > j and t - indexed[j][0] >= window / 2:
            xs.append(n)
            ys.append((n - indexed[j][1]) / (t - indexed[j][0]))
    return xs, ys


def plot(out: Path) -> None:
    """Memory (PSS of the tree) and throughput against documents indexed, for every `search index` build
    with a progress record in scale.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    done = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    runs = [d for d in done if d.get("mode") == "cli" and d.get("indexed")]
    if os.environ.get("TELUSUR_SCALE_WORK"):  # runs not finished yet: from their side files
        have = {d["size"] for d in runs}
        runs += [
            d for d in _live_runs(Path(os.environ["TELUSUR_SCALE_WORK"])) if d["size"] not in have and d["indexed"]
        ]
    fig, (ax_t, ax_m, ax_r) = plt.subplots(3, 1, figsize=(9, 11))
    for run in sorted(runs, key=lambda d: d["size"]):
        state = " (still running: partial)" if run.get("live") else ""
        label = f"{run['size']:,} passages{state}, load {run['load_start']}-{run['load_end']}"
        t = np.array([s[0] for s in run["samples"]])
        mb = np.array([s[1] for s in run["samples"]])
        it = np.array([p[0] for p in run["indexed"]])
        n = np.array([p[1] for p in run["indexed"]])
        ax_t.plot(t / 60, mb, lw=0.7, label=label)
        # each PSS sample at the documents indexed by then (0 during the first, reading, pass)
        at = np.interp(t, it, n, left=0, right=n[-1])
        ax_m.plot(at, mb, lw=0.7, label=label)
        xs, ys = _rate(run["indexed"])
        ax_r.plot(xs, ys, lw=1, label=label)
    ax_t.set(xlabel="minutes since start", ylabel="PSS of the process tree, MB", title="search index: memory over time")
    ax_m.set(
        xlabel="documents (passages) indexed",
        ylabel="PSS of the process tree, MB",
        title="memory against passages indexed",
    )
    ax_r.set(
        xlabel="documents (passages) indexed",
        ylabel="passages/s (60 s window)",
        title="indexing throughput against passages indexed",
    )
    for ax in (ax_t, ax_m, ax_r):
        if ax is not ax_r:
            ax.axhline(1536, color="grey", ls=":", lw=0.8)  # the 1.5 GB goal
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(out)


def _save(key: dict, got: dict) -> None:
    done = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    done = [d for d in done if any(d.get(k) != v for k, v in key.items())] + [dict(got, **key)]
    RESULTS.write_text(json.dumps(done, indent=1) + "\n")


def main(argv: list[str]) -> int:
    if argv and argv[0] == "commits":
        got = commits(Path(argv[1]), *(int(x) for x in argv[2:4]))
        _save({"mode": "commits"}, got)
        print(json.dumps({k: v for k, v in got.items() if k != "commit_s"}))
        return 0
    if argv and argv[0] == "open":
        got = open_time(Path(argv[1]))
        _save({"mode": "open"}, got)
        print(json.dumps(got))
        return 0
    if argv and argv[0] == "live":  # a build still running: its peak so far and its recent rate
        for run in _live_runs(Path(argv[1])):
            xs, ys = _rate(run["indexed"], 300.0)
            print(
                run["size"],
                "peak",
                run["peak_pss_mb"],
                "at",
                run["samples"][-1] if run["samples"] else None,
                "indexed",
                run["indexed"][-1] if run["indexed"] else None,
                "rate(5min)",
                round(ys[-1], 1) if ys else None,
                "load",
                run["load_start"],
                run["load_end"],
            )
        return 0
    if argv and argv[0] == "plot":
        plot(Path(argv[1]) if len(argv) > 1 else REPO / "benchmarks" / "plots" / "scale.png")
        return 0
    sizes = [int(x) for x in (argv[0] if argv else "100000,400000").split(",")]
    modes = (argv[1] if len(argv) > 1 else "cli,add_many").split(",")
    done = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    with tempfile.TemporaryDirectory(prefix="telusur-scale-") as tmp:
        for mode in modes:
            for size in sizes:
                got = build(size, mode, _work_dir(tmp))
                print(
                    f"{mode} {size}: peak PSS {got['peak_pss_mb']} MB, {got['seconds']} s, {got['passages_per_s']}"
                    f" passages/s, {got['segments']} segments, load {got['load_start']}-{got['load_end']}",
                    flush=True,
                )
                done = [d for d in done if (d.get("mode"), d.get("size")) != (mode, size)] + [got]
                RESULTS.write_text(json.dumps(done, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
