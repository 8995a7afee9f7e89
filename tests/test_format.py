"""The segment format: the bit-packing codec on adversarial inputs, the stored fields' compression,
segments holding extreme values, targeted damage read as IndexCorrupt, an old (version 1) index refused
with its rebuild command, a version 2 index (zlib) searched, written and merged as it is, and ``search
export`` then ``search index`` answering exactly as the exported index."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.app import app
from search import Document, IncompatibleIndex, Index, IndexCorrupt, ShardedIndex, codec, compress, segment
from search import sharded as sharded_module
from search.export import export_documents
from search.segment import SegmentData, SegmentReader, write_segment
from search.sharded import read_manifest

V1_INDEX = Path(__file__).parent / "data" / "index_v1"
#: written by telusur at b808167 (format version 2, stored fields in zlib) from ``v2_batches()``: the first
#: batch committed, then the second with ``gone-4`` deleted
V2_INDEX = Path(__file__).parent / "data" / "index_v2"
#: written by telusur at db1644e (format version 3: stored fields in zstd, every postings block packed)
#: from ``v3_batches()``, as ``V2_INDEX`` was
V3_INDEX = Path(__file__).parent / "data" / "index_v3"
#: written by telusur at ab19937 (format version 4: big terms' postings as frames, 32 KB stored blocks
#: without a dictionary) from ``v3_batches()``, as ``V3_INDEX`` was
V4_INDEX = Path(__file__).parent / "data" / "index_v4"
U32_MAX = 2**32 - 1

# -- codec ------------------------------------------------------------------------------------------------


def roundtrip(values: np.ndarray, counts: list[int]) -> None:
    """Pack ``values`` in groups of ``counts``; every way of reading them back gives them exactly."""
    lens = codec.block_lengths(np.array(counts, dtype=np.int64))
    assert int(lens.sum()) == values.shape[0] and (lens <= codec.BLOCK).all()
    data, widths = codec.pack(values, lens)
    off = codec.check_layout(data, widths, lens)
    assert off is not None
    view = codec.words(data)
    assert np.array_equal(codec.unpack_all(view, widths, off, lens), values)
    first_block = np.concatenate(([0], np.cumsum(codec.block_counts(np.array(counts)))))
    start = 0
    for g, n in enumerate(counts):
        got = codec.unpack_group(view, widths, off, int(first_block[g]), n)
        assert np.array_equal(got, values[start : start + n]), f"group {g}"
        if 0 < n <= codec.BLOCK:  # one block: as a term's small postings are read, with Python integers
            b = int(first_block[g])
            small = codec.unpack_small(memoryview(data), int(off[b]), int(widths[b]), n)
            assert small == values[start : start + n].tolist(), f"group {g}"
        start += n


values_lists = st.lists(
    st.one_of(
        st.integers(0, 3),  # runs of equal small values (width 0..2)
        st.integers(0, U32_MAX),  # anything: huge gaps
        st.just(U32_MAX),
        st.just(0),
    ),
    max_size=700,
)


@given(values_lists, st.lists(st.sampled_from([0, 1, 2, 127, 128, 129, 255, 256, 257]), max_size=8))
def test_codec_roundtrip_property(values, cut_sizes):
    """Any values below 2**32 in any grouping (empty, 1-, 128-, 129-element groups) come back unchanged."""
    arr = np.array(values, dtype=np.uint64)
    counts, left = [], len(values)
    for c in cut_sizes:
        c = min(c, left)
        counts.append(c)
        left -= c
    counts.append(left)
    roundtrip(arr, counts)


@pytest.mark.parametrize(
    "values,counts",
    [
        (np.full(129, 7, dtype=np.uint64), [129]),  # a run of equal values over two blocks
        (np.zeros(257, dtype=np.uint64), [1, 128, 128]),  # width 0 everywhere: no data bytes at all
        (np.full(1, U32_MAX, dtype=np.uint64), [1]),  # one 32-bit value
        (np.array([0, U32_MAX] * 100, dtype=np.uint64), [129, 71]),  # 32 bits straddling every word
        (np.arange(129, dtype=np.uint64) << np.uint64(24), [129]),  # growing widths up to 32 bits
        (np.zeros(0, dtype=np.uint64), [0, 0]),  # nothing at all
    ],
)
def test_codec_adversarial_table(values, counts):
    roundtrip(values, counts)


def test_codec_refuses_values_over_32_bits():
    with pytest.raises(ValueError):
        codec.pack(np.array([2**32], dtype=np.uint64), np.array([1]))


def test_codec_layout_check_catches_a_changed_width():
    lens = codec.block_lengths(np.array([200]))
    data, widths = codec.pack(np.arange(200, dtype=np.uint64), lens)
    assert codec.check_layout(data, widths, lens) is not None
    for bad in (widths + 1, np.minimum(widths, 1), np.full_like(widths, 40)):
        assert codec.check_layout(data, bad, lens) is None


@given(values_lists, values_lists)
def test_byte_planes_roundtrip_property(gaps, tfs):
    """A big term's gaps and tf - 1 (format 4) as byte planes come back unchanged, whatever their widths
    (0 to 4 bytes: all zero, runs of small values, 2**32 - 1); a payload of another length, or naming a
    width over 4 bytes, is refused rather than misread."""
    n = min(len(gaps), len(tfs))
    g, t = np.array(gaps[:n], dtype=np.int64), np.array(tfs[:n], dtype=np.int64)
    raw = codec.planes(g, t)
    got = codec.from_planes(raw, n)
    assert got is not None and got[0].tolist() == g.tolist() and got[1].tolist() == t.tolist()
    assert codec.from_planes(raw + b"\0", n) is None and codec.from_planes(raw[:-1], n) is None
    assert codec.from_planes(bytes([raw[0] | 5]) + raw[1:], n) is None or n == 0 and raw[0] & 15 == 5
    assert codec.from_planes(b"", n) is None


def test_byte_planes_refuse_values_over_32_bits():
    with pytest.raises(ValueError):
        codec.planes(np.array([2**32], dtype=np.int64), np.zeros(1, dtype=np.int64))
    with pytest.raises(ValueError):
        codec.planes(np.zeros(1, dtype=np.int64), np.array([-1], dtype=np.int64))


# -- segments with extreme values ----------------------------------------------------------------------


def segment_with(tokens: list[tuple[int, int, int]], n_passages: int, keys: list[str]) -> SegmentData:
    """A segment of ``n_passages`` one-passage documents holding (term id, passage, position) tokens."""
    tokens = sorted(tokens, key=lambda t: (t[1], t[2]))
    tid, pid, pos = (np.array([t[i] for t in tokens], dtype=np.uint32) for i in range(3))
    p_len = np.bincount(pid, minlength=n_passages).astype(np.uint32)
    n = n_passages
    return SegmentData(
        keys=keys,
        tok_tid=tid,
        tok_pid=pid,
        tok_pos=pos,
        p_doc=np.arange(n, dtype=np.uint32),
        p_no=np.zeros(n, dtype=np.uint32),
        p_start=np.zeros(n, dtype=np.uint64),
        p_end=np.ones(n, dtype=np.uint64),
        p_len=p_len,
        p_lang=np.zeros(n, dtype=np.uint8),
        langs=["en"],
        doc_ids=[f"d{i}" for i in range(n)],
        doc_texts=["x"] * n,
        doc_titles=[""] * n,
        doc_metas=["{}"] * n,
        doc_langs=["en"] * n,
        doc_hashes=["h"] * n,
        surface={"en:running": "en:run", "en:runs": "en:run", "en:gone": "en:absent"},
    )


def test_segment_keeps_extreme_postings_and_positions(tmp_path):
    n = 70_000
    rng = np.random.default_rng(5)
    common = sorted(rng.choice(n, 300, replace=False).tolist())  # three blocks, random gaps
    tokens = [(0, p, 3) for p in common] + [(0, common[0], 9), (0, common[0], U32_MAX)]
    tokens += [(1, 0, 0), (1, n - 1, U32_MAX)]  # a gap of n - 1 and the largest position
    tokens += [(2, p, 1) for p in range(129)]  # 129 consecutive passages: a 1-element second block
    path = tmp_path / "seg.tls"
    write_segment(path, segment_with(tokens, n, ["en:run", "en:edge", "en:dense"]))
    r = SegmentReader(path)
    run, edge, dense = (r.find(k) for k in ("en:run", "en:edge", "en:dense"))
    pids, tfs = r.postings(run)
    assert pids.tolist() == common and tfs.tolist() == [3] + [1] * 299
    ppid, ppos = r.positions(run)
    assert ppos[:3].tolist() == [3, 9, U32_MAX] and (ppid[:3] == common[0]).all()
    assert r.postings(edge)[0].tolist() == [0, n - 1]
    assert r.positions(edge)[1].tolist() == [0, U32_MAX]
    assert r.postings(dense)[0].tolist() == list(range(129))
    # positions of a subset only, decoded where they lie
    starts = r.position_starts(run)
    got_pid, got_pos = r.positions_of(run, np.array([common[0], common[-1]]), starts)
    assert got_pid.tolist() == [common[0]] * 3 + [common[-1]] and got_pos.tolist() == [3, 9, U32_MAX, 3]
    # block bounds: last passage id per block, max tf, min length (a passage's token count here)
    last, max_tf, min_len = r.block_bounds(run)
    assert last.tolist() == [common[127], common[255], common[-1]]
    assert max_tf.tolist() == [3, 1, 1] and r.max_score_inputs(run) == (3, 1)
    assert min_len.tolist()[0] >= 1
    # the surface words whose terms exist, sorted, mapped to their terms
    assert r.surface_words() == [("en:running", "en:run"), ("en:runs", "en:run")]
    # merges read everything back in one pass
    slots, mpids, mtfs, mpos = r.all_postings()
    assert mpids[slots == run].tolist() == common and int(mtfs.sum()) == len(tokens) == mpos.shape[0]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 17).flatmap(lambda bits: st.sets(st.integers(0, 2**bits - 1), min_size=1, max_size=140)))
def test_small_postings_equal_the_numpy_decoding(tmp_path_factory, passages):
    """A term's postings read with Python integers (one block) equal the numpy decoding and the passages
    written, at gap widths up to 17 bits (the codec tests cover 32) and across the one-block boundary
    (df 96, 97, 128, 129 included)."""
    n = max(passages) + 1
    tokens = [(0, p, k) for p in sorted(passages) for k in range(1 + p % 3)]
    path = tmp_path_factory.mktemp("small") / "seg.tls"
    write_segment(path, segment_with(tokens, n, ["en:x"]))
    old = codec.SMALL
    try:
        got = []
        for small in (old, 0):  # the Python way where it applies, then numpy whatever the size
            codec.SMALL = small
            r = SegmentReader(path)  # a new reader: nothing decoded yet
            got.append([a.tolist() for a in r.postings(r.find("en:x"))])
    finally:
        codec.SMALL = old
    assert got[0] == got[1] == [sorted(passages), [1 + p % 3 for p in sorted(passages)]]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 32).flatmap(
        lambda bits: st.lists(st.tuples(st.integers(0, 39), st.integers(0, 2**bits - 1)), min_size=1, max_size=300)
    ),
    st.lists(st.integers(0, 39), max_size=12),
)
def test_few_positions_read_value_by_value_equal_the_numpy_decoding(tmp_path_factory, tokens, wanted):
    """A term's positions in a few passages (read value by value with Python integers) equal the numpy
    decoding of the same occurrences, whatever the positions (below 2**bits, for every width up to 32: a
    value of 25 bits or more can straddle five bytes) and blocks they span."""
    path = tmp_path_factory.mktemp("few") / "seg.tls"
    occurrences = sorted({(pid, pos) for pid, pos in tokens})
    write_segment(path, segment_with([(0, pid, pos) for pid, pos in occurrences], 40, ["en:x"]))
    r = SegmentReader(path)
    slot = r.find("en:x")
    pids = r.postings(slot)[0]
    passages = np.array(sorted({p for p in wanted if p in set(pids.tolist())}), dtype=np.int64)
    starts = r.position_starts(slot)
    got_pid, got_pos = r.positions_of(slot, passages, starts)
    expected = [(p, q) for p, q in occurrences if p in set(passages.tolist())]
    assert list(zip(got_pid.tolist(), got_pos.tolist())) == expected
    tfs = r.postings(slot)[1]
    idx = pids.searchsorted(passages)
    old = segment.SMALL_POSITIONS
    try:
        for first, lens in ((starts[idx], tfs[idx]), (starts, tfs)):  # the wanted passages, then every one
            small = r._few_positions(slot, first.tolist(), lens.tolist())
            segment.SMALL_POSITIONS = -1  # the numpy decoding, whatever the count
            assert small.tolist() == r._positions_at(slot, first, lens).tolist()
            segment.SMALL_POSITIONS = old
        assert small.tolist() == [q for _, q in occurrences]
    finally:
        segment.SMALL_POSITIONS = old


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from([1, 96, 97, 128, 129, 256, 257, 600]), min_size=1, max_size=4),
    st.sampled_from([300, 70_000]),
    st.integers(0, 2**16),
)
def test_big_terms_as_frames_read_as_packed_blocks(tmp_path_factory, dfs, n, seed):
    """Terms of more than ``BIG_DF`` postings (format 4: a zstd frame of byte planes) read exactly as the
    same segment written with every block packed (``BIG_DF`` raised): postings, any subset of blocks
    (block-max), block bounds, positions and the merge's whole read; at 1-, 96/97- and 128/129-posting
    edges, gaps up to 70,000 passages and tfs past one byte."""
    rng = np.random.default_rng(seed)
    tokens = []
    for t, df in enumerate(dfs):
        for p in sorted(rng.choice(n, min(df, n), replace=False).tolist()):
            tf = int(rng.choice([1, 1, 2, 300]))
            tokens += [(t, p, k) for k in range(tf)]
    keys = [f"en:t{t}" for t in range(len(dfs))]
    folder = tmp_path_factory.mktemp("frames")
    write_segment(folder / "frames.tls", segment_with(tokens, n, keys))
    old = codec.BIG_DF
    try:
        codec.BIG_DF = 10**9
        write_segment(folder / "packed.tls", segment_with(tokens, n, keys))
    finally:
        codec.BIG_DF = old
    framed, packed = SegmentReader(folder / "frames.tls"), SegmentReader(folder / "packed.tls")
    assert _frames(framed) == sum(df > codec.BIG_DF for df in dfs) and _frames(packed) == 0

    def reads(r: SegmentReader) -> list:
        out = []
        for k in keys:
            slot = r.find(k)
            blocks = np.arange(len(r.block_bounds(slot)[0]))[::-1]
            out.append([a.tolist() for a in r.postings(slot)])
            out.append([[a.tolist() for a in pair] for pair in r.postings_blocks(slot, blocks)])
            out.append([a.tolist() for a in (*r.block_bounds(slot), *r.positions(slot))])
        out.append([a.tolist() for a in r.all_postings()])
        return out

    assert reads(framed) == reads(packed)
    fresh = SegmentReader(folder / "frames.tls")  # blocks asked before the whole term was ever decoded
    slot = fresh.find(keys[-1])
    blocks = np.arange(len(fresh.block_bounds(slot)[0]))[::-1]  # (as ``reads`` asks: last block first)
    assert [[a.tolist() for a in pair] for pair in fresh.postings_blocks(slot, blocks)] == reads(packed)[-3]


def _big_segment(path: Path) -> None:
    """A segment whose term "en:a" (200 postings) is a frame and "en:b" (a few) packed blocks."""
    tokens = [(0, p, 1 + p % 3) for p in range(0, 400, 2)] + [(1, 7, 2), (1, 9, 0)]
    write_segment(path, segment_with(tokens, 400, ["en:a", "en:b"]))


@pytest.mark.parametrize(
    "craft,message",
    [
        (lambda g, t: codec.planes(np.zeros_like(g), t), "passage ids repeat"),  # ids that do not ascend
        (lambda g, t: codec.planes(g, t)[:-1], "postings frame"),  # a payload one byte short
        (lambda g, t: codec.planes(g, t + 1), "term frequencies disagree"),  # tfs off by one each
        (lambda g, t: codec.planes(g + 1, t), "skip data"),  # every id one further: past the skip data
    ],
)
def test_a_well_framed_but_wrong_big_term_reads_as_index_corrupt(tmp_path, monkeypatch, craft, message):
    """A frame whose checksums pass (written so) but whose content disagrees with the dictionary, the
    skip data or itself is ``IndexCorrupt`` naming the segment when the term is read, never a wrong
    answer; the term of packed blocks beside it still reads."""
    monkeypatch.setattr(codec, "planes", lambda g, t, real=codec.planes: craft_with(real, craft, g, t))
    _big_segment(tmp_path / "seg.tls")
    monkeypatch.undo()
    r = SegmentReader(tmp_path / "seg.tls")
    assert r.postings(r.find("en:b"))[0].tolist() == [7, 9]
    with pytest.raises(IndexCorrupt, match=message) as info:
        r.postings(r.find("en:a"))
    assert Path(info.value.path) == tmp_path / "seg.tls"
    with pytest.raises(IndexCorrupt):
        r.all_postings()


def craft_with(real, craft, g, t):
    """``craft`` given the real ``planes`` as ``codec.planes`` (so the lambda's call reaches it)."""
    saved = codec.planes
    codec.planes = real
    try:
        return craft(g, t)
    finally:
        codec.planes = saved


def test_a_big_term_with_packed_blocks_too_reads_as_index_corrupt(tmp_path, monkeypatch):
    """A big term whose packed blocks are not empty (their widths not 0, the layout otherwise whole) is
    refused when postings are first read: its values would have two sources."""
    monkeypatch.setattr(segment, "_big_frames", lambda g, t, df, real=segment._big_frames: real(g.copy(), t.copy(), df))
    _big_segment(tmp_path / "seg.tls")
    monkeypatch.undo()
    r = SegmentReader(tmp_path / "seg.tls")
    with pytest.raises(IndexCorrupt, match="packed blocks of a term stored as a frame"):
        r.postings(r.find("en:b"))


def arrays_at(path: Path) -> dict[str, tuple[int, int]]:
    raw = path.read_bytes()
    hlen = int.from_bytes(raw[8:16], "little")
    header = json.loads(raw[16 : 16 + hlen])
    base = -(-(16 + hlen) // segment.ALIGN) * segment.ALIGN
    return {k: (base + v[0], v[2] * np.dtype(v[1]).itemsize) for k, v in header["arrays"].items()}


# p_len is bounded by the header's per-language statistics (each language's total length must equal the
# table's sum), so any flip of it is caught without the section checksum
BOUNDED = ["pid_data", "pid_width", "tf_data", "tf_width", "pos_width", "blk_last", "term_df", "term_ttf", "p_len"]
BOUNDED += ["big_data", "big_off"]  # (format 4) each frame's own checksum and size, and the offsets' order
CHECKSUMMED = ["pos_data", "term_hash", "term_blob", "term_off", "p_doc"]


@pytest.mark.parametrize("checksums", [True, False], ids=["with-checksums", "bounds-only"])
@pytest.mark.parametrize("array", BOUNDED + CHECKSUMMED)
def test_damaged_postings_read_as_index_corrupt(tmp_path, monkeypatch, array, checksums):
    """Every byte of the arrays that place, bound or hold postings, flipped: IndexCorrupt naming the file
    (at open or when the term is read), never another error. With the section checksums no answer
    changes silently; without them (``bounds-only``) the bounds alone still catch every flip that would
    change postings, and only position deltas, hashes, offsets and lengths that stay in range get through."""
    if not checksums:
        monkeypatch.setattr(SegmentReader, "check_section", lambda self, section: None)
    n = 400
    # "en:a" spans two postings blocks (a zstd frame), "en:b" and "en:c" one (with Python integers)
    tokens = [(0, p, 1) for p in range(0, n, 2)] + [(0, p, 4) for p in range(0, n, 6)] + [(1, 7, 2)]
    tokens += [(2, p, 3) for p in range(1, n, 5)] + [(2, p, 8) for p in range(1, n, 15)]
    tokens += [(3, p, 5) for p in range(3, n, 20)] + [(3, p, 9) for p in range(3, n, 40)]  # 30 positions
    clean = tmp_path / "clean.tls"
    write_segment(clean, segment_with(tokens, n, ["en:a", "en:b", "en:c", "en:d"]))

    def answers(r: SegmentReader) -> dict:
        got = {}
        for k in ("en:a", "en:b", "en:c", "en:d"):
            slot = r.find(k)  # -1 when a damaged dictionary hides the term: a different answer
            got[k] = None if slot < 0 else (r.postings(slot)[0].tolist(), r.positions(slot)[1].tolist())
        return {"postings": got, "lengths": r.p_len.tolist(), "docs": r.p_doc.tolist()}

    expected = answers(SegmentReader(clean))
    start, size = arrays_at(clean)[array]
    raw = clean.read_bytes()
    silent = 0
    for i in range(start, start + size):
        for bit in (0, 5):
            damaged = tmp_path / "d.tls"
            buf = bytearray(raw)
            buf[i] ^= 1 << bit
            damaged.write_bytes(bytes(buf))
            try:
                got = answers(SegmentReader(damaged))
            except IndexCorrupt as e:
                assert Path(e.path) == damaged
                continue
            silent += got != expected
    if checksums or array in BOUNDED:
        assert silent == 0
    else:
        assert silent > 0  # what only the checksums catch: the reason they exist


# -- stored fields' compression ------------------------------------------------------------------------

stored_bytes = st.one_of(
    st.binary(max_size=3000),
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=8), st.integers(1, 20000)),  # long runs
)


