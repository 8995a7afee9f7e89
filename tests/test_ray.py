"""Shards as Ray actors (issue #23): the same answers as the in-process sharded index, faults flagged
instead of ranked silently, and Ray imported only when asked for.

One local Ray (2 CPUs) serves the whole module. Without Ray installed the Ray tests skip, unless
TELUSUR_REQUIRE_RAY=1 (CI) makes a missing Ray a failure.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search import Document, Index, ShardedIndex
from search.sharded import SearchResult, shard_of

EN = ["river", "border", "crossing", "people", "queue", "night", "car", "the", "of", "mountain", "what", "how"]
ID = ["warga", "rusia", "melarikan", "perbatasan", "antrean", "yang", "dan", "kota", "mobilisasi", "diri", "apa"]
N_SHARDS = 3

#: fixed queries covering each path: one-round ranked ORs (statistics computed at commit), phrases,
#: must/not, boolean operators, title and lang filters (a round of statistics from the shards)
QUERIES = [
    "warga river",
    "perbatasan",
    "people queue night",
    '"warga rusia" kota',
    "+border -night",
    "kota AND river",
    "antrean OR mountain",
    "title:warga crossing",
    "kota lang:id",
    "what is the border of the river",
]


def _corpus(n: int = 90) -> list[Document]:
    out = []
    for i in range(n):
        en = " ".join(EN[(i * j) % 10] for j in range(1, 14))
        idn = " ".join(ID[(i + j * 3) % 10] for j in range(1, 20))
        text = f"{idn}. {en}." if i % 3 else f"{en}. {en} {EN[i % 10]}."
        meta = {"n": i} if i % 5 == 0 else None
        lang = None if i % 4 else "en"
        out.append(Document(f"law/{i}", text, title=f"{ID[i % 10]} {EN[i % 7]}", lang=lang, meta=meta))
    return out


def _ray_or_skip():
    try:
        import ray
    except ImportError:
        if os.environ.get("TELUSUR_REQUIRE_RAY") == "1":
            pytest.fail("TELUSUR_REQUIRE_RAY=1 but Ray is not installed (pip install -e '.[test,ray]')")
        pytest.skip("Ray is not installed: pip install '.[ray]' (TELUSUR_REQUIRE_RAY=1 makes this a failure)")
    return ray


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the module (starting one takes seconds), 2 CPUs, usage stats off."""
    ray = _ray_or_skip()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ray") / "law3"
    idx = ShardedIndex.create(path, shards=N_SHARDS, passage_words=8)
    with idx.writer() as w:
        w.add_many(_corpus(), workers=1)
    return path


def view(hits) -> list[tuple]:
    """Everything a caller reads from a hit (scores compared exactly: the same arithmetic)."""
    return [
        (h.doc_id, h.passage, h.lang, h.score, h.title, h.text, h.meta, h.snippet, h.snippet_highlights, h.highlights)
        for h in hits
    ]


def without(hits, missing: list[int], k: int) -> list[tuple]:
    """The first ``k`` hits of a full ranking that live outside the ``missing`` shards."""
    return view([h for h in hits if shard_of(h.doc_id, N_SHARDS) not in missing][:k])


class _Rounds:
    """Counts the fan-out rounds (calls to every shard's actor at once) ``on_ray`` makes from now on:
    ``n``, which the caller sets to 0 before the search it counts."""

    def __init__(self, on_ray) -> None:
        from search.distributed import RayShardedIndex

        self.n = 0
        fanout = RayShardedIndex._fanout

        def counted(index, calls, deadline):
            self.n += 1
            return fanout(index, calls, deadline)

        on_ray._fanout = counted.__get__(on_ray)


# -- Ray stays optional (these run without Ray) -----------------------------------------------------------


