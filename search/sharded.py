"""A sharded index: N ordinary indexes under one manifest, searched with global BM25 statistics.

A sharded index is a folder holding ``shards.json`` (the manifest) and one sub-folder per shard, each an
ordinary telusur index that ``Index.open`` reads. A document lives in the shard given by a stable hash of
its id (BLAKE2b, never Python's ``hash``), so the same id lands on the same shard on every run and
machine, and updates and deletes go to the shard that owns it.

The manifest is the commit point of the whole: it records every shard's commit (its ``meta.json`` as it
was committed) and the per-language statistics summed over all shards. A commit writes every shard's
commit first, keeping each shard's previous files, then replaces the manifest (write, fsync, rename), and
only then removes files no commit names. A reader opens the shard commits the manifest names, so it
never mixes shard generations of two commits, and a commit interrupted before the manifest moved is
rolled back by the next writer.

Search is Elasticsearch's ``dfs_query_then_fetch``: (1) every shard reports the document frequencies of
the query's terms (and, for queries that are more than a ranked OR of words, the languages it matches
in); (2) every shard scores with the summed statistics and returns its best rows; the coordinator merges
them by score, document id and passage number, as one index orders them; (3) stored text and snippets
are read for the merged page only. ``LocalShard`` is that protocol over an in-process shard; a shard in
another process or machine only has to answer the same three calls.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import analyzers

from . import bm25, filters, multiterm
from .bm25 import Explanation, FixedStatistics, LangStats
from .documents import Document
from .errors import (
    DocumentNotFound,
    IncompatibleIndex,
    IndexCorrupt,
    IndexNotFound,
    InvalidArgument,
    InvalidDocument,
    SearchError,
)
from .files import MAX_META_BYTES, open_checked, read_checked
from .index import (
    PARSE_CACHE_QUERIES,
    Hit,
    Index,
    cached_parse,
    check_facet_fields,
    count_facets,
    parse_with_fields,
    unfiltered_languages,
)
from .multiterm import Expansion
from .query import SHOULD, BooleanQuery, FuzzyQuery, ParsedQuery, PrefixQuery, Query, TermQuery, WildcardQuery
from .searcher import AnalyzedTerm, QueryContext, Snapshot, open_segments, query_term_keys
from .segment import SegmentReader, key_hash64
from .selection import check_count, top_rows
from .settings import IndexSettings, analyzer_versions_match, check_bm25_parameters
from .storage import COMPATIBLE_VERSIONS as INDEX_COMPATIBLE_VERSIONS
from .storage import FORMAT_VERSION as INDEX_FORMAT_VERSION
from .storage import META, WriteLock, _canonical, write_checksummed_json, write_meta
from .weights import QueryWeight, language_weights, query_languages
from .writer import BUFFER_TOKENS, IndexWriter

MANIFEST = "shards.json"
FORMAT = "telusur-sharded"
# 2: its shards' commits may be of index format 3 (stored fields in zstd); 3: of index format 4 (postings
# frames); 4: of index format 5 (stored blocks with a dictionary). An older telusur then refuses the
# manifest as another format instead of calling shards damaged
FORMAT_VERSION = 4
COMPATIBLE_VERSIONS = (3, 2, 1)  # read and written as they are; a commit writes the current version
ROUTING = "blake2b-64(utf-8 doc id), little-endian, mod shards"
MAX_SHARDS = 1024
DF_PREFIX = "dfs-"


def readable_versions() -> tuple[int, ...]:
    """The manifest versions this code reads."""
    return (FORMAT_VERSION, *COMPATIBLE_VERSIONS)


Row = tuple[float, str, int, str, int, int]  # score, doc id, passage no, lang, segment, passage id
Match = tuple[str, int, str]  # a surface word a fuzzy, prefix or wildcard word matches: word, distance, term key


def shard_of(doc_id: str, shards: int) -> int:
    """The shard that owns ``doc_id``: the 64-bit BLAKE2b of its UTF-8 bytes, little-endian, mod ``shards``."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % shards


def shard_folder(i: int) -> str:
    return f"shard-{i:03d}"


# -- the manifest ---------------------------------------------------------------------------------------


