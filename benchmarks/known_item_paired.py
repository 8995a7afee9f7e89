"""Known-item keyword queries, paired: telusur against bm25s per query, with McNemar and a bootstrap CI.

``benchmarks/known_item.py`` reports success@10 and MRR@10 per seed. Its gaps between engines are a few
queries in a few hundred, so this script runs the same engines on the same queries (the harness's own
``load_passages``, ``bm25s_ranker``, ``telusur_ranker`` and ``search.evaluate.known_item_queries``, not
changed) and keeps each query's rank of its target for every engine. Then, for each telusur config
against bm25s, over all queries of the chosen seeds pooled:

* McNemar's exact test on per-query success@10 (the discordant pairs: found by one engine only;
  two-sided binomial p with p = 0.5);
* a paired bootstrap (queries resampled with replacement, 10,000 draws, fixed seed) of the difference
  in success@10 and in MRR@10, with its 95% percentile interval.

Run (one bm25s and one telusur build, then 300 queries per seed)::

    .venv/bin/python -m benchmarks.known_item_paired --seeds 7 8 9 10 11 12 13 14 15 16 17 18 \\
        --json benchmarks/results/known-item-seeds-7-18.json
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.known_item import DATA, bm25s_ranker, load_passages, telusur_ranker


def target_ranks(rank, queries: Sequence[tuple[str, str]], k: int = 10) -> list[int]:
    """Each query's 1-based rank of its target in the top ``k``, 0 when it is not there."""
    out = []
    for target, query in queries:
        ranking = rank(query)[:k]
        out.append(ranking.index(target) + 1 if target in ranking else 0)
    return out


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p: binomial(b + c, 0.5) probability of a split at least this uneven."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], draws: int = 10000, seed: int = 0) -> dict[str, float]:
    """Mean of a - b and the 95% percentile interval of its bootstrap over paired items."""
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    rng = random.Random(seed)
    means = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(draws))
    return {
        "diff": sum(d) / n,
        "ci95_low": means[int(0.025 * draws)],
        "ci95_high": means[int(0.975 * draws) - 1],
        "p_boot_le0": sum(m <= 0 for m in means) / draws,
    }


def compare(ranks_a: list[int], ranks_b: list[int]) -> dict[str, Any]:
    """Paired statistics of engine a against engine b (a - b)."""
    hit_a = [1.0 if r else 0.0 for r in ranks_a]
    hit_b = [1.0 if r else 0.0 for r in ranks_b]
    rr_a = [1.0 / r if r else 0.0 for r in ranks_a]
    rr_b = [1.0 / r if r else 0.0 for r in ranks_b]
    only_a = sum(1 for x, y in zip(hit_a, hit_b) if x and not y)
    only_b = sum(1 for x, y in zip(hit_a, hit_b) if y and not x)
    return {
        "queries": len(ranks_a),
        "found_by_a_only": only_a,
        "found_by_b_only": only_b,
        "mcnemar_exact_p": mcnemar_exact(only_a, only_b),
        "success@10": paired_bootstrap(hit_a, hit_b, seed=1),
        "mrr@10": paired_bootstrap(rr_a, rr_b, seed=2),
    }


