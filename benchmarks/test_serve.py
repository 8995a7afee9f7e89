"""Group ``serve``: what the long-lived ``search serve`` process costs and keeps, on the English bulk corpus.

* latency: a 2-term query over HTTP on loopback (keep-alive, parsed by the client) against the same
  query through ``Index.search`` in this process, with and without snippets (p50 in ``extra_info``);
* throughput: requests per second of 1 worker against 2, from a load generator in its own process,
  pinned with ``taskset`` (1 worker on core 0 and the generator on core 1; 2 workers on both cores and
  the generator sharing core 1, which only handicaps the 2-worker figure);
* first query: the first search a fresh server answers against its 100th (models preloaded at start);
* soak: ``SERVE_SOAK_QUERIES`` (default 200,000) distinct queries with snippets; the server's RSS after
  the first 1,000 against every later sample (goal: within 10%).

Corpus size: ``SERVE_BENCH_PASSAGES`` (default 100,000) passages of enwiki-extract-bulk, built once in
``$BENCH_WORKDIR`` when set. Smoke mode (the default test run) uses 300 passages and a few requests.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks._serve_load import search_path
from benchmarks.config import smoke
from benchmarks.corpora import load_passages, missing_data_reason
from benchmarks.runner import Recorder, percentiles_ms
from cli.hitjson import hit_objects
from search import Document, Index
from tests.live_server import live_server

GROUP = "serve"
TASKSET = shutil.which("taskset")


def _passages() -> int:
    return 300 if smoke() else int(os.environ.get("SERVE_BENCH_PASSAGES", "100000"))


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = missing_data_reason("en")
    if reason:
        pytest.skip(reason)
    n = _passages()
    workdir = os.environ.get("BENCH_WORKDIR")
    root = Path(workdir) if workdir and not smoke() else tmp_path_factory.mktemp("serve-bench")
    path = root / f"serve-en-{n}"
    if not (path / "meta.json").exists():
        if path.exists():
            shutil.rmtree(path)
        index = Index.create(path)
        with index.writer() as w:
            w.add_many(Document(id=p.id, text=p.text, title=p.title) for p in load_passages("en", n))
    return path


@pytest.fixture(scope="module")
def shared_server(corpus_index: Path, tmp_path_factory: pytest.TempPathFactory):
    """One server for the latency cases (and, in smoke mode, for every case: startup costs seconds)."""
    with live_server(tmp_path_factory.mktemp("serve-log"), "--index", f"en={corpus_index}", "--quiet") as server:
        yield server


def _server(shared, tmp_path: Path, corpus_index: Path):
    """A fresh server for a measurement that needs one (the shared one in smoke mode)."""
    if smoke():
        return contextlib.nullcontext(shared)
    return live_server(tmp_path, "--index", f"en={corpus_index}", "--quiet")


def two_term_queries(count: int, seed: int = 7) -> list[str]:
    """Queries of two distinct words (4+ letters) from one random passage each: they always match."""
    rng = random.Random(seed)
    passages = load_passages("en", _passages())
    out: list[str] = []
    while len(out) < count:
        words = sorted({w.lower() for w in re.findall(r"[A-Za-z]{4,}", rng.choice(passages).text)})
        if len(words) >= 2:
            out.append(" ".join(rng.sample(words, 2)))
    return out


def _http_search(conn: http.client.HTTPConnection, path: str) -> list[dict]:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, body[:200]
    return json.loads(body)["hits"]


def _rss_kb(pid: int) -> tuple[int, int, int]:
    """(VmRSS, RssAnon, RssFile) in kB: all resident memory, the process's own (heap), and mapped file
    pages (the mmapped index, shared with the page cache and other workers)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["RssAnon"], fields["RssFile"]


def _load(
    port: int, paths: list[str], tmp: Path, connections: int, seconds: float, max_requests: int, cpus: str | None = None
) -> dict:
    paths_file = tmp / f"paths-{len(paths)}.json"
    paths_file.write_text(json.dumps(paths))
    cmd = [
        sys.executable,
        "-m",
        "benchmarks._serve_load",
        str(port),
        str(paths_file),
        str(connections),
        str(seconds),
        str(max_requests),
    ]
    if cpus and TASKSET:
        cmd = [TASKSET, "-c", cpus, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 3600)
    return json.loads(out.stdout)