@given(stored_bytes, st.lists(st.integers(1, 5000), max_size=6), st.sampled_from(compress.CODECS))
def test_compress_streamed_in_any_pieces_is_one_call(raw, cuts, codec_name):
    """A value streamed in pieces (a huge document's text) gives ``compress``'s bytes, so builds stay
    byte-identical whichever values stream, and inflates back to itself within its exact size."""
    one = compress.compress(raw, codec_name)
    z = compress.stream(len(raw), codec_name)
    out, at = b"", 0
    for c in cuts:
        out += z.compress(raw[at : at + c])
        at += c
    out += z.compress(raw[at:]) + z.flush()
    assert out == one
    assert compress.inflate(one, len(raw), codec_name) == raw
    if raw:
        with pytest.raises(ValueError):
            compress.inflate(one, len(raw) - 1, codec_name)  # more than the bound: refused, not allocated


def test_compress_and_stream_agree_past_zstd_s_window() -> None:
    """Over 2 MB (zstd's window at level 3), one call and a stream still give the same frame: what a
    streaming merge of a large column relies on to write the in-memory merge's bytes."""
    rnd = random.Random(9)
    vocab = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10))) for _ in range(5000)]
    text = " ".join(rnd.choice(vocab) for _ in range(200_000)).encode()
    raw = (text * 3)[: 3 << 20]  # text-like bytes, 3 MB
    z = compress.stream(len(raw))
    streamed = b"".join(z.compress(raw[i : i + 300_000]) for i in range(0, len(raw), 300_000)) + z.flush()
    assert streamed == compress.compress(raw)
    assert compress.inflate(streamed, len(raw), "zstd") == raw


