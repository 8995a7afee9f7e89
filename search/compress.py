"""Compression of a segment's stored fields: zstd for the segments this code writes, zlib read (and
re-compressed on merge) for the segments of format version 2.

zstd (level 3, with its content checksum) against zlib level 2 on the 32 KB stored blocks of 50k
English passages: 0.412 of the text instead of 0.433, compressed in 3.1 us a passage instead of 7.8,
inflated in about 60 us a block instead of 155 (``benchmarks/RESULTS.md``, "Stored fields in zstd"). A
query that reads text the process never read inflates its hits' blocks, so that last figure is most of
a first-seen query's time. The binding is ``zstandard``: it lets a thread keep its compression and
decompression contexts (a new decompression context costs 12-16 us, a fifth of an inflation), which the
standard library's ``compression.zstd`` (Python 3.14) does not; both write the same bytes (the same
libzstd). It is imported at the first block, so commands that read no stored text never load it.

A ``Dictionary`` (``train``: zstd's, from a segment's own documents) lets small blocks compress as well
as large ones: measured on 50k passages, 4 KB blocks with a 64 KB dictionary keep less of the text than
32 KB blocks without one and inflate in a seventh of the time (format 5's stored blocks).
"""

from __future__ import annotations

import threading
import zlib
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

CODEC = "zstd"  #: the codec of the stored fields this code writes
CODECS = ("zlib", "zstd")  #: the codecs it reads ("zlib": segments of format version 2)
ZSTD_LEVEL = 3
ZLIB_LEVEL = 2  # what format version 2 wrote (``compress(..., "zlib")``: tests and the codec benchmark)


class Stream(Protocol):
    """An incremental compressor (``zlib.compressobj``'s two methods): for a value too large to copy."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


class _Contexts(threading.local):
    """This thread's zstd contexts, made at its first block and reused (a context serves one call at a
    time; a forked worker inherits its parent's idle ones)."""

    zstd: Any = None
    compressor: Any = None
    decompressor: Any = None

    def load(self) -> Any:
        import zstandard

        self.zstd = zstandard
        self.compressor = self.new_compressor()
        self.decompressor = zstandard.ZstdDecompressor()
        return zstandard

    def new_compressor(self) -> Any:
        # the checksum: damage reads as damage; the content size: ``inflate`` relies on it
        return self.zstd.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True, write_content_size=True)


_local = _Contexts()

#: a trained dictionary's size: 64 KB, measured on 50k passages' stored blocks (``benchmarks/RESULTS.md``,
#: "small blocks with the segment's own dictionary"): 4 KB blocks with it keep 0.395 (en) and 0.226 (id)
#: of the text, against 0.411 and 0.227 for 32 KB blocks without one, and inflate in 9 us instead of 51-62
DICT_BYTES = 64 << 10
DICT_ID = 1  # fixed (zstd picks a random one otherwise): the same samples give the same bytes
DICT_K, DICT_D = 128, 8  # fast cover segment and d-mer sizes (``train``)


class Dictionary:
    """A zstd dictionary (``train``'s, or read back from a file) with each thread's contexts for it (a
    compressor, a decompressor: each made at the thread's first use of it) kept while the dictionary
    lives (a context serves one call at a time; loading a dictionary into a new context costs more than
    the small block it would inflate)."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self._loaded: Any = None
        self._threads = threading.local()

    def _dict(self) -> Any:
        if self._loaded is None:
            zstd = _local.zstd or _local.load()
            self._loaded = zstd.ZstdCompressionDict(self.data, dict_type=zstd.DICT_TYPE_FULLDICT)
        return self._loaded

    def compressor(self) -> Any:
        """This thread's compression context for the dictionary."""
        got = getattr(self._threads, "compressor", None)
        if got is None:
            got = self._threads.compressor = self.new_compressor()
        return got

    def decompressor(self) -> Any:
        """This thread's decompression context for the dictionary (zstd's error if it is not one)."""
        got = getattr(self._threads, "decompressor", None)
        if got is None:
            zstd = _local.zstd or _local.load()
            got = self._threads.decompressor = zstd.ZstdDecompressor(dict_data=self._dict())
        return got

    def new_compressor(self) -> Any:
        zstd = _local.zstd or _local.load()
        dictionary = self._dict()
        return zstd.ZstdCompressor(level=ZSTD_LEVEL, dict_data=dictionary, write_checksum=True, write_content_size=True)


