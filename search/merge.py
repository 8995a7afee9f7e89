"""Merging segments: which segments to merge (the policy) and the merge itself.

The policy is Lucene's ``TieredMergePolicy`` in small: segments are ranked by their live size (file
bytes times the fraction of documents not deleted, tiny ones counted as ``floor_bytes``); an index may
keep about ``segments_per_tier`` segments per size tier (tiers grow by ``max_merge_at_once``), and when it
holds more, the cheapest window of at most ``max_merge_at_once`` segments of similar size is merged,
never into more than ``max_merged_bytes``. A merge's score prefers even sizes (a small skew), small
totals and many deleted documents (what it reclaims), so heavily deleted segments go first; a segment
whose deleted share passes ``deletes_pct_allowed`` is rewritten, even when the count is within budget,
once the index as a whole holds more than that share of deleted documents.

A merge reads the live documents of several segments straight from their postings (nothing is
analyzed again) and writes one segment; the writer decides when, and commits the result.
"""

from __future__ import annotations

import heapq
import io
import itertools
import json
import math
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import codec, columns, compress
from .segment import (
    ARRAY_DTYPES,
    BLOCK_FIELDS,
    COLUMN_FIELDS,
    DOC_BLOCK_BYTES,
    SAMPLE_BYTES,
    SECTIONS,
    SegmentData,
    SegmentReader,
    dictionary_sample,
    encode_postings,
    file_checksum,
    sample_indexes,
    stable_argsort_u32,
    train_dictionary,
    write_spilled_segment,
)


def merge_segment_data(sources: list[tuple[SegmentReader, np.ndarray]]) -> SegmentData:
    """One segment's data from the live documents of several segments, straight from their postings.

    No text is analyzed again: each source's token stream is rebuilt from postings and positions,
    dead passages are dropped, passage and document ids renumbered, and term ids mapped to one vocabulary.
    """
    key_ids: dict[str, int] = {}
    langs = sorted({lang for r, _ in sources for lang in r.langs})
    lang_code = {lang: i for i, lang in enumerate(langs)}
    cols: dict[str, list] = {
        k: [] for k in ("tid", "pid", "pos", "p_doc", "p_no", "p_start", "p_end", "p_len", "p_lang")
    }
    docs: dict[str, list[str]] = {
        k: [] for k in ("doc_id", "doc_text", "doc_title", "doc_meta", "doc_lang", "doc_hash")
    }
    pid_base = doc_base = 0
    surface: dict[str, str] = {}
    for reader, deleted in sources:
        a = reader.a
        live_docs = np.ones(reader.n_docs, dtype=bool)
        live_docs[deleted] = False
        live_p = live_docs[reader.p_doc]
        new_pid = np.cumsum(live_p, dtype=np.int64) - 1 + pid_base
        new_doc = np.cumsum(live_docs, dtype=np.int64) - 1 + doc_base
        seg_keys = reader.keys()
        ids = np.fromiter((key_ids.setdefault(k, len(key_ids)) for k in seg_keys), dtype=np.int64, count=len(seg_keys))
        slots, pids, tf, pos = reader.all_postings()
        tid_tok = np.repeat(ids[slots], tf)
        pid_tok = np.repeat(pids, tf)
        keep = live_p[pid_tok]
        cols["tid"].append(tid_tok[keep])
        cols["pid"].append(new_pid[pid_tok[keep]])
        cols["pos"].append(pos[keep])
        surface.update(reader.surface_words())
        cols["p_doc"].append(new_doc[reader.p_doc[live_p]])
        for name in ("p_no", "p_start", "p_end", "p_len"):
            cols[name].append(np.asarray(a[name])[live_p])
        remap = np.array([lang_code[x] for x in reader.langs], dtype=np.uint8)
        cols["p_lang"].append(remap[reader.p_lang[live_p]] if len(remap) else np.zeros(0, np.uint8))
        keep_docs = np.flatnonzero(live_docs).tolist()
        for name in docs:
            values = reader.strings(name)
            docs[name].extend(values[i] for i in keep_docs)
        pid_base += int(live_p.sum())
        doc_base += len(keep_docs)

    def cat(name: str, dtype) -> np.ndarray:
        parts = cols[name]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return SegmentData(
        keys=list(key_ids),
        tok_tid=cat("tid", np.uint32),
        tok_pid=cat("pid", np.uint32),
        tok_pos=cat("pos", np.uint32),
        p_doc=cat("p_doc", np.uint32),
        p_no=cat("p_no", np.uint32),
        p_start=cat("p_start", np.uint64),
        p_end=cat("p_end", np.uint64),
        p_len=cat("p_len", np.uint32),
        p_lang=cat("p_lang", np.uint8),
        langs=langs,
        doc_ids=docs["doc_id"],
        doc_texts=docs["doc_text"],
        doc_titles=docs["doc_title"],
        doc_metas=docs["doc_meta"],
        doc_langs=docs["doc_lang"],
        doc_hashes=docs["doc_hash"],
        surface=surface,
    )