def test_an_empty_zstd_frame_is_checked_like_any_other() -> None:
    """A frame recording size 0 is decoded, not taken at its word: followed by more bytes, or by another
    frame, it is damage."""
    empty = compress.compress(b"")
    assert compress.inflate(empty, 0, "zstd") == b""
    for bad in (empty + b"junk", empty + compress.compress(b"a"), empty[:-1]):
        with pytest.raises(ValueError):
            compress.inflate(bad, 10, "zstd")


@given(stored_bytes, st.sampled_from(compress.CODECS), st.data())
@settings(max_examples=60)
def test_compress_damage_reads_as_damage(raw, codec_name, data):
    """Any flipped byte, a cut or a byte added is ``ValueError`` (the codec's checksum, its framing),
    never other text; a zstd frame that does not record its size is refused (its header could ask for
    any window)."""
    one = compress.compress(raw, codec_name)
    i = data.draw(st.integers(0, len(one) - 1))
    damaged = [one[:i] + bytes([one[i] ^ data.draw(st.integers(1, 255))]) + one[i + 1 :], one[:i], one + b"\0"]
    for bad in damaged:
        try:
            got = compress.inflate(bad, len(raw) + 64, codec_name)
        except ValueError:
            continue
        assert got == raw, "damage read as other text"  # (a flip zstd ignores: an unused header bit)
    if codec_name == "zstd":
        import zstandard

        # no size given, and a block flushed before the end (an empty input ended at once records 0)
        z = zstandard.ZstdCompressor().compressobj()
        unsized = z.compress(raw) + z.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK) + z.flush()
        assert zstandard.get_frame_parameters(unsized).content_size == zstandard.CONTENTSIZE_UNKNOWN
        with pytest.raises(ValueError):
            compress.inflate(unsized, len(raw), codec_name)


