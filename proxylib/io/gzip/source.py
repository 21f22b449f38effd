"""Gzip byte sources: what a proxy reads a ``.gz`` file through.

A :class:`GzipSource` is made per access; it borrows the descriptor of that
access and reads through the process-wide
:class:`~proxylib.io.gzip.state.GzipState` of the file's identity, kept by a
:class:`GzipRegistry` (which also holds the :class:`~.config.GzipConfig`
every state it makes is given). Compressed bytes are read with ``os.pread``
from the descriptor of the current access, never through a C ``FILE*``, so a
file deleted, truncated or replaced meanwhile gives a proxylib error (or the
data of the still-open descriptor), never a crash.
"""

from __future__ import annotations

import gzip
import sys
from typing import Any, Optional, Sequence

# indexed_gzip (a hard dependency) is imported where a reader is made, not here:
# its import (importlib.metadata, logging) would cost every ``import proxylib``
# more than numpy's; a process pays it once, at its first gzip jump.

from ...errors import ProxyReadError
from ..cost import CostModel
from ..identity import FileIdentity
from ..registry import ProcessRegistry
from ..sources import ByteSource, _byte_view
from .config import INDEX_SPACING, GzipConfig
from .state import GzipState

GZIP_MAGIC = b"\x1f\x8b"

#: Gaps up to the seek spacing are read through: skipping them would cost a
#: restart from a seek point, up to one spacing of decompression.
GZIP_COST = CostModel(gap_threshold=INDEX_SPACING)


def decompressor_name() -> str:
    """Which library streams gzip data ('isal' or 'zlib')."""
    try:
        import isal  # type: ignore[import-not-found]  # noqa: F401
        return "isal"
    except ImportError:
        return "zlib"


def cost_for_fileobj(fileobj: Any) -> CostModel:
    """The cost model of an open file-like object (gzip streams never skip)."""
    loaded = sys.modules.get("indexed_gzip")  # not imported: no IndexedGzipFile exists
    compressed = (gzip.GzipFile,) + ((loaded.IndexedGzipFile,) if loaded is not None else ())
    if isinstance(fileobj, compressed):
        return CostModel(gap_threshold=1 << 62)
    return CostModel()


class GzipRegistry(ProcessRegistry):
    """Process-wide :class:`GzipState` per file identity, all made with ``config``
    (saved indexes are still found in the cache by a forked child, which starts
    with none of these)."""

    def __init__(self, config: Optional[GzipConfig] = None, limit: int = 8) -> None:
        super().__init__(limit)
        #: None: the default GzipConfig.
        self.config = config

    def state(self, identity: FileIdentity, name: str) -> GzipState:
        return self.get(identity, lambda: GzipState(
            identity, name, (self.config or GzipConfig()).resolved()))

    def configure(self, config: Optional[GzipConfig]) -> None:
        """Use ``config`` for the states made from now on (the kept ones are dropped)."""
        self.clear()
        self.config = config


STATES = GzipRegistry()


class GzipSource(ByteSource):
    """A gzip file read through its process-wide :class:`GzipState`.

    The source borrows the descriptor of the current access (owned by
    :class:`~proxylib.io.opening.OpenFile`); it opens and closes nothing.
    """

    def __init__(self, fd: int, path: str, identity: Optional[FileIdentity] = None,
                 registry: GzipRegistry = STATES) -> None:
        self.fd = fd
        self.name = path
        try:
            identity = (FileIdentity.of_descriptor(fd) if identity is None
                        else identity.with_content(fd))
        except OSError as err:
            raise ProxyReadError(f"{path}: cannot read the gzip file: {err.strerror or err}",
                                 path=path) from err
        self.state = registry.state(identity, path)

    @property
    def cost(self) -> CostModel:  # type: ignore[override]
        """Gaps shorter than the seek spacing are read through (see GZIP_COST)."""
        spacing = self.state.config.spacing
        return GZIP_COST if spacing == GZIP_COST.gap_threshold else CostModel(
            gap_threshold=spacing)

    def readinto(self, offset: int, buffer: memoryview) -> None:
        view = _byte_view(buffer)
        if not len(view):
            return
        state = self.state
        with state.lock:
            state.readinto(self.fd, offset, view)

    def readinto_runs(self, offsets: Sequence[int], buffers: Sequence[memoryview]) -> None:
        views = [_byte_view(buffer) for buffer in buffers]
        kept = [(offset, view) for offset, view in zip(offsets, views) if len(view)]
        if not kept:
            return
        with self.state.lock:
            self.state.readinto_runs(self.fd, [o for o, _ in kept], [v for _, v in kept])

    def close(self) -> None:
        """Nothing to release: the descriptor belongs to the opener."""


def open_gzip_source(fd: int, path: str, identity: FileIdentity) -> GzipSource:
    """The source of the gzip file open as ``fd`` whose stat identity is ``identity``."""
    return GzipSource(fd, path, identity)


__all__ = ["GzipSource", "GzipRegistry", "GZIP_COST", "INDEX_SPACING", "STATES",
           "open_gzip_source", "cost_for_fileobj", "decompressor_name"]
