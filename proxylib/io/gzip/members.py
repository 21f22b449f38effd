"""A gzip decoder that walks members itself: any header size, named CRC errors, padding.

:class:`MemberCursor` inflates raw deflate data (python-isal when installed,
else zlib) and does the gzip framing in Python: it parses each member header
(FEXTRA, FNAME, FCOMMENT and FHCRC of any length, so a multi-MiB comment is
no problem), checks each member's CRC-32 and length, goes on across members
(pigz, BGZF, ``cat a.gz b.gz``) and stops, as ``gzip -d`` does, at trailing
zeros or other bytes that do not start a member.

It starts either at the beginning of the file or at a seek point of a
:class:`~proxylib.io.jump.SeekPoints` index (mid-member, with the
point's window as dictionary; a point inside a byte is entered through
:func:`~proxylib.io.gzip.deflate_prime.primed_byte`). Entered mid-member, it cannot
check that member's CRC but checks its length against the index.

Compressed bytes come from a :class:`CompressedBytes` (``pread`` and
``size``), so a local descriptor and a remote file are read the same way.
"""

from __future__ import annotations

import os
import struct
from typing import Any, List, Optional, Protocol

from ...errors import CorruptDataError, ProxyReadError, TruncatedFileError
from .deflate_prime import primed_byte
from ..positional import pread

try:
    from isal import isal_zlib as _inflate_lib  # type: ignore[import-not-found]
    ENGINE = "isal"
except ImportError:  # pragma: no cover - isal is optional
    import zlib as _inflate_lib  # type: ignore[no-redef]
    ENGINE = "zlib"

GZIP_MAGIC = b"\x1f\x8b"
_FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 2, 4, 8, 16
#: Compressed bytes read per call (after a first read sized by the expected
#: compression ratio; doubles up to _MAX_CHUNK while a read runs on).
_FIRST_CHUNK = 16 * 1024
_MAX_CHUNK = 1 << 20
#: Most uncompressed bytes produced per inflate call: bounds memory on bombs,
#: and outputs above a few hundred KiB cost page faults (isal on 512 KiB:
#: 0.59 ms in 64 KiB pieces, 0.60 ms in 256 KiB, 1.17 ms in 1 MiB).
_MAX_OUTPUT = 256 * 1024
#: Compressed bytes passed per inflate call. An inflater bounded by an output
#: limit copies the input it did not consume into a new ``unconsumed_tail`` on
#: every call; handing it a whole 1 MiB chunk cost about 12 bytes copied (with
#: the GIL held) per compressed byte, which serialised parallel reads.
_FEED = 32 * 1024
#: Header fields are scanned for their end in pieces of this size.
_HEADER_PIECE = 64 * 1024


class CompressedBytes(Protocol):
    """Where compressed bytes come from."""

    def pread(self, size: int, offset: int) -> bytes: ...

    def size(self) -> int: ...


class DescriptorBytes:
    """Compressed bytes of an open local file, read positionally; ``size`` when known
    (from the file's identity) saves a stat per read."""

    def __init__(self, fd: int, size: Optional[int] = None) -> None:
        self.fd = fd
        self._size = size

    def pread(self, size: int, offset: int) -> bytes:
        return pread(self.fd, size, offset)

    def size(self) -> int:
        return os.fstat(self.fd).st_size if self._size is None else self._size


def as_bytes(source: Any) -> CompressedBytes:
    return DescriptorBytes(source) if isinstance(source, int) else source


def header_end(source: CompressedBytes, start: int, name: str) -> int:
    """Offset of the deflate data of the member whose header starts at ``start``."""
    head = source.pread(10, start)
    if len(head) < 10:
        raise TruncatedFileError(
            f"{name}: the gzip stream is truncated at compressed offset {start + len(head)} "
            "(inside a member header); re-download or re-copy the file",
            path=name, offset=start + len(head))
    if head[:2] != GZIP_MAGIC or head[2] != 8 or head[3] & 0xE0:
        raise CorruptDataError(
            f"{name}: no valid gzip member header at compressed offset {start} "
            f"(found {head[:4].hex()}); the file is damaged, no values were returned",
            path=name, offset=start)
    flags, at = head[3], start + 10
    if flags & _FEXTRA:
        length = source.pread(2, at)
        if len(length) < 2:
            raise _truncated_header(name, at)
        at += 2 + struct.unpack("<H", length)[0]
    for flag in (_FNAME, _FCOMMENT):
        if flags & flag:
            at = _after_zero(source, at, name)
    if flags & _FHCRC:
        at += 2
    if at > source.size():
        raise _truncated_header(name, source.size())
    return at


def _after_zero(source: CompressedBytes, at: int, name: str) -> int:
    while True:
        piece = source.pread(_HEADER_PIECE, at)
        if not piece:
            raise _truncated_header(name, at)
        end = piece.find(b"\0")
        if end >= 0:
            return at + end + 1
        at += len(piece)