def _dictionary_samples(seed: int) -> list[bytes]:
    """Short texts of one vocabulary, enough of them for zstd to train a dictionary."""
    rng = random.Random(seed)
    words = [f"{w}{i}" for w in ("sungai", "kota", "river", "city", "hukum", "pasar") for i in range(40)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(20, 80))).encode() for _ in range(600)]


@pytest.fixture(scope="module")
def dictionaries() -> tuple[compress.Dictionary, compress.Dictionary]:
    a, b = compress.train(_dictionary_samples(1)), compress.train(_dictionary_samples(2))
    assert a is not None and b is not None and a.data != b.data
    return a, b


@given(stored_bytes, st.lists(st.integers(1, 5000), max_size=6), st.data())
@settings(max_examples=40, deadline=None)
def test_a_dictionary_s_frames_round_trip_and_need_it(dictionaries, raw, cuts, data):
    """A frame made with a dictionary: one call and a stream fed in any pieces give the same bytes, it
    reads back with that dictionary, and with none or another one it is ``ValueError`` (zstd's content
    checksum: both dictionaries carry the same fixed id), never other text; damage is damage."""
    a, b = dictionaries
    one = compress.compress(raw, "zstd", a)
    z = compress.stream(len(raw), "zstd", a)
    pieces, at = [], 0
    for c in cuts:
        pieces.append(z.compress(raw[at : at + c]))
        at += c
    assert b"".join(pieces) + z.compress(raw[at:]) + z.flush() == one
    assert compress.inflate(one, len(raw), "zstd", a) == raw
    i = data.draw(st.integers(0, len(one) - 1))
    flipped = one[:i] + bytes([one[i] ^ data.draw(st.integers(1, 255))]) + one[i + 1 :]
    for bad, dictionary in ((one, None), (one, b), (flipped, a), (one[:i], a)):
        try:
            got = compress.inflate(bad, len(raw) + 64, "zstd", dictionary)
        except ValueError:
            continue
        # what may still read: a frame that used nothing of its dictionary (an empty or tiny input)
        # or a flip zstd ignores (an unused header bit); never other text
        assert got == raw


