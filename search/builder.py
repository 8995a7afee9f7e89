"""The in-memory segment builder: documents analyzed into a token stream, then one ``SegmentData``.

Used by the writer (its buffer) and by the indexing worker processes (``parallel``): both add documents
until the builder holds about ``buffer_tokens`` indexed tokens, then write ``to_segment_data()`` as a
segment file. Knows nothing of commits, locks or merges.
"""

from __future__ import annotations

import hashlib
import operator
from array import array
from collections.abc import Iterable
from itertools import chain, compress, filterfalse, repeat
from operator import itemgetter

import numpy as np

from analyzers import tokenize
from analyzers.base import runs_of_word, runs_of_words
from analyzers.language import detect_document

from .arrays import sorted_unique
from .documents import Document, split_with_words
from .segment import SegmentData
from .settings import IndexSettings

TITLE_GAP = 100  # position gap between a passage's text and its title, so phrases never span both
# A cache value (of a word run, or of a whitespace word) at or above this stands for several slots
# ("e-mail", "3.5kg": about 1% of runs; "a/b") or none (a lone "_", a "--"), whose term ids are a slice
# (maybe empty) of ``SegmentBuilder._multi_slots``; below it, the one slot's term id.
MULTI = 1 << 31
PENDING = 0xFFFFFFFF  # a word met for the first time in the chunk being mapped, analyzed right after
# Passages are analyzed in chunks of about this many whitespace words: a chunk's words go to term ids in
# one C-level map, its new words' runs are stemmed in one call, the rest is numpy; a chunk also bounds the
# words a huge document holds as strings at once.
CHUNK_RUNS = 1 << 16


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
    """Analyzed documents not yet written as a segment: a token stream in columns plus passage and document tables.

    ``add`` records a document's passages and word runs at once; their analysis waits until a chunk of
    ``CHUNK_RUNS`` runs is pending (or the stream is read: ``full``, ``n_tokens``, ``to_segment_data``),
    which changes nothing in what is built: term ids are assigned in another order, and a segment orders
    its terms by hash and key, never by id.
    """

    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self.keys: list[str] = [""]  # term id 0 marks a stopword's slot in the run cache; never written
        self.vocab: dict[str, dict[str, int]] = {}
        # One slot per word position, 0 for a stopword: each passage's text slots, then its title's slots
        # twice (as text terms, then as title-field terms), one numpy chunk per analyzed chunk. Positions,
        # passage ids and lengths follow from the slot counts at flush, in numpy.
        self._tok: list[np.ndarray] = []
        self._body: list[np.ndarray] = []  # text slots per passage
        self._title_n: list[np.ndarray] = []  # title slots per passage (stored twice)
        self._indexed = 0
        self._pending: list[tuple[str, list[str], str]] = []  # passages not analyzed yet: lang, words, title
        self._pending_runs = 0
        self._pending_bound = 0  # at least the indexed tokens the pending passages can hold
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
        self._titles: dict[str, tuple[str, list[int], int, int]] = {}
        # The caches, per language, of a key's slot: its term id (0: a stopword) or ``MULTI + i`` (several
        # slots, or none). ``_runs``: word run -> slots. ``_words``: whitespace word -> its runs' slots, so
        # a passage's words map straight to slots and runs are found only in the words met for the first
        # time ("(river)," once, not at every occurrence).
        self._runs: dict[str, dict[str, int]] = {}
        self._words: dict[str, dict[str, int]] = {}
        # the term ids of the runs of several slots, one after another, and where each run's start: arrays,
        # so each chunk's splice reads them as numpy views instead of converting lists that only grow
        self._multi_slots = array("I")
        self._multi_off = array("q", [0])
        self._surface: dict[str, str] = {}  # "<lang>:<word>" -> term key, of the text's runs analyzed so far
        self._title_texts: set[tuple[str, str]] = set()  # (lang, title) seen, for the surface words
        self._slots_per_char: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.doc_ids)

    @property
    def largest_text(self) -> int:
        """Characters of the longest document text buffered (what decides a flush's allocation mode)."""
        return max(map(len, self.doc_texts), default=0)

    @property
    def n_tokens(self) -> int:
        """Indexed tokens buffered (stopword slots not counted): what ``buffer_tokens`` bounds."""
        self._analyze()
        return self._indexed

    def full(self, limit: int) -> bool:
        """Whether ``n_tokens >= limit``, analyzing the pending passages only when they could reach it."""
        if self._indexed + self._pending_bound < limit:
            return False
        return self.n_tokens >= limit

    def _ids(self, prefix: str, terms: list[str]) -> list[int]:
        vocab = self._vocab(prefix)
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

    def _vocab(self, prefix: str) -> dict[str, int]:
        vocab = self.vocab.get(prefix)
        if vocab is None:
            vocab = self.vocab[prefix] = {"": 0}  # a stopword's "" term is slot value 0
        return vocab

    def _learn(self, lang: str, runs: dict[str, int], fresh: list[str]) -> None:
        """Analyze the distinct runs met for the first time (all at once), cache their slots in ``runs``
        and note their surface words."""
        plain, words, terms, other = self.settings.analyzer(lang).terms_of_runs(fresh)
        prefix = f"{lang}:"
        vocab = self._vocab(prefix)
        keys = self.keys
        new = list(filterfalse(vocab.__contains__, dict.fromkeys(terms)))
        if new:
            vocab.update(zip(new, range(len(keys), len(keys) + len(new))))
            keys.extend(map(prefix.__add__, new))
        ids = list(map(vocab.__getitem__, terms))
        runs.update(zip(plain, ids))
        surface = self._surface
        surface.update(zip(map(prefix.__add__, compress(words, ids)), map(keys.__getitem__, compress(ids, ids))))
        for run, pairs in other.items():
            slot_ids = self._ids(prefix, [t for _, t in pairs])
            runs[run] = self._slots_value(slot_ids)
            for (word, _), tid in zip(pairs, slot_ids):
                if tid:
                    surface[prefix + word] = keys[tid]

    def _slots_value(self, slot_ids: list[int]) -> int:
        """The cache value of a key with these slots: the one slot's term id, else a new ``MULTI`` entry."""
        if len(slot_ids) == 1:
            return slot_ids[0]
        self._multi_slots.extend(slot_ids)
        self._multi_off.append(len(self._multi_slots))
        return MULTI + len(self._multi_off) - 2

    def _learn_words(self, lang: str, words: dict[str, int], fresh: list[str]) -> None:
        """Cache the slots of the distinct whitespace words met for the first time: a word of letters and
        digits is its one run; another's slots are those of its runs (``runs_of_word``) in order. Their
        runs not met before are analyzed together first (``_learn``)."""
        runs = self._runs.setdefault(lang, {})
        alnum = list(map(str.isalnum, fresh))
        plain = list(compress(fresh, alnum))
        odd = list(compress(fresh, map(operator.not_, alnum)))
        odd_runs = list(map(runs_of_word, odd))
        every = plain + list(chain.from_iterable(odd_runs))
        new = list(dict.fromkeys(compress(every, map(operator.is_, map(runs.get, every), repeat(None)))))
        if new:
            self._learn(lang, runs, new)
        words.update(zip(plain, map(runs.__getitem__, plain)))
        one = list(map((1).__eq__, map(len, odd_runs)))  # most: "(river)," is the run "river"
        words.update(zip(compress(odd, one), map(runs.__getitem__, map(itemgetter(0), compress(odd_runs, one)))))
        multi_slots, multi_off = self._multi_slots, self._multi_off
        for word, word_runs in zip(compress(odd, map(operator.not_, one)), compress(odd_runs, map(operator.not_, one))):
            slot_ids: list[int] = []  # of its runs in order ("a/b": two; "--": none)
            for v in map(runs.__getitem__, word_runs):
                if v < MULTI:
                    slot_ids.append(v)
                else:
                    slot_ids += multi_slots[multi_off[v - MULTI] : multi_off[v - MULTI + 1]]
            words[word] = self._slots_value(slot_ids)

    def _map_words(self, lang: str, pieces: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """The slots of passages in ``lang`` (one stream) and the slot count of each passage, from each
        passage's whitespace words (or its word runs: a run is a word whose one run is itself)."""
        words = self._words.setdefault(lang, {})
        flat = list(chain.from_iterable(pieces))
        vals = np.frombuffer(array("I", map(words.get, flat, repeat(PENDING))), dtype=np.uint32)
        counts = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        at = np.flatnonzero(vals == PENDING)
        if at.shape[0]:  # words met for the first time: learned together, then read
            met = list(map(flat.__getitem__, at.tolist()))
            self._learn_words(lang, words, list(dict.fromkeys(met)))
            vals[at] = np.fromiter(map(words.__getitem__, met), np.uint32, at.shape[0])
        del flat
        multi = vals >= MULTI
        if multi.any():  # splice in the runs of several slots (or of none: a run of no words)
            which = vals[multi].astype(np.int64) - MULTI
            # views of the growing arrays: copied from where needed, so no view outlives this block (an
            # exception's traceback holding one would make the next ``append`` raise BufferError)
            off = np.frombuffer(self._multi_off, dtype=np.int64)
            starts_of = off[which]
            lens = np.ones(vals.shape[0], dtype=np.int64)
            lens[multi] = off[which + 1] - starts_of
            del off
            ends = np.cumsum(lens)
            starts = ends - lens
            out = np.empty(int(ends[-1]), dtype=np.uint32)
            out[starts[~multi]] = vals[~multi]
            n_lens = lens[multi]
            within = np.arange(int(n_lens.sum()), dtype=np.int64) - np.repeat(np.cumsum(n_lens) - n_lens, n_lens)
            out[np.repeat(starts[multi], n_lens) + within] = np.frombuffer(self._multi_slots, dtype=np.uint32)[
                np.repeat(starts_of, n_lens) + within
            ]
            bounds = np.concatenate(([0], np.cumsum(counts)))
            cum = np.concatenate(([0], ends))
            counts = cum[bounds[1:]] - cum[bounds[:-1]]
            vals = out
        return vals, counts

    def _analyze(self) -> None:
        """Analyze the pending passages into the token stream (see the class docstring)."""
        pend = self._pending
        if not pend:
            return
        self._pending, self._pending_runs, self._pending_bound = [], 0, 0
        n = len(pend)
        first = pend[0][0]
        if all(p[0] == first for p in pend):
            groups = {first: list(range(n))}
        else:
            groups = {}
            for i, p in enumerate(pend):
                groups.setdefault(p[0], []).append(i)
        body = np.zeros(n, dtype=np.int64)
        streams = []
        for lang, idx in groups.items():
            vals, counts = self._map_words(lang, [pend[i][1] for i in idx])
            body[idx] = counts
            streams.append((idx, vals, counts))
            self._indexed += int(np.count_nonzero(vals))
        # titles: consecutive passages of a document share one, analyzed once
        tslots: list[int] = []
        tcount = np.zeros(n, dtype=np.int64)
        for i, (lang, _, title) in enumerate(pend):
            both, t, nz = self._title(lang, title)
            if t:
                tslots += both
                tcount[i] = t
                self._indexed += 2 * nz
        per = body + 2 * tcount
        if len(streams) == 1 and not tslots:
            stream = streams[0][1]
        else:  # interleave: each passage's text slots, then its title's (twice)
            start = np.cumsum(per) - per
            stream = np.empty(int(per.sum()), dtype=np.uint32)
            for idx, vals, counts in streams:
                src = np.cumsum(counts) - counts
                stream[np.repeat(start[idx] - src, counts) + np.arange(vals.shape[0])] = vals
            if tslots:
                src = np.cumsum(2 * tcount) - 2 * tcount
                stream[np.repeat(start + body - src, 2 * tcount) + np.arange(len(tslots))] = tslots
        self._tok.append(stream)
        self._body.append(body.astype(np.uint32))
        self._title_n.append(tcount.astype(np.uint32))

    def add(self, doc: Document) -> None:
        """Analyze ``doc`` passage by passage and append it (the indexing hot path)."""
        self.add_fields(doc.id, doc.text, doc.title, doc.lang, doc.meta_json())

    def _title(self, lang: str, title: str) -> tuple[list[int], int, int]:
        """The title's slots in ``lang`` as text-term ids followed by title-field ids (0: a stopword), their
        number (each) and how many are indexed (each). The last title per language is kept, since
        consecutive passages of one document share it."""
        hit = self._titles.get(lang)
        if hit is not None and hit[0] == title:
            return hit[1], hit[2], hit[3]
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
        self._titles[lang] = (title, text_flat + title_flat, len(text_flat), len(tterms))
        return text_flat + title_flat, len(text_flat), len(tterms)

    def _slot_bound(self, lang: str) -> int:
        """At most how many slots a character of text gives in ``lang`` (1, or a closed compound's parts)."""
        got = self._slots_per_char.get(lang)
        if got is None:
            compounds = self.settings.analyzer(lang).compounds
            got = self._slots_per_char[lang] = max([1, *map(len, compounds.values())])
        return got

    def add_fields(self, doc_id: str, text: str, title: str, lang: str | None, meta_json: str) -> None:
        """``add`` for a validated document given as its fields (``meta_json`` as ``Document.meta_json``)."""
        settings = self.settings
        spans, words = split_with_words(text, settings.passage_words)
        # each passage as its whitespace words, which map to slots through the word cache (``_map_words``)
        if words is not None:  # one passage, its words listed to count them
            raws: Iterable[list[str]] = [words]
        else:
            # one passage's words at a time: a huge document never holds all its words as strings at once
            # (a passage's span never cuts a whitespace word: ``split_passages`` cuts between words)
            raws = iter([text.split()]) if len(spans) == 1 else (text[s:e].split() for s, e in spans)
        if lang is not None:
            langs = [lang] * len(spans)
        else:  # detection reads each passage's runs; the runs then stand for the words (the same slots)
            raws = list(map(runs_of_words, raws))
            texts = [text] if len(spans) == 1 else [text[s:e] for s, e in spans]
            langs = [settings.default_language if c == "und" else c for c in detect_document(list(zip(raws, texts)))]
        d = len(self.doc_ids)
        for no, ((start, end), raw, plang) in enumerate(zip(spans, raws, langs)):
            self._pending.append((plang, raw, title))  # (a new list after each chunk is analyzed)
            self._pending_runs += len(raw)
            self._pending_bound += (end - start + 2 * len(title)) * self._slot_bound(plang)
            self.p_doc.append(d)
            self.p_no.append(no)
            self.p_start.append(start)
            self.p_end.append(end)
            self.p_lang.append(plang)
            if self._pending_runs >= CHUNK_RUNS:
                self._analyze()
        self.doc_ids.append(doc_id)
        self.doc_texts.append(text)
        self.doc_titles.append(title)
        self.doc_metas.append(meta_json)
        self.doc_langs.append(lang or "")
        self.doc_hashes.append(content_hash(doc_id, text, title, lang or "", meta_json))
        self.ids.add(doc_id)

    def surface_words(self) -> dict[str, str]:
        """``"<lang>:<word>"`` -> term key of every indexed word in the buffer (text and titles)."""
        self._analyze()
        out = dict(self._surface)  # the text's, noted as runs were analyzed
        for lang in {lang for lang, _ in self._title_texts}:
            an = self.settings.analyzer(lang)
            known = self._runs.get(lang, {})  # a run's words and terms are the same in a title
            runs = {run for t_lang, title in self._title_texts if t_lang == lang for run in tokenize(title)}
            plain, words, terms, other = an.terms_of_runs([r for r in runs if r not in known])
            prefix = f"{lang}:"
            out.update((prefix + w, prefix + t) for w, t in zip(words, terms) if t)
            out.update((prefix + w, prefix + t) for pairs in other.values() for w, t in pairs if t)
        return out

    def to_segment_data(self) -> SegmentData:
        """The buffered documents as a segment's data (the builder keeps them: a flush that failed, on a
        full disk say, is tried again from the same builder). The token columns are made from the slot
        chunks a range at a time, never from one joined copy of the stream."""
        self._analyze()
        langs = sorted(set(self.p_lang))
        code = {lang: i for i, lang in enumerate(langs)}

        def joined(chunks: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint32)

        tid, pid, pos, p_len = _slot_columns(self._tok, joined(self._body), joined(self._title_n))
        return SegmentData(
            keys=self.keys[1:],
            tok_tid=tid,
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


#: Token slots turned into columns at once (``_slot_columns``): a range of whole passages about this long
#: at a time, so the temporaries of one range, not of the whole buffer, sit beside the finished columns.
SLOT_RANGE = 1 << 20


def _slot_columns(
    chunks: list[np.ndarray], body: np.ndarray, title: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Term ids (less one: 0-based), passage ids, positions and passage lengths from the buffer's slot
    stream (its chunks, in order), computed over ranges of whole passages (``SLOT_RANGE`` slots or one
    passage) written into the finished columns: a huge document's flush holds its slots, the columns
    and one range's temporaries, where the whole stream at once held a joined copy of the stream and
    five temporaries of its length."""
    chunk_ends = np.cumsum([c.shape[0] for c in chunks], dtype=np.int64)

    def slots_between(s0: int, s1: int) -> np.ndarray:
        i = int(np.searchsorted(chunk_ends, s0, "right"))
        pieces = []
        while s0 < s1:
            start = int(chunk_ends[i - 1]) if i else 0
            piece = chunks[i][s0 - start : s1 - start]
            pieces.append(piece)
            s0 += piece.shape[0]
            i += 1
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces) if pieces else np.zeros(0, np.uint32)

    body = body.astype(np.int64)
    title = title.astype(np.int64)
    per = body + 2 * title
    n_p = per.shape[0]
    ends = np.cumsum(per)
    indexed = sum(int(np.count_nonzero(c)) for c in chunks)
    tid = np.empty(indexed, dtype=np.uint32)
    pid = np.empty(indexed, dtype=np.uint32)
    # positions are counted within a passage: 16 bits hold them unless some passage is that long
    narrow = n_p == 0 or int(per.max()) + TITLE_GAP < 1 << 16
    pos = np.empty(indexed, dtype=np.uint16 if narrow else np.uint32)
    lengths = np.empty(n_p, dtype=np.uint32)
    # (sorted_unique, not np.unique: numpy 2's imports numpy.ma at its first call, 40 ms in each worker)
    cuts = sorted_unique(np.searchsorted(ends, np.arange(SLOT_RANGE, int(ends[-1]) if n_p else 0, SLOT_RANGE), "right"))
    at = 0
    for p0, p1 in zip([0, *cuts.tolist()], [*cuts.tolist(), n_p]):
        if p1 <= p0:
            continue
        s0 = int(ends[p0 - 1]) if p0 else 0
        got = _range_columns(slots_between(s0, int(ends[p1 - 1])), body[p0:p1], title[p0:p1])
        n = got[0].shape[0]
        np.subtract(got[0], 1, out=tid[at : at + n], casting="unsafe")
        np.add(got[1], p0, out=pid[at : at + n], casting="unsafe")
        pos[at : at + n] = got[2]
        lengths[p0:p1] = got[3]
        at += n
    return tid, pid, pos, lengths


def _range_columns(
    slots: np.ndarray, body: np.ndarray, title: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Term ids, passage ids (from 0), positions and passage lengths of a range of whole passages.

    Per passage the stream holds ``body`` text slots, then ``title`` slots as text terms and ``title``
    slots as title-field terms; 0 marks a stopword, which takes a position but is not indexed. A text
    slot's position is its index; title slots sit ``TITLE_GAP`` after the last indexed text position
    (or after 0), so a phrase never spans text and title. The length counts indexed text and title terms.
    """
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
    return slots[indexed], pid[indexed], pos[indexed], counts_body + counts_title
