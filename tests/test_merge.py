"""The merge policy (tables of segment sizes -> merges) and force_merge through the writer."""

from __future__ import annotations

import json
import os
import random
import signal
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import search.merge as merge
from search import Document, Index
from search.errors import IndexCorrupt, InvalidArgument
from search.merge import SegmentSize, TieredMergePolicy, merge_segment_data, merge_segments
from search.segment import SegmentReader, write_segment

MB = 1 << 20


def sizes(*mbs: float, deleted: dict[int, float] | None = None) -> list[SegmentSize]:
    """Segments s0, s1, ... of the given sizes in MB, 1000 documents each; ``deleted``: index -> fraction."""
    deleted = deleted or {}
    return [SegmentSize(f"s{i}", int(mb * MB), 1000, int(1000 * deleted.get(i, 0.0))) for i, mb in enumerate(mbs)]


POLICY = TieredMergePolicy(segments_per_tier=10, max_merge_at_once=10, max_merged_bytes=100 * MB, floor_bytes=2 * MB)


@pytest.mark.parametrize(
    "segments, expected",
    [
        ([], []),
        (sizes(*[0.01] * 10), []),  # ten tiny segments: within one tier's budget
        # the eleventh: the ten smallest merged at once, not eleven
        (sizes(*[0.01 * (i + 1) for i in range(11)]), [[f"s{i}" for i in range(10)]]),
        # twenty-five: two merges of the ten smallest, leaving seven segments
        (sizes(*[1 + i / 100 for i in range(25)]), [[f"s{i}" for i in range(0, 10)], [f"s{i}" for i in range(10, 20)]]),
        # one big segment and twenty small ones: small ones merge together, not into the big one
        (sizes(50, *[1 + i / 100 for i in range(20)]), [[f"s{i}" for i in range(1, 11)]]),
        # ten segments of 1 MB and one of 20 MB below them in count: within budget
        (sizes(20, 1, 1, 1, 1, 1, 1, 1, 1, 1), []),
    ],
    ids=["empty", "ten-tiny", "eleven-tiny", "twenty-five", "big-and-small", "within-budget"],
)
def test_find_merges_table(segments, expected) -> None:
    assert [sorted(g, key=lambda n: int(n[1:])) for g in POLICY.find_merges(segments)] == expected


def test_width_and_size_caps_hold() -> None:
    segments = sizes(*[30] * 40)  # 40 segments of 30 MB: any merge of more than three passes 100 MB
    merges = POLICY.find_merges(segments)
    assert merges, "forty segments are over budget"
    by_name = {s.name: s for s in segments}
    for group in merges:
        assert 2 <= len(group) <= POLICY.max_merge_at_once
        assert sum(by_name[n].live_size for n in group) <= POLICY.max_merged_bytes
    wide = TieredMergePolicy(max_merge_at_once=4, segments_per_tier=4, max_merged_bytes=1 << 40)
    assert all(len(g) <= 4 for g in wide.find_merges(sizes(*[0.01] * 30)))
    names = [n for g in merges for n in g]
    assert len(names) == len(set(names)), "a segment in two merges"


def test_too_big_segments_are_left_alone_unless_mostly_deleted() -> None:
    big = sizes(60, 60, 60, *[0.01] * 11)  # three over half the maximum merged size
    merges = POLICY.find_merges(big)
    assert merges and all(not {"s0", "s1", "s2"} & set(g) for g in merges)
    mostly_deleted = sizes(60, 60, 60, deleted={1: 0.8})
    assert POLICY.find_merges(mostly_deleted) == [["s1"]]


