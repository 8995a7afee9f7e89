"""The search core: exact BM25 (hand table, bm25s on SciFact), seeds acceptance, queries, storage behaviour."""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path

import pytest

import analyzers
from search import (
    Document,
    IncompatibleIndex,
    Index,
    IndexLocked,
    IndexNotFound,
    InvalidArgument,
    InvalidDocument,
    QuerySyntaxError,
    plain_query,
)
from search.documents import split_passages
from search.storage import write_meta
from tests.conftest import data_dir

UPPER_LARS = "002_8eb0183dd21bba0b.txt"
INDONESIAN = {"000_7e2a46c1dcea32a3.txt", "001_e934bd5ecad36a00.txt"}


def build(path: Path, docs: list[Document], **settings) -> Index:
    index = Index.create(path, **settings)
    with index.writer() as w:
        for d in docs:
            w.add(d)
    return index


# -- BM25 by hand ----------------------------------------------------------------------------------------
# d1 "apple banana" (dl 2), d2 "apple apple cherry" (dl 3), d3 "banana cherry cherry date" (dl 4);
# N = 3, avgdl = 3, k1 = 1.2, b = 0.75.
#   idf(df=2) = ln(1 + (3 - 2 + 0.5) / (2 + 0.5)) = ln(1.6)      = 0.47000362924573563
#   idf(df=1) = ln(1 + (3 - 1 + 0.5) / (1 + 0.5)) = ln(8/3)      = 0.98082925301172630
#   apple@d1:  tf 1, K = 1.2 * (0.25 + 0.75 * 2/3) = 0.9 -> 1/1.9 * 0.4700036 = 0.24737033118196614
#   apple@d2:  tf 2, K = 1.2                           -> 2/3.2 * 0.4700036 = 0.29375226827858475
#   cherry@d2: tf 1, K = 1.2                           -> 1/2.2 * 0.4700036 = 0.21363801329351617
#   cherry@d3: tf 2, K = 1.2 * (0.25 + 0.75 * 4/3) = 1.5 -> 2/3.5 * 0.4700036 = 0.26857350242613465
#   date@d3:   tf 1, K = 1.5                           -> 1/2.5 * 0.9808293 = 0.39233170120469050
HAND_DOCS = [("d1", "apple banana"), ("d2", "apple apple cherry"), ("d3", "banana cherry cherry date")]
HAND_TABLE = [
    ("apple", [("d2", 0.29375226827858475), ("d1", 0.24737033118196614)]),
    ("cherry", [("d3", 0.26857350242613465), ("d2", 0.21363801329351617)]),
    ("date", [("d3", 0.39233170120469050)]),
    (
        "apple cherry",
        [("d2", 0.29375226827858475 + 0.21363801329351617), ("d3", 0.26857350242613465), ("d1", 0.24737033118196614)],
    ),
    (
        "apple apple cherry",
        [("d2", 0.29375226827858475 + 0.21363801329351617), ("d3", 0.26857350242613465), ("d1", 0.24737033118196614)],
    ),  # a repeated query term counts once (English cannot tell a keyword query from a question)
]


@pytest.fixture(scope="module")
def hand_index(tmp_path_factory) -> Index:
    path = tmp_path_factory.mktemp("hand") / "idx"
    return build(path, [Document(i, t, lang="en") for i, t in HAND_DOCS], passage_words=0, k1=1.2, b=0.75)


@pytest.mark.parametrize(("query", "expected"), HAND_TABLE)
def test_bm25_matches_hand_computed_table(hand_index: Index, query: str, expected) -> None:
    hits = hand_index.search(query)
    assert [h.doc_id for h in hits] == [d for d, _ in expected]
    for hit, (_, score) in zip(hits, expected):
        assert hit.score == pytest.approx(score, rel=1e-12)


