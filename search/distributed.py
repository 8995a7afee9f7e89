"""Shards as Ray actors: a sharded index searched by a coordinator here and one actor per shard.

Each actor (``ShardServer``) opens one shard at the commit the manifest names and answers the shard
protocol of ``search.sharded`` (``statistics``, ``search``, ``fetch``; plus ``explain`` and what ``get``,
``stats`` and ``verify`` need). The coordinator (``RayShardedIndex``) reads the manifest and the
document-frequency table itself, plans each query once, fans each phase out to every actor at once and
merges the rows exactly as the in-process ``ShardedIndex`` does, so both answer the same hits, order and
scores.

Faults: an actor restarts after a crash (``max_restarts``, Ray reopens the shard with the same
arguments); a call lost with a dead actor is sent once more; a shard that still does not answer within
the query's ``timeout`` is left out and the answer says so (``SearchResult.partial``, ``missing_shards``)
instead of ranking silently without it. Ray is imported only here, and this module only when a caller
asks for Ray (``ShardedIndex.open(path, ray_address=...)``, ``--ray``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .bm25 import Explanation, FixedStatistics
from .documents import Document
from .errors import DocumentNotFound, IndexCorrupt, InvalidArgument, InvalidDocument, SearchError, WorkerFailed
from .index import check_facet_fields
from .query import ParsedQuery
from .selection import check_count
from .sharded import (
    Ask,
    DetachedHit,
    LocalShard,
    QueryPlan,
    Row,
    SearchResult,
    ShardedIndex,
    _load_df_table,
    _open_shard,
    fetched_rows,
    hit_state,
    languages_need_evaluating,
    matched_rows,
    merge_rows,
    read_manifest,
    shard_of,
    sum_facets,
    sum_frequencies,
)

#: a page of at most this many rows over all shards (offset + k, times the shards) is searched and
#: fetched in one call per shard (one round trip; every shard sends its rows' stored text); a larger
#: one in two (search, then fetch only the page's hits)
FETCH_WITH_SEARCH_ROWS = 200
#: query strings whose plan and global statistics are kept per commit (``RayShardedIndex._decided``)
PLAN_CACHE = 4096
#: seconds a query waits for its shards before answering without the missing ones (flagged partial)
DEFAULT_TIMEOUT = 10.0
#: times Ray restarts a crashed shard actor (-1: without limit)
DEFAULT_MAX_RESTARTS = -1
#: times Ray sends a call lost with a crashed actor again, to the restarted actor (the coordinator
#: sends it once more itself when the error still reaches it, e.g. with 0 here)
DEFAULT_MAX_TASK_RETRIES = 1


#: the default per-query timeout in seconds for indexes opened without ``timeout`` (``search query --ray``
#: and ``search serve --ray`` read it from here; "none" waits without limit)
TIMEOUT_ENV = "TELUSUR_RAY_TIMEOUT"

#: CPUs each shard actor reserves when ``actor_cpus`` is not given (default 0: actors only hold a
#: shard; on a cluster, 1 keeps one shard per core and none on a head started with --num-cpus 0)
ACTOR_CPUS_ENV = "TELUSUR_RAY_ACTOR_CPUS"


class RayUnavailable(SearchError):
    """Ray is asked for but not installed (the ``ray`` extra)."""


def _ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable("shards on Ray need Ray: pip install 'telusur[ray]'") from None
    return ray


def connect(address: str, num_cpus: int | None = None) -> Any:
    """Join the Ray cluster at ``address``, or start one here for ``"local"`` (``num_cpus`` bounded:
    by default at most 4 of this machine's cores). A Ray already joined by this process is reused.
    Usage reporting is off and worker output is not copied to this process (stdout stays ours)."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.ERROR, include_dashboard=False)
    if address == "local":
        if num_cpus is None:
            num_cpus = min(os.cpu_count() or 1, 4)
        ray.init(num_cpus=num_cpus, **kwargs)
    else:
        if not isinstance(address, str) or not address:
            raise InvalidArgument(f"ray_address must be 'local' or a Ray address, not {address!r}")
        ray.init(address=address, **kwargs)
    return ray


def _env_timeout() -> float | None:
    """The per-query timeout from ``TELUSUR_RAY_TIMEOUT`` (default ``DEFAULT_TIMEOUT``)."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    if raw.lower() == "none":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise InvalidArgument(f"{TIMEOUT_ENV} must be a positive number of seconds or 'none', not {raw!r}")
    return value


#: plans (with their statistics and weights) an actor keeps under the coordinator's keys
KEPT_PLANS = 1024


class ShardServer:
    """One shard held open in a Ray actor, answering the shard protocol with plain data.

    The query calls (``statistics``, ``search``, ``search_fetch``, ``search_matched``) name their plan
    by a key: the coordinator sends the plan itself to an actor once, then only the key, and the actor
    keeps the last ``KEPT_PLANS`` plans (one object per plan: its caches keyed by the plan hold across
    calls). A two-phase query sends its plan with ``statistics`` and then only the key with the global
    statistics and weights: the search runs on the very plan object the statistics call analyzed
    (``LocalShard`` reuses that call's postings and query analysis for it). An actor that does not
    know a key (restarted, or its cache moved on), or knows its plan but not the statistics a call
    relies on, answers None and is sent everything again.

    Each query call is one JSON text in UTF-8 bytes, ``[key, [arguments], [statistics json, weights]
    or null]``; when it carries the plan, a fourth element holds the plan's texts (or null, and the plan
    object is a second argument): Ray serializes each argument apart, at a cost per argument on both
    ends (an object through cloudpickle). A plan parsed from a query and filter text, with nothing
    rewritten or expanded (``QueryPlan.text_form``), is sent as those texts with the fields they were
    parsed with, and parsed again here: a two-phase query is 0.2-0.5 ms faster so (one process
    alternating both ways, 2 shards, round trips of 1.2-2.8 ms; ``benchmarks/plan_texts_ab.py``).
    Answers are JSON bytes too (scores round-trip exactly): Ray sends bytes as they are, where a list
    of rows and hit states would go through cloudpickle object by object; bytes cost about 0.1 ms less
    a query than the same JSON as ``str`` (alternating processes, 2 shards on this machine)."""

    def __init__(self, path: str, number: int, n_shards: int, folder: str, commit: dict[str, Any]) -> None:
        self.number, self.n_shards = number, n_shards
        self.shard = LocalShard(_open_shard(Path(path) / folder, commit))
        self._kept: OrderedDict[str, tuple[QueryPlan, FixedStatistics | None, Any]] = OrderedDict()
        # query texts parsed here, per set of fields the coordinators parse with (one, in practice)
        self._parsed: dict[str, dict[tuple[str, str | None], Any]] = {}

    def ping(self) -> int:
        return os.getpid()

    def warm(self) -> None:
        """``Index.warm`` on this actor's shard, in its own process."""
        self.shard.index.warm()

    def prefetch(self, share: float, seconds: float) -> dict[str, int]:
        """``Index.warm`` then ``Index.prefetch`` on this actor's shard, in its own process and caches: a
        long-lived actor loads what queries need at start rather than over its first queries."""
        self.shard.index.warm()
        return self.shard.index.prefetch(share, seconds)

    def _kept_plan(self, call: bytes, plan: QueryPlan | None, scoring: bool = True) -> tuple[Any, list[Any]] | None:
        """The (plan, statistics, weights) a call names and its arguments: the plan sent (``plan``, or
        parsed from the texts the call carries; then kept under the call's key) or kept under the key;
        the statistics and weights sent with the call (kept with the plan), else those kept with it.
        None when there is no plan under the key, or (``scoring``) no statistics for it."""
        key, args, stats, *form = json.loads(call)
        kept = self._kept
        if plan is None and form and form[0] is not None:
            fields = json.dumps(form[0][-1], sort_keys=True)
            cache = self._parsed.get(fields)
            if cache is None:
                if len(self._parsed) >= 8:  # coordinators with other fields: never more than a few
                    self._parsed.clear()
                cache = self._parsed[fields] = {}
            plan = QueryPlan.from_text_form(form[0], cache)
        if plan is not None:
            got: Any = (plan, None, None)
        else:
            got = kept.get(key)
            if got is None:
                return None
        if stats is not None:
            got = (got[0], FixedStatistics.from_json(stats[0]), stats[1])
        elif scoring and got[1] is None:  # only a statistics call's plan: what to score with never came
            return None
        kept[key] = got
        kept.move_to_end(key)
        if len(kept) > KEPT_PLANS:
            kept.popitem(last=False)
        return got, args

    def statistics(self, call: bytes, plan: QueryPlan | None = None) -> bytes | None:
        """Phase one (``LocalShard.statistics``) for the plan the call names, kept for phase two, as JSON."""
        got = self._kept_plan(call, plan, scoring=False)
        if got is None:
            return None
        return json.dumps(self.shard.statistics(got[0][0])).encode()

    def frequencies(self, call: bytes, plan: QueryPlan | None = None) -> bytes | None:
        """Phase one without evaluating (``LocalShard.frequencies``) for the plan the call names, kept
        for phase two, as JSON."""
        got = self._kept_plan(call, plan, scoring=False)
        if got is None:
            return None
        return json.dumps(self.shard.frequencies(got[0][0])).encode()

    def _states(self, plan: QueryPlan, rows: list[Row]) -> list[dict[str, Any]]:
        return [hit_state(h) for h in self.shard.fetch(plan, rows)]

    def search(self, call: bytes, plan: QueryPlan | None = None) -> bytes | None:
        """This shard's best rows (``LocalShard.search``; arguments ``[need, per_document]``), as JSON."""
        got = self._kept_plan(call, plan)
        if got is None:
            return None
        (query, stats, weights), (need, per_document) = got
        return json.dumps(self.shard.search(query, stats, weights, need, per_document)).encode()

    def fetch(self, plan: QueryPlan, rows: list[Row]) -> bytes:
        return json.dumps(self._states(plan, [tuple(r) for r in rows])).encode()

    def search_matched(self, call: bytes, plan: QueryPlan | None = None) -> bytes | None:
        """Where the query matches here and the best rows under the weights of those languages and of
        all (both phases in one call: ``LocalShard.search_matched``; arguments ``[need, per_document,
        fetch]``), with, when ``fetch``, the hits' state of the first rows then of the others' rows not
        among them, as JSON."""
        got = self._kept_plan(call, plan)
        if got is None:
            return None
        (query, stats, _), (need, per_document, fetch) = got
        matched, rows, every = self.shard.search_matched(query, stats, need, per_document)
        states = self._states(query, fetched_rows(rows, every)) if fetch and rows else None
        return json.dumps([matched, rows, every, states]).encode()

    def search_fetch(self, call: bytes, plan: QueryPlan | None = None) -> bytes | None:
        """``search`` and ``fetch`` of every row in one call (one round trip for a small page), as JSON."""
        got = self._kept_plan(call, plan)
        if got is None:
            return None
        (query, stats, weights), (need, per_document) = got
        rows = self.shard.search(query, stats, weights, need, per_document)
        return json.dumps([rows, self._states(query, rows) if rows else []]).encode()

    def explain(
        self, plan: QueryPlan, stats: dict[str, Any], weights: dict[str, float], doc_id: str, passage: int
    ) -> Explanation:
        return self.shard.explain(plan, FixedStatistics.from_json(stats), weights, doc_id, passage)

    def words(self, plan: QueryPlan, texts: list[str], keys: list[str]) -> tuple[list[bool], dict[str, int]]:
        return self.shard.words(plan, texts, keys)

    def expansions(self, plan: QueryPlan, nodes: list[Any]) -> list[dict[str, Any]]:
        return self.shard.expansions(plan, nodes)

    def facets(self, plan: QueryPlan, names: list[str]) -> dict[str, dict[str | int, int]]:
        return self.shard.facets(plan, names)

    def count(self) -> int:
        return len(self.shard.index)

    def has(self, doc_id: str) -> bool:
        return doc_id in self.shard.index

    def get(self, doc_id: str) -> Document | None:
        return self.shard.index.get(doc_id)

    def content_hashes(self) -> dict[str, str]:
        return self.shard.index.content_hashes()

    def stats(self) -> dict[str, Any]:
        return self.shard.index.stats()

    def verify(self) -> None:
        self.shard.index.verify()
        for doc_id in self.shard.snapshot.id_map():
            if shard_of(doc_id, self.n_shards) != self.number:
                raise IndexCorrupt(
                    f"document {doc_id!r} is in shard {self.number} but routes to shard"
                    f" {shard_of(doc_id, self.n_shards)}",
                    str(self.shard.index.path),
                )


def _cause(error: Exception) -> BaseException:
    """The exception an actor method raised (a ``SearchError`` stays itself), else ``error``."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


class RayShardedIndex(ShardedIndex):
    """A sharded index whose shards are Ray actors; reads as ``ShardedIndex`` does (same answers).

    Writing goes through the in-process ``ShardedIndex`` (``ShardedIndex.open(path)``); ``refresh``
    starts actors at the new commit and stops the old ones.
    """

    #: query strings whose plan and statistics are kept for the current commit (0: none)
    plan_cache: int = PLAN_CACHE

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        *,
        timeout: float | None | str = "env",
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        max_task_retries: int = DEFAULT_MAX_TASK_RETRIES,
        actor_cpus: float | None = None,
    ) -> None:
        import threading

        self.path = path
        from .settings import IndexSettings

        self.settings = IndexSettings.from_json(manifest["settings"])
        if timeout == "env":
            timeout = _env_timeout()
        if timeout is not None and (isinstance(timeout, (str, bool)) or not timeout > 0):
            raise InvalidArgument(f"timeout must be a positive number of seconds or None, not {timeout!r}")
        self.timeout = timeout
        if actor_cpus is None:  # the command line's way to reserve cores per shard on a cluster
            actor_cpus = float(os.environ.get(ACTOR_CPUS_ENV, "0") or 0)
        # SPREAD: shards over every node rather than packed onto the first (a cluster's point)
        self._options = dict(
            scheduling_strategy="SPREAD",
            max_restarts=int(max_restarts),
            max_task_retries=int(max_task_retries),
            num_cpus=actor_cpus,
        )
        self._refresh_lock = threading.Lock()
        self._parsed: dict[tuple[str, str | None], ParsedQuery] = {}
        self._analyses: dict[tuple, tuple[list[str], list[int], list[int]]] = {}
        self._plans: dict[tuple[Any, ...], list[Any]] = {}
        self._plans_lock = threading.Lock()
        self._keys = itertools.count()
        self._sent: list[set[str]] = []
        self._actors: list[Any] = []
        self._start(manifest)

    @classmethod
    def open(  # type: ignore[override]
        cls,
        path: str | Path,
        *,
        verify: bool = False,
        ray_address: str = "local",
        num_cpus: int | None = None,
        **options: Any,
    ) -> RayShardedIndex:
        """Join (or start) Ray, then start one actor per shard at the manifest's commit and wait until
        every one has opened its shard (a shard that cannot open is an error here, not a partial answer)."""
        path = Path(path)
        manifest = read_manifest(path)
        connect(ray_address, num_cpus)
        index = cls(path, manifest, **options)
        if verify:
            index.verify()
        return index

    def _start(self, manifest: dict[str, Any]) -> None:
        ray = _ray()
        server = ray.remote(ShardServer).options(**self._options)
        n = int(manifest["shards"])
        actors = [
            server.remote(str(self.path), i, n, folder, commit)
            for i, (folder, commit) in enumerate(zip(manifest["folders"], manifest["commits"]))
        ]
        try:
            ray.get([a.ping.remote() for a in actors])  # every shard opened (or its error raised here)
        except Exception as e:
            for a in actors:
                ray.kill(a)
            raise _cause(e) from None
        old = self._actors
        self._sent = [set() for _ in actors]  # per actor: the plan keys it was sent (_keyed)
        self._state = (manifest, [])
        self._dfs = _load_df_table(self.path, manifest)
        with self._plans_lock:
            self._plans.clear()  # decided for the previous commit
        self._actors = actors
        for a in old:
            ray.kill(a)

    def warm(self) -> None:
        """``Index.warm`` on every shard, each in its actor's process, all at once."""
        self._on_every_actor("warm")

    def prefetch(self, share: float = 0.75, seconds: float = 5.0) -> dict[str, int]:
        """``Index.warm`` and ``Index.prefetch(share, seconds)`` on every shard in its actor's process
        (each actor has its own caches: ``share`` of each), all at once; the totals. An actor restarted
        after a crash starts cold and warms as queries arrive."""
        total = {"terms": 0, "documents": 0, "analyzer_entries": 0, "searches": 0}
        for got in self._on_every_actor("prefetch", share, seconds):
            for key in total:
                total[key] += got[key]
        return total

    def _on_every_actor(self, method: str, *args: Any) -> list[Any]:
        """``ShardServer.<method>(*args)`` on every actor at once; their answers in shard order."""
        ray = _ray()
        try:
            return ray.get([getattr(a, method).remote(*args) for a in self._actors])
        except Exception as e:
            raise _cause(e) from None

    # -- the fan-out ----------------------------------------------------------------------------------
    def _fanout(
        self, calls: dict[int, Callable[[Any], Any]], deadline: float | None
    ) -> tuple[dict[int, Any], list[int]]:
        """Send each shard's call to its actor at once; gather the answers until ``deadline``. A call
        lost with its actor (crashed, restarting) is sent once more; shards that still do not answer
        are returned as missing. An error the shard itself raised (a bad query) is raised here."""
        ray = _ray()
        from ray.exceptions import RayActorError

        lost: tuple[type[BaseException], ...] = (RayActorError,)
        unavailable = getattr(ray.exceptions, "ActorUnavailableError", None)
        if unavailable is not None:
            lost += (unavailable,)
        actors = self._actors
        pending = {calls[i](actors[i]): i for i in calls}
        retried: set[int] = set()
        answers: dict[int, Any] = {}
        missing: list[int] = []
        try:  # the common case in one call: every shard answers in time
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            got = ray.get(list(pending), timeout=wait)
            return {i: x for i, x in zip(pending.values(), got)}, []
        except Exception:  # a lost actor, a shard's error or the deadline: sorted out one by one below
            pass
        while pending:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=wait)
            if not ready:
                break
            for ref in ready:
                i = pending.pop(ref)
                try:
                    answers[i] = ray.get(ref)
                except lost:
                    if i in retried:
                        missing.append(i)
                    else:
                        retried.add(i)
                        pending[calls[i](actors[i])] = i
                except ray.exceptions.RayTaskError as e:
                    raise _cause(e) from None
        for ref, i in pending.items():  # timed out
            try:
                ray.cancel(ref)
            except Exception:  # an actor task Ray cannot cancel finishes unread
                pass
            missing.append(i)
        return answers, sorted(missing)

    def _keyed(
        self,
        method: str,
        key: str,
        given: Callable[[], tuple[QueryPlan, Any]],
        shards: list[int],
        args: tuple,
        deadline: float | None,
        stats: Any = None,
    ) -> tuple[dict[int, Any], list[int]]:
        """``method`` for the plan under ``key`` with ``args`` on ``shards``, decoded (the call is one
        JSON string: ``ShardServer``). ``given()`` makes the plan and its statistics and weights (once
        for all shards): they go only to an actor not sent the plan before under ``key``; the others
        get the key with ``stats`` (``[statistics json, weights]`` for the plan they keep, or None:
        those kept with it). An actor that lost the plan (its answer None) is sent everything."""
        sent = self._sent
        bare = json.dumps([key, args, stats]).encode()
        whole: list[tuple[QueryPlan, bytes]] = []

        def call(i: int, again: bool) -> Callable[[Any], Any]:
            if again or key not in sent[i]:
                if not whole:
                    plan, with_stats = given()
                    form = plan.text_form(self.settings.fields)  # a plan parsed from texts goes as them
                    whole.append((None if form else plan, json.dumps([key, args, with_stats, form]).encode()))
                plan, full = whole[0]
                if plan is None:
                    return lambda a: getattr(a, method).remote(full)
                return lambda a: getattr(a, method).remote(full, plan)
            return lambda a: getattr(a, method).remote(bare)

        answers, missing = self._fanout({i: call(i, False) for i in shards}, deadline)
        again = [i for i, x in answers.items() if x is None]
        if again:
            more, lost = self._fanout({i: call(i, True) for i in again}, deadline)
            answers.update(more)
            missing = sorted(set(missing) | set(lost) | {i for i, x in more.items() if x is None})
        for i in answers:
            if i < len(sent):
                sent[i].add(key)
        return {i: json.loads(x) for i, x in answers.items() if x is not None}, missing

    def _given(
        self, plan: QueryPlan, stats: FixedStatistics | None, weights: dict[str, float] | None
    ) -> Callable[[], tuple[QueryPlan, Any]]:
        """A plan with its statistics and weights as ``_keyed`` sends them, made when called."""
        return lambda: (plan, None if stats is None else [stats.to_json(), weights])

    def _key(self, cache: dict[str, str] | None, name: str) -> str:
        """A new key for a plan with its statistics, kept in ``cache`` (a cached plan's) under ``name``."""
        got = None if cache is None else cache.get(name)
        if got is None:
            got = f"{self.generation}.{next(self._keys)}"
            if cache is not None:
                cache[name] = got
        return got

    def _deadline(self, timeout: float | None) -> float | None:
        timeout = self.timeout if timeout is None else timeout
        if timeout is not None and not timeout > 0:
            raise InvalidArgument(f"timeout must be a positive number of seconds, not {timeout!r}")
        return None if timeout is None else time.monotonic() + timeout

    def _all(self, method: str, *args: Any) -> list[Any]:
        """Every shard's answer to ``method`` (no deadline: administrative calls, not queries)."""
        answers, missing = self._fanout(
            {i: lambda a: getattr(a, method).remote(*args) for i in range(self.n_shards)}, None
        )
        if missing:
            raise SearchError(f"shards {missing} did not answer {method} (their actors are down)")
        return [answers[i] for i in range(self.n_shards)]

    def _ask(self, deadline: float | None) -> Ask:
        """The ``Ask`` of the actors: a call to every shard at once, the missing ones named."""

        def ask(method: str, *args: Any) -> tuple[list[Any], list[int]]:
            answers, missing = self._fanout(
                {i: lambda a: getattr(a, method).remote(*args) for i in range(self.n_shards)}, deadline
            )
            return [answers[i] for i in sorted(answers)], missing

        return ask

    def _one(self, doc_id: str, method: str) -> Any:
        i = shard_of(doc_id, self.n_shards)
        answers, missing = self._fanout({i: lambda a: getattr(a, method).remote(doc_id)}, None)
        if missing:
            raise SearchError(f"shard {i}, which owns {doc_id!r}, did not answer (its actor is down)")
        return answers[i]

    # -- reading --------------------------------------------------------------------------------------
    @property
    def n_shards(self) -> int:
        return int(self._state[0]["shards"])

    @property
    def shards(self) -> list[LocalShard]:
        raise SearchError("the shards of an index opened on Ray are actors; see RayShardedIndex.actors")

    @property
    def actors(self) -> list[Any]:
        """The shard actors (Ray actor handles), one per shard in shard order."""
        return list(self._actors)

    def __len__(self) -> int:
        return sum(self._all("count"))

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and bool(self._one(doc_id, "has"))

    def get(self, doc_id: str) -> Document | None:
        return self._one(doc_id, "get")

    def content_hashes(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in self._all("content_hashes"):
            out.update(part)
        return out

    def _shard_stats(self) -> list[dict[str, Any]]:
        return self._all("stats")

    def verify(self) -> None:
        import hashlib

        entry = self._state[0].get("dfs")
        if entry:
            path = self.path / entry["name"]
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                raise IndexCorrupt(f"{entry['name']} is missing from {self.path}", str(path)) from None
            if hashlib.blake2b(raw, digest_size=16).hexdigest() != entry["checksum"]:
                raise IndexCorrupt(f"{entry['name']} fails its checksum (damaged)", str(path))
        self._all("verify")

    def refresh(self) -> bool:
        """Pick up a newer commit: actors at the new commit replace the old ones."""
        with self._refresh_lock:
            fresh = read_manifest(self.path)
            if fresh["generation"] == self._state[0]["generation"]:
                return False
            self._start(fresh)
            return True

    def writer(self, **_: Any) -> Any:
        raise SearchError(
            f"{self.path} is open on Ray for reading; write with ShardedIndex.open(path).writer() (then refresh)"
        )

    def close(self) -> None:
        """Stop the shard actors (Ray itself keeps running for other users of this process)."""
        if self._actors:
            ray = _ray()
            for a in self._actors:
                ray.kill(a)
            self._actors = []

    # -- searching ------------------------------------------------------------------------------------
    def _phase_one(
        self,
        plan: QueryPlan,
        deadline: float | None,
        got: tuple[FixedStatistics, dict[str, float]] | None = None,
        key: str | None = None,
        table: bool = True,
    ) -> tuple[FixedStatistics, dict[str, float], list[int]]:
        """The global statistics and language weights: ``got`` or the table's when they suffice (no
        round; ``table`` False: the caller knows the table does not), else a round of ``statistics``
        to every shard, its plan kept by the actors under ``key`` (new when None) for phase two."""
        got = got or (self._precomputed(plan) if table else None)
        if got is not None:
            return got[0], got[1], []
        every = list(range(self.n_shards))
        key = self._key(None, "statistics") if key is None else key
        answers, missing = self._keyed("statistics", key, self._given(plan, None, None), every, (), deadline)
        stats, weights = self._combine(plan, (answers[i] for i in sorted(answers)))
        return stats, weights, missing

    def search(  # type: ignore[override]
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
        timeout: float | None = None,
    ) -> SearchResult:
        """As ``ShardedIndex.search``, each phase sent to every shard actor at once. ``timeout`` (seconds,
        default the index's) bounds the whole query; shards that do not answer in time, or whose actor
        is down after one retry, are named in ``missing_shards`` of a result flagged ``partial``.

        With the document frequencies computed at commit every query takes one round (both phases in
        one call per shard when the languages it matches in must be evaluated: ``_search_matched``).
        The hits of a partial answer to a plain query (a ranked OR, or one language) are exactly the
        other shards' hits of the full ranking, with the same scores; other queries are weighed by the
        languages they match in on the shards that answered (and, without a table, scored with those
        shards' statistics). Fuzzy, prefix and wildcard words take one more round first (their
        expansions over every shard; kept with the plan for the commit).
        """
        k, offset = check_count("k", k), check_count("offset", offset)
        deadline = self._deadline(timeout)
        need = offset + k
        fetch = need * self.n_shards <= FETCH_WITH_SEARCH_ROWS  # rows and their hits in one call
        decided, unplanned = self._decided(query, filter, lang, k1, b, fuzzy, prefix_last, deadline)
        plan, got, table, keys = decided
        if got is None and table is not None and k:  # statistics known, languages not: one round all the same
            key = self._key(keys, "matched")
            result = self._search_matched(plan, key, table, offset, need, per_document, fetch, deadline)
            result.missing_shards = sorted(set(result.missing_shards) | set(unplanned))
            return result
        if got is None and k and languages_need_evaluating(plan):
            return self._two_phases_matched(decided, unplanned, offset, need, per_document, fetch, deadline)
        sent_stats = None
        if got is None:
            # two phases under one key: the actors keep the plan statistics analyzed, and the search
            # sends only the key with the global statistics and weights
            key = self._key(None, "search")
            stats, weights, missing = self._phase_one(plan, deadline, None, key, table=False)
            if not missing and not unplanned:
                keys["search"] = key  # the actors keep these statistics under it once phase two ran
                decided[1] = (stats, weights)  # a statistics round answered by every shard holds for this commit
            sent_stats = [stats.to_json(), weights]
        else:
            stats, weights, missing = got[0], got[1], []
            key = self._key(keys, "search")
        missing = sorted(set(missing) | set(unplanned))
        if not weights or k == 0:
            return SearchResult((), missing)
        alive = [i for i in range(self.n_shards) if i not in missing]
        rows, states, lost = self._search_rows(
            plan, key, self._given(plan, stats, weights), alive, need, per_document, fetch, deadline, sent_stats
        )
        return self._page(plan, rows, states, offset, need, missing + lost, deadline)

    def _two_phases_matched(
        self,
        decided: list[Any],
        unplanned: list[int],
        offset: int,
        need: int,
        per_document: bool,
        fetch: bool,
        deadline: float | None,
    ) -> SearchResult:
        """Two phases for a query whose languages must be evaluated, without a table: the shards'
        document frequencies (no evaluation), then ``_search_matched`` with their sums, under one key (the
        actors keep the plan the first call parsed). Evaluating once, where a ``statistics`` round would
        evaluate the query to learn its languages and the search evaluate it again. The summed
        statistics, when every shard answered, are kept with the plan: the query's next run is one round."""
        plan = decided[0]
        every = list(range(self.n_shards))
        key = self._key(None, "search")
        answers, missing = self._keyed("frequencies", key, self._given(plan, None, None), every, (), deadline)
        stats = FixedStatistics(self.global_statistics(), sum_frequencies(answers.values()))
        missing = sorted(set(missing) | set(unplanned))
        if not missing:
            decided[2] = stats
        alive = [i for i in every if i not in missing]
        result = self._search_matched(
            plan, key, stats, offset, need, per_document, fetch, deadline, alive, [stats.to_json(), None]
        )
        result.missing_shards = sorted(set(result.missing_shards) | set(missing))
        return result

    def _decided(
        self,
        query: str | ParsedQuery,
        filter: str | None,
        lang: str | None,
        k1,
        b,
        fuzzy: bool,
        prefix_last: bool,
        deadline: float | None,
    ) -> tuple[list[Any], list[int]]:
        """``[plan, (statistics, weights) or None, table statistics or None]`` for a query and the shards
        that did not answer while planning it (expanding its fuzzy or prefix words), cached per commit
        for query strings (``PLAN_CACHE`` of them): a repeated query skips parsing, planning, the
        expansion round, the table lookups and, without a table, the statistics round (filled in by
        ``search``). A plan some shard did not answer for is not kept."""
        key = None
        if isinstance(query, str) and (filter is None or isinstance(filter, str)) and self.plan_cache:
            key = (self.generation, query, filter, lang, k1, b, bool(fuzzy), bool(prefix_last))
        if key is not None:
            with self._plans_lock:
                hit = self._plans.get(key)
            if hit is not None:
                return hit, []
        parsed = self.parse(query, filter)
        plan, missing = self._prepare(parsed, lang, k1, b, fuzzy, prefix_last, self._ask(deadline))
        if isinstance(query, str) and plan.parsed is parsed and plan.expansions is None:
            plan = dataclasses.replace(plan, source=(query, filter))  # sent to the actors as its texts
        got = self._precomputed(plan)
        table = self._table_statistics(plan) if got is None else None
        decided = [plan, got, None if table is None else table[0], {}]  # {}: its keys on the actors (_key)
        if key is not None and not missing:
            with self._plans_lock:
                if len(self._plans) >= self.plan_cache:
                    self._plans.pop(next(iter(self._plans)))  # the oldest entry
                self._plans[key] = decided
        return decided, missing

    def _search_rows(
        self,
        plan: QueryPlan,
        key: str,
        given: Callable[[], Any],
        shards: list[int],
        need: int,
        per_document: bool,
        fetch: bool,
        deadline: float | None,
        stats: Any = None,
    ) -> tuple[dict[int, list[Row]], dict[tuple[int, str, int], dict[str, Any]] | None, list[int]]:
        """Phase two on ``shards``: their best rows (with their hits' state when ``fetch``) and the lost
        (``given``, ``stats``: as ``_keyed``)."""
        if not fetch:
            got, lost = self._keyed("search", key, given, shards, (need, per_document), deadline, stats)
            return {i: [tuple(r) for r in rows] for i, rows in got.items()}, None, lost
        both, lost = self._keyed("search_fetch", key, given, shards, (need, per_document), deadline, stats)
        rows: dict[int, list[Row]] = {}
        states: dict[tuple[int, str, int], dict[str, Any]] = {}
        for i, (got, got_states) in both.items():
            rows[i] = [tuple(r) for r in got]  # type: ignore[misc]
            for row, state in zip(rows[i], got_states):
                states[(i, row[1], row[2])] = state
        return rows, states, lost

    def _page(
        self,
        plan: QueryPlan,
        rows: dict[int, list[Row]],
        states: dict[tuple[int, str, int], dict[str, Any]] | None,
        offset: int,
        need: int,
        missing: list[int],
        deadline: float | None,
    ) -> SearchResult:
        """The merged page as hits: from the states sent with the rows, else fetched from its shards."""
        page = merge_rows(rows, offset, need)
        if states is not None:
            found = [DetachedHit(states[(i, row[1], row[2])], self.settings.analyzer(row[3])) for row, i in page]
            return SearchResult(found, missing)
        by_shard: dict[int, list[int]] = {}
        for j, (_, i) in enumerate(page):
            by_shard.setdefault(i, []).append(j)
        fetched, lost = self._fanout(
            {i: (lambda a, i=i: a.fetch.remote(plan, [page[j][0] for j in by_shard[i]])) for i in by_shard}, deadline
        )
        hits: list[DetachedHit | None] = [None] * len(page)
        for i, got in fetched.items():
            for j, state in zip(by_shard[i], json.loads(got)):
                hits[j] = DetachedHit(state, self.settings.analyzer(state["lang"]))
        return SearchResult((h for h in hits if h is not None), missing + lost)

    def _search_matched(
        self,
        plan: QueryPlan,
        key: str,
        stats: FixedStatistics,
        offset: int,
        need: int,
        per_document: bool,
        fetch: bool,
        deadline: float | None,
        shards: list[int] | None = None,
        sent_stats: Any = None,
    ) -> SearchResult:
        """One round for a query whose global statistics are known (the table computed at commit) but
        whose languages are not (a phrase or boolean query over two languages): every shard evaluates,
        reports where the query matches and ranks its rows with the weights of those languages and, when
        they differ, with those of all the query's languages. The weights of the whole index are those of
        the union, and ``matched_rows`` picks each shard's rows ranked under them (no row is rescaled: a
        product can round two scores into a tie that one index breaks otherwise); a shard whose rows fit
        neither (three languages or more) is asked again with the final weights. ``shards``: those to ask
        (default every one); ``sent_stats``: the statistics for actors that keep the plan (``_keyed``)."""
        shards = list(range(self.n_shards)) if shards is None else shards
        answers, missing = self._keyed(
            "search_matched",
            key,
            self._given(plan, stats, None),
            shards,
            (need, per_document, fetch),
            deadline,
            sent_stats,
        )
        weights, rows, redo = matched_rows(plan, {i: (m, own, every) for i, (m, own, every, _) in answers.items()})
        if not weights:
            return SearchResult((), missing)
        rows = {i: [tuple(r) for r in got] for i, got in rows.items()}  # type: ignore[misc]
        states: dict[tuple[int, str, int], dict[str, Any]] | None = {} if fetch else None
        if states is not None:
            for i, (_, own, every, got_states) in answers.items():
                sent = {(r[1], r[2]): st for r, st in zip(fetched_rows(own, every), got_states or ())}
                for row in rows.get(i, ()):
                    states[(i, row[1], row[2])] = dict(sent[(row[1], row[2])], score=row[0])
        if redo:
            given = self._given(plan, stats, weights)
            more, more_states, lost = self._search_rows(
                plan, self._key(None, "redo"), given, redo, need, per_document, fetch, deadline
            )
            rows.update(more)
            if states is not None and more_states is not None:
                states.update(more_states)
            missing = missing + lost
        return self._page(plan, rows, states, offset, need, missing, deadline)

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
        """As ``ShardedIndex.explain``; every shard must answer (an explanation is never partial)."""
        parsed = self.parse(query)
        if not isinstance(doc_id, str):
            raise InvalidArgument(f"doc_id must be a string, got {type(doc_id).__name__}")
        if not self._one(doc_id, "has"):
            raise DocumentNotFound(f"no document {doc_id!r} in the index")
        deadline = self._deadline(None)
        plan, missing = self._prepare(parsed, None, k1, b, fuzzy, prefix_last, self._ask(deadline))
        if not missing:
            stats, weights, missing = self._phase_one(plan, deadline)
        if missing:
            raise SearchError(f"shards {missing} did not answer; cannot explain with the global statistics")
        i = shard_of(doc_id, self.n_shards)
        stats_json = stats.to_json()
        answers, missing = self._fanout(
            {i: lambda a: a.explain.remote(plan, stats_json, weights, doc_id, passage)}, self._deadline(None)
        )
        if missing:
            raise SearchError(f"shard {i}, which owns {doc_id!r}, did not answer (its actor is down)")
        return answers[i]

    def facets(
        self,
        query: str | ParsedQuery,
        fields: Any,
        *,
        filter: str | None = None,
        lang: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, dict[str | int, int]]:
        """As ``ShardedIndex.facets``, every actor counting at once. Counts are never partial: a shard
        that does not answer in time is an error naming it (``SearchError``), not a smaller count."""
        names = check_facet_fields(fields, self.settings.fields)
        deadline = self._deadline(timeout)
        ask = self._ask(deadline)
        plan, missing = self._prepare(self.parse(query, filter), lang, None, None, False, False, ask)
        answers, lost = ask("facets", plan, names) if not missing else ([], missing)
        if lost:
            raise SearchError(f"shards {sorted(lost)} did not answer; facet counts need every shard")
        return sum_facets(answers, names)


# -- building the shards on Ray ---------------------------------------------------------------------------

#: batches sent to one shard's builder and not yet answered: one being analyzed, one waiting
BUILD_IN_FLIGHT = 2
#: batches per builder buffer: each shard has its own builder, so batches need not be small enough to share
#: a build evenly between workers (as ``parallel.BATCHES_PER_BUFFER`` are); larger ones pay Ray's
#: per-call cost (about a millisecond) fewer times. The coordinator holds up to 1 + ``BUILD_IN_FLIGHT``
#: batches a shard (about 9 MB of text a shard with the default buffer). Measured at 50k passages on 2
#: shards: 5.36 s against 5.43 s with batches of 1/32 (medians of 3, alternating): no cost either way.
RAY_BATCHES_PER_BUFFER = 8
_builds = itertools.count()


class ShardBuilder:
    """One shard's new documents analyzed in a Ray actor, in this process (no worker processes inside a
    Ray worker): batches in, finished segment files out as bytes.

    The actor never touches the index folder (on a cluster it may not even see it): it writes each
    segment to a private temporary file and sends the bytes back; the coordinator, which holds the
    write lock, stores them. A buffer is flushed once it holds ``buffer_tokens`` tokens, at a batch
    boundary, so which documents land in which segment depends only on the input.
    """

    def __init__(self, settings_json: dict[str, Any], buffer_tokens: int) -> None:
        from .builder import SegmentBuilder
        from .settings import IndexSettings

        self._new = lambda: SegmentBuilder(IndexSettings.from_json(settings_json))
        self.buffer_tokens = int(buffer_tokens)
        self.buf = self._new()
        self.batches: list[int] = []

    def ping(self) -> int:
        return os.getpid()

    def add(self, batch_no: int, batch: list[list[Any]]) -> dict[str, Any] | None:
        """Analyze one batch (``[id, text, title, lang, meta_json]`` lists); a segment when the buffer is full."""
        for fields in batch:
            self.buf.add_fields(*fields)
        self.batches.append(batch_no)
        return self._flush() if self.buf.n_tokens >= self.buffer_tokens else None

    def finish(self) -> dict[str, Any] | None:
        """The last segment (what the buffer still holds), if any."""
        return self._flush() if len(self.buf) else None

    def _flush(self) -> dict[str, Any]:
        import tempfile

        from .malloc import flush_arrays
        from .segment import write_segment

        with tempfile.TemporaryDirectory(prefix="telusur-shard-") as tmp, flush_arrays(self.buf.largest_text):
            data = self.buf.to_segment_data()
            path = Path(tmp) / "segment.tls"
            size, checksum = write_segment(path, data, consume=True)
            raw = path.read_bytes()
        segment = {
            "bytes": raw,
            "size": size,
            "checksum": checksum,
            "docs": len(data.doc_ids),
            "passages": int(len(data.p_doc)),
            "batches": self.batches,
        }
        self.buf, self.batches = self._new(), []
        return segment


def _store(directory: Path, name: str, segment: dict[str, Any]) -> dict[str, Any]:
    """Write a segment a builder sent under a temporary name in ``directory`` (fsynced; its size and
    checksum checked against what the builder computed), as a worker process would have left it."""
    raw = segment.pop("bytes")
    import hashlib

    if len(raw) != segment["size"] or hashlib.blake2b(raw, digest_size=16).hexdigest() != segment["checksum"]:
        raise IndexCorrupt(f"a segment built on Ray for {directory} arrived damaged", str(directory))
    with open(directory / name, "xb") as f:
        f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    return dict(segment, tmp=name)


def add_many_on_ray(writer: Any, docs: Any, *, ray_address: str = "local", num_cpus: int | None = None) -> int:
    """``ShardedWriter.add_many`` with every shard built by its own Ray actor (``ShardBuilder``).

    Documents are validated and routed here exactly as in process (``shard_of``; a duplicate id or a
    bad document is ``InvalidDocument``), cut into batches by a token estimate (never by timing) and
    sent to their shard's builder, at most ``BUILD_IN_FLIGHT`` unanswered per shard. Segments come
    back as bytes and are stored under temporary names in the shard's folder, then named by the shard's
    writer in batch order (byte-identical shards for the same input). Nothing is visible before the
    sharded commit; any failure (a bad document, a builder that crashes or raises) stops every builder
    and removes the files of this call, and the caller's rollback keeps the index as it was.
    """
    from collections import deque

    from . import parallel

    ray = connect(ray_address, num_cpus)
    writers = writer._writers
    n = len(writers)
    folders = [w._dir for w in writers]
    limit = max(1, writer._buffer_tokens // RAY_BATCHES_PER_BUFFER)
    tag = f"{parallel.TMP_PREFIX}ray_{os.getpid()}_{next(_builds)}_"
    # the builders live as long as the writer (a streaming build calls add_many once per chunk, and
    # starting an actor costs seconds): started by the first call, stopped when the writer closes
    actors: list[Any] = getattr(writer, "_ray_builders", None) or []
    ok = False
    try:
        if not actors:
            cpus = float(ray.cluster_resources().get("CPU", 1.0) or 1.0)
            # every builder fits at once (a shard whose builder waited for a core would stall the routing)
            builder = ray.remote(ShardBuilder).options(
                num_cpus=min(1.0, cpus / n), max_restarts=0, max_task_retries=0, scheduling_strategy="SPREAD"
            )
            actors = [builder.remote(writer._sharded.settings.to_json(), writer._buffer_tokens) for _ in range(n)]
            writer._ray_builders = actors
            writer.on_close.append(lambda: _stop(ray, writer))
        in_flight: list[deque[Any]] = [deque() for _ in range(n)]
        batch_ids: list[list[list[str]]] = [[] for _ in range(n)]
        segments: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        current: list[list[list[Any]]] = [[] for _ in range(n)]
        tokens = [0] * n
        seen: list[set[str]] = [set() for _ in range(n)]

        def collect(i: int) -> None:
            ref = in_flight[i].popleft()
            try:
                got = ray.get(ref)
            except ray.exceptions.RayError as e:
                cause = _cause(e)
                detail = f"{type(cause).__name__}: {cause}".splitlines()[0]
                raise WorkerFailed(f"building shard {i} on Ray failed: {detail}") from None
            if got is not None:
                segments[i].append(_store(folders[i], f"{tag}{i}_{len(segments[i])}.tls", got))

        def send(i: int) -> None:
            while len(in_flight[i]) >= BUILD_IN_FLIGHT:
                collect(i)
            batch_ids[i].append([f[0] for f in current[i]])
            in_flight[i].append(actors[i].add.remote(len(batch_ids[i]) - 1, current[i]))
            current[i], tokens[i] = [], 0

        for doc in docs:
            if not isinstance(doc, Document):
                raise InvalidDocument(f"expected a Document, got {type(doc).__name__}")
            i = shard_of(doc.id, n)
            writers[i]._check_new(doc, seen[i])
            seen[i].add(doc.id)
            current[i].append([doc.id, doc.text, doc.title, doc.lang, doc.meta_json()])
            tokens[i] += parallel.estimate_tokens(doc.text, doc.title)
            if tokens[i] >= limit:
                send(i)
        for i in range(n):
            if current[i]:
                send(i)
            in_flight[i].append(actors[i].finish.remote())
        for i in range(n):
            while in_flight[i]:
                collect(i)
        for i in range(n):
            if segments[i]:
                writers[i]._register(segments[i], batch_ids[i])
        ok = True
        return sum(len(s) for s in seen)
    finally:
        if not ok:  # builders may hold half a buffer or be dead: none of them is used again
            _stop(ray, writer)
            for folder in folders:
                parallel.remove_temporary(folder, tag)


def _stop(ray: Any, writer: Any) -> None:
    """Stop the builder actors of ``writer`` (when it closes, or after a failed call)."""
    actors, writer._ray_builders = getattr(writer, "_ray_builders", None) or [], None
    for a in actors:
        try:
            ray.kill(a)
        except Exception:  # already gone
            pass
