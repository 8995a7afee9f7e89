"""Compression of a segment's stored fields: zstd for the segments this code writes, zlib read (and
re-compressed on merge) for the segments of format version 2.

zstd (level 3, with its content checksum) against zlib level 2 on the 32 KB stored blocks of 50k
English passages: 0.411 of the text instead of 0.433, compressed in 3.0 us a passage instead of 7.8,
inflated in 58-79 us a block instead of 155 (``benchmarks/RESULTS.md``, "Stored fields in zstd"). A
query that reads text the process never read inflates its hits' blocks, so that last figure is most of
a first-seen query's time. The codec comes from the standard library from Python 3.14
(``compression.zstd``) and from its backport (``backports.zstd``) before; it is imported at the first
block, so commands that read no stored text never load it.
"""

from __future__ import annotations

import zlib
from functools import cache
from typing import Any, Protocol

CODEC = "zstd"  #: the codec of the stored fields this code writes
CODECS = ("zlib", "zstd")  #: the codecs it reads ("zlib": segments of format version 2)
ZSTD_LEVEL = 3
ZLIB_LEVEL = 2  # (what format version 2 wrote; kept so a merge of such segments re-compresses as before)


class Stream(Protocol):
    """An incremental compressor (``zlib.compressobj``'s two methods): for a value too large to copy."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


@cache
def _zstd() -> Any:
    try:
        from compression import zstd  # Python 3.14+
    except ImportError:
        from backports import zstd
    return zstd


@cache
def _options() -> dict:
    p = _zstd().CompressionParameter
    return {p.compression_level: ZSTD_LEVEL, p.checksum_flag: 1}  # the checksum: damage reads as damage


def compress(raw: bytes, codec: str | None = None) -> bytes:
    """``raw`` as one frame (zstd) or stream (zlib) of ``codec`` (default ``CODEC``), which records its own
    checksum: the same bytes as ``stream(len(raw), codec)`` fed ``raw`` in any pieces."""
    if (codec or CODEC) == "zstd":
        z = stream(len(raw), codec)
        return z.compress(raw) + z.flush()
    return zlib.compress(raw, ZLIB_LEVEL)


def stream(size: int, codec: str | None = None) -> Stream:
    """A compressor fed piece by piece, for a value too large to copy whole, ``size`` bytes in all (the
    frame records it: ``inflate`` relies on it). Its output does not depend on how the input is cut: the
    same bytes as one ``compress``, so a build stays byte-identical whichever values it streams."""
    if (codec or CODEC) == "zstd":
        z = _zstd().ZstdCompressor(options=_options())
        z.set_pledged_input_size(size)  # (fed more or less than this, zstd raises: never a wrong frame)
        return z
    return zlib.compressobj(ZLIB_LEVEL)


def inflate(data: bytes | memoryview, bound: int, codec: str) -> bytes:
    """What ``data`` (one ``compress`` or ``stream`` output) holds, which must be at most ``bound``
    bytes: never more is allocated. ``ValueError`` when the data is damaged (its checksum fails, it is
    cut short or followed by more, it holds more than ``bound``)."""
    if codec == "zstd":
        zstd = _zstd()
        try:
            size = zstd.get_frame_info(data).decompressed_size
            # every frame this code writes records its size (``stream`` is told it), and zstd stops at
            # that size: one unbounded call (58 us a 32 KB block, against 79 bounded) allocates no more
            # than ``bound``. A frame without its size is damage (reading it would let its header ask
            # for zstd's default 128 MB window).
            if size is None or size > bound:
                raise zstd.ZstdError("no size, or larger than its bound")
            d = zstd.ZstdDecompressor()
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
