"""Known-item keyword queries on id-peraturan: telusur against bm25s in the same run.

A query is a handful of words drawn at random from one passage (function words included, see
``search.evaluate.known_item_queries``); the passage it came from is the one right answer. Success@10
is the share of queries whose passage is in the top 10; MRR@10 is reported beside it. Every passage is
its own document (no title), so the task is finding one passage among tens of thousands.

Engines, built over the same passages:

* ``bm25s``: bm25s ``method="lucene"``, k1 = 1.2, b = 0.75, its default tokenizer (lowercased ``\\w\\w+``),
  the same Snowball ``indonesian`` stemmer (PyStemmer) and no stopword list: the plain engine the
  issue (#16) compares with.
* ``telusur:NAME``: telusur with its defaults (language detected per passage) or with analyzer options
  given as JSON, e.g. ``--config 'nostop={"stopwords": false}'``.

Run (about 2 minutes per telusur config at 30,000 passages on 2 cores)::

    .venv/bin/python -m benchmarks.known_item --passages 30000 --queries 300 --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.config import data_dir

DATA = data_dir() / "id-peraturan-bulk" / "passages.jsonl.gz"

Ranker = Callable[[str], list[str]]


def load_passages(path: Path, n: int) -> list[tuple[str, str]]:
    """The first ``n`` passages of a bulk corpus as (id, text)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [(r["_id"], r["text"]) for r in map(json.loads, itertools.islice(f, n))]


def bm25s_ranker(passages: Sequence[tuple[str, str]], k: int = 10) -> Ranker:
    """bm25s (lucene BM25, 1.2/0.75) with Snowball ``indonesian`` stems and no stopwords."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("indonesian")
    ids = [pid for pid, _ in passages]
    retriever = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    retriever.index(
        bm25s.tokenize([t for _, t in passages], stopwords=None, stemmer=stemmer, show_progress=False),
        show_progress=False,
    )

    def rank(query: str) -> list[str]:
        tokens = bm25s.tokenize([query], stopwords=None, stemmer=stemmer, show_progress=False)
        if not tokens.vocab:
            return []
        docs, scores = retriever.retrieve(tokens, k=min(k, len(ids)), show_progress=False)
        return [ids[int(d)] for d, s in zip(docs[0], scores[0]) if s > 0]

    return rank


def telusur_ranker(
    passages: Sequence[tuple[str, str]], directory: Path, options: dict[str, Any], k: int = 10
) -> Ranker:
    """telusur over one passage per document, language detected (``lang=None``), plain-word queries."""
    from search import Document, Index, plain_query

    create = dict(options)
    analyzer_options = create.pop("analyzer_options", {})
    index = Index.create(directory, passage_words=0, analyzer_options=analyzer_options, **create)
    with index.writer() as w:
        w.add_many(Document(id=pid, text=text) for pid, text in passages)
    index = Index.open(directory)

    def rank(query: str) -> list[str]:
        return [h.doc_id for h in index.search(plain_query(query), k=k)]

    return rank


def score(rank: Ranker, queries: Sequence[tuple[str, str]], k: int = 10) -> dict[str, float]:
    """Success@k and MRR@k of a ranker on (target id, query) pairs."""
    found = 0
    rr = 0.0
    for target, query in queries:
        ranking = rank(query)[:k]
        if target in ranking:
            found += 1
            rr += 1.0 / (ranking.index(target) + 1)
    return {"success@10": found / len(queries), "mrr@10": rr / len(queries)}


def main(argv: Sequence[str] | None = None) -> int:
    from search.evaluate import known_item_queries

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--passages", type=int, default=30000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--words", type=int, nargs=2, default=[3, 5], metavar=("MIN", "MAX"))
    ap.add_argument(
        "--config",
        action="append",
        default=[],
        help='NAME=JSON of Index.create keywords, e.g. nostop={"analyzer_options": {"stopwords": false}}',
    )
    ap.add_argument("--no-defaults", action="store_true", help="skip the telusur defaults config")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    if not args.data.is_file():
        print(f"error: {args.data} is missing (see ../shared/data)", file=sys.stderr)
        return 2

    passages = load_passages(args.data, args.passages)
    configs: dict[str, dict[str, Any]] = {} if args.no_defaults else {"defaults": {}}
    for c in args.config:
        name, _, spec = c.partition("=")
        configs[name] = json.loads(spec) if spec else {}
    query_sets = {
        seed: known_item_queries(passages, args.queries, seed=seed, words=tuple(args.words)) for seed in args.seeds
    }

    rankers: dict[str, Ranker] = {}
    t = time.perf_counter()
    rankers["bm25s"] = bm25s_ranker(passages)
    print(f"bm25s built in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="known-item-"))
    try:
        for name, options in configs.items():
            t = time.perf_counter()
            rankers[f"telusur:{name}"] = telusur_ranker(passages, tmp / name, options)
            print(f"telusur:{name} built in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        results: dict[str, dict[str, Any]] = {}
        for name, rank in rankers.items():
            per_seed = {seed: score(rank, qs) for seed, qs in query_sets.items()}
            results[name] = {
                "per_seed": per_seed,
                "success@10": statistics.mean(r["success@10"] for r in per_seed.values()),
                "mrr@10": statistics.mean(r["mrr@10"] for r in per_seed.values()),
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"{len(passages)} passages, {args.queries} queries x seeds {args.seeds}, {args.words[0]}-{args.words[1]} words"
    )
    print(f"{'engine':32} {'success@10':>10} {'mrr@10':>8}  per seed success@10")
    for name, r in results.items():
        seeds = " ".join(f"{v['success@10']:.3f}" for v in r["per_seed"].values())
        print(f"{name:32} {r['success@10']:10.4f} {r['mrr@10']:8.4f}  {seeds}")
    if args.json:
        args.json.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
