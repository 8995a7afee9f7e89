"""Indonesian analysis: `stemmer` (pure), `analyzer` (the chain), `stopwords.txt` (the resource), plus
`question_words.txt`, `framing_words.txt`, `protected_words.txt`, `stem_repairs.txt` and `compounds.txt`
(measured lists; each file's header says how)."""

from .analyzer import (
    COMPOUNDS,
    FRAMING_WORDS,
    PROTECTED_WORDS,
    QUESTION_WORDS,
    STEM_REPAIRS,
    STOPWORDS,
    VERSION,
    VERSIONS,
    make_analyzer,
)
from .stemmer import repaired, stem

__all__ = [
    "COMPOUNDS",
    "FRAMING_WORDS",
    "PROTECTED_WORDS",
    "QUESTION_WORDS",
    "STEM_REPAIRS",
    "STOPWORDS",
    "VERSION",
    "VERSIONS",
    "make_analyzer",
    "repaired",
    "stem",
]
