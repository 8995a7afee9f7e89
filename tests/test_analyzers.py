"""analyzers: stemmer tables from their sources, the tokenizer table of issue 3, and properties on any text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analyzers
from analyzers import Token
from analyzers import base as analyzer_base
from analyzers.base import RUN_RE, TOKEN_RE, tokenize

ID = analyzers.get("id")
EN = analyzers.get("en")
ID2 = analyzers.get("id", version="2")  # stopwords left out of the index, as indexes built before version 3


def terms(an: analyzers.Analyzer, text: str) -> list[str]:
    return [t.term for t in an.analyze(text)]


def surfaces(text: str, tokens: list[Token]) -> list[str]:
    return [text[t.start : t.end] for t in tokens]


# -- stemmers: tables from their sources (Tala 2003 / Snowball indonesian, Porter / Snowball english) ------
@pytest.mark.parametrize(
    "word,stem",
    [
        ("mengukur", "ukur"),
        ("pembangunan", "bangun"),
        ("kekuatan", "kuat"),
        ("melarikan", "lari"),
        ("perbatasan", "batas"),
        ("penyeberangan", "seberang"),
    ],
)
def test_indonesian_stems(word: str, stem: str) -> None:
    assert analyzers.id.stem(word) == stem
    assert terms(ID, word) == [stem]
    assert terms(ID, word.upper()) == [stem]


@pytest.mark.parametrize("word,stem", [("crossing", "cross"), ("citizens", "citizen"), ("running", "run")])
def test_english_stems(word: str, stem: str) -> None:
    assert analyzers.en.stem(word) == stem
    assert terms(EN, word) == [stem]


def test_query_and_document_meet_on_the_stem() -> None:
    assert ID.query_terms("melarikan diri") == ["lari", "diri"]
    assert {"lari", "diri"} <= set(terms(ID, "Warga Rusia melarikan diri ke perbatasan"))
    assert ID2.query_terms("melarikan diri") == ["lari"]


# -- the tokenizer table of issue 3 ------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,expected",
    [
        # reduplication: one token, the base word, spanning the whole word
        ("orang-orang", [("orang", 0, "orang-orang")]),
        ("Anak-anak", [("anak", 0, "Anak-anak")]),
        # other hyphenated words: the parts at consecutive positions
        ("anti-mobilisasi", [("anti", 0, "anti"), ("mobilisasi", 1, "mobilisasi")]),
        ("e-mail", [("e", 0, "e"), ("mail", 1, "mail")]),
        # possessive dropped (ASCII and typographic apostrophe); an inner apostrophe stays
        ("Russia's", [("russia", 0, "Russia's")]),
        ("Russia\u2019s", [("russia", 0, "Russia\u2019s")]),
        ("Jum'at", [("jum'at", 0, "Jum'at")]),
        # numbers kept whole
        ("2022 1.000 3,5", [("2022", 0, "2022"), ("1.000", 1, "1.000"), ("3,5", 2, "3,5")]),
        # addresses: their word parts
        ("user@example.com", [("user", 0, "user"), ("example", 1, "example"), ("com", 2, "com")]),
        ("https://x.org/a", [("https", 0, "https"), ("x", 1, "x"), ("org", 2, "org"), ("a", 3, "a")]),
        # "_" is not a letter
        ("snake_case", [("snake", 0, "snake"), ("case", 1, "case")]),
    ],
)
def test_tokenizer_table(text: str, expected: list[tuple[str, int, str]]) -> None:
    plain = analyzers.get("id", stem_words=False, stopwords=False)
    tokens = plain.analyze(text)
    assert [(t.term, t.position, text[t.start : t.end]) for t in tokens] == expected


def test_reduplication_can_be_switched_off() -> None:
    an = analyzers.get("id", stem_words=False, reduplication=False)
    assert [(t.term, t.position) for t in an.analyze("orang-orang")] == [("orang", 0), ("orang", 1)]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("ＴＥＬＵＳＵＲ", ["telusur"]),  # fullwidth letters (NFKC)
        ("\ufb01nance", ["finance"]),  # the "fi" ligature (NFKC)
        ("Straße STRASSE", ["strasse", "strasse"]),  # German sharp s (casefold)
        ("\u01c5emal", ["d\u017eemal"]),  # titlecase digraph "Dž"
        ("x\u00b2", ["x2"]),  # superscript two (NFKC)
        ("İstanbul", ["i\u0307stanbul"]),  # Turkish dotted I: casefold keeps the dot as a combining mark
        ("cafe\u0301 caf\u00e9", ["caf\u00e9", "caf\u00e9"]),  # decomposed and composed accent: one term
    ],
)
def test_nfkc_and_casefold_keep_offsets_on_the_original(text: str, expected: list[str]) -> None:
    plain = analyzers.get("en", stem_words=False, stopwords=False)
    tokens = plain.analyze(text)
    assert [t.term for t in tokens] == expected
    assert " ".join(surfaces(text, tokens)) == text  # each token covers exactly its surface word


def test_stopwords_leave_position_gaps() -> None:
    text = "Dia dan saya pergi ke pasar"
    tokens = ID2.analyze(text)
    assert [(t.term, t.position) for t in tokens] == [("pergi", 3), ("pasar", 5)]
    assert surfaces(text, tokens) == ["pergi", "pasar"]
    assert [(t.term, t.position) for t in EN.analyze("the cat and the dog")] == [("cat", 1), ("dog", 4)]


def test_indonesian_indexes_every_word_and_marks_query_word_kinds() -> None:
    from analyzers.base import CONTENT, FUNCTION, QUESTION

    text = "Dia dan saya pergi ke pasar"
    assert [(t.term, t.position) for t in ID.analyze(text)] == [
        ("dia", 0),
        ("dan", 1),
        ("saya", 2),
        ("pergi", 3),
        ("ke", 4),
        ("pasar", 5),
    ]
    assert ID.query_columns("Kapan dia pergi ke pasar?") == (
        ["kapan", "dia", "pergi", "ke", "pasar"],
        [0, 1, 2, 3, 4],
        [QUESTION, FUNCTION, CONTENT, FUNCTION, CONTENT],
    )
    # Tala stopwords, or their one-word interrogative spellings that TyDi questions use ("di mana")
    tala = analyzers.id.STOPWORDS
    for w in ID.question_words:
        assert w in tala or any(w == p + t + s for p in ("", "di", "dari", "ke") for t in tala for s in ("", "kah"))
    assert {"apa", "siapa", "kapan", "berapa", "dimana", "dimanakah", "darimana"} <= ID.question_words
    assert not ({"yang", "tersebut", "sama", "dalam"} & ID.question_words)
    # framing words are function words at query time (dropped from questions), never question words
    assert ID.query_columns("berapa jumlah penduduk")[2] == [QUESTION, FUNCTION, CONTENT]
    assert ID.query_columns("dimanakah candi Borobudur")[2] == [QUESTION, CONTENT, CONTENT]
    assert {"dimaksud", "jumlah", "pengertian"} <= analyzers.id.FRAMING_WORDS <= ID.query_stopwords
    assert not (analyzers.id.FRAMING_WORDS & tala)
    # query side only: a framing word is indexed and stemmed as before
    assert [t.term for t in ID.analyze("jumlah yang dimaksud")] == ["jumlah", "yang", "maksud"]


def test_stopword_lists_name_their_source() -> None:
    assert {"yang", "dan", "di", "dari", "ini"} <= analyzers.id.STOPWORDS
    assert {"the", "and", "of", "is"} <= analyzers.en.STOPWORDS
    assert "rusia" not in analyzers.id.STOPWORDS


def test_offsets_slice_the_surface_words() -> None:
    text = "Warga Rusia melarikan diri ke perbatasan, kata pejabat (Senin 3/10)."
    tokens = ID2.analyze(text)
    assert surfaces(text, tokens) == [
        "Warga",
        "Rusia",
        "melarikan",
        "perbatasan",
        "kata",
        "pejabat",
        "Senin",
        "3",
        "10",
    ]
    assert [t.term for t in tokens] == ["warga", "rusia", "lari", "batas", "kata", "jabat", "senin", "3", "10"]


@pytest.mark.parametrize("text", ["", "   ", "...!?", "— – -- ''", "_ __ ___"])
def test_no_words_no_tokens(text: str) -> None:
    assert ID.analyze(text) == []
    assert ID.analyze_columns(text) == ([], [])
    assert ID.query_terms(text) == []


def test_registry() -> None:
    assert analyzers.names() == ["en", "id"]
    assert analyzers.get("id") is analyzers.get("id")
    assert analyzers.get("id", stopwords=False) is not analyzers.get("id")
    assert (analyzers.get("id").version, analyzers.get("en").version) == (analyzers.id.VERSION, analyzers.en.VERSION)
    with pytest.raises(ValueError, match="unknown analyzer 'fr'; choose one of: en, id"):
        analyzers.get("fr")
    assert analyzers.versions("id") == ("2", "3", "4", "5", "6") and analyzers.get("id", version="2").version == "2"
    with pytest.raises(ValueError, match="unknown Indonesian analyzer version '9'"):
        analyzers.get("id", version="9")


def test_indexer_path_matches_analyze_on_mixed_text() -> None:
    text = (
        "Anak-anak anti-mobilisasi e-mail Russia's 1.000 3,5kg user@example.com https://x.org/a a_b "
        "end.Next cafe\u0301 ＴＥＬＵＳＵＲ orang-orang-orang 1.000-an ke-2 Jum'at 'quoted' l'été"
    )
    for an in (ID, ID2, EN, analyzers.get("id", reduplication=False)):
        columns = an.columns_from_raw(analyzers.tokenize(text))
        assert columns == an.analyze_columns(text)
        tokens = an.analyze(text)
        assert columns == ([t.term for t in tokens], [t.position for t in tokens])


# -- properties on any text ------------------------------------------------------------------------------
# Arbitrary Unicode (no surrogates) plus a strong dose of what tokenizers trip on: combining marks, RTL
# scripts, emoji with joiners, digits of other scripts, hyphens, apostrophes, separators and underscores.
_TRICKY = st.sampled_from(
    list("-'\u2019.,_@/ \t\n\u00ad\u200b\u200c\u200d\ufeff\u0301\u0308\u0327\u093f\u0e31\u064b")
    + [
        "\u05e9\u05dc\u05d5\u05dd",
        "\u0645\u0631\u062d\u0628\u0627",
        "\U0001f469\u200d\U0001f4bb",
        "\U0001f1ee\U0001f1e9",
    ]
    + ["\u0661\u0662", "\u0967\u0968", "\u00bd", "\u2460", "\u0130", "\u00df", "\ufb01", "\uff21"]
    + ["orang-orang", "Russia's", "1.000", "3,5", "yang", "the", "e-mail", "dan"]
)
_TEXT = st.lists(st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=12), _TRICKY), max_size=30).map(
    "".join
)

_ANALYZERS = [ID, ID2, EN, analyzers.get("en", stem_words=False, stopwords=False, reduplication=False)]


@settings(max_examples=200, deadline=None)
@given(_TEXT)
def test_any_text_gives_sane_tokens(text: str) -> None:
    for an in _ANALYZERS:
        tokens = an.analyze(text)
        for t in tokens:
            assert 0 <= t.start < t.end <= len(text)
            assert t.term
        positions = [t.position for t in tokens]
        assert positions == sorted(set(positions))  # strictly increasing
        starts = [t.start for t in tokens]
        assert starts == sorted(starts)
        assert an.analyze(text) == tokens  # deterministic
        assert an.analyze_columns(text) == ([t.term for t in tokens], positions)
        assert an.columns_from_raw(analyzers.tokenize(text)) == ([t.term for t in tokens], positions)


@settings(max_examples=200, deadline=None)
@given(_TEXT)
def test_fresh_analyzer_equals_the_cached_one(text: str) -> None:
    for name in ("id", "en"):
        shared = analyzers.get(name)
        shared.analyze_columns(text)  # warm the shared cache with this very text
        fresh = analyzers._FACTORIES[name]()
        assert fresh.analyze_columns(text) == shared.analyze_columns(text)
        assert fresh.analyze(text) == shared.analyze(text)


@settings(max_examples=200, deadline=None)
@given(st.text(st.sampled_from("aeiouAEIOUcnsyz \u0301\u0300\u0308\u0327\u0303-'"), max_size=40))
def test_composed_and_decomposed_text_give_the_same_terms(text: str) -> None:
    nfc, nfd = unicodedata.normalize("NFC", text), unicodedata.normalize("NFD", text)
    assert EN.analyze_columns(nfc) == EN.analyze_columns(nfd)


@settings(max_examples=200, deadline=None)
@given(_TEXT)
def test_tokenize_runs_hold_whole_token_matches(text: str) -> None:
    """Every TOKEN_RE match lies inside one raw run of ``tokenize`` (what makes the indexer path exact)."""
    runs = []
    pos = 0
    for run in analyzers.tokenize(text):
        pos = text.index(run, pos)
        runs.append((pos, pos + len(run)))
        pos += len(run)
    for m in TOKEN_RE.finditer(text):
        assert any(s <= m.start() and m.end() <= e for s, e in runs)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abc AB-'.,1é\u0301İß")), max_size=60), st.data())
def test_match_spans_equals_filtered_analyze(text: str, data) -> None:
    an = analyzers.get("en")
    terms = {t.term for t in an.analyze(text)}
    wanted = set(data.draw(st.lists(st.sampled_from(sorted(terms)), max_size=3))) if terms else set()
    expected = [(t.term, t.start, t.end) for t in an.analyze(text) if t.term in wanted]
    one_pass = analyzer_base.ONE_PASS_CHARS
    try:  # the two-pass way (long texts) and the one-pass way (a passage), each forced here
        for analyzer_base.ONE_PASS_CHARS in (-1, 1 << 30):
            assert an.match_spans(text, wanted) == expected
    finally:
        analyzer_base.ONE_PASS_CHARS = one_pass


_LAYOUT_PIECES = ["ibukota", "ibukotanya", "kota", "orang-orang", "e-mail", "a_b", "3.5", "Jum'at", "end.Next"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from([*_LAYOUT_PIECES, *"abc AB-'.,_1é\u0301İß", " ", ". "]), max_size=40).map("".join),
    st.data(),
)
def test_run_layout_places_the_words_and_matches_of_analyze(text: str, data) -> None:
    """Each run's words and matches from ``run_layout``, placed at the run's start, are the text's
    ``TOKEN_RE`` words and the wanted tokens of ``analyze`` (for English and Indonesian, whose compounds
    split a plain run)."""
    for an in (analyzers.get("en"), analyzers.get("id")):
        terms = {t.term for t in an.analyze(text)}
        wanted = set(data.draw(st.lists(st.sampled_from(sorted(terms)), max_size=3))) if terms else set()
        wanted.add("")  # a stopword's term: never a match
        runs = list(RUN_RE.finditer(text))
        layout = an.run_layout([m.group() for m in runs], wanted)
        placed_words = [(m.start() + s, m.start() + e) for m in runs for s, e in layout[m.group()][0]]
        placed_matches = [(t, m.start() + s, m.start() + e) for m in runs for t, s, e in layout[m.group()][1]]
        assert placed_words == [m.span() for m in TOKEN_RE.finditer(text)]
        assert placed_matches == [(t.term, t.start, t.end) for t in an.analyze(text) if t.term in wanted]


def test_stemming_from_many_threads_gives_the_same_terms() -> None:
    """PyStemmer objects must not be shared between threads; each thread stems with its own."""
    import threading

    from analyzers import en as en_pkg
    from analyzers import id as id_pkg

    words = [
        f"{stem}{suffix}"
        for stem in ("mengukur", "pembangun", "perbatas", "crossing", "citizen")
        for suffix in ("", "an", "kan", "nya", "s", "ing", "ed")
    ] * 40
    expected = {w: (id_pkg.stem(w), en_pkg.stem(w)) for w in words}
    errors: list[str] = []

    def work() -> None:
        for w in words:
            got = (id_pkg.stem(w), en_pkg.stem(w))
            if got != expected[w]:
                errors.append(f"{w}: {got} != {expected[w]}")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def _words(n: int, seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(n)]


def test_a_full_cache_never_fails_a_lookup() -> None:
    """With a tiny bound, every path still answers (the old clear-then-read raised KeyError) and the
    cache stays near its bound, with the same terms as an analyzer whose cache never fills."""
    small = analyzers.en.make_analyzer()
    small.cache_limit = 8
    big = analyzers.en.make_analyzer()
    for seed in range(40):
        words = _words(30, seed) + ["running", "co-operate", "Russia's", "3.5kg"]
        text = " ".join(words)
        raw = analyzers.tokenize(text)
        assert small.columns_from_raw(raw) == big.columns_from_raw(raw)
        assert small.analyze_columns(text) == big.analyze_columns(text)
        assert small.run_terms(raw) == big.run_terms(raw)
        wanted = set(big.analyze_columns(text)[0][::3])
        assert small.match_spans(text, wanted) == big.match_spans(text, wanted)
        assert len(small._cache) <= len(set(raw))  # bounded by the limit or one call's distinct runs


def test_a_full_cache_is_safe_from_many_threads() -> None:
    """Threads clearing the shared cache under each other never make a lookup fail or answer wrongly."""
    import threading

    small = analyzers.id.make_analyzer()
    small.cache_limit = 5
    big = analyzers.id.make_analyzer()
    texts = [" ".join(_words(50, seed)) for seed in range(16)]
    expected = [big.analyze_columns(t) for t in texts]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for rep in range(30):
                i = (offset + rep) % len(texts)
                assert small.analyze_columns(texts[i]) == expected[i]
        except BaseException as e:  # collected: an assertion in a thread would otherwise vanish
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_protected_words_keep_roots_apart_and_families_together() -> None:
    # merged roots: "lembaran" (gazette) no longer meets "lembar" (sheet), "keluaran" (output) not "luar"
    assert analyzers.id.stem("lembaran") == "lembar" and terms(ID, "Lembaran lembar") == ["lembaran", "lembar"]
    assert terms(ID, "keluaran") == ["keluaran"]
    # mangled roots: Snowball cuts "perintah" to "intah" but "pemerintah" to "perintah"; protected, they meet
    assert analyzers.id.stem("perintah") == "intah"
    assert terms(ID, "pemerintah perintah") == ["perintah", "perintah"]
    # indexes built with version 3 protect nothing
    assert analyzers.get("id", version="3").term("lembaran") == "lembar"
    assert analyzers.get("id", protected_words=()).term("lembaran") == "lembar"


def test_stem_repairs_join_a_mangled_root_to_its_family() -> None:
    # Snowball cuts the root and not its derived words: "merdeka" -> "rdeka", "kemerdekaan" -> "merdeka"
    assert (analyzers.id.stem("merdeka"), analyzers.id.stem("kemerdekaan")) == ("rdeka", "merdeka")
    assert terms(ID, "Merdeka kemerdekaan") == ["merdeka", "merdeka"]
    # the repair maps the stem, so every word Snowball cuts the same way meets too (not only the root)
    assert analyzers.id.stem("bersekolah") == "seko" and analyzers.id.stem("sekolahnya") == "sekolah"
    assert terms(ID, "sekolah bersekolah sekolahnya") == ["sekolah"] * 3
    assert terms(ID, "industri perindustrian") == ["industri", "industri"]
    # the indexer's bulk path (stemWords) repairs the same stems
    runs = tokenize("Merdeka sekolah kemerdekaan industri")
    assert [t for ts in ID.run_terms(runs) for t in ts] == ["merdeka", "sekolah", "merdeka", "industri"]
    assert ID.terms_of_runs(runs)[2] == ["merdeka", "sekolah", "merdeka", "industri"]
    # a stem shared with a more frequent unrelated word is left alone: "kemudian" (then) is no "kemudi" (helm)
    assert "mudi" not in analyzers.id.STEM_REPAIRS and terms(ID, "kemudian") == ["mudi"]
    # every shipped repair is a stem Snowball gives its root, and no root is itself repaired (no chains)
    for mangled, root in analyzers.id.STEM_REPAIRS.items():
        assert analyzers.id.stem(root) == mangled and root not in analyzers.id.STEM_REPAIRS
    # version 5 indexes and the option off keep Snowball's stems
    assert terms(analyzers.get("id", version="5"), "merdeka sekolah") == ["rdeka", "seko"]
    assert terms(analyzers.get("id", stem_repairs=False), "merdeka sekolah") == ["rdeka", "seko"]


def test_stem_repairs_evidence() -> None:
    from benchmarks.stem_repairs import repairs

    texts = (
        ["Indonesia merdeka, hari kemerdekaan"] * 12  # the root and a word stemmed to it
        + ["kemudi kapal dikemudikan"] * 10  # "kemudi" qualifies as a root, but "kemudian" shares its stem
        + ["kemudian pergi"] * 20  # and is more frequent: no repair
        + ["pengaruh berpengaruh menaruh"] * 10  # "menaruh" (taruh) shares the stem "aruh": no repair
    )
    found = repairs(texts)
    assert found["rdeka"][:2] == ("merdeka", ["kemerdekaan"])
    assert "mudi" not in found and "aruh" not in found


def test_question_pairs_are_question_words_together() -> None:
    from analyzers.base import CONTENT, FUNCTION, QUESTION

    assert analyzers.id.analyzer.QUESTION_PAIRS == {("di", "mana"), ("dari", "mana")}  # dimana, darimana
    assert ID.query_columns("Di mana letak Bandung")[2] == [QUESTION, QUESTION, CONTENT, CONTENT]
    assert ID.query_columns("letak Bandung dari  mana")[2] == [CONTENT, CONTENT, QUESTION, QUESTION]
    assert ID.query_columns("mana di Bandung")[2] == [FUNCTION, FUNCTION, CONTENT]  # the other order
    assert ID.query_columns("di Bandung mana")[2] == [FUNCTION, CONTENT, FUNCTION]  # not together
    assert ID.question_pair("Di", "mana?") and not ID.question_pair("mana", "di")
    assert not analyzers.get("id", stopwords=False).question_pair("di", "mana")  # every word scored
    assert not analyzers.get("en").question_pair("di", "mana")


def test_closed_compounds_meet_their_open_spelling() -> None:
    # "ibukota" is written both ways; version 5 indexes and searches the joined word as its two words
    text = "Ibukota Jepang; ibu kota Jepang; ibukotanya"
    assert terms(ID, text) == ["ibu", "kota", "jepang", "ibu", "kota", "jepang", "ibu", "kota"]
    tokens = ID.analyze("Ibukota")
    assert [(t.term, t.position) for t in tokens] == [("ibu", 0), ("kota", 1)]
    assert surfaces("Ibukota", tokens) == ["Ibu", "kota"]  # each word highlights its own letters
    # a phrase of the open spelling matches the joined one: consecutive positions
    assert ID.query_columns("dimanakah ibukota Jepang")[:2] == (["mana", "ibu", "kota", "jepang"], [0, 1, 2, 3])
    # the indexer's path, the surface words and the highlighting spans agree with analyze
    for sample in (text, "walikota Bandung, Walikota-walikota", "tatacara pemeriksaan ibukota"):
        assert ID.analyze_columns(sample) == (
            [t.term for t in ID.analyze(sample)],
            [t.position for t in ID.analyze(sample)],
        )
        runs = tokenize(sample)
        assert sum(len(ID.run_words(r)) for r in runs) == sum(len(t) for t in ID.run_terms(runs))
    assert [(t, text[s:e]) for t, s, e in ID.match_spans(text, ["kota"])] == [
        ("kota", "kota"),
        ("kota", "kota"),
        ("kota", "kotanya"),
    ]
    # not a compound: a word whose halves only look like words, and older versions and the option off
    assert terms(ID, "barbar tonton") == ["barbar", "tonton"]
    assert terms(analyzers.get("id", version="4"), "ibukota") == ["ibukota"]
    assert terms(analyzers.get("id", compounds=False), "ibukota") == ["ibukota"]
    assert {"ibukota", "walikota", "tandatangan"} <= set(analyzers.id.COMPOUNDS)
