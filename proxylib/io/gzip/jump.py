"""Jumps into a gzip stream with python-isal, restarting at indexed_gzip's seek points.

indexed_gzip finds the seek points (deflate block boundaries) and exports them
(``export_index``): per point the compressed byte offset, the number of bits
of the byte before it that already belong to the block (0-7), the uncompressed
offset and the 32 KiB of uncompressed data before it (the *window*; none at
the start of a gzip member). indexed_gzip inflates from a point with zlib
(about 300 MB/s here); python-isal inflates about three times faster but has
no ``inflatePrime``. A point that starts mid-byte is entered by feeding
:func:`~proxylib.io.gzip.deflate_prime.primed_byte` in place of the byte holding its
first bits and the following bytes unchanged (shifting every byte instead
misreads any later stored block, as every sync or full flush writes one), and
the window is given as the raw-deflate dictionary.

:func:`jump_cursor` starts a :class:`~proxylib.io.gzip.members.MemberCursor`
at one point; it decompresses forwards, on across gzip members, checking what
can be checked from there (see that module).
"""

from __future__ import annotations

import struct
from typing import Callable, Optional

import numpy as np

from .members import MemberCursor

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

    def fetch_windows_from(self, window: Callable[[int], bytes]) -> None:
        """Fetch the windows from ``window`` from now on (the same windows, held
        elsewhere: e.g. deflated once saved)."""
        self._window = window

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


def point_count(head: bytes) -> int:
    """How many points an export (or its head) holds."""
    return int(_EXPORT_HEADER.unpack_from(head)[-1])


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


def jump_cursor(points: SeekPoints, point: int, name: str) -> MemberCursor:
    """A cursor inflating forwards from seek point ``point``."""
    return MemberCursor.at_point(points, point, name)


__all__ = ["HAVE_ISAL", "SeekPoints", "jump_cursor", "check_points", "point_count", "WINDOW"]