def is_sharded(path: str | Path) -> bool:
    """Whether ``path`` holds a sharded index (a manifest and no ``meta.json`` of its own)."""
    path = Path(path)
    return (path / MANIFEST).is_file() and not (path / META).exists()


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Atomically replace ``shards.json``: write with its checksum, fsync, rename, fsync the folder."""
    write_checksummed_json(directory, MANIFEST, manifest, f"{MANIFEST} of {directory}")


def read_manifest(directory: Path) -> dict[str, Any]:
    """Read and check ``shards.json``: precise errors for a missing, damaged or too-new manifest."""
    directory = Path(directory)
    if not directory.is_dir():
        raise IndexNotFound(f"no index at {directory}: the path does not exist or is not a folder")
    path = directory / MANIFEST
    try:
        raw = read_checked(path, f"{MANIFEST} of {directory}", limit=MAX_META_BYTES)
    except FileNotFoundError:
        raise IndexNotFound(f"no sharded index at {directory}: {MANIFEST} is missing") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError) as e:
        raise IndexCorrupt(f"{MANIFEST} of {directory} is damaged: {e}", str(path)) from None
    body = dict(manifest)
    stored = body.pop("checksum", None)
    if stored != hashlib.blake2b(_canonical(body), digest_size=16).hexdigest():
        raise IndexCorrupt(f"{MANIFEST} of {directory} fails its checksum (damaged)", str(path))
    if manifest.get("format") != FORMAT:
        raise IndexNotFound(f"no index at {directory}: {MANIFEST} is not a telusur sharded index manifest")
    version = manifest.get("format_version")
    if not (isinstance(version, int) and not isinstance(version, bool) and version in readable_versions()):
        raise IncompatibleIndex(
            f"sharded index at {directory} has format version {version!r};"
            f" this telusur reads versions {readable_versions()} (rebuild it with this version)"
        )
    try:
        n = int(manifest["shards"])
        if not (1 <= n <= MAX_SHARDS and len(manifest["folders"]) == n and len(manifest["commits"]) == n):
            raise ValueError("shard count")
        for folder in manifest["folders"]:
            if not isinstance(folder, str) or "/" in folder or "\\" in folder or folder in ("", ".", ".."):
                raise ValueError(f"folder {folder!r}")
        IndexSettings.from_json(manifest["settings"])
        shard_versions = [commit["format_version"] for commit in manifest["commits"]]
    except (KeyError, TypeError, ValueError) as e:
        raise IndexCorrupt(f"{MANIFEST} of {directory} is inconsistent ({e})", str(path)) from None
    index_versions = (INDEX_FORMAT_VERSION, *INDEX_COMPATIBLE_VERSIONS)
    for folder, version in zip(manifest["folders"], shard_versions):
        if not (isinstance(version, int) and not isinstance(version, bool) and version in index_versions):
            raise IncompatibleIndex(
                f"shard {folder} of the sharded index at {directory} has index format version {version!r};"
                f" this telusur reads versions {index_versions} (rebuild it with this version)"
            )
    return manifest


def _commit_files(commit: dict[str, Any]) -> set[str]:
    """The file names a shard commit needs (segments and their deletion files)."""
    names = set()
    for e in commit["segments"]:
        names.add(e["name"])
        if e.get("deletes"):
            names.add(e["deletes"]["name"])
    return names


class DfTable:
    """Document frequencies of every term key over every shard, computed at commit: a static index
    answers a query in one round (no statistics call to the shards). Sorted 64-bit key hashes (the
    segments' dictionary hash) beside live passage counts, memory-mapped from ``dfs-<generation>.npy``."""

    def __init__(self, generation: int, hashes: np.ndarray, counts: np.ndarray) -> None:
        self.generation = generation
        self.hashes = hashes
        self.counts = counts

    def df(self, key: str) -> int:
        h = np.uint64(key_hash64(key))
        i = int(np.searchsorted(self.hashes, h))
        return int(self.counts[i]) if i < self.hashes.shape[0] and self.hashes[i] == h else 0

    def dfs(self, keys: list[str]) -> dict[str, int]:
        """``df`` of every key, in one binary search of all their hashes (a query's 4 keys: about a
        quarter of the time of four ``df`` calls)."""
        if not keys:
            return {}
        h = np.array([key_hash64(k) for k in keys], dtype=np.uint64)
        n = self.hashes.shape[0]
        i = self.hashes.searchsorted(h)
        found = i < n
        i[~found] = 0
        hit = found & (self.hashes[i] == h) if n else found
        counts = np.where(hit, self.counts[i], 0) if n else np.zeros(len(keys), np.uint64)
        return dict(zip(keys, counts.tolist()))


def build_df_table(snapshots: list[Snapshot]) -> tuple[np.ndarray, np.ndarray] | None:
    """(sorted hashes, live df) over the live passages of ``snapshots``; None when two keys of a segment
    share a hash (then queries gather document frequencies from the shards instead)."""
    hashes: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    for snap in snapshots:
        for seg in snap.segments:
            # 64-bit hashes of the keys (the segment's own dictionary hash is 32-bit, too short to join
            # keys across segments without comparing them); live document frequencies from the reader
            h = seg.reader.key_hashes64()
            order = np.argsort(h, kind="stable")
            if h.shape[0] > 1 and bool(np.any(h[order][1:] == h[order][:-1])):
                return None
            c = seg.reader.live_dfs(seg.live_passages)
            hashes.append(h)
            counts.append(c)
    if not hashes:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    h = np.concatenate(hashes)
    c = np.concatenate(counts)
    order = np.argsort(h, kind="stable")
    h, c = h[order], c[order]
    if h.shape[0] == 0:
        return h, c.astype(np.uint64)
    starts = np.flatnonzero(np.concatenate(([True], h[1:] != h[:-1])))
    h, c = h[starts], np.add.reduceat(c, starts)
    keep = c > 0
    return h[keep], c[keep].astype(np.uint64)


def _write_df_table(directory: Path, generation: int, table: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    name = f"{DF_PREFIX}{generation:06d}.npy"
    path = directory / name
    buf = io.BytesIO()
    np.save(buf, np.stack([table[0], table[1]]) if table[0].shape[0] else np.zeros((2, 0), np.uint64))
    raw = buf.getvalue()
    with open(path, "wb") as f:
        f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    return {"name": name, "size": len(raw), "checksum": hashlib.blake2b(raw, digest_size=16).hexdigest()}


def _load_df_table(directory: Path, manifest: dict[str, Any]) -> DfTable | None:
    """The commit's document-frequency table, memory-mapped through ``files.open_checked``: a regular file
    of exactly the size the manifest recorded (a FIFO, a device or a grown file is refused before a byte
    is read), whose ``.npy`` header must describe a 2 x n uint64 array filling the rest of it."""
    entry = manifest.get("dfs")
    if not entry:
        return None
    name = entry["name"]
    path = directory / name
    what = f"document-frequency table {name}"
    try:
        with open_checked(path, what, size=int(entry["size"])) as f:
            try:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"unknown .npy version {version}")
            except (ValueError, OSError, SyntaxError, TypeError) as e:  # a damaged header, or one cut short
                raise IndexCorrupt(f"{what} is damaged: {e}", str(path)) from None
            offset = f.tell()
            if len(shape) != 2 or shape[0] != 2 or dtype != np.dtype(np.uint64) or fortran:
                raise IndexCorrupt(f"{what} is damaged (shape {shape}, {dtype})", str(path))
            if offset + 2 * shape[1] * 8 != int(entry["size"]):
                raise IndexCorrupt(f"{what} is damaged: its header says {shape[1]} terms, its size differs", str(path))
            # np.load opens by name (a second, unchecked open): map the checked descriptor instead
            arr = np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape) if shape[1] else None
    except FileNotFoundError:
        raise IndexCorrupt(f"{name} is missing from {directory}", str(path)) from None
    if arr is None:
        arr = np.zeros((2, 0), np.uint64)
    return DfTable(int(manifest["generation"]), arr[0], arr[1])


def _open_shard(folder: Path, commit: dict[str, Any], reuse: dict[str, SegmentReader] | None = None) -> Index:
    """An ``Index`` over one shard fixed at ``commit`` (whatever its ``meta.json`` says now)."""
    views = open_segments(folder, commit, reuse)
    for view in views:
        unknown = set(view.reader.langs) - set(analyzers.names())
        if unknown:
            names = sorted(unknown)
            raise IndexCorrupt(f"segment file {view.reader.name} names unknown languages {names}", str(folder))
    return Index(folder, commit, Snapshot(folder, commit, views))


# -- the shard protocol ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryPlan:
    """What every shard needs to know about a query, decided once by the coordinator from global
    information: the parsed query, the languages to search (of those the whole index holds), the
    language whose query stopwords drop under the others, k1 and b, and the expansions of its fuzzy,
    prefix and wildcard words chosen over every shard's words (``(lang, node) -> expansions``; None
    when it has none), which every shard scores instead of its own."""

    parsed: ParsedQuery
    langs: tuple[str, ...]
    stop: str | None
    k1: float
    b: float
    expansions: dict[tuple[str, Query], tuple[Expansion, ...]] | None = None
    #: the query and filter texts ``parsed`` was parsed from, when nothing rewrote or expanded it: a shard
    #: can parse them again (``text_form``/``from_text_form``) instead of receiving the parsed tree; a
    #: copy with another ``parsed`` must drop it (``_prepare`` does)
    source: tuple[str, str | None] | None = dataclasses.field(default=None, compare=False)

    def text_form(self, fields: dict[str, str]) -> list[Any] | None:
        """This plan as JSON values a shard turns back into it (``from_text_form``), or None when it was
        rewritten or expanded (then it travels whole). ``fields`` are those the coordinator parsed with:
        the shard parses with them too, so both hold the same tree even if its own settings differ."""
        if self.source is None or self.expansions is not None:
            return None
        return [self.source[0], self.source[1], list(self.langs), self.stop, self.k1, self.b, fields]

    @classmethod
    def from_text_form(
        cls, form: list[Any], cache: dict[tuple[str, str | None], ParsedQuery] | None = None
    ) -> QueryPlan:
        """The plan ``text_form`` describes, its query parsed again with the fields it names (or taken
        from ``cache``, the texts parsed before with those same fields)."""
        query, filter_text, langs, stop, k1, b, fields = form
        if cache is None:
            parsed = parse_with_fields(query, filter_text, fields)
        else:
            parsed = cached_parse(cache, query, filter_text, fields)
        return cls(parsed, tuple(langs), stop, k1, b, source=(query, filter_text))

    def term_keys(self, analyze: Callable[[str, str], tuple[list[str], list[int]]]) -> list[str]:
        """Every term key whose global df scoring this plan may read: the query's words' and its
        expansions'."""
        keys = query_term_keys(self.parsed.root, list(self.langs), analyze)
        for (lang, _), exps in (self.expansions or {}).items():
            keys.extend(f"{lang}:{e.term}" for e in exps)
        return list(dict.fromkeys(keys))


