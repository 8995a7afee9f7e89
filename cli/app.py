"""The ``search`` command: thin typer commands over the ``search`` API, and the one error boundary.

Exit codes: 0 success (no hits is success), 1 ``index --check`` found the index stale, 2 a user's
mistake (usage, missing path, bad query, bad input file, not an index, locked index), 3 a damaged index,
4 a failure of the environment (full disk, I/O error) or of telusur (a bug). Every failure prints one
line on stderr naming the problem and the fix; ``--debug`` adds the traceback of an exit 4. How
arguments are read (``-word`` is query text, no pydantic) lives in ``cli.command``.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

import analyzers
import search
from search import (
    Document,
    Index,
    SearchError,
)
from search.columns import parse_field_option

from . import errors, output
from .command import DEBUG, Command, Group, debug_requested
from .default_index import open_default_index
from .errors import EXIT_STALE, EXIT_USAGE, UsageMistake
from .reading import argv_text, check_lang, index_path, open_for_reading, run_query
from .sources import SourceError, SourceFile, find_files, read_documents

app = typer.Typer(
    name="search",
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
    help="telusur: full-text search for Indonesian and English text.",
    pretty_exceptions_enable=False,
)
command = functools.partial(app.command, cls=Command)

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> typer.Exit:
    output.error(f"error: {message}")
    return typer.Exit(code)


def boundary(fn: F) -> F:
    """Turn errors into one stderr line and the documented exit code (``cli.errors``: 2 for the user's
    mistakes, 3 for a damaged index, 4 when the environment or telusur itself failed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # here, not at exit, so a reader that went away is handled like any error
            return result
        except typer.Exit:
            raise
        except (Exception, KeyboardInterrupt) as e:
            code, message = errors.describe(e, debug_requested())
            if not message:
                raise typer.Exit(code) from None
            raise _fail(message, code) from None

    return wrapper  # type: ignore[return-value]


# -- options shared by commands ------------------------------------------------------------------------

IndexOpt = Annotated[
    Path | None,
    typer.Option("--index", "-i", help="Index directory (default: $SEARCH_INDEX, else the bundled seeds index)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts, and nothing else on stdout.")]


RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="local|ADDRESS",
        help="Search a sharded index with one Ray actor per shard: 'local' starts Ray here (the ray extra).",
    ),
]
LangOpt = Annotated[str | None, typer.Option("--lang", "-l", help="Language: id or en (default: detected).")]


def _require_index_path(index: Path | None, command: str) -> Path:
    path = index_path(index)
    if path is None:
        raise UsageMistake(f"`search {command}` writes an index: pass --index PATH or set SEARCH_INDEX")
    return path


def _version(value: bool) -> None:
    if value:
        typer.echo(f"telusur {search.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="On a failure (exit 4), print the traceback too. Also after a command.")
    ] = False,
) -> None:
    """telusur: full-text search for Indonesian and English text."""
    if debug:
        ctx.meta[DEBUG] = True


# -- commands --------------------------------------------------------------------------------------------


@command()
@boundary
def query(
    words: Annotated[
        list[str],
        typer.Argument(
            metavar="TEXT",
            help='The query: words, "a phrase", +must, -not, AND/OR/NOT, title:w. Words may start with "-".',
            show_default=False,
        ),
    ],
    k: Annotated[int, typer.Option("-k", min=0, max=10_000, help="How many hits (0: none).")] = 10,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many hits (paging).")] = 0,
    lang: LangOpt = None,
    all_passages: Annotated[
        bool, typer.Option("--all-passages", help="Every matching passage, not only each document's best.")
    ] = False,
    json_out: JsonOpt = False,
    fuzzy: Annotated[
        bool, typer.Option("--fuzzy", help="Every word also finds words a typo or two away (exact ones first).")
    ] = False,
    prefix_last: Annotated[
        bool, typer.Option("--prefix-last", help="The last word is a prefix (search as you type).")
    ] = False,
    index: IndexOpt = None,
    ray: RayOpt = None,
    filter: Annotated[
        str | None,
        typer.Option("--filter", help="Filters on declared fields, e.g. 'source:bps year:>=2020' (never scored)."),
    ] = None,
    facet: Annotated[
        list[str] | None,
        typer.Option("--facet", help="Count the matching documents per value of this declared field (repeatable)."),
    ] = None,
) -> None:
    """Search the index and print the best passages.

    Every word that is not an option is query text, so `search query -pajak tahunan -k 5` searches for
    "-pajak tahunan"; put a query word that equals an option (`-k`) after `--`.
    """
    run_query(
        words,
        k=k,
        offset=offset,
        lang=lang,
        all_passages=all_passages,
        json_out=json_out,
        fuzzy=fuzzy,
        prefix_last=prefix_last,
        index=index,
        ray=ray,
        filter=filter,
        facet=facet,
    )