@dataclass(frozen=True)
class SegmentSize:
    """What the policy knows of a committed segment: its name, file bytes, documents and deleted ones."""

    name: str
    size: int
    docs: int
    deleted: int = 0

    @property
    def live_fraction(self) -> float:
        return (self.docs - self.deleted) / self.docs if self.docs else 0.0

    @property
    def live_size(self) -> float:
        return self.size * self.live_fraction

    @classmethod
    def of_entry(cls, entry: dict) -> SegmentSize:
        """From a ``meta.json`` segment entry."""
        dels = entry.get("deletes")
        return cls(entry["name"], int(entry["size"]), int(entry["docs"]), int(dels["count"]) if dels else 0)


@dataclass(frozen=True)
class TieredMergePolicy:
    """Which segments to merge, as Lucene's ``TieredMergePolicy`` picks them (see the module text)."""

    segments_per_tier: int = 10
    max_merge_at_once: int = 10
    max_merged_bytes: int = 1 << 30
    floor_bytes: int = 2 << 20
    deletes_pct_allowed: float = 20.0

    def __post_init__(self) -> None:
        if self.max_merge_at_once < 2 or self.segments_per_tier < 2:
            raise ValueError("max_merge_at_once and segments_per_tier must be at least 2")

    def _floored(self, s: SegmentSize) -> float:
        return max(s.live_size, float(self.floor_bytes))

    def allowed_segments(self, segments: Sequence[SegmentSize]) -> int:
        """How many segments an index of these sizes may hold before a merge is due."""
        if not segments:
            return 0
        total = sum(s.live_size for s in segments)
        level = max(min(s.live_size for s in segments), float(self.floor_bytes))
        allowed = 0.0
        while True:
            count = total / level
            if count < self.segments_per_tier or level >= self.max_merged_bytes:
                allowed += math.ceil(count)
                break
            allowed += self.segments_per_tier
            total -= self.segments_per_tier * level
            level = min(float(self.max_merged_bytes), level * self.max_merge_at_once)
        return max(int(allowed), self.segments_per_tier)

    def _too_big(self, s: SegmentSize) -> bool:
        return s.live_size > self.max_merged_bytes / 2

    def _score(self, group: Sequence[SegmentSize], hit_too_large: bool) -> float:
        """Lower is better: skew (largest over total), the total to a small power, the live fraction squared."""
        total_before = sum(s.size for s in group)
        total_after = sum(s.live_size for s in group)
        floored = sum(self._floored(s) for s in group)
        skew = 1.0 / self.max_merge_at_once if hit_too_large else max(self._floored(s) for s in group) / floored
        live_ratio = total_after / total_before if total_before else 1.0
        return skew * max(total_after, 1.0) ** 0.05 * live_ratio**2

    def find_merges(self, segments: Sequence[SegmentSize]) -> list[list[str]]:
        """Disjoint groups of segment names to merge now (each at most ``max_merge_at_once`` wide and at
        most ``max_merged_bytes`` of live data); ``[]`` when the index is within its budget."""
        many_deleted = self._reclaim(segments)
        # too big to merge with others (unless most of it is deleted), and not counted against the budget
        eligible = sorted(
            (s for s in segments if not self._too_big(s) or s in many_deleted),
            key=lambda s: (-s.live_size, s.name),
        )
        merges: list[list[str]] = []
        budget = self.allowed_segments(eligible)
        while len(eligible) > budget:
            best: tuple[float, list[SegmentSize]] | None = None
            for start in range(len(eligible) - 1):
                group: list[SegmentSize] = []
                total = 0.0
                hit_too_large = False
                for s in eligible[start:]:
                    if len(group) >= self.max_merge_at_once:
                        break
                    if total + s.live_size > self.max_merged_bytes:
                        hit_too_large = True
                        continue  # a smaller one further down may still fit
                    group.append(s)
                    total += s.live_size
                if len(group) < 2:
                    continue
                score = self._score(group, hit_too_large)
                if best is None or score < best[0]:
                    best = (score, group)
            if best is None:
                break
            merges.append([s.name for s in best[1]])
            chosen = {s.name for s in best[1]}
            eligible = [s for s in eligible if s.name not in chosen]
            budget -= 1  # the merged segment stays in the index
        taken = {name for group in merges for name in group}
        for s in many_deleted:
            if s.name not in taken:  # reclaim the deleted documents: rewrite the segment alone
                merges.append([s.name])
                taken.add(s.name)
        return merges

    def _reclaim(self, segments: Sequence[SegmentSize]) -> list[SegmentSize]:
        """Segments to rewrite for their deleted documents: none while the index as a whole holds at most
        ``deletes_pct_allowed`` percent deleted documents (as Lucene counts); past that, the segments
        with the largest deleted share (each over the limit itself) until the index is back under it."""
        total = sum(s.docs for s in segments)
        deleted = sum(s.deleted for s in segments)
        allowed = total * self.deletes_pct_allowed / 100.0
        out: list[SegmentSize] = []
        for s in sorted(segments, key=lambda s: (-s.deleted / max(s.docs, 1), s.name)):
            if deleted <= allowed or 100.0 * s.deleted / max(s.docs, 1) <= self.deletes_pct_allowed:
                break
            out.append(s)
            deleted -= s.deleted
            allowed -= s.deleted * self.deletes_pct_allowed / 100.0
        return out

    def find_forced_merges(self, segments: Sequence[SegmentSize], max_segments: int) -> list[list[str]]:
        """One round of merges towards at most ``max_segments`` segments (``force_merge``): the smallest
        segments first, at most ``max_merge_at_once`` per merge, with no size cap (the caller asked for
        it). Call again with the result until it returns ``[]``; a segment with deletions is rewritten
        even when the count is already reached, so a force-merged index holds no deleted documents."""
        if max_segments < 1:
            raise ValueError(f"max_segments must be at least 1, not {max_segments}")
        order = sorted(segments, key=lambda s: (s.live_size, s.name))
        merges: list[list[str]] = []
        excess = len(order) - max_segments
        while excess > 0 and len(order) > 1:
            width = min(self.max_merge_at_once, excess + 1, len(order))
            group, order = order[:width], order[width:]
            merges.append([s.name for s in group])
            excess -= width - 1
        if not merges:
            merges = [[s.name] for s in order if s.deleted]
        return merges


