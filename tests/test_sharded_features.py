"""Filters, facets and fuzzy, prefix and wildcard words on a sharded index (issues #20, #21): the same
hits, order, scores, highlights and facet counts as one index of the same documents, whatever the
shard count (in process here; on Ray in tests/test_ray.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from search import Document, Index, InvalidArgument, ShardedIndex
from search.multiterm import expand
from search.query import FuzzyQuery, PrefixQuery

EN = ["river", "border", "crossing", "people", "queue", "night", "car", "the", "of", "mountain", "what", "how"]
ID = ["warga", "rusia", "melarikan", "perbatasan", "antrean", "yang", "dan", "kota", "mobilisasi", "diri", "apa"]
# words only some documents hold, so every shard's dictionary differs (expansions must be merged)
RARE = [
    "perbatasannya",
    "mountains",
    "mountaineer",
    "crossings",
    "penyeberangan",
    "pemerintahan",
    "pemerintah",
    "kebijakan",
    "kebijaksanaan",
    "mobilization",
    "bordering",
    "kotamadya",
    "riverside",
]
SOURCES = ["kemenkeu", "setneg", "bpk", "dpr"]
FIELDS = {"year": "int", "source": "keyword", "tags": "keyword[]"}
SHARD_COUNTS = (2, 3, 5)


def mixed_corpus(n: int = 150) -> list[Document]:
    """Indonesian, English and mixed documents of one to three passages (passage_words=8), with metadata
    of every declared type (some documents without any), and rare words in a few documents only."""
    out = []
    for i in range(n):
        en = " ".join(EN[(i * j) % 10] for j in range(1, 14))
        idn = " ".join(ID[(i + j * 3) % 10] for j in range(1, 20))
        rare = " ".join(RARE[(i * 7 + j) % len(RARE)] for j in range(i % 3))
        text = f"{idn} {rare}. {en}." if i % 3 else f"{en} {rare}. {en} {EN[i % 10]}."
        meta = None
        if i % 7:
            meta = {"year": 2010 + i % 12, "source": SOURCES[i % 4]}
            if i % 2:
                meta["tags"] = [SOURCES[(i + 1) % 4], "pajak"] if i % 4 == 1 else ["umum"]
        out.append(
            Document(f"law/{i}", text, title=f"{ID[i % 10]} {EN[i % 7]}", lang=None if i % 4 else "en", meta=meta)
        )
    return out


#: filters of every form and their negations, beside words and alone (in the query and as filter=)
FILTERED = [
    ("warga river source:kemenkeu", None),
    ("warga river -source:kemenkeu", None),
    ("warga river NOT source:setneg", None),
    ("perbatasan year:>=2015", None),
    ("perbatasan year:[2012 TO 2016]", None),
    ("people queue", "source:(bpk OR dpr)"),
    ("people queue", "-tags:pajak"),
    ("kota river", "year:<2014 -lang:en"),
    ('"warga rusia" kota tags:umum', None),
    ("+border -night year:>2012", None),
    ("kota AND river -tags:umum", None),
    ("antrean OR mountain", "source:setneg"),
    ("river NOT lang:id", None),
    ("warga -lang:en source:bpk", None),
    ("source:dpr", None),  # filters alone: every passage they let through
    ("-source:dpr year:>=2018", None),
    ("title:warga crossing", "year:2015"),
]

#: fuzzy, prefix and wildcard words (typed, and made by fuzzy=True / prefix_last=True)
EXPANDED = [
    ("perbatasn~", {}),
    ("mountian~1 river", {}),
    ("kebijakn~", {}),
    ("pemerintahn~2", {}),
    ("perbat*", {}),
    ("mount* border", {}),
    ("m*n", {}),
    ("cross* -night", {}),
    ('"warga rusia" mob*', {}),
    ("warga perbatasn", {"fuzzy": True}),
    ("mountian riverside", {"fuzzy": True}),
    ("the river of mountian", {"fuzzy": True}),
    ("warga perba", {"prefix_last": True}),
    ("kebijaksana", {"prefix_last": True, "fuzzy": True}),
    ("perbatasn~ source:kemenkeu", {}),
    ("mount*", {"filter": "-source:bpk"}),
]


def _build(tmp: Path, n_shards: int | None, docs: list[Document]) -> Index | ShardedIndex:
    if n_shards is None:
        idx: Index | ShardedIndex = Index.create(tmp / "single", passage_words=8, fields=FIELDS)
    else:
        idx = ShardedIndex.create(tmp / f"s{n_shards}", shards=n_shards, passage_words=8, fields=FIELDS)
    with idx.writer(buffer_tokens=400) as w:
        w.add_many(docs, workers=1)
    with idx.writer() as w:  # a second commit with updates and deletes: deleted documents must not count
        for d in docs[::11]:
            w.delete(d.id)
        for d in docs[5::13]:
            w.update(
                Document(d.id, d.text + " mountaineer perbatasan", title=d.title, meta={"year": 2021, "source": "bpk"})
            )
    return idx


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Index, list[ShardedIndex]]:
    tmp = tmp_path_factory.mktemp("features")
    docs = mixed_corpus()
    single = _build(tmp, None, docs)
    sharded = [_build(tmp, n, docs) for n in SHARD_COUNTS]
    return single, sharded  # type: ignore[return-value]


def view(hits) -> list[tuple]:
    """Everything a caller reads from a hit; scores compared exactly (the same arithmetic)."""
    return [(h.doc_id, h.passage, h.lang, h.score, h.meta, h.snippet, h.snippet_highlights) for h in hits]


def _search_kwargs(extra: dict) -> list[dict]:
    return [dict(extra), dict(extra, k=4, offset=2), dict(extra, per_document=False, k=30)]


def test_a_plan_parsed_from_texts_travels_as_them_and_parses_back_equal(indexes) -> None:
    """A Ray shard receives a plan made from query and filter texts as those texts (one JSON argument,
    no pickled tree) and parses them again with the fields the coordinator parsed with: the plan it makes
    equals the coordinator's. A plan with expansions, or without texts behind it, has no text form."""
    import dataclasses

    from search.sharded import QueryPlan

    _, sharded = indexes
    index = sharded[0]
    fields = index.settings.fields
    for q, flt in [*FILTERED, ("mount* border", None), ("kota", "lang:id")]:
        plan = index._plan(index.parse(q, flt), None, 1.1, 0.6)
        assert plan.text_form(fields) is None  # no texts recorded: it would travel whole
        plan = dataclasses.replace(plan, source=(q, flt))
        form = json.loads(json.dumps(plan.text_form(fields)))  # as the actor reads it
        again = QueryPlan.from_text_form(form)
        assert again == plan and again.k1 == 1.1, (q, flt)
    assert dataclasses.replace(plan, expansions={}).text_form(fields) is None
    # the fields travel with the texts: a shard parses "year:2015" as the coordinator did, whatever its own
    year = index._plan(index.parse("year:2015 river"), None, None, None)
    year = dataclasses.replace(year, source=("year:2015 river", None))
    plain = QueryPlan.from_text_form(json.loads(json.dumps(year.text_form({}))))
    assert QueryPlan.from_text_form(json.loads(json.dumps(year.text_form(fields)))) == year != plain


