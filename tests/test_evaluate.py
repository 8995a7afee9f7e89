"""Tests for search.evaluate: hand-computed metric tables, a check against ir-measures on random runs,
BEIR loading (tiny folders and the shared SciFact copy), TREC run files and query handling."""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path

import pytest

from search.evaluate import (
    _plain_search,
    average_precision_at_k,
    evaluate,
    load_beir,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank_at_k,
    write_trec_run,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SCIFACT = SHARED_DATA / "beir-scifact"

LOG2_3 = math.log2(3)

# (case, ranking, judgments, k, nDCG, RR, recall, AP), worked out by hand:
#   graded: DCG = 1/log2(2) + 0 + 2/log2(4) = 2; IDCG = 2/log2(2) + 1/log2(3); AP = (1/1 + 2/3) / 2
METRIC_TABLE = [
    ("perfect", ["a", "x", "y"], {"a": 1}, 10, 1.0, 1.0, 1.0, 1.0),
    ("relevant at rank 3", ["x", "y", "a"], {"a": 1}, 10, 0.5, 1 / 3, 1.0, 1 / 3),
    ("relevant below the cutoff", ["x", "y", "a"], {"a": 1}, 2, 0.0, 0.0, 0.0, 0.0),
    ("graded", ["b", "c", "a"], {"a": 2, "b": 1, "c": 0}, 10,
     2 / (2 + 1 / LOG2_3), 1.0, 1.0, (1 + 2 / 3) / 2),
    ("graded, best first", ["a", "b"], {"a": 2, "b": 1, "c": 0}, 10, 1.0, 1.0, 1.0, 1.0),
    ("no hits", [], {"a": 1}, 10, 0.0, 0.0, 0.0, 0.0),
    ("two relevant, one in top 2", ["a", "x", "b"], {"a": 1, "b": 1}, 2, 1 / (1 + 1 / LOG2_3), 1.0, 0.5, 0.5),
    ("two relevant, both in top 3", ["a", "x", "b"], {"a": 1, "b": 1}, 3,
     (1 + 0.5) / (1 + 1 / LOG2_3), 1.0, 1.0, (1 + 2 / 3) / 2),
    ("nothing relevant judged", ["a"], {"a": 0}, 10, 0.0, 0.0, 0.0, 0.0),
    ("negative grade is gain 0", ["a", "b"], {"a": -1, "b": 2, "c": 1}, 10,
     (2 / LOG2_3) / (2 + 1 / LOG2_3), 0.5, 0.5, 0.25),
    ("repeated id keeps its first rank", ["x", "x", "a"], {"a": 1}, 2, 1 / LOG2_3, 0.5, 1.0, 0.5),
]


@pytest.mark.parametrize(
    ("ranking", "judgments", "k", "ndcg", "rr", "recall", "ap"),
    [case[1:] for case in METRIC_TABLE],
    ids=[case[0] for case in METRIC_TABLE],
)
def test_metrics_match_hand_computed_table(ranking, judgments, k, ndcg, rr, recall, ap):
    assert ndcg_at_k(ranking, judgments, k) == pytest.approx(ndcg)
    assert reciprocal_rank_at_k(ranking, judgments, k) == pytest.approx(rr)
    assert recall_at_k(ranking, judgments, k) == pytest.approx(recall)
    assert average_precision_at_k(ranking, judgments, k) == pytest.approx(ap)


def test_evaluate_averages_over_every_judged_query():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}, "q4": {"d": 0}}
    run = {"q1": ["a"], "q2": ["x", "y", "b"], "q4": ["d"], "not judged": ["a"]}  # q3 has no results
    result = evaluate(run, qrels, metrics=("ndcg@10", "mrr@10", "recall@100", "map@100", "RR@1"))
    assert result == pytest.approx(
        {"ndcg@10": 1.5 / 4, "mrr@10": (1 + 1 / 3) / 4, "recall@100": 2 / 4, "map@100": (1 + 1 / 3) / 4,
         "RR@1": 1 / 4}
    )


