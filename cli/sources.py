"""Reading documents from files, folders and JSONL for ``search index``, with clear errors for bad input.

A file's document id is its path relative to the PATH it was found under, with "/" separators, so a
rebuild elsewhere gives the same ids; a JSONL line's id is its "id". Everything is read and checked
before the index is touched, so a bad file changes nothing.

What is read (see README "Security and limits"): regular files under each folder; ``.gz`` forms of the
known kinds (``.jsonl.gz``, ``.txt.gz``, ``.md.gz``) are read as their plain forms. Symbolic links
inside a folder are not followed unless asked (``follow_symlinks``), and then never to a place outside
that folder; ``--glob`` patterns are relative to the folder and cannot leave it. A folder or file that
cannot be read is an error naming it: silently skipping it would delete its documents from the index.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from search import Document, InvalidDocument
from search.documents import MAX_META_DEPTH

SUFFIXES = (".txt", ".md", ".jsonl")
COMPRESSED = ".gz"  # a known kind compressed with gzip: "notes.md.gz" is read as markdown


class SourceError(Exception):
    """A user's input cannot be read; the message names the file (and line) and what to do."""


@dataclass(frozen=True)
class SourceFile:
    """A file to read, and the document id (or id prefix) it gets."""

    path: Path
    rel: str


@dataclass
class Found:
    """The files ``find_files`` chose, and the symbolic links it did not follow (to say so)."""

    files: list[SourceFile] = field(default_factory=list)
    skipped_links: list[Path] = field(default_factory=list)

    def __iter__(self) -> Iterator[SourceFile]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


def kind_of(path: Path) -> str:
    """The kind of a file by its name: ".txt", ".md" or ".jsonl" (also under ``.gz``), else ""."""
    name = path.name.lower()
    if name.endswith(COMPRESSED):
        name = name[: -len(COMPRESSED)]
    suffix = PurePosixPath(name).suffix
    return suffix if suffix in SUFFIXES else ""