def test_query_texts_are_parsed_once_per_set_of_fields(indexes) -> None:
    """A sharded index keeps query texts parsed, as one index does, and a shard server keeps the texts it
    is sent parsed per set of fields the coordinator parsed with: the same texts with other fields are
    parsed again (``year:2015`` is a filter only where ``year`` is declared), never taken from the cache."""
    import dataclasses

    from search.distributed import ShardServer
    from search.sharded import QueryPlan, read_manifest

    _, sharded = indexes
    index = sharded[0]
    fields = index.settings.fields
    assert index.parse("year:2015 river") is index.parse("year:2015 river")
    assert index.parse("river", "year:2015") is not index.parse("river")
    manifest = read_manifest(index.path)
    server = ShardServer(str(index.path), 0, index.n_shards, manifest["folders"][0], manifest["commits"][0])
    year = index._plan(index.parse("year:2015 river"), None, None, None)
    year = dataclasses.replace(year, source=("year:2015 river", None))

    def kept(key: str, with_fields: dict[str, str]) -> QueryPlan:
        call = json.dumps([key, [], None, year.text_form(with_fields)]).encode()
        got = server._kept_plan(call, None, scoring=False)
        assert got is not None
        return got[0][0]

    first, again, plain = kept("a", fields), kept("b", fields), kept("c", {})
    assert first == year and again.parsed is first.parsed  # parsed once
    assert plain != year and plain.parsed is not first.parsed
    assert kept("d", {}).parsed is plain.parsed and kept("e", fields).parsed is first.parsed



