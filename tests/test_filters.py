"""Declared metadata fields, filters, negation, facets (issue #20): tables of every syntax form, brute-force
facet counts after updates and deletes, and properties (a filter never changes a score)."""

from __future__ import annotations

import random

import pytest

from search import Document, Index, InvalidArgument, QuerySyntaxError, parse_query
from search.query import MUST, MUST_NOT, SHOULD, BooleanQuery, FieldFilter, PhraseQuery, TermQuery

FIELDS = {"year": "int", "source": "keyword", "tags": "keyword[]"}

# id, text, lang, meta
DOCS = [
    ("a", "pajak daerah naik tahun ini", "id", {"year": 2020, "source": "kemenkeu", "tags": ["fiskal", "daerah"]}),
    ("b", "pajak daerah turun di kota", "id", {"year": 2015, "source": "bps"}),
    ("c", "tax on land rises again", "en", {"year": 2021, "source": "kemenkeu", "tags": ["fiscal"]}),
    ("d", "pajak pusat dan pajak daerah", "id", None),
    ("e", "land tax reform in the regions", "en", {"year": 2018, "source": "setneg", "tags": ["fiscal", "daerah"]}),
    ("f", "Warga Rusia melarikan diri", "id", {"year": 2022, "source": "setneg"}),
    ("g", "Russian citizens Rusia flee", "en", {"year": 2022, "source": "bps"}),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Index:
    idx = Index.create(tmp_path_factory.mktemp("filters") / "idx", fields=FIELDS)
    with idx.writer() as w:
        for doc_id, text, lang, meta in DOCS:
            w.add(Document(doc_id, text, lang=lang, meta=meta))
    return idx


def ids(hits) -> list[str]:
    return [h.doc_id for h in hits]


# -- syntax --------------------------------------------------------------------------------------------

PARSE_TABLE = [
    ("source:kemenkeu", [(SHOULD, FieldFilter("source", "kemenkeu"))]),
    ('source:"badan pusat"', [(SHOULD, FieldFilter("source", "badan pusat"))]),
    ("year:2020", [(SHOULD, FieldFilter("year", 2020))]),
    ("year:>=2020", [(SHOULD, FieldFilter("year", low=2020))]),
    ("year:>2020", [(SHOULD, FieldFilter("year", low=2020, include_low=False))]),
    ("year:<=2020", [(SHOULD, FieldFilter("year", high=2020))]),
    ("year:<2020", [(SHOULD, FieldFilter("year", high=2020, include_high=False))]),
    ("year:[2015 TO 2020]", [(SHOULD, FieldFilter("year", low=2015, high=2020))]),
    (
        "year:{2015 TO 2020}",
        [(SHOULD, FieldFilter("year", low=2015, high=2020, include_low=False, include_high=False))],
    ),
    ("year:[2015 TO *]", [(SHOULD, FieldFilter("year", low=2015))]),
    ("-source:bps", [(MUST_NOT, FieldFilter("source", "bps"))]),
    ("NOT source:bps", [(MUST_NOT, FieldFilter("source", "bps"))]),
    ("+source:bps", [(MUST, FieldFilter("source", "bps"))]),
    ("pajak AND year:2020", [(MUST, TermQuery("pajak")), (MUST, FieldFilter("year", 2020))]),
    (
        "source:a OR source:b",
        [(SHOULD, FieldFilter("source", "a")), (SHOULD, FieldFilter("source", "b"))],
    ),
    (
        "source:(a OR b)",
        [(SHOULD, BooleanQuery(((SHOULD, FieldFilter("source", "a")), (SHOULD, FieldFilter("source", "b")))))],
    ),
    ("tags:fiscal", [(SHOULD, FieldFilter("tags", "fiscal"))]),
    ("other:x", [(SHOULD, TermQuery("other:x"))]),  # an undeclared field is plain text
    ('"pajak daerah"~3', [(SHOULD, PhraseQuery("pajak daerah", None, 3))]),
    ('"pajak daerah"', [(SHOULD, PhraseQuery("pajak daerah", None, 0))]),
    ("-word", [(MUST_NOT, TermQuery("word"))]),
    ("NOT word x", [(MUST_NOT, TermQuery("word")), (SHOULD, TermQuery("x"))]),
]


@pytest.mark.parametrize("text, clauses", PARSE_TABLE)
def test_parse_table(text, clauses):
    assert list(parse_query(text, FIELDS).root.clauses) == clauses


@pytest.mark.parametrize(
    "text, langs, excluded",
    [
        ("x lang:id", ("id",), ()),
        ("x -lang:en", None, ("en",)),
        ("x NOT lang:en", None, ("en",)),
        ("NOT lang:id x", None, ("id",)),
    ],
)
def test_lang_forms(text, langs, excluded):
    p = parse_query(text, FIELDS)
    assert (p.langs, p.exclude_langs) == (langs, excluded)
    assert p.root.clauses == ((SHOULD, TermQuery("x")),)


def test_without_declared_fields_the_forms_stay_text():
    assert parse_query("source:kemenkeu").root.clauses == ((SHOULD, TermQuery("source:kemenkeu")),)
    assert parse_query("year:[2015 TO 2020]").root.clauses[0] == (SHOULD, TermQuery("year:[2015"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("year:abc", "not an integer"),
        ("year:>=x", "not an integer"),
        ("year:[2015 TO 2020", "never closed"),
        ("year:[2015 2020]", "LOW TO HIGH"),
        ("source:[a TO b]", "keyword field"),
        ("year:" + "9" * 30, "out of range"),
        ("x -lang:xx", "unknown language"),
    ],
)
def test_syntax_errors_name_the_problem(text, message):
    with pytest.raises(QuerySyntaxError, match=message):
        parse_query(text, FIELDS)


# -- search with filters: every form and its negation -------------------------------------------------

SEARCH_TABLE = [
    ("pajak", ["d", "b", "a"]),
    ("pajak source:kemenkeu", ["a"]),
    ("pajak -source:kemenkeu", ["d", "b"]),
    ("pajak NOT source:kemenkeu", ["d", "b"]),
    ("pajak year:>=2016", ["a"]),
    ("pajak -year:>=2016", ["d", "b"]),
    ("pajak year:<2016", ["b"]),
    ("pajak year:[2015 TO 2020]", ["b", "a"]),
    ("pajak year:{2015 TO 2020}", []),
    ("pajak -year:[2015 TO 2020]", ["d"]),
    ("pajak tags:daerah", ["a"]),
    ("pajak -tags:daerah", ["d", "b"]),
    ("pajak source:kemenkeu source:bps", ["b", "a"]),  # side by side: any
    ("pajak (source:kemenkeu OR source:bps)", ["b", "a"]),
    ("pajak source:(kemenkeu OR bps)", ["b", "a"]),
    ("pajak AND source:kemenkeu AND year:2020", ["a"]),
    ("pajak +source:kemenkeu +year:2015", []),
    ("(pajak source:bps) OR (tax source:kemenkeu)", ["b", "c"]),
    ("tax -source:setneg", ["c"]),
    ("tax NOT (source:kemenkeu OR year:2018)", []),
    ("source:kemenkeu", ["a", "c"]),  # filters alone: every match, score 0, by id
    ("source:setneg -tax", ["f"]),
    ("pajak source:nobody", []),
    ("Rusia", ["f", "g"]),
    ("Rusia lang:id", ["f"]),
    ("Rusia NOT lang:id", ["g"]),
    ("Rusia -lang:id", ["g"]),
    ("Rusia -lang:en", ["f"]),
    ("pajak -daerah", []),  # -word excludes documents holding the word anywhere
    ("pajak NOT pusat", ["b", "a"]),
]


@pytest.mark.parametrize("query, expected", SEARCH_TABLE)
def test_search_table(index, query, expected):
    got = index.search(query, k=20)
    assert sorted(ids(got)) == sorted(expected)
    if "source:kemenkeu" == query:
        assert all(h.score == 0.0 for h in got)


def test_filter_parameter_equals_the_filter_in_the_query(index):
    for q, f in [("pajak", "source:kemenkeu"), ("pajak OR tax", "year:>=2018 -lang:en"), ("tax", "-source:setneg")]:
        a = [(h.doc_id, h.score) for h in index.search(q, k=20, filter=f)]
        b = [(h.doc_id, h.score) for h in index.search(f"({q}) {f}" if "lang" not in f else f"{q} {f}", k=20)]
        if "lang" not in f:
            assert a == b
        assert a and all(s > 0 for _, s in a)


def test_filter_parameter_refuses_words_and_bad_types(index):
    with pytest.raises(InvalidArgument, match="filters only"):
        index.search("pajak", filter="pajak source:bps")
    with pytest.raises(InvalidArgument, match="filter must be a string"):
        index.search("pajak", filter=5)
    with pytest.raises(QuerySyntaxError):
        index.search("pajak", filter="year:abc")


def test_query_trees_built_in_code_are_checked(index):
    from search import ParsedQuery

    bad = ParsedQuery(BooleanQuery(((SHOULD, TermQuery("pajak")), (MUST, FieldFilter("nope", "x")))))
    with pytest.raises(InvalidArgument, match="does not declare"):
        index.search(bad)
    bad = ParsedQuery(BooleanQuery(((SHOULD, TermQuery("pajak")), (MUST, FieldFilter("year", "2020")))))
    with pytest.raises(InvalidArgument, match="does not fit"):
        index.search(bad)


def test_a_filter_changes_no_score_even_when_it_removes_a_language(index):
    full = {h.doc_id: h.score for h in index.search("pajak OR tax", k=20)}
    only_en = index.search("pajak OR tax year:>=2021", k=20)
    assert ids(only_en) == ["c"]
    assert only_en[0].score == full["c"]
    e = index.explain("pajak OR tax year:>=2021", "c")
    assert e.value == pytest.approx(full["c"], rel=1e-12)


# -- facets --------------------------------------------------------------------------------------------


def brute_facets(idx: Index, matching: set[str], fields: list[str]) -> dict:
    out: dict = {f: {} for f in fields}
    for doc_id in matching:
        meta = idx.get(doc_id).meta or {}
        for f in fields:
            v = meta.get(f)
            for x in set(v if isinstance(v, list) else [] if v is None else [v]):
                out[f][x] = out[f].get(x, 0) + 1
    return out


def test_facets_count_every_matching_document(index):
    got = index.facets("pajak OR tax", ["source", "year", "tags"])
    assert got == {
        "source": {"kemenkeu": 2, "bps": 1, "setneg": 1},
        "year": {2015: 1, 2018: 1, 2020: 1, 2021: 1},
        "tags": {"daerah": 2, "fiscal": 2, "fiskal": 1},
    }
    assert list(got["source"]) == ["kemenkeu", "bps", "setneg"]  # most frequent first, then by value
    assert index.facets("source:kemenkeu", ["year"]) == {"year": {2020: 1, 2021: 1}}
    assert index.facets("pajak", ["source"], filter="year:>=2016") == {"source": {"kemenkeu": 1}}
    assert index.facets("nothingmatches", ["source"]) == {"source": {}}


def test_facets_refuse_undeclared_fields(index):
    with pytest.raises(InvalidArgument, match="not a declared field"):
        index.facets("pajak", ["nope"])
    with pytest.raises(InvalidArgument, match="list of field names"):
        index.facets("pajak", "source")


def test_facets_equal_brute_force_after_updates_deletes_and_merges(tmp_path):
    rng = random.Random(7)
    idx = Index.create(tmp_path / "idx", fields=FIELDS)
    words = ["pajak", "daerah", "kota", "tax", "land", "warga", "pusat"]
    sources = ["kemenkeu", "bps", "setneg", "bi"]

    def doc(i: int) -> Document:
        meta: dict = {}
        if rng.random() < 0.8:
            meta["year"] = rng.randint(2010, 2024)
        if rng.random() < 0.8:
            meta["source"] = rng.choice(sources)
        if rng.random() < 0.6:
            meta["tags"] = rng.sample(["a", "b", "c", "d"], rng.randint(0, 3))
        text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
        return Document(f"doc{i}", text, lang=rng.choice(["id", "en"]), meta=meta or None)

    live: set[str] = set()
    for round_ in range(12):  # many small commits: merges happen along the way
        with idx.writer() as w:
            for _ in range(15):
                i = rng.randrange(120)
                if rng.random() < 0.25 and f"doc{i}" in live:
                    w.delete(f"doc{i}")
                    live.discard(f"doc{i}")
                else:
                    w.update(doc(i))
                    live.add(f"doc{i}")
        for q in ("pajak", "tax OR land", "kota -pusat", "year:>=2015"):
            matching = {h.doc_id for h in idx.search(q, k=1000)}
            fields = ["source", "year", "tags"]
            assert idx.facets(q, fields) == brute_facets(idx, matching, fields), (round_, q)
    assert len(idx) == len(live)


# -- properties: a filter never changes a score ------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FILTERS = [
    "source:kemenkeu",
    "-source:kemenkeu",
    "year:>=2018",
    "year:[2015 TO 2020]",
    "-year:{2015 TO 2021}",
    "tags:daerah",
    "-tags:fiscal",
    "source:bps source:setneg",
    "source:kemenkeu AND year:2021",
    "(source:bps OR tags:fiscal)",
    "NOT (source:setneg OR year:<2016)",
]
QUERY_WORDS = ["pajak", "daerah", "tax", "land", "Rusia", "kota", "dan", "the", '"pajak daerah"', "-pusat", "+pajak"]


