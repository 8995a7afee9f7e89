"""Query objects and the parser for what users type.

Syntax: bare words (ranked OR), ``"exact phrase"``, ``+must``, ``-must_not``, ``AND`` / ``OR`` / ``NOT``
(upper case), parentheses, ``title:word`` / ``title:"a phrase"``, and ``lang:id`` / ``lang:en`` filters.

The parser is lenient on purpose: questions pasted from real users must never fail. A ``+`` or ``-``
that does not start a word, a stray parenthesis, a dangling ``AND`` or a ``word:`` that is not a known
field are plain text. Only what cannot be read raises ``QuerySyntaxError``: an unbalanced quote, or
an unknown value for ``lang:``; and a query past a limit: more than ``MAX_QUERY_TERMS`` distinct words,
``MAX_PHRASES`` phrases (``MAX_PHRASE_WORDS`` words each) or parentheses nested ``MAX_NESTING`` deep.
"""

from __future__ import annotations

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
    """Words that must appear at these relative positions (stopword gaps included)."""

    text: str
    field: str | None = None


@dataclass(frozen=True)
class BooleanQuery:
    """Clauses with an occurrence each: must, should or must_not (Lucene's BooleanQuery)."""

    clauses: tuple[tuple[str, Query], ...] = ()


Query = TermQuery | PhraseQuery | BooleanQuery


@dataclass(frozen=True)
class ParsedQuery:
    """A parsed query: the clause tree, the ``lang:`` filter (None: every language) and the plain words."""

    root: BooleanQuery
    langs: tuple[str, ...] | None = None
    text: str = ""
    words: tuple[str, ...] = field(default=())


# -- lexer -------------------------------------------------------------------------------------------

_WORD, _PHRASE, _LPAREN, _RPAREN, _PLUS, _MINUS, _AND, _OR, _NOT, _FIELD = (
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
)
_DELIMS = set('()"')


@dataclass
class _Lex:
    kind: str
    value: str
    pos: int


def _lex(text: str) -> list[_Lex]:
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
            out.append(_Lex(_PHRASE, text[i + 1 : j], i))
            i = j + 1
            continue
        if c in "()":
            out.append(_Lex(c, c, i))
            i += 1
            continue
        at_start = i == 0 or text[i - 1].isspace() or text[i - 1] == "("
        if c in "+-" and at_start and i + 1 < n and (text[i + 1].isalnum() or text[i + 1] in '"('):
            out.append(_Lex(c, c, i))
            i += 1
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in _DELIMS:
            j += 1
        word = text[i:j]
        name, colon, rest = word.partition(":")
        if colon and name.lower() in FIELDS and at_start:
            follows = rest or (j < n and text[j] in '"(')
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
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _lex(text)
        self.i = 0
        self.langs: list[str] = []
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
        return ParsedQuery(BooleanQuery(tuple(clauses)), langs, self.text, tuple(self.words))

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
            return self.primary("title")
        if tok.kind == _PHRASE:
            self.phrases += 1
            if self.phrases > MAX_PHRASES:
                raise QuerySyntaxError(f"too many phrases (more than {MAX_PHRASES}); remove some quotes", tok.pos)
            if len(tok.value.split()) > MAX_PHRASE_WORDS:
                raise QuerySyntaxError(
                    f"a phrase of {len(tok.value.split())} words is too long (at most {MAX_PHRASE_WORDS})", tok.pos
                )
            self.words.append(tok.value)
            return PhraseQuery(tok.value, fld)
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
        self.words.append(tok.value)
        return TermQuery(tok.value, fld)

    def lang_filter(self, tok: _Lex) -> None:
        nxt = self.peek()
        value = self.take().value if nxt is not None and nxt.kind in (_WORD, _PHRASE) else ""
        code = value.strip().lower()
        if code not in analyzers.names():
            raise QuerySyntaxError(
                f"unknown language {value!r} in lang:{value}; use one of {', '.join(analyzers.names())}", tok.pos
            )
        self.langs.append(code)
        return None


def parse_query(text: str) -> ParsedQuery:
    """Parse user query syntax into a ``ParsedQuery``; raises ``QuerySyntaxError`` naming the position."""
    if not isinstance(text, str):
        raise InvalidArgument(f"query must be a string, got {type(text).__name__}")
    return _Parser(text).parse()


def plain_query(text: str) -> ParsedQuery:
    """Every word of ``text`` as a ranked-OR term, with no syntax at all (for evaluation runs)."""
    if not isinstance(text, str):
        raise InvalidArgument(f"query must be a string, got {type(text).__name__}")
    words = text.split()
    if len(set(words)) > MAX_QUERY_TERMS:
        raise QuerySyntaxError(f"too many distinct words (more than {MAX_QUERY_TERMS}); shorten the query", 0)
    return ParsedQuery(BooleanQuery(tuple((SHOULD, TermQuery(w)) for w in words)), None, text, tuple(words))