MULTITERM = (FuzzyQuery, PrefixQuery, WildcardQuery)


def multiterm_nodes(root: BooleanQuery) -> list[Query]:
    """The fuzzy, prefix and wildcard words of a query tree, each once, in the order they appear."""
    out: dict[Query, None] = {}
    stack: list[BooleanQuery] = [root]
    while stack:
        node = stack.pop()
        for _, child in node.clauses:
            if isinstance(child, BooleanQuery):
                stack.append(child)
            elif isinstance(child, MULTITERM):
                out[child] = None
    return list(out)


def _matched_words(root: BooleanQuery) -> BooleanQuery | None:
    """``root`` without its filters when that is a plain ranked OR of words (it then matches in a
    language exactly where one of its terms has passages, and a filter beside it only drops passages
    it matches), else None (the languages it matches in need evaluating)."""
    words = filters.strip(root)
    return words if words.clauses and _plain_or(words) else None


class LocalShard:
    """One shard in this process, fixed at one commit, answering the three calls of the protocol.

    ``statistics``: document frequencies of the query's term keys here, and where the query matches;
    ``search``: the best rows scored with given global statistics and language weights; ``fetch``:
    ``Hit`` objects for rows. Arguments and answers are plain data (``FixedStatistics.to_json`` for the
    statistics), so a shard behind a process or actor boundary answers the same calls.
    """

    def __init__(self, index: Index) -> None:
        self.index = index
        self._last = threading.local()  # this thread's phase-one context: its postings serve phase two

    @property
    def snapshot(self) -> Snapshot:
        return self.index._snapshot

    def _new_context(self, plan: QueryPlan, stats: FixedStatistics | None = None) -> QueryContext:
        """A context for ``plan``: the coordinator's expansions replace this shard's own."""
        ctx = self.index.query_context(self.snapshot, plan.stop, plan.k1, plan.b, stats)
        if plan.expansions is not None:
            ctx.expansions = plan.expansions  # type: ignore[attr-defined]
        return ctx

    def _context(self, plan: QueryPlan, stats: FixedStatistics | None = None) -> QueryContext:
        ctx = self._new_context(plan, stats)
        last = getattr(self._last, "value", None)
        if last is not None and last[0] is plan:
            ctx.share_postings(last[1])
        return ctx

    def words(self, plan: QueryPlan, texts: list[str], keys: list[str]) -> tuple[list[bool], dict[str, int]]:
        """For ``search(fuzzy=True)``: whether some segment here saw each of ``texts`` as a word (in
        any language), and the live passages here holding each term key of ``keys``."""
        ctx = self._new_context(plan)
        return [multiterm._known(ctx, t) for t in texts], {key: ctx.df(key) for key in keys}

    def expansions(self, plan: QueryPlan, nodes: list[Query]) -> list[dict[str, tuple[list[Match], int]]]:
        """Per fuzzy, prefix or wildcard word of ``nodes`` and per language of the plan: the surface
        words here it matches (word, distance, term key; the best ``MAX_EXPANSIONS``) and the live
        passages here holding its own term (a fuzzy word's analysis; 0 for others)."""
        ctx = self._new_context(plan)
        out = []
        for node in nodes:
            per_lang = {}
            for lang in plan.langs:
                found = multiterm.surface_matches(self.snapshot.segments, lang, node)  # type: ignore[arg-type]
                own = multiterm.own_term(ctx, lang, node)  # type: ignore[arg-type]
                per_lang[lang] = (
                    [(w, d, key) for w, (d, key) in found.items()],
                    ctx.df(f"{lang}:{own}") if own else 0,
                )
            out.append(per_lang)
        return out

    def facets(self, plan: QueryPlan, names: list[str]) -> dict[str, dict[str | int, int]]:
        """How many documents here match the plan, per value of each declared field of ``names``."""
        ctx = self._new_context(plan)
        self._last.value = None
        return count_facets(ctx.snap, QueryWeight(ctx, plan.parsed.root, list(plan.langs)).found(0), names)

    def frequencies(self, plan: QueryPlan) -> dict[str, int]:
        """Live passages here holding each term key the query may score (every shard derives the same
        keys from the plan): phase one without evaluating the query (dictionary lookups only)."""
        return self._frequencies(plan)[0]

    def _frequencies(self, plan: QueryPlan) -> tuple[dict[str, int], QueryContext]:
        ctx = self._new_context(plan)
        self._last.value = (plan, ctx)
        return {key: ctx.df(key) for key in plan.term_keys(ctx.analyze)}, ctx

    def statistics(self, plan: QueryPlan) -> tuple[dict[str, int], list[str]]:
        """``frequencies``, and the languages in which the query matches a passage here (which takes
        evaluating a query that is more than a ranked OR of words over several languages)."""
        dfs, ctx = self._frequencies(plan)
        langs = list(plan.langs)
        root = plan.parsed.root
        words = _matched_words(root)
        if len(langs) < 2:
            matched = langs  # one language weighs 1 whether it matches or not: nothing to evaluate
        elif words is not None:
            # a ranked OR of words matches where one of the terms it scores has a posting: no evaluation
            matched = [
                lg
                for lg in langs
                if any(isinstance(c, AnalyzedTerm) and ctx.df(f"{lg}:{c.term}") for _, c in ctx.clauses(words, lg))
            ]
        else:
            # the languages the query matches in, and those its words match in without its filters (a
            # filter changes no score: Index.search weighs the languages as unfiltered_languages does)
            matched = QueryWeight(ctx, root, langs).matching_languages()
            rest = [lg for lg in langs if lg not in matched]
            if rest and filters.has_filters(root):
                matched = sorted(set(matched) | set(QueryWeight(ctx, filters.strip(root), rest).matching_languages()))
        return dfs, matched

    def search(
        self, plan: QueryPlan, stats: FixedStatistics, weights: dict[str, float], need: int, per_document: bool
    ) -> list[Row]:
        """This shard's best ``need`` rows scored with the global ``stats`` and language ``weights``."""
        ctx = self._context(plan, stats)
        ctx.per_document = per_document
        found = QueryWeight(ctx, plan.parsed.root, list(plan.langs)).found(need)
        return top_rows(ctx.snap, found, weights, need, per_document)

    def search_matched(
        self, plan: QueryPlan, stats: FixedStatistics, need: int, per_document: bool
    ) -> tuple[list[str], list[Row], list[Row] | None]:
        """Both phases in one call, for a query that must be evaluated to know the languages it matches
        in (global ``stats`` known beforehand): the languages it matches here, this shard's best rows
        weighed for those languages (``language_weights`` of them) and, when the query searches other
        languages too and that changes these languages' weights, its best rows weighed for all of them
        (else None). The index's weights are those of the languages some shard matches in, which in an
        index of two languages are this shard's or all: ``matched_rows`` picks the rows ranked under
        them, so no row is rescaled (a product can round two scores one ulp apart to a tie that one
        index breaks by document id and passage, after the shard chose)."""
        ctx = self._context(plan, stats)
        ctx.per_document = per_document
        langs = list(plan.langs)
        found = QueryWeight(ctx, plan.parsed.root, langs).found(need)
        matched = [lg for lg in langs if lg in unfiltered_languages(ctx, plan.parsed, langs, found)]
        if not found:
            return matched, [], None
        weights = language_weights(plan.parsed, matched)
        rows = top_rows(ctx.snap, found, weights, need, per_document)
        if len(matched) == len(langs):
            return matched, rows, None
        every = language_weights(plan.parsed, langs)
        if all(every[lg] == weights[lg] for lg in matched):
            return matched, rows, None
        return matched, rows, top_rows(ctx.snap, found, every, need, per_document)

    def fetch(self, plan: QueryPlan, rows: list[Row]) -> list[Hit]:
        """Hits for rows this shard returned (stored text and snippets are read lazily, for these only)."""
        ctx = self._context(plan)
        ctx.mark_dropped(plan.parsed.root, list(plan.langs))  # highlights leave out what ranking dropped
        self._last.value = None
        return self.index._hits(ctx.snap, ctx, plan.parsed, rows)

    def explain(
        self, plan: QueryPlan, stats: FixedStatistics, weights: dict[str, float], doc_id: str, passage: int
    ) -> Explanation:
        """``Index.explain`` of a passage here, with the global statistics and language weights."""
        self._last.value = None
        decided = (list(plan.langs), plan.stop)
        return self.index._explain(
            plan.parsed, doc_id, passage, plan.k1, plan.b, decided, stats, weights, plan.expansions
        )