@command("index")
@boundary
def index_cmd(
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH...", help="Files or folders: .txt, .md, .jsonl (also .gz).")
    ],
    index: IndexOpt = None,
    lang: LangOpt = None,
    glob: Annotated[
        str | None,
        typer.Option("--glob", help="Only files matching this pattern inside the folders, e.g. '*.md'."),
    ] = None,
    follow_symlinks: Annotated[
        bool,
        typer.Option("--follow-symlinks", help="Follow symbolic links inside the folders (never to outside them)."),
    ] = False,
    passage_words: Annotated[
        int | None,
        typer.Option(
            "--passage-words", min=0, help="Words per passage of a new index (default 120; 0: whole documents)."
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; exit 1 when the index is stale against the sources.")
    ] = False,
    wait: Annotated[float, typer.Option("--wait", min=0, help="Wait up to this many seconds for the lock.")] = 0.0,
    shards: Annotated[
        int | None,
        typer.Option("--shards", min=1, max=1024, help="Build a new index as this many shards (see Scaling out)."),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="local|ADDRESS",
            help="Build the new documents of a sharded index with one Ray actor per shard ('local' starts Ray here).",
        ),
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            metavar="NAME:TYPE",
            help="Declare a meta field of a new index for filters and facets: int, keyword, int[], keyword[].",
        ),
    ] = None,
    optimize: Annotated[
        bool,
        typer.Option(
            "--optimize", help="Merge the index into one segment (per shard) at the end: for static indexes, as in CI."
        ),
    ] = False,
) -> None:
    """Build or update an index from files: adds new, updates changed, deletes removed, skips unchanged."""
    path = _require_index_path(index, "index")
    lang = check_lang(lang)
    if ray is not None:
        if shards is None and not (path / "shards.json").exists():
            raise UsageMistake("--ray builds the shards of a sharded index: give --shards N for a new one")
        try:
            import ray as _  # noqa: F401
        except ImportError:
            raise UsageMistake("--ray needs Ray: pip install 'telusur[ray]'") from None
    fields = dict(parse_field_option(f) for f in field or ())
    files = find_files(paths, glob, exclude=path, follow_symlinks=follow_symlinks)
    if files.skipped_links:
        n = len(files.skipped_links)
        links = f"{n} symbolic link{'s' if n != 1 else ''}"
        if follow_symlinks:
            output.error(f"note: skipped {links} leading outside the folder, e.g. {files.skipped_links[0]}")
        else:
            output.error(
                f"note: skipped {links}, e.g. {files.skipped_links[0]} (--follow-symlinks follows links that"
                " stay inside the folder)"
            )
    # first pass: every source read and checked before the index is touched, keeping only what the plan
    # needs (each id's content hash), so memory does not grow with the text; the second pass reads the
    # sources again for the documents the plan adds or updates
    hashes: dict[str, bytes] = {}  # the 16-byte digests, not their hex (32 bytes a document less at 2M documents)
    with _progress(_total_bytes(files), "reading", unit="bytes") as bar:
        for f in files:
            size, shown, pending = _size(f.path), 0, 0
            for doc in read_documents(f, lang):
                if doc.id in hashes:
                    raise SourceError(f"{f.path}: document id {doc.id!r} appears twice in the sources")
                hashes[doc.id] = bytes.fromhex(doc.content_hash())
                pending += len(doc.text)  # ~ its bytes: one big JSONL file moves as it is read, not at its end
                if pending >= READ_STEP and shown < size:
                    step = min(pending, size - shown)
                    bar.advance(step)
                    shown, pending = shown + step, 0
            bar.advance(size - shown)
    if path.exists() and not path.is_dir():
        raise SourceError(f"{path}: --index must be a folder, and this is a file")
    if check and not path.exists():
        output.error(f"stale: no index at {path} yet ({len(hashes)} documents to index)")
        raise typer.Exit(EXIT_STALE)

    def exists() -> bool:
        return (path / "meta.json").exists() or (path / "shards.json").exists()

    if not check and not exists():
        try:
            if shards is not None:
                search.ShardedIndex.create(
                    path,
                    shards=shards,
                    passage_words=120 if passage_words is None else passage_words,
                    fields=fields or None,
                )
            else:
                Index.create(
                    path, passage_words=120 if passage_words is None else passage_words, fields=fields or None
                )
        except SearchError:
            if not exists():
                raise
            # another run created it at the same moment: update that one (the lock orders the two)
    existing = Index.open(path)
    built = existing.settings.passage_words
    if passage_words is not None and passage_words != built:
        raise SourceError(
            f"{path} was built with --passage-words {built}, not {passage_words};"
            " to change it, build into a new --index folder"
        )
    if fields and fields != getattr(existing, "fields", None):
        raise SourceError(
            f"{path} declares the fields {getattr(existing, 'fields', {})}, not {fields}; fields are declared"
            " when an index is created: build into a new --index folder"
        )
    has = existing.n_shards if isinstance(existing, search.ShardedIndex) else None
    if shards is not None and shards != has:
        built_as = f"{has} shards" if has else "one index, not sharded"
        raise SourceError(f"{path} was built as {built_as}; to change it, build into a new --index folder")

    def plan() -> tuple[set[str], set[str], list[str], int, str]:
        current = existing.content_hashes()
        to_add = {i for i in hashes if i not in current}
        to_update = {i for i, h in hashes.items() if i in current and current[i] != h.hex()}
        to_delete = sorted(set(current) - set(hashes))
        unchanged = len(hashes) - len(to_add) - len(to_update)
        summary = f"{len(to_add)} new, {len(to_update)} changed, {len(to_delete)} removed, {unchanged} unchanged"
        return to_add, to_update, to_delete, unchanged, summary

    if check:
        to_add, to_update, to_delete, unchanged, summary = plan()
        if to_add or to_update or to_delete:
            output.error(f"stale: {summary}")
            raise typer.Exit(EXIT_STALE)
        output.error(f"fresh: {unchanged} documents up to date")
        return
    with existing.writer(timeout=wait) as w:
        # planned once the lock is held, from the commit this writer starts at: a plan made before
        # waiting for the lock would undo or collide with what the previous writer committed
        to_add, to_update, to_delete, unchanged, summary = plan()
        hashes.clear()  # planned: every id's digest goes (their room is what the writer's id map takes next)
        work = len(to_add) + len(to_update) + len(to_delete)
        with _progress(work, "indexing") as bar:
            for doc_id in to_delete:
                w.delete(doc_id)
                bar.advance()
            if to_update:
                for doc in _read_again(files, lang, to_update):
                    w.update(doc)  # analyzed into the writer's buffer here
                    bar.advance()
            to_read = _read_again(files, lang, to_add)
            if ray is not None:  # every shard at once, each in its own Ray actor (counted as handed out)
                w.add_many(_counted(to_read, bar.advance), ray_address=ray)
            else:
                # bulk path, both cores for large runs: counted as the workers report documents analyzed,
                # not as they are handed out
                w.add_many(to_read, progress=bar.advance)
            bar.phase("committing")
            if optimize:
                w.force_merge(1)
    output.error(f"indexed: {summary}; {len(existing)} documents in {path}")


