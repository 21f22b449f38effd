"""The one sniffer: which compression a stream uses, from its first bytes.

Paths opened for a proxy, header reads, size checks, ``proxylib ls`` and file
objects handed to an image all ask :func:`compression_of`, so a file is
treated the same way whichever door it comes in by.
"""

from __future__ import annotations

from typing import Optional

from .compressed import sniff_codec

GZIP_MAGIC = b"\x1f\x8b"
#: Bytes the sniffer needs (bzip2 has its block magic at bytes 4-9).
SNIFF_HEAD = 10


def compression_of(head: bytes) -> Optional[str]:
    """``'gzip'``, ``'bz2'``, ``'zstd'`` or None (not compressed) for a stream
    whose first bytes are ``head`` (at least :data:`SNIFF_HEAD` of them when the
    stream is that long)."""
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    codec = sniff_codec(head)
    return None if codec is None else codec.name


__all__ = ["GZIP_MAGIC", "SNIFF_HEAD", "compression_of"]
