"""The one sniffer: which compression a stream uses, from its first bytes.

Paths opened for a proxy, header reads, size checks, ``proxylib ls`` and file
objects handed to an image all ask :func:`compression_of`, so a file is
treated the same way whichever door it comes in by.
"""

from __future__ import annotations

import gzip
from typing import Any, Callable, Optional, Tuple

from .compressed import sniff_codec

GZIP_MAGIC = b"\x1f\x8b"
#: Bytes the sniffer needs (bzip2 has its block magic at bytes 4-9).
SNIFF_HEAD = 10


def sniff(head: bytes) -> Tuple[Optional[str], Optional[Callable[[Any], Any]]]:
    """``(compression, open_reader)`` for a stream whose first bytes are ``head`` (at
    least :data:`SNIFF_HEAD` of them when the stream is that long): ``'gzip'``,
    ``'bz2'`` or ``'zstd'`` and a function that wraps the raw stream in a
    decompressing reader; ``(None, None)`` when it is not compressed."""
    if head[:2] == GZIP_MAGIC:
        return "gzip", _gzip_reader
    codec = sniff_codec(head)
    return (None, None) if codec is None else (codec.name, codec.factory)


def _gzip_reader(raw: Any) -> gzip.GzipFile:
    return gzip.GzipFile(fileobj=raw, mode="rb")


def compression_of(head: bytes) -> Optional[str]:
    """The compression :func:`sniff` finds (None: not compressed)."""
    return sniff(head)[0]


__all__ = ["GZIP_MAGIC", "SNIFF_HEAD", "compression_of", "sniff"]