def _read_again(files: Iterable[SourceFile], lang: str | None, wanted: set[str]) -> Iterator[Document]:
    """The second pass: the documents of ``wanted`` ids, read again from the sources in their order
    (each at most once, should a source have changed since the first pass). ``wanted`` is consumed (ids
    leave it as they are found): a copy of it is a set of every id on a fresh build."""
    for f in files:
        if not wanted:
            return
        for doc in read_documents(f, lang, check=False):  # checked by the first pass (and the writer)
            if doc.id in wanted:
                wanted.discard(doc.id)
                yield doc


def _counted(docs: Iterable[Document], advance: Callable[[], None]) -> Iterator[Document]:
    for doc in docs:
        yield doc
        advance()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _total_bytes(files: Iterable[Any]) -> int:
    return sum(_size(f.path) for f in files)


#: characters read between two moves of the reading bar (a move per document would cost more than it shows)
READ_STEP = 1 << 20


class _progress:
    """A rich progress bar with rate and ETA on a terminal, for long runs; nothing otherwise.

    ``label`` names the phase ("reading", "indexing"); ``unit`` is "docs" (a count, with docs/s) or
    "bytes" (file sizes, with MB/s). ``advance(n)`` moves it; ``phase(label)`` renames it (the commit
    after the last document is indexed)."""

    MINIMUM = {"docs": 200, "bytes": 8 << 20}  # smaller runs finish before a bar helps

    def __init__(self, total: int, label: str, *, unit: str = "docs") -> None:
        self.total, self.label, self.unit = total, label, unit
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> _progress:
        if self.total < self.MINIMUM[self.unit] or not output.is_tty():
            return self
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if self.unit == "bytes":
            from rich.progress import DownloadColumn, TransferSpeedColumn

            counts: tuple[Any, ...] = (DownloadColumn(), TransferSpeedColumn())
        else:
            counts = (MofNCompleteColumn(), output.rate_column())
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            *counts,
            TimeRemainingColumn(),
            console=output.error_console(),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=self.total)
        return self

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def phase(self, label: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=label)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


