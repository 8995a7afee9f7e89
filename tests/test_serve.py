"""Tests for ``search serve`` through an ASGI test client: every endpoint and error code, paging, the
language filter, writes with and without the token, body and query limits, commits picked up from
another process, and that ``search query`` never imports the server's packages."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from cli.app import app as cli_app
from cli.hitjson import PLAIN_FIELDS, SNIPPET_FIELDS, hit_objects
from cli.serve import ServeConfig, parse_index_specs
from cli.serve.app import MAX_QUERY_CHARS, Guard, create_app
from search import Document, Index

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2 for its test client; httpx works the same
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
from tests.conftest import SEEDS

UPPER_LARS = "002_8eb0183dd21bba0b.txt"
TOKEN = "s3cret-token"
XSS = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"> kopi'


def build_index(path: Path) -> Index:
    """The seeds, 23 short coffee documents (for paging), an id with slashes, and a hostile document."""
    index = Index.create(path)
    with index.writer() as w:
        for f in sorted(SEEDS.glob("*.txt")):
            w.add(Document(id=f.name, text=f.read_text(encoding="utf-8")))
        for i in range(23):
            lang = "id" if i % 2 else "en"
            text = f"Kopi nomor {i} dari kebun yang tinggi." if lang == "id" else f"Coffee kopi number {i} grown high."
            w.add(Document(id=f"kopi-{i:02d}", text=text, title=f"Kopi {i}", lang=lang, meta={"n": i}))
        w.add(Document(id="notes/2024/a b.txt", text="A file in a folder about teh manis.", title="Folder file"))
        w.add(Document(id="xss", text=XSS, title="<b>bold?</b>"))
    return index


@pytest.fixture(scope="module")
def index_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "idx"
    build_index(path)
    return path


@pytest.fixture(scope="module")
def client(index_path: Path) -> TestClient:
    return TestClient(create_app(ServeConfig(indexes={"main": str(index_path)}, quiet=True)))


@pytest.fixture()
def writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[TestClient, Path]:
    """A server with --allow-writes over a fresh index; the token comes from $TELUSUR_TOKEN."""
    path = tmp_path / "w"
    build_index(path)
    monkeypatch.setenv("TELUSUR_TOKEN", TOKEN)
    config = ServeConfig(indexes={"w": str(path)}, allow_writes=True, write_wait=0.0, quiet=True)
    return TestClient(create_app(config)), path


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body["error"]


# -- reading -------------------------------------------------------------------------------------------------


def test_health_and_index_list(client: TestClient, index_path: Path) -> None:
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    listed = client.get("/v1/indexes").json()["indexes"]
    assert [(x["name"], x["path"]) for x in listed] == [("main", str(index_path))]
    assert listed[0]["documents"] == 3 + 23 + 2


def test_index_stats_are_index_stats(client: TestClient, index_path: Path) -> None:
    body = client.get("/v1/indexes/main").json()
    expected = json.loads(json.dumps(Index.open(index_path).stats()))
    assert body == dict(name="main", **expected)
    assert body["path"] == str(index_path)


def test_upper_lars_english_first_with_both_words_highlighted(client: TestClient) -> None:
    hits = client.get("/v1/indexes/main/search", params={"q": "Upper Lars"}).json()["hits"]
    top = hits[0]
    assert (top["doc_id"], top["lang"], top["rank"]) == (UPPER_LARS, "en", 1)
    marked = [top["snippet"][s:e] for s, e in top["snippet_highlights"]]
    assert marked == ["Upper", "Lars"]
    assert [top["text"][s:e] for s, e in top["highlights"]] == ["Upper", "Lars"]


@pytest.mark.parametrize("query", ["Upper Lars", "kopi", '"mobilisasi parsial"', "Putin -Georgia"])
def test_hits_are_exactly_the_cli_json_hits(client: TestClient, index_path: Path, query: str) -> None:
    api = client.get("/v1/indexes/main/search", params={"q": query, "k": 5, "offset": 1})
    result = CliRunner().invoke(
        cli_app, ["query", query, "-k", "5", "--offset", "1", "--json", "--index", str(index_path)]
    )
    assert result.exit_code == 0, result.output
    assert api.json()["hits"] == json.loads(result.stdout)["hits"]
    assert api.json()["took_ms"] >= 0


def test_post_equals_get(client: TestClient) -> None:
    params = {"q": "kopi", "k": 7, "offset": 2, "lang": "id", "per_document": False}
    got = client.get("/v1/indexes/main/search", params=params).json()["hits"]
    posted = client.post("/v1/indexes/main/search", json=params).json()["hits"]
    assert got == posted and len(got) == 7


def test_paging_walks_the_full_ranking(client: TestClient) -> None:
    full = client.get("/v1/indexes/main/search", params={"q": "kopi", "k": 100}).json()["hits"]
    assert len(full) == 24  # 23 coffee documents and the hostile one
    pages = []
    for offset in range(0, 30, 10):
        page = client.get("/v1/indexes/main/search", params={"q": "kopi", "k": 10, "offset": offset}).json()
        pages.extend(page["hits"])
    assert [(h["rank"], h["doc_id"]) for h in pages] == [(h["rank"], h["doc_id"]) for h in full]
    assert [h["rank"] for h in pages] == list(range(1, 25))


def test_language_filter(client: TestClient) -> None:
    for lang in ("id", "en"):
        hits = client.get("/v1/indexes/main/search", params={"q": "kopi", "k": 100, "lang": lang}).json()["hits"]
        assert hits and {h["lang"] for h in hits} == {lang}
    both = client.get("/v1/indexes/main/search", params={"q": "kopi", "k": 100}).json()["hits"]
    assert {h["lang"] for h in both} == {"id", "en"}


def test_snippets_off_and_explain_on(client: TestClient) -> None:
    full = client.get("/v1/indexes/main/search", params={"q": "Upper Lars"}).json()["hits"]
    bare = client.get("/v1/indexes/main/search", params={"q": "Upper Lars", "snippets": "false"}).json()["hits"]
    assert bare == [{k: v for k, v in h.items() if k not in SNIPPET_FIELDS} for h in full]
    assert list(bare[0]) == ["rank", *PLAIN_FIELDS]
    explained = client.post("/v1/indexes/main/search", json={"q": "kopi number", "explain": True, "k": 3}).json()
    for hit in explained["hits"]:
        assert hit["explanation"]["value"] == pytest.approx(hit["score"], rel=1e-9)
        assert hit["explanation"]["details"]
    assert "explanation" not in full[0]


def test_documents_by_percent_encoded_id(client: TestClient) -> None:
    doc_id = "notes/2024/a b.txt"
    got = client.get(f"/v1/indexes/main/docs/{quote(doc_id, safe='')}")
    assert got.status_code == 200
    assert got.json() == {
        "id": doc_id,
        "title": "Folder file",
        "text": "A file in a folder about teh manis.",
        "lang": None,
        "meta": {},
    }
    assert client.get("/v1/indexes/main/docs/kopi-03").json()["meta"] == {"n": 3}
    assert_error(client.get("/v1/indexes/main/docs/nope"), 404, "document_not_found")


def test_openapi_document(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert {"get", "post"} <= set(paths["/v1/indexes/{name}/search"])
    assert {"get", "put", "delete"} <= set(paths["/v1/indexes/{name}/docs/{doc_id}"])
    assert "post" in paths["/v1/indexes/{name}/docs:bulk"]
    assert {"/health", "/v1/indexes", "/v1/indexes/{name}"} <= set(paths)


def test_the_page_is_served_self_contained(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'sha256-" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text  # no CDN: works offline
    assert "innerHTML" not in page.text


FAST_PATH_QUERIES = [
    "q=Upper+Lars",
    "q=kopi&k=3&offset=2",
    "q=kopi&k=100&lang=id&per_document=false",
    "q=kopi&snippets=false",
    "q=kopi+number&explain=true&k=2",
    "q=kopi&k=2&k=5",  # a repeated single-valued parameter: the last one counts
    "q=%22mobilisasi+parsial%22&k=0",
    "q=kopi+-nomor&snippets=0",
    "q=border+%22Upper+Lars",  # 400 with the position
    "q=kopi&k=-1",
    "q=kopi&k=ten",
    "q=kopi&k=",
    "q=kopi&offset=100001",
    "q=kopi&lang=fr",
    "q=kopi&per_document=maybe",
    "q=kopi&colour=blue",
    "",
    "q=" + "k" * (MAX_QUERY_CHARS + 1),
    "q=caf%C3%A9&q=kopi",
]


@pytest.mark.parametrize("query_string", FAST_PATH_QUERIES, ids=range(len(FAST_PATH_QUERIES)))
def test_the_search_fast_path_answers_as_the_fastapi_route(index_path: Path, query_string: str) -> None:
    """GET searches skip FastAPI's per-request machinery (``FastSearch``); every answer and error must be
    the one the documented FastAPI route gives, and the fast path must really take those requests."""
    config = ServeConfig(indexes={"main": str(index_path)}, quiet=True)
    guard = create_app(config)
    fastapi_app = guard.app.app
    calls: list[str] = []

    async def spy(scope, receive, send):
        if scope["type"] == "http":
            calls.append(scope["path"])
        await fastapi_app(scope, receive, send)

    guard.app.app = spy
    fast = TestClient(guard).get(f"/v1/indexes/main/search?{query_string}")
    reference = TestClient(Guard(fastapi_app, config)).get(f"/v1/indexes/main/search?{query_string}")
    assert calls == []  # the fast path answered it alone
    assert fast.status_code == reference.status_code
    assert fast.headers["content-type"] == reference.headers["content-type"]
    a, b = fast.json(), reference.json()
    a.pop("took_ms", None), b.pop("took_ms", None)
    assert a == b
    if fast.status_code == 200:
        assert a["hits"] or "k=0" in query_string


def test_the_fast_path_leaves_other_requests_to_fastapi(client: TestClient) -> None:
    assert_error(client.get("/v1/indexes/other/search", params={"q": "x"}), 404, "index_not_found")
    assert_error(client.put("/v1/indexes/main/search"), 405, "method_not_allowed")
    assert_error(client.get("/v1/indexes/main/search/more", params={"q": "x"}), 404, "not_found")


# What a process does once, on its first query: checksums of the sections a query reads, a segment's
# stored id column, the query language model, the thread pool's first thread. Counted in a fresh process.
FIRST_QUERY_PROBE = r"""
import json, sys, threading, warnings
import analyzers.language as language
import search.segment as segment
counts = {"checksums": 0, "columns": 0, "model_loads": 0, "threads": 0}
real_crc, real_column, real_load = segment.section_crc, segment.SegmentReader._column_bytes, language._load_model
def crc(arrays, section):
    counts["checksums"] += 1
    return real_crc(arrays, section)
