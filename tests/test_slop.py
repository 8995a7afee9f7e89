"""Phrase slop (issue #20): ``"a b"~N`` matches the words within N position moves, scored as Lucene scores
sloppy phrases (each match adds 1 / (1 + distance) to the phrase frequency)."""

from __future__ import annotations

import pytest

from search import Document, Index, bm25
from search.sloppy import _phrase_freq

DOCS = [
    ("exact", "pajak daerah naik tajam sekali"),
    ("one", "pajak untuk daerah naik tajam"),  # one word between: distance 1
    ("two", "pajak dan retribusi daerah naik"),  # distance 2
    ("reversed", "daerah pajak naik tajam sekali"),  # reversed: distance 2
    ("far", "pajak naik tajam sekali di setiap daerah"),  # distance 5
]


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Index:
    idx = Index.create(tmp_path_factory.mktemp("slop") / "idx", analyzer_options={"stem_words": False})
    with idx.writer() as w:
        for doc_id, text in DOCS:
            w.add(Document(doc_id, text, lang="id"))
    return idx


@pytest.mark.parametrize(
    "slop, expected",
    [
        (0, {"exact"}),
        (1, {"exact", "one"}),
        (2, {"exact", "one", "two", "reversed"}),
        (4, {"exact", "one", "two", "reversed"}),
        (5, {"exact", "one", "two", "reversed", "far"}),
    ],
)
def test_slop_widens_the_matches(index, slop, expected):
    assert {h.doc_id for h in index.search(f'"pajak daerah"~{slop}', k=20)} == expected


def test_slop_zero_is_the_exact_phrase(index):
    a = [(h.doc_id, h.score) for h in index.search('"pajak daerah"~0', k=20)]
    b = [(h.doc_id, h.score) for h in index.search('"pajak daerah"', k=20)]
    assert a == b and a


def test_a_phrase_with_a_repeated_word_is_matched_exactly(tmp_path):
    idx = Index.create(tmp_path / "idx", analyzer_options={"stem_words": False})
    with idx.writer() as w:
        w.add(Document("once", "pajak naik tajam", lang="id"))
        w.add(Document("twice", "pajak pajak naik", lang="id"))
    # one occurrence must not stand for both words of the phrase inside a sloppy window
    assert [h.doc_id for h in idx.search('"pajak pajak"~3', k=10)] == ["twice"]
    assert [(h.doc_id, h.score) for h in idx.search('"pajak pajak"~3')] == [
        (h.doc_id, h.score) for h in idx.search('"pajak pajak"')
    ]


def test_scores_are_bm25_of_the_sloppy_frequency(index):
    hits = {h.doc_id: h for h in index.search('"pajak daerah"~5', k=20)}
    st = index.stats()["languages"]["id"]
    n, avgdl = st["passages"], st["avgdl"]
    idf = bm25.idf(n, 5) + bm25.idf(n, 5)  # both words in all five documents
    k1, b = index.settings.k1, index.settings.b
    for doc_id, distance in [("exact", 0), ("one", 1), ("two", 2), ("reversed", 2), ("far", 5)]:
        dl = len(dict(DOCS)[doc_id].split())
        freq = 1.0 / (1.0 + distance)
        expected = idf * (freq / (freq + k1 * (1 - b + b * dl / avgdl)) + bm25.delta("id"))  # BM25+
        assert hits[doc_id].score == pytest.approx(expected, rel=1e-9), doc_id
    assert hits["exact"].score > hits["one"].score > hits["two"].score > hits["far"].score


def test_explain_of_a_sloppy_phrase_is_its_score(index):
    for h in index.search('"pajak daerah"~3 naik', k=20):
        assert index.explain('"pajak daerah"~3 naik', h.doc_id).value == pytest.approx(h.score, rel=1e-12)


@pytest.mark.parametrize(
    "lists, slop, freq",
    [
        ([[0], [0]], 0, 1.0),  # exact
        ([[0, 10], [2, 10]], 3, 1 / 3 + 1.0),  # two matches: distance 2, then exact
        ([[1], [-1]], 2, 1 / 3),  # reversed pair
        ([[1], [-1]], 1, 0.0),
        ([[0], [3], [1]], 3, 1 / 4),  # three words: largest minus smallest shifted position
    ],
)
def test_phrase_frequency_table(lists, slop, freq):
    assert _phrase_freq(lists, slop) == pytest.approx(freq)


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(
    texts=st.lists(
        st.lists(st.sampled_from(["pajak", "daerah", "kota", "naik"]), min_size=1, max_size=12), min_size=1, max_size=6
    ),
    phrase=st.lists(st.sampled_from(["pajak", "daerah", "kota"]), min_size=2, max_size=3, unique=True),
    slop=st.integers(0, 6),
)
def test_more_slop_never_loses_a_match(tmp_path_factory, texts, phrase, slop):
    idx = Index.create(tmp_path_factory.mktemp("p") / "idx", analyzer_options={"stem_words": False})
    with idx.writer() as w:
        for i, words in enumerate(texts):
            w.add(Document(f"d{i}", " ".join(words), lang="id"))
    q = " ".join(phrase)
    exact = {h.doc_id for h in idx.search(f'"{q}"', k=100)}
    narrow = {h.doc_id for h in idx.search(f'"{q}"~{slop}', k=100)}
    wide = {h.doc_id for h in idx.search(f'"{q}"~{slop + 1}', k=100)}
    assert exact <= narrow <= wide
    for i, words in enumerate(texts):  # a document holding every word within the window matches
        pos = {w: [p for p, x in enumerate(words) if x == w] for w in phrase}
        if all(pos[w] for w in phrase):
            best = min(
                max(a - j for j, a in enumerate(combo)) - min(a - j for j, a in enumerate(combo))
                for combo in _combos([pos[w] for w in phrase])
            )
            if best == 0:
                assert f"d{i}" in exact
            if best > slop + 1:  # every counted match is a real window of the words: none is that narrow
                assert f"d{i}" not in wide
        else:
            assert f"d{i}" not in wide
    assert all(h.score > 0 for h in idx.search(f'"{q}"~{slop}', k=100))


def _combos(lists):
    if not lists:
        yield ()
        return
    for x in lists[0]:
        for rest in _combos(lists[1:]):
            yield (x, *rest)
