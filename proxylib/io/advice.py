"""Telling the kernel what a read will touch: memory-map advice and cold-aware preads.

Measured on a cold page cache (issue 16; figures in benchmarks/README.md,
"Cold page cache"):

* A fault on a memory map reads around itself (the read-ahead window), so a
  sparse read from a fresh or kept map costs a window per point, not a page:
  a 100-point time series from a kept map of a 400 MB file took 450-660 ms
  against 11-35 ms for 100 preads. Every map is therefore made
  ``MADV_RANDOM`` (a fault reads only its own page).
* Both a map copy and a pread loop wait for one disk read per point, one after
  the other. Asking for every page first (``MADV_WILLNEED`` on a map,
  ``POSIX_FADV_WILLNEED`` on a descriptor) lets the device serve them in
  parallel: the same time series in 3-10 ms.
* On a warm cache that advice is pure cost (about 2 us a call, 100 calls
  for a time series, more than the copy itself). So advice is given only
  when the data is not resident: a map is probed with ``mincore`` on one
  page the read touches (not its first: that may hold the header just read); a pread loop first reads every run with
  ``RWF_NOWAIT`` (which fails at once instead of waiting for the disk) and
  advises and re-reads only the runs that missed.
* Spans of at least :data:`PREFETCH_MIN_BYTES` that a copy reads through
  (a volume, an x-slab) are made ``MADV_SEQUENTIAL`` for the copy when cold
  (see :func:`streaming`).
* Before planning, a byte source probes whether its file is resident
  (:func:`looks_cold`: ``cachestat`` over three windows of the file, 3-5 us;
  :class:`Residency` reuses the answer for 10 ms; a remembered one-run plan,
  such as a volume, asks nothing: it is one read either way, and a kept map
  then reads it by its last answer, or by the span's own middle page before
  any). A cold file is planned with
  :data:`~proxylib.io.cost.LOCAL_FILE_COLD_COST` (a 64 KiB gap threshold,
  so a dense sparse read such as a 1,000-voxel mask becomes a few large
  sequential reads the kernel reads ahead of) and a per-access read is not
  served from a fresh map (every page a fresh map touches is a fault, and on
  a cold file each one waits for the disk). A kept map is probed with
  ``mincore`` (:func:`map_looks_cold`) and, when cold, the access reads its
  runs with preads on a second descriptor, kept with the map (one file
  description, so the kernel's read-ahead follows a long read). Where neither call
  exists (kernels before 6.5 for ``cachestat``; other systems) the probe
  answers "unknown" and the warm plan is used. Figures: benchmarks/README.md,
  "Cold page cache".

Where the platform lacks a call (no ``madvise``, ``mincore``, ``cachestat``
or ``RWF_NOWAIT``), reads go on without the advice.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

from . import positional
from .positional import pread_into

_MADV_RANDOM = getattr(mmap, "MADV_RANDOM", None)
_MADV_WILLNEED = getattr(mmap, "MADV_WILLNEED", None)
_MADV_SEQUENTIAL = getattr(mmap, "MADV_SEQUENTIAL", None)
_FADV_WILLNEED = getattr(os, "POSIX_FADV_WILLNEED", None)
_RWF_NOWAIT = getattr(os, "RWF_NOWAIT", None)
#: Spans shorter than this are left to their faults (a page or two each).
PREFETCH_MIN_BYTES = 64 * 1024
#: Sparse reads with more points than this are not advised point by point.
MAX_ADVISED_POINTS = 1 << 16
PAGE = mmap.PAGESIZE


def _load_mincore():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.mincore
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
    function.restype = ctypes.c_int
    return function


_mincore = _load_mincore()


class _CachestatRange(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Cachestat(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in
                ("nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")]


#: cachestat(2): the same number on every Linux architecture but alpha (Linux 6.5+).
_CACHESTAT = 451


def _load_syscall():
    if not sys.platform.startswith("linux") or os.uname().machine == "alpha":
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_long
    return function


_syscall = _load_syscall()
#: Windows probed by :func:`looks_cold`, and the pages in each.
PROBE_WINDOWS = 3
PROBE_PAGES = 16
_Flags = ctypes.c_ubyte * PROBE_PAGES


def cached_pages(fd: int, offset: int, length: int) -> Optional[int]:
    """Pages of ``[offset, offset+length)`` of ``fd`` in the page cache (None: cannot tell)."""
    global _syscall
    if _syscall is None:
        return None
    span, stat = _CachestatRange(offset, length), _Cachestat()
    if _syscall(ctypes.c_long(_CACHESTAT), ctypes.c_int(fd), ctypes.byref(span),
                ctypes.byref(stat), ctypes.c_uint(0)) != 0:
        if ctypes.get_errno() in (errno.ENOSYS, errno.EPERM):  # no cachestat here: stop asking
            _syscall = None
        return None
    return int(stat.nr_cache)


def looks_cold(fd: int, size: Optional[int] = None) -> Optional[bool]:
    """Whether most of the file behind ``fd`` is out of the page cache (None: cannot tell).

    Probes :data:`PROBE_WINDOWS` windows of :data:`PROBE_PAGES` pages spread
    over the file (not its first page, which holds the header just read);
    cold when fewer than half of the probed pages are cached. About 3 us.
    """
    if _syscall is None:
        return None
    if size is None:
        try:
            size = os.fstat(fd).st_size
        except OSError:
            return None
    cached = 0
    starts, window = _windows(size)
    for start in starts:
        pages = cached_pages(fd, start, window)
        if pages is None:
            return None
        cached += pages
    return 2 * cached < len(starts) * -(-window // PAGE)


def map_looks_cold(mapping: mmap.mmap) -> Optional[bool]:
    """:func:`looks_cold` for a memory map, probed with ``mincore`` (None: cannot tell)."""
    if _mincore is None:
        return None
    try:
        base = _address(mapping)
    except (ValueError, TypeError):
        return None
    starts, window = _windows(len(mapping))
    pages = -(-window // PAGE)
    vector = _Flags()
    cached = 0
    for start in starts:
        if _mincore(base + start, window, vector) != 0:
            return None
        cached += pages - bytes(vector)[:pages].count(0)  # only bit 0 is defined; others are 0
    return 2 * cached < len(starts) * pages


def _address(mapping: mmap.mmap) -> int:
    import numpy as np  # the one way to a read-only map's address without a copy
    return np.frombuffer(mapping, np.uint8, count=1).ctypes.data


def _windows(size: int):
    """Page-aligned starts of the probe windows over ``size`` bytes, and their length."""
    window = PROBE_PAGES * PAGE
    if size <= PROBE_WINDOWS * window:
        return ([0], size) if size > 0 else ([], 0)
    return [start - start % PAGE for start in
            (size * (2 * k + 1) // (2 * PROBE_WINDOWS) for k in range(PROBE_WINDOWS))], window


class Residency:
    """A source's answer to "is the file cold?", per thread, reused for a moment.

    An access asks for the cost model, then perhaps for a map, then reads:
    all take the answer of one probe. A probe costs 3-12 us (more than a warm
    time series from a kept map takes without it), so an answer is reused for
    :data:`REUSE_SECONDS`: a loop of reads probes about every 10 ms, and a
    file's residency does not change faster than that in a way that matters
    (the cost of a stale answer is one access planned for the other case,
    its values the same).
    """

    REUSE_SECONDS = 0.01

    def __init__(self, probe: Callable[[], Optional[bool]]) -> None:
        self._probe = probe
        self._local = threading.local()

    def cold(self) -> bool:
        """This thread's answer of the last :data:`REUSE_SECONDS`, or a new probe's."""
        local, now = self._local, time.monotonic()
        if now - getattr(local, "at", -1.0) >= self.REUSE_SECONDS:
            local.cold, local.at = self._probe() is True, now
        return local.cold

    def last(self) -> Optional[bool]:
        """This thread's last answer, however old (None: never probed)."""
        return getattr(self._local, "cold", None)


