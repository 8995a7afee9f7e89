"""The query engine (Query -> Weight -> Scorer): explanations whose parts give the whole at every node
and whose root is the search score; weights bound once; filter clauses that restrict without scoring."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search import Document, Index
from search.bm25 import Explanation
from search.query import FILTER, MUST, SHOULD, BooleanQuery, ParsedQuery, TermQuery, parse_query
from search.selection import top_rows
from search.weights import BooleanWeight, MaskWeight, QueryWeight, TermWeight, create_weight, language_weights

EN = [
    "The river flows through the old city and the river bank is green",
    "A border crossing at Upper Lars closed after the river flooded the road",
    "The city council met the border police about the crossing",
    "Green fields and a quiet river: the old mill by the river turns slowly",
    "Police closed the road to the city; the council said the crossing stays open",
    "Rivers and roads: a short history of the border city",
]
ID = [
    "Sungai mengalir melalui kota tua dan tepi sungai itu hijau",
    "Penyeberangan perbatasan di Upper Lars ditutup setelah sungai banjir",
    "Dewan kota bertemu polisi perbatasan tentang penyeberangan itu",
    "Polisi menutup jalan ke kota; dewan berkata penyeberangan tetap dibuka",
]
QUERIES = [
    "river",
    "river city",
    "Upper Lars",
    '"border crossing" police',
    '"the river" green',
    "+river -flooded",
    "river AND city",
    "(river OR sungai) AND NOT council",
    "title:river city",
    'title:"border city" road',
    "sungai kota polisi",
    "what is the river crossing",
    "apa sungai itu",
    "river river city",
    "sungai sungai kota",
]


def walk(e: Explanation):
    yield e
    for d in e.details:
        yield from walk(d)


def assert_parts_give_the_whole(e: Explanation) -> int:
    """Every ``sum of:`` node is exactly the sum of its children, every ``product of:`` node exactly their
    product, and BM25 formula nodes are their formula of their inputs. Returns the nodes checked."""
    checked = 0
    for node in walk(e):
        values = [d.value for d in node.details]
        if node.description.endswith("sum of:"):
            assert node.value == sum(values), node.format()
            checked += 1
        elif node.description.endswith("product of:"):
            assert node.details, node.format()
            assert node.value == math.prod(values), node.format()
            checked += 1
        elif node.description.startswith("idf, computed as"):
            n, df = values
            assert node.value == math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            checked += 1
        elif node.description.startswith("tf / (tf + k1"):
            tf, k1, b, dl, avgdl, *delta = values  # BM25+'s delta where the language has one
            part = tf / (tf + k1 * (1.0 - b + b * (dl / avgdl)))
            assert node.value == (part + delta[0] if delta else part)
            assert len(delta) == node.description.endswith("+ delta from:")
            checked += 1
    return checked


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Index:
    idx = Index.create(tmp_path_factory.mktemp("engine") / "idx", passage_words=8)
    with idx.writer() as w:  # two segments and a deletion: scores must not depend on the layout
        for i, t in enumerate(EN):
            w.add(Document(f"en{i}", t, title="River city" if i % 2 else "Border road", lang="en"))
    with idx.writer() as w:
        for i, t in enumerate(ID):
            w.add(Document(f"id{i}", t, title="Sungai kota", lang="id"))
        w.add(Document("gone", "river river river city", lang="en"))
    with idx.writer() as w:
        w.delete("gone")
    return idx


@pytest.mark.parametrize("query", QUERIES)
def test_explanation_parts_give_the_whole_and_the_root_is_the_score(index: Index, query: str) -> None:
    hits = index.search(query, k=50, per_document=False)
    assert hits, query
    checked = 0
    for hit in hits:
        e = index.explain(query, hit.doc_id, hit.passage)
        assert e.value == hit.score, (query, hit, e.format())
        assert e.description.endswith(("sum of:", "product of:")), e.format()
        checked += assert_parts_give_the_whole(e)
    assert checked >= 3 * len(hits)


def test_a_multi_language_query_explains_its_language_weight(index: Index) -> None:
    query = "sungai river kota"  # both languages match; the less likely one is weighed down
    hits = index.search(query, k=50, per_document=False)
    weighed = [h for h in hits if index.explain(query, h.doc_id, h.passage).description.startswith("language")]
    assert weighed, "expected a weighed language"
    for h in weighed:
        e = index.explain(query, h.doc_id, h.passage)
        assert e.value == h.score and e.details[0].value < 1.0
        assert_parts_give_the_whole(e)


def test_an_indonesian_match_scores_at_least_bm25_plus_lower_bound(index: Index) -> None:
    """Indonesian terms score BM25+ (Lv & Zhai 2011): idf * (tf / (tf + norm) + delta) with delta
    ``bm25.DELTA["id"]``; English terms plain BM25 (delta 0), bit for bit."""
    from search import bm25

    assert bm25.delta("id") == 0.125 and bm25.delta("en") == 0.0
    for query, lang in (("sungai", "id"), ("river", "en")):
        hits = index.search(query, k=50, per_document=False, lang=lang)
        assert hits
        snap = index._snapshot
        st = snap.stats[lang]
        for hit in hits:
            nodes = list(walk(index.explain(query, hit.doc_id, hit.passage)))
            leaf = next(n for n in nodes if n.description.startswith("tf /"))
            tf, k1, b, dl, avgdl = (d.value for d in leaf.details[:5])
            plain = tf / (tf + k1 * (1.0 - b + b * (dl / avgdl)))
            assert avgdl == st.avgdl
            assert leaf.value == (plain + 0.125 if lang == "id" else plain)
            idf = next(n for n in nodes if n.description.startswith("idf"))
            assert hit.score == idf.value * leaf.value


def test_bm25_plus_ranks_more_query_words_above_a_shorter_passage(tmp_path) -> None:
    """Why the lower bound: a long passage holding both query words must not lose to a short passage
    holding one (plain BM25 ranks the short one first here; BM25+ the one that has both words)."""
    from search import bm25

    idx = Index.create(tmp_path / "idx", passage_words=0)
    with idx.writer() as w:
        w.add(Document("short", "anggaran daerah", lang="id"))
        w.add(Document("both", "anggaran pendapatan " + " ".join(f"kata{i}" for i in range(32)), lang="id"))
        for i in range(20):  # an average passage of 15 words: "both" is over twice as long
            w.add(Document(f"l{i}", f"laporan tahun {i} " + " ".join(f"isi{j}" for j in range(12)), lang="id"))
    query = "anggaran pendapatan"
    assert [h.doc_id for h in idx.search(query, k=1)] == ["both"]
    plain = dict(bm25.DELTA)
    try:
        bm25.DELTA.clear()
        fresh = Index.open(tmp_path / "idx")  # no score cached under the delta
        assert [h.doc_id for h in fresh.search(query, k=1)] == ["short"]
    finally:
        bm25.DELTA.update(plain)


def test_inflated_leaves_are_caught(index: Index) -> None:
    """The check above fails when a leaf is changed and its parent is not (the old explain's bug: leaves
    inflated 10x left the root equal to the score while its parts summed to much more)."""
    hits = index.search("river city", k=1)
    e = index.explain("river city", hits[0].doc_id, hits[0].passage)
    leaf = next(n for n in walk(e) if n.description.startswith("weight("))
    leaf.value *= 10
    with pytest.raises(AssertionError):
        assert_parts_give_the_whole(e)


def test_explanation_of_a_non_match_is_zero(index: Index) -> None:
    e = index.explain("+river -flooded", "en1")
    assert e.value == 0.0 and "excluded" in e.format()
    assert index.explain("zzzunknown", "en0").value == 0.0


def test_weights_bind_idf_from_live_statistics(index: Index) -> None:
    snap = index._snapshot
    ctx = index.query_context(snap, None, None, None)
    w = create_weight(ctx, "en", parse_query("river city").root)
    assert isinstance(w, BooleanWeight) and [type(c) for _, c in w.clauses] == [TermWeight, TermWeight]
    river = w.clauses[0][1]
    live_df = 0
    for seg in snap.segments:
        slot = seg.reader.find("en:river")
        if slot >= 0:
            pids = seg.reader.postings(slot)[0]
            live_df += int(pids.shape[0] if seg.live_passages is None else seg.live_passages[pids].sum())
    st = snap.stats["en"]
    assert river.df == live_df > 0  # the deleted document's passages are not counted
    assert river.idf == math.log(1.0 + (st.n_passages - live_df + 0.5) / (live_df + 0.5))
    assert create_weight(ctx, "en", TermQuery("...")) is None  # no terms: no weight


def test_a_filter_clause_restricts_without_scoring(index: Index) -> None:
    snap = index._snapshot
    ctx = index.query_context(snap, None, None, None)
    root = create_weight(ctx, "en", parse_query("river city").root)
    keep_even = MaskWeight(ctx, "en", lambda si: np.arange(snap.segments[si].reader.n_passages) % 2 == 0)
    filtered = BooleanWeight(ctx, "en", [*root.clauses, (FILTER, keep_even)], [*root.plain, False])
    compared = 0
    for si in range(len(snap.segments)):
        pids, scores = root.scorer(si).vec()
        fp, fs = filtered.scorer(si).vec()
        even = pids % 2 == 0
        assert np.array_equal(fp, pids[even]) and np.array_equal(fs, scores[even])  # same scores, fewer passages
        compared += int(even.sum())
    assert compared and compared < sum(root.scorer(si).vec()[0].shape[0] for si in range(len(snap.segments)))


def test_language_weights_are_one_for_one_language() -> None:
    parsed = ParsedQuery(BooleanQuery(((SHOULD, TermQuery("river")), (MUST, TermQuery("city")))), None, "", ("river",))
    assert language_weights(parsed, ["en"]) == {"en": 1.0}


def test_a_parsed_query_is_weighed_by_language_once(tmp_path: Path, monkeypatch) -> None:
    """The language model runs once a parsed query, however often it is weighed (each search of a
    repeated query text, each shard), and a query parsed anew is weighed anew."""
    import analyzers

    idx = Index.create(tmp_path / "ix", passage_words=8)
    with idx.writer() as w:
        w.add(Document("a", "warga rusia melarikan diri ke kota", lang="id"))
        w.add(Document("b", "people cross the river at night", lang="en"))
    calls = []
    real = analyzers.language_probabilities
    monkeypatch.setattr(analyzers, "language_probabilities", lambda text: calls.append(text) or real(text))
    first = [(h.doc_id, h.score) for h in idx.search("warga river")]
    assert len(first) == 2 and calls == ["warga river"]
    assert [(h.doc_id, h.score) for h in idx.search("warga river")] == first and len(calls) == 1
    fuzzy = [(h.doc_id, h.score) for h in idx.search("warga rivers", fuzzy=True)]  # rewritten on each search
    assert fuzzy and [(h.doc_id, h.score) for h in idx.search("warga rivers", fuzzy=True)] == fuzzy
    assert calls == ["warga river", "warga rivers"]
    parsed = parse_query("warga river")
    assert language_weights(parsed, ["id", "en"]) == language_weights(parsed, ["en", "id"]) and len(calls) == 3


# -- block-max ------------------------------------------------------------------------------------------------

VOCAB = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]


@st.composite
def corpora(draw):
    """A corpus where a few words are frequent (postings of several blocks of 128) and lengths vary."""
    n = draw(st.integers(150, 700))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(len(VOCAB), 0.7))
    docs = []
    for _ in range(n):
        length = int(rng.integers(1, 30))
        words = rng.choice(VOCAB, size=length, p=weights)
        docs.append(" ".join(words))
    return docs, seed


@settings(max_examples=25, deadline=None)
@given(
    corpus=corpora(),
    query=st.lists(st.sampled_from(VOCAB), min_size=1, max_size=4),
    k=st.integers(1, 40),
    per_document=st.booleans(),
    split=st.integers(0, 3),
    passage_words=st.sampled_from([0, 8]),
    lang=st.sampled_from(["en", "id"]),  # Indonesian scores with BM25+ (its delta in every bound)
)
def test_block_max_returns_exactly_the_top_k_of_exhaustive_evaluation(
    tmp_path_factory, corpus, query, k, per_document, split, passage_words, lang
) -> None:
    docs, seed = corpus
    idx = Index.create(tmp_path_factory.mktemp("bm") / "idx", passage_words=passage_words)
    cut = len(docs) * split // 4
    for lo, hi in ((0, cut), (cut, len(docs))):  # one or two segments
        if hi > lo:
            with idx.writer() as w:
                for i in range(lo, hi):
                    w.add(Document(f"d{i:04d}", docs[i], lang=lang))
    if seed % 3 == 0:  # deletions: bounds still hold (they cover deleted passages too)
        with idx.writer() as w:
            for i in range(0, len(docs), 7):
                w.delete(f"d{i:04d}")
    snap = idx._snapshot
    parsed = parse_query(" ".join(query))

    def ranking(pruning: str):
        ctx = idx.query_context(snap, None, None, None)
        ctx.pruning = pruning
        ctx.per_document = per_document
        qw = QueryWeight(ctx, parsed.root, [lang])
        return qw.found(k), top_rows(snap, qw.found(k), {lang: 1.0}, k, per_document)

    _, exhaustive = ranking("none")
    ctx = idx.query_context(snap, None, None, None)
    ctx.pruning = "none"
    full = {si: (p, s) for _, si, p, s in QueryWeight(ctx, parsed.root, [lang]).found()}
    for mode in ("blockmax", "auto"):
        pruned_found, pruned = ranking(mode)
        assert pruned == exhaustive, mode  # same passages, same order, the same float scores
        # every passage a pruned evaluation returns has its exhaustive score, bit for bit
        for _, si, pids, scores in pruned_found:
            epids, escores = full[si]
            at = np.searchsorted(epids, pids)
            assert np.array_equal(epids[at], pids) and np.array_equal(escores[at], scores), mode


@pytest.mark.parametrize(("pruning", "calls"), [("blockmax", True), ("auto", False), ("none", False)])
def test_only_a_forced_blockmax_takes_the_block_max_path(index: Index, monkeypatch, pruning: str, calls: bool) -> None:
    """"auto" evaluates ranked ORs exhaustively (block-max lost to it on 50k Indonesian passages):
    the block-max evaluator is entered only when a caller asks for it, and the answer is the same."""
    import search.blockmax

    entered = []
    real = search.blockmax.block_max_or

    def counting(*args, **kwargs):
        entered.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(search.blockmax, "block_max_or", counting)
    snap = index._snapshot
    parsed = parse_query("river city road")
    ctx = index.query_context(snap, None, None, None)
    ctx.pruning = pruning
    got = top_rows(snap, QueryWeight(ctx, parsed.root, ["en"]).found(3), {"en": 1.0}, 3, True)
    ctx = index.query_context(snap, None, None, None)
    ctx.pruning = "none"
    assert got == top_rows(snap, QueryWeight(ctx, parsed.root, ["en"]).found(3), {"en": 1.0}, 3, True)
    assert got  # the query matches: the path question is not vacuous
    assert bool(entered) is calls


def split_index(root, docs: list[str], split: int, titled: bool = False) -> Index:
    """An index of ``docs`` in one or two segments (the first ``split`` quarters, then the rest), 8-word
    passages; ``titled``: document i's title is the start of document 7i's text (title-only words)."""
    idx = Index.create(root / "idx", passage_words=8)
    cut = len(docs) * split // 4
    for lo, hi in ((0, cut), (cut, len(docs))):
        if hi > lo:
            with idx.writer() as w:
                for i in range(lo, hi):
                    title = docs[(i * 7) % len(docs)][:20] if titled else ""
                    w.add(Document(f"d{i:04d}", docs[i], title=title, lang="en"))
    return idx


@settings(max_examples=25, deadline=None)
@given(
    corpus=corpora(),
    query=st.lists(st.sampled_from(VOCAB), min_size=1, max_size=9),
    k=st.integers(1, 40),
    split=st.integers(0, 3),
)
def test_the_ranked_or_path_equals_the_general_path_and_small_sets_rank_as_large_ones(
    tmp_path_factory, corpus, query, k, split
) -> None:
    """A ranked OR of plain words takes a direct path (``BooleanScorer._ranked_or``): it returns what the
    general boolean path returns, bit for bit; and ``top_rows`` ranks a small candidate set (one sort)
    exactly as a large one (partition, then sort), ties at the boundary included."""
    import search.selection

    idx = split_index(tmp_path_factory.mktemp("or"), corpus[0], split)
    snap = idx._snapshot
    parsed = parse_query(" ".join(query))
    ctx = idx.query_context(snap, None, None, None)
    qw = QueryWeight(ctx, parsed.root, ["en"])
    assert isinstance(qw.by_lang["en"], BooleanWeight) and qw.by_lang["en"].ranked_or
    direct = qw.found(k)
    ctx = idx.query_context(snap, None, None, None)
    qw = QueryWeight(ctx, parsed.root, ["en"])
    qw.by_lang["en"].ranked_or = False  # the general path
    general = qw.found(k)
    assert [(a[:2]) for a in direct] == [(b[:2]) for b in general]
    for a, b in zip(direct, general):
        assert np.array_equal(a[2], b[2]) and np.array_equal(a[3], b[3])
    ranked = top_rows(snap, direct, {"en": 1.0}, k, True)
    weighed = top_rows(snap, direct, {"en": 0.3}, k, True)  # a language weight scales every score
    for sort_list, sort_all in ((0, 256), (0, 0), (1 << 30, 0)):  # numpy sort, partition, Python sort
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(search.selection, "SORT_LIST", sort_list)
            mp.setattr(search.selection, "SORT_ALL", sort_all)
            assert top_rows(snap, direct, {"en": 1.0}, k, True) == ranked
            assert top_rows(snap, direct, {"en": 0.3}, k, True) == weighed
            assert top_rows(snap, direct, {"en": 1.0}, k, False) == top_rows(snap, general, {"en": 1.0}, k, False)


@settings(max_examples=25, deadline=None)
@given(
    corpus=corpora(),
    query=st.lists(st.sampled_from(VOCAB), min_size=2, max_size=5),
    title=st.booleans(),
    split=st.integers(0, 3),
)
def test_a_conjunction_of_terms_equals_the_general_path(tmp_path_factory, corpus, query, title, split) -> None:
    """"a AND b" takes a direct path (``BooleanScorer._conjunction``): the same passages and the same
    clause-order sums as the general boolean path, bit for bit, title-only words among the terms too,
    whether a longer clause is searched or read through a dense array."""
    import search.scorers
    idx = split_index(tmp_path_factory.mktemp("and"), corpus[0], split, titled=True)
    words = [f"title:{q}" if title and i == 0 else q for i, q in enumerate(query)]
    parsed = parse_query(" AND ".join(words))
    snap = idx._snapshot

    def found(conjunction: bool, gather_dense: int = 32):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(search.scorers, "GATHER_DENSE", gather_dense)
            ctx = idx.query_context(snap, None, None, None)
            qw = QueryWeight(ctx, parsed.root, ["en"])
            w = qw.by_lang["en"]
            assert isinstance(w, BooleanWeight) and w.conjunction
            w.conjunction = conjunction
            return qw.found(10)

    general = found(False)
    for gather_dense in (0, 32, 1 << 40):  # binary search only, either, a dense array only
        direct = found(True, gather_dense)
        assert [a[:2] for a in direct] == [b[:2] for b in general]
        for a, b in zip(direct, general):
            assert np.array_equal(a[2], b[2]) and np.array_equal(a[3], b[3])


@settings(max_examples=25, deadline=None)
@given(
    corpus=corpora(),
    query=st.lists(
        st.tuples(st.sampled_from(["", "", "", "-", "title:"]), st.sampled_from(VOCAB)), min_size=2, max_size=9
    ),
    k=st.integers(1, 40),
    split=st.integers(0, 3),
)
def test_dense_and_sparse_sums_give_the_same_scores(tmp_path_factory, corpus, query, k, split) -> None:
    """Clauses are added up over a dense array or by sorting their postings (``scorers._dense`` picks by
    the segment's size): every passage gets the same float sum either way, bit for bit, and the ranking
    is the same, for ranked ORs and for ORs with NOT or title words (the general path)."""
    import search.scorers

    idx = split_index(tmp_path_factory.mktemp("dense"), corpus[0], split, titled=True)
    parsed = parse_query(" ".join(op + word for op, word in query))
    snap = idx._snapshot

    def evaluate(dense: bool, top_n: int):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(search.scorers, "DENSE_RATIO", 1 << 40 if dense else 0)
            mp.setattr(search.scorers, "DENSE_SMALL", 1 << 40 if dense else 0)
            ctx = idx.query_context(snap, None, None, None)
            found = QueryWeight(ctx, parsed.root, ["en"]).found(top_n)
            return found, top_rows(snap, found, {"en": 1.0}, k, True)

    (dense_all, _), (sparse_all, _) = evaluate(True, 0), evaluate(False, 0)
    assert [a[:2] for a in dense_all] == [b[:2] for b in sparse_all]
    for a, b in zip(dense_all, sparse_all):
        assert np.array_equal(a[2], b[2]) and np.array_equal(a[3], b[3])
    assert evaluate(True, k)[1] == evaluate(False, k)[1]


def test_what_an_index_keeps_across_searches_follows_its_commits(tmp_path) -> None:
    """Parses, analyses, term slots and df are kept across searches (per index, per snapshot): a word a
    later commit adds is found with the scores a fresh index gives, a deleted one is gone, and a query
    that fails to parse fails every time."""
    from search.errors import InvalidArgument, QuerySyntaxError

    idx = Index.create(tmp_path / "a")
    with idx.writer() as w:
        w.add(Document("a", "the river and the city", lang="en"))
    assert idx.search("bridge river") and [h.doc_id for h in idx.search("bridge")] == []
    with idx.writer() as w:
        w.add(Document("b", "a bridge over the river", lang="en"))
    fresh = Index.create(tmp_path / "b")
    with fresh.writer() as w:
        w.add(Document("a", "the river and the city", lang="en"))
        w.add(Document("b", "a bridge over the river", lang="en"))
    for q in ("bridge", "bridge river", "river"):
        got = [(h.doc_id, h.score) for h in idx.search(q)]
        assert got == [(h.doc_id, h.score) for h in fresh.search(q)] and got
    with idx.writer() as w:
        w.delete("b")
    assert [h.doc_id for h in idx.search("bridge")] == []
    for _ in range(2):
        with pytest.raises(QuerySyntaxError):
            idx.search('"unclosed')
        with pytest.raises(InvalidArgument):
            idx.search("river", filter=["not", "a", "string"])  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(["AND", "OR", "NOT", "and", "river", "Rumah", "2020", "naïve", "ß", "北京", "²"]),
                st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=6),
            ),
            st.sampled_from([" ", "  ", "\t", "\u00a0", "\u2003", "\n", "\x1c"]),
        ),
        max_size=8,
    )
)
def test_plain_words_parse_as_the_parser_parses_them(parts) -> None:
    """``parse_query`` skips the character lexer for plain words (letters and digits, no operator word):
    it must give what the full parser gives, operator words and Unicode spaces included."""
    from search.query import _Parser

    text = "".join(w + s for w, s in parts)
    assert parse_query(text, {"year": "int"}) == _Parser(text, {"year": "int"}).parse()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**40), 2**40), max_size=300), st.sampled_from(["int64", "int32", "uint32", "float64"]))
def test_sorted_unique_equals_numpy_unique(values: list[int], dtype: str) -> None:
    """``search.arrays.sorted_unique`` (numpy 2's hashing ``unique`` is slow on a query's small arrays)."""
    from search.arrays import sorted_unique

    a = np.array(values).astype(dtype)
    got = sorted_unique(a)
    assert got.dtype == np.unique(a).dtype and np.array_equal(got, np.unique(a))


def test_a_zero_scoring_group_matches_on_the_dense_path(tmp_path) -> None:
    """A group of filters and NOT words scores 0.0 and still matches: the dense path (every small
    segment's OR) keeps it as the sparse path does, in hits and in facets (found by a review)."""
    idx = Index.create(tmp_path / "i", fields={"source": "keyword"})
    with idx.writer() as w:
        w.add(Document("a", "pajak daerah naik", lang="id", meta={"source": "x"}))
        w.add(Document("c", "kota besar ramai", lang="id", meta={"source": "z"}))
        for i in range(100):
            w.add(Document(f"f{i:03d}", f"filler kata lain {i}", lang="id", meta={"source": "q"}))
    q = "pajak OR (-turun source:z)"
    hits = idx.search(q, lang="id")
    assert [h.doc_id for h in hits] == ["a", "c"] and hits[1].score == 0.0
    assert idx.facets(q, ["source"], lang="id") == {"source": {"x": 1, "z": 1}}


def test_a_sharded_fuzzy_query_with_not_finds_what_one_index_finds(tmp_path) -> None:
    """A shard's first phase may score an expanded word below 0 (its own N, the df of every shard):
    the dense path keeps such passages, so the languages a query matches in are the same as one
    index's and the ranking is too (found by a review: [] and a KeyError before)."""
    from search import ShardedIndex

    docs = [Document(f"en{i}", "the city council met", lang="en") for i in range(12)]
    docs += [Document(f"id{i}", f"pajak daerah kota besar nomor {i}", lang="id") for i in range(60)]
    one = Index.create(tmp_path / "one", passage_words=0)
    sh = ShardedIndex.create(tmp_path / "s", shards=3, passage_words=0)
    for idx in (one, sh):
        with idx.writer() as w:
            for d in docs:
                w.add(d)
    for q in ("city~ council -river", "pajak OR -river OR city~"):
        expected = [(h.doc_id, h.score) for h in one.search(q, k=3)]
        assert expected, q
        got = [(h.doc_id, h.score) for h in sh.search(q, k=3)]
        assert [g[0] for g in got] == [e[0] for e in expected], q
        assert all(abs(g[1] - e[1]) <= 1e-9 for g, e in zip(got, expected)), q
