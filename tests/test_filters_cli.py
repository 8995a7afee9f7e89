"""Filters and facets from the command line (``--field``, ``--filter``, ``--facet``, both query paths) and over
HTTP (``filter`` and ``facets`` of ``/v1/indexes/{name}/search``)."""

from __future__ import annotations

import io
import json
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from cli.main import main
from search import Index

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DOCS = [
    {"id": "a", "text": "pajak daerah naik", "lang": "id", "meta": {"year": 2020, "source": "kemenkeu"}},
    {"id": "b", "text": "pajak daerah turun", "lang": "id", "meta": {"year": 2015, "source": "bps"}},
    {"id": "c", "text": "pajak pusat", "lang": "id", "meta": {"year": 2021, "source": "kemenkeu", "tags": ["x"]}},
    {"id": "d", "text": "tax on land", "lang": "en", "meta": {"year": 2019}},
]


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    src = root / "docs.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    idx = root / "idx"
    fields = ["--field", "year:int", "--field", "source:keyword", "--field", "tags:keyword[]"]
    r = run("index", src, "--index", idx, *fields)
    assert r.exit_code == 0, r.output
    return idx


def fast(*args: str) -> tuple[int, str, str]:
    """``search query`` through the fast path (no typer), as the console script runs it."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(["query", *args])
        except SystemExit as e:
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_index_declares_fields(built):
    assert Index.open(built).fields == {"year": "int", "source": "keyword", "tags": "keyword[]"}


def test_index_with_other_fields_on_an_existing_index_is_a_mistake(built, tmp_path):
    src = tmp_path / "one.jsonl"
    src.write_text(json.dumps(DOCS[0]) + "\n")
    r = run("index", src, "--index", built, "--field", "year:keyword")
    assert r.exit_code == 2
    assert "fields are declared when an index is created" in r.output
    assert len(Index.open(built)) == 4  # nothing changed


@pytest.mark.parametrize("spec", ["year", "year:integer", "Year:int", "title:keyword"])
def test_bad_field_options_exit_2(tmp_path, spec):
    src = tmp_path / "one.jsonl"
    src.write_text(json.dumps(DOCS[0]) + "\n")
    r = run("index", src, "--index", tmp_path / "idx", "--field", spec)
    assert r.exit_code == 2
    assert r.output.startswith("error: ")
    assert not (tmp_path / "idx" / "meta.json").exists()


def test_a_meta_value_of_the_wrong_type_exits_2_and_changes_nothing(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps({"id": "x", "text": "t", "meta": {"year": "2020"}}) + "\n")
    r = run("index", src, "--index", tmp_path / "idx", "--field", "year:int")
    assert r.exit_code == 2
    assert "declared int" in r.output


@pytest.mark.parametrize("path", ["typer", "fast"])
def test_query_filter_and_facets_as_json(built, path):
    args = ["pajak", "--filter", "year:>=2016", "--facet", "source", "--facet", "year", "--json", "--index", str(built)]
    if path == "typer":
        r = run("query", *args)
        code, out = r.exit_code, r.stdout
    else:
        code, out, _ = fast(*args)
    assert code == 0, out
    payload = json.loads(out)
    assert sorted(h["doc_id"] for h in payload["hits"]) == ["a", "c"]
    assert payload["facets"] == {"source": {"kemenkeu": 2}, "year": {"2020": 1, "2021": 1}}


def test_query_facets_for_people(built):
    r = run("query", "pajak", "--facet", "source", "--index", built)
    assert r.exit_code == 0
    assert "source: kemenkeu (2), bps (1)" in r.stdout


def test_query_filter_in_the_query_text(built):
    r = run("query", "pajak", "-source:kemenkeu", "--json", "--index", built)
    assert [h["doc_id"] for h in json.loads(r.stdout)["hits"]] == ["b"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["pajak", "--facet", "nope"], "not a declared field"),
        (["pajak", "--filter", "pajak"], "filters only"),
        (["pajak", "year:abc"], "not an integer"),
    ],
)
def test_query_mistakes_exit_2_with_one_line(built, args, message):
    r = run("query", *args, "--index", built)
    assert r.exit_code == 2
    assert r.output.startswith("error: ") and message in r.output and r.output.count("\n") == 1


# -- HTTP ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(built) -> TestClient:
    from cli.serve import ServeConfig
    from cli.serve.app import create_app

    return TestClient(create_app(ServeConfig(indexes={"main": str(built)}, quiet=True)))


def test_http_filter_and_facets_post(client):
    r = client.post(
        "/v1/indexes/main/search", json={"q": "pajak", "filter": "-source:bps", "facets": ["source", "tags"]}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(h["doc_id"] for h in body["hits"]) == ["a", "c"]
    assert body["facets"] == {"source": {"kemenkeu": 2}, "tags": {"x": 1}}


def test_http_facets_get_and_explain(client):
    r = client.get("/v1/indexes/main/search", params=[("q", "pajak"), ("facets", "year"), ("explain", "true")])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["facets"] == {"year": {"2015": 1, "2020": 1, "2021": 1}}
    for h in body["hits"]:
        assert h["explanation"]["value"] == pytest.approx(h["score"])


def test_http_filter_errors_are_4xx_with_the_error_shape(client):
    r = client.post("/v1/indexes/main/search", json={"q": "pajak", "facets": ["nope"]})
    assert r.status_code == 422 and "not a declared field" in r.json()["error"]["message"]
    r = client.post("/v1/indexes/main/search", json={"q": "pajak", "filter": "tax"})
    assert r.status_code == 422 and "filters only" in r.json()["error"]["message"]
    r = client.post("/v1/indexes/main/search", json={"q": "pajak", "filter": "year:[1 TO"})
    assert r.status_code == 400
