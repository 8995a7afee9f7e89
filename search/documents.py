"""Documents and passages: what callers add, and how a document is cut into passages with character spans."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import analyzers

from .errors import InvalidDocument

MAX_ID_CHARS = 4096
# Bounds on one document (README "Security and limits"): a text up to 256 Mi characters indexes in
# about 3x its size in memory; metadata is small structured data, bounded in depth so that storing,
# reading and printing it never comes near Python's recursion limit.
MAX_TEXT_CHARS = 256 << 20
MAX_TITLE_CHARS = 64 << 10
MAX_META_DEPTH = 32
MAX_META_CHARS = 1 << 20
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Document:
    """A document to index. ``lang=None`` detects the language per passage; "id"/"en" forces it."""

    id: str
    text: str
    title: str = ""
    lang: str | None = None
    meta: dict[str, Any] | None = field(default=None, compare=True)

    def validate(self) -> None:
        """Raise ``InvalidDocument`` naming the bad field when this document cannot be indexed."""
        if not isinstance(self.id, str) or not self.id:
            raise InvalidDocument(f"document id must be a non-empty string, got {self.id!r}")
        if len(self.id) > MAX_ID_CHARS:
            raise InvalidDocument(f"document id is {len(self.id)} characters; the limit is {MAX_ID_CHARS}")
        for name, limit in (("id", MAX_ID_CHARS), ("text", MAX_TEXT_CHARS), ("title", MAX_TITLE_CHARS)):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise InvalidDocument(f"document {self.id!r}: {name} must be a string, got {type(value).__name__}")
            if len(value) > limit:
                raise InvalidDocument(
                    f"document {self.id!r}: {name} has {len(value):,} characters; the limit is {limit:,}"
                    + (" (split it into several documents)" if name == "text" else "")
                )
            bad = None if value.isascii() else _SURROGATE.search(value)  # no copy, unlike encoding it
            if bad is not None:
                raise InvalidDocument(
                    f"document {self.id!r}: {name} is not valid Unicode (lone surrogate at {bad.start()})"
                )
        if self.lang is not None and not analyzers.registered(self.lang):
            raise InvalidDocument(
                f"document {self.id!r}: unknown lang {self.lang!r}; choose one of {analyzers.names()} or None"
            )
        if self.meta is not None:
            if not isinstance(self.meta, dict):
                raise InvalidDocument(f"document {self.id!r}: meta must be a dict, got {type(self.meta).__name__}")
            if _depth_over(self.meta, MAX_META_DEPTH):
                raise InvalidDocument(f"document {self.id!r}: meta is nested more than {MAX_META_DEPTH} deep")
            try:
                meta_json = self.meta_json()
            except (TypeError, ValueError, RecursionError) as e:
                raise InvalidDocument(f"document {self.id!r}: meta is not JSON-serializable: {e}") from None
            size = len(meta_json)
            bad = None if meta_json.isascii() else _SURROGATE.search(meta_json)
            if bad is not None:
                raise InvalidDocument(
                    f"document {self.id!r}: meta is not valid Unicode (lone surrogate at {bad.start()} of its JSON)"
                )
            if size > MAX_META_CHARS:
                raise InvalidDocument(
                    f"document {self.id!r}: meta is {size:,} characters of JSON; the limit is {MAX_META_CHARS:,}"
                )

    def meta_json(self) -> str:
        """The metadata as canonical JSON ("" when there is none)."""
        if not self.meta:
            return ""
        return json.dumps(self.meta, sort_keys=True, ensure_ascii=False, allow_nan=False)

    def content_hash(self) -> str:
        """A fingerprint of everything indexed about this document, to skip unchanged re-adds."""
        h = hashlib.blake2b(digest_size=16)
        for value in (self.id, self.text, self.title, self.lang or "", self.meta_json()):
            data = value.encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
        return h.hexdigest()


def _depth_over(value: object, limit: int) -> bool:
    """Whether lists and dicts nest more than ``limit`` deep in ``value`` (iterative: any depth is safe)."""
    stack = [(value, 1)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, (list, tuple)) else None
        if children is None:
            continue
        if depth > limit:
            return True
        seen += 1
        if seen > MAX_META_CHARS:  # a container per character at most; beyond that it cannot serialize small
            return False
        stack.extend((child, depth + 1) for child in children)
    return False


# A sentence ends at . ! ? (with closing quotes or brackets) followed by whitespace; a paragraph at a
# blank line. Both are candidate passage boundaries.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+|\n[ \t]*\n\s*")
_WORD = re.compile(r"\S+")


def split_passages(text: str, passage_words: int) -> list[tuple[int, int]]:
    """Cut ``text`` into passages of about ``passage_words`` words: a list of [start, end) spans.

    Cuts fall on sentence or paragraph boundaries: a passage closes at the first sentence end after it
    reaches ``passage_words`` words, or at a paragraph break once it has half of them. A sentence
    longer than twice the target is cut between words. ``passage_words=0`` keeps one passage.
    There is always at least one passage, so a document with an empty text still has its title indexed.
    """
    return split_with_words(text, passage_words)[0]


def split_with_words(text: str, passage_words: int) -> tuple[list[tuple[int, int]], list[str] | None]:
    """``split_passages`` and, when the text stays one passage because it has few words, its whitespace
    words as counted (else None): the indexer reads that passage's word runs from them
    (``analyzers.base.runs_of_words``) instead of scanning the text again."""
    n = len(text)
    if passage_words <= 0 or n == 0:
        return [(0, n)], None
    limit = passage_words * 1.25
    if n <= SPLIT_COUNT_CHARS:
        words = text.split()
        if len(words) <= limit:
            return [(0, n)], words
    elif _word_count(text, int(limit) + 1) <= limit:
        return [(0, n)], None
    return _split_long(text, passage_words), None


def _split_long(text: str, passage_words: int) -> list[tuple[int, int]]:
    """``split_passages`` of a text with more than 1.25 x ``passage_words`` words."""
    n = len(text)
    spans: list[tuple[int, int]] = []
    start = 0
    words = 0
    pos = 0
    for m in _BOUNDARY.finditer(text):
        words += len(_WORD.findall(text, pos, m.start()))
        pos = m.end()
        paragraph = "\n" in m.group()
        if words >= passage_words or (paragraph and words >= passage_words // 2):
            spans.extend(_cut_long(text, start, m.start(), passage_words))
            start, words = m.end(), 0
    if start < n:
        tail = _cut_long(text, start, n, passage_words)
        tail_words = len(_WORD.findall(text, tail[-1][0], tail[-1][1]))
        if spans and tail_words < passage_words // 4 and len(tail) == 1:
            spans[-1] = (spans[-1][0], tail[-1][1])  # a few trailing words join the last passage
        else:
            spans.extend(tail)
    return [(s, _rstrip(text, s, e)) for s, e in spans if s < e] or [(0, n)]


# Texts up to this many characters have their words counted by ``str.split`` (C, about 5x faster than
# a generator over ``finditer``, and the hot path of indexing ordinary passages); longer ones are
# counted up to the limit only, so a huge text's words are never all listed at once.
SPLIT_COUNT_CHARS = 1 << 16


def _word_count(text: str, limit: int) -> int:
    """The number of ``\\S+`` words of a long text, counted up to ``limit`` only, so a huge text's words
    are never all listed at once. (``\\s`` and ``str.split``, which counts a short text's words, share
    CPython's definition of whitespace, so both count the same words.)"""
    return sum(1 for _ in itertools.islice(_WORD.finditer(text), limit))


def _cut_long(text: str, start: int, end: int, passage_words: int) -> list[tuple[int, int]]:
    """Split [start, end) between words when it holds more than twice ``passage_words`` words."""
    words = _WORD.finditer(text, start, end)  # lazily: a sentence may be a whole huge document
    head = list(itertools.islice(words, 2 * passage_words + 1))
    if len(head) <= 2 * passage_words:
        return [(start, end)]
    out = []
    chunk_start = last = start
    for i, m in enumerate(itertools.chain(head, words)):
        if i % passage_words == 0 and i:
            out.append((chunk_start, last))
            chunk_start = m.start()
        last = m.end()
    out.append((chunk_start, last))
    return out


def _rstrip(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end
