"""What a process keeps of one gzip file: its engines, its index, and which engine reads.

A :class:`GzipState` lives per file identity (not per access), so a proxy that
re-opens its file for every access keeps its cursors and index. It holds the
engines of :mod:`.engines` and the :class:`~proxylib.io.gzip.keeper.IndexKeeper`,
and chooses per read (:meth:`GzipState.choose`):

1. every read streams once the index proved unusable for this file;
2. a large read with a complete index: the parallel engine;
3. a read at or a little after the streaming cursor, or near the start: the
   stream (a key's runs and consecutive keys cost one pass in total);
4. anything else jumps from a seek point (isal, else indexed_gzip).

If a fast path fails, the member walker reads the same runs from the start:
``CorruptDataError`` is only for data a second decoder also refuses, and the
index that failed is discarded (rebuilt once, with a warning, if it was saved).
"""

from __future__ import annotations

import threading
import warnings
from typing import Any, Sequence

from ...errors import IndexCacheWarning, ProxyReadError
from ..identity import FileIdentity
from .config import GzipConfig
from .engines import Engine, IndexedEngine, JumpEngine, ParallelEngine, StreamEngine
from .keeper import IndexKeeper
from .members import DescriptorBytes
from .parallel import contiguous


class GzipState:
    """Engines and index of one gzip file (one identity), used under ``lock``."""

    def __init__(self, identity: FileIdentity, name: str, config: GzipConfig) -> None:
        self.identity = identity
        self.name = name
        self.config = config
        self.lock = threading.Lock()
        self.index = IndexKeeper(identity)
        self.stream = StreamEngine(name, config)
        self.indexed = IndexedEngine(name, config, self.index.import_saved,
                                     self.index.save_if_grown)
        self.jumps = JumpEngine(name, config, self.seek_points, self.indexed,
                                self.index.damaged)
        self.parallel = ParallelEngine(name, config, self.seek_points)
        #: Set when no index can serve this file (indexed_gzip refused it, or an
        #: index failed twice): every read streams.
        self.stream_only = False

    def seek_points(self) -> Any:
        return self.index.seek_points(self.indexed.reader is not None)

    def choose(self, offset: int, length: int) -> Engine:
        """The engine for a read of ``length`` bytes at ``offset`` (module docstring)."""
        if self.stream_only:
            return self.stream
        if self.parallel.serves(offset, length):
            return self.parallel
        if self.stream.continues(offset) or offset <= self.config.jump:
            return self.stream
        return self.jumps

    def readinto(self, fd: int, offset: int, view: memoryview) -> None:
        self.readinto_runs(fd, [offset], [view])

    def readinto_runs(self, fd: int, offsets: Sequence[int], views: Sequence[memoryview]) -> None:
        """Fill each view from its offset; runs that follow each other are read as one."""
        if len(views) > 1 and not contiguous(offsets, views):
            for offset, view in zip(offsets, views):
                self.readinto_runs(fd, [offset], [view])
            return
        file = DescriptorBytes(fd, self.identity.size)
        length = offsets[-1] + len(views[-1]) - offsets[0]
        engine = self.choose(offsets[0], length)
        if engine is self.stream:
            engine.readinto(file, offsets, views)
            return
        try:
            engine.readinto(file, offsets, views)
            return
        except ProxyReadError as err:
            failure = err
        # A second decoder decides: the member walker, from the start of the file.
        self.stream.readinto(file, offsets, views)
        self.distrust(failure)

    def distrust(self, failure: ProxyReadError) -> None:
        """The index failed where streaming read the data: stop trusting it."""
        had_index = self.index.had_index
        self.jumps.cursor = None
        self.indexed.drop()
        self.index.forget(offer_again=False)
        self.index.failures += 1
        if not had_index and self.indexed.grow_readbuf(self.stream.max_header):
            self.index.forget(offer_again=True)    # let indexed_gzip try again
            return
        if not had_index or self.index.failures > 1:
            self.stream_only = True        # indexed_gzip cannot read it: stream it
            return
        self.index.forget(offer_again=True)
        warnings.warn(
            f"proxylib: the saved gzip index of {self.name} failed in use ({failure}); "
            "it was discarded and will be rebuilt", IndexCacheWarning, stacklevel=6)


__all__ = ["GzipState"]