@pytest.mark.parametrize("q,flt", FILTERED)
def test_filtered_search_equals_one_index(indexes, q: str, flt: str | None) -> None:
    single, sharded = indexes
    for kwargs in _search_kwargs({} if flt is None else {"filter": flt}):
        want = view(single.search(q, **kwargs))
        for s in sharded:
            assert view(s.search(q, **kwargs)) == want, (q, flt, s.n_shards, kwargs)


def test_the_filtered_cases_are_not_trivial(indexes) -> None:
    """The table above exercises real filtering: hits, some but not all of the unfiltered ones."""
    single, _ = indexes
    narrowed = 0
    for q, flt in FILTERED:
        got = single.search(q, k=200, per_document=False, **({} if flt is None else {"filter": flt}))
        assert got, (q, flt)
        words = q.split(" source:")[0].split(" year:")[0]
        if len(got) < len(single.search(words, k=200, per_document=False)):
            narrowed += 1
    assert narrowed >= len(FILTERED) // 2


@pytest.mark.parametrize("q,extra", EXPANDED)
def test_fuzzy_prefix_and_wildcard_search_equals_one_index(indexes, q: str, extra: dict) -> None:
    single, sharded = indexes
    for kwargs in _search_kwargs(extra):
        want = view(single.search(q, **kwargs))
        assert want or kwargs.get("offset"), (q, kwargs)
        for s in sharded:
            assert view(s.search(q, **kwargs)) == want, (q, s.n_shards, kwargs)


@pytest.mark.parametrize("q,extra", EXPANDED[:6] + EXPANDED[9:12])
def test_explain_of_expanded_words_equals_the_score(indexes, q: str, extra: dict) -> None:
    single, sharded = indexes
    words = {k: v for k, v in extra.items() if k != "filter"}
    for hit in single.search(q, k=3, **extra):
        want = single.explain(q, hit.doc_id, hit.passage, **words).value
        assert want == pytest.approx(hit.score, abs=1e-9)
        for s in sharded:
            assert s.explain(q, hit.doc_id, hit.passage, **words).value == pytest.approx(want, abs=1e-12), (
                q,
                s.n_shards,
            )


@pytest.mark.parametrize(
    "q,node", [("kebijak*", PrefixQuery("kebijak")), ("pemerintahn~2", FuzzyQuery("pemerintahn", 2))]
)
def test_expansions_span_every_shard(indexes, q: str, node) -> None:
    """Where the shards' dictionaries differ (a shard lacks a word another has), a word expands over
    all of them, as in one index: not to any one shard's own expansions (which would miss words and
    blend another df)."""
    single, sharded = indexes
    disagree = 0
    for s in sharded:
        own = {
            frozenset(e.word for e in expand(sh.index.query_context(sh.snapshot, None, None, None), "en", node))
            for sh in s.shards
        }
        disagree += len(own) > 1
        assert view(s.search(q, k=100, per_document=False)) == view(single.search(q, k=100, per_document=False))
    assert disagree >= 2  # the case is real: in most layouts the shards' own expansions differ


@pytest.mark.parametrize(
    "q,fields,flt",
    [
        ("warga river", ["source", "year", "tags"], None),
        ("perbatasan", ["source", "tags"], "year:>=2014"),
        ("people -night", ["year"], "-source:kemenkeu"),
        ("kota lang:id", ["source"], None),
        ("mount*", ["source", "tags"], None),
        ("perbatasn~", ["year"], None),
        ("source:bpk", ["tags", "year"], None),
        ("nothingmatches", ["source"], None),
    ],
)
def test_facets_equal_one_index(indexes, q: str, fields: list[str], flt: str | None) -> None:
    single, sharded = indexes
    want = single.facets(q, fields, filter=flt)
    assert list(want) == fields
    for s in sharded:
        got = s.facets(q, fields, filter=flt)
        assert got == want and [list(v) for v in got.values()] == [list(v) for v in want.values()], (q, s.n_shards)


def test_facet_counts_are_brute_force_counts(indexes) -> None:
    """The summed counts are the number of live matching documents holding each value."""
    _, sharded = indexes
    s = sharded[0]
    matching = {h.doc_id for h in s.search("warga", k=1000)}
    want: dict[str, int] = {}
    for doc_id in matching:
        source = (s.get(doc_id).meta or {}).get("source")
        if source is not None:
            want[source] = want.get(source, 0) + 1
    assert s.facets("warga", ["source"])["source"] == dict(sorted(want.items(), key=lambda kv: (-kv[1], kv[0])))
    assert sum(want.values()) > 10