def passes(idx: Index, doc_id: str, flt: str) -> bool:
    """Whether a document passes a filter, decided from the document alone (the search of the filter by
    itself lists every document it lets through)."""
    return doc_id in {h.doc_id for h in idx.search(flt, k=1000)}


@given(
    words=st.lists(st.sampled_from(QUERY_WORDS), min_size=1, max_size=4),
    flt=st.sampled_from(FILTERS),
    per_document=st.booleans(),
)
def test_filtered_search_is_unfiltered_search_post_filtered(index, words, flt, per_document):
    # a query of filters and NOT clauses alone lists what the filters let through (score 0), while NOT
    # clauses alone match nothing: the property is about queries with words to score
    assume(any(not w.startswith("-") for w in words))
    q = " ".join(words)
    unfiltered = index.search(q, k=1000, per_document=per_document)
    filtered = index.search(q, k=1000, per_document=per_document, filter=flt)
    allowed = {h.doc_id for h in index.search(flt, k=1000)}
    expected = [(h.doc_id, h.passage, h.score) for h in unfiltered if h.doc_id in allowed]
    assert [(h.doc_id, h.passage, h.score) for h in filtered] == expected
    inline = index.search(f"({q}) {flt}" if not flt.startswith("(") else f"({q}) AND {flt}", k=1000)
    assert {h.doc_id: h.score for h in inline}.items() <= {h.doc_id: h.score for h in unfiltered}.items()