def check_glob(pattern: str) -> list[str]:
    """The parts of a ``--glob`` pattern; ``SourceError`` if it is absolute or climbs out with "..".

    Patterns match paths relative to the folder given, at any depth (as ``rglob``): "*.md",
    "notes/*.txt", "**/draft-*.md".
    """
    shown = f"--glob {pattern!r}"
    if not pattern or pattern.startswith(("/", "\\")) or (len(pattern) > 1 and pattern[1] == ":"):
        raise SourceError(f"{shown}: a pattern must be relative to the folder, like '*.md' or 'notes/*.txt'")
    parts = [p for p in pattern.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise SourceError(f"{shown}: a pattern cannot leave the folder (no '..'); name files inside it")
    if not parts:
        raise SourceError(f"{shown}: the pattern names no files; try '*.md'")
    return parts


def _match(parts: list[str], rel: tuple[str, ...]) -> bool:
    """Whether the relative path ``rel`` ends with the pattern ``parts`` ("**" spans any folders)."""
    import fnmatch  # imported here: `search query` imports this module for its errors only

    def at(i: int, j: int) -> bool:  # pattern parts[i:] against path rel[j:], anchored at both ends
        if i == len(parts):
            return j == len(rel)
        if parts[i] == "**":
            return any(at(i + 1, k) for k in range(j, len(rel) + 1))
        return j < len(rel) and fnmatch.fnmatchcase(rel[j], parts[i]) and at(i + 1, j + 1)

    return any(at(0, start) for start in range(len(rel)))


def _unreadable(path: Path, e: OSError) -> SourceError:
    reason = e.strerror or str(e)
    return SourceError(
        f"{path}: cannot be read ({reason}); fix its permissions or leave it out of the PATHs"
        " (skipping it would remove its documents from the index)"
    )


def find_files(
    paths: list[Path], glob: str | None = None, exclude: Path | None = None, *, follow_symlinks: bool = False
) -> Found:
    """The files under ``paths`` (sorted, deterministic); folders are searched recursively.

    Files inside ``exclude`` (the index being written, when it sits inside a source folder) are skipped.
    A PATH given by name is read even when it is a link; links found inside a folder are skipped unless
    ``follow_symlinks``, and then followed only to files and folders inside that folder. An unreadable
    folder or file is a ``SourceError`` naming it.
    """
    parts = check_glob(glob) if glob is not None else None
    skip = exclude.resolve() if exclude is not None else None
    found = Found()
    for root in paths:
        try:
            st = root.stat()
        except FileNotFoundError:
            raise SourceError(f"{root}: no such file or folder") from None
        except OSError as e:
            raise _unreadable(root, e) from None
        if stat.S_ISREG(st.st_mode):
            found.files.append(SourceFile(root, root.name))
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise SourceError(f"{root}: not a regular file or folder; index text files (.txt, .md, .jsonl)")
        files: list[tuple[tuple[str, ...], Path]] = []
        _walk(root, root.resolve(), (), parts, skip, follow_symlinks, files, found.skipped_links, set())
        found.files.extend(SourceFile(p, "/".join(rel)) for rel, p in sorted(files))
    if not found.files:
        shown = ", ".join(str(p) for p in paths)
        if glob is not None:
            raise SourceError(f"{shown}: no files match --glob {glob!r}")
        raise SourceError(f"{shown}: no .txt, .md or .jsonl files (or their .gz) found (use --glob to choose files)")
    return found


def _walk(
    folder: Path,
    top: Path,
    rel: tuple[str, ...],
    parts: list[str] | None,
    skip: Path | None,
    follow: bool,
    out: list[tuple[tuple[str, ...], Path]],
    links: list[Path],
    seen: set[tuple[int, int]],
) -> None:
    """Collect the chosen files under ``folder`` (``rel`` from the top folder ``top``, resolved)."""
    try:
        st = folder.stat()
        if (st.st_dev, st.st_ino) in seen:
            return  # a followed link back to a folder already walked
        seen.add((st.st_dev, st.st_ino))
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as e:
        raise _unreadable(folder, e) from None
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.is_symlink():
                if not follow:
                    links.append(path)
                    continue
                target = path.resolve()
                if not target.is_relative_to(top):
                    links.append(path)  # never outside the folder given
                    continue
                st = target.stat()
            else:
                st = entry.stat(follow_symlinks=False)
        except OSError as e:
            raise _unreadable(path, e) from None
        if skip is not None and (path.resolve() == skip or path.resolve().is_relative_to(skip)):
            continue
        sub = (*rel, entry.name)
        if stat.S_ISDIR(st.st_mode):
            _walk(path, top, sub, parts, skip, follow, out, links, seen)
        elif stat.S_ISREG(st.st_mode):
            if parts is None:
                if kind_of(path):
                    out.append((sub, path))
            elif _match(parts, sub):
                out.append((sub, path))


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


def _read(path: Path) -> bytes:
    """The bytes of ``path``, decompressed when it ends in ``.gz``."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _unreadable(path, e) from None
    if not path.name.lower().endswith(COMPRESSED):
        return data
    import gzip
    import zlib

    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise SourceError(f"{path}: not a valid gzip file ({e}); decompress it or fix the file") from None


_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')  # strings (skipped whole) and brackets


def _skip_json_value(line: str, i: int) -> int:
    """Where the JSON array or object starting at ``line[i]`` ends, by counting brackets: no recursion."""
    depth = 0
    for m in _JSON_NESTING.finditer(line, i):
        c = m.group()
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if not depth:
                return m.end()
    return len(line)


def _too_deep(line: str, where: str) -> Exception:
    """The error for a JSONL line too deep for the JSON parser: ``InvalidDocument`` naming the line, the
    document's id and the field nested too deep, as ``Document.validate`` names a deep ``meta``.

    The line's top-level object is read one field at a time; a field that is itself too deep is
    skipped by counting brackets, so the id is found wherever it stands. A line whose top level is not
    an object stays a ``SourceError``, like any line that is no JSON object.
    """
    decoder = json.JSONDecoder()
    fields: dict[str, object] = {}
    deep: list[str] = []
    i = _JSON_WS.match(line).end()
    if line[i : i + 1] != "{":
        return SourceError(f'{where}: expected a JSON object with "id" and "text" (this one is nested too deep)')
    i = _JSON_WS.match(line, i + 1).end()
    try:
        while line[i : i + 1] == '"':
            key, i = json.decoder.scanstring(line, i + 1)
            i = _JSON_WS.match(line, i).end()
            if line[i : i + 1] != ":":
                break
            i = _JSON_WS.match(line, i + 1).end()
            try:
                fields[key], i = decoder.raw_decode(line, i)
            except RecursionError:
                deep.append(key)
                i = _skip_json_value(line, i)
            i = _JSON_WS.match(line, i).end()
            if line[i : i + 1] != ",":
                break
            i = _JSON_WS.match(line, i + 1).end()
    except (ValueError, RecursionError):  # malformed around the deep part: name what was found so far
        pass
    doc_id = fields.get("id", fields.get("_id"))
    name = f"document {doc_id!r}" if isinstance(doc_id, str) and doc_id else "the document"
    field_name = deep[0] if deep else "a field"
    return InvalidDocument(f"{where}: {name}: {field_name} is nested more than {MAX_META_DEPTH} deep")


def _jsonl_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line of a JSONL file, read a line at a time (``.gz`` decompressed as
    it goes); the checks and messages of ``_decode`` (UTF-8 after an optional BOM, binary, UTF-16)."""
    compressed = path.name.lower().endswith(COMPRESSED)
    import gzip
    import zlib

    def broken(e: BaseException) -> SourceError:
        return SourceError(f"{path}: not a valid gzip file ({e}); decompress it or fix the file")

    try:
        f = gzip.open(path, "rb") if compressed else open(path, "rb")  # noqa: SIM115  (closed below)
    except OSError as e:
        raise _unreadable(path, e) from None
    with f:
        try:
            head = f.read(8192)
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise broken(e) from None
        except OSError as e:
            raise (broken(e) if compressed else _unreadable(path, e)) from None
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\0" in head:
            yield from enumerate(_decode(path, _read(path)).splitlines(), start=1)  # UTF-16, or the error
            return
        f.seek(0)
        offset = 0
        n = 0
        while True:
            try:
                raw = f.readline()
            except (EOFError, zlib.error, gzip.BadGzipFile) as e:
                raise broken(e) from None
            except OSError as e:
                raise (broken(e) if compressed else _unreadable(path, e)) from None
            if not raw:
                return
            n += 1
            skip = 3 if n == 1 and raw.startswith(codecs.BOM_UTF8) else 0
            try:
                line = raw[skip:].decode("utf-8")
            except UnicodeDecodeError as e:
                at = offset + skip + e.start
                raise SourceError(f"{path}: not valid UTF-8 (byte {at}); convert it to UTF-8 first") from None
            offset += len(raw)
            yield n, line.rstrip("\r\n")


def read_documents(source: SourceFile, lang: str | None = None, *, check: bool = True) -> Iterator[Document]:
    """The documents of one file: one per .txt/.md file, one per JSONL line (``.gz`` forms alike), each
    validated when ``check`` (an ``InvalidDocument`` names the JSONL file and line; a file's document is
    named by its path already). The second pass reads with ``check`` off: the first checked them all.

    A JSONL file is read a line at a time (so a large one never sits in memory whole), unless it is
    UTF-16 or binary, which the whole-file path reports or decodes."""
    kind = kind_of(source.path)
    if kind == ".jsonl":
        lines = _jsonl_lines(source.path)
    else:
        text = _decode(source.path, _read(source.path))
        title = _markdown_title(text) if kind == ".md" else ""
        doc = Document(id=source.rel, text=text, title=title, lang=lang)
        if check:
            doc.validate()
        yield doc
        return
    for n, line in lines:
        if not line.strip():
            continue
        where = f"{source.path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise SourceError(f"{where}: malformed JSON ({e.msg}); each line must be one JSON object") from None
        except RecursionError:
            raise _too_deep(line, where) from None
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
        doc = Document(id=doc_id, text=body, title=title, lang=doc_lang, meta=meta)
        yield _checked(doc, where) if check else doc


def _checked(doc: Document, where: str) -> Document:
    """``doc`` once ``Document.validate`` passes; its error names the file (and line) it came from."""
    try:
        doc.validate()
    except InvalidDocument as e:
        raise InvalidDocument(f"{where}: {e}") from None
    return doc
