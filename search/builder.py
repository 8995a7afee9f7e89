"""The in-memory segment builder: documents analyzed into a token stream, then one ``SegmentData``.

Used by the writer (its buffer) and by the indexing worker processes (``parallel``): both add documents
until the builder holds about ``buffer_tokens`` indexed tokens, then write ``to_segment_data()`` as a
segment file. Knows nothing of commits, locks or merges.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable
from functools import partial

import numpy as np

from analyzers import tokenize
from analyzers.language import detect_document

from .documents import Document, split_passages
from .segment import SegmentData
from .settings import IndexSettings

TITLE_GAP = 100  # position gap between a passage's text and its title, so phrases never span both
# A run cache value at or above this stands for a word run of several slots ("e-mail", "3.5kg": about 1%
# of runs), whose term ids are ``SegmentBuilder._multi[value - MULTI]``; below it, the one slot's term id.
MULTI = 1 << 31


class _RunIds(dict):
    """Word run -> its slot's term id (0: a stopword) or ``MULTI + i`` (several slots), for one language.

    A run seen for the first time is analyzed on lookup (``__missing__``), so mapping a passage's runs
    is one C-level ``map(runs.__getitem__, raw)`` into an array, with Python only for the new ones."""

    __slots__ = ("new",)
    new: Callable[[str], int]  # analyzes, caches and returns a new run's value (``SegmentBuilder._new_run``)

    def __missing__(self, run: str) -> int:
        return self.new(run)


def content_hash(doc_id: str, text: str, title: str, lang: str, meta_json: str) -> str:
    """``Document.content_hash`` from the fields, in one BLAKE2b call (the same digest: each value is
    length-prefixed, and hashing the concatenation equals hashing the parts in turn)."""
    h = hashlib.blake2b(digest_size=16)
    for value in (doc_id, text, title, lang, meta_json):  # part by part: a huge text is not copied twice
        data = value.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


class SegmentBuilder:
    """Analyzed documents not yet written as a segment: a token stream in columns plus passage and document tables."""

    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self.keys: list[str] = [""]  # term id 0 marks a stopword's slot in the run cache; never written
        self.vocab: dict[str, dict[str, int]] = {}
        # One slot per word position, 0 for a stopword: each passage appends its text's slots, then its
        # title's slots twice (as text terms, then as title-field terms). Positions, passage ids and
        # lengths follow from the slot counts at flush, in numpy, instead of per token in Python.
        self.tok_tid = array("I")
        self.p_body = array("I")  # text slots per passage
        self.p_title = array("I")  # title slots per passage (stored twice)
        self._indexed = 0
        self.p_doc = array("I")
        self.p_no = array("I")
        self.p_start = array("Q")
        self.p_end = array("Q")
        self.p_lang: list[str] = []
        self.doc_ids: list[str] = []
        self.doc_texts: list[str] = []
        self.doc_titles: list[str] = []
        self.doc_metas: list[str] = []
        self.doc_langs: list[str] = []
        self.doc_hashes: list[str] = []
        self.ids: set[str] = set()
        self._titles: dict[str, tuple[str, list[int], list[int]]] = {}
        self._runs: dict[str, _RunIds] = {}  # lang -> word run -> term id (see ``_RunIds``)
        self._multi: list[tuple[int, ...]] = []  # the term ids of each run of several slots
        self._multi_indexed: list[int] = []  # and how many of them are not stopwords
        # runs whose surface word is the run lowercased (one indexed slot, ASCII letters and digits:
        # most of them, listed in C at flush), and the others (a Python loop at flush)
        self._plain_runs: dict[str, list[str]] = {}
        self._other_runs: dict[str, list[str]] = {}
        self._title_texts: set[tuple[str, str]] = set()  # (lang, title) seen, for the surface words

    def __len__(self) -> int:
        return len(self.doc_ids)

    @property
    def n_tokens(self) -> int:
        """Indexed tokens buffered (stopword slots not counted): what ``buffer_tokens`` bounds."""
        return self._indexed

    def _ids(self, prefix: str, terms: list[str]) -> list[int]:
        vocab = self.vocab.get(prefix)
        if vocab is None:
            vocab = self.vocab[prefix] = {}
        ids = list(map(vocab.get, terms))
        if None in ids:
            keys = self.keys
            for i, t in enumerate(terms):
                if ids[i] is None:
                    tid = vocab.get(t)
                    if tid is None:
                        tid = vocab[t] = len(keys)
                        keys.append(prefix + t)
                    ids[i] = tid
        return ids  # type: ignore[return-value]

    def _run_ids(self, lang: str) -> _RunIds:
        runs = self._runs.get(lang)
        if runs is None:
            an = self.settings.analyzer(lang)
            vocab = self.vocab.setdefault(f"{lang}:", {})
            plain = self._plain_runs.setdefault(lang, [])
            other = self._other_runs.setdefault(lang, [])
            runs = self._runs[lang] = _RunIds()
            runs.new = partial(self._new_run, runs, an.run_terms_of, vocab, f"{lang}:", plain, other)
        return runs

    def _new_run(
        self,
        runs: _RunIds,
        run_terms: Callable[[str], tuple[str, ...]],
        vocab: dict[str, int],
        prefix: str,
        plain: list[str],
        other: list[str],
        run: str,
    ) -> int:
        """Analyze a run seen for the first time and cache its term id(s), assigning new ids in slot order."""
        terms = run_terms(run)
        keys = self.keys
        ids = []
        for t in terms:
            if not t:
                ids.append(0)
                continue
            tid = vocab.get(t)
            if tid is None:
                tid = vocab[t] = len(keys)
                keys.append(prefix + t)
            ids.append(tid)
        if len(ids) == 1:
            value = ids[0]
            if value:
                (plain if run.isascii() and run.isalnum() else other).append(run)
        else:
            value = MULTI + len(self._multi)
            self._multi.append(tuple(ids))
            self._multi_indexed.append(len(ids) - ids.count(0))
            other.append(run)
        runs[run] = value
        return value

    def _expand(self, ids: array) -> tuple[array, int]:
        """A passage's slots from its run values (runs of several slots spliced in) and its indexed count."""
        multi, multi_indexed = self._multi, self._multi_indexed
        out = array("I")
        indexed = len(ids) - ids.count(0)
        prev = 0
        for i in [i for i, v in enumerate(ids) if v >= MULTI]:
            m = ids[i] - MULTI
            out += ids[prev:i]
            out.extend(multi[m])
            indexed += multi_indexed[m] - 1
            prev = i + 1
        out += ids[prev:]
        return out, indexed

    def add(self, doc: Document) -> None:
        """Analyze ``doc`` passage by passage and append it (the indexing hot path)."""
        self.add_fields(doc.id, doc.text, doc.title, doc.lang, doc.meta_json())

    def _title(self, lang: str, title: str) -> tuple[list[int], list[int]]:
        """The title's slots in ``lang`` as text-term ids and as title-field ids (0: a stopword). The last
        title per language is kept, since consecutive passages of one document share it. The passage's
        text terms have their ids already, so new title terms get theirs after them."""
        hit = self._titles.get(lang)
        if hit is not None and hit[0] == title:
            return hit[1], hit[2]
        tterms, tpos = self.settings.analyzer(lang).analyze_columns(title) if title else ([], [])
        if title:
            self._title_texts.add((lang, title))
        text_flat: list[int] = []
        title_flat: list[int] = []
        if tterms:
            text_ids = self._ids(f"{lang}:", tterms)
            title_ids = self._ids(f"{lang}:title:", tterms)
            text_flat = [0] * (tpos[-1] + 1)
            title_flat = [0] * (tpos[-1] + 1)
            for p, a, b in zip(tpos, text_ids, title_ids):
                text_flat[p] = a
                title_flat[p] = b
        self._titles[lang] = (title, text_flat, title_flat)
        return text_flat, title_flat

    def add_fields(self, doc_id: str, text: str, title: str, lang: str | None, meta_json: str) -> None:
        """``add`` for a validated document given as its fields (``meta_json`` as ``Document.meta_json``)."""
        settings = self.settings
        spans = split_passages(text, settings.passage_words)
        if lang is not None:
            langs = [lang] * len(spans)
            # one passage's words at a time: a huge document never holds all its words as strings at once
            raws = iter([tokenize(text)]) if len(spans) == 1 else (tokenize(text[s:e]) for s, e in spans)
        else:
            raws = [tokenize(text)] if len(spans) == 1 else [tokenize(text[s:e]) for s, e in spans]
            texts = [text] if len(spans) == 1 else [text[s:e] for s, e in spans]
            langs = [settings.default_language if c == "und" else c for c in detect_document(list(zip(raws, texts)))]
        d = len(self.doc_ids)
        tok = self.tok_tid
        multi = self._multi
        for no, ((start, end), raw, plang) in enumerate(zip(spans, raws, langs)):
            ids = array("I", map(self._run_ids(plang).__getitem__, raw))
            if multi and ids and max(ids) >= MULTI:
                ids, indexed = self._expand(ids)
            else:
                indexed = len(ids) - ids.count(0)
            tok += ids
            self.p_body.append(len(ids))
            text_flat, title_flat = self._title(plang, title)
            if text_flat:
                tok.extend(text_flat)
                tok.extend(title_flat)
            self.p_title.append(len(text_flat))
            self._indexed += indexed + 2 * (len(text_flat) - text_flat.count(0))
            self.p_doc.append(d)
            self.p_no.append(no)
            self.p_start.append(start)
            self.p_end.append(end)
            self.p_lang.append(plang)
        self.doc_ids.append(doc_id)
        self.doc_texts.append(text)
        self.doc_titles.append(title)
        self.doc_metas.append(meta_json)
        self.doc_langs.append(lang or "")
        self.doc_hashes.append(content_hash(doc_id, text, title, lang or "", meta_json))
        self.ids.add(doc_id)

    def surface_words(self) -> dict[str, str]:
        """``"<lang>:<word>"`` -> term key of every indexed word in the buffer (text and titles)."""
        out: dict[str, str] = {}
        keys, multi = self.keys, self._multi
        for lang, runs in self._runs.items():
            an = self.settings.analyzer(lang)
            prefix = f"{lang}:"
            plain = self._plain_runs[lang]  # one indexed slot, ASCII alphanumeric: the word is the run lowercased
            out.update(
                zip(map(prefix.__add__, map(str.lower, plain)), map(keys.__getitem__, map(runs.__getitem__, plain)))
            )
            for run in self._other_runs[lang]:
                value = runs[run]
                for word, tid in zip(an.run_words(run), (value,) if value < MULTI else multi[value - MULTI]):
                    if tid:
                        out[prefix + word] = keys[tid]
        for lang, title in self._title_texts:
            an = self.settings.analyzer(lang)
            for run in tokenize(title):
                for word, term in zip(an.run_words(run), an.run_terms([run])[0]):
                    if term:
                        out[f"{lang}:{word}"] = f"{lang}:{term}"
        return out

    def to_segment_data(self) -> SegmentData:
        langs = sorted(set(self.p_lang))
        code = {lang: i for i, lang in enumerate(langs)}
        tid, pid, pos, p_len = _slot_columns(
            np.frombuffer(self.tok_tid, dtype=np.uint32),
            np.frombuffer(self.p_body, dtype=np.uint32),
            np.frombuffer(self.p_title, dtype=np.uint32),
        )
        return SegmentData(
            keys=self.keys[1:],
            tok_tid=tid - np.uint32(1),
            tok_pid=pid,
            tok_pos=pos,
            p_doc=np.frombuffer(self.p_doc, dtype=np.uint32),
            p_no=np.frombuffer(self.p_no, dtype=np.uint32),
            p_start=np.frombuffer(self.p_start, dtype=np.uint64),
            p_end=np.frombuffer(self.p_end, dtype=np.uint64),
            p_len=p_len,
            p_lang=np.array([code[x] for x in self.p_lang], dtype=np.uint8),
            langs=langs,
            doc_ids=self.doc_ids,
            doc_texts=self.doc_texts,
            doc_titles=self.doc_titles,
            doc_metas=self.doc_metas,
            doc_langs=self.doc_langs,
            doc_hashes=self.doc_hashes,
            surface=self.surface_words(),
            fields=self.settings.fields,
        )