# -- the streaming merge ------------------------------------------------------------------------------

CHUNK_TOKENS = 1 << 18  # positions decoded and re-encoded per step: with the largest term's, a merge's memory
DICT_CHUNK_TERMS = 1 << 13  # dictionary entries per source read per step (a range of the 32-bit term hash)
PASSAGE_CHUNK = 1 << 16  # passages (and documents' column values) copied per step
SPILL_BYTES = 1 << 18  # an array of a merge in progress kept in memory up to this size, then in a file


def _dtype(name: str) -> np.dtype:
    got = ARRAY_DTYPES.get(name) or columns.array_dtype(name)
    assert got is not None, name
    return got


class _Spill:
    """The arrays of a segment being merged, each appended to its own buffer, moved to a file beside the
    index once it passes ``SPILL_BYTES`` (named ``<segment>.<array>.spill``, so a crash leaves only
    ``seg_*`` files the next writer removes): small merges touch no extra file, large ones hold no array."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._buffers: dict[str, io.BytesIO] = {}
        self._files: dict[str, Path] = {}
        self._open: dict[str, io.BufferedWriter] = {}
        self._counts: dict[str, int] = {}

    def add(self, name: str, values: np.ndarray | bytes) -> None:
        dtype = _dtype(name)
        data = values if isinstance(values, bytes) else np.ascontiguousarray(values, dtype=dtype).tobytes()
        self._counts[name] = self._counts.get(name, 0) + len(data) // dtype.itemsize
        f = self._open.get(name)
        if f is not None:
            f.write(data)
            return
        buf = self._buffers.setdefault(name, io.BytesIO())
        buf.write(data)
        if buf.tell() > SPILL_BYTES:
            file = self.path.parent / f"{self.path.name}.{name}.spill"
            self._files[name] = file
            f = self._open[name] = open(file, "wb")  # noqa: SIM115  (closed in close/discard)
            f.write(buf.getbuffer())
            del self._buffers[name]

    @property
    def arrays(self) -> dict[str, tuple[Path | bytes, np.dtype, int]]:
        """Every array: its file or bytes, dtype and length (after ``close``)."""
        out: dict[str, tuple[Path | bytes, np.dtype, int]] = {}
        for name, n in self._counts.items():
            where = self._files[name] if name in self._files else self._buffers[name].getvalue()
            out[name] = (where, _dtype(name), n)
        return out

    def close(self) -> None:
        for f in self._open.values():
            f.close()
        self._open.clear()

    def discard(self) -> None:
        self.close()
        self._buffers.clear()
        for file in self._files.values():
            try:
                file.unlink()
            except OSError:
                pass


class _Source:
    """One segment being merged: which of its documents and passages live, and where they go."""

    def __init__(self, reader: SegmentReader, deleted: np.ndarray, doc_base: int, pid_base: int) -> None:
        self.reader = reader
        live_docs = np.ones(reader.n_docs, dtype=bool)
        live_docs[np.asarray(deleted, dtype=np.int64)] = False
        self.live_docs = live_docs
        self.live_p = live_docs[reader.p_doc]
        self.n_docs = int(live_docs.sum())
        self.n_passages = int(self.live_p.sum())
        self.doc_base, self.pid_base = doc_base, pid_base
        if self.n_passages == reader.n_passages:
            self.new_pid = None  # nothing deleted: passage ids shift by the base
        else:
            self.new_pid = (np.cumsum(self.live_p, dtype=np.int64) - 1 + pid_base).astype(np.uint32)
        self.out_slot = np.full(reader.a["term_hash"].shape[0], -1, dtype=np.int64)

    def pid_map(self, pids: np.ndarray) -> np.ndarray:
        return pids + self.pid_base if self.new_pid is None else self.new_pid[pids].astype(np.int64)


def merge_segments(
    path: Path,
    sources: list[tuple[SegmentReader, np.ndarray]],
    *,
    fields: dict[str, str] | None = None,
    chunk_tokens: int = CHUNK_TOKENS,
) -> tuple[int, str, int, int] | None:
    """Write one segment at ``path`` from the live documents of ``sources`` (reader, deleted local doc
    numbers), as ``write_segment(path, merge_segment_data(sources))`` would, byte for byte, but streaming,
    with one difference when no stored-fields dictionary is trained (too few documents): a source's
    stored block whose documents all live is copied compressed, not blocked again (``_merge_stored``;
    the same documents read back); with one, every block is the rebuild's too. The dictionaries are merged a hash
    range at a time, postings a range of terms (about ``chunk_tokens`` positions) at a time, passages,
    stored fields and columns in chunks, every array spilled to a file and the segment assembled from
    them. Memory is a constant plus the largest term's postings (and, per source, a byte per passage and
    a slot map per term), not the merged corpus. Declared metadata ``fields`` (``columns``) are rebuilt
    from the live documents' stored meta, held whole for that (a few bytes per document, only when
    fields are declared).
    Returns (size, checksum, documents, passages), or None when no document is live (nothing written)."""
    srcs: list[_Source] = []
    doc_base = pid_base = 0
    for reader, deleted in sources:
        src = _Source(reader, deleted, doc_base, pid_base)
        srcs.append(src)
        doc_base += src.n_docs
        pid_base += src.n_passages
    if doc_base == 0:
        return None
    for src in srcs:  # each source's checksums first, one source at a time, its pages let go after
        for section in SECTIONS:
            src.reader.check_section(section)
        src.reader.release_pages()
    spill = _Spill(path)
    try:
        postings, positions = _merge_postings(srcs, spill, chunk_tokens)
        _merge_surface(srcs, spill)
        _release(srcs)
        langs = sorted({lang for s in srcs for lang in s.reader.langs})
        _merge_passages(srcs, spill, langs)
        _release(srcs)
        metas: list[str] | None = [] if fields else None
        largest = _merge_stored(srcs, spill, doc_base, metas)  # releases each source's pages as it ends
        column_sizes = {}
        for name in COLUMN_FIELDS:
            column_sizes[name] = _merge_column(srcs, spill, name)
            _release(srcs)
        header: dict = {}
        if fields:  # declared metadata fields as columns, as ``build_arrays`` adds them
            col_arrays, header["columns"] = columns.build(fields, metas or [])
            for name, values in col_arrays.items():
                spill.add(name, values)
            del metas, col_arrays
        spill.close()
        header.update({
            "langs": langs,
            "docs": doc_base,
            "passages": pid_base,
            "postings": postings,
            "positions": positions,
            "doc_block_max": largest,
            "column_sizes": column_sizes,
            "stored": compress.CODEC,
            "big_df": codec.BIG_DF,
            "stored_dict": True,
        })
        size, checksum = write_spilled_segment(path, spill.arrays, header)
    finally:
        spill.discard()
    return size, checksum, doc_base, pid_base


def _release(srcs: list[_Source]) -> None:
    """The sources' pages read so far leave this process (``SegmentReader.release_pages``)."""
    for src in srcs:
        src.reader.release_pages()


