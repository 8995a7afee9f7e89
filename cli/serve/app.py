"""The ASGI application of ``search serve``: the ``/v1`` JSON API, ``/health``, and the search page at ``/``.

Handlers are plain ``def`` functions: a search is CPU-bound numpy work, so they run in the thread pool and
many searches proceed at once over one ``Index`` (whose snapshots are immutable). Every request first
checks whether another process committed (one ``stat`` of ``meta.json``) and, if so, switches to the new
snapshot; a search holds one snapshot from start to end, so it never sees a half-committed state.

Every error answer is ``{"error": {"code": ..., "message": ...}}`` with a status that means what it says;
no response ever carries a stack trace (those go to the server's log).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import hmac
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import analyzers
import search
from search import (
    Document,
    DocumentNotFound,
    IndexCorrupt,
    IndexLocked,
    InvalidArgument,
    InvalidDocument,
    QuerySyntaxError,
    SearchError,
    searcher,
    segment,
)
from search.index import Index
from search.malloc import share_malloc_arena
from search.sharded import ShardedIndex

from ..hitjson import hit_objects
from . import CONFIG_ENV, ServeConfig

#: Longest query accepted, in characters (a longer one is a 422, not minutes of work).
MAX_QUERY_CHARS = 4096
MAX_K = 1000
MAX_OFFSET = 100_000
#: Entries each analyzer's run cache keeps in a server process (about 200 bytes each, so ~20 MB): snippets
#: re-analyze every returned passage, and the library's bound (a million entries, for bulk indexing) would
#: let a long-lived server grow by ~200 MB per worker before it levels off.
ANALYZER_CACHE_ENTRIES = 100_000
PREFETCH_SHARE = 1.0  # of each bounded cache, filled at start (``Index.prefetch``), shared by the indexes
PREFETCH_SECONDS = 5.0  # at most, per index, searching to fill the score cache
#: A warm-up query per index at start: both languages' analyzers, the language model, the snippet path.
WARMUP_QUERIES = ("the search engine", "mesin pencari yang")
#: Threads a server process runs searches in (anyio's default limit, which the searches had before).
SEARCH_THREADS = 40


class ApiError(Exception):
    """An answer other than 200, raised anywhere in a handler: status, code and a message for people."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class BodyTooLarge(HTTPException):
    """The request body grew past the configured limit while it was being read (an HTTPException, so the
    framework's body parsing passes it on instead of calling it a malformed body)."""

    def __init__(self) -> None:
        super().__init__(413, "the request body is too large")


class SearchResponseJSON(JSONResponse):
    """A search answer's body, encoded as ASCII JSON (``\\uXXXX`` for other characters: the same JSON
    value) by one reused encoder that skips the circular-reference check: the body is plain dicts and
    lists built here. 56 us a 10-hit body with snippets against Starlette's 98 us (its UTF-8 output
    goes through a Python string of the whole body first)."""

    _encoder = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"), check_circular=False)

    def render(self, content: Any) -> bytes:
        return self._encoder.encode(content).encode("ascii")


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """Every error the API sends has this one shape: ``{"error": {"code", "message", ...}}``."""
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers)


# -- the served indexes --------------------------------------------------------------------------------------


class ServedIndex:
    """One configured index and the stamp of the commit it was last refreshed for."""

    def __init__(self, name: str, path: str, ray: str | None = None) -> None:
        self.name = name
        root = Path(path)  # a sharded index commits by replacing its manifest
        if ray is not None and (root / "shards.json").is_file() and not (root / "meta.json").exists():
            self.index = ShardedIndex.open(root, ray_address=ray)
        else:
            self.index = Index.open(path)
        self._meta = root / "meta.json" if (root / "meta.json").exists() else root / "shards.json"
        self._stamp = self._stat()
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int, int]:
        st = os.stat(self._meta)  # meta.json is replaced by rename on every commit: a new inode
        return st.st_ino, st.st_mtime_ns, st.st_size

    def fresh(self) -> Index:
        """The index, switched to the latest commit when another process has committed since the last look."""
        stamp = self._stat()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self.index.refresh()  # reads meta.json itself: a commit after our stat is not missed
                    self._stamp = stamp
        return self.index


