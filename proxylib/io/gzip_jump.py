"""Jumps into a gzip stream with python-isal, restarting at indexed_gzip's seek points.

indexed_gzip finds the seek points (deflate block boundaries) and exports them
(``export_index``): per point the compressed byte offset, the number of bits
of the byte before it that already belong to the block (0-7), the uncompressed
offset and the 32 KiB of uncompressed data before it (the *window*; none at
the start of a gzip member). indexed_gzip inflates from a point with zlib
(about 300 MB/s here); python-isal inflates about three times faster but has
no ``inflatePrime``, so a point that starts mid-byte is served by shifting the
compressed bytes (vectorised with numpy) until the block starts on a byte
boundary, and the window is given as the raw-deflate dictionary.

A :class:`JumpCursor` decompresses forwards from one point, on across gzip
members (byte aligned again after the first). Checks that remain possible
when starting mid-member stay on: a member the cursor reads from its start
has its CRC-32 and length checked; a member entered mid-way has its length
(ISIZE) checked against the index; inflate errors raise
:class:`~proxylib.errors.CorruptDataError`, a stream that ends early
:class:`~proxylib.errors.TruncatedFileError`, both naming the compressed offset.
"""

from __future__ import annotations

import os
import struct
from typing import Any, Callable, Optional

import numpy as np

from ..errors import CorruptDataError, ProxyReadError, TruncatedFileError
from .positional import pread

try:
    from isal import isal_zlib  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - exercised by the fallback test via monkeypatch
    isal_zlib = None

#: Whether jumps can use python-isal (else indexed_gzip serves them).
HAVE_ISAL = isal_zlib is not None
WINDOW = 32 * 1024
_EXPORT_MAGIC = b"GZIDX\x01"
_EXPORT_HEADER = struct.Struct("<7sQQIII")   # magic+version+flags, sizes, spacing, window, n
_POINT = np.dtype([("compressed", "<u8"), ("uncompressed", "<u8"), ("bits", "u1"),
                   ("has_window", "u1")])
#: Compressed bytes read per call (after a first read sized by the point's
#: compression ratio; grows to _MAX_CHUNK while a jump runs on).
_FIRST_CHUNK = 16 * 1024
_MAX_CHUNK = 1 << 20
#: Most uncompressed bytes produced per inflate call: bounds memory on bombs,
#: and outputs above a few hundred KiB cost page faults (isal on 512 KiB:
#: 0.59 ms in 64 KiB pieces, 0.60 ms in 256 KiB, 1.17 ms in 1 MiB).
_MAX_OUTPUT = 256 * 1024


class SeekPoints:
    """The seek points of one gzip file and a way to fetch each point's window."""

    def __init__(self, table: np.ndarray, window_rank: np.ndarray,
                 window: Callable[[int], bytes], *, spacing: int, complete: bool) -> None:
        self.table = table
        self.uncompressed = table["uncompressed"].astype(np.int64)
        self._window_rank = window_rank
        self._window = window
        self.spacing = spacing
        self.complete = complete
        starts = np.where(table["has_window"] == 0, np.arange(len(table)), -1)
        self._member_point = np.maximum.accumulate(starts) if len(table) else starts

    def __len__(self) -> int:
        return len(self.table)

    @classmethod
    def from_export(cls, payload: bytes, file_size: int, *, complete: bool) -> "SeekPoints":
        """Parse (and check) an ``export_index`` payload; ValueError if it is not sound."""
        head = _head_size(payload)
        view = memoryview(payload)
        points = cls.from_head(bytes(view[:head]),
                               lambda r: view[head + r * WINDOW:head + (r + 1) * WINDOW],
                               file_size, complete=complete)
        if len(payload) != head + int(points.table["has_window"].sum()) * WINDOW:
            raise ValueError("index payload size does not match its points")
        return points

    @classmethod
    def from_head(cls, head: bytes, window: Callable[[int], bytes], file_size: int, *,
                  complete: bool) -> "SeekPoints":
        """Points from an export's header and point records; windows come from ``window``."""
        magic, _, _, spacing, window_size, count = _EXPORT_HEADER.unpack_from(head)
        if magic[:6] != _EXPORT_MAGIC or window_size != WINDOW or len(head) != _head_size(head):
            raise ValueError("not an indexed_gzip v1 index with 32 KiB windows")
        table = np.frombuffer(head, _POINT, count, _EXPORT_HEADER.size)
        check_points(table, file_size)
        rank = np.cumsum(table["has_window"].astype(np.int64)) - 1
        return cls(table, rank, window, spacing=spacing, complete=complete)

    def before(self, offset: int) -> int:
        """Index of the last point at or before uncompressed ``offset`` (-1 if none)."""
        return int(np.searchsorted(self.uncompressed, offset, "right")) - 1

    def covers(self, offset: int) -> bool:
        """Whether a jump to ``offset`` costs at most about one spacing of inflating."""
        if not len(self.table):
            return False
        return self.complete or offset < int(self.uncompressed[-1]) + self.spacing

    def window(self, point: int) -> Optional[bytes]:
        if not self.table["has_window"][point]:
            return None
        return self._window(int(self._window_rank[point]))

    def member_start(self, point: int) -> int:
        """Uncompressed offset where the member holding ``point`` starts."""
        return int(self.uncompressed[self._member_point[point]])


