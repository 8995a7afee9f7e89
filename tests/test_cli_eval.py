"""`search eval` end to end on a slice of SciFact: the printed metrics equal a hand computation from the run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from tests.conftest import data_dir


def make_slice(src: Path, dst: Path, n_docs: int = 40) -> None:
    corpus = [json.loads(line) for line in (src / "corpus.jsonl").open(encoding="utf-8")]
    qrels = [line.split("\t") for line in (src / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    keep_docs = {q[1] for q in qrels[: n_docs // 2]} | {d["_id"] for d in corpus[: n_docs // 2]}
    qids = {q[0] for q in qrels if q[1] in keep_docs}
    (dst / "qrels").mkdir(parents=True)
    (dst / "corpus.jsonl").write_text(
        "".join(json.dumps(d) + "\n" for d in corpus if d["_id"] in keep_docs), encoding="utf-8"
    )
    queries = [json.loads(line) for line in (src / "queries.jsonl").open(encoding="utf-8")]
    (dst / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries if q["_id"] in qids))
    lines = ["query-id\tcorpus-id\tscore"] + ["\t".join(q) for q in qrels if q[0] in qids]
    (dst / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")


def test_search_eval_matches_a_hand_computation(tmp_path: Path) -> None:
    make_slice(data_dir("beir-scifact"), tmp_path / "slice")
    run_file = tmp_path / "run.trec"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(tmp_path / "slice"),
            "--lang",
            "en",
            "--json",
            "--index",
            str(tmp_path / "idx"),
            "--run-file",
            str(run_file),
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    qrels: dict[str, set[str]] = {}
    for line in (tmp_path / "slice" / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, _ = line.split("\t")
        qrels.setdefault(qid, set()).add(did)
    ranked: dict[str, list[tuple[int, str]]] = {}
    for line in run_file.read_text().splitlines():
        qid, _, did, rank, _, _ = line.split()
        ranked.setdefault(qid, []).append((int(rank), did))
    ndcg = mrr = 0.0
    for qid, rel in qrels.items():
        docs = [d for _, d in sorted(ranked.get(qid, []))][:10]
        dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(docs) if d in rel)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(rel), 10)))
        ndcg += dcg / ideal
        first = next((i for i, d in enumerate(docs) if d in rel), None)
        mrr += 0.0 if first is None else 1 / (first + 1)
    assert printed["queries"] == len(qrels) > 5
    assert printed["metrics"]["ndcg@10"] == pytest.approx(ndcg / len(qrels), abs=1e-12)
    assert printed["metrics"]["mrr@10"] == pytest.approx(mrr / len(qrels), abs=1e-12)
    assert 0.3 < printed["metrics"]["ndcg@10"] <= 1.0


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        (lambda d: None, "no such folder"),
        (lambda d: d.mkdir(), "corpus.jsonl"),
        (
            lambda d: (
                d.mkdir(),
                (d / "corpus.jsonl").write_text('{"_id": "1", "text": "x"}\n'),
                (d / "queries.jsonl").write_text('{"_id": "q", "text": "x"}\n'),
            ),
            "qrels",
        ),
        (
            lambda d: (
                d.mkdir(),
                (d / "corpus.jsonl").write_text("{not json\n"),
                (d / "queries.jsonl").write_text('{"_id": "q", "text": "x"}\n'),
                (d / "qrels").mkdir(),
                (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\t1\t1\n"),
            ),
            "line 1",
        ),
    ],
)
def test_search_eval_bad_folders_give_one_line_errors(tmp_path: Path, setup, needle: str) -> None:
    folder = tmp_path / "beir"
    setup(folder)
    result = CliRunner().invoke(app, ["eval", str(folder), "--index", str(tmp_path / "idx")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines
