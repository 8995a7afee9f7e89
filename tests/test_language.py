"""Language identification: seeds, the shared query sets (>= 99%), bulk passages (>= 98%), edge cases."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest

import analyzers
from analyzers.language import decide, detect_from_tokens, stopword_evidence

ROOT = Path(__file__).resolve().parents[1]
from tests.conftest import DATA  # noqa: E402  ($TELUSUR_DATA or ../shared/data)


def _needs(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    return path


def _queries(folder: str) -> list[str]:
    path = _needs(DATA / folder / "queries.jsonl")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def _passages(folder: str, n: int) -> list[dict]:
    path = _needs(DATA / folder / "passages.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in itertools.islice(f, n)]


@pytest.mark.parametrize(
    "name,lang",
    [("000_7e2a46c1dcea32a3.txt", "id"), ("001_e934bd5ecad36a00.txt", "id"), ("002_8eb0183dd21bba0b.txt", "en")],
)
def test_seed_texts(name: str, lang: str) -> None:
    text = (ROOT / "seeds" / name).read_text(encoding="utf-8")
    code, confidence = analyzers.detect_language(text)
    assert code == lang
    assert 0.9 < confidence <= 1.0
    assert detect_from_tokens(analyzers.tokenize(text))[0] == lang


@pytest.mark.parametrize("folder,lang", [("tydiqa-goldp-id-retrieval", "id"), ("beir-scifact", "en")])
def test_queries_at_least_99_percent(folder: str, lang: str) -> None:
    queries = _queries(folder)
    wrong = [q for q in queries if analyzers.detect_language(q)[0] != lang]
    accuracy = 1 - len(wrong) / len(queries)
    assert accuracy >= 0.99, f"{folder}: {accuracy:.4f} right; e.g. {wrong[:5]}"


@pytest.mark.parametrize("folder,lang", [("id-peraturan-bulk", "id"), ("enwiki-extract-bulk", "en")])
def test_bulk_passages_at_least_98_percent(folder: str, lang: str) -> None:
    """The indexer's path: stopword evidence per passage, "und" falling back to the document's language."""
    passages = _passages(folder, 500)
    evidence = [stopword_evidence(analyzers.tokenize(p["text"])) for p in passages]
    per_doc: dict[str, list[int]] = {}
    for p, (n_id, n_en) in zip(passages, evidence):
        acc = per_doc.setdefault(p["doc_id"], [0, 0])
        acc[0] += n_id
        acc[1] += n_en
    decided = []
    for p, e in zip(passages, evidence):
        code, _ = decide(*e)
        decided.append(code if code != "und" else decide(*per_doc[p["doc_id"]])[0])
    right = sum(code == lang for code in decided) / len(decided)
    wrong_language = sum(code not in (lang, "und") for code in decided) / len(decided)
    assert right >= 0.98, f"{folder}: {right:.3f} right"
    assert wrong_language <= 0.01
    # the passage path alone (no document fallback) never names the wrong language here either
    alone = [decide(*e)[0] for e in evidence]
    assert sum(code not in (lang, "und") for code in alone) <= 0.01 * len(alone)


@pytest.mark.parametrize("text", ["", "   ", "?!...", "— (–) ...", "\U0001f600 \U0001f44d"])
def test_no_words_is_undetermined(text: str) -> None:
    assert analyzers.detect_language(text) == ("und", 0.0)
    assert analyzers.language_probabilities(text) == {"id": 0.5, "en": 0.5}


@pytest.mark.parametrize(
    "text,lang",
    [
        ("Warga Rusia melarikan diri ke perbatasan", "id"),
        ("Siapa presiden pertama Indonesia?", "id"),
        ("penyeberangan", "id"),
        ("Russians are crossing the border", "en"),
        ("citizens crossing", "en"),
        ("0-dimensional biomaterials show inductive properties", "en"),
    ],
)
def test_short_texts(text: str, lang: str) -> None:
    code, confidence = analyzers.detect_language(text)
    assert code == lang
    assert 0.5 < confidence <= 1.0
    probs = analyzers.language_probabilities(text)
    assert set(probs) == {"id", "en"}
    assert probs["id"] + probs["en"] == pytest.approx(1.0)
    assert probs[lang] == pytest.approx(confidence)


def test_stopword_evidence_and_decide() -> None:
    raw = analyzers.tokenize("Dia dan saya pergi ke pasar yang ramai, and the market")
    assert stopword_evidence(raw) == (5, 2)  # dia dan saya ke yang | and the
    assert decide(5, 2) == ("id", 6 / 9)
    assert decide(0, 0) == ("und", 0.0)
    assert decide(3, 3) == ("und", 0.0)
    assert detect_from_tokens(analyzers.tokenize("The cat")) == ("en", 2 / 3)
    # clause letters, Roman numerals and "No." of Indonesian laws are no English evidence
    assert stopword_evidence(analyzers.tokenize("a. b. I. II. No. 5")) == (0, 0)


# -- passages to index: stopwords, then the n-gram model, then the document's language (issue 16) ------------
def test_upper_case_law_heading_is_indonesian() -> None:
    from analyzers.language import detect_passage

    text = "MENTERI/SEKRETARIS NEGARA REPUBLIK INDONESIA, ttd SUDHARMONO, SH. LEMBARAN NEGARA REPUBLIK INDONESIA"
    assert stopword_evidence(analyzers.tokenize(text)) == (0, 0)  # no stopword evidence at all
    assert detect_passage(analyzers.tokenize(text), text)[0] == "id"


def test_passage_without_evidence_takes_the_document_prior() -> None:
    from analyzers.language import detect_document, detect_passage

    bare = "LN 1961/45; TLN NO. 2179"
    assert detect_passage(analyzers.tokenize(bare), bare)[0] == "und"
    assert detect_passage(analyzers.tokenize(bare), bare, prior="id")[0] == "id"
    english = "The minister shall report to the parliament on the state of the budget and of the debt."
    indonesian = "Menteri menyampaikan laporan kepada Dewan Perwakilan Rakyat tentang keadaan anggaran yang ada."
    langs = detect_document([(analyzers.tokenize(t), t) for t in (indonesian, bare, english, indonesian, indonesian)])
    assert langs == ["id", "id", "en", "id", "id"]  # clear English evidence outweighs the prior


@pytest.mark.parametrize(
    "folder,lang,n,most", [("id-peraturan-bulk", "id", 20000, 0.005), ("enwiki-extract-bulk", "en", 2000, 0.005)]
)
def test_bulk_passages_alone_rarely_take_the_other_language(folder: str, lang: str, n: int, most: float) -> None:
    """Each passage as its own document (no prior): at most 0.5% labelled with the other language or
    left undetermined (which an index would send to its default language)."""
    from analyzers.language import detect_passage

    passages = _passages(folder, n)
    codes = [detect_passage(analyzers.tokenize(p["text"]), p["text"])[0] for p in passages]
    assert sum(code != lang for code in codes) <= most * len(codes), folder