def train(samples: list[bytes], size: int = DICT_BYTES) -> Dictionary | None:
    """A dictionary of at most ``size`` bytes trained on ``samples`` (zstd's fast cover, one thread: the
    same samples give the same bytes), or None when they are too few or too small to train one.

    The cover's segment and d-mer sizes are fixed (``DICT_K``, ``DICT_D``): left to zstd, it tries a grid
    of them, 3x the time (0.11 against 0.035 s for 2,000 samples, paid at every flush and merge) for
    stored text 0.15% (en) to 1% (id) smaller at 50k passages."""
    zstd = _local.zstd or _local.load()
    try:
        d = zstd.train_dictionary(size, samples, k=DICT_K, d=DICT_D, level=ZSTD_LEVEL, dict_id=DICT_ID, threads=0)
    except zstd.ZstdError:
        return None
    return Dictionary(d.as_bytes())


def compress(raw: bytes, codec: str | None = None, dictionary: Dictionary | None = None) -> bytes:
    """``raw`` as one frame (zstd) or stream (zlib) of ``codec`` (default ``CODEC``), which records its own
    checksum: the same bytes as ``stream(len(raw), codec)`` fed ``raw`` in any pieces. ``dictionary``
    (zstd only): the frame needs it to be read back."""
    if (codec or CODEC) == "zstd":
        if _local.zstd is None:
            _local.load()
        compressor = _local.compressor if dictionary is None else dictionary.compressor()
        # through a stream told its size: zstd's one-shot call frames an input of its window (256 KB)
        # or more differently, and a merge streams what a flush compresses in one call
        z = compressor.compressobj(size=len(raw))
        return z.compress(raw) + z.flush()
    if dictionary is not None:
        raise ValueError("a dictionary is for zstd")
    return zlib.compress(raw, ZLIB_LEVEL)


def stream(size: int, codec: str | None = None, dictionary: Dictionary | None = None) -> Stream:
    """A compressor fed piece by piece, for a value too large to copy whole, ``size`` bytes in all (the
    frame records it: ``inflate`` relies on it). Its output does not depend on how the input is cut: the
    same bytes as one ``compress``, so a build stays byte-identical whichever values it streams."""
    if (codec or CODEC) == "zstd":
        if _local.zstd is None:
            _local.load()
        # its own context (``compress`` may run while this stream is open); zstd raises when fed more or
        # less than ``size``: never a wrong frame
        compressor = _local.new_compressor() if dictionary is None else dictionary.new_compressor()
        return compressor.compressobj(size=size)
    if dictionary is not None:
        raise ValueError("a dictionary is for zstd")
    return zlib.compressobj(ZLIB_LEVEL)


def inflate(
    data: bytes | memoryview | np.ndarray, bound: int, codec: str, dictionary: Dictionary | None = None
) -> bytes:
    """What ``data`` (one ``compress`` or ``stream`` output, with ``dictionary`` if it was made with one)
    holds, which must be at most ``bound`` bytes: never more is allocated. ``ValueError`` when the data
    is damaged (its checksum fails, it is cut short or followed by more, it holds more than ``bound``,
    it needs a dictionary it is not given, or another one)."""
    if dictionary is not None and codec != "zstd":
        raise ValueError("a dictionary is for zstd")
    if codec == "zstd":
        zstd = _local.zstd or _local.load()
        try:
            # (a damaged dictionary fails here: damage, like a damaged frame)
            decompressor = _local.decompressor if dictionary is None else dictionary.decompressor()
            size = zstd.get_frame_parameters(data).content_size
            # every frame this code writes records its size, and zstd allocates that size and stops
            # there: no more than ``bound`` is allocated. A frame without its size is damage (reading it
            # would let its header ask for zstd's default 128 MB window).
            if size > bound:  # (CONTENTSIZE_UNKNOWN is 2**64 - 1)
                raise zstd.ZstdError("no size, or larger than its bound")
            if size:
                raw = decompressor.decompress(data, allow_extra_data=False)
                ok = True
            else:  # (zstandard answers b"" from a size of 0 without decoding: decode to check the frame)
                d = decompressor.decompressobj()
                raw = d.decompress(data)
                ok = d.eof and not d.unused_data
        except zstd.ZstdError:
            ok = False
    elif codec == "zlib":
        try:
            d = zlib.decompressobj()
            raw = d.decompress(data, bound + 1)
            ok = d.eof and not d.unused_data
        except zlib.error:
            ok = False
    else:
        raise ValueError(f"unknown codec {codec!r}")
    if not ok or len(raw) > bound:
        raise ValueError("damaged")
    return raw
