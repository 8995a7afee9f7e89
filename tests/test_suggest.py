"""Index.suggest: "did you mean" over the index's own words."""

from __future__ import annotations

import json

import pytest

from search import Document, Index
from search.errors import InvalidArgument

TEXTS = {
    "a": "Warga Rusia kabur dari kota setelah serangan.",
    "b": "Warga Rusia mengungsi ke perbatasan.",
    "c": "Jalan rusak parah setelah banjir, warga mengeluh. Jalan rusak lagi.",
    "d": "Pemerintah menetapkan kebijakan fiskal baru untuk pajak daerah.",
    "e": "Kebijakan pemerintahan daerah tentang pajak kendaraan.",
    "f": "The government announced a new fiscal policy for the region.",
    "g": "Rusak rusak rusak: the road was damaged near the harbour.",
}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    idx = Index.create(tmp_path_factory.mktemp("suggest") / "idx")
    with idx.writer() as w:
        for doc_id, text in TEXTS.items():
            w.add(Document(id=doc_id, text=text, lang="en" if doc_id in "fg" else "id"))
    return idx


@pytest.mark.parametrize(
    ("query", "fixed"),
    [
        ("warga rusai kabur", "warga rusia kabur"),  # "rusak" is as near and more common, but not beside "warga kabur"
        ("kebijakn fiskal", "kebijakan fiskal"),
        ("pemerintahn pajak", "pemerintahan pajak"),
        ("Kebijakn Fiskal", "kebijakan Fiskal"),  # only the corrected word changes
        ("goverment policy", "government policy"),
        ("fiscal polcy", "fiscal policy"),
    ],
)
def test_suggest_restores_the_query(index, query, fixed):
    assert index.suggest(query) == fixed


@pytest.mark.parametrize("query", ["warga rusia kabur", "kebijakan fiskal", "the government", "", "zzzzzzzzzzqq"])
def test_nothing_to_correct_is_none(index, query):
    assert index.suggest(query) is None


def test_rare_words_are_corrected_only_when_asked(tmp_path):
    """A word the index holds once, one edit from a word it holds often, is corrected by default; with
    ``rare_words=False`` (the front ends' choice once a query matched) only unknown words are."""
    idx = Index.create(tmp_path / "rare")
    with idx.writer() as w:
        w.add(Document(id="r", text="kebijakn", lang="id"))
        for i in range(150):  # a rare word gives way only to one far more common (search.suggest.RARE_RATIO)
            w.add(Document(id=f"k{i}", text=f"kebijakan fiskal nomor {i}", lang="id"))
    assert idx.suggest("kebijakn fiskal") == "kebijakan fiskal"
    assert idx.suggest("kebijakn fiskal", rare_words=False) is None
    assert idx.suggest("kebijakn fiskl", rare_words=False) == "kebijakn fiskal"


def test_suggest_follows_deletions(index, tmp_path):
    idx = Index.create(tmp_path / "idx")
    with idx.writer() as w:
        w.add(Document(id="x", text="kebijakan fiskal", lang="id"))
        w.add(Document(id="y", text="kebijakan fiskal", lang="id"))
    assert idx.suggest("kebijakn") == "kebijakan"
    with idx.writer() as w:
        w.delete("x")
        w.delete("y")
    assert idx.suggest("kebijakn") is None


def test_a_word_left_only_in_deleted_documents_is_unknown(tmp_path):
    """With ``rare_words=False`` only unknown words are corrected, and the quick "does the index know
    every word" check must not count a word that only deleted documents held (its segment's dictionary
    still has it)."""
    idx = Index.create(tmp_path / "idx")
    with idx.writer() as w:
        w.add(Document(id="gone", text="kebijakn", lang="id"))
        for i in range(12):  # one deletion in 13 documents: below the share that makes a merge rewrite it
            w.add(Document(id=f"k{i}", text=f"kebijakan fiskal nomor {i}", lang="id"))
    assert idx.suggest("kebijakn fiskal", rare_words=False) is None  # the index knows "kebijakn"
    with idx.writer() as w:
        w.delete("gone")
    assert idx.suggest("kebijakn fiskal", rare_words=False) == "kebijakan fiskal"


def test_suggest_refuses_what_is_not_a_string(index):
    with pytest.raises(InvalidArgument):
        index.suggest(None)  # type: ignore[arg-type]


def test_cli_json_and_text_carry_the_suggestion(index, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from cli.app import app

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))
    run = CliRunner().invoke
    got = run(app, ["query", "warga rusai kabur", "--index", str(index.path), "--json"])
    assert got.exit_code == 0, got.output
    payload = json.loads(got.stdout)
    assert payload["suggestion"] == "warga rusia kabur"
    assert payload["hits"]  # "warga" and "kabur" still match
    got = run(app, ["query", "warga rusai kabur", "--index", str(index.path)])
    assert got.exit_code == 0
    assert got.stdout.rstrip("\n").splitlines()[-1] == "Did you mean: warga rusia kabur"
    clean = run(app, ["query", "warga rusia kabur", "--index", str(index.path), "--json"])
    assert "suggestion" not in json.loads(clean.stdout)
    assert "Did you mean" not in run(app, ["query", "warga rusia", "--index", str(index.path)]).stdout


def test_http_search_carries_the_suggestion(index):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from cli.serve import ServeConfig
    from cli.serve.app import create_app

    client = TestClient(create_app(ServeConfig(indexes={"main": str(index.path)}, quiet=True)))
    body = client.get("/v1/indexes/main/search", params={"q": "kebijakn fiskal"}).json()
    assert body["suggestion"] == "kebijakan fiskal"
    body = client.post("/v1/indexes/main/search", json={"q": "kebijakan fiskal"}).json()
    assert "suggestion" not in body