def test_import_and_query_do_not_import_ray(tmp_path: Path) -> None:
    path = tmp_path / "s2"
    idx = ShardedIndex.create(path, shards=2, passage_words=8)
    with idx.writer() as w:
        w.add_many(_corpus(12), workers=1)
    code = (
        "import sys, search\n"
        "from cli.main import main\n"
        f"sys.argv = ['search', 'query', 'warga', '--json', '--index', {str(path)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('RAY' if 'ray' in sys.modules else 'NORAY')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stderr.endswith("NORAY"), r.stderr
    assert json.loads(r.stdout)["hits"]


def test_ray_options_without_an_address_are_refused(built: Path) -> None:
    from search import InvalidArgument

    with pytest.raises(InvalidArgument, match="ray_address"):
        ShardedIndex.open(built, timeout=3)


def test_cli_ray_needs_a_sharded_index(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.app import app

    single = tmp_path / "one"
    idx = Index.create(single)
    with idx.writer() as w:
        w.add(Document("a", "warga kota"))
    r = CliRunner().invoke(app, ["query", "warga", "--index", str(single), "--ray", "local"])
    assert r.exit_code == 2 and "needs a sharded index" in r.stderr and "Traceback" not in r.output


def test_local_search_result_is_never_partial(built: Path) -> None:
    res = ShardedIndex.open(built).search("warga river")
    assert isinstance(res, SearchResult) and res and not res.partial and res.missing_shards == []


# -- on Ray ---------------------------------------------------------------------------------------------


def test_ray_answers_equal_the_in_process_answers(ray_local, built: Path) -> None:
    local = ShardedIndex.open(built)
    on_ray = ShardedIndex.open(built, ray_address="local")
    try:
        assert on_ray.n_shards == N_SHARDS and len(on_ray) == len(local) == 90
        pids = ray_local.get([a.ping.remote() for a in on_ray.actors])
        assert os.getpid() not in pids and len(set(pids)) == N_SHARDS  # each shard in its own actor process
        for q in QUERIES:
            # a small page is searched and fetched in one call per shard; k=80 over 3 shards in two calls
            for kwargs in ({}, {"k": 4, "offset": 3}, {"per_document": False, "k": 15}, {"k": 80, "offset": 2}):
                want = local.search(q, **kwargs)
                got = on_ray.search(q, **kwargs)
                assert not got.partial, q
                assert view(got) == view(want), (q, kwargs)
        assert any(on_ray.search(q) for q in QUERIES)  # the cases are not all empty
        top = local.search("warga river")[0]
        assert on_ray.explain("warga river", top.doc_id, top.passage).value == top.score
        assert on_ray.get("law/7") == local.get("law/7") and "law/7" in on_ray and "law/x" not in on_ray
        assert on_ray.stats()["documents"] == 90 and on_ray.stats()["shards"] == N_SHARDS
        on_ray.verify()
    finally:
        on_ray.close()


def test_actors_warm_and_prefetch_in_their_own_processes(ray_local, tmp_path: Path) -> None:
    """``warm`` and ``prefetch`` on a sharded index on Ray run in every actor, each in its own caches (a
    long-lived actor loads at start what queries need): every document's text and every word in more
    than ``codec.SMALL`` passages of each shard are held, and no answer changes."""
    from search import codec

    path = tmp_path / "frequent"
    with ShardedIndex.create(path, shards=2).writer() as w:
        w.add_many([Document(f"d{i}", " ".join(EN[(i * j) % 10] for j in range(1, 8))) for i in range(400)], workers=1)
    local = ShardedIndex.open(path)
    frequent = sum(
        int((seg.reader._layout.df > codec.SMALL).sum())
        for shard in local._state[1]
        for seg in shard.index._snapshot.segments
    )
    on_ray = ShardedIndex.open(path, ray_address="local")
    try:
        before = [view(on_ray.search(q)) for q in QUERIES]
        on_ray.warm()
        got = on_ray.prefetch(share=0.75, seconds=0.5)
        assert got["documents"] == 400 and got["terms"] == frequent and frequent > 0
        assert [view(on_ray.search(q)) for q in QUERIES] == before == [view(local.search(q)) for q in QUERIES]
    finally:
        on_ray.close()


def test_a_killed_actor_restarts_and_the_stream_stays_exact(ray_local, built: Path) -> None:
    """The call lost with the actor is sent once more; it waits for the restart, so (with a generous
    timeout) no answer of the stream is partial or wrong, and the shard comes back in a new process."""
    local = ShardedIndex.open(built)
    full = {q: local.search(q, k=200) for q in QUERIES}
    on_ray = ShardedIndex.open(built, ray_address="local", timeout=60)
    try:
        victim = on_ray.actors[1]
        before = ray_local.get(victim.ping.remote())
        for step in range(24):
            q = QUERIES[step % len(QUERIES)]
            if step == 4:
                ray_local.kill(victim, no_restart=False)
            got = on_ray.search(q, k=5)
            assert not got.partial and view(got) == view(full[q][:5]), (step, q)
        after = ray_local.get(victim.ping.remote())
        assert after != before  # it really was restarted
    finally:
        on_ray.close()


def test_answers_while_a_shard_is_down_are_flagged_partial_and_exact_for_the_rest(ray_local, built: Path) -> None:
    local = ShardedIndex.open(built)
    full = {q: local.search(q, k=200) for q in QUERIES}
    on_ray = ShardedIndex.open(built, ray_address="local", timeout=20)
    try:
        for q in QUERIES[:3]:
            assert view(on_ray.search(q, k=6)) == view(full[q][:6])
        ray_local.kill(on_ray.actors[2], no_restart=True)
        # ray.kill is asynchronous: on a quiet machine the next query was still answered by the actor;
        # wait until it stops answering (within seconds) before asking for partial answers
        with pytest.raises(ray_local.exceptions.RayActorError):
            for _ in range(100):
                ray_local.get(on_ray.actors[2].ping.remote(), timeout=60)
                time.sleep(0.1)
        partial_plain = 0
        for q in QUERIES:
            got = on_ray.search(q, k=6)
            assert got.partial and got.missing_shards == [2], q
            if q in ("warga river", "perbatasan", "people queue night", "what is the border of the river"):
                # statistics computed at commit: the other shards' hits exactly, global scores
                assert view(got) == without(full[q], [2], 6), q
                partial_plain += 1
            else:  # scored with the statistics of the shards that answered: never from shard 2
                assert all(shard_of(h.doc_id, N_SHARDS) != 2 for h in got), q
        assert partial_plain == 4
        on_ray.one_round, on_ray.plan_cache = False, 0  # as without a table: two phases, shard 2 missing
        answered = 0
        for q in QUERIES:
            got = on_ray.search(q, k=6)
            assert got.partial and got.missing_shards == [2], q
            assert all(shard_of(h.doc_id, N_SHARDS) != 2 for h in got), q
            answered += bool(got)
        assert answered >= len(QUERIES) - 2
    finally:
        on_ray.close()


def wait_until_down(ray, actor, limit: float = 60.0) -> None:
    """Return once ``actor`` no longer answers a ping at once (killed, not yet restarted)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            ray.get(actor.ping.remote(), timeout=0.5)
        except Exception:  # died, unavailable while restarting, or too slow: down for this test
            return
        time.sleep(0.05)
    raise AssertionError("the killed actor kept answering")


def test_a_query_timeout_leaves_out_the_late_shards(ray_local, built: Path) -> None:
    os.environ["TELUSUR_RAY_TIMEOUT"] = "7.5"  # how the command line and the server set it
    try:
        on_ray = ShardedIndex.open(built, ray_address="local")
    finally:
        del os.environ["TELUSUR_RAY_TIMEOUT"]
    assert on_ray.timeout == 7.5
    try:
        # shard 0 late for certain: its actor (one call at a time) is busy for seconds. A killed actor was
        # late only while Ray restarted it, and a quiet machine restarts one within the query's timeout
        victim = on_ray.actors[0]
        busy = victim.__ray_call__.remote(lambda actor, seconds: time.sleep(seconds), 5.0)
        start = time.monotonic()
        got = on_ray.search("warga river", k=5, timeout=0.05)
        took = time.monotonic() - start
        assert got.partial and got.missing_shards == [0]
        assert got and all(shard_of(h.doc_id, N_SHARDS) != 0 for h in got)
        ray_local.get(busy)
        assert took < 30  # bounded by the timeout, not by the restart (generous: the machine is shared)
        with pytest.raises(Exception, match="timeout"):
            on_ray.search("warga", timeout=0)
    finally:
        on_ray.close()


def test_cli_query_on_ray_prints_only_json_equal_to_in_process(ray_local, built: Path) -> None:
    address = ray_local.get_runtime_context().gcs_address
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    for q in ("warga river", '"warga rusia" kota'):
        base = [
            sys.executable,
            "-c",
            "from cli.main import main; main()",
            "query",
            q,
            "--json",
            "--index",
            str(built),
            "-k",
            "7",
        ]
        a = subprocess.run(base, capture_output=True, text=True, timeout=120, env=env)
        b = subprocess.run([*base, "--ray", address], capture_output=True, text=True, timeout=180, env=env)
        assert a.returncode == 0 and b.returncode == 0, b.stderr
        ja, jb = json.loads(a.stdout), json.loads(b.stdout)  # stdout is one JSON document, nothing else
        assert jb["partial"] is False and jb["missing_shards"] == [] and jb["shards"] == N_SHARDS
        assert jb["hits"] == ja["hits"] and jb["hits"]


def test_http_answers_from_ray_shards_carry_the_partial_flags(ray_local, built: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from cli.serve import ServeConfig
    from cli.serve.app import create_app

    local = ShardedIndex.open(built)
    client = TestClient(create_app(ServeConfig(indexes={"law": str(built)}, ray="local")))
    want = [h.to_dict() for h in local.search("warga river", k=6)]
    body = client.get("/v1/indexes/law/search", params={"q": "warga river", "k": 6}).json()
    assert body["partial"] is False and body["missing_shards"] == []
    assert [{k: v for k, v in h.items() if k != "rank"} for h in body["hits"]] == want
    # a shard that stays down: the answer says which, and holds the other shards' hits exactly (the
    # app keeps its indexes to itself: find the one it opened on Ray among the live objects)
    import gc

    from search.distributed import RayShardedIndex

    on_ray = next(o for o in gc.get_objects() if isinstance(o, RayShardedIndex) and o.path == built and o._actors)
    ray_local.kill(on_ray.actors[0], no_restart=True)
    with pytest.raises(ray_local.exceptions.RayActorError):  # ray.kill is asynchronous: wait until it is down
        for _ in range(100):
            ray_local.get(on_ray.actors[0].ping.remote(), timeout=60)
            time.sleep(0.1)
    body = client.get("/v1/indexes/law/search", params={"q": "warga river", "k": 6}).json()
    assert body["partial"] is True and body["missing_shards"] == [0]
    full = local.search("warga river", k=200)
    assert [h["doc_id"] for h in body["hits"]] == [h.doc_id for h in full if shard_of(h.doc_id, N_SHARDS) != 0][:6]
    on_ray.close()


def test_a_server_on_ray_stops_on_sigterm_without_a_traceback(ray_local, built: Path, tmp_path: Path) -> None:
    """``search serve --ray`` answers, then SIGTERM stops it as it stops without Ray: drained, ended by
    the signal (uvicorn re-raises it), and no traceback or Ray signal report in its output."""
    from live_server import live_server

    address = ray_local.get_runtime_context().gcs_address
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    with live_server(tmp_path, "--index", str(built), "--ray", address, env=env) as server:
        import httpx

        body = httpx.get(f"{server.url}/v1/indexes/{built.name}/search", params={"q": "warga river"}).json()
        assert body["hits"] and body["partial"] is False
        os.kill(server.proc.pid, signal.SIGTERM)
        assert server.proc.wait(timeout=60) in (0, -signal.SIGTERM)
        log = server.log_text()
    assert "Traceback" not in log and "SIGTERM received" not in log, log[-3000:]


# -- building the shards on Ray (search index --shards N --ray) -------------------------------------------


def _files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _our_processes(word: str) -> list[int]:
    """Descendants of this process (the local Ray's workers) whose command line names ``word``."""
    parents: dict[int, int] = {}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
            if word in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    me = os.getpid()

    def ours(pid: int) -> bool:
        for _ in range(64):
            pid = parents.get(pid, 0)
            if pid == me:
                return True
            if pid <= 1:
                return False
        return False

    return [pid for pid in found if ours(pid)]


def _ray_build(path: Path, docs: list[Document], **kwargs) -> ShardedIndex:
    idx = ShardedIndex.create(path, shards=N_SHARDS, passage_words=8)
    with idx.writer(buffer_tokens=300) as w:  # several batches and segments per shard
        assert w.add_many(docs, ray_address="local", **kwargs) == len(docs)
    return ShardedIndex.open(path)


def test_a_ray_build_answers_as_the_in_process_build_and_is_reproducible(ray_local, built: Path, tmp_path) -> None:
    local = ShardedIndex.open(built)
    on_ray = _ray_build(tmp_path / "a", _corpus())
    on_ray.verify()  # checksums, and every document in the shard its id routes to
    assert len(on_ray) == 90
    assert [len(s.index) for s in on_ray.shards] == [len(s.index) for s in local.shards]
    assert sum(len(s.snapshot.segments) for s in on_ray.shards) > N_SHARDS  # flushed more than once
    for q in QUERIES:
        for kwargs in ({}, {"per_document": False, "k": 15}):
            assert view(on_ray.search(q, **kwargs)) == view(local.search(q, **kwargs)), (q, kwargs)
    # which documents land in which segment depends on the input only: a second build is byte-identical
    _ray_build(tmp_path / "b", _corpus())
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    # an update on Ray goes on top of what is there, to the shard that owns each id
    with on_ray.writer() as w:  # a streaming build: one set of builder actors for the writer's life
        w.add_many([Document("new/1", "warga river mountain")], ray_address="local")
        builders = list(w._ray_builders)
        w.add_many([Document("new/2", "kota night")], ray_address="local")
        assert w._ray_builders == builders
    # stopped when the writer closed: ray.kill is asynchronous, so an actor may still answer a ping sent
    # at once; it must stop answering within seconds
    with pytest.raises(ray_local.exceptions.RayActorError):
        for _ in range(100):
            ray_local.get(builders[0].ping.remote(), timeout=60)
            time.sleep(0.1)
    on_ray.refresh()
    assert len(on_ray) == 92 and on_ray.get("new/2").text == "kota night"
    assert on_ray.search('"warga river mountain"')[0].doc_id == "new/1"


def test_a_failed_ray_build_leaves_the_index_as_it_was(ray_local, tmp_path) -> None:
    from search import InvalidDocument, WorkerFailed

    path = tmp_path / "s"
    idx = ShardedIndex.create(path, shards=N_SHARDS, passage_words=8)
    with idx.writer() as w:
        w.add_many(_corpus(30), workers=1)
    before = _files(path)
    # a bad document (an id already in the index) stops the build in the coordinator
    with pytest.raises(InvalidDocument, match="law/3"):
        with idx.writer(buffer_tokens=300) as w:
            w.add_many(_corpus(90)[30:] + [Document("law/3", "again")], ray_address="local")
    assert _files(path) == before
    # a builder process killed in the middle of the stream: WorkerFailed, nothing of it kept

    def killing_stream():
        for n, doc in enumerate(_corpus(90)[30:]):
            if n == 20:
                deadline = time.monotonic() + 60
                while not (victims := _our_processes("ShardBuilder")) and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert victims, "no ShardBuilder actor process found"
                os.kill(victims[0], signal.SIGKILL)
            yield doc

    with pytest.raises(WorkerFailed, match="on Ray"):
        with ShardedIndex.open(path).writer(buffer_tokens=300) as w:
            w.add_many(killing_stream(), ray_address="local")
    assert _files(path) == before
    assert len(ShardedIndex.open(path)) == 30


def test_cli_index_on_ray(ray_local, built: Path, tmp_path) -> None:
    from typer.testing import CliRunner

    from cli.app import app

    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"id": d.id, "text": d.text, "title": d.title}) + "\n" for d in _corpus()))
    out = tmp_path / "idx"
    runner = CliRunner()
    r = runner.invoke(app, ["index", str(src), "--index", str(out), "--shards", "2", "--ray", "local"])
    assert r.exit_code == 0, r.output
    inproc = tmp_path / "idx2"
    r = runner.invoke(app, ["index", str(src), "--index", str(inproc), "--shards", "2"])
    assert r.exit_code == 0, r.output
    a, b = ShardedIndex.open(out), ShardedIndex.open(inproc)
    assert len(a) == 90
    for q in QUERIES[:5]:
        assert view(a.search(q)) == view(b.search(q)), q
    # --ray builds shards: a single index is a user's mistake (exit 2, one line, nothing written)
    single = tmp_path / "one"
    r = runner.invoke(app, ["index", str(src), "--index", str(single), "--ray", "local"])
    assert r.exit_code == 2 and "--shards" in r.stderr and "Traceback" not in r.output
    assert not single.exists()


