"""A/B of a one-shot command on a cold page cache: a fresh process opens an index and answers one query,
with the index's files evicted from the page cache before each process (``posix_fadvise(DONTNEED)``, no
root needed; Linux). What a format that reads fewer bytes buys when they come from disk (issue #18).

Not part of any test run: a script, run by hand after ``ab_format.py`` has built both sides' indexes::

    python benchmarks/cold_open_ab.py --old /work/ab-old --new $PWD --work /work/bench/abf \\
        --old-index old-base-en-50000 --new-index new-f5b-en-50000 --queries en-50000-queries.json \\
        --per-shape 8 --out cold.json

The sides alternate query by query (which goes first alternates too). Each child, with ``PYTHONPATH`` at its
own tree, times ``from search import Index`` (not the index: apart), ``Index.open`` and the first
``search`` (top 10, hits' texts read). The report: p50 of each, of open + query, and the p50 of the
paired ratio new / old of open + query.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script, beside ab_format.py
from ab_format import _commit  # noqa: E402

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from search import Index
t1 = time.perf_counter()
ix = Index.open(sys.argv[1])
t2 = time.perf_counter()
hits = [(h.doc_id, h.text) for h in ix.search(sys.argv[2], k=10)]
t3 = time.perf_counter()
print(json.dumps([t1 - t0, t2 - t1, t3 - t2, len(hits)]))
"""


def evict(index: Path) -> None:
    """Drop the index's files' pages from the page cache (they are clean: nothing is lost)."""
    for p in index.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="the old side's tree")
    ap.add_argument("--new", required=True, help="the new side's tree")
    ap.add_argument("--work", required=True)
    ap.add_argument("--old-index", required=True)
    ap.add_argument("--new-index", required=True)
    ap.add_argument("--queries", required=True, help="a JSON of shape -> query texts (ab_format.py writes one)")
    ap.add_argument("--per-shape", type=int, default=8)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    work = Path(args.work).resolve()  # the children run in their trees
    sides = {"old": (args.old, work / args.old_index), "new": (args.new, work / args.new_index)}
    queries = json.loads((work / args.queries).read_text())
    got: dict = {s: {"import": [], "open": [], "query": [], "hits": []} for s in sides}
    k = 0
    for texts in queries.values():
        for q in texts[: args.per_shape]:
            for side in ("old", "new") if k % 2 == 0 else ("new", "old"):
                tree, index = sides[side]
                evict(index)
                env = {**os.environ, "PYTHONPATH": tree}
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, str(index), q],
                    env=env,
                    cwd=tree,  # ``-c`` puts the working directory first on the path: it must be the side's tree
                    capture_output=True,
                    text=True,
                )
                if done.returncode:
                    sys.exit(f"{side} ({tree}) failed on {q!r}:\n{done.stderr}")
                out = done.stdout
                t_import, t_open, t_query, n_hits = json.loads(out.strip().splitlines()[-1])
                got[side]["import"].append(t_import)
                got[side]["open"].append(t_open)
                got[side]["query"].append(t_query)
                got[side]["hits"].append(n_hits)
            k += 1
    both = {s: [o + q for o, q in zip(got[s]["open"], got[s]["query"])] for s in sides}
    ratios = [n / o for n, o in zip(both["new"], both["old"])]
    report = {
        "old": args.old,
        "new": args.new,
        "commits": {side: _commit(tree) for side, (tree, _) in sides.items()},
        "old_index": args.old_index,
        "new_index": args.new_index,
        "pairs": len(ratios),
        "samples_s": got,
        "p50_ms": {
            s: {
                "import": statistics.median(got[s]["import"]) * 1e3,
                "open": statistics.median(got[s]["open"]) * 1e3,
                "query": statistics.median(got[s]["query"]) * 1e3,
                "open+query": statistics.median(both[s]) * 1e3,
            }
            for s in sides
        },
        "paired_ratio_p50": statistics.median(ratios),
        "paired_ratio_range": [min(ratios), max(ratios)],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "samples_s"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
