"""Group ``hostile``: bounded work on hostile input (issue #24).

* snippets: choosing the snippet window of one passage with 2,000 and 20,000 matches of one word (goal:
  the 20,000 case costs at most 10x the 2,000 one: linear, it was quadratic); ``extra_info`` has the
  matches and, on the 20,000 case, the ratio of best CPU times to a 2,000-match run in the same process
  (in turns) and the cost per match of each (linear work gives a ratio of 10: equal costs per match),
  beside ``regex_pass_ratio``, the same ratio for one C regex pass over the words (linear work's floor);
* huge document: peak memory (``ru_maxrss`` of a fresh process) while one 200 MB document is added and
  committed, as a multiple of its size (goal ~3x; ``BENCH_HUGE_MB`` changes the size);
* long query: a 10,000-word query (refused at once by the 1,024-word limit) and a 1,024-word query (the
  largest accepted) on a 20,000-passage index: time, and peak traced memory (tracemalloc sees numpy).

Smoke mode (``--benchmark-disable``) divides the sizes by 10 (the huge document by 100).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import tracemalloc

import pytest

import analyzers
from analyzers.base import RUN_RE
from benchmarks.config import REPO, smoke
from search import Document, Index, QuerySyntaxError
from search.highlight import make_snippet
from search.query import MAX_QUERY_TERMS


def _passage(matches: int) -> str:
    # one matching word per sentence-free stretch, a rare second term late: the worst case for windows
    words = ["river" if i % 3 == 0 else f"w{i % 97}" for i in range(matches * 3)]
    words[-10] = "mountain"
    return " ".join(words)


def _snippet_seconds(small: str, large: str, rounds: int = 25) -> tuple[float, float, float, float]:
    """Best CPU times of ``make_snippet`` on two passages, run in turns: on a shared, loaded machine wall
    time mostly measures the queue, and turns give both passages the same machine (measured one after
    the other, a burst of load on one side moved the ratio by 30%). Then the same for one regex pass
    over each passage's words (``RUN_RE.findall``, all in C): the ratio linear work itself shows here,
    the floor for the snippet's ratio (10x the text is not exactly 10x the time on this machine).
    25 rounds, not 9: this VM has bursts of slowness lasting about a second, and 9 rounds of both sizes
    (half a second) fell inside one often enough to move the ratio by 40% (14.1 beside a regex ratio
    of 15.0)."""
    analyzer = analyzers.get("en")
    best = [float("inf")] * 4
    for _ in range(rounds):
        for i, text in enumerate((small, large)):
            t0 = time.process_time()
            make_snippet(text, analyzer, ["river", "mountain"])
            best[i] = min(best[i], time.process_time() - t0)
            t0 = time.process_time()
            RUN_RE.findall(text)
            best[2 + i] = min(best[2 + i], time.process_time() - t0)
    return best[0], best[1], best[2], best[3]


@pytest.mark.parametrize("matches", [2_000, 20_000])
def test_snippet_window_matches(benchmark, matches):
    benchmark.group = "hostile"
    n = matches // 10 if smoke() else matches
    text = _passage(n)
    analyzer = analyzers.get("en")
    snippet, inside, full = benchmark.pedantic(
        make_snippet, args=(text, analyzer, ["river", "mountain"]), rounds=1 if smoke() else 5
    )
    assert len(full) == n + 1 and "mountain" in snippet
    info = {"case": "snippet", "matches": n, "load": os.getloadavg()[0]}
    if matches == 20_000:  # the ratio against 2,000 matches, both timed here, back to back
        small, large, scan_small, scan_large = _snippet_seconds(_passage(n // 10), text)
        info.update(
            cpu_s_2000=round(small, 4),
            cpu_s_20000=round(large, 4),
            ratio=round(large / small, 2),
            regex_pass_ratio=round(scan_large / scan_small, 2),
            us_per_match_2000=round(small / (n // 10) * 1e6, 2),
            us_per_match_20000=round(large / n * 1e6, 2),
        )
    benchmark.extra_info.update(info)


_HUGE = """
import json, resource, sys, tempfile, time
from search import Document, Index
mb = float(sys.argv[1])
words = open(sys.argv[2], encoding="utf-8").read()
text = (words * (int(mb * 1e6) // len(words) + 1))[: int(mb * 1e6)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
index = Index.create(tempfile.mkdtemp(dir=sys.argv[3]) + "/idx")
t0 = time.perf_counter()
with index.writer() as w:
    w.add(Document(id="huge", text=text, lang="en"))
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
ok = len(index) == 1 and bool(index.search("river", k=1))
print(json.dumps({"bytes": len(text), "before": before, "peak": peak, "seconds": seconds, "ok": ok}))
"""


def test_huge_document_peak_memory(benchmark, tmp_path):
    benchmark.group = "hostile"
    mb = float(os.environ.get("BENCH_HUGE_MB", "200")) / (100 if smoke() else 1)
    rng = random.Random(7)
    vocab = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(50_000)
    ]
    sample = tmp_path / "words.txt"
    sentences = (" ".join(rng.choices(vocab, k=12)) + ". " for _ in range(20_000))
    sample.write_text("river " + "".join(sentences), encoding="utf-8")
    result: dict = {}

    def run():
        proc = subprocess.run(
            [sys.executable, "-c", _HUGE, str(mb), str(sample), str(tmp_path)],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
        )
        result.update(json.loads(proc.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(run, rounds=1)
    assert result["ok"]
    extra = result["peak"] - result["before"]
    benchmark.extra_info.update(
        case="huge document",
        document_mb=round(result["bytes"] / 1e6, 1),
        peak_rss_mb=round(result["peak"] / 1e6),
        added_mb=round(extra / 1e6),
        peak_over_size=round(extra / result["bytes"], 2),
        seconds=round(result["seconds"], 1),
        load=os.getloadavg()[0],
    )


@pytest.fixture(scope="module")
def word_index(tmp_path_factory):
    rng = random.Random(11)
    vocab = [f"k{i}" for i in range(30_000)]
    passages = 2_000 if smoke() else 20_000
    index = Index.create(tmp_path_factory.mktemp("hostile") / "idx", passage_words=0)
    with index.writer() as w:
        w.add_many(Document(id=f"p{i:06d}", text=" ".join(rng.choices(vocab, k=60))) for i in range(passages))
    return index, vocab, passages


@pytest.mark.parametrize("words", [10_000, MAX_QUERY_TERMS])
def test_long_query(benchmark, word_index, words):
    benchmark.group = "hostile"
    index, vocab, passages = word_index
    query = " ".join(vocab[:words])

    def run():
        try:
            return len(index.search(query, k=10))
        except QuerySyntaxError:
            return -1

    got = benchmark.pedantic(run, rounds=1 if smoke() else 3)
    assert got == (-1 if words > MAX_QUERY_TERMS else 10)
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    benchmark.extra_info.update(
        case="long query", words=words, passages=passages, refused=got == -1, peak_traced_mb=round(peak / 1e6, 1)
    )