def test_many_deletions_trigger_a_merge_and_go_first() -> None:
    assert POLICY.find_merges(sizes(5, 5, 5)) == []
    # the index over 20 % deleted (700 of 3000): the segment holding them is rewritten alone
    assert POLICY.find_merges(sizes(5, 5, 5, deleted={2: 0.7})) == [["s2"]]
    # 30 % of one segment but 10 % of the index: left for later
    assert POLICY.find_merges(sizes(5, 5, 5, deleted={2: 0.3})) == []
    # the worst first, only as many as bring the index back under the limit
    assert POLICY.find_merges(sizes(5, 5, 5, 5, deleted={0: 0.3, 1: 0.9, 2: 0.25})) == [["s1"]]
    assert POLICY.find_merges(sizes(5, 5, 5, 5, deleted={0: 0.5, 1: 0.9, 2: 0.3})) == [["s1"], ["s0"]]
    # over budget with equal sizes: the window holding the deleted documents scores best
    segments = sizes(*[1] * 11, deleted={0: 0.15})
    (group,) = POLICY.find_merges(segments)
    assert "s0" in group and len(group) == 10


@pytest.mark.parametrize(
    "n_segments, target, rounds",
    [(1, 1, 0), (5, 1, 1), (10, 1, 1), (11, 1, 2), (25, 1, 2), (101, 1, 3), (30, 5, 1), (4, 10, 0)],
)
def test_forced_merges_reach_the_target_in_capped_rounds(n_segments, target, rounds) -> None:
    segments = sizes(*[1 + i % 3 for i in range(n_segments)])
    done = 0
    while True:
        merges = POLICY.find_forced_merges(segments, target)
        if not merges:
            break
        done += 1
        assert all(len(g) <= POLICY.max_merge_at_once for g in merges)
        chosen = {n for g in merges for n in g}
        merged = [SegmentSize(f"m{done}_{i}", sum(1 for _ in g) * MB, 1000) for i, g in enumerate(merges)]
        segments = [s for s in segments if s.name not in chosen] + merged
        assert done < 10
    assert len(segments) == min(n_segments, max(target, len(segments))) and len(segments) <= max(target, 1)
    assert done == rounds


def test_forced_merge_rewrites_segments_with_deletions() -> None:
    assert POLICY.find_forced_merges(sizes(5, 5, deleted={1: 0.01}), 2) == [["s1"]]
    with pytest.raises(ValueError):
        POLICY.find_forced_merges(sizes(5), 0)


def _docs(start: int, n: int) -> list[Document]:
    text = "kota warga pasar nomor {} hari ini"
    return [Document(id=f"d{i}", text=text.format(i), lang="id") for i in range(start, start + n)]