def test_training_is_deterministic_and_declines_too_little(dictionaries) -> None:
    """The same samples give the same dictionary (builds stay byte-identical); samples too few to train
    on give None (the caller stores blocks without one); a dictionary is zstd's only."""
    again = compress.train(_dictionary_samples(1))
    assert again is not None and again.data == dictionaries[0].data
    assert compress.train([b"ab", b"cd", b"ef"]) is None
    with pytest.raises(ValueError):
        compress.compress(b"text", "zlib", dictionaries[0])


def test_a_dictionary_serves_threads_at_once(dictionaries) -> None:
    """Each thread gets its own contexts for a dictionary: six threads compressing and inflating
    different blocks with the same one never read each other's."""
    from concurrent.futures import ThreadPoolExecutor

    a = dictionaries[0]
    samples = _dictionary_samples(3)

    def work(k: int) -> int:
        wrong = 0
        for i in range(200):
            raw = b"".join(samples[(k * 37 + i) % 500 : (k * 37 + i) % 500 + 4])
            wrong += compress.inflate(compress.compress(raw, "zstd", a), len(raw), "zstd", a) != raw
        return wrong

    with ThreadPoolExecutor(6) as pool:  # (an exception in a thread is raised here, by map)
        assert list(pool.map(work, range(6))) == [0] * 6


def _worded_docs(n: int, seed: int = 5) -> list[Document]:
    rng = random.Random(seed)
    words = [f"{w}{i}" for w in ("sungai", "kota", "river", "city", "hukum", "pasar") for i in range(60)]
    return [
        Document(id=f"w{i}", text=" ".join(rng.choice(words) for _ in range(rng.randint(60, 200))), title=f"T{i}")
        for i in range(n)
    ]


def test_stored_blocks_use_the_segment_s_own_dictionary(tmp_path):
    """(format 5) A segment of enough documents trains a dictionary on them and compresses its small
    stored blocks with it; every document reads back exact; a segment of a few documents has none; the
    same documents give the same file (training is deterministic)."""
    docs = _worded_docs(300)
    paths = []
    for name in ("a", "b"):
        index = Index.create(tmp_path / name)
        with index.writer() as w:
            w.add_many(docs, workers=1)
        paths.append(tmp_path / name)
    (seg,) = Index.open(paths[0])._snapshot.segments
    r = seg.reader
    assert r.stored_dictionary is not None and len(r.stored_dictionary.data) > 1024
    first = r.stored_layout()[0]
    assert first.shape[0] - 1 > 20 and r.doc_block_max < 2 * segment.DOC_BLOCK_BYTES  # many small blocks
    assert all(Index.open(paths[0]).get(d.id) == d for d in docs)
    files = [sorted(p.glob("seg_*.tls")) for p in paths]
    assert [f.read_bytes() for f in files[0]] == [f.read_bytes() for f in files[1]]
    small = Index.create(tmp_path / "small")
    with small.writer() as w:
        w.add_many(docs[:5], workers=1)
    assert Index.open(tmp_path / "small")._snapshot.segments[0].reader.stored_dictionary is None