def languages_need_evaluating(plan: QueryPlan) -> bool:
    """Whether the languages ``plan`` matches in can only be known by evaluating it: a query over
    several languages that is more than a ranked OR of words (a phrase, a boolean or field query)."""
    return len(plan.langs) > 1 and _matched_words(plan.parsed.root) is None


def matched_rows(
    plan: QueryPlan, answers: dict[int, tuple[list[str], list[Row], list[Row] | None]]
) -> tuple[dict[str, float], dict[int, list[Row]], list[int]]:
    """The index's language weights for a query whose shards answered ``search_matched`` (those of the
    union of the languages they matched in), each shard's rows ranked under them, and the shards to
    search again with them: those whose languages are neither the union nor all the query's, which
    only an index of three or more languages can have."""
    matched = {lg for m, _, _ in answers.values() for lg in m}
    weights = language_weights(plan.parsed, [lg for lg in plan.langs if lg in matched])
    rows: dict[int, list[Row]] = {}
    redo: list[int] = []
    if not weights:
        return weights, rows, redo
    for i, (m, own, every) in answers.items():
        if not own or set(m) == matched:
            rows[i] = own
        elif len(matched) == len(plan.langs):
            rows[i] = own if every is None else every
        else:
            redo.append(i)
    return weights, rows, redo


def fetched_rows(own: list[Row], every: list[Row] | None) -> list[Row]:
    """The rows whose hits a ``search_matched`` answer that fetches carries, in order: its own rows,
    then those of ``every`` (the rows under all languages' weights) for passages not among them."""
    if not every:
        return own
    have = {(r[1], r[2]) for r in own}
    return own + [r for r in every if (r[1], r[2]) not in have]


def _plain_or(root: BooleanQuery) -> bool:
    """Whether ``root`` is only bare words (a ranked OR): then it matches in a language exactly when one
    of its terms there has df > 0, and the matching languages need no shard round."""
    return all(occur == SHOULD and isinstance(c, TermQuery) and c.field is None for occur, c in root.clauses)


class SearchResult(list):
    """The hits of a sharded search (a list of ``Hit``), with whether every shard answered.

    ``partial`` is True when a shard failed or timed out (shards on Ray): the hits are then the exact
    ranking of the shards that answered, scored with the global statistics, and ``missing_shards``
    names the shards whose hits are absent. In process every shard answers: never partial.
    """

    def __init__(self, hits: Iterable[Hit] = (), missing_shards: Iterable[int] = ()) -> None:
        super().__init__(hits)
        self.missing_shards: list[int] = sorted(set(missing_shards))

    @property
    def partial(self) -> bool:
        return bool(self.missing_shards)


class DetachedHit(Hit):
    """A ``Hit`` whose stored fields were read where its shard lives (another process or machine) and
    travelled as plain data (``hit_state``); its snippet is made here on first access, as a local
    ``Hit`` makes it, from the text, the hit's analyzer and the query terms to highlight."""

    __slots__ = ()

    def __init__(self, state: dict[str, Any], analyzer: analyzers.Analyzer) -> None:
        self.doc_id = state["doc_id"]
        self.passage = int(state["passage"])
        self.score = float(state["score"])
        self.lang = state["lang"]
        self._snap, self._si, self._pid = None, -1, -1  # type: ignore[assignment]
        self._terms = (frozenset(state["terms"]), analyzer)
        self._cache = {"text": state["text"], "title": state["title"], "meta": state["meta"]}

    @property
    def title(self) -> str:
        return self._cache["title"]

    @property
    def meta(self) -> dict[str, Any]:
        return self._cache["meta"]


def hit_state(hit: Hit) -> dict[str, Any]:
    """What a ``DetachedHit`` needs: the stored fields read now and the terms to highlight (the snippet
    is made where the hit is read, only if it is)."""
    return {
        "doc_id": hit.doc_id,
        "passage": hit.passage,
        "score": hit.score,
        "lang": hit.lang,
        "title": hit.title,
        "text": hit.text,
        "meta": hit.meta,
        "terms": sorted(hit._highlighting()[0]),
    }


