"""Bulk indexing on several worker processes: the same index as one process, deterministic, all-or-nothing."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from search import Document, Index, InvalidDocument, WorkerFailed, parallel
from search.builder import SegmentBuilder, content_hash

EN = "the river border crossing people queue night car of mountain long wait guards said".split()
ID = "warga rusia melarikan perbatasan antrean yang dan kota mobilisasi diri ke dari untuk".split()
QUERIES = ["river border", "warga rusia", '"border crossing"', "queue -night", "+rusia kota", "title:judul", "mountain"]
BUFFER = 1_000  # tokens: a small corpus still makes many batches, a dozen segments and a merge

needs_processes = pytest.mark.skipif(parallel.start_method() is None, reason="no multiprocessing start method")
needs_fork = pytest.mark.skipif(parallel.start_method() != "fork", reason="patching a worker needs fork")


def corpus(n: int = 240, seed: int = 7) -> list[Document]:
    """Documents of one to several passages, in both languages, some with titles, langs and metadata."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        words = EN if i % 3 else ID
        sentences = [" ".join(rng.choices(words, k=rng.randint(3, 14))) + "." for _ in range(rng.randint(1, 12))]
        docs.append(
            Document(
                id=f"d{i:04d}",
                text=" ".join(sentences),
                title="judul " + rng.choice(words) if i % 4 == 0 else ("" if i % 5 else "same title"),
                lang=[None, None, "en", "id"][i % 4] if i % 7 == 0 else None,
                meta={"n": i} if i % 6 == 0 else None,
            )
        )
    return docs


def build(path: Path, docs: list[Document], workers: int) -> Index:
    index = Index.create(path, passage_words=20)
    with index.writer(buffer_tokens=BUFFER) as w:
        assert w.add_many(docs, workers=workers) == len(docs)
    return index


def results(index: Index) -> list:
    return [[(h.doc_id, h.passage, h.score) for h in index.search(q, k=100, per_document=False)] for q in QUERIES]


def files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.name != "write.lock"}


def segment_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name.startswith("seg_"))


def test_content_hash_from_fields_equals_the_documents() -> None:
    for doc in corpus(30) + [Document("x\ud800y", "t")]:
        assert content_hash(doc.id, doc.text, doc.title, doc.lang or "", doc.meta_json()) == doc.content_hash()


@needs_processes
def test_two_workers_give_the_same_results_and_scores_as_one(tmp_path: Path) -> None:
    docs = corpus()
    one = build(tmp_path / "w1", docs, workers=1)
    two = build(tmp_path / "w2", docs, workers=2)
    assert len(one) == len(two) == len(docs)
    assert results(one) == results(two)
    assert all(results(two))  # every query matched something: the comparison is not vacuous
    for doc in docs[::17]:
        assert two.get(doc.id) == doc
    assert two.content_hashes() == one.content_hashes()


@needs_processes
def test_two_worker_builds_are_byte_identical(tmp_path: Path) -> None:
    docs = corpus()
    build(tmp_path / "a", docs, workers=2)
    build(tmp_path / "b", docs, workers=2)
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert len([n for n in a if n.startswith("seg_")]) > 1  # several worker segments, merged or not
    assert a == b


@needs_processes
@pytest.mark.parametrize(
    "bad",
    [Document("d0001", "a duplicate of an id earlier in the same call"), Document("", "no id"), "not a document"],
)
def test_a_bad_document_in_the_middle_commits_nothing(tmp_path: Path, bad) -> None:
    docs = corpus()
    index = Index.create(tmp_path / "i", passage_words=20)
    with pytest.raises(InvalidDocument):
        with index.writer(buffer_tokens=BUFFER) as w:
            w.add_many(docs[:150] + [bad] + docs[150:], workers=2)
    assert len(index) == 0
    assert segment_files(index.path) == []
    assert len(Index.open(index.path)) == 0