def test_two_language_queries_take_one_round_with_exact_scores(ray_local, tmp_path) -> None:
    """A phrase or boolean query over an index of two languages needs to know where it matches (the
    language weights); with the table computed at commit every shard answers in one call, and a shard
    whose rows are all of one language is rescaled by the coordinator: the same hits and scores as a
    single index of the documents."""
    from search.index import _parsed

    def ids(shard: int, n: int, prefix: str) -> list[str]:
        out, j = [], 0
        while len(out) < n:
            if shard_of(f"{prefix}{j}", N_SHARDS) == shard:
                out.append(f"{prefix}{j}")
            j += 1
        return out

    docs = []  # shard 0: Indonesian only; shard 1: English only; shard 2: both
    for j, doc_id in enumerate(ids(0, 6, "id/")):
        docs.append(Document(doc_id, f"warga rusia melarikan diri ke kota {'perbatasan ' * j} yang jauh", lang="id"))
    for j, doc_id in enumerate(ids(1, 6, "en/")):
        docs.append(Document(doc_id, f"the border crossing at night {'river ' * j} with people", lang="en"))
    for j, doc_id in enumerate(ids(2, 4, "both/")):
        text = "warga rusia di kota" if j % 2 else "a border crossing queue"
        docs.append(Document(doc_id, f"{text} {'antrean ' * j}", lang="id" if j % 2 else "en"))
    single = Index.create(tmp_path / "single", passage_words=8)
    with single.writer() as w:
        w.add_many(docs, workers=1)
    sharded = ShardedIndex.create(tmp_path / "sharded", shards=N_SHARDS, passage_words=8)
    with sharded.writer() as w:
        w.add_many(docs, workers=1)
    on_ray = ShardedIndex.open(tmp_path / "sharded", ray_address="local")
    try:
        rounds = _Rounds(on_ray)
        weighed = 0
        for q in ('"warga rusia" OR "border crossing"', '"warga rusia" kota', "+crossing night", '"rusia melarikan"'):
            for kwargs in ({"k": 5}, {"k": 12, "per_document": False}):
                rounds.n = 0
                got = on_ray.search(q, **kwargs)
                assert rounds.n == 1, (q, kwargs)
                want = single.search(q, **kwargs)
                assert [(h.doc_id, h.passage, h.score, h.text) for h in got] == [
                    (h.doc_id, h.passage, h.score, h.text) for h in want
                ], (q, kwargs)
                assert got and not got.partial
                weights = Index.language_weights(_parsed(q), ["en", "id"])
                weighed += any(weights[h.lang] < 1 for h in want) and len({h.lang for h in want}) > 1
        assert weighed  # some answers hold both languages, one weighed below 1 (rescaled rows among them)
        rounds.n = 0
        big = on_ray.search('"warga rusia" OR "border crossing"', k=80)  # 3 x 80 rows: fetched in a second call
        want = single.search('"warga rusia" OR "border crossing"', k=80)
        assert rounds.n == 2 and [(h.doc_id, h.score) for h in big] == [(h.doc_id, h.score) for h in want]
    finally:
        on_ray.close()


