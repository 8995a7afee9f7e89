"""The API other code reads, as the README writes it down: ``Hit.to_dict()`` (the ``--json`` hit),
``Index.stats()`` keys, ``len(index)``, ``doc_id in index``, ``index.get(doc_id)``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from search import Document, Index

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    idx = Index.create(tmp_path_factory.mktemp("contract") / "idx", passage_words=8)
    with idx.writer() as w:
        w.add(Document(id="ru-1", text="Warga Rusia melarikan diri ke Georgia lewat Upper Lars.", lang="id"))
        w.add(Document(id="ge-7", text="Queues at Upper Lars grew for days. " * 3, title="Border", meta={"src": "rss"}))
        w.add(Document(id="gone", text="This one is deleted."))
    with idx.writer() as w:
        w.delete("gone")
    return idx


HIT_KEYS = ["doc_id", "passage", "score", "lang", "title", "text", "snippet", "snippet_highlights", "highlights"]
HIT_KEYS.append("meta")
STATS_KEYS = {"path", "documents", "passages", "segments", "languages", "settings", "size_bytes"}


def _readme_names(section: str) -> list[str]:
    """The backticked names in the README's contract bullet for ``section``, in order."""
    text = README.read_text(encoding="utf-8")
    line = next(li for li in text.split("\n- ") if li.startswith(f"`{section}`:"))
    return re.findall(r"`([a-z_]+)`", line.split(":", 1)[1])


def test_hit_to_dict_is_the_json_hit(index: Index) -> None:
    hit = index.search("Upper Lars", k=1)[0]
    d = hit.to_dict()
    assert list(d) == HIT_KEYS == _readme_names("Hit.to_dict()")[: len(HIT_KEYS)]
    assert (d["doc_id"], d["passage"], d["lang"], d["title"], d["meta"]) == (
        hit.doc_id, hit.passage, hit.lang, hit.title, hit.meta
    )
    assert [d["text"][s:e] for s, e in d["highlights"]] == ["Upper", "Lars"]
    assert [d["snippet"][s:e] for s, e in d["snippet_highlights"]] == ["Upper", "Lars"]
    assert json.loads(json.dumps(d)) == d  # plain JSON: lists, not tuples


def test_stats_keys(index: Index) -> None:
    st = index.stats()
    assert STATS_KEYS <= set(st) and STATS_KEYS <= set(_readme_names("Index.stats()"))
    assert {"passages", "avgdl"} <= set(_readme_names("Index.stats()"))
    assert st["path"] == str(index.path) and st["documents"] == 2 == len(index)
    assert st["passages"] == sum(v["passages"] for v in st["languages"].values()) > 2
    on_disk = sum(p.stat().st_size for p in index.path.iterdir() if p.name != "write.lock")
    assert st["segments"] >= 1 and st["size_bytes"] == on_disk
    assert set(st["languages"]) == {"id", "en"}
    for lang in st["languages"].values():
        assert set(lang) == {"passages", "avgdl"} and lang["avgdl"] > 0
    assert st["settings"]["passage_words"] == 8


def test_len_contains_get(index: Index) -> None:
    assert len(index) == 2
    assert "ru-1" in index and "gone" not in index and 7 not in index
    doc = index.get("ge-7")
    assert (doc.id, doc.text, doc.title, doc.lang, doc.meta) == (
        "ge-7", "Queues at Upper Lars grew for days. " * 3, "Border", None, {"src": "rss"}
    )
    assert index.get("gone") is None and index.get("nope") is None
    assert index.get("ru-1").lang == "id"


def test_k_zero_is_one_rule_for_library_command_and_http(index: Index) -> None:
    """k = 0 asks for no hits everywhere (an empty page is a valid answer: the HTTP API took it from the
    start, so the rule widened the command rather than narrowing the API); k < 0 is refused everywhere."""
    import warnings

    from typer.testing import CliRunner

    from cli.app import app
    from cli.serve import ServeConfig
    from cli.serve.app import create_app
    from search import InvalidArgument

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    http = TestClient(create_app(ServeConfig(indexes={"c": str(index.path)}, quiet=True)))

    assert index.search("Upper Lars", k=0) == [] and index.search("Upper Lars", k=1)
    cli = CliRunner().invoke(app, ["query", "Upper", "Lars", "-k", "0", "--json", "--index", str(index.path)])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["hits"] == []
    answer = http.get("/v1/indexes/c/search", params={"q": "Upper Lars", "k": 0})
    assert answer.status_code == 200 and answer.json()["hits"] == []

    with pytest.raises(InvalidArgument):
        index.search("Upper Lars", k=-1)
    refused = CliRunner().invoke(app, ["query", "Upper", "Lars", "-k", "-1", "--index", str(index.path)])
    assert refused.exit_code == 2
    assert http.get("/v1/indexes/c/search", params={"q": "Upper Lars", "k": -1}).status_code == 422