def test_commits_keep_segment_count_bounded_and_force_merge_reaches_one(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", passage_words=0)
    for c in range(40):  # forty one-document commits: the policy keeps about one tier's worth
        with index.writer() as w:
            w.add(_docs(c, 1)[0])
        assert index.stats()["segments"] <= 10
    with index.writer() as w:
        w.delete("d3")
    before = [(h.doc_id, h.passage, h.score) for h in index.search("warga pasar", k=100)]
    with index.writer() as w:
        w.force_merge(1)
    assert index.stats()["segments"] == 1
    assert [(h.doc_id, h.passage, h.score) for h in index.search("warga pasar", k=100)] == before
    reopened = Index.open(tmp_path / "idx", verify=True)
    assert len(reopened) == 39 and reopened.stats()["segments"] == 1
    gen = reopened._snapshot.generation
    with reopened.writer() as w:
        w.force_merge(1)  # already one segment, no deletions: nothing to write
    assert Index.open(tmp_path / "idx")._snapshot.generation == gen


def test_force_merge_refuses_a_bad_count(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx")
    with index.writer() as w:
        for bad in (0, -1, 1.5, True):
            with pytest.raises(InvalidArgument):
                w.force_merge(bad)  # type: ignore[arg-type]


def test_search_index_optimize_leaves_one_segment(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.app import app

    docs, idx = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    runner = CliRunner()
    for batch in range(3):  # three runs, three commits: three segments
        for i in range(4):
            (docs / f"b{batch}_{i}.txt").write_text(f"warga kota pasar nomor {batch} {i}\n", encoding="utf-8")
        result = runner.invoke(app, ["index", str(docs), "--index", str(idx)])
        assert result.exit_code == 0, result.output
    (docs / "b0_0.txt").unlink()
    assert Index.open(idx).stats()["segments"] == 3
    result = runner.invoke(app, ["index", str(docs), "--index", str(idx), "--optimize"])
    assert result.exit_code == 0, result.output
    index = Index.open(idx, verify=True)
    assert index.stats()["segments"] == 1 and len(index) == 11
    meta = (idx / "meta.json").read_text()
    assert ".del" not in meta  # the deleted document is gone for good, not marked


# -- the streaming merge ------------------------------------------------------------------------------
WORDS = "rumah makan kota jalan orang besar kecil sungai gunung pasar river mountain pass border the of".split()


def _segments(
    path: Path, n_segments: int, docs_per: int, *, seed: int = 3, deletes: int = 0, fields: dict | None = None
) -> Index:
    """An index of ``n_segments`` segments (one commit each) of random two-language documents, with every
    ``deletes``-th document then deleted (0: none)."""
    rng = random.Random(seed)
    index = Index.create(path, passage_words=12, fields=fields)
    index_writer = index.writer
    for c in range(n_segments):
        with index_writer() as w:
            w.merge_policy = TieredMergePolicy(segments_per_tier=1000)  # keep every segment
            for i in range(docs_per):
                words = [rng.choice(WORDS) + str(rng.randint(0, 40)) for _ in range(rng.randint(1, 60))]
                w.add(
                    Document(
                        id=f"c{c}d{i}",
                        text=" ".join(words),
                        title=rng.choice(["", "judul kota", "Big river"]),
                        lang=rng.choice(["id", "en", None]),
                        meta={"i": i, "tag": rng.choice(["a", "b", "c"])},
                    )
                )
    if deletes:
        with index_writer() as w:
            w.merge_policy = TieredMergePolicy(segments_per_tier=1000)
            for c in range(n_segments):
                for i in range(0, docs_per, deletes):
                    w.delete(f"c{c}d{i}")
    return index


@pytest.mark.parametrize("chunk_tokens, dict_terms, passages", [(1 << 20, 1 << 16, 1 << 16), (7, 5, 3), (1, 1, 1)])
def test_streaming_merge_writes_the_rebuild_byte_for_byte(tmp_path, monkeypatch, chunk_tokens, dict_terms, passages):
    """Term by term, range by range, chunk by chunk: the same file as building the merged data in memory."""
    monkeypatch.setattr(merge, "DICT_CHUNK_TERMS", dict_terms)
    monkeypatch.setattr(merge, "PASSAGE_CHUNK", passages)
    fields = {"i": "int", "tag": "keyword"}
    index = _segments(tmp_path / "idx", 4, 40, deletes=5, fields=fields)
    sources = [(s.reader, s.deleted_docs) for s in index._snapshot.segments]
    assert len(sources) == 4 and all(d.size for _, d in sources)
    data = merge_segment_data(sources)
    data.fields = fields
    write_segment(tmp_path / "memory.tls", data)
    got = merge_segments(tmp_path / "streamed.tls", sources, fields=fields, chunk_tokens=chunk_tokens)
    assert got is not None and got[2] == 4 * 40 - 4 * 8
    assert (tmp_path / "streamed.tls").read_bytes() == (tmp_path / "memory.tls").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "memory.tls", "streamed.tls"]  # no spill left
    SegmentReader(tmp_path / "streamed.tls").check_section("postings")


@pytest.mark.parametrize("fields", [None, {"i": "int", "tag": "keyword"}])
def test_merge_copies_clean_stored_blocks_and_reblocks_the_rest(tmp_path, monkeypatch, fields):
    """Without stored-fields dictionaries (segments too small to train one): small stored blocks (a few
    documents each) in four segments, some blocks holding a deleted document: each block with none
    deleted is copied into the merged segment compressed as it is, the others' live documents are
    blocked again; every other array is the rebuild's, byte for byte, and every stored field and search
    reads as the rebuild's."""
    import search.segment as segment

    monkeypatch.setattr(segment, "DOC_BLOCK_BYTES", 300)
    monkeypatch.setattr(merge, "DOC_BLOCK_BYTES", 300)
    monkeypatch.setattr(segment, "DICT_MIN_SAMPLES", 10**9)  # no segment trains a dictionary
    index = _segments(tmp_path / "idx", 4, 40, deletes=13, fields=fields)
    sources = [(s.reader, s.deleted_docs) for s in index._snapshot.segments]
    clean: list[bytes] = []
    blocks = 0
    for reader, deleted in sources:
        first, off, data = reader.stored_layout()
        blocks += len(first) - 1
        for b in range(len(first) - 1):
            small = off[b + 1] - off[b] < 300 // 8  # a segment's last, partial block: joined again
            if not small and not np.isin(np.arange(first[b], first[b + 1]), deleted).any():
                clean.append(data[off[b] : off[b + 1]].tobytes())
    assert 0 < len(clean) < blocks  # both kinds of block are there
    data = merge_segment_data(sources)
    data.fields = fields or {}
    write_segment(tmp_path / "memory.tls", data)
    got = merge_segments(tmp_path / "streamed.tls", sources, fields=fields)
    assert got is not None
    streamed, memory = SegmentReader(tmp_path / "streamed.tls"), SegmentReader(tmp_path / "memory.tls")
    first, off, packed = streamed.stored_layout()
    merged_blocks = [packed[off[b] : off[b + 1]].tobytes() for b in range(len(first) - 1)]
    assert [b for b in merged_blocks if b in set(clean)] == clean  # every clean block copied, in order
    stored = {"doc_data", "doc_block_off", "doc_block_first"}
    assert set(streamed.a) == set(memory.a)
    for name in sorted(set(streamed.a) - stored):
        assert np.array_equal(np.asarray(streamed.a[name]), np.asarray(memory.a[name])), name
    for field in ("doc_id", "doc_text", "doc_title", "doc_meta", "doc_lang", "doc_hash"):
        assert streamed.strings(field) == memory.strings(field), field
    assert streamed.doc_block_max >= max(len(streamed.stored_block(b)[1]) for b in range(len(first) - 1))
    streamed.check_section("passages")


def test_a_merge_with_a_dictionary_reblocks_everything_as_the_rebuild_does(tmp_path, monkeypatch) -> None:
    """(format 5) Segments with their own stored-fields dictionaries, some documents deleted: the merged
    segment trains its own on the live documents the rebuild would sample, copies no source block,
    and the streaming merge writes every array the in-memory merge writes, stored blocks and the
    dictionary included, byte for byte (also with the samples spread over many small blocks)."""
    import search.segment as segment

    monkeypatch.setattr(segment, "DICT_MIN_SAMPLES", 4)
    monkeypatch.setattr(segment, "DICT_MIN_BYTES", 2048)
    monkeypatch.setattr(segment, "DICT_SAMPLES", 50)  # fewer samples than documents: a spaced subset
    monkeypatch.setattr(segment, "DOC_BLOCK_BYTES", 600)
    monkeypatch.setattr(merge, "DOC_BLOCK_BYTES", 600)
    index = _segments(tmp_path / "idx", 4, 60, deletes=17)
    sources = [(s.reader, s.deleted_docs) for s in index._snapshot.segments]
    assert all(r.stored_dictionary is not None for r, _ in sources)
    source_blocks = set()
    for reader, _ in sources:
        first, off, data = reader.stored_layout()
        source_blocks |= {data[off[b] : off[b + 1]].tobytes() for b in range(len(first) - 1)}
    data = merge_segment_data(sources)
    write_segment(tmp_path / "memory.tls", data)
    assert merge_segments(tmp_path / "streamed.tls", sources) is not None
    streamed, memory = SegmentReader(tmp_path / "streamed.tls"), SegmentReader(tmp_path / "memory.tls")
    assert streamed.stored_dictionary is not None
    assert streamed.stored_dictionary.data not in {r.stored_dictionary.data for r, _ in sources}
    first, off, packed = streamed.stored_layout()
    assert not {packed[off[b] : off[b + 1]].tobytes() for b in range(len(first) - 1)} & source_blocks
    assert set(streamed.a) == set(memory.a)
    for name in sorted(streamed.a):
        assert np.array_equal(np.asarray(streamed.a[name]), np.asarray(memory.a[name])), name
    for field in ("doc_id", "doc_text", "doc_title", "doc_meta"):
        assert streamed.strings(field) == memory.strings(field), field


def test_streaming_merge_of_nothing_live_writes_nothing(tmp_path) -> None:
    index = _segments(tmp_path / "idx", 2, 3, deletes=1)
    sources = [(s.reader, s.deleted_docs) for s in index._snapshot.segments]
    assert merge_segments(tmp_path / "x.tls", sources) is None
    assert not (tmp_path / "x.tls").exists()


def _merge_peak(sources, path: Path, fn) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn(path, sources)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        path.unlink()


def test_merge_peak_memory_does_not_grow_with_the_merged_documents(tmp_path) -> None:
    """tracemalloc (numpy reports its buffers to it) around a merge of 4 segments, 4x the documents: the
    streaming merge's peak stays (a chunk of postings plus a few bytes per document); the in-memory
    merge's, measured the same way, grows with them (so this test can tell the two apart)."""

    def streamed(path, sources):
        merge_segments(path, sources, chunk_tokens=10_000)

    def in_memory(path, sources):
        write_segment(path, merge_segment_data(sources))

    peaks = {}
    for n in (200, 800):
        index = _segments(tmp_path / str(n), 4, n, seed=n)
        sources = [(s.reader, s.deleted_docs) for s in index._snapshot.segments]
        peaks[n] = {f.__name__: _merge_peak(sources, tmp_path / "m.tls", f) for f in (streamed, in_memory)}
    assert peaks[800]["streamed"] < 1.3 * peaks[200]["streamed"], peaks
    assert peaks[800]["in_memory"] > 2.5 * peaks[200]["in_memory"], peaks
    print(peaks)


# -- merges off the commit path -----------------------------------------------------------------------
needs_fork = pytest.mark.skipif(
    __import__("search.parallel", fromlist=["start_method"]).start_method() != "fork",
    reason="the gated merge is patched in this process: only a forked merge process sees the patch",
)


def _gated_merge(monkeypatch, gate: Path) -> None:
    """Merge processes forked from now on wait for ``gate`` to exist before merging."""
    real = merge.merge_segments

    def gated(*args, **kwargs):
        import time

        while not gate.exists():
            time.sleep(0.02)
        return real(*args, **kwargs)

    monkeypatch.setattr(merge, "merge_segments", gated)


def _ten_segments(path: Path) -> Index:
    """Ten segments of three documents each (d0-d29)."""
    index = Index.create(path, passage_words=0)
    for i in range(10):
        with index.writer() as w:
            for doc in _docs(3 * i, 3):
                w.add(doc)
    assert index.stats()["segments"] == 10
    return index


@needs_fork
def test_commits_go_on_while_a_merge_runs_and_deletions_carry_over(tmp_path, monkeypatch) -> None:
    gate = tmp_path / "gate"
    _gated_merge(monkeypatch, gate)
    index = _ten_segments(tmp_path / "idx")
    w = index.writer()
    w.add(_docs(30, 1)[0])
    w.commit()  # eleven segments: a merge of ten starts in its own process, and waits at the gate
    assert len(w._merges) == 1 and w._merges[0].proc.is_alive()
    sources = set(w._merges[0].names)
    w.delete("d3")  # in a segment being merged
    w.update(Document(id="d5", text="teks yang diperbarui sama sekali", lang="id"))
    w.add(_docs(31, 1)[0])
    w.commit()  # a small commit does not wait for the merge
    assert len(w._merges) == 1 and w._merges[0].proc.is_alive(), "the commit waited for the merge"
    assert len(index) == 31 and "d3" not in index and "d31" in index
    gate.touch()
    w.close()  # waits for the merge, then commits it with the deletions made meanwhile
    index.refresh()
    names = {e["name"] for e in json.loads((tmp_path / "idx" / "meta.json").read_text())["segments"]}
    assert not names & sources, "the merge was not committed"
    assert len(index) == 31 and "d3" not in index and index.get("d5").text == "teks yang diperbarui sama sekali"
    fresh = Index.create(tmp_path / "fresh", passage_words=0)
    with fresh.writer() as f:
        for doc_id in sorted(index.content_hashes()):
            f.add(index.get(doc_id))
    want = [(h.doc_id, round(h.score, 9)) for h in fresh.search("warga pasar diperbarui", k=50)]
    assert [(h.doc_id, round(h.score, 9)) for h in index.search("warga pasar diperbarui", k=50)] == want
    Index.open(tmp_path / "idx", verify=True)
    assert not list((tmp_path / "idx").glob("*.spill"))


@needs_fork
def test_a_killed_merge_loses_nothing_and_is_done_again(tmp_path, monkeypatch) -> None:
    gate = tmp_path / "gate"
    _gated_merge(monkeypatch, gate)
    index = _ten_segments(tmp_path / "idx")
    w = index.writer()
    w.add(_docs(30, 1)[0])
    w.commit()
    m = w._merges[0] if w._merges else None
    assert m is not None
    os.kill(m.proc.pid, signal.SIGKILL)
    m.proc.join()
    w.add(_docs(31, 1)[0])
    w.commit()  # the dead merge is dropped quietly: its sources stay, and a new merge starts
    assert len(index) == 32
    gate.touch()
    w.close()
    assert index.stats()["segments"] <= 3 and len(Index.open(tmp_path / "idx", verify=True)) == 32
    leftovers = [p.name for p in (tmp_path / "idx").iterdir() if p.name.endswith(".spill")]
    assert not leftovers


def _committed_segments(path: Path, segments: int, docs_per: int):
    """A new index and its writer, after one commit of ``segments`` flushed segments of ``docs_per``
    documents each (d0, d1, ...): the commit has started the first background merge the policy wants."""
    index = Index.create(path, passage_words=0)
    w = index.writer()
    for i in range(segments):
        for doc in _docs(docs_per * i, docs_per):
            w.add(doc)
        w.flush()
    w.commit()
    return index, w


@needs_fork
def test_close_runs_two_merges_at_once_and_commits_them_together(tmp_path, monkeypatch) -> None:
    """A closing writer starts the policy's disjoint merges side by side (``CLOSE_MERGES``): when it
    first waits for one, both have started (each marks its start, then waits at a gate the wait opens),
    and the index they leave equals one built without merges."""
    from search import writer as writer_module

    gate, started = tmp_path / "gate", tmp_path / "started"
    started.mkdir()
    real_merge, real_poll = merge.merge_segments, merge.BackgroundMerge.poll
    running: list[int] = []

    def gated(*args, **kwargs):
        (started / str(os.getpid())).touch()
        while not gate.exists():
            time.sleep(0.02)
        return real_merge(*args, **kwargs)

    def poll(self, wait=False):
        if wait and not gate.exists():  # the first wait: count the merges that started, then let them go
            deadline = time.monotonic() + 30
            while len(list(started.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            running.append(len(list(started.iterdir())))
            gate.touch()
        return real_poll(self, wait)

    monkeypatch.setattr(merge, "merge_segments", gated)
    monkeypatch.setattr(merge.BackgroundMerge, "poll", poll)
    index, w = _committed_segments(tmp_path / "idx", 22, 3)  # the policy merges two groups of ten
    assert len(w._merges) == 1  # while the writer is in use, one merge at a time
    w.close()
    assert running == [writer_module.CLOSE_MERGES] == [2]
    assert index.stats()["segments"] == 4  # two merged segments and the two left out of the groups
    fresh = Index.create(tmp_path / "fresh", passage_words=0)
    with fresh.writer() as f:
        for doc in _docs(0, 66):
            f.add(doc)
    want = [(h.doc_id, h.score) for h in fresh.search("warga pasar nomor 7", k=100)]
    assert [(h.doc_id, h.score) for h in index.search("warga pasar nomor 7", k=100)] == want
    assert len(Index.open(tmp_path / "idx", verify=True)) == 66


def test_small_stored_blocks_are_joined_again_rather_than_piling_up(tmp_path) -> None:
    """Segments of one document each end in one small stored block; merged (again and again), those
    blocks are blocked again together, not copied one by one: the merged segment holds as many blocks
    as its text needs."""
    index = Index.create(tmp_path / "idx", passage_words=0)
    for round_ in range(3):
        with index.writer() as w:
            w.merge_policy = TieredMergePolicy(segments_per_tier=1000)  # keep every one-document segment
            for doc in _docs(30 * round_, 30):
                w.add(doc)
                w.flush()
        assert index.stats()["segments"] == 30 + (round_ > 0)
        with index.writer() as w:
            w.force_merge(1)
        (segment,) = index._snapshot.segments
        first, _, _ = segment.reader.stored_layout()
        assert len(first) - 1 == 1, "one block holds the few short documents"
        assert len(index) == 30 * (round_ + 1)
    assert [index.get(f"d{i}").text for i in range(90)] == [d.text for d in _docs(0, 90)]


@needs_fork
def test_a_merge_whose_sources_cannot_be_read_when_taken_in_changes_nothing(tmp_path, monkeypatch) -> None:
    """Taking in a finished merge reads the merged sources' ids before it changes anything: when that
    read fails the commit fails, and the writer's state (its id map, its segments) stays as it was, so a
    delete after it still reaches the document."""
    import search.segment as segment

    index, w = _committed_segments(tmp_path / "idx", 11, 2)  # a background merge of ten starts
    (m,) = w._merges
    m.poll(wait=True)
    source = m.names[1]
    victim = next(d for d, (seg, _) in w._live_ids().items() if seg == source)
    w.add(_docs(100, 1)[0])
    real = segment.SegmentReader.strings

    def failing(self, field):
        if field == "doc_id" and self.name == source:
            raise IndexCorrupt("cannot read the ids", str(self.path))
        return real(self, field)

    monkeypatch.setattr(segment.SegmentReader, "strings", failing)
    with pytest.raises(IndexCorrupt):
        w.commit()
    monkeypatch.setattr(segment.SegmentReader, "strings", real)
    assert source in [e["name"] for e in w._entries] and w._live_ids()[victim][0] == source
    assert w.delete(victim)
    w.commit()
    w.close()
    reopened = Index.open(tmp_path / "idx", verify=True)
    assert victim not in reopened and "d100" in reopened and len(reopened) == 22


@needs_fork
def test_a_failed_merge_at_close_leaves_no_file_behind(tmp_path, monkeypatch) -> None:
    """Two merges run at close and one fails: close reports it, the merge that succeeded is not left as
    a file no commit names, and the index keeps every document."""
    from search.errors import WorkerFailed

    real = merge.merge_segments
    failing_source: list[str] = []

    def sometimes(path, sources, **kwargs):
        if failing_source and any(r.name == failing_source[0] for r, _ in sources):
            raise OSError("no space left on device")
        return real(path, sources, **kwargs)

    monkeypatch.setattr(merge, "merge_segments", sometimes)
    index, w = _committed_segments(tmp_path / "idx", 22, 3)  # the first group starts now; the second at close
    started = set(w._merges[0].names)
    failing_source.append(next(e["name"] for e in w._entries if e["name"] not in started))
    with pytest.raises(WorkerFailed):
        w.close()
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    named = {e["name"] for e in meta["segments"]} | {"meta.json", "write.lock"}
    assert sorted(p.name for p in (tmp_path / "idx").iterdir() if p.name not in named) == []
    assert len(Index.open(tmp_path / "idx", verify=True)) == 66
