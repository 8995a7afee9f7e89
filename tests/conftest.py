"""Shared fixtures: the shared data folder (tests skip cleanly without it) and a small seeds index."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
DATA = Path(os.environ.get("TELUSUR_DATA", ROOT.parent / "shared" / "data"))


def data_dir(name: str) -> Path:
    """``../shared/data/<name>``, or skip the test with the reason when it is absent."""
    path = DATA / name
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent (tests that need ../shared/data skip without it)")
    return path


@pytest.fixture(scope="session")
def seeds_index(tmp_path_factory):
    """An index of the three seed texts, built once per test session (read-only for tests)."""
    from search import Document, Index

    path = tmp_path_factory.mktemp("seeds") / "idx"
    index = Index.create(path)
    with index.writer() as w:
        for f in sorted(SEEDS.glob("*.txt")):
            w.add(Document(id=f.name, text=f.read_text(encoding="utf-8")))
    return index
