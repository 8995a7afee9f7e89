"""The benchmark corpora: which shared file each language reads, and passages loaded from it."""

from __future__ import annotations

import gzip
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from benchmarks.config import data_dir


@dataclass(frozen=True, slots=True)
class CorpusSpec:
    name: str  # also the language code: "en" or "id"
    folder: str
    stemmer: str  # PyStemmer algorithm

    @property
    def path(self) -> Path:
        return data_dir() / self.folder / "passages.jsonl.gz"


CORPORA = {
    "en": CorpusSpec("en", "enwiki-extract-bulk", "english"),
    "id": CorpusSpec("id", "id-peraturan-bulk", "indonesian"),
}


@dataclass(frozen=True, slots=True)
class Passage:
    id: str
    title: str
    text: str


def missing_data_reason(corpus: str) -> str | None:
    """Why a corpus cannot be benchmarked (file absent), or None."""
    path = CORPORA[corpus].path
    if not path.is_file():
        return f"benchmark corpus not found: {path} (set TELUSUR_DATA to the shared data folder)"
    return None


_LOADED: dict[str, tuple[list[Passage], bool]] = {}  # corpus -> (prefix read so far, whole file?)


def load_passages(corpus: str, n: int | None) -> list[Passage]:
    """The first ``n`` passages of a corpus (all when None), in file order; the prefix is cached."""
    have, whole = _LOADED.get(corpus, ([], False))
    if whole or (n is not None and len(have) >= n):
        return have if n is None else have[:n]
    out: list[Passage] = []
    with gzip.open(CORPORA[corpus].path, "rt", encoding="utf-8") as f:
        for line in itertools.islice(f, n):
            rec = json.loads(line)
            out.append(Passage(rec["_id"], rec.get("title") or "", rec["text"]))
    _LOADED[corpus] = (out, n is None or len(out) < n)
    return out


def corpus_size(corpus: str, size: int | None) -> int:
    """The number of passages a size stands for."""
    return len(load_passages(corpus, size))


def update_batch(corpus: str, size: int | None) -> list[Passage]:
    """1% new passages (at least one) to add to an index of ``size``: the next ones in the file, or,
    for the full corpus, copies of the first ones under new ids."""
    base = load_passages(corpus, size)
    k = max(1, len(base) // 100)
    if size is not None:
        more = load_passages(corpus, size + k)[size:]
        if len(more) == k:
            return more
    return [Passage(p.id + "~new", p.title, p.text) for p in base[:k]]