@pytest.mark.parametrize("name", ["ndcg", "p@10", "ndcg@0", "bleu@4", "ndcg@ten"])
def test_evaluate_rejects_unknown_metrics_naming_the_choices(name):
    with pytest.raises(ValueError, match="ndcg, mrr, recall, map"):
        evaluate({}, {"q": {"a": 1}}, metrics=(name,))


def test_metrics_agree_with_ir_measures_on_random_runs():
    ir_measures = pytest.importorskip("ir_measures")
    from ir_measures import AP, RR, R, nDCG

    rng = random.Random(20240607)
    docs = [f"d{i}" for i in range(150)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, list[str]] = {}
    for q in range(400):
        qid = f"q{q}"
        qrels[qid] = {d: rng.choice([0, 1, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 12))}
        if rng.random() < 0.9:  # some judged queries get no results at all
            run[qid] = rng.sample(docs, rng.randint(0, 130))
    run["only in run"] = docs[:10]

    ir_qrels = [ir_measures.Qrel(qid, d, g) for qid, judged in qrels.items() for d, g in judged.items()]
    # strictly decreasing scores, so ir-measures' re-sort by score reproduces our order exactly
    ir_run = [ir_measures.ScoredDoc(qid, d, float(len(ranking) - i))
              for qid, ranking in run.items() for i, d in enumerate(ranking)]
    measures = {"ndcg@10": nDCG @ 10, "mrr@10": RR @ 10, "recall@100": R @ 100, "map@100": AP @ 100,
                "ndcg@3": nDCG @ 3, "recall@5": R @ 5}
    expected = ir_measures.calc_aggregate(list(measures.values()), ir_qrels, ir_run)
    ours = evaluate(run, qrels, metrics=tuple(measures))
    for name, measure in measures.items():
        assert ours[name] == pytest.approx(expected[measure], abs=1e-12), name


# --------------------------------------------------------------------------------------------------
# BEIR loading


def write_beir(root: Path, corpus, queries, qrels_lines, split="test") -> Path:
    """A BEIR folder from Python values; qrels_lines are written after the standard header."""
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus), encoding="utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (root / "qrels" / f"{split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(line + "\n" for line in qrels_lines), encoding="utf-8"
    )
    return root


def tiny_beir(root: Path) -> Path:
    corpus = [{"_id": "d1", "title": "Kucing", "text": "kucing tidur"}, {"_id": "d2", "text": "anjing"}]
    queries = [{"_id": "q1", "text": "kucing"}, {"_id": "q2", "text": "anjing"}, {"_id": "q3", "text": "x"}]
    return write_beir(root, corpus, queries, ["q1\td1\t1", "q2\td2\t2", "q2\td1\t0"])


def test_load_beir_keeps_only_the_split_queries(tmp_path):
    dataset = load_beir(tiny_beir(tmp_path / "tiny"))
    assert dataset.queries == {"q1": "kucing", "q2": "anjing"}
    assert dataset.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2, "d1": 0}}
    assert list(dataset.iter_corpus()) == [
        {"_id": "d1", "title": "Kucing", "text": "kucing tidur"},
        {"_id": "d2", "title": "", "text": "anjing"},
    ]


