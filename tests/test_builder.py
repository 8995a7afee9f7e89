"""The indexing hot paths (issue #12): each faster path gives exactly what the plainer one gave."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from search import documents

# every kind of whitespace Python knows (\s and str.isspace agree on these), beside words and marks
_SPACES = [" ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680",
           "\u2000", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]  # fmt: skip
_PIECES = ["kata", "river", "a.", "b?", "\u200b", "\u180e", "x\u0301", "\ufeff", *_SPACES]


@given(st.lists(st.sampled_from(_PIECES), max_size=80).map("".join), st.integers(min_value=1, max_value=90))
def test_word_counts_and_the_words_listed_agree_with_the_regex(text: str, limit: int) -> None:
    words = re.findall(r"\S+", text)
    spans, listed = documents.split_with_words(text, limit)  # a short text's words: str.split
    if text and len(words) <= limit * 1.25:
        assert spans == [(0, len(text))] and listed == words
    else:
        assert listed is None
    assert documents._word_count(text, limit) == min(len(words), limit)  # a long text's: lazy, to the limit


# punctuation around words, inner separators, marks, "_", quotes and dashes, beside every kind of whitespace
_TOKEN_PIECES = ["word", "Kata", "(", ")", ",", ".", "-", "'", "\u2019", "\u201c", "\u2014", "\u2026", "!", "_", "3",
                 "x\u0301", "\u0301", "\u00df", "\u0915\u093f", "\u0130", *_SPACES]  # fmt: skip


@given(st.lists(st.sampled_from(_TOKEN_PIECES), max_size=60).map("".join))
def test_runs_read_from_counted_words_are_the_run_regex_runs(text: str) -> None:
    from analyzers import tokenize
    from analyzers.base import runs_of_words

    assert runs_of_words(text.split()) == tokenize(text)


def test_a_segment_built_from_counted_words_equals_one_built_by_the_run_regex(monkeypatch) -> None:
    from search import builder
    from search.settings import IndexSettings

    texts = ["Upper Lars (the river), e-mail: U.S. \u2014 ok!", "Kata-kata; orang\u2019s x\u0301 a_b 3.5 ...",
             "", "satu " * 200, "pendek.", "hello _ world", "_", "a - _ - b"]  # fmt: skip

    def build() -> dict:
        b = builder.SegmentBuilder(IndexSettings(passage_words=120, default_language="id"))
        for i, text in enumerate(texts):
            b.add_fields(f"d{i}", text, "Judul (baru)", "id" if i % 2 else None, "{}")
        data = b.to_segment_data()
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in vars(data).items()}

    counted = build()
    monkeypatch.setattr(builder, "split_with_words", lambda text, n: (documents.split_passages(text, n), None))
    assert build() == counted


def _segment_file(texts: list[str], lang: str | None) -> bytes:
    """The segment file one builder writes for ``texts`` (term ids follow the order terms are met; the
    file orders terms by hash and key, so two builders that met terms in another order write the same)."""
    import tempfile

    from search import builder
    from search.segment import write_segment
    from search.settings import IndexSettings

    b = builder.SegmentBuilder(IndexSettings(passage_words=0, default_language="en"))
    for i, text in enumerate(texts):
        b.add_fields(f"d{i}", text, "", lang, "{}")
    with tempfile.TemporaryDirectory() as d:
        write_segment(Path(d) / "s.tls", b.to_segment_data())
        return (Path(d) / "s.tls").read_bytes()


@given(
    st.lists(st.lists(st.sampled_from(_TOKEN_PIECES), max_size=30).map("".join), min_size=1, max_size=6),
    st.sampled_from(["en", "id", None]),
)
def test_slots_read_through_whitespace_words_equal_slots_read_through_runs(texts: list[str], lang) -> None:
    """The builder maps a passage's whitespace words ("(river),", "a/b", "--") to slots through a word
    cache; fed the passage's runs instead (each run a word whose one run is itself), every column is the
    same, whichever words and runs the documents share (and the runs path is the one builds took before)."""
    from analyzers import tokenize
    from search import builder

    by_words = _segment_file(texts, lang)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builder, "split_with_words", lambda text, n: ([(0, len(text))], tokenize(text)))
        by_runs = _segment_file(texts, lang)
    assert by_words == by_runs


@pytest.mark.parametrize("lang", ["en", "id"])
def test_a_run_of_no_words_builds_and_leaves_its_neighbours_findable(tmp_path: Path, lang: str) -> None:
    # "_" alone is a run that yields no term: it once broke the flush when no run of several words preceded it
    from search import Document, Index

    index = Index.create(tmp_path / "ix")
    with index.writer() as w:
        w.add(Document(id="a", text="hello _ world", lang=lang))
        w.add(Document(id="b", text="_", lang=lang))
    assert [h.doc_id for h in index.search('"hello world"')] == ["a"]
    assert index.get("b").text == "_"


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
def test_terms_of_runs_in_bulk_equal_the_cached_terms_and_words(text: str, lang: str) -> None:
    import analyzers
    from analyzers.base import RUN_RE, Analyzer

    shared = analyzers.get(lang)
    for run in RUN_RE.findall(text):
        one, batch = Analyzer.__new__(Analyzer), Analyzer.__new__(Analyzer)
        for a in (one, batch):  # cold copies of the registered analyzer: each computes, neither reads a cache
            a.__dict__.update(shared.__dict__, _cache={})
        plain, words, terms, other = one.terms_of_runs([run])
        pairs = tuple(zip(words, terms)) if plain else other[run]
        assert (plain == [run]) == (len(pairs) == 1 and run.isalnum() and run not in other)
        assert tuple(t for _, t in pairs) == batch.run_terms([run])[0]
        assert tuple(w for w, _ in pairs) == batch.run_words(run)
        assert not one._cache  # the shared cache neither read nor filled
    runs = list(dict.fromkeys(RUN_RE.findall(text)))
    plain, words, terms, other = shared.terms_of_runs(runs)  # all at once, as the builder calls it
    got = {**{r: tuple(p) for r, p in other.items()}, **{r: ((w, t),) for r, w, t in zip(plain, words, terms)}}
    assert got == {r: tuple(zip(shared.run_words(r), shared.run_terms([r])[0])) for r in runs}


def _docs() -> list:
    from search import Document

    words = ["river", "Rivers", "the", "e-mail", "3.5kg", "ibukota", "orang-orang", "Straße", "café", "of-the",
             "a_b", "jalan", "kota", "yang", "Russia's", "anti-mobilisasi", "x\u0301y", "dan", "besar"]  # fmt: skip
    rng = __import__("random").Random(12)
    out = []
    for i in range(160):
        n = rng.choice([3, 40, 200, 700])  # some documents are several passages
        text = " ".join(rng.choice(words) + ("." if rng.random() < 0.1 else "") for _ in range(n))
        lang = rng.choice(["en", "id", None])
        out.append(Document(f"d{i}", text, title=rng.choice(["", "Kota besar", "The e-mail river"]), lang=lang))
    return out


def _segment_bytes(tmp_path, name: str, buffer_tokens: int) -> list[bytes]:
    from search import Index

    index = Index.create(tmp_path / name, passage_words=50)
    with index.writer(buffer_tokens=buffer_tokens) as w:
        for doc in _docs():
            w.add(doc)
    return [p.read_bytes() for p in sorted((tmp_path / name).glob("seg_*.tls"))]


@pytest.mark.parametrize("buffer_tokens", [1_000, 1_000_000])
def test_chunked_analysis_builds_the_same_segments_as_one_passage_at_a_time(tmp_path, monkeypatch, buffer_tokens):
    """Passages analyzed in chunks (the default) or each at once (a chunk of one run) give the same files,
    segment boundaries included: ``full`` decides a flush on the exact count either way."""
    from search import builder

    chunked = _segment_bytes(tmp_path, "chunked", buffer_tokens)
    monkeypatch.setattr(builder, "CHUNK_RUNS", 1)
    eager = _segment_bytes(tmp_path, "eager", buffer_tokens)
    assert len(chunked) == len(eager) and (len(eager) > 5) == (buffer_tokens == 1_000)
    assert chunked == eager


def test_full_is_the_exact_count_and_analyzes_only_when_it_could_be_reached() -> None:
    from search import builder
    from search.settings import IndexSettings

    b = builder.SegmentBuilder(IndexSettings())
    docs = _docs()
    for doc in docs[:20]:
        b.add(doc)
    assert b._pending and not b.full(10**9) and b._pending  # far from the limit: nothing analyzed
    exact = b.n_tokens
    assert not b._pending and exact > 0
    assert b.full(exact) and not b.full(exact + 1)


@pytest.mark.parametrize("slot_range", [7, 1 << 20])
def test_columns_made_a_range_at_a_time_over_the_chunks_equal_one_pass(monkeypatch, slot_range) -> None:
    """``_slot_columns`` reads the slot chunks a range of passages at a time (ranges across chunk ends
    with ``SLOT_RANGE`` of 7 slots) and gives the columns one range over one joined stream gives."""
    from search import builder
    from search.settings import IndexSettings

    b = builder.SegmentBuilder(IndexSettings())
    for doc in _docs()[:40]:
        b.add(doc)
        b._analyze()  # a chunk per document
    assert len(b._tok) > 1
    body, title = np.concatenate(b._body), np.concatenate(b._title_n)
    monkeypatch.setattr(builder, "SLOT_RANGE", 1 << 40)
    whole = builder._slot_columns([np.concatenate(b._tok)], body, title)
    monkeypatch.setattr(builder, "SLOT_RANGE", slot_range)
    ranged = builder._slot_columns(b._tok, body, title)
    assert all(x.tolist() == y.tolist() for x, y in zip(ranged, whole))
    assert len(whole[0]) == b.n_tokens


def test_a_surface_word_naming_no_term_is_left_out_of_the_flushed_segment() -> None:
    from search import segment
    from search.builder import SegmentBuilder
    from search.settings import IndexSettings

    def surface_of(extra: dict[str, str]) -> tuple[list[int], list[int]]:
        b = SegmentBuilder(IndexSettings(passage_words=0, default_language="en"))
        b.add_fields("d", "Rivers of the upper Lars", "", "en", "{}")
        data = b.to_segment_data()
        data.surface.update(extra)
        arrays, _ = segment.build_arrays(data)
        return arrays["surf_blob"].tolist(), arrays["surf_term"].tolist()

    plain = surface_of({})
    assert plain[1]  # the words were kept, each naming its term
    assert surface_of({"en:zzz": "en:no-such-term"}) == plain  # every term kept: the word alone is dropped
