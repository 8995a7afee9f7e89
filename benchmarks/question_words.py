"""Recompute `analyzers/id/question_words.txt` from TyDi QA GoldP-id *train* (dev and test are not read).

For every Tala stopword w that occurs in n training questions: rel = how many of those questions' relevant
passages hold w, base = the share of corpus passages that hold w. w is a question word when

    (rel + 1) / (n + 2) < 0.3         it is rarely in the passage that answers (smoothed toward 1/2)
    (n / questions) / base > 0.4      and far more common in questions than in text

Run: ``.venv/bin/python -m benchmarks.question_words [TYDI_DIR]`` (prints the list with its columns).
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from analyzers.base import TOKEN_RE, split_word
from analyzers.id import STOPWORDS
from benchmarks.config import data_dir

MAX_ANSWER_SHARE = 0.3
MIN_QUESTION_RATIO = 0.4


def _words(text: str) -> set[str]:
    return {w for m in TOKEN_RE.finditer(text) for w, _, _ in split_word(m.group())}


def question_words(folder: Path) -> list[tuple[str, int, int, float]]:
    """(word, questions holding it, of those answered by a passage holding it, share of passages)."""
    with (folder / "corpus.jsonl").open(encoding="utf-8") as f:
        corpus = {r["_id"]: _words(r.get("title", "") + " " + r["text"]) for r in map(json.loads, f)}
    with (folder / "queries.jsonl").open(encoding="utf-8") as f:
        queries = {r["_id"]: _words(r["text"]) for r in map(json.loads, f)}
    relevant: dict[str, set[str]] = defaultdict(set)
    with (folder / "qrels" / "train.tsv").open(encoding="utf-8") as f:
        for line in f:
            qid, did, grade = line.split()
            if grade.isdigit() and int(grade) > 0:
                relevant[qid].add(did)
    df = Counter(w for ws in corpus.values() for w in ws & STOPWORDS)
    asked: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    for qid, docs in relevant.items():
        for w in queries[qid] & STOPWORDS:
            asked[w] += 1
            answered[w] += any(w in corpus[d] for d in docs)
    out = []
    for w, n in asked.items():
        base = df[w] / len(corpus)
        ratio = (n / len(relevant)) / base if base else float("inf")
        if (answered[w] + 1) / (n + 2) < MAX_ANSWER_SHARE and ratio > MIN_QUESTION_RATIO:
            out.append((w, n, answered[w], round(base, 4)))
    return sorted(out, key=lambda r: -r[1])


if __name__ == "__main__":
    default = data_dir() / "tydiqa-goldp-id-retrieval"
    for row in question_words(Path(sys.argv[1]) if len(sys.argv) > 1 else default):
        print(f"{row[0]}  # {row[1]} {row[2]} {row[3]}")