def column(self, name):  # a stored column inflated (a hit's id decodes one value of it)
    counts["columns"] += name not in self._columns and name not in self._raw_columns
    return real_column(self, name)
def load():
    counts["model_loads"] += 1
    return real_load()
segment.section_crc, segment.SegmentReader._column_bytes, language._load_model = crc, column, load
path, mode, query = sys.argv[1:4]
if mode == "library":
    from search import Index
    index = Index.open(path)
    before = dict(counts)
    hits = [h.to_dict() for h in index.search(query)]
else:
    from cli.serve import ServeConfig
    from cli.serve.app import create_app
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    client = TestClient(create_app(ServeConfig(indexes={"main": path}, quiet=True)))
    if mode == "server":  # started as uvicorn starts it (the lifespan runs first)
        with client:
            before, threads = dict(counts), threading.active_count()
            hits = client.get("/v1/indexes/main/search", params={"q": query}).json()["hits"]
            counts["threads"] = threading.active_count() - threads
    else:  # the same app called on an event loop without its start: the control for the thread count
        import asyncio
        from urllib.parse import urlencode
        async def first():
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                     "scheme": "http", "path": "/v1/indexes/main/search", "root_path": "", "headers": [],
                     "query_string": urlencode({"q": query}).encode(), "client": None, "server": None}
            body = []
            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}
            async def send(message):
                body.append(message.get("body", b""))
            threads = threading.active_count()
            await client.app(scope, receive, send)
            counts["threads"] = threading.active_count() - threads
            return json.loads(b"".join(body))["hits"]
        before = dict(counts)
        hits = asyncio.run(first())
