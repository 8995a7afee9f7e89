"""Typo recovery (issue #21): nDCG@10 of clean and typo'd test queries, with and without fuzzy=True,
and how often ``Index.suggest`` restores the clean query.

One typo per query, from a fixed seed: an insertion, deletion, substitution or transposition of
letters (a-z) at a random place in a random word of 5+ letters (queries without such a word are
kept clean and counted). Run:

    TELUSUR_DATA=../shared/data python -m benchmarks.typo_recovery [--out results/typo.json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.config import data_dir
from search import Index, plain_query
from search.evaluate import load_beir, ndcg_at_k, run_beir

SEED = 2126
OPS = ("insertion", "deletion", "substitution", "transposition")
SETS = {"scifact": ("beir-scifact", "en"), "tydi-id": ("tydiqa-goldp-id-retrieval", "id")}
_WORD = re.compile(r"[^\W\d_]{5,}")


def inject_typo(text: str, rng: random.Random) -> tuple[str, str | None]:
    """``text`` with one typo in one word of 5+ letters, and the operation (None: no such word)."""
    words = list(_WORD.finditer(text))
    if not words:
        return text, None
    m = rng.choice(words)
    w = m.group()
    op = rng.choice(OPS)
    i = rng.randrange(len(w))
    letters = string.ascii_lowercase
    if op == "insertion":
        new = w[:i] + rng.choice(letters) + w[i:]
    elif op == "deletion":
        new = w[:i] + w[i + 1 :]
    elif op == "substitution":
        new = w[:i] + rng.choice([c for c in letters if c != w[i].lower()]) + w[i + 1 :]
    else:
        i = rng.randrange(len(w) - 1)
        if w[i] == w[i + 1]:  # swapping equal letters changes nothing: substitute instead
            op, new = "substitution", w[:i] + rng.choice([c for c in letters if c != w[i].lower()]) + w[i + 1 :]
        else:
            new = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    return text[: m.start()] + new + text[m.end() :], op


def _words(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"\w+", text)]


def evaluate_set(name: str, index_root: Path, k: int = 10) -> dict:
    folder, lang = SETS[name]
    path = data_dir() / folder
    run_beir(path, index_dir=index_root / name, lang=lang, k=k)  # builds (or reuses) the index
    index = Index.open(index_root / name)
    ds = load_beir(path, "test")
    rng = random.Random(SEED)
    queries = {q: t for q, t in ds.queries.items() if ds.qrels.get(q)}
    rows = {"clean": [], "clean_fuzzy": [], "typo": [], "typo_fuzzy": []}
    restored = with_typo = 0
    ops: dict[str, int] = {}
    timings = {"plain": 0.0, "fuzzy": 0.0, "suggest": 0.0}
    for qid, text in queries.items():
        typo, op = inject_typo(text, rng)
        judged = ds.qrels[qid]
        for key, q, fuzzy in (("clean", text, False), ("clean_fuzzy", text, True), ("typo", typo, False),
                              ("typo_fuzzy", typo, True)):
            t0 = time.perf_counter()
            hits = index.search(plain_query(q), k=k, lang=lang, fuzzy=fuzzy)
            timings["fuzzy" if fuzzy else "plain"] += time.perf_counter() - t0
            ranking = list(dict.fromkeys(h.doc_id for h in hits))
            rows[key].append(ndcg_at_k(ranking, judged, k))
        if op is not None:
            with_typo += 1
            ops[op] = ops.get(op, 0) + 1
            t0 = time.perf_counter()
            suggestion = index.suggest(typo)
            timings["suggest"] += time.perf_counter() - t0
            if suggestion is not None and _words(suggestion) == _words(text):
                restored += 1
    mean = {key: sum(v) / len(v) for key, v in rows.items()}
    loss = mean["clean"] - mean["typo"]
    return {
        "set": name,
        "queries": len(queries),
        "queries_with_typo": with_typo,
        "ops": ops,
        "ndcg@10": {key: round(v, 4) for key, v in mean.items()},
        "recovered_share_of_loss": round((mean["typo_fuzzy"] - mean["typo"]) / loss, 3) if loss > 0 else None,
        "clean_fuzzy_change": round(mean["clean_fuzzy"] - mean["clean"], 4),
        "suggest_restores": round(restored / with_typo, 3) if with_typo else None,
        "ms_per_query": {key: round(v * 1000 / len(queries) / (2 if key != "suggest" else 1), 2)
                         for key, v in timings.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    parser.add_argument("--index-root", type=Path, default=None, help="where the eval indexes live (reused)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    root = args.index_root or Path(tempfile.mkdtemp(prefix="typo-"))
    out = [evaluate_set(s, root) for s in args.sets]
    text = json.dumps(out, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
