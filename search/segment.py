"""One immutable segment on disk: term dictionary, compressed postings, passages, stored documents.

A segment is one file: an 8-byte magic, a little-endian u64 header length, a JSON header naming every
array (offset, dtype, length) and the counts they must agree with, then the arrays, each 64-byte
aligned. ``SegmentReader`` maps the file once and hands out numpy views; nothing is pickled. The writer
side (``build_segment``) turns a token stream into that layout with numpy sorts.

Terms are keyed ``"<lang>:<term>"`` for text (title included) and ``"<lang>:title:<term>"`` for the
title field alone; analyzed terms never contain ":". The dictionary is sorted by a 32-bit BLAKE2b hash
of the key (ties by key), so a lookup is one ``searchsorted`` plus one byte comparison; each slot keeps
its document frequency ``df`` and its total term frequency ``ttf`` (its number of positions).

Postings are stored in dictionary order as three bit-packed streams (``codec``, blocks of 128): the
passage-id gaps, ``tf - 1``, and the position deltas within each posting. From format 4 (the header's
``big_df``), a term of more than ``big_df`` postings keeps its gaps and tfs instead as one zstd frame of
byte planes in ``big_data`` (``big_off``: where each starts; its packed blocks are empty), which numpy
decodes in a few calls where the packed blocks' gathers take about twenty. Where each term's blocks
start follows from ``df`` and ``ttf`` (cumulative sums at open), so the dictionary stores no offsets.
Per postings block the segment keeps skip data and block-max inputs: the block's last passage id,
its largest tf and its smallest passage length (both saturated at 65535, so they stay bounds).

Stored documents: text, title and metadata in compressed blocks of about ``DOC_BLOCK_BYTES`` (a hit
decompresses one block; the last few blocks are cached); ids, languages and content hashes as one
compressed stream per column, read whole on first use (lookups by id, merges, incremental commits need
them all). The codec (``compress``) is the header's ``stored``: zstd, or zlib where it is absent (the
segments of format version 2). From format 5 the blocks are about 4 KB and compressed with a zstd
dictionary trained on the segment's own documents (``doc_dict``; empty when there were too few), so a
hit whose block is not cached inflates a few KB, not 32.

A sorted dictionary of the surface words the segment saw (``"<lang>:<normalized word>"``) maps each
word to its term's slot, for prefix and fuzzy expansion.

Readers check what they map (see ``SegmentReader``): damage reads as ``IndexCorrupt`` naming the file.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import mmap
import os
import struct
import sys
import threading
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import codec, columns, compress
from .errors import IndexCorrupt
from .files import open_checked

MAGIC = b"TLSSEG02"
MAGIC_V1 = b"TLSSEG01"  # the previous format: read only by ``legacy`` (export)
ALIGN = 64
#: (format 5) with the segment's own dictionary, 4 KB blocks keep less of the text than 32 KB blocks without
#: one, and a hit whose block is not cached inflates 9 us instead of 51-62 (``benchmarks/RESULTS.md``)
DOC_BLOCK_BYTES = 4 << 10
#: the documents a segment's stored-fields dictionary is trained on: at most ``DICT_SAMPLES``, evenly
#: spaced, each its fields' first ``SAMPLE_BYTES`` (so a huge document weighs as much as any other);
#: fewer than ``DICT_MIN_SAMPLES`` documents or ``DICT_MIN_BYTES`` of them train none
DICT_SAMPLES = 2000
SAMPLE_BYTES = 4096
DICT_MIN_SAMPLES = 16
DICT_MIN_BYTES = 32 << 10
SATURATE = 0xFFFF
BLOCK_FIELDS = ("doc_text", "doc_title", "doc_meta")  # in compressed blocks, one per ~DOC_BLOCK_BYTES
COLUMN_FIELDS = ("doc_id", "doc_lang", "doc_hash")  # one compressed stream each
LONG_DOC_BYTES = 16 << 10  # a document's stored text over this keeps a character -> byte table (passage_text)
TEXT_STEP = 1024  # characters between two entries of that table
#: at most this many positions of a term are read value by value with Python integers (``_few_positions``):
#: 8 / 12 / 28 / 48 us for 1-4 / 5-16 / 17-32 / 33-48 positions, against 42-46 us with numpy (id 50k)
SMALL_POSITIONS = 32
DECODED_CACHE_BYTES = 96 << 20  # decoded postings and inflated text blocks kept, all segments together


# an entry's key and (value, size) tuples, their ints and its ordered-dict node, counted with it: an upper
# bound (255-300 bytes measured with tuples taken from an empty free list, as in a full cache, over the
# dict's growth), so the cache errs below its budget
_ENTRY_BYTES = 400


class _DecodedCache:
    """What readers decoded (postings, inflated stored blocks), least recently used first out, shared by
    every segment of the process under one byte budget: the page cache kept the old raw arrays for free;
    decoded data is kept for the same reason (frequent terms and hits recur across queries)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._items: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.evictions = 0  # entries put out to make room, ever (a warm-up stops at the first)

    def get(self, key: tuple) -> object | None:
        # without the lock: one OrderedDict call is atomic under the GIL (keys are tuples of str and
        # int, hashed in C), and a read changes only the order; a hit is read for every ranked passage
        got = self._items.get(key)
        if got is None:
            return None
        try:
            self._items.move_to_end(key)
        except KeyError:  # evicted by a put in another thread since the read: the value is still good
            pass
        return got[0]

    @staticmethod
    def charge(size: int) -> int:
        """What an entry holding ``size`` bytes counts against the budget: those and the entry's own cost."""
        return size + _ENTRY_BYTES

    def put(self, key: tuple, value: object, size: int) -> None:
        """Keep ``value`` (``size`` bytes, what it holds) under ``key``, counted at ``charge(size)``."""
        size = self.charge(size)
        with self._lock:
            if key in self._items or size > self.budget // 8:
                return
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.budget:
                _, (_, old) = self._items.popitem(last=False)
                self._bytes -= old
                self.evictions += 1

    def room(self) -> int:
        """Bytes of the budget still free (what a warm-up may fill without evicting anything)."""
        with self._lock:
            return self.budget - self._bytes

    def resize(self, budget: int) -> None:
        """A new byte budget, the least recently used entries dropped at once to meet it (a server's size)."""
        with self._lock:
            self.budget = max(0, int(budget))
            while self._bytes > self.budget and self._items:
                _, (_, old) = self._items.popitem(last=False)
                self._bytes -= old

    def drop(self, owner: int) -> None:
        with self._lock:
            for key in [k for k in list(self._items) if k[0] == owner]:  # list(): one C call, as reads reorder
                self._bytes -= self._items.pop(key)[1]


DECODED = _DecodedCache(DECODED_CACHE_BYTES)
_READER_IDS = itertools.count()


def key_hash(key: str) -> int:
    """The dictionary hash of a term key (stable across processes and platforms)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=4).digest(), "little")


def key_hash64(key: str) -> int:
    """A 64-bit hash of a term key, for tables that join keys across segments (no key comparison there)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")


def key_hashes(keys: list[str]) -> np.ndarray:
    """``key_hash`` of every key as a uint32 array (the digests joined and read at once, instead of one
    Python int per key)."""
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(k.encode("utf-8"), digest_size=4).digest() for k in keys])
    return np.frombuffer(digests, dtype="<u4").astype(np.uint32)


def encode_blob(strings: list[str], dtype=np.uint64) -> tuple[np.ndarray, np.ndarray]:
    """Strings as one UTF-8 byte array plus ``len + 1`` offsets."""
    encoded = list(map(str.encode, strings))  # UTF-8; map keeps the loop in C (a segment holds every text)
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    if encoded:
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    if int(offsets[-1]) > np.iinfo(dtype).max:
        raise ValueError("strings too long for their offsets")
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets.astype(dtype)


def stable_argsort_u32(values: np.ndarray) -> np.ndarray:
    """``np.argsort(values, kind="stable")`` for uint32, as one or two 16-bit radix passes (several
    times faster: numpy radix-sorts 16-bit keys but merge-sorts 32-bit ones)."""
    if values.shape[0] == 0 or int(values.max()) < 1 << 16:
        return np.argsort(values.astype(np.uint16), kind="stable")
    order = np.argsort((values & 0xFFFF).astype(np.uint16), kind="stable")
    return order[np.argsort((values[order] >> 16).astype(np.uint16), kind="stable")]


@dataclass
class SegmentData:
    """Everything a segment holds, in memory, before it is written.

    The token stream (``tok_tid``, ``tok_pid``, ``tok_pos``) must be ordered by passage, and by position
    within a passage; term ids index ``keys``. ``surface`` maps ``"<lang>:<word>"`` to a term key.
    Positions are uint32, or uint16 where every passage is short enough (a builder's choice).
    """

    keys: list[str]
    tok_tid: np.ndarray
    tok_pid: np.ndarray
    tok_pos: np.ndarray
    p_doc: np.ndarray
    p_no: np.ndarray
    p_start: np.ndarray
    p_end: np.ndarray
    p_len: np.ndarray
    p_lang: np.ndarray
    langs: list[str]
    doc_ids: list[str]
    doc_texts: list[str]
    doc_titles: list[str]
    doc_metas: list[str]
    doc_langs: list[str]
    doc_hashes: list[str]
    surface: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)  # declared metadata fields, stored as ``columns``


def encode_column(strings: list[str]) -> tuple[np.ndarray, int]:
    """One compressed stream: u32 byte lengths, then the UTF-8 strings; with its uncompressed size."""
    encoded = [s.encode("utf-8") for s in strings]
    raw = np.array([len(e) for e in encoded], dtype="<u4").tobytes() + b"".join(encoded)
    return np.frombuffer(compress.compress(raw), dtype=np.uint8), len(raw)


# A value longer than this (in characters) is encoded and compressed in slices of this size, never as
# one UTF-8 copy: a huge document's text is not held twice more (encoded, then joined) while stored.
STREAM_CHARS = 1 << 20


def _utf8_length(value: str) -> int:
    if value.isascii():  # constant time for str
        return len(value)
    return sum(len(value[i : i + STREAM_CHARS].encode("utf-8")) for i in range(0, len(value), STREAM_CHARS))


