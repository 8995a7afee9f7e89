"""Group ``cli``: the ``search`` command as a user runs it, whole processes, against the time of
``python -c "import numpy"`` measured in the same rounds (the floor any numpy program pays).

Cases: ``import numpy`` (the anchor), ``search query zzzyzx`` (start-up: imports, arguments, opening the
seeds index, a search without hits), ``search --version`` (a command that goes through typer),
``search query "Upper Lars"`` (a warm query on the seeds index), ``search query Putin`` (hits in both
languages, so the query language model is consulted), ``search query -Finlandia warga`` (a query that
starts with "-"). Every
case runs with a warm seeds index and warm byte-code caches, as an installed command would. Each round
runs the anchor and the case back to back; ``extra_info["ratio_to_numpy"]`` is the median ratio of the
pairs, so the machine's load weighs on both sides alike.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEARCH = [sys.executable, "-c", "from cli.main import main; main()"]
CASES = {
    "import numpy": [sys.executable, "-c", "import numpy"],
    "start-up: query without hits": [*SEARCH, "query", "zzzyzx"],
    "search --version (through typer)": [*SEARCH, "--version"],
    "query Upper Lars": [*SEARCH, "query", "Upper Lars"],
    "query Putin (both languages)": [*SEARCH, "query", "Putin"],
    "query -Finlandia warga": [*SEARCH, "query", "-Finlandia", "warga"],
}
ROUNDS = 15


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "SEARCH_INDEX", "COLUMNS")}
    env["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cli-cache"))
    env["PYTHONPATH"] = str(ROOT)
    for args in CASES.values():  # builds the seeds index and the compact language model, writes .pyc files
        subprocess.run(args, env=env, cwd=ROOT, check=True, capture_output=True)
    return env


def _run(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start, done


@pytest.mark.parametrize("case", list(CASES))
def test_cli(benchmark, cli_env: dict[str, str], case: str) -> None:
    benchmark.group = "cli"
    anchors: list[float] = []
    results: list[subprocess.CompletedProcess] = []

    def setup():
        anchors.append(_run(CASES["import numpy"], cli_env)[0])
        return (), {}

    def target():
        results.append(subprocess.run(CASES[case], env=cli_env, cwd=ROOT, capture_output=True, text=True))

    rounds = ROUNDS if benchmark.enabled else 1
    benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=0)
    done = results[-1]
    assert done.returncode == 0, done.stderr
    if case == "query Upper Lars":
        assert "**Upper** **Lars**" in done.stdout
    if case == "query -Finlandia warga":  # -word excludes whole documents: the one naming Finland is gone
        assert done.stdout.startswith("1. ") and "**warga**" in done.stdout.lower()
        assert "001_" in done.stdout and "000_" not in done.stdout
    if benchmark.enabled:
        times = benchmark.stats.stats.data
        ratios = [t / a for t, a in zip(times, anchors, strict=True)]
        benchmark.extra_info.update(
            ratio_to_numpy=round(statistics.median(ratios), 2),
            numpy_median_ms=round(1000 * statistics.median(anchors), 1),
            load=os.getloadavg()[0],
        )