def _process_tree(pid: int) -> list[int]:
    """The server and its worker processes (uvicorn's --workers children)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *(int(x) for x in out)]


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (all their threads)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


@pytest.mark.parametrize("snippets", [False, True], ids=["no-snippets", "snippets"])
def test_serve_latency(benchmark, corpus_index: Path, shared_server, snippets: bool) -> None:
    """Each round runs one query in this process and then over HTTP, so both see the same machine load
    (this machine is shared: interleaving is what makes the two p50s comparable)."""
    benchmark.group = GROUP
    queries = two_term_queries(10 if smoke() else 300)
    index = Index.open(corpus_index)
    conn = http.client.HTTPConnection("127.0.0.1", shared_server.port, timeout=60)
    local: list[float] = []
    remote: list[float] = []

    def pair(q: str) -> tuple[list[dict], list[dict]]:
        t0 = time.perf_counter()
        mine = hit_objects(index.search(q, k=10), 0, snippets=snippets)
        t1 = time.perf_counter()
        theirs = _http_search(conn, search_path("en", q, k=10, snippets=str(snippets).lower()))
        t2 = time.perf_counter()
        local.append(t1 - t0)
        remote.append(t2 - t1)
        return mine, theirs

    it = iter(queries * 3)
    rec = Recorder(pair)
    warm = len(queries) if benchmark.enabled else 0
    benchmark.pedantic(rec, setup=lambda: ((next(it),), {}), rounds=len(queries) * 2, warmup_rounds=warm)
    del local[:warm], remote[:warm]
    for mine, theirs in rec.results:
        assert json.loads(json.dumps(mine)) == theirs  # the same hits, byte for byte as JSON
    diffs = sorted(r - m for m, r in zip(local, remote))
    benchmark.extra_info.update(
        inprocess=percentiles_ms(local),
        http=percentiles_ms(remote),
        http_minus_inprocess_median_ms=diffs[len(diffs) // 2] * 1000,
        passages=_passages(),
        snippets=snippets,
        load=_load_avg(),
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_throughput(benchmark, corpus_index: Path, shared_server, tmp_path: Path, workers: int) -> None:
    benchmark.group = GROUP
    paths = [search_path("en", q, k=10) for q in two_term_queries(10 if smoke() else 500)]
    seconds = 1.0 if smoke() else float(os.environ.get("SERVE_LOAD_SECONDS", "20"))
    server_cpus = "0" if workers == 1 else "0,1"
    prefix = [TASKSET, "-c", server_cpus] if TASKSET else None
    args = ["--index", f"en={corpus_index}", "--quiet", "--workers", str(workers)]
    # smoke mode only exercises the load generator, on the shared server
    started = contextlib.nullcontext(shared_server) if smoke() else live_server(tmp_path, *args, prefix=prefix)
    with started as server:
        _load(server.port, paths, tmp_path, 4, 60, len(paths), cpus="1")  # every worker warm
        pids = _process_tree(server.proc.pid)
        cpu0 = _cpu_seconds(pids)
        result = benchmark.pedantic(
            _load, args=(server.port, paths, tmp_path, 4, seconds, 50 if smoke() else 10**9, "1"), rounds=1
        )
        cpu = _cpu_seconds(pids) - cpu0
    assert result["errors"] == [] and result["requests"] > 0
    benchmark.extra_info.update(
        qps=result["qps"],
        requests=result["requests"],
        # on a shared machine the server gets a share of its cores, not the cores: the CPU it did get, and
        # the queries per CPU-second (how much work a query costs, whatever the share)
        server_cpu_cores=cpu / result["seconds"],
        queries_per_server_cpu_second=result["requests"] / cpu if cpu > 0 else None,
        per_worker=result["per_worker"],
        workers=workers,
        server_cpus=server_cpus,
        generator_cpus="1",
        connections=4,
        passages=_passages(),
        load=_load_avg(),
    )


def test_serve_first_query(benchmark, corpus_index: Path, shared_server, tmp_path: Path) -> None:
    """The first search a freshly started server answers, against its 100th, over ``SERVE_FIRST_RUNS``
    fresh servers (default 3): on the client (the connection is made before timing, as a client that
    searches holds one) and the server's own ``took_ms`` (no scheduling of two processes in it); and,
    for contrast, a fresh process's first ``Index.search`` against its 100th."""
    benchmark.group = GROUP
    queries = two_term_queries(100, seed=11)  # distinct from the warm-up and the other cases
    runs = 1 if smoke() else int(os.environ.get("SERVE_FIRST_RUNS", "3"))

    def measure() -> list[tuple[list[float], list[float]]]:
        out = []
        for _ in range(runs):
            with _server(shared_server, tmp_path, corpus_index) as server:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                conn.connect()
                client, took = [], []
                for q in [*queries, queries[0]]:  # the first query again at the end: the same work, warm
                    t0 = time.perf_counter()
                    conn.request("GET", search_path("en", q, k=10))
                    response = conn.getresponse()
                    body = json.loads(response.read())
                    client.append(time.perf_counter() - t0)
                    assert response.status == 200, body
                    took.append(body["took_ms"] / 1000)
                out.append((client, took))
        return out

    samples = benchmark.pedantic(measure, rounds=1)
    code = (
        "import sys, time, json\nfrom search import Index\nqs = json.loads(sys.argv[2])\n"
        "idx = Index.open(sys.argv[1])\nts = []\n"
        "for q in qs:\n    t = time.perf_counter(); [h.to_dict() for h in idx.search(q, k=10)]\n"
        "    ts.append(time.perf_counter() - t)\nprint(json.dumps(ts))"
    )
    cold = json.loads(
        subprocess.run(
            [sys.executable, "-c", code, str(corpus_index), json.dumps(queries)],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        ).stdout
    )

    def median(xs: list[float]) -> float:
        return sorted(xs)[len(xs) // 2] * 1000

    benchmark.extra_info.update(
        runs=runs,
        http_first_ms=[c[0] * 1000 for c, _ in samples],
        http_first_again_ms=[c[100] * 1000 for c, _ in samples],
        took_first_again_ms=[t[100] * 1000 for _, t in samples],
        http_100th_ms=[c[99] * 1000 for c, _ in samples],
        http_p50_2_to_100_ms=[median(c[1:100]) for c, _ in samples],
        took_first_ms=[t[0] * 1000 for _, t in samples],
        took_p50_2_to_100_ms=[median(t[1:100]) for _, t in samples],
        inprocess_cold_first_ms=cold[0] * 1000,
        inprocess_cold_100th_ms=cold[99] * 1000,
        inprocess_cold_p50_2_to_100_ms=median(cold[1:]),
        passages=_passages(),
        load=_load_avg(),
    )


def test_serve_soak_memory(benchmark, corpus_index: Path, shared_server, tmp_path: Path) -> None:
    benchmark.group = GROUP
    total = 300 if smoke() else int(os.environ.get("SERVE_SOAK_QUERIES", "200000"))
    distinct = two_term_queries(min(total, 50_000), seed=13)
    paths = [search_path("en", q, k=10) for q in distinct]
    samples: list[tuple[int, int, int, int]] = []

    def soak() -> None:
        with _server(shared_server, tmp_path, corpus_index) as server:
            done = 0
            step = 1000
            while done < total:
                n = min(step, total - done)
                result = _load(server.port, paths[done % len(paths) :] + paths, tmp_path, 2, 3600, n)
                assert result["errors"] == [], result["errors"]
                done += result["requests"]
                samples.append((done, *_rss_kb(server.proc.pid)))
                step = 1000 if done < 1000 else max(1000, total // 40)

    benchmark.pedantic(soak, rounds=1)
    base, base_anon = samples[0][1], samples[0][2]
    end, end_anon = samples[-1][1], samples[-1][2]
    benchmark.extra_info.update(
        queries=total,
        rss_after_1000_kb=base,
        rss_end_kb=end,
        rss_peak_kb=max(x[1] for x in samples),
        growth_pct=100.0 * (end - base) / base,
        anon_after_1000_kb=base_anon,
        anon_end_kb=end_anon,
        anon_growth_pct=100.0 * (end_anon - base_anon) / base_anon,
        samples_done_rss_anon_file_kb=samples,
        passages=_passages(),
        load=_load_avg(),
    )
    if not smoke() and total >= 100_000:
        # the process's own memory; mapped index pages come in as queries touch them (bounded by the
        # index's size, shared with the page cache) and are reported beside it
        assert end_anon <= base_anon * 1.10, samples
