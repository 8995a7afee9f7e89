"""Bit-packing of uint32 streams in blocks of 128, vectorized with numpy (the postings codec).

A stream is cut into groups (one per term: its passage-id gaps, its term frequencies or its position
deltas), and each group into blocks of ``BLOCK`` values, the last block of a group holding the rest.
Every block stores its values with one bit width (that of its largest value), little-endian bit order,
starting on a byte boundary; the widths live in a separate byte per block, so a block's byte offset is
a cumulative sum and any single value can be read without decoding its neighbours: the reader views
the bytes as overlapping unaligned uint64 words and takes one word, one shift and one mask per value.
Every packed stream ends with ``PAD`` zero bytes so that the last word read stays inside the array.

This is the layout of Lucene's and tantivy's postings (blocks of 128, one width per block), without
their SIMD kernels: numpy does the same work a few vector operations per value.

A term of more than ``BIG_DF`` postings (format 4) keeps its passage-id gaps and term frequencies
elsewhere, as one zstd frame of byte planes (``planes`` / ``from_planes``; its blocks here have width 0,
so they take no bytes): numpy decodes byte planes in a few calls, where the packed blocks' gathers cost
about 20 calls and 10-20 ns a value, and zstd's entropy coding keeps them as small (0.94x the packed
bytes of those terms at 50k English passages, decoded in 0.38-0.46x the time: ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import numpy as np

BLOCK = 128
SHIFT = 7  # log2(BLOCK)
PAD = 8
MAX_WIDTH = 32
_MASKS = np.array([(1 << w) - 1 for w in range(MAX_WIDTH + 1)], dtype=np.uint64)
_CHUNK = 1 << 16  # values per encoding step: bounds the temporaries (a dozen 8-byte arrays of this length)


def block_counts(counts: np.ndarray) -> np.ndarray:
    """How many blocks each group of ``counts`` values takes."""
    return (np.asarray(counts, dtype=np.int64) + (BLOCK - 1)) >> SHIFT


def block_lengths(counts: np.ndarray) -> np.ndarray:
    """The number of values of every block, groups in order: ``BLOCK`` each, the last of a group the rest."""
    counts = np.asarray(counts, dtype=np.int64)
    nb = block_counts(counts)
    lens = np.full(int(nb.sum()), BLOCK, dtype=np.int64)
    has = nb > 0
    last = np.cumsum(nb)[has] - 1
    lens[last] = counts[has] - BLOCK * (nb[has] - 1)
    return lens


def bit_widths(maxima: np.ndarray) -> np.ndarray:
    """Bits needed for each value (0 for 0), exact for values below 2**53."""
    return np.frexp(np.asarray(maxima, dtype=np.float64))[1].astype(np.uint8)


def block_offsets(widths: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Byte offset of every block and the end (``len + 1`` entries) from widths and lengths."""
    off = np.zeros(lens.shape[0] + 1, dtype=np.int64)
    np.cumsum((lens * widths.astype(np.int64) + 7) >> 3, out=off[1:])
    return off


