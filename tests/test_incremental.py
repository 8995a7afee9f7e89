"""The defining property: after any adds, updates, deletes and commits, every query returns the same
passages with the same scores as a fresh index built from the live documents alone."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from search import Document, Index

EN = ["river", "border", "crossing", "people", "queue", "night", "car", "the", "of", "mountain"]
ID = ["warga", "rusia", "melarikan", "perbatasan", "antrean", "yang", "dan", "kota", "mobilisasi", "diri"]
IDS = [f"doc{i}" for i in range(12)]
QUERIES = ["river border", "warga rusia", '"border crossing"', "queue -night", "+rusia kota", "mountain OR antrean"]

words = st.lists(st.sampled_from(EN + ID), min_size=0, max_size=30)


def docs_strategy():
    return st.builds(
        lambda i, w1, w2, title, lang: Document(
            i, " ".join(w1) + ". " + " ".join(w2) + ".", title=" ".join(title), lang=lang
        ),
        st.sampled_from(IDS),
        words,
        words,
        st.lists(st.sampled_from(EN + ID), max_size=3),
        st.sampled_from([None, "en", "id"]),
    )


def results(index: Index) -> list:
    return [[(h.doc_id, h.passage, h.score) for h in index.search(q, k=50, per_document=False)] for q in QUERIES]


class IncrementalIndex(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="telusur-sm-"))
        self.index = Index.create(self.tmp / "idx", passage_words=8)
        self.writer = self.index.writer(buffer_tokens=40)  # tiny buffer: many segments, flushes, merges
        self.pending: dict[str, Document] = {}
        self.committed: dict[str, Document] = {}

    @rule(doc=docs_strategy())
    def add_or_update(self, doc: Document) -> None:
        if doc.id in self.pending:
            self.writer.update(doc)
        else:
            self.writer.add(doc)
        self.pending[doc.id] = doc

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def delete(self, data) -> None:
        doc_id = data.draw(st.sampled_from(sorted(self.pending)))
        assert self.writer.delete(doc_id)
        del self.pending[doc_id]

    @rule(doc_id=st.sampled_from(IDS))
    def delete_maybe_missing(self, doc_id: str) -> None:
        assert self.writer.delete(doc_id) == (doc_id in self.pending)
        self.pending.pop(doc_id, None)

    @rule()
    def commit(self) -> None:
        self.writer.commit()
        self.committed = dict(self.pending)
        # the writer's id map, kept across commits, is the map of the snapshot it just published
        if self.writer._ids is not None:
            assert self.writer._ids == dict(self.writer._snap.live_ids())

    @rule()
    def forget_id_map(self) -> None:
        # the writer builds its id map lazily from its pending segments (flushed, merged, deleted from):
        # dropped here, the next add, update or delete reads it again from them
        self.writer._ids = None

    @rule()
    def rollback(self) -> None:
        self.writer.rollback()
        self.pending = dict(self.committed)

    @invariant()
    def matches_a_fresh_rebuild(self) -> None:
        live = Index.open(self.tmp / "idx")
        assert len(live) == len(self.committed)
        assert sorted(live.content_hashes()) == sorted(self.committed)
        fresh_dir = Path(tempfile.mkdtemp(prefix="telusur-fresh-"))
        try:
            fresh = Index.create(fresh_dir / "idx", passage_words=8)
            with fresh.writer() as w:
                for doc_id in sorted(self.committed):
                    w.add(self.committed[doc_id])
            assert results(live) == results(fresh)
            assert results(self.index) == results(fresh)
        finally:
            shutil.rmtree(fresh_dir, ignore_errors=True)

    def teardown(self) -> None:
        self.writer.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


IncrementalIndex.TestCase.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
TestIncrementalIndex = IncrementalIndex.TestCase


def test_many_commits_merge_segments_and_stay_exact(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", passage_words=8)
    docs = {}
    for i in range(70):
        with index.writer() as w:
            doc = Document(f"d{i % 40}", f"{EN[i % 10]} {ID[i % 7]} {EN[(i * 3) % 10]}. {ID[(i * 5) % 10]} kota.")
            w.update(doc)
            docs[doc.id] = doc
            if i % 9 == 0:
                w.delete(f"d{(i * 7) % 40}")
                docs.pop(f"d{(i * 7) % 40}", None)
    assert index.stats()["segments"] < 16  # merged: one commit each would have made up to 70
    fresh = Index.create(tmp_path / "fresh", passage_words=8)
    with fresh.writer() as w:
        for doc_id in sorted(docs):
            w.add(docs[doc_id])
    assert results(index) == results(fresh)
    assert len(index) == len(docs)


def test_segment_layout_never_changes_a_score(tmp_path: Path) -> None:
    """Long OR queries take the dense or the sparse path depending on segment size; sums must agree bit for bit."""
    import random

    rng = random.Random(5)
    vocab = [f"w{i}x" for i in range(80)]  # rare-ish words: big segments go dense, small ones sparse
    docs = [Document(f"d{i:03d}", " ".join(rng.choices(vocab, k=rng.randint(3, 40))), lang="en") for i in range(300)]
    one = Index.create(tmp_path / "one", passage_words=0)
    with one.writer() as w:
        w.add_many(docs)
    many = Index.create(tmp_path / "many", passage_words=0)
    with many.writer(buffer_tokens=200) as w:  # many small segments: sparse paths where `one` goes dense
        w.add_many(docs)
    assert many.stats()["segments"] >= 2
    for n in range(1, 13):
        q = " ".join(vocab[n * 3 : n * 4 + 1])
        a = [(h.doc_id, h.score) for h in one.search(q, k=200)]
        b = [(h.doc_id, h.score) for h in many.search(q, k=200)]
        assert a == b, n


@pytest.mark.parametrize("words", [40, 600])
def test_top_k_pruning_never_changes_the_first_hits(tmp_path: Path, words: int) -> None:
    """Ranked ORs skip passages below a floor only when k is small; the first k hits must not change.
    40 words: every clause is long and is summed over a dense array; 600: clauses of about a hundred
    passages are summed sparsely, then cut at the floor."""
    import random

    rng = random.Random(11)
    vocab = [f"w{i}x" for i in range(words)]
    docs = [Document(f"d{i:04d}", " ".join(rng.choices(vocab, k=rng.randint(5, 60))), lang="en") for i in range(1500)]
    multi = [
        Document(f"m{i}", ". ".join(" ".join(rng.choices(vocab, k=12)) for _ in range(12)), lang="en")
        for i in range(40)
    ]
    one = Index.create(tmp_path / "one", passage_words=0)
    with one.writer() as w:
        w.add_many(docs)
    many = Index.create(tmp_path / "many", passage_words=10)
    with many.writer() as w:
        w.add_many(docs[:300] + multi)
    for n in (2, 3, 5):
        for start in range(0, 30, 3):
            q = " ".join(vocab[start : start + n])
            for index in (one, many):
                for per_document in (True, False):
                    for k, offset in ((10, 0), (5, 7)):
                        small = index.search(q, k=k, offset=offset, per_document=per_document)
                        full = index.search(q, k=3000, per_document=per_document)[offset : offset + k]
                        assert [(h.doc_id, h.passage, h.score) for h in small] == [
                            (h.doc_id, h.passage, h.score) for h in full
                        ], (q, per_document, k, offset)
