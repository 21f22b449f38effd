"""Openers for objects the caller already holds: file objects (and the base of remote ones).

These own no handle: the caller opened the object and closes it. What they
decide is how reads stay correct when several proxies, threads or processes
share the object:

* a plain read-only file (``open(path, 'rb')``) is read with positional reads
  on its descriptor: no lock, its position never moves, correct after fork;
* any other object is read under one lock per object (:func:`lock_for`),
  with its position restored once per access;
* in a forked child, an object backed by a descriptor (whose position the
  child would share with its parent) is refused rather than read wrongly.
"""

from __future__ import annotations

import io
import os
import stat as stat_module
import sys
import threading
import weakref
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from ..errors import ProxyReadError, describe_file
from .gzip.source import cost_for_fileobj
from .sniff import SNIFF_HEAD, compression_of
from .sources import DescriptorSource, FileObjectSource


_file_locks: "weakref.WeakKeyDictionary[Any, threading.RLock]" = weakref.WeakKeyDictionary()
_file_locks_guard = threading.Lock()


_UNREGISTRABLE_LOCK = threading.RLock()


def lock_for(fileobj: Any) -> threading.RLock:
    """The one lock shared by every proxy reading ``fileobj``."""
    with _file_locks_guard:
        try:
            lock = _file_locks.get(fileobj)
            if lock is None:
                lock = _file_locks[fileobj] = threading.RLock()
            return lock
        except TypeError:  # not weak-referenceable or not hashable: one lock for all such
            return _UNREGISTRABLE_LOCK


class HandlelessOpener:
    """Base of the openers that own no handle (file objects, remote files).

    Every opener implements :class:`~proxylib.io.protocol.Opener`
    (``source()``, ``opened()``, ``identity()``, ``is_open``, ``close()``,
    ``clone()``); these have nothing to open, keep or close, so only
    ``source``, ``identity`` and ``clone`` differ.
    """

    keep_open = False

    @contextmanager
    def opened(self) -> Iterator[None]:
        yield None

    @property
    def is_open(self) -> bool:
        return False

    def remember_current_file(self) -> None:
        pass

    def close(self) -> None:
        pass


class FileObjectOpener(HandlelessOpener):
    """Handle policy for an already open file-like object: there is none.

    The caller owns the object; proxylib never closes it. A plain read-only
    file (``open(path, 'rb')``) is read with positional reads on its
    descriptor, which neither move its position nor need a lock, and stay
    correct in forked children. Any other object is read through
    :class:`FileObjectSource` under the object's shared lock; in a forked
    child, an object backed by a descriptor (whose position the child shares
    with its parent and siblings) is refused rather than read wrongly.
    """

    def __init__(self, fileobj: Any, lock: Optional[threading.RLock] = None) -> None:
        if not (hasattr(fileobj, "read") and hasattr(fileobj, "seek")):
            raise TypeError(
                f"file_like must be a path or a binary file-like object with read() and "
                f"seek(), not {type(fileobj).__name__}")
        self.fileobj = fileobj
        self.lock = lock if lock is not None else lock_for(fileobj)
        self.pid = os.getpid()
        self.name = describe_file(fileobj)
        self.positional = _plain_descriptor(fileobj) is not None
        _refuse_compressed(fileobj, self.lock, self.name)
        self._source = FileObjectSource(fileobj, self.lock, self.name,
                                        cost_for_fileobj(fileobj))

    def source(self):
        """Context manager: the byte source for one access."""
        if self.positional:
            fd = _plain_descriptor(self.fileobj)
            if fd is None:
                raise ProxyReadError(f"{self.name}: the file object was closed",
                                     path=self.name)
            return _Yield(DescriptorSource(fd, self.name))
        if os.getpid() != self.pid and _shares_descriptor(self.fileobj):
            raise ProxyReadError(
                f"{self.name}: this file object shares its file position with the process "
                "it was opened in (fork); reads here would move each other's position. "
                "Give the proxy a path, or open the file in this process", path=self.name)
        return self._source.access()

    def identity(self) -> Any:
        """The file object itself: what it reads is whatever it holds."""
        return ("fileobj", self.fileobj)

    def __getstate__(self) -> dict:
        return {"fileobj": self.fileobj}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["fileobj"])

    def clone(self) -> "FileObjectOpener":
        return FileObjectOpener(self.fileobj, self.lock)


class _Yield:
    """A context manager that just yields ``value``."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __enter__(self) -> Any:
        return self.value

    def __exit__(self, *exc_info: Any) -> None:
        return None


def _refuse_compressed(fileobj: Any, lock: threading.RLock, name: str) -> None:
    """Refuse an object whose bytes are gzip, bzip2 or Zstandard data.

    A path to such a file is decompressed (the same sniffer decides); a proxy
    given the object would read the compressed bytes as array values. The
    first bytes are read once, and the object's position is put back.
    """
    try:
        with lock:
            position = fileobj.tell()
            try:
                fileobj.seek(0)
                head = fileobj.read(SNIFF_HEAD)
            finally:
                fileobj.seek(position)
    except (OSError, ValueError, AttributeError, TypeError):
        return  # unreadable now: each access reports what is wrong
    kind = compression_of(bytes(head or b""))
    if kind is not None:
        raise ProxyReadError(
            f"{name}: this file object holds {kind}-compressed bytes, which an ArrayProxy "
            "would read as array values; pass the file's path (decompressed "
            "automatically), or a decompressing reader such as gzip.GzipFile(fileobj=...)",
            path=name)


def _descriptor_of(fileobj: Any) -> Optional[int]:
    try:
        return fileobj.fileno()
    except Exception:  # no descriptor, whatever the object says (io.UnsupportedOperation...)
        return None


def _shares_descriptor(fileobj: Any) -> bool:
    """True when reading ``fileobj`` moves a file position shared across a fork.

    A SpooledTemporaryFile still in memory is private to each process, and its
    ``fileno()`` would roll it over to disk, so it is asked without calling it.
    """
    tempfile = sys.modules.get("tempfile")  # not imported: no SpooledTemporaryFile exists
    if tempfile is not None and isinstance(fileobj, tempfile.SpooledTemporaryFile):
        return bool(getattr(fileobj, "_rolled", True))
    return _descriptor_of(fileobj) is not None


def _plain_descriptor(fileobj: Any) -> Optional[int]:
    """The descriptor of an open, read-only, regular file object, else None.

    Exactly ``io.FileIO`` or an ``io.BufferedReader`` over one: subclasses
    (indexed_gzip's reader is a BufferedReader) may serve other bytes than
    their descriptor's.
    """
    plain = type(fileobj) is io.FileIO or (
        type(fileobj) is io.BufferedReader and type(getattr(fileobj, "raw", None)) is io.FileIO)
    if not plain or fileobj.closed:
        return None
    try:
        if fileobj.writable():
            return None
    except (OSError, ValueError):
        return None
    fd = _descriptor_of(fileobj)
    if fd is None:
        return None
    try:
        return fd if stat_module.S_ISREG(os.fstat(fd).st_mode) else None
    except OSError:
        return None
