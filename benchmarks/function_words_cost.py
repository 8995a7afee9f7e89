"""What indexing Indonesian function words costs (issue 16): build time, size, query times, in one run.

Builds the first 30,000 id-peraturan passages (one document each, ``lang="id"``) twice per round: with
the defaults (every word indexed) and with ``index_stopwords`` off (function words left out, as before
analyzer version 3), then times keyword queries (the known-item harness's, seeds 1-3), three question
shapes and three phrases with function words. Timings are noisy on a shared machine: compare the two
settings within a round. Run: ``.venv/bin/python -m benchmarks.function_words_cost`` (figures in
RESULTS.md, "Indonesian analyzer version 4").
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.known_item import DATA, load_passages
from search import Document, Index, plain_query
from search.evaluate import known_item_queries

QUESTIONS = [
    "Apa ibu kota provinsi Jawa Barat?",
    "Siapa presiden pertama Indonesia?",
    "Kapan undang-undang pajak penghasilan diundangkan?",
]
PHRASES = ['"sebagaimana dimaksud dalam"', '"dengan peraturan pemerintah"', '"yang dimaksud dengan"']


def _ms(index: Index, queries: list, parse: bool) -> float:
    started = time.perf_counter()
    for q in queries:
        index.search(q if parse else plain_query(q), k=10)
    return (time.perf_counter() - started) / len(queries) * 1000


def main(rounds: int = 2) -> None:
    passages = load_passages(DATA, 30000)
    keyword = [q for seed in (1, 2, 3) for _, q in known_item_queries(passages, 500, seed=seed)]
    tmp = Path(tempfile.mkdtemp(prefix="function-words-"))
    for rnd in range(rounds):
        for name, options in [("every word indexed", {}), ("index_stopwords off", {"index_stopwords": False})]:
            path = tmp / f"{rnd}-{len(options)}"
            started = time.perf_counter()
            index = Index.create(path, passage_words=0, analyzer_options=options)
            with index.writer() as w:
                w.add_many(Document(id=pid, text=text, lang="id") for pid, text in passages)
            build = time.perf_counter() - started
            index = Index.open(path)
            size = sum(f.stat().st_size for f in path.iterdir()) / 1e6
            print(
                f"round {rnd} {name:20} build {build:.1f} s, {size:.1f} MB, keyword "
                f"{_ms(index, keyword, False):.2f} ms, question {_ms(index, QUESTIONS * 100, False):.2f} ms, "
                f"phrase {_ms(index, PHRASES * 50, True):.2f} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
