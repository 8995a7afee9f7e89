"""Retrieval quality on BEIR-format collections: loading, metrics, TREC run files, full runs.

Why this module exists: speed is worthless if the right passage is not on top, and quality numbers
are only worth something if anyone can reproduce them and compare them with published BM25 runs.
So the metrics follow the trec_eval / ir-measures conventions exactly (the tests check them against
ir-measures on random runs), and the data loader reads the folder layout every BEIR copy uses.

Useful for: `search eval`, ablations in `docs/quality.md`, regression tests on quality.
Not useful for: judging single queries by eye (use the CLI), or training anything.

Runs are *ranked lists*: ``dict[query_id, list[doc_id]]``, best first. Taking the engine's own order
avoids the tie question entirely (trec_eval re-sorts by score, breaking ties by doc id descending, which
would silently reorder our equal-score hits). Metric values are per query; `evaluate` averages them
over **every query in the qrels**, as ir-measures does: a query with no results, or whose judgments are
all non-relevant, counts as 0. Queries that are in the run but not in the qrels are ignored.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidArgument, SearchError

__all__ = [
    "BeirDataset",
    "DatasetNotFound",
    "IndexFolderInUse",
    "InvalidDataset",
    "EvalResult",
    "METRICS",
    "average_precision_at_k",
    "evaluate",
    "known_item_queries",
    "load_beir",
    "ndcg_at_k",
    "recall_at_k",
    "reciprocal_rank_at_k",
    "run_beir",
    "write_trec_run",
]

Qrels = Mapping[str, Mapping[str, int]]
RankedRun = Mapping[str, Sequence[str]]
ScoredRun = Mapping[str, Sequence[tuple[str, float]]]

DEFAULT_METRICS = ("ndcg@10", "mrr@10", "recall@100", "map@100")

_BEIR_LAYOUT = (
    'a BEIR folder must contain corpus.jsonl ({{"_id", "title", "text"}} per line), '
    'queries.jsonl ({{"_id", "text"}} per line) and qrels/{split}.tsv '
    "(tab-separated, header 'query-id corpus-id score')"
)


# --------------------------------------------------------------------------------------------------
# Loading BEIR folders


class DatasetNotFound(SearchError, FileNotFoundError):
    """A BEIR folder or one of its files is missing; the message names it and the expected layout."""


class InvalidDataset(SearchError, ValueError):
    """A BEIR file cannot be read as given; the message names the file and line."""


class IndexFolderInUse(SearchError, FileExistsError):
    """`run_beir` was pointed at an existing folder it did not build, which it will not delete."""


@dataclass(frozen=True)
class BeirDataset:
    """One split of a BEIR collection.

    `queries` holds only the split's queries (the ids in ``qrels/<split>.tsv``); `qrels` maps a query
    id to ``{doc_id: grade}``. The corpus is read lazily with `iter_corpus`, because corpora can be
    much larger than the queries and are read once, while indexing.
    """

    path: Path
    split: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def corpus_path(self) -> Path:
        return self.path / "corpus.jsonl"

    def iter_corpus(self) -> Iterator[dict[str, str]]:
        """Yield ``{"_id", "title", "text"}`` for every line of corpus.jsonl (title "" when absent)."""
        for line_no, record in _iter_jsonl(self.corpus_path):
            doc_id = _required_str(record, "_id", self.corpus_path, line_no)
            text = _optional_str(record, "text", self.corpus_path, line_no)
            title = _optional_str(record, "title", self.corpus_path, line_no)
            yield {"_id": doc_id, "title": title, "text": text}


def load_beir(dataset_dir: str | Path, split: str = "test") -> BeirDataset:
    """Read the queries and judgments of one split of a BEIR-format folder.

    Raises DatasetNotFound (a FileNotFoundError) naming the missing file and the expected layout, and
    InvalidDataset (a ValueError) naming the file and line of a malformed line, or the judged queries
    missing from queries.jsonl. Both derive from SearchError, so the CLI's error boundary reports them.
    """
    root = Path(dataset_dir)
    layout = _BEIR_LAYOUT.format(split=split)
    if not root.is_dir():
        raise DatasetNotFound(f"dataset folder {str(root)!r} does not exist; {layout}")
    corpus_path = root / "corpus.jsonl"
    queries_path = root / "queries.jsonl"
    qrels_path = root / "qrels" / f"{split}.tsv"
    for needed in (corpus_path, queries_path):
        if not needed.is_file():
            raise DatasetNotFound(f"{str(needed)!r} is missing; {layout}")
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise DatasetNotFound(
            f"{str(qrels_path)!r} is missing (split {split!r}; splits present: "
            f"{', '.join(available) or 'none'}); {layout}"
        )

    qrels = _read_qrels(qrels_path)
    all_queries: dict[str, str] = {}
    for line_no, record in _iter_jsonl(queries_path):
        query_id = _required_str(record, "_id", queries_path, line_no)
        if query_id in qrels:
            all_queries[query_id] = _required_str(record, "text", queries_path, line_no)
    missing = [qid for qid in qrels if qid not in all_queries]
    if missing:
        shown = ", ".join(repr(q) for q in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InvalidDataset(
            f"{len(missing)} query id(s) judged in {str(qrels_path)!r} are not in {str(queries_path)!r}: {shown}"
        )
    queries = {qid: all_queries[qid] for qid in qrels}  # qrels order, so runs are reproducible
    return BeirDataset(path=root, split=split, queries=queries, qrels=qrels)


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InvalidDataset(f"{str(path)!r} line {line_no}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise InvalidDataset(f"{str(path)!r} line {line_no}: expected a JSON object, got {line.strip()[:60]!r}")
            yield line_no, record


def _required_str(record: Mapping[str, Any], key: str, path: Path, line_no: int) -> str:
    value = record.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and key == "_id":
        return str(value)  # some BEIR copies write numeric ids
    if not isinstance(value, str):
        raise InvalidDataset(f"{str(path)!r} line {line_no}: field {key!r} must be a string, got {value!r}")
    return value


def _optional_str(record: Mapping[str, Any], key: str, path: Path, line_no: int) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidDataset(f"{str(path)!r} line {line_no}: field {key!r} must be a string, got {value!r}")
    return value


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read ``query-id corpus-id score`` lines (tabs or spaces); the header line is optional."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                continue
            if line_no == 1 and fields == ["query-id", "corpus-id", "score"]:
                continue
            if len(fields) != 3:
                raise InvalidDataset(
                    f"{str(path)!r} line {line_no}: expected 3 fields 'query-id corpus-id score', got {line.rstrip()!r}"
                )
            query_id, doc_id, grade = fields
            try:
                qrels.setdefault(query_id, {})[doc_id] = int(grade)
            except ValueError:
                raise InvalidDataset(
                    f"{str(path)!r} line {line_no}: score must be an integer grade, got {grade!r}"
                ) from None
    if not qrels:
        raise InvalidDataset(f"{str(path)!r} holds no judgments")
    return qrels


# --------------------------------------------------------------------------------------------------
# Metrics: one pure function per metric, over one query's ranking and judgments.
# A document is relevant when its grade is >= 1 (trec_eval's default relevance level).


def _first_k(ranking: Sequence[str], k: int) -> list[str]:
    """The top k distinct doc ids; a repeated id keeps its first (best) rank, as in a dict run."""
    if k < 1:
        raise InvalidArgument(f"cutoff k must be >= 1, got {k}")
    seen: set[str] = set()
    top: list[str] = []
    for doc_id in ranking:
        if doc_id not in seen:
            seen.add(doc_id)
            top.append(doc_id)
            if len(top) == k:
                break
    return top


def ndcg_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """Normalised discounted cumulative gain at k (Jarvelin & Kekalainen 2002; trec_eval ndcg_cut).

    DCG@k = sum over ranks i = 1..k of gain(d_i) / log2(i + 1), with gain = the judged grade (negative
    or unjudged: 0). nDCG@k = DCG@k / IDCG@k, where IDCG@k is the DCG of the judgments sorted by grade.
    0 when nothing is relevant.
    """
    dcg = sum(
        max(judgments.get(doc_id, 0), 0) / math.log2(rank + 1)
        for rank, doc_id in enumerate(_first_k(ranking, k), start=1)
    )
    ideal = sorted((grade for grade in judgments.values() if grade > 0), reverse=True)[:k]
    idcg = sum(grade / math.log2(rank + 1) for rank, grade in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def reciprocal_rank_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """Reciprocal rank at k (MRR@k once averaged): 1 / rank of the first relevant doc in the top k, else 0."""
    for rank, doc_id in enumerate(_first_k(ranking, k), start=1):
        if judgments.get(doc_id, 0) >= 1:
            return 1.0 / rank
    return 0.0


def recall_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """Recall at k: |relevant docs in the top k| / |relevant docs judged|; 0 when nothing is relevant."""
    relevant = sum(1 for grade in judgments.values() if grade >= 1)
    if relevant == 0:
        return 0.0
    found = sum(1 for doc_id in _first_k(ranking, k) if judgments.get(doc_id, 0) >= 1)
    return found / relevant


def average_precision_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """Average precision cut at k (trec_eval map_cut): sum of P@i over the ranks i <= k holding a
    relevant doc, divided by the number of relevant docs judged (not by min(R, k)); 0 when R = 0."""
    relevant = sum(1 for grade in judgments.values() if grade >= 1)
    if relevant == 0:
        return 0.0
    found = 0
    total = 0.0
    for rank, doc_id in enumerate(_first_k(ranking, k), start=1):
        if judgments.get(doc_id, 0) >= 1:
            found += 1
            total += found / rank
    return total / relevant


MetricFunction = Callable[[Sequence[str], Mapping[str, int], int], float]

METRICS: dict[str, MetricFunction] = {
    "ndcg": ndcg_at_k,
    "mrr": reciprocal_rank_at_k,
    "recall": recall_at_k,
    "map": average_precision_at_k,
}
"""Metric names accepted by `evaluate` as ``name@k`` (ir-measures: nDCG@k, RR@k, R@k, AP@k)."""

_ALIASES = {"rr": "mrr", "r": "recall", "ap": "map"}


def _parse_metric(name: str) -> tuple[MetricFunction, int]:
    match = re.fullmatch(r"([a-z]+)@(\d+)", name.strip().lower())
    base = _ALIASES.get(match.group(1), match.group(1)) if match else None
    if match is None or base not in METRICS or int(match.group(2)) < 1:
        raise InvalidArgument(f"unknown metric {name!r}; use NAME@K with K >= 1 and NAME one of {', '.join(METRICS)}")
    return METRICS[base], int(match.group(2))


def evaluate(
    run: RankedRun,
    qrels: Qrels,
    metrics: Iterable[str] = DEFAULT_METRICS,
) -> dict[str, float]:
    """Mean of each metric over every query in `qrels` (missing from the run: 0), keyed by its name.

    `run` maps a query id to its doc ids best first. This matches ir-measures' `calc_aggregate`
    for nDCG@k, RR@k, R@k and AP@k when the run's scores strictly decrease down each ranking.
    """
    parsed = [(name, *_parse_metric(name)) for name in metrics]
    if not qrels:
        raise InvalidArgument("qrels is empty: there is nothing to evaluate against")
    results: dict[str, float] = {}
    for name, function, k in parsed:
        total = sum(function(run.get(qid, ()), judgments, k) for qid, judgments in qrels.items())
        results[name] = total / len(qrels)
    return results


# --------------------------------------------------------------------------------------------------
# TREC run files


def write_trec_run(path: str | Path, run: ScoredRun, tag: str = "telusur") -> None:
    """Write a run as standard TREC lines ``qid Q0 docid rank score tag`` (rank from 1, best first).

    Readable by trec_eval, ir-measures and pytrec_eval. The order inside each query is kept as given;
    scores are written with full float precision.
    """
    if not tag or any(char.isspace() for char in tag):
        raise InvalidArgument(f"run tag must be non-empty without whitespace, got {tag!r}")
    with Path(path).open("w", encoding="utf-8") as out:
        for query_id, hits in run.items():
            for rank, (doc_id, score) in enumerate(hits, start=1):
                if any(char.isspace() for char in query_id + doc_id):
                    raise InvalidArgument(f"ids in a TREC run cannot hold whitespace: {query_id!r} {doc_id!r}")
                out.write(f"{query_id} Q0 {doc_id} {rank} {score!r} {tag}\n")


# --------------------------------------------------------------------------------------------------
# Full runs with a telusur index


@dataclass
class EvalResult:
    """What `run_beir` measured: metric means, the number of queries, the run, and timings (seconds)."""

    metrics: dict[str, float]
    num_queries: int
    run: dict[str, list[tuple[str, float]]] = field(repr=False)
    seconds: float
    index_seconds: float
    search_seconds: float
    reused_index: bool

    @property
    def ranked(self) -> dict[str, list[str]]:
        """The run as ranked doc-id lists, the input `evaluate` takes."""
        return {qid: [doc_id for doc_id, _ in hits] for qid, hits in self.run.items()}


_STAMP_SUFFIX = ".eval.json"


def run_beir(
    dataset_dir: str | Path,
    *,
    index_dir: str | Path,
    split: str = "test",
    k1: float | None = None,
    b: float | None = None,
    lang: str | None = None,
    k: int = 100,
    passage_words: int = 0,
    analyzer_options: Mapping[str, bool] | None = None,
    metrics: Iterable[str] = DEFAULT_METRICS,
    rebuild: bool = False,
) -> EvalResult:
    """Index a BEIR corpus with telusur (or reuse the index) and evaluate every query of `split`.

    Documents are indexed with their title and text; `lang` is the language of corpus and queries
    (None: detect per document and query). `k1`/`b` are passed at search time (None: the index's
    defaults), so one index serves every k1/b setting. `analyzer_options` (``stem_words``,
    ``stopwords``, ``reduplication``: False switches one off) are for ablations. The index is reused
    when a stamp file ``<index_dir>.eval.json`` records the same corpus file (path, size, mtime),
    index settings and analyzer versions; otherwise it is rebuilt. A folder at `index_dir` without a
    stamp is never deleted.
    """
    from search import Document, Index  # the core imports nothing from here; keep the flow one way

    dataset = load_beir(dataset_dir, split)
    index_path = Path(index_dir)
    started = time.perf_counter()
    options = dict(analyzer_options or {})
    stamp = _index_stamp(dataset.corpus_path, passage_words=passage_words, lang=lang, options=options)
    reused = not rebuild and _stamp_matches(index_path, stamp)
    if reused:
        index = Index.open(index_path)
    else:
        _clear_index_dir(index_path)
        index_path.parent.mkdir(parents=True, exist_ok=True)
        settings: dict[str, Any] = {"passage_words": passage_words, "analyzer_options": options}
        if lang is not None:
            settings["default_language"] = lang
        index = Index.create(index_path, **settings)
        with index.writer() as writer:
            for doc in dataset.iter_corpus():
                writer.add(Document(id=doc["_id"], text=doc["text"], title=doc["title"], lang=lang))
        _stamp_path(index_path).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        index = Index.open(index_path)  # evaluate what a user would open, not the writer's view
    indexed = time.perf_counter()

    search_plain = _plain_search(index)
    run: dict[str, list[tuple[str, float]]] = {}
    for query_id, text in dataset.queries.items():
        hits = search_plain(text, k=k, lang=lang, k1=k1, b=b)
        ranked: list[tuple[str, float]] = []
        seen: set[str] = set()
        for hit in hits:  # with passages on, a document may come back more than once: keep its best
            if hit.doc_id not in seen:
                seen.add(hit.doc_id)
                ranked.append((hit.doc_id, float(hit.score)))
        run[query_id] = ranked
    finished = time.perf_counter()

    ranked_ids = {qid: [doc_id for doc_id, _ in hits] for qid, hits in run.items()}
    return EvalResult(
        metrics=evaluate(ranked_ids, dataset.qrels, metrics),
        num_queries=len(dataset.qrels),
        run=run,
        seconds=finished - started,
        index_seconds=indexed - started,
        search_seconds=finished - indexed,
        reused_index=reused,
    )


_QUERY_SYNTAX = re.compile(r'["():]|(?<!\S)[+-]+')


def _plain_search(index: Any) -> Callable[..., Any]:
    """`index.search` with query syntax switched off: dataset queries are user text, not queries.

    A claim such as ``"-1% of (rare) cases"`` must not turn into a negation or a group. Uses the
    engine's ``parse=False`` or `search.plain_query` (every word a ranked-OR term) when it offers one;
    otherwise strips what the parser would read as syntax (quotes, parentheses, colons, a + or -
    starting a word).
    """
    if "parse" in inspect.signature(index.search).parameters:
        return lambda text, **options: index.search(text, parse=False, **options)
    try:
        from search import plain_query
    except ImportError:
        return lambda text, **options: index.search(_QUERY_SYNTAX.sub(" ", text), **options)
    return lambda text, **options: index.search(plain_query(text), **options)


def _stamp_path(index_path: Path) -> Path:
    return index_path.with_name(index_path.name + _STAMP_SUFFIX)


def _index_stamp(
    corpus_path: Path, *, passage_words: int, lang: str | None, options: Mapping[str, bool]
) -> dict[str, Any]:
    """What an evaluation index depends on; any change means a rebuild. The analyzers' versions and a
    hash of their source files are included, so a stemmer edited without a version bump (common while
    tuning) is never measured through a stale index."""
    import analyzers
    import search

    source = hashlib.sha256()
    package = Path(analyzers.__file__).parent
    for file in sorted(p for p in package.rglob("*") if p.suffix in {".py", ".txt"}):
        source.update(str(file.relative_to(package)).encode() + b"\0" + file.read_bytes() + b"\0")

    stat = corpus_path.stat()
    return {
        "corpus": str(corpus_path.resolve()),
        "corpus_bytes": stat.st_size,
        "corpus_mtime_ns": stat.st_mtime_ns,
        "passage_words": passage_words,
        "lang": lang,
        "analyzer_options": dict(sorted(options.items())),
        "analyzers": {name: analyzers.get(name).version for name in analyzers.names()},
        "analyzers_source_sha256": source.hexdigest(),
        "telusur": getattr(search, "__version__", None),
    }


def _stamp_matches(index_path: Path, stamp: Mapping[str, Any]) -> bool:
    stamp_path = _stamp_path(index_path)
    if not (index_path.is_dir() and stamp_path.is_file()):
        return False
    try:
        return json.loads(stamp_path.read_text(encoding="utf-8")) == dict(stamp)
    except (OSError, json.JSONDecodeError):
        return False


def _clear_index_dir(index_path: Path) -> None:
    """Remove an index this module built earlier; refuse to touch a folder it did not build."""
    stamp_path = _stamp_path(index_path)
    if index_path.exists():
        if index_path.is_dir() and not any(index_path.iterdir()):
            index_path.rmdir()
        elif stamp_path.is_file():
            shutil.rmtree(index_path)
        else:
            raise IndexFolderInUse(
                f"{str(index_path)!r} exists but was not built by an evaluation run "
                f"(no {stamp_path.name!r} beside it); choose another index folder or remove it"
            )
    stamp_path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# Known-item keyword queries (no judgments needed)

_KNOWN_ITEM_WORD = re.compile(r"[^\W\d_]{2,}")


def known_item_queries(
    passages: Sequence[tuple[str, str]],
    n: int,
    *,
    seed: int,
    words: tuple[int, int] = (3, 5),
    min_words: int = 20,
) -> list[tuple[str, str]]:
    """``n`` (target passage id, query) pairs: a handful of words drawn at random from one passage.

    Why: users search a regulation by a few words they remember from it, function words included
    ("tersebut", "sama", "dalam"); no judged collection has such queries, but the passage they came
    from is the right answer by construction. Each query picks a passage uniformly among those with at
    least ``min_words`` words, then draws between ``words[0]`` and ``words[1]`` word positions without
    replacement (so frequent words are drawn as often as they occur) and keeps them in text order. A
    word is two or more letters (no digits). Deterministic for a given ``seed``.
    """
    import random

    if n < 0 or not 1 <= words[0] <= words[1]:
        raise ValueError(f"need n >= 0 and 1 <= words[0] <= words[1], got n={n}, words={words}")
    rng = random.Random(seed)
    eligible = [(pid, found) for pid, text in passages if len(found := _KNOWN_ITEM_WORD.findall(text)) >= min_words]
    if not eligible and n:
        raise ValueError(f"no passage has {min_words} words or more")
    out: list[tuple[str, str]] = []
    for _ in range(n):
        pid, found = eligible[rng.randrange(len(eligible))]
        picks = sorted(rng.sample(range(len(found)), rng.randint(*words)))
        out.append((pid, " ".join(found[i] for i in picks)))
    return out
