"""Opening reads headers only: sections are checked when a query first needs them (or all at once by
``warm``), per-language statistics come from the segment headers (counted at write, under the header's
own CRC-32), and damage still reads as ``IndexCorrupt`` naming the file, at open or at first use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from search import Document, Index, IndexCorrupt, segment

EN = ["river", "mountain", "bridge", "city", "water", "stone", "forest", "road"]
ID = ["sungai", "gunung", "jembatan", "kota", "pasar", "jalan", "rumah", "laut"]


def build(path: Path, deletes: bool = False) -> Index:
    """Two commits (two segments) of English and Indonesian documents; some deleted when asked."""
    rng = np.random.default_rng(3)
    index = Index.create(path, passage_words=8)
    for commit in range(2):
        with index.writer() as w:
            for i in range(25):
                words = EN if i % 2 else ID
                text = " ".join(rng.choice(words, size=int(rng.integers(3, 30))).tolist())
                w.add(Document(id=f"c{commit}d{i}", text=text, title=f"t {i}", lang="en" if i % 2 else "id"))
            if deletes and commit == 1:
                for i in range(0, 25, 4):
                    w.delete(f"c0d{i}")
    return Index.open(path)


def table_stats(index: Index) -> dict[str, tuple[int, int]]:
    """Per-language (live passages, total length), summed from the passage tables by hand."""
    out: dict[str, list[int]] = {}
    for seg in index._snapshot.segments:
        r = seg.reader
        live = np.ones(r.n_passages, dtype=bool) if seg.live_passages is None else seg.live_passages
        for code, lang in enumerate(r.langs):
            mask = (np.asarray(r.a["p_lang"]) == code) & live
            if mask.any():
                t = out.setdefault(lang, [0, 0])
                t[0] += int(mask.sum())
                t[1] += int(np.asarray(r.a["p_len"])[mask].sum())
    return {k: (v[0], v[1]) for k, v in out.items()}


def snapshot_stats(index: Index) -> dict[str, tuple[int, int]]:
    return {k: (v.n_passages, v.total_length) for k, v in index._snapshot.stats.items()}


@pytest.fixture
def counted(monkeypatch):
    """Which sections' CRC-32s are computed, and how often a passage table is summed."""
    calls: dict[str, list] = {"crc": [], "table": []}
    real_crc, real_stats = segment.section_crc, segment.lang_stats

    def crc(arrays, section):
        calls["crc"].append(section)
        return real_crc(arrays, section)

    def stats(p_lang, p_len, n_langs):
        calls["table"].append(n_langs)
        return real_stats(p_lang, p_len, n_langs)

    monkeypatch.setattr(segment, "section_crc", crc)
    monkeypatch.setattr(segment, "lang_stats", stats)
    return calls


def test_opening_checks_no_section_and_the_first_search_checks_what_it_reads(tmp_path, counted):
    build(tmp_path / "idx")
    counted["crc"].clear()
    counted["table"].clear()
    index = Index.open(tmp_path / "idx")
    assert len(index._snapshot.segments) == 2
    assert counted == {"crc": [], "table": []}  # headers only: no section, no passage table read
    assert snapshot_stats(index) == table_stats(index)
    assert index.search("river")
    assert {"dictionary", "postings", "passages"} <= set(counted["crc"])
    assert "positions" not in counted["crc"]  # only a phrase reads positions
    before = len(counted["crc"])
    index.search("mountain")
    assert len(counted["crc"]) == before  # once per reader


def test_warm_checks_every_section_so_queries_check_none(tmp_path, counted):
    build(tmp_path / "idx")
    index = Index.open(tmp_path / "idx")
    counted["crc"].clear()
    index.warm()
    assert sorted(counted["crc"]) == sorted(list(segment.SECTIONS) * 2)  # every section of both segments
    counted["crc"].clear()
    assert index.search('"river mountain" OR sungai')
    assert counted["crc"] == []


