"""The reading side of ``search query`` without typer: which index, the language check, the query run and
its output. ``cli.app`` (every command, with typer) and ``cli.main`` (the fast path of ``search query``)
both call ``run_query``, so the two paths print the same bytes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import analyzers
from search import Index, ShardedIndex

from . import output
from .errors import UsageMistake
from .hitjson import hit_objects

MAX_K = 10_000


def index_path(index: Path | None) -> Path | None:
    """``--index``, else ``$SEARCH_INDEX``, else None (the default index, for reading commands)."""
    if index is not None:
        return index
    env = os.environ.get("SEARCH_INDEX")
    return Path(env) if env else None


def open_for_reading(index: Path | None) -> Index | ShardedIndex:
    path = index_path(index)
    if path is None:
        from .default_index import open_default_index

        return open_default_index()
    return Index.open(path)


def argv_text(text: str) -> str:
    """Command-line text as valid Unicode: bytes that are not UTF-8 (``\\xff``) reach Python as lone
    surrogates, which would print as invalid UTF-8 (in ``--json`` too); they become U+FFFD instead."""
    if text.isascii():
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that no undecodable byte makes
        return text.encode("utf-8", "replace").decode("utf-8")


def check_lang(lang: str | None) -> str | None:
    """``--lang`` if it names an analyzer (checked by the command, so the message is our one line)."""
    if lang is not None and lang not in analyzers.names():
        raise UsageMistake(f"unknown --lang {lang!r}; choose one of: {', '.join(analyzers.names())}")
    return lang


def run_query(
    words: list[str],
    *,
    k: int = 10,
    offset: int = 0,
    lang: str | None = None,
    all_passages: bool = False,
    json_out: bool = False,
    fuzzy: bool = False,
    prefix_last: bool = False,
    index: Path | None = None,
    ray: str | None = None,
    filter: str | None = None,
    facet: list[str] | None = None,
) -> None:
    """``search query``: the words joined as one query, searched, printed for people or as JSON.

    ``ray``: "local" or a Ray address; the sharded index's shards answer from Ray actors. ``filter``:
    filters on declared fields (``Index.search(filter=...)``); ``facet``: fields whose values the
    matching documents are counted by (``Index.facets``)."""
    text = argv_text(" ".join(words))
    lang = check_lang(lang)
    idx = open_for_reading(index) if ray is None else open_on_ray(index, ray)
    extra: dict = {}
    if filter is not None:
        extra = {"filter": argv_text(filter)}
    words_extra = {"fuzzy": True} if fuzzy else {}
    if prefix_last:
        words_extra["prefix_last"] = True
    try:
        hits = idx.search(
            text, k=k, offset=offset, lang=lang, per_document=not all_passages, **extra, **words_extra
        )
        facets = idx.facets(text, facet, lang=lang, **extra) if facet else None
    finally:
        if ray is not None:
            idx.close()
    missing = list(getattr(hits, "missing_shards", ()))
    # "did you mean": for a word the index does not know, or a rare one when nothing matched
    suggestion = idx.suggest(text, rare_words=not hits) if hasattr(idx, "suggest") else None
    if json_out:
        payload: dict = {"query": text, "hits": hit_objects(hits, offset)}
        if suggestion is not None:
            payload["suggestion"] = suggestion
        if facets is not None:
            payload["facets"] = facets
        if isinstance(idx, ShardedIndex):
            payload["shards"] = idx.n_shards
            payload["partial"] = bool(missing)
            payload["missing_shards"] = missing
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    else:
        output.print_hits(sys.stdout, text, hits, offset)
        if suggestion is not None:
            sys.stdout.write(f"Did you mean: {suggestion}\n")
        if facets is not None:
            output.print_facets(sys.stdout, facets)
    if missing:
        output.error(f"warning: partial result: shard(s) {', '.join(map(str, missing))} did not answer")


def open_on_ray(index: Path | None, ray: str) -> ShardedIndex:
    """The sharded index at ``--index`` with its shards in Ray actors (a mistake unless it is sharded)."""
    from search.sharded import is_sharded

    path = index_path(index)
    if path is None:
        raise UsageMistake("--ray searches a sharded index: pass --index PATH or set SEARCH_INDEX")
    if not is_sharded(path):
        raise UsageMistake(f"--ray needs a sharded index (search index --shards N); {path} is not one")
    if not ray:
        raise UsageMistake("--ray takes 'local' or the address of a Ray cluster (host:port or ray://host:port)")
    try:
        import ray as _  # noqa: F401
    except ImportError:
        raise UsageMistake("--ray needs Ray: pip install 'telusur[ray]'") from None
    return ShardedIndex.open(path, ray_address=ray)
