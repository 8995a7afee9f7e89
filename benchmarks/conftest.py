"""Session setup for the benchmark suites: smoke mode, the shared ``lab`` and the build report file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import config as bench_config
from benchmarks.runner import Lab


def pytest_configure(config: pytest.Config) -> None:
    # --benchmark-disable is the CI smoke run: shrink the corpora before the suites are collected
    if config.getoption("benchmark_disable", default=False) and not config.getoption("benchmark_enable", default=False):
        bench_config.set_smoke(True)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir = os.environ.get("BENCH_WORKDIR")
    root = Path(workdir) if workdir else tmp_path_factory.mktemp("indexes")
    lab = Lab(root)
    yield lab
    lab.close()
    out = os.environ.get("BENCH_BUILDS_JSON")
    if out and lab.builds:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(list(lab.builds.values()), indent=1) + "\n")
