"""A/B of query latency between two checkouts of telusur (issue #18: segment format 2 against format 1).

Not part of any test run: a script, run by hand::

    git worktree add /work/ab-old 39665d8          # format-1 code
    PYTHONPATH=$PWD python benchmarks/ab_format.py --old /work/ab-old --new $PWD \\
        --langs en,id --sizes 10000,50000 --rounds 5 --out /tmp/ab.json

What it does:

1. In this process (the NEW tree's ``benchmarks`` package): for each language and size, the passages
   (``benchmarks.corpora.load_passages``) are dumped once to JSONL and the queries
   (``benchmarks.queries.make_queries(lang, n, 100)``, rendered with ``q.render()``) to JSON, so both
   sides index the same documents and answer the same queries.
2. Each side builds its index in its own subprocess with ``PYTHONPATH`` at its own tree (this file is
   run as a script there: it imports nothing from the tree but ``search``, and checks where ``search``
   came from). Documents are ``Document(id, text, title, lang=lang)``, added with ``add_many``,
   ``passage_words=120``, ``default_language=lang``.
   For a format-only comparison the NEW side pins every analyzer to the version the OLD side's code
   has (``IndexSettings.analyzer_versions`` written into the first ``meta.json``, as
   ``tests/test_search_core.py`` does for version-2 Indonesian indexes); ``--no-pin`` indexes with the
   new code's current versions instead (then Indonesian compares analyses too, not just formats).
3. Timing: per round, for each language and size, the two sides' worker processes run one after the
   other (which goes first alternates by round), each under ``chrt -f 10`` (``--no-rt`` to skip). A
   worker opens the index, answers every query once (warm pass), then times every query as a caller
   reads the answer: ``[(h.doc_id, h.text) for h in ix.search(q, k=10)]``. Samples are pooled over
   the rounds; the report is the p50 per shape per side, new / old, with ``uptime``'s load averages
   before each pair of workers (another job on the machine shows there).

``--warm other`` warms on other queries (``make_queries`` with the seed + 1) instead, so each timed query
is new to its process: the score caches both sides keep per term and segment do not answer it, and what
reading and decoding postings costs shows. ``--prefetch`` adds what ``search serve`` does at start on a
side whose ``Index`` has them (``warm()``, then ``prefetch(share=1.0, seconds=0)``: the words in most
passages decoded, stored text inflated, within the decoded cache's budget), before the warm pass: a
long-lived process's first-seen queries, as telusur serves them. ``--cache-mb N`` sizes the new side's
caches as ``search serve --cache-mb N`` does (three quarters decoded postings and text, a quarter scores):
format 1 read its uncompressed files through the page cache, so a comparison at equal memory gives the new
side about the old side's file size.

The workers also hash each query's answer (``--warm same``), so the report says how many queries both sides answer
identically (ids and texts of the top 10): a latency ratio between different answers means less.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SHAPES = ("1-term", "2-term", "3-term", "phrase", "boolean")
HERE = Path(__file__).resolve()


# -- worker side (runs with PYTHONPATH at one side's tree; imports only ``search`` and ``analyzers``) --


def _check_tree(tree: str) -> None:
    import search

    where = Path(search.__file__).resolve()
    if Path(tree).resolve() not in where.parents:
        raise SystemExit(f"search imported from {where}, not from {tree}: set PYTHONPATH to the tree")


def _build(args: argparse.Namespace) -> None:
    _check_tree(args.tree)
    import analyzers
    from search import Document, Index

    path = Path(args.index)
    pin = json.loads(args.pin) if args.pin else None
    if pin:
        from search.settings import IndexSettings
        from search.storage import FORMAT, FORMAT_VERSION, write_meta

        path.mkdir(parents=True)
        settings = IndexSettings(passage_words=120, default_language=args.lang, analyzer_versions=pin)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "generation": 0, "next_segment": 1}
        write_meta(path, {**meta, "segments": [], "settings": settings.to_json()})
        ix = Index.open(path)
    else:
        ix = Index.create(path, passage_words=120, default_language=args.lang)
    t0 = time.perf_counter()
    with open(args.jsonl, encoding="utf-8") as f:
        docs = (Document(r["id"], r["text"], r["title"], lang=args.lang) for r in map(json.loads, f))
        with ix.writer() as w:
            w.add_many(docs, workers=2)
    seconds = time.perf_counter() - t0
    ix = Index.open(path)
    used = {n: ix.settings.analyzer(n).version for n in analyzers.names()}
    segs = json.loads((path / "meta.json").read_text())["segments"]
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    print(json.dumps({"versions": used, "segments": len(segs), "bytes": size, "seconds": seconds}))


def _versions(args: argparse.Namespace) -> None:
    _check_tree(args.tree)
    import analyzers

    print(json.dumps({n: analyzers.get(n).version for n in analyzers.names()}))


def _time(args: argparse.Namespace) -> None:
    _check_tree(args.tree)
    from search import Index

    queries = json.loads(Path(args.queries).read_text())
    if args.cache_mb:  # as ``search serve --cache-mb`` sizes them (a tree whose caches cannot: not sized)
        from search import searcher, segment

        if hasattr(segment, "DECODED") and hasattr(searcher, "set_score_cache_bytes"):
            segment.DECODED.resize((args.cache_mb << 20) * 3 // 4)
            searcher.set_score_cache_bytes((args.cache_mb << 20) // 4)
    ix = Index.open(args.index)
    if args.prefetch and hasattr(ix, "prefetch"):  # as ``search serve`` does at start
        ix.warm()
        ix.prefetch(share=1.0, seconds=0)
    search = ix.search
    answers: dict[str, list[str]] = {}
    if args.warm:  # the warm pass on other queries: the timed ones are each a first time in the process
        for qs in json.loads(Path(args.warm).read_text()).values():
            for q in qs:
                [(h.doc_id, h.text) for h in search(q, k=10)]
    for shape, qs in queries.items():  # the warm pass on the timed queries themselves (hashes the answers)
        if args.warm:
            answers[shape] = ["-"] * len(qs)
            continue
        for q in qs:
            got = [(h.doc_id, h.text) for h in search(q, k=10)]
            answers.setdefault(shape, []).append(hashlib.blake2b(repr(got).encode(), digest_size=8).hexdigest())
    clock = time.perf_counter_ns
    times: dict[str, list[int]] = {}
    for shape, qs in queries.items():
        out = times[shape] = []
        for q in qs:
            t0 = clock()
            [(h.doc_id, h.text) for h in search(q, k=10)]
            out.append(clock() - t0)
    print(json.dumps({"times_ns": times, "answers": answers}))


# -- driver side (runs with PYTHONPATH at the NEW tree, for ``benchmarks``) ------------------------------


def _run(tree: str, argv: list[str], rt: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": tree}
    cmd = [sys.executable, str(HERE), *argv, "--tree", tree]
    if rt:
        cmd = ["chrt", "-f", "10", *cmd]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _commit(tree: str) -> str:
    """A tree's commit, with ``+dirty`` when it has uncommitted changes (what was timed)."""
    git = ["git", "-C", tree]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return (head or "unknown") + ("+dirty" if dirty.stdout.strip() else "")


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1].strip()


