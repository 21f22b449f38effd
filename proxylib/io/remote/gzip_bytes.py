"""Compressed bytes of a remote gzip file, as its two decoders read them.

indexed_gzip reads a file object (:class:`CompressedReader`), which also
guards it against member headers it would misread; the member walker
(:class:`~proxylib.io.gzip.members.MemberCursor`) reads positionally
(:class:`WalkerBytes`), through a window that spares its small reads at member
boundaries a request each.
"""

from __future__ import annotations

from typing import Any, Tuple

from ...errors import ProxyError, TruncatedFileError
from ..gzip.members import GZIP_MAGIC, header_end
from ..positional import ReadOnlyPosition
from ..sources import _byte_view
from .files import GZIP_READ_SIZE, RemoteFile

#: Longest gzip member header left to indexed_gzip. With a header about as long
#: as its read buffer (GZIP_READ_SIZE) indexed_gzip 1.10 returns wrong bytes and
#: raises only if the read goes past the end of the data (headers up to 16 bytes
#: short of the buffer read right); half the buffer leaves a margin. A file with
#: a longer header is read by the member walker instead.
LONGEST_INDEXED_HEADER = GZIP_READ_SIZE // 2
_MEMBER_START = GZIP_MAGIC + b"\x08"
#: Fewest compressed bytes the member walker fetches per request (see WalkerBytes).
READ_AHEAD = 256 * 1024
#: Compressed bytes the walker's source keeps: more than its largest feed (1 MiB)
#: plus READ_AHEAD, so a member that ends inside the last feed finds its trailer.
KEPT_BYTES = 2 * 1024 * 1024


class _Window:
    """Compressed bytes ``data`` found at ``base``, as CompressedBytes ending there."""

    def __init__(self, data: bytes, base: int) -> None:
        self.data, self.base = data, base

    def pread(self, size: int, offset: int) -> bytes:
        start = offset - self.base
        return self.data[start:start + size] if start >= 0 else b""

    def size(self) -> int:
        return self.base + len(self.data)


class CompressedReader(ReadOnlyPosition):
    """Sequential file-like view of a RemoteFile for indexed_gzip (own position).

    Every block fetched is scanned for gzip member headers before indexed_gzip
    sees it; one of :data:`LONGEST_INDEXED_HEADER` bytes or more raises a
    ValueError inside indexed_gzip's read, so the reader fails and
    RemoteGzipFile hands the file to the member walker (a header that runs past
    the block costs one more request to measure). Random deflate data rarely holds the 3-byte member
    start, and then almost never a name or comment without a zero byte in
    the next 512 KiB, so a false alarm (which only costs speed) is rare.
    """

    def __init__(self, remote: RemoteFile) -> None:
        self.remote = remote
        self.pos = 0
        self._block: Tuple[int, bytes] = (0, b"")
        self.name = remote.url
        self.mode = "rb"
        self.closed = False

    def _end(self) -> int:
        return self.remote.size

    def read(self, size: int = -1) -> bytes:
        total = self.remote.size
        remaining = max(0, total - self.pos)
        size = remaining if size is None or size < 0 else min(size, remaining)
        if size == 0:
            return b""
        start, block = self._block
        if not (start <= self.pos and self.pos + size <= start + len(block)):
            # one request per GZIP_READ_SIZE, kept: indexed_gzip re-reads the
            # block around a seek point when it restarts there
            start = self.pos
            block = bytearray(min(max(size, GZIP_READ_SIZE), total - start))
            self.remote.read_at(start, block)
            block = bytes(block)
            self._check_headers(start, block, total)
            self._block = (start, block)
        data = block[self.pos - start:self.pos - start + size]
        self.pos += size
        return data

    def _check_headers(self, start: int, block: bytes, total: int) -> None:
        at = block.find(_MEMBER_START)
        while at >= 0:
            if self._header_length(_Window(block, start), start + at, total) \
                    >= LONGEST_INDEXED_HEADER:
                raise ValueError(f"{self.name}: a gzip member header of at least "
                                 f"{LONGEST_INDEXED_HEADER} bytes at compressed offset "
                                 f"{start + at}")
            at = block.find(_MEMBER_START, at + 1)

    def _header_length(self, window: _Window, at: int, total: int) -> int:
        """Length of a member header at ``at`` (0 if there is none), as far as it matters."""
        try:
            return header_end(window, at, self.name) - at
        except TruncatedFileError:
            if window.size() - at >= LONGEST_INDEXED_HEADER:
                return LONGEST_INDEXED_HEADER  # no end within the limit: long
            if window.size() >= total:
                return 0  # a short header cut off by the end: indexed_gzip names that
            more = bytearray(min(LONGEST_INDEXED_HEADER, total - at))
            self.remote.read_at(at, more)
            return self._header_length(_Window(bytes(more), at), at, total)
        except ProxyError:  # CorruptDataError: these bytes do not start a member
            return 0

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(_byte_view(buffer)))
        _byte_view(buffer)[:len(data)] = data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class WalkerBytes:
    """Compressed bytes of a remote file for the member walker (pread and size).

    The last :data:`KEPT_BYTES` fetched are kept, and a read shorter than
    :data:`READ_AHEAD` fetches that much: the walker's small reads at a member
    boundary (the trailer, the magic, the next header, its name or comment)
    fall inside bytes its feeds fetched (which run past the member's end), or
    inside the ones they fetch, instead of costing a request each. A read that
    starts inside the kept bytes fetches only the rest.
    """

    def __init__(self, remote: RemoteFile) -> None:
        self.remote = remote
        self._at = 0
        self._block = b""

    def pread(self, size: int, offset: int) -> bytes:
        total = self.remote.size
        size = max(0, min(size, total - offset))
        if not size:
            return b""
        held = b""
        if 0 <= offset - self._at < len(self._block):
            held = self._block[offset - self._at:offset - self._at + size]
            if len(held) == size:
                return held
        start = offset + len(held)
        block = bytearray(min(max(size - len(held), READ_AHEAD), total - start))
        self.remote.read_at(start, block)
        if start == self._at + len(self._block):  # the bytes go on: keep a window of both
            kept = self._block[max(0, len(self._block) + len(block) - KEPT_BYTES):]
            self._at, self._block = start - len(kept), kept + bytes(block)
        else:
            self._at, self._block = start, bytes(block)
        return held + bytes(block[:size - len(held)])

    def size(self) -> int:
        return self.remote.size


__all__ = ["CompressedReader", "WalkerBytes", "LONGEST_INDEXED_HEADER",
           "READ_AHEAD", "KEPT_BYTES"]
