"""The snapshot swap: one lock for a writer's install and ``refresh``, never back in generation; and
``fsync_dir`` errors that mean a commit may not be durable reach the caller."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import pytest

from search import Document, Index, storage


def test_refresh_never_goes_back(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx")
    with index.writer() as w:
        w.add(Document(id="a", text="satu"))
    stale = Index.open(tmp_path / "idx")  # generation 1
    with index.writer() as w:
        w.add(Document(id="b", text="dua"))
    assert stale.refresh() and len(stale) == 2 and stale.stats()["generation"] == 2
    newer_snapshot = index._snapshot
    old_meta = dict(newer_snapshot.meta, generation=1)
    assert index._install(old_meta, {}) is newer_snapshot  # an older commit is not installed
    assert index.stats()["generation"] == 2 and len(index) == 2
    assert not index.refresh()


def test_refreshes_racing_a_writer_end_on_the_newest_commit(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx")
    other = Index.open(tmp_path / "idx")
    stop = threading.Event()
    seen: list[int] = []

    def refresher() -> None:
        while not stop.is_set():
            index.refresh()
            seen.append(index.stats()["generation"])

    thread = threading.Thread(target=refresher)
    thread.start()
    try:
        for i in range(15):
            with other.writer() as w:
                w.add(Document(id=f"d{i}", text=f"dokumen {i}"))
            with index.writer() as w:
                w.add(Document(id=f"e{i}", text=f"naskah {i}"))
    finally:
        stop.set()
        thread.join()
    assert seen == sorted(seen)  # the generation a reader sees never goes down
    index.refresh()
    # thirty commits, and the merges the writers' close() committed after them (background merges)
    on_disk = json.loads((tmp_path / "idx" / "meta.json").read_text())["generation"]
    assert index.stats()["generation"] == on_disk >= 30 and len(index) == 30


def _fsync_failing_on_directories(err: int):
    real = os.fsync

    def fsync(fd: int) -> None:
        if _is_dir_fd(fd):
            raise OSError(err, os.strerror(err))
        real(fd)

    return fsync


def _is_dir_fd(fd: int) -> bool:
    import stat

    return stat.S_ISDIR(os.fstat(fd).st_mode)


@pytest.mark.skipif(os.name == "nt", reason="directories cannot be fsynced on Windows")
def test_fsync_dir_errors_propagate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", _fsync_failing_on_directories(errno.EIO))
    with pytest.raises(OSError) as e:
        storage.fsync_dir(tmp_path)
    assert e.value.errno == errno.EIO
    with pytest.raises(OSError):
        Index.create(tmp_path / "idx")  # write_meta fsyncs the directory after the rename


@pytest.mark.skipif(os.name == "nt", reason="directories cannot be fsynced on Windows")
def test_a_file_system_without_directory_fsync_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", _fsync_failing_on_directories(errno.EINVAL))
    storage.fsync_dir(tmp_path)
    index = Index.create(tmp_path / "idx")
    with index.writer() as w:
        w.add(Document(id="a", text="satu"))
    assert len(Index.open(tmp_path / "idx")) == 1