def _prepare(work: Path, lang: str, n: int) -> tuple[Path, Path]:
    from benchmarks.corpora import load_passages
    from benchmarks.queries import make_queries

    jsonl, qfile = work / f"{lang}-{n}.jsonl", work / f"{lang}-{n}-queries.json"
    if not jsonl.exists():
        with open(jsonl.with_suffix(".tmp"), "w", encoding="utf-8") as f:
            for p in load_passages(lang, n):
                f.write(json.dumps({"id": p.id, "text": p.text, "title": p.title}, ensure_ascii=False) + "\n")
        jsonl.with_suffix(".tmp").rename(jsonl)
    if not qfile.exists():
        qs = make_queries(lang, n, 100)
        qfile.write_text(json.dumps({s: [q.render() for q in qs[s]] for s in SHAPES}))
    wfile = work / f"{lang}-{n}-warm.json"
    if not wfile.exists():
        from benchmarks.config import SEED

        ws = make_queries(lang, n, 100, seed=SEED + 1)
        wfile.write_text(json.dumps({s: [q.render() for q in ws[s]] for s in SHAPES}))
    return jsonl, qfile


def _p50(xs: list[int]) -> float:
    return statistics.median(xs) / 1e6


def main_driver(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sides = {"old": args.old, "new": args.new}
    tag = args.tag
    old_versions = _run(args.old, ["versions"], rt=False)
    configs = [(lang, int(n)) for lang in args.langs.split(",") for n in args.sizes.split(",")]
    report: dict = {
        "old": args.old,
        "new": args.new,
        "pin": not args.no_pin,
        "old_versions": old_versions,
        "warm": args.warm,
        "prefetch": args.prefetch,
        "cache_mb": args.cache_mb,
        "commits": {side: _commit(tree) for side, tree in sides.items()},
    }
    builds: dict = {}
    for lang, n in configs:
        jsonl, qfile = _prepare(work, lang, n)
        for side, tree in sides.items():
            index = work / f"{side}-{tag if side == 'new' else 'base'}-{lang}-{n}"
            if not (index / "meta.json").exists() or (side == "new" and args.rebuild_new):
                subprocess.run(["rm", "-rf", str(index)], check=True)
                argv = ["build", "--index", str(index), "--jsonl", str(jsonl), "--lang", lang]
                if side == "new" and not args.no_pin:
                    argv += ["--pin", json.dumps(old_versions)]
                info = _run(tree, argv, rt=False)
                (index / "ab_build.json").write_text(json.dumps(info))
            builds[f"{side}/{lang}/{n}"] = json.loads((index / "ab_build.json").read_text())
            print(f"built {side} {lang} {n}: {builds[f'{side}/{lang}/{n}']}", file=sys.stderr)
    report["builds"] = builds
    samples: dict = {f"{side}/{lang}/{n}": {s: [] for s in SHAPES} for side in sides for lang, n in configs}
    answers: dict = {}
    loads: dict = {f"{lang}/{n}": [] for lang, n in configs}
    # per round, new p50 / old p50 of that round's pair of processes: a process's own speed drifts (on a
    # shared machine by up to a quarter between runs), so the median of per-round ratios is steadier
    # than the ratio of pooled samples
    round_ratios: dict = {f"{lang}/{n}": {s: [] for s in SHAPES} for lang, n in configs}
    for r in range(args.rounds):
        for lang, n in configs:
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            loads[f"{lang}/{n}"].append(_uptime())
            this_round: dict = {}
            for side in order:
                index = work / f"{side}-{tag if side == 'new' else 'base'}-{lang}-{n}"
                got = _run(
                    sides[side],
                    ["time", "--index", str(index), "--queries", str(work / f"{lang}-{n}-queries.json")]
                    + (["--warm", str(work / f"{lang}-{n}-warm.json")] if args.warm == "other" else [])
                    + (["--prefetch"] if args.prefetch else [])
                    + (["--cache-mb", str(args.cache_mb)] if args.cache_mb and side == "new" else []),
                    rt=not args.no_rt,
                )
                for s in SHAPES:
                    samples[f"{side}/{lang}/{n}"][s] += got["times_ns"][s]
                this_round[side] = got["times_ns"]
                answers[f"{side}/{lang}/{n}"] = got["answers"]
            for s in SHAPES:
                round_ratios[f"{lang}/{n}"][s].append(_p50(this_round["new"][s]) / _p50(this_round["old"][s]))
            print(f"round {r + 1} {lang} {n} load {loads[f'{lang}/{n}'][-1]}", file=sys.stderr)
    rows = []
    for lang, n in configs:
        row = {"lang": lang, "n": n, "load": loads[f"{lang}/{n}"], "shapes": {}}
        for s in SHAPES:
            o, w = _p50(samples[f"old/{lang}/{n}"][s]), _p50(samples[f"new/{lang}/{n}"][s])
            same = sum(
                a == b for a, b in zip(answers[f"old/{lang}/{n}"][s], answers[f"new/{lang}/{n}"][s], strict=True)
            )
            ratios = round_ratios[f"{lang}/{n}"][s]
            row["shapes"][s] = {
                "old_ms": o,
                "new_ms": w,
                "ratio": w / o,
                "round_ratios": ratios,
                "round_ratio_median": statistics.median(ratios),
                "same_answers": same,
                "queries": len(answers[f"old/{lang}/{n}"][s]),
            }
        rows.append(row)
    report["rows"] = rows
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    print(render(report))


def render(report: dict) -> str:
    lines = [
        f"old {report['old']}  new {report['new']}  new pinned to old analyzer versions: {report['pin']} "
        f"({report['old_versions']}); warm pass on {report['warm']} queries",
        "",
        "| lang | n | " + " | ".join(SHAPES) + " | load (1/5/15 min) per round |",
        "|---|---|" + "---|" * len(SHAPES) + "---|",
    ]
    for row in report["rows"]:
        cells = [f"{v['ratio']:.2f} ({v['new_ms']:.2f}/{v['old_ms']:.2f} ms)" for v in row["shapes"].values()]
        lines.append(f"| {row['lang']} | {row['n']} | " + " | ".join(cells) + f" | {'; '.join(row['load'])} |")
    lines.append("")
    lines.append(
        "(answers compared in the --warm same runs only)"
        if report["warm"] == "other"
        else "same top-10 answers (ids and texts) per shape: "
        + "; ".join(
            f"{r['lang']} {r['n']}: " + "/".join(str(v["same_answers"]) for v in r["shapes"].values())
            for r in report["rows"]
        )
    )
    if all("round_ratio_median" in v for r in report["rows"] for v in r["shapes"].values()):
        lines += ["", "median of per-round ratios (new / old p50 of one pair of processes) [lowest-highest round]:"]
        for row in report["rows"]:
            cells = [
                f"{v['round_ratio_median']:.2f} [{min(v['round_ratios']):.2f}-{max(v['round_ratios']):.2f}]"
                for v in row["shapes"].values()
            ]
            lines.append(f"| {row['lang']} | {row['n']} | " + " | ".join(cells) + " |")
    b = report["builds"]
    lines.append("segments / MB: " + "; ".join(f"{k}: {v['segments']} / {v['bytes'] / 1e6:.1f}" for k, v in b.items()))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    b = sub.add_parser("build")
    b.add_argument("--index", required=True)
    b.add_argument("--jsonl", required=True)
    b.add_argument("--lang", required=True)
    b.add_argument("--pin", default="")
    b.add_argument("--tree", required=True)
    t = sub.add_parser("time")
    t.add_argument("--index", required=True)
    t.add_argument("--queries", required=True)
    t.add_argument("--warm", default="")
    t.add_argument("--prefetch", action="store_true")
    t.add_argument("--cache-mb", type=int, default=0)
    t.add_argument("--tree", required=True)
    v = sub.add_parser("versions")
    v.add_argument("--tree", required=True)
    ap.add_argument("--old", default="/work/ab-old")
    ap.add_argument("--new", default=str(HERE.parents[1]))
    ap.add_argument("--langs", default="en,id")
    ap.add_argument("--sizes", default="10000,50000")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work", default="/tmp/ab_format", help="dumps and indexes (kept: a re-run reuses them)")
    ap.add_argument("--tag", default="new", help="name of the new side's indexes (a new tag rebuilds them)")
    ap.add_argument("--rebuild-new", action="store_true", help="rebuild the new side's indexes")
    ap.add_argument("--no-pin", action="store_true", help="the new side indexes with its current analyzers")
    ap.add_argument("--no-rt", action="store_true", help="no chrt -f 10 around the timed workers")
    ap.add_argument(
        "--warm",
        choices=("same", "other"),
        default="same",
        help="warm pass on the timed queries (repeats: caches hit) or on other queries (seed + 1: each timed "
        "query is new to the process, what decoding costs shows)",
    )
    ap.add_argument("--prefetch", action="store_true", help="timed workers prefetch first, as `search serve` does")
    ap.add_argument(
        "--cache-mb",
        type=int,
        default=0,
        help="the new side's cache budget, as `search serve --cache-mb` splits it (default: the library's own)",
    )
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if args.cmd == "build":
        _build(args)
    elif args.cmd == "time":
        _time(args)
    elif args.cmd == "versions":
        _versions(args)
    else:
        main_driver(args)


if __name__ == "__main__":
    main()
