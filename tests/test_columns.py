"""Declared metadata fields (issue #20): declarations, type checks at add, columns per segment (kept right by
deletes, updates and merges), damage read as IndexCorrupt."""

from __future__ import annotations

import json

import numpy as np
import pytest

from search import Document, Index, InvalidArgument, InvalidDocument
from search.columns import segment_columns
from search.errors import IndexCorrupt

FIELDS = {"year": "int", "source": "keyword", "tags": "keyword[]"}
DOCS = [
    ("a", "pajak daerah naik tahun ini", "id", {"year": 2020, "source": "kemenkeu", "tags": ["fiskal", "daerah"]}),
    ("b", "pajak daerah turun di kota", "id", {"year": 2015, "source": "bps"}),
    ("c", "tax on land rises again", "en", {"year": 2021, "source": "kemenkeu", "tags": ["fiscal"]}),
    ("d", "pajak pusat dan pajak daerah", "id", None),
    ("e", "land tax reform in the regions", "en", {"year": 2018, "source": "setneg", "tags": ["fiscal", "daerah"]}),
    ("f", "Warga Rusia melarikan diri", "id", {"year": 2022, "source": "setneg"}),
    ("g", "Russian citizens Rusia flee", "en", {"year": 2022, "source": "bps"}),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Index:
    idx = Index.create(tmp_path_factory.mktemp("columns") / "idx", fields=FIELDS)
    with idx.writer() as w:
        for doc_id, text, lang, meta in DOCS:
            w.add(Document(doc_id, text, lang=lang, meta=meta))
    return idx


# -- declared fields ---------------------------------------------------------------------------------


def test_fields_are_stored_in_the_index_meta(index):
    reopened = Index.open(index.path)
    assert reopened.fields == FIELDS
    stored = json.loads((index.path / "meta.json").read_text())["settings"]["fields"]
    assert stored == FIELDS


def test_an_index_without_fields_keeps_its_settings_unchanged(tmp_path):
    idx = Index.create(tmp_path / "plain")
    assert "fields" not in json.loads((tmp_path / "plain" / "meta.json").read_text())["settings"]
    assert idx.fields == {}


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"year": "integer"}, "choose one of"),
        ({"Year": "int"}, "not valid"),
        ({"title": "keyword"}, "reserved"),
        ({"lang": "keyword"}, "reserved"),
        ({"1x": "int"}, "not valid"),
        ("year:int", "must be a dict"),
    ],
)
def test_bad_field_declarations_are_refused(tmp_path, fields, message):
    with pytest.raises(InvalidArgument, match=message):
        Index.create(tmp_path / "bad", fields=fields)
    assert not (tmp_path / "bad" / "meta.json").exists()


@pytest.mark.parametrize(
    "meta",
    [
        {"year": "2020"},
        {"year": 2020.5},
        {"year": True},
        {"year": [2020]},
        {"source": 5},
        {"source": ["a", "b"]},
        {"tags": [1]},
        {"year": 1 << 64},
    ],
)
def test_meta_values_that_do_not_fit_the_declared_type_are_refused(tmp_path, meta):
    idx = Index.create(tmp_path / "idx", fields=FIELDS)
    with idx.writer() as w:
        w.add(Document("old", "kept text", meta={"year": 2000}))
    with pytest.raises(InvalidDocument, match="declared"):
        with idx.writer() as w:
            w.update(Document("old", "new text", meta=meta))
    assert idx.get("old").text == "kept text"  # the failed update lost nothing
    with pytest.raises(InvalidDocument, match="declared"):
        with idx.writer() as w:
            w.add_many([Document(f"n{i}", "x " * 50) for i in range(50)] + [Document("bad", "x", meta=meta)], workers=2)
    assert len(idx) == 1


def test_undeclared_meta_keys_and_missing_fields_are_fine(index):
    col = segment_columns(index._snapshot.segments[0].reader)
    assert set(col) == set(FIELDS)
    year = col["year"]
    assert year.values.tolist() == [2020, 2015, 2021, 2018, 2022, 2022]  # d has no meta
    assert year.offsets.tolist() == [0, 1, 2, 3, 3, 4, 5, 6]
    tags = col["tags"]
    assert [tags.dictionary[v] for v in tags.values.tolist()] == ["daerah", "fiskal", "fiscal", "daerah", "fiscal"]

def column_values(idx: Index) -> dict[str, dict[str, list]]:
    """Per live document, each field's values as the columns hold them."""
    out: dict[str, dict[str, list]] = {}
    for seg in idx._snapshot.segments:
        r = seg.reader
        cols = segment_columns(r)
        for di, doc_id in enumerate(r.strings("doc_id")):
            if seg.live_docs is not None and not seg.live_docs[di]:
                continue
            vals = {}
            for name, col in cols.items():
                raw = col.values[int(col.offsets[di]) : int(col.offsets[di + 1])].tolist()
                vals[name] = raw if col.dictionary is None else [col.dictionary[v] for v in raw]
            out[doc_id] = vals
    return out


def test_columns_follow_updates_deletes_and_merges(tmp_path):
    idx = Index.create(tmp_path / "idx", fields=FIELDS)
    expected: dict[str, dict[str, list]] = {}
    for round_ in range(10):  # ten commits of one segment each: a merge of eight happens on the way
        with idx.writer() as w:
            for i in range(6):
                n = round_ * 3 + i  # overlapping ids: updates of earlier documents
                meta = {"year": 2000 + n, "source": f"s{n % 4}", "tags": [f"t{n % 3}", "all"]}
                w.update(Document(f"d{n}", f"pajak nomor {n}", meta=meta))
                expected[f"d{n}"] = {"source": [f"s{n % 4}"], "tags": sorted([f"t{n % 3}", "all"]), "year": [2000 + n]}
            w.delete(f"d{round_}")
            expected.pop(f"d{round_}", None)
    assert len(idx._snapshot.segments) < 10  # merged
    assert column_values(idx) == expected
    assert column_values(Index.open(idx.path)) == expected


def test_damaged_columns_are_index_corrupt(tmp_path):
    idx = Index.create(tmp_path / "idx", fields={"year": "int"})
    with idx.writer() as w:
        for i in range(20):
            w.add(Document(f"d{i}", "pajak daerah", meta={"year": 2000 + i}))
    reader = idx._snapshot.segments[0].reader
    arr = reader.a["col.year.int"]
    off = int(arr.__array_interface__["data"][0] - np.frombuffer(reader._mm, np.uint8).__array_interface__["data"][0])
    path = reader.path
    raw = bytearray(path.read_bytes())
    raw[off] ^= 0xFF
    path.write_bytes(bytes(raw))
    fresh = Index.open(tmp_path / "idx")  # opening reads no column; the first filter or facet checks them
    with pytest.raises(IndexCorrupt, match="columns: checksum fails"):
        segment_columns(fresh._snapshot.segments[0].reader)
