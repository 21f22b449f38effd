"""Cold rounds: an empty page cache before each round, and the raw floor to compare with.

:func:`drop_page_cache` empties the page cache the best way permitted:
``/proc/sys/vm/drop_caches`` (root on Linux: the whole cache, like a reboot),
else ``posix_fadvise(POSIX_FADV_DONTNEED)`` on the file (its own clean pages,
provided no map of it is alive: every cold round closes the previous
target first). :class:`RawTarget` is the floor: what a program that knows the
layout would do with ``os.pread``/``os.preadv`` and nothing else.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..io.positional import pread_into

#: Block of the sequential-read floor: read through and reused, like the 8 MiB
#: blocks proxylib streams a span through.
SEQUENTIAL_BLOCK = 8 << 20

#: Floors per workload (README and report wording).
FLOORS = {"volume": "open + header read + one preadv",
          "time series": "one pread per time point",
          "mask 20": "one pread per voxel per volume",
          "mask 1000": "one sequential read of the file (8 MiB block reused)",
          "x-slab": "one sequential read of the file (8 MiB block reused)",
          "full": "one sequential read of the file"}


def drop_page_cache(paths: Sequence[str]) -> str:
    """Empty the page cache (or these files' part of it); the method used.

    ``"drop_caches"`` (all of it), ``"fadvise"`` (these files' clean pages) or
    ``"none"`` (neither is possible here: rounds are not cold).
    ``PROXYLIB_COLD_DROP=fadvise`` skips the whole-cache drop (smoke runs on a
    shared machine).
    """
    if os.environ.get("PROXYLIB_COLD_DROP", "auto") != "fadvise":  # "fadvise": files only
        try:
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as control:
                control.write("3\n")
            return "drop_caches"
        except OSError:
            pass
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return "none"
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return "fadvise"


def warm_page_cache(paths: Sequence[str], block: int = 8 << 20) -> None:
    """Read each file once, so the warm rounds that follow a cold cell find it cached."""
    buffer = bytearray(block)
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            offset = 0
            while True:
                got = pread_into(fd, buffer, offset)
                if not got:
                    break
                offset += got
        finally:
            os.close(fd)


def floor_of(workload_name: str) -> str:
    return next((text for prefix, text in FLOORS.items() if workload_name.startswith(prefix)),
                "")


class RawTarget:
    """The raw floor for an uncompressed, F-ordered 4D file: preads and nothing else."""

    def __init__(self, path: str, shape: Sequence[int], dtype: np.dtype, offset: int) -> None:
        self.path, self.shape, self.dtype, self.offset = path, tuple(shape), dtype, offset
        self.fd = os.open(path, os.O_RDONLY)
        header = bytearray(offset)
        pread_into(self.fd, header, 0)  # what opening an image costs: its header

    def _element(self, index: Any) -> int:
        flat = int(np.ravel_multi_index(index, self.shape, order="F"))
        return self.offset + flat * self.dtype.itemsize

    def read(self, workload: Any) -> np.ndarray:
        name, key, size = workload.name, workload.key, self.dtype.itemsize
        if name.startswith("volume"):
            volume = self.shape[0] * self.shape[1] * self.shape[2]
            out = np.empty(volume, self.dtype)
            pread_into(self.fd, out, self.offset + key[-1] * volume * size)
            return out
        if name.startswith("time series"):
            out = np.empty(self.shape[3], self.dtype)
            raw = memoryview(out).cast("B")
            first = self._element(key[:3] + (0,))
            step = self._element(key[:3] + (1,)) - first
            for t in range(self.shape[3]):
                pread_into(self.fd, raw[t * size:(t + 1) * size], first + t * step)
            return out
        if name.startswith("mask 20"):
            voxels = np.flatnonzero(key.reshape(-1, order="F"))
            volume = int(np.prod(self.shape[:3]))
            out = np.empty((self.shape[3], len(voxels)), self.dtype)
            raw = memoryview(out.reshape(-1)).cast("B")
            slot = 0
            for t in range(self.shape[3]):
                for voxel in voxels.tolist():
                    pread_into(self.fd, raw[slot:slot + size],
                               self.offset + (t * volume + voxel) * size)
                    slot += size
            return out
        if name.startswith("full"):  # the whole array is the result
            out = np.empty(int(np.prod(self.shape)), self.dtype)
            raw = memoryview(out).cast("B")
            for start in range(0, len(raw), SEQUENTIAL_BLOCK):
                pread_into(self.fd, raw[start:start + SEQUENTIAL_BLOCK], self.offset + start)
            return out
        # x-slab, large masks: one sequential read of the file
        return self._sequential_gather(self._wanted(name, key))

    def _wanted(self, name: str, key: Any) -> np.ndarray:
        """Flat (F-order) element numbers an x-slab or a mask needs, in file order."""
        volume = int(np.prod(self.shape[:3]))
        if name.startswith("x-slab"):
            return key[0] + self.shape[0] * np.arange(volume // self.shape[0] * self.shape[3])
        voxels = np.flatnonzero(key.reshape(-1, order="F"))
        return (voxels[None, :] + volume * np.arange(self.shape[3])[:, None]).reshape(-1)

    def _sequential_gather(self, wanted: np.ndarray) -> np.ndarray:
        """Read the file from start to end through one reused block, keeping ``wanted``.

        A bounded block, not the whole array: a fresh 400 MB array costs its page
        faults, and on this VM now and then a stall of 0.3-0.7 s (transparent huge
        pages), which has nothing to do with reading the file.
        """
        out = np.empty(len(wanted), self.dtype)
        size = self.dtype.itemsize
        block = np.empty(SEQUENTIAL_BLOCK // size, self.dtype)
        total = int(np.prod(self.shape))
        for first in range(0, total, len(block)):
            count = min(len(block), total - first)
            pread_into(self.fd, memoryview(block[:count]).cast("B"), self.offset + first * size)
            lo, hi = np.searchsorted(wanted, (first, first + count))
            out[lo:hi] = block[wanted[lo:hi] - first]
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
