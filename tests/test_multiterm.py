"""Fuzzy, prefix and wildcard words: the syntax, the expansion over an index, scores and snippets."""

from __future__ import annotations

import pytest

from search import Document, Index
from search.errors import QuerySyntaxError
from search.query import FuzzyQuery, PrefixQuery, TermQuery, WildcardQuery, parse_query


@pytest.mark.parametrize(
    ("text", "node"),
    [
        ("kebijakn~", FuzzyQuery("kebijakn", None)),
        ("kebijakn~1", FuzzyQuery("kebijakn", 1)),
        ("kebijakn~2", FuzzyQuery("kebijakn", 2)),
        ("kebijakn~0", FuzzyQuery("kebijakn", 0)),
        ("title:pajak~", FuzzyQuery("pajak", None, "title")),
        ("pajak*", PrefixQuery("pajak")),
        ("pajak**", PrefixQuery("pajak")),
        ("title:paj*", PrefixQuery("paj", "title")),
        ("peng*an", WildcardQuery("peng*an")),
        ("*jak", WildcardQuery("*jak")),
        ("p**j*k", WildcardQuery("p*j*k")),
        ("~", TermQuery("~")),  # plain text: nothing to be fuzzy
        ("a~b", TermQuery("a~b")),
        ("word~~", TermQuery("word~~")),
        ("apa?", TermQuery("apa?")),  # a question mark stays text: pasted questions end with one
    ],
)
def test_word_forms(text, node):
    parsed = parse_query(text)
    assert parsed.root.clauses == (("should", node),)


@pytest.mark.parametrize(("text", "where"), [("*", 0), ("pajak ***", 6), ("kata~3", 0), ("x +pajak~9", 3)])
def test_unreadable_word_forms_are_syntax_errors(text, where):
    with pytest.raises(QuerySyntaxError) as e:
        parse_query(text)
    assert e.value.position == where


def test_expanded_words_feed_language_detection_without_operators():
    assert parse_query("pemerintahn~ pajak* peng*an").words == ("pemerintahn", "pajak", "peng an")


# -- over an index -----------------------------------------------------------------------------------

DOCS = {
    "d1": ("id", "Pemerintahan daerah menetapkan kebijakan fiskal untuk pajak kendaraan."),
    "d2": ("id", "Kebijakan pajak penghasilan berubah; pengumuman resmi pemerintah."),
    "d3": ("id", "Warga menolak kebijakn baru itu."),  # a typo in the document itself
    "d4": ("id", "Pengadilan memeriksa perkara pajak bumi dan bangunan."),
    "d5": ("en", "The government announced a fiscal policy for the region."),
    "d6": ("id", "Pajaknya dibayar tiap tahun oleh warga kota."),
}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    idx = Index.create(tmp_path_factory.mktemp("multiterm") / "idx")
    with idx.writer() as w:
        for doc_id, (lang, text) in DOCS.items():
            w.add(Document(id=doc_id, text=text, lang=lang))
    return idx


def ids(hits):
    return [h.doc_id for h in hits]


def test_fuzzy_matches_surface_words_not_only_stems(index):
    hits = index.search("pemerintahn~")
    assert set(ids(hits)) == {"d1", "d2"}  # pemerintahan, pemerintah (one edit each)
    assert index.search("pemerintahn") == []
    text = hits[ids(hits).index("d1")]
    assert [text.text[s:e] for s, e in text.highlights] == ["Pemerintahan"]


def test_fuzzy_distance_table(index):
    assert ids(index.search("kebjakan~0")) == []
    assert set(ids(index.search("kebjakan~1"))) == {"d1", "d2"}  # kebijakan; kebijakn is 2 edits away
    assert set(ids(index.search("kebjakan~2"))) == {"d1", "d2", "d3"}
    assert set(ids(index.search("kebjakan~"))) == {"d1", "d2", "d3"}  # 8 letters: 2 edits
    assert set(ids(index.search("kbjakan~1"))) == set()
    assert set(ids(index.search("kbjakan~2"))) == {"d1", "d2"}


def test_exact_matches_rank_first(tmp_path):
    idx = Index.create(tmp_path / "idx")
    with idx.writer() as w:  # the same length, so only the word tells them apart
        w.add(Document(id="typo", text="kebijakn baru", lang="id"))
        w.add(Document(id="exact", text="kebijakan baru", lang="id"))
        w.add(Document(id="other", text="rencana baru", lang="id"))
    assert ids(idx.search("kebijakan~")) == ["exact", "typo"]
    assert ids(idx.search("kebijakan baru", fuzzy=True))[0] == "exact"
    assert ids(idx.search("kebijakn baru", fuzzy=True))[0] == "typo"  # the word typed is in the index