def test_load_beir_names_missing_files_and_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*corpus.jsonl"):
        load_beir(tmp_path / "nowhere")
    root = tiny_beir(tmp_path / "tiny")
    with pytest.raises(FileNotFoundError, match=r"dev\.tsv.*splits present: test.*query-id corpus-id score"):
        load_beir(root, split="dev")
    (root / "queries.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="queries.jsonl' is missing"):
        load_beir(root)


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("queries.jsonl", '{"_id": "q1", "text": "ok"}\n{broken\n', r"queries.jsonl' line 2: not valid JSON"),
        ("queries.jsonl", '{"_id": "q1", "text": 5}\n', r"line 1: field 'text' must be a string"),
        ("queries.jsonl", '{"_id": "q2", "text": "other"}\n', r"1 query id\(s\) judged .* 'q1'"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\n", r"test.tsv' line 2: expected 3 fields"),
        ("qrels/test.tsv", "q1\td1\thigh\n", r"test.tsv' line 1: score must be an integer grade, got 'high'"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\n", r"holds no judgments"),
    ],
)
def test_load_beir_reports_file_and_line_of_malformed_input(tmp_path, file, content, message):
    corpus, queries = [{"_id": "d1", "text": "t"}], [{"_id": "q1", "text": "t"}]
    root = write_beir(tmp_path / "bad", corpus, queries, ["q1\td1\t1"])
    (root / file).write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_beir(root)


def test_iter_corpus_reports_malformed_lines(tmp_path):
    root = tiny_beir(tmp_path / "tiny")
    (root / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n{"text": "no id"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"corpus.jsonl' line 2: field '_id' must be a string"):
        list(load_beir(root).iter_corpus())


@pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"shared data not present at {SCIFACT}")
def test_load_beir_reads_the_shared_scifact_copy():
    dataset = load_beir(SCIFACT, split="test")
    assert len(dataset.queries) == 300
    assert len(dataset.qrels) == 300
    assert sum(len(judged) for judged in dataset.qrels.values()) == 339
    assert sum(1 for _ in dataset.iter_corpus()) == 5183
    assert len(load_beir(SCIFACT, split="train").queries) == 809


# --------------------------------------------------------------------------------------------------
# TREC run files and query text


def test_write_trec_run_round_trips_through_ir_measures(tmp_path):
    path = tmp_path / "run.txt"
    write_trec_run(path, {"q1": [("d2", 3.5), ("d1", 1.25)], "q2": [("d9", 0.5)]}, tag="telusur-bm25")
    assert path.read_text(encoding="utf-8").splitlines() == [
        "q1 Q0 d2 1 3.5 telusur-bm25",
        "q1 Q0 d1 2 1.25 telusur-bm25",
        "q2 Q0 d9 1 0.5 telusur-bm25",
    ]
    ir_measures = pytest.importorskip("ir_measures")
    assert [(s.query_id, s.doc_id, s.score) for s in ir_measures.read_trec_run(str(path))] == [
        ("q1", "d2", 3.5), ("q1", "d1", 1.25), ("q2", "d9", 0.5)
    ]


def test_write_trec_run_rejects_whitespace_in_tag(tmp_path):
    with pytest.raises(ValueError, match="without whitespace"):
        write_trec_run(tmp_path / "run.txt", {}, tag="two words")


class _RecordingIndex:
    def __init__(self):
        self.calls = []

    def search(self, text, k=10, lang=None, k1=None, b=None):
        self.calls.append(text)
        return []


class _ParsingIndex(_RecordingIndex):
    def search(self, text, k=10, lang=None, k1=None, b=None, parse=True):
        self.calls.append((text, parse))
        return []


def test_queries_are_searched_as_plain_text():
    parsing = _ParsingIndex()
    _plain_search(parsing)('"Ebola" (virus) -free', k=5)
    assert parsing.calls == [('"Ebola" (virus) -free', False)]

    older = _RecordingIndex()
    _plain_search(older)('"Ebola" (virus): -free +x 1-1% a:b', k=5)
    (query,) = older.calls
    if isinstance(query, str):  # the engine has no plain_query: syntax characters are stripped
        assert query.split() == ["Ebola", "virus", "free", "x", "1-1%", "a", "b"]
    else:  # search.plain_query: the words, untouched, with no syntax tree built from them
        assert query.words == tuple('"Ebola" (virus): -free +x 1-1% a:b'.split())


def test_plain_query_keeps_syntax_characters_from_changing_the_ranking(tmp_path):
    search = pytest.importorskip("search")
    if not hasattr(search, "Index"):
        pytest.skip("the search core is not there yet")
    index = search.Index.create(tmp_path / "idx", passage_words=0)
    with index.writer() as writer:
        writer.add(search.Document(id="a", text="ebola virus outbreak", lang="en"))
        writer.add(search.Document(id="b", text="free virus", lang="en"))
    index = search.Index.open(tmp_path / "idx")
    hits = _plain_search(index)("-free (ebola) virus", k=10, lang="en", k1=None, b=None)
    assert {hit.doc_id for hit in hits} == {"a", "b"}  # "-free" did not exclude b


# --------------------------------------------------------------------------------------------------
# run_beir's index cache, with a stand-in engine (the real one is tested further down)


class _FakeHit:
    def __init__(self, doc_id, score):
        self.doc_id, self.score, self.passage = doc_id, score, None


class _FakeIndex:
    """Scores a document by how many query words it shares; enough to check the wiring and the cache."""

    created = 0

    def __init__(self, path):
        self.path = path

    @classmethod
    def create(cls, path, **settings):
        cls.created += 1
        path.mkdir()
        (path / "docs.json").write_text("{}", encoding="utf-8")
        return cls(path)

    @classmethod
    def open(cls, path):
        return cls(path)

    def writer(self):
        index = self

        class _Writer:
            def __enter__(self):
                self.docs = {}
                return self

            def add(self, doc):
                self.docs[doc.id] = f"{doc.title} {doc.text}".lower().split()

            def __exit__(self, *exc):
                (index.path / "docs.json").write_text(json.dumps(self.docs), encoding="utf-8")

        return _Writer()

    def search(self, text, k=10, lang=None, k1=None, b=None):
        docs = json.loads((self.path / "docs.json").read_text(encoding="utf-8"))
        words = set(getattr(text, "text", text).lower().split())  # a str or a search.ParsedQuery
        scored = [(sum(w in words for w in tokens), doc_id) for doc_id, tokens in docs.items()]
        scored = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))[:k]
        return [_FakeHit(doc_id, float(score)) for score, doc_id in scored]