@command()
@boundary
def delete(
    ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Document ids to delete.")],
    index: IndexOpt = None,
    wait: Annotated[float, typer.Option("--wait", min=0, help="Wait up to this many seconds for the lock.")] = 0.0,
) -> None:
    """Delete documents by id."""
    path = _require_index_path(index, "delete")
    idx = Index.open(path)
    with idx.writer(timeout=wait) as w:
        gone = [i for i in ids if w.delete(i)]
    missing = [i for i in ids if i not in gone]
    output.error(f"deleted {len(gone)} document(s)")
    if missing:
        output.error(f"not in the index: {', '.join(missing)}")


@command()
@boundary
def stats(index: IndexOpt = None, json_out: JsonOpt = False) -> None:
    """Show counts, languages and settings of the index."""
    st = open_for_reading(index).stats()
    if json_out:
        typer.echo(json.dumps(st, ensure_ascii=False))
    else:
        output.print_stats(sys.stdout, st)


@command()
@boundary
def analyze(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="Text to analyze.")],
    lang: LangOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Print the tokens (term, position, offsets) an analyzer makes of TEXT."""
    text = argv_text(text)
    code = check_lang(lang)
    if code is None:
        detected, _ = analyzers.detect_language(text)
        code = detected if detected != "und" else "en"
    tokens = analyzers.get(code).analyze(text)
    if json_out:
        payload = {
            "lang": code,
            "tokens": [{"term": t.term, "position": t.position, "start": t.start, "end": t.end} for t in tokens],
        }
        typer.echo(json.dumps(payload, ensure_ascii=False))
    else:
        output.print_tokens(output.console(), tokens, code)


@command()
@boundary
def explain(
    query_text: Annotated[str, typer.Argument(metavar="QUERY", help="The query.")],
    doc_id: Annotated[str, typer.Argument(help="The document to explain.")],
    passage: Annotated[int, typer.Option("--passage", "-p", min=0, help="Passage number.")] = 0,
    json_out: JsonOpt = False,
    index: IndexOpt = None,
) -> None:
    """Show how a passage's score for QUERY is made (BM25 parts)."""
    idx = open_for_reading(index)
    tree = idx.explain(argv_text(query_text), doc_id, passage)
    if json_out:
        payload = tree.to_dict()
        if isinstance(idx, search.ShardedIndex):
            payload["shards"] = idx.n_shards
        typer.echo(json.dumps(payload, ensure_ascii=False))
    else:
        typer.echo(str(tree))


@command()
@boundary
def check(index: IndexOpt = None) -> None:
    """Verify every file of the index against its checksum; exit 3 naming a damaged file."""
    idx = open_for_reading(index)
    idx.verify()
    output.error(f"ok: {idx.path} ({len(idx)} documents) passed every checksum")


