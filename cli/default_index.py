"""The default index: the bundled seeds, built on first use in the user's cache directory.

It is rebuilt when the seeds, the index format or the analyzers change (the cache folder's name is a
fingerprint of all three). It is built in a temporary folder and renamed into place, so two first
runs at once cannot leave a half-built index. Nothing is ever written into the installed package.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import platformdirs

import analyzers
from search import Document, Index
from search.storage import FORMAT_VERSION


def seeds_dir() -> Path:
    """The bundled seed corpus: inside the installed package, or the source tree's ``seeds/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "seeds", here.parent / "seeds"):
        if candidate.is_dir() and any(candidate.glob("*.txt")):
            return candidate
    raise FileNotFoundError("the bundled seeds are missing from this installation (reinstall telusur)")


def _fingerprint(files: list[Path]) -> str:
    h = hashlib.sha256(f"format={FORMAT_VERSION}".encode())
    for name in analyzers.names():
        h.update(f"{name}={analyzers.get(name).version}".encode())
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def default_index_path() -> Path:
    """Where the seeds index for this installation lives (it may not exist yet)."""
    files = sorted(seeds_dir().glob("*.txt"))
    return Path(platformdirs.user_cache_dir("telusur")) / f"seeds-{_fingerprint(files)}"


def open_default_index() -> Index:
    """Open the seeds index, building it first when it is missing or stale."""
    path = default_index_path()
    if (path / "meta.json").exists():
        return Index.open(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=path.parent))
    try:
        index = Index.create(tmp / "index")
        with index.writer() as w:
            for f in sorted(seeds_dir().glob("*.txt")):
                w.add(Document(id=f.name, text=f.read_text(encoding="utf-8")))
        try:
            os.replace(tmp / "index", path)
        except OSError:
            if not (path / "meta.json").exists():  # lost a race only if the other build finished
                raise
        for old in path.parent.glob("seeds-*"):
            if old != path:
                shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Index.open(path)