def test_explain_shows_the_same_parts(hand_index: Index) -> None:
    e = hand_index.explain("apple cherry", "d2")
    assert e.value == pytest.approx(0.29375226827858475 + 0.21363801329351617, rel=1e-12)
    assert [round(d.value, 12) for d in e.details] == [round(0.29375226827858475, 12), round(0.21363801329351617, 12)]
    idf_part, tf_part = e.details[0].details
    assert idf_part.value == pytest.approx(math.log(1.6))
    assert [d.value for d in idf_part.details] == [3.0, 2.0]  # N, df
    assert {d.description.split(",")[0]: d.value for d in tf_part.details} == {
        "tf": 2.0,
        "k1": 1.2,
        "b": 0.75,
        "dl": 3.0,
        "avgdl": 3.0,
    }
    assert hand_index.explain("date", "d1").value == 0.0


def test_a_repeated_word_counts_each_time_in_a_keyword_query_and_once_in_a_question(tmp_path: Path) -> None:
    docs = [
        ("a", "pajak daerah dipungut oleh pemerintah daerah"),
        ("b", "retribusi daerah dan pajak pusat"),
        ("c", "pajak penghasilan dipotong tiap bulan"),
    ]
    index = build(tmp_path / "idx", [Document(i, t, lang="id") for i, t in docs], passage_words=0)

    def scores(q: str) -> dict[str, float]:
        return {h.doc_id: h.score for h in index.search(q, k=10)}

    once, daerah = scores("pajak"), scores("daerah")
    twice = scores("pajak daerah pajak")
    for d in "abc":
        assert twice[d] == pytest.approx(2 * once[d] + daerah.get(d, 0.0), rel=1e-12)
    e = index.explain("pajak daerah pajak", "c")
    assert e.value == twice["c"]
    assert e.details[0].description.startswith("pajak [id] repeated in the query")
    assert e.details[0].details[0].value == 2.0
    # "apa" makes it a question: questions repeat words that do not find the answer, so once
    question = scores("apa pajak daerah pajak")
    for d in "abc":
        assert question[d] == pytest.approx(once[d] + daerah.get(d, 0.0), rel=1e-12)


def test_a_word_typed_twice_in_a_row_counts_once_as_the_reduplication_it_spells(tmp_path: Path) -> None:
    """"langkah langkah" is "langkah-langkah" typed without its hyphen: the index holds a reduplicated
    word as one occurrence, so the query counts it once, as it counts the hyphenated form. Apart, the
    word counts twice; an analyzer that indexes both halves (``reduplication: False``) counts twice."""
    docs = [
        ("a", "langkah-langkah kegiatan pembangunan daerah"),
        ("b", "langkah pertama dan langkah kedua"),
        ("c", "kegiatan rutin tiap tahun"),
    ]
    for options, together in (({}, 1), ({"reduplication": False}, 2)):
        index = build(
            tmp_path / f"idx{together}",
            [Document(i, t, lang="id") for i, t in docs],
            passage_words=0,
            analyzer_options=options,
        )

        def scores(q: str, index: Index = index) -> dict[str, float]:
            return {h.doc_id: h.score for h in index.search(q, k=10)}

        once, kegiatan = scores("langkah"), scores("kegiatan")
        cases = (
            ("langkah langkah kegiatan", together),
            ("Langkah langkah kegiatan", together),
            ("langkah kegiatan langkah", 2),
            ("langkah-langkah kegiatan", together),
        )
        for query, times in cases:
            got = scores(query)
            for d in "abc":
                want = times * once.get(d, 0.0) + kegiatan.get(d, 0.0)
                assert got.get(d, 0.0) == pytest.approx(want, rel=1e-12), (options, query, d)


def test_search_k1_b_override(hand_index: Index) -> None:
    # b = 0: no length normalization, so apple@d1 (tf 1) = idf * 1 / (1 + 1.2)
    hits = hand_index.search("apple", k1=1.2, b=0.0)
    assert hits[1].score == pytest.approx(0.47000362924573563 / 2.2, rel=1e-12)


# -- bm25s on SciFact ------------------------------------------------------------------------------------


