"""Passage language identification: how often each corpus's passages get each label (issue 16).

Corpora and their true language: id-peraturan (id) and enwiki-extract (en), 2,000 passages each taken
evenly across the file; TyDi GoldP-id (id) and SciFact (en), every passage. Methods:

* ``stopwords``: the stopword evidence alone (what indexing used before; "und" went to the index's
  default language, English unless set);
* ``passage``: ``detect_passage`` on each passage alone (stopwords, then the n-gram model);
* ``document``: ``detect_document`` with each passage's document as the prior (bulk corpora only; TyDi
  and SciFact passages are documents of their own).

Also the issue's goal: the share of the first 20,000 id-peraturan passages, each indexed alone, that
would be indexed as English (``und`` counted as English, the default).

Run: ``.venv/bin/python -m benchmarks.language_confusion`` (about a minute; data from ``$TELUSUR_DATA``
or ``../shared/data``).
"""

from __future__ import annotations

import gzip
import itertools
import json
import sys
from collections import Counter, defaultdict

from analyzers import tokenize
from analyzers.language import decide, detect_document, detect_passage, stopword_evidence
from benchmarks.config import data_dir

DATA = data_dir()


def _bulk(folder: str, n: int) -> list[dict]:
    with gzip.open(DATA / folder / "passages.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    step = max(1, len(rows) // n)
    return rows[::step][:n]


def _beir(folder: str) -> list[dict]:
    with (DATA / folder / "corpus.jsonl").open(encoding="utf-8") as f:
        return [{"text": r["text"], "doc_id": r["_id"]} for r in map(json.loads, f)]


def confusion(rows: list[dict], grouped: bool) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {"stopwords": Counter(), "passage": Counter()}
    for r in rows:
        raw = tokenize(r["text"])
        out["stopwords"][decide(*stopword_evidence(raw))[0]] += 1
        out["passage"][detect_passage(raw, r["text"])[0]] += 1
    if grouped:
        out["document"] = Counter()
        by_doc: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            by_doc[r["doc_id"]].append(r)
        for passages in by_doc.values():
            out["document"].update(detect_document([(tokenize(p["text"]), p["text"]) for p in passages]))
    return out


def main() -> int:
    sets = [
        ("id-peraturan (2,000)", "id", _bulk("id-peraturan-bulk", 2000), True),
        ("enwiki-extract (2,000)", "en", _bulk("enwiki-extract-bulk", 2000), True),
        ("TyDi GoldP-id corpus", "id", _beir("tydiqa-goldp-id-retrieval"), False),
        ("SciFact corpus", "en", _beir("beir-scifact"), False),
    ]
    print("| corpus (true language) | method | id | en | und | wrong or und |")
    print("|---|---|---:|---:|---:|---:|")
    for name, lang, rows, grouped in sets:
        for method, counts in confusion(rows, grouped).items():
            n = sum(counts.values())
            off = n - counts[lang]
            print(f"| {name} ({lang}) | {method} | {counts['id']} | {counts['en']} | {counts['und']} | {off / n:.2%} |")
    with gzip.open(DATA / "id-peraturan-bulk" / "passages.jsonl.gz", "rt", encoding="utf-8") as f:
        first = [json.loads(line)["text"] for line in itertools.islice(f, 20000)]
    before = sum(decide(*stopword_evidence(tokenize(t)))[0] != "id" for t in first)
    after = sum(detect_passage(tokenize(t), t)[0] != "id" for t in first)
    print(
        f"\nfirst 20,000 id-peraturan passages indexed alone as English (und -> default en): "
        f"stopwords {before} ({before / 200:.2f}%), now {after} ({after / 200:.2f}%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
