"""Bounded work and clear answers on hostile input (issue #24): linear snippets, limits, validation.

Each test is a regression test for one finding: the input a hostile (or unlucky) user can give, and the
precise error or bounded behaviour it must get instead of a traceback, a hang or unbounded memory.
"""

from __future__ import annotations

import codecs
import errno
import json
import os
import random
import re
import signal
import subprocess
import sys
import tracemalloc
from bisect import bisect_left
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import analyzers
from analyzers.base import TOKEN_RE
from cli import sources
from search import (
    Document,
    Index,
    IndexCorrupt,
    InvalidArgument,
    InvalidDocument,
    ParsedQuery,
    QuerySyntaxError,
    WorkerFailed,
    documents,
    files,
    highlight,
    parallel,
    parse_query,
    plain_query,
    segment,
    storage,
)
from search.documents import MAX_META_DEPTH
from search.highlight import best_window, make_snippet
from search.query import MAX_NESTING, MAX_QUERY_TERMS, SHOULD, BooleanQuery, TermQuery


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


ROOT = Path(__file__).resolve().parents[1]
# numbers with a dot and hyphenated words: a stop inside a word is no sentence end; parts share a word
SNIPPET_VOCAB = [
    "river",
    "mountain",
    "pass",
    "kota",
    "jalan",
    "the",
    "a",
    "makan",
    "rumah",
    "Upper",
    "Lars",
    "3.5",
    "a3.5",
    "river-river",
]


@given(
    st.lists(st.sampled_from(SNIPPET_VOCAB + [".", "!", "\n", ","]), min_size=0, max_size=400),
    st.sets(st.sampled_from(["river", "mountain", "pass", "kota", "upper", "lars"]), min_size=1),
    st.integers(min_value=1, max_value=40),
    st.randoms(use_true_random=False),
)
def test_linear_snippet_window_equals_the_quadratic_one(
    words: list[str], terms: set[str], size: int, rnd: random.Random
) -> None:
    text = " ".join(words)
    analyzer = analyzers.get("en")
    matches = highlight.highlight_spans(text, analyzer, {analyzer.term(t) for t in terms})
    expected = _quadratic_best_window(text, matches, size)
    shuffled = list(matches)
    rnd.shuffle(shuffled)
    few = highlight.FEW_MATCHES
    try:  # the numpy path (any number of matches) and the plain one (few matches, forced here for all)
        for highlight.FEW_MATCHES in (-1, 1 << 30):
            assert best_window(text, matches, size) == expected
            # a caller's list out of text order gets the same window
            assert best_window(text, shuffled, size) == expected
    finally:
        highlight.FEW_MATCHES = few


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


@given(
    st.lists(st.sampled_from(SNIPPET_VOCAB + [".", "!", "\n", ",", "a_b", "_", "end.Next", "e-mail"]), max_size=300),
    st.sets(st.sampled_from(["river", "mountain", "pass", "kota", "upper", "lars", "mail", "the", "yang"]), min_size=0),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=200),
    st.sampled_from(["en", "id"]),
)
def test_a_long_passage_laid_out_in_pieces_gets_the_snippet_of_the_short_path(
    words: list[str], terms: set[str], size: int, piece: int, lang: str
) -> None:
    """The long-passage path (pieces cut at white space, words found again from marks) gives the snippet
    and highlights of the short path, whatever the piece size: stops and words at the cuts included."""
    text = " ".join(words)
    analyzer = analyzers.get(lang)
    wanted = {analyzer.term(t) for t in terms}  # a stopword's term is "": it highlights nothing
    layout, chunk, mark = highlight.LAYOUT_CHARS, highlight.CHUNK_CHARS, highlight.MARK_EVERY
    table = highlight.RUN_TABLE_LIMIT
    try:
        highlight.LAYOUT_CHARS = 1 << 40
        expected = make_snippet(text, analyzer, wanted, size)
        highlight.LAYOUT_CHARS, highlight.CHUNK_CHARS, highlight.MARK_EVERY = -1, piece, 1 + piece % 7
        highlight.RUN_TABLE_LIMIT = 1 + piece % 5  # the run table started again between pieces
        assert make_snippet(text, analyzer, wanted, size) == expected
        assert make_snippet(text, analyzer, iter(wanted), size) == expected  # terms read once
    finally:
        highlight.LAYOUT_CHARS, highlight.CHUNK_CHARS, highlight.MARK_EVERY = layout, chunk, mark
        highlight.RUN_TABLE_LIMIT = table