def _dictionary_ranges(srcs: list[_Source]):
    """Every term of the merged dictionary in order, a 32-bit hash range at a time: lists of
    ``(hash, key bytes, [(source, slot), ...])`` sorted by hash, then key (the segment's order)."""
    n_terms = max((s.reader.a["term_hash"].shape[0] for s in srcs), default=0)
    n_ranges = max(1, -(-n_terms // DICT_CHUNK_TERMS))
    bounds = [(i << 32) // n_ranges for i in range(n_ranges + 1)]
    for h0, h1 in zip(bounds, bounds[1:]):
        entries: list[tuple[int, bytes, int, int]] = []
        for si, src in enumerate(srcs):
            a = src.reader.a
            th = a["term_hash"]
            lo = int(np.searchsorted(th, h0, side="left"))
            hi = int(np.searchsorted(th, h1, side="left")) if h1 < 1 << 32 else th.shape[0]
            if lo == hi:
                continue
            off = a["term_off"][lo : hi + 1].astype(np.int64)
            blob = a["term_blob"][int(off[0]) : int(off[-1])].tobytes()
            o = (off - off[0]).tolist()
            keys = [blob[o[i] : o[i + 1]] for i in range(hi - lo)]
            ttf = a["term_ttf"][lo:hi].tolist()
            entries.extend(zip(th[lo:hi].tolist(), keys, itertools.repeat(si), range(lo, hi), ttf))
        entries.sort()  # runs already sorted per source: timsort merges them
        terms: list[tuple[int, bytes, list[tuple[int, int]]]] = []
        tokens: list[int] = []
        for h, key, si, slot, ttf in entries:
            if terms and terms[-1][0] == h and terms[-1][1] == key:
                terms[-1][2].append((si, slot))
                tokens[-1] += ttf
            else:
                terms.append((h, key, [(si, slot)]))
                tokens.append(ttf)
        yield terms, tokens


def _merge_postings(srcs: list[_Source], spill: _Spill, chunk_tokens: int) -> tuple[int, int]:
    out = 0  # terms written so far (the next output slot)
    blob_end = big_end = 0
    n_post = n_pos = 0
    spill.add("term_off", np.zeros(1, np.uint32))
    spill.add("big_off", np.zeros(1, np.uint64))
    for terms, term_tokens in _dictionary_ranges(srcs):
        # runs of terms holding about chunk_tokens positions each (at least one term a run)
        token_ends = np.cumsum(term_tokens, dtype=np.int64)
        i = 0
        while i < len(terms):
            before = int(token_ends[i - 1]) if i else 0
            j = max(i + 1, int(np.searchsorted(token_ends, before + chunk_tokens, side="left")) + 1)
            j = min(j, len(terms))
            run = terms[i:j]
            post, placed = _merge_run(srcs, run)
            df = post["term_df"]
            keep = df > 0  # a term whose every occurrence was deleted leaves the dictionary
            new_slot = out + np.cumsum(keep) - 1
            for si, slots, ks in placed:
                kept = keep[ks]
                srcs[si].out_slot[slots[kept]] = new_slot[ks[kept]]
            keys = [run[k][1] for k in np.flatnonzero(keep).tolist()]
            spill.add("term_hash", np.array([run[k][0] for k in np.flatnonzero(keep).tolist()], dtype=np.uint32))
            spill.add("term_blob", b"".join(keys))
            ends = blob_end + np.cumsum([len(k) for k in keys], dtype=np.int64)
            if ends.shape[0] and int(ends[-1]) > 0xFFFFFFFF:
                raise ValueError("term dictionary too large for its offsets")
            spill.add("term_off", ends.astype(np.uint32))
            blob_end = int(ends[-1]) if ends.shape[0] else blob_end
            spill.add("term_df", df[keep])
            spill.add("term_ttf", post["term_ttf"][keep])
            for name in ("pid", "tf", "pos"):
                spill.add(f"{name}_data", post[f"{name}_data"][: -codec.PAD].tobytes())
                spill.add(f"{name}_width", post[f"{name}_width"])
            for name in ("blk_last", "blk_max_tf", "blk_min_len"):
                spill.add(name, post[name])
            spill.add("big_data", post["big_data"].tobytes())  # the run's frames, offsets made global
            spill.add("big_off", post["big_off"][1:].astype(np.int64) + big_end)
            big_end += int(post["big_data"].shape[0])
            out += int(keep.sum())
            n_post += int(df.sum(dtype=np.int64))
            n_pos += int(post["term_ttf"].sum(dtype=np.int64))
            del post
            i = j
            _release(srcs)  # this run's postings are read (the first run: checksummed whole): their pages go
    for name in ("pid", "tf", "pos"):
        spill.add(f"{name}_data", bytes(codec.PAD))
        spill.add(f"{name}_width", np.zeros(0, np.uint8))
    for name in ("term_hash", "term_blob", "term_df", "term_ttf", "blk_last", "blk_max_tf", "blk_min_len", "big_data"):
        spill.add(name, np.zeros(0, ARRAY_DTYPES[name]))  # every array exists, even with no terms
    return n_post, n_pos


def _merge_run(srcs: list[_Source], run: list[tuple[int, bytes, list[tuple[int, int]]]]):
    """The postings arrays of a run of merged terms (``encode_postings``), from each source's slot range."""
    by_src: dict[int, list[tuple[int, int]]] = {}
    for k, (_, _, where) in enumerate(run):
        for si, slot in where:
            by_src.setdefault(si, []).append((slot, k))
    parts: dict[str, list[np.ndarray]] = {"rel": [], "pid": [], "pos": [], "len": []}
    placed: list[tuple[int, np.ndarray, np.ndarray]] = []  # per source: its slots and their terms in the run
    for si in sorted(by_src):
        src = srcs[si]
        pairs = by_src[si]
        lo, hi = pairs[0][0], pairs[-1][0] + 1  # a source's slots in a run are consecutive
        assert hi - lo == len(pairs), "merged dictionary out of order"
        at = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
        ks = np.fromiter((p[1] for p in pairs), dtype=np.int64, count=len(pairs))
        rel_of = np.empty(hi - lo, dtype=np.int64)
        rel_of[at - lo] = ks
        placed.append((si, at, ks))
        slots, pids, tfs, pos = src.reader.postings_range(lo, hi)
        live = src.live_p[pids]
        tok_live = np.repeat(live, tfs)
        parts["rel"].append(np.repeat(rel_of[slots - lo], tfs)[tok_live])
        parts["pid"].append(np.repeat(src.pid_map(pids), tfs)[tok_live])
        parts["pos"].append(pos[tok_live])
        parts["len"].append(np.repeat(np.asarray(src.reader.a["p_len"])[pids], tfs)[tok_live])
    rel = np.concatenate(parts["rel"]) if parts["rel"] else np.zeros(0, np.int64)
    order = stable_argsort_u32(rel.astype(np.uint32))  # by term; sources in order keep passages ascending
    pid_s = np.concatenate(parts["pid"])[order] if parts["pid"] else np.zeros(0, np.int64)
    pos_s = np.concatenate(parts["pos"])[order] if parts["pos"] else np.zeros(0, np.int64)
    len_s = np.concatenate(parts["len"])[order] if parts["len"] else np.zeros(0, np.int64)
    rel_s = rel[order]
    del parts, rel, order
    return encode_postings(rel_s, pid_s, pos_s, len(run), lambda starts: len_s[starts]), placed


def _merge_surface(srcs: list[_Source], spill: _Spill) -> None:
    """The surface words of every source, merged by word (UTF-8 order), each naming its term's new slot."""

    def words(src: _Source):
        a = src.reader.a
        blob = a["surf_blob"]
        n = a["surf_term"].shape[0]
        for lo in range(0, n, PASSAGE_CHUNK):  # a chunk at a time: not a Python int per word of the source
            hi = min(lo + PASSAGE_CHUNK, n)
            off = a["surf_off"][lo : hi + 1].astype(np.int64)
            chunk = blob[int(off[0]) : int(off[-1])].tobytes()
            o = (off - off[0]).tolist()
            terms = src.out_slot[a["surf_term"][lo:hi].astype(np.int64)].tolist()
            for i, t in enumerate(terms):
                if t >= 0:
                    yield chunk[o[i] : o[i + 1]], t

    last = None
    end = 0
    offs, blobs, slots = [], [], []
    spill.add("surf_off", np.zeros(1, np.uint32))
    for word, slot in heapq.merge(*(words(s) for s in srcs)):
        if word == last:
            continue
        last = word
        blobs.append(word)
        end += len(word)
        offs.append(end)
        slots.append(slot)
        if len(slots) >= PASSAGE_CHUNK:
            spill.add("surf_blob", b"".join(blobs))
            spill.add("surf_off", np.array(offs, dtype=np.uint32))
            spill.add("surf_term", np.array(slots, dtype=np.uint32))
            offs, blobs, slots = [], [], []
    spill.add("surf_blob", b"".join(blobs))
    spill.add("surf_off", np.array(offs, dtype=np.uint32))
    spill.add("surf_term", np.array(slots, dtype=np.uint32))


def _merge_passages(srcs: list[_Source], spill: _Spill, langs: list[str]) -> None:
    code = {lang: i for i, lang in enumerate(langs)}
    for src in srcs:
        r = src.reader
        new_doc = np.cumsum(src.live_docs, dtype=np.int64) - 1 + src.doc_base
        remap = np.array([code[x] for x in r.langs], dtype=np.uint8)
        for lo in range(0, r.n_passages, PASSAGE_CHUNK):
            hi = min(lo + PASSAGE_CHUNK, r.n_passages)
            live = src.live_p[lo:hi]
            spill.add("p_doc", new_doc[np.asarray(r.p_doc[lo:hi], dtype=np.int64)[live]])
            for name in ("p_no", "p_start", "p_end", "p_len"):
                spill.add(name, np.asarray(r.a[name][lo:hi])[live])
            spill.add("p_lang", remap[np.asarray(r.p_lang[lo:hi])[live]] if len(remap) else np.zeros(0, np.uint8))
    for name in ("p_doc", "p_no", "p_start", "p_end", "p_len", "p_lang"):
        spill.add(name, np.zeros(0, ARRAY_DTYPES[name]))  # every array exists, even with no passages


def _stored_dictionary(srcs: list[_Source], n_docs: int):
    """The merged segment's stored-fields dictionary, trained on the live documents ``build_arrays``
    would sample from the same documents (so a streaming merge writes the in-memory merge's bytes): a
    first pass inflating the blocks that hold them."""
    wanted = iter(sample_indexes(n_docs))
    nxt = next(wanted, None)
    samples: list[bytes] = []
    nf = len(BLOCK_FIELDS)
    done = 0
    for src in srcs:
        if nxt is None:
            break
        reader, live = src.reader, src.live_docs
        block_first = reader.stored_layout()[0]
        for b in range(block_first.shape[0] - 1):
            first, end = int(block_first[b]), int(block_first[b + 1])
            n_live = int(live[first:end].sum())
            if nxt is None or done + n_live <= nxt:  # no sampled document in this block
                done += n_live
                continue
            offs, raw = reader.stored_block(b)
            for j in range(end - first):
                if not live[first + j]:
                    continue
                if done == nxt:  # (each value cut to the sample's bytes before it is copied)
                    bounds = [(offs[j * nf + f], offs[j * nf + f + 1]) for f in range(nf)]
                    samples.append(dictionary_sample(raw[lo : min(hi, lo + SAMPLE_BYTES)] for lo, hi in bounds))
                    nxt = next(wanted, None)
                done += 1
        reader.release_pages()
    return train_dictionary(samples)


def _merge_stored(srcs: list[_Source], spill: _Spill, n_docs: int, metas: list[str] | None) -> int:
    """Stored fields: the merged segment's own dictionary (format 5; ``_stored_dictionary``), then every
    live document re-blocked as ``encode_doc_blocks`` blocks them and compressed with it. Without a
    dictionary (too few documents to train one), a source's block whose documents all live is copied as
    it is, compressed (as Lucene's stored-fields merge copies clean chunks), unless it is small (under an
    eighth of ``DOC_BLOCK_BYTES`` compressed: a segment's last, partial block), a pending partial block
    written out before the next copied one; a block of another codec (format version 2's zlib) or made
    with a dictionary is never copied. Returns a bound on the largest raw block (a copied block's is its
    source's bound). ``metas``, when given, gets every live document's stored meta JSON."""
    dictionary = _stored_dictionary(srcs, n_docs) if compress.CODEC == "zstd" else None
    spill.add("doc_dict", dictionary.data if dictionary else b"")
    nf = len(BLOCK_FIELDS)
    lengths: list[int] = []
    body: list[bytes] = []
    size = 0
    done = 0
    largest = 0
    offsets, firsts = [0], [0]

    def write(packed: bytes | np.ndarray, raw_size: int) -> None:
        nonlocal largest
        largest = max(largest, raw_size)
        spill.add("doc_data", packed if isinstance(packed, bytes) else packed.tobytes())
        offsets.append(offsets[-1] + len(packed))
        firsts.append(done)

    def write_pending() -> None:  # the re-blocked documents so far, as one block
        nonlocal lengths, body, size
        block = np.array(lengths, dtype="<u4").tobytes() + b"".join(body)
        write(compress.compress(block, dictionary=dictionary), len(block))
        lengths, body, size = [], [], 0

    copy_from = DOC_BLOCK_BYTES // 8  # compressed bytes
    for src in srcs:
        reader, live = src.reader, src.live_docs
        block_first, block_off, data = reader.stored_layout()
        # (a format 2 segment's zlib blocks, and blocks of or for a dictionary, are re-blocked)
        same_codec = reader.stored_codec == compress.CODEC and dictionary is None and reader.stored_dictionary is None
        for b in range(block_first.shape[0] - 1):
            first, end = int(block_first[b]), int(block_first[b + 1])
            if same_codec and block_off[b + 1] - block_off[b] >= copy_from and live[first:end].all():
                if lengths:  # the re-blocked documents before this block end their own block
                    write_pending()
                if metas is not None:
                    offs, raw = reader.stored_block(b)
                    last = [offs[j * nf + nf - 1 : j * nf + nf + 1] for j in range(end - first)]  # the meta JSON
                    metas.extend(raw[lo:hi].decode("utf-8") for lo, hi in last)
                done += end - first
                write(data[int(block_off[b]) : int(block_off[b + 1])], reader.doc_block_max)
                continue
            offs, raw = reader.stored_block(b)
            for j in range(end - first):
                if not live[first + j]:
                    continue
                for f in range(nf):
                    k = j * nf + f
                    value = raw[offs[k] : offs[k + 1]]
                    lengths.append(len(value))
                    body.append(value)
                    size += len(value)
                if metas is not None:
                    metas.append(body[-1].decode("utf-8"))  # the last field is the meta JSON
                done += 1
                if size >= DOC_BLOCK_BYTES:
                    write_pending()
        reader.release_pages()  # its stored blocks are read
    if lengths:
        write_pending()
    assert done == n_docs, (done, n_docs)
    spill.add("doc_block_off", np.array(offsets, dtype=np.uint64))
    spill.add("doc_block_first", np.array(firsts, dtype=np.uint32))
    return largest


def _merge_column(srcs: list[_Source], spill: _Spill, name: str) -> int:
    """A column as ``encode_column`` writes it, the same bytes (all lengths, then all values: two passes
    over the sources, one source inflated at a time, the live lengths, 4 bytes a document, kept between
    them so the stream knows its size); returns its uncompressed size."""
    live_lens = []
    for src in srcs:
        raw = src.reader.column_raw(name)
        live_lens.append(np.frombuffer(raw, dtype="<u4", count=src.reader.n_docs)[src.live_docs].copy())
        del raw
    total = sum(4 * x.shape[0] + int(x.sum(dtype=np.int64)) for x in live_lens)
    z = compress.stream(total)
    for lens in live_lens:
        spill.add(f"{name}_z", z.compress(lens.tobytes()))
    del live_lens
    for src in srcs:
        raw = src.reader.column_raw(name)
        n = src.reader.n_docs
        lens = np.frombuffer(raw, dtype="<u4", count=n)
        values = np.frombuffer(raw, dtype=np.uint8, offset=4 * n)
        spill.add(f"{name}_z", z.compress(values[np.repeat(src.live_docs, lens.astype(np.int64))].tobytes()))
        del raw, lens, values
    spill.add(f"{name}_z", z.flush())
    return total


# -- merges off the commit path ---------------------------------------------------------------------


class BackgroundMerge:
    """One merge running in a child process while the writer goes on committing.

    The child verifies every source file's checksum (damage is never merged into a fresh, valid-looking
    segment), writes the merged segment at ``path`` with ``merge_segments`` and reports on a pipe; the
    writer applies the result at a later commit (``IndexWriter``), carrying over the documents deleted
    meanwhile. The child never holds the write lock, dies with its parent (a crash loses nothing: its
    files are named by no commit and the next writer removes them), and is a process, not a thread, so
    searches in the writer's process never wait for the GIL while it runs.
    """

    def __init__(self, path: Path, entries: list[dict], deleted: list[np.ndarray], fields: dict[str, str]) -> None:
        import multiprocessing  # here: `search query` never imports it

        from . import parallel  # the start method and the parent-death signal, as for indexing workers

        self.path = path
        self.entries = [dict(e) for e in entries]
        self.names = [e["name"] for e in entries]
        self.deleted = [np.asarray(d, dtype=np.int64) for d in deleted]
        method = parallel.start_method()
        if method is None:
            raise RuntimeError("no multiprocessing start method")
        ctx = multiprocessing.get_context(method)
        recv, send = ctx.Pipe(duplex=False)
        spec = [
            (str(path.parent / e["name"]), int(e["size"]), e["checksum"], d.tolist())
            for e, d in zip(self.entries, self.deleted)
        ]
        self.proc = ctx.Process(
            target=_merge_child, args=(send, str(path), spec, dict(fields)), name="telusur-merge", daemon=True
        )
        self.proc.start()
        send.close()
        self._conn = recv
        self._message: dict | None = None

    def poll(self, wait: bool = False) -> dict | None:
        """The child's report once it is done (``{"done": ...}``, ``{"corrupt": ...}``, ``{"error": ...}``,
        or ``{"died": exit code}``), else None while it runs (``wait``: block until it is done)."""
        if self._message is not None:
            return self._message
        if not wait and not self._conn.poll() and self.proc.is_alive():
            return None
        try:
            self._message = json.loads(self._conn.recv_bytes())
        except (EOFError, OSError):
            self.proc.join()
            self._message = {"died": self.proc.exitcode}
        self.proc.join()
        self._conn.close()
        return self._message

    def abort(self) -> None:
        """Stop the child (if it still runs) and remove what it wrote."""
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(10.0)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()
        self._conn.close()
        self.remove_files()

    def remove_files(self) -> None:
        for p in self.path.parent.glob(self.path.name + "*"):
            try:
                p.unlink()
            except OSError:
                pass


def _merge_child(conn, path: str, spec: list, fields: dict[str, str]) -> None:
    """The body of a background merge's process (see ``BackgroundMerge``)."""
    from .parallel import _die_with_parent, _one_line

    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the writer, which stops the merge
    try:
        sources = []
        for file, size, checksum, deleted in spec:
            if file_checksum(Path(file), size) != checksum:
                message: dict = {"corrupt": Path(file).name, "path": file}
                break
            sources.append((SegmentReader(Path(file), size), np.asarray(deleted, dtype=np.int64)))
        else:
            message = {"done": merge_segments(Path(path), sources, fields=fields)}
    except BaseException as e:  # everything, MemoryError included, is reported
        message = {"error": _one_line(e)}
    try:
        conn.send_bytes(json.dumps(message).encode("utf-8"))
    finally:
        conn.close()
