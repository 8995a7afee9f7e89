"""Turn the JSON under ``benchmarks/results/`` into the generated part of ``RESULTS.md`` and PNG plots.

    python benchmarks/report.py                      # every results/bench-*.json and builds-*.json
    python benchmarks/report.py --bench a.json --builds b.json ...

Several runs are merged (say, one per size); a later file wins for the same case. The goals come from
``benchmarks/goals.json``. Only the part of ``RESULTS.md`` between the two marker lines is rewritten:
sections written by hand (or by other tools) before or after the markers are kept as they are. A file
without the markers gets them appended. matplotlib is only needed for the plots (``--no-plots``).
"""

from __future__ import annotations

import argparse
import json
import operator
import platform
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BEGIN = "<!-- report.py: generated from benchmarks/results/*.json; edit outside these markers -->"
END = "<!-- report.py: end of generated part -->"
SHAPES = ("1-term", "2-term", "3-term", "phrase", "boolean", "phrase-cold")
ENGINE_ORDER = ("telusur", "telusur-add", "baseline", "tantivy-en_stem", "tantivy-fed", "bm25s", "whoosh")
OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}

Key = tuple[str, str, str, str]  # engine, corpus, size, case (shape, open case or "<n>core")


def _engine_key(name: str) -> tuple[int, str]:
    return (ENGINE_ORDER.index(name) if name in ENGINE_ORDER else len(ENGINE_ORDER), name)


def _color(name: str) -> str:
    """One colour per engine in every plot (matplotlib's tab10 cycle)."""
    return f"C{_engine_key(name)[0] % 10}"


def _size_key(size: str) -> tuple[int, int, str]:
    if size.isdigit():
        return (0, int(size), "")
    return (1, 0, "") if size == "full" else (2, 0, size)


def load(bench_files: Iterable[Path], build_files: Iterable[Path]) -> dict[str, Any]:
    """Records by group ``{group: {Key: info}}``, build reports ``{(engine, corpus, size, cores): rec}``
    and one line per run (file, date, commit, load)."""
    groups: dict[str, dict[Key, dict[str, Any]]] = defaultdict(dict)
    machine: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    for f in bench_files:
        data = json.loads(Path(f).read_text())
        machine = data.get("machine_info", machine)
        loads = []
        for b in data["benchmarks"]:
            info = dict(b.get("extra_info") or {})
            if "engine" not in info:
                continue
            info["stats"] = b.get("stats") or {}
            case = str(info.get("shape") or info.get("case") or "")
            groups[b["group"]][(info["engine"], info["corpus"], str(info["size"]), case)] = info
            if info.get("load_1m") is not None:
                loads.append(float(info["load_1m"]))
        commit = data.get("commit_info") or {}
        runs.append(
            {
                "file": Path(f).name,
                "datetime": str(data.get("datetime", ""))[:16].replace("T", " "),
                "commit": (commit.get("id") or "")[:7] + (" (dirty)" if commit.get("dirty") else ""),
                "cases": len(data["benchmarks"]),
                "load": (min(loads), max(loads)) if loads else None,
            }
        )
    builds: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for f in build_files:
        for rec in json.loads(Path(f).read_text()):
            builds[(rec["engine"], rec["corpus"], str(rec["size"]), int(rec.get("cores", 1)))] = rec
    return {"groups": groups, "builds": builds, "machine": machine, "runs": runs}


# -- formatting ----------------------------------------------------------------------------------------


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


def _load(info: dict[str, Any] | None) -> str:
    return "–" if not info or info.get("load_1m") is None else f"{info['load_1m']:.2f}"


# -- sections ------------------------------------------------------------------------------------------


def runs_section(runs: list[dict[str, Any]], machine: dict[str, Any]) -> list[str]:
    cpu = machine.get("cpu", {}).get("brand_raw") or platform.processor() or "unknown CPU"
    out = [
        f"Machine: {cpu}, {machine.get('cpu', {}).get('count', '?')} cores (shared with other work),"
        f" Python {machine.get('python_version', platform.python_version())}. Timings move with the load"
        " (1-minute load average, as `uptime` shows it, recorded when each case started); compare ratios"
        " within one run.",
        "",
    ]
    rows = [
        [
            f"`{r['file']}`",
            r["datetime"],
            f"`{r['commit']}`",
            str(r["cases"]),
            "–" if not r["load"] else f"{r['load'][0]:.2f}-{r['load'][1]:.2f}",
        ]
        for r in runs
    ]
    return out + _table(["run", "started (UTC)", "commit", "cases", "load (1 min) at case starts"], rows)


