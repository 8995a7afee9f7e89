"""The stored documents of an index, of this format or an older one, as plain records (``search export``).

An index filled through the API has no source files to rebuild from; exporting its live documents
as JSONL (one ``{"id", "text", "title", "lang", "meta"}`` object a line, the input ``search index``
reads) is that source. Older formats are read here only for their stored fields, by a minimal reader
that checks what it slices, so an index from before a format change can still be rebuilt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexCorrupt
from .files import read_checked
from .segment import ALIGN, MAGIC_V1
from .storage import COMPATIBLE_VERSIONS, FORMAT_VERSION, OLD_VERSIONS, read_meta

_V1_FIELDS = ("doc_id", "doc_text", "doc_title", "doc_meta", "doc_lang")


def record(doc_id: str, text: str, title: str, lang: str, meta_json: str, where: str) -> dict[str, Any]:
    """One document as a JSONL object (empty title, language and metadata left out)."""
    out: dict[str, Any] = {"id": doc_id, "text": text}
    if title:
        out["title"] = title
    if lang:
        out["lang"] = lang
    if meta_json and meta_json != "{}":
        try:
            meta = json.loads(meta_json)
        except ValueError:
            raise IndexCorrupt(f"stored metadata of {doc_id!r} in {Path(where).name} is damaged", where) from None
        if meta:
            out["meta"] = meta
    return out


def export_documents(directory: str | Path) -> Iterator[dict[str, Any]]:
    """Every live document of the index at ``directory`` (segment order), whatever its format version;
    a sharded index's documents shard after shard."""
    directory = Path(directory)
    from .sharded import ShardedIndex, is_sharded  # the full readers, only for this format

    if is_sharded(directory):
        _, shards = ShardedIndex.open(directory)._state
        for shard in shards:
            yield from _export_snapshot(shard.snapshot)
        return
    meta = read_meta(directory, versions=OLD_VERSIONS)
    if meta["format_version"] in (FORMAT_VERSION, *COMPATIBLE_VERSIONS):
        from .index import Index

        yield from _export_snapshot(Index.open(directory)._snapshot)
        return
    yield from _export_v1(directory, meta)


def _export_snapshot(snap: Any) -> Iterator[dict[str, Any]]:
    for seg in snap.segments:
        r = seg.reader
        columns = [r.strings(f) for f in _V1_FIELDS]
        where = str(r.path)
        for di in range(r.n_docs):
            if seg.live_docs is None or seg.live_docs[di]:
                yield record(*(c[di] for c in columns[:3]), columns[4][di], columns[3][di], where)


def _export_v1(directory: Path, meta: dict) -> Iterator[dict[str, Any]]:
    """Format 1: uncompressed ``doc_*_blob`` / ``doc_*_off`` arrays in each segment, u32 deletion lists."""
    segments = meta.get("segments")
    if not isinstance(segments, list):
        raise IndexCorrupt(f"meta.json of {directory} names no segments", str(directory / "meta.json"))
    for entry in segments:
        path = directory / str(entry.get("name"))
        columns = _v1_columns(path)
        n = len(columns[0])
        live = np.ones(n, dtype=bool)
        dels = entry.get("deletes")
        if dels:
            dpath = directory / str(dels.get("name"))
            try:
                deleted = np.frombuffer(read_checked(dpath, f"deletions file {dpath.name}"), dtype="<u4")
            except (FileNotFoundError, ValueError):
                raise IndexCorrupt(f"deletions file {dpath.name} cannot be read", str(dpath)) from None
            if deleted.size and int(deleted.max()) >= n:
                raise IndexCorrupt(f"deletions file {dpath.name} names documents that do not exist", str(dpath))
            live[deleted] = False
        for di in np.flatnonzero(live).tolist():
            yield record(*(c[di] for c in columns[:3]), columns[4][di], columns[3][di], str(path))


def _v1_columns(path: Path) -> list[list[str]]:
    def bad(what: str) -> IndexCorrupt:
        return IndexCorrupt(f"segment file {path.name} is damaged ({what})", str(path))

    try:
        raw = read_checked(path, f"segment file {path.name}")
    except FileNotFoundError:
        raise IndexCorrupt(f"segment file {path.name} is missing", str(path)) from None
    if len(raw) < 16 or raw[:8] != MAGIC_V1:
        raise bad("not a version 1 segment")
    hlen = int.from_bytes(raw[8:16], "little")
    try:
        header = json.loads(raw[16 : 16 + hlen].decode("utf-8"))
        arrays = header["arrays"]
        n_docs = header["docs"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise bad("header") from None
    base = -(-(16 + hlen) // ALIGN) * ALIGN
    out = []
    for name in _V1_FIELDS:
        try:
            b_off, b_dt, b_len = arrays[f"{name}_blob"]
            o_off, o_dt, o_len = arrays[f"{name}_off"]
        except (KeyError, TypeError, ValueError):
            raise bad(f"no {name}") from None
        ok = (
            b_dt == "|u1"
            and o_dt == "<u8"
            and all(isinstance(x, int) and x >= 0 for x in (b_off, b_len, o_off, o_len))
            and o_len == n_docs + 1
            and base + b_off + b_len <= len(raw)
            and base + o_off + 8 * o_len <= len(raw)
        )
        if not ok:
            raise bad(f"{name} arrays")
        blob = raw[base + b_off : base + b_off + b_len]
        offs = np.frombuffer(raw, dtype="<u8", count=o_len, offset=base + o_off).astype(np.int64)
        if o_len == 0 or int(offs[0]) != 0 or int(offs[-1]) != b_len or np.any(offs[1:] < offs[:-1]):
            raise bad(f"{name} offsets")
        o = offs.tolist()
        try:
            out.append([blob[o[i] : o[i + 1]].decode("utf-8") for i in range(n_docs)])
        except UnicodeDecodeError:
            raise bad(name) from None
    return out
