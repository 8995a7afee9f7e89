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


# Hypothesis profiles. The default run uses a modest number of examples per property so the whole suite
# stays fast; nightly runs use many more: HYPOTHESIS_PROFILE=nightly python -m pytest tests/test_fuzz.py
# (tests that set their own max_examples keep it in both profiles).
try:
    from hypothesis import HealthCheck
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile(
        "default", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    _hypothesis_settings.register_profile(
        "nightly", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
except ImportError:  # hypothesis is a test extra; tests that need it import it themselves
    pass


@pytest.fixture
def ulp_tie_docs():
    """Two documents, one a shard each of two, on which a two-language query's rescaled rows differ from
    one index's: "+winter +garden +market" under k1 = 0.77 scores d0's passages 0 and 1 one ulp apart
    in Indonesian alone, and a product by the final weight ties them (found by a review)."""
    from search import Document

    return [
        Document(
            "d0",
            "winter garden garden market market market lorem ipsum. "
            "winter winter winter garden garden market lorem ipsum.",
            lang="id",
        ),
        Document("d3", "winter garden market the cold winter garden market stalls.", lang="en"),
    ]
