"""Filters as masks: which documents of a segment a query's metadata filters let through, never a score.

A filter is a ``FieldFilter`` or a group made only of filters (``(source:a OR source:b)``). In a group
that also has words, the filters restrict what the words match: the ``must`` filters all hold, the
``must_not`` ones exclude the documents they match, and the ``should`` ones (filters side by side)
need any one to hold. The words are scored exactly as without the filters; the evaluator multiplies
nothing, it only drops passages (``split`` hands it the scoring clauses and the mask apart).
Useful for: query evaluation (per group, per segment) and facets. Not useful for: ranking.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict

import numpy as np

from .columns import Column, segment_columns
from .errors import InvalidArgument
from .query import MUST, MUST_NOT, SHOULD, BooleanQuery, FieldFilter, Query
from .segment import SegmentReader


def is_filter(node: object) -> bool:
    """Whether ``node`` only filters: a ``FieldFilter`` or a non-empty group of filters."""
    if isinstance(node, FieldFilter):
        return True
    return isinstance(node, BooleanQuery) and bool(node.clauses) and all(is_filter(c) for _, c in node.clauses)


def has_filters(node: BooleanQuery) -> bool:
    """Whether any group of the tree holds a filter (what makes an evaluator ask for masks)."""
    stack = [node]
    while stack:
        n = stack.pop()
        for _, child in n.clauses:
            if isinstance(child, FieldFilter):
                return True
            if isinstance(child, BooleanQuery):
                stack.append(child)
    return False


def split(node: BooleanQuery) -> tuple[BooleanQuery, BooleanQuery | None]:
    """``node`` as (its scoring clauses, its filter clauses as one filter group or None); a group with
    filters is split once, memoized by its value (every search splits its groups twice: for the words
    and for the mask); a group without is returned as it is, before hashing it (a frozen dataclass
    hashes all its fields, at every depth, at each call)."""
    for _, c in node.clauses:
        if isinstance(c, (FieldFilter, BooleanQuery)) and is_filter(c):
            return _split(node)
    return node, None


@functools.lru_cache(maxsize=1024)
def _split(node: BooleanQuery) -> tuple[BooleanQuery, BooleanQuery | None]:
    scoring = tuple((o, c) for o, c in node.clauses if not is_filter(c))
    flt = tuple((o, c) for o, c in node.clauses if is_filter(c))
    return BooleanQuery(scoring), BooleanQuery(flt)


def strip(node: BooleanQuery) -> BooleanQuery:
    """``node`` without any filter, at every depth (what the words alone match)."""
    return BooleanQuery(
        tuple(
            (o, strip(c) if isinstance(c, BooleanQuery) else c) for o, c in node.clauses if not is_filter(c)
        )
    )


def check_fields(node: BooleanQuery, fields: dict[str, str]) -> None:
    """``InvalidArgument`` when a ``FieldFilter`` built in code names an undeclared field or a value its
    type cannot hold (the parser never builds one)."""
    stack = [node]
    while stack:
        n = stack.pop()
        for _, child in n.clauses:
            if isinstance(child, BooleanQuery):
                stack.append(child)
            elif isinstance(child, FieldFilter):
                kind = fields.get(child.field)
                if kind is None:
                    raise InvalidArgument(
                        f"filter on {child.field!r}, which the index does not declare (fields: {sorted(fields)})"
                    )
                want = int if kind.startswith("int") else str
                bad = [
                    v
                    for v in (child.value, child.low, child.high)
                    if v is not None and (not isinstance(v, want) or isinstance(v, bool))
                ]
                if bad or (want is str and (child.low is not None or child.high is not None)):
                    raise InvalidArgument(f"filter {child!r} does not fit field {child.field!r} of type {kind}")


def doc_mask(node: Query, reader: SegmentReader) -> np.ndarray:
    """A bool per document of the segment: whether the filter ``node`` holds for it."""
    cols = segment_columns(reader)
    return _mask(node, cols, reader.n_docs)


def _mask(node: Query, cols: dict[str, Column], n_docs: int) -> np.ndarray:
    if isinstance(node, FieldFilter):
        col = cols.get(node.field)
        if col is None:  # a segment written before the field existed holds no values of it
            return np.zeros(n_docs, dtype=bool)
        return col.docs_where(_value_mask(node, col))
    assert isinstance(node, BooleanQuery)
    must = [c for o, c in node.clauses if o == MUST]
    should = [c for o, c in node.clauses if o == SHOULD]
    must_not = [c for o, c in node.clauses if o == MUST_NOT]
    out = np.ones(n_docs, dtype=bool)
    for c in must:
        out &= _mask(c, cols, n_docs)
    if should:
        any_ = np.zeros(n_docs, dtype=bool)
        for c in should:
            any_ |= _mask(c, cols, n_docs)
        out &= any_
    for c in must_not:
        out &= ~_mask(c, cols, n_docs)
    return out


def _value_mask(f: FieldFilter, col: Column) -> np.ndarray:
    """A bool per stored value of ``col``: whether ``f`` accepts it."""
    v = col.values
    if col.is_int:
        if f.value is not None:
            return v == f.value
        ok = np.ones(v.shape[0], dtype=bool)
        if f.low is not None:
            ok &= (v >= f.low) if f.include_low else (v > f.low)
        if f.high is not None:
            ok &= (v <= f.high) if f.include_high else (v < f.high)
        return ok
    o = col.ordinal(str(f.value))
    return v == o if o >= 0 else np.zeros(v.shape[0], dtype=bool)


MASK_CACHE_BYTES = 32 << 20
_MASKS: OrderedDict[tuple, np.ndarray] = OrderedDict()
_MASKS_BYTES = 0
_MASKS_LOCK = threading.Lock()


def passage_mask(
    node: Query,
    reader: SegmentReader,
    live: np.ndarray | None = None,
    n_deleted: int = 0,
    name: str | None = None,
    lang: str | None = None,
) -> np.ndarray:
    """A bool per passage: its document passes the filter ``node`` (and is live, given ``live``; and is
    in language ``lang``, given it).

    Kept in a small LRU shared by every search (Lucene's query cache does the same for filters): the
    same filter recurs across queries (a facet a user clicked), and a segment's mask changes only with
    its deletions, which only grow, so their count (``n_deleted``) tells the versions apart. ``name``:
    ``repr(node)`` when the caller has it (hashing a query tree again for every segment costs more)."""
    global _MASKS_BYTES
    key = (reader._uid, n_deleted, repr(node) if name is None else name, lang)
    with _MASKS_LOCK:
        got = _MASKS.get(key)
        if got is not None:
            _MASKS.move_to_end(key)
            return got
    m = doc_mask(node, reader)[reader.p_doc]
    if live is not None:
        m &= live
    if lang is not None:
        m &= reader.p_lang == (reader.langs.index(lang) if lang in reader.langs else -1)
    m.flags.writeable = False
    with _MASKS_LOCK:
        if key not in _MASKS:
            _MASKS[key] = m
            _MASKS_BYTES += m.nbytes
            while _MASKS_BYTES > MASK_CACHE_BYTES and _MASKS:
                _MASKS_BYTES -= _MASKS.popitem(last=False)[1].nbytes
    return m


def mask_weight(ctx, lang: str, flt: BooleanQuery):
    """A ``weights.MaskWeight`` passing the passages of ``lang`` whose documents pass ``flt``: the clause a
    group's filters become (``FILTER`` beside words, ``MUST`` when the group has no words)."""
    from .weights import MaskWeight  # weights imports this module

    name = _cache_name(flt)  # the mask cache's key, computed once per search

    def mask(si: int) -> np.ndarray:
        seg = ctx.snap.segments[si]
        return passage_mask(flt, seg.reader, seg.live_passages, int(seg.deleted_docs.size), name, lang)

    return MaskWeight(ctx, lang, mask, label=f"filter {_describe(flt)}", key=name)


@functools.lru_cache(maxsize=1024)
def _cache_name(flt: BooleanQuery) -> str:
    """``repr(flt)``, the mask cache's key, memoized by the filter's value: a dataclass tree's repr cost
    ~40 us a search, a quarter of a filtered query at 22k passages, where a hash costs a few us."""
    return repr(flt)


def _describe(node: Query) -> str:
    """A filter as the query syntax writes it (for explanations)."""
    if isinstance(node, FieldFilter):
        if node.value is not None:
            return f"{node.field}:{node.value}"
        lo = "*" if node.low is None else node.low
        hi = "*" if node.high is None else node.high
        return f"{node.field}:{'[' if node.include_low else '{'}{lo} TO {hi}{']' if node.include_high else '}'}"
    assert isinstance(node, BooleanQuery)
    prefix = {MUST: "+", MUST_NOT: "-", SHOULD: ""}
    return "(" + " ".join(prefix.get(o, "") + _describe(c) for o, c in node.clauses) + ")"
