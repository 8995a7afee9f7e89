"""Declared metadata fields as per-segment columns: what filters and facets read instead of stored JSON.

An index declares its filterable fields at creation (``{"year": "int", "source": "keyword", "tags":
"keyword[]"}``, kept in the settings). Every segment then stores, per declared field, the values each
document's ``meta`` gives it, as arrays inside the segment file (so deletes, updates and merges keep
them right for free: a column row belongs to a document like its stored text does):

- ``col.<field>.off``: ``n_docs + 1`` offsets into the values (a document may have none, or several
  for a ``[]`` type; a single-valued field has at most one);
- ``col.<field>.int``: the values of an ``int`` field, each document's sorted and distinct;
- ``col.<field>.ord``, ``col.<field>.dict``, ``col.<field>.doff``: a ``keyword`` field as ordinals into
  the segment's sorted dictionary of distinct values (UTF-8 blob plus offsets).

Reading goes through ``segment_columns(reader)``, which checks every array against the others (offsets
monotone and ending at the values, ordinals inside the dictionary, the dictionary sorted and distinct,
one value at most for a single-valued field) and the CRC-32 the segment header records, so damage is
``IndexCorrupt`` naming the file, never a wrong filter. Useful for: masks of documents by value, counts
of values. Not useful for: the document's stored ``meta`` (read that from the stored fields).
"""

from __future__ import annotations

import json
import re
import threading
import weakref
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import IndexCorrupt, InvalidArgument, InvalidDocument

if TYPE_CHECKING:
    from .segment import SegmentReader

FIELD_TYPES = ("int", "keyword", "int[]", "keyword[]")
# query fields with their own meaning; a metadata field cannot take their names
RESERVED_NAMES = ("title", "lang", "text", "id")
MAX_FIELDS = 64
MAX_KEYWORD_CHARS = 1024
MAX_VALUES = 1024  # values of one document in one multi-valued field
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
PREFIX = "col."
_DTYPES = {
    "off": np.dtype("<u4"),
    "int": np.dtype("<i8"),
    "ord": np.dtype("<u4"),
    "dict": np.dtype(np.uint8),
    "doff": np.dtype("<u8"),
}


def check_fields(fields: object) -> dict[str, str]:
    """Declared fields as a plain ``{name: type}`` dict, or ``InvalidArgument`` naming what is wrong.

    Names are lower-case ASCII (``[a-z][a-z0-9_]*``, as the query syntax reads them) and not one of
    ``RESERVED_NAMES``; types are ``FIELD_TYPES``."""
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        raise InvalidArgument(f"fields must be a dict of name -> type, got {type(fields).__name__}")
    if len(fields) > MAX_FIELDS:
        raise InvalidArgument(f"at most {MAX_FIELDS} fields can be declared, got {len(fields)}")
    out: dict[str, str] = {}
    for name, kind in fields.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidArgument(
                f"field name {name!r} is not valid: use lower-case letters, digits and _, starting with a letter"
            )
        if name in RESERVED_NAMES:
            raise InvalidArgument(f"field name {name!r} is reserved by the query syntax; choose another")
        if kind not in FIELD_TYPES:
            raise InvalidArgument(f"field {name!r} has type {kind!r}; choose one of {', '.join(FIELD_TYPES)}")
        out[name] = kind
    return dict(sorted(out.items()))


def parse_field_option(text: str) -> tuple[str, str]:
    """``"year:int"`` (the CLI's ``--field``) as ``("year", "int")``; ``InvalidArgument`` when malformed."""
    name, colon, kind = text.partition(":")
    if not colon:
        raise InvalidArgument(f"--field {text!r} needs NAME:TYPE, e.g. year:int (types: {', '.join(FIELD_TYPES)})")
    name, kind = name.strip(), kind.strip()
    check_fields({name: kind})
    return name, kind