def _pick(groups: dict[str, Any], group: str, engine: str, corpus: str, size: str, case: str) -> dict | None:
    return groups.get(group, {}).get((engine, corpus, size, case))


def goals_section(groups: dict[str, Any], goals: list[dict[str, Any]]) -> list[str]:
    """Every goal of ``goals.json`` against whatever was measured (a goal with nothing measured is listed
    as such, never dropped)."""
    rows: list[list[str]] = []
    for g in goals:
        group, metric, op, value = g["group"], g["metric"], g["op"], g["value"]
        cases = g.get("shapes") or [None]
        measured_any = False
        for corpus, size in _cases(groups):
            if corpus not in g.get("corpus", [corpus]) or size not in g.get("sizes", [size]):
                continue
            n = _passages(groups, corpus, size) or 0
            if n < g.get("min_passages", 0):
                continue
            for shape in cases:

                def case_of(side: dict[str, Any], shape: str | None = shape, group: str = group) -> str:
                    if group == "index":
                        return f"{side.get('cores', 1)}core"
                    return shape or ""

                a = _pick(groups, group, g["a"]["engine"], corpus, size, case_of(g["a"]))
                b = _pick(groups, group, g["b"]["engine"], corpus, size, case_of(g["b"])) if "b" in g else None
                if a is None or a.get(metric) is None or ("b" in g and (b is None or not b.get(metric))):
                    continue
                measured_any = True
                x = a[metric] / b[metric] if b else a[metric]
                ok = OPS[op](x, value)
                verdict = "met" if ok else "**missed**"
                if not ok and "floor" in g:
                    verdict += "; floor " + ("met" if OPS[op](x, g["floor"]) else "**missed**")
                where = f"{corpus} {size}" + (f" {shape}" if shape else "")
                bound = f"{op} {value}" + (f" (floor {g['floor']})" if "floor" in g else "")
                rows.append([f"#{g.get('issue', '')}", g["text"], where, bound, f"{x:.2f}", _load(a), verdict])
        if not measured_any:
            rows.append([f"#{g.get('issue', '')}", g["text"], "–", f"{op} {value}", "not measured", "–", "–"])
    if not rows:
        return []
    out = [
        "## Goals",
        "",
        "From `benchmarks/goals.json`; the ratio is the first engine's figure over the second's.",
        "",
    ]
    return out + _table(["issue", "goal", "case", "bound", "measured", "load", "verdict"], rows)


def analyze_section(groups: dict[str, Any]) -> list[str]:
    recs = groups.get("analyze", {})
    if not recs:
        return []
    out = ["## Analysis (text to terms, cold analyzer, one core)", ""]
    for corpus in sorted({k[1] for k in recs}):
        rows = []
        mine = {k[0]: v for k, v in recs.items() if k[1] == corpus}
        base = mine.get("baseline", {}).get("docs_per_s")
        for name in sorted(mine, key=_engine_key):
            v = mine[name]
            rows.append(
                [
                    name,
                    f"{v['passages']:,}",
                    _num(v["docs_per_s"]),
                    _num(v["tokens_per_s"]),
                    _ratio(v["docs_per_s"], base),
                    _load(v),
                ]
            )
        out += [f"### `{corpus}`", ""]
        out += _table(["analysis", "passages", "passages/s", "tokens/s", "÷ baseline", "load"], rows)
    return out