def summary(ranks: list[int]) -> dict[str, float]:
    return {
        "success@10": sum(1 for r in ranks if r) / len(ranks),
        "mrr@10": sum(1.0 / r for r in ranks if r) / len(ranks),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from search.evaluate import known_item_queries

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--passages", type=int, default=30000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(7, 19)))
    ap.add_argument("--words", type=int, nargs=2, default=[3, 5], metavar=("MIN", "MAX"))
    ap.add_argument("--config", action="append", default=[], help="NAME=JSON of Index.create keywords")
    ap.add_argument("--no-defaults", action="store_true", help="skip the telusur defaults config")
    ap.add_argument("--group", action="append", default=[], help="NAME=SEED,SEED,...: also compare over these seeds")
    ap.add_argument("--json", type=Path, help="write the results (with every query's ranks) here")
    args = ap.parse_args(argv)
    if not args.data.is_file():
        print(f"error: {args.data} is missing (see ../shared/data)", file=sys.stderr)
        return 2

    passages = load_passages(args.data, args.passages)
    configs: dict[str, dict[str, Any]] = {} if args.no_defaults else {"defaults": {}}
    for c in args.config:
        name, _, spec = c.partition("=")
        configs[name] = json.loads(spec) if spec else {}
    query_sets = {
        seed: known_item_queries(passages, args.queries, seed=seed, words=tuple(args.words)) for seed in args.seeds
    }

    ranks: dict[str, dict[int, list[int]]] = {}
    t = time.perf_counter()
    bm = bm25s_ranker(passages)
    ranks["bm25s"] = {seed: target_ranks(bm, qs) for seed, qs in query_sets.items()}
    print(f"bm25s built and run in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    del bm
    tmp = Path(tempfile.mkdtemp(prefix="known-item-paired-"))
    try:
        for name, options in configs.items():
            t = time.perf_counter()
            rank = telusur_ranker(passages, tmp / name, options)
            ranks[f"telusur:{name}"] = {seed: target_ranks(rank, qs) for seed, qs in query_sets.items()}
            print(f"telusur:{name} built and run in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            shutil.rmtree(tmp / name, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    engines: dict[str, Any] = {}
    for name, per_seed in ranks.items():
        pooled = [r for seed in args.seeds for r in per_seed[seed]]
        engines[name] = {"pooled": summary(pooled), "per_seed": {seed: summary(per_seed[seed]) for seed in args.seeds}}
    groups = {"all": list(args.seeds)}
    for g in args.group:
        gname, _, seeds = g.partition("=")
        groups[gname] = [int(x) for x in seeds.split(",")]
    comparisons: dict[str, dict[str, Any]] = {}
    for gname, seeds in groups.items():
        pooled_bm = [r for seed in seeds for r in ranks["bm25s"][seed]]
        for name in ranks:
            if name != "bm25s":
                pooled = [r for seed in seeds for r in ranks[name][seed]]
                comparisons[f"{gname}: {name} - bm25s"] = {
                    "seeds": seeds,
                    "a": summary(pooled),
                    "b": summary(pooled_bm),
                    **compare(pooled, pooled_bm),
                }

    print(
        f"{len(passages)} passages, {args.queries} queries x seeds {args.seeds}, {args.words[0]}-{args.words[1]} words"
    )
    print(f"{'seed':>6} " + " ".join(f"{n:>28}" for n in engines))
    for seed in args.seeds:
        cells = (
            f"{engines[n]['per_seed'][seed]['success@10']:.4f} / {engines[n]['per_seed'][seed]['mrr@10']:.4f}"
            for n in engines
        )
        print(f"{seed:>6} " + " ".join(f"{c:>28}" for c in cells))
    cells = (f"{engines[n]['pooled']['success@10']:.4f} / {engines[n]['pooled']['mrr@10']:.4f}" for n in engines)
    print(f"{'pooled':>6} " + " ".join(f"{c:>28}" for c in cells))
    for name, c in comparisons.items():
        s, m = c["success@10"], c["mrr@10"]
        print(
            f"{name}: a {c['a']['success@10']:.4f} b {c['b']['success@10']:.4f}; "
            f"only a {c['found_by_a_only']}, only b {c['found_by_b_only']}, McNemar p {c['mcnemar_exact_p']:.3f}; "
            f"success@10 diff {s['diff']:+.4f} [{s['ci95_low']:+.4f}, {s['ci95_high']:+.4f}]; "
            f"mrr@10 diff {m['diff']:+.4f} [{m['ci95_low']:+.4f}, {m['ci95_high']:+.4f}]"
        )
    if args.json:
        out = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "engines": engines,
            "comparisons": comparisons,
            "ranks": "RANKS",
        }
        # every query's rank of its target (0: not in the top 10), one line per engine and seed; the
        # queries themselves are known_item_queries(passages, n, seed=seed), so they are not stored
        lines = ",\n".join(
            f'  "{name}": {{' + ", ".join(f'"{seed}": {json.dumps(r)}' for seed, r in per_seed.items()) + "}"
            for name, per_seed in ranks.items()
        )
        text = json.dumps(out, indent=1).replace('"RANKS"', "{\n" + lines + "\n }")
        json.loads(text)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