@command()
@boundary
def export(
    index: IndexOpt = None,
    out: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Print the index's stored documents as JSONL (also an older format's), the input `search index` reads."""
    from search.export import export_documents

    path = index_path(index)
    if path is None:
        raise UsageMistake("`search export` reads an index: pass --index PATH or set SEARCH_INDEX")
    lines = (json.dumps(rec, ensure_ascii=False) + "\n" for rec in export_documents(path))
    count = 0
    if out is None:
        for line in lines:
            typer.echo(line, nl=False)
            count += 1
    else:
        tmp = out.with_name(out.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line)
                count += 1
        tmp.replace(out)
    output.error(f"exported: {count} documents from {path}")


@command("eval")
@boundary
def eval_cmd(
    dataset: Annotated[
        Path, typer.Argument(metavar="DATASET_DIR", help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")
    ],
    split: Annotated[str, typer.Option("--split", help="Which qrels/<split>.tsv to evaluate.")] = "test",
    k1: Annotated[float | None, typer.Option("--k1", min=0.0, help="BM25 k1 (default: the index's, 1.2).")] = None,
    b: Annotated[
        float | None, typer.Option("--b", min=0.0, max=1.0, help="BM25 b (default: the index's, 0.75).")
    ] = None,
    lang: Annotated[
        str | None, typer.Option("--lang", "-l", help="Language of corpus and queries (default: detect).")
    ] = None,
    passage_words: Annotated[
        int, typer.Option("--passage-words", min=0, help="Words per passage (0: one passage per document, as BEIR).")
    ] = 0,
    run_file: Annotated[Path | None, typer.Option("--run-file", help="Also write the run as a TREC run file.")] = None,
    index: Annotated[
        Path | None, typer.Option("--index", "-i", help="Where to build (and cache) the index (default: user cache).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Evaluate retrieval quality on a BEIR-format collection: nDCG@10, MRR@10, Recall@100, MAP@100."""
    import hashlib

    import platformdirs

    from search.evaluate import run_beir, write_trec_run

    check_lang(lang)
    if not dataset.is_dir():
        raise _fail(f"{dataset}: no such folder (a BEIR folder holds corpus.jsonl, queries.jsonl, qrels/)", EXIT_USAGE)
    if index is None:
        key = hashlib.sha256(f"{dataset.resolve()}|{lang}|{passage_words}".encode()).hexdigest()[:12]
        index = Path(platformdirs.user_cache_dir("telusur")) / "eval" / f"{dataset.resolve().name}-{key}"
        index.parent.mkdir(parents=True, exist_ok=True)
    result = run_beir(dataset, index_dir=index, split=split, k1=k1, b=b, lang=lang, passage_words=passage_words)
    if run_file is not None:
        write_trec_run(run_file, result.run)
    if json_out:
        payload = {
            "dataset": str(dataset),
            "split": split,
            "queries": result.num_queries,
            "metrics": result.metrics,
            "seconds": result.seconds,
        }
        typer.echo(json.dumps(payload))
        return
    typer.echo(f"{dataset.name} [{split}]: {result.num_queries} queries, {result.seconds:.1f} s")
    for name, value in result.metrics.items():
        typer.echo(f"  {name:<12} {value:.4f}")


@app.command()
@boundary
def serve(
    index: Annotated[
        list[str] | None,
        typer.Option(
            "--index", "-i", metavar="[NAME=]PATH", help="An index to serve, repeatable (default: the seeds index)."
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback only by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Server processes.")] = 1,
    allow_writes: Annotated[
        bool, typer.Option("--allow-writes", help="Accept PUT/DELETE/bulk writes (they need the bearer token).")
    ] = False,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="File holding the bearer token for writes ($TELUSUR_TOKEN).")
    ] = None,
    time_limit: Annotated[
        float, typer.Option("--time-limit", min=0.1, help="Seconds a request may take before a 503.")
    ] = 10.0,
    max_body: Annotated[int, typer.Option("--max-body", min=1024, help="Largest request body in bytes (else 413).")] = 4
    * 1024
    * 1024,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No access log.")] = False,
    cache_mb: Annotated[
        int, typer.Option("--cache-mb", min=0, help="Decoded postings and score caches per worker process, in MB.")
    ] = 128,
    ray: RayOpt = None,
) -> None:
    """Serve indexes over HTTP: the /v1 JSON API and a search page at / (read-only unless --allow-writes)."""
    from .serve import ServeConfig, ServeConfigError, parse_index_specs, run

    try:
        if index:
            indexes = parse_index_specs(index)
        else:
            indexes = {"seeds": str(open_default_index().path)}
        config = ServeConfig(
            indexes=indexes,
            allow_writes=allow_writes,
            token_file=None if token_file is None else str(token_file),
            time_limit=time_limit,
            max_body=max_body,
            quiet=quiet,
            ray=ray,
            cache_mb=cache_mb,
        )
        if ray is not None:
            if allow_writes:
                raise UsageMistake("--ray serves for reading: write with `search index` (the server refreshes)")
            if ray == "local" and workers > 1:
                raise UsageMistake(
                    "--ray local starts a Ray per worker; with --workers N run `ray start --head`, pass its address"
                )
            try:
                import ray as _  # noqa: F401
            except ImportError:
                raise UsageMistake("--ray needs Ray: pip install 'telusur[ray]'") from None
        run(config, host=host, port=port, workers=workers)
    except ServeConfigError as e:
        raise _fail(str(e), EXIT_USAGE) from None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so ``with index.writer()`` rolls back and workers stop."""

    signum = signal.SIGTERM


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def main() -> None:
    """Console-script entry point: SIGTERM stops a command the way Ctrl-C does (cleanly, nothing
    half-done committed), then exits with 128 + the signal number."""
    signal.signal(signal.SIGTERM, _terminate)
    app()