def size_caches(cache_mb: int) -> None:
    """The library's caches sized for a server: one budget per worker process, three quarters for decoded
    postings and inflated text blocks, a quarter for BM25 score arrays of frequent terms. The library's
    own sizes (96 MiB and 256 MiB) suit one process searching alone; a server runs one process per core
    for weeks, and a cache that keeps filling for hours reads as a leak."""
    total = max(0, cache_mb) << 20
    segment.DECODED.resize(total * 3 // 4)
    searcher.set_score_cache_bytes(total // 4)


def preload(served: dict[str, ServedIndex]) -> None:
    """Load whatever a query needs now, so the first query is as fast as the hundredth: every analyzer,
    the query language model, each segment's checksums and id column (``Index.warm``), and searches with
    snippets per index (pages in the hot arrays, BM25 length norms). The first request through the HTTP
    stack is made at start too (``warm_http``)."""
    for name in analyzers.names():
        analyzers.get(name).cache_limit = ANALYZER_CACHE_ENTRIES
    analyzers.language_probabilities("warm up the language model")
    for s in served.values():
        s.index.warm()
        for q in WARMUP_QUERIES:
            for hit in s.index.search(q, k=3):
                hit.to_dict()
    for i, s in enumerate(served.values(), 1):  # the bounded caches filled now: memory stays where it starts
        s.index.prefetch(share=PREFETCH_SHARE * i / len(served), seconds=PREFETCH_SECONDS)


#: A request made by the server itself at start (``warm_http``): answered as any other, never logged.
WARMUP_SCOPE_KEY = "telusur.warmup"


async def warm_http(app: Any, served: dict[str, ServedIndex]) -> None:
    """One GET search per index and a ``/health`` through the whole ASGI stack, on the serving event loop
    before the first connection: the thread pool's first thread and every first-call path of the stack
    are paid here rather than by the first client."""
    targets = [(f"/v1/indexes/{name}/search", f"q={WARMUP_QUERIES[0].replace(' ', '+')}") for name in served]
    for path, query in [*targets, ("/health", "")]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1")],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 0),
            WARMUP_SCOPE_KEY: True,
        }

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            pass

        await app(scope, receive, send)


# -- request and response models (they make /openapi.json) ---------------------------------------------------


class SearchParams(BaseModel):
    """A search: the same parameters in the query string (GET) or a JSON body (POST)."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(max_length=MAX_QUERY_CHARS, description='The query: words, "a phrase", +must, -not, OR, title:w.')
    k: int = Field(10, ge=0, le=MAX_K, description="How many hits.")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Skip this many hits (paging).")
    lang: Literal["id", "en"] | None = Field(None, description="Only passages in this language.")
    per_document: bool = Field(True, description="Each document's best passage only.")
    snippets: bool = Field(True, description="Compute snippet, snippet_highlights and highlights.")
    explain: bool = Field(False, description="Add each hit's score explanation tree.")
    filter: str | None = Field(
        None, max_length=MAX_QUERY_CHARS, description="Filters on declared fields: 'source:bps year:>=2020'."
    )
    facets: list[str] | None = Field(
        None, max_length=64, description="Declared fields to count the matching documents by (all matches)."
    )
    fuzzy: bool = Field(False, description="Every word also finds words a typo or two away (exact ones first).")
    prefix_last: bool = Field(False, description="The last word is a prefix (search as you type).")


class HitModel(BaseModel):
    """One hit: exactly the ``search query --json`` hit object (offsets are [start, end) characters)."""

    rank: int
    doc_id: str
    passage: int
    score: float
    lang: str
    title: str
    text: str
    snippet: str | None = Field(None, description="Absent with snippets=false.")
    snippet_highlights: list[list[int]] | None = None
    highlights: list[list[int]] | None = None
    meta: dict[str, Any]
    explanation: dict[str, Any] | None = Field(None, description="With explain=true: the BM25 tree.")


class SearchResponse(BaseModel):
    took_ms: float
    hits: list[HitModel]
    shards: int | None = Field(None, description="A sharded index: how many shards answered the query.")
    partial: bool | None = Field(None, description="A sharded index: whether a shard did not answer.")
    missing_shards: list[int] | None = Field(None, description="A sharded index: the shards that did not answer.")
    suggestion: str | None = Field(
        None, description="Did you mean: the query with the words the index does not know corrected (absent if none)."
    )
    facets: dict[str, dict[str, int]] | None = Field(
        None, description="With facets: per field, how many matching documents hold each value."
    )


class DocumentBody(BaseModel):
    """A document to store under the id in the URL (PUT), or one JSONL line of a bulk request (with ``id``)."""

    model_config = ConfigDict(extra="forbid")

    text: str
    title: str = ""
    lang: Literal["id", "en"] | None = None
    meta: dict[str, Any] | None = None


class BulkLine(DocumentBody):
    id: str


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody} for s in (400, 401, 403, 404, 409, 413, 422, 500, 503)
}


BEARER = HTTPBearer(auto_error=False, description="The token of --token-file, else of $TELUSUR_TOKEN.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


def check_token(token: str | None, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Writes need the server started with --allow-writes (403 otherwise) and the bearer token (401
    when it is missing, 403 when it is wrong; compared in constant time)."""
    if token is None:
        raise ApiError(403, "read_only", "this server is read-only (start it with --allow-writes to write)")
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", "writes need Authorization: Bearer TOKEN", {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise ApiError(403, "forbidden", "the bearer token is not valid")


# -- the application ---------------------------------------------------------------------------------------------


def _stop_handlers() -> dict[int, Any]:
    """The process's SIGTERM and SIGINT handlers (none outside the main thread, where they cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}


def create_app(config: ServeConfig) -> Guard:
    """The application for ``config``: indexes opened and models loaded before it returns."""
    size_caches(config.cache_mb)
    handlers = _stop_handlers()
    served = {name: ServedIndex(name, path, config.ray) for name, path in config.indexes.items()}
    # joining Ray installs its own SIGTERM handler (a C-level report, then sys.exit): uvicorn re-raises
    # the signal after its graceful stop, which then ended every --ray server in a traceback. The
    # process's own handlers come back, so a stop is the same with Ray as without
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)
    preload(served)
    token = config.token() if config.allow_writes else None

    def require_writes(credentials: Credentials) -> None:
        check_token(token, credentials)

    page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
    page_headers = {"Content-Security-Policy": _page_policy(page), "X-Content-Type-Options": "nosniff"}

    outer: list[Guard] = []

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # searches run in the event loop's default executor, which ends with the loop; as many threads as
        # anyio's default limiter allowed, so slow searches queue no sooner than before
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=SEARCH_THREADS, thread_name_prefix="search")
        )
        await warm_http(outer[0], served)
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="telusur",
        version=search.__version__,
        description="Full-text search for Indonesian and English text: BM25 passages with snippets.",
        docs_url=None,  # the Swagger page loads its scripts from a CDN; /openapi.json is served
        redoc_url=None,
    )

    def get_index(name: str) -> ServedIndex:
        try:
            return served[name]
        except KeyError:
            raise ApiError(404, "index_not_found", f"no index named {name!r}; served: {', '.join(served)}") from None

    # -- errors ----------------------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    def _api_error(request: Request, e: ApiError) -> Response:
        return error_response(e.status, e.code, e.message, e.headers)

    @app.exception_handler(QuerySyntaxError)
    def _bad_query(request: Request, e: QuerySyntaxError) -> Response:
        return error_response(400, "bad_query", f"cannot read the query: {e}", position=e.position)

    @app.exception_handler(DocumentNotFound)
    def _no_doc(request: Request, e: DocumentNotFound) -> Response:
        return error_response(404, "document_not_found", str(e))

    @app.exception_handler(IndexLocked)
    def _locked(request: Request, e: IndexLocked) -> Response:
        return error_response(409, "index_locked", f"{e}".replace(" or pass a timeout", " (retry later)"))

    @app.exception_handler(InvalidArgument)
    def _invalid_argument(request: Request, e: InvalidArgument) -> Response:
        return error_response(422, "invalid_parameter", str(e))

    @app.exception_handler(InvalidDocument)
    def _invalid_document(request: Request, e: InvalidDocument) -> Response:
        return error_response(422, "invalid_document", f"{e} (nothing was changed)")

    @app.exception_handler(IndexCorrupt)
    def _corrupt(request: Request, e: IndexCorrupt) -> Response:
        _log_exception(request, e)
        return error_response(500, "index_corrupt", str(e))

    @app.exception_handler(SearchError)
    def _search_error(request: Request, e: SearchError) -> Response:
        _log_exception(request, e)
        return error_response(500, "search_error", str(e))

    @app.exception_handler(BodyTooLarge)
    def _too_large(request: Request, e: BodyTooLarge) -> Response:
        return _too_large_response(config.max_body)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, e: RequestValidationError) -> Response:
        return invalid_parameters(e.errors())

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, e: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        message = "no such endpoint (see /openapi.json)" if e.status_code == 404 else str(e.detail)
        return error_response(e.status_code, code, message, getattr(e, "headers", None))

    @app.exception_handler(Exception)
    def _internal(request: Request, e: Exception) -> Response:
        _log_exception(request, e)
        return error_response(500, "internal_error", "the server failed on this request (the details are in its log)")

    # -- reading -----------------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def page_route() -> Response:
        return HTMLResponse(page, headers=page_headers)

    @app.get("/health", summary="200 once this process has loaded its indexes and models")
    def health() -> dict[str, Any]:
        return {"status": "ok", "pid": os.getpid(), "indexes": list(served)}

    @app.get("/v1/indexes", summary="The served indexes")
    def list_indexes() -> dict[str, Any]:
        out = []
        for name, s in served.items():
            st = s.fresh().stats()
            out.append(
                {
                    "name": name,
                    "path": st["path"],
                    "documents": st["documents"],
                    "passages": st["passages"],
                    "generation": st["generation"],
                    "languages": sorted(st["languages"]),
                }
            )
        return {"indexes": out}

    @app.get("/v1/indexes/{name}", summary="What Index.stats() gives", responses=ERRORS)
    def index_stats(name: str) -> dict[str, Any]:
        return dict(name=name, **get_index(name).fresh().stats())

    def run_search(s: ServedIndex, p: SearchParams) -> Response:
        start = time.perf_counter()
        idx = s.fresh()
        extra: dict[str, Any] = {}
        if p.filter is not None:
            extra = {"filter": p.filter}
        words_extra = {"fuzzy": True} if p.fuzzy else {}
        if p.prefix_last:
            words_extra["prefix_last"] = True
        hits = idx.search(
            p.q, k=p.k, offset=p.offset, lang=p.lang, per_document=p.per_document, **extra, **words_extra
        )
        objects = hit_objects(hits, p.offset, snippets=p.snippets)
        if p.explain:
            query = idx.parse(p.q, p.filter) if extra else p.q
            for obj, hit in zip(objects, hits):
                obj["explanation"] = idx.explain(query, hit.doc_id, hit.passage, **words_extra).to_dict()
        facets = idx.facets(p.q, p.facets, lang=p.lang, **extra) if p.facets else None
        took = (time.perf_counter() - start) * 1000.0
        body: dict[str, Any] = {"took_ms": round(took, 3), "hits": objects}
        # "did you mean": for a word the index does not know, or a rare one when nothing matched
        suggestion = idx.suggest(p.q, rare_words=not hits) if hasattr(idx, "suggest") else None
        if suggestion is not None:
            body["suggestion"] = suggestion
        if facets is not None:
            body["facets"] = {name: {str(v): n for v, n in counts.items()} for name, counts in facets.items()}
        if isinstance(idx, ShardedIndex):  # shards on Ray may fail to answer: say so, never rank silently
            missing = list(getattr(hits, "missing_shards", ()))
            body.update(shards=idx.n_shards, partial=bool(missing), missing_shards=missing)
        return SearchResponseJSON(body)

    @app.get(
        "/v1/indexes/{name}/search", response_model=SearchResponse, responses=ERRORS, summary="Search (query string)"
    )
    def search_get(name: str, params: Annotated[SearchParams, Query()]) -> Response:
        return run_search(get_index(name), params)

    @app.post("/v1/indexes/{name}/search", response_model=SearchResponse, responses=ERRORS, summary="Search (JSON)")
    def search_post(name: str, params: SearchParams) -> Response:
        return run_search(get_index(name), params)

    @app.get("/v1/indexes/{name}/docs/{doc_id:path}", responses=ERRORS, summary="One stored document")
    def get_document(name: str, doc_id: str) -> dict[str, Any]:
        doc = get_index(name).fresh().get(doc_id)
        if doc is None:
            raise ApiError(404, "document_not_found", f"no document {doc_id!r} in index {name!r}")
        return {"id": doc.id, "title": doc.title, "text": doc.text, "lang": doc.lang, "meta": doc.meta or {}}

    # -- writing (with --allow-writes and the bearer token) -------------------------------------------------------
    def generation(idx: Index) -> int:
        return int(idx.stats()["generation"])

    @app.put(
        "/v1/indexes/{name}/docs/{doc_id:path}",
        responses=ERRORS,
        dependencies=[Depends(require_writes)],
        summary="Add or replace one document",
    )
    def put_document(name: str, doc_id: str, body: DocumentBody) -> Response:
        s = get_index(name)
        doc = Document(id=doc_id, text=body.text, title=body.title, lang=body.lang, meta=body.meta)
        doc.validate()
        idx = s.fresh()
        with idx.writer(timeout=config.write_wait) as w:
            created = doc_id not in idx
            w.update(doc)
        return JSONResponse(
            {"id": doc_id, "created": created, "generation": generation(idx)}, status_code=201 if created else 200
        )

    @app.delete(
        "/v1/indexes/{name}/docs/{doc_id:path}",
        responses=ERRORS,
        dependencies=[Depends(require_writes)],
        summary="Delete one document",
    )
    def delete_document(name: str, doc_id: str) -> dict[str, Any]:
        idx = get_index(name).fresh()
        with idx.writer(timeout=config.write_wait) as w:
            gone = w.delete(doc_id)
        if not gone:
            raise ApiError(404, "document_not_found", f"no document {doc_id!r} in index {name!r}")
        return {"id": doc_id, "deleted": True, "generation": generation(idx)}

    @app.post(
        "/v1/indexes/{name}/docs:bulk",
        responses=ERRORS,
        dependencies=[Depends(require_writes)],
        summary="Add or replace many documents: a JSONL body, one {id, text, title?, lang?, meta?} per line",
        openapi_extra={"requestBody": {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
    )
    async def bulk(name: str, request: Request) -> Response:
        s = get_index(name)
        body = await request.body()  # bounded by the body limit
        return await run_in_threadpool(_bulk, s, body, config.write_wait)

    outer.append(Guard(FastSearch(app, served, run_search), config))
    return outer[0]


def _bulk(s: ServedIndex, body: bytes, write_wait: float) -> Response:
    docs: list[Document] = []
    seen: set[str] = set()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, "bad_request", f"the body is not UTF-8 (byte {e.start})") from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = BulkLine.model_validate_json(line)
        except ValueError as e:
            first = e.errors()[0] if hasattr(e, "errors") else {"msg": str(e), "loc": ()}
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ApiError(
                422,
                "invalid_document",
                f"line {n}: {where + ': ' if where else ''}{first['msg']} (nothing was changed)",
            ) from None
        if obj.id in seen:
            raise ApiError(
                422, "invalid_document", f"line {n}: document id {obj.id!r} appears twice (nothing was changed)"
            )
        seen.add(obj.id)
        doc = Document(id=obj.id, text=obj.text, title=obj.title, lang=obj.lang, meta=obj.meta)
        try:
            doc.validate()
        except InvalidDocument as e:
            raise ApiError(422, "invalid_document", f"line {n}: {e} (nothing was changed)") from None
        docs.append(doc)
    idx = s.fresh()
    with idx.writer(timeout=write_wait) as w:
        existing = [d for d in docs if d.id in idx]
        for doc in existing:
            w.update(doc)
        added = w.add_many(d for d in docs if d.id not in idx)
    return JSONResponse({"added": added, "updated": len(existing), "generation": int(idx.stats()["generation"])})


def invalid_parameters(errors: Any) -> Response:
    """The 422 (or 400 for a body that is not JSON) for pydantic's validation errors, whichever path found them."""
    if any(err.get("type") == "json_invalid" for err in errors):
        return error_response(400, "bad_request", "the request body is not valid JSON")
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path"))
    return error_response(422, "invalid_parameter", f"{where}: {first.get('msg')}" if where else first["msg"])


def _log_exception(request: Request, e: BaseException) -> None:
    sys.stderr.write(f"error in {request.method} {request.url.path}:\n{''.join(traceback.format_exception(e))}")
    sys.stderr.flush()


def _too_large_response(limit: int) -> Response:
    return error_response(413, "body_too_large", f"the request body is larger than the server's limit of {limit} bytes")


def _page_policy(page: str) -> str:
    """A Content-Security-Policy allowing only the page's own inline script and style (by hash) and calls
    to this server: even a bug that put document text into HTML could not run a script."""
    import re

    def digest(kind: str) -> str:
        blocks = re.findall(rf"<{kind}>(.*?)</{kind}>", page, flags=re.S)
        return " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(b.encode("utf-8")).digest()).decode() + "'" for b in blocks
        )

    return (
        f"default-src 'none'; script-src {digest('script')}; style-src {digest('style')}; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


#: The hot path's URL: ``GET /v1/indexes/{name}/search`` (``{name}`` as FastAPI's route matches it).
SEARCH_ROUTE = re.compile(r"/v1/indexes/([^/]+)/search")


#: SearchParams fields given as a list (repeated in the query string), the rest take their last value.
def _is_sequence(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    return origin is not None and any(_is_sequence(a) for a in get_args(annotation))  # X | None, Annotated


_LIST_FIELDS = frozenset(name for name, f in SearchParams.model_fields.items() if _is_sequence(f.annotation))


class FastSearch:
    """``GET /v1/indexes/{name}/search`` answered without FastAPI's per-request machinery, every other
    request passed on to the FastAPI app.

    A search is the request a server answers all day, and FastAPI's generic path cost about as much CPU as
    the search itself (profiled: resolving the query-parameter model field by field, then the middleware
    stack). This path reads the query string as Starlette does, validates it
    with the same ``SearchParams`` model, runs the same ``run_search``, and hands any exception to the
    app's own exception handlers, so both paths give the same answers and errors (a test compares them);
    the route in the FastAPI app stays the documented one (``/openapi.json``) and the reference.
    """

    def __init__(self, app: FastAPI, served: dict[str, ServedIndex], run_search: Any) -> None:
        self.app = app
        self.handlers = app.exception_handlers  # the same handler for the same exception on both paths
        self.served = served
        self.run_search = run_search

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            m = SEARCH_ROUTE.fullmatch(scope["path"])
            if m is not None and m.group(1) in self.served:  # an unknown name: the app answers its 404
                await self._search(self.served[m.group(1)], scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _search(self, s: ServedIndex, scope: dict, receive: Any, send: Any) -> None:
        try:
            try:
                params = SearchParams.model_validate(_query_params(scope))
            except ValidationError as e:
                response = invalid_parameters(e.errors())
            else:
                # in a thread, as FastAPI runs a def handler: the time limit can answer while a slow search
                # runs, and other connections are served meanwhile; the loop's own executor rather than
                # anyio's run_in_threadpool (its cancel scopes and capacity limiter cost ~0.3 ms a request
                # on loopback here, a third of what HTTP may add to a search); its threads end with the loop
                loop = asyncio.get_running_loop()
                response = await loop.run_in_executor(None, self.run_search, s, params)
        except Exception as e:
            handler = next((self.handlers[c] for c in type(e).__mro__ if c in self.handlers), None)
            if handler is None:
                raise
            response = handler(Request(scope, receive), e)
        await response(scope, receive, send)


def _query_params(scope: dict) -> dict[str, Any]:
    """The query string as FastAPI hands it to a parameter model: list fields get every value, the
    others the last one (Starlette's ``QueryParams``, decoded the same way)."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if key in _LIST_FIELDS:
            out.setdefault(key, []).append(value)
        else:
            out[key] = value
    return out


class Guard:
    """ASGI middleware around the whole app: the request body limit (413), the per-request time limit (503)
    and one access-log line per request (method, path, status, milliseconds)."""

    def __init__(self, app: FastAPI, config: ServeConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = {"status": 0, "started": False, "closed": False}
        limit = self.config.max_body

        async def guarded_send(message: dict) -> None:
            if state["closed"]:
                return  # answered already (the time limit): the late handler's answer is dropped
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large_response(limit)(scope, receive, guarded_send)
            self._log(scope, state["status"], start)
            return
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        timed_out = False
        try:
            if _TIMEOUT is not None:
                # Python >= 3.11: the deadline cancels this task's await and is told apart from any other
                # cancellation; no second task per request (that cost about 0.1 ms a request)
                try:
                    async with _TIMEOUT(self.config.time_limit):
                        await self.app(scope, limited_receive, guarded_send)
                except TimeoutError:
                    timed_out = True
            else:
                timed_out = await _run_with_deadline(self.app(scope, limited_receive, guarded_send), self.config)
        except Exception:  # already answered with a 500 and logged by the app's handler
            if not state["started"]:
                await send_error(send, 500, "internal_error", "the server failed on this request")
                state["status"] = 500
        if timed_out:
            # a search thread cannot be stopped; it finishes in the background and its answer is dropped
            if not state["started"]:
                await send_error(send, 503, "timeout", f"the request took longer than {self.config.time_limit:g} s")
                state["status"] = 503
            state["closed"] = True
        self._log(scope, state["status"], start)

    def _log(self, scope: dict, status: int, start: float) -> None:
        if self.config.quiet or scope.get(WARMUP_SCOPE_KEY):
            return
        ms = (time.perf_counter() - start) * 1000.0
        client = scope.get("client") or ("-", 0)
        qs = scope.get("query_string", b"").decode("latin-1")
        target = scope["path"] + (f"?{qs}" if qs else "")
        sys.stderr.write(
            f'{client[0]} "{scope["method"]} {target} HTTP/{scope.get("http_version", "1.1")}" {status} {ms:.1f}ms\n'
        )
        sys.stderr.flush()


def _consume(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()


#: ``asyncio.timeout`` where the running Python has it (3.11+), else None.
_TIMEOUT = getattr(asyncio, "timeout", None)


async def _run_with_deadline(coro: Any, config: ServeConfig) -> bool:
    """Python 3.10: run ``coro`` as its own task and wait at most the time limit; True if it timed out
    (then the task is cancelled and its late answer dropped). Its exception, if any, is raised here."""
    task = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait({task}, timeout=config.time_limit)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        task.result()
        return False
    task.add_done_callback(_consume)
    task.cancel()
    return True


async def send_error(send: Any, status: int, code: str, message: str) -> None:
    """``error_response`` sent straight over ASGI (for the guard that wraps the app, outside FastAPI)."""
    response = error_response(status, code, message)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def _content_length(scope: dict) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def app_from_environment() -> Guard:
    """uvicorn's factory in every worker process: the configuration comes from ``$TELUSUR_SERVE_CONFIG``."""
    share_malloc_arena()  # before the search threads start: their heaps would otherwise grow apart
    app = create_app(ServeConfig.from_json(os.environ[CONFIG_ENV]))
    # a server process only (not an app made in a caller's process): what start-up built lives as long
    # as the process, so out of the collector's sight a full collection walks only what requests create
    # (34 ms -> under 1 ms on a 100k-passage index)
    gc.collect()
    gc.freeze()
    return app