def sum_frequencies(parts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Every shard's document frequencies summed per term key (a passage lives in one shard)."""
    dfs: dict[str, int] = {}
    for part in parts:
        for key, n in part.items():
            dfs[key] = dfs.get(key, 0) + n
    return dfs


def sum_facets(parts: Iterable[dict[str, dict[str | int, int]]], names: list[str]) -> dict[str, dict[str | int, int]]:
    """Every shard's facet counts summed (a document lives in one shard: the counts of one index), most
    frequent first, then by value, as ``Index.facets`` orders them."""
    totals: dict[str, dict[str | int, int]] = {name: {} for name in names}
    for part in parts:
        for name in names:
            t = totals[name]
            for value, n in part.get(name, {}).items():
                t[value] = t.get(value, 0) + n
    return {name: dict(sorted(t.items(), key=lambda kv: (-kv[1], kv[0]))) for name, t in totals.items()}


#: ``ask(method, *args)``: every shard's answer to ``method`` (in shard order) and the shards that did not answer
Ask = Callable[..., tuple[list[Any], list[int]]]


def local_ask(shards: list[LocalShard]) -> Ask:
    """The ``Ask`` of shards in this process (every shard answers)."""

    def ask(method: str, *args: Any) -> tuple[list[Any], list[int]]:
        return [getattr(sh, method)(*args) for sh in shards], []

    return ask


def merge_rows(per_shard: dict[int, list[Row]], offset: int, need: int) -> list[tuple[Row, int]]:
    """The page ``[offset:need]`` of every shard's rows merged as one index orders them (score, then
    document id, then passage number), each with its shard."""
    rows = [(row, i) for i, got in per_shard.items() for row in got]
    rows.sort(key=lambda x: (-x[0][0], x[0][1], x[0][2]))
    return rows[offset:need]


# -- the sharded index ----------------------------------------------------------------------------------


class ShardedIndex:
    """N indexes behind one manifest, searched and written like one ``Index``; scores equal those of a
    single index holding every document (the shards score with statistics summed over all of them)."""

    #: answer from the document frequencies precomputed at commit when the query allows (one round)
    one_round: bool = True

    def __init__(self, path: Path, manifest: dict[str, Any], shards: list[Index]) -> None:
        self.path = path
        self.settings = IndexSettings.from_json(manifest["settings"])
        self._state = (manifest, [LocalShard(s) for s in shards])
        self._dfs = _load_df_table(path, manifest)
        self._refresh_lock = threading.Lock()
        self._parsed: dict[tuple[str, str | None], ParsedQuery] = {}
        self._analyses: dict[tuple, tuple[list[str], list[int], list[int]]] = {}

    # -- lifecycle ------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        shards: int,
        passage_words: int = 120,
        k1: float = bm25.K1,
        b: float = bm25.B,
        default_language: str = "en",
        analyzer_options: dict[str, bool] | None = None,
        protected_words: Iterable[str] | None = None,
        fields: dict[str, str] | None = None,
    ) -> ShardedIndex:
        """Create an empty sharded index of ``shards`` shards at ``path`` (a new or empty folder); the
        other arguments are ``Index.create``'s, the same for every shard (``fields``: the metadata
        fields filters and facets use)."""
        path = Path(path)
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
            raise InvalidArgument(f"shards must be an integer from 1 to {MAX_SHARDS}, not {shards!r}")
        if path.exists():
            if not path.is_dir():
                raise SearchError(f"cannot create an index at {path}: it is a file")
            if (path / MANIFEST).exists() or (path / META).exists():
                raise SearchError(f"an index already exists at {path}; open it with Index.open")
            if any(path.iterdir()):
                raise SearchError(f"cannot create an index at {path}: the directory is not empty")
        path.mkdir(parents=True, exist_ok=True)
        folders = [shard_folder(i) for i in range(shards)]
        made = [
            Index.create(
                path / f,
                passage_words=passage_words,
                k1=k1,
                b=b,
                default_language=default_language,
                analyzer_options=analyzer_options,
                protected_words=None if protected_words is None else list(protected_words),
                fields=fields,
            )
            for f in folders
        ]
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "generation": 0,
            "shards": shards,
            "routing": ROUTING,
            "folders": folders,
            "settings": made[0].settings.to_json(),
            "commits": [m._snapshot.meta for m in made],
            "stats": {},
        }
        write_manifest(path, manifest)
        return cls.open(path)

    @classmethod
    def open(
        cls, path: str | Path, *, verify: bool = False, ray_address: str | None = None, **ray_options: Any
    ) -> ShardedIndex:
        """Open a sharded index at the commit its manifest names; ``verify=True`` checks every checksum.

        ``ray_address="local"`` (a Ray started here) or a cluster's address puts each shard in a Ray
        actor (``search.distributed``; needs the ``ray`` extra); ``ray_options`` go to it (``timeout``,
        ``max_restarts``, ``max_task_retries``, ``num_cpus``, ``actor_cpus``). None: every shard here.
        """
        if ray_address is not None:
            from .distributed import RayShardedIndex  # Ray is imported only when asked for

            return RayShardedIndex.open(path, verify=verify, ray_address=ray_address, **ray_options)
        if ray_options:
            raise InvalidArgument(f"{', '.join(sorted(ray_options))}: options of shards on Ray (give ray_address)")
        path = Path(path)
        manifest, shards = _load(path)
        index = cls(path, manifest, shards)
        if verify:
            index.verify()
        return index

    def refresh(self) -> bool:
        """Pick up a newer commit (all shards at once); returns whether anything changed."""
        with self._refresh_lock:
            manifest, shards = self._state
            fresh = read_manifest(self.path)
            if fresh["generation"] == manifest["generation"]:
                return False
            reuse = [{s.reader.name: s.reader for s in sh.snapshot.segments} for sh in shards]
            fresh, opened = _load(self.path, reuse, fresh)
            self._dfs = _load_df_table(self.path, fresh)
            self._state = (fresh, [LocalShard(s) for s in opened])
            return True

    def _install(self, manifest: dict[str, Any], snapshots: list[Snapshot]) -> None:
        shards = [Index(self.path / f, snap.meta, snap) for f, snap in zip(manifest["folders"], snapshots)]
        self._dfs = _load_df_table(self.path, manifest)
        self._state = (manifest, [LocalShard(s) for s in shards])

    def writer(self, *, timeout: float = 0.0, buffer_tokens: int | None = None) -> ShardedWriter:
        """The one writer of the whole sharded index (``IndexLocked`` if another holds it)."""
        return ShardedWriter(self, timeout=timeout, buffer_tokens=buffer_tokens)

    def close(self) -> None:
        """Nothing to release (as ``Index.close``)."""

    # -- reading --------------------------------------------------------------------------------------
    @property
    def n_shards(self) -> int:
        return len(self._state[1])

    @property
    def generation(self) -> int:
        return int(self._state[0]["generation"])

    @property
    def shards(self) -> list[LocalShard]:
        """The shards at the current commit (the protocol objects a coordinator talks to)."""
        return list(self._state[1])

    def global_statistics(self) -> dict[str, LangStats]:
        """Per-language live passages and total length over every shard, as computed at commit."""
        return {k: LangStats(int(v[0]), int(v[1])) for k, v in self._state[0]["stats"].items() if v[0]}

    def _owner(self, doc_id: str) -> LocalShard:
        shards = self._state[1]
        return shards[shard_of(doc_id, len(shards))]

    def __len__(self) -> int:
        return sum(len(s.index) for s in self._state[1])

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and doc_id in self._owner(doc_id).index

    def get(self, doc_id: str) -> Document | None:
        """The stored document ``doc_id``, or None (read from the shard that owns it)."""
        return self._owner(doc_id).index.get(doc_id)

    def content_hashes(self) -> dict[str, str]:
        """Every live document id with its content hash, over every shard."""
        out: dict[str, str] = {}
        for s in self._state[1]:
            out.update(s.index.content_hashes())
        return out

    def stats(self) -> dict[str, Any]:
        """As ``Index.stats``, over every shard (languages with global avgdl), plus ``shards``."""
        manifest = self._state[0]
        parts = self._shard_stats()
        langs = self.global_statistics()
        return {
            "path": str(self.path),
            "documents": sum(p["documents"] for p in parts),
            "passages": sum(p["passages"] for p in parts),
            "segments": sum(p["segments"] for p in parts),
            "generation": int(manifest["generation"]),
            "languages": {lang: {"passages": s.n_passages, "avgdl": s.avgdl} for lang, s in langs.items()},
            "settings": self.settings.to_json(),
            "analyzers_current": analyzer_versions_match(manifest["settings"]),
            "size_bytes": (self.path / MANIFEST).stat().st_size + sum(p["size_bytes"] for p in parts),
            "shards": self.n_shards,
        }

    def _shard_stats(self) -> list[dict[str, Any]]:
        """Each shard's ``Index.stats`` (a Ray index asks its actors)."""
        return [s.index.stats() for s in self._state[1]]

    def warm(self) -> None:
        """``Index.warm`` on every local shard (on Ray, ``RayShardedIndex.warm``: each actor in its own process)."""
        for shard in self._state[1]:
            shard.index.warm()

    def prefetch(self, share: float = 0.75, seconds: float = 5.0) -> dict[str, int]:
        """``Index.prefetch`` on every local shard, each filling its part of the shared decoded cache and
        taking its part of ``seconds`` (on Ray, ``RayShardedIndex.prefetch``: each actor in its own)."""
        total = {"terms": 0, "documents": 0, "analyzer_entries": 0, "searches": 0}
        shards = self._state[1]
        for i, shard in enumerate(shards, 1):
            got = shard.index.prefetch(share * i / len(shards), seconds / len(shards))
            for key in total:
                total[key] += got[key]
        return total

    def verify(self) -> None:
        """Check every shard file's full checksum and that each document sits in the shard that owns it."""
        manifest, shards = self._state
        entry = manifest.get("dfs")
        if entry:
            path = self.path / entry["name"]
            try:
                raw = read_checked(path, f"{entry['name']} of {self.path}", size=int(entry["size"]))
            except FileNotFoundError:
                raise IndexCorrupt(f"{entry['name']} is missing from {self.path}", str(path)) from None
            if hashlib.blake2b(raw, digest_size=16).hexdigest() != entry["checksum"]:
                raise IndexCorrupt(f"{entry['name']} fails its checksum (damaged)", str(path))
        for i, s in enumerate(shards):
            s.index.verify()
            for doc_id in s.snapshot.id_map():
                if shard_of(doc_id, len(shards)) != i:
                    raise IndexCorrupt(
                        f"document {doc_id!r} is in {s.index.path.name} but routes to shard"
                        f" {shard_of(doc_id, len(shards))}",
                        str(s.index.path),
                    )

    # -- searching ------------------------------------------------------------------------------------
    @property
    def fields(self) -> dict[str, str]:
        """The declared metadata fields (name -> type) filters and facets can use."""
        return dict(self.settings.fields)

    def parse(self, query: str | ParsedQuery, filter: str | None = None) -> ParsedQuery:
        """As ``Index.parse``: ``query`` with the declared fields, plus the filters of ``filter`` (kept
        parsed per text, as one index keeps them)."""
        return cached_parse(self._parsed, query, filter, self.settings.fields)

    def _prepare(
        self,
        parsed: ParsedQuery,
        lang: str | None,
        k1: float | None,
        b: float | None,
        fuzzy: bool,
        prefix_last: bool,
        ask: Ask,
    ) -> tuple[QueryPlan, list[int]]:
        """The plan of a parsed query: its languages; its bare words the index cannot match made fuzzy
        (``fuzzy``: no shard saw the word and its term has no passage in any shard) and its last word
        a prefix (``prefix_last``), as ``Index.search`` rewrites them; and its fuzzy, prefix and
        wildcard words expanded over every shard's words, as one index of all of them expands them.
        Those need a round to the shards (``ask``: a query without them needs none); returns the plan
        and the shards that did not answer."""
        plan = self._plan(parsed, lang, k1, b)
        missing: list[int] = []
        if fuzzy or prefix_last:
            typo = None
            if fuzzy:
                typo, missing = self._typos(plan, ask)
            rewritten = multiterm.rewrite(plan.parsed, fuzzy=fuzzy, prefix_last=prefix_last, typo=typo)
            plan = dataclasses.replace(plan, parsed=rewritten, source=None)  # its texts no longer describe it
        nodes = multiterm_nodes(plan.parsed.root)
        if nodes:
            plan, lost = self._expand(plan, nodes, ask)
            missing = sorted(set(missing) | set(lost))
        return plan, missing

    def _typos(self, plan: QueryPlan, ask: Ask) -> tuple[Callable[[str], bool], list[int]]:
        """Which bare words of the plan's query ``fuzzy=True`` makes fuzzy: those no shard saw as a word
        whose term has no passage in any language of the index (``multiterm.rewrite``'s rule)."""
        texts = multiterm.fuzzy_candidates(plan.parsed.root)
        if not texts:
            return (lambda _: False), []
        actx = self._analysis(plan)
        langs = list(self.global_statistics())
        terms = {text: {lg: actx.analyze(lg, text)[0] for lg in langs} for text in texts}
        keys = list(dict.fromkeys(f"{lg}:{t[0]}" for by in terms.values() for lg, t in by.items() if len(t) == 1))
        answers, missing = ask("words", plan, texts, keys)
        known = {t for flags, _ in answers for t, flag in zip(texts, flags) if flag}
        dfs = sum_frequencies(got for _, got in answers)
        typos = {
            text
            for text in texts
            if text not in known and all(len(t) == 1 and not dfs.get(f"{lg}:{t[0]}") for lg, t in terms[text].items())
        }
        return typos.__contains__, missing

    def _expand(self, plan: QueryPlan, nodes: list[Query], ask: Ask) -> tuple[QueryPlan, list[int]]:
        """The plan with the expansions of its fuzzy, prefix and wildcard words: every shard's best
        matches merged (the best of all are among them) and its own term's passages summed, then
        chosen as ``multiterm.expand`` chooses over one index (one round; the blended df of the
        expansions is then read from the global statistics like any term's)."""
        answers, missing = ask("expansions", plan, nodes)
        actx = self._analysis(plan)
        chosen: dict[tuple[str, Query], tuple[Expansion, ...]] = {}
        for j, node in enumerate(nodes):
            for lang in plan.langs:
                found: dict[str, tuple[int, str]] = {}
                own_df = 0
                for per_node in answers:
                    words, df = per_node[j][lang]
                    own_df += df
                    for w, d, key in words:
                        if w not in found or d < found[w][0]:
                            found[w] = (d, key)
                own = multiterm.own_term(actx, lang, node)  # type: ignore[arg-type]
                chosen[(lang, node)] = tuple(multiterm.choose_expansions(lang, node, found, own, own_df))  # type: ignore[arg-type]
        return dataclasses.replace(plan, expansions=chosen), missing

    def _plan(self, parsed: ParsedQuery, lang: str | None, k1, b) -> QueryPlan:
        """The query's languages and stopword language from the languages the whole index holds, k1, b."""
        langs, stop = query_languages(parsed, lang, list(self.global_statistics()))
        s = self.settings
        k1, b = check_bm25_parameters(s.k1 if k1 is None else k1, s.b if b is None else b)
        return QueryPlan(parsed, tuple(langs), stop, k1, b)

    def _analysis(self, plan: QueryPlan) -> QueryContext:
        """A context for analysing the query only (as a shard's ``Index.query_context`` analyses it)."""
        stopwords: frozenset[str] = frozenset()
        if plan.stop is not None:
            an = self.settings.analyzer(plan.stop)
            stopwords = an.stopwords | an.query_stopwords | an.question_words
        ctx = QueryContext(None, plan.k1, plan.b, self.settings.analyzer, stopwords, plan.stop)  # type: ignore[arg-type]
        if len(self._analyses) >= PARSE_CACHE_QUERIES:  # query texts analyzed, kept as an Index keeps them
            self._analyses.clear()
        ctx.analyses = self._analyses
        return ctx

    def _precomputed(self, plan: QueryPlan) -> tuple[FixedStatistics, dict[str, float]] | None:
        """Statistics and language weights from the document frequencies computed at commit, when the
        query needs no evaluation to know where it matches (one round); else None."""
        langs, parsed = list(plan.langs), plan.parsed
        if languages_need_evaluating(plan):
            return None
        words = _matched_words(parsed.root)
        got = self._table_statistics(plan)
        if got is None:
            return None
        stats, ctx = got
        hit = langs
        if len(langs) > 1:
            hit = [
                lg
                for lg in langs
                if any(
                    isinstance(c, AnalyzedTerm) and stats.dfs[f"{lg}:{c.term}"] for _, c in ctx.clauses(words, lg)
                )
            ]
        return stats, language_weights(parsed, hit)

    def _table_statistics(self, plan: QueryPlan) -> tuple[FixedStatistics, QueryContext] | None:
        """The global statistics of every term key the query may score, from the document frequencies
        computed at commit (any query; None without a current table), with the analysis context."""
        table = self._dfs
        if table is None or table.generation != self.generation or not self.one_round:
            return None
        ctx = self._analysis(plan)
        dfs = table.dfs(plan.term_keys(ctx.analyze))
        return FixedStatistics(self.global_statistics(), dfs), ctx

    def _combine(
        self, plan: QueryPlan, answers: Iterable[tuple[dict[str, int], list[str]]]
    ) -> tuple[FixedStatistics, dict[str, float]]:
        """The global statistics and language weights from the shards' ``statistics`` answers."""
        answers = list(answers)
        matched = {lg for _, m in answers for lg in m}
        stats = FixedStatistics(self.global_statistics(), sum_frequencies(got for got, _ in answers))
        return stats, language_weights(plan.parsed, [x for x in plan.langs if x in matched])

    def _gather(self, shards: list[LocalShard], plan: QueryPlan) -> tuple[FixedStatistics, dict[str, float]]:
        """Phase one: the global statistics of the plan's terms; the language weights from where it
        matches (from the table computed at commit when it can, else from every shard)."""
        got = self._precomputed(plan) if shards else None
        if got is None:
            got = self._combine(plan, (sh.statistics(plan) for sh in shards))
        return got

    def search(
        self,
        query: str | ParsedQuery,
        k: int = 10,
        offset: int = 0,
        *,
        lang: str | None = None,
        per_document: bool = True,
        k1: float | None = None,
        b: float | None = None,
        filter: str | None = None,
        fuzzy: bool = False,
        prefix_last: bool = False,
    ) -> SearchResult:
        """As ``Index.search``: the same hits, order and scores a single index of these documents gives
        (a ``SearchResult``: a list of hits that also says whether every shard answered). Filters are
        masks every shard applies; fuzzy, prefix and wildcard words are expanded over every shard's
        words first (one more round), so their blended statistics are those of one index."""
        k, offset = check_count("k", k), check_count("offset", offset)
        _, shards = self._state
        parsed = self.parse(query, filter)
        plan, _ = self._prepare(parsed, lang, k1, b, fuzzy, prefix_last, local_ask(shards))
        need = offset + k
        if k and shards and languages_need_evaluating(plan):
            rows = self._matched_rows(shards, plan, need, per_document)
        else:
            stats, weights = self._gather(shards, plan)
            if not weights or k == 0:
                return SearchResult()
            rows = {i: sh.search(plan, stats, weights, need, per_document) for i, sh in enumerate(shards)}
        page = merge_rows(rows, offset, need)
        by_shard: dict[int, list[int]] = {}
        for j, (_, i) in enumerate(page):
            by_shard.setdefault(i, []).append(j)
        hits: list[Hit | None] = [None] * len(page)
        for i, positions in by_shard.items():
            for j, hit in zip(positions, shards[i].fetch(plan, [page[j][0] for j in positions])):
                hits[j] = hit
        return SearchResult(h for h in hits if h is not None)

    def _matched_rows(
        self, shards: list[LocalShard], plan: QueryPlan, need: int, per_document: bool
    ) -> dict[int, list[Row]]:
        """Every shard's best rows for a query whose languages must be evaluated, evaluating it once a
        shard: the global statistics from the table computed at commit (else every shard's document
        frequencies, no evaluation), then ``LocalShard.search_matched``, which reports where the query
        matches and ranks under the weights the index can end with (``matched_rows`` picks; a shard
        whose rows fit neither is searched again with the final weights)."""
        got = self._table_statistics(plan)
        if got is not None:
            stats = got[0]
        else:
            stats = FixedStatistics(self.global_statistics(), sum_frequencies(sh.frequencies(plan) for sh in shards))
        answers = {i: sh.search_matched(plan, stats, need, per_document) for i, sh in enumerate(shards)}
        weights, rows, redo = matched_rows(plan, answers)
        for i in redo:
            rows[i] = shards[i].search(plan, stats, weights, need, per_document)
        return rows

    def explain(
        self,
        query: str | ParsedQuery,
        doc_id: str,
        passage: int = 0,
        *,
        k1: float | None = None,
        b: float | None = None,
        fuzzy: bool = False,
        prefix_last: bool = False,
    ) -> Explanation:
        """As ``Index.explain``, with the global statistics: its value is the score ``search`` gives."""
        _, shards = self._state
        parsed = self.parse(query)
        if isinstance(passage, bool) or not isinstance(passage, (int, np.integer)):
            raise InvalidArgument(f"passage must be an integer, got {passage!r}")
        if not isinstance(doc_id, str):
            raise InvalidArgument(f"doc_id must be a string, got {type(doc_id).__name__}")
        owner = shards[shard_of(doc_id, len(shards))]
        if doc_id not in owner.snapshot.id_map():
            raise DocumentNotFound(f"no document {doc_id!r} in the index")
        plan, _ = self._prepare(parsed, None, k1, b, fuzzy, prefix_last, local_ask(shards))
        stats, weights = self._gather(shards, plan)
        return owner.explain(plan, stats, weights, doc_id, passage)

    def facets(
        self,
        query: str | ParsedQuery,
        fields: Iterable[str],
        *,
        filter: str | None = None,
        lang: str | None = None,
    ) -> dict[str, dict[str | int, int]]:
        """As ``Index.facets``: every shard counts its matching documents per value, the counts are summed
        (exact: a document lives in one shard)."""
        names = check_facet_fields(fields, self.settings.fields)
        _, shards = self._state
        plan, _ = self._prepare(self.parse(query, filter), lang, None, None, False, False, local_ask(shards))
        return sum_facets((sh.facets(plan, names) for sh in shards), names)