def pack(values: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pack ``values`` (each < 2**32) in blocks of ``lens`` values: (bytes with ``PAD`` zeros, widths).

    Works ``_CHUNK`` values at a time, so its temporaries stay small whatever the stream's length (a
    segment flush packs millions of positions)."""
    values = np.asarray(values)
    if values.shape[0] and (int(values.min()) < 0 or int(values.max()) > 0xFFFFFFFF):
        raise ValueError("packed values must fit in 32 bits")
    lens = np.asarray(lens, dtype=np.int64)
    if int(lens.sum()) != values.shape[0]:
        raise ValueError("block lengths do not add up to the values")
    nonempty = lens > 0
    starts = np.cumsum(lens) - lens
    widths = np.zeros(lens.shape[0], dtype=np.uint8)
    if values.shape[0]:
        widths[nonempty] = bit_widths(np.maximum.reduceat(values, starts[nonempty]))
    off = block_offsets(widths, lens)
    total = int(off[-1])
    n_words = (total + 7) // 8 + 1
    acc = np.zeros(n_words, dtype=np.uint64)
    ends = starts + lens
    # bit offset of every value: its block's first bit plus its index in the block times the width, that
    # is ``base + i * w`` with ``base`` per block, spread over the block's values by ``repeat``. Offsets
    # grow with the value index and never overlap, so each 64-bit word is the OR of the runs of values
    # that start (low part) or end (high part) in it: two ``reduceat`` calls, no scatter. Whole blocks
    # of about ``_CHUNK`` values at a time.
    base = off[:-1] * 8 - starts * widths.astype(np.int64)
    cuts = np.searchsorted(ends, np.arange(_CHUNK, values.shape[0], _CHUNK), side="left") + 1
    for b0, b1 in zip([0, *cuts.tolist()], [*cuts.tolist(), lens.shape[0]]):
        if b1 <= b0:
            continue
        lo, hi = int(starts[b0]), int(ends[b1 - 1])
        if hi <= lo:
            continue
        n_b = lens[b0:b1]
        w = np.repeat(widths[b0:b1], n_b).astype(np.int64)
        bit = np.repeat(base[b0:b1], n_b)
        bit += np.arange(lo, hi, dtype=np.int64) * w
        v = values[lo:hi].astype(np.uint64)
        q = bit >> 6
        r = bit & 63
        _or_runs(acc, q, v << r.astype(np.uint64))
        spill = r + w > 64
        if spill.any():
            _or_runs(acc, q[spill] + 1, v[spill] >> (np.uint64(64) - r[spill].astype(np.uint64)))
    data = np.zeros(total + PAD, dtype=np.uint8)
    data[:total] = acc.view(np.uint8)[:total]
    return data, widths


def _or_runs(acc: np.ndarray, q: np.ndarray, parts: np.ndarray) -> None:
    """``acc[q] |= parts`` for non-decreasing ``q`` (runs of equal words reduced first)."""
    if q.shape[0] == 0:
        return
    starts = np.flatnonzero(np.concatenate(([True], q[1:] != q[:-1])))
    acc[q[starts]] |= np.bitwise_or.reduceat(parts, starts)


def words(data: np.ndarray) -> np.ndarray:
    """Overlapping little-endian uint64 words starting at every byte of ``data`` but the last 7 (a view)."""
    n = max(data.shape[0] - 7, 0)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    return np.ndarray(shape=(n,), dtype="<u8", buffer=data, strides=(1,))


def unpack(view: np.ndarray, widths: np.ndarray, offsets: np.ndarray, blocks: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Values number ``k`` of ``blocks`` (int64 arrays of one length) as uint64.

    ``view`` is ``words(data)``, ``offsets`` is ``block_offsets``; the caller has checked that the
    offsets and widths fit the data (``check_layout``), so every word read is inside the array.
    """
    w = widths[blocks]
    bit = offsets[blocks] * 8 + k * w
    word = view[bit >> 3]
    return (word >> (bit & 7).astype(np.uint64)) & _MASKS[w]


_K = np.arange(BLOCK, dtype=np.int64)
_SEVEN = np.uint64(7)


def unpack_group(view: np.ndarray, widths: np.ndarray, offsets: np.ndarray, first_block: int, n: int) -> np.ndarray:
    """The ``n`` values of one group whose blocks start at ``first_block`` (as ``unpack``).

    Computed as a (blocks, 128) array, each block's width and offset broadcast along its row instead of
    gathered per value (a query's first read of a term: 20-30% faster than ``unpack``); the last
    block's unused entries read clamped words and are cut off."""
    nb = (n + BLOCK - 1) >> SHIFT
    w = widths[first_block : first_block + nb].astype(np.int64)[:, None]
    bit = offsets[first_block : first_block + nb, None] * 8 + _K * w
    idx = bit >> 3
    np.minimum(idx, view.shape[0] - 1, out=idx)
    out = (view[idx] >> (bit.view(np.uint64) & _SEVEN)) & _MASKS[w]
    return out.ravel()[:n]


