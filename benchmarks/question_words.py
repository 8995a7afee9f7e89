"""Recompute `analyzers/id/question_words.txt` and `analyzers/id/framing_words.txt` from TyDi QA
GoldP-id *train* (dev and test are not read).

Both lists use one criterion. For a candidate word w that occurs in n training questions: rel = how many
of those questions' relevant passages hold w, base = the share of corpus passages that hold w. w passes
when

    (rel + 1) / (n + 2) < 0.3         it is rarely in the passage that answers (smoothed toward 1/2)
    (n / questions) / base > 0.4      and far more common in questions than in text

(framing words: < 0.35 and > 0.3, ``FRAMING_MAX_ANSWER_SHARE`` and ``FRAMING_MIN_QUESTION_RATIO``, chosen
on TyDi train; they add ``nama``, ``kali``, ``muncul``, ``penyebab``, ``ditemukan`` and ``menemukan``).

* **Question words** (never scored; a query holding one is a question): candidates are the Tala
  stopwords and the one-word spellings of their interrogatives that TyDi questions use and the Tala
  list spells apart (``di``/``dari``/``ke`` + a Tala word, with or without the particle ``-kah``:
  ``dimana``, ``dimanakah``, ``darimana``). Compared as surface words.
* **Framing words** (scored in a keyword query, dropped from a question like the Tala function
  words): every other word of at least ``MIN_FRAMING_QUESTIONS`` questions, compared as the index
  term (the Snowball stem), since that is what a score matches: ``dimaksud`` ("apa yang dimaksud
  dengan ..."), ``pengertian``, ``definisi``, ``jumlah`` ("berapa jumlah ..."). ``letak`` does not
  pass: its answers say ``terletak``, which has the same stem.

Run: ``.venv/bin/python -m benchmarks.question_words [TYDI_DIR]`` (prints both lists with their columns).
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from analyzers.base import TOKEN_RE, split_word
from analyzers.id import COMPOUNDS, STOPWORDS, make_analyzer
from benchmarks.config import data_dir

MAX_ANSWER_SHARE = 0.3
MIN_QUESTION_RATIO = 0.4
MIN_FRAMING_QUESTIONS = 20
# framing words have thresholds of their own, chosen on TyDi train (docs/quality.md, issue 16, third
# part): (0.3, 0.4) train 0.7289, (0.35, 0.4) 0.7297, (0.3, 0.3) 0.7302, (0.35, 0.3) 0.7307
FRAMING_MAX_ANSWER_SHARE = 0.35
FRAMING_MIN_QUESTION_RATIO = 0.3

Row = tuple[str, int, int, float]


def _words(text: str) -> set[str]:
    return {w for m in TOKEN_RE.finditer(text) for w, _, _ in split_word(m.group())}


def interrogative_spellings(stopwords: frozenset[str]) -> frozenset[str]:
    """Tala stopwords and their one-word forms with ``di``/``dari``/``ke`` and ``-kah``."""
    out = set(stopwords)
    for w in stopwords:
        for prefix in ("", "di", "dari", "ke"):
            for suffix in ("", "kah"):
                out.add(prefix + w + suffix)
    return frozenset(out)


def _passing(
    corpus: list[set[str]],
    questions: list[tuple[set[str], list[set[str]]]],
    candidate: Callable[[str], bool],
    min_questions: int,
    max_share: float = MAX_ANSWER_SHARE,
    min_ratio: float = MIN_QUESTION_RATIO,
) -> list[Row]:
    df = Counter(w for ws in corpus for w in ws)
    asked: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    for words, passages in questions:
        for w in filter(candidate, words):
            asked[w] += 1
            answered[w] += any(w in p for p in passages)
    out = []
    for w, n in asked.items():
        base = df[w] / len(corpus)
        ratio = (n / len(questions)) / base if base else float("inf")
        if n >= min_questions and (answered[w] + 1) / (n + 2) < max_share and ratio > min_ratio:
            out.append((w, n, answered[w], round(base, 4)))
    return sorted(out, key=lambda r: (-r[1], r[0]))


def _load(folder: Path) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    with (folder / "corpus.jsonl").open(encoding="utf-8") as f:
        corpus = {r["_id"]: r.get("title", "") + " " + r["text"] for r in map(json.loads, f)}
    with (folder / "queries.jsonl").open(encoding="utf-8") as f:
        queries = {r["_id"]: r["text"] for r in map(json.loads, f)}
    relevant: dict[str, set[str]] = defaultdict(set)
    with (folder / "qrels" / "train.tsv").open(encoding="utf-8") as f:
        for line in f:
            qid, did, grade = line.split()
            if grade.isdigit() and int(grade) > 0:
                relevant[qid].add(did)
    return corpus, queries, relevant


def question_words(folder: Path) -> list[Row]:
    """(word, questions holding it, of those answered by a passage holding it, share of passages)."""
    corpus, queries, relevant = _load(folder)
    passages = {d: _words(t) for d, t in corpus.items()}
    candidates = interrogative_spellings(STOPWORDS)
    questions = [(_words(queries[q]), [passages[d] for d in docs]) for q, docs in relevant.items()]
    return _passing(list(passages.values()), questions, candidates.__contains__, 1)


def framing_words(folder: Path, question: frozenset[str]) -> list[Row]:
    """Like `question_words`, for non-stopwords of >= MIN_FRAMING_QUESTIONS questions, by index term."""
    corpus, queries, relevant = _load(folder)
    analyzer = make_analyzer()  # the stemmer with the shipped protected words, as an index has it
    passages = {d: set(analyzer.analyze_columns(t)[0]) for d, t in corpus.items()}
    # closed compounds are searched as their two words ("ibukota" -> "ibu kota"), not as one term
    excluded = interrogative_spellings(STOPWORDS) | question | frozenset(COMPOUNDS)
    term_of: dict[str, str] = {}  # term -> the commonest question word that gives it (the row's name)
    questions = []
    for q, docs in relevant.items():
        words = _words(queries[q]) - excluded
        terms = set()
        for w in words:
            t = analyzer.term(w)
            if t:
                terms.add(t)
                term_of.setdefault(t, w)
        questions.append((terms, [passages[d] for d in docs]))
    rows = _passing(
        list(passages.values()),
        questions,
        lambda t: True,
        MIN_FRAMING_QUESTIONS,
        FRAMING_MAX_ANSWER_SHARE,
        FRAMING_MIN_QUESTION_RATIO,
    )
    # a term stands for the question words that give it; list each word of >= MIN_FRAMING_QUESTIONS
    asked = Counter(w for q in relevant for w in _words(queries[q]) - excluded)
    out = []
    for t, _n, rel, base in rows:
        for w in sorted(w for w in asked if analyzer.term(w) == t and asked[w] >= MIN_FRAMING_QUESTIONS):
            out.append((w, asked[w], rel, base))
    return sorted(out, key=lambda r: (-r[1], r[0]))


if __name__ == "__main__":
    default = data_dir() / "tydiqa-goldp-id-retrieval"
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    q = question_words(folder)
    print("# question words")
    for row in q:
        print(f"{row[0]}  # {row[1]} {row[2]} {row[3]}")
    print("# framing words (columns: the word's questions; answered and share of passages by its term)")
    for row in framing_words(folder, frozenset(r[0] for r in q)):
        print(f"{row[0]}  # {row[1]} {row[2]} {row[3]}")
