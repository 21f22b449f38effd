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

Where the platform lacks a call (no ``madvise``, ``mincore`` or
``RWF_NOWAIT``), reads go on without the advice.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

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
           "read_runs_cold_aware"]
