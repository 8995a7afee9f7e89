"""The recommended Indonesian analysis chain: Unicode tokenizer, NFKC + casefold, stopwords, Snowball stems."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from analyzers.base import Analyzer, load_wordlist, normalize_word

from .stemmer import repaired, stem

#: Bump when the terms produced for some input change (tokenizer, stopwords, stemmer options).
#: "6": Snowball stems that mangle a root are mapped back to it (stem_repairs.txt: "rdeka" -> "merdeka").
#: "5": closed compounds whose open spelling is in use are opened (compounds.txt: "ibukota" -> "ibu kota").
#: "4": protected words (protected_words.txt) are not stemmed. "3": every word is indexed (stopwords are
#: dropped at query time only). "2": Tala stopwords not indexed.
VERSION = "6"
VERSIONS = ("2", "3", "4", "5", "6")

STOPWORDS = load_wordlist(Path(__file__).with_name("stopwords.txt"))

#: Question-framing words ("dimaksud", "jumlah", "pengertian"): measured on TyDi train, see the file's header.
FRAMING_WORDS = load_wordlist(Path(__file__).with_name("framing_words.txt"))

#: Function words: indexed (since version 3), scored in keyword queries, dropped from questions. The
#: framing words join them at query time only (the index is the same, so the version is too).
QUERY_STOPWORDS = STOPWORDS | FRAMING_WORDS

#: Words Snowball must not stem (it would merge unrelated roots or mangle a root); see the file's header.
PROTECTED_WORDS = load_wordlist(Path(__file__).with_name("protected_words.txt"))


def _load_compounds(path: Path) -> dict[str, tuple[str, ...]]:
    """``joined part part ...`` per line; ``#`` starts a comment."""
    out: dict[str, tuple[str, ...]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        words = [normalize_word(w) for w in line.split("#", 1)[0].split()]
        if len(words) >= 3:
            out[words[0]] = tuple(words[1:])
    return out


#: Closed compounds -> the words of their open spelling (indexed and searched as those words); see the file.
COMPOUNDS = _load_compounds(Path(__file__).with_name("compounds.txt"))

def _load_repairs(path: Path) -> dict[str, str]:
    """``mangled root`` per line; ``#`` starts a comment."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        words = [normalize_word(w) for w in line.split("#", 1)[0].split()]
        if len(words) == 2:
            out[words[0]] = words[1]
    return out


#: Snowball stems that mangle a root -> the root (version 6); see the file's header.
STEM_REPAIRS = _load_repairs(Path(__file__).with_name("stem_repairs.txt"))
_REPAIRED = repaired(STEM_REPAIRS)

#: Question words: they mark a query as a question and are never scored in a ranked query.
QUESTION_WORDS = load_wordlist(Path(__file__).with_name("question_words.txt"))

#: The two-word spellings of the one-word question words made of di/dari/ke and a stopword ("dimana",
#: "darimana"): "di mana" and "dari mana" ask the same question (query side only: the index is the same).
QUESTION_PAIRS = frozenset(
    (p, q[len(p) :])
    for q in QUESTION_WORDS
    for p in ("di", "dari", "ke")
    if q.startswith(p) and q[len(p) :] in STOPWORDS
)


_BEFORE_REPAIRS = ("2", "3", "4", "5")


def make_analyzer(
    *,
    stem_words: bool = True,
    stopwords: bool = True,
    reduplication: bool = True,
    index_stopwords: bool = True,
    protected_words: Iterable[str] | None = None,
    compounds: bool = True,
    stem_repairs: bool = True,
    version: str = VERSION,
) -> Analyzer:
    """A new Indonesian analyzer; the options exist for ablations (see docs/quality.md).

    ``stopwords=False`` scores every word; ``index_stopwords=False`` leaves the Tala stopwords out of
    the index (what version "2" did, which ``version="2"`` rebuilds for indexes made with it).
    ``protected_words`` replaces the shipped list of words never stemmed (``()``: stem every word);
    versions before "4" protect nothing. ``compounds=False`` keeps closed compounds whole, as versions
    before "5" did. ``stem_repairs=False`` keeps Snowball's mangled stems (``merdeka`` -> ``rdeka``), as
    versions before "6" did.
    """
    if version not in VERSIONS:
        raise ValueError(f"unknown Indonesian analyzer version {version!r}; this telusur has {VERSIONS}")
    legacy = version == "2"
    index_stop = stopwords and (legacy or not index_stopwords)
    return Analyzer(
        "id",
        version,
        stopwords=STOPWORDS if index_stop else (),
        query_stopwords=QUERY_STOPWORDS if stopwords and not index_stop else (),
        question_words=QUESTION_WORDS if stopwords and not index_stop else (),
        question_pairs=QUESTION_PAIRS if stopwords and not index_stop else (),
        stemmer=(_REPAIRED if stem_repairs and version not in _BEFORE_REPAIRS else stem) if stem_words else None,
        reduplication=reduplication,
        protected=() if version in ("2", "3") else PROTECTED_WORDS if protected_words is None else protected_words,
        compounds=COMPOUNDS if compounds and version not in ("2", "3", "4") else None,
    )