@pytest.mark.parametrize("checksums", [True, False], ids=["with-checksums", "bounds-only"])
def test_a_damaged_dictionary_reads_as_index_corrupt(tmp_path, monkeypatch, checksums):
    """Bytes of a segment's stored-fields dictionary flipped: reading stored text is ``IndexCorrupt``
    naming the file (the passage table's section checksum; without it, zstd's content checksum of each
    block), never other text."""
    if not checksums:
        monkeypatch.setattr(SegmentReader, "check_section", lambda self, section: None)
    docs = _worded_docs(200, seed=6)
    index = Index.create(tmp_path / "ix")
    with index.writer() as w:
        w.add_many(docs, workers=1)
    (seg_path,) = sorted((tmp_path / "ix").glob("seg_*.tls"))
    start, size = arrays_at(seg_path)[array_name := "doc_dict"]
    assert size > 1024, array_name
    raw = seg_path.read_bytes()
    rng = random.Random(7)
    caught = 0
    for i in sorted(rng.sample(range(start, start + size), 40)):
        buf = bytearray(raw)
        buf[i] ^= 1 << rng.randrange(8)
        seg_path.write_bytes(bytes(buf))
        try:
            got = [Index.open(tmp_path / "ix").get(d.id) for d in docs[::10]]
        except IndexCorrupt as e:
            assert Path(e.path) == seg_path
            caught += 1
            continue
        assert got == docs[::10]  # a byte of the dictionary no block used
    assert caught >= (40 if checksums else 10)
    for i in range(start, start + 8):  # its magic and id: zstd refuses to load it, which is damage too
        buf = bytearray(raw)
        buf[i] ^= 0x10
        seg_path.write_bytes(bytes(buf))
        with pytest.raises(IndexCorrupt) as info:
            [Index.open(tmp_path / "ix").get(d.id) for d in docs[::10]]
        assert Path(info.value.path) == seg_path
    seg_path.write_bytes(raw)


# -- old indexes and export ----------------------------------------------------------------------------


def v2_batches() -> tuple[list[Document], list[Document], list[str]]:
    """The documents of ``V2_INDEX``: two batches (the first's stored block of three documents over 4 KB
    compressed, so a merge would copy it) and the ids deleted with the second."""
    syllables = ["ka", "ri", "mu", "to", "se", "la", "na", "pu", "di", "go", "be", "ha"]
    vocab = [a + b + c for a in syllables for b in syllables for c in syllables[:3]]
    long_text = " ".join(vocab[(i * 2654435761 >> 7) % len(vocab)] for i in range(6000))  # about 40 KB
    first = [
        Document(
            id="kota-1",
            text="Jakarta adalah ibu kota Indonesia. Kota ini sangat besar dan ramai.",
            title="Jakarta",
            meta={"n": 1},
        ),
        Document(id="river-2", text="The river runs through the old city and into the wide sea.", lang="en"),
        Document(id="long-3", text=long_text, title="Sungai", meta={"tags": ["a", "b"]}),
        Document(id="gone-4", text="Dokumen ini akan dihapus dari indeks.", lang="id"),
    ]
    second = [
        Document(id="uni-5", text="Ünïcödé text — with “quotes” and emoji 🙂 stays exact.", lang="en"),
        Document(id="bridge-6", text="Jembatan tua di atas sungai besar menghubungkan dua kota.", title="Jembatan"),
    ]
    return first, second, ["gone-4"]


def v3_batches() -> tuple[list[Document], list[Document], list[str]]:
    """The documents of ``V3_INDEX``: ``v2_batches`` plus 320 short documents in each language sharing
    a few words (terms of 100-480 postings over several blocks, some passages holding them more than
    once), so its postings hold terms that format 4 stores as frames; some of them deleted too."""
    first, second, gone = v2_batches()
    for i in range(320):
        batch = first if i < 200 else second
        rep = 1 + (i * 7) % 4
        batch.append(
            Document(
                id=f"aliran-{i}",
                text=f"Sungai {'besar ' * rep}nomor {i} mengalir ke laut{' dan kota' if i % 3 else ''}.",
                lang="id",
            )
        )
        text = f"River {'wide ' * rep}number {i}{' and city' * (i % 2)} by the sea."
        batch.append(Document(id=f"flow-{i}", text=text, lang="en"))
    return first, second, [*gone, "aliran-7", "flow-150", "aliran-250"]


V2_QUERIES = ["sungai", "kota OR river", '"ibu kota"', "title:jembatan", "emoji quotes", "karika OR setoka", "sea"]
V3_QUERIES = [*V2_QUERIES, "river wide city", '"sungai besar"', "laut AND kota", "number -city"]


def _answers(index: Index, queries: list[str] = V2_QUERIES) -> list:
    return [[(h.doc_id, h.passage, h.score, h.text) for h in index.search(q, k=20)] for q in queries]


def _frames(reader: SegmentReader) -> int:
    """How many terms of a segment keep their postings as zstd frames (format 4); -1: not that format."""
    big = reader._layout.term_big
    return -1 if big is None else int(big[-1])


