"""One immutable segment on disk: term dictionary, postings (passage ids, tf, positions), passages, stored docs.

A segment is one file: an 8-byte magic, a little-endian u64 header length, a JSON header naming every
array (offset, dtype, length), then the arrays, each 64-byte aligned. ``SegmentReader`` maps the file
once and hands out numpy views, so opening costs a stat, a read of the header and an mmap. Nothing is
pickled. The writer side (``build_segment``) turns a token stream into that layout with numpy sorts.

Terms are keyed ``"<lang>:<term>"`` for text (title included) and ``"<lang>:title:<term>"`` for the
title field alone; analyzed terms never contain ":". The dictionary is sorted by a 64-bit BLAKE2b hash
of the key (ties by key), so a lookup is one ``searchsorted`` plus one byte comparison.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import IndexCorrupt
from .files import open_checked

MAGIC = b"TLSSEG01"
ALIGN = 64


def key_hash(key: str) -> int:
    """The dictionary hash of a term key (stable across processes and platforms)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")


def key_hashes(keys: list[str]) -> np.ndarray:
    """``key_hash`` of every key as a uint64 array (the digests joined and read as little-endian
    integers at once, instead of one Python int per key)."""
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(k.encode("utf-8"), digest_size=8).digest() for k in keys])
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def encode_blob(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings as one UTF-8 byte array plus ``len + 1`` offsets."""
    encoded = list(map(str.encode, strings))  # UTF-8; map keeps the loop in C (a segment holds every text)
    offsets = np.zeros(len(encoded) + 1, dtype=np.uint64)
    if encoded:
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.uint64, count=len(encoded)), out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


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
    within a passage; term ids index ``keys``.
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


def build_arrays(data: SegmentData) -> dict[str, np.ndarray]:
    """The on-disk arrays of a segment: postings grouped by term, passage ids ascending within a term."""
    tid = np.asarray(data.tok_tid, dtype=np.uint32)
    pid = np.asarray(data.tok_pid, dtype=np.uint32)
    pos = np.asarray(data.tok_pos, dtype=np.uint32)
    keys = data.keys
    used = np.zeros(len(keys), dtype=bool)
    used[tid] = True
    if not used.all():  # terms whose every occurrence was deleted (merges) leave the dictionary
        remap = np.cumsum(used, dtype=np.int64) - 1
        tid = remap[tid].astype(np.uint32)
        keys = [k for k, u in zip(keys, used.tolist()) if u]
    order = stable_argsort_u32(tid)
    tid_s, pid_s, pos_s = tid[order], pid[order], pos[order]
    del order  # temporaries go as soon as they are used: one huge document's flush peaks here
    n_tok = tid_s.shape[0]
    if n_tok:
        change = tid_s[1:] != tid_s[:-1]
        change |= pid_s[1:] != pid_s[:-1]
        starts = np.empty(int(np.count_nonzero(change)) + 1, dtype=np.int64)
        starts[0] = 0
        np.add(np.flatnonzero(change), 1, out=starts[1:])
        del change
    else:
        starts = np.zeros(0, dtype=np.int64)
    post_tid = tid_s[starts]
    post_pid = pid_s[starts].astype(np.uint32)
    post_tf = np.diff(np.append(starts, n_tok)).astype(np.uint32)
    n_terms = len(keys)
    ids = np.arange(n_terms + 1)
    post_bounds = np.searchsorted(post_tid, ids).astype(np.uint64)
    pos_bounds = np.searchsorted(tid_s, ids).astype(np.uint64)

    hashes = key_hashes(keys)
    order_t = np.argsort(hashes, kind="stable").astype(np.int64)
    sorted_h = hashes[order_t]
    if n_terms > 1 and bool((sorted_h[1:] == sorted_h[:-1]).any()):  # a 64-bit collision: ties by key
        hash_list = hashes.tolist()
        order_t = np.asarray(sorted(range(n_terms), key=lambda i: (hash_list[i], keys[i])), dtype=np.int64)
    term_blob, term_off = encode_blob([keys[i] for i in order_t])

    arrays: dict[str, np.ndarray] = {
        "term_hash": hashes[order_t] if n_terms else np.zeros(0, np.uint64),
        "term_blob": term_blob,
        "term_off": term_off,
        "term_post_lo": post_bounds[order_t] if n_terms else np.zeros(0, np.uint64),
        "term_post_hi": post_bounds[order_t + 1] if n_terms else np.zeros(0, np.uint64),
        "term_pos_lo": pos_bounds[order_t] if n_terms else np.zeros(0, np.uint64),
        "post_pid": post_pid,
        "post_tf": post_tf,
        "positions": pos_s.astype(np.uint32, copy=False),
        "p_doc": np.asarray(data.p_doc, dtype=np.uint32),
        "p_no": np.asarray(data.p_no, dtype=np.uint32),
        "p_start": np.asarray(data.p_start, dtype=np.uint64),
        "p_end": np.asarray(data.p_end, dtype=np.uint64),
        "p_len": np.asarray(data.p_len, dtype=np.uint32),
        "p_lang": np.asarray(data.p_lang, dtype=np.uint8),
    }
    for name, strings in (
        ("doc_id", data.doc_ids),
        ("doc_text", data.doc_texts),
        ("doc_title", data.doc_titles),
        ("doc_meta", data.doc_metas),
        ("doc_lang", data.doc_langs),
        ("doc_hash", data.doc_hashes),
    ):
        arrays[f"{name}_blob"], arrays[f"{name}_off"] = encode_blob(strings)
    return arrays


def write_segment(path: Path, data: SegmentData) -> tuple[int, str]:
    """Write ``data`` as a segment file (fsynced); return its size and BLAKE2b checksum."""
    arrays = build_arrays(data)
    layout: dict[str, list] = {}
    offset = 0
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        offset = -(-offset // ALIGN) * ALIGN
        layout[name] = [offset, arr.dtype.str, int(arr.shape[0])]
        offset += arr.nbytes
    header = json.dumps(
        {"arrays": layout, "langs": data.langs, "docs": len(data.doc_ids), "passages": int(len(data.p_doc))},
        sort_keys=True,
    ).encode("utf-8")
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


ARRAY_DTYPES = {
    **{name: np.dtype(np.uint64) for name in ("term_hash", "term_off", "term_post_lo", "term_post_hi")},
    **{name: np.dtype(np.uint64) for name in ("term_pos_lo", "p_start", "p_end")},
    **{name: np.dtype(np.uint32) for name in ("post_pid", "post_tf", "positions", "p_doc", "p_no", "p_len")},
    "term_blob": np.dtype(np.uint8),
    "p_lang": np.dtype(np.uint8),
    **{f"doc_{f}_blob": np.dtype(np.uint8) for f in ("id", "text", "title", "meta", "lang", "hash")},
    **{f"doc_{f}_off": np.dtype(np.uint64) for f in ("id", "text", "title", "meta", "lang", "hash")},
}


def _check_structure(a: dict[str, np.ndarray], langs: list, n_docs: int, n_passages: int) -> None:
    """Cheap consistency checks at open (lengths, offsets, ids: never the postings), so a damaged header
    or table is ``IndexCorrupt`` at once instead of an IndexError deep inside a search. ValueError if not."""
    if not (isinstance(langs, list) and all(isinstance(x, str) for x in langs)):
        raise ValueError("langs is not a list of names")
    if not (isinstance(n_docs, int) and isinstance(n_passages, int) and n_docs >= 0 and n_passages >= 0):
        raise ValueError("bad document or passage count")
    n_terms = a["term_hash"].shape[0]
    lengths = {"term_off": n_terms + 1, "post_tf": a["post_pid"].shape[0]}
    lengths.update({f"term_{x}": n_terms for x in ("post_lo", "post_hi", "pos_lo")})
    lengths.update({f"p_{x}": n_passages for x in ("doc", "no", "start", "end", "len", "lang")})
    lengths.update({f"doc_{f}_off": n_docs + 1 for f in ("id", "text", "title", "meta", "lang", "hash")})
    for name, n in lengths.items():
        if a[name].shape[0] != n:
            raise ValueError(f"array {name} has {a[name].shape[0]} entries, not {n}")
    for prefix in ("term", *(f"doc_{f}" for f in ("id", "text", "title", "meta", "lang", "hash"))):
        off = a[f"{prefix}_off"]
        if int(off[0]) != 0 or int(off[-1]) != a[f"{prefix}_blob"].shape[0] or np.any(off[1:] < off[:-1]):
            raise ValueError(f"offsets {prefix}_off do not fit {prefix}_blob")
    lo, hi = a["term_post_lo"], a["term_post_hi"]
    if n_terms and (np.any(lo > hi) or int(hi.max()) > a["post_pid"].shape[0]):
        raise ValueError("term postings bounds out of range")
    if n_terms and int(a["term_pos_lo"].max()) > a["positions"].shape[0]:
        raise ValueError("term positions bounds out of range")
    p_doc = a["p_doc"]
    if n_passages and (int(p_doc[-1]) >= n_docs or np.any(p_doc[1:] < p_doc[:-1])):
        raise ValueError("passage document ids out of order or range")
    if n_passages and int(a["p_lang"].max()) >= len(langs):
        raise ValueError("passage language codes out of range")


class SegmentReader:
    """A read-only view of one segment file through mmap; arrays are numpy views, never copies."""

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
        try:
            self.langs: list[str] = header["langs"]
            self.n_docs: int = header["docs"]
            self.n_passages: int = header["passages"]
            if set(header["arrays"]) != set(ARRAY_DTYPES):
                raise ValueError(f"arrays {sorted(header['arrays'])} are not {sorted(ARRAY_DTYPES)}")
            for name, (off, dtype, length) in header["arrays"].items():
                dt = ARRAY_DTYPES[name]  # never np.dtype(text from the file): it parses the text
                if dtype != dt.str or not (isinstance(off, int) and isinstance(length, int)):
                    raise ValueError(f"array {name} is {dtype!r} at {off!r}")
                start = base + off
                end = start + dt.itemsize * length
                if end > size or off < 0 or length < 0:
                    raise IndexCorrupt(f"segment file {self.name} is truncated (array {name})", str(self.path))
                arrays[name] = buf[start:end].view(dt)
            _check_structure(arrays, self.langs, self.n_docs, self.n_passages)
        except (KeyError, TypeError, ValueError) as e:
            raise IndexCorrupt(f"segment file {self.name} has a bad header: {e}", str(self.path)) from None
        self.a = arrays
        self._string_views: dict[str, tuple[int, memoryview, int]] = {}
        self.term_hash = arrays["term_hash"]
        self.post_pid = arrays["post_pid"]
        self.post_tf = arrays["post_tf"]
        self.p_len = arrays["p_len"]
        self.p_lang = arrays["p_lang"]
        self.p_doc = arrays["p_doc"]

    # -- term dictionary ----------------------------------------------------------------------------
    def find(self, key: str, h: int | None = None) -> int:
        """The dictionary slot of ``key``, or -1."""
        if h is None:
            h = key_hash(key)
        th = self.term_hash
        i = int(np.searchsorted(th, np.uint64(h)))
        kb = key.encode("utf-8")
        blob, off = self.a["term_blob"], self.a["term_off"]
        n = th.shape[0]
        while i < n and int(th[i]) == h:
            if blob[int(off[i]) : int(off[i + 1])].tobytes() == kb:
                return i
            i += 1
        return -1

    def postings(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """Passage ids (ascending) and term frequencies of one dictionary slot."""
        lo, hi = int(self.a["term_post_lo"][slot]), int(self.a["term_post_hi"][slot])
        pids = self.post_pid[lo:hi]
        if pids.shape[0] and int(pids.max()) >= self.n_passages:  # O(postings), as scoring them is
            raise IndexCorrupt(f"segment file {self.name} is damaged (passage id out of range)", str(self.path))
        return pids, self.post_tf[lo:hi]

    def positions(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """(passage id, position) of every occurrence of one slot's term, in postings order."""
        pids, tfs = self.postings(slot)
        lo = int(self.a["term_pos_lo"][slot])
        n = int(tfs.sum(dtype=np.int64))
        pos = self.a["positions"][lo : lo + n]
        if pos.shape[0] != n:
            raise IndexCorrupt(f"segment file {self.name} is damaged (positions out of range)", str(self.path))
        return np.repeat(pids, tfs), pos

    def positions_of(self, slot: int, passages: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(passage id, position) of one slot's term in ``passages`` only (a sorted subset of its postings).

        ``starts`` are the offsets of each posting's positions within the term (``position_starts``),
        so only the wanted passages' positions are read.
        """
        pids, tfs = self.postings(slot)
        idx = np.searchsorted(pids, passages)
        lens = tfs[idx].astype(np.int64)
        total = int(lens.sum())
        first = int(self.a["term_pos_lo"][slot]) + starts[idx]
        # index of every wanted position: each run's first index, then consecutive
        run_base = np.repeat(first - (np.cumsum(lens) - lens), lens)
        gather = run_base + np.arange(total, dtype=np.int64)
        return np.repeat(passages, lens), self.a["positions"][gather]

    def position_starts(self, slot: int) -> np.ndarray:
        """Where each posting's positions begin within the term's positions (exclusive cumulative tf)."""
        _, tfs = self.postings(slot)
        starts = np.zeros(tfs.shape[0], dtype=np.int64)
        np.cumsum(tfs[:-1], out=starts[1:])
        return starts

    def keys(self) -> list[str]:
        """Every term key, in dictionary order (for merges and diagnostics)."""
        try:
            return _decode_all(self.a["term_blob"], self.a["term_off"])
        except UnicodeDecodeError:
            raise IndexCorrupt(f"segment file {self.name} is damaged (term dictionary)", str(self.path)) from None

    # -- stored fields ------------------------------------------------------------------------------
    def string(self, field: str, i: int) -> str:
        """Stored string ``field`` ("doc_id", "doc_text", ...) of document ``i``.

        Reads straight from the map through memoryviews (plain ints, one bytes slice): this runs for
        every hit, so it avoids numpy scalars and intermediate arrays.
        """
        views = self._string_views.get(field)
        if views is None:
            blob = self.a[f"{field}_blob"]
            start = (
                blob.__array_interface__["data"][0]
                - np.frombuffer(self._mm, dtype=np.uint8).__array_interface__["data"][0]
            )
            off = memoryview(np.ascontiguousarray(self.a[f"{field}_off"], dtype=np.uint64)).cast("B").cast("Q")
            views = self._string_views[field] = (start, off, blob.shape[0])
        start, off, size = views
        lo, hi = off[i], off[i + 1]
        if not lo <= hi <= size:
            raise IndexCorrupt(f"segment file {self.name} is damaged (stored {field} offsets)", str(self.path))
        try:
            return self._mm[start + lo : start + hi].decode("utf-8")
        except UnicodeDecodeError:
            raise IndexCorrupt(f"segment file {self.name} is damaged (stored {field})", str(self.path)) from None

    def strings(self, field: str) -> list[str]:
        """Every document's stored ``field``."""
        try:
            return _decode_all(self.a[f"{field}_blob"], self.a[f"{field}_off"])
        except UnicodeDecodeError:
            raise IndexCorrupt(f"segment file {self.name} is damaged (stored {field})", str(self.path)) from None

    def passage_range(self, doc: int) -> range:
        """Local passage ids of document ``doc`` (its passages are consecutive)."""
        lo = int(np.searchsorted(self.p_doc, doc, side="left"))
        hi = int(np.searchsorted(self.p_doc, doc, side="right"))
        return range(lo, hi)

    def close(self) -> None:
        """Drop the arrays; the map closes once no view of it is alive."""
        self.a = {}


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
