"""The in-memory segment builder: documents analyzed into a token stream, then one ``SegmentData``.

Used by the writer (its buffer) and by the indexing worker processes (``parallel``): both add documents
until the builder holds about ``buffer_tokens`` indexed tokens, then write ``to_segment_data()`` as a
segment file. Knows nothing of commits, locks or merges.
"""

from __future__ import annotations

import hashlib
from array import array
from itertools import chain

import numpy as np

from analyzers import tokenize
from analyzers.language import detect_document

from .documents import Document, split_passages
from .segment import SegmentData
from .settings import IndexSettings

TITLE_GAP = 100  # position gap between a passage's text and its title, so phrases never span both


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
        self._titles: dict[str, tuple[str, list[int], list[int], list[int]]] = {}
        self._runs: dict[str, dict[str, tuple[int, ...]]] = {}  # lang -> word run -> term id per slot
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

    def _flat(self, lang: str, raw: list[str]) -> list[int]:
        """The term id of every slot of a passage's word runs (0: a stopword), through a per-buffer cache
        from word run to its slots' term ids: ``columns_from_raw`` and the vocabulary in one step."""
        runs = self._runs.get(lang)
        if runs is None:
            runs = self._runs[lang] = {}
        try:
            return list(chain.from_iterable(map(runs.__getitem__, raw)))
        except KeyError:
            self._fill_runs(lang, runs, raw)
            return list(chain.from_iterable(map(runs.__getitem__, raw)))

    def _fill_runs(self, lang: str, runs: dict[str, tuple[int, ...]], raw: list[str]) -> None:
        """Cache the term ids of each slot of the new runs of ``raw``, assigning ids in first-seen order (as
        ``_ids`` would on the passage's terms, so segments are identical). The new runs are found and
        ordered by C-level passes (a set difference, then a filter over ``raw``): most passages of real
        text bring a few never seen before, and a Python loop over all their runs cost more than the rest."""
        an = self.settings.analyzer(lang)
        new = set(raw).difference(runs)
        missing = list(dict.fromkeys(filter(new.__contains__, raw)))
        vocab = self.vocab.get(f"{lang}:")
        if vocab is None:
            vocab = self.vocab[f"{lang}:"] = {}
        keys = self.keys
        prefix = f"{lang}:"
        for run, slots in zip(missing, an.run_terms(missing)):
            ids = []
            for t in slots:
                if not t:
                    ids.append(0)
                    continue
                tid = vocab.get(t)
                if tid is None:
                    tid = vocab[t] = len(keys)
                    keys.append(prefix + t)
                ids.append(tid)
            runs[run] = tuple(ids)

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
        for no, ((start, end), raw, plang) in enumerate(zip(spans, raws, langs)):
            flat = self._flat(plang, raw)
            tok.extend(flat)
            self.p_body.append(len(flat))
            text_flat, title_flat = self._title(plang, title)
            if text_flat:
                tok.extend(text_flat)
                tok.extend(title_flat)
            self.p_title.append(len(text_flat))
            self._indexed += len(flat) - flat.count(0) + 2 * (len(text_flat) - text_flat.count(0))
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
        keys = self.keys
        for lang, runs in self._runs.items():
            an = self.settings.analyzer(lang)
            prefix = f"{lang}:"
            for run, ids in runs.items():
                if len(ids) == 1 and run.isalnum():
                    if ids[0]:
                        out[prefix + (run.lower() if run.isascii() else an.run_words(run)[0])] = keys[ids[0]]
                    continue
                for word, tid in zip(an.run_words(run), ids):
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
