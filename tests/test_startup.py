"""What keeps ``search query`` fast to start, tested for staying correct: the stored combining-marks
tables, the one-class token pattern, the compact language model (py3langid's scores, exactly), the fast
query path (same output as typer's), and the imports a query does not make."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import analyzers.language as language
from analyzers import base, marks
from cli import arguments
from cli.app import app
from cli.main import main as fast_main

ROOT = Path(__file__).resolve().parents[1]


# -- the combining-marks table and the token pattern ---------------------------------------------------------


def test_stored_marks_table_is_this_pythons() -> None:
    import unicodedata

    assert unicodedata.unidata_version in marks.MARK_CLASSES, "add this Unicode version's table"
    assert marks.MARK_CLASSES[unicodedata.unidata_version] == marks.mark_class_for_this_python()
    assert base._MARKS == marks.mark_class_for_this_python()


def test_an_unknown_unicode_version_computes_its_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(marks, "MARK_CLASSES", {})
    assert marks.mark_class() == marks.mark_class_for_this_python()


_M = base._MARKS
_OLD_WORD = rf"[^\W_]+(?:[{_M}]+[^\W_]+)*[{_M}]*"
_OLD_ATOM = rf"\d+(?:[.,]\d+)+|{_OLD_WORD}(?:['\u2019]{_OLD_WORD})*"
_OLD_TOKEN_RE = re.compile(rf"(?:{_OLD_ATOM})(?:-(?:{_OLD_ATOM}))*")
_PIECES = st.sampled_from(["a", "Z", "5", "_", "-", "'", "\u2019", ".", ",", " ", "\u0301", "\u093e", "क", "é", "ß"])


@settings(max_examples=400)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_token_pattern_matches_as_the_two_class_form(text: str) -> None:
    assert [m.span() for m in base.TOKEN_RE.finditer(text)] == [m.span() for m in _OLD_TOKEN_RE.finditer(text)]


# -- the compact language model ------------------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(language, "_model", None)
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def full_model():
    return language._full_model()


TEXTS = [
    "Upper Lars",
    "pajak penghasilan",
    "Putin",
    "the border crossing",
    "kedinasan",
    "ÀÉÎ İstanbul",
    "",
    "12345",
    "HELLO WORLD",
    "warga rusia melarikan diri ke georgia",
    "x" * 300,
    "\ud800 lone surrogate",
    "mobilisasi parsial",
]


def test_compact_model_gives_py3langids_probabilities(cache: Path, full_model) -> None:
    model = language._ngram_model()
    assert isinstance(model, language.CompactNgramModel)
    folder = language.compact_model_dir()
    assert folder is not None and folder.is_relative_to(cache) and (folder / "nextmove.npy").is_file()
    for text in TEXTS:
        ours, theirs = dict(model.rank(text)), dict(full_model.rank(text))
        assert ours.keys() == theirs.keys() == {"id", "en"}
        assert all(abs(ours[k] - theirs[k]) < 1e-6 for k in ours), (text, ours, theirs)
    language._model = None
    assert isinstance(language._ngram_model(), language.CompactNgramModel)  # read back, not rebuilt


@pytest.fixture(scope="module")
def compact_folder(full_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("langid") / "model"
    language.write_compact_model(full_model, folder)
    return folder


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_compact_model_on_any_text(full_model, compact_folder: Path, text: str) -> None:
    ours, theirs = dict(language.CompactNgramModel(compact_folder).rank(text)), dict(full_model.rank(text))
    assert all(abs(ours[k] - theirs[k]) < 1e-6 for k in ours), (text, ours, theirs)


def test_a_damaged_compact_model_is_rebuilt(cache: Path) -> None:
    language._ngram_model()
    folder = language.compact_model_dir()
    (folder / "ptc.npy").write_bytes(b"not numpy")
    language._model = None
    model = language._ngram_model()
    assert isinstance(model, language.CompactNgramModel) and model.ptc.shape[1] == 2


def test_an_unwritable_cache_falls_back_to_the_full_model(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache.mkdir(parents=True)
    (cache / "telusur").write_text("a file where the cache folder should be")
    assert language.detect_language("Putin")[0] in ("id", "en")
    assert not isinstance(language._model, language.CompactNgramModel)


# -- the fast query path -------------------------------------------------------------------------------------


@pytest.fixture
def seeds_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.getbasetemp() / "startup-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    for var in ("SEARCH_INDEX", "NO_COLOR", "FORCE_COLOR", "COLUMNS"):
        monkeypatch.delenv(var, raising=False)


ARGS = [
    ["Upper", "Lars"],
    ["Upper Lars", "--json"],
    ["-k", "2", "Rusia", "--all-passages"],
    ["-k2", "--offset=1", "warga"],
    ["-Georgia", "warga", "-l", "id"],
    ["Putin", "--json", "--debug"],
    ['"Upper Lars'],
    ["Rusia", "--lang", "fr"],
    ["zzzyzx"],
]


@pytest.mark.parametrize("args", ARGS, ids=[" ".join(a) for a in ARGS])
def test_fast_path_prints_what_typer_prints(
    seeds_env: None, args: list[str], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert arguments.parse_query(args) is not None, "this case should take the fast path"
    with pytest.raises(SystemExit) as fast_exit:
        fast_main(["query", *args])
    fast = capsys.readouterr()
    slow = CliRunner().invoke(app, ["query", *args])
    assert (fast_exit.value.code or 0) == slow.exit_code
    assert fast.out == slow.stdout and fast.err == slow.stderr


@pytest.mark.parametrize(
    "args", [["--help"], ["x", "-k", "-1"], ["x", "--jsno"], [], ["x", "-k"], ["x", "--json=1"], ["--", "-k"]]
)
def test_fast_path_leaves_help_and_mistakes_to_typer(args: list[str]) -> None:
    parsed = arguments.parse_query(args)
    assert parsed is None or args == ["--", "-k"] and parsed[0] == ["-k"]


def test_fast_options_are_the_typer_commands() -> None:
    import typer.main

    command = typer.main.get_command(app).commands["query"]
    declared = {}
    for p in command.params:
        for name in getattr(p, "opts", []):
            if name.startswith("-"):
                info = p.type_descriptor.parameter_info
                kind = None if p.is_flag else p.type_descriptor.annotation
                declared[name] = (p.name, kind, info.min, info.max)
    assert declared == arguments.QUERY_OPTIONS


# -- what a query does not import ----------------------------------------------------------------------------


def test_a_query_imports_no_typer_rich_pydantic_or_full_language_model(tmp_path: Path) -> None:
    """Nor rapidfuzz: "did you mean" walks the word lexicons only for a word the index does not know, or
    a rare one when nothing matched ("Upper Lars" finds its passage with rare words the seeds know)."""
    script = (
        "import sys\n"
        "from cli.main import main\n"
        "try:\n    main(['query', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if '.' not in m)), file=sys.stderr)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    for n, query in enumerate(("Putin", "Putin", "Upper Lars")):
        done = subprocess.run(
            [sys.executable, "-c", script, query], env=env, capture_output=True, text=True, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr
        if n == 0:  # the first run builds the seeds index and the compact language model
            continue
        loaded = set(done.stderr.split())
        assert {"search", "numpy", "analyzers"} <= loaded
        forbidden = {"typer", "rich", "pydantic", "py3langid", "multiprocessing", "fastapi", "rapidfuzz"}
        assert not loaded & forbidden, (query, loaded & forbidden)