def test_fuzzy_scores_as_lucene_blends_them(index):
    from search import bm25

    hits = {h.doc_id: h for h in index.search("kebijakan~")}
    snap = index._snapshot
    st = snap.stats["id"]
    df = max(index.search("kebijakan", k=100).__len__(), 1)  # the largest df among the expansions
    reader = snap.segments[0].reader
    for doc_id, boost in (("d2", 1.0), ("d3", 1 - 1 / 8)):  # "kebijakn": 1 edit, min(9, 8) letters
        h = hits[doc_id]
        dl = int(reader.p_len[reader.passage_range(snap.id_map()[doc_id][1])[0]])
        e = bm25.explain_term("x", st.n_passages, df, 1.0, dl, st.avgdl, 1.2, 0.75, delta=bm25.delta("id"))
        want = boost * e.value  # BM25+ in Indonesian
        assert h.score == pytest.approx(want, rel=1e-12)
        assert index.explain("kebijakan~", doc_id).value == pytest.approx(h.score, rel=1e-12)


def test_prefix_and_wildcard(index):
    assert set(ids(index.search("paj*"))) == {"d1", "d2", "d4", "d6"}
    assert set(ids(index.search("peng*an"))) == {"d2", "d4"}  # pengumuman, penghasilan, pengadilan
    assert set(ids(index.search("ken*ra*n"))) == {"d1"}
    assert set(ids(index.search("*erah"))) == {"d1"}  # a leading wildcard scans the whole dictionary
    # expansions are surface words, scored through their terms: "pajaknya" is the term "pajak"
    assert set(ids(index.search("pajakn*"))) == {"d1", "d2", "d4", "d6"}
    assert set(ids(index.search("zzz*"))) == set()
    with pytest.raises(QuerySyntaxError):
        index.search("pajak *")


def test_prefix_last_is_search_as_you_type(index):
    assert set(ids(index.search("warga kebij", prefix_last=True))) == {"d1", "d2", "d3", "d6"}
    assert set(ids(index.search("warga kebij ", prefix_last=True))) == {"d3", "d6"}  # a finished word
    assert set(ids(index.search("warga kebij"))) == {"d3", "d6"}


def test_fuzzy_true_keeps_the_ranked_or_rules(index):
    # words the index knows stay exact: the same hits and scores as without fuzzy
    plain = index.search("apa kebijakan fiskal")
    fuzzy = index.search("apa kebijakan fiskal", fuzzy=True)
    assert [(h.doc_id, h.score) for h in fuzzy] == [(h.doc_id, h.score) for h in plain]
    # an unknown word expands (a question word is still never scored)
    typo = index.search("apa kebjakan fiskal", fuzzy=True)
    assert ids(typo)[0] == "d1" and "d2" in ids(typo)
    assert "d2" not in ids(index.search("apa kebjakan fiskal"))
    # its nearest neighbours only: "kebijakan" (1 edit), not "kebijakn" (2), which kebjakan~ finds
    assert "d3" not in ids(typo) and "d3" in ids(index.search("apa kebjakan~ fiskal"))
    assert ids(index.search("kebijakn fiskal", fuzzy=True))[0] == "d3"  # a word of the index is no typo
    # an excluded word stays exact
    assert set(ids(index.search("kebjakan -fiskal", fuzzy=True))) == {"d2"}


def test_max_expansions(tmp_path):
    from search.expand import MAX_EXPANSIONS

    idx = Index.create(tmp_path / "idx")
    with idx.writer() as w:
        for i in range(MAX_EXPANSIONS + 20):
            w.add(Document(id=f"d{i:03d}", text=f"kata{i:03d}x", lang="id"))
    hits = idx.search("kata*", k=1000)
    assert sorted(ids(hits)) == [f"d{i:03d}" for i in range(MAX_EXPANSIONS)]  # the first N in dictionary order


def test_cli_fuzzy_and_prefix_last(index, monkeypatch, tmp_path):
    import json

    from typer.testing import CliRunner

    from cli.app import app
    from cli.main import main

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))

    def found(*args):
        got = CliRunner().invoke(app, ["query", *args, "--index", str(index.path), "--json", "-k", "100"])
        assert got.exit_code == 0, got.output
        return {h["doc_id"] for h in json.loads(got.stdout)["hits"]}

    assert found("pemerintahn") == set()
    assert found("pemerintahn", "--fuzzy") == {"d1", "d2"}
    assert found("kebij", "--prefix-last") == {"d1", "d2", "d3"}
    assert found("kebij") == set()
    # the fast path (no typer) reads the same flags
    with pytest.raises(SystemExit) as e:
        main(["query", "pemerintahn", "--fuzzy", "--index", str(index.path), "--json"])
    assert e.value.code in (0, None)
    bad = CliRunner().invoke(app, ["query", "pajak *", "--index", str(index.path)])
    assert bad.exit_code == 2 and "error:" in bad.stderr