def test_scores_match_bm25s_on_scifact(tmp_path: Path) -> None:
    bm25s = pytest.importorskip("bm25s")
    folder = data_dir("beir-scifact")
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open(encoding="utf-8")]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (folder / "queries.jsonl").open(encoding="utf-8"))}
    test_ids = sorted({line.split("\t")[0] for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]})
    an = analyzers.get("en", stopwords=False)
    index = Index.create(tmp_path / "idx", passage_words=0, k1=1.2, b=0.75, analyzer_options={"stopwords": False})
    with index.writer() as w:
        for d in corpus:
            w.add(Document(d["_id"], d["text"], title=d["title"], lang="en"))
    retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene", dtype="float64")
    retriever.index([an.analyze_columns(d["title"] + " " + d["text"])[0] for d in corpus], show_progress=False)
    assert len(test_ids) == 300
    for qid in test_ids:
        text = queries[qid]
        tokens = [t for t in an.query_terms(text)]
        docs, scores = retriever.retrieve([tokens], k=10, show_progress=False)
        ref = [(corpus[int(i)]["_id"], float(s)) for i, s in zip(docs[0], scores[0]) if s > 0]
        hits = index.search(plain_query(text), k=10)
        ours = [(h.doc_id, h.score) for h in hits]
        assert len(ours) == len(ref), qid
        for (_, rs), (_, os_) in zip(ref, ours):
            assert os_ == pytest.approx(rs, abs=1e-5), qid
        # ids must agree wherever scores are not tied
        for i, (rid, rs) in enumerate(ref):
            tied = sum(1 for _, s in ref if abs(s - rs) < 1e-9) > 1 or (i == len(ref) - 1)
            if not tied:
                assert ours[i][0] == rid, (qid, i)


# -- the seeds -------------------------------------------------------------------------------------------


def test_upper_lars_ranks_the_english_passage_first_with_highlights(seeds_index: Index) -> None:
    hit = seeds_index.search("Upper Lars")[0]
    assert hit.doc_id == UPPER_LARS and hit.lang == "en"
    assert "Upper Lars border crossing" in hit.text
    assert [hit.text[s:e] for s, e in hit.highlights] == ["Upper", "Lars"]
    assert [hit.snippet[s:e] for s, e in hit.snippet_highlights] == ["Upper", "Lars"]
    assert hit.snippet in hit.text


@pytest.mark.parametrize("query", ["warga Rusia kabur", "melarikan diri"])
def test_indonesian_queries_return_the_indonesian_passages(seeds_index: Index, query: str) -> None:
    hits = seeds_index.search(query)
    assert {h.doc_id for h in hits} == INDONESIAN
    assert all(h.lang == "id" for h in hits)
    assert any(h.highlights for h in hits)


def test_phrase_and_negation_behave_as_written(seeds_index: Index) -> None:
    phrase = seeds_index.search('"border crossing"', per_document=False)
    assert phrase and all("border crossing" in h.text.lower() for h in phrase)
    reversed_phrase = seeds_index.search('"crossing border"', per_document=False)
    assert all("crossing border" in h.text.lower() for h in reversed_phrase)
    with_georgia = seeds_index.search("Russia", per_document=False, k=100)
    without = seeds_index.search("Russia -Georgia", per_document=False, k=100)
    assert len(without) < len(with_georgia)
    assert any("georgia" in seeds_index.get(h.doc_id).text.lower() for h in with_georgia)
    # -word excludes documents: no passage of a document that mentions Georgia anywhere
    assert all("georgia" not in seeds_index.get(h.doc_id).text.lower() for h in without)


def test_stemmed_highlight_and_title_field(tmp_path: Path) -> None:
    index = build(
        tmp_path / "i",
        [
            Document("a", "People were crossing the river at night.", title="Border notes", lang="en"),
            Document("b", "The border was closed.", title="River notes", lang="en"),
        ],
    )
    hit = index.search("cross")[0]
    assert [hit.text[s:e] for s, e in hit.highlights] == ["crossing"]
    assert hit.title == "Border notes" and "Border" not in hit.text
    assert [h.doc_id for h in index.search("title:border")] == ["a"]
    assert {h.doc_id for h in index.search("border")} == {"a", "b"}  # the title counts as text too


