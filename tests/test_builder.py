"""The indexing hot paths (issue #12): each faster path gives exactly what the plainer one gave."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from search import documents

# every kind of whitespace Python knows (\s and str.isspace agree on these), beside words and marks
_SPACES = [" ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680",
           "\u2000", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]  # fmt: skip
_PIECES = ["kata", "river", "a.", "b?", "\u200b", "\u180e", "x\u0301", "\ufeff", *_SPACES]


@given(st.lists(st.sampled_from(_PIECES), max_size=80).map("".join), st.integers(min_value=1, max_value=90))
def test_word_count_equals_the_regex_count_on_both_paths(text: str, limit: int) -> None:
    words = len(re.findall(r"\S+", text))
    assert documents._word_count(text, limit) == words  # short: str.split
    long_path = documents.SPLIT_COUNT_CHARS
    try:
        documents.SPLIT_COUNT_CHARS = -1  # every text takes the lazy path, which stops at the limit
        assert documents._word_count(text, limit) == min(words, limit)
    finally:
        documents.SPLIT_COUNT_CHARS = long_path


@pytest.mark.parametrize("passage_words", [3, 120, 10_000])
def test_passages_are_the_same_whichever_way_words_are_counted(passage_words: int, monkeypatch) -> None:
    text = "Satu dua tiga. Empat lima\u3000enam!\n\n" * 2000  # over SPLIT_COUNT_CHARS characters
    assert len(text) > documents.SPLIT_COUNT_CHARS
    lazy = documents.split_passages(text, passage_words)
    monkeypatch.setattr(documents, "SPLIT_COUNT_CHARS", len(text))
    assert documents.split_passages(text, passage_words) == lazy
    assert len(lazy) > 1 if passage_words < 10_000 else lazy == [(0, len(text))]  # 12,000 words: one passage


_RUN_PIECES = ["Kata", "the", "ibukota", "ibukotanya", "orang", "-", "'s", "\u2019", ".", ",", "3", "5", "_", "e",
               "mail", "x\u0301", "\u0130", "Stra\u00dfe", "merdeka", "Russia", "\u0915\u093f"]  # fmt: skip


@given(st.lists(st.sampled_from(_RUN_PIECES), min_size=1, max_size=6).map("".join), st.sampled_from(["en", "id"]))
def test_terms_of_one_run_equal_the_batched_terms(text: str, lang: str) -> None:
    import analyzers
    from analyzers.base import RUN_RE, Analyzer

    shared = analyzers.get(lang)
    for run in RUN_RE.findall(text):
        one, batch = Analyzer.__new__(Analyzer), Analyzer.__new__(Analyzer)
        for a in (one, batch):  # cold copies of the registered analyzer: each computes, neither reads a cache
            a.__dict__.update(shared.__dict__, _cache={})
        assert one.run_terms_of(run) == batch.run_terms([run])[0]
        assert one.run_terms_of(run) == batch.run_terms([run])[0]  # and again, from the caches
