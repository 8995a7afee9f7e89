"""The command line's contracts: what a usage mistake, a failing machine and a bug look like (exit codes
2 and 4, one ``error:`` line, ``--debug`` for the traceback), queries that start with ``-``, and flags
shown as flags in ``--help``."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import search
from cli.app import app
from cli.command import split_arguments


@pytest.fixture(autouse=True)
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.getbasetemp() / "contracts-home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    for var in ("SEARCH_INDEX", "NO_COLOR", "FORCE_COLOR", "COLUMNS"):
        monkeypatch.delenv(var, raising=False)


def run(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result: Result, code: int) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and "╭" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    (src / "a.txt").write_text("Pendidikan kedinasan untuk pegawai pajak negara.", encoding="utf-8")
    (src / "b.txt").write_text("Pendidikan umum di sekolah negeri.", encoding="utf-8")
    (src / "c.txt").write_text("Laporan pajak tahunan wajib diserahkan sebelum Maret.", encoding="utf-8")
    idx = tmp_path_factory.mktemp("idx") / "idx"
    result = CliRunner().invoke(app, ["index", str(src), "--index", str(idx)])
    assert result.exit_code == 0, result.stderr
    return idx


# -- usage mistakes: one line with the --help hint, exit 2 ---------------------------------------------------

USAGE = [
    (["query", "pajak", "-k", "-1"], "'-k': -1 is out of range (0 to 10000)"),
    (["query", "pajak", "-k", "x"], "'x' is not a whole number"),
    (["query", "pajak", "--offset", "-3"], "-3 is out of range (at least 0)"),
    (["query", "pajak", "--jsno"], "no such option: --jsno"),
    (["query"], "missing argument"),
    (["index", "docs", "-i", "x", "--wait", "nan"], "'nan' is not a finite number"),
    (["eval", "d", "--b", "2"], "2 is out of range (0.0 to 1.0)"),
    (["stats", "extra"], "unexpected extra argument"),
    (["nope"], "no such command"),
]


@pytest.mark.parametrize(("args", "needle"), USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_usage_mistake_is_one_line_with_the_help_hint(args: list[str], needle: str) -> None:
    line = one_error_line(run(*args), 2)
    assert needle in line.lower()
    assert line.endswith("--help)") and "(see: search" in line


def test_help_shows_flags_as_flags() -> None:
    result = run("query", "--help")
    assert result.exit_code == 0
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│ --")}
    for flag in ("--json", "--all-passages", "--help"):
        assert "<bool>" not in rows[flag], rows[flag]
    assert "<int range>" in rows["--offset"]  # an option with a value still shows its type


# -- queries that start with "-" -------------------------------------------------------------------------------


def query_ids(index_dir: Path, *args: str) -> list[str]:
    result = run("query", "--index", index_dir, "--json", *args)
    assert result.exit_code == 0, (result.stderr, result.exception)
    import json

    return [h["doc_id"] for h in json.loads(result.stdout)["hits"]]


def test_a_query_may_start_with_a_minus(index_dir: Path) -> None:
    assert query_ids(index_dir, "-kedinasan pendidikan") == ["b.txt"]
    assert query_ids(index_dir, "-kedinasan", "pendidikan") == ["b.txt"]  # words after the options join
    assert query_ids(index_dir, "pendidikan", "-kedinasan") == ["b.txt"]
    assert query_ids(index_dir, "-k", "5", "-kedinasan pendidikan") == ["b.txt"]  # -k is still an option
    assert len(query_ids(index_dir, "pajak")) == 2 and len(query_ids(index_dir, "-k1", "pajak")) == 1  # -k1 is -k 1
    assert query_ids(index_dir, "--", "-k") == []  # after "--" even an option name is text
    result = run("query", "-pajak", "--index", index_dir)
    assert result.exit_code == 0 and "No results for '-pajak'" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-pajak"], ["--", "-pajak"]),
        (["pajak", "-k", "3"], ["-k", "3", "--", "pajak"]),
        (["-k", "3", "-kedinasan", "x"], ["-k", "3", "--", "-kedinasan", "x"]),
        (["-k3", "--json", "a"], ["-k3", "--json", "--", "a"]),
        (["--offset=2", "a", "--", "-k"], ["--offset=2", "--", "a", "-k"]),
        (["a", "--typo"], ["--typo", "--", "a"]),
        (["--json"], ["--json"]),
    ],
)
def test_split_arguments(args: list[str], expected: list[str]) -> None:
    assert split_arguments(args, {"-k": True, "--offset": True, "--json": False}) == expected


# -- failures of the machine or of telusur: exit 4, one line; --debug adds the traceback --------------------


def _raise(exc: BaseException):
    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    return fail


def test_an_io_error_exits_4_in_one_line(index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search.Index, "search", _raise(OSError(errno.EIO, "Input/output error", "seg-1.tseg")))
    line = one_error_line(run("query", "pajak", "--index", index_dir), 4)
    assert "seg-1.tseg: Input/output error" in line and "--debug" in line


def test_a_full_disk_while_indexing_exits_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.txt").write_text("Kapibara berenang.", encoding="utf-8")
    monkeypatch.setattr(search.IndexWriter, "commit", _raise(OSError(errno.ENOSPC, "No space left on device")))
    line = one_error_line(run("index", tmp_path / "a.txt", "--index", tmp_path / "idx"), 4)
    assert "No space left on device" in line


def test_a_permission_problem_is_the_users(index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search.Index, "search", _raise(PermissionError(errno.EACCES, "Permission denied", "/x")))
    assert "/x: Permission denied" in one_error_line(run("query", "pajak", "--index", index_dir), 2)


def test_a_bug_exits_4_and_debug_shows_the_traceback(index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search.Index, "search", _raise(ZeroDivisionError("division by zero")))
    line = one_error_line(run("query", "pajak", "--index", index_dir), 4)
    assert "ZeroDivisionError: division by zero" in line and "bug" in line
    for args in (["--debug", "query", "pajak"], ["query", "pajak", "--debug"]):
        result = run(*args, "--index", index_dir)
        assert result.exit_code == 4
        assert "Traceback (most recent call last)" in result.stderr and "ZeroDivisionError" in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error: telusur failed: ZeroDivisionError")


def test_debug_is_no_query_word(index_dir: Path) -> None:
    assert query_ids(index_dir, "pajak", "--debug") == query_ids(index_dir, "pajak")


# -- the library raises SearchError on purpose ---------------------------------------------------------------


def test_library_errors_are_search_errors(index_dir: Path, tmp_path: Path) -> None:
    idx = search.Index.open(index_dir)
    with pytest.raises(search.DocumentNotFound) as e:
        idx.explain("pajak", "nope.txt")
    assert isinstance(e.value, KeyError) and str(e.value) == "no document 'nope.txt' in the index"
    with pytest.raises(search.DocumentNotFound):
        idx.explain("pajak", "a.txt", passage=7)
    with pytest.raises(search.InvalidArgument) as bad:
        search.Index.create(tmp_path / "new", b=2.0)
    assert isinstance(bad.value, ValueError) and not (tmp_path / "new").exists()
    with pytest.raises(search.InvalidArgument):
        idx.search(42)  # type: ignore[arg-type]
    with pytest.raises(search.InvalidArgument):
        idx.search("pajak", lang="fr")


# -- a re-index that changes nothing changes no byte ---------------------------------------------------------


def _tree(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file() and p.name != "write.lock"}


def test_a_no_op_reindex_changes_no_byte(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.txt").write_text(f"Dokumen nomor {i} tentang pajak dan pendidikan.", encoding="utf-8")
    idx = tmp_path / "idx"
    assert run("index", src, "--index", idx).exit_code == 0
    before, generation = _tree(idx), search.Index.open(idx).stats()["generation"]
    result = run("index", src, "--index", idx)
    assert result.exit_code == 0 and "0 new, 0 changed, 0 removed, 3 unchanged" in result.stderr
    assert _tree(idx) == before and search.Index.open(idx).stats()["generation"] == generation
    assert run("index", src, "--index", idx, "--check").exit_code == 0
    (src / "1.txt").unlink()  # a real change still commits
    assert run("index", src, "--index", idx).exit_code == 0
    # one commit, and maybe one more: the merge policy rewrites a segment that lost a third of its documents
    assert search.Index.open(idx).stats()["generation"] > generation and len(search.Index.open(idx)) == 2


def test_an_empty_writer_session_commits_nothing(tmp_path: Path) -> None:
    index = search.Index.create(tmp_path / "idx")
    with index.writer() as w:
        w.add(search.Document(id="a", text="satu dua tiga"))
    before = _tree(tmp_path / "idx")
    with index.writer() as w:
        assert not w.delete("not-there")
    with index.writer() as w:
        w.commit()
    assert _tree(tmp_path / "idx") == before and index.stats()["generation"] == 1
