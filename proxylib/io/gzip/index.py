"""One gzip file's seek index, for local and remote files alike.

A :class:`GzipIndex` is the index of the file with one
:class:`~proxylib.io.identity.FileIdentity`: indexed_gzip's point table (the
export's head) and a way to fetch each point's 32 KiB window. It is

* **built** by indexed_gzip and taken out of its reader once
  (:meth:`GzipIndex.exported`), or **loaded** from the cache
  (:meth:`GzipIndex.load`: authenticated and bound to the identity by
  :mod:`.index_cache`, windows inflated and checked only when a jump needs one);
* **saved** (:meth:`save`; afterwards its windows are held deflated, as saved),
  **imported** into an indexed_gzip reader (:meth:`import_into`) and turned
  into isal seek points (:meth:`seek_points`), both **verified** first: points
  in order, inside the file, well formed;
* **discarded** (:meth:`discard`) when it fails in use.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..identity import FileIdentity
from . import index_cache, jump


class GzipIndex:
    """The seek index of one version of one gzip file (see the module docstring)."""

    def __init__(self, identity: FileIdentity, head: bytes, window: Callable[[int], Any],
                 windows: int, *, spacing: int, complete: bool,
                 where: Optional[Path] = None) -> None:
        self.identity = identity
        self.head = head
        self._window = window
        self.windows = windows
        self.spacing = spacing
        self.complete = complete
        #: Where it is saved (None: held in memory only).
        self.where = where
        self._points: Optional[jump.SeekPoints] = None

    @property
    def points(self) -> int:
        return jump.point_count(self.head)

    @classmethod
    def exported(cls, zran: Any, identity: FileIdentity, *, complete: bool) -> "GzipIndex":
        """The index an indexed_gzip reader has built so far (one export)."""
        buffer = io.BytesIO()
        zran.export_index(fileobj=buffer)
        head, windows = index_cache.split_export(buffer.getvalue())
        return cls(identity, head, windows.__getitem__, len(windows), spacing=zran.spacing,
                   complete=complete)

    @classmethod
    def load(cls, identity: FileIdentity) -> Optional["GzipIndex"]:
        """The saved index of ``identity``, or None (absent, foreign, stale or damaged)."""
        saved = index_cache.load_index(identity)
        if saved is None:
            return None
        return cls._of_saved(identity, saved)

    @classmethod
    def _of_saved(cls, identity: FileIdentity, saved: index_cache.SavedIndex) -> "GzipIndex":
        return cls(identity, saved.head, saved.window, saved.windows, spacing=saved.spacing,
                   complete=saved.complete, where=saved.where)

    def save(self) -> Optional[Path]:
        """Save to the cache; returns where (None: not saved, a warning said why)."""
        saved = index_cache.save_index(self.identity, self.payload, spacing=self.spacing,
                                       points=self.points, complete=self.complete)
        if saved is not None:        # hold the windows deflated, as saved
            self._window, self.where = saved.window, saved.where
            if self._points is not None:
                self._points.fetch_windows_from(saved.window)
        return self.where

    def discard(self) -> None:
        """Remove the saved copy (it failed in use)."""
        self.discard_saved(self.identity)
        self.where = None

    @staticmethod
    def discard_saved(identity: FileIdentity) -> None:
        """Remove the saved index of ``identity``, if any."""
        index_cache.discard_index(identity)

    @property
    def payload(self) -> bytes:
        """The whole export, as indexed_gzip's ``import_index`` reads it."""
        return self.head + b"".join(bytes(self._window(rank)) for rank in range(self.windows))

    def window(self, rank: int) -> Any:
        """The ``rank``-th window (DamagedIndexError if a saved one fails its check)."""
        return self._window(rank)

    def verified_points(self) -> "jump.SeekPoints":
        """The seek points, checked (ValueError if out of order, beyond the file or
        malformed); windows are fetched when a jump needs them."""
        if self._points is None:
            self._points = jump.SeekPoints.from_head(self.head, self._window,
                                                     self.identity.size,
                                                     complete=self.complete)
        return self._points

    def seek_points(self) -> Optional["jump.SeekPoints"]:
        """The verified points for isal jumps; None without python-isal or if unsound."""
        if not jump.HAVE_ISAL:
            return None
        try:
            return self.verified_points()
        except ValueError:
            return None

    def import_into(self, zran: Any) -> None:
        """Import into an indexed_gzip reader, verified first and after (ValueError or
        indexed_gzip's error when it is not sound)."""
        self.verified_points()
        zran.import_index(fileobj=io.BytesIO(self.payload))
        check_reader_points(zran.seek_points(), self.identity.size)


def check_reader_points(points: Sequence[Any], size: int) -> None:
    """ValueError unless a reader's (uncompressed, compressed) points are in order and
    inside a file of ``size`` compressed bytes."""
    last_uncompressed = last_compressed = -1
    for uncompressed, compressed in points:
        if uncompressed < last_uncompressed or compressed < last_compressed or compressed > size:
            raise ValueError("index points out of order or beyond the file")
        last_uncompressed, last_compressed = uncompressed, compressed


__all__ = ["GzipIndex", "check_reader_points"]