def test_a_long_passage_snippet_keeps_nothing_per_word(monkeypatch) -> None:
    """A 2 MB passage (400,000 words, sentence stops, a few matches): the long path's traced peak is a
    piece's worth (0.9 MB), not objects or arrays over its words (the short path: 63 MB), and its window
    is the short path's."""
    rng = random.Random(5)
    vocab = ["alpha", "beta", "gamma.", "delta,", "epsilon", "zeta!", "eta", "theta"]
    text = " ".join(rng.choice(vocab) for _ in range(400_000)) + " mountain river pass"
    analyzer = analyzers.get("en")
    assert len(text) > highlight.LAYOUT_CHARS
    make_snippet(text, analyzer, ["river", "mountain"])  # the run cache filled
    tracemalloc.start()
    try:
        got = make_snippet(text, analyzer, ["river", "mountain"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_500_000, peak
    monkeypatch.setattr(highlight, "LAYOUT_CHARS", 1 << 40)
    assert make_snippet(text, analyzer, ["river", "mountain"]) == got
    assert got[0].endswith("mountain river pass")


@pytest.mark.parametrize("words", [0, -3, 1.5, True])
def test_a_snippet_of_no_words_is_refused(words) -> None:
    with pytest.raises(InvalidArgument, match="words >= 1"):
        make_snippet("river mountain " * 20, analyzers.get("en"), ["river"], words)


def test_the_cap_on_window_matches_holds_on_a_long_passage(monkeypatch) -> None:
    text = "river " * 3000 + "the mountain river " + "river " * 3000
    analyzer = analyzers.get("en")
    assert len(text) > highlight.LAYOUT_CHARS
    snippet, _, full = make_snippet(text, analyzer, ["river", "mountain"])
    assert "mountain" in snippet and len(full) == 6002
    monkeypatch.setattr(highlight, "MAX_WINDOW_MATCHES", 100)
    snippet, _, full = make_snippet(text, analyzer, ["river", "mountain"])
    assert "mountain" not in snippet and len(full) == 6002


# -- query limits and argument validation -------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Index:
    index = Index.create(tmp_path_factory.mktemp("hostile") / "idx")
    with index.writer() as w:
        w.add(Document(id="a", text="The river mountain pass. Warga kota."))
    return index


def test_deep_parentheses_are_a_query_syntax_error_naming_the_limit(small: Index) -> None:
    deep = "(" * 500 + "river" + ")" * 500
    for call in (lambda: small.search(deep), lambda: small.explain(deep, "a"), lambda: parse_query(deep)):
        with pytest.raises(QuerySyntaxError, match=f"nested more than {MAX_NESTING} deep") as e:
            call()
        assert e.value.position == MAX_NESTING
    ok = "(" * MAX_NESTING + "river" + ")" * MAX_NESTING
    assert [h.doc_id for h in small.search(ok)] == ["a"]
    # unbalanced parentheses stay lenient: a stray one is text, an unclosed one closes at the end
    assert small.search("(" * MAX_NESTING + "river") and small.search(")" * 10_000 + " river")


def test_too_many_distinct_words_is_a_query_syntax_error_and_repeats_count_once(small: Index) -> None:
    many = " ".join(f"w{i}" for i in range(MAX_QUERY_TERMS + 1))
    with pytest.raises(QuerySyntaxError, match=f"more than {MAX_QUERY_TERMS}") as e:
        small.search(many)
    assert e.value.position == many.rindex(" ") + 1  # the first word past the limit
    with pytest.raises(QuerySyntaxError, match=f"more than {MAX_QUERY_TERMS}"):
        plain_query(many)
    assert small.search(" ".join(f"w{i}" for i in range(MAX_QUERY_TERMS - 1)) + " river")
    assert [h.doc_id for h in small.search("river " * 20_000)] == ["a"]


def test_parsed_query_built_in_code_is_checked_against_the_same_limits(small: Index) -> None:
    node = BooleanQuery(((SHOULD, TermQuery("river")),))
    for _ in range(5_000):
        node = BooleanQuery(((SHOULD, node),))
    with pytest.raises(InvalidArgument, match="nested"):
        small.search(ParsedQuery(node))
    wide = BooleanQuery(tuple((SHOULD, TermQuery(f"w{i}")) for i in range(MAX_QUERY_TERMS + 1)))
    with pytest.raises(InvalidArgument, match="distinct terms"):
        small.search(ParsedQuery(wide))


@pytest.mark.parametrize("query", ["", "   ", "()", "(((", ")))", "AND", "-river", "NOT"])
def test_empty_or_purely_negative_queries_return_no_hits(small: Index, query: str) -> None:
    assert small.search(query) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 1.5},
        {"k": -1},
        {"k": "3"},
        {"k": True},
        {"k": None},
        {"offset": -1},
        {"offset": 0.5},
        {"k1": -0.1},
        {"k1": float("nan")},
        {"k1": float("inf")},
        {"k1": "1"},
        {"b": 5},
        {"b": -0.01},
        {"b": float("nan")},
    ],
)
def test_bad_search_arguments_are_invalid_argument_naming_the_parameter(small: Index, kwargs: dict) -> None:
    name = next(iter(kwargs))
    with pytest.raises(InvalidArgument, match=rf"^{name} must be") as e:
        small.search("river", **kwargs)
    assert isinstance(e.value, ValueError)
    if name in ("k1", "b"):
        with pytest.raises(InvalidArgument, match=rf"^{name} must be"):
            small.explain("river", "a", **kwargs)


