"""The one sniffer: which compression a stream uses, from its first bytes.

Paths opened for a proxy, header reads, size checks, ``proxylib ls`` and file
objects handed to an image all ask :func:`sniff` (or :func:`compression_of`, its
name), once per stream, and open the reader it returns, so a file is treated
the same way whichever door it comes in by.
"""

from __future__ import annotations

import gzip
from typing import Any, Optional

from .compressed import Codec, sniff_codec

GZIP_MAGIC = b"\x1f\x8b"
#: Bytes the sniffer needs (bzip2 has its block magic at bytes 4-9).
SNIFF_HEAD = 10


def _gzip_reader(raw: Any) -> gzip.GzipFile:
    return gzip.GzipFile(fileobj=raw, mode="rb")


#: Whole-stream gzip reading (headers, file objects); proxies read ``.gz`` files
#: through :mod:`proxylib.io.gzip` instead.
GZIP_CODEC = Codec("gzip", _gzip_reader, (OSError, EOFError, ValueError))


def sniff(head: bytes) -> Optional[Codec]:
    """The codec of a stream whose first bytes are ``head`` (at least
    :data:`SNIFF_HEAD` of them when the stream is that long): its ``name``
    ('gzip', 'bz2' or 'zstd') and ``factory`` (wraps the raw stream in a
    decompressing reader); None when it is not compressed."""
    if head[:2] == GZIP_MAGIC:
        return GZIP_CODEC
    return sniff_codec(head)


def compression_of(head: bytes) -> Optional[str]:
    """The name of the compression :func:`sniff` finds (None: not compressed)."""
    codec = sniff(head)
    return None if codec is None else codec.name


__all__ = ["GZIP_MAGIC", "GZIP_CODEC", "SNIFF_HEAD", "compression_of", "sniff"]