print(json.dumps({"work": {k: counts[k] - before[k] for k in counts}, "langs": sorted({h["lang"] for h in hits})}))
"""


def first_query_work(index_path: Path, mode: str) -> dict:
    query = '"Upper Lars" kopi'  # a phrase (positions), hits in both languages (the language model)
    out = subprocess.run(
        [sys.executable, "-c", FIRST_QUERY_PROBE, str(index_path), mode, query],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["langs"] == ["en", "id"]
    return got["work"]


def test_a_server_does_its_once_per_process_work_at_start(index_path: Path) -> None:
    """No first-query stall, shown by the work the first query does rather than by a clock: in a fresh
    server process the first search computes no checksum, inflates no stored column, loads no language
    model and starts no thread. The same first search through the library alone does all but the last
    (so the counters do see that work), and the app without its start-up starts a thread."""
    served = first_query_work(index_path, "server")
    assert served == {"checksums": 0, "columns": 0, "model_loads": 0, "threads": 0}
    library = first_query_work(index_path, "library")
    assert library["checksums"] > 0 and library["columns"] > 0 and library["model_loads"] == 1
    assert first_query_work(index_path, "no-lifespan")["threads"] > 0


def test_the_server_sizes_the_library_caches(tmp_path: Path) -> None:
    """--cache-mb bounds the decoded-postings and score caches of the process (3/4 and 1/4 of it): with 0
    nothing is kept, with the default the same searches keep both kinds (so the bound is what empties
    them). Process-wide settings: restored afterwards."""
    from search import searcher, segment

    index = Index.create(tmp_path / "many")
    with index.writer() as w:  # "kopi" in 400 passages: long enough for the score cache
        w.add_many(Document(id=f"d{i}", text=f"Kopi dan teh nomor {i} dari kebun.", lang="id") for i in range(400))
    budgets = segment.DECODED.budget, searcher.SCORE_CACHE_BYTES
    try:
        kept = {}
        for mb in (0, 128):
            segment.DECODED.resize(0)  # empty, then back to the library's size: the server sets its own
            segment.DECODED.resize(budgets[0])
            app = create_app(ServeConfig(indexes={"m": str(tmp_path / "many")}, cache_mb=mb, quiet=True))
            assert (segment.DECODED.budget, searcher.SCORE_CACHE_BYTES) == ((mb << 20) * 3 // 4, (mb << 20) // 4)
            client = TestClient(app)
            for q in ("kopi", "kopi teh", "kebun nomor"):
                assert client.get("/v1/indexes/m/search", params={"q": q}).json()["hits"]
            snapshot = app.app.served["m"].index._snapshot
            kept[mb] = (segment.DECODED._bytes, snapshot._scores_bytes)
        assert kept[0] == (0, 0)
        assert kept[128][0] > 0 and kept[128][1] > 0
    finally:
        segment.DECODED.resize(budgets[0])
        searcher.set_score_cache_bytes(budgets[1])


# -- errors ------------------------------------------------------------------------------------------------------


def test_unknown_index_is_404_everywhere(client: TestClient) -> None:
    for response in (
        client.get("/v1/indexes/other"),
        client.get("/v1/indexes/other/search", params={"q": "x"}),
        client.post("/v1/indexes/other/search", json={"q": "x"}),
        client.get("/v1/indexes/other/docs/x"),
    ):
        assert_error(response, 404, "index_not_found")
    assert_error(client.get("/v2/nothing"), 404, "not_found")
    assert_error(client.delete("/v1/indexes"), 405, "method_not_allowed")


def test_unreadable_query_is_400_with_its_position(client: TestClient) -> None:
    err = assert_error(client.get("/v1/indexes/main/search", params={"q": 'border "Upper Lars'}), 400, "bad_query")
    assert err["position"] == 7
    assert_error(
        client.post("/v1/indexes/main/search", content=b"{not json", headers={"Content-Type": "application/json"}),
        400,
        "bad_request",
    )


@pytest.mark.parametrize(
    "params",
    [
        {"q": "x", "k": -1},
        {"q": "x", "k": "ten"},
        {"q": "x", "k": 1001},
        {"q": "x", "offset": -3},
        {"q": "x", "lang": "fr"},
        {"q": "x", "per_document": "maybe"},
        {"q": "x", "colour": "blue"},
        {},
    ],
)
def test_invalid_parameters_are_422(client: TestClient, params: dict) -> None:
    assert_error(client.get("/v1/indexes/main/search", params=params), 422, "invalid_parameter")
    assert_error(client.post("/v1/indexes/main/search", json=params), 422, "invalid_parameter")


def test_a_100000_character_query_is_refused_quickly(client: TestClient) -> None:
    long_query = "kopi " * 20_000
    assert len(long_query) == 100_000
    start = time.perf_counter()
    err = assert_error(client.post("/v1/indexes/main/search", json={"q": long_query}), 422, "invalid_parameter")
    assert str(MAX_QUERY_CHARS) in err["message"]
    over = "k" * (MAX_QUERY_CHARS + 1)  # a GET URL of 100,000 characters is refused by clients and proxies
    assert_error(client.get("/v1/indexes/main/search", params={"q": over}), 422, "invalid_parameter")
    assert time.perf_counter() - start < 30  # a generous sanity bound: refused, not evaluated
    ok = client.post("/v1/indexes/main/search", json={"q": ("kopi " * 1000)[:MAX_QUERY_CHARS]})
    assert ok.status_code == 200 and ok.json()["hits"]


def test_a_10_mb_body_is_413(client: TestClient) -> None:
    big = json.dumps({"q": "x" * (10 * 1024 * 1024)}).encode()
    assert_error(
        client.post("/v1/indexes/main/search", content=big, headers={"Content-Type": "application/json"}),
        413,
        "body_too_large",
    )

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b"x" * (1024 * 1024)

    assert_error(client.post("/v1/indexes/main/search", content=chunks()), 413, "body_too_large")
    assert client.get("/health").status_code == 200  # the server is fine afterwards


def test_an_unexpected_failure_is_a_500_without_details(index_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = TestClient(create_app(ServeConfig(indexes={"main": str(index_path)}, quiet=True)))

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals at /home/x")

    monkeypatch.setattr(Index, "search", boom)
    response = client.get("/v1/indexes/main/search", params={"q": "kopi"})
    assert_error(response, 500, "internal_error")
    assert "secret" not in response.text


@pytest.mark.parametrize("deadline", ["asyncio.timeout", "a task per request"])
def test_a_request_over_the_time_limit_is_503(index_path: Path, monkeypatch: pytest.MonkeyPatch, deadline: str) -> None:
    """Both ways the guard keeps the time limit: ``asyncio.timeout`` (Python >= 3.11) and, as on 3.10, the
    request run as its own task."""
    import cli.serve.app as served_app

    if deadline != "asyncio.timeout":
        monkeypatch.setattr(served_app, "_TIMEOUT", None)
    elif served_app._TIMEOUT is None:
        pytest.skip("asyncio.timeout needs Python 3.11")
    config = ServeConfig(indexes={"main": str(index_path)}, quiet=True, time_limit=0.3)
    client = TestClient(create_app(config))
    real = Index.search

    def slow(self, *args, **kwargs):
        time.sleep(1.5)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Index, "search", slow)
    assert_error(client.get("/v1/indexes/main/search", params={"q": "kopi"}), 503, "timeout")
    monkeypatch.setattr(Index, "search", real)
    assert client.get("/v1/indexes/main/search", params={"q": "kopi"}).status_code == 200


def test_access_log_line_per_request_and_quiet(index_path: Path, capfd: pytest.CaptureFixture) -> None:
    loud = TestClient(create_app(ServeConfig(indexes={"main": str(index_path)})))
    loud.get("/v1/indexes/main/search", params={"q": "kopi"})
    loud.get("/v1/indexes/nope")
    err = capfd.readouterr().err
    assert '"GET /v1/indexes/main/search?q=kopi HTTP/1.1" 200 ' in err
    assert '"GET /v1/indexes/nope HTTP/1.1" 404 ' in err
    quiet = TestClient(create_app(ServeConfig(indexes={"main": str(index_path)}, quiet=True)))
    quiet.get("/v1/indexes/main/search", params={"q": "kopi"})
    assert "GET" not in capfd.readouterr().err


# -- writes --------------------------------------------------------------------------------------------------------


def test_writes_are_refused_on_a_read_only_server(client: TestClient) -> None:
    assert_error(client.put("/v1/indexes/main/docs/new", json={"text": "x"}, headers=auth()), 403, "read_only")
    assert_error(client.delete("/v1/indexes/main/docs/xss", headers=auth()), 403, "read_only")
    assert_error(client.post("/v1/indexes/main/docs:bulk", content=b'{"id":"a","text":"b"}'), 403, "read_only")
    assert client.get("/v1/indexes/main/docs/xss").status_code == 200


def test_writes_need_the_right_token(writable: tuple[TestClient, Path]) -> None:
    client, path = writable
    url = "/v1/indexes/w/docs/fresh"
    missing = client.put(url, json={"text": "a brand new teapot"})
    assert_error(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert_error(client.put(url, json={"text": "a brand new teapot"}, headers=auth("wrong")), 403, "forbidden")
    assert_error(client.delete("/v1/indexes/w/docs/xss", headers=auth("wrong")), 403, "forbidden")
    assert_error(
        client.post("/v1/indexes/w/docs:bulk", content=b"", headers={"Authorization": "Basic x"}), 401, "unauthorized"
    )
    assert "fresh" not in Index.open(path)


def test_put_get_search_delete(writable: tuple[TestClient, Path]) -> None:
    client, path = writable
    url = f"/v1/indexes/w/docs/{quote('new/teapot.txt', safe='')}"
    created = client.put(
        url, json={"text": "A brand new teapot of clay.", "title": "Teapot", "meta": {"x": 1}}, headers=auth()
    )
    assert created.status_code == 201 and created.json()["created"] is True
    hits = client.get("/v1/indexes/w/search", params={"q": "teapot"}).json()["hits"]
    assert [h["doc_id"] for h in hits] == ["new/teapot.txt"]
    replaced = client.put(url, json={"text": "A kettle now."}, headers=auth())
    assert replaced.status_code == 200 and replaced.json()["created"] is False
    assert replaced.json()["generation"] > created.json()["generation"]
    assert client.get("/v1/indexes/w/search", params={"q": "teapot"}).json()["hits"] == []
    assert client.get(url).json()["text"] == "A kettle now."
    assert Index.open(path).get("new/teapot.txt").text == "A kettle now."  # committed on disk
    assert client.delete(url, headers=auth()).json()["deleted"] is True
    assert_error(client.delete(url, headers=auth()), 404, "document_not_found")
    assert_error(client.get(url), 404, "document_not_found")
    assert_error(client.put(url, json={"text": 3}, headers=auth()), 422, "invalid_parameter")
    assert_error(client.put(url, json={"text": "x", "lang": "fr"}, headers=auth()), 422, "invalid_parameter")


def test_bulk_jsonl_adds_and_replaces_all_or_nothing(writable: tuple[TestClient, Path]) -> None:
    client, path = writable
    lines = [
        {"id": "b1", "text": "Bulk one about walruses."},
        {"id": "b2", "text": "Bulk dua tentang walrus.", "lang": "id", "title": "Dua"},
        {"id": "kopi-00", "text": "Replaced by bulk: walruses drink coffee."},
    ]
    body = "\n".join(json.dumps(x) for x in lines).encode()
    done = client.post("/v1/indexes/w/docs:bulk", content=body, headers=auth())
    assert done.status_code == 200, done.text
    assert (done.json()["added"], done.json()["updated"]) == (2, 1)
    hits = client.get("/v1/indexes/w/search", params={"q": "walrus", "k": 10}).json()["hits"]
    assert {h["doc_id"] for h in hits} == {"b1", "b2", "kopi-00"}
    before = Index.open(path).stats()["generation"]
    bad = body + b'\n{"id": "b3", "text": 5}\n'
    err = assert_error(client.post("/v1/indexes/w/docs:bulk", content=bad, headers=auth()), 422, "invalid_document")
    assert err["message"].startswith("line 4:")
    twice = b'{"id": "z", "text": "a"}\n{"id": "z", "text": "b"}'
    assert_error(client.post("/v1/indexes/w/docs:bulk", content=twice, headers=auth()), 422, "invalid_document")
    assert Index.open(path).stats()["generation"] == before  # nothing was changed
    big = b'{"id": "big", "text": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    assert_error(client.post("/v1/indexes/w/docs:bulk", content=big, headers=auth()), 413, "body_too_large")


def test_a_locked_writer_is_409(writable: tuple[TestClient, Path]) -> None:
    client, path = writable
    with Index.open(path).writer():
        assert_error(client.put("/v1/indexes/w/docs/x", json={"text": "x"}, headers=auth()), 409, "index_locked")
    assert client.put("/v1/indexes/w/docs/x", json={"text": "x"}, headers=auth()).status_code == 201


def test_a_commit_by_another_process_is_seen_by_the_next_search(writable: tuple[TestClient, Path]) -> None:
    client, path = writable
    assert client.get("/v1/indexes/w/search", params={"q": "narwhal"}).json()["hits"] == []
    code = (
        "import sys; from search import Index, Document\n"
        "with Index.open(sys.argv[1]).writer() as w: w.add(Document(id='n1', text='A narwhal.'))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
    hits = client.get("/v1/indexes/w/search", params={"q": "narwhal"}).json()["hits"]
    assert [h["doc_id"] for h in hits] == ["n1"]
    assert client.get("/v1/indexes/w").json()["documents"] == 3 + 23 + 2 + 1


# -- the command ----------------------------------------------------------------------------------------------------


def test_index_specs() -> None:
    assert parse_index_specs(["a=/tmp/x", "/tmp/y/books"]) == {"a": "/tmp/x", "books": "/tmp/y/books"}
    with pytest.raises(ValueError, match="two indexes are named 'a'"):
        parse_index_specs(["a=/tmp/x", "a=/tmp/z"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--index", "/nonexistent/idx"], "/nonexistent/idx"),
        (["--index", "{idx}", "--allow-writes"], "--allow-writes needs a bearer token"),
        (["--index", "{idx}", "--allow-writes", "--token-file", "/nonexistent/token"], "cannot read the token file"),
        (["--index", "a={idx}", "--index", "a={idx}"], "two indexes are named 'a'"),
    ],
)
def test_serve_usage_errors(index_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    monkeypatch.delenv("TELUSUR_TOKEN", raising=False)
    result = CliRunner().invoke(cli_app, ["serve", *[a.replace("{idx}", str(index_path)) for a in args]])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_search_query_does_not_import_the_server(index_path: Path) -> None:
    code = (
        "import sys\n"
        "from cli.app import main\n"
        "sys.argv = ['search', 'query', 'kopi', '--json', '--index', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'uvicorn', 'starlette'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(index_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert json.loads(lines[0])["hits"]  # the query ran
    assert lines[-1] == "[]"


def test_hit_objects_match_to_dict(index_path: Path) -> None:
    hits = Index.open(index_path).search("kopi", k=3)
    full = hit_objects(hits, 5)
    assert [h["rank"] for h in full] == [6, 7, 8]
    assert [{k: v for k, v in h.items() if k != "rank"} for h in full] == [h.to_dict() for h in hits]


def test_bulk_through_the_server_uses_worker_processes_without_forking_threads(
    writable: tuple[TestClient, Path], monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    """A server has threads alive, so a bulk request that uses worker processes must start them with
    forkserver, not fork (a forked child can inherit a lock another thread held); tiny batches force
    the worker path with a small body."""
    from search import parallel

    client, path = writable
    chosen: list[str | None] = []
    real_start_method = parallel.start_method

    def spy() -> str | None:
        chosen.append(real_start_method())
        return chosen[-1]

    monkeypatch.setattr(parallel, "start_method", spy)
    monkeypatch.setattr(parallel, "batch_tokens", lambda buffer_tokens: 40)
    lines = [{"id": f"bulk-{i:03d}", "text": f"Parallel bulk document {i} about otters and rivers."} for i in range(60)]
    body = "\n".join(json.dumps(x) for x in lines).encode()
    done = client.post("/v1/indexes/w/docs:bulk", content=body, headers=auth())
    assert done.status_code == 200, done.text
    assert done.json()["added"] == 60
    assert chosen and chosen[-1] == "forkserver"
    hits = client.get("/v1/indexes/w/search", params={"q": "otters", "k": 100}).json()["hits"]
    assert len(hits) == 60
    assert Index.open(path).stats()["documents"] == 3 + 23 + 2 + 60
    assert not [w for w in recwarn if "fork" in str(w.message)]


def test_warm_builds_the_lexicons_that_suggest_walks(index_path: Path, monkeypatch) -> None:
    """The server asks for a suggestion on every search: ``Index.warm`` (run at its start) builds each
    segment's surface-word lexicons and their bigram index, so a first typo costs no build; an index opened
    without warm builds them at its first suggestion (the control that the counter sees the work)."""
    from search import expand

    builds = []
    real = expand.Lexicon._index

    def counted(self):
        builds.append(self._bigrams is None)
        return real(self)

    monkeypatch.setattr(expand.Lexicon, "_index", counted)
    cold = Index.open(index_path)
    assert cold.suggest("warga rusai kabur") is not None
    assert any(builds)
    warm = Index.open(index_path)
    warm.warm()
    builds.clear()
    assert warm.suggest("warga rusai kabur") == cold.suggest("warga rusai kabur")
    assert builds and not any(builds)


def test_a_search_leaves_no_thread_behind(index_path: Path) -> None:
    """The search thread pool ends with its event loop: an application that embeds the app (here the
    test client, one loop per request) keeps no idle thread, which would make a later ``add_many`` in
    the same process start its workers from a forkserver instead of forking."""
    import threading

    before = {t.ident for t in threading.enumerate()}
    client = TestClient(create_app(ServeConfig(indexes={"main": str(index_path)}, quiet=True)))
    assert client.get("/v1/indexes/main/search", params={"q": "kopi"}).status_code == 200
    left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert left == []


def test_a_search_answer_is_ascii_json_of_the_same_text(tmp_path: Path) -> None:
    """Search answers are encoded as ASCII JSON (``SearchResponseJSON``): text beyond ASCII arrives as
    escapes that parse back to the stored characters, and highlight offsets still index that text."""
    text = "Kafé “Škoda” — 東京 😀 kopi tubruk di Bekasi, ōrang-ōrang minum kopi."
    index = Index.create(tmp_path / "u")
    with index.writer() as w:
        w.add(Document(id="ü/1", text=text, title="Ñame ☕", lang="id"))
    client = TestClient(create_app(ServeConfig(indexes={"u": str(tmp_path / "u")}, quiet=True)))
    response = client.get("/v1/indexes/u/search", params={"q": "kopi"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.content.isascii() and b"\\u" in response.content
    hit = response.json()["hits"][0]
    assert (hit["doc_id"], hit["text"], hit["title"]) == ("ü/1", text, "Ñame ☕")
    assert [hit["text"][s:e] for s, e in hit["highlights"]] == ["kopi", "kopi"]
