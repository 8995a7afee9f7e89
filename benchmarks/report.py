"""Turn pytest-benchmark JSON (and the build subprocess JSON) into ``RESULTS.md`` and PNG plots.

    python benchmarks/report.py --bench bench.json [--bench more.json ...] [--builds builds.json ...]

Several runs can be merged (say, one per size); a later file wins for the same case. Ratios are always
telusur divided by the peer: for throughput above 1 means telusur is faster, for latency below 1 means
telusur is faster. matplotlib is only needed for the plots (``--no-plots`` skips them).
"""

from __future__ import annotations

import argparse
import json
import platform
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHAPES = ("1-term", "2-term", "3-term", "phrase", "boolean")
ENGINE_ORDER = ("telusur", "baseline", "tantivy", "tantivy-en_stem", "bm25s", "whoosh")
PEERS = ENGINE_ORDER[1:]


def _color(name: str) -> str:
    """One colour per engine in every plot (matplotlib's tab10 cycle)."""
    return f"C{_engine_key(name)[0] % 10}"


def _engine_key(name: str) -> tuple[int, str]:
    return (ENGINE_ORDER.index(name) if name in ENGINE_ORDER else len(ENGINE_ORDER), name)


def _size_key(size: str) -> tuple[int, int]:
    return (1, 0) if size == "full" else (0, int(size))


def load(bench_files: Iterable[Path], build_files: Iterable[Path]) -> dict[str, Any]:
    """Records by group: ``{group: {(engine, corpus, size, case): info}}`` plus ``builds``."""
    groups: dict[str, dict[tuple[str, str, str, str], dict[str, Any]]] = defaultdict(dict)
    machine: dict[str, Any] = {}
    for f in bench_files:
        data = json.loads(Path(f).read_text())
        machine = data.get("machine_info", machine)
        for b in data["benchmarks"]:
            info = dict(b.get("extra_info") or {})
            if "engine" not in info:
                continue
            info["stats"] = b.get("stats") or {}
            case = str(info.get("shape") or info.get("case") or "")
            groups[b["group"]][(info["engine"], info["corpus"], str(info["size"]), case)] = info
    builds: dict[tuple[str, str, str], dict[str, Any]] = {}
    for f in build_files:
        for rec in json.loads(Path(f).read_text()):
            builds[(rec["engine"], rec["corpus"], str(rec["size"]))] = rec
    return {"groups": groups, "builds": builds, "machine": machine}


# -- formatting --------------------------------------------------------------------------------------------


def _num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "–"
    return f"{a / b:.2f}×"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def _cases(groups: dict[str, Any]) -> list[tuple[str, str]]:
    seen = {(k[1], k[2]) for g, recs in groups.items() if g != "analyze" for k in recs}
    return sorted(seen, key=lambda cs: (cs[0], _size_key(cs[1])))


def _passages(groups: dict[str, Any], corpus: str, size: str) -> int | None:
    for recs in groups.values():
        for (_, c, s, _), info in recs.items():
            if c == corpus and s == size and info.get("passages"):
                return int(info["passages"])
    return None


# -- sections ----------------------------------------------------------------------------------------------


def analyze_section(groups: dict[str, Any]) -> list[str]:
    recs = groups.get("analyze", {})
    if not recs:
        return []
    out = ["## Analysis (text to terms, cold analyzer, one core)", ""]
    for corpus in sorted({k[1] for k in recs}):
        rows = []
        mine = {k[0]: v for k, v in recs.items() if k[1] == corpus}
        base = mine.get("baseline", {}).get("tokens_per_s")
        for name in sorted(mine, key=_engine_key):
            v = mine[name]
            rows.append(
                [
                    name,
                    f"{v['passages']:,}",
                    _num(v["docs_per_s"]),
                    _num(v["tokens_per_s"]),
                    _ratio(v["tokens_per_s"], base),
                ]
            )
        out.append(f"### `{corpus}`")
        out.append("")
        out += _table(["analysis", "passages", "passages/s", "tokens/s", "÷ baseline"], rows)
    return out


