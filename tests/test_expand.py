"""Term expansion (search.expand): fuzzy, prefix and wildcard against brute force on random dictionaries."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search.expand import MAX_EXPANSIONS, Lexicon, auto_distance, fuzzy_boost, wildcard_regex

# a small alphabet makes near words common; "é" and "ñ" check code points past ASCII
LETTERS = "abcdeéñ"
words_st = st.text(alphabet=LETTERS, min_size=0, max_size=9)
dict_st = st.lists(words_st, min_size=0, max_size=120).map(lambda ws: sorted(set(ws)))


def osa(a: str, b: str) -> int:
    """Optimal string alignment distance, the textbook dynamic programme (the reference)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


@settings(max_examples=300, deadline=None)
@given(dict_st, words_st, st.integers(0, 2))
def test_fuzzy_finds_every_word_within_the_distance(words, word, k):
    got = Lexicon(words).fuzzy(word, k, limit=10**6)
    want = sorted((osa(word, w), w) for w in words if osa(word, w) <= k)
    assert [(words[i], d) for i, d in got] == [(w, d) for d, w in want]


@settings(max_examples=200, deadline=None)
@given(dict_st, words_st, st.integers(1, 2), st.integers(0, 5))
def test_fuzzy_limit_keeps_the_nearest_in_dictionary_order(words, word, k, limit):
    got = Lexicon(words).fuzzy(word, k, limit=limit)
    want = sorted((osa(word, w), w) for w in words if osa(word, w) <= k)[:limit]
    assert [(words[i], d) for i, d in got] == [(w, d) for d, w in want]


@settings(max_examples=200, deadline=None)
@given(dict_st, st.text(alphabet=LETTERS, max_size=3), st.integers(0, 200))
def test_prefix_finds_every_word_with_the_prefix(words, prefix, limit):
    got = [words[i] for i in Lexicon(words).prefix(prefix, limit)]
    assert got == [w for w in words if w.startswith(prefix)][:limit]


@settings(max_examples=200, deadline=None)
@given(dict_st, st.text(alphabet=LETTERS + "*?", min_size=1, max_size=5), st.integers(0, 200))
def test_wildcard_matches_brute_force(words, pattern, limit):
    rx = re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern))
    got = [words[i] for i in Lexicon(words).wildcard(pattern, limit)]
    assert got == [w for w in words if rx.fullmatch(w)][:limit]


def test_fuzzy_on_real_words():
    words = sorted({"pemerintah", "pemerintahan", "pemerintahnya", "perintah", "kebijakan", "fiskal", "the"})
    lex = Lexicon(words)
    found = {words[i]: d for i, d in lex.fuzzy("pemerintahn", 2)}
    assert found == {"pemerintahan": 1, "pemerintah": 1, "pemerintahnya": 2}
    assert [(words[i], d) for i, d in lex.fuzzy("kebijakn", 1)] == [("kebijakan", 1)]
    assert [(words[i], d) for i, d in lex.fuzzy("teh", 1)] == [("the", 1)]  # a transposition is one edit
    assert lex.fuzzy("fiskal", 0) == [(words.index("fiskal"), 0)]
    assert lex.fuzzy("fiskl", 0) == []


@pytest.mark.parametrize(
    ("word", "edits"), [("", 0), ("ab", 0), ("abc", 1), ("abcde", 1), ("abcdef", 2), ("pemerintahan", 2)]
)
def test_auto_distance_follows_elasticsearch(word, edits):
    assert auto_distance(word) == edits


def test_boost_shrinks_with_the_distance():
    assert fuzzy_boost(0, "pajak", "pajak") == 1.0
    assert fuzzy_boost(1, "pajk", "pajak") == pytest.approx(0.75)  # 1 - 1/min(4, 5)
    assert fuzzy_boost(2, "kebjakn", "kebijakan") == pytest.approx(1 - 2 / 7)
    assert fuzzy_boost(1, "a", "ab") == 0.0


def test_limits_and_bad_distance():
    words = [f"w{i:03d}" for i in range(200)]
    lex = Lexicon(words)
    assert len(lex.prefix("w", MAX_EXPANSIONS)) == MAX_EXPANSIONS
    assert lex.prefix("w", 3) == [0, 1, 2]
    assert len(lex.fuzzy("w000", 2)) == MAX_EXPANSIONS
    with pytest.raises(ValueError, match="edit distance"):
        lex.fuzzy("w000", 3)


def test_wildcard_regex_is_literal_outside_wildcards():
    assert wildcard_regex("a.b*").fullmatch("a.bcd")
    assert not wildcard_regex("a.b*").fullmatch("axbcd")
    assert wildcard_regex("p?jak").fullmatch("pajak")
