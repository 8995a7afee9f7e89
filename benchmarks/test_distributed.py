"""Group ``distributed``: what putting shards in Ray actors costs a query and a build, and the per-shard
figures the capacity plan (docs/scaling.md) extrapolates from.

One single index and one of ``SHARDS`` (2) shards hold the same passages: half ``id-peraturan-bulk``,
half ``enwiki-extract-bulk`` (``BENCH_DISTRIBUTED_SIZE`` in all, default 50,000; 300 in smoke mode), so
queries run over two languages. The shards are opened on a local Ray (``num_cpus=2``), one actor per
shard. Every round runs, on the same query, the single index, then the sharded index on Ray, then the
empty round trip to both actors (``ping``), so the machine's load weighs on all three alike; every round
also checks the hits are the same with equal scores. ``extra_info`` splits the queries by how they are
answered: ``one_round`` (a ranked OR of words or a one-language query: statistics and language weights
from the table computed at commit), ``matched`` (a phrase or boolean query over both languages: global
statistics from the table, the languages it matches in learnt from the same call) and ``two_phase``
(the same queries with the table ignored: a round of document frequencies, then the search), each with the p50 of
the per-query difference (Ray sharded - single) beside the p50 empty round trip: the goals are at most
one round trip + 0.5 ms (one round) and two round trips + 0.5 ms (two phases).
``test_distributed_build`` builds the same 2 shards in process and on Ray (one builder actor per shard)
side by side. ``test_distributed_shard_figures`` records shard size on disk, an actor's resident memory
and the bytes a query sends and receives per shard.

Skipped without Ray (the ``ray`` extra), or without the shared corpora.
"""

from __future__ import annotations

import os
import pickle
import statistics
import time
from pathlib import Path

import pytest

from benchmarks.config import smoke
from benchmarks.corpora import load_passages, missing_data_reason
from benchmarks.queries import make_queries
from benchmarks.runner import percentiles_ms
from search import Document, Index, ShardedIndex
from search.sharded import hit_state, merge_rows

SHARDS = 2
LANGS = ("id", "en")


def _size() -> int:
    return 300 if smoke() else int(os.environ.get("BENCH_DISTRIBUTED_SIZE", "50000"))


@pytest.fixture(scope="module")
def ray_local():
    try:
        import ray
    except ImportError:
        if os.environ.get("TELUSUR_REQUIRE_RAY") == "1":
            pytest.fail("TELUSUR_REQUIRE_RAY=1 but Ray is not installed")
        pytest.skip("Ray is not installed: pip install '.[ray]'")
    import logging

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