def _slot_columns(
    slots: np.ndarray, body: np.ndarray, title: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Term ids, passage ids, positions and passage lengths from the buffer's slot stream.

    Per passage the stream holds ``body`` text slots, then ``title`` slots as text terms and ``title``
    slots as title-field terms; 0 marks a stopword, which takes a position but is not indexed. A text
    slot's position is its index; title slots sit ``TITLE_GAP`` after the last indexed text position
    (or after 0), so a phrase never spans text and title. The length counts indexed text and title terms.
    """
    # int32 throughout and temporaries dropped early: this runs on a full buffer, so its peak memory is
    # the writer's (a buffer holds far fewer than 2**31 slots)
    body = body.astype(np.int32)
    title = title.astype(np.int32)
    per = body + 2 * title
    n_p = per.shape[0]
    pid = np.repeat(np.arange(n_p, dtype=np.int32), per)
    first = (np.cumsum(per, dtype=np.int64) - per).astype(np.int32)
    pos = np.arange(slots.shape[0], dtype=np.int32)
    pos -= first[pid]  # index of each slot within its passage
    in_body = pos < body[pid]
    indexed = slots != 0
    last = np.full(n_p, -1, dtype=np.int32)
    has = per > 0
    if slots.shape[0]:
        marks = np.where(in_body & indexed, pos, np.int32(-1))
        last[has] = np.maximum.reduceat(marks, first[has])
        del marks
    offset = np.maximum(last, 0) + np.int32(TITLE_GAP)
    counts_body = np.bincount(pid[in_body & indexed], minlength=n_p)
    counts_title = np.bincount(pid[~in_body & indexed], minlength=n_p) // 2
    # title slots: j = index after the text; the second copy (title field) restarts at 0
    in_title = ~in_body
    j = pos[in_title] - body[pid[in_title]]
    title_of = title[pid[in_title]]
    j = np.where(j >= title_of, j - title_of, j)
    pos[in_title] = offset[pid[in_title]] + j
    del j, title_of, in_title, in_body
    return (
        slots[indexed],
        pid[indexed].astype(np.uint32),
        pos[indexed].astype(np.uint32),
        (counts_body + counts_title).astype(np.uint32),
    )
