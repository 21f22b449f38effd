"""The seek index of one local gzip file within a process: loaded, grown, saved, dropped.

An :class:`IndexKeeper` decides when the :class:`~proxylib.io.gzip.index.GzipIndex`
of one file identity is loaded from the cache (once, into whichever engine
asks first: isal seek points or an indexed_gzip reader), when the index
indexed_gzip grew is saved (when complete, or when it has about doubled), and
forgets it when it failed in use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ..identity import FileIdentity
from . import jump
from .index import GzipIndex


class IndexKeeper:
    """The index of one file identity in this process (see the module docstring)."""

    def __init__(self, identity: FileIdentity) -> None:
        self.identity = identity
        #: Seek points for isal jumps (from the saved index or the last export).
        self.points: Optional[jump.SeekPoints] = None
        #: Points in the index saved last (or imported), and whether it reaches the end.
        self.saved_points = 0
        self.complete = False
        #: Whether the saved index was already offered to a reader / to the jumps.
        self._offered_reader = False
        self._offered_points = False
        #: Times an index of this file failed in use.
        self.failures = 0

    def import_saved(self, reader: Any) -> bool:
        """Import the saved index into a new indexed_gzip reader, the first time one is
        made; False if the import failed (the index was discarded)."""
        if self._offered_reader:
            return True
        self._offered_reader = True
        index = GzipIndex.load(self.identity)
        if index is None:
            return True
        try:
            index.import_into(reader)
        except Exception:  # a damaged or foreign index: start afresh, never trust it
            index.discard()
            return False
        self.saved_points = reader.npoints
        self.complete = index.complete
        if self.points is None:
            self._offered_points = True
            self.points = index.seek_points()
        return True

    def seek_points(self, reader_exists: bool) -> Optional[jump.SeekPoints]:
        """The points for isal jumps, read from the saved index on first use (unless a
        reader exists: it imported the saved index already)."""
        if self.points is None and not self._offered_points and not reader_exists:
            self._offered_points = True
            index = GzipIndex.load(self.identity)
            if index is not None:
                points = index.seek_points()
                if points is not None:
                    self.points, self.complete = points, index.complete
                    self.saved_points = index.points
                elif jump.HAVE_ISAL:
                    index.discard()
        return self.points

    def reaches_end(self, reader: Any) -> bool:
        """Whether the index (saved, or the reader's) covers the whole file."""
        if self.complete:
            return True
        try:
            reader.seek(0, 2)
        except Exception:  # NotCoveredError: the index does not reach the end yet
            return False
        self.complete = True
        return True

    def save_if_grown(self, reader: Any, force: bool = False) -> Optional[Path]:
        """Save the reader's index when it has grown (or ``force``); returns where."""
        if reader is None or reader.npoints == 0:
            return None
        complete = self.reaches_end(reader)
        grown = reader.npoints > self.saved_points
        if not (force or (grown and (complete or reader.npoints >= 2 * self.saved_points + 8))):
            return None
        return self.adopt(GzipIndex.exported(reader, self.identity, complete=complete))

    def adopt(self, index: GzipIndex) -> Optional[Path]:
        """Save ``index`` and jump from its points (held in memory if it cannot be saved)."""
        where = index.save()
        self.saved_points = index.points
        self.points = index.seek_points()
        return where

    def damaged(self) -> None:
        """A saved window failed its check: discard the saved index, stop jumping from it."""
        GzipIndex.discard_saved(self.identity)
        self.points = None

    def forget(self, offer_again: bool) -> None:
        """The index failed in use: discard it; ``offer_again``: a new one may be loaded
        (or built) and tried once more."""
        self.points = None
        self.saved_points, self.complete = 0, False
        GzipIndex.discard_saved(self.identity)
        self._offered_reader = self._offered_points = not offer_again

    def forget_saved_offer(self) -> None:
        """Offer no saved index to the next reader (one is built from scratch)."""
        self._offered_reader = True

    @property
    def had_index(self) -> bool:
        return self.points is not None or self.saved_points > 0


__all__ = ["IndexKeeper"]
