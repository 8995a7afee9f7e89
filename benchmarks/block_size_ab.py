"""A/B, in one process, of the stored-text block size (issue #18): what a query new to the process pays
for its hits' text, and what the index costs on disk, with ``segment.DOC_BLOCK_BYTES`` at two values.

Not part of any test run: a script, run by hand::

    python -m benchmarks.block_size_ab --lang en --size 50000 --sizes 32768,16384 --out /tmp/blocks.json

One index per block size is built from the same passages (``add_many`` in process, ``passage_words=120``
as ``first_seen_ab.py`` builds), each once under ``--root``. A hit whose stored block no earlier query read
pays the inflation of that whole block (zlib), where format 1 sliced uncompressed text: the larger the
block, the more a first-seen query pays, and the smaller, the worse the compression. Both indexes are
opened in one process (the decoded cache is keyed by reader, so neither answers the other); a warm-up
pass of other queries (seed 1) fills what every query shares; then each timed query (``make_queries``'
default seed) runs once on each, which goes first alternating query by query. Reported: p50 per shape per side, the
median of the paired differences (second size minus first), the blocks inflated per query, and the size
on disk of each index. Both sides' answers (ids, scores, texts of the top 10) are checked equal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def _disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lang", default="en")
    ap.add_argument("--size", type=int, default=50_000)
    ap.add_argument("--sizes", default="32768,16384", help="two block sizes in bytes, A then B")
    ap.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "telusur-block-size")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from benchmarks.corpora import load_passages
    from benchmarks.queries import make_queries
    from search import Document, Index, merge, segment

    block_sizes = [int(x) for x in args.sizes.split(",")]
    assert len(block_sizes) == 2, "--sizes takes two block sizes"
    default = segment.DOC_BLOCK_BYTES
    sides: dict[int, Index] = {}
    disk: dict[int, int] = {}
    for bs in block_sizes:
        root = args.root / f"{args.lang}-{args.size}-{bs}"
        if not root.exists():
            segment.DOC_BLOCK_BYTES = merge.DOC_BLOCK_BYTES = bs  # the writer and merges read them when called
            try:
                ix = Index.create(root, passage_words=120, default_language=args.lang)
                passages = load_passages(args.lang, args.size)
                with ix.writer() as w:  # in process: worker processes would not see the patched size
                    w.add_many((Document(p.id, p.text, title=p.title, lang=args.lang) for p in passages), workers=1)
            finally:
                segment.DOC_BLOCK_BYTES = merge.DOC_BLOCK_BYTES = default
        sides[bs] = Index.open(root)
        disk[bs] = _disk_bytes(root)

    inflated = 0
    real_inflate = segment.SegmentReader._inflate

    def counted(self, data, expected, what):  # blocks (and columns) inflated while a query ran
        nonlocal inflated
        inflated += 1
        return real_inflate(self, data, expected, what)

    segment.SegmentReader._inflate = counted  # type: ignore[method-assign]

    def run(bs: int, q: str) -> tuple[float, list, int]:
        nonlocal inflated
        inflated = 0
        t0 = time.perf_counter()
        got = [(h.doc_id, h.score, h.text) for h in sides[bs].search(q, k=10)]
        return time.perf_counter() - t0, got, inflated

    for qs in make_queries(args.lang, args.size, 100, seed=1).values():
        for q in qs:
            for bs in block_sizes:
                run(bs, q.render())
    a, b = block_sizes
    report: dict = {
        "lang": args.lang,
        "passages": args.size,
        "block_sizes": block_sizes,
        "disk_bytes": {str(bs): disk[bs] for bs in block_sizes},
        "shapes": {},
    }
    for shape, qs in make_queries(args.lang, args.size, 100).items():
        times: dict[int, list[float]] = {a: [], b: []}
        blocks: dict[int, int] = {a: 0, b: 0}
        for j, q in enumerate(qs):
            got = {}
            for bs in (a, b) if j % 2 else (b, a):
                t, got[bs], n = run(bs, q.render())
                times[bs].append(t)
                blocks[bs] += n
            assert got[a] == got[b], q.render()
        pairs = [(y - x) * 1e6 for x, y in zip(times[a], times[b])]
        report["shapes"][shape] = {
            "queries": len(qs),
            "p50_us": {str(bs): round(statistics.median(v) * 1e6, 1) for bs, v in times.items()},
            "inflated_per_query": {str(bs): round(n / len(qs), 2) for bs, n in blocks.items()},
            "paired_difference_p50_us": round(statistics.median(pairs), 1),
        }
    segment.SegmentReader._inflate = real_inflate  # type: ignore[method-assign]
    report["load_1m"] = os.getloadavg()[0]
    print(json.dumps(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
