"""Opening a path for reading: the descriptor, the regular-file check, the errors.

The lowest floor of file access, shared by the openers (:mod:`.opening`) and
the codecs that open files themselves (:mod:`.gzip` builds indexes by path).
"""

from __future__ import annotations

import os
import stat as stat_module

from ..errors import ProxyReadError

#: O_NONBLOCK: opening a FIFO must not wait for a writer (the regular-file check that
#: follows then refuses it); reads of regular files ignore the flag.
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
               | getattr(os, "O_NONBLOCK", 0))


class MissingFileError(ProxyReadError, FileNotFoundError):
    """The file does not exist (also a ``FileNotFoundError``)."""


class FileAccessError(ProxyReadError, PermissionError):
    """The file exists but may not be read (also a ``PermissionError``)."""


def _opening_error(path: str, err: OSError) -> ProxyReadError:
    """The proxylib error for an OSError met while opening or stat-ing ``path``."""
    if isinstance(err, FileNotFoundError):
        return MissingFileError(f"{path}: no such file; was it moved or deleted?", path=path)
    if isinstance(err, PermissionError):
        return FileAccessError(f"{path}: permission denied; check the file's mode and owner",
                               path=path)
    return ProxyReadError(f"{path}: cannot open: {err.strerror or err}", path=path)


def open_descriptor(path: str) -> int:
    try:
        return os.open(path, _OPEN_FLAGS)
    except OSError as err:
        raise _opening_error(path, err) from err


def require_regular_file(path: str) -> os.stat_result:
    """``os.stat(path)`` of a regular file, or a proxylib error naming the path.

    Checked before opening, so a FIFO never blocks the open and a directory
    is reported as such.
    """
    try:
        st = os.stat(path)
    except OSError as err:
        raise _opening_error(path, err) from err
    if not stat_module.S_ISREG(st.st_mode):
        raise ProxyReadError(f"{path}: not a regular file (a directory, pipe or device); "
                             "proxies read files", path=path)
    return st