# -- queries from real users -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "alpha (+)- thalassemia",
        "Avatar: The Last Airbender",
        "G - quadruplex",
        "(",
        ")",
        "+",
        "-",
        "AND",
        "a OR",
        "NOT",
        "title:",
        "lang:",
        "((a b)",
        "a) b(",
        "+-x",
        "--x",
        "x:y:z",
        "0-dimensional biomaterials",
    ],
)
def test_user_questions_never_crash(seeds_index: Index, query: str) -> None:
    seeds_index.search(query)


def test_hyphen_inside_a_word_is_not_negation(tmp_path: Path) -> None:
    index = build(
        tmp_path / "i",
        [
            Document("1", "gerakan anti-mobilisasi di kota", lang="id"),
            Document("2", "mobilisasi parsial diumumkan", lang="id"),
        ],
    )
    assert {h.doc_id for h in index.search("anti-mobilisasi")} == {"1", "2"}
    assert [h.doc_id for h in index.search("+anti-mobilisasi")] == ["1"]
    assert [h.doc_id for h in index.search("mobilisasi -anti")] == ["2"]


def test_stopword_only_query_returns_nothing(seeds_index: Index) -> None:
    assert seeds_index.search("the of and") == []  # English stopwords are not indexed


def test_function_word_only_query_finds_them(seeds_index: Index) -> None:
    # Indonesian function words are indexed: dropped from a query only when it has other words
    hits = seeds_index.search("yang dan di", k=3)
    assert hits and all(h.lang == "id" for h in hits)
    assert all({"yang", "dan", "di"} <= set(h.text.lower().split()) for h in hits)


def test_unbalanced_quote_names_the_position(seeds_index: Index) -> None:
    with pytest.raises(QuerySyntaxError) as e:
        seeds_index.search('Upper "Lars')
    assert e.value.position == 6


def test_boolean_operators_and_lang_filter(tmp_path: Path) -> None:
    index = build(
        tmp_path / "i",
        [
            Document("en1", "red apple and green pear", lang="en"),
            Document("en2", "red car", lang="en"),
            Document("id1", "apel merah dan pir hijau", lang="id"),
        ],
    )
    assert [h.doc_id for h in index.search("red AND pear")] == ["en1"]
    assert {h.doc_id for h in index.search("car OR pear")} == {"en1", "en2"}
    assert [h.doc_id for h in index.search("red NOT car")] == ["en1"]
    assert [h.doc_id for h in index.search("(car OR pear) +apple")] == ["en1"]
    assert {h.doc_id for h in index.search("red apel")} == {"en1", "en2", "id1"}
    assert [h.doc_id for h in index.search("red apel lang:id")] == ["id1"]
    assert [h.doc_id for h in index.search("red apel", lang="en")][0] in {"en1", "en2"}
    with pytest.raises(QuerySyntaxError):
        index.search("lang:fr apple")


# -- languages -------------------------------------------------------------------------------------------


def test_confident_indonesian_question_ranks_indonesian_passages_first(tmp_path: Path) -> None:
    docs = [
        Document("id-1", "Warga Rusia melarikan diri ke Georgia melalui perbatasan darat.", lang="id"),
        Document("en-1", "Russians flee to Georgia via the land border crossing.", lang="en"),
        Document("en-2", "Georgia border Rusia melarikan", lang="en"),
    ]  # misdetected-looking English passage
    index = build(tmp_path / "i", docs)
    hits = index.search("Mengapa warga Rusia melarikan diri ke Georgia?")
    assert hits[0].doc_id == "id-1"


def test_single_language_index_keeps_plain_bm25(hand_index: Index) -> None:
    assert hand_index.search("apple")[0].score == pytest.approx(0.29375226827858475, rel=1e-12)


