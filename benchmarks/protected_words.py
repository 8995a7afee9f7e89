"""Build `analyzers/id/protected_words.txt`: Indonesian words Snowball should leave alone, from corpus evidence.

Dictionary-free; two kinds of evidence, both read from the text itself:

1. **Merged roots.** Snowball gives words of unrelated roots one stem (``keluaran`` -> ``luar``,
   ``penempatannya`` -> ``empat``, ``pertentangan`` -> ``tentang``). Words of one family meet in the
   same passages more often than chance; words that only share a stem do not. For each frequent word w
   of a stem class, lift = (passages holding w and another member) / (the count expected if they were
   independent); w is protected when lift < ``MAX_LIFT`` and at least ``MIN_EXPECTED`` such passages
   were expected (so the absence is evidence, not chance).
2. **Mangled roots.** A word that is itself the stem Snowball gives other frequent words, but whose own
   stem differs (``merdeka`` -> ``rdeka`` while ``kemerdekaan`` -> ``merdeka``; ``perintah`` -> ``intah``
   while ``pemerintah`` -> ``perintah``), is protected so that it meets its family.

Corpora: the TyDi QA GoldP-id passages (Wikipedia) and the first ``--peraturan`` id-peraturan passages
(law), lowercased words of two or more letters; words seen fewer than ``MIN_COUNT`` times are ignored.

Run: ``.venv/bin/python -m benchmarks.protected_words --write`` (prints the list and its evidence).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from analyzers.id import stem
from benchmarks.config import data_dir

MIN_COUNT = 10  # passages holding a word, for it to be considered
MAX_LIFT = 0.5
MIN_EXPECTED = 5.0
MIN_FAMILY = 3  # mangled roots: the word must be the stem of this many other frequent words

_WORD = re.compile(r"[^\W\d_]{2,}")
OUT = Path(__file__).resolve().parents[1] / "analyzers" / "id" / "protected_words.txt"


def read_texts(data: Path, peraturan: int) -> list[str]:
    texts = []
    with (data / "tydiqa-goldp-id-retrieval" / "corpus.jsonl").open(encoding="utf-8") as f:
        texts += [r["text"] for r in map(json.loads, f)]
    with gzip.open(data / "id-peraturan-bulk" / "passages.jsonl.gz", "rt", encoding="utf-8") as f:
        texts += [r["text"] for r in map(json.loads, itertools.islice(f, peraturan))]
    return texts


def list_arguments(argv: list[str] | None, description: str, out: Path) -> argparse.Namespace:
    """The arguments every word-list builder here takes: the data folder, how many id-peraturan passages
    to read beside TyDi, and whether to write ``out``."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data", type=Path, default=data_dir())
    ap.add_argument("--peraturan", type=int, default=100000)
    ap.add_argument("--write", action="store_true", help=f"write {out}")
    return ap.parse_args(argv)


def write_list(out: Path, header: str, lines: list[str]) -> None:
    """A shipped word list: its provenance header (``#`` lines), then one entry per line."""
    out.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")


def evidence(texts: list[str]) -> tuple[dict[str, tuple[str, float, str]], Counter[str]]:
    """word -> (kind, score, stem) for every word to protect; and each word's passage count."""
    passages = [set(_WORD.findall(t.lower())) for t in texts]
    df = Counter(w for p in passages for w in p)
    frequent = [w for w, c in df.items() if c >= MIN_COUNT]
    stems = {w: stem(w) for w in frequent}
    classes: dict[str, list[str]] = defaultdict(list)
    for w in frequent:
        classes[stems[w]].append(w)
    out: dict[str, tuple[str, float, str]] = {}

    # 2. mangled roots
    for w in frequent:
        family = [x for x in classes.get(w, []) if x != w]
        if stems[w] != w and len(family) >= MIN_FAMILY:
            out[w] = ("mangled", float(len(family)), stems[w])

    # 1. merged roots: passage co-occurrence of each member with the rest of its class
    members_of = {w: m for m in classes.values() if len(m) > 1 for w in m}
    holding: dict[str, set[int]] = defaultdict(set)
    for i, p in enumerate(passages):
        for w in p.intersection(members_of):
            holding[w].add(i)
    n = len(passages)
    for w, members in members_of.items():
        s = stems[w]
        if w == s:  # the bare root is itself: protecting it changes nothing
            continue
        rest = set().union(*(holding[x] for x in members if x != w))
        expected = len(holding[w]) * len(rest) / n
        lift = len(holding[w] & rest) / expected if expected else 0.0
        if expected >= MIN_EXPECTED and lift < MAX_LIFT:
            out.setdefault(w, ("merged", round(lift, 3), s))
    return out, df


def main(argv: list[str] | None = None) -> int:
    args = list_arguments(argv, __doc__.split("\n")[0], OUT)
    found, counts = evidence(read_texts(args.data, args.peraturan))
    lines = [
        f"{w}  # {kind} {score} {s} {counts[w]}"
        for w, (kind, score, s) in sorted(found.items(), key=lambda x: (x[1][0], x[0]))
    ]
    print("\n".join(lines))
    print(f"{len(lines)} words", file=sys.stderr)
    if args.write:
        write_list(
            OUT,
            "# Indonesian protected words: indexed as they are, never stemmed (Snowball would merge unrelated\n"
            "# roots or mangle a root). Built by benchmarks/protected_words.py from TyDi GoldP-id passages and\n"
            f"# the first {args.peraturan} id-peraturan passages: passages holding the word >= {MIN_COUNT};\n"
            f"# merged: lift < {MAX_LIFT} with >= {MIN_EXPECTED} passages expected; mangled: family >= {MIN_FAMILY}.\n"
            "# Columns: kind, score (merged: co-occurrence lift with the rest of the stem class; mangled: how\n"
            "# many frequent words have the word as their stem), Snowball stem, passages holding the word.\n"
            "# Override per index: Index.create(..., protected_words=[...]).\n",
            lines,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