def _load(
    path: Path, reuse: list[dict[str, SegmentReader]] | None = None, manifest: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[Index]]:
    """Read the manifest and open every shard at the commit it names, retrying when a concurrent
    commit removed a file between reading the manifest and opening the segments."""
    for attempt in range(5):
        if manifest is None:
            manifest = read_manifest(path)
        try:
            shards = [
                _open_shard(path / folder, commit, reuse[i] if reuse and i < len(reuse) else None)
                for i, (folder, commit) in enumerate(zip(manifest["folders"], manifest["commits"]))
            ]
            return manifest, shards
        except IndexCorrupt:
            fresh = read_manifest(path)
            if attempt == 4 or fresh["generation"] == manifest["generation"]:
                raise
            manifest = fresh
        except (KeyError, TypeError) as e:
            raise IndexCorrupt(f"{MANIFEST} of {path} is missing a field: {e}", str(path / MANIFEST)) from None
    raise AssertionError("unreachable")


# -- writing --------------------------------------------------------------------------------------------


class ShardedWriter:
    """Adds, updates and deletes documents in the shards that own them; ``commit`` is atomic as a whole.

    Holds the sharded index's lock and every shard's writer. Use as a context manager like
    ``IndexWriter``: commit on a clean exit, roll back on an exception.
    """

    def __init__(self, sharded: ShardedIndex, *, timeout: float = 0.0, buffer_tokens: int | None = None) -> None:
        self._sharded = sharded
        self._lock = WriteLock(sharded.path)
        self._lock.acquire(timeout)
        self._writers: list[IndexWriter] = []
        self._shards: list[Index] = []  # each writer's index: its snapshot after a commit
        self._closed = False
        self.on_close: list[Callable[[], None]] = []  # run when the writer releases its lock
        try:
            sharded.refresh()
            manifest = sharded._state[0]
            self._manifest = manifest
            _remove_old_tables(sharded.path, manifest)  # a table written by an interrupted commit
            for folder, commit in zip(manifest["folders"], manifest["commits"]):
                shard_dir = sharded.path / folder
                on_disk = _read_shard_meta(shard_dir)
                if on_disk is None or on_disk.get("generation") != commit["generation"]:
                    # a commit interrupted before the manifest moved: the manifest's commit stands
                    write_meta(shard_dir, commit)
                index = Index(shard_dir, commit, sharded._state[1][len(self._writers)].snapshot)
                kwargs = {} if buffer_tokens is None else {"buffer_tokens": buffer_tokens}
                shard_writer = index.writer(timeout=timeout, **kwargs)
                shard_writer.background_merges = False  # a shard commits only what the manifest will name
                self._writers.append(shard_writer)
                self._shards.append(index)
        except BaseException:
            self._release()
            raise
        self._buffer_tokens = BUFFER_TOKENS if buffer_tokens is None else int(buffer_tokens)

    def _release(self) -> None:
        try:
            for stop in self.on_close:  # e.g. the Ray actors that built shards for this writer
                try:
                    stop()
                except Exception:  # stopping a helper must not hide the writer's own outcome
                    pass
            for w in self._writers:
                try:
                    w.close()
                except (OSError, SearchError):  # the first failure is the one to report; release the rest
                    pass
        finally:
            self._lock.release()

    def _check_open(self) -> None:
        if self._closed:
            raise SearchError("this writer is closed; open a new one with index.writer()")

    def _owner(self, doc_id: str) -> IndexWriter:
        return self._writers[shard_of(doc_id, len(self._writers))]

    # -- documents ------------------------------------------------------------------------------------
    def add(self, doc: Document) -> None:
        """Add a new document to the shard that owns its id (``InvalidDocument`` as ``IndexWriter.add``)."""
        self._check_open()
        if not isinstance(doc, Document):
            raise InvalidDocument(f"expected a Document, got {type(doc).__name__}")
        self._owner(doc.id).add(doc)

    def add_many(
        self,
        docs: Iterable[Document],
        *,
        workers: int | None = None,
        ray_address: str | None = None,
        num_cpus: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Add every document of ``docs``, each to its shard; returns how many were added.

        Documents are routed into per-shard chunks of about ``workers`` writer buffers; each chunk is
        analyzed by the shard writer's worker processes (every core), so which documents land in which
        segment depends only on the input: the same input gives byte-identical shards. A bad document
        stops the call with ``InvalidDocument``; roll back to keep nothing of it.

        ``ray_address`` (``"local"`` or a cluster's address; the ``ray`` extra) builds every shard at
        once in its own Ray actor instead (``search.distributed.add_many_on_ray``; ``workers`` does not
        apply, a builder analyzes in its own process); ``num_cpus`` bounds a Ray started here.
        ``progress(n)`` is called as documents are indexed, as ``IndexWriter.add_many`` calls it (on
        Ray: once, with the count, when every builder is done).
        """
        from . import parallel  # worker processes: imported by the writers that use them

        self._check_open()
        if ray_address is not None:
            from .distributed import add_many_on_ray  # Ray is imported only when asked for

            n = add_many_on_ray(self, docs, ray_address=ray_address, num_cpus=num_cpus)
            if progress is not None:
                progress(n)
            return n
        n_workers = parallel.default_workers() if workers is None else max(1, int(workers))
        chunk_tokens = self._buffer_tokens * max(2, n_workers)
        pending: list[list[Document]] = [[] for _ in self._writers]
        tokens = [0] * len(self._writers)
        n = 0
        for doc in docs:
            if not isinstance(doc, Document):
                raise InvalidDocument(f"expected a Document, got {type(doc).__name__}")
            i = shard_of(doc.id, len(self._writers))
            pending[i].append(doc)
            tokens[i] += parallel.estimate_tokens(doc.text, doc.title)
            if tokens[i] >= chunk_tokens:
                n += self._writers[i].add_many(pending[i], workers=n_workers, progress=progress)
                pending[i], tokens[i] = [], 0
        for i, chunk in enumerate(pending):
            if chunk:
                n += self._writers[i].add_many(chunk, workers=n_workers, progress=progress)
        return n

    def update(self, doc: Document) -> None:
        """Replace the document with ``doc.id`` (or add it) in the shard that owns it."""
        self._check_open()
        if not isinstance(doc, Document):
            raise InvalidDocument(f"expected a Document, got {type(doc).__name__}")
        self._owner(doc.id).update(doc)

    def delete(self, doc_id: str) -> bool:
        """Delete ``doc_id`` from the shard that owns it; returns whether there was one."""
        self._check_open()
        return self._owner(doc_id).delete(doc_id)

    def flush(self) -> None:
        self._check_open()
        for w in self._writers:
            w.flush()

    # -- commit ---------------------------------------------------------------------------------------
    def commit(self, *, max_segments: int | None = None) -> None:
        """Commit every shard, then the manifest (the commit point of the whole), then remove old files.

        Until the manifest is replaced, each shard keeps the files of the commit the manifest names, so
        readers of the previous commit lose nothing; a failure before it leaves the previous commit.
        ``max_segments``: merge each shard down to that many segments (``IndexWriter.force_merge``).
        """
        self._check_open()
        old = self._manifest
        for w, commit in zip(self._writers, old["commits"]):
            w.retain = _commit_files(commit)
        committed: list[int] = []
        try:
            for i, w in enumerate(self._writers):
                if max_segments is None:
                    w.commit()
                else:
                    w.commit(max_segments=max_segments)
                committed.append(i)
            snaps = [index._snapshot for index in self._shards]
            totals: dict[str, list[int]] = {}
            for snap in snaps:
                for lang, st in snap.stats.items():
                    t = totals.setdefault(lang, [0, 0])
                    t[0] += st.n_passages
                    t[1] += st.total_length
            manifest = dict(old)
            gen = int(old["generation"]) + 1
            table = build_df_table(snaps)
            manifest.update(
                generation=gen,
                commits=[snap.meta for snap in snaps],
                stats={k: totals[k] for k in sorted(totals)},
                dfs=None if table is None else _write_df_table(self._sharded.path, gen, table),
            )
            # (an older manifest becomes the current version: its shards may now hold format 5 segments)
            manifest["format_version"] = FORMAT_VERSION
            write_manifest(self._sharded.path, manifest)
        except BaseException:
            for i in committed:  # best effort: the shards' meta.json back at the manifest's commit
                try:
                    write_meta(self._sharded.path / old["folders"][i], old["commits"][i])
                except OSError:
                    pass
            self._closed = True
            self._release()
            raise
        self._manifest = manifest
        self._sharded._install(manifest, snaps)
        for w in self._writers:
            w.retain = set()
            w._remove_unreferenced(w._meta)
        _remove_old_tables(self._sharded.path, manifest)

    def force_merge(self, max_segments: int = 1) -> None:
        """Commit, merging every shard down to at most ``max_segments`` segments (``IndexWriter.force_merge``)."""
        self.commit(max_segments=max_segments)

    def rollback(self) -> None:
        """Forget every change since the last commit in every shard."""
        for w in self._writers:
            w.rollback()

    def close(self) -> None:
        """Release every lock (uncommitted changes are rolled back)."""
        if not self._closed:
            self._closed = True
            self._release()

    def __enter__(self) -> ShardedWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
            else:
                self.rollback()
        finally:
            self.close()


def _remove_old_tables(directory: Path, manifest: dict[str, Any]) -> None:
    """Remove document-frequency tables the manifest does not name (older commits', a failed commit's)."""
    keep = (manifest.get("dfs") or {}).get("name")
    for path in directory.glob(f"{DF_PREFIX}*.npy"):
        if path.name != keep:
            try:
                path.unlink()
            except OSError:
                pass


def _read_shard_meta(shard_dir: Path) -> dict[str, Any] | None:
    """A shard's ``meta.json`` as it stands, or None when it is missing or unreadable (then the writer
    rewrites it from the manifest); a FIFO or an oversized file is refused, never read."""
    try:
        return json.loads(read_checked(shard_dir / META, f"{META} of {shard_dir}", limit=MAX_META_BYTES))
    except (OSError, ValueError, RecursionError, IndexCorrupt):
        return None