def test_a_shard_matching_one_language_gives_the_rows_one_index_gives_without_a_second_round(
    ray_local, tmp_path, ulp_tie_docs
) -> None:
    """A shard whose passages match in one language, while the index matches in two, also ranks under
    the weights of both (the only other weights it can end with); rescaling its rows would round d0's
    passages 0 and 1 (one ulp apart under k1 = 0.77) to a tie that one index breaks by passage number.
    The same hits and scores as one index, with and without the table, rows alone or with their hits,
    in one round with the table."""
    docs = ulp_tie_docs
    assert shard_of("d0", 2) != shard_of("d3", 2)
    one = Index.create(tmp_path / "one", passage_words=8)
    sharded = ShardedIndex.create(tmp_path / "sh", shards=2, passage_words=8)
    for ix in (one, sharded):
        with ix.writer() as w:
            w.add_many(docs, workers=1)
    on_ray = ShardedIndex.open(tmp_path / "sh", ray_address="local")
    q = "+winter +garden +market"
    try:
        rounds = _Rounds(on_ray)
        for k in (10, 200):  # 200: the rows alone, their hits fetched in a second call
            want = [(h.doc_id, h.passage, h.score, h.text) for h in one.search(q, k=k, k1=0.77)]
            assert ("d0", 0) in [w[:2] for w in want]
            for table in (True, False):
                on_ray.one_round, on_ray.plan_cache = table, 0
                rounds.n = 0
                got = on_ray.search(q, k=k, k1=0.77)
                assert [(h.doc_id, h.passage, h.score, h.text) for h in got] == want, (k, table)
                assert rounds.n == (1 if table else 2) + (k == 200), (k, table)
    finally:
        on_ray.close()