def document_values(fields: Mapping[str, str], meta: Mapping[str, Any] | None, doc_id: str = "") -> dict[str, list]:
    """Each declared field's values in a document's ``meta`` (sorted, distinct), or ``InvalidDocument``
    naming the field and the value that does not fit its type. An absent field or ``None`` has none."""
    out: dict[str, list] = {}
    for name, kind in fields.items():
        raw = None if meta is None else meta.get(name)
        if raw is None:
            out[name] = []
            continue
        multi = kind.endswith("[]")
        base = kind[:-2] if multi else kind
        items = raw if multi and isinstance(raw, list) else [raw]
        if multi and len(items) > MAX_VALUES:
            raise InvalidDocument(
                f"document {doc_id!r}: meta field {name!r} has {len(items)} values; the limit is {MAX_VALUES}"
            )
        for v in items:
            if base == "int":
                ok = isinstance(v, int) and not isinstance(v, bool) and INT_MIN <= v <= INT_MAX
                want = "an integer"
            else:
                ok = isinstance(v, str) and len(v) <= MAX_KEYWORD_CHARS
                want = f"a string of at most {MAX_KEYWORD_CHARS} characters"
            if not ok:
                what = f"{want}{' or a list of them' if multi else ''}"
                raise InvalidDocument(
                    f"document {doc_id!r}: meta field {name!r} is declared {kind}, so its value must be {what}; "
                    f"got {v!r}"
                )
        out[name] = sorted(set(items))
    return out


