"""A/B, in one process, of how stored text and postings are kept (issue #18): what a query new to the
process pays for its hits' text and its terms' postings, and what the index costs on disk, with
``segment.DOC_BLOCK_BYTES`` at two values (each side's blocks with its segment's own dictionary, format
5), with two codecs (``compress.CODEC``; zlib trains no dictionary), or with two thresholds for postings
kept as zstd frames (``codec.BIG_DF``; 1000000000: every block packed, as format 3).

Not part of any test run: a script, run by hand::

    python -m benchmarks.block_size_ab --lang en --size 50000 --sizes 4096,32768 --out /tmp/blocks.json
    python -m benchmarks.block_size_ab --lang en --size 50000 --codecs zlib,zstd --out /tmp/codecs.json
    python -m benchmarks.block_size_ab --lang en --size 50000 --big-dfs 1000000000,96 --out /tmp/frames.json

One index per side is built from the same passages (``add_many`` in process, ``passage_words=120``
as ``first_seen_ab.py`` builds), each once under ``--root``. A hit whose stored block no earlier query read
pays the inflation of that whole block, where format 1 sliced uncompressed text: the larger the
block, the more a first-seen query pays, and the smaller, the worse the compression. Both indexes are
opened in one process (the decoded cache is keyed by reader, so neither answers the other); a warm-up
pass of other queries (seed 1; none with ``--cold``) fills what every query shares; then each timed
query (``make_queries``' default seed) runs once on each, which goes first alternating query by query.
Reported: p50 per shape per side, the median of the paired differences (second side minus first), the
blocks inflated per query, and the size on disk of each index. Both sides' answers (ids, scores,
texts of the top 10) are checked equal.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def _disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lang", default="en")
    ap.add_argument("--size", type=int, default=50_000)
    ap.add_argument("--sizes", default="4096,32768", help="two block sizes in bytes, A then B")
    ap.add_argument("--codecs", default="", help="two codecs, A then B (at the first size): zlib,zstd")
    ap.add_argument("--big-dfs", default="", help="two postings thresholds, A then B: 1000000000,96")
    ap.add_argument("--cold", action="store_true", help="no warm-up pass: as a fresh process's first queries")
    ap.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "telusur-block-size")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from benchmarks.corpora import load_passages
    from benchmarks.queries import make_queries
    from benchmarks.runner import paired_shape, write_report
    from search import Document, Index, codec, compress, merge, segment

    block_sizes = [int(x) for x in args.sizes.split(",")]
    assert len(block_sizes) == 2, "--sizes takes two block sizes"
    if args.codecs:
        codecs = args.codecs.split(",")
        assert len(codecs) == 2 and set(codecs) <= set(compress.CODECS), f"--codecs takes two of {compress.CODECS}"
        configs = [(block_sizes[0], c, codec.BIG_DF) for c in codecs]
    elif args.big_dfs:
        big_dfs = [int(x) for x in args.big_dfs.split(",")]
        assert len(big_dfs) == 2, "--big-dfs takes two thresholds"
        configs = [(block_sizes[0], compress.CODEC, bd) for bd in big_dfs]
    else:
        configs = [(bs, compress.CODEC, codec.BIG_DF) for bs in block_sizes]
    names = [f"{bs}-{c}-big{bd}" for bs, c, bd in configs]
    defaults = segment.DOC_BLOCK_BYTES, compress.CODEC, codec.BIG_DF

    def configure(bs: int, codec_name: str, big_df: int) -> None:  # the writer and merges read them when called
        segment.DOC_BLOCK_BYTES = merge.DOC_BLOCK_BYTES = bs
        compress.CODEC = codec_name
        codec.BIG_DF = big_df

    sides: dict[str, Index] = {}
    disk: dict[str, int] = {}
    for name, (bs, codec_name, big_df) in zip(names, configs):
        root = args.root / f"{args.lang}-{args.size}-{name}"
        if not root.exists():
            configure(bs, codec_name, big_df)
            try:
                ix = Index.create(root, passage_words=120, default_language=args.lang)
                passages = load_passages(args.lang, args.size)
                with ix.writer() as w:  # in process: worker processes would not see the patched values
                    w.add_many((Document(p.id, p.text, title=p.title, lang=args.lang) for p in passages), workers=1)
            finally:
                configure(*defaults)
        sides[name] = Index.open(root)
        disk[name] = _disk_bytes(root)

    inflated = 0
    real_inflate = segment.SegmentReader._inflate

    def counted(self, *args):  # blocks (and columns) inflated while a query ran
        nonlocal inflated
        inflated += 1
        return real_inflate(self, *args)

    segment.SegmentReader._inflate = counted  # type: ignore[method-assign]

    def run(name: str, q: str) -> tuple[float, list, int]:
        nonlocal inflated
        inflated = 0
        t0 = time.perf_counter()
        got = [(h.doc_id, h.score, h.text) for h in sides[name].search(q, k=10)]
        return time.perf_counter() - t0, got, inflated

    for qs in [] if args.cold else make_queries(args.lang, args.size, 100, seed=1).values():
        for q in qs:
            for name in names:
                run(name, q.render())
    a, b = names
    report: dict = {
        "lang": args.lang,
        "passages": args.size,
        "sides": names,
        "warm_up": not args.cold,
        "disk_bytes": {name: disk[name] for name in names},
        "shapes": {},
    }
    for shape, qs in make_queries(args.lang, args.size, 100).items():
        times: dict[str, list[float]] = {a: [], b: []}
        blocks: dict[str, int] = {a: 0, b: 0}
        for j, q in enumerate(qs):
            got = {}
            for name in (a, b) if j % 2 else (b, a):
                t, got[name], n = run(name, q.render())
                times[name].append(t)
                blocks[name] += n
            assert got[a] == got[b], q.render()
        report["shapes"][shape] = {
            **paired_shape(times, a, b),
            "inflated_per_query": {name: round(n / len(qs), 2) for name, n in blocks.items()},
        }
    segment.SegmentReader._inflate = real_inflate  # type: ignore[method-assign]
    write_report(report, args.out)


if __name__ == "__main__":
    main()
