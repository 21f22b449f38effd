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


class ReadOnlyPosition:
    """The file-object protocol of a read-only reader that keeps its own ``pos``.

    Subclasses set ``self.pos`` and define ``_end()`` (the size, for seeks
    from the end) and their reads.
    """

    pos: int

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = seek_position(self.pos, offset, whence, self._end)
        return self.pos

    def _end(self) -> int:
        raise NotImplementedError
