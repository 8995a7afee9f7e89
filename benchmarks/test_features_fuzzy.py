"""Group ``features`` (fuzzy part, issue #21): fuzzy, prefix and plain 2-term queries on one telusur index.

Every case searches the same generated 2-term queries (top 10 with stored text) on the index the
``search`` group builds; ``plain`` as typed, ``fuzzy`` with ``~`` on both words (Elasticsearch's AUTO
distance: 2 edits from 6 letters on), ``fuzzy-typo`` the same with one letter of the longer word
changed (what a user's typo costs), ``prefix`` with the last word cut to its first 4 letters and ``*``
(search as you type). Goals (#21): fuzzy p50 at most 5x plain and under 10 ms at 50k passages; prefix at
most 3x. Compare cases of one run only (the machine is shared: the load is in ``extra_info``).
"""

from __future__ import annotations

import itertools

import pytest

from benchmarks.config import load_average, size_label, sizes, smoke
from benchmarks.corpora import CORPORA, missing_data_reason
from benchmarks.runner import Recorder, percentiles_ms

REPEATS = 3
FORMS = ("plain", "fuzzy", "fuzzy-typo", "prefix")


def _typo(word: str) -> str:
    """One substitution in the middle of the word (deterministic)."""
    i = len(word) // 2
    return word[:i] + ("a" if word[i] != "a" else "e") + word[i + 1 :]


def render(words: tuple[str, ...], form: str) -> str:
    if form == "plain":
        return " ".join(words)
    if form == "fuzzy":
        return " ".join(f"{w}~" for w in words)
    if form == "fuzzy-typo":
        longest = max(range(len(words)), key=lambda i: len(words[i]))
        return " ".join(f"{_typo(w) if i == longest else w}~" for i, w in enumerate(words))
    return " ".join(words[:-1] + (words[-1][:4] + "*",))


def _cases() -> list:
    out = []
    for size in sizes():
        for corpus in CORPORA:
            reason = missing_data_reason(corpus)
            marks = [pytest.mark.skip(reason=reason)] if reason else []
            for form in FORMS:
                out.append(pytest.param(corpus, size, form, id=f"{corpus}-{size_label(size)}-{form}", marks=marks))
    return out


@pytest.mark.parametrize("corpus,size,form", _cases())
def test_features_fuzzy(benchmark, lab, corpus, size, form):
    from search import Index

    benchmark.group = "features"
    index = Index.open(lab.built("telusur", corpus, size)["path"])
    queries = [render(q.words, form) for q in lab.queries(corpus, size)["2-term"]]

    def search(q: str) -> list:
        hits = index.search(q, k=10)
        return [(h.doc_id, h.text) for h in hits]

    it = itertools.cycle(queries)
    rec = Recorder(search)
    rec.load = load_average()
    warm = len(queries) if benchmark.enabled else 0
    benchmark.pedantic(
        rec,
        setup=lambda: ((next(it),), {}),
        rounds=len(queries) * (1 if smoke() else REPEATS),
        warmup_rounds=warm,
    )
    rec.drop(warm)
    found = sum(1 for r in rec.results if r)
    if form != "fuzzy-typo":  # every generated word is in the index, so every form finds something
        assert found == len(rec.results), f"{form}: {len(rec.results) - found} queries found nothing"
    assert all(len(hits) <= 10 and all(text for _, text in hits) for hits in rec.results)
    benchmark.extra_info.update(
        engine="telusur",
        corpus=corpus,
        size=size_label(size),
        passages=len(lab.passages(corpus, size)),
        shape=f"2-term {form}",
        example=queries[0],
        queries=len(queries),
        found=found,
        load_1m=rec.load,
        **percentiles_ms(rec.seconds),
    )