def index_section(groups: dict[str, Any], builds: dict[Any, Any], corpus: str, size: str) -> list[str]:
    recs = {k: v for k, v in groups.get("index", {}).items() if k[1:3] == (corpus, size)}
    if not recs:
        return []
    ceiling = recs.get(("baseline", corpus, size, "1core"), {}).get("docs_per_s")

    def anchor(engine: str, cores: int) -> float | None:
        return (recs.get((engine, corpus, size, f"{cores}core")) or {}).get("docs_per_s")

    rows = []
    for key in sorted(recs, key=lambda k: (int(k[3].rstrip("core") or 1), _engine_key(k[0]))):
        v = recs[key]
        cores = int(v.get("cores", 1))
        b = builds.get((key[0], corpus, size, cores), {}) if v.get("peak_rss_mb") is not None else {}
        an = v.get("analysis_s")
        rows.append(
            [
                key[0],
                str(cores),
                v.get("setup", ""),
                _num(v["docs_per_s"]),
                f"{v['per_ceiling']:.2f}×" if v.get("per_ceiling") else _ratio(v["docs_per_s"], ceiling),
                _ratio(v["docs_per_s"], anchor("tantivy-en_stem", cores)) if corpus == "en" else "",
                _ratio(v["docs_per_s"], anchor("tantivy-fed", cores)),
                _num(v.get("seconds")),
                f"{_num(an)} ({an / v['seconds']:.0%})" if an and v.get("seconds") else "–",
                _num(b.get("docs_per_s", v.get("subprocess_docs_per_s"))),
                _num(b.get("peak_rss_mb", v.get("peak_rss_mb"))),
                _num(b.get("tree_peak_pss_mb", v.get("tree_peak_pss_mb"))),
                _num(v.get("disk_mb")),
                _load(v),
            ]
        )
    header = [
        "engine",
        "cores",
        "setup",
        "docs/s",
        "÷ ceiling",
        "÷ tantivy en_stem, same cores" if corpus == "en" else "",
        "÷ tantivy fed, same cores",
        "build s",
        "analysis s, 1 core (share)",
        "docs/s (own process)",
        "peak RSS MB",
        "peak PSS MB (tree)",
        "disk MB",
        "load",
    ]
    if corpus != "en":
        i = header.index("")
        del header[i]
        for r in rows:
            del r[i]
    out = ["### Indexing from scratch", ""]
    out += [
        "Every engine in a comparison is pinned to the same first N cores; one-core engines appear once.",
        '"÷ ceiling" is docs/s over the bare analysis baseline on one core (regex + lower + PyStemmer) over',
        "the same passages, measured right before and after this build in the same process (so load drift",
        "between cases cancels); the baseline row's own docs/s is a separate case.",
        '"analysis s" is the engine\'s analysis chain alone, on one core, over the same passages (text and',
        "title); its share is of this build's time (above 100% where the build runs on several cores).",
        "",
    ]
    return out + _table(header, rows)


def case_section(groups: dict[str, Any], builds: dict[Any, Any], corpus: str, size: str) -> list[str]:
    n = _passages(groups, corpus, size)
    out = [f"## `{corpus}` at {size} passages" + (f" ({n:,})" if n and size == "full" else ""), ""]
    out += index_section(groups, builds, corpus, size)

    search = {(k[0], k[3]): v for k, v in groups.get("search", {}).items() if k[1:3] == (corpus, size)}
    if search:
        engines = sorted({e for e, _ in search}, key=_engine_key)
        rows = []
        for e in engines:
            row = [e]
            for shape in SHAPES:
                v = search.get((e, shape))
                row.append("–" if v is None else f"{_num(v['p50_ms'])} / {_num(v['p95_ms'])} / {_num(v['p99_ms'])}")
            loads = [v.get("load_1m") for (x, _), v in search.items() if x == e and v.get("load_1m") is not None]
            row.append(f"{min(loads):.2f}-{max(loads):.2f}" if loads else "–")
            rows.append(row)
        out += ["### Query latency, top 10 with stored text (ms, p50 / p95 / p99)", ""]
        out += _table(["engine", *SHAPES, "load"], rows)
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
            rows.append([e, _num(o and o["median_ms"]), _num(q and q["median_ms"]), _load(o)])
        out += ["### Opening (ms, median)", ""]
        out += _table(["engine", "open", "open + first 1-term query", "load"], rows)

    snip = {k[0]: v for k, v in groups.get("snippet", {}).items() if k[1:3] == (corpus, size)}
    if snip:
        rows = [
            [e, _num(snip[e]["p50_ms"]), _num(snip[e]["p95_ms"]), _num(snip[e]["p99_ms"]), _load(snip[e])]
            for e in sorted(snip, key=_engine_key)
        ]
        out += ["### Snippets for the top 10 of a 2-term query (ms; the search itself untimed)", ""]
        out += _table(["engine", "p50", "p95", "p99", "load"], rows)

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
                _load(upd[e]),
            ]
            for e in sorted(upd, key=_engine_key)
        ]
        out += ["### Incremental update: add 1% new passages and commit", ""]
        out += _table(["engine", "added", "ms", "added docs/s", "telusur ÷ engine (time)", "load"], rows)
    return out