def test_plans_and_statistics_are_kept_per_commit(ray_local, tmp_path) -> None:
    """A repeated query string skips planning and, without a table, the statistics round; a new commit
    forgets them (answers follow the new statistics)."""
    path = tmp_path / "s"
    idx = ShardedIndex.create(path, shards=N_SHARDS, passage_words=8)
    with idx.writer() as w:
        w.add_many(_corpus(40), workers=1)
    on_ray = ShardedIndex.open(path, ray_address="local")
    on_ray.one_round = False  # as without a table: a statistics round first
    try:
        rounds = _Rounds(on_ray)
        q = '"warga rusia" kota'
        first = view(on_ray.search(q, k=5))
        assert rounds.n == 2
        rounds.n = 0
        assert view(on_ray.search(q, k=5)) == first and rounds.n == 1  # statistics kept for this commit
        with idx.writer() as w:
            w.add_many([Document(f"more/{i}", "warga rusia kota kota kota") for i in range(6)], workers=1)
        assert on_ray.refresh()
        rounds.n = 0
        got = on_ray.search(q, k=5)
        assert rounds.n == 2 and view(got) == view(ShardedIndex.open(path).search(q, k=5)) != first
    finally:
        on_ray.close()


def test_the_query_timeout_of_the_command_line_and_server_comes_from_the_environment(monkeypatch) -> None:
    from search import InvalidArgument
    from search.distributed import DEFAULT_TIMEOUT, TIMEOUT_ENV, _env_timeout

    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert _env_timeout() == DEFAULT_TIMEOUT
    monkeypatch.setenv(TIMEOUT_ENV, "2.5")
    assert _env_timeout() == 2.5
    monkeypatch.setenv(TIMEOUT_ENV, "none")
    assert _env_timeout() is None
    for bad in ("0", "-1", "soon"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(InvalidArgument, match=TIMEOUT_ENV):
            _env_timeout()


def test_filters_facets_and_expanded_words_on_ray_equal_one_index(ray_local, tmp_path) -> None:
    """Filters, negation, facets, fuzzy and prefix words on Ray answer as one index of the same documents
    (and as the in-process sharded index), with and without the document-frequency table; a repeated
    expanded query keeps its expansions with the plan (no expansion round again)."""
    from test_sharded_features import EXPANDED, FIELDS, FILTERED, _build, mixed_corpus

    docs = mixed_corpus(90)
    single = _build(tmp_path, None, docs)
    local = _build(tmp_path, N_SHARDS, docs)
    on_ray = ShardedIndex.open(local.path, ray_address="local")
    try:
        assert on_ray.fields == FIELDS
        for one_round in (True, False):
            on_ray.one_round = one_round  # False: as without a table, a statistics round first
            on_ray._plans.clear()
            for q, flt in FILTERED:
                kwargs = {} if flt is None else {"filter": flt}
                for more in ({}, {"k": 30, "per_document": False}):
                    want = view(single.search(q, **kwargs, **more))
                    got = on_ray.search(q, **kwargs, **more)
                    assert not got.partial and view(got) == want == view(local.search(q, **kwargs, **more)), (q, flt)
            for q, extra in EXPANDED:
                want = view(single.search(q, k=12, **extra))
                assert want and view(on_ray.search(q, k=12, **extra)) == want, (q, extra, one_round)
            for q, fields, flt in (
                ("warga river", ["source", "year", "tags"], None),
                ("perbatasan", ["tags"], "-source:kemenkeu"),
                ("mount*", ["source"], None),
            ):
                assert on_ray.facets(q, fields, filter=flt) == single.facets(q, fields, filter=flt), q
        top = single.search("perbatasn~ river", k=1)[0]
        assert on_ray.explain("perbatasn~ river", top.doc_id, top.passage).value == pytest.approx(top.score, abs=1e-12)
        on_ray.one_round = True
        rounds = _Rounds(on_ray)
        q = "mountian~1 river"
        on_ray.search(q, k=5, filter="year:>2012")
        rounds.n = 0
        assert view(on_ray.search(q, k=5, filter="year:>2012")) == view(single.search(q, k=5, filter="year:>2012"))
        assert rounds.n == 1  # the expansions were kept with the plan: one round, as any query
    finally:
        on_ray.close()


def test_a_repeated_query_sends_its_plan_once_and_again_to_a_restarted_actor(ray_local, built: Path) -> None:
    """Actors keep a plan under its key: a repeated query sends the key alone. A restarted actor has
    lost it, says so (None) instead of guessing, and the coordinator sends it the plan again: answers
    stay exact and complete."""
    local = ShardedIndex.open(built)
    on_ray = ShardedIndex.open(built, ray_address="local", timeout=60)
    try:
        q = "warga river"
        want = view(local.search(q))
        assert view(on_ray.search(q)) == want
        decided = next(v for k, v in on_ray._plans.items() if k[1] == q)
        key = decided[3]["search"]
        assert all(key in sent for sent in on_ray._sent)
        victim = on_ray.actors[1]
        call = json.dumps([key, [10, True], None]).encode()  # the key alone: the plan and statistics kept with it
        assert ray_local.get(victim.search_fetch.remote(call)) is not None  # kept: the key suffices
        before = ray_local.get(victim.ping.remote())
        ray_local.kill(victim, no_restart=False)
        deadline = time.monotonic() + 60
        while True:  # ray.kill is asynchronous: wait for the restarted process
            try:
                if ray_local.get(victim.ping.remote(), timeout=5) != before:
                    break
            except Exception:
                pass
            assert time.monotonic() < deadline, "the actor did not restart"
            time.sleep(0.2)
        assert ray_local.get(victim.search_fetch.remote(call)) is None  # it lost the plan
        got = on_ray.search(q)
        assert not got.partial and view(got) == want
        assert ray_local.get(victim.search_fetch.remote(call)) is not None  # sent again
    finally:
        on_ray.close()


def test_a_two_phase_query_sends_its_plan_once_and_again_to_an_actor_that_lost_it(ray_local, built: Path) -> None:
    """Without the table (a round of statistics, or for a query whose languages need evaluating of
    document frequencies, first) the plan goes with that first call only: the search sends the key with
    the global statistics, and each actor searches with the plan object it kept. An actor that lost the
    plan between the two phases (its kept plans turned over, as after many other queries, or a restart)
    answers None and is sent everything: the same answers."""
    from search.distributed import KEPT_PLANS, RayShardedIndex
    from search.index import _parsed
    from search.sharded import QueryPlan

    local = ShardedIndex.open(built)
    on_ray = ShardedIndex.open(built, ray_address="local", timeout=60)
    on_ray.one_round = False  # as without a table: a statistics round before every search
    on_ray.plan_cache = 0  # every query planned anew: a new key each time
    sent = 0
    forget = False
    other = QueryPlan(_parsed("other"), ("en",), None, 1.2, 0.75)  # the plan other queries' keys hold
    given, keyed = RayShardedIndex._given, RayShardedIndex._keyed

    def counted_given(self, plan, stats, weights):  # counts the times the plan is sent (for all shards)
        make = given(self, plan, stats, weights)

        def made():
            nonlocal sent
            sent += 1
            return make()

        return made

    def then_forget(self, method, key, plan_given, *args, **kwargs):
        got = keyed(self, method, key, plan_given, *args, **kwargs)
        if forget and method in ("statistics", "frequencies"):
            # shard 1 keeps KEPT_PLANS other plans: the query's own is gone before its search
            calls = [json.dumps([f"other.{j}", [], None]).encode() for j in range(KEPT_PLANS)]
            ray_local.get([self.actors[1].statistics.remote(call, other) for call in calls])
        return got

    try:
        rounds = _Rounds(on_ray)
        on_ray._given = counted_given.__get__(on_ray)
        on_ray._keyed = then_forget.__get__(on_ray)
        for q in QUERIES:
            for kwargs in ({"k": 5}, {"k": 70, "per_document": False}):  # searched and fetched in one call, or not
                rounds.n = sent = 0
                got = on_ray.search(q, **kwargs)
                assert not got.partial and view(got) == view(local.search(q, **kwargs)), (q, kwargs)
                assert rounds.n == (2 if kwargs["k"] == 5 else 3) and sent == 1, (q, kwargs, rounds.n, sent)
        forget = True
        for q in ('"warga rusia" kota', "+border -night", "warga river"):
            for kwargs in ({"k": 5}, {"k": 70, "per_document": False}):
                rounds.n = sent = 0
                got = on_ray.search(q, **kwargs)
                assert not got.partial and view(got) == view(local.search(q, **kwargs)), (q, kwargs)
                # statistics, the search (shard 1 answers None), the search again to shard 1 with the plan
                assert rounds.n == (3 if kwargs["k"] == 5 else 4) and sent == 2, (q, kwargs, rounds.n, sent)
    finally:
        on_ray.close()


def test_an_actor_given_a_plan_as_texts_answers_as_given_the_plan(ray_local, built: Path) -> None:
    """A plan parsed from texts reaches an actor as those texts inside the call's one JSON argument; the
    actor parses them again, and its statistics and search answer as for the pickled plan object."""
    import dataclasses

    on_ray = ShardedIndex.open(built, ray_address="local", timeout=60)
    try:
        actor, found = on_ray.actors[0], 0
        for q in QUERIES:
            plan = on_ray._plan(on_ray.parse(q), None, None, None)
            stats = on_ray._combine(plan, [json.loads(ray_local.get(a.statistics.remote(
                json.dumps([f"s.{q}", [], None]).encode(), plan))) for a in on_ray.actors])  # fmt: skip
            scoring = [stats[0].to_json(), stats[1]]
            decided = on_ray._decided(q, None, None, None, None, False, False, None)[0][0]
            assert decided.source == (q, None) and decided.text_form(on_ray.settings.fields) is not None, q
            form = dataclasses.replace(plan, source=(q, None)).text_form(on_ray.settings.fields)
            as_texts = json.dumps([f"t.{q}", [10, True], scoring, form]).encode()
            as_object = json.dumps([f"o.{q}", [10, True], scoring]).encode()
            got = json.loads(ray_local.get(actor.search_fetch.remote(as_texts)))
            assert got == json.loads(ray_local.get(actor.search_fetch.remote(as_object, plan))), q
            found += bool(got[0])
            bare = json.dumps([f"t.{q}", [10, True], None]).encode()  # the plan kept under its key
            assert json.loads(ray_local.get(actor.search_fetch.remote(bare))) == got, q
        assert found >= len(QUERIES) // 2  # the shard holds hits for most of them
        rewrites = [("warga perbatasn", (True, False)), ("warga perba", (False, True)), ("perbat*", (False, False))]
        for q, extra in rewrites:
            rewritten = on_ray._decided(q, None, None, None, None, *extra, None)[0][0]
            assert rewritten.text_form(on_ray.settings.fields) is None, q  # rewritten or expanded: sent whole
    finally:
        on_ray.close()