def case_section(groups: dict[str, Any], builds: dict[Any, Any], corpus: str, size: str) -> list[str]:
    n = _passages(groups, corpus, size)
    out = [f"## `{corpus}` at {size} passages" + (f" ({n:,})" if n and size == "full" else ""), ""]

    index = {k[0]: v for k, v in groups.get("index", {}).items() if k[1:3] == (corpus, size)}
    if index:
        tel = index.get("telusur", {})
        rows = []
        for name in sorted(index, key=_engine_key):
            v = index[name]
            b = builds.get((name, corpus, size), {})
            rows.append(
                [
                    name,
                    _num(v["docs_per_s"]),
                    _num(v["tokens_per_s"]),
                    _num(b.get("docs_per_s", v.get("subprocess_docs_per_s"))),
                    _num(b.get("peak_rss_mb", v.get("peak_rss_mb"))),
                    _num(b.get("tree_peak_pss_mb")),
                    _num(b.get("disk_mb", v.get("disk_mb"))),
                    "" if name == "telusur" else _ratio(tel.get("docs_per_s"), v["docs_per_s"]),
                ]
            )
        out += ["### Indexing from scratch", ""]
        out += _table(
            [
                "engine",
                "docs/s",
                "tokens/s",
                "docs/s (own process)",
                "peak RSS MB",
                "peak PSS MB (tree)",
                "disk MB",
                "telusur ÷ engine (docs/s)",
            ],
            rows,
        )

    search = {(k[0], k[3]): v for k, v in groups.get("search", {}).items() if k[1:3] == (corpus, size)}
    if search:
        engines = sorted({e for e, _ in search}, key=_engine_key)
        rows = []
        for e in engines:
            row = [e]
            for shape in SHAPES:
                v = search.get((e, shape))
                row.append("–" if v is None else f"{_num(v['p50_ms'])} / {_num(v['p95_ms'])} / {_num(v['p99_ms'])}")
            rows.append(row)
        out += ["### Query latency, top 10 with stored text (ms, p50 / p95 / p99)", ""]
        out += _table(["engine", *SHAPES], rows)
        if "telusur" in engines:
            rows = []
            for e in engines:
                if e == "telusur":
                    continue
                row = [e]
                for shape in SHAPES:
                    t, p = search.get(("telusur", shape)), search.get((e, shape))
                    row.append(_ratio(t and t["p50_ms"], p and p["p50_ms"]))
                rows.append(row)
            out += ["p50 ratio telusur ÷ peer (below 1: telusur faster):", ""]
            out += _table(["peer", *SHAPES], rows)

    opened = groups.get("open", {})
    engines = sorted({k[0] for k in opened if k[1:3] == (corpus, size)}, key=_engine_key)
    if engines:
        rows = []
        for e in engines:
            o, q = opened.get((e, corpus, size, "open")), opened.get((e, corpus, size, "open+query"))
            rows.append([e, _num(o and o["median_ms"]), _num(q and q["median_ms"])])
        out += ["### Opening (ms, median)", ""]
        out += _table(["engine", "open", "open + first 1-term query"], rows)

    snip = {k[0]: v for k, v in groups.get("snippet", {}).items() if k[1:3] == (corpus, size)}
    if snip:
        rows = [
            [e, _num(snip[e]["p50_ms"]), _num(snip[e]["p95_ms"]), _num(snip[e]["p99_ms"])]
            for e in sorted(snip, key=_engine_key)
        ]
        out += ["### Snippets for the top 10 of a 2-term query (ms; the search itself untimed)", ""]
        out += _table(["engine", "p50", "p95", "p99"], rows)

    upd = {k[0]: v for k, v in groups.get("update", {}).items() if k[1:3] == (corpus, size)}
    if upd:
        tel = upd.get("telusur", {})
        rows = [
            [
                e,
                f"{upd[e]['added']:,}",
                _num(upd[e]["seconds"] * 1000),
                _num(upd[e]["docs_per_s"]),
                "" if e == "telusur" else _ratio(tel.get("seconds"), upd[e]["seconds"]),
            ]
            for e in sorted(upd, key=_engine_key)
        ]
        out += ["### Incremental update: add 1% new passages and commit", ""]
        out += _table(["engine", "added", "ms", "added docs/s", "telusur ÷ engine (time)"], rows)
    return out


