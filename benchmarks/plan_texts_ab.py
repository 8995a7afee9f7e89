"""A/B of two ways of running a two-phase Ray query (issue #23), alternating query by query.

``--what texts`` (default): how the plan is sent, as query and filter texts inside the call's one JSON
argument (``QueryPlan.text_form``, side A) or as a pickled plan object (side B, the way before).
``--what frequencies``: the phases of a query whose languages need evaluating, as document frequencies
then one ``search_matched`` call that evaluates once (side A), or as a ``statistics`` round that
evaluates the query to learn its languages and a search that evaluates it again (side B, before).

Not part of any test run: a script, run by hand::

    python -m benchmarks.plan_texts_ab --size 50000 --out /tmp/plan-texts.json
    python -m benchmarks.plan_texts_ab --size 50000 --what frequencies --out /tmp/frequencies.json

Builds a single index and a 2-shard index of ``size`` passages (half Indonesian, half English; kept in
``--root`` for the next run), starts a local Ray with 2 CPUs and opens the sharded index on it without
the document-frequency table and with the plan cache off (every query takes a statistics round, then
the search, its plan sent anew). Both ways run in this one process on the same actors, alternating
query by query (which goes first alternates too), so drift of the machine hits both alike; the report
is the median of the paired differences, beside the empty round trip to both actors and the single
index's time for the same query.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "telusur-plan-texts")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--what", choices=("texts", "frequencies"), default="texts")
    args = ap.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    import search.distributed
    from benchmarks.corpora import load_passages
    from benchmarks.queries import make_queries
    from search import Document, Index
    from search.distributed import ShardedIndex
    from search.index import _parsed
    from search.sharded import QueryPlan

    root = args.root / str(args.size)
    if not (root / "sharded").exists():
        half = args.size // 2
        docs = [Document(p.id, p.text, title=p.title, lang=lg) for lg in ("id", "en") for p in load_passages(lg, half)]
        with Index.create(root / "single", passage_words=0).writer() as w:
            w.add_many(docs)
        with ShardedIndex.create(root / "sharded", shards=2, passage_words=0).writer() as w:
            w.add_many(docs)
    queries = [q.render() for lg in ("id", "en") for qs in make_queries(lg, args.size // 2, 20).values() for q in qs]
    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False, logging_level=logging.ERROR)
    single = Index.open(root / "single")
    index = ShardedIndex.open(root / "sharded", ray_address="local")
    # the queries that need evaluation to know their languages (group `distributed`'s "two_phase" ones)
    matched = [q for q in queries if index._precomputed(index._plan(_parsed(q), None, None, None)) is None]
    index.one_round, index.plan_cache = False, 0
    as_texts = QueryPlan.text_form
    evaluating = search.distributed.languages_need_evaluating

    def run(q: str, texts: bool) -> tuple[float, list]:
        if args.what == "texts":
            QueryPlan.text_form = as_texts if texts else (lambda self, fields: None)  # type: ignore[method-assign]
        else:  # side B: as if no query needed its languages evaluated before the search (the old path)
            search.distributed.languages_need_evaluating = evaluating if texts else (lambda plan: False)
        t0 = time.perf_counter()
        got = [(h.doc_id, h.score, h.text) for h in index.search(q)]
        return time.perf_counter() - t0, got

    for q in matched:
        assert run(q, True)[1] == run(q, False)[1], q
    times: dict[str, list[float]] = {"texts": [], "pickled": [], "ping": [], "single": []}
    for r in range(args.rounds):
        for j, q in enumerate(matched):
            for texts in (True, False) if (r + j) % 2 else (False, True):
                times["texts" if texts else "pickled"].append(run(q, texts)[0])
            t0 = time.perf_counter()
            ray.get([a.ping.remote() for a in index.actors])
            times["ping"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            [(h.doc_id, h.text) for h in single.search(q)]
            times["single"].append(time.perf_counter() - t0)
    QueryPlan.text_form = as_texts  # type: ignore[method-assign]
    search.distributed.languages_need_evaluating = evaluating
    sides = ("texts", "pickled") if args.what == "texts" else ("frequencies", "statistics")
    times = {sides[0]: times.pop("texts"), sides[1]: times.pop("pickled"), **times}
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    pairs = [(a - b) * 1000 for a, b in zip(times[sides[0]], times[sides[1]])]
    report = {
        "what": args.what,
        "sides": list(sides),
        "passages": args.size,
        "queries": len(matched),
        "rounds": args.rounds,
        "p50_ms": {k: round(v, 3) for k, v in med.items()},
        "paired_difference_p50_ms": round(statistics.median(pairs), 3),
        "above_two_round_trips_ms": {
            side: round(med[side] - med["single"] - 2 * med["ping"], 3) for side in sides
        },
        "load_1m": os.getloadavg()[0],
    }
    print(json.dumps(report))
    if args.out:
        args.out.write_text(json.dumps(dict(report, paired_differences_ms=[round(x, 4) for x in pairs]), indent=1))
    index.close()
    ray.shutdown()


if __name__ == "__main__":
    main()
