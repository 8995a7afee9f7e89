"""English analysis: `stemmer` (pure), `analyzer` (the chain), `stopwords.txt` (the resource)."""

from .analyzer import STOPWORDS, VERSION, VERSIONS, make_analyzer
from .stemmer import stem

__all__ = ["STOPWORDS", "VERSION", "VERSIONS", "make_analyzer", "stem"]
