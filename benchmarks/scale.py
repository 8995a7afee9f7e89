"""The ``scale`` group: peak memory (PSS of the whole process tree) building ever larger indexes.

    python -m benchmarks.scale [SIZES] [MODES]      e.g.  python -m benchmarks.scale 100000,400000 cli,add_many

For each size a JSONL corpus is written to a temporary folder: English (``enwiki-extract-bulk``) and
Indonesian (``id-peraturan-bulk``) passages interleaved line by line, each corpus repeated under new ids
with a light change to the text (the repetition number as a word) once it runs out, so any size can be
built. Each build runs in a fresh subprocess, ``search index`` (mode ``cli``) or ``IndexWriter.add_many``
over a stream of documents read from the file (mode ``add_many``), while this process samples the
proportional set size (``/proc/PID/smaps_rollup``: shared pages divided among the processes sharing
them) of the subprocess and every descendant (indexing workers, merges) every 0.25 s. Reported per
build: the tree's peak PSS, the wall time, passages per second, the 1-minute load average at start and
end, and the samples (seconds, MB) for a plot. Results go to ``benchmarks/results/scale.json``.

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
    """``n`` passages, English and Indonesian interleaved, as JSONL (see the module text)."""
    streams = [_records("en"), _records("id")]
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps(next(streams[i % 2]), ensure_ascii=False) + "\n")
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


def measure(cmd: list[str], env: dict[str, str]) -> dict:
    """Run ``cmd``, sampling its process tree's PSS; the peak, the wall time and the samples."""
    load_start = load_average()
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []
    peak = 0
    while proc.poll() is None:
        kb = sum(_pss_kb(p) for p in _tree(proc.pid))
        peak = max(peak, kb)
        samples.append((round(time.monotonic() - t0, 2), round(kb / 1024, 1)))
        time.sleep(INTERVAL)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {
        "seconds": round(time.monotonic() - t0, 1),
        "peak_pss_mb": round(peak / 1024, 1),
        "load_start": load_start,
        "load_end": load_average(),
        "samples": samples,
        "stderr_tail": err.strip().splitlines()[-1:] if err.strip() else [],
    }


def build(size: int, mode: str, work: Path) -> dict:
    corpus = work / f"corpus-{size}.jsonl"
    if not corpus.exists():
        write_corpus(corpus, size)
    index = work / f"index-{mode}-{size}"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if mode == "cli":
        main = "import sys; from cli.main import main; sys.argv[0] = 'search'; sys.exit(main())"
        cmd = [sys.executable, "-c", main, "index", str(corpus), "--index", str(index)]
    elif mode == "add_many":
        cmd = [sys.executable, "-c", ADD_MANY, str(corpus), str(index)]
    else:
        raise ValueError(f"mode {mode!r}: cli or add_many")
    got = measure(cmd, env)
    got.update(size=size, mode=mode, passages_per_s=round(size / got["seconds"], 1))
    got["index_mb"] = round(sum(p.stat().st_size for p in index.iterdir()) / 2**20, 1)
    got["segments"] = len(json.loads((index / "meta.json").read_text())["segments"])
    return got


def main(argv: list[str]) -> int:
    sizes = [int(x) for x in (argv[0] if argv else "100000,400000").split(",")]
    modes = (argv[1] if len(argv) > 1 else "cli,add_many").split(",")
    done = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    with tempfile.TemporaryDirectory(prefix="telusur-scale-") as tmp:
        for mode in modes:
            for size in sizes:
                got = build(size, mode, Path(tmp))
                print(
                    f"{mode} {size}: peak PSS {got['peak_pss_mb']} MB, {got['seconds']} s, {got['passages_per_s']}"
                    f" passages/s, {got['segments']} segments, load {got['load_start']}-{got['load_end']}",
                    flush=True,
                )
                done = [d for d in done if (d["mode"], d["size"]) != (mode, size)] + [got]
                RESULTS.write_text(json.dumps(done, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
