"""A/B, in one process, of how a query's first read of its terms decodes small postings and positions
(issue #18): with Python integers (``codec.SMALL`` one-block postings, ``segment.SMALL_POSITIONS``
positions; side A, now) or with numpy whatever the size (side B, the way before).

Not part of any test run: a script, run by hand::

    python -m benchmarks.first_seen_ab --lang en --size 10000 --out /tmp/first-seen.json

The index (``--root``, built once with ``add_many``, ``passage_words=120`` as ``ab_format.py`` builds it)
is opened twice, one ``Index`` a side: each has its own readers, so the process-wide decoded cache
(keyed by reader) and the snapshot caches never answer one side with the other's work. A warm-up pass
of other queries (``make_queries`` with seed 1) fills what every query shares (dictionaries checked,
passage table, stored blocks of common hits); then each timed query (seed 0, new to both sides) runs
once on each side, which side goes first alternating query by query, and the switch sets the two
thresholds before each run. The report is the p50 per shape per side and the median of the paired
differences; both sides' answers (ids, scores, texts of the top 10) are checked equal.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lang", default="en")
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "telusur-first-seen")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from benchmarks.corpora import load_passages
    from benchmarks.queries import make_queries
    from benchmarks.runner import paired_shape, write_report
    from search import Document, Index, codec, segment

    root = args.root / f"{args.lang}-{args.size}"
    if not root.exists():
        ix = Index.create(root, passage_words=120, default_language=args.lang)
        docs = (Document(p.id, p.text, title=p.title, lang=args.lang) for p in load_passages(args.lang, args.size))
        with ix.writer() as w:
            w.add_many(docs)
    sides = {"python": Index.open(root), "numpy": Index.open(root)}
    small = (codec.SMALL, segment.SMALL_POSITIONS)

    def use(side: str) -> None:
        codec.SMALL, segment.SMALL_POSITIONS = small if side == "python" else (0, -1)

    def run(side: str, q: str) -> tuple[float, list]:
        use(side)
        t0 = time.perf_counter()
        got = [(h.doc_id, h.score, h.text) for h in sides[side].search(q, k=10)]
        return time.perf_counter() - t0, got

    for qs in make_queries(args.lang, args.size, 100, seed=1).values():
        for q in qs:
            for side in sides:
                run(side, q.render())
    report: dict = {"lang": args.lang, "passages": args.size, "shapes": {}}
    for shape, qs in make_queries(args.lang, args.size, 100).items():
        times: dict[str, list[float]] = {"python": [], "numpy": []}
        for j, q in enumerate(qs):
            order = ("python", "numpy") if j % 2 else ("numpy", "python")
            got = {}
            for side in order:
                t, got[side] = run(side, q.render())
                times[side].append(t)
            assert got["python"] == got["numpy"], q.render()
        report["shapes"][shape] = paired_shape(times, "numpy", "python")  # python − numpy
    use("python")
    write_report(report, args.out)


if __name__ == "__main__":
    main()