def _head_size(payload: bytes) -> int:
    count = _EXPORT_HEADER.unpack_from(payload)[-1]
    return _EXPORT_HEADER.size + count * _POINT.itemsize


def check_points(table: np.ndarray, file_size: int) -> None:
    """ValueError unless the points are in order, inside the file and well formed."""
    if not len(table):
        return
    compressed = table["compressed"].astype(np.int64)
    bits = table["bits"]
    if (np.any(np.diff(compressed) < 0) or np.any(np.diff(table["uncompressed"].astype(np.int64)) < 0)
            or compressed[-1] > file_size or np.any(bits > 7) or np.any((bits > 0) & (compressed == 0))
            or table["has_window"][0] != 0 or np.any(table["has_window"] > 1)):
        raise ValueError("index points out of order, beyond the file or malformed")


def _shifted(raw: bytes, shift: int) -> bytes:
    """``raw[:-1]`` with the bit stream moved ``shift`` bits down (raw has one byte extra)."""
    data = np.frombuffer(raw, np.uint8)
    return ((data[:-1] >> shift) | (data[1:] << (8 - shift))).tobytes()


class JumpCursor:
    """An isal inflater started at one seek point, positioned at ``position``."""

    def __init__(self, points: SeekPoints, point: int, name: str) -> None:
        row = points.table[point]
        bits = int(row["bits"])
        self.name = name
        self.position = int(row["uncompressed"])
        self.member_produced = self.position - points.member_start(point)
        window = points.window(point)
        # A point without a window starts its member: the whole member passes
        # through this cursor, so its CRC can be checked too.
        self.crc: Optional[int] = 0 if window is None else None
        self.shift = (8 - bits) % 8
        self.base = int(row["compressed"]) - (1 if bits else 0)  # first byte fed
        self.next_byte = self.base         # next original byte to read
        self.fed = 0                       # bytes given to the current inflater
        self.gzip_mode = False             # later members: isal parses and checks them
        self.inflater: Any = (isal_zlib.decompressobj(-15, zdict=window) if window is not None
                              else isal_zlib.decompressobj(-15))
        self.tail = b""                    # input given but not yet consumed
        self.bytes_read = 0                # compressed bytes read (tests and benchmarks)
        self.ended = False
        self._chunk = _FIRST_CHUNK
        following = point + 1 if point + 1 < len(points) else point
        spans = (int(points.table["compressed"][following]) - int(row["compressed"]),
                 int(points.uncompressed[following]) - self.position)
        self._ratio = spans[0] / spans[1] if spans[1] > 0 and spans[0] > 0 else 1.0
        self._out = memoryview(b"")

    # -- compressed input ------------------------------------------------------
    def _feed(self, fd: int) -> bytes:
        size = self._chunk
        self._chunk = min(2 * self._chunk, _MAX_CHUNK)
        if not self.shift or self.gzip_mode:
            raw = pread(fd, size, self.next_byte)
            self.next_byte += len(raw)
            self.bytes_read += len(raw)
            return raw
        raw = pread(fd, size + 1, self.next_byte)
        self.bytes_read += len(raw)
        if not raw:
            return raw
        if len(raw) <= size:
            raw += b"\0"                   # the last byte's high bits come from nowhere
        self.next_byte += len(raw) - 1
        return _shifted(raw, self.shift)

    def _compressed_offset(self) -> int:
        return self.next_byte - len(self.tail)

    # -- uncompressed output ---------------------------------------------------
    def _inflate(self, fd: int, limit: int) -> memoryview:
        """The next at most ``limit`` uncompressed bytes (empty at the end of the data)."""
        while True:
            if self.ended:
                return memoryview(b"")
            data = self.tail
            if not data:
                data = self._feed(fd)
                if not data:
                    raise TruncatedFileError(
                        f"{self.name}: the gzip stream is truncated at compressed offset "
                        f"{self.next_byte} (uncompressed offset {self.position}); "
                        "re-download or re-copy the file", path=self.name, offset=self.next_byte)
                self.fed += len(data)
            out = self.inflater.decompress(data, min(limit, _MAX_OUTPUT))
            self.tail = self.inflater.unconsumed_tail
            if self.crc is not None and out:
                self.crc = isal_zlib.crc32(out, self.crc)
            self.member_produced += len(out)
            if self.inflater.eof:
                self._end_member(fd)
            if out:
                return memoryview(out)

    def _end_member(self, fd: int) -> None:
        unused = self.inflater.unused_data
        if self.gzip_mode:                 # isal checked this member's CRC and length
            after = self.next_byte - len(unused)
        else:
            after = self._check_trailer(fd, self.fed - len(unused) - len(self.tail))
        self.tail = b""
        self.next_byte = after
        self.shift = 0
        head = pread(fd, 2, after)
        if head != b"\x1f\x8b":            # the end of the data (or trailing padding)
            self.ended = True
            return
        self.gzip_mode = True
        self.fed = 0
        self.crc = None
        self.member_produced = 0
        self.inflater = isal_zlib.decompressobj(31)

    def _check_trailer(self, fd: int, consumed: int) -> int:
        """Check the first member's trailer; return the compressed offset after it."""
        # The deflate data ended in the last consumed (shifted) byte; unshifted,
        # that is one of two bytes, so the trailer starts at one of two places.
        first = self.base + consumed
        candidates = [first] if not self.shift else [first, first + 1]
        isize = self.member_produced & 0xFFFFFFFF
        size = os.fstat(fd).st_size
        for start in candidates:
            trailer = pread(fd, 10, start)
            if len(trailer) < 8:
                continue
            crc, length = struct.unpack_from("<II", trailer)
            follows = trailer[8:10]
            if length != isize or not (start + 8 == size or follows == b"\x1f\x8b"
                                       or follows[:1] == b"\0"):
                continue
            if self.crc is not None and crc != self.crc:
                raise CorruptDataError(
                    f"{self.name}: CRC-32 mismatch in the gzip member ending at compressed "
                    f"offset {start}; the file is damaged, no values were returned",
                    path=self.name, offset=start)
            return start + 8
        if first + 8 > size:
            raise TruncatedFileError(
                f"{self.name}: the gzip stream is truncated at compressed offset {size} "
                "(a member trailer is missing); re-download or re-copy the file",
                path=self.name, offset=size)
        raise CorruptDataError(
            f"{self.name}: the gzip member trailer near compressed offset {first} does not "
            f"match the data (length {isize} expected); the file is damaged, no values "
            "were returned", path=self.name, offset=first)

    # -- one read --------------------------------------------------------------
    def readinto(self, fd: int, offset: int, view: memoryview) -> None:
        """Fill ``view`` from uncompressed ``offset`` (at or after ``position``)."""
        if offset < self.position:
            raise ValueError("a jump cursor only reads forwards")
        if not self.fed and not self.gzip_mode:   # read about what the jump needs at once
            needed = (offset + len(view) - self.position) * self._ratio
            self._chunk = int(min(max(needed * 1.1 + 4096, _FIRST_CHUNK), _MAX_CHUNK))
        try:
            self._out = self._skip(fd, offset)
            done, wanted = 0, len(view)
            while done < wanted:
                out = self._out if self._out else self._inflate(fd, wanted - done)
                if not out:
                    raise TruncatedFileError(
                        f"{self.name}: the gzip stream ends before uncompressed offset "
                        f"{offset + wanted} (it stops at {offset + done}, compressed offset "
                        f"{self._compressed_offset()}); the file is truncated or its header "
                        "is wrong", path=self.name, offset=offset + done, expected=wanted,
                        found=done)
                count = min(len(out), wanted - done)
                view[done:done + count] = out[:count]
                self._out = out[count:]
                done += count
                self.position += count
        except ProxyReadError:
            self.ended = True
            raise
        except isal_zlib.error as err:
            self.ended = True
            raise CorruptDataError(
                f"{self.name}: corrupt gzip data near compressed offset "
                f"{self._compressed_offset()} (reading uncompressed offset {offset}): {err}; "
                "no values were returned", path=self.name,
                offset=self._compressed_offset()) from err

    def _skip(self, fd: int, offset: int) -> memoryview:
        out = self._out
        while self.position + len(out) < offset:
            self.position += len(out)
            out = self._inflate(fd, max(offset - self.position, 1))
            if not out:
                raise TruncatedFileError(
                    f"{self.name}: the gzip stream ends at uncompressed offset {self.position} "
                    f"(compressed offset {self._compressed_offset()}), before offset {offset}; "
                    "the file is truncated or its header is wrong", path=self.name,
                    offset=self.position)
        start = offset - self.position
        self.position = offset
        return out[start:]


__all__ = ["HAVE_ISAL", "SeekPoints", "JumpCursor", "check_points", "WINDOW"]
