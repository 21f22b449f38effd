"""Write an array or proxy to a file in bounded blocks, in Fortran (file) order.

Memory follows the block size, not the image: a proxy is sliced block by
block, so an image larger than memory can be saved.
"""

from __future__ import annotations

import math
from typing import Any, BinaryIO, Iterator, Optional, Tuple

import numpy as np

#: Bytes of data converted and written per step.
BLOCK_BYTES = 16 * 2**20


def block_keys(shape: Tuple[int, ...], itemsize: int,
               block_bytes: Optional[int] = None) -> Iterator[Tuple[Any, ...]]:
    """Basic keys covering a Fortran-ordered array in file order.

    Whole leading axes are taken while they fit in ``block_bytes``; the next
    axis is cut into runs that fit; every later axis is stepped one index at
    a time, the last axis slowest. So each block is one contiguous byte run
    of the file, at most ``block_bytes`` long (or one run of the first axis
    if that alone is longer).
    """
    if math.prod(shape) == 0:
        return
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    whole = 0
    inner = itemsize
    while whole < len(shape) and inner * shape[whole] <= block_bytes:
        inner *= shape[whole]
        whole += 1
    if whole == len(shape):
        yield (slice(None),) * len(shape)
        return
    step = max(1, block_bytes // inner)
    cut = shape[whole]
    outer = shape[whole + 1:]
    for reversed_index in np.ndindex(*reversed(outer)):
        index = tuple(int(i) for i in reversed(reversed_index))
        for start in range(0, cut, step):
            yield (slice(None),) * whole + (slice(start, min(start + step, cut)),) + index


def write_blocks(fileobj: BinaryIO, source: Any, dtype: np.dtype,
                 block_bytes: Optional[int] = None) -> int:
    """Write ``source`` (array or proxy) as ``dtype`` in Fortran order; return bytes written."""
    dtype = np.dtype(dtype)
    shape = tuple(source.shape)
    written = 0
    for key in block_keys(shape, max(dtype.itemsize, np.dtype(source.dtype).itemsize),
                          block_bytes):
        block = np.asarray(source[key])
        if block.dtype != dtype:
            block = block.astype(dtype)
        data = block.tobytes(order="F")
        fileobj.write(data)
        written += len(data)
    return written
