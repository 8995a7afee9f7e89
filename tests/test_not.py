"""``-word`` excludes documents: a document one of whose passages holds the word is not returned, not even
by a passage without it (the README's query syntax says so)."""

from __future__ import annotations

import pytest

from search import Document, Index

LAW = "Lembaran Negara Republik Indonesia mengatur jembatan dan jalan tol di wilayah Jawa Timur."
SURAMADU = "Jembatan Suramadu menghubungkan pulau Jawa dengan pulau Madura sejak tahun itu."
ENGLISH_SURAMADU = "The Suramadu bridge was opened to traffic and it is the longest bridge in the country."


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    idx = Index.create(tmp_path_factory.mktemp("not") / "idx", passage_words=14)
    with idx.writer() as w:
        w.add(Document(id="a-with-suramadu", text=f"{LAW}\n\n{SURAMADU}"))
        w.add(Document(id="b-without", text=f"{LAW}\n\nJalan tol baru dibuka untuk umum pada bulan lalu di kota."))
        w.add(Document(id="c-english-passage", text=f"{LAW}\n\n{ENGLISH_SURAMADU}"))
    return idx


def test_the_setup_has_the_word_in_other_passages(index: Index) -> None:
    hits = index.search("Suramadu", k=10, per_document=False)
    expected = {("a-with-suramadu", 1, "id"), ("c-english-passage", 1, "en")}
    assert {(h.doc_id, h.passage, h.lang) for h in hits} == expected
    law = index.search("Lembaran Negara", k=10, per_document=False)
    assert {(h.doc_id, h.passage) for h in law} == {("a-with-suramadu", 0), ("b-without", 0), ("c-english-passage", 0)}


@pytest.mark.parametrize("per_document", [True, False])
def test_minus_word_excludes_whole_documents(index: Index, per_document: bool) -> None:
    for query in ("Lembaran Negara -Suramadu", "Lembaran Negara NOT Suramadu", "+Lembaran -Suramadu"):
        hits = index.search(query, k=10, per_document=per_document)
        assert [h.doc_id for h in hits] == ["b-without"], query


def test_explain_of_an_excluded_passage_says_why(index: Index) -> None:
    e = index.explain("Lembaran Negara -Suramadu", "a-with-suramadu", passage=0)
    assert e.value == 0.0 and "another passage of this document" in str(e)
    assert index.explain("Lembaran Negara -Suramadu", "b-without", passage=0).value == pytest.approx(
        index.search("Lembaran Negara -Suramadu", k=1)[0].score
    )