def _docs() -> list[Document]:
    half = _size() // 2
    return [Document(p.id, p.text, title=p.title, lang=lang) for lang in LANGS for p in load_passages(lang, half)]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str], dict[str, float]]:
    for lang in LANGS:
        reason = missing_data_reason(lang)
        if reason:
            pytest.skip(reason)
    docs = _docs()
    root = tmp_path_factory.mktemp("distributed")
    builds: dict[str, float] = {}
    t0 = time.perf_counter()
    single = Index.create(root / "single", passage_words=0)
    with single.writer() as w:
        w.add_many(docs)
    builds["single_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sharded = ShardedIndex.create(root / "sharded", shards=SHARDS, passage_words=0)
    with sharded.writer() as w:
        w.add_many(docs)
    builds["sharded_in_process_s"] = time.perf_counter() - t0
    per_shape = 3 if smoke() else 20
    queries = [q.render() for lang in LANGS for qs in make_queries(lang, _size() // 2, per_shape).values() for q in qs]
    return root / "single", root / "sharded", queries, builds


def _top(hits) -> list[tuple[str, int, float, str]]:
    """What a caller of the top 10 reads: ids, scores and the stored text (as group ``sharded``)."""
    return [(h.doc_id, h.passage, h.score, h.text) for h in hits]


def _kind(index: ShardedIndex, q: str) -> str:
    from search.index import _parsed

    plan = index._plan(_parsed(q), None, None, None)
    return "one_round" if index._precomputed(plan) is not None else "matched"


def test_distributed_query_overhead(benchmark, ray_local, built) -> None:
    benchmark.group = "distributed"
    single_path, sharded_path, queries, _ = built
    single = Index.open(single_path)
    on_ray = ShardedIndex.open(sharded_path, ray_address="local")
    fresh = ShardedIndex.open(sharded_path, ray_address="local")
    fresh.plan_cache = 0  # every query planned as if seen for the first time
    two_phase = ShardedIndex.open(sharded_path, ray_address="local")
    two_phase.one_round = False  # the table ignored: a round of document frequencies before every search
    two_phase.plan_cache = 0
    try:
        actors = on_ray.actors
        for q in queries:  # warm every side and check they agree
            a, b = _top(single.search(q)), _top(on_ray.search(q))
            c, d = _top(fresh.search(q)), _top(two_phase.search(q))
            assert [x[:2] for x in a] == [x[:2] for x in b] == [x[:2] for x in c] == [x[:2] for x in d], q
            assert all(abs(x[2] - y[2]) <= 1e-9 for x, y in zip(a, b)), q
        kinds = {q: _kind(on_ray, q) for q in queries}
        diffs: dict[str, list[float]] = {
            "one_round": [],
            "matched": [],
            "one_round_uncached": [],
            "matched_uncached": [],
            "two_phase": [],
        }
        t_single: list[float] = []
        t_ray: list[float] = []
        t_ping: list[float] = []
        it = iter(range(10**9))

        def rounds() -> None:
            n = next(it)
            q = queries[n % len(queries)]
            t0 = time.perf_counter()
            a = _top(single.search(q))
            t1 = time.perf_counter()
            res = on_ray.search(q)
            b = _top(res)
            t2 = time.perf_counter()
            ray_local.get([x.ping.remote() for x in actors])
            t3 = time.perf_counter()
            assert not res.partial and [x[:2] for x in a] == [x[:2] for x in b]
            t_single.append(t1 - t0)
            t_ray.append(t2 - t1)
            t_ping.append(t3 - t2)
            diffs[kinds[q]].append((t2 - t1) - (t1 - t0))
            t4 = time.perf_counter()  # the same query, not cached, beside the same single-index time
            _top(fresh.search(q))
            diffs[kinds[q] + "_uncached"].append((time.perf_counter() - t4) - (t1 - t0))
            if kinds[q] == "matched":  # the same query the old way
                t4 = time.perf_counter()
                _top(two_phase.search(q))
                diffs["two_phase"].append((time.perf_counter() - t4) - (t1 - t0))

        benchmark.pedantic(rounds, rounds=len(queries) * (1 if smoke() else 3), warmup_rounds=0)
        rt = statistics.median(t_ping) * 1000
        benchmark.extra_info.update(
            corpus="+".join(LANGS),
            passages=_size(),
            shards=SHARDS,
            queries=len(queries),
            single={k: round(v, 3) for k, v in percentiles_ms(t_single).items()},
            ray_sharded={k: round(v, 3) for k, v in percentiles_ms(t_ray).items()},
            round_trip_p50_ms=round(rt, 3),
            load=os.getloadavg()[0],
        )
        for kind, ds in diffs.items():
            if ds:
                over = statistics.median(ds) * 1000
                rounds_goal = 2 if kind == "two_phase" else 1
                benchmark.extra_info[kind] = {
                    "queries": len(ds),
                    "overhead_p50_ms": round(over, 3),
                    "goal_ms": round(rounds_goal * rt + 0.5, 3),
                    "overhead_in_round_trips": round(over / rt, 2) if rt else None,
                }
    finally:
        for index in (on_ray, fresh, two_phase):
            index.close()


def test_distributed_build(benchmark, ray_local, built, tmp_path: Path) -> None:
    """The same 2 shards built in process (each shard's chunks on the writer's worker processes, one
    shard after another) and on Ray (one builder actor per shard, both at once), alternately; the Ray
    side split into starting the builder actors and the rest (analysis in the actors, segments sent
    back and stored, commit)."""
    from search.distributed import ShardBuilder

    benchmark.group = "distributed"
    single_path, sharded_path, queries, _ = built
    docs = _docs()
    t_local: list[float] = []
    t_ray: list[float] = []
    t_start: list[float] = []
    it = iter(range(10**9))

    def pair() -> None:
        n = next(it)
        t0 = time.perf_counter()
        idx = ShardedIndex.create(tmp_path / f"local{n}", shards=SHARDS, passage_words=0)
        with idx.writer() as w:
            w.add_many(docs)
        t1 = time.perf_counter()
        idx = ShardedIndex.create(tmp_path / f"ray{n}", shards=SHARDS, passage_words=0)
        with idx.writer() as w:
            w.add_many(docs, ray_address="local")
        t2 = time.perf_counter()
        t_local.append(t1 - t0)
        t_ray.append(t2 - t1)
        # what starting the builders alone costs (an actor is a fresh process importing the analyzers)
        t3 = time.perf_counter()
        actors = [ray_local.remote(ShardBuilder).remote(idx.settings.to_json(), 1) for _ in range(SHARDS)]
        ray_local.get([a.ping.remote() for a in actors])
        t_start.append(time.perf_counter() - t3)
        for a in actors:
            ray_local.kill(a)

    benchmark.pedantic(pair, rounds=1 if smoke() else 2, warmup_rounds=0)
    local, on_ray = ShardedIndex.open(tmp_path / "local0"), ShardedIndex.open(tmp_path / "ray0")
    for q in queries[:: max(1, len(queries) // 20)]:
        assert [(h.doc_id, h.score) for h in local.search(q)] == [(h.doc_id, h.score) for h in on_ray.search(q)], q
    seg_bytes = sum(s.index.stats()["size_bytes"] for s in on_ray.shards)
    benchmark.extra_info.update(
        corpus="+".join(LANGS),
        passages=len(docs),
        shards=SHARDS,
        in_process_s=[round(x, 2) for x in t_local],
        ray_s=[round(x, 2) for x in t_ray],
        ray_actor_start_s=[round(x, 2) for x in t_start],
        ratio_ray_over_in_process_median=round(statistics.median(t_ray) / statistics.median(t_local), 3),
        bytes_sent_back=seg_bytes,
        load=os.getloadavg()[0],
    )


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_distributed_shard_figures(benchmark, ray_local, built) -> None:
    """Per-shard figures for the capacity plan: passages, bytes on disk, actor memory after the query
    stream, and the bytes of each call's arguments and answer (pickled, as Ray sends them)."""
    benchmark.group = "distributed"
    _, sharded_path, queries, builds = built
    local = ShardedIndex.open(sharded_path)
    on_ray = ShardedIndex.open(sharded_path, ray_address="local")
    try:
        pids = ray_local.get([a.ping.remote() for a in on_ray.actors])
        rss_open = [_rss_kb(p) for p in pids]

        def stream() -> None:
            for q in queries:
                on_ray.search(q)

        benchmark.pedantic(stream, rounds=1 if smoke() else 3, warmup_rounds=0)
        rss_after = [_rss_kb(p) for p in pids]
        sent: list[int] = []
        received: list[int] = []
        received_one_call: list[int] = []
        for q in queries:
            from search.index import _parsed

            plan = local._plan(_parsed(q), None, None, None)
            pre = local._precomputed(plan)
            out = inn = 0
            if pre is None:
                for sh in local.shards:
                    out += len(pickle.dumps(plan))
                    inn += len(pickle.dumps(sh.statistics(plan)))
                pre = local._combine(plan, (sh.statistics(plan) for sh in local.shards))
            stats, weights = pre
            rows = {}
            for i, sh in enumerate(local.shards):
                out += len(pickle.dumps((plan, stats.to_json(), weights, 10, True)))
                rows[i] = sh.search(plan, stats, weights, 10, True)
                inn += len(pickle.dumps(rows[i]))
            page = merge_rows(rows, 0, 10)
            two = one = 0  # fetch as a second call (the page's hits) or within the search call (every row)
            for i, sh in enumerate(local.shards):
                mine = [r for r, j in page if j == i]
                if mine:
                    out += len(pickle.dumps((plan, mine)))
                    two += len(pickle.dumps([hit_state(h) for h in sh.fetch(plan, mine)]))
                one += len(pickle.dumps([hit_state(h) for h in sh.fetch(plan, rows[i])]))
            sent.append(out)
            received.append(inn + two)
            received_one_call.append(inn + one)
        shard_stats = [s.index.stats() for s in local.shards]
        benchmark.extra_info.update(
            passages=_size(),
            shards=SHARDS,
            passages_per_shard=[s["passages"] for s in shard_stats],
            bytes_per_shard=[s["size_bytes"] for s in shard_stats],
            actor_rss_kb_open=rss_open,
            actor_rss_kb_after_queries=rss_after,
            query_bytes_sent_p50=int(statistics.median(sent)),
            query_bytes_received_p50=int(statistics.median(received)),
            query_bytes_received_one_call_p50=int(statistics.median(received_one_call)),
            build_single_s=round(builds["single_s"], 2),
            build_sharded_in_process_s=round(builds["sharded_in_process_s"], 2),
            load=os.getloadavg()[0],
        )
        assert all(r > 0 for r in rss_after) and sum(s["passages"] for s in shard_stats) == len(local)
    finally:
        on_ray.close()
