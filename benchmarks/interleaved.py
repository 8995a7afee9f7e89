"""Query p50 of telusur against a peer, query by query in one process (a script, run by hand).

``benchmarks/test_search.py`` times each engine's cases one after the other, minutes apart; on a
shared VM whose speed drifts by 20-40% over minutes, the ratio of two such p50s moved by more than the
changes being measured (phrases at 50k English: 1.74x in one run, 0.95x twenty minutes later). Here
both engines answer the same query back to back, in one process, the order alternating per query and
per round, so a slow spell lands on both. Each answer is read as the benchmark reads it (ids and
texts of the top 10). It reuses the indexes a ``test_search`` run built (``BENCH_WORKDIR``)::

    BENCH_SIZES=50000 BENCH_WORKDIR=/tmp/w pytest benchmarks/test_search.py::test_search \\
        --benchmark-enable -k "telusur-en or tantivy-en_stem-en"          # builds the two indexes
    python -m benchmarks.interleaved --workdir /tmp/w --size 50000 --rounds 5 --out results.json

Alternating also means each engine runs after the other one evicted some of its cache lines, so both
p50s are a little above their own runs'; the ratio is what this measures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from benchmarks.config import size_label
from benchmarks.engines import ENGINES
from benchmarks.queries import make_queries

SHAPES = ("1-term", "2-term", "3-term", "phrase", "boolean")


def measure(workdir: Path, corpus: str, size: int | None, peer: str, rounds: int) -> dict:
    """p50 per shape of telusur and ``peer`` on the indexes a ``test_search`` run left in ``workdir``
    (``size`` None: the whole corpus)."""
    label = size_label(size)
    ours = ENGINES["telusur"].open(workdir / f"telusur-{corpus}-{label}-2core" / "index", corpus)
    theirs = ENGINES[peer].open(workdir / f"{peer}-{corpus}-{label}-2core" / "index", corpus)
    queries = make_queries(corpus, size, 100)
    out: dict = {"corpus": corpus, "size": label, "peer": peer, "rounds": rounds, "load": os.getloadavg(), "shapes": {}}
    for shape in SHAPES:
        times: tuple[list[float], list[float]] = ([], [])
        for q in queries[shape]:  # one untimed pass each, as the benchmark's warm-up
            ours.search(q)
            theirs.search(q)
        for r in range(rounds):
            for i, q in enumerate(queries[shape]):
                order = (0, 1) if (i + r) % 2 == 0 else (1, 0)
                for side in order:
                    engine = ours if side == 0 else theirs
                    t = time.perf_counter()
                    engine.search(q)
                    times[side].append(time.perf_counter() - t)
        a, b = statistics.median(times[0]), statistics.median(times[1])
        out["shapes"][shape] = {"telusur_p50_ms": a * 1e3, "peer_p50_ms": b * 1e3, "ratio": a / b}
    ours.close()
    return out


def _size(text: str) -> int | None:
    """A ``--size``: a positive number of passages, or 'full' (None), as ``BENCH_SIZES`` reads it."""
    if text == "full":
        return None
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a positive number of passages nor 'full'")
    return int(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--corpus", default="en")
    ap.add_argument("--size", action="append", required=True, type=_size, help="passages, or 'full'")
    ap.add_argument("--peer", default="tantivy-en_stem")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    runs = [measure(Path(args.workdir), args.corpus, n, args.peer, args.rounds) for n in args.size]
    for run in runs:
        for shape, got in run["shapes"].items():
            print(
                f"{run['corpus']} {run['size']} {shape:8s} telusur {got['telusur_p50_ms']:.3f} ms  "
                f"{run['peer']} {got['peer_p50_ms']:.3f} ms  ratio {got['ratio']:.2f}"
            )
    if args.out:
        Path(args.out).write_text(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
