"""MATLAB level-4 ``.mat`` files: the SPM affine that sits next to an ANALYZE pair.

SPM (and nibabel) keep an image's full voxel-to-world transform in ``x.mat``
beside ``x.hdr``/``x.img``, as the 4x4 double matrices ``mat`` (and ``M``).
Level 4 is a run of records: five int32 (type code, rows, columns, imaginary
flag, name length with its NUL), the name, then the real part in column-major
order. The type code ``MOPT`` says the byte order (M: 0 little, 1 big), that
it is a full numeric matrix (O, T: 0) and the element type (P: 0 is float64).
Later MATLAB levels (5+) are read with scipy when it is installed.
"""

from __future__ import annotations

from typing import BinaryIO, Dict, Mapping

import numpy as np

from ..errors import HeaderError

#: Element type digit P of the MOPT code -> numpy type.
_ELEMENT_TYPES = {0: "f8", 1: "f4", 2: "i4", 3: "i2", 4: "u2", 5: "u1"}
#: Refuse names and matrices larger than any SPM transform file could need.
_MAX_ELEMENTS = 1 << 20
_MAX_NAME = 64


def is_level4(head: bytes) -> bool:
    """True when the file starts with a level-4 record (levels 5+ start with text)."""
    if len(head) < 20:
        return False
    for order in "<>":
        mopt, rows, cols, imag, namelen = np.frombuffer(head[:20], order + "i4").tolist()
        if 0 <= mopt < 5000 and mopt // 10 % 10 == 0 and rows >= 0 and cols >= 0 \
                and imag in (0, 1) and 0 < namelen <= _MAX_NAME:
            return True
    return False


def read_level4(data: bytes, path: str) -> Dict[str, np.ndarray]:
    """Every numeric matrix in a level-4 file, by name."""
    out: Dict[str, np.ndarray] = {}
    position = 0
    while position < len(data):
        head = data[position:position + 20]
        if len(head) < 20:
            raise HeaderError(f"{path}: MATLAB 4 record header cut short at byte {position}",
                              path=path, field="mat", value=position)
        order = "<" if np.frombuffer(head[:4], "<i4")[0] < 1000 else ">"
        mopt, rows, cols, imag, namelen = np.frombuffer(head, order + "i4").tolist()
        element = _ELEMENT_TYPES.get(mopt // 10 % 10)
        if element is None or mopt % 10 != 0 or not 0 < namelen <= _MAX_NAME \
                or not 0 <= rows * cols <= _MAX_ELEMENTS or rows < 0:
            raise HeaderError(f"{path}: not a numeric MATLAB 4 matrix at byte {position} "
                              f"(type {mopt}, {rows}x{cols}, name length {namelen})",
                              path=path, field="mat", value=mopt)
        name_start = position + 20
        name = data[name_start:name_start + namelen].rstrip(b"\x00").decode("latin-1")
        count = rows * cols * (2 if imag else 1)
        start = name_start + namelen
        values = np.frombuffer(data, order + element, count=count, offset=start) \
            if start + count * np.dtype(element).itemsize <= len(data) else None
        if values is None:
            raise HeaderError(f"{path}: MATLAB 4 matrix {name!r} is cut short", path=path,
                              field="mat", value=name)
        out[name] = values[:rows * cols].astype(np.float64).reshape((rows, cols), order="F")
        position = start + count * np.dtype(element).itemsize
    return out


def write_level4(out: BinaryIO, matrices: Mapping[str, np.ndarray]) -> None:
    """Write float64 matrices as a level-4 file in native byte order."""
    big = np.little_endian is False
    for name, matrix in matrices.items():
        matrix = np.asarray(matrix, dtype=np.float64)
        encoded = name.encode("latin-1") + b"\x00"
        head = np.array([1000 if big else 0, matrix.shape[0], matrix.shape[1], 0,
                         len(encoded)], dtype="=i4")
        out.write(head.tobytes() + encoded + matrix.tobytes(order="F"))