def test_after_warm_a_search_reads_ids_from_the_decoded_column(tmp_path, monkeypatch):
    """``warm`` decodes each segment's id column; ranking then reads a row's id from that list, never
    inflating the column again (it was inflated and checksummed anew on the first search, and kept twice)."""
    build(tmp_path / "idx")
    index = Index.open(tmp_path / "idx")
    cold = [(h.doc_id, h.passage, h.score) for h in index.search("river sungai", k=20)]
    index.close()
    index = Index.open(tmp_path / "idx")
    index.warm()
    inflated: list[str] = []
    real = segment.SegmentReader._column_bytes

    def column_bytes(self, name):
        inflated.append(name)
        return real(self, name)

    monkeypatch.setattr(segment.SegmentReader, "_column_bytes", column_bytes)
    assert [(h.doc_id, h.passage, h.score) for h in index.search("river sungai", k=20)] == cold
    assert "doc_id" not in inflated
    assert all(seg.reader._id_view is None for seg in index._snapshot.segments)


def test_statistics_with_deletions_are_the_live_passages(tmp_path, counted):
    index = build(tmp_path / "idx", deletes=True)
    assert any(seg.live_passages is not None for seg in index._snapshot.segments)
    assert any(seg.live_passages is None for seg in index._snapshot.segments)
    assert snapshot_stats(index) == table_stats(index)
    # after a merge into one segment without deletions, the header's sums are the same statistics
    expected = snapshot_stats(index)
    with index.writer() as w:
        w.force_merge(1)
    merged = Index.open(tmp_path / "idx")
    assert len(merged._snapshot.segments) == 1 and merged._snapshot.segments[0].live_passages is None
    assert snapshot_stats(merged) == expected


def header_span(path: Path) -> tuple[int, int, dict]:
    raw = path.read_bytes()
    hlen = int.from_bytes(raw[8:16], "little")
    return 16, 16 + hlen, json.loads(raw[16 : 16 + hlen])


def test_a_damaged_header_statistic_is_index_corrupt_at_open(tmp_path):
    build(tmp_path / "idx")
    seg = sorted((tmp_path / "idx").glob("seg_*.tls"))[0]
    raw = bytearray(seg.read_bytes())
    start, end, header = header_span(seg)
    at = raw.index(b'"lang_stats": [[', start, end) + len(b'"lang_stats": [[')
    assert chr(raw[at]).isdigit()
    raw[at] = ord("9") if raw[at] != ord("9") else ord("8")  # still valid JSON: another passage count
    seg.write_bytes(bytes(raw))
    with pytest.raises(IndexCorrupt) as info:
        Index.open(tmp_path / "idx")
    assert Path(info.value.path) == seg and seg.name in str(info.value)


def test_a_segment_written_without_header_statistics_sums_its_table(tmp_path, counted):
    """A format-2 segment from before the header checksum: opened, its statistics summed from its
    passage table, answering as before."""
    index = build(tmp_path / "idx")
    expected_stats = snapshot_stats(index)
    expected = [(h.doc_id, h.passage, h.score) for h in index.search("river sungai", k=20)]
    for seg in (tmp_path / "idx").glob("seg_*.tls"):
        raw = seg.read_bytes()
        start, end, header = header_span(seg)
        del header["header_crc"], header["lang_stats"]
        old = json.dumps(header, sort_keys=True).encode("utf-8")
        assert len(old) < end - start
        seg.write_bytes(raw[:start] + old + b" " * (end - start - len(old)) + raw[end:])  # same layout
    counted["table"].clear()
    old_index = Index.open(tmp_path / "idx")
    assert len(counted["table"]) == 2  # one passage table summed per segment
    assert snapshot_stats(old_index) == expected_stats
    assert [(h.doc_id, h.passage, h.score) for h in old_index.search("river sungai", k=20)] == expected


def test_a_segment_naming_a_codec_this_code_lacks_is_refused_by_name(tmp_path):
    """A header (checksum intact) whose stored fields are in a codec this code does not know: opening
    says so and names the file, instead of failing at the first hit's text."""
    build(tmp_path / "idx")
    seg = sorted((tmp_path / "idx").glob("seg_*.tls"))[0]
    raw = seg.read_bytes()
    start, end, header = header_span(seg)
    del header["header_crc"]
    header["stored"] = "lz4"
    other = segment._header_bytes(header)
    assert len(other) <= end - start
    seg.write_bytes(raw[:start] + other + b" " * (end - start - len(other)) + raw[end:])  # same layout
    with pytest.raises(IndexCorrupt) as info:
        Index.open(tmp_path / "idx")
    assert seg.name in str(info.value) and "'lz4'" in str(info.value)


