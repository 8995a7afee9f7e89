"""The ``search index`` progress bar counts documents indexed, not handed out (issue #15): the library
reports documents as they are analyzed (in this process, or by a worker when it reports a batch done),
through ``add_many(progress=...)``, for one index and for a sharded one; the CLI shows a reading phase
by bytes, then an indexing phase by documents, then the commit."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app as cli_app
from cli import output
from search import Document, Index, ShardedIndex

DOCS = 300


def _docs(record: list[int], handed: list[int], calls: list[int]):
    for i in range(DOCS):
        handed[0] += 1
        yield Document(id=f"d{i:04d}", text=f"river mountain pass kota {i} " * 40, lang="en")
    record.append(sum(calls))  # what the bar showed once the last document was handed out


@pytest.mark.parametrize("workers", [1, 2])
def test_add_many_reports_documents_as_they_are_indexed(tmp_path: Path, workers: int) -> None:
    index = Index.create(tmp_path / "idx")
    calls: list[int] = []
    at_end: list[int] = []
    handed = [0]

    def progress(n: int) -> None:
        assert n > 0 and sum(calls) + n <= handed[0]  # never ahead of the documents handed in
        calls.append(n)

    with index.writer(buffer_tokens=16_000) as w:  # batches (1/32 of it) of a few documents each
        assert w.add_many(_docs(at_end, handed, calls), workers=workers, progress=progress) == DOCS
    assert sum(calls) == DOCS and len(index) == DOCS
    if workers == 1:
        assert calls == [1] * DOCS
    else:  # one report per batch from the workers; the last batches were still being analyzed when
        # the input ran out (counting documents handed out showed 100% at that moment)
        assert 1 < len(calls) < DOCS and at_end[0] < DOCS


def test_sharded_add_many_reports_every_shard(tmp_path: Path) -> None:
    index = ShardedIndex.create(tmp_path / "idx", shards=3)
    calls: list[int] = []
    with index.writer() as w:
        assert w.add_many(_docs([], [0], calls), workers=2, progress=calls.append) == DOCS
    assert sum(calls) == DOCS and len(ShardedIndex.open(tmp_path / "idx")) == DOCS


def test_index_command_shows_reading_then_indexing_then_commit(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(250):
        (src / f"n{i:03d}.txt").write_text(f"river mountain {i}. Warga kota makan di rumah.", encoding="utf-8")
    screen = io.StringIO()

    def console():
        from rich.console import Console

        return Console(file=screen, force_terminal=True, width=150, color_system=None)

    phases: list[tuple[str, int, int]] = []
    from rich.progress import Progress

    def watched(method):
        def call(self, task, *args, **kw):  # every change of the bar: (phase, completed, total)
            method(self, task, *args, **kw)
            t = self.tasks[0]
            phases.append((str(t.description), int(t.completed), int(t.total or 0)))

        return call

    monkeypatch.setattr(Progress, "update", watched(Progress.update))
    monkeypatch.setattr(Progress, "advance", watched(Progress.advance))
    monkeypatch.setattr(output, "is_tty", lambda: True)
    monkeypatch.setattr(output, "error_console", console)
    monkeypatch.setattr(cli_app._progress, "MINIMUM", {"docs": 200, "bytes": 1})
    result = CliRunner().invoke(cli_app.app, ["index", str(src), "--index", str(tmp_path / "idx")])
    assert result.exit_code == 0, result.output
    names = [p for p, _, _ in phases]
    assert names[0] == "reading" and "indexing" in names and names[-1] == "committing"
    reading = [(c, t) for p, c, t in phases if p == "reading"]
    assert reading[-1][0] == reading[-1][1] == sum(f.stat().st_size for f in src.iterdir())
    indexing = [c for p, c, _ in phases if p == "indexing"]
    assert indexing == sorted(indexing) and indexing[-1] == 250  # counted up to every document indexed
    assert "docs/s" in screen.getvalue()


def test_reading_one_big_jsonl_file_moves_the_bar_before_its_end(tmp_path: Path, monkeypatch) -> None:
    """The reading phase counts a file's bytes as its documents are read (roughly, by their text), so a
    single large JSONL source does not sit at 0% until it is read through; it ends at the file's size."""
    import json

    src = tmp_path / "big.jsonl"
    with src.open("w", encoding="utf-8") as f:
        for i in range(300):
            f.write(json.dumps({"id": f"d{i}", "text": f"river mountain {i} " * 20, "lang": "en"}) + "\n")
    moves: list[int] = []

    class Bar:
        def __init__(self, total, label, unit="docs"):
            self.total, self.label = total, label

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def advance(self, n=1):
            if self.label == "reading":
                moves.append(n)

        def phase(self, label):
            pass

    monkeypatch.setattr(cli_app, "_progress", Bar)
    monkeypatch.setattr(cli_app, "READ_STEP", 4096)
    result = CliRunner().invoke(cli_app.app, ["index", str(src), "--index", str(tmp_path / "idx")])
    assert result.exit_code == 0, result.output
    assert len(moves) > 5 and all(n >= 0 for n in moves)  # many moves inside the one file
    assert sum(moves) == src.stat().st_size
