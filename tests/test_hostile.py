"""Bounded work and clear answers on hostile input (issue #24): linear snippets, limits, validation.

Each test is a regression test for one finding: the input a hostile (or unlucky) user can give, and the
precise error or bounded behaviour it must get instead of a traceback, a hang or unbounded memory.
"""

from __future__ import annotations

from bisect import bisect_left

from hypothesis import given
from hypothesis import strategies as st

import analyzers
from analyzers.base import TOKEN_RE
from search import highlight
from search.highlight import best_window, make_snippet


def _quadratic_best_window(text: str, matches: list[tuple[str, int, int]], words: int) -> tuple[int, int]:
    """The snippet window chooser as it was before it was made linear: the reference for equality."""
    spans = [m.span() for m in TOKEN_RE.finditer(text)]
    if len(spans) <= words:
        return 0, len(text)
    starts = [s for s, _ in spans]
    match_words = [(bisect_left(starts, s + 1) - 1, term) for term, s, _ in matches]
    sentence_starts = [0] + [
        i for i in range(1, len(spans)) if any(ch in ".!?\n" for ch in text[spans[i - 1][1] : spans[i][0]])
    ]
    candidates = {0}
    for w, _ in match_words:
        candidates.update((max(0, w - 4), w))
        s = sentence_starts[bisect_left(sentence_starts, w + 1) - 1]
        if w - s < words // 2:
            candidates.add(s)
    best_key, best = None, 0
    sentence_set = set(sentence_starts)
    for c in sorted(candidates):
        c = min(c, len(spans) - words)
        inside = [term for w, term in match_words if c <= w < c + words]
        key = (len(set(inside)), len(inside), c in sentence_set, -c)
        if best_key is None or key > best_key:
            best_key, best = key, c
    end_word = min(best + words, len(spans)) - 1
    start = spans[best][0] if best else 0
    end = spans[end_word][1]
    while end < len(text) and text[end] in ".!?,;:)\"'\u201d":
        end += 1
    return start, end


SNIPPET_VOCAB = ["river", "mountain", "pass", "kota", "jalan", "the", "a", "makan", "rumah", "Upper", "Lars"]


@given(
    st.lists(st.sampled_from(SNIPPET_VOCAB + [".", "!", "\n", ","]), min_size=0, max_size=400),
    st.sets(st.sampled_from(["river", "mountain", "pass", "kota", "upper", "lars"]), min_size=1),
    st.integers(min_value=1, max_value=40),
)
def test_linear_snippet_window_equals_the_quadratic_one(words: list[str], terms: set[str], size: int) -> None:
    text = " ".join(words)
    analyzer = analyzers.get("en")
    matches = highlight.highlight_spans(text, analyzer, {analyzer.term(t) for t in terms})
    assert best_window(text, matches, size) == _quadratic_best_window(text, matches, size)


def test_snippet_of_a_passage_with_many_matches_is_a_window_with_its_highlights(monkeypatch) -> None:
    # 3,000 matches of one word and one rarer word late in the passage: the window holds both terms
    text = "river " * 1500 + "the mountain river " + "river " * 1500
    analyzer = analyzers.get("en")
    snippet, inside, full = make_snippet(text, analyzer, ["river", "mountain"])
    assert "mountain" in snippet and len(snippet.split()) <= highlight.SNIPPET_WORDS + 1
    assert len(full) == 3002
    assert all(snippet[s:e] in ("river", "mountain") for s, e in inside)
    # past the cap, only the first matches choose the window (all are still highlighted)
    monkeypatch.setattr(highlight, "MAX_WINDOW_MATCHES", 100)
    snippet, _, full = make_snippet(text, analyzer, ["river", "mountain"])
    assert "mountain" not in snippet and len(full) == 3002
