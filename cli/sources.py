"""Reading documents from files, folders and JSONL for ``search index``, with clear errors for bad input.

A file's document id is its path relative to the PATH it was found under, with "/" separators, so a
rebuild elsewhere gives the same ids; a JSONL line's id is its "id". Everything is read and checked
before the index is touched, so a bad file changes nothing.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from search import Document
from search.documents import MAX_META_DEPTH

SUFFIXES = (".txt", ".md", ".jsonl")


def _kind(path: Path) -> str:
    """The suffix that says how to read ``path``: ".jsonl" for both "a.jsonl" and "a.jsonl.gz"."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).suffix


class SourceError(Exception):
    """A user's input cannot be read; the message names the file (and line) and what to do."""


@dataclass(frozen=True)
class SourceFile:
    """A file to read, and the document id (or id prefix) it gets."""

    path: Path
    rel: str


def find_files(paths: list[Path], glob: str | None = None, exclude: Path | None = None) -> list[SourceFile]:
    """The files under ``paths`` (sorted, deterministic); folders are searched recursively.

    Files inside ``exclude`` (the index being written, when it sits inside a source folder) are skipped.
    """
    skip = exclude.resolve() if exclude is not None else None
    out: list[SourceFile] = []
    for root in paths:
        if not root.exists():
            raise SourceError(f"{root}: no such file or folder")
        if root.is_file():
            out.append(SourceFile(root, root.name))
            continue
        pattern = glob or "*"
        found = sorted(
            p
            for p in root.rglob(pattern)
            if p.is_file()
            and (glob is not None or _kind(p) in SUFFIXES)
            and not (skip is not None and p.resolve().is_relative_to(skip))
        )
        out.extend(SourceFile(p, p.relative_to(root).as_posix()) for p in found)
    if not out:
        shown = ", ".join(str(p) for p in paths)
        raise SourceError(f"{shown}: no .txt, .md or .jsonl files found (use --glob to choose files)")
    return out


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 text (a byte order mark dropped, so it is not stored as text), or UTF-16 with its BOM."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")  # the BOM says the byte order and is dropped
        except UnicodeDecodeError as e:
            raise SourceError(f"{path}: not valid UTF-16 (byte {e.start}); convert it to UTF-8 first") from None
    head = data[:8192]
    if b"\0" in head:
        if _looks_utf16(head):
            raise SourceError(f"{path}: UTF-16 without a byte order mark: convert it to UTF-8 first")
        raise SourceError(f"{path}: looks like a binary file; index only text (.txt, .md, .jsonl)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: not valid UTF-8 (byte {e.start}); convert it to UTF-8 first") from None


def _looks_utf16(head: bytes) -> bool:
    """Most of one byte of every pair is zero: Latin text in UTF-16 without its byte order mark."""
    pairs = len(head) // 2
    return pairs >= 2 and max(head[0::2].count(0), head[1::2].count(0)) >= 0.8 * pairs


def _markdown_title(text: str) -> str:
    for line in text.splitlines()[:20]:
        if line.startswith("# "):
            return line[2:].strip()
    return ""


def read_documents(source: SourceFile, lang: str | None = None) -> Iterator[Document]:
    """The documents of one file: one per .txt/.md file, one per JSONL line."""
    try:
        data = source.path.read_bytes()
    except OSError as e:
        raise SourceError(f"{source.path}: cannot be read ({e.strerror})") from None
    if source.path.name.lower().endswith(".gz"):
        import gzip
        import zlib

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise SourceError(f"{source.path}: not a readable gzip file ({e})") from None
    text = _decode(source.path, data)
    kind = _kind(source.path)
    if kind != ".jsonl":
        title = _markdown_title(text) if kind == ".md" else ""
        yield Document(id=source.rel, text=text, title=title, lang=lang)
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source.path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise SourceError(f"{where}: malformed JSON ({e.msg}); each line must be one JSON object") from None
        except RecursionError:
            raise SourceError(f"{where}: JSON nested too deep (meta may nest {MAX_META_DEPTH} levels)") from None
        if not isinstance(obj, dict):
            raise SourceError(f'{where}: expected a JSON object with "id" and "text"')
        doc_id, body = obj.get("id", obj.get("_id")), obj.get("text")
        if not isinstance(doc_id, str) or not doc_id or not isinstance(body, str):
            raise SourceError(f'{where}: each line needs a string "id" and a string "text"')
        title = obj.get("title") or ""
        meta = obj.get("meta")
        if not isinstance(title, str) or (meta is not None and not isinstance(meta, dict)):
            raise SourceError(f'{where}: "title" must be a string and "meta" an object')
        doc_lang = lang or obj.get("lang")
        yield Document(id=doc_id, text=body, title=title, lang=doc_lang, meta=meta)
