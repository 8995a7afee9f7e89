"""Tests for the ``search`` command through typer's CliRunner: every command, the default seeds index
built in a temporary cache, incremental rebuilds that equal fresh builds, byte-identical builds from
different working directories, and a table of bad inputs (documented exit code, one ``error:`` line on
stderr, never a traceback)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import search
from cli.app import app
from cli.default_index import default_index_path, seeds_dir
from search import Index

UPPER_LARS = "002_8eb0183dd21bba0b.txt"  # the English seed with the Upper Lars border crossing
HIT_KEYS = {
    "rank",
    "doc_id",
    "passage",
    "score",
    "lang",
    "title",
    "text",
    "snippet",
    "snippet_highlights",
    "highlights",
    "meta",
}
QUERIES = ["Upper Lars", "Rusia", "border Georgia", '"mobilisasi parsial"', "Putin -Georgia", "warga OR citizens"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One temporary HOME per module, so the seeds index is built once, in a temporary cache."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(autouse=True)
def cli_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    for var in ("SEARCH_INDEX", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(var, raising=False)


def run(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def ok(*args: object) -> Result:
    result = run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def make_corpus(root: Path) -> Path:
    """A folder of every supported kind: the three seeds (one in a subfolder), Markdown and JSONL."""
    seeds = sorted(seeds_dir().glob("*.txt"))
    (root / "news").mkdir(parents=True)
    shutil.copy(seeds[0], root / seeds[0].name)
    shutil.copy(seeds[1], root / "news" / seeds[1].name)
    shutil.copy(seeds[2], root / seeds[2].name)
    (root / "notes.md").write_text(
        "# Border notes\n\nQueues at the Upper Lars crossing grew for days; Georgia kept the border open.\n",
        encoding="utf-8",
    )
    lines = [
        {"id": "j-1", "text": "Warga Rusia melarikan diri ke Georgia setelah mobilisasi parsial.", "lang": "id"},
        {"id": "j-2", "text": "Citizens fled to Kazakhstan and Finland.", "title": "Exodus", "meta": {"n": 2}},
    ]
    (root / "extra.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    (root / "ignored.csv").write_text("not,indexed\n", encoding="utf-8")
    return root


def results(index: Path, queries: list[str] = QUERIES) -> list[list[tuple[str, int, float, str]]]:
    """Every passage each query finds (via ``search query --json``): doc id, passage, score, text."""
    out = []
    for q in queries:
        payload = json.loads(ok("query", q, "--index", index, "--all-passages", "-k", 1000, "--json").stdout)
        out.append([(h["doc_id"], h["passage"], h["score"], h["text"]) for h in payload["hits"]])
    return out


def tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# -- query and the default seeds index --------------------------------------------------------------------


def test_query_upper_lars_plain() -> None:
    result = ok("query", "Upper Lars")
    first = result.stdout.splitlines()[0]
    assert first.startswith("1. ") and UPPER_LARS in first
    assert "**Upper** **Lars**" in result.stdout
    assert "\x1b[" not in result.stdout  # not a terminal: no escape codes


def test_query_upper_lars_json() -> None:
    payload = json.loads(ok("query", "Upper Lars", "--json").stdout)
    assert set(payload) == {"query", "hits"} and payload["query"] == "Upper Lars"
    assert payload["hits"], "no hits for Upper Lars"
    for rank, hit in enumerate(payload["hits"], start=1):
        assert set(hit) == HIT_KEYS and hit["rank"] == rank
    first = payload["hits"][0]
    assert first["doc_id"] == UPPER_LARS and first["lang"] == "en"
    assert [first["text"][s:e] for s, e in first["highlights"]] == ["Upper", "Lars"]
    assert [first["snippet"][s:e] for s, e in first["snippet_highlights"]] == ["Upper", "Lars"]


def test_terminal_output_is_styled_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats stdout as a terminal
    styled = ok("query", "Upper Lars").stdout
    assert "\x1b[" in styled and "**Upper**" not in styled
    monkeypatch.setenv("NO_COLOR", "1")
    assert "**Upper** **Lars**" in ok("query", "Upper Lars").stdout


def test_default_index_is_built_in_the_cache_once(home: Path) -> None:
    path = default_index_path()
    assert path.is_relative_to(home / ".cache")  # never inside the installed package
    ok("stats")
    stamp = (path / "meta.json").stat().st_mtime_ns
    ok("query", "Rusia")
    assert (path / "meta.json").stat().st_mtime_ns == stamp  # opened, not rebuilt
    assert sorted(p.name for p in seeds_dir().iterdir()) == sorted(p.name for p in seeds_dir().glob("*.txt"))


def test_query_options() -> None:
    every = json.loads(ok("query", "Rusia", "-k", 100, "--json").stdout)["hits"]
    assert len({h["doc_id"] for h in every}) == len(every)  # one passage per document by default
    page = json.loads(ok("query", "Rusia", "-k", 1, "--offset", 1, "--json").stdout)["hits"]
    assert [(h["rank"], h["doc_id"]) for h in page] == [(2, every[1]["doc_id"])]
    passages = json.loads(ok("query", "Rusia", "-k", 100, "--all-passages", "--json").stdout)["hits"]
    assert len(passages) > len(every)
    only_id = json.loads(ok("query", "Rusia", "--lang", "id", "--json").stdout)["hits"]
    assert only_id and {h["lang"] for h in only_id} == {"id"}


def test_query_without_hits_is_success() -> None:
    result = ok("query", "zzzqqqxxy")
    assert "No results" in result.stdout
    assert json.loads(ok("query", "zzzqqqxxy", "--json").stdout) == {"query": "zzzqqqxxy", "hits": []}


def test_search_index_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Kapibara berenang di sungai.", encoding="utf-8")
    monkeypatch.setenv("SEARCH_INDEX", str(tmp_path / "idx"))
    ok("index", docs)  # a writing command takes the index from SEARCH_INDEX
    hits = json.loads(ok("query", "kapibara", "--json").stdout)["hits"]
    assert [h["doc_id"] for h in hits] == ["a.txt"]


# -- index: sources, incremental updates, --check, determinism ----------------------------------------------


def test_index_reads_every_kind_of_source(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs")
    idx = tmp_path / "idx"
    result = ok("index", docs, "--index", idx)
    assert "6 new" in result.stderr and result.stdout == ""
    index = Index.open(idx)
    ids = set(index.content_hashes())
    # ids are paths relative to the folder given, with "/"; a JSONL line's id is its "id"
    assert ids == {"000_7e2a46c1dcea32a3.txt", "news/001_e934bd5ecad36a00.txt", UPPER_LARS, "notes.md", "j-1", "j-2"}
    assert index.get("notes.md").title == "Border notes"
    assert index.get("j-1").lang == "id" and index.get("j-2").meta == {"n": 2}
    assert index.get("j-2").title == "Exodus"
    assert "ignored.csv" not in ids


def test_incremental_update_equals_fresh_build(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs")
    inc, fresh = tmp_path / "inc", tmp_path / "fresh"
    ok("index", docs, "--index", inc, "--passage-words", 40)
    assert ok("index", docs, "--index", inc, "--check").stderr.startswith("fresh:")

    # one changed file, one deleted file, one new file; the rest unchanged
    changed = docs / UPPER_LARS
    changed.write_text(changed.read_text(encoding="utf-8") + "\nThe queue at Upper Lars was 20 km long.\n", "utf-8")
    (docs / "news" / "001_e934bd5ecad36a00.txt").unlink()
    (docs / "new.txt").write_text("Finland closed its border to Russian tourists.", encoding="utf-8")
    meta_before = (inc / "meta.json").read_bytes()
    stale = run("index", docs, "--index", inc, "--check")
    assert stale.exit_code == 1 and "stale: 1 new, 1 changed, 1 removed" in stale.stderr
    assert (inc / "meta.json").read_bytes() == meta_before  # --check changes nothing

    update = ok("index", docs, "--index", inc)
    assert "1 new, 1 changed, 1 removed, 4 unchanged" in update.stderr
    assert ok("index", docs, "--index", inc, "--check").stderr.startswith("fresh:")
    assert "0 new, 0 changed, 0 removed, 6 unchanged" in ok("index", docs, "--index", inc).stderr

    ok("index", docs, "--index", fresh, "--passage-words", 40)
    assert Index.open(inc).content_hashes() == Index.open(fresh).content_hashes()
    got, want = results(inc), results(fresh)
    assert any(got) and got == want


def test_check_on_a_missing_index_is_stale(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs")
    result = run("index", docs, "--index", tmp_path / "never-built", "--check")
    assert result.exit_code == 1 and result.stderr.startswith("stale:")
    assert not (tmp_path / "never-built").exists()


def test_builds_from_different_working_directories_are_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_corpus(tmp_path / "docs")
    monkeypatch.chdir(tmp_path)
    ok("index", "docs", "--index", "one")
    monkeypatch.chdir(tmp_path / "docs" / "news")
    ok("index", "..", "--index", tmp_path / "two")
    one, two = tree(tmp_path / "one"), tree(tmp_path / "two")
    assert one.keys() == two.keys() and len(one) > 1
    for name in one:
        assert one[name] == two[name], f"{name} differs between the two builds"


def test_glob_selects_files(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs")
    ok("index", docs, "--index", tmp_path / "idx", "--glob", "*.md")
    assert set(Index.open(tmp_path / "idx").content_hashes()) == {"notes.md"}


def test_an_index_inside_the_source_folder_is_not_indexed(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs")
    ok("index", docs, "--index", docs / ".idx", "--glob", "*")  # "*" would otherwise read the index files
    ok("index", docs, "--index", docs / ".idx", "--glob", "*", "--check")
    assert not any(i.startswith(".idx") for i in Index.open(docs / ".idx").content_hashes())


# -- delete, stats, analyze, explain, check, --version -------------------------------------------------------


def test_delete(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs")
    idx = tmp_path / "idx"
    ok("index", docs, "--index", idx)
    result = ok("delete", "notes.md", "no-such-id", "--index", idx)
    assert "deleted 1 document(s)" in result.stderr and "not in the index: no-such-id" in result.stderr
    hits = json.loads(ok("query", "queues", "--index", idx, "--json").stdout)["hits"]
    assert "notes.md" not in {h["doc_id"] for h in hits}
    assert "notes.md" not in Index.open(idx)
    stale = run("index", docs, "--index", idx, "--check")  # the file is still in the sources
    assert stale.exit_code == 1 and "1 new" in stale.stderr


def test_stats() -> None:
    data = json.loads(ok("stats", "--json").stdout)
    assert data["documents"] == 3 and data["segments"] >= 1
    assert set(data["languages"]) == {"en", "id"}
    assert data["passages"] == sum(v["passages"] for v in data["languages"].values())
    plain = ok("stats").stdout
    assert "documents  3" in plain and "passage_words=120" in plain


def test_analyze_indonesian() -> None:
    result = ok("analyze", "Warga Rusia melarikan diri", "--lang", "id")
    rows = [line.replace("│", " ").split() for line in result.stdout.splitlines()]
    assert ["warga", "0", "0", "5"] in rows
    assert ["rusia", "1", "6", "11"] in rows
    assert ["lari", "2", "12", "21"] in rows  # melarikan -> lari, offsets still cover the whole word


def test_analyze_json_offsets_point_into_the_text() -> None:
    text = "Warga Rusia melarikan diri"
    payload = json.loads(ok("analyze", text, "--json").stdout)
    assert payload["lang"] == "id"
    assert [text[t["start"] : t["end"]] for t in payload["tokens"]][:3] == ["Warga", "Rusia", "melarikan"]
    assert [t["position"] for t in payload["tokens"]] == sorted(t["position"] for t in payload["tokens"])


def test_explain_matches_the_query_score() -> None:
    first = json.loads(ok("query", "Upper Lars", "--json").stdout)["hits"][0]
    tree_ = json.loads(ok("explain", "Upper Lars", first["doc_id"], "-p", first["passage"], "--json").stdout)
    assert tree_["value"] == pytest.approx(first["score"], rel=1e-9)
    text = ok("explain", "Upper Lars", first["doc_id"], "--passage", first["passage"]).stdout
    assert "idf" in text and "weight(upper [en])" in text


def test_check_passes_on_a_good_index() -> None:
    result = ok("check")
    assert result.stderr.startswith("ok:") and "3 documents" in result.stderr


def test_version_and_help() -> None:
    assert ok("--version").stdout.strip() == f"telusur {search.__version__}"
    assert "query" in run().stdout  # no arguments: the help


# -- bad inputs: documented exit code, one short "error:" line, no traceback ---------------------------------


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _small_index(tmp: Path) -> Path:
    _write(tmp / "src" / "a.txt", b"Kapibara berenang di sungai yang tenang.")
    ok("index", tmp / "src", "--index", tmp / "idx")
    return tmp / "idx"


def _flip_largest(tmp: Path) -> Path:
    """Flip one byte in the middle of the index's largest file; return that file."""
    idx = _small_index(tmp)
    largest = max((p for p in idx.iterdir() if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(largest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    largest.write_bytes(bytes(data))
    return largest


def _locked(tmp: Path, stack: ExitStack) -> Path:
    idx = _small_index(tmp)
    stack.enter_context(Index.open(idx).writer())
    return idx


Setup = Callable[[Path, ExitStack], list[object]]
BAD_INPUTS: list[tuple[str, Setup, int, str]] = [
    ("missing path", lambda t, s: ["index", t / "nope", "--index", t / "idx"], 2, "no such file"),
    ("empty folder", lambda t, s: ["index", _write(t / "e" / "x", b"").parent, "--index", t / "idx"], 2, "no .txt"),
    ("binary file", lambda t, s: ["index", _write(t / "b.txt", b"PK\x00\x01\x02"), "--index", t / "idx"], 2, "binary"),
    ("invalid UTF-8", lambda t, s: ["index", _write(t / "u.md", b"caf\xe9 \xff"), "--index", t / "idx"], 2, "UTF-8"),
    (
        "malformed JSONL line",
        lambda t, s: ["index", _write(t / "d.jsonl", b'{"id": "a", "text": "x"}\n\n{"id": "b",\n'), "--index", t / "i"],
        2,
        "d.jsonl:3:",
    ),
    (
        "JSONL line without text",
        lambda t, s: ["index", _write(t / "d.jsonl", b'{"id": "a", "text": "x"}\n{"id": "b"}\n'), "--index", t / "i"],
        2,
        "d.jsonl:2:",
    ),
    (
        "duplicate document id",
        lambda t, s: ["index", _write(t / "d.jsonl", b'{"id":"a","text":"x"}\n{"id":"a","text":"y"}\n'), "-i", t / "i"],
        2,
        "appears twice",
    ),
    ("a file as --index", lambda t, s: ["index", _write(t / "a.txt", b"hi"), "--index", t / "a.txt"], 2, "a file"),
    ("a file as --index (query)", lambda t, s: ["query", "x", "--index", _write(t / "f", b"hi")], 2, "is a file"),
    ("no --index for index", lambda t, s: ["index", _write(t / "a.txt", b"hi")], 2, "--index"),
    ("no --index for delete", lambda t, s: ["delete", "a.txt"], 2, "--index"),
    ("nonexistent --index (query)", lambda t, s: ["query", "x", "--index", t / "nope"], 2, "does not exist"),
    ("not an index (stats)", lambda t, s: ["stats", "--index", t], 2, "not a telusur index"),
    ("locked index (index)", lambda t, s: ["index", t / "src", "--index", _locked(t, s)], 2, "locked"),
    ("locked index (delete)", lambda t, s: ["delete", "a.txt", "--index", _locked(t, s)], 2, "locked"),
    ("unbalanced quote", lambda t, s: ["query", '"Upper Lars'], 2, "quote"),
    ("unknown --lang (query)", lambda t, s: ["query", "Rusia", "--lang", "fr"], 2, "'fr'"),
    ("unknown --lang (analyze)", lambda t, s: ["analyze", "Rusia", "--lang", "xx"], 2, "'xx'"),
    ("unknown --lang (index)", lambda t, s: ["index", _write(t / "a.txt", b"hi"), "-i", t / "i", "-l", "de"], 2, "de"),
    ("explain an unknown id", lambda t, s: ["explain", "Rusia", "nope.txt"], 2, "no document 'nope.txt'"),
    ("explain a passage out of range", lambda t, s: ["explain", "Rusia", UPPER_LARS, "-p", 999], 2, "passages 0.."),
    (
        "another --passage-words",
        lambda t, s: ["index", t / "src", "--index", _small_index(t), "--passage-words", 7],
        2,
        "--passage-words 120",
    ),
    ("check a damaged index", lambda t, s: ["check", "--index", _flip_largest(t).parent], 3, "seg"),
    (
        "damaged meta.json",
        lambda t, s: ["stats", "-i", _write(_small_index(t) / "meta.json", b"{}x").parent],
        3,
        "meta",
    ),
]


@pytest.mark.parametrize(("setup", "code", "needle"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input(tmp_path: Path, setup: Setup, code: int, needle: str) -> None:
    with ExitStack() as stack:
        args = setup(tmp_path, stack)
        result = run(*args)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0] and len(lines[0]) < 300
    assert result.stdout == ""


def test_a_damaged_file_is_named(tmp_path: Path) -> None:
    damaged = _flip_largest(tmp_path)
    result = run("check", "--index", damaged.parent)
    assert result.exit_code == 3 and damaged.name in result.stderr


def test_bad_source_changes_nothing(tmp_path: Path) -> None:
    idx = _small_index(tmp_path)
    before = tree(idx)
    _write(tmp_path / "src" / "b.txt", b"\xff\xfe broken")
    result = run("index", tmp_path / "src", "--index", idx)
    assert result.exit_code == 2 and "b.txt" in result.stderr
    assert tree(idx) == before


# -- the README stays true -----------------------------------------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_test_command_is_what_ci_runs() -> None:
    commands = re.search(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1).splitlines()
    assert len(commands) == 2 and commands[0].endswith('search query "Upper Lars"')
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci == commands[1]


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    code = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "ge-7 0" in out and "['Upper', 'Lars']" in out and "idf" in out
