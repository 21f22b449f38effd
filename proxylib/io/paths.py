"""Opening a path for reading: the descriptor, the regular-file check, the errors.

The lowest floor of file access, shared by the openers (:mod:`.opening`), the
forwards streams (:mod:`.streams`) and the codecs that open files themselves
(:mod:`.gzip.build` builds indexes by path).
"""

from __future__ import annotations

import errno
import os
import stat as stat_module

from ..errors import FileAccessError, MissingFileError, ProxyReadError, TooManyOpenFilesError

#: O_NONBLOCK: opening a FIFO must not wait for a writer (the regular-file check that
#: follows then refuses it); reads of regular files ignore the flag.
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
               | getattr(os, "O_NONBLOCK", 0))


def _opening_error(path: str, err: OSError, seen: bool = False) -> ProxyReadError:
    """The proxylib error for an OSError met while opening or stat-ing ``path``.

    ``seen``: the file existed when it was first opened, so a missing file has
    disappeared since (moved or deleted) rather than never existed.
    """
    if isinstance(err, FileNotFoundError):
        if seen:
            error: ProxyReadError = MissingFileError(
                f"{path}: the file disappeared since it was opened; was it moved or deleted?",
                path=path)
        else:
            error = MissingFileError(f"{path}: no such file", path=path)
    elif isinstance(err, PermissionError):
        error = FileAccessError(f"{path}: permission denied; check the file's mode and owner",
                                path=path)
    elif err.errno in (errno.EMFILE, errno.ENFILE):
        error = TooManyOpenFilesError(
            f"{path}: cannot open: {err.strerror} (the process or system has no file "
            "descriptors left); close files you no longer need (e.g. proxies with "
            "keep_file_open=True) or raise the limit (ulimit -n)", path=path)
    else:
        error = ProxyReadError(f"{path}: cannot open: {err.strerror or err}", path=path)
    error.errno = err.errno
    return error


def open_descriptor(path: str, seen: bool = False) -> int:
    try:
        return os.open(path, _OPEN_FLAGS)
    except OSError as err:
        raise _opening_error(path, err, seen) from err


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
