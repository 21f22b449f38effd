"""Gzip byte sources: a seek index for jumps, a streaming decompressor for runs.

Two engines serve one ``.gz`` file, sharing one lock:

* a **stream cursor** (:class:`~proxylib.io.compressed.StreamCursor` over
  python-isal's ``igzip`` when installed, else :mod:`gzip`) decompresses
  forwards from the start of the file. A read at or a little after its
  position continues it, so a key's runs (asked for in increasing offset
  order) and consecutive keys (volume 0, 1, 2, ...) cost one pass in total.
  Member CRCs are checked as it passes them.
* an **indexed_gzip** reader answers reads that jump further ahead than
  :data:`JUMP` (a time series, the last volume): it restarts from the
  nearest seek point, building the index as needed. The index is saved to
  the cache (:mod:`proxylib.io.gzip.index_cache`) and imported by later processes.

Both live in a process-wide :class:`GzipState` keyed by the file's identity,
not in the per-access source, so a proxy that re-opens the file for every
access (``keep_file_open=False``) keeps its cursor and index. Neither holds a
descriptor between accesses: compressed bytes are read with ``os.pread`` from
the descriptor of the current access, never through a C ``FILE*``, so a file
deleted, truncated or replaced meanwhile gives a proxylib error (or the data
of the still-open descriptor), never a crash.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import threading
import warnings
from typing import Any, Optional, Sequence

# indexed_gzip (a hard dependency) is imported where a reader is made, not here:
# its import (importlib.metadata, logging) would cost every ``import proxylib``
# more than numpy's; a process pays it once, at its first gzip jump.

from ...errors import CorruptDataError, ProxyReadError, TruncatedFileError
from ..cost import CostModel
from . import index_cache, jump, parallel
from ..compressed import PreadFile
from .members import MemberCursor
from ..identity import FileIdentity
from ..registry import ProcessRegistry
from ..sources import ByteSource, _byte_view

GZIP_MAGIC = b"\x1f\x8b"

#: Uncompressed bytes between seek points. 256 KiB: with isal jumps a voxel
#: time series (100 jumps) on the 100^4 float32 benchmark volume takes
#: 79/63/40/27 ms at 1024/512/256/128 KiB (nibabel: about 600 ms), while the
#: the saved index (which is also what a process holds: points plus deflated
#: windows) is 1.6/3.3/6.6/13.1 MiB; 256 KiB is the widest spacing that
#: meets the 0.1x target with margin (python /tmp/gzbench/exp5.py SPACING_KIB).
INDEX_SPACING = 256 * 1024
#: A read this far (or less) beyond the cursor streams on rather than seeking
#: (streaming one spacing with isal costs about what a jump from a point does).
JUMP = INDEX_SPACING
#: Compressed bytes the indexed reader asks for per read call.
_READBUF = 256 * 1024
#: Largest buffer given to indexed_gzip for a file with huge member headers
#: (larger ones are read by streaming only).
_MAX_READBUF = 64 << 20
#: A read ending this close (compressed bytes) to the end of the file goes on
#: to the end, holding at most _SETTLE_HOLD bytes, so the last CRC is checked.
_SETTLE_WITHIN = 1 << 20
_SETTLE_HOLD = 8 << 20

#: Gaps up to the seek spacing are read through: skipping them would cost a
#: restart from a seek point, up to ``INDEX_SPACING`` of decompression.
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


class GzipState:
    """Cursor and seek index of one gzip file (one identity), under one lock."""

    def __init__(self, identity: FileIdentity, name: str) -> None:
        self.identity = identity
        self.name = name
        self.lock = threading.Lock()
        #: The streaming decoder (from the start of the file), None until used.
        self.stream: Optional[MemberCursor] = None
        #: Set when the indexes cannot serve this file (indexed_gzip refused
        #: it, or an index failed twice): every read streams.
        self.stream_only = False
        self.index_failures = 0
        #: indexed_gzip's spacing (None: INDEX_SPACING) and read buffer; its
        #: buffer must hold a whole member header, which can be MiBs long.
        self.spacing: Optional[int] = None
        #: Threads for large reads with a complete index (parallel).
        self.threads = parallel.default_threads()
        self.readbuf = _READBUF
        self.zfile = PreadFile(name=name)
        self.zran: Any = None
        self.saved_points = 0
        self.complete = False
        self._loaded = False
        #: Seek points for isal jumps (from the saved index or the last export).
        self.points: Optional[jump.SeekPoints] = None
        self._points_loaded = False
        self.jumper: Optional[MemberCursor] = None
        #: Compressed bytes read by isal jumps (what the tests and benchmarks count).
        self.jump_bytes_read = 0
        #: Compressed bytes read by the streaming decoder.
        self.stream_bytes_read = 0

    # -- the indexed reader ---------------------------------------------------
    def _indexed(self) -> Any:
        """The indexed_gzip reader, created (and the saved index imported) on first use."""
        if self.zran is None:
            self.zran = self._new_zran()
            if not self._loaded:
                self._loaded = True
                self._import_saved()
        return self.zran

    def _new_zran(self) -> Any:
        from indexed_gzip.indexed_gzip import _IndexedGzipFile
        self.zfile.pos = 0
        return _IndexedGzipFile(fileobj=self.zfile, spacing=self.spacing or INDEX_SPACING,
                                readbuf_size=max(self.readbuf, _READBUF), auto_build=True,
                                skip_crc_check=False)

    def _import_saved(self) -> None:
        saved = index_cache.load_index(self.identity)
        if saved is None:
            return
        try:
            self.zran.import_index(fileobj=io.BytesIO(saved.payload))
            self._check_points()
        except Exception:  # a damaged or foreign index: start afresh, never trust it
            index_cache.discard_index(self.identity)
            self._drop_zran()
            self.zran = self._new_zran()
            return
        self.saved_points = self.zran.npoints
        self.complete = saved.complete
        if self.points is None:
            self._points_loaded = True
            self._use_saved_points(saved)

    def _check_points(self) -> None:
        last_uncompressed = last_compressed = -1
        for uncompressed, compressed in self.zran.seek_points():
            if (uncompressed < last_uncompressed or compressed < last_compressed
                    or compressed > self.identity.size):
                raise ValueError("index points out of order or beyond the file")
            last_uncompressed, last_compressed = uncompressed, compressed

    def _drop_zran(self) -> None:
        zran, self.zran = self.zran, None
        if zran is not None:
            try:
                zran.close()
            except Exception:
                pass

    def _is_complete(self) -> bool:
        if self.complete:
            return True
        try:
            self.zran.seek(0, os.SEEK_END)
        except Exception:  # NotCoveredError: the index does not reach the end yet
            return False
        self.complete = True
        return True

    def save_if_grown(self, force: bool = False) -> Optional[Any]:
        """Save the index when it has grown (or ``force``); returns where, or None."""
        zran = self.zran
        if zran is None or zran.npoints == 0:
            return None
        complete = self._is_complete()
        grown = zran.npoints > self.saved_points
        if not (force or (grown and (complete or zran.npoints >= 2 * self.saved_points + 8))):
            return None
        buffer = io.BytesIO()
        zran.export_index(fileobj=buffer)
        payload = buffer.getvalue()
        where = index_cache.save_index(self.identity, payload, spacing=zran.spacing,
                                       points=zran.npoints, complete=complete)
        self.saved_points = zran.npoints
        saved = index_cache.load_index(self.identity) if where is not None else None
        if saved is None or not self._use_saved_points(saved):
            self._use_points(payload, complete)   # windows held inflated (cache unwritable)
        return where

    # -- isal jumps -------------------------------------------------------------
    def _use_points(self, payload: bytes, complete: bool) -> bool:
        if not jump.HAVE_ISAL:
            return False
        try:
            self.points = jump.SeekPoints.from_export(payload, self.identity.size,
                                                           complete=complete)
        except Exception:  # unsound: leave jumps to indexed_gzip, which checks it again
            self.points = None
            return False
        return True

    def _use_saved_points(self, saved: index_cache.SavedIndex) -> bool:
        if not jump.HAVE_ISAL:
            return False
        try:
            self.points = jump.SeekPoints.from_head(saved.head, saved.window,
                                                         self.identity.size,
                                                         complete=saved.complete)
        except Exception:
            self.points = None
            return False
        return True

    def _seek_points(self) -> Optional[jump.SeekPoints]:
        """The seek points for isal jumps, read from the saved index on first use."""
        if self.points is None and not self._points_loaded and self.zran is None:
            self._points_loaded = True
            saved = index_cache.load_index(self.identity)
            if saved is not None:
                if self._use_saved_points(saved):
                    self.complete = saved.complete
                    self.saved_points = saved.points
                else:
                    index_cache.discard_index(self.identity)
        return self.points

    def _jump(self, fd: int, offset: int, view: memoryview) -> bool:
        """Serve a read with an isal jump; False when the seek points do not cover it."""
        jumper = self.jumper
        if jumper is None or jumper.ended or not 0 <= offset - jumper.position <= JUMP:
            points = self._seek_points()
            if points is None or not points.covers(offset):
                return False
            start = points.before(offset)
            if start < 0:
                return False
            try:
                jumper = jump.jump_cursor(points, start, self.name)
            except index_cache.DamagedIndexError:   # a saved window failed its check
                index_cache.discard_index(self.identity)
                self.points = None
                return False
        self.jumper = None                 # dropped if the read fails
        before = jumper.bytes_read
        try:
            jumper.readinto(fd, offset, view)
        finally:
            self.jump_bytes_read += jumper.bytes_read - before
        self.jumper = jumper
        return True

    def indexed_readinto(self, offset: int, view: memoryview) -> None:
        done, wanted = 0, len(view)
        try:
            zran = self._indexed()
            zran.seek(offset)
            while done < wanted:
                got = zran.readinto(view[done:])
                if not got:
                    raise TruncatedFileError(
                        f"{self.name}: the gzip stream ends before uncompressed offset "
                        f"{offset + wanted} (it stops at {offset + done}, compressed offset "
                        f"{self.zfile.pos}); the file is truncated or its header is wrong",
                        path=self.name, offset=offset + done, expected=wanted, found=done)
                done += got
        except ProxyReadError:
            raise
        except Exception as err:
            self._drop_zran()   # its state after a failed inflate is not to be trusted
            self._loaded = True
            raise self._translate(err, offset) from err
        self.save_if_grown()

    def _translate(self, err: BaseException, offset: int) -> ProxyReadError:
        position = self.zfile.pos
        size = self.zfile.size
        if size is not None and position >= size or "EOF" in str(err):
            return TruncatedFileError(
                f"{self.name}: the gzip stream is truncated at compressed offset {position} "
                f"(reading uncompressed offset {offset}); re-download or re-copy the file",
                path=self.name, offset=position)
        return CorruptDataError(
            f"{self.name}: corrupt gzip data near compressed offset {position} (reading "
            f"uncompressed offset {offset}): {err}; no values were returned",
            path=self.name, offset=position)

    # -- one read -------------------------------------------------------------
    def _stream_readinto(self, fd: int, offset: int, view: memoryview) -> None:
        stream, self.stream = self.stream, None    # dropped if the read fails
        if stream is None or offset < stream.position:
            stream = MemberCursor(self.name)
        before = stream.bytes_read
        try:
            stream.readinto(fd, offset, view)
            stream.settle(fd, _SETTLE_WITHIN, _SETTLE_HOLD)
        finally:
            self.stream_bytes_read += stream.bytes_read - before
        self.stream = stream

    def _indexed_path(self, fd: int, offset: int, view: memoryview) -> None:
        if jump.HAVE_ISAL and self._jump(fd, offset, view):
            return
        self.zfile.fd = fd
        self.zfile.size = os.fstat(fd).st_size
        try:
            self.indexed_readinto(offset, view)
        finally:
            self.zfile.fd = -1

    def readinto(self, fd: int, offset: int, view: memoryview) -> None:
        self.readinto_runs(fd, [offset], [view])

    def readinto_runs(self, fd: int, offsets: Sequence[int], views: Sequence[memoryview]) -> None:
        """Fill each view from its offset; runs that follow each other are read as one."""
        if len(views) > 1 and not parallel.contiguous(offsets, views):
            for offset, view in zip(offsets, views):
                self.readinto_runs(fd, [offset], [view])
            return
        offset, length = offsets[0], offsets[-1] + len(views[-1]) - offsets[0]
        stream = self.stream
        continues = stream is not None and 0 <= offset - stream.position <= JUMP
        large = (not self.stream_only and jump.HAVE_ISAL
                 and length >= parallel.MIN_SPACINGS * (self.spacing or INDEX_SPACING)
                 and parallel.worth_it(self._seek_points(), offset, length, self.threads))
        runs = list(zip(offsets, views))
        if not large and (continues or offset <= JUMP or self.stream_only):
            for at, view in runs:
                self._stream_readinto(fd, at, view)
            return
        try:
            if large and self.points is not None:
                self.jump_bytes_read += parallel.read_runs(
                    self.points, fd, offsets, views, self.name, self.threads)
            else:
                for at, view in runs:
                    self._indexed_path(fd, at, view)
            return
        except ProxyReadError as err:
            failure = err
        # A second decoder decides: the member walker, from the start of the file.
        for at, view in runs:
            self._stream_readinto(fd, at, view)
        self._distrust_index(failure)

    def grow_readbuf(self, header: int) -> bool:
        """Give indexed_gzip a read buffer with room for a member header of ``header``
        bytes, when it is too small and such a buffer is allowed; True if it grew."""
        if 2 * header <= self.readbuf or header >= _MAX_READBUF:
            return False
        self.readbuf = 2 * header + _READBUF
        return True

    def _distrust_index(self, failure: ProxyReadError) -> None:
        """The indexed path failed where streaming read the data: stop trusting it."""
        had_saved = self.points is not None or self.saved_points > 0
        self.points, self.jumper = None, None
        self._drop_zran()
        self._loaded = self._points_loaded = True
        self.saved_points, self.complete = 0, False
        index_cache.discard_index(self.identity)
        self.index_failures += 1
        header = self.stream.max_header if self.stream is not None else 0
        if not had_saved and self.grow_readbuf(header):  # let indexed_gzip try again
            self._loaded = self._points_loaded = False
            return
        if not had_saved or self.index_failures > 1:
            self.stream_only = True        # indexed_gzip cannot read it: stream it
            return
        self._loaded = self._points_loaded = False
        warnings.warn(
            f"proxylib: the saved gzip index of {self.name} failed in use ({failure}); "
            "it was discarded and will be rebuilt", index_cache.IndexCacheWarning,
            stacklevel=6)


class GzipRegistry(ProcessRegistry):
    """Process-wide :class:`GzipState` per file identity (saved indexes are still
    found in the cache by a forked child, which starts with none of these)."""

    def state(self, identity: FileIdentity, name: str) -> GzipState:
        return self.get(identity, lambda: GzipState(identity, name))


STATES = GzipRegistry()


class GzipSource(ByteSource):
    """A gzip file read through its process-wide :class:`GzipState`.

    The source borrows the descriptor of the current access (owned by
    :class:`~proxylib.io.opening.OpenFile`); it opens and closes nothing.
    """

    @property
    def cost(self) -> CostModel:  # type: ignore[override]
        """Gaps shorter than the seek spacing are read through (see GZIP_COST)."""
        spacing = INDEX_SPACING
        if spacing == GZIP_COST.gap_threshold:
            return GZIP_COST
        return CostModel(gap_threshold=spacing)

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


__all__ = ["GzipSource", "GzipState", "GZIP_COST", "INDEX_SPACING", "JUMP",
           "open_gzip_source", "cost_for_fileobj", "decompressor_name"]
