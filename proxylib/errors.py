"""The proxylib exception hierarchy: every exception and warning class proxylib
defines lives here and is exported from ``proxylib`` (modules that used to
define one re-export it, so old import paths keep working).

Every error proxylib raises on purpose derives from :class:`ProxyError`, and
also from the builtin a caller would naturally catch:

* header and specification problems are ``ValueError`` (:class:`HeaderError`,
  :class:`SpecError`);
* problems met while reading bytes are ``OSError`` (:class:`ProxyReadError`
  and its subclasses), carrying the path, the byte offset and the expected
  and found byte counts;
* bad keys are ``IndexError`` (:class:`ProxyIndexError`).
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Optional, Type


class ProxyError(Exception):
    """Base class of every error proxylib raises on purpose."""


class SpecError(ProxyError, ValueError):
    """An array specification (shape, dtype, offset, scaling) is invalid."""


class HeaderError(ProxyError, ValueError):
    """A file header is malformed or describes data that cannot exist."""

    def __init__(self, message: str, *, path: Optional[str] = None,
                 field: Optional[str] = None, value: object = None) -> None:
        self.path = path
        self.field = field
        self.value = value
        super().__init__(message)

    def __reduce__(self):
        return (_rebuild_header_error,
                (type(self), str(self), self.path, self.field, self.value))


def _rebuild_header_error(cls, message, path, field, value):
    return cls(message, path=path, field=field, value=value)


class ProxyIndexError(ProxyError, IndexError):
    """A key cannot index the proxy (out of range, too many indices, ...)."""


class ProxyReadError(ProxyError, OSError):
    """Reading array bytes failed.

    Attributes
    ----------
    path : str or None
        File (or description of the file-like object) being read.
    offset : int or None
        Byte offset at which the failing read started.
    expected, found : int or None
        Byte counts that were needed and that were actually available.
    """

    def __init__(self, message: str, *, path: Optional[str] = None,
                 offset: Optional[int] = None, expected: Optional[int] = None,
                 found: Optional[int] = None) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset
        self.expected = expected
        self.found = found

    def __str__(self) -> str:
        return self.args[0] if self.args else ""

    def __reduce__(self):
        return (_rebuild_read_error,
                (type(self), self.args[0] if self.args else "", self.path,
                 self.offset, self.expected, self.found))


def _rebuild_read_error(cls, message, path, offset, expected, found):
    return cls(message, path=path, offset=offset, expected=expected, found=found)


class MissingFileError(ProxyReadError, FileNotFoundError):
    """The file does not exist, or no longer exists (also a ``FileNotFoundError``)."""


class FileAccessError(ProxyReadError, PermissionError):
    """The file exists but may not be read (also a ``PermissionError``)."""


class TooManyOpenFilesError(ProxyReadError):
    """The process ran out of file descriptors (EMFILE/ENFILE) while opening a file."""


class TruncatedFileError(ProxyReadError):
    """The file holds fewer bytes than the array specification needs."""


class FileChangedError(ProxyReadError):
    """The file changed (size, inode, mtime or ctime) since the proxy first opened it."""


class CorruptDataError(ProxyReadError):
    """Compressed data failed to decode or its checksum did not match."""


class UnseekableStreamError(ProxyReadError):
    """A stream cannot seek and the read would need unbounded buffering."""


class RangeIgnoredError(ProxyReadError):
    """A server answered a byte-range request with other bytes than the range asked."""


class TransientReadError(ProxyReadError):
    """A remote request failed in a way another attempt may cure (5xx, a cut-off body).

    Retried where it happens; the caller sees the ``ProxyReadError`` raised
    when the attempts run out.
    """


class InflateIntoError(ProxyError):
    """ISA-L could not inflate a gzip span straight into the result.

    Raised and caught inside the gzip reader, which then decodes the span with
    its general decoder (that one names the problem if the data are bad).
    """


class DamagedIndexError(ProxyError, ValueError):
    """A saved gzip seek index failed its checksum and must not be used."""


class ImageFileError(ProxyError, ValueError):
    """A file name does not fit the image type (wrong or missing extension)."""


class KeySyntaxError(ProxyError, ValueError):
    """A key given as text (the ``slice`` command) is not a literal numpy index."""


class EmptyResultError(ProxyError, ValueError):
    """A selection holds no elements where a non-empty result is required."""


class UnsupportedImageError(ProxyError, TypeError):
    """An object another library made cannot be converted (``from_nibabel``, ``to_nibabel``)."""


class ResultTooLargeError(ProxyError, MemoryError):
    """A read would return more bytes than the machine's memory."""


class HeaderWarning(UserWarning):
    """A header part that is not needed to read the data is malformed and was skipped."""


class IndexCacheWarning(UserWarning):
    """The gzip index cache could not be written; reads still work."""


class ExpiredDeprecationError(ProxyError, RuntimeError):
    """A removed API was called; the message says what replaces it."""


def describe_file(file_like: object) -> str:
    """Return a short human description of a path or file-like object."""
    if isinstance(file_like, (str, os.PathLike)):
        return os.fsdecode(file_like)
    name = getattr(file_like, "name", None)
    if isinstance(name, (str, bytes, os.PathLike)):
        return f"{os.fsdecode(name)} ({type(file_like).__name__})"
    return f"<{type(file_like).__name__} object>"


def warn_at_caller(message: str, category: Type[Warning]) -> None:
    """``warnings.warn`` attributed to the first frame outside proxylib.

    A warning about a file points at the user's line that loaded it, however
    many proxylib calls (``load``, ``from_filename``, ``from_file_map``) lie
    between.
    """
    frame = sys._getframe(1)
    level = 2
    while frame.f_back is not None and frame.f_globals.get("__name__", "").partition(".")[0] \
            == "proxylib":
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
