"""Group ``sharded``: what splitting an index into shards costs a query, in process and on the command line.

Both indexes hold the same passages of ``id-peraturan-bulk`` (``BENCH_SHARDED_SIZE``, default 50,000; 300
in smoke mode): one single index and one of ``SHARDS`` shards. Every round runs the single index and the
sharded one back to back on the same query (the generated 1-, 2-, 3-term, phrase and boolean queries,
top 10 with stored text), so the machine's load weighs on both alike; ``extra_info`` holds each side's
p50/p95 and the median per-query difference (``overhead_p50_ms``, goal < 1 ms). Every round also checks
that both give the same hits in the same order with equal scores. The CLI case runs ``search query``
as whole processes, single and sharded in turn (``ratio_p50``: sharded / single).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.config import smoke
from benchmarks.corpora import load_passages, missing_data_reason
from benchmarks.queries import make_queries
from benchmarks.runner import percentiles_ms
from search import Document, Index, ShardedIndex

SHARDS = 4
ROOT = Path(__file__).resolve().parents[1]
CLI_QUERIES = ("pajak penghasilan", "peraturan pemerintah", '"badan usaha"', "pajak AND bea")


def _size() -> int:
    return 300 if smoke() else int(os.environ.get("BENCH_SHARDED_SIZE", "50000"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    reason = missing_data_reason("id")
    if reason:
        pytest.skip(reason)
    passages = load_passages("id", _size())
    docs = [Document(p.id, p.text, title=p.title, lang="id") for p in passages]
    root = tmp_path_factory.mktemp("sharded")
    single = Index.create(root / "single", passage_words=0)
    with single.writer() as w:
        w.add_many(docs)
    sharded = ShardedIndex.create(root / "sharded", shards=SHARDS, passage_words=0)
    with sharded.writer() as w:
        w.add_many(docs)
    per_shape = 5 if smoke() else 40
    queries = [q.render() for qs in make_queries("id", _size(), per_shape).values() for q in qs]
    return root / "single", root / "sharded", queries


def _top(hits) -> list[tuple[str, float, str]]:
    return [(h.doc_id, h.score, h.text) for h in hits]


def test_sharded_query_overhead(benchmark, built) -> None:
    benchmark.group = "sharded"
    single_path, sharded_path, queries = built
    single, sharded = Index.open(single_path), Index.open(sharded_path)
    assert isinstance(sharded, ShardedIndex) and sharded.n_shards == SHARDS
    for q in queries:  # warm both (page cache, analyzer caches) and check they agree
        a, b = _top(single.search(q)), _top(sharded.search(q))
        assert [x[0] for x in a] == [x[0] for x in b], q
        assert all(abs(x[1] - y[1]) <= 1e-9 for x, y in zip(a, b)), q
    times_single: list[float] = []
    times_sharded: list[float] = []
    it = iter(range(10**9))

    def pair() -> None:
        q = queries[next(it) % len(queries)]
        t0 = time.perf_counter()
        a = _top(single.search(q))
        t1 = time.perf_counter()
        b = _top(sharded.search(q))
        t2 = time.perf_counter()
        times_single.append(t1 - t0)
        times_sharded.append(t2 - t1)
        assert [x[0] for x in a] == [x[0] for x in b]

    benchmark.pedantic(pair, rounds=len(queries) * (1 if smoke() else 3), warmup_rounds=0)
    diffs = sorted(s - o for s, o in zip(times_sharded, times_single))
    benchmark.extra_info.update(
        corpus="id",
        passages=_size(),
        shards=SHARDS,
        queries=len(queries),
        single={k: round(v, 3) for k, v in percentiles_ms(times_single).items()},
        sharded={k: round(v, 3) for k, v in percentiles_ms(times_sharded).items()},
        overhead_p50_ms=round(statistics.median(diffs) * 1000, 3),
        load=os.getloadavg()[0],
    )


def test_sharded_cli_query(benchmark, built, tmp_path: Path) -> None:
    benchmark.group = "sharded"
    single_path, sharded_path, _ = built
    env = {k: v for k, v in os.environ.items() if k not in ("SEARCH_INDEX", "COLUMNS")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-c", "from cli.main import main; main()", "query"]

    def run(path: Path, q: str) -> tuple[float, str]:
        t0 = time.perf_counter()
        done = subprocess.run([*cmd, q, "--json", "--index", str(path)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return time.perf_counter() - t0, done.stdout

    for q in CLI_QUERIES:  # byte-code caches, the language model cache, page cache
        run(single_path, q), run(sharded_path, q)
    single_s: list[float] = []
    sharded_s: list[float] = []
    it = iter(range(10**9))

    def pair() -> None:
        q = CLI_QUERIES[next(it) % len(CLI_QUERIES)]
        t_a, _ = run(single_path, q)
        t_b, out = run(sharded_path, q)
        assert '"shards": 4' in out
        single_s.append(t_a)
        sharded_s.append(t_b)

    benchmark.pedantic(pair, rounds=len(CLI_QUERIES) * (1 if smoke() else 5), warmup_rounds=0)
    ratios = sorted(b / a for a, b in zip(single_s, sharded_s))
    benchmark.extra_info.update(
        passages=_size(),
        shards=SHARDS,
        single_p50_ms=round(statistics.median(single_s) * 1000, 1),
        sharded_p50_ms=round(statistics.median(sharded_s) * 1000, 1),
        ratio_p50=round(statistics.median(ratios), 3),
        load=os.getloadavg()[0],
    )
