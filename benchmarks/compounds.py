"""Build `analyzers/id/compounds.txt`: Indonesian closed compounds whose usual spelling is open.

Indonesian writes many compounds as two words ("ibu kota", "tanda tangan", "kerja sama", "sepak bola")
and people often join them ("ibukota", "tandatangan"): a TyDi question asks about the "ibukota" of a
country whose passage says "ibu kota", and the joined word is a term of its own that never meets the
passage. Dictionary-free evidence, read from the corpora: a word w that is two words a + b (each at
least ``MIN_PART`` letters and seen alone at least ``MIN_PART_COUNT`` times, neither a Tala stopword
nor a Snowball affix, a != b) is opened into a and b when both spellings are in use: w seen at least
``MIN_CLOSED`` times, "a b" at least ``MIN_OPEN`` times and at least ``MIN_OPEN_SHARE`` of w's count.
The share and the part counts keep out the law corpus's OCR breaks ("pemeri ntah", "pres iden"), and
a == b is a reduplication or a word of its own ("barbar", "tonton"), never a compound.

Corpora: the TyDi QA GoldP-id passages (Wikipedia) and the first ``--peraturan`` id-peraturan passages
(law), as `benchmarks/protected_words.py` reads them; questions are not read.

Run: ``.venv/bin/python -m benchmarks.compounds --write`` (prints the list and its evidence).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

from analyzers.id import STOPWORDS
from benchmarks.protected_words import list_arguments, read_texts, write_list

MIN_PART = 3
MIN_OPEN = 10
MIN_CLOSED = 3
MIN_OPEN_SHARE = 0.1
MIN_CLOSED_SHARE = 0.01
MIN_PART_COUNT = 100

# Snowball's Indonesian affixes: bound, never a word of an open compound ("ber badan", "tiongkok nya").
AFFIXES = frozenset(
    "di ke se ber be per pe ter me mem men meng meny pen pem peng peny kah lah pun ku mu nya kan an i".split()
)

_WORD = re.compile(r"[^\W\d_]+")
OUT = Path(__file__).resolve().parents[1] / "analyzers" / "id" / "compounds.txt"


def evidence(texts: list[str]) -> dict[str, tuple[str, str, int, int]]:
    """Closed word -> (first part, second part, open spelling count, closed spelling count)."""
    words: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for text in texts:
        ws = _WORD.findall(text.lower())
        words.update(ws)
        pairs.update(zip(ws, ws[1:]))
    out: dict[str, tuple[str, str, int, int]] = {}
    for w, closed in words.items():
        if len(w) < 2 * MIN_PART:
            continue
        best = None
        for i in range(MIN_PART, len(w) - MIN_PART + 1):
            a, b = w[:i], w[i:]
            if a == b or a in STOPWORDS or b in STOPWORDS or a in AFFIXES or b in AFFIXES:
                continue
            n = pairs.get((a, b), 0)
            if words[a] < MIN_PART_COUNT or words[b] < MIN_PART_COUNT:
                continue
            in_use = n >= MIN_OPEN_SHARE * closed and closed >= MIN_CLOSED_SHARE * n  # both spellings
            if n >= MIN_OPEN and closed >= MIN_CLOSED and in_use and (best is None or n > best[2]):
                best = (a, b, n, closed)
        if best is not None:
            out[w] = best
    return out


def main(argv: list[str] | None = None) -> int:
    args = list_arguments(argv, __doc__.split("\n")[0], OUT)
    found = evidence(read_texts(args.data, args.peraturan))
    lines = [f"{w} {a} {b}  # {n} {c}" for w, (a, b, n, c) in sorted(found.items())]
    print("\n".join(lines))
    print(f"{len(lines)} compounds", file=sys.stderr)
    if args.write:
        write_list(
            OUT,
            "# Indonesian closed compounds opened by the analyzer (version 5): each line is the joined word and\n"
            "# the two words of its usual open spelling; the joined word is indexed and searched as those two.\n"
            "# Built by benchmarks/compounds.py from TyDi GoldP-id passages and the first\n"
            f"# {args.peraturan} id-peraturan passages: parts >= {MIN_PART} letters, each seen alone\n"
            f"# >= {MIN_PART_COUNT} times, neither a Tala stopword nor a Snowball affix, not equal; the joined\n"
            f"# word seen >= {MIN_CLOSED} times, the open spelling >= {MIN_OPEN} times and >= {MIN_OPEN_SHARE}\n"
            "# of that.\n"
            "# Columns after '#': times the open spelling was seen, times the joined word was seen.\n",
            lines,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
