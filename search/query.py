"""Query objects and the parser for what users type.

Syntax: bare words (ranked OR), ``"exact phrase"``, ``"a phrase"~N`` (words within N positions),
``+must``, ``-must_not``, ``AND`` / ``OR`` / ``NOT`` (upper case), parentheses, ``title:word`` /
``title:"a phrase"``, ``lang:id`` / ``lang:en`` (``-lang:en`` and ``NOT lang:en`` leave that language's
passages out), and filters on the index's declared metadata fields: ``source:kemenkeu``,
``source:"two words"``, ``year:2020``, ``year:>=2020`` (``>``, ``<``, ``<=``), ``year:[2015 TO 2020]``
(``{}`` excludes the bounds, ``*`` leaves one open). Filters never score: they restrict the passages the
words of the same group match (filters side by side: any of them; joined by ``AND`` or ``+``: all).
A negated filter excludes the documents it matches. A field the index does not declare is plain text.
Fuzzy words (``kebijakn~``: the distance follows the word's length; ``~1``, ``~2``: that many edits),
prefixes (``pajak*``) and wildcards (``peng*an``) stand for the index's words they expand to.

The parser is lenient on purpose: questions pasted from real users must never fail. A ``+`` or ``-``
that does not start a word, a stray parenthesis, a dangling ``AND`` or a ``word:`` that is not a known
field are plain text. Only what cannot be read raises ``QuerySyntaxError``: an unbalanced quote, an
unknown value for ``lang:``, a value a declared field cannot hold (``year:abc``), a word of wildcards only
(``*``) or a fuzzy distance past 2 (``word~3``); and a query past a
limit: more than ``MAX_QUERY_TERMS`` distinct words,
``MAX_PHRASES`` phrases (``MAX_PHRASE_WORDS`` words each) or parentheses nested ``MAX_NESTING`` deep.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import analyzers

from .errors import InvalidArgument, QuerySyntaxError

FIELDS = ("title", "lang")
# Phrases cost position intersections; these bounds keep a pasted query's cost bounded. Each distinct
# word is a postings lookup and a scored clause per segment and language, so distinct words are bounded
# too (Lucene's maxClauseCount is the same 1,024; a repeated word counts once). Parentheses nest at most
# MAX_NESTING deep, so parsing and evaluating a query tree never come near Python's recursion limit.
MAX_PHRASES = 256
MAX_PHRASE_WORDS = 128
MAX_QUERY_TERMS = 1024
MAX_NESTING = 32
MAX_SLOP = 64  # "a b"~N: positions a phrase's words may move; larger values are taken as this

MUST, SHOULD, MUST_NOT = "must", "should", "must_not"
# a clause that restricts the passages without scoring (Lucene's FILTER): filters and masks plug in here
FILTER = "filter"


@dataclass(frozen=True)
class TermQuery:
    """A word as the user typed it; analysis may turn it into one term, none (a stopword) or several."""

    text: str
    field: str | None = None


@dataclass(frozen=True)
class PhraseQuery:
    """Words that must appear at these relative positions (stopword gaps included); with ``slop`` > 0,
    within that many position moves of them (Lucene's sloppy phrase: ``"pajak daerah"~3``)."""

    text: str
    field: str | None = None
    slop: int = 0


@dataclass(frozen=True)
class FieldFilter:
    """A test on a declared metadata field that never scores: the value equals ``value``, or (an int
    field) lies between ``low`` and ``high`` (None: open), bounds included when ``include_*``."""

    field: str
    value: str | int | None = None
    low: int | None = None
    high: int | None = None
    include_low: bool = True
    include_high: bool = True


@dataclass(frozen=True)
class BooleanQuery:
    """Clauses with an occurrence each: must, should or must_not (Lucene's BooleanQuery)."""

    clauses: tuple[tuple[str, Query], ...] = ()


@dataclass(frozen=True)
class FuzzyQuery:
    """A word and the words of the index within ``distance`` edits of it (None: by its length, as
    Elasticsearch's ``AUTO``); matched against the surface words the index saw, not their stems."""

    text: str
    distance: int | None = None
    field: str | None = None
    typed: bool = True  # False: made fuzzy by ``search(fuzzy=True)``, so a function word stays exact


@dataclass(frozen=True)
class PrefixQuery:
    """The words of the index starting with ``text`` (``pajak*``)."""

    text: str
    field: str | None = None


@dataclass(frozen=True)
class WildcardQuery:
    """The words of the index matching ``text``, where ``*`` is any run of letters (``peng*an``)."""

    text: str
    field: str | None = None


#: word nodes that stand for the index words they expand to (``search.multiterm`` evaluates them)
ExpandedQuery = FuzzyQuery | PrefixQuery | WildcardQuery
EXPANDED_QUERIES = (FuzzyQuery, PrefixQuery, WildcardQuery)
MAX_FUZZY_EDITS = 2

Query = TermQuery | PhraseQuery | BooleanQuery | FieldFilter | FuzzyQuery | PrefixQuery | WildcardQuery


@dataclass(frozen=True)
class ParsedQuery:
    """A parsed query: the clause tree, the ``lang:`` filter (None: every language), the languages left
    out (``-lang:en``) and the plain words."""

    root: BooleanQuery
    langs: tuple[str, ...] | None = None
    text: str = ""
    words: tuple[str, ...] = field(default=())
    exclude_langs: tuple[str, ...] = ()

    @functools.cached_property
    def language_probabilities(self) -> Mapping[str, float]:
        """P(language | the query's plain words) (``analyzers.language_probabilities``), computed once a
        parsed query: the parse caches keep a repeated query text parsed, and a two-language query is
        weighed on every search and, sharded, by every shard (25-30 µs a time)."""
        return analyzers.language_probabilities(" ".join(self.words))  # a Mapping: read, never changed

    def with_root(self, root: BooleanQuery) -> ParsedQuery:
        """The same query with another clause tree (fuzzy and prefix words rewritten on each search): its
        words stay, and so do its language probabilities, computed here once for every rewrite."""
        out = dataclasses.replace(self, root=root)
        out.__dict__["language_probabilities"] = self.language_probabilities
        return out


# -- lexer -------------------------------------------------------------------------------------------

_WORD, _PHRASE, _LPAREN, _RPAREN, _PLUS, _MINUS, _AND, _OR, _NOT, _FIELD, _RANGE = (
    "WORD",
    "PHRASE",
    "(",
    ")",
    "+",
    "-",
    "AND",
    "OR",
    "NOT",
    "FIELD",
    "RANGE",
)
_DELIMS = set('()"')
_OPERATORS = frozenset((_AND, _OR, _NOT))


@dataclass
class _Lex:
    kind: str
    value: str
    pos: int
    slop: int = 0


def _lex(text: str, fields: Mapping[str, str] | None = None) -> list[_Lex]:
    known = set(FIELDS) | set(fields or ())
    out: list[_Lex] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c == '"':
            j = text.find('"', i + 1)
            if j < 0:
                raise QuerySyntaxError('unbalanced quote: a phrase opened with " is never closed', i)
            slop = 0
            if text[j + 1 : j + 2] == "~":  # "a phrase"~N: its slop
                k = j + 2
                while k < n and text[k].isdigit():
                    k += 1
                if k > j + 2 and (k == n or text[k].isspace() or text[k] in _DELIMS):
                    slop = MAX_SLOP if k - j - 2 > 4 else min(int(text[j + 2 : k]), MAX_SLOP)
                    out.append(_Lex(_PHRASE, text[i + 1 : j], i, slop))
                    i = k
                    continue
            out.append(_Lex(_PHRASE, text[i + 1 : j], i))
            i = j + 1
            continue
        if c in "()":
            out.append(_Lex(c, c, i))
            i += 1
            continue
        # a word starts after a space, "(", or the "+"/"-" operator just read ("-lang:en" is a field)
        at_start = (
            i == 0
            or text[i - 1].isspace()
            or text[i - 1] == "("
            or (bool(out) and out[-1].kind in (_PLUS, _MINUS) and out[-1].pos == i - 1)
        )
        if c in "+-" and at_start and i + 1 < n and (text[i + 1].isalnum() or text[i + 1] in '"('):
            out.append(_Lex(c, c, i))
            i += 1
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in _DELIMS:
            j += 1
        word = text[i:j]
        name, colon, rest = word.partition(":")
        if colon and name.lower() in known and at_start:
            follows = rest or (j < n and text[j] in '"(')
            if rest[:1] in ("[", "{") and name.lower() not in FIELDS:  # a range: up to its closing bracket
                start = i + len(name) + 1
                close = min((k for k in (text.find("]", start), text.find("}", start)) if k >= 0), default=-1)
                if close < 0:
                    raise QuerySyntaxError(f"the range after {name}: is never closed with ] or }}", start)
                out.append(_Lex(_FIELD, name.lower(), i))
                out.append(_Lex(_RANGE, text[start : close + 1], start))
                i = close + 1
                continue
            if follows:
                out.append(_Lex(_FIELD, name.lower(), i))
                if rest:
                    out.append(_Lex(_WORD, rest, i + len(name) + 1))
                i = j
                continue
        if word in ("AND", "OR", "NOT"):
            out.append(_Lex(word, word, i))
        else:
            out.append(_Lex(_WORD, word, i))
        i = j
    return out


# -- parser ------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, str] | None = None) -> None:
        self.text = text
        self.fields = dict(fields or {})
        self.toks = _lex(text, self.fields)
        self.i = 0
        self.langs: list[str] = []
        self.exclude_langs: list[str] = []
        self.words: list[str] = []
        self.phrases = 0
        self.terms: set[tuple[str | None, str]] = set()
        self.depth = 0

    def peek(self) -> _Lex | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Lex:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> ParsedQuery:
        clauses: list[tuple[str, Query]] = []
        while self.peek() is not None:
            clauses.extend(self.sequence(None, top=True))
            if self.peek() is not None and self.peek().kind == _RPAREN:  # stray ")" is plain text
                self.take()
        langs = tuple(dict.fromkeys(self.langs)) or None
        excluded = tuple(dict.fromkeys(self.exclude_langs))
        return ParsedQuery(BooleanQuery(tuple(clauses)), langs, self.text, tuple(self.words), excluded)

    def sequence(self, fld: str | None, top: bool = False) -> list[tuple[str, Query]]:
        """Clauses up to a closing parenthesis (or the end)."""
        clauses: list[tuple[str, Query]] = []
        pending_and = False
        while True:
            tok = self.peek()
            if tok is None or tok.kind == _RPAREN:
                return clauses
            if tok.kind in (_AND, _OR):
                self.take()
                nxt = self.peek()
                if not clauses or nxt is None or nxt.kind in (_RPAREN, _AND, _OR):
                    self.words.append(tok.value)
                    clauses.append((SHOULD, TermQuery(tok.value, fld)))  # dangling operator: a word
                    continue
                if tok.kind == _AND:
                    occ, q = clauses[-1]
                    if occ == SHOULD:
                        clauses[-1] = (MUST, q)
                    pending_and = True
                continue
            occur = SHOULD
            if tok.kind == _NOT:
                self.take()
                nxt = self.peek()
                if nxt is None or nxt.kind in (_RPAREN, _AND, _OR):
                    self.words.append(tok.value)
                    clauses.append((SHOULD, TermQuery(tok.value, fld)))
                    continue
                occur = MUST_NOT
            elif tok.kind in (_PLUS, _MINUS):
                self.take()
                occur = MUST if tok.kind == _PLUS else MUST_NOT
            if pending_and and occur == SHOULD:
                occur = MUST
            pending_and = False
            nxt = self.peek()
            if occur == MUST_NOT and nxt is not None and nxt.kind == _FIELD and nxt.value == "lang":
                self.take()
                self.exclude_langs.append(self.lang_code(nxt))  # -lang:en: that language's passages left out
                continue
            node = self.primary(fld)
            if node is not None:
                clauses.append((occur, node))

    def primary(self, fld: str | None) -> Query | None:
        tok = self.peek()
        if tok is None or tok.kind == _RPAREN:
            return None
        tok = self.take()
        if tok.kind == _FIELD:
            if tok.value == "lang":
                return self.lang_filter(tok)
            if tok.value in self.fields:
                return self.field_filter(tok)
            return self.primary("title")
        if fld in self.fields and tok.kind in (_WORD, _PHRASE):  # a word inside source:(a OR b)
            return self.field_value(fld, tok.value, tok.pos)
        if tok.kind == _PHRASE:
            self.phrases += 1
            if self.phrases > MAX_PHRASES:
                raise QuerySyntaxError(f"too many phrases (more than {MAX_PHRASES}); remove some quotes", tok.pos)
            if len(tok.value.split()) > MAX_PHRASE_WORDS:
                raise QuerySyntaxError(
                    f"a phrase of {len(tok.value.split())} words is too long (at most {MAX_PHRASE_WORDS})", tok.pos
                )
            self.words.append(tok.value)
            return PhraseQuery(tok.value, fld, tok.slop)
        if tok.kind == _LPAREN:
            if self.depth >= MAX_NESTING:
                raise QuerySyntaxError(f"parentheses nested more than {MAX_NESTING} deep; remove some", tok.pos)
            self.depth += 1
            inner = self.sequence(fld)
            self.depth -= 1
            if self.peek() is not None:
                self.take()  # ")"
            return BooleanQuery(tuple(inner)) if inner else None
        # a word, or an operator with nothing usable after it (then it is a word)
        self.terms.add((fld, tok.value))
        if len(self.terms) > MAX_QUERY_TERMS:
            raise QuerySyntaxError(
                f"too many distinct words (more than {MAX_QUERY_TERMS}); shorten the query", tok.pos
            )
        node = word_query(tok.value, fld, tok.pos)
        self.words.append(node.text.replace("*", " ").strip() if isinstance(node, WildcardQuery) else node.text)
        return node

    def lang_code(self, tok: _Lex) -> str:
        nxt = self.peek()
        value = self.take().value if nxt is not None and nxt.kind in (_WORD, _PHRASE) else ""
        code = value.strip().lower()
        if code not in analyzers.names():
            raise QuerySyntaxError(
                f"unknown language {value!r} in lang:{value}; use one of {', '.join(analyzers.names())}", tok.pos
            )
        return code

    def lang_filter(self, tok: _Lex) -> None:
        self.langs.append(self.lang_code(tok))
        return None

    def field_filter(self, tok: _Lex) -> Query | None:
        """``source:x``, ``year:>=2020``, ``year:[2015 TO 2020]``, ``source:(a OR b)`` on a declared field."""
        name = tok.value
        nxt = self.peek()
        if nxt is None:
            return None
        if nxt.kind == _LPAREN:
            return self.primary(name)
        self.take()
        if nxt.kind == _RANGE:
            return self.field_range(name, nxt.value, nxt.pos)
        return self.field_value(name, nxt.value, nxt.pos)

    def field_value(self, name: str, value: str, pos: int) -> FieldFilter:
        kind = self.fields[name]
        if not kind.startswith("int"):
            return FieldFilter(name, value)
        for op in (">=", "<=", ">", "<"):
            if value.startswith(op):
                bound = self.integer(name, value[len(op) :], pos)
                if op[0] == ">":
                    return FieldFilter(name, low=bound, include_low=op == ">=")
                return FieldFilter(name, high=bound, include_high=op == "<=")
        return FieldFilter(name, self.integer(name, value, pos))

    def field_range(self, name: str, text: str, pos: int) -> FieldFilter:
        if not self.fields[name].startswith("int"):
            raise QuerySyntaxError(f"{name} is a keyword field; ranges like {name}:{text} need an int field", pos)
        parts = text[1:-1].split()
        if len(parts) != 3 or parts[1] != "TO":
            raise QuerySyntaxError(f"a range is written {name}:[LOW TO HIGH], not {name}:{text}", pos)
        low = None if parts[0] == "*" else self.integer(name, parts[0], pos)
        high = None if parts[2] == "*" else self.integer(name, parts[2], pos)
        return FieldFilter(name, low=low, high=high, include_low=text[0] == "[", include_high=text[-1] == "]")

    def integer(self, name: str, text: str, pos: int) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise QuerySyntaxError(f"{name} is an int field; {text!r} is not an integer", pos) from None
        if not -(1 << 63) <= value < 1 << 63:
            raise QuerySyntaxError(f"{name} value {text} is out of range (64-bit integers)", pos)
        return value


def word_query(word: str, fld: str | None = None, pos: int = 0) -> TermQuery | ExpandedQuery:
    """One typed word as its node: ``word~`` / ``word~N`` fuzzy, ``word*`` prefix, ``w*d`` wildcard."""
    base, tilde, edits = word.rpartition("~")
    if tilde and base and not base.endswith("~") and (edits == "" or edits.isdigit()):
        if edits and int(edits) > MAX_FUZZY_EDITS:
            raise QuerySyntaxError(
                f"{word!r} asks for {edits} edits; a fuzzy word allows 0 to {MAX_FUZZY_EDITS} (or ~ alone)", pos
            )
        return FuzzyQuery(base, int(edits) if edits else None, fld)
    if "*" not in word:
        return TermQuery(word, fld)
    stem = word.strip("*")
    if not stem:
        raise QuerySyntaxError(f"{word!r} has no letters: a wildcard needs some (pajak*, peng*an)", pos)
    if "*" not in stem and not word.startswith("*"):
        return PrefixQuery(stem, fld)
    while "**" in word:
        word = word.replace("**", "*")
    return WildcardQuery(word, fld)


def parse_query(text: str, fields: Mapping[str, str] | None = None) -> ParsedQuery:
    """Parse user query syntax into a ``ParsedQuery``; raises ``QuerySyntaxError`` naming the position.

    ``fields`` are the index's declared metadata fields (name -> type): ``name:value`` on one of them is
    a ``FieldFilter``; on any other name it stays text."""
    if not isinstance(text, str):
        raise InvalidArgument(f"query must be a string, got {type(text).__name__}")
    words = text.split()
    # the common case, plain words (letters and digits only, no operator word): what the parser gives
    # them, without lexing character by character (a third of a small query's fixed cost)
    if words and len(words) <= MAX_QUERY_TERMS and all(w.isalnum() and w not in _OPERATORS for w in words):
        return ParsedQuery(BooleanQuery(tuple((SHOULD, TermQuery(w)) for w in words)), None, text, tuple(words))
    return _Parser(text, fields).parse()


def plain_query(text: str) -> ParsedQuery:
    """Every word of ``text`` as a ranked-OR term, with no syntax at all (for evaluation runs)."""
    if not isinstance(text, str):
        raise InvalidArgument(f"query must be a string, got {type(text).__name__}")
    words = text.split()
    if len(set(words)) > MAX_QUERY_TERMS:
        raise QuerySyntaxError(f"too many distinct words (more than {MAX_QUERY_TERMS}); shorten the query", 0)
    return ParsedQuery(BooleanQuery(tuple((SHOULD, TermQuery(w)) for w in words)), None, text, tuple(words))