# -- plots ---------------------------------------------------------------------------------------------


def plots(groups: dict[str, Any], outdir: Path) -> list[Path]:
    """Throughput against size (one line per engine and core count) and p50 latency against size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    corpora = sorted({k[1] for g in ("index", "search") for k in groups.get(g, {})})
    if groups.get("index"):
        fig, axes = plt.subplots(1, len(corpora), figsize=(6 * len(corpora), 4.5), squeeze=False)
        for ax, corpus in zip(axes[0], corpora, strict=True):
            series: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
            for (e, c, _, case), v in groups["index"].items():
                if c == corpus:
                    series[(e, case)].append((v["passages"], v["docs_per_s"]))
            for e, case in sorted(series, key=lambda ec: (_engine_key(ec[0]), ec[1])):
                pts = sorted(series[(e, case)])
                style = "-" if case.startswith("1") else "--"
                ax.plot(
                    [p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=f"{e} {case}", color=_color(e)
                )
            ax.set(title=f"indexing throughput ({corpus})", xlabel="passages", ylabel="passages/s", xscale="log")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
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
                lines: dict[str, list[tuple[int, float]]] = defaultdict(list)
                for (e, c, _, s), v in groups["search"].items():
                    if c == corpus and s == shape:
                        lines[e].append((v["passages"], v["p50_ms"]))
                for e in sorted(lines, key=_engine_key):
                    pts = sorted(lines[e])
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


# -- main ----------------------------------------------------------------------------------------------


def render(data: dict[str, Any], goals: list[dict[str, Any]], plot_paths: list[Path], out: Path) -> str:
    """The generated part of RESULTS.md, markers included."""
    groups, builds = data["groups"], data["builds"]
    lines = [BEGIN, ""]
    lines += runs_section(data["runs"], data["machine"])
    lines += goals_section(groups, goals)
    lines += analyze_section(groups)
    for corpus, size in _cases(groups):
        lines += case_section(groups, builds, corpus, size)
    if plot_paths:
        lines += ["## Plots", ""]
        lines += [f"![{p.stem}]({p.relative_to(out.parent).as_posix()})" for p in plot_paths] + [""]
    return "\n".join(lines + [END])


def splice(existing: str, generated: str) -> str:
    """``existing`` with the part between the markers replaced by ``generated`` (markers included);
    without markers, ``generated`` is appended. Nothing outside the markers changes."""
    start, end = existing.find(BEGIN), existing.find(END)
    if start < 0 or end < start:
        return existing.rstrip("\n") + ("\n\n" if existing.strip() else "") + generated + "\n"
    return existing[:start] + generated + existing[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--bench", type=Path, action="append", help="pytest-benchmark JSON (default: results/bench-*)")
    ap.add_argument("--builds", type=Path, action="append", help="build subprocess JSON (default: results/builds-*)")
    ap.add_argument("--goals", type=Path, default=HERE / "goals.json")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--plots", type=Path, default=HERE / "plots")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    results = HERE / "results"
    bench = args.bench or sorted(results.glob("bench-*.json"), key=lambda p: _size_key(p.stem.split("-", 1)[1]))
    build = args.builds if args.builds is not None else sorted(results.glob("builds-*.json"))
    if not bench:
        ap.error(f"no benchmark JSON given and none in {results}")
    data = load(bench, build)
    goals = json.loads(args.goals.read_text())["goals"]
    plot_paths = [] if args.no_plots else plots(data["groups"], args.plots)
    generated = render(data, goals, plot_paths, args.out)
    existing = args.out.read_text() if args.out.exists() else ""
    args.out.write_text(splice(existing, generated))
    print(f"wrote {args.out}" + "".join(f", {p}" for p in plot_paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
