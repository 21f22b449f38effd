"""NIfTI header extensions: parsed for round trips, never interpreted.

Each extension is ``esize`` (int32, a multiple of 16, including its own 8
header bytes), ``ecode`` (int32) and ``esize - 8`` bytes of content. They sit
between the header (plus its 4-byte extension flag) and the data.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np

from ..errors import HeaderError, HeaderWarning, warn_at_caller

#: Largest single extension read (bytes of content). Real ones (CIFTI XML,
#: DICOM, AFNI) are kilobytes to tens of megabytes; a larger size is damage.
MAX_EXTENSION_BYTES = 256 * 2**20
#: Most extensions read from one file; more is damage, not data.
MAX_EXTENSIONS = 4096
#: Extension content is read in pieces of this size, so memory follows what
#: the file really holds, never what a size field claims.
READ_PIECE = 1 << 16


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


def read_extensions(stream: Any, region: Optional[int], byteorder: str,
                    path: str) -> List[Extension]:
    """The extensions at ``stream``'s position, read one by one in bounded pieces.

    ``region`` is the number of bytes before the data (None: to the end of
    the stream, as in a ``.hdr``). An extension with an invalid size ends the
    list with a :class:`HeaderWarning` (nibabel stops there too); a size or a
    count beyond :data:`MAX_EXTENSION_BYTES` / :data:`MAX_EXTENSIONS` raises
    :class:`HeaderError` before anything more is read.
    """
    int32 = np.dtype(byteorder + "i4")
    out: List[Extension] = []
    position = 0
    while region is None or position + 8 <= region:
        head = stream.read(8)
        if len(head) < 8:
            break
        size, code = (int(v) for v in np.frombuffer(head, int32, 2))
        where = f"{path}: header extension {len(out)} (at byte {position} after the flag)"
        if size < 8 or size % 16 or (region is not None and position + size > region):
            warn_at_caller(f"{where} has invalid size {size} (a multiple of 16, at least "
                           "16, inside the space before the data); ignoring it and any after "
                           "it", HeaderWarning)
            break
        if size - 8 > MAX_EXTENSION_BYTES:
            raise HeaderError(f"{where} claims {size} bytes, more than the "
                              f"{MAX_EXTENSION_BYTES} proxylib reads for one extension; the "
                              "header is damaged", path=path, field="extension", value=size)
        if len(out) == MAX_EXTENSIONS:
            raise HeaderError(f"{path}: more than {MAX_EXTENSIONS} header extensions; the "
                              "header is damaged", path=path, field="extension",
                              value=len(out))
        content = _read_exactly(stream, size - 8)
        if len(content) < size - 8:
            warn_at_caller(f"{where} has size {size} but the file ends after "
                           f"{len(content) + 8} bytes; ignoring it", HeaderWarning)
            break
        out.append(Extension(code, content))
        position += size
    return out


def _read_exactly(stream: Any, count: int) -> bytes:
    """Up to ``count`` bytes, read in pieces (``read(n)`` may allocate ``n`` first)."""
    pieces = []
    left = count
    while left > 0:
        piece = stream.read(min(left, READ_PIECE))
        if not piece:
            break
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def extensions_bytes(extensions: List[Extension], byteorder: str = "=") -> bytes:
    """The extensions (sizes and codes in ``byteorder``), each padded to a multiple of 16."""
    parts = []
    for ext in extensions:
        content = ext.content + b"\x00" * (_padded(len(ext.content)) - len(ext.content))
        parts.append(np.array([ext.size, ext.code], dtype=byteorder + "i4").tobytes() + content)
    return b"".join(parts)


def is_nibabel_nifti_header(header: Any) -> bool:
    """True for a nibabel NIfTI-1/2 header (told by its module and fields, nibabel not imported)."""
    module = type(header).__module__ or ""
    keys = getattr(header, "keys", None)
    return (module.split(".")[0] == "nibabel" and callable(keys) and "magic" in keys()
            and hasattr(header, "extensions") and hasattr(header, "endianness"))


def extensions_from_nibabel(extensions: Any) -> List[Extension]:
    """nibabel header extensions as proxylib's, content as nibabel writes it (padded).

    Each extension is asked to write itself (``write_to``), so special kinds
    (DICOM, CIFTI, ...) keep exactly the bytes nibabel would save.
    """
    out: List[Extension] = []
    for ext in extensions:
        stream = io.BytesIO()
        ext.write_to(stream, False)
        raw = stream.getvalue()
        size, code = (int(v) for v in np.frombuffer(raw[:8], "=i4"))
        out.append(Extension(code, raw[8:size]))
    return out