@pytest.fixture
def fake_engine(monkeypatch):
    import search
    from search import documents

    _FakeIndex.created = 0
    monkeypatch.setattr(search, "Index", _FakeIndex, raising=False)
    monkeypatch.setattr(search, "Document", documents.Document, raising=False)
    return _FakeIndex


def test_run_beir_reuses_its_index_until_the_corpus_or_settings_change(tmp_path, fake_engine):
    from search.evaluate import IndexFolderInUse, run_beir

    root = tiny_beir(tmp_path / "tiny")
    index_dir = tmp_path / "indexes" / "tiny"
    first = run_beir(root, index_dir=index_dir)
    assert (first.reused_index, fake_engine.created) == (False, 1)
    assert first.run == {"q1": [("d1", 2.0)], "q2": [("d2", 1.0)]}  # title + text both say kucing
    assert first.metrics == {"ndcg@10": 1.0, "mrr@10": 1.0, "recall@100": 1.0, "map@100": 1.0}
    assert first.num_queries == 2

    assert run_beir(root, index_dir=index_dir, k1=0.9, b=0.4).reused_index  # k1/b are search-time
    assert not run_beir(root, index_dir=index_dir, passage_words=50).reused_index
    with (root / "corpus.jsonl").open("a", encoding="utf-8") as corpus:
        corpus.write(json.dumps({"_id": "d3", "text": "kucing kucing"}) + "\n")
    again = run_beir(root, index_dir=index_dir, passage_words=50)
    assert (again.reused_index, fake_engine.created) == (False, 3)
    assert again.ranked["q1"] == ["d1", "d3"]

    foreign = tmp_path / "someone-elses"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(IndexFolderInUse, match="was not built by an evaluation run"):
        run_beir(root, index_dir=foreign)
    assert (foreign / "keep.txt").exists()


# --------------------------------------------------------------------------------------------------
# run_beir with the real engine, on a 30-document slice of SciFact


@pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"shared data not present at {SCIFACT}")
def test_run_beir_on_a_scifact_slice_matches_a_hand_computed_run(tmp_path):
    search = pytest.importorskip("search")
    if not hasattr(search, "Index"):
        pytest.skip("the search core is not there yet")
    from search.evaluate import run_beir

    full = load_beir(SCIFACT, split="test")
    wanted: set[str] = set()
    for judged in full.qrels.values():  # relevant docs of the first queries, until 20 docs are in
        if len(wanted | set(judged)) > 20:
            break
        wanted |= set(judged)
    corpus = [doc for doc in full.iter_corpus() if doc["_id"] in wanted]
    corpus += [doc for doc in full.iter_corpus() if doc["_id"] not in wanted][: 30 - len(corpus)]
    qrels = {qid: judged for qid, judged in full.qrels.items() if set(judged) <= wanted}
    assert len(corpus) == 30 and len(qrels) >= 10
    root = write_beir(
        tmp_path / "slice",
        corpus,
        [{"_id": qid, "text": full.queries[qid]} for qid in qrels],
        [f"{qid}\t{doc_id}\t{grade}" for qid, judged in qrels.items() for doc_id, grade in judged.items()],
    )

    result = run_beir(root, index_dir=tmp_path / "index", lang="en", k=10)
    assert result.num_queries == len(qrels) and not result.reused_index

    # the same hits, straight from the engine
    index = search.Index.open(tmp_path / "index")
    for qid in qrels:
        hits = index.search(search.plain_query(full.queries[qid]), k=10, lang="en")
        assert result.run[qid] == [(hit.doc_id, hit.score) for hit in hits]

    # SciFact's judgments are binary: nDCG@10 = sum of 1/log2(rank+1) over relevant ranks / the ideal
    ndcg, rr, recall, ap = [], [], [], []
    for qid, judged in qrels.items():
        ranks = [rank for rank, (doc_id, _) in enumerate(result.run[qid], start=1) if doc_id in judged]
        ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(judged), 10) + 1))
        ndcg.append(sum(1 / math.log2(rank + 1) for rank in ranks) / ideal)
        rr.append(1 / ranks[0] if ranks else 0.0)
        recall.append(len(ranks) / len(judged))
        ap.append(sum(found / rank for found, rank in enumerate(ranks, start=1)) / len(judged))
    mean = statistics.fmean
    assert result.metrics == pytest.approx(
        {"ndcg@10": mean(ndcg), "mrr@10": mean(rr), "recall@100": mean(recall), "map@100": mean(ap)}
    )
    assert result.metrics["ndcg@10"] > 0.5  # 30 documents: BM25 finds most of the cited abstracts

    assert run_beir(root, index_dir=tmp_path / "index", lang="en", k=10).reused_index


def test_known_item_queries_are_words_of_their_passage() -> None:
    from search.evaluate import known_item_queries

    letters = "abcdefghijklmnopqrstuvwxyz"
    passages = [(f"p{i}", " ".join(f"kata{letters[j]} dan yang {i}" for j in range(i, i + 7))) for i in range(19)]
    queries = known_item_queries(passages, 50, seed=7, words=(3, 5), min_words=20)
    assert queries == known_item_queries(passages, 50, seed=7, words=(3, 5), min_words=20)  # deterministic
    assert queries != known_item_queries(passages, 50, seed=8, words=(3, 5), min_words=20)
    text = dict(passages)
    for target, query in queries:
        words = query.split()
        assert 3 <= len(words) <= 5
        assert all(w in text[target].split() and not w.isdigit() for w in words)
    assert any(w in ("dan", "yang") for _, q in queries for w in q.split())  # function words are drawn too
    with pytest.raises(ValueError, match="no passage has 99 words"):
        known_item_queries(passages, 1, seed=1, min_words=99)


def test_known_item_paired_statistics() -> None:
    """McNemar's exact p and the paired bootstrap of benchmarks/known_item_paired.py, by hand."""
    from benchmarks.known_item_paired import compare, mcnemar_exact, paired_bootstrap

    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)  # both tails of binomial(5, 1/2) at 0 and 5
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(1, 9) == mcnemar_exact(9, 1) == pytest.approx(2 * 11 / 1024)
    same = paired_bootstrap([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    assert same == {"diff": 0.0, "ci95_low": 0.0, "ci95_high": 0.0, "p_boot_le0": 1.0}
    boot = paired_bootstrap([1.0] * 50 + [0.0] * 50, [0.0] * 50 + [0.0] * 50, draws=2000)
    assert boot["diff"] == 0.5 and 0.35 < boot["ci95_low"] < 0.5 < boot["ci95_high"] < 0.65
    c = compare([1, 0, 3, 0], [2, 5, 0, 0])  # ranks, 0 = not in the top 10
    assert (c["found_by_a_only"], c["found_by_b_only"]) == (1, 1)
    assert c["success@10"]["diff"] == 0.0
    assert c["mrr@10"]["diff"] == pytest.approx((1 + 1 / 3 - 1 / 2 - 1 / 5) / 4)
