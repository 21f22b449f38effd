"""Byte sources: the objects that put bytes from a file into a buffer.

A byte source answers one question, "fill this buffer with the bytes at this
offset", and declares what that costs (:class:`~proxylib.indexing.plan.CostModel`)
and whether it can hand out a memory map. Opening, closing and handle
lifetime belong to :mod:`proxylib.io.opening`, not here.
"""

from __future__ import annotations

import errno
import io
import math
import mmap
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple

import numpy as np

from ..errors import (ProxyError, ProxyReadError, ResultTooLargeError, TruncatedFileError,
                      UnseekableStreamError)
from .cost import LOCAL_FILE_COLD_COST, LOCAL_FILE_COST, CostModel
from .advice import (_MADV_RANDOM, PREFETCH_MIN_BYTES, Residency, _advise, looks_cold,
                     map_looks_cold, read_runs_cold_aware, resident, streaming)
from .positional import _byte_view, pread_into  # noqa: F401  # _byte_view: shared


class ByteSource:
    """Interface of every byte source."""

    #: Description used in error messages (a path, or a file-like's name).
    name: str = "<source>"
    cost: CostModel = LOCAL_FILE_COST

    def readinto(self, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` completely with the bytes starting at ``offset``."""
        raise NotImplementedError

    def mapping(self) -> Optional[mmap.mmap]:
        """A read-only memory map of the whole source, or None if it has none."""
        return None

    def array_map(self, dtype: np.dtype, shape: Tuple[int, ...], offset: int, order: str,
                  mode: str) -> Optional[np.memmap]:
        """The array at ``offset`` as a fresh ``np.memmap`` of the file, or None if none can be made.

        The zero-copy full read; only an uncompressed local file answers.
        """
        return None

    def close(self) -> None:
        """Release what the source holds beyond its file (most hold nothing)."""

    def readinto_runs(self, offsets: Sequence[int], buffers: Sequence[memoryview]) -> None:
        """Fill each buffer from its offset (offsets ascending).

        One call per batch of runs, so a source whose reads have latency
        (a remote file) can issue them concurrently; local sources just loop.
        """
        for offset, buffer in zip(offsets, buffers):
            self.readinto(offset, buffer)

    def _short_read(self, offset: int, wanted: int, got: int) -> TruncatedFileError:
        return TruncatedFileError(
            f"{self.name}: needed {wanted} bytes at offset {offset} but only {got} "
            "could be read; the file is shorter than its header says (truncated "
            "download or copy?)",
            path=self.name, offset=offset, expected=wanted, found=got)


class DescriptorSource(ByteSource):
    """Positional reads (:func:`~proxylib.io.positional.pread_into`) on an open descriptor.

    No seek, no shared file position, so no lock: any number of threads may
    read at once (where the platform lacks ``pread``, the fallback serializes
    reads of one descriptor itself).

    Its :attr:`cost` and :meth:`mapping` follow the page cache: a file found
    cold (:func:`~proxylib.io.advice.looks_cold`) is planned with
    :data:`~proxylib.io.cost.LOCAL_FILE_COLD_COST` and not mapped for one
    access (measurements in :mod:`proxylib.io.advice`).
    """

    def __init__(self, fd: int, name: str, map_length: Optional[int] = None) -> None:
        self.fd = fd
        self.name = name
        #: Bytes a memory map of ``fd`` may cover (None: never map); the map is
        #: made on the first :meth:`mapping` call, most accesses never ask.
        self._map_length = map_length
        self._mapper: Optional[Mapper] = None
        self._residency = Residency(lambda: looks_cold(self.fd, self._map_length))

    @property
    def cost(self) -> CostModel:
        """The local-file cost model, the cold one when the file is not in the page cache."""
        return LOCAL_FILE_COLD_COST if self._residency.cold() else LOCAL_FILE_COST

    def readinto(self, offset: int, buffer: memoryview) -> None:
        view = _byte_view(buffer)
        wanted = len(view)
        try:  # the whole buffer in one call, almost always
            done = pread_into(self.fd, view, offset)
        except OSError:
            done = 0  # the loop below retries and reports the error
        if done == wanted:
            return
        while done < wanted:
            try:
                got = pread_into(self.fd, view[done:], offset + done)
            except OSError as err:
                raise ProxyReadError(
                    f"{self.name}: reading {wanted} bytes at offset {offset} failed: "
                    f"{err.strerror or err}", path=self.name, offset=offset,
                    expected=wanted, found=done) from err
            if got == 0:
                raise self._short_read(offset, wanted, done)
            done += got

    def readinto_runs(self, offsets: Sequence[int], buffers: Sequence[memoryview]) -> None:
        """One positional read per run in a tight loop; short or failed reads take
        the careful path of :meth:`readinto` (retry the rest, or raise)."""
        fd = self.fd
        try:
            if read_runs_cold_aware(fd, offsets, buffers):
                return
            for offset, buffer in zip(offsets, buffers):
                if pread_into(fd, buffer, offset) != len(buffer):
                    self.readinto(offset, buffer)
        except OSError:
            for offset, buffer in zip(offsets, buffers):
                self.readinto(offset, buffer)  # raises the error with the file named

    def mapping(self) -> Optional[mmap.mmap]:
        """A map of the file, made on first use; None when it may not be mapped or,
        before one is made, when the file is cold (reads then go by pread)."""
        if self._mapper is None:
            if self._map_length is None or self._residency.cold():
                return None
            with Mapper._guard:
                if self._mapper is None:
                    self._mapper = Mapper(self.fd, self._map_length)
        return self._mapper.get()

    def array_map(self, dtype: np.dtype, shape: Tuple[int, ...], offset: int, order: str,
                  mode: str) -> Optional[np.memmap]:
        if self._map_length is None:
            return None
        return _array_map(os.dup(self.fd), self.name, dtype, shape, offset, order, mode)

    def close(self) -> None:
        """Drop the map, if one was made (the descriptor belongs to the opener)."""
        if self._mapper is not None:
            self._mapper.close()


class Mapper:
    """Creates one read-only map of a descriptor on first use.

    One is made per open file, most never map anything, so it holds no lock
    of its own: making and dropping maps (rare) share one class-wide lock.
    """

    __slots__ = ("_fd", "_length", "_map")
    _guard = threading.Lock()

    def __init__(self, fd: int, length: int) -> None:
        self._fd = fd
        self._length = length
        self._map: Optional[mmap.mmap] = None

    def get(self) -> Optional[mmap.mmap]:
        """The map, made now if need be; None when none can be made.

        A map can fail where a read would not: an address-space limit
        (``ulimit -v``, RLIMIT_AS), no room for the mapping (ENOMEM), a file
        system without mmap (ENODEV). Callers then read with positional reads.
        """
        mapped = self._map
        if mapped is not None or self._length == 0:
            return mapped
        with Mapper._guard:
            if self._map is None:
                try:
                    mapped = mmap.mmap(self._fd, self._length, access=mmap.ACCESS_READ)
                except (OSError, ValueError, OverflowError):
                    return None
                _advise(mapped, _MADV_RANDOM, 0, self._length)
                self._map = mapped
            return self._map

    def close(self) -> None:
        if self._map is None:
            return
        with Mapper._guard:
            mapped, self._map = self._map, None
        if mapped is not None:
            try:
                mapped.close()
            except BufferError:  # a caller still holds a view; let GC unmap it
                pass


class MappedSource(ByteSource):
    """Reads served by copying out of a read-only memory map.

    ``new_descriptor`` gives a descriptor of the same file version (the map
    keeps none the source could lend), for :meth:`array_map` and for cold
    reads: when the map's file is cold (:func:`~proxylib.io.advice.map_looks_cold`)
    the source plans with :data:`~proxylib.io.cost.LOCAL_FILE_COLD_COST`,
    offers no map, and that access reads its batches of runs and its long runs
    with preads on a second descriptor, opened on the first cold read and kept
    until :meth:`close` (faults on a cold map wait for the disk one page at a
    time; measurements in :mod:`proxylib.io.advice`).
    """

    def __init__(self, mapper: Mapper, name: str,
                 new_descriptor: Optional[Callable[[], int]] = None) -> None:
        self._mapper = mapper
        self.name = name
        self._new_descriptor = new_descriptor
        self._residency = Residency(self._probe)
        #: The descriptor cold reads use, opened on the first one and kept (one
        #: file description, so the kernel's read-ahead follows a long read).
        self._cold_fd = -1

    def array_map(self, dtype: np.dtype, shape: Tuple[int, ...], offset: int, order: str,
                  mode: str) -> Optional[np.memmap]:
        if self._new_descriptor is None:
            return None
        return _array_map(self._new_descriptor(), self.name, dtype, shape, offset, order, mode)

    def _probe(self) -> Optional[bool]:
        mapping = self._mapper.get()
        if self._new_descriptor is None or mapping is None:
            return None  # no other way to read: the map it is
        return map_looks_cold(mapping)

    @property
    def cost(self) -> CostModel:
        """The local-file cost model, the cold one when the file is not in the page cache."""
        return LOCAL_FILE_COLD_COST if self._residency.cold() else LOCAL_FILE_COST

    def _read_cold(self, offsets: Sequence[int], buffers: Sequence[memoryview]) -> bool:
        """Read the runs with preads if this access found the file cold; False
        (nothing read) otherwise.

        Decided once per access (by :attr:`cost` or :meth:`mapping`, which an
        access asks first), not per run: a long read must not switch to
        faulting in the map halfway, when the pages read so far make the file
        look warm. Without an answer yet, the middle page of the middle run
        decides (:func:`~proxylib.io.advice.resident`).
        """
        mapping = self._mapper.get()
        if self._new_descriptor is None or mapping is None:
            return False
        cold = self._residency.last()
        if cold is None:
            middle = len(offsets) // 2
            cold = resident(mapping, offsets[middle] + len(buffers[middle]) // 2) is False
        if not cold:
            return False
        if self._cold_fd < 0:
            with Mapper._guard:
                if self._cold_fd < 0:
                    try:
                        self._cold_fd = self._new_descriptor()
                    except (OSError, ProxyError):  # path gone or replaced: the map still reads
                        return False
        DescriptorSource(self._cold_fd, self.name).readinto_runs(offsets, buffers)
        return True

    def readinto_runs(self, offsets: Sequence[int], buffers: Sequence[memoryview]) -> None:
        if len(offsets) > 1 and self._read_cold(offsets, buffers):
            return
        for offset, buffer in zip(offsets, buffers):
            self.readinto(offset, buffer)

    def readinto(self, offset: int, buffer: memoryview) -> None:
        view = _byte_view(buffer)
        if len(view) >= PREFETCH_MIN_BYTES and self._read_cold((offset,), (view,)):
            return
        mapping = self._mapper.get()
        if mapping is None:  # made when the source was, so only gone if closed
            raise ProxyReadError(f"{self.name}: the file's memory map is closed", path=self.name)
        available = max(0, min(len(view), len(mapping) - offset))
        with streaming(mapping, (offset,), available), memoryview(mapping) as whole, \
                whole[offset:offset + available] as part:
            view[:available] = part
        if available < len(view):
            raise self._short_read(offset, len(view), available)

    def mapping(self) -> Optional[mmap.mmap]:
        """The kept map; None while its file is cold (reads then go by pread)."""
        return None if self._residency.cold() else self._mapper.get()

    def close(self) -> None:
        self._mapper.close()
        with Mapper._guard:
            fd, self._cold_fd = self._cold_fd, -1
        if fd >= 0:
            os.close(fd)


def _array_map(fd: int, name: str, dtype: np.dtype, shape: Tuple[int, ...], offset: int,
               order: str, mode: str) -> np.memmap:
    """``np.memmap`` over the descriptor ``fd`` (which this call owns and closes)."""
    with os.fdopen(fd, "rb") as handle:
        try:
            return np.memmap(handle, dtype=dtype, mode=mode, offset=offset, shape=shape,
                             order=order)
        except OSError as err:
            if err.errno != errno.ENOMEM:
                raise
            nbytes = math.prod(shape) * dtype.itemsize
            raise ResultTooLargeError(
                f"{name}: cannot map {nbytes / 2**30:.1f} GiB with mmap={mode!r} "
                f"({err.strerror}); a copy-on-write map is charged against memory, so use "
                "mmap='r' for a read-only map or read slices") from err


class FileObjectSource(ByteSource):
    """Reads from any object with ``seek`` and ``read``/``readinto``.

    Every seek+read pair runs under ``lock`` (shared by every proxy on the
    same object). The object's position is saved and restored once per
    access (:meth:`access`), not once per read: restoring it between the
    runs of one key would make a gzip stream decompress from the top again
    for every run.
    """

    def __init__(self, fileobj: Any, lock: threading.RLock, name: str,
                 cost: CostModel = LOCAL_FILE_COST) -> None:
        self.fileobj = fileobj
        self.lock = lock
        self.name = name
        self.cost = cost
        self._accesses = 0  # nesting depth of access(), changed under the lock

    @contextmanager
    def access(self) -> Iterator["FileObjectSource"]:
        """Hold the object for one access and put its position back afterwards."""
        with self.lock:
            try:
                position: Optional[int] = self.fileobj.tell()
            except (io.UnsupportedOperation, OSError, AttributeError, ValueError):
                position = None  # unseekable: the first read says so clearly
            self._accesses += 1
            try:
                yield self
            except BaseException:
                self._accesses -= 1
                if position is not None:
                    try:
                        self.fileobj.seek(position)
                    except Exception:
                        pass  # the error being raised says more than a failed restore
                raise
            self._accesses -= 1
            if position is not None:
                try:
                    self.fileobj.seek(position)
                except ValueError:
                    if not _is_closed(self.fileobj):
                        raise
                    # closed by another thread after the read: nothing to restore

    def readinto(self, offset: int, buffer: memoryview) -> None:
        if self._accesses:
            with self.lock:
                self._seek_and_read(offset, buffer)
        else:
            with self.access():
                self._seek_and_read(offset, buffer)

    def _seek_and_read(self, offset: int, buffer: memoryview) -> None:
        view = _byte_view(buffer)
        wanted = len(view)
        fileobj = self.fileobj
        if _is_closed(fileobj):
            raise self._closed(offset, wanted)
        try:
            fileobj.seek(offset)
        except (io.UnsupportedOperation, OSError, AttributeError, ValueError) as err:
            if isinstance(err, ValueError) and _is_closed(fileobj):  # closed since the check
                raise self._closed(offset, wanted) from err
            raise UnseekableStreamError(
                f"{self.name}: cannot seek to offset {offset} ({err}); proxies need a "
                "seekable file; read a stream into memory (io.BytesIO) first",
                path=self.name, offset=offset, expected=wanted, found=0) from err
        readinto = getattr(fileobj, "readinto", None)
        done = 0
        try:
            while done < wanted:
                if readinto is not None:
                    got = readinto(view[done:])
                else:
                    data = fileobj.read(wanted - done)
                    got = len(data)
                    view[done:done + got] = data
                if not got:
                    raise self._short_read(offset, wanted, done)
                done += got
        except ProxyReadError:
            raise
        except (OSError, EOFError, ValueError) as err:
            if isinstance(err, ValueError) and _is_closed(fileobj):  # io's closed-file error
                raise self._closed(offset, wanted) from err
            raise ProxyReadError(
                f"{self.name}: reading {wanted} bytes at offset {offset} failed: {err}",
                path=self.name, offset=offset, expected=wanted, found=done) from err

    def _closed(self, offset: int, wanted: int) -> ProxyReadError:
        return ProxyReadError(
            f"{self.name}: the file object was closed (by another thread or its owner) "
            f"before {wanted} bytes at offset {offset} could be read; keep it open while "
            "proxies read it", path=self.name, offset=offset, expected=wanted, found=0)


def _is_closed(fileobj: Any) -> bool:
    try:
        return fileobj.closed is True
    except Exception:  # no such attribute, or it raises: treat as open
        return False