def test_passages_without_evidence_take_the_document_language(tmp_path: Path) -> None:
    text = (
        "Warga Rusia yang tidak ingin ikut perang melarikan diri dari negara itu. " * 20
    ) + "\n\nPutin 2022 Georgia."
    index = build(tmp_path / "i", [Document("d", text)], passage_words=40)
    langs = {h.lang for h in index.search("Putin Georgia Rusia", per_document=False, k=100)}
    assert langs == {"id"}


# -- passages --------------------------------------------------------------------------------------------


def test_split_passages_cuts_at_sentences_near_the_target() -> None:
    text = " ".join(f"Sentence number {i} has exactly seven words." for i in range(60))
    spans = split_passages(text, 40)
    assert len(spans) > 5
    for s, e in spans:
        chunk = text[s:e]
        assert chunk.endswith(".") and 35 <= len(chunk.split()) <= 56
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert split_passages(text, 0) == [(0, len(text))]
    assert split_passages("", 120) == [(0, 0)]


def test_per_document_and_all_passages(seeds_index: Index) -> None:
    best = seeds_index.search("Rusia", k=100)
    every = seeds_index.search("Rusia", k=100, per_document=False)
    assert len({h.doc_id for h in best}) == len(best) < len(every)
    assert [h.score for h in every] == sorted((h.score for h in every), reverse=True)
    page = seeds_index.search("Rusia", k=2, offset=1, per_document=False)
    assert [(h.doc_id, h.passage) for h in page] == [(h.doc_id, h.passage) for h in every[1:3]]


# -- storage ---------------------------------------------------------------------------------------------


def seed_docs() -> list[Document]:
    return [
        Document(f.name, f.read_text(encoding="utf-8"))
        for f in sorted((Path(__file__).parents[1] / "seeds").glob("*.txt"))
    ]


def test_reopen_round_trip_and_document_api(tmp_path: Path) -> None:
    docs = seed_docs() + [Document("m", "meta test", title="T", lang="en", meta={"k": [1, 2]})]
    build(tmp_path / "i", docs)
    index = Index.open(tmp_path / "i")
    assert len(index) == 4 and "m" in index and "nope" not in index
    assert index.get("m") == docs[-1]
    assert index.get(docs[0].id).text == docs[0].text
    assert index.search("Upper Lars")[0].doc_id == UPPER_LARS
    assert index.stats()["documents"] == 4
    with pytest.raises(InvalidDocument):
        with index.writer() as w:
            w.add(Document("m", "again"))
    assert index.get("m") == docs[-1]  # the failed block rolled back


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    for name in ("a", "b"):
        build(tmp_path / name, seed_docs())
    files_a = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files_a == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in files_a:
        if name != "write.lock":
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_second_writer_gets_index_locked(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "i")
    with index.writer():
        with pytest.raises(IndexLocked):
            Index.open(tmp_path / "i").writer()
    with index.writer() as w:  # released on exit
        w.add(Document("x", "text"))


