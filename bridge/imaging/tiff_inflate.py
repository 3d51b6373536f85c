"""Deflate and LZMA for tifffile that never inflate a strip or tile past its size.

Without the imagecodecs package, tifffile inflates a compressed strip with plain
`zlib.decompress` (LZMA: `lzma.decompress`) and ignores the size it passes in `out`:
a 200 KB strip of a 16x16 image can inflate to gigabytes (a decompression bomb).
imagecodecs treats `out` as the output's size; these do the same, refusing (ValueError,
which decoding answers with 400) a segment that holds more, and an LZMA stream whose
dictionary would need more than LZMA_MEMORY. `install()` puts them in tifffile's table
of decompressors for the codes it would otherwise serve from its unbounded fallbacks.
"""

from __future__ import annotations

import lzma
import zlib
from typing import Any

DEFLATE_CODES = (8, 32946, 50013)
LZMA_CODE = 34925
LZMA_MEMORY = 256 << 20


def _oversize(limit: int) -> ValueError:
    return ValueError(f"a compressed strip or tile inflates to more than its {limit:,} bytes")


def _limit(out: Any) -> int | None:
    return out if isinstance(out, int) and not isinstance(out, bool) and out >= 0 else None


def deflate_decode(data: bytes, /, *, out: Any = None) -> bytes:
    limit = _limit(out)
    if limit is None:  # tifffile always passes the size; without one, the old behaviour
        return zlib.decompress(data)
    d = zlib.decompressobj()
    got = d.decompress(data, limit)
    # Anything still to come (unread input, or output held back) beyond `limit` is a bomb.
    if d.unconsumed_tail and d.decompress(d.unconsumed_tail, 1):
        raise _oversize(limit)
    if not d.eof and d.decompress(b"", 1):
        raise _oversize(limit)
    return got


def lzma_decode(data: bytes, /, *, out: Any = None) -> bytes:
    limit = _limit(out)
    d = lzma.LZMADecompressor(memlimit=LZMA_MEMORY)
    if limit is None:
        return d.decompress(data)
    got = d.decompress(data, max_length=limit)
    if not d.eof and not d.needs_input and d.decompress(b"", max_length=1):
        raise _oversize(limit)
    return got


def install(tifffile_module: Any) -> bool:
    """Serve tifffile's Deflate and LZMA strips with the bounded decoders; False if its
    table is not where this version of tifffile keeps it (the tests notice)."""
    table = getattr(getattr(tifffile_module, "TIFF", None), "DECOMPRESSORS", None)
    codecs = getattr(table, "_codecs", None)
    if not isinstance(codecs, dict):
        return False
    for code in DEFLATE_CODES:
        codecs[code] = deflate_decode
    codecs[LZMA_CODE] = lzma_decode
    return True