def test_bad_filters_and_facets_are_refused_as_one_index_refuses_them(indexes) -> None:
    single, sharded = indexes
    s = sharded[0]
    for call in (
        lambda idx: idx.facets("warga", ["nosuchfield"]),
        lambda idx: idx.facets("warga", "source"),
        lambda idx: idx.search("warga", filter="river"),
        lambda idx: idx.search("warga", filter=3),
    ):
        with pytest.raises(InvalidArgument) as want:
            call(single)
        with pytest.raises(InvalidArgument) as got:
            call(s)
        assert str(got.value) == str(want.value)


def test_fields_reach_every_shard_and_survive_reopening(indexes) -> None:
    _, sharded = indexes
    s = ShardedIndex.open(sharded[1].path)
    assert s.fields == FIELDS
    assert all(sh.index.fields == FIELDS for sh in s.shards)
    assert s.facets("warga", ["source"]) == sharded[1].facets("warga", ["source"])


# -- the front ends ---------------------------------------------------------------------------------------


def _cli(*args: object):
    from typer.testing import CliRunner

    from cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_filters_facets_and_fuzzy_on_a_sharded_index_answer_as_one_index(tmp_path: Path, monkeypatch) -> None:
    import json

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home" / ".cache"))
    monkeypatch.delenv("SEARCH_INDEX", raising=False)
    src = tmp_path / "src.jsonl"
    docs = mixed_corpus(60)
    src.write_text("\n".join(json.dumps({"_id": d.id, "text": d.text, "title": d.title, "meta": d.meta}) for d in docs))
    fields = ["--field", "year:int", "--field", "source:keyword", "--field", "tags:keyword[]"]
    assert _cli("index", src, "--index", tmp_path / "one", *fields).exit_code == 0
    r = _cli("index", src, "--index", tmp_path / "three", "--shards", 3, *fields)
    assert r.exit_code == 0, r.output
    assert ShardedIndex.open(tmp_path / "three").fields == FIELDS
    cases = [
        ["warga river", "--filter", "-source:kemenkeu", "--facet", "source", "--facet", "year"],
        ["perbatasan year:>=2015", "--facet", "tags"],
        ["warga perbatasn", "--fuzzy"],
        ["warga perba", "--prefix-last", "--filter", "year:<2020"],
        ["mount*", "--facet", "source"],
    ]
    for args in cases:
        a = _cli("query", *args, "--json", "--index", tmp_path / "one")
        b = _cli("query", *args, "--json", "--index", tmp_path / "three")
        assert a.exit_code == 0 and b.exit_code == 0, (args, a.output, b.output)
        want, got = json.loads(a.stdout), json.loads(b.stdout)
        assert want["hits"], args
        assert got["shards"] == 3 and got["partial"] is False
        assert got["hits"] == want["hits"] and got.get("facets") == want.get("facets"), args
    r = _cli("query", "warga", "--facet", "nosuchfield", "--index", tmp_path / "three")
    assert r.exit_code == 2 and r.stderr.startswith("error:") and "nosuchfield" in r.stderr


def test_http_filters_facets_and_fuzzy_on_a_sharded_index_answer_as_one_index(indexes) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    import warnings

    with warnings.catch_warnings():  # starlette's note about httpx, as in test_serve
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from cli.serve import ServeConfig
    from cli.serve.app import create_app

    single, sharded = indexes
    client = TestClient(create_app(ServeConfig(indexes={"a": str(single.path), "b": str(sharded[1].path)})))
    cases = [
        {"q": "warga river", "filter": "-source:kemenkeu", "facets": ["source", "year"]},
        {"q": "warga perbatasn", "fuzzy": True, "explain": True},
        {"q": "warga perba", "prefix_last": True, "filter": "year:<2020", "explain": True},
        {"q": "mount* year:>2012", "facets": ["tags"]},
    ]
    for body in cases:
        a = client.post("/v1/indexes/a/search", json=body).json()
        b = client.post("/v1/indexes/b/search", json=body).json()
        assert a["hits"] and b["hits"] == a["hits"], body
        assert b.get("facets") == a.get("facets") and b["partial"] is False, body
