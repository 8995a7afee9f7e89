"""Build `analyzers/id/stem_repairs.txt`: Snowball stems that mangle a root, mapped back to the root.

Snowball ``indonesian`` takes particles, possessives and prefixes off words that only look affixed:
``merdeka`` -> ``rdeka`` while ``kemerdekaan`` -> ``merdeka``; ``sekolah`` -> ``seko`` (a "-lah"
particle) while ``sekolahnya`` -> ``sekolah``; ``industri`` -> ``industr`` while ``perindustrian`` ->
``industri``. The root and its derived words then have two stems and never meet. Protecting the root
(``protected_words.txt``) mends only the one word: its inflections (``merdekalah``, ``bersekolah``)
keep the mangled stem. A repair maps the mangled stem itself to the root, so every word Snowball gives
it joins the root's family.

Dictionary-free; a stem s is repaired to a word w when the corpora show that:

1. w is a frequent word (in >= ``MIN_COUNT`` passages) and the Snowball stem of at least one other
   frequent word (w is a root, not an affixed form);
2. Snowball stems w itself to s != w, and s is not a word of its own (in < ``MIN_COUNT`` passages);
3. every frequent word with the stem s holds w, affixed (``sekolah``, ``bersekolah`` but no
   ``menaruh`` in the class of ``aruh``, whose root ``taruh`` is another word than ``pengaruh``), and
   none is more frequent than w (``kemudian`` "then" keeps ``mudi`` from being repaired to ``kemudi``
   "helm"), so the repair joins w's family and nothing else;
4. no other word qualifies for the same s.

Corpora: as ``benchmarks.protected_words`` (TyDi QA GoldP-id passages and the first ``--peraturan``
id-peraturan passages, lowercased words of two or more letters).

Run: ``.venv/bin/python -m benchmarks.stem_repairs --write`` (prints the repairs and their evidence).
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from analyzers.id import stem
from benchmarks.protected_words import MIN_COUNT, list_arguments, read_texts, write_list

_WORD = re.compile(r"[^\W\d_]{2,}")
OUT = Path(__file__).resolve().parents[1] / "analyzers" / "id" / "stem_repairs.txt"


def repairs(texts: list[str]) -> dict[str, tuple[str, list[str], list[str], int]]:
    """mangled stem -> (root, the root's family, the stem's class, passages holding the root)."""
    df = Counter(w for t in texts for w in set(_WORD.findall(t.lower())))
    frequent = [w for w, c in df.items() if c >= MIN_COUNT]
    stems = {w: stem(w) for w in frequent}
    classes: dict[str, list[str]] = defaultdict(list)
    for w in frequent:
        classes[stems[w]].append(w)
    found: dict[str, list[str]] = defaultdict(list)
    for w in frequent:
        s = stems[w]
        family = [x for x in classes.get(w, ()) if x != w]
        if s == w or not family or df.get(s, 0) >= MIN_COUNT:
            continue
        if all(w in x and df[x] <= df[w] for x in classes[s]):
            found[s].append(w)
    return {
        s: (ws[0], sorted(x for x in classes[ws[0]] if x != ws[0]), sorted(classes[s]), df[ws[0]])
        for s, ws in found.items()
        if len(ws) == 1
    }


def main(argv: list[str] | None = None) -> int:
    args = list_arguments(argv, __doc__.split("\n")[0], OUT)
    found = repairs(read_texts(args.data, args.peraturan))
    lines = [
        f"{s} {w}  # {n} passages; {w} is the stem of {', '.join(family[:3])}{' ...' if len(family) > 3 else ''};"
        f" stem {s}: {', '.join(members[:3])}{' ...' if len(members) > 3 else ''}"
        for s, (w, family, members, n) in sorted(found.items(), key=lambda x: x[1][0])
    ]
    print("\n".join(lines))
    print(f"{len(lines)} repairs", file=sys.stderr)
    if args.write:
        write_list(
            OUT,
            "# Indonesian stem repairs: a Snowball stem that mangles a root -> the root (`mangled root` per\n"
            "# line). Every word Snowball stems to the left word is indexed and searched under the right one.\n"
            "# Built by benchmarks/stem_repairs.py (dictionary-free) from TyDi GoldP-id passages and the first\n"
            f"# {args.peraturan} id-peraturan passages (words in >= {MIN_COUNT} passages are frequent): the root is\n"
            "# frequent and the stem of another frequent word; Snowball stems the root to the mangled stem,\n"
            "# which is no frequent word; every frequent word with the mangled stem holds the root, and none\n"
            "# is more frequent than the root; one root per stem. The comment gives the\n"
            "# evidence: passages holding the root, frequent words stemmed to the root, frequent words\n"
            "# stemmed to the mangled stem.\n",
            lines,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