def goals_section(groups: dict[str, Any], builds: dict[Any, Any]) -> list[str]:
    """The issue's goals, checked against whatever was measured."""
    rows: list[list[str]] = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    for (e, corpus, size, _), v in sorted(groups.get("index", {}).items()):
        if e != "telusur":
            continue
        for peer, need in (("tantivy", 1.0), ("whoosh", 15.0), ("baseline", 0.7)):
            p = groups["index"].get((peer, corpus, size, ""))
            if p:
                r = v["docs_per_s"] / p["docs_per_s"]
                goal = f"index {corpus} {size}: telusur ÷ {peer} docs/s ≥ {need}"
                rows.append([goal, f"{r:.2f}", verdict(r >= need)])
        b = builds.get(("telusur", corpus, size), {})
        rss = b.get("peak_rss_mb", v.get("peak_rss_mb"))
        if corpus == "id" and size == "full" and rss:
            pss = b.get("tree_peak_pss_mb")
            if b.get("worker_peak_rss_mb") and pss:  # worker processes: both measures of the tree
                parts = f"{b['parent_peak_rss_mb']:,.0f} + " + " + ".join(f"{w:,.0f}" for w in b["worker_peak_rss_mb"])
                measured = f"{rss:,.0f} MB summed peaks ({parts}); {pss:,.0f} MB tree PSS"
                result = f"{verdict(rss < 1536)} (summed peaks); {verdict(pss < 1536)} (tree PSS)"
            else:
                measured, result = f"{rss:,.0f} MB", verdict(rss < 1536)
            rows.append(["peak RSS building all Indonesian passages < 1.5 GB (1,536 MiB)", measured, result])
    search = groups.get("search", {})
    for (e, corpus, size, shape), v in sorted(search.items(), key=lambda kv: (kv[0][1], _size_key(kv[0][2]))):
        if e != "telusur":
            continue
        t = search.get(("tantivy", corpus, size, shape))
        if t:
            r = v["p50_ms"] / t["p50_ms"]
            goal = f"search {corpus} {size} {shape}: p50 telusur ÷ tantivy ≤ 1.5 (aim 1.2)"
            rows.append([goal, f"{r:.2f}", verdict(r <= 1.5)])
        w = search.get(("whoosh", corpus, size, shape))
        n = v.get("passages", 0)
        if w and shape in ("2-term", "3-term", "phrase") and n >= 50_000:
            r = w["p50_ms"] / v["p50_ms"]
            rows.append([f"search {corpus} {size} {shape}: whoosh ÷ telusur p50 ≥ 10", f"{r:.1f}", verdict(r >= 10)])
        b = search.get(("bm25s", corpus, size, shape))
        if b and shape in ("2-term", "3-term"):
            r = v["p50_ms"] / b["p50_ms"]
            rows.append([f"search {corpus} {size} {shape}: faster than bm25s (ratio < 1)", f"{r:.2f}", verdict(r < 1)])
    for (e, corpus, size, case), v in sorted(groups.get("open", {}).items()):
        if e == "telusur" and case == "open" and v.get("passages", 0) >= 100_000:
            rows.append(
                [
                    f"open {corpus} {size} ({v['passages']:,} passages) < 50 ms",
                    f"{v['median_ms']:.1f} ms",
                    verdict(v["median_ms"] < 50),
                ]
            )
    if not rows:
        return []
    return ["## Goals from issue 6", ""] + _table(["goal", "measured", "verdict"], rows)