def build(fields: Mapping[str, str], metas: list[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The column arrays of a segment from its documents' stored meta JSON, and the header entry
    (``{"fields": ..., "crc": ...}``) the reader checks them against."""
    arrays: dict[str, np.ndarray] = {}
    parsed = [json.loads(m) if m else None for m in metas]
    for name, kind in fields.items():
        values = [document_values({name: kind}, m)[name] for m in parsed]
        counts = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        off = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(counts, out=off[1:])
        flat = [v for vs in values for v in vs]
        arrays[f"{PREFIX}{name}.off"] = off.astype(_DTYPES["off"])
        if kind.startswith("int"):
            arrays[f"{PREFIX}{name}.int"] = np.array(flat, dtype=_DTYPES["int"])
        else:
            distinct = sorted(set(flat))
            ordinal = {v: i for i, v in enumerate(distinct)}
            arrays[f"{PREFIX}{name}.ord"] = np.array([ordinal[v] for v in flat], dtype=_DTYPES["ord"])
            encoded = [v.encode("utf-8") for v in distinct]
            doff = np.zeros(len(encoded) + 1, dtype=np.int64)
            np.cumsum([len(e) for e in encoded], out=doff[1:])
            arrays[f"{PREFIX}{name}.dict"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
            arrays[f"{PREFIX}{name}.doff"] = doff.astype(_DTYPES["doff"])
    return arrays, {"fields": dict(fields), "crc": _crc(arrays)}


def _crc(arrays: Mapping[str, np.ndarray]) -> int:
    crc = 0
    for name in sorted(arrays):
        if name.startswith(PREFIX):
            crc = zlib.crc32(np.ascontiguousarray(arrays[name]).view(np.uint8), crc)
    return crc


def array_dtype(name: str) -> np.dtype | None:
    """The dtype a column array named ``name`` must have in a segment file (None: not a column array)."""
    if not name.startswith(PREFIX):
        return None
    field, _, part = name[len(PREFIX) :].rpartition(".")
    if not _NAME.match(field):
        return None
    return _DTYPES.get(part)


@dataclass(frozen=True)
class Column:
    """One field's values in one segment: ``values[offsets[d]:offsets[d + 1]]`` belong to document d.

    ``values`` are int64 integers for an ``int`` field, ordinals into ``dictionary`` for a ``keyword``
    one; ``owner`` is the document of every value."""

    kind: str
    offsets: np.ndarray
    values: np.ndarray
    owner: np.ndarray
    dictionary: tuple[str, ...] | None = None

    @property
    def is_int(self) -> bool:
        return self.dictionary is None

    def ordinal(self, value: str) -> int:
        """The ordinal of a keyword ``value`` in this segment's dictionary (-1: absent)."""
        d = self.dictionary or ()
        lo, hi = 0, len(d)
        while lo < hi:
            mid = (lo + hi) // 2
            if d[mid] < value:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(d) and d[lo] == value else -1

    def docs_where(self, value_mask: np.ndarray) -> np.ndarray:
        """A bool per document: whether any of its values is selected by ``value_mask`` (one per value)."""
        n_docs = self.offsets.shape[0] - 1
        out = np.zeros(n_docs, dtype=bool)
        out[self.owner[value_mask]] = True
        return out


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def segment_columns(reader: SegmentReader) -> dict[str, Column]:
    """Every declared field's ``Column`` of one segment, checked once and kept while the reader lives."""
    with _CACHE_LOCK:
        got = _CACHE.get(reader)
    if got is None:
        got = _read(reader)
        with _CACHE_LOCK:
            _CACHE[reader] = got
    return got


def _read(reader: SegmentReader) -> dict[str, Column]:
    info = getattr(reader, "columns_info", None) or {}

    def corrupt(what: str) -> IndexCorrupt:
        return IndexCorrupt(f"segment file {reader.name} is damaged (columns: {what})", str(reader.path))

    fields = info.get("fields", {}) if isinstance(info, dict) else None
    if not isinstance(fields, dict):
        raise corrupt("bad header")
    a = reader.a
    present = {n for n in a if n.startswith(PREFIX)}
    expected: set[str] = set()
    for name, kind in fields.items():
        if not isinstance(name, str) or not _NAME.match(name) or kind not in FIELD_TYPES:
            raise corrupt(f"unknown field {name!r}")
        parts = ("off", "int") if kind.startswith("int") else ("off", "ord", "dict", "doff")
        expected.update(f"{PREFIX}{name}.{p}" for p in parts)
    if present != expected:
        raise corrupt("arrays do not match the declared fields")
    if expected and _crc(a) != info.get("crc"):
        raise corrupt("checksum fails")
    n_docs = reader.n_docs
    out: dict[str, Column] = {}
    for name, kind in fields.items():
        off = a[f"{PREFIX}{name}.off"].astype(np.int64)
        vals_raw = a[f"{PREFIX}{name}.int" if kind.startswith("int") else f"{PREFIX}{name}.ord"]
        n_vals = vals_raw.shape[0]
        if off.shape[0] != n_docs + 1 or int(off[0]) != 0 or int(off[-1]) != n_vals or np.any(off[1:] < off[:-1]):
            raise corrupt(f"offsets of {name!r}")
        counts = np.diff(off)
        if not kind.endswith("[]") and n_docs and int(counts.max(initial=0)) > 1:
            raise corrupt(f"several values in single-valued {name!r}")
        owner = np.repeat(np.arange(n_docs, dtype=np.int64), counts)
        values = vals_raw.astype(np.int64)
        dictionary = None
        if not kind.startswith("int"):
            blob, doff = a[f"{PREFIX}{name}.dict"], a[f"{PREFIX}{name}.doff"].astype(np.int64)
            if (
                doff.shape[0] == 0

                or int(doff[0]) != 0
                or int(doff[-1]) != blob.shape[0]
                or np.any(doff[1:] < doff[:-1])
            ):
                raise corrupt(f"dictionary offsets of {name!r}")
            data = blob.tobytes()
            o = doff.tolist()
            try:
                dictionary = tuple(data[o[i] : o[i + 1]].decode("utf-8") for i in range(len(o) - 1))
            except UnicodeDecodeError:
                raise corrupt(f"dictionary of {name!r}") from None
            if any(dictionary[i] >= dictionary[i + 1] for i in range(len(dictionary) - 1)):
                raise corrupt(f"dictionary of {name!r} out of order")
            if n_vals and int(values.max()) >= len(dictionary):
                raise corrupt(f"ordinals of {name!r} out of range")
        if n_vals > 1:  # each document's values sorted and distinct
            same_doc = owner[1:] == owner[:-1]
            if np.any(same_doc & (values[1:] <= values[:-1])):
                raise corrupt(f"values of {name!r} out of order")
        for arr in (off, values, owner):
            arr.flags.writeable = False
        out[name] = Column(kind, off, values, owner, dictionary)
    return out