def test_passage_table_damage_is_caught_at_first_search(tmp_path):
    build(tmp_path / "idx")
    seg = sorted((tmp_path / "idx").glob("seg_*.tls"))[0]
    start, end, header = header_span(seg)
    base = -(-end // segment.ALIGN) * segment.ALIGN
    at = base + header["arrays"]["p_doc"][0] + 4 * 3 + 1  # a byte of the fourth passage's document id
    raw = bytearray(seg.read_bytes())
    raw[at] ^= 0x10
    seg.write_bytes(bytes(raw))
    index = Index.open(tmp_path / "idx")  # headers only: opening cannot tell
    with pytest.raises(IndexCorrupt) as info:
        index.search("river sungai")
    assert Path(info.value.path) == seg
    with pytest.raises(IndexCorrupt):
        Index.open(tmp_path / "idx").warm()


def test_verify_checks_structure_that_opening_left_for_later(tmp_path, monkeypatch):
    """``search check`` (``verify``) still reads every section: a structural fault under a matching file
    checksum (a writer bug, not damage) is found there, not left to some later query."""
    build(tmp_path / "idx")
    index = Index.open(tmp_path / "idx")
    monkeypatch.setattr(segment, "_validate_passages", lambda *a: (_ for _ in ()).throw(ValueError("planted")))
    with pytest.raises(IndexCorrupt, match="planted"):
        index.verify()


def test_verify_and_warm_check_the_positions_layout_a_plain_query_leaves(tmp_path, monkeypatch):
    """The positions' block layout waits for a phrase, but ``search check`` (``verify``) and ``warm`` do not
    leave it for later: a fault there is ``IndexCorrupt`` from them, and from the first phrase, while a
    query without a phrase still answers."""
    build(tmp_path / "idx")
    real = segment._packed_offsets

    def planted(a, name, lens):
        if name == "pos":
            raise ValueError("planted positions layout")
        return real(a, name, lens)

    monkeypatch.setattr(segment, "_packed_offsets", planted)
    index = Index.open(tmp_path / "idx")
    assert index.search("river sungai")
    with pytest.raises(IndexCorrupt, match="planted positions layout"):
        index.search('"river mountain"')
    with pytest.raises(IndexCorrupt, match="planted positions layout"):
        Index.open(tmp_path / "idx").verify()
    with pytest.raises(IndexCorrupt, match="planted positions layout"):
        Index.open(tmp_path / "idx").warm()


def test_the_positions_layout_waits_for_the_first_phrase(tmp_path, monkeypatch):
    """Deriving where each term's position blocks lie took about half of a one-shot query's layout time;
    a query without a phrase never reads positions, so it derives only the postings' half. A phrase
    derives the rest once per reader, ``warm`` derives it up front, and the answers are the same."""
    build(tmp_path / "idx")
    derived: list[str] = []
    real = segment._packed_offsets

    def packed_offsets(a, name, lens):
        derived.append(name)
        return real(a, name, lens)

    monkeypatch.setattr(segment, "_packed_offsets", packed_offsets)
    index = Index.open(tmp_path / "idx")
    plain = [(h.doc_id, h.passage, h.score) for h in index.search("river sungai", k=20)]
    assert plain and sorted(derived) == ["pid", "pid", "tf", "tf"]  # both segments, postings only
    queries = ['"river mountain"', '"sungai gunung" OR kota']
    phrases = [[(h.doc_id, h.passage, h.score) for h in index.search(q, k=20)] for q in queries]
    assert any(phrases) and derived.count("pos") == 2  # once per segment
    index.search('"mountain river"')
    assert derived.count("pos") == 2

    derived.clear()
    warmed = Index.open(tmp_path / "idx")
    warmed.warm()
    assert sorted(derived) == ["pid", "pid", "pos", "pos", "tf", "tf"]
    assert [[(h.doc_id, h.passage, h.score) for h in warmed.search(q, k=20)] for q in queries] == phrases
    assert [(h.doc_id, h.passage, h.score) for h in warmed.search("river sungai", k=20)] == plain
    assert sorted(derived) == ["pid", "pid", "pos", "pos", "tf", "tf"]