@needs_processes
def test_an_id_already_in_the_index_is_rejected(tmp_path: Path) -> None:
    docs = corpus()
    index = build(tmp_path / "i", docs[:100], workers=2)
    before = files(index.path)
    with pytest.raises(InvalidDocument, match="d0050"):
        with index.writer(buffer_tokens=BUFFER) as w:
            w.add_many(docs[100:] + [docs[50]], workers=2)
    assert files(index.path) == before


@needs_processes
def test_rollback_removes_worker_files(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "i", passage_words=20)
    committed = files(index.path)
    w = index.writer(buffer_tokens=BUFFER)
    w.add_many(corpus(), workers=2)
    assert segment_files(index.path)  # written, not yet committed
    w.rollback()
    assert segment_files(index.path) == []
    w.close()
    assert files(index.path) == committed


@needs_processes
def test_update_and_delete_right_after_add_many(tmp_path: Path) -> None:
    docs = corpus()
    index = Index.create(tmp_path / "i", passage_words=20)
    with index.writer(buffer_tokens=BUFFER) as w:
        w.add_many(docs, workers=2)
        w.update(Document("d0003", "a brand new mountain text"))
        assert w.delete("d0010")
        assert not w.delete("d0010")
        w.add(Document("d0010", "back again with a river"))
    assert len(index) == len(docs)
    assert index.get("d0003").text == "a brand new mountain text"
    assert index.get("d0010").text == "back again with a river"
    expected = [d for d in docs if d.id not in ("d0003", "d0010")]
    expected += [Document("d0003", "a brand new mountain text"), Document("d0010", "back again with a river")]
    fresh = build(tmp_path / "fresh", expected, workers=1)
    assert results(index) == results(fresh)


@needs_processes
def test_add_many_after_add_and_commit_in_pieces(tmp_path: Path) -> None:
    docs = corpus()
    index = Index.create(tmp_path / "i", passage_words=20)
    with index.writer(buffer_tokens=BUFFER) as w:
        w.add(docs[0])
        with pytest.raises(InvalidDocument):  # buffered in this process, not yet flushed
            w.add_many([docs[0]] + docs[1:], workers=2)
        w.add_many(docs[1:120], workers=2)
        w.commit()
        w.add_many(docs[120:], workers=2)
    fresh = build(tmp_path / "fresh", docs, workers=1)
    assert results(index) == results(fresh)


def test_a_small_call_stays_in_process(tmp_path: Path, monkeypatch) -> None:
    def no_workers(*args, **kwargs):
        raise AssertionError("started workers for one batch")

    monkeypatch.setattr(parallel, "build_segments", no_workers)
    docs = corpus(5)
    index = Index.create(tmp_path / "i", passage_words=20)
    with index.writer() as w:
        assert w.add_many(docs, workers=2) == 5
    assert results(index) == results(build(tmp_path / "w1", docs, workers=1))


def _failing_add_fields(self, doc_id, *fields):
    if doc_id == "d0180":
        raise RuntimeError("analysis exploded")
    return _original_add_fields(self, doc_id, *fields)


def _dying_add_fields(self, doc_id, *fields):
    if doc_id == "d0180":
        os._exit(3)
    return _original_add_fields(self, doc_id, *fields)


_original_add_fields = SegmentBuilder.add_fields


@needs_fork
@pytest.mark.parametrize(
    ("patch", "message"), [(_failing_add_fields, "analysis exploded"), (_dying_add_fields, "exited with code 3")]
)
def test_a_failing_worker_surfaces_and_leaves_nothing(tmp_path: Path, monkeypatch, patch, message) -> None:
    monkeypatch.setattr(SegmentBuilder, "add_fields", patch)  # forked workers inherit the patch
    index = Index.create(tmp_path / "i", passage_words=20)
    with pytest.raises(WorkerFailed, match=message):
        with index.writer(buffer_tokens=BUFFER) as w:
            w.add_many(corpus(), workers=2)
    assert segment_files(index.path) == []
    assert len(index) == 0


