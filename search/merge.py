"""Merging segments: which segments to merge (the policy) and the merge itself.

A merge reads the live documents of several segments straight from their postings (nothing is
analyzed again) and writes one segment; the writer decides when, and commits the result.
"""

from __future__ import annotations

import math

import numpy as np

from .segment import SegmentData, SegmentReader


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


MERGE_FACTOR = 8  # segments of one size tier merged together


def plan_merges(entries: list[dict]) -> list[list[dict]]:
    """Groups of ``meta.json`` segment entries to merge: ``MERGE_FACTOR`` segments of one size tier
    (live documents, in powers of the factor)."""
    tiers: dict[int, list[dict]] = {}
    for e in entries:
        live = e["docs"] - (e["deletes"]["count"] if e.get("deletes") else 0)
        tiers.setdefault(int(math.log(max(live, 1), MERGE_FACTOR)), []).append(e)
    return [group for _, group in sorted(tiers.items()) if len(group) >= MERGE_FACTOR]