@pytest.mark.parametrize("version", [2, 3, 4])
def test_an_older_index_is_searched_written_and_merged_as_it_is(tmp_path, version):
    """A version 2 index (stored fields in zlib), 3 (zstd; every postings block packed, terms of over 96
    postings included) or 4 (such terms as frames; 32 KB stored blocks, no dictionary) answers as the
    same documents built now; its first commit makes it version 5, its old segments still read; a merge
    re-blocks their stored fields under its own dictionary (never copies an old block), writes frames
    for the big terms, and every stored document comes back exact."""
    fixture, batches, codec_was = {
        2: (V2_INDEX, v2_batches, "zlib"),
        3: (V3_INDEX, v3_batches, "zstd"),
        4: (V4_INDEX, v3_batches, "zstd"),
    }[version]
    first, second, gone = batches()
    queries = V3_QUERIES if version >= 3 else V2_QUERIES
    fresh = Index.create(tmp_path / "fresh")
    with fresh.writer() as w:
        w.add_many(first)
    with fresh.writer() as w:
        w.add_many(second)
        for doc_id in gone:
            w.delete(doc_id)
    path = tmp_path / f"v{version}"
    shutil.copytree(fixture, path)
    old = Index.open(path)
    assert json.loads((path / "meta.json").read_text())["format_version"] == version
    assert {s.reader.stored_codec for s in old._snapshot.segments} == {codec_was}
    assert {s.reader.stored_codec for s in fresh._snapshot.segments} == {"zstd"}
    assert {_frames(s.reader) > 0 for s in old._snapshot.segments} == {version == 4}
    assert {s.reader.stored_dictionary for s in old._snapshot.segments} == {None}
    if version >= 3:  # the fixture's terms of over 96 postings: frames here (and in version 4)
        assert min(_frames(s.reader) for s in fresh._snapshot.segments) >= 10
    expected = _answers(fresh, queries)
    assert _answers(old, queries) == expected and all(expected)
    docs = {d.id: d for d in first + second if d.id not in gone}
    assert all(old.get(i) == docs[i] for i in docs)

    extra = Document(id="extra-7", text="Sungai baru di kota lama.", lang="id")
    with old.writer() as w:
        w.add(extra)
    assert json.loads((path / "meta.json").read_text())["format_version"] == 5
    assert [s.reader.stored_codec for s in old._snapshot.segments] == [codec_was, codec_was, "zstd"]
    with fresh.writer() as w:
        w.add(extra)
    assert _answers(old, queries) == _answers(fresh, queries)

    with old.writer() as w:
        w.force_merge()
    (merged,) = old._snapshot.segments
    assert merged.reader.stored_codec == "zstd"
    assert _frames(merged.reader) == (int((merged.reader._layout.df > codec.BIG_DF).sum()))
    assert _frames(merged.reader) >= (10 if version >= 3 else 0)
    assert (merged.reader.stored_dictionary is not None) == (version >= 3)  # (version 2's few documents: none)
    docs["extra-7"] = extra
    again = Index.open(path, verify=True)
    assert all(again.get(i) == docs[i] for i in docs) and len(again) == len(docs)
    assert [r["id"] for r in export_documents(path)] == list(docs)
    with fresh.writer() as w:
        w.force_merge()
    assert _answers(again, queries) == _answers(fresh, queries)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_older_sharded_manifest_is_read_and_a_commit_makes_it_current(tmp_path, version):
    """A sharded index whose manifest is version 1 (shards of index format 2 or 3), 2 (format 3) or 3
    (format 4) opens; its next commit writes version 4, which an older telusur refuses as another
    format instead of reading format 5 segments as damaged ones; a shard commit of an unknown index
    format is refused by name."""
    path = tmp_path / "sharded"
    sharded = ShardedIndex.create(path, shards=2)
    with sharded.writer() as w:
        w.add_many(v2_batches()[0])
    manifest = read_manifest(path)
    assert manifest["format_version"] == sharded_module.FORMAT_VERSION == 4
    sharded_module.write_manifest(path, {**manifest, "format_version": version})
    old = Index.open(path)
    assert [h.doc_id for h in old.search("sungai")] == [h.doc_id for h in sharded.search("sungai")]
    with old.writer() as w:
        w.add(Document(id="extra-7", text="Sungai baru di kota lama.", lang="id"))
    assert read_manifest(path)["format_version"] == 4
    manifest = read_manifest(path)
    commits = [dict(c) for c in manifest["commits"]]
    commits[1]["format_version"] = 6
    sharded_module.write_manifest(path, {**manifest, "commits": commits})
    with pytest.raises(IncompatibleIndex) as info:
        Index.open(path)
    assert manifest["folders"][1] in str(info.value) and "index format version 6" in str(info.value)


def test_old_index_is_incompatible_with_the_rebuild_command(tmp_path):
    path = tmp_path / "old"
    shutil.copytree(V1_INDEX, path)
    with pytest.raises(IncompatibleIndex) as info:
        Index.open(path)
    message = str(info.value)
    assert "format version 1" in message and f"search export --index {path}" in message
    assert "search index docs.jsonl --index NEW_FOLDER --passage-words 0" in message
    result = CliRunner().invoke(app, ["query", "kota", "--index", str(path)])
    assert result.exit_code == 2 and "search export" in result.output


def test_export_reads_an_old_index_without_its_deleted_documents(tmp_path):
    path = tmp_path / "old"
    shutil.copytree(V1_INDEX, path)
    records = list(export_documents(path))
    assert [r["id"] for r in records] == ["kota-1", "river-2", "auto-4", "uni-5"]  # gone-3 was deleted
    assert records[0] == {
        "id": "kota-1",
        "text": "Jakarta adalah ibu kota Indonesia. Kota ini sangat besar dan ramai.",
        "title": "Jakarta",
        "lang": "id",
        "meta": {"n": 1, "source": "wiki"},
    }
    assert "lang" not in records[2] and records[3]["meta"] == {"tags": ["a", "b"]}
    assert records[3]["text"] == "Ünïcödé text — with “quotes” and emoji 🙂 stays exact."


