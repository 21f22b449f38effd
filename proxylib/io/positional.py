"""The seek arithmetic shared by proxylib's own read-only file objects."""

from __future__ import annotations

import errno
from typing import Callable


def seek_position(current: int, offset: int, whence: int, size: Callable[[], int]) -> int:
    """The absolute position ``seek(offset, whence)`` moves to, with io's errors.

    ``size`` is called only for ``whence=2`` (from the end).
    """
    if whence == 0:
        position = offset
    elif whence == 1:
        position = current + offset
    elif whence == 2:
        position = size() + offset
    else:
        raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
    if position < 0:
        raise OSError(errno.EINVAL, f"negative seek position {position}")
    return position