# -- plots -------------------------------------------------------------------------------------------------


def plots(groups: dict[str, Any], outdir: Path) -> list[Path]:
    """Throughput against size and p50 latency against size, one line per engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    corpora = sorted({k[1] for g in ("index", "search") for k in groups.get(g, {})})
    if groups.get("index"):
        fig, axes = plt.subplots(1, len(corpora), figsize=(6 * len(corpora), 4.5), squeeze=False)
        for ax, corpus in zip(axes[0], corpora, strict=True):
            series: dict[str, list[tuple[int, float]]] = defaultdict(list)
            for (e, c, _, _), v in groups["index"].items():
                if c == corpus:
                    series[e].append((v["passages"], v["docs_per_s"]))
            for e in sorted(series, key=_engine_key):
                pts = sorted(series[e])
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=e, color=_color(e))
            ax.set(
                title=f"indexing throughput ({corpus})",
                xlabel="passages",
                ylabel="passages/s",
                xscale="log",
                yscale="log",
            )
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = outdir / "index_throughput.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    if groups.get("search"):
        fig, axes = plt.subplots(
            len(corpora), len(SHAPES), figsize=(4 * len(SHAPES), 3.6 * len(corpora)), squeeze=False
        )
        for row, corpus in zip(axes, corpora, strict=True):
            for ax, shape in zip(row, SHAPES, strict=True):
                series = defaultdict(list)
                for (e, c, _, s), v in groups["search"].items():
                    if c == corpus and s == shape:
                        series[e].append((v["passages"], v["p50_ms"]))
                for e in sorted(series, key=_engine_key):
                    pts = sorted(series[e])
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=e, color=_color(e))
                ax.set(title=f"{corpus} {shape}: p50", xlabel="passages", ylabel="ms", xscale="log", yscale="log")
                ax.grid(True, which="both", alpha=0.3)
                ax.legend(fontsize=7)
        fig.tight_layout()
        path = outdir / "search_latency.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


# -- main --------------------------------------------------------------------------------------------------


def render(data: dict[str, Any], plot_paths: list[Path], out: Path) -> str:
    groups, builds, machine = data["groups"], data["builds"], data["machine"]
    cpu = machine.get("cpu", {}).get("brand_raw") or platform.processor() or "unknown CPU"
    lines = [
        "# telusur benchmark results",
        "",
        "Generated by `benchmarks/report.py` from pytest-benchmark JSON; see `benchmarks/README.md` for the",
        "commands and for what each engine does. Ratios are telusur ÷ peer: for throughput above 1 means",
        "telusur is faster, for latency below 1 means telusur is faster.",
        "",
        f"Machine: {cpu}, {machine.get('cpu', {}).get('count', '?')} cores (shared),"
        f" Python {machine.get('python_version', platform.python_version())}.",
        "",
    ]
    lines += goals_section(groups, builds)
    lines += analyze_section(groups)
    for corpus, size in _cases(groups):
        lines += case_section(groups, builds, corpus, size)
    if plot_paths:
        lines += ["## Plots", ""]
        lines += [f"![{p.stem}]({p.relative_to(out.parent).as_posix()})" for p in plot_paths] + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, action="append", required=True, help="pytest-benchmark JSON")
    ap.add_argument("--builds", type=Path, action="append", default=[], help="build subprocess JSON")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--plots", type=Path, default=HERE / "plots")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--notes", type=Path, help="a Markdown file appended as the last section (findings, profiles)")
    args = ap.parse_args(argv)
    data = load(args.bench, args.builds)
    plot_paths = [] if args.no_plots else plots(data["groups"], args.plots)
    text = render(data, plot_paths, args.out)
    if args.notes:
        text += "\n" + args.notes.read_text()
    args.out.write_text(text)
    print(f"wrote {args.out}" + "".join(f", {p}" for p in plot_paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
