"""Gzip byte sources (first version: indexed_gzip behind a lock).

A seek inside a gzip stream costs a decompression from the nearest index
point, so the cost model tells the planner never to skip a gap: every key is
served by one forward pass over the span it needs.
"""

from __future__ import annotations

import gzip
import os
import threading
from typing import Any

from ..indexing.plan import CostModel
from .sources import FileObjectSource

#: Reading through any gap is cheaper than seeking in a compressed stream.
GZIP_COST = CostModel(gap_threshold=1 << 62)


def cost_for_fileobj(fileobj: Any) -> CostModel:
    """The cost model of an open file-like object (gzip streams never skip)."""
    try:
        import indexed_gzip
        compressed = (gzip.GzipFile, indexed_gzip.IndexedGzipFile)
    except ImportError:  # pragma: no cover - indexed_gzip is a dependency
        compressed = (gzip.GzipFile,)
    if isinstance(fileobj, compressed):
        return GZIP_COST
    return CostModel()


class GzipSource(FileObjectSource):
    """A gzip file read through indexed_gzip; closes what it opened."""

    def __init__(self, fd: int, path: str) -> None:
        import indexed_gzip
        self._file = os.fdopen(os.dup(fd), "rb")
        reader = indexed_gzip.IndexedGzipFile(fileobj=self._file)
        super().__init__(reader, threading.RLock(), path, GZIP_COST)

    def close(self) -> None:
        try:
            self.fileobj.close()
        finally:
            self._file.close()


def open_gzip_source(fd: int, path: str) -> GzipSource:
    return GzipSource(fd, path)