@pytest.mark.parametrize("kwargs", [{"k1": -1}, {"k1": float("nan")}, {"b": 5}, {"b": float("inf")}, {"k1": None}])
def test_index_create_refuses_bad_bm25_parameters_and_leaves_nothing(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(InvalidArgument, match=rf"^{next(iter(kwargs))} must be"):
        Index.create(tmp_path / "idx", **kwargs)
    assert not (tmp_path / "idx").exists()


def test_search_of_a_non_string_is_invalid_argument(small: Index) -> None:
    for query in (None, 3, b"river", ["river"]):
        with pytest.raises(InvalidArgument, match="query must be a string"):
            small.search(query)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="query must be a string"):
            small.explain(query, "a")  # type: ignore[arg-type]
    # numpy integers are integers; the edge values work
    assert small.search("river", k=np.int64(1), offset=np.int32(0), k1=0, b=1.0)
    assert small.search("river", k=0) == []


# -- index files: special, oversized, unreadable, nested too deep ---------------------------------------

CLI = "import sys; from cli.app import main; sys.argv[0] = 'search'; main()"


def _cli(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real ``search`` command in a child process, so a hang is a timeout, not a stuck suite."""
    return subprocess.run(
        [sys.executable, "-c", CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def _index_with_deletions(path: Path) -> Index:
    index = Index.create(path)
    with index.writer() as w:
        w.add(Document(id="a", text="The river mountain pass."))
        w.add(Document(id="b", text="Warga kota makan di rumah."))
        for i in range(4):  # one deleted of six: under the share that makes the merge policy rewrite it
            w.add(Document(id=f"c{i}", text=f"Pasar kota nomor {i}."))
    with index.writer() as w:
        w.delete("b")
    return index


def _child_open(path: Path) -> subprocess.CompletedProcess:
    code = (
        "import sys; from search import Index, IndexCorrupt\n"
        "try:\n    Index.open(sys.argv[1], verify=True)\n"
        "except IndexCorrupt as e:\n    print('IndexCorrupt', e.path, e, sep='|')\n"
    )
    args = [sys.executable, "-c", code, str(path)]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize("target", ["meta.json", ".del", ".tls"])
@pytest.mark.parametrize("kind", ["fifo", "devzero"])
def test_special_index_files_are_refused_before_reading(tmp_path: Path, target: str, kind: str) -> None:
    _index_with_deletions(tmp_path / "idx")
    victim = next(p for p in sorted((tmp_path / "idx").iterdir()) if p.name.endswith(target))
    victim.unlink()
    if kind == "fifo":
        os.mkfifo(victim)
    else:
        victim.symlink_to("/dev/zero")
    proc = _child_open(tmp_path / "idx")  # used to block forever (FIFO) or grow until killed (/dev/zero)
    assert proc.returncode == 0 and proc.stdout.startswith("IndexCorrupt|"), (proc.stdout, proc.stderr)
    _, path, message = proc.stdout.strip().split("|", 2)
    assert Path(path).name == victim.name
    if target == "meta.json":  # a segment's wrong size is noticed first; meta.json has no recorded size
        assert ("a FIFO" if kind == "fifo" else "a character device") in message
    check = _cli("check", "--index", tmp_path / "idx")
    assert check.returncode == 3 and check.stderr.startswith("error: ") and "Traceback" not in check.stderr
    assert victim.name in check.stderr


_LOCK_CHILD = """
import sys
from search import Document, Index, IndexCorrupt
from search.storage import WriteLock
index = Index.open(sys.argv[1])
print(repr(WriteLock(index.path).holder()))
try:
    with index.writer() as w:
        w.add(Document(id="c", text="river"))
except IndexCorrupt as e:
    print("IndexCorrupt", e.path, e, sep="|")
"""


@pytest.mark.parametrize("kind", ["fifo", "devzero", "link", "oversized"])
def test_write_lock_file_is_read_through_the_checked_reads(tmp_path: Path, kind: str) -> None:
    index = _index_with_deletions(tmp_path / "idx")
    lock = tmp_path / "idx" / storage.LOCK
    outside = tmp_path / "outside.txt"
    outside.write_text("not the index's\n")
    lock.unlink()
    if kind == "fifo":
        os.mkfifo(lock)  # its holder used to be read with a plain read: blocked forever
    elif kind == "devzero":
        lock.symlink_to("/dev/zero")  # read until memory ran out
    elif kind == "link":
        lock.symlink_to(outside)  # the writer truncated what the link points to
    else:
        lock.write_bytes(b"pid 1 on host\n" + b"x" * storage.MAX_LOCK_BYTES)
    args = [sys.executable, "-c", _LOCK_CHILD, str(tmp_path / "idx")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    if kind != "link":  # no holder named from a file that is not a small regular file
        assert lines[0] == "None"
    if kind == "oversized":  # a regular lock file is a lock file: the writer takes it and rewrites it
        assert len(lines) == 1 and "c" in Index.open(tmp_path / "idx")
        assert storage.WriteLock(tmp_path / "idx").holder() is None  # released: emptied
        return
    _, path, message = lines[1].split("|", 2)
    assert path == str(lock) and message.startswith(f"{storage.LOCK} is ")
    assert ("symbolic link" if kind in ("devzero", "link") else "a FIFO") in message
    index.refresh()
    assert outside.read_text() == "not the index's\n" and "c" not in index
    proc = _cli("delete", "a", "--index", tmp_path / "idx")  # the CLI: exit 3, one line, no rebuild advice
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1 and "rebuild" not in proc.stderr
    assert proc.stderr.startswith(f"error: {storage.LOCK} is ") and "remove it" in proc.stderr


def _sharded_with_dfs(path: Path) -> Path:
    """A two-shard index with a commit's document-frequency table; returns the table's path."""
    from search.sharded import DF_PREFIX, ShardedIndex

    idx = ShardedIndex.create(path, shards=2)
    with idx.writer() as w:
        for i in range(12):
            w.add(Document(id=f"d{i}", text=f"river kota nomor {i} pasar mountain"))
    (table,) = path.glob(f"{DF_PREFIX}*.npy")
    return table


@pytest.mark.parametrize("damage", ["fifo", "devzero", "grown", "garbage", "shape", "dtype", "empty-header"])
def test_document_frequency_table_is_read_through_the_checked_reads(tmp_path: Path, damage: str) -> None:
    """``dfs-<gen>.npy`` is opened as the other index files are (a regular file of its recorded size, never
    read past that) and its ``.npy`` header is checked against its size: damage is ``IndexCorrupt``."""
    table = _sharded_with_dfs(tmp_path / "s")
    original = table.read_bytes()
    assert _child_open(tmp_path / "s").stdout == ""  # intact: opens and verifies
    n = len(original)
    if damage in ("fifo", "devzero"):
        table.unlink()
        os.mkfifo(table) if damage == "fifo" else table.symlink_to("/dev/zero")
    elif damage == "grown":
        table.write_bytes(original + b"\0" * 16)
    elif damage == "garbage":
        table.write_bytes(bytes(random.Random(3).randrange(256) for _ in range(n)))
    elif damage == "empty-header":
        table.write_bytes(original[:8] + b"\0" * (n - 8))  # the magic, then a header of zeros
    else:  # a header that lies about the array, at the same size
        header_end = original.index(b"\n") + 1
        header = original[:header_end].decode("latin1")
        count = int(re.search(r"\(2, (\d+)\)", header).group(1))
        if damage == "shape":
            lie = header.replace(f"(2, {count})", f"(2, {count - 1})" + " " * (len(str(count)) - len(str(count - 1))))
        else:
            lie = header.replace("'<u8'", "'<i8'")
        assert lie != header and len(lie) == len(header)
        table.write_bytes(lie.encode("latin1") + original[header_end:])
    proc = _child_open(tmp_path / "s")  # a FIFO blocked the reader forever; /dev/zero never ended
    assert proc.returncode == 0 and proc.stdout.startswith("IndexCorrupt|"), (proc.stdout, proc.stderr)
    _, path, message = proc.stdout.strip().split("|", 2)
    assert Path(path).name == table.name and "Traceback" not in proc.stderr
    said = {"fifo": "a FIFO", "devzero": "a character device", "grown": "the commit recorded"}.get(damage, "damaged")
    assert said in message, message
    check = _cli("check", "--index", tmp_path / "s")
    assert check.returncode == 3 and check.stderr.startswith("error: ") and "Traceback" not in check.stderr


def test_index_file_larger_than_its_commit_is_refused(tmp_path: Path) -> None:
    _index_with_deletions(tmp_path / "idx")
    for victim in sorted((tmp_path / "idx").glob("seg_*")):
        original = victim.read_bytes()
        victim.write_bytes(original + b"\0" * 4096)
        with pytest.raises(IndexCorrupt, match="the commit recorded") as e:
            Index.open(tmp_path / "idx")
        assert e.value.path == str(victim)
        victim.write_bytes(original)
    Index.open(tmp_path / "idx", verify=True)


def test_meta_json_over_its_size_limit_is_refused_without_reading_it(tmp_path: Path, monkeypatch) -> None:
    _index_with_deletions(tmp_path / "idx")
    monkeypatch.setattr(files, "MAX_META_BYTES", 100)
    monkeypatch.setattr(storage, "MAX_META_BYTES", 100)
    with pytest.raises(IndexCorrupt, match="more than the limit of 100") as e:
        Index.open(tmp_path / "idx")
    assert Path(e.value.path).name == "meta.json"


def test_deeply_nested_meta_json_is_index_corrupt_and_check_exits_3(tmp_path: Path) -> None:
    _index_with_deletions(tmp_path / "idx")
    (tmp_path / "idx" / "meta.json").write_text("[" * 100_000)
    with pytest.raises(IndexCorrupt, match="nested too deep"):
        Index.open(tmp_path / "idx")
    check = _cli("check", "--index", tmp_path / "idx")
    assert check.returncode == 3 and "meta.json" in check.stderr and "Traceback" not in check.stderr
    query = _cli("query", "river", "--index", tmp_path / "idx")
    assert query.returncode == 3 and "Traceback" not in query.stderr


def test_segment_header_nested_deep_is_index_corrupt(tmp_path: Path) -> None:
    header = b"[" * 15_000
    path = tmp_path / "seg_000001.tls"
    path.write_bytes(segment.MAGIC + len(header).to_bytes(8, "little") + header)
    with pytest.raises(IndexCorrupt, match="nested too deep") as e:
        segment.SegmentReader(path)
    assert e.value.path == str(path)


def test_unreadable_segment_is_told_apart_from_damage(tmp_path: Path, monkeypatch) -> None:
    _index_with_deletions(tmp_path / "idx")
    seg = next((tmp_path / "idx").glob("seg_*.tls"))
    real_open = os.open

    def deny(path, *args, **kwargs):
        if Path(path) == seg:  # what chmod 000 does to a non-root reader (tests may run as root)
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(files.os, "open", deny)
    with pytest.raises(PermissionError, match="cannot be read: permission denied") as e:
        Index.open(tmp_path / "idx")
    assert not isinstance(e.value, IndexCorrupt) and e.value.filename == str(seg) and seg.name in str(e.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_segment_cli_says_cannot_read_not_damaged(tmp_path: Path) -> None:
    _index_with_deletions(tmp_path / "idx")
    seg = next((tmp_path / "idx").glob("seg_*.tls"))
    seg.chmod(0)
    try:
        proc = _cli("query", "river", "--index", tmp_path / "idx")
    finally:
        seg.chmod(0o644)
    assert proc.returncode == 2 and "permission denied" in proc.stderr and "damaged" not in proc.stderr


# -- documents: nesting, size, BOM, UTF-16 ---------------------------------------------------------------


def _nested(depth: int) -> dict:
    node: dict = {"leaf": 1}
    for _ in range(depth - 1):
        node = {"a": node}
    return node


def test_document_meta_nested_deep_is_invalid_document(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx")
    with index.writer() as w:
        for depth in (MAX_META_DEPTH + 1, 5_000):
            with pytest.raises(InvalidDocument, match=f"nested more than {MAX_META_DEPTH} deep"):
                w.add(Document(id="deep", text="river", meta=_nested(depth)))
        w.add(Document(id="ok", text="river", meta=_nested(MAX_META_DEPTH)))
    assert index.get("ok").meta == _nested(MAX_META_DEPTH) and "deep" not in index


def test_a_flush_in_ranges_of_terms_writes_the_bytes_of_one_pass(tmp_path: Path, monkeypatch) -> None:
    # a huge document's flush sorts and packs its postings range by range, and compresses its text slice
    # by slice: the segment must not change by a byte (tiny ranges and slices here, many of each)
    rng = random.Random(5)
    vocab = [f"k{i}" for i in range(400)] + ["river", "sungai", "Ärger", "kota-kota"]
    docs = [
        Document(id=f"d{i}", text=" ".join(rng.choices(vocab, k=rng.randint(1, 300))) + ". Jalan.", title=t, lang=lang)
        for i, (t, lang) in enumerate([("", "en"), ("River title", "en"), ("", None), ("Judul kota", "id")] * 10)
    ]
    docs.append(Document(id="huge", text="river mountain pass Ärger " * 3_000, lang="en"))

    def build(path: Path) -> dict[str, bytes]:
        index = Index.create(path, passage_words=30)
        with index.writer(buffer_tokens=800) as w:  # many small segments: merged at commit
            for doc in docs:
                w.add(doc)
        with index.writer() as w:  # merges drop the deleted document's terms (a remapped dictionary)
            w.delete("d3")
            w.add(Document(id="late", text="river sungai late", lang="en"))
        return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.name != storage.LOCK}

    one_pass = build(tmp_path / "one")
    monkeypatch.setattr(segment, "POSTINGS_CHUNK_TOKENS", 64)
    monkeypatch.setattr(segment, "STREAM_CHARS", 100)
    ranges = build(tmp_path / "ranges")
    assert ranges.keys() == one_pass.keys() and all(ranges[k] == one_pass[k] for k in one_pass)
    index = Index.open(tmp_path / "ranges", verify=True)
    assert index.get("huge").text == docs[-1].text and index.search("river", k=1)


def test_document_text_title_and_meta_sizes_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(documents, "MAX_TEXT_CHARS", 1000)
    with pytest.raises(InvalidDocument, match="text has 1,001 characters; the limit is 1,000"):
        Document(id="big", text="x" * 1001).validate()
    Document(id="fits", text="x" * 1000).validate()
    with pytest.raises(InvalidDocument, match="title has"):
        Document(id="t", text="x", title="y" * (documents.MAX_TITLE_CHARS + 1)).validate()
    with pytest.raises(InvalidDocument, match="meta is .* characters of JSON"):
        Document(id="m", text="x", meta={"k": "v" * documents.MAX_META_CHARS}).validate()
    with pytest.raises(InvalidDocument, match="lone surrogate at 3"):
        Document(id="s", text="abc\ud800def").validate()
    with pytest.raises(InvalidDocument, match="meta is not valid Unicode"):
        Document(id="s", text="abc", meta={"k": ["ok", "\udc80"]}).validate()
    with pytest.raises(InvalidDocument, match="meta is not valid Unicode"):
        Document(id="s", text="abc", meta={"\ud800": 1}).validate()
    for lang in ("xx", ["en"], {"en": 1}, 5):  # unhashable or not a string: refused, never a TypeError
        with pytest.raises(InvalidDocument, match="unknown lang"):
            Document(id="l", text="x", lang=lang).validate()  # type: ignore[arg-type]


def _index_cli(tmp_path: Path, *files: tuple[str, bytes]) -> subprocess.CompletedProcess:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    for name, data in files:
        (src / name).write_bytes(data)
    return _cli("index", src, "--index", tmp_path / "idx")


def test_jsonl_meta_nested_100000_deep_is_one_error_line(tmp_path: Path) -> None:
    line = '{"id": "a", "text": "river", "meta": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}\n"
    proc = _index_cli(tmp_path, ("deep.jsonl", line.encode()))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: ") and "deep.jsonl:1: document 'a': meta is nested more than" in proc.stderr
    shallow = '{"id": "b", "text": "river", "meta": ' + '{"a": ' * 100 + "1" + "}" * 100 + "}\n"
    proc = _index_cli(tmp_path, ("deep.jsonl", shallow.encode()))
    assert proc.returncode == 2 and f"nested more than {MAX_META_DEPTH} deep" in proc.stderr
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "idx").exists()  # nothing was written


def test_jsonl_meta_with_a_lone_surrogate_is_one_error_line_and_writes_nothing(tmp_path: Path) -> None:
    # JSON may spell a lone surrogate as an escape; it cannot be stored as UTF-8, so the line is refused up front
    line = b'{"id": "a", "text": "river", "meta": {"k": "\\ud800"}}\n'
    proc = _index_cli(tmp_path, ("bad.jsonl", line))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert "bad.jsonl:1: document 'a': meta is not valid Unicode" in proc.stderr
    assert not (tmp_path / "idx").exists()


def test_jsonl_line_too_deep_to_parse_is_invalid_document_naming_its_field(tmp_path: Path) -> None:
    # the deep field comes first (the id is found after it, strings holding brackets are skipped whole)
    # or is not meta; only a line whose top level is no object stays a source error
    deep = '["]\\"[", ' * 100_000 + "1" + "]" * 100_000
    src = sources.SourceFile(tmp_path / "d.jsonl", "d.jsonl")
    cases = [
        ('{"meta": {"k": ' + deep + '}, "id": "z", "text": "t"}', InvalidDocument, "d.jsonl:1: document 'z': meta is"),
        ('{"id": "q", "text": ' + deep + "}", InvalidDocument, "d.jsonl:1: document 'q': text is nested more than"),
        ('{"text": "t", "meta": ' + deep, InvalidDocument, "d.jsonl:1: the document: meta is nested more than"),
        (deep, sources.SourceError, "d.jsonl:1: expected a JSON object"),
    ]
    for line, error, message in cases:
        src.path.write_text(line + "\n", encoding="utf-8")
        with pytest.raises(error, match=re.escape(message)):
            list(sources.read_documents(src))


def test_utf8_bom_is_not_stored_and_utf16_is_decoded_or_refused(tmp_path: Path) -> None:
    text = "Warga kota makan di rumah. The river pass."
    proc = _index_cli(
        tmp_path,
        ("bom.txt", codecs.BOM_UTF8 + text.encode()),
        ("bom.jsonl", codecs.BOM_UTF8 + b'{"id": "j", "text": "river mountain"}\n'),
        ("le.txt", text.encode("utf-16")),  # Python writes the BOM, in native (little-endian) order
        ("be.md", codecs.BOM_UTF16_BE + ("# Judul\n\n" + text).encode("utf-16-be")),
    )
    assert proc.returncode == 0, proc.stderr
    index = Index.open(tmp_path / "idx")
    assert index.get("bom.txt").text == text and index.get("j").text == "river mountain"
    assert index.get("le.txt").text == text
    assert index.get("be.md").title == "Judul" and index.get("be.md").text.endswith(text)
    no_bom = _index_cli(tmp_path, ("nobom.txt", text.encode("utf-16-le")))
    assert no_bom.returncode == 2 and "UTF-16" in no_bom.stderr and "convert it to UTF-8" in no_bom.stderr
    assert "binary" not in no_bom.stderr
    binary = _index_cli(tmp_path, ("nobom.txt", bytes(range(256)) * 4))
    assert binary.returncode == 2 and "binary" in binary.stderr


# -- the command line: valid UTF-8 JSON, SIGPIPE, a folder without meta.json ---------------------------


def _cli_bytes(*args: bytes | str, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess:
    argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return subprocess.run(
        [sys.executable.encode(), b"-c", CLI.encode(), *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=120,
        cwd=ROOT,
    )


@pytest.mark.parametrize("command", [b"query", b"analyze", b"explain"])
def test_json_output_is_valid_utf8_whatever_bytes_the_query_has(tmp_path: Path, command: bytes) -> None:
    _index_with_deletions(tmp_path / "idx")
    extra = [b"a"] if command == b"explain" else []
    args = [command, b"river\xff \xed\xa0\x80mountain", *extra, b"--json"]
    if command != b"analyze":
        args += [b"--index", str(tmp_path / "idx").encode()]
    proc = _cli_bytes(*args)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout.decode("utf-8"))  # strict: invalid UTF-8 raises
    if command == b"query":
        assert payload["query"].startswith("river\ufffd") and payload["hits"][0]["doc_id"] == "a"


@pytest.mark.parametrize("args", [["query", "river", "-k", "5"], ["stats", "--json"], ["analyze", "river pass"]])
def test_a_reader_that_went_away_ends_the_command_quietly(tmp_path: Path, args: list[str]) -> None:
    _index_with_deletions(tmp_path / "idx")
    if args[0] != "analyze":
        args = [*args, "--index", str(tmp_path / "idx")]
    read_end, write_end = os.pipe()
    os.close(read_end)  # `search query ... | head` once head has exited: every write is EPIPE
    try:
        proc = _cli_bytes(*args, stdout=write_end)
    finally:
        os.close(write_end)
    assert proc.returncode == 128 + signal.SIGPIPE and proc.stderr == b""


def test_a_folder_with_segments_but_no_meta_json_gives_one_clear_message(tmp_path: Path) -> None:
    _index_with_deletions(tmp_path / "idx")
    (tmp_path / "idx" / "meta.json").unlink()
    with pytest.raises(IndexCorrupt, match="meta.json is missing from .* which holds index files") as e:
        Index.open(tmp_path / "idx")
    assert e.value.path == str(tmp_path / "idx" / "meta.json")
    with pytest.raises(IndexCorrupt, match="which holds index files"):
        Index.create(tmp_path / "idx")
    src = tmp_path / "a.txt"
    src.write_text("river")
    for args in (["query", "river"], ["check"], ["index", src]):
        proc = _cli(*args, "--index", tmp_path / "idx")
        assert proc.returncode == 3 and proc.stderr.count("\n") == 1, proc.stderr
        assert "meta.json is missing" in proc.stderr and "not empty" not in proc.stderr


# -- a worker's failure ----------------------------------------------------------------------------------


def _full_disk_write_segment(path, data, consume=False):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


@pytest.mark.skipif(parallel.start_method() != "fork", reason="patching a worker needs fork")
def test_a_full_disk_inside_a_worker_is_one_line_naming_the_file_and_the_cause(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(parallel, "write_segment", _full_disk_write_segment)  # forked workers inherit it
    index = Index.create(tmp_path / "idx", passage_words=20)
    docs = [Document(id=f"d{i:04d}", text=f"river mountain pass number {i} " * 20) for i in range(400)]
    with pytest.raises(WorkerFailed) as e:
        with index.writer(buffer_tokens=2_000) as w:
            w.add_many(docs, workers=2)
    message = str(e.value)
    assert "\n" not in message and "No space left on device (ENOSPC)" in message
    assert re.search(r"cannot write \S*/idx/\S+\.tls: ", message), message
    assert "Traceback" in e.value.worker_traceback  # kept for --debug, out of the message
    assert len(Index.open(tmp_path / "idx")) == 0


# -- the damage sweep --------------------------------------------------------------------------------------

NIGHTLY = os.environ.get("HYPOTHESIS_PROFILE") == "nightly"


def _sweep_base(path: Path) -> Path:
    """A small two-language index with titles, metadata, several segments and a deletions file."""
    index = Index.create(path, passage_words=12)
    with index.writer() as w:
        w.add(Document(id="en-1", text="The Upper Lars checkpoint on the river pass. " * 3, title="Upper Lars"))
        w.add(Document(id="id-1", text="Warga Rusia kabur melalui jalan gunung di kota kecil itu.", lang="id"))
    with index.writer() as w:
        w.add(Document(id="id-2", text="Rumah makan yang besar di jalan kota. Rumah itu ramai.", meta={"k": [1]}))
        w.add(Document(id="gone", text="zebra bridge pasar laut"))
        # a segment over damage_sweep.SMALL bytes, so the sweep also takes random offsets of a large file
        w.add(Document(id="long", text=" ".join(f"kata{i % 700} river" for i in range(2_500)), lang="id"))
    with index.writer() as w:
        w.delete("gone")
    return path


def test_damage_sweep_gives_only_precise_errors(tmp_path: Path) -> None:
    """Every byte of each small index file (nightly; a spread slice by default), truncations, random offsets
    of large files: no traceback, no hang, no out-of-memory, every damage found by ``verify``."""
    base = _sweep_base(tmp_path / "base")
    script = Path(__file__).parent / "damage_sweep.py"
    total = int(
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys; sys.path.insert(0, {str(script.parent)!r}); import damage_sweep as d;"
                f" from pathlib import Path; print(len(d.cases(Path({str(base)!r}), 24)))",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    )
    first, last = (0, total) if NIGHTLY else (total // 2, total // 2 + 150)
    proc = subprocess.run(
        [sys.executable, str(script), str(base), str(tmp_path / "work"), str(first), str(last), "24"],
        capture_output=True,
        text=True,
        timeout=None if NIGHTLY else 600,
        cwd=ROOT,
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and not summary["failures"], proc.stdout[-4000:] + proc.stderr[-2000:]
    assert summary["cases"] == last - first and sum(summary["outcomes"].values()) == last - first


def _old_split_passages(text: str, passage_words: int) -> list[tuple[int, int]]:
    """``split_passages`` before it stopped listing every word: the reference for equality."""
    from search.documents import _BOUNDARY, _WORD, _rstrip

    def cut_long(start: int, end: int) -> list[tuple[int, int]]:
        words = list(_WORD.finditer(text, start, end))
        if len(words) <= 2 * passage_words:
            return [(start, end)]
        return [
            (words[i].start() if i else start, words[min(i + passage_words, len(words)) - 1].end())
            for i in range(0, len(words), passage_words)
        ]

    n = len(text)
    if passage_words <= 0 or n == 0 or len(text.split()) <= passage_words * 1.25:
        return [(0, n)]
    spans: list[tuple[int, int]] = []
    start = words = pos = 0
    for m in _BOUNDARY.finditer(text):
        words += len(_WORD.findall(text, pos, m.start()))
        pos = m.end()
        if words >= passage_words or ("\n" in m.group() and words >= passage_words // 2):
            spans.extend(cut_long(start, m.start()))
            start, words = m.end(), 0
    if start < n:
        tail = cut_long(start, n)
        tail_words = len(_WORD.findall(text, tail[-1][0], tail[-1][1]))
        if spans and tail_words < passage_words // 4 and len(tail) == 1:
            spans[-1] = (spans[-1][0], tail[-1][1])
        else:
            spans.extend(tail)
    return [(s, _rstrip(text, s, e)) for s, e in spans if s < e] or [(0, n)]


@given(
    st.lists(st.sampled_from(["kata", "river", ".", "!", "\n\n", " ", "a.", "b?"]), max_size=600).map(" ".join),
    st.integers(min_value=0, max_value=30),
)
def test_split_passages_without_listing_words_gives_the_same_spans(text: str, passage_words: int) -> None:
    assert documents.split_passages(text, passage_words) == _old_split_passages(text, passage_words)


def test_the_plain_window_chooser_equals_the_numpy_one_on_random_passages(monkeypatch) -> None:
    """``_best_window_few`` (few matches, plain Python) against the numpy path on 1,500 seeded random
    passages of 10-200 words with sentence stops, repeated terms and windows of 3-32 words (hypothesis's
    short lists above seldom reach the cases where the two could differ: sentence starts, ties, repeats)."""
    analyzer = analyzers.get("en")
    vocab = [*SNIPPET_VOCAB, "x", "y", "z", ".", "!", "\n", ","]
    rng = random.Random(1)
    checked = 0
    for _ in range(1500):
        text = " ".join(rng.choice(vocab) for _ in range(rng.randint(10, 200)))
        terms = rng.sample(["river", "mountain", "pass", "kota", "upper", "lars"], rng.randint(1, 3))
        matches = highlight.highlight_spans(text, analyzer, {analyzer.term(t) for t in terms})
        size = rng.randint(3, 32)
        monkeypatch.setattr(highlight, "FEW_MATCHES", -1)
        numpy_window = best_window(text, matches, size)
        monkeypatch.setattr(highlight, "FEW_MATCHES", 1 << 30)
        assert best_window(text, matches, size) == numpy_window, (text, terms, size)
        checked += len(matches) > 1
    assert checked > 1000


def test_only_a_flush_holding_a_huge_document_maps_its_arrays(tmp_path, monkeypatch) -> None:
    """A flush maps its big arrays (no heap holes under a huge document's peak) only when it holds a
    document of ``HUGE_DOCUMENT_CHARS`` or more; other flushes reuse the heap's memory."""
    import contextlib

    from search import malloc

    mapped: list[int] = []

    @contextlib.contextmanager
    def recording():
        mapped.append(1)
        yield

    monkeypatch.setattr(malloc, "large_arrays_mapped", recording)
    monkeypatch.setattr(malloc, "HUGE_DOCUMENT_CHARS", 1000)
    index = Index.create(tmp_path / "idx")
    with index.writer() as w:
        w.add(Document(id="small", text="river " * 100, lang="en"))  # 600 characters
        w.flush()
        assert mapped == []
        w.add(Document(id="huge", text="river " * 200, lang="en"))  # 1,200 characters
        w.flush()
        assert mapped == [1]
    assert {h.doc_id for h in index.search("river", k=5)} == {"small", "huge"}