def test_http_fuzzy_and_prefix_last(index):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from cli.serve import ServeConfig
    from cli.serve.app import create_app

    client = TestClient(create_app(ServeConfig(indexes={"main": str(index.path)}, quiet=True)))
    url = "/v1/indexes/main/search"
    assert client.get(url, params={"q": "pemerintahn"}).json()["hits"] == []
    got = client.get(url, params={"q": "pemerintahn", "fuzzy": "true", "explain": "true"}).json()
    assert {h["doc_id"] for h in got["hits"]} == {"d1", "d2"}
    for h in got["hits"]:
        assert h["explanation"]["value"] == pytest.approx(h["score"], rel=1e-9)
    got = client.post(url, json={"q": "warga kebij", "prefix_last": True}).json()
    assert {h["doc_id"] for h in got["hits"]} == {"d1", "d2", "d3", "d6"}
    assert client.get(url, params={"q": "*"}).status_code == 400


# -- the merged posting: one scored disjunction per word and segment ------------------------------


def _separate_clauses_vec(idx, text, lang, si):
    """The word's expansions scored as separate clauses (the BooleanScorer path), for comparison."""
    from search.multiterm import _expanded_weight
    from search.scorers import BooleanScorer
    from search.weights import BooleanWeight

    parsed = idx.parse(text)
    ctx = idx._context(idx._snapshot, parsed, None, None, None)[0]
    node = parsed.root.clauses[0][1]
    w = _expanded_weight(ctx, lang, node)
    return w.scorer(si).vec(), BooleanScorer(BooleanWeight(ctx, lang, w.clauses), si).vec()


def test_merged_posting_equals_the_expansions_scored_as_clauses(tmp_path):
    import numpy as np

    idx = Index.create(tmp_path / "idx")
    words = ["pajak", "pajal", "pajek", "pajako", "pejak", "paja", "bajak", "majak", "pajaks", "rajak"]
    with idx.writer() as w:  # passages holding several expansions, some twice, over two segments
        for i in range(60):
            text = " ".join(words[j % len(words)] for j in range(i, i + 1 + i % 4)) + " kota"
            w.add(Document(id=f"a{i:02d}", text=text, lang="id"))
    with idx.writer() as w:
        for i in range(40):
            text = f"{words[i % len(words)]} {words[(i * 3) % len(words)]} desa"
            w.add(Document(id=f"b{i:02d}", text=text, lang="id"))
    assert len(idx._snapshot.segments) == 2
    for text in ("pajak~", "pajak~1", "paj*", "p*jak", "title:pajak~"):
        for si in range(2):
            (mp, ms), (bp, bs) = _separate_clauses_vec(idx, text, "id", si)
            assert np.array_equal(mp, bp), text
            assert np.allclose(ms, bs, rtol=1e-15, atol=0), text  # the same sum (numpy may pair 3+ terms)
    hits = idx.search("pajak~", k=200)
    assert len(hits) == 100  # every passage holds some expansion
    for h in hits[::7]:  # a merged score is its explanation's sum, term by term
        e = idx.explain("pajak~", h.doc_id)
        assert e.value == h.score
        assert len(e.details) >= 1 and all(d.value > 0 for d in e.details)


def test_repeated_expanded_word_is_read_from_the_score_cache(index, monkeypatch):
    from search import multiterm

    first = [(h.doc_id, h.score) for h in index.search("kebjakan~ paj*", k=20)]
    calls = []
    real = multiterm.ExpandedScorer._compute
    monkeypatch.setattr(multiterm.ExpandedScorer, "_compute", lambda self: calls.append(1) or real(self))
    again = [(h.doc_id, h.score) for h in index.search("kebjakan~ paj*", k=20)]
    assert again == first and calls == []
    # other BM25 parameters score anew (the cache key holds k1 and b)
    other = [(h.doc_id, h.score) for h in index.search("kebjakan~ paj*", k=20, k1=2.0)]
    assert calls and {d for d, _ in other} == {d for d, _ in first} and other != first


def test_title_fuzzy_scores_only_passages_whose_title_has_the_expansion(tmp_path):
    idx = Index.create(tmp_path / "idx")
    with idx.writer() as w:
        w.add(Document(id="t1", title="Kebijakan pajak", text="kebijakan pajak daerah", lang="id"))
        w.add(Document(id="t2", title="Laporan", text="kebijakan fiskal daerah", lang="id"))
        w.add(Document(id="t3", title="Kebijakn baru", text="kebijakn baru", lang="id"))
    assert {h.doc_id for h in idx.search("kebijakan~")} == {"t1", "t2", "t3"}
    hits = idx.search("title:kebijakan~")
    assert {h.doc_id for h in hits} == {"t1", "t3"}
    for h in hits:
        assert idx.explain("title:kebijakan~", h.doc_id).value == pytest.approx(h.score, rel=1e-12)


def test_deleted_documents_leave_the_merged_posting(tmp_path):
    idx = Index.create(tmp_path / "idx")
    with idx.writer() as w:
        for i, text in enumerate(["kebijakan pajak", "kebijakn pajak", "kebijakan fiskal"]):
            w.add(Document(id=f"d{i}", text=text, lang="id"))
    assert {h.doc_id for h in idx.search("kebijakan~")} == {"d0", "d1", "d2"}
    with idx.writer() as w:
        w.delete("d1")
    assert {h.doc_id for h in idx.search("kebijakan~")} == {"d0", "d2"}