def test_threads_search_while_a_writer_commits(tmp_path: Path, monkeypatch) -> None:
    """Reader threads search at every step of ten commits and while the writer goes on: they see only
    committed states, each of them, and never an error.

    At each file system step of a commit (an fsync, a rename, a file removed) the writer asks the readers
    for a round of searches and waits until they are done, plus one search that runs on beside the writer.
    Searches are counted, not timed: readers spinning freely starved the writer of the GIL (36 s alone,
    minutes under load), and nothing said they had searched during a commit at all.
    """
    index = build(tmp_path / "i", [Document("base", "marker word", lang="en")])
    readers = 4
    errors: list[BaseException] = []
    seen: set[int] = set()
    cond = threading.Condition()
    work = {"asked": 0, "taken": 0, "done": 0, "stop": False, "events": 0}

    def reader() -> None:
        while True:
            with cond:
                cond.wait_for(lambda: work["stop"] or work["asked"] > work["taken"])
                if work["asked"] <= work["taken"]:
                    return
                work["taken"] += 1
            try:
                hits = index.search("marker", k=1000)
            except BaseException as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)
                hits = []
            with cond:
                seen.add(len(hits))
                work["done"] += 1
                cond.notify_all()

    me = os.getpid()

    def at_event(original):
        def step(*args, **kwargs):
            if os.getpid() != me:  # a child process the writer forked (a merge) has no readers
                return original(*args, **kwargs)
            with cond:
                work["events"] += 1
                target = work["asked"] + readers
                work["asked"] += readers + 1
                cond.notify_all()
                assert cond.wait_for(lambda: work["done"] >= target, timeout=120), "the readers hang"
            return original(*args, **kwargs)

        return step

    threads = [threading.Thread(target=reader) for _ in range(readers)]
    for t in threads:
        t.start()
    try:
        for name in ("fsync", "replace", "unlink"):
            monkeypatch.setattr(os, name, at_event(getattr(os, name)))
        for batch in range(10):
            with index.writer() as w:
                for j in range(5):
                    w.add(Document(f"d{batch}-{j}", f"marker number {batch} {j}", lang="en"))
    finally:
        monkeypatch.undo()
        with cond:
            work["stop"] = True
            cond.notify_all()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert work["events"] >= 30 and work["done"] == work["asked"] == work["events"] * (readers + 1)
    # each commit searched before it is visible sees the one before; only committed states are ever seen
    assert {1 + 5 * i for i in range(10)} <= seen <= {1 + 5 * i for i in range(11)}, sorted(seen)
    assert len(index.search("marker", k=1000)) == 51