def test_a_filtered_top_k_is_the_post_filtered_top_k_also_when_cached(index):
    # a word's scores restricted to a filter are cached per snapshot under the filter: every filter in
    # turn, each query twice (the second run reads the cached masked scores and their floor for a small k)
    for q in ["pajak daerah", "tax land", "pajak Rusia kota", "daerah the"]:
        unfiltered = index.search(q, k=1000, per_document=False)
        for flt in FILTERS:
            allowed = {h.doc_id for h in index.search(flt, k=1000)}
            expected = [(h.doc_id, h.passage, h.score) for h in unfiltered if h.doc_id in allowed][:2]
            for _ in range(2):
                got = index.search(q, k=2, per_document=False, filter=flt)
                assert [(h.doc_id, h.passage, h.score) for h in got] == expected, (q, flt)


def test_filter_alone_lists_exactly_the_documents_that_pass(index):
    for flt, expected in [
        ("year:>=2020", {"a", "c", "f", "g"}),
        ("-year:>=2020", {"b", "d", "e"}),
        ("-tags:fiscal", {"a", "b", "d", "f", "g"}),
        ("tags:fiscal tags:fiskal", {"a", "c", "e"}),
        ("tags:fiscal AND tags:daerah", {"e"}),
    ]:
        assert {h.doc_id for h in index.search(flt, k=100)} == expected, flt


@pytest.mark.parametrize("query", [q for q, expected in SEARCH_TABLE if expected])
def test_explain_equals_the_score_with_filters(index, query):
    for h in index.search(query, k=20, per_document=False):
        e = index.explain(query, h.doc_id, h.passage)
        assert e.value == pytest.approx(h.score, rel=1e-12, abs=1e-15), (query, h.doc_id, str(e))


def test_explain_says_which_filter_excludes(index):
    e = index.explain("pajak source:kemenkeu", "b")
    assert e.value == 0.0
    assert "does not pass a filter" in str(e) and "source:kemenkeu" in str(e)