def sample_indexes(n_docs: int) -> range:
    """The documents (by number) a stored-fields dictionary is trained on: evenly spaced."""
    return range(0, n_docs, max(1, -(-n_docs // DICT_SAMPLES)))


def dictionary_sample(values: Iterable[str | bytes]) -> bytes:
    """One training sample from a document's block fields (as text, or as their UTF-8 bytes: the same
    sample either way): each value's first ``SAMPLE_BYTES`` bytes, joined by a zero byte."""
    return b"\0".join(
        (v[:SAMPLE_BYTES].encode("utf-8") if isinstance(v, str) else bytes(v))[:SAMPLE_BYTES] for v in values
    )


def train_dictionary(samples: list[bytes]) -> compress.Dictionary | None:
    """A segment's stored-fields dictionary from ``dictionary_sample``s, or None when there is too
    little to train on (the blocks are then compressed without one)."""
    if len(samples) < DICT_MIN_SAMPLES or sum(map(len, samples)) < DICT_MIN_BYTES:
        return None
    return compress.train(samples)


def encode_doc_blocks(
    fields: list[list[str]], dictionary: compress.Dictionary | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Documents' block fields in compressed blocks: (data, block byte offsets, first doc of each block,
    largest uncompressed block). A block is u32 lengths (``len(fields)`` per document), then the UTF-8 values,
    compressed with ``dictionary`` when there is one.

    A block holding a value longer than ``STREAM_CHARS`` is compressed as a stream fed slice by slice
    (read back as one call's output would be), so storing a huge document costs its
    compressed size, not two more copies of its text."""
    n = len(fields[0]) if fields else 0
    out = bytearray()
    offsets = [0]
    firsts = [0]
    largest = 0
    lengths: list[int] = []
    body: list[bytes | str] = []  # encoded values, or long values still as text
    size = 0
    for i in range(n):
        for f in fields:
            value = f[i]
            if len(value) > STREAM_CHARS:
                length = _utf8_length(value)
                body.append(value)
            else:
                e = value.encode("utf-8")
                length = len(e)
                body.append(e)
            lengths.append(length)
            size += length
        if size >= DOC_BLOCK_BYTES or i == n - 1:
            head = np.array(lengths, dtype="<u4").tobytes()
            largest = max(largest, len(head) + size)
            if all(isinstance(b, bytes) for b in body):
                out += compress.compress(head + b"".join(body), dictionary=dictionary)  # type: ignore[arg-type]
            else:
                stream = compress.stream(len(head) + size, dictionary=dictionary)
                out += stream.compress(head)
                for b in body:
                    if isinstance(b, bytes):
                        out += stream.compress(b)
                        continue
                    for j in range(0, len(b), STREAM_CHARS):
                        out += stream.compress(b[j : j + STREAM_CHARS].encode("utf-8"))
                out += stream.flush()
            offsets.append(len(out))
            firsts.append(i + 1)
            lengths, body, size = [], [], 0
    return (
        np.frombuffer(out, dtype=np.uint8),
        np.array(offsets, dtype=np.uint64),
        np.array(firsts, dtype=np.uint32),
        largest,
    )


# Tokens whose postings are sorted and packed at once: a flush of one huge document builds its postings
# range of terms by range of terms, so the sort's temporaries (~80 bytes a token) stay bounded.
POSTINGS_CHUNK_TOKENS = 1 << 20
_POSTINGS_PARTS = ("pid_data", "pid_width", "tf_data", "tf_width", "pos_data", "pos_width", "blk_last")


_PAIR_BYTES = sys.getsizeof((0, 0))  # a 2-tuple, with its garbage-collector header
_ARRAY_BYTES = sys.getsizeof(np.empty(0))  # a numpy array's object, without its data


def _block_bytes(raw: bytes, offs: array) -> int:
    """What an inflated stored block takes in memory, as the decoded cache counts it: the bytes object,
    the offsets' array (with the room it over-allocated) and the tuple holding them (checked against
    tracemalloc in ``tests/test_prefetch.py``)."""
    return sys.getsizeof(raw) + sys.getsizeof(offs) + _PAIR_BYTES


def _postings_bytes(df: int) -> int:
    """What a term's decoded postings take in the shared cache: int64 passage ids and tfs, their two
    array objects and the tuple holding them."""
    return 16 * df + 2 * _ARRAY_BYTES + _PAIR_BYTES


def _big_frames(gaps: np.ndarray, tf1: np.ndarray, df: np.ndarray) -> list[bytes]:
    """The zstd frames of the terms of more than ``codec.BIG_DF`` postings among terms of ``df``
    postings each (``gaps`` and ``tf1`` hold their values in order), in term order; their values in
    ``gaps`` and ``tf1`` are zeroed, so their packed blocks take width 0 and no bytes (format 4)."""
    first = np.cumsum(df) - df
    frames = []
    for s in np.flatnonzero(df > codec.BIG_DF).tolist():
        a, b = int(first[s]), int(first[s] + df[s])
        frames.append(compress.compress(codec.planes(gaps[a:b], tf1[a:b]), "zstd"))
        gaps[a:b] = 0
        tf1[a:b] = 0
    return frames


def _big_offsets(sizes: Iterable[int]) -> np.ndarray:
    """``big_off``: where each big term's frame starts in ``big_data``, and the end."""
    return np.concatenate(([0], np.cumsum(np.fromiter(sizes, dtype=np.int64)))).astype(np.uint64)


def _postings_arrays(
    tid: np.ndarray, slot_of: np.ndarray, pid: np.ndarray, pos: np.ndarray, p_len: np.ndarray
) -> tuple[dict[str, np.ndarray], int]:
    """The postings arrays of a token stream and its number of postings.

    The stream is term ids (``slot_of`` gives each its dictionary slot), passage ids and positions,
    ordered by passage and position. Out come df and ttf per slot, the packed passage-id gaps, tf - 1
    and position deltas, and per block its last passage id, max tf and min passage length. They are
    built for one range of slots at a time, each range about ``POSTINGS_CHUNK_TOKENS`` tokens (a term
    is never split), and joined: blocks start on byte boundaries and a term's postings lie in one range,
    so the bytes equal those of a single pass, while the sorted copies exist for one range only.
    """
    n_terms = slot_of.shape[0]
    ttf = np.empty(n_terms, dtype=np.int64)
    ttf[slot_of] = np.bincount(tid, minlength=n_terms)  # counted by term id, then placed by slot
    chunk_of_slot = (np.cumsum(ttf) - ttf) // POSTINGS_CHUNK_TOKENS
    chunks = int(chunk_of_slot[-1]) + 1 if n_terms else 0
    bounds = np.searchsorted(chunk_of_slot, np.arange(chunks + 1), side="left")
    tok_chunk = None
    if chunks > 1:  # each token's range, 2 bytes a token, selected from once per range
        tok_chunk = chunk_of_slot.astype(np.uint16 if chunks <= 1 << 16 else np.uint32)[slot_of][tid]
    df = np.zeros(n_terms, dtype=np.int64)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in (*_POSTINGS_PARTS, "blk_max_tf", "blk_min_len")}
    frames: list[bytes] = []
    n_postings = 0
    for k in range(chunks):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        if lo == hi:
            continue
        if tok_chunk is None:  # one range: every token
            sel = None
            slot = slot_of[tid]
        else:
            sel = np.flatnonzero(tok_chunk == k)
            slot = slot_of[tid[sel]] - np.uint32(lo)  # from 0 in the range: often one 16-bit radix pass
        order = stable_argsort_u32(slot)  # tokens by slot, then passage, then position (stable)
        slot_s = slot[order]
        if sel is not None:
            order = sel[order]
        del slot, sel
        # unsigned as stored: the differences below that wrap are where a term or posting starts, and
        # those are overwritten (packing reads values as 64-bit words itself)
        pid_s, pos_s = pid[order], pos[order]
        del order
        n_tok = slot_s.shape[0]
        change = np.flatnonzero((slot_s[1:] != slot_s[:-1]) | (pid_s[1:] != pid_s[:-1])) + 1
        starts = np.concatenate(([0], change))
        del change
        post_slot = slot_s[starts]
        post_pid = pid_s[starts]
        del slot_s, pid_s
        post_tf = np.diff(np.append(starts, n_tok)).astype(np.int64)
        df_k = np.bincount(post_slot, minlength=hi - lo).astype(np.int64)  # slots from lo
        df[lo:hi] = df_k
        n_postings += post_pid.shape[0]
        # passage-id gaps (the first of each term: the id itself), tf - 1, position deltas within a posting
        gaps = post_pid.copy()
        gaps[1:] -= post_pid[:-1]
        first_post = (np.cumsum(df_k) - df_k)[df_k > 0]
        gaps[first_post] = post_pid[first_post]
        deltas = pos_s.copy()
        deltas[1:] -= pos_s[:-1]
        deltas[starts] = pos_s[starts]
        del pos_s, starts
        post_lens = codec.block_lengths(df_k)
        tf1 = post_tf - 1
        frames += _big_frames(gaps, tf1, df_k)
        for name, values, lens in (
            ("pid", gaps, post_lens),
            ("tf", tf1, post_lens),
            ("pos", deltas, codec.block_lengths(ttf[lo:hi])),
        ):
            data, width = codec.pack(values, lens)
            parts[f"{name}_data"].append(data[: data.shape[0] - codec.PAD])
            parts[f"{name}_width"].append(width)
        del gaps, deltas, tf1
        blk_start = np.cumsum(post_lens) - post_lens
        parts["blk_last"].append(post_pid[blk_start + post_lens - 1].astype(np.uint32))
        parts["blk_max_tf"].append(np.maximum.reduceat(post_tf, blk_start))
        parts["blk_min_len"].append(np.minimum.reduceat(p_len[post_pid].astype(np.int64), blk_start))

    def joined(name: str, dtype: type) -> np.ndarray:
        return np.concatenate(parts[name]).astype(dtype, copy=False) if parts[name] else np.zeros(0, dtype)

    arrays = {
        "term_df": df.astype(np.uint32),
        "term_ttf": ttf.astype(np.uint32),
        **{name: joined(name, np.uint32 if name == "blk_last" else np.uint8) for name in _POSTINGS_PARTS},
        "blk_max_tf": np.minimum(joined("blk_max_tf", np.int64), SATURATE).astype(np.uint16),
        "blk_min_len": np.minimum(joined("blk_min_len", np.int64), SATURATE).astype(np.uint16),
        "big_data": np.frombuffer(b"".join(frames), dtype=np.uint8),
        "big_off": _big_offsets(map(len, frames)),
    }
    for name in ("pid_data", "tf_data", "pos_data"):  # one PAD after the joined stream, as ``codec.pack``
        arrays[name] = np.concatenate((arrays[name], np.zeros(codec.PAD, dtype=np.uint8)))
    return arrays, n_postings


def encode_postings(
    slot_s: np.ndarray,
    pid_s: np.ndarray,
    pos_s: np.ndarray,
    n_terms: int,
    length_at: Callable[[np.ndarray], np.ndarray],
) -> dict[str, np.ndarray]:
    """The postings arrays of ``n_terms`` terms from their tokens, ordered by slot, passage, position
    (unsigned or signed: differences that wrap are overwritten where a term or a posting starts):
    ``term_df``/``term_ttf``, the packed streams (each ending with ``codec.PAD`` zeros) and the per-block
    skip data and bounds. ``length_at(i)`` is the passage length of the tokens at indices ``i``. The
    streaming merge's encoder, a run of terms at a time (``_postings_arrays`` is the flush's; both give
    the bytes of one pass over the whole stream)."""
    n_tok = slot_s.shape[0]
    if n_tok:
        change = np.flatnonzero((slot_s[1:] != slot_s[:-1]) | (pid_s[1:] != pid_s[:-1])) + 1
        starts = np.concatenate(([0], change))
    else:
        starts = np.zeros(0, dtype=np.int64)
    post_slot = slot_s[starts]
    post_pid = pid_s[starts]
    post_tf = np.diff(np.append(starts, n_tok)).astype(np.int64)
    df = np.bincount(post_slot, minlength=n_terms).astype(np.int64) if n_terms else np.zeros(0, np.int64)
    ttf = np.bincount(slot_s, minlength=n_terms).astype(np.int64) if n_terms else np.zeros(0, np.int64)

    # passage-id gaps (the first of each term: the id itself), tf - 1, position deltas within a posting
    gaps = post_pid.copy()
    gaps[1:] -= post_pid[:-1]
    first_post = np.cumsum(df) - df
    gaps[first_post[df > 0]] = post_pid[first_post[df > 0]]
    deltas = pos_s.copy()
    deltas[1:] -= pos_s[:-1]
    deltas[starts] = pos_s[starts]
    post_lens = codec.block_lengths(df)
    pos_lens = codec.block_lengths(ttf)
    tf1 = post_tf - 1
    frames = _big_frames(gaps, tf1, df)
    pid_data, pid_width = codec.pack(gaps, post_lens)
    tf_data, tf_width = codec.pack(tf1, post_lens)
    pos_data, pos_width = codec.pack(deltas, pos_lens)
    blk_start = np.cumsum(post_lens) - post_lens
    blk_end = blk_start + post_lens - 1
    if post_lens.shape[0]:
        blk_max_tf = np.maximum.reduceat(post_tf, blk_start)
        blk_min_len = np.minimum.reduceat(length_at(starts).astype(np.int64), blk_start)
    else:
        blk_max_tf = blk_min_len = np.zeros(0, dtype=np.int64)
    return {
        "term_df": df.astype(np.uint32),  # df and ttf are counted per slot already
        "term_ttf": ttf.astype(np.uint32),
        "pid_data": pid_data,
        "pid_width": pid_width,
        "tf_data": tf_data,
        "tf_width": tf_width,
        "pos_data": pos_data,
        "pos_width": pos_width,
        "blk_last": post_pid[blk_end].astype(np.uint32) if post_lens.shape[0] else np.zeros(0, np.uint32),
        "blk_max_tf": np.minimum(blk_max_tf, SATURATE).astype(np.uint16),
        "blk_min_len": np.minimum(blk_min_len, SATURATE).astype(np.uint16),
        "big_data": np.frombuffer(b"".join(frames), dtype=np.uint8),
        "big_off": _big_offsets(map(len, frames)),
    }


def _surface_slots(surface: dict[str, str], key_slot: dict[str, int], every: bool) -> tuple[list[str], np.ndarray]:
    """The surface words in UTF-8 byte order (which is code point order: strings sort as they are) and
    their terms' slots; ``every``: all words name a term of ``key_slot`` (else those that do not are
    left out; ``KeyError`` when ``every`` is wrong)."""
    words = sorted(surface) if every else sorted(w for w, k in surface.items() if k in key_slot)
    slots = map(key_slot.__getitem__, map(surface.__getitem__, words))
    return words, np.fromiter(slots, np.uint32, len(words))


def build_arrays(data: SegmentData, consume: bool = False) -> tuple[dict[str, np.ndarray], dict]:
    """The on-disk arrays of a segment and the header counts they agree with. With ``consume`` the token
    columns are taken out of ``data`` (left empty), so a flush's columns (12 bytes a token) are let go
    once the postings are built, before its stored text is compressed."""
    tid = np.asarray(data.tok_tid, dtype=np.uint32)
    pid = np.asarray(data.tok_pid, dtype=np.uint32)
    pos = np.asarray(data.tok_pos)
    if pos.dtype not in (np.uint16, np.uint32):  # (a builder's positions fit 16 bits when they can)
        pos = pos.astype(np.uint32)
    if consume:
        data.tok_tid = data.tok_pid = data.tok_pos = np.zeros(0, dtype=np.uint32)
    p_len = np.asarray(data.p_len, dtype=np.uint32)
    keys = data.keys
    used = np.zeros(len(keys), dtype=bool)
    used[tid] = True
    if not used.all():  # terms whose every occurrence was deleted (merges) leave the dictionary
        remap = np.cumsum(used, dtype=np.int64) - 1
        tid = remap[tid].astype(np.uint32)
        keys = [k for k, u in zip(keys, used.tolist()) if u]
    n_terms = len(keys)
    hashes = key_hashes(keys)
    order_arr = np.argsort(hashes, kind="stable").astype(np.int64)
    sorted_h = hashes[order_arr]
    ties = np.flatnonzero(sorted_h[1:] == sorted_h[:-1]) if n_terms > 1 else np.zeros(0, np.int64)
    order_t = order_arr.tolist()
    if ties.shape[0]:  # equal 32-bit hashes: those runs ordered by key (the reader compares keys)
        i = 0
        tie_starts = sorted(set(ties.tolist()))
        while i < len(tie_starts):
            lo = hi = tie_starts[i]
            while hi + 1 < n_terms and sorted_h[hi + 1] == sorted_h[lo]:
                hi += 1
            order_t[lo : hi + 1] = sorted(order_t[lo : hi + 1], key=lambda j: keys[j])
            while i < len(tie_starts) and tie_starts[i] <= hi:
                i += 1
    order_np = np.asarray(order_t, dtype=np.int64)
    slot_of = np.zeros(n_terms, dtype=np.uint32)
    slot_of[order_np] = np.arange(n_terms, dtype=np.uint32)
    postings, n_postings = _postings_arrays(tid, slot_of, pid, pos, p_len)
    n_tok = int(tid.shape[0])
    del tid, pid, pos  # (the caller's columns stay unless consumed; a remapped copy goes now)

    sorted_keys = list(map(keys.__getitem__, order_t))
    term_blob, term_off = encode_blob(sorted_keys, np.uint32)
    key_slot = dict(zip(sorted_keys, range(n_terms)))
    try:  # no term dropped (a flush): every surface word names a term, no filter per word
        surf_words, surf_term = _surface_slots(data.surface, key_slot, n_terms == len(data.keys))
    except KeyError:  # a word naming a term this segment lacks: left out, as for dropped terms
        surf_words, surf_term = _surface_slots(data.surface, key_slot, False)
    surf_blob, surf_off = encode_blob(surf_words, np.uint32)

    arrays: dict[str, np.ndarray] = {
        "term_hash": hashes[order_np],
        "term_blob": term_blob,
        "term_off": term_off,
        **postings,
        "surf_blob": surf_blob,
        "surf_off": surf_off,
        "surf_term": surf_term,
        "p_doc": np.asarray(data.p_doc, dtype=np.uint32),
        "p_no": np.asarray(data.p_no, dtype=np.uint32),
        "p_start": np.asarray(data.p_start, dtype=np.uint64),
        "p_end": np.asarray(data.p_end, dtype=np.uint64),
        "p_len": p_len,
        "p_lang": np.asarray(data.p_lang, dtype=np.uint8),
    }
    block_fields = [data.doc_texts, data.doc_titles, data.doc_metas]
    dictionary = None
    if compress.CODEC == "zstd":  # (zlib: only the codec benchmark writes it, without a dictionary)
        dictionary = train_dictionary(
            [dictionary_sample(f[i] for f in block_fields) for i in sample_indexes(len(data.doc_texts))]
        )
    doc_data, doc_off, doc_first, largest = encode_doc_blocks(block_fields, dictionary)
    arrays.update(doc_data=doc_data, doc_block_off=doc_off, doc_block_first=doc_first)
    arrays["doc_dict"] = np.frombuffer(dictionary.data if dictionary else b"", dtype=np.uint8)
    raw_sizes = {}
    for name, strings in (("doc_id", data.doc_ids), ("doc_lang", data.doc_langs), ("doc_hash", data.doc_hashes)):
        arrays[f"{name}_z"], raw_sizes[name] = encode_column(strings)
    counts = {
        "postings": n_postings,
        "positions": int(n_tok),
        "doc_block_max": largest,
        "column_sizes": raw_sizes,
        "stored": compress.CODEC,
        "big_df": codec.BIG_DF,  # (format 4) terms of more postings are zstd frames of byte planes
        "stored_dict": True,  # (format 5) the array doc_dict: the stored blocks' dictionary (empty: none)
    }
    if data.fields:  # declared metadata fields as columns, read by filters and facets
        col_arrays, counts["columns"] = columns.build(data.fields, data.doc_metas)
        arrays.update(col_arrays)
    return arrays, counts


def write_segment(path: Path, data: SegmentData, consume: bool = False) -> tuple[int, str]:
    """Write ``data`` as a segment file (fsynced); return its size and BLAKE2b checksum. ``consume``:
    its token columns are emptied once used (``build_arrays``), for a caller that has no more use for them."""
    arrays, counts = build_arrays(data, consume)
    counts["crc"] = {section: section_crc(arrays, section) for section in SECTIONS}
    counts["lang_stats"] = lang_stats(arrays["p_lang"], arrays["p_len"], len(data.langs))
    layout: dict[str, list] = {}
    offset = 0
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        offset = -(-offset // ALIGN) * ALIGN
        layout[name] = [offset, arr.dtype.str, int(arr.shape[0])]
        offset += arr.nbytes
    header = _header_bytes(
        {"arrays": layout, "langs": data.langs, "docs": len(data.doc_ids), "passages": int(len(data.p_doc)), **counts}
    )
    base = -(-(16 + len(header)) // ALIGN) * ALIGN
    digest = hashlib.blake2b(digest_size=16)
    size = 0
    with open(path, "xb") as f:

        def put(chunk: bytes | memoryview) -> None:
            nonlocal size
            f.write(chunk)
            digest.update(chunk)
            size += len(chunk)

        put(MAGIC + len(header).to_bytes(8, "little") + header)
        put(b"\0" * (base - size))
        for name in sorted(arrays):
            start = base + layout[name][0]
            if start > size:
                put(b"\0" * (start - size))
            put(memoryview(np.ascontiguousarray(arrays[name])).cast("B"))
        f.flush()
        os.fsync(f.fileno())
    return size, digest.hexdigest()


def write_spilled_segment(
    path: Path, spilled: dict[str, tuple[Path | bytes, np.dtype, int]], fields: dict
) -> tuple[int, str]:
    """Write a segment whose arrays were spilled to files (``name -> (file or bytes, dtype, length)``), as
    ``write_segment`` writes one from memory, byte for byte: the streaming merge's way out, so a merged
    segment never has to fit in memory. ``fields`` are the header's other entries (``langs``, ``docs``,
    ``passages``, ``postings``, ``positions``, ``doc_block_max``, ``column_sizes``). Fsynced; returns
    the size and BLAKE2b checksum."""
    chunk = 1 << 20

    def chunks(name: str):
        where = spilled[name][0]
        if isinstance(where, bytes):
            yield where
            return
        with where.open("rb") as f:  # not this module's ``open``, which tests wrap for writes
            while True:
                got = f.read(chunk)
                if not got:
                    return
                yield got

    crc = {}
    for section, names in SECTIONS.items():
        c = 0
        for name in names:
            for got in chunks(name):
                c = zlib.crc32(got, c)
        crc[section] = c
    layout: dict[str, list] = {}
    offset = 0
    for name in sorted(spilled):
        _, dtype, length = spilled[name]
        offset = -(-offset // ALIGN) * ALIGN
        layout[name] = [offset, np.dtype(dtype).str, int(length)]
        offset += int(length) * np.dtype(dtype).itemsize
    stats = fields.get("lang_stats")
    if stats is None:  # counted from the spilled passage table, as ``write_segment`` counts them
        p_lang = np.frombuffer(b"".join(chunks("p_lang")), dtype=np.uint8)
        p_len = np.frombuffer(b"".join(chunks("p_len")), dtype="<u4")
        stats = lang_stats(p_lang, p_len, len(fields["langs"]))
    header = _header_bytes({"arrays": layout, **fields, "crc": crc, "lang_stats": stats})
    base = -(-(16 + len(header)) // ALIGN) * ALIGN
    digest = hashlib.blake2b(digest_size=16)
    size = 0
    with open(path, "xb") as f:

        def put(data: bytes | memoryview) -> None:
            nonlocal size
            f.write(data)
            digest.update(data)
            size += len(data)

        put(MAGIC + len(header).to_bytes(8, "little") + header)
        put(b"\0" * (base - size))
        for name in sorted(spilled):
            start = base + layout[name][0]
            if start > size:
                put(b"\0" * (start - size))
            for got in chunks(name):
                put(got)
        f.flush()
        os.fsync(f.fileno())
    return size, digest.hexdigest()


ARRAY_DTYPES = {
    "term_hash": np.dtype("<u4"),
    "term_blob": np.dtype(np.uint8),
    "term_off": np.dtype("<u4"),
    "term_df": np.dtype("<u4"),
    "term_ttf": np.dtype("<u4"),
    **{f"{s}_data": np.dtype(np.uint8) for s in ("pid", "tf", "pos")},
    **{f"{s}_width": np.dtype(np.uint8) for s in ("pid", "tf", "pos")},
    "blk_last": np.dtype("<u4"),
    "blk_max_tf": np.dtype("<u2"),
    "blk_min_len": np.dtype("<u2"),
    "big_data": np.dtype(np.uint8),
    "big_off": np.dtype("<u8"),
    "surf_blob": np.dtype(np.uint8),
    "surf_off": np.dtype("<u4"),
    "surf_term": np.dtype("<u4"),
    "p_doc": np.dtype("<u4"),
    "p_no": np.dtype("<u4"),
    "p_start": np.dtype("<u8"),
    "p_end": np.dtype("<u8"),
    "p_len": np.dtype("<u4"),
    "p_lang": np.dtype(np.uint8),
    "doc_data": np.dtype(np.uint8),
    "doc_block_off": np.dtype("<u8"),
    "doc_block_first": np.dtype("<u4"),
    "doc_dict": np.dtype(np.uint8),
    **{f"{f}_z": np.dtype(np.uint8) for f in COLUMN_FIELDS},
}


BIG_ARRAYS = {"big_data", "big_off"}  # the arrays format 4 added: absent from older segments
DICT_ARRAYS = {"doc_dict"}  # the array format 5 added: absent from older segments
ZSTD_DICT_MAGIC = bytes.fromhex("37a430ec")  # how a zstd dictionary begins

# Arrays guarded by a CRC-32 per section, checked once per process when the section is first used (the
# passage table at open, since the snapshot's statistics read it there). The bulk stored text is not in
# a section: each compressed block carries its own checksum, checked at every inflate.
SECTIONS = {
    "passages": (
        "p_doc", "p_no", "p_start", "p_end", "p_len", "p_lang", "doc_block_off", "doc_block_first", "doc_dict"
    ),
    "dictionary": ("term_hash", "term_blob", "term_off", "term_df", "term_ttf", "surf_blob", "surf_off", "surf_term"),
    "postings": (
        "pid_data", "pid_width", "tf_data", "tf_width", "blk_last", "blk_max_tf", "blk_min_len", "big_data", "big_off"
    ),
    "positions": ("pos_data", "pos_width"),
}


def section_crc(arrays: dict[str, np.ndarray], section: str) -> int:
    """CRC-32 of a section's arrays, in order (zlib's: about 1 GB/s, a quarter of BLAKE2b's cost)."""
    crc = 0
    for name in SECTIONS[section]:
        crc = zlib.crc32(np.ascontiguousarray(arrays[name]).view(np.uint8), crc)
    return crc


def header_checksum(body: dict) -> int:
    """CRC-32 of a segment header's JSON without its ``header_crc`` (sorted keys, as written): the header
    is read at every open, so damage to its counts, checksums or statistics is caught there."""
    return zlib.crc32(json.dumps(body, sort_keys=True).encode("utf-8"))


def _header_bytes(body: dict) -> bytes:
    """A header's JSON bytes with its own checksum added."""
    return json.dumps({**body, "header_crc": header_checksum(body)}, sort_keys=True).encode("utf-8")


def _count(header: dict, name: str) -> int:
    value = header[name]
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 48):
        raise ValueError(f"bad count {name}")
    return value


def _monotone_offsets(off: np.ndarray, end: int, what: str) -> None:
    if off.shape[0] == 0 or int(off[0]) != 0 or int(off[-1]) != end or np.any(off[1:] < off[:-1]):
        raise ValueError(f"offsets {what} do not fit their data")


class _Counts:
    """What the reader checks at open, in O(arrays + languages): the header's counts and languages,
    every array's length that a count fixes, and the per-language statistics (``ValueError`` if bad)."""

    def __init__(self, a: dict[str, np.ndarray], header: dict) -> None:
        self.n_docs = _count(header, "docs")
        self.n_passages = _count(header, "passages")
        self.n_postings = _count(header, "postings")
        self.n_positions = _count(header, "positions")
        langs = header["langs"]
        if not (isinstance(langs, list) and all(isinstance(x, str) for x in langs)):
            raise ValueError("langs is not a list of names")
        n_terms = a["term_hash"].shape[0]
        lengths = {"term_off": n_terms + 1, "term_df": n_terms, "term_ttf": n_terms}
        lengths.update({f"p_{x}": self.n_passages for x in ("doc", "no", "start", "end", "len", "lang")})
        lengths["surf_term"] = a["surf_off"].shape[0] - 1
        lengths["doc_block_first"] = a["doc_block_off"].shape[0]
        for name, n in lengths.items():
            if a[name].shape[0] != n:
                raise ValueError(f"array {name} has {a[name].shape[0]} entries, not {n}")
        if a["doc_block_first"].shape[0] == 0:
            raise ValueError("document blocks do not cover the documents")
        self.doc_block_max = _count(header, "doc_block_max")
        # (format 4) terms of more postings than this store them as zstd frames; None: none does
        self.big_df: int | None = _count(header, "big_df") if "big_df" in header else None
        sizes = header["column_sizes"]
        if not isinstance(sizes, dict):
            raise ValueError("bad column sizes")
        self.column_sizes = {f: _count(sizes, f) for f in COLUMN_FIELDS}
        # (passages, total length) per language code, counted at write; trusted only under the
        # header's own checksum (a segment written before them has neither: its table is summed)
        self.lang_stats: list[tuple[int, int]] | None = None
        stats = header.get("lang_stats")
        if stats is not None and "header_crc" in header:
            if not (isinstance(stats, list) and len(stats) == len(langs)):
                raise ValueError("bad language statistics")
            pairs = [(_count({"n": n}, "n"), _count({"n": t}, "n")) for n, t in stats]
            if sum(n for n, _ in pairs) != self.n_passages:
                raise ValueError("language statistics do not add up to the passages")
            self.lang_stats = pairs


def _validate_dictionary(a: dict[str, np.ndarray]) -> None:
    """The dictionary's structure, in O(terms + surface words) (``ValueError`` if bad)."""
    n_terms = a["term_hash"].shape[0]
    _monotone_offsets(a["term_off"], a["term_blob"].shape[0], "term_off")
    _monotone_offsets(a["surf_off"], a["surf_blob"].shape[0], "surf_off")
    if n_terms and np.any(a["term_hash"][1:] < a["term_hash"][:-1]):
        raise ValueError("term dictionary out of order")
    if a["surf_term"].shape[0] and int(a["surf_term"].max()) >= n_terms:
        raise ValueError("surface words name terms that do not exist")


def _validate_passages(a: dict[str, np.ndarray], counts: _Counts, n_langs: int) -> None:
    """The passage table and the document blocks, in O(passages + blocks) (``ValueError`` if bad); and
    the header's per-language statistics against the table they were counted from."""
    n_passages, n_docs = counts.n_passages, counts.n_docs
    p_doc = a["p_doc"]
    if n_passages and (int(p_doc[-1]) >= n_docs or np.any(p_doc[1:] < p_doc[:-1])):
        raise ValueError("passage document ids out of order or range")
    if n_passages and int(a["p_lang"].max()) >= n_langs:
        raise ValueError("passage language codes out of range")
    if n_passages and np.any(a["p_start"] > a["p_end"]):
        raise ValueError("passage spans out of order")
    _monotone_offsets(a["doc_block_off"], a["doc_data"].shape[0], "doc_block_off")
    first = a["doc_block_first"]
    if int(first[0]) != 0 or int(first[-1]) != n_docs or np.any(first[1:] <= first[:-1]):
        raise ValueError("document blocks do not cover the documents")
    if counts.lang_stats is not None and counts.lang_stats != lang_stats(a["p_lang"], a["p_len"], n_langs):
        raise ValueError("language statistics disagree with the passage table")
    if a["doc_dict"].shape[0] and a["doc_dict"][:4].tobytes() != ZSTD_DICT_MAGIC:
        raise ValueError("the stored fields' dictionary is not a zstd dictionary")


def lang_stats(p_lang: np.ndarray, p_len: np.ndarray, n_langs: int) -> list[tuple[int, int]]:
    """(passages, total length) per language code of a passage table."""
    codes = np.asarray(p_lang, dtype=np.intp)
    n = np.bincount(codes, minlength=n_langs)
    total = np.bincount(codes, weights=np.asarray(p_len, dtype=np.float64), minlength=n_langs)  # exact < 2**53
    return [(int(n[i]), int(total[i])) for i in range(n_langs)]


def _packed_offsets(a: dict[str, np.ndarray], name: str, lens: np.ndarray) -> np.ndarray:
    """The byte offsets of packed array ``name``'s blocks of ``lens`` values, checked to fit its data."""
    off = codec.check_layout(a[f"{name}_data"], a[f"{name}_width"], lens)
    if off is None:
        raise ValueError(f"packed {name} blocks do not fit their data")
    return off


class _Layout:
    """Where each term's postings and positions blocks begin, and every block's byte offset: derived
    from the dictionary when postings are first read, after checking it (``ValueError`` if bad). The
    positions' half (``positions``) waits for the first phrase: a query without one never reads them,
    and deriving it took about half of a one-shot command's 9 ms a segment."""

    def __init__(self, a: dict[str, np.ndarray], counts: _Counts) -> None:
        n_terms = a["term_hash"].shape[0]
        df = a["term_df"].astype(np.int64)
        ttf = a["term_ttf"].astype(np.int64)
        if n_terms and (int(df.min()) < 1 or np.any(ttf < df)):
            raise ValueError("term frequencies out of range")
        if int(df.sum()) != counts.n_postings or int(ttf.sum()) != counts.n_positions:
            raise ValueError("term frequencies do not add up to the postings")
        self.df, self.ttf = df, ttf
        self._pos: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (no view of the map is kept)
        self.post_lens = codec.block_lengths(df)
        n_blocks = self.post_lens.shape[0]
        for name in ("blk_last", "blk_max_tf", "blk_min_len"):
            if a[name].shape[0] != n_blocks:
                raise ValueError(f"array {name} has {a[name].shape[0]} entries, not {n_blocks}")
        self.pid_off = _packed_offsets(a, "pid", self.post_lens)
        self.tf_off = _packed_offsets(a, "tf", self.post_lens)
        self.term_blk = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(codec.block_counts(df), out=self.term_blk[1:])
        # (format 4) a big term's frame number: how many big terms come before it; None: no big terms
        self.term_big: np.ndarray | None = None
        if counts.big_df is not None:
            big = df > counts.big_df
            self.term_big = np.zeros(n_terms + 1, dtype=np.int64)
            np.cumsum(big, out=self.term_big[1:])
            _monotone_offsets(a["big_off"], a["big_data"].shape[0], "big_off")
            if a["big_off"].shape[0] != int(self.term_big[-1]) + 1:
                raise ValueError(f"array big_off has {a['big_off'].shape[0]} entries, not {int(self.term_big[-1]) + 1}")
            in_big = np.repeat(big, codec.block_counts(df))
            if a["pid_width"][in_big].any() or a["tf_width"][in_big].any():
                raise ValueError("packed blocks of a term stored as a frame")
        if n_blocks and int(a["blk_last"].max()) >= counts.n_passages:
            raise ValueError("skip data names passages that do not exist")

    def positions(self, a: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The positions' (block lengths, block byte offsets and the end, each term's first block and the
        end), derived from the segment's arrays ``a`` and checked on first use (``ValueError`` if the
        blocks do not fit their data)."""
        got = self._pos
        if got is None:
            lens = codec.block_lengths(self.ttf)
            first = np.zeros(self.ttf.shape[0] + 1, dtype=np.int64)
            np.cumsum(codec.block_counts(self.ttf), out=first[1:])
            got = self._pos = (lens, _packed_offsets(a, "pos", lens), first)  # one assignment: threads
        return got

    def framed(self, slot: int) -> bool:
        """(format 4) whether ``slot``'s postings are a zstd frame rather than packed blocks."""
        return self.term_big is not None and bool(self.term_big[slot + 1] > self.term_big[slot])


class SegmentReader:
    """A read-only view of one segment file through mmap; arrays are numpy views, never copies.

    What is checked, and when (damage is ``IndexCorrupt`` naming the file, never an IndexError, a giant
    allocation or, where a bound or a checksum can tell, a different answer):

    - at open, in O(arrays + languages), so opening costs the same at any size: the header (every array
      present, of its dtype, inside the file; its own CRC-32, which covers the section checksums and the
      per-language statistics the snapshot reads from it), and every array's length that a header count
      fixes;
    - once per process, when a section is first used (a query's first dictionary lookup, postings read,
      phrase, or passage-table read), its CRC-32 (about 1 ms per 1 MB: zlib's crc32) and its structure
      in O(its size): for the dictionary, offsets monotone and ending at their data, the hashes sorted,
      surface words naming terms; for the postings, df >= 1 and ttf >= df adding up to the header's
      totals, each packed stream's widths (<= 32) and lengths summing exactly to its bytes (the
      positions' stream at the first phrase), skip data in range, and (format 4) the frames' offsets
      monotone with one per term over ``big_df`` postings and those terms' packed blocks empty; for the
      passage table, document ids ordered and in range,
      languages in range, spans ordered, document blocks covering every document, and the header's
      per-language statistics equal to the table's (``warm`` does all of it at once, for a server);
    - at each decode, in O(what is decoded): passage ids strictly ascending, below the passage count and
      equal to the skip data at every block end; tfs adding up to ttf; positions strictly ascending within
      a passage and below 2**32; stored blocks and postings frames by their codec's own checksum (zstd's
      xxhash, zlib's adler32) and their lengths (a frame's payload exactly what its widths need);
    - only in ``Index.verify`` (``search check``, and before every merge): the whole file's BLAKE2b
      against the commit, which also covers the alignment padding.
    """

    def __init__(self, path: Path, size: int | None = None) -> None:
        """Map the segment at ``path``; ``size`` is the byte count its commit recorded, when known."""
        self.path = Path(path)
        self.name = self.path.name
        try:
            with open_checked(self.path, f"segment file {self.name}", size=size) as f:
                size = os.fstat(f.fileno()).st_size
                if size < 16:
                    raise IndexCorrupt(f"segment file {self.name} is truncated ({size} bytes)", str(self.path))
                head = f.read(16)
                if head[:8] != MAGIC:
                    raise IndexCorrupt(f"segment file {self.name} has a bad header", str(self.path))
                hlen = int.from_bytes(head[8:], "little")
                if hlen > size - 16:
                    raise IndexCorrupt(f"segment file {self.name} is truncated (header)", str(self.path))
                header = json.loads(f.read(hlen).decode("utf-8"))
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except PermissionError:
            raise
        except RecursionError:
            raise IndexCorrupt(f"segment file {self.name} has a bad header (nested too deep)", str(self.path)) from None
        except (OSError, ValueError, UnicodeDecodeError) as e:
            if isinstance(e, FileNotFoundError):
                raise IndexCorrupt(f"segment file {self.name} is missing", str(self.path)) from None
            raise IndexCorrupt(f"segment file {self.name} cannot be read: {e}", str(self.path)) from None
        base = -(-(16 + hlen) // ALIGN) * ALIGN
        buf = np.frombuffer(self._mm, dtype=np.uint8)
        arrays: dict[str, np.ndarray] = {}
        if isinstance(header, dict) and "header_crc" in header:
            body = dict(header)
            if body.pop("header_crc") != header_checksum(body):
                raise IndexCorrupt(f"segment file {self.name} has a bad header (fails its checksum)", str(self.path))
        try:
            names = set(header["arrays"]) if isinstance(header, dict) else set()
            # a segment of format 2 or 3 has no big terms' frames (its header names no ``big_df``)
            absent = set() if "big_df" in header else set(BIG_ARRAYS)
            if "stored_dict" not in header:  # (nor, before format 5, a stored-fields dictionary)
                absent |= DICT_ARRAYS
            if not names >= set(ARRAY_DTYPES) - absent or not all(
                n in ARRAY_DTYPES or columns.array_dtype(n) is not None for n in names
            ):
                raise ValueError("the arrays are not this format's")
            for name, spec in header["arrays"].items():
                off, dtype, length = spec
                # never np.dtype(text from the file): it parses the text
                dt = ARRAY_DTYPES.get(name) or columns.array_dtype(name)
                if dtype != dt.str or not (isinstance(off, int) and isinstance(length, int)):
                    raise ValueError(f"array {name} is {dtype!r} at {off!r}")
                start = base + off
                end = start + dt.itemsize * length
                if end > size or off < 0 or length < 0:
                    raise IndexCorrupt(f"segment file {self.name} is truncated (array {name})", str(self.path))
                arrays[name] = buf[start:end].view(dt)
            for name in absent:  # empty: the section's CRC-32 is then what format 3 computed
                arrays.setdefault(name, np.zeros(0, dtype=ARRAY_DTYPES[name]))
            self.langs: list[str] = header["langs"]
            counts = _Counts(arrays, header)
        except (KeyError, TypeError, ValueError) as e:
            raise IndexCorrupt(f"segment file {self.name} has a bad header: {e}", str(self.path)) from None
        crcs = header.get("crc")
        if not (isinstance(crcs, dict) and all(isinstance(crcs.get(x), int) for x in SECTIONS)):
            raise IndexCorrupt(f"segment file {self.name} has a bad header: no section checksums", str(self.path))
        self._crc: dict[str, int] = crcs
        self.columns_info = header.get("columns")  # declared fields' columns: read by ``columns``
        #: the codec of the stored fields: zlib in the segments of format version 2, which name none
        self.stored_codec: str = header.get("stored", "zlib")
        if self.stored_codec not in compress.CODECS:
            bad = f"segment file {self.name} has a bad header: stored fields in {self.stored_codec!r}"
            raise IndexCorrupt(bad, str(self.path))
        self._checked: set[str] = set()  # sections whose CRC-32 passed
        self._valid: set[str] = set()  # sections whose structure passed
        self._lay: _Layout | None = None
        self._stored_dict: compress.Dictionary | bool | None = None  # see stored_dictionary (False: none)
        self._columns: dict[str, list[str]] = {}
        self._raw_columns: dict[str, tuple[bytes, np.ndarray]] = {}
        self._block_firsts: list[int] | None = None  # doc_block_first as a list, for a bisect per hit
        self._passage_views: tuple[memoryview, memoryview, memoryview, memoryview] | None = None  # see _views
        self._id_view: tuple[bytes, memoryview] | None = None  # see _id_offsets
        self.n_docs: int = counts.n_docs
        self.n_passages: int = counts.n_passages
        self._counts = counts
        self.a = arrays
        self.term_hash = arrays["term_hash"]
        self._words = {s: codec.words(arrays[f"{s}_data"]) for s in ("pid", "tf", "pos")}
        self._bytes: tuple[memoryview, memoryview] | None = None  # see _byte_views
        self._pos_views: tuple[memoryview, memoryview, memoryview] | None = None  # see _position_views
        self._uid = next(_READER_IDS)  # cache owner: unique for the process's life, unlike id()

    def check_section(self, section: str) -> None:
        """Verify a section's CRC-32 once (``IndexCorrupt`` if it fails): see ``SECTIONS``."""
        if section in self._checked:
            return
        if section_crc(self.a, section) != self._crc[section]:
            raise self._corrupt(f"{section} fail their checksum")
        self._checked.add(section)

    def _ensure(self, section: str) -> None:
        """A section's checksum and then its structure, each once (see the class docstring)."""
        self.check_section(section)
        if section in self._valid:
            return
        try:
            if section == "dictionary":
                _validate_dictionary(self.a)
            elif section == "passages":
                _validate_passages(self.a, self._counts, len(self.langs))
        except ValueError as e:
            raise self._corrupt(str(e)) from None
        self._valid.add(section)

    @property
    def _layout(self) -> _Layout:
        """The postings layout, derived from the checked dictionary on first use."""
        lay = self._lay
        if lay is None:
            self._ensure("dictionary")
            try:
                lay = _Layout(self.a, self._counts)
            except ValueError as e:
                raise self._corrupt(str(e)) from None
            self._lay = lay
        return lay

    def _positions_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``_Layout.positions``, damage as ``IndexCorrupt``."""
        try:
            return self._layout.positions(self.a)
        except ValueError as e:
            raise self._corrupt(str(e)) from None

    @property
    def p_len(self) -> np.ndarray:
        """Each passage's length in tokens (the passage table checked on first use)."""
        self._ensure("passages")
        return self.a["p_len"]

    @property
    def p_lang(self) -> np.ndarray:
        """Each passage's language code (an index into ``langs``)."""
        self._ensure("passages")
        return self.a["p_lang"]

    @property
    def p_doc(self) -> np.ndarray:
        """Each passage's local document id (ascending: a document's passages are consecutive)."""
        self._ensure("passages")
        return self.a["p_doc"]

    def lang_stats(self) -> list[tuple[int, int]]:
        """(passages, total length) per language code over every passage (deleted or not): from the
        header when it holds them (counted at write, so opening reads no passage), else summed."""
        if self._counts.lang_stats is not None:
            return list(self._counts.lang_stats)
        return lang_stats(self.p_lang, self.p_len, len(self.langs))

    def check_all(self) -> None:
        """Every section's checksum and structure, and the postings layout, now (``IndexCorrupt`` if bad)."""
        for section in SECTIONS:
            self._ensure(section)
        self._positions_layout()

    def warm(self) -> None:
        """Do now the once-per-process work a first query would pay here: ``check_all`` (the positions'
        section too, which only a phrase reads) and the stored id column. A server calls it at start."""
        self.check_all()
        self._column("doc_id")

    def prefetch_postings(self, keep_free: int) -> list[int]:
        """Decode the postings of the terms in more than ``codec.SMALL`` passages, most postings first,
        into the shared cache while each fits with more than ``keep_free`` bytes of its budget still
        free (nothing is evicted for them); returns their slots. Such a term's first read is the numpy
        (or frame) path, 25-55 us at 50k passages, and a query new to a process reads a few: a server
        pays them all at start instead. A term the cache would refuse (over an eighth of its budget) is
        skipped without decoding."""
        self.check_section("postings")
        df = self._layout.df
        big = np.flatnonzero(df > codec.SMALL)
        held = []
        for slot in big[np.argsort(-df[big], kind="stable")].tolist():
            size = DECODED.charge(_postings_bytes(int(df[slot])))
            if size > DECODED.budget // 8:
                continue
            if DECODED.room() - size <= keep_free:
                break
            self.postings(slot)
            held.append(slot)
        return held

    def held_postings(self, slots: list[int]) -> int:
        """How many of ``slots``' decoded postings the shared cache holds now."""
        return sum(DECODED.get((self._uid, "p", slot)) is not None for slot in slots)

    def prefetch_text(self, keep_free: int) -> range:
        """Inflate stored text blocks into the shared cache, in document order, while more than
        ``keep_free`` bytes of its budget are free; returns the documents now held. A server fills its
        cache at start so that memory does not climb for hours as hits touch one block after another."""
        self._ensure("passages")
        first = self.a["doc_block_first"]
        b = 0
        while b < first.shape[0] - 1 and DECODED.room() > keep_free:
            self._doc_block(b)
            if DECODED.get((self._uid, "d", b)) is None:  # not kept (over an eighth of the budget): stop
                break
            b += 1
        return range(int(first[b]) if b else 0)

    def _corrupt(self, what: str) -> IndexCorrupt:
        return IndexCorrupt(f"segment file {self.name} is damaged ({what})", str(self.path))

    # -- term dictionary ----------------------------------------------------------------------------
    def find(self, key: str, h: int | None = None) -> int:
        """The dictionary slot of ``key``, or -1."""
        if h is None:
            h = key_hash(key)
        self._ensure("dictionary")
        th = self.term_hash
        i = int(th.searchsorted(np.uint32(h)))
        kb = key.encode("utf-8")
        blob, off = self.a["term_blob"], self.a["term_off"]
        n = th.shape[0]
        while i < n and int(th[i]) == h:
            if blob[int(off[i]) : int(off[i + 1])].tobytes() == kb:
                return i
            i += 1
        return -1

    def df(self, slot: int) -> int:
        """How many passages hold the term of ``slot``."""
        return int(self._layout.df[slot])

    def postings(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """Passage ids (ascending, int64) and term frequencies (int64) of one dictionary slot."""
        got = DECODED.get((self._uid, "p", slot))
        if got is not None:
            return got  # type: ignore[return-value]
        self.check_section("postings")
        lay = self._layout
        df = int(lay.df[slot])
        b0 = int(lay.term_blk[slot])
        if lay.framed(slot):
            got = self._checked_postings(slot, df, b0, *self._frame(slot, df))
        elif df <= codec.SMALL and df <= codec.BLOCK:  # one block only: its width is the whole term's
            got = self._small_postings(slot, df, b0)
        else:
            got = self._decoded_postings(slot, df, b0)
        DECODED.put((self._uid, "p", slot), got, _postings_bytes(df))
        return got

    def _small_postings(self, slot: int, df: int, b0: int) -> tuple[np.ndarray, np.ndarray]:
        """``postings`` of a term in one block, decoded and checked with Python integers (the same checks
        and errors as ``_decoded_postings``, at a fraction of its fixed cost)."""
        lay, a = self._layout, self.a
        data = self._bytes or self._byte_views()
        gaps = codec.unpack_small(data[0], int(lay.pid_off[b0]), int(a["pid_width"][b0]), df)
        if 0 in gaps[1:]:
            raise self._corrupt("passage ids repeat")
        pids = list(itertools.accumulate(gaps))
        if pids[-1] >= self.n_passages or pids[-1] != int(a["blk_last"][b0]):
            raise self._corrupt("passage ids disagree with the skip data")
        tfs = codec.unpack_small(data[1], int(lay.tf_off[b0]), int(a["tf_width"][b0]), df)
        if sum(tfs) + df != int(lay.ttf[slot]):
            raise self._corrupt("term frequencies disagree with the dictionary")
        p, t = np.array(pids, dtype=np.int64), np.array(tfs, dtype=np.int64)
        t += 1
        p.flags.writeable = t.flags.writeable = False  # shared through the cache, like the map was
        return p, t

    def _byte_views(self) -> tuple[memoryview, memoryview]:
        """The packed passage-id and tf bytes as memoryviews (``unpack_small`` slices them)."""
        self._bytes = (memoryview(self.a["pid_data"]), memoryview(self.a["tf_data"]))
        return self._bytes

    def _frame(self, slot: int, df: int) -> tuple[np.ndarray, np.ndarray]:
        """The passage-id gaps and tf - 1 of a big term (format 4), from its zstd frame of byte planes."""
        k = int(self._layout.term_big[slot])  # type: ignore[index]
        off = self.a["big_off"]
        lo, hi = int(off[k]), int(off[k + 1])
        try:
            raw = compress.inflate(self.a["big_data"][lo:hi], 1 + 2 * codec.MAX_PLANES * df, "zstd")
        except ValueError:
            raise self._corrupt("postings frame") from None
        got = codec.from_planes(raw, df)
        if got is None:
            raise self._corrupt("postings frame")
        return got

    def _decoded_postings(self, slot: int, df: int, b0: int) -> tuple[np.ndarray, np.ndarray]:
        """``postings`` of a term of several blocks, decoded with numpy and checked."""
        lay = self._layout
        gaps = codec.unpack_group(self._words["pid"], self.a["pid_width"], lay.pid_off, b0, df).view(np.int64)
        tf1 = codec.unpack_group(self._words["tf"], self.a["tf_width"], lay.tf_off, b0, df).view(np.int64)
        return self._checked_postings(slot, df, b0, gaps, tf1)

    def _checked_postings(
        self, slot: int, df: int, b0: int, gaps: np.ndarray, tf1: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Passage ids and tfs from a term's gaps and tf - 1, checked against the skip data and ttf."""
        lay = self._layout
        if df > 1 and not gaps[1:].all():
            raise self._corrupt("passage ids repeat")
        pids = gaps.cumsum()
        nb = (df + codec.BLOCK - 1) >> codec.SHIFT
        last = self.a["blk_last"][b0 : b0 + nb]
        end = int(pids[-1])
        # each block's last id against the skip data: the last block's, then the full blocks' before it
        if end >= self.n_passages or last.shape[0] != nb or int(last[-1]) != end or not (
            pids[codec.BLOCK - 1 : df - 1 : codec.BLOCK] == last[:-1]
        ).all():
            raise self._corrupt("passage ids disagree with the skip data")
        tfs = tf1 + 1
        if int(tfs.sum()) != int(lay.ttf[slot]):
            raise self._corrupt("term frequencies disagree with the dictionary")
        pids.flags.writeable = tfs.flags.writeable = False  # shared through the cache, like the map was
        return pids, tfs

    def _positions_at(self, slot: int, first: np.ndarray, lens: np.ndarray) -> np.ndarray:
        """Positions of runs of occurrences (``first`` index within the term, ``lens`` occurrences each,
        each run one whole posting): decoded value by value, deltas undone per run, checked."""
        total = int(lens.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        self.check_section("positions")
        if total <= SMALL_POSITIONS:
            return self._few_positions(slot, first.tolist(), lens.tolist())
        run_start = lens.cumsum() - lens
        idx = np.repeat(first - run_start, lens) + np.arange(total, dtype=np.int64)
        _, pos_off, term_pblk = self._positions_layout()
        pb0 = int(term_pblk[slot])
        d = codec.unpack(
            self._words["pos"],
            self.a["pos_width"],
            pos_off,
            pb0 + (idx >> codec.SHIFT),
            idx & (codec.BLOCK - 1),
        ).view(np.int64)
        heads = run_start[lens > 0]
        later = np.ones(total, dtype=bool)
        later[heads] = False
        if not d[later].all():
            raise self._corrupt("positions repeat")
        cs = d.cumsum()
        pos = cs - np.repeat(cs[heads] - d[heads], lens[lens > 0])
        if int(pos.max()) > 0xFFFFFFFF:
            raise self._corrupt("positions out of range")
        return pos

    def _few_positions(self, slot: int, first: list[int], lens: list[int]) -> np.ndarray:
        """``_positions_at`` for a few occurrences, each value read where it lies with Python integers (the
        same checks and errors): a phrase's first look at a rare word's positions costs a numpy call's
        fixed price a value at most, instead of about fifteen numpy calls."""
        views = self._pos_views or self._position_views()
        data, widths, offs = views
        pb0 = int(self._positions_layout()[2][slot])
        out: list[int] = []
        for f, n in zip(first, lens):
            pos = 0
            for i in range(f, f + n):
                b = pb0 + (i >> codec.SHIFT)
                w = widths[b]
                bit = offs[b] * 8 + (i & (codec.BLOCK - 1)) * w
                at = bit >> 3
                d = (int.from_bytes(data[at : at + 8], "little") >> (bit & 7)) & ((1 << w) - 1)
                if d == 0 and i > f:
                    raise self._corrupt("positions repeat")
                pos += d
                out.append(pos)
        if out and max(out) > 0xFFFFFFFF:
            raise self._corrupt("positions out of range")
        return np.array(out, dtype=np.int64)

    def _position_views(self) -> tuple[memoryview, memoryview, memoryview]:
        """The packed positions' bytes, block widths and block byte offsets as memoryviews of plain ints."""
        pos_off = self._positions_layout()[1]
        self._pos_views = (
            memoryview(self.a["pos_data"]),
            _int_view(self.a["pos_width"]),
            memoryview(np.ascontiguousarray(pos_off, dtype=np.int64)).cast("B").cast("q"),
        )
        return self._pos_views

    def positions(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """(passage id, position) of every occurrence of one slot's term, in postings order."""
        pids, tfs = self.postings(slot)
        starts = self.position_starts(slot)
        return pids.repeat(tfs), self._positions_at(slot, starts, tfs)

    def positions_of(self, slot: int, passages: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(passage id, position) of one slot's term in ``passages`` only (a sorted subset of its postings).

        ``starts`` are the offsets of each posting's positions within the term (``position_starts``),
        so only the wanted passages' positions are decoded (each value is read where it lies).
        """
        pids, tfs = self.postings(slot)
        idx = pids.searchsorted(passages)
        lens = tfs[idx]
        return passages.repeat(lens), self._positions_at(slot, starts[idx], lens)

    def position_starts(self, slot: int) -> np.ndarray:
        """Where each posting's positions begin within the term's positions (exclusive cumulative tf)."""
        _, tfs = self.postings(slot)
        starts = np.zeros(tfs.shape[0], dtype=np.int64)
        np.cumsum(tfs[:-1], out=starts[1:])
        return starts

    def block_bounds(self, slot: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per postings block of a slot: last passage id (skip data), largest tf and smallest passage
        length (65535: that much or more), for block-max evaluation."""
        self.check_section("postings")
        lo, hi = int(self._layout.term_blk[slot]), int(self._layout.term_blk[slot + 1])
        return self.a["blk_last"][lo:hi], self.a["blk_max_tf"][lo:hi], self.a["blk_min_len"][lo:hi]

    def postings_blocks(self, slot: int, blocks: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(passage ids, tfs) of some postings blocks of a slot (``blocks``: block numbers within the
        term), each decoded alone: the skip data gives the passage id before a block (block-max
        evaluation reads only the blocks that can rank). From the decoded postings when cached; a term
        kept as a frame (format 4) is decoded whole (and cached, unless over an eighth of the budget)."""
        lay = self._layout
        df = int(lay.df[slot])
        got = DECODED.get((self._uid, "p", slot))
        if got is None and lay.framed(slot):
            got = self.postings(slot)  # a big term's frame is decoded whole
        if got is not None:
            pids, tfs = got  # type: ignore[misc]
            if blocks.shape[0] and (int(blocks.min()) < 0 or int(blocks.max()) << codec.SHIFT >= df):
                raise ValueError(f"blocks {blocks} out of range for a term of {df} postings")
            return [
                (pids[j << codec.SHIFT : (j + 1) << codec.SHIFT], tfs[j << codec.SHIFT : (j + 1) << codec.SHIFT])
                for j in blocks.tolist()
            ]
        self.check_section("postings")
        b0 = int(lay.term_blk[slot])
        lens = np.minimum(codec.BLOCK, df - (blocks << codec.SHIFT))
        if blocks.shape[0] and (int(blocks.min()) < 0 or int(lens.min()) <= 0):
            raise ValueError(f"blocks {blocks} out of range for a term of {df} postings")
        starts = np.cumsum(lens) - lens
        gb = b0 + blocks
        owner = np.repeat(gb, lens)
        k = np.arange(int(lens.sum()), dtype=np.int64) - np.repeat(starts, lens)
        gaps = codec.unpack(self._words["pid"], self.a["pid_width"], lay.pid_off, owner, k).view(np.int64)
        tfs = codec.unpack(self._words["tf"], self.a["tf_width"], lay.tf_off, owner, k).view(np.int64) + 1
        base = np.where(blocks > 0, self.a["blk_last"][np.maximum(gb - 1, 0)].astype(np.int64), 0)
        cs = np.cumsum(gaps)
        pids = cs - np.repeat(cs[starts] - gaps[starts] - base, lens)
        ends = starts + lens - 1
        later = k > 0
        if not np.array_equal(pids[ends], self.a["blk_last"][gb]) or not gaps[later | (owner > b0)].all():
            raise self._corrupt("passage ids disagree with the skip data")
        return [(pids[s : s + n], tfs[s : s + n]) for s, n in zip(starts.tolist(), lens.tolist())]

    def max_score_inputs(self, slot: int) -> tuple[int, int]:
        """(largest tf, smallest passage length) over a slot's postings: its BM25 score bound's inputs."""
        _, tf, ln = self.block_bounds(slot)
        return int(tf.max()), int(ln.min())

    def keys(self) -> list[str]:
        """Every term key, in dictionary order (for merges and diagnostics)."""
        self._ensure("dictionary")
        try:
            return _decode_all(self.a["term_blob"], self.a["term_off"])
        except UnicodeDecodeError:
            raise self._corrupt("term dictionary") from None

    def key_hashes64(self) -> np.ndarray:
        """``key_hash64`` of every slot's key, in dictionary order (computed once per reader)."""
        got = self._columns.get("key_hashes64")
        if got is None:
            got = np.array([key_hash64(k) for k in self.keys()], dtype=np.uint64)
            self._columns["key_hashes64"] = got  # type: ignore[assignment]
        return got  # type: ignore[return-value]

    def live_dfs(self, live: np.ndarray | None) -> np.ndarray:
        """Every slot's document frequency over the passages where ``live`` is True (all when None)."""
        if live is None:
            return self._layout.df.copy()
        slots, pids, _, _ = self.all_postings()
        return np.bincount(slots[live[pids]], minlength=self._layout.df.shape[0]).astype(np.int64)

    def all_postings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every posting in dictionary order: (slot, passage id, tf) and every position (merges, checks)."""
        return self.postings_range(0, self._layout.df.shape[0])

    def postings_range(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The postings of slots ``lo`` to ``hi`` (exclusive) in dictionary order: (slot, passage id, tf)
        per posting and every position, checked against the skip data and the term statistics. A merge
        reads a segment a range at a time, so its memory is a range's, not the segment's."""
        for section in SECTIONS:
            self._ensure(section)
        lay, a, w = self._layout, self.a, self._words
        df = lay.df[lo:hi]
        b0, b1 = int(lay.term_blk[lo]), int(lay.term_blk[hi])
        lens = lay.post_lens[b0:b1]
        gaps = _unpack_blocks(w["pid"], a["pid_width"], lay.pid_off, b0, lens).view(np.int64)
        tfs = _unpack_blocks(w["tf"], a["tf_width"], lay.tf_off, b0, lens).view(np.int64) + 1
        slots = np.repeat(np.arange(lo, hi, dtype=np.int64), df)
        first = np.cumsum(df) - df
        if lay.term_big is not None:  # (format 4) big terms' values come from their frames
            for s in np.flatnonzero(np.diff(lay.term_big[lo : hi + 1])).tolist():
                n = int(df[s])
                gaps[first[s] : first[s] + n], tf1 = self._frame(lo + s, n)
                tfs[first[s] : first[s] + n] = tf1 + 1
        # passage ids: a cumulative sum of gaps restarted at each term's first posting
        restart = np.zeros(gaps.shape[0], dtype=np.int64)
        cs = np.cumsum(gaps)
        restart[first] = cs[first] - gaps[first]
        pids = cs - np.maximum.accumulate(restart) if gaps.shape[0] else cs
        ok = pids.shape[0] == 0 or (
            int(pids.min()) >= 0
            and int(pids.max()) < self.n_passages
            and (np.diff(pids)[np.diff(slots) == 0] > 0).all()
            and int(tfs.sum()) == int(lay.ttf[lo:hi].sum())
            and np.array_equal(pids[np.cumsum(lens) - 1], self.a["blk_last"][b0:b1])
        )
        if not ok:
            raise self._corrupt("postings")
        starts = np.cumsum(tfs) - tfs
        pos_lens, pos_off, term_pblk = self._positions_layout()
        pb0, pb1 = int(term_pblk[lo]), int(term_pblk[hi])
        d = _unpack_blocks(w["pos"], a["pos_width"], pos_off, pb0, pos_lens[pb0:pb1]).view(np.int64)
        return slots, pids, tfs, self._positions_from_deltas(d, starts, tfs)

    def _positions_from_deltas(self, d: np.ndarray, starts: np.ndarray, tfs: np.ndarray) -> np.ndarray:
        if d.shape[0] == 0:
            return d
        later = np.ones(d.shape[0], dtype=bool)
        later[starts] = False
        if not d[later].all():
            raise self._corrupt("positions repeat")
        cs = np.cumsum(d)
        pos = cs - np.repeat(cs[starts] - d[starts], tfs)
        if int(pos.max()) > 0xFFFFFFFF:
            raise self._corrupt("positions out of range")
        return pos

    def surface_words(self) -> list[tuple[str, str]]:
        """(``"<lang>:<word>"``, term key) of every surface word the segment saw, sorted by word."""
        self._ensure("dictionary")
        try:
            words = _decode_all(self.a["surf_blob"], self.a["surf_off"])
        except UnicodeDecodeError:
            raise self._corrupt("surface words") from None
        keys = self.keys()
        return [(w, keys[int(s)]) for w, s in zip(words, self.a["surf_term"].tolist())]

    # -- stored fields ------------------------------------------------------------------------------
    def _inflate(
        self, data: bytes | np.ndarray, expected: int, what: str, dictionary: compress.Dictionary | None = None
    ) -> bytes:
        """Compressed ``data`` that must inflate to at most ``expected`` bytes (never more is allocated)."""
        try:
            return compress.inflate(data, expected, self.stored_codec, dictionary)
        except ValueError:
            raise self._corrupt(what) from None

    @property
    def stored_dictionary(self) -> compress.Dictionary | None:
        """(format 5) the dictionary the stored blocks were compressed with, or None (checked with the
        passage table, whose section holds it)."""
        got = self._stored_dict
        if got is None:
            self._ensure("passages")
            data = self.a["doc_dict"]
            got = self._stored_dict = compress.Dictionary(data.tobytes()) if data.shape[0] else False
        return got or None

    def stored_block(self, b: int) -> tuple[Sequence[int], bytes]:
        """Block ``b`` of stored fields inflated and not cached (a merge reads each once): ``(byte
        offsets, raw)``; the block's document ``j``'s field ``f`` (``BLOCK_FIELDS`` order) is
        ``raw[offs[k]:offs[k + 1]]`` with ``k = j * len(BLOCK_FIELDS) + f`` (``stored_layout``: where
        the blocks are)."""
        return self._doc_block(b, cache=False)

    def stored_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stored blocks as they are on disk, checked: (first document of each block and the end,
        byte offsets of each block in the data and the end, the compressed data)."""
        self._ensure("passages")
        a = self.a
        return a["doc_block_first"].astype(np.int64), a["doc_block_off"].astype(np.int64), a["doc_data"]

    def release_pages(self) -> None:
        """Let go of the file's pages this process has read (``madvise(MADV_DONTNEED)``; Linux): they
        stay in the page cache and are read again from there if touched. A merge reads each part of its
        sources once, so it calls this as it goes, and its memory does not grow to the size of its sources
        (two merges at once over 1 GB of segments held ~250 MB each of mapped pages)."""
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if advice is not None and len(self._mm):
            try:
                self._mm.madvise(advice)
            except (OSError, ValueError):
                pass  # only a hint: a system that refuses it keeps the pages mapped

    @property
    def doc_block_max(self) -> int:
        """The bound on a stored block's inflated size (the header's ``doc_block_max``)."""
        return self._counts.doc_block_max

    def column_raw(self, name: str) -> bytes:
        """A stored column (``COLUMN_FIELDS``) inflated and not cached: ``n_docs`` u32 byte lengths, then
        the UTF-8 values (what ``encode_column`` compressed)."""
        raw = self._inflate(self.a[f"{name}_z"].tobytes(), self._counts.column_sizes[name], f"stored {name}")
        n = self.n_docs
        if len(raw) < 4 * n or int(np.frombuffer(raw, dtype="<u4", count=n).sum(dtype=np.int64)) != len(raw) - 4 * n:
            raise self._corrupt(f"stored {name} lengths")
        return raw

    def _doc_block(self, b: int, cache: bool = True) -> tuple[Sequence[int], bytes]:
        got = DECODED.get((self._uid, "d", b)) if cache else None
        if got is not None:
            return got  # type: ignore[return-value]
        self._ensure("passages")  # the document blocks' offsets
        a = self.a
        lo, hi = int(a["doc_block_off"][b]), int(a["doc_block_off"][b + 1])
        m = int(a["doc_block_first"][b + 1]) - int(a["doc_block_first"][b])
        raw = self._inflate(a["doc_data"][lo:hi], self._counts.doc_block_max, "stored text", self.stored_dictionary)
        nf = len(BLOCK_FIELDS)
        head = nf * m * 4
        if len(raw) < head:
            raise self._corrupt("stored text")
        # the few lengths of a small block with Python integers (numpy's calls cost more than the sums),
        # kept as a machine array: 8 bytes an offset where a list of ints holds about 44
        offs = array("q", itertools.accumulate(struct.unpack_from(f"<{nf * m}I", raw), initial=head))
        if offs[-1] != len(raw):
            raise self._corrupt("stored text lengths")
        got = (offs, raw)
        if cache:
            DECODED.put((self._uid, "d", b), got, _block_bytes(raw, offs))
        return got

    def _column_bytes(self, name: str) -> tuple[bytes, np.ndarray]:
        """A stored column inflated (its checksum checked) with each value's byte offsets (``n + 1``)."""
        got = self._raw_columns.get(name)
        if got is None:
            raw = self._inflate(self.a[f"{name}_z"].tobytes(), self._counts.column_sizes[name], f"stored {name}")
            n = self.n_docs
            if len(raw) < 4 * n:
                raise self._corrupt(f"stored {name}")
            lengths = np.frombuffer(raw, dtype="<u4", count=n).astype(np.int64)
            offs = np.full(n + 1, 4 * n, dtype=np.int64)
            np.cumsum(lengths, out=offs[1:])
            offs[1:] += 4 * n
            if int(offs[-1]) != len(raw):
                raise self._corrupt(f"stored {name} lengths")
            got = (raw, offs)
            self._raw_columns[name] = got
        return got

    def _column(self, name: str) -> list[str]:
        got = self._columns.get(name)
        if got is None:
            raw, offs = self._column_bytes(name)
            o = offs.tolist()
            try:
                got = [raw[o[i] : o[i + 1]].decode("utf-8") for i in range(self.n_docs)]
            except UnicodeDecodeError:
                raise self._corrupt(f"stored {name}") from None
            self._columns[name] = got
            self._raw_columns.pop(name, None)
            if name == "doc_id":
                self._id_view = None
        return got

    def string(self, field: str, i: int) -> str:
        """Stored string ``field`` ("doc_id", "doc_text", ...) of document ``i``."""
        if field in COLUMN_FIELDS:
            got = self._columns.get(field)
            if got is not None:
                return got[i]
            # one value decoded, not the column: a first query shows ten ids, not a list of every one
            raw, offs = self._column_bytes(field)
            j = range(self.n_docs)[i]  # IndexError as a list's
            try:
                return raw[int(offs[j]) : int(offs[j + 1])].decode("utf-8")
            except UnicodeDecodeError:
                raise self._corrupt(f"stored {field}") from None
        fi = BLOCK_FIELDS.index(field)
        if not 0 <= i < self.n_docs:
            raise IndexError(i)
        firsts = self._block_firsts
        if firsts is None:
            self._ensure("passages")
            firsts = self._block_firsts = self.a["doc_block_first"].tolist()
        b = bisect.bisect_right(firsts, i) - 1  # a list bisect: a numpy call per hit costs more than it finds
        offs, raw = self._doc_block(b)
        j = (i - firsts[b]) * len(BLOCK_FIELDS) + fi
        try:
            return raw[offs[j] : offs[j + 1]].decode("utf-8")
        except UnicodeDecodeError:
            raise self._corrupt(f"stored {field}") from None

    def passage_row(self, pid: int) -> tuple[str, int]:
        """(document id, passage number) of passage ``pid``: what a ranked row needs of every candidate,
        read through plain-int views of the passage table and the id column's offsets (a numpy scalar
        read costs more than the rest of a row)."""
        p_doc, _, _, p_no = self._passage_views or self._views()
        doc = p_doc[pid]
        ids = self._columns.get("doc_id")  # decoded whole by ``warm``: read as it is, never inflated again
        if ids is not None:
            return ids[doc], p_no[pid]
        raw, offs = self._id_view or self._id_offsets()
        try:
            return raw[offs[doc] : offs[doc + 1]].decode("utf-8"), p_no[pid]
        except UnicodeDecodeError:
            raise self._corrupt("stored doc_id") from None

    def _views(self) -> tuple[memoryview, memoryview, memoryview, memoryview]:
        """The passage table's columns a hit reads (p_doc, p_start, p_end, p_no) as plain-int views."""
        self._ensure("passages")
        a = self.a
        views = (_int_view(a["p_doc"]), _int_view(a["p_start"]), _int_view(a["p_end"]), _int_view(a["p_no"]))
        self._passage_views = views
        return views

    def _id_offsets(self) -> tuple[bytes, memoryview]:
        """The inflated id column and its offsets as a plain-int view, kept while the column is not
        decoded whole (``_column`` drops both)."""
        got = self._id_view
        if got is None:
            raw, offs = self._column_bytes("doc_id")
            got = self._id_view = (raw, _int_view(offs))
        return got

    def passage_text(self, pid: int) -> str:
        """Passage ``pid``'s text: ``string("doc_text", p_doc[pid])[p_start[pid]:p_end[pid]]``, equal to
        it, without decoding the whole document (a hit's text, read for every hit a caller shows).

        The spans are character offsets. When the document's first ``p_end`` bytes are ASCII they are
        its first ``p_end`` characters, so the passage is those bytes sliced; otherwise only the bytes
        that can hold the first ``p_end`` characters (4 a character at most) are decoded. A long
        document (over ``LONG_DOC_BYTES``) keeps a character -> byte table every ``TEXT_STEP``
        characters in the decoded cache, so a passage deep in it decodes about its own bytes only.
        Plain ints from memoryviews and one bisect: no numpy scalar on this path."""
        p_doc, p_start, p_end, _ = self._passage_views or self._views()
        doc, lo, hi = p_doc[pid], p_start[pid], p_end[pid]
        if hi <= lo:
            return ""
        firsts = self._block_firsts
        if firsts is None:
            firsts = self._block_firsts = self.a["doc_block_first"].tolist()
        b = bisect.bisect_right(firsts, doc) - 1
        got = DECODED.get((self._uid, "d", b))  # what _doc_block returns when the block is kept
        offs, raw = got if got is not None else self._doc_block(b)  # type: ignore[misc]
        j = (doc - firsts[b]) * len(BLOCK_FIELDS)  # doc_text is field 0
        s, e = offs[j], offs[j + 1]
        try:
            if e - s > LONG_DOC_BYTES:
                return self._long_passage_text(doc, raw, s, e, lo, hi)
            head = raw[s : s + min(e - s, hi)]
            if head.isascii():  # the common case of _utf8_slice, without its call
                return head[lo:hi].decode("ascii")
            return _utf8_slice(raw, s, e, lo, hi)
        except UnicodeDecodeError:
            raise self._corrupt("stored doc_text") from None

    def _long_passage_text(self, doc: int, raw: bytes, s: int, e: int, lo: int, hi: int) -> str:
        key = (self._uid, "t", doc)
        table = DECODED.get(key)
        if table is None:
            whole = raw[s:e].decode("utf-8")
            if len(whole) == e - s:  # ASCII: characters are bytes
                table = array("q")
            else:
                marks = range(0, len(whole) + 1, TEXT_STEP)
                table = array(
                    "q", itertools.accumulate((len(whole[c - TEXT_STEP : c].encode()) for c in marks[1:]), initial=0)
                )
            DECODED.put(key, table, sys.getsizeof(table))
        if not table:
            return raw[s + min(lo, e - s) : s + min(hi, e - s)].decode("ascii")
        k = min(lo // TEXT_STEP, len(table) - 1)
        c0 = k * TEXT_STEP
        return _utf8_slice(raw, s + table[k], e, lo - c0, hi - c0)

    def strings(self, field: str) -> list[str]:
        """Every document's stored ``field``."""
        if field in COLUMN_FIELDS:
            return list(self._column(field))
        fi = BLOCK_FIELDS.index(field)
        nf = len(BLOCK_FIELDS)
        out: list[str] = []
        self._ensure("passages")
        first = self.a["doc_block_first"]
        for b in range(first.shape[0] - 1):
            offs, raw = self._doc_block(b)
            m = int(first[b + 1]) - int(first[b])
            try:
                out.extend(raw[offs[j * nf + fi] : offs[j * nf + fi + 1]].decode("utf-8") for j in range(m))
            except UnicodeDecodeError:
                raise self._corrupt(f"stored {field}") from None
        return out

    def passage_range(self, doc: int) -> range:
        """Local passage ids of document ``doc`` (its passages are consecutive)."""
        lo = int(np.searchsorted(self.p_doc, doc, side="left"))
        hi = int(np.searchsorted(self.p_doc, doc, side="right"))
        return range(lo, hi)

    def close(self) -> None:
        """Drop the arrays; the map closes once no view of it is alive."""
        self.a = {}
        self._words = {}
        self._bytes = self._pos_views = None
        self._passage_views = None
        self._id_view = None
        DECODED.drop(self._uid)


def _int_view(arr: np.ndarray) -> memoryview:
    """A 1-d unsigned array as a memoryview whose items are plain Python ints (no copy when native)."""
    dt = np.dtype(f"=u{arr.dtype.itemsize}")
    return memoryview(np.ascontiguousarray(arr, dtype=dt)).cast("B").cast(dt.char)


def _utf8_slice(raw: bytes, s: int, e: int, lo: int, hi: int) -> str:
    """``raw[s:e].decode("utf-8")[lo:hi]`` for ``0 <= lo``, ``0 <= hi``, decoding no more than the bytes
    of the first ``hi`` characters can take (``UnicodeDecodeError`` if those are not UTF-8)."""
    n = e - s
    head = raw[s : s + min(n, hi)]
    if head.isascii():  # the first hi characters are these bytes
        return head[lo:hi].decode("ascii")
    m = min(n, 4 * hi)  # a character is at most 4 bytes: the first hi end by here
    if m < n:
        for _ in range(3):  # back to the start of the character byte m is in (a character boundary)
            if raw[s + m] & 0xC0 != 0x80:
                break
            m -= 1
    return raw[s : s + m].decode("utf-8")[lo:hi]


def _unpack_blocks(
    view: np.ndarray, widths: np.ndarray, offsets: np.ndarray, first: int, lens: np.ndarray
) -> np.ndarray:
    """Every value of the consecutive blocks from ``first`` with ``lens`` values each."""
    blocks = np.repeat(np.arange(first, first + lens.shape[0], dtype=np.int64), lens)
    k = np.arange(blocks.shape[0], dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
    return codec.unpack(view, widths, offsets, blocks, k)


def _decode_all(blob: np.ndarray, off: np.ndarray) -> list[str]:
    data = blob.tobytes()
    o = off.tolist()
    return [data[o[i] : o[i + 1]].decode("utf-8") for i in range(len(o) - 1)]


def file_checksum(path: Path, size: int | None = None) -> str:
    """BLAKE2b-128 of a whole file, read in chunks (used by verify and before merges).

    A file that is not a regular file, or (given ``size``, what the commit recorded) has another size,
    is ``IndexCorrupt`` before any byte is read.
    """
    digest = hashlib.blake2b(digest_size=16)
    with open_checked(Path(path), f"index file {Path(path).name}", size=size) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