def test_open_errors_are_precise(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound):
        Index.open(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(IndexNotFound):
        Index.open(tmp_path / "plain")
    Index.create(tmp_path / "v")
    meta = json.loads((tmp_path / "v" / "meta.json").read_text())
    meta["format_version"] = 999  # a newer telusur's index: well-formed, checksummed, unknown version
    write_meta(tmp_path / "v", meta)
    with pytest.raises(IncompatibleIndex):
        Index.open(tmp_path / "v")


def test_update_and_delete_are_visible_and_exact(tmp_path: Path) -> None:
    index = build(tmp_path / "i", seed_docs())
    with index.writer() as w:
        w.update(Document(UPPER_LARS, "Nothing about the crossing here."))
        assert w.delete("000_7e2a46c1dcea32a3.txt")
        assert not w.delete("nope")
    assert index.search("Upper Lars") == []
    fresh = build(tmp_path / "fresh", [index.get(i) for i in sorted(index.content_hashes())])
    for q in ["crossing", "Rusia", "warga Rusia kabur"]:
        assert [(h.doc_id, h.passage, h.score) for h in index.search(q, per_document=False)] == [
            (h.doc_id, h.passage, h.score) for h in fresh.search(q, per_document=False)
        ]


def test_pathological_phrases_are_refused_clearly(seeds_index: Index) -> None:
    with pytest.raises(QuerySyntaxError, match="too long"):
        seeds_index.search('"' + " ".join(["warga"] * 200) + '"')
    with pytest.raises(QuerySyntaxError, match="too many phrases"):
        seeds_index.search(" ".join(['"warga rusia"'] * 300))
    # a long pasted question is fine up to MAX_QUERY_TERMS distinct words (issue #24: bounded work)
    assert seeds_index.search(" ".join(f"kata{i}" for i in range(1000)) + " Lars")[0].doc_id == UPPER_LARS
    with pytest.raises(QuerySyntaxError, match="too many distinct words"):
        seeds_index.search(" ".join(f"kata{i}" for i in range(3000)) + " Lars")


@pytest.mark.parametrize("high", [1, 300, 70_000, 2**32 - 1])
def test_stable_argsort_u32_equals_numpy_stable_sort(high: int) -> None:
    import numpy as np

    from search.segment import stable_argsort_u32

    values = np.random.default_rng(high).integers(0, high, 5000, dtype=np.uint64).astype(np.uint32)
    assert np.array_equal(stable_argsort_u32(values), np.argsort(values, kind="stable"))


@pytest.mark.parametrize(
    "query", ["Upper Lars", "Rusia Russia Georgia", '"border crossing" Putin', "warga +Rusia -Kherson"]
)
def test_explain_value_equals_the_search_score(seeds_index: Index, query: str) -> None:
    hits = seeds_index.search(query, per_document=False, k=50)
    assert hits
    for hit in hits:
        assert seeds_index.explain(query, hit.doc_id, hit.passage).value == hit.score


# -- stopword policy (issue 16) ------------------------------------------------------------------------------
_LAW = [
    Document("p1", "Pajak sebagaimana dimaksud dalam Pasal 5 dibayar oleh wajib pajak tersebut.", lang="id"),
    Document("p2", "Pajak dimaksud dibayar dalam Pasal 5 oleh wajib pajak.", lang="id"),
    Document("p3", "Siapa yang membayar pajak? Wajib pajak yang sama membayar pajak itu.", lang="id"),
]


def test_phrase_with_function_words_matches_them_exactly(tmp_path: Path) -> None:
    index = build(tmp_path / "i", _LAW)
    assert [h.doc_id for h in index.search('"sebagaimana dimaksud dalam"')] == ["p1"]
    assert [h.doc_id for h in index.search('"dimaksud dalam Pasal"')] == ["p1"]  # p2: "dimaksud dibayar dalam"


def test_keyword_query_scores_function_words_a_question_drops_them(tmp_path: Path) -> None:
    index = build(tmp_path / "i", _LAW)
    keyword = index.search("pajak tersebut")
    assert keyword[0].doc_id == "p1"  # "tersebut" is scored: only p1 has it
    assert keyword[0].score > index.search("pajak")[0].score
    question = index.search("apa pajak tersebut")  # a question word makes it a question
    assert {h.doc_id: h.score for h in question} == {h.doc_id: h.score for h in index.search("pajak")}
    assert "tersebut" not in [question[0].text[s:e].lower() for s, e in question[0].highlights]


def test_framing_words_scored_in_keyword_queries_dropped_from_questions(tmp_path: Path) -> None:
    index = build(tmp_path / "i", _LAW)
    keyword = index.search("dimaksud pajak")  # "dimaksud" frames questions; a keyword query scores it
    assert {h.doc_id for h in keyword} == {"p1", "p2", "p3"}
    assert keyword[0].score > index.search("pajak")[0].score
    question = index.search("apa yang dimaksud pajak")  # "Apa yang dimaksud dengan ...?": only "pajak"
    assert {h.doc_id: h.score for h in question} == {h.doc_id: h.score for h in index.search("pajak")}
    where = index.search("dimanakah wajib pajak membayar")  # a one-word "di mana" makes it a question
    assert {h.doc_id: h.score for h in where} == {h.doc_id: h.score for h in index.search("wajib pajak membayar")}


def test_di_mana_spelled_apart_asks_as_dimana(tmp_path: Path) -> None:
    where = Document("p4", "Di mana pun wajib pajak tinggal, dari mana pun asalnya.", lang="id")
    index = build(tmp_path / "i", [*_LAW, where])
    plain = {h.doc_id: h.score for h in index.search("wajib pajak")}
    assert plain["p4"] > 0
    # "di mana", "dari mana" (any case, before or after the rest) make a question as "dimana" does: only
    # the content words are scored
    for question in ("di mana wajib pajak", "Dari  mana wajib pajak?", "wajib pajak di mana", "dimana wajib pajak"):
        assert {h.doc_id: h.score for h in index.search(question)} == plain, question
    # the same words apart or in the other order are function words, which a keyword query scores
    for keyword in ("mana di wajib pajak", "di wajib mana pajak"):
        assert index.search(keyword)[0].doc_id == "p4"
        assert {h.doc_id: h.score for h in index.search(keyword)}["p4"] > plain["p4"], keyword
    assert [h.doc_id for h in index.search("di mana")] == ["p4"]  # nothing else to score: the pair is


def test_index_built_with_indonesian_analyzer_version_2_keeps_its_analysis(tmp_path: Path) -> None:
    from search.settings import IndexSettings
    from search.storage import FORMAT, FORMAT_VERSION

    path = tmp_path / "old"
    path.mkdir()
    settings = IndexSettings(analyzer_versions={"id": "2", "en": analyzers.en.VERSION})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "generation": 0, "next_segment": 1}
    write_meta(path, {**meta, "segments": [], "settings": settings.to_json()})
    index = Index.open(path)
    with index.writer() as w:
        for d in _LAW:
            w.add(d)
    index = Index.open(path)
    assert index.settings.analyzer("id").version == "2" and index.stats()["analyzers_current"] is False
    assert [h.doc_id for h in index.search('"dimaksud dalam Pasal"')] == ["p1"]  # the stopword's gap counts
    # what version 3 fixes: a phrase of stopwords around one word matched that word anywhere
    assert {h.doc_id for h in index.search('"sebagaimana dimaksud dalam"')} == {"p1", "p2"}
    assert index.search("tersebut") == []  # a version-2 stopword: never indexed there


