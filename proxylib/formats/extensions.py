"""NIfTI header extensions: parsed for round trips, never interpreted.

Each extension is ``esize`` (int32, a multiple of 16, including its own 8
header bytes), ``ecode`` (int32) and ``esize - 8`` bytes of content. They sit
between the header (plus its 4-byte extension flag) and the data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import List

import numpy as np

from ..errors import HeaderWarning


@dataclass(frozen=True)
class Extension:
    """One header extension: its code and its raw content.

    Content read from a file includes the zero padding that rounds each
    extension to 16 bytes, so a loaded extension compares equal to itself
    after any number of round trips (content is written padded, never
    re-padded).
    """

    code: int
    content: bytes

    @property
    def size(self) -> int:
        """Bytes this extension takes in a file (a multiple of 16)."""
        return 8 + _padded(len(self.content))


def _padded(length: int) -> int:
    return -(-(length + 8) // 16) * 16 - 8


def parse_extensions(block: bytes, byteorder: str, path: str) -> List[Extension]:
    """The extensions in ``block``; malformed trailing bytes are dropped with a warning."""
    int32 = np.dtype(byteorder + "i4")
    out: List[Extension] = []
    position = 0
    while position + 8 <= len(block):
        size, code = np.frombuffer(block, int32, 2, position)
        size, code = int(size), int(code)
        if size < 8 or size % 16 or position + size > len(block):
            warnings.warn(f"{path}: header extension at byte {position} has invalid size "
                          f"{size}; ignoring it and any after it", HeaderWarning,
                          stacklevel=3)
            break
        out.append(Extension(code, bytes(block[position + 8:position + size])))
        position += size
    return out


def extensions_bytes(extensions: List[Extension]) -> bytes:
    """The extensions in native byte order, each padded to a multiple of 16."""
    parts = []
    for ext in extensions:
        content = ext.content + b"\x00" * (_padded(len(ext.content)) - len(ext.content))
        parts.append(np.array([ext.size, ext.code], dtype="=i4").tobytes() + content)
    return b"".join(parts)
