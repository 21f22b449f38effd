"""Allocating results: refuse sizes no machine of this size could hold.

An array whose bytes exceed the machine's physical memory cannot be filled
however long we try; rather than let the kernel overcommit and the process
die half-way, such a request fails at once with :class:`ResultTooLargeError`.
"""

from __future__ import annotations

import math
import os
from typing import Optional, Tuple

import numpy as np

from .errors import ResultTooLargeError


def physical_memory() -> Optional[int]:
    """Bytes of physical memory, or None where the platform does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


#: Asked once: every allocation is checked against it.
_PHYSICAL_MEMORY = physical_memory()


def allocate(shape: Tuple[int, ...], dtype: np.dtype, source: str) -> np.ndarray:
    """``np.empty(shape, dtype)``, or a clear error if it cannot fit in memory."""
    nbytes = math.prod(shape) * dtype.itemsize
    limit = _PHYSICAL_MEMORY
    if limit is not None and nbytes > limit:
        raise ResultTooLargeError(
            f"{source}: the result of shape {shape} and dtype {np.dtype(dtype)} needs "
            f"{_gib(nbytes)}, more than this machine's {_gib(limit)} of memory; read it "
            "in slices (for example one volume at a time) instead")
    try:
        return np.empty(shape, dtype=dtype)
    except MemoryError as err:
        raise ResultTooLargeError(
            f"{source}: cannot allocate {_gib(nbytes)} for a result of shape {shape}; "
            "read it in slices instead") from err


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB"