@needs_processes
@pytest.mark.parametrize("ends", ["send", "finish"])
def test_a_worker_gone_before_a_send_is_reported_not_a_broken_pipe(tmp_path: Path, ends: str) -> None:
    """A worker that died before the parent's next send (a batch, or the last "finish"): the parent says
    which worker exited and how, never ``BrokenPipeError`` (the race a loaded machine made likely)."""
    import signal

    from search.settings import IndexSettings

    pool = parallel._Pool(tmp_path, IndexSettings(), 2, 1_000)
    dead = 1 if ends == "finish" else 0  # one batch goes to worker 0: worker 1 only gets "finish"
    try:
        pool.procs[dead].kill()
        pool.procs[dead].join()
        batch = [["d0", "some text", "", None, ""]]  # as _batches makes them: meta_json "" for none
        with pytest.raises(WorkerFailed, match=f"worker {dead} .*exited with code {-signal.SIGKILL}"):
            pool.run([(i % 2, batch) for i in range(1 if ends == "finish" else 3)])
    finally:
        pool.close(remove_files=True)
    assert segment_files(tmp_path) == []


_FIELD = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(
    st.integers(min_value=0, max_value=2**40),
    st.lists(st.tuples(_FIELD, _FIELD, _FIELD, st.sampled_from([None, "en", "id"]), _FIELD), max_size=20),
)
def test_a_batch_reaches_a_worker_field_for_field(batch_no: int, docs: list[tuple]) -> None:
    """The parent's batch framing (lengths, then one UTF-8 text; nothing unpickled) gives the worker the
    same fields, ``None`` languages included, whatever the text holds (NULs, marks, astral characters)."""
    got_no, flat = parallel._unpack_batch(parallel._pack_batch(batch_no, [list(d) for d in docs]))
    assert got_no == batch_no
    assert flat == [field for doc in docs for field in doc]


@given(
    st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=60),
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=2, max_value=4),
)
def test_batches_go_round_robin_and_the_workers_end_together(lengths: list[int], per_batch: int, workers: int) -> None:
    """``assigned``: every document once, in order; all but the last two batches round robin; those two
    cut again so the workers' estimated tokens end within a document of one level, when the last two
    batches are enough to even them out (plain round robin left one worker a whole batch more); and the
    same input gives the same assignment."""
    docs = [[f"d{i}", "x" * n, "", None, ""] for i, n in enumerate(lengths)]
    batches = [docs[i : i + per_batch] for i in range(0, len(docs), per_batch)]
    got = list(parallel.assigned(iter(batches), workers, 10**9))
    assert got == list(parallel.assigned(iter(batches), workers, 10**9))
    assert [fields for _, piece in got for fields in piece] == docs
    assert all(piece for _, piece in got)
    lead = batches[:-2]
    assert [(w, piece) for w, piece in got[: len(lead)]] == [(i % workers, b) for i, b in enumerate(lead)]
    totals = [0] * workers
    for w, piece in got:
        totals[w] += sum(parallel.estimate_tokens(f[1], f[2]) for f in piece)
    before = [0] * workers
    for i, b in enumerate(lead):
        before[i % workers] += sum(parallel.estimate_tokens(f[1], f[2]) for f in b)
    tail = [parallel.estimate_tokens(f[1], f[2]) for b in batches[-2:] for f in b]
    if sum(tail) >= workers * (max(before) - min(before)) + workers * max(tail):  # enough to even them out
        assert max(totals) - min(totals) <= 2 * max(tail)


def test_a_batch_holding_a_huge_document_is_never_held_back() -> None:
    """``assigned`` holds two batches back to balance the end, but never one over twice the batch size
    (a huge document): it goes before the next batch is read, so the parent holds one at a time."""
    sizes = [600, 600, 6000, 600, 6000, 600, 600]  # 101 and 1001 estimated tokens; batches of 100
    read: list[int] = []

    def source():
        for i, n in enumerate(sizes):
            read.append(i)
            yield [[f"d{i}", "x" * n, "", None, ""]]

    got = []
    for _, piece in parallel.assigned(source(), 2, 100):
        for fields in piece:
            if len(fields[1]) == 6000:
                assert read[-1] == int(fields[0][1:]), (fields[0], read)  # nothing after it read yet
        got.extend(fields[0] for fields in piece)
    assert got == [f"d{i}" for i in range(len(sizes))]