def test_index_built_with_indonesian_analyzer_version_5_keeps_its_stems(tmp_path: Path) -> None:
    from search.settings import IndexSettings
    from search.storage import FORMAT, FORMAT_VERSION

    docs = [Document("k", "Hari kemerdekaan dirayakan.", lang="id"), Document("m", "Negara yang merdeka.", lang="id")]
    path = tmp_path / "old"
    path.mkdir()
    settings = IndexSettings(analyzer_versions={"id": "5", "en": analyzers.en.VERSION})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "generation": 0, "next_segment": 1}
    write_meta(path, {**meta, "segments": [], "settings": settings.to_json()})
    index = Index.open(path)
    with index.writer() as w:
        w.add_many(docs)
    old = Index.open(path)
    assert old.settings.analyzer("id").version == "5" and old.stats()["analyzers_current"] is False
    assert [h.doc_id for h in old.search("merdeka")] == ["m"]  # "rdeka": Snowball's stem, as it was indexed
    new = build(tmp_path / "new", docs)
    assert new.settings.analyzer("id").version == "6" and new.stats()["analyzers_current"] is True
    assert {h.doc_id for h in new.search("merdeka")} == {"k", "m"}  # the repaired root meets "kemerdekaan"


def test_unknown_analyzer_version_is_incompatible(tmp_path: Path) -> None:
    from search.settings import IndexSettings

    with pytest.raises(IncompatibleIndex, match="'id' version '1'.*rebuild the index"):
        IndexSettings(analyzer_versions={"id": "1"})


def test_protected_words_are_not_stemmed_and_can_be_replaced(tmp_path: Path) -> None:
    docs = [
        Document("gazette", "Diumumkan dalam Lembaran Negara Republik Indonesia.", lang="id"),
        Document("sheet", "Formulir dibuat rangkap tiga lembar.", lang="id"),
    ]
    assert "lembaran" in analyzers.id.PROTECTED_WORDS and analyzers.id.stem("lembaran") == "lembar"
    shipped = build(tmp_path / "a", docs)
    assert [h.doc_id for h in shipped.search("lembaran")] == ["gazette"]  # no longer merged with "lembar"
    own = build(tmp_path / "b", docs, protected_words=["Formulir"])
    assert {h.doc_id for h in own.search("lembaran")} == {"gazette", "sheet"}  # the user's list replaces it
    assert Index.open(tmp_path / "b").settings.protected_words == ("formulir",)
    assert own.settings.analyzer("id").term("formulir") == "formulir"
    with pytest.raises(InvalidArgument, match="protected_words must be a list"):
        Index.create(tmp_path / "c", protected_words="lembaran")