def test_export_then_index_answers_identically(tmp_path, seeds_index):
    """An index filled through the API (with deletions, metadata, titles, several segments), exported and
    rebuilt with ``search index``, gives the same hits, scores and stored documents."""
    src = tmp_path / "api"
    shutil.copytree(seeds_index.path, src)
    index = Index.open(src)
    with index.writer() as w:
        w.add(Document(id="extra-1", text="Jembatan tua di atas sungai besar.", title="Jembatan", meta={"k": 1}))
        w.add(Document(id="extra-2", text="An old bridge over the wide river.", lang="en"))
        w.add(Document(id="extra-3", text="Dokumen ini akan dihapus.", lang="id"))
    with index.writer() as w:
        w.delete("extra-3")
    runner = CliRunner()
    out = tmp_path / "docs.jsonl"
    result = runner.invoke(app, ["export", "--index", str(src), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(index)
    rebuilt = tmp_path / "rebuilt"
    words = str(index.settings.passage_words)
    result = runner.invoke(app, ["index", str(out), "--index", str(rebuilt), "--passage-words", words])
    assert result.exit_code == 0, result.output
    new = Index.open(rebuilt)
    assert new.content_hashes() == index.content_hashes()
    for q in ["Upper Lars", "Rusia", "border Georgia", '"mobilisasi parsial"', "sungai OR river", "title:jembatan"]:
        a = [(h.doc_id, h.passage, round(h.score, 9), h.text) for h in index.search(q, k=20)]
        b = [(h.doc_id, h.passage, round(h.score, 9), h.text) for h in new.search(q, k=20)]
        assert a == b, q
        assert a or q == "title:jembatan"
    assert new.get("extra-1") == index.get("extra-1") and "extra-3" not in new


def test_surface_words_come_from_text_and_titles_and_survive_merges(tmp_path):
    from search.merge import merge_segment_data

    index = Index.create(tmp_path / "idx")
    with index.writer() as w:
        w.add(Document(id="a", text="Running rivers, Jakarta's e-mail.", title="Big Bridges", lang="en"))
    with index.writer() as w:
        w.add(Document(id="b", text="Sungai mengalir ke laut.", lang="id"))
        w.add(Document(id="c", text="Deleted words vanish.", lang="en"))
    with index.writer() as w:
        w.delete("c")
    readers = [s.reader for s in Index.open(tmp_path / "idx")._snapshot.segments]
    first = dict(readers[0].surface_words())
    assert first["en:running"] == "en:run" and first["en:bridges"] == "en:bridg"  # text and title
    assert first["en:jakarta"] == "en:jakarta" and first["en:mail"] == "en:mail"  # possessive, hyphen parts
    assert "en:the" not in first  # stopwords have no term
    words = [w for w, _ in readers[0].surface_words()]
    assert words == sorted(words, key=lambda w: w.encode("utf-8"))
    snap = Index.open(tmp_path / "idx")._snapshot
    merged = merge_segment_data([(s.reader, s.deleted_docs) for s in snap.segments])
    write_segment(tmp_path / "merged.tls", merged)
    got = dict(SegmentReader(tmp_path / "merged.tls").surface_words())
    assert got["en:running"] == "en:run" and got["id:mengalir"] == dict(readers[1].surface_words())["id:mengalir"]
    assert "en:vanish" not in got  # its only document was deleted, so its term left the dictionary


def test_export_of_a_sharded_index_gives_every_live_document(tmp_path):
    from search import ShardedIndex

    path = tmp_path / "sharded"
    index = ShardedIndex.create(path, shards=3, passage_words=0)
    with index.writer() as w:
        for i in range(12):
            w.add(Document(id=f"s{i}", text=f"dokumen nomor {i} tentang sungai", lang="id"))
    with index.writer() as w:
        w.delete("s4")
    records = list(export_documents(path))
    assert sorted(r["id"] for r in records) == sorted(f"s{i}" for i in range(12) if i != 4)
    assert {r["text"] for r in records if r["id"] == "s7"} == {"dokumen nomor 7 tentang sungai"}


# -- a passage's stored text read without decoding its whole document -------------------------------------


@given(st.text(max_size=60), st.integers(0, 70), st.integers(0, 70))
def test_utf8_slice_is_the_decoded_slice(text: str, lo: int, hi: int) -> None:
    raw = b"\xff" * 3 + text.encode() + "é".encode()  # bytes around the document: never decoded
    s, e = 3, 3 + len(text.encode())
    if hi > lo:
        assert segment._utf8_slice(raw, s, e, lo, hi) == text[lo:hi]


def _passage_texts(r: SegmentReader) -> list[str]:
    docs = r.strings("doc_text")
    pd, ps, pe = (r.a[n].tolist() for n in ("p_doc", "p_start", "p_end"))
    return [docs[d][a:b] for d, a, b in zip(pd, ps, pe, strict=True)]


def test_passage_text_equals_the_slice_of_the_document(tmp_path: Path) -> None:
    """Every passage of ASCII and non-ASCII documents (2-, 3- and 4-byte characters before, inside and
    only after a passage), documents filling and crossing stored-text blocks, and long documents (over
    ``LONG_DOC_BYTES``, ASCII or not, passages across the character table's steps) reads as the slice
    of its decoded document, through ``passage_text`` and ``Hit.text``."""
    words = ["alpha", "beta", "gamma", "delta"]
    rich = ["ünïcode", "中文字", "emoji😀", "naïve", "plain"]
    docs = []
    for i in range(300):  # ~60 words each: several per block, some 8-20 KB ones at block edges
        ws = [words[(i + k) % 4] for k in range(60)]
        if i % 3 == 1:
            ws[i % 60] = rich[i % len(rich)]  # a non-ASCII word somewhere in the document
        if i % 50 == 7:
            ws = ws * (140 + i % 7)  # ~8,000+ words: larger than a 32 KB block
        docs.append(Document(f"d{i:03d}", " ".join(ws), lang="en"))
    long_ascii = " ".join(words[k % 4] + str(k) for k in range(12000))
    long_rich = " ".join((rich[k % 5] if k % 97 == 0 else words[k % 4]) + str(k) for k in range(12000))
    tail_rich = " ".join(words[k % 4] for k in range(9000)) + " akhir😀"  # non-ASCII only at the end
    docs += [Document("long-ascii", long_ascii), Document("long-rich", long_rich), Document("tail", tail_rich)]
    index = Index.create(tmp_path / "ix", passage_words=50)
    with index.writer() as w:
        w.add_many(docs)
    index = Index.open(tmp_path / "ix")
    readers = [seg.reader for seg in index._snapshot.segments]
    assert sum(int(r.a["doc_block_first"].shape[0]) - 1 for r in readers) > 5  # several blocks
    long_docs = 0
    for r in readers:
        want = _passage_texts(r)
        assert [r.passage_text(p) for p in range(r.n_passages)] == want
        assert [r.passage_text(p) for p in reversed(range(r.n_passages))] == want[::-1]  # the tables kept
        long_docs += sum(len(t.encode()) > segment.LONG_DOC_BYTES for t in r.strings("doc_text"))
    assert long_docs >= 3
    by_doc = {d.id: d.text for d in docs}
    for q in ("emoji😀", "akhir", "naïve", "gamma", "中文字"):
        hits = index.search(q, k=50, per_document=False)
        assert hits
        for h in hits:
            assert h.text in by_doc[h.doc_id] and h.text == _passage_texts(readers[h._si])[h._pid]