def _truncated_header(name: str, offset: int) -> TruncatedFileError:
    return TruncatedFileError(
        f"{name}: the gzip stream is truncated at compressed offset {offset} (inside a member "
        "header); re-download or re-copy the file", path=name, offset=offset)


class MemberCursor:
    """One inflater walking a gzip file forwards, positioned at uncompressed ``position``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.position = 0                  # uncompressed offset of the next byte out
        self.next_byte = 0                 # compressed offset of the next byte to read
        self.inflater: Any = None          # None between members
        self.tail = b""                    # input read (unconsumed from tail_at on)
        self.tail_at = 0
        self.crc: Optional[int] = 0        # None: member entered mid-way
        self.member_produced = 0
        self.bits = 0                      # first read: prime a mid-byte point
        self.bytes_read = 0                # compressed bytes read (tests and benchmarks)
        self.members = 0                   # members started by this cursor
        self.max_header = 0                # longest member header seen
        self.ended = False
        self._chunk = _FIRST_CHUNK
        self._ratio = 1.0
        self._out = memoryview(b"")
        self._held: List[bytes] = []

    @classmethod
    def at_point(cls, points: Any, point: int, name: str) -> "MemberCursor":
        """A cursor started at seek point ``point`` of a SeekPoints index."""
        row = points.table[point]
        cursor = cls(name)
        cursor.bits = int(row["bits"])
        cursor.position = int(row["uncompressed"])
        cursor.member_produced = cursor.position - points.member_start(point)
        window = points.window(point)
        # A point without a window is where a member's deflate data start (after
        # its header): the whole member passes through, so its CRC is checked.
        cursor.next_byte = int(row["compressed"]) - (1 if cursor.bits else 0)
        cursor.inflater = (_inflate_lib.decompressobj(-15) if window is None
                           else _inflate_lib.decompressobj(-15, zdict=window))
        cursor.crc = 0 if window is None else None
        cursor.members = 1
        following = point + 1 if point + 1 < len(points) else point
        spans = (int(points.table["compressed"][following]) - int(row["compressed"]),
                 int(points.uncompressed[following]) - cursor.position)
        cursor._ratio = spans[0] / spans[1] if spans[1] > 0 and spans[0] > 0 else 1.0
        return cursor

    # -- compressed input ------------------------------------------------------
    def _feed(self, source: CompressedBytes) -> bytes:
        size = self._chunk
        self._chunk = min(2 * self._chunk, _MAX_CHUNK)
        raw = source.pread(size, self.next_byte)
        self.bytes_read += len(raw)
        self.next_byte += len(raw)
        if self.bits and raw:
            primed, self.bits = primed_byte(self.bits, raw[0]), 0
            return primed + raw[1:]
        return raw

    def compressed_offset(self) -> int:
        return self.next_byte - (len(self.tail) - self.tail_at)

    # -- members ------------------------------------------------------------------
    def _start_member(self, source: CompressedBytes) -> bool:
        """Parse the next member's header; False at the end of the gzip data."""
        start = self.next_byte
        if self.members and source.pread(2, start) != GZIP_MAGIC:
            return False                   # end of the data, zeros or other padding
        self.next_byte = header_end(source, start, self.name)
        self.max_header = max(self.max_header, self.next_byte - start)
        self.members += 1
        self.inflater = _inflate_lib.decompressobj(-15)
        self.crc, self.member_produced, self.tail, self.tail_at = 0, 0, b"", 0
        return True

    def _end_member(self, source: CompressedBytes) -> None:
        trailer_at = self.compressed_offset()
        trailer = source.pread(8, trailer_at)
        if len(trailer) < 8:
            raise TruncatedFileError(
                f"{self.name}: the gzip stream is truncated at compressed offset "
                f"{trailer_at + len(trailer)} (a member trailer is missing); re-download or "
                "re-copy the file", path=self.name, offset=trailer_at + len(trailer))
        crc, isize = struct.unpack("<II", trailer)
        if self.crc is not None and crc != self.crc & 0xFFFFFFFF:
            raise CorruptDataError(
                f"{self.name}: CRC-32 mismatch in the gzip member whose trailer is at "
                f"compressed offset {trailer_at} (stored {crc:08x}, data {self.crc:08x}); "
                "the file is damaged, no values were returned", path=self.name,
                offset=trailer_at)
        if isize != self.member_produced & 0xFFFFFFFF:
            raise CorruptDataError(
                f"{self.name}: length mismatch in the gzip member whose trailer is at "
                f"compressed offset {trailer_at} (stored {isize}, data "
                f"{self.member_produced & 0xFFFFFFFF}); the file is damaged, no values were "
                "returned", path=self.name, offset=trailer_at)
        self.inflater, self.tail, self.tail_at = None, b"", 0
        self.next_byte = trailer_at + 8

    # -- uncompressed output ---------------------------------------------------
    def _inflate(self, source: CompressedBytes, limit: int) -> memoryview:
        """The next at most ``limit`` uncompressed bytes (empty at the end of the data)."""
        while not self.ended:
            if self.inflater is None and not self._start_member(source):
                self.ended = True
                break
            if self.tail_at >= len(self.tail):
                self.tail, self.tail_at = self._feed(source), 0
                if not self.tail:
                    raise TruncatedFileError(
                        f"{self.name}: the gzip stream is truncated at compressed offset "
                        f"{self.next_byte} (uncompressed offset {self.position}); "
                        "re-download or re-copy the file", path=self.name,
                        offset=self.next_byte)
            piece = memoryview(self.tail)[self.tail_at:self.tail_at + _FEED]
            try:
                out = self.inflater.decompress(piece, min(limit, _MAX_OUTPUT))
            except _inflate_lib.error as err:
                raise CorruptDataError(
                    f"{self.name}: corrupt deflate data near compressed offset "
                    f"{self.compressed_offset()} (uncompressed offset {self.position}): "
                    f"{err}; no values were returned", path=self.name,
                    offset=self.compressed_offset()) from err
            self.tail_at += (len(piece) - len(self.inflater.unconsumed_tail)
                             - len(self.inflater.unused_data))
            if self.crc is not None and out:
                self.crc = _inflate_lib.crc32(out, self.crc)
            self.member_produced += len(out)
            if self.inflater.eof:
                self._end_member(source)
            if out:
                return memoryview(out)
        return memoryview(b"")

    # -- one read --------------------------------------------------------------
    def readinto(self, source: Any, offset: int, view: memoryview) -> None:
        """Fill ``view`` from uncompressed ``offset`` (at or after ``position``)."""
        done = self.read_available(source, offset, view)
        if done < len(view):
            self.ended = True
            raise TruncatedFileError(
                f"{self.name}: the gzip stream ends before uncompressed offset "
                f"{offset + len(view)} (it stops at {offset + done}, compressed offset "
                f"{self.compressed_offset()}); the file is truncated or its header is wrong",
                path=self.name, offset=offset + done, expected=len(view), found=done)

    def read_available(self, source: Any, offset: int, view: memoryview) -> int:
        """Fill ``view`` from ``offset`` as far as the data go; returns the count."""
        source = as_bytes(source)
        if offset < self.position:
            raise ValueError("a member cursor only reads forwards")
        if self.bytes_read == 0:           # read about what this read needs at once
            needed = (offset + len(view) - self.position) * self._ratio
            self._chunk = int(min(max(needed * 1.1 + 4096, _FIRST_CHUNK), _MAX_CHUNK))
        try:
            self._out = self._skip(source, offset)
            done, wanted = 0, len(view)
            while done < wanted:
                out = self._out if self._out else self._next(source, wanted - done)
                if not out:
                    break
                count = min(len(out), wanted - done)
                view[done:done + count] = out[:count]
                self._out = out[count:]
                done += count
                self.position += count
            return done
        except ProxyReadError:
            self.ended = True
            raise

    def _next(self, source: CompressedBytes, limit: int) -> memoryview:
        if self._held:
            return memoryview(self._held.pop(0))
        return self._inflate(source, limit)

    def settle(self, source: Any, within: int, hold: int) -> None:
        """Near the end of the data, inflate on to its end (holding at most ``hold``
        bytes for later reads), so the last member's CRC is checked before a read
        that ends there returns."""
        source = as_bytes(source)
        if self.ended or self._held or source.size() - self.next_byte > within:
            return
        total = 0
        try:
            while total < hold and not self.ended:
                out = self._inflate(source, min(_MAX_OUTPUT, hold - total))
                if out:
                    self._held.append(bytes(out))
                    total += len(out)
        except ProxyReadError:
            self.ended = True
            raise

    def run_to_end(self, source: Any) -> None:
        """Inflate (and drop) everything left, checking every trailer on the way."""
        source = as_bytes(source)
        try:
            while True:
                out = self._inflate(source, _MAX_OUTPUT)
                if not out:
                    break
                self.position += len(out)
        except ProxyReadError:
            self.ended = True
            raise

    def _skip(self, source: CompressedBytes, offset: int) -> memoryview:
        out = self._out
        while self.position + len(out) < offset:
            self.position += len(out)
            out = self._next(source, max(offset - self.position, 1))
            if not out:
                return out                 # the data end before offset
        start = offset - self.position
        self.position = offset
        return out[start:]


__all__ = ["MemberCursor", "CompressedBytes", "DescriptorBytes", "header_end", "ENGINE"]