def _advise(mapping: mmap.mmap, advice: Optional[int], offset: int, length: int) -> None:
    """``mapping.madvise(advice)`` over the pages holding ``[offset, offset+length)``."""
    if advice is None or length <= 0:
        return
    start = offset - offset % PAGE
    try:
        mapping.madvise(advice, start, min(length + offset - start, len(mapping) - start))
    except (OSError, ValueError, AttributeError):  # advice is a hint: never an error
        pass


def resident(mapping: mmap.mmap, offset: int) -> Optional[bool]:
    """Whether the page holding byte ``offset`` of ``mapping`` is in memory (None: unknown)."""
    if _mincore is None:
        return None
    try:
        import numpy as np
        address = np.frombuffer(mapping, np.uint8, count=1, offset=offset - offset % PAGE).ctypes.data
    except (ValueError, TypeError):
        return None
    flag = ctypes.c_ubyte(0)
    if _mincore(address, PAGE, ctypes.byref(flag)) != 0:
        return None
    return bool(flag.value & 1)


@contextmanager
def streaming(mapping: mmap.mmap, offsets: Sequence[int], length: int) -> Iterator[None]:
    """Around a copy that reads through each ``[offset, offset+length)`` span of ``mapping``.

    Spans of at least :data:`PREFETCH_MIN_BYTES` are made ``MADV_SEQUENTIAL`` for the copy (aggressive read-ahead:
    ``MADV_WILLNEED`` alone started only a window, then every page faulted on
    its own; 9.3 s for a cold x-slab against 0.23 s) and ``MADV_RANDOM`` again
    afterwards, for the sparse reads that follow. Only when the middle page of
    the middle span is not in memory (the first page may be a header just read).
    """
    advised = (length >= PREFETCH_MIN_BYTES and _MADV_SEQUENTIAL is not None
               and len(offsets) > 0
               and resident(mapping, offsets[len(offsets) // 2] + length // 2) is False)
    if advised:
        for offset in offsets:
            _advise(mapping, _MADV_SEQUENTIAL, offset, length)
    try:
        yield
    finally:
        if advised:
            for offset in offsets:
                _advise(mapping, _MADV_RANDOM, offset, length)


def prefetch_pages(mapping: mmap.mmap, offsets: Sequence[int], length: int) -> None:
    """For a sparse read of short spans found cold (:func:`resident` is False on the
    first): ask for every span's pages at once, so their disk reads overlap."""
    if _MADV_WILLNEED is None or len(offsets) > MAX_ADVISED_POINTS:
        return
    for offset in offsets:
        _advise(mapping, _MADV_WILLNEED, offset, length)


def read_runs_cold_aware(fd: int, offsets: Sequence[int], buffers: Sequence[memoryview]) -> bool:
    """Read each buffer from its offset; True when done, False to have the caller read them.

    First every run is read with ``RWF_NOWAIT`` (served from the page cache or
    refused at once); the runs that missed are advised together
    (``POSIX_FADV_WILLNEED``) and then read normally, so their disk reads
    overlap. A short or failed read leaves the rest to the caller.
    """
    if _RWF_NOWAIT is None or _FADV_WILLNEED is None or len(offsets) < 2:
        return False
    if positional._os_preadv is None:  # the portable fallback has no flags
        return False
    missed = []
    for index, (offset, buffer) in enumerate(zip(offsets, buffers)):
        try:
            if os.preadv(fd, [buffer], offset, _RWF_NOWAIT) != len(buffer):
                missed.append(index)  # partly resident (or at the end): read it whole below
        except BlockingIOError:
            missed.append(index)
        except OSError:  # EOPNOTSUPP on file systems without it, or a real error
            return False
    if not missed:
        return True
    if len(missed) > 1 and len(missed) <= MAX_ADVISED_POINTS:
        for index in missed:
            try:
                os.posix_fadvise(fd, offsets[index], len(buffers[index]), _FADV_WILLNEED)
            except OSError:
                break
    for index in missed:
        if pread_into(fd, buffers[index], offsets[index]) != len(buffers[index]):
            return False
    return True


__all__ = ["PREFETCH_MIN_BYTES", "streaming", "prefetch_pages", "resident",
           "read_runs_cold_aware", "cached_pages", "looks_cold", "map_looks_cold", "Residency"]