#: a group of at most this many values is decoded with Python integers (``unpack_small``): numpy's fixed
#: cost per call (about 20 calls to decode and check a term's postings) outweighs its speed per value.
#: Measured per term read (id 50k, alternating): 13 / 19 / 30 / 43 / 57 us at df 1-8 / 9-32 / 33-64 /
#: 65-96 / 97-128, against 45-48 us for numpy at every df of one block
SMALL = 96


def unpack_small(data: memoryview, offset: int, width: int, n: int) -> list[int]:
    """The ``n`` values (``n <= BLOCK``: one block) of ``width`` bits each packed from byte ``offset`` of
    ``data``, as ``unpack_group`` reads them (little-endian bit order), with Python integers: the block's
    bytes as one integer, shifted. A term's first read costs about a fifth of the numpy path at a few
    postings (a query's rare words)."""
    if width == 0:
        return [0] * n
    v = int.from_bytes(data[offset : offset + ((n * width + 7) >> 3)], "little")
    m = (1 << width) - 1
    return [(v >> s) & m for s in range(0, n * width, width)]


#: (format 4) a term of more than this many postings stores them as byte planes in a zstd frame, not in
#: packed blocks: where a first read leaves ``unpack_small`` (Python integers) for numpy's fixed cost
BIG_DF = 96
MAX_PLANES = 4  # bytes a value takes at most in a byte-plane payload (values are below 2**32)


def planes(gaps: np.ndarray, tf1: np.ndarray) -> bytes:
    """One term's passage-id gaps and tf - 1 (each < 2**32) as a byte-plane payload: one byte holding
    the two byte widths (low and high nibble), then for each array its bytes by significance (all the
    low bytes, then the next ones). The high planes of small values are runs of zeros, which zstd
    codes in almost nothing; each array takes the fewest bytes its largest value needs (0: all zero)."""
    parts = [b""]
    widths = []
    for v in (gaps, tf1):
        m = int(v.max()) if v.shape[0] else 0
        if m < 0 or m > 0xFFFFFFFF or (v.shape[0] and int(v.min()) < 0):
            raise ValueError("packed values must fit in 32 bits")
        w = (m.bit_length() + 7) >> 3
        widths.append(w)
        if w:
            parts.append(np.ascontiguousarray(v, dtype="<u4").view(np.uint8).reshape(-1, 4)[:, :w].T.tobytes())
    parts[0] = bytes([widths[0] | widths[1] << 4])
    return b"".join(parts)


def from_planes(raw: bytes, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The (gaps, tf - 1) of a ``planes`` payload of ``n`` values each, as int64; None if ``raw`` is not
    one (widths out of range, or not exactly the bytes they need)."""
    if not raw:
        return None
    gw, tw = raw[0] & 15, raw[0] >> 4
    if gw > MAX_PLANES or tw > MAX_PLANES or len(raw) != 1 + n * (gw + tw):
        return None
    out = []
    at = 1
    for w in (gw, tw):
        if w == 0:
            out.append(np.zeros(n, dtype=np.int64))
            continue
        b = np.frombuffer(raw, dtype=np.uint8, count=n * w, offset=at).reshape(w, n)
        v = b[0].astype(np.int64)
        for k in range(1, w):
            v |= b[k].astype(np.int64) << (8 * k)
        out.append(v)
        at += n * w
    return out[0], out[1]


def unpack_all(view: np.ndarray, widths: np.ndarray, offsets: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Every value of a stream, in order (merges, checks)."""
    blocks = np.repeat(np.arange(lens.shape[0], dtype=np.int64), lens)
    k = np.arange(blocks.shape[0], dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
    return unpack(view, widths, offsets, blocks, k)


def check_layout(data: np.ndarray, widths: np.ndarray, lens: np.ndarray) -> np.ndarray | None:
    """The block offsets when widths and lengths describe ``data`` exactly (padding included), else None."""
    if widths.shape[0] != lens.shape[0] or (widths.shape[0] and int(widths.max()) > MAX_WIDTH):
        return None
    off = block_offsets(widths, lens)
    if int(off[-1]) + PAD != data.shape[0]:
        return None
    return off
