"""Sequential readers for headers and sizes, sniffed like the proxy's byte sources.

A proxy reads a path through :class:`~proxylib.io.opening.OpenFile`, which
decides from the first bytes whether the file is gzip, bzip2, Zstandard or
plain. Headers, size checks and ``proxylib ls`` need the same bytes read
forwards; :func:`open_stream` gives them a decompressing reader chosen by the
same sniffer (:func:`~proxylib.io.sniff.sniff`, which also picks the decompressor), opened through the same error
handling (missing file, permissions, no descriptors left), so a file the
proxy can read is a file the header reader can read, and the other way round.

A path's stream carries what its one ``fstat`` and one sniff found
(:class:`FileSeen`): the size bound of the data check and the identity a
proxy of the same file starts from come from it, not from opening again.
"""

from __future__ import annotations

import os
import stat as stat_module
import zlib
from contextlib import contextmanager
from typing import Any, Iterator, NamedTuple, Optional, Tuple

from ..errors import CorruptDataError, ProxyError, ProxyReadError, TruncatedFileError
from .compressed import PreadFile
from .identity import FileIdentity
from .paths import open_descriptor, require_regular_file
from .positional import pread
from .sniff import SNIFF_HEAD, compression_of, sniff


_STREAM_ERRORS = (OSError, EOFError, ValueError, zlib.error)


def _stream_error(name: str, kind: Optional[str], err: BaseException,
                  position: Optional[int]) -> ProxyReadError:
    """The proxylib error for a failure while a (compressed) stream was read forwards."""
    what = f"the {kind} stream" if kind else "the file"
    if isinstance(err, EOFError):
        return TruncatedFileError(
            f"{name}: {what} ends early (near compressed offset {position}): {err}; the "
            "file is truncated, re-download or re-copy it", path=name, offset=position)
    if kind and not isinstance(err, (PermissionError, FileNotFoundError)):
        return CorruptDataError(
            f"{name}: corrupt {kind} data near compressed offset {position}: {err}; the "
            "file is damaged, re-download or re-copy it", path=name, offset=position)
    return ProxyReadError(f"{name}: reading failed: {err}", path=name, offset=position)


class FileSeen(NamedTuple):
    """What one ``fstat`` and one sniff of an opened local file found."""

    #: Size, inode, device, mtime and ctime of the open file (its ``fstat``).
    identity: FileIdentity
    #: 'gzip', 'bz2' or 'zstd'; None for an uncompressed file.
    compression: Optional[str]

    @property
    def size(self) -> int:
        """Bytes on disk (compressed bytes for a compressed file)."""
        return self.identity.size


class _Guarded:
    """A reader whose read errors become proxylib errors naming the file.

    ``seen``: for a path, what opening it found (None for a file object).
    """

    def __init__(self, stream: Any, name: str, kind: Optional[str], raw: Any,
                 seen: Optional[FileSeen] = None) -> None:
        self._stream = stream
        self._raw = raw
        self.name = name
        self.compression = kind
        self.seen = seen

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except ProxyError:
            raise
        except _STREAM_ERRORS as err:
            try:
                position = self._raw.tell()
            except Exception:  # the raw stream may itself be broken
                position = None
            raise _stream_error(self.name, self.compression, err, position) from err

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


def open_regular(path: str) -> int:
    """A read-only descriptor of the regular file at ``path``, opened like a proxy's
    (missing, unreadable, a directory or FIFO, no descriptors left: proxylib errors)."""
    return _open_regular(path)[0]


def _open_regular(path: str) -> Tuple[int, os.stat_result]:
    fd = open_descriptor(path)  # non-blocking: a FIFO is opened, then refused below
    try:
        st = os.fstat(fd)
        if not stat_module.S_ISREG(st.st_mode):
            require_regular_file(path)  # raises, naming what the path is
    except BaseException:
        os.close(fd)
        raise
    return fd, st


@contextmanager
def open_stream(path: str) -> Iterator[_Guarded]:
    """A forwards reader of the decompressed content of the file at ``path``.

    One open, one ``fstat`` and one sniffing read; the reader's ``seen`` holds
    what they found.
    """
    fd, st = _open_regular(path)
    try:
        raw = PreadFile(fd, path)
        codec = sniff(pread(fd, SNIFF_HEAD, 0))
        seen = FileSeen(FileIdentity.of_stat(st), None if codec is None else codec.name)
        if codec is None:
            yield _Guarded(raw, path, None, raw, seen)
        else:
            yield _Guarded(codec.factory(raw), path, codec.name, raw, seen)
    finally:
        os.close(fd)


@contextmanager
def wrap_fileobj(fileobj: Any, pos: int = 0, name: str = "") -> Iterator[_Guarded]:
    """A forwards reader of ``fileobj``'s content from ``pos``, decompressed when the
    bytes there are compressed (the same sniffer as for paths)."""
    fileobj.seek(pos)
    head = fileobj.read(SNIFF_HEAD)
    fileobj.seek(pos)
    codec = sniff(head)
    kind = None if codec is None else codec.name
    name = name or getattr(fileobj, "name", None) or f"<{type(fileobj).__name__}>"
    name = os.fsdecode(name) if isinstance(name, (bytes, os.PathLike)) else str(name)
    stream = fileobj if codec is None else codec.factory(fileobj)
    yield _Guarded(stream, name, kind, fileobj)


def stream_size(path: str) -> Tuple[int, Optional[str]]:
    """``(size on disk, compression)`` of the file at ``path``, opened like a header."""
    seen = look_at(path)
    return seen.size, seen.compression


def look_at(path: str) -> FileSeen:
    """What opening the file at ``path`` like a header finds (one open, ``fstat``, sniff)."""
    fd, st = _open_regular(path)
    try:
        return FileSeen(FileIdentity.of_stat(st), compression_of(pread(fd, SNIFF_HEAD, 0)))
    finally:
        os.close(fd)


def read_on(stream: Any, head: bytes, wanted: int) -> bytes:
    """At least ``wanted`` bytes from the start of ``stream`` (fewer at its end), of which
    ``head`` was already read: ``head`` when it is long enough, else ``head`` and the rest."""
    return head if len(head) >= wanted else head + stream.read(wanted - len(head))


class Prepended:
    """A forwards reader that returns ``head`` (bytes already read) before ``stream``'s rest."""

    def __init__(self, head: bytes, stream: Any) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        head = self._head
        if not head:
            return self._stream.read(size)
        if size is not None and 0 <= size <= len(head):
            self._head = head[size:]
            return head[:size]
        self._head = b""
        rest = self._stream.read(-1 if size is None or size < 0 else size - len(head))
        return head + rest


__all__ = ["FileSeen", "Prepended", "look_at", "open_regular", "open_stream", "read_on",
           "wrap_fileobj", "stream_size"]
