"""`search index` streams its sources: a first pass keeps ids and content hashes, a second reads again."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from cli.sources import SourceError, find_files, read_documents
from search import Index


def _jsonl(path: Path, n: int, size: int, *, bad_at: int | None = None, prefix: str = "j") -> Path:
    with (gzip.open(path, "wt", encoding="utf-8") if path.suffix == ".gz" else path.open("w", encoding="utf-8")) as f:
        for i in range(n):
            if i == bad_at:
                f.write("{not json\n")
                continue
            text = f"warga kota pasar nomor {i} " + "rumah makan besar " * (size // 18)
            f.write(json.dumps({"id": f"{prefix}{i}", "text": text, "lang": "id"}) + "\n")
    return path


@pytest.mark.parametrize("name", ["big.jsonl", "big.jsonl.gz"])
def test_a_jsonl_source_is_read_a_line_at_a_time(tmp_path: Path, name: str) -> None:
    path = _jsonl(tmp_path / name, 400, 20_000)  # 8 MB of text
    (source,) = find_files([path], None, exclude=tmp_path / "idx")
    tracemalloc.start()
    try:
        n = sum(1 for _ in read_documents(source))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 400
    assert peak < 1_000_000, peak  # a few lines, never the 8 MB file


def test_jsonl_errors_name_the_line_and_byte(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "x.jsonl", 5, 100, bad_at=3)
    (source,) = find_files([path], None, exclude=tmp_path / "idx")
    with pytest.raises(SourceError, match=r"x\.jsonl:4: malformed JSON"):
        list(read_documents(source))
    raw = b'\xef\xbb\xbf{"id": "a", "text": "ok"}\n{"id": "b", "text": "\xff"}\n'
    (tmp_path / "y.jsonl").write_bytes(raw)
    (source,) = find_files([tmp_path / "y.jsonl"], None, exclude=tmp_path / "idx")
    at = raw.index(b"\xff")
    with pytest.raises(SourceError, match=rf"not valid UTF-8 \(byte {at}\)"):
        list(read_documents(source))


def test_streamed_index_adds_updates_deletes_and_keeps_nothing_on_a_bad_source(tmp_path: Path) -> None:
    runner = CliRunner()
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    _jsonl(docs / "a.jsonl", 30, 200)
    (docs / "note.md").write_text("# Catatan\nwarga kota\n", encoding="utf-8")
    result = runner.invoke(app, ["index", str(docs), "--index", str(idx)])
    assert result.exit_code == 0, result.output
    assert "31 new" in result.stderr
    # change one document, drop one, add one: the second pass reads only what the plan names
    lines = (docs / "a.jsonl").read_text(encoding="utf-8").splitlines()
    changed = json.loads(lines[4])
    changed["text"] = "teks baru sama sekali"
    lines[4] = json.dumps(changed)
    del lines[7]
    lines.append(json.dumps({"id": "new", "text": "dokumen baru", "lang": "id"}))
    (docs / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["index", str(docs), "--index", str(idx)])
    assert result.exit_code == 0, result.output
    assert "1 new, 1 changed, 1 removed, 29 unchanged" in result.stderr
    index = Index.open(idx)
    assert index.get("j4").text == "teks baru sama sekali" and "j7" not in index and "new" in index
    before = (idx / "meta.json").read_bytes()
    # a bad line at the end of a source: nothing changes, though earlier lines and files were fine
    _jsonl(docs / "b.jsonl", 10, 50, bad_at=9, prefix="b")
    result = runner.invoke(app, ["index", str(docs), "--index", str(idx)])
    assert result.exit_code == 2 and "b.jsonl:10: malformed JSON" in result.stderr
    assert (idx / "meta.json").read_bytes() == before
    (docs / "b.jsonl").unlink()
    result = runner.invoke(app, ["index", str(docs), "--index", str(idx), "--check"])
    assert result.exit_code == 0 and "fresh: 31 documents" in result.stderr, result.output
