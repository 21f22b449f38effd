"""Opening files by path and owning handle lifetime; choosing a proxy's opener.

One small, picklable object per proxy decides when a file is opened and
closed (:class:`PathOpener` for paths; objects the caller already holds get a
:class:`~proxylib.io.fileobjects.FileObjectOpener` or a remote opener, see
:func:`make_opener`). Its :meth:`~PathOpener.source` context manager hands out
a :class:`~proxylib.io.sources.ByteSource` for the duration of one access:

* ``keep_open=False``: open, (map,) read, close on every access;
* ``keep_open=True``: open once on first use (one handle even when many
  threads make the first access together), reuse, close on :meth:`close`,
  when the owner is collected, or re-open in a forked child.

Every open checks the file against what the proxy needs: long enough for
the array, and unchanged (its :class:`~proxylib.io.identity.FileIdentity`:
size, inode, mtime, ctime) since the proxy first saw it.
"""

from __future__ import annotations

import os
import stat as stat_module
import threading
import weakref
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from ..errors import (FileAccessError, FileChangedError, MissingFileError,  # noqa: F401
                      ProxyReadError, TruncatedFileError)
from .compressed import SequentialSource
from .fileobjects import FileObjectOpener, HandlelessOpener, lock_for
from .gzip.source import open_gzip_source
from .identity import UNREADABLE, FileIdentity
from .paths import open_descriptor, require_regular_file
from .positional import pread
from .protocol import Opener, registered_opener_for
from .sniff import GZIP_CODEC, SNIFF_HEAD, sniff
from .sources import ByteSource, DescriptorSource, MappedSource, Mapper
from .streams import FileSeen

class OpenFile:
    """One opened path: its descriptor and/or memory map, and its byte source.

    With ``map_only`` (a kept handle that may be memory-mapped) the file is
    mapped at once and its descriptor closed, so a kept proxy holds exactly
    one descriptor (the one the map keeps) and serves every read from the map.

    Opened for one access, it is its own context manager: ``with`` yields the
    byte source and closes the file on the way out.
    """

    #: True for an uncompressed file, whose whole content may be memory-mapped.
    can_map = False
    #: Accesses using a kept file now, and whether it closes when they end.
    users = 0
    closing = False

    def __init__(self, path: str, required_size: Optional[int], map_only: bool = False,
                 check: Optional[Callable[[FileIdentity], None]] = None,
                 raw_at: Optional[FileIdentity] = None, seen: bool = False) -> None:
        self.path = path
        self.closed = False
        self.fd = open_descriptor(path, seen)
        try:
            st = os.fstat(self.fd)
            if not stat_module.S_ISREG(st.st_mode):
                require_regular_file(path)  # raises, naming what the path is
            self.fingerprint = FileIdentity.of_stat(st)
            if check is not None:  # a changed file is reported as such, before anything else
                check(self.fingerprint)
            sequential = None
            if raw_at is not None and raw_at == self.fingerprint:
                self.compressed = False  # this very version of the file was sniffed before
            else:
                head = pread(self.fd, SNIFF_HEAD, 0) if st.st_size >= 2 else b""
                codec = sniff(head)  # the sniffer headers and `ls` use too
                self.compressed = codec is not None
                if codec is not None and codec is not GZIP_CODEC:
                    sequential = SequentialSource(self.fd, path, codec, self.fingerprint)
            if sequential is not None:
                self.source: ByteSource = sequential
            elif self.compressed:
                self.source = open_gzip_source(self.fd, path, self.fingerprint)
            else:
                if required_size is not None and st.st_size < required_size:
                    raise TruncatedFileError(
                        f"{path}: the array needs the file to hold {required_size} bytes "
                        f"but it has {st.st_size}; the file is truncated or its header "
                        "is wrong", path=path, offset=0, expected=required_size,
                        found=st.st_size)
                self.can_map = True
                mapper = Mapper(self.fd, st.st_size) if map_only and st.st_size > 0 else None
                if mapper is not None and mapper.get() is not None:
                    os.close(self.fd)
                    self.fd = -1
                    self.source = MappedSource(mapper, path, self.new_descriptor)
                else:  # per-access reads, or no map could be made: positional reads
                    self.source = DescriptorSource(self.fd, path, map_length=st.st_size)
        except BaseException:
            if self.fd >= 0:
                os.close(self.fd)
            raise

    def __enter__(self) -> ByteSource:
        return self.source

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def current_fingerprint(self) -> FileIdentity:
        """The fingerprint of the open file now (of the path when only a map is held)."""
        if self.fd >= 0:
            return FileIdentity.of_stat(os.fstat(self.fd))
        try:
            return FileIdentity.of_stat(os.stat(self.path))
        except OSError:
            return UNREADABLE  # deleted or unreadable: a change

    def new_descriptor(self) -> int:
        """A fresh descriptor on the same file, for a caller that must own one."""
        if self.fd >= 0:
            return os.dup(self.fd)
        fd = open_descriptor(self.path, seen=True)
        if FileIdentity.of_stat(os.fstat(fd)) != self.fingerprint:
            os.close(fd)
            raise FileChangedError(f"{self.path}: the file was replaced while open",
                                   path=self.path)
        return fd

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.source.close()  # and with it any map
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1


_live_openers: "weakref.WeakSet[PathOpener]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child gets fresh locks and forgets its parent's kept files.

    The child's next access opens its own handle (a descriptor shared with the
    parent would share its file position, and a kept gzip state its cursor);
    the inherited copies are left to the child's garbage collector, never
    closed under the parent. Done here, once per fork, so reads need no
    ``getpid()`` to notice a fork.
    """
    Mapper._guard = threading.Lock()
    for opener in list(_live_openers):
        opener._lock = threading.Lock()
        opener._forget_kept()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class PathOpener:
    """Owns the handle policy for a file named by a path."""

    def __init__(self, path: Any, *, keep_open: bool,
                 required_size: Optional[int] = None,
                 fingerprint: Optional[FileIdentity] = None,
                 use_mmap: bool = False, raw_at: Optional[FileIdentity] = None) -> None:
        self.path = os.fsdecode(os.fspath(path))
        self.keep_open = keep_open
        self.use_mmap = use_mmap
        self.required_size = required_size
        self.fingerprint = fingerprint
        self._lock = threading.Lock()
        self._kept: Optional[OpenFile] = None
        self._finalizer: Optional[weakref.finalize] = None
        #: The fingerprint at which the file was last found uncompressed: opening
        #: that same version again needs no sniffing read.
        self._raw_at = raw_at
        _live_openers.add(self)

    @classmethod
    def from_seen(cls, path: Any, seen: FileSeen, *, keep_open: bool,
                  required_size: Optional[int] = None, use_mmap: bool = False) -> "PathOpener":
        """An opener starting from what opening ``path`` for its header found.

        ``seen`` must come from the ``fstat`` of a descriptor of ``path``
        (:func:`~proxylib.io.streams.open_stream`): the proxy then reports any
        later difference as a change, as if it had looked itself, and does not
        sniff an uncompressed file again.
        """
        return cls(path, keep_open=keep_open, required_size=required_size,
                   fingerprint=seen.identity, use_mmap=use_mmap,
                   raw_at=seen.identity if seen.compression is None else None)

    # -- policy -----------------------------------------------------------
    def remember_current_file(self) -> None:
        """Record the fingerprint of the file now at the path, if it exists."""
        if self.fingerprint is None:
            try:
                self.fingerprint = FileIdentity.of_stat(os.stat(self.path))
            except OSError:
                pass

    def _check(self, fingerprint: FileIdentity) -> None:
        """Remember the first fingerprint seen; raise FileChangedError on any other."""
        if self.fingerprint is None:
            self.fingerprint = fingerprint
        elif fingerprint != self.fingerprint:
            raise FileChangedError(
                f"{self.path}: the file changed since the proxy first opened it "
                f"({self.fingerprint.differences(fingerprint)}); reload the image to "
                "read the new content", path=self.path, offset=0,
                expected=self.fingerprint.size, found=fingerprint.size)

    @contextmanager
    def opened(self) -> Iterator[OpenFile]:
        """Context manager: an open, checked file for the duration of one access."""
        opened = self._acquire()
        try:
            yield opened
        finally:
            self._release(opened)

    def source(self) -> Any:
        """Context manager: the open file's byte source for one access.

        Per access, the :class:`OpenFile` itself (it closes on exit); a kept
        file is lent through a :class:`_KeptAccess`. Either way no more
        objects than that: this runs on every read.
        """
        if not self.keep_open:
            return self._open_for_access()
        return _KeptAccess(self, self._acquire_kept())

    def _acquire(self) -> OpenFile:
        return self._acquire_kept() if self.keep_open else self._open_for_access()

    def _open_for_access(self) -> OpenFile:
        # OpenFile checks the identity before anything else
        opened = OpenFile(self.path, self.required_size, check=self._check, raw_at=self._raw_at,
                          seen=self.fingerprint is not None)
        if not opened.compressed:
            self._raw_at = opened.fingerprint
        return opened

    def _acquire_kept(self) -> OpenFile:
        with self._lock:
            kept = self._kept
            if kept is None:
                kept = OpenFile(self.path, self.required_size, map_only=self.use_mmap,
                                check=self._check, raw_at=self._raw_at,
                                seen=self.fingerprint is not None)
                self._kept = kept
                if self._finalizer is not None:
                    self._finalizer.detach()
                self._finalizer = weakref.finalize(self, kept.close)
            kept.users += 1
        try:
            self._check(kept.current_fingerprint())
        except BaseException:
            self._release(kept)
            raise
        return kept

    def _release(self, opened: OpenFile) -> None:
        if not self.keep_open:
            opened.close()
            return
        with self._lock:
            opened.users -= 1
            if opened.closing and opened.users == 0:
                opened.close()

    def identity(self) -> Any:
        """The absolute path and the fingerprint first seen (None before any access)."""
        return ("path", os.path.abspath(self.path),
                None if self.fingerprint is None else tuple(self.fingerprint))

    @property
    def is_open(self) -> bool:
        kept = self._kept
        return kept is not None and not kept.closed

    def close(self) -> None:
        """Close the kept handle (and map) now, or as soon as readers finish."""
        with self._lock:
            kept, self._kept = self._kept, None
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None
            if kept is not None:
                kept.closing = True
                if kept.users == 0:
                    kept.close()

    def _forget_kept(self) -> None:
        """Drop the kept file without closing it (it belongs to another process)."""
        self._kept = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    # -- pickling: never carry a handle ------------------------------------
    def __getstate__(self) -> dict:
        return {"path": self.path, "keep_open": self.keep_open, "use_mmap": self.use_mmap,
                "required_size": self.required_size, "fingerprint": self.fingerprint}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], keep_open=state["keep_open"],
                      required_size=state["required_size"], fingerprint=state["fingerprint"],
                      use_mmap=state["use_mmap"])

    def clone(self) -> "PathOpener":
        """A new opener with the same policy and identity, sharing no handle."""
        return PathOpener(self.path, keep_open=self.keep_open, use_mmap=self.use_mmap,
                          required_size=self.required_size, fingerprint=self.fingerprint)


class _KeptAccess:
    """One access to a kept file: yields its byte source, gives the file back on exit."""

    __slots__ = ("_opener", "_opened")

    def __init__(self, opener: PathOpener, opened: OpenFile) -> None:
        self._opener = opener
        self._opened = opened

    def __enter__(self) -> ByteSource:
        return self._opened.source

    def __exit__(self, *exc_info: Any) -> None:
        self._opener._release(self._opened)


def make_opener(file_like: Any, *, keep_open: bool, required_size: Optional[int],
                use_mmap: bool = False, seen: Optional[FileSeen] = None) -> Opener:
    """The opener for ``file_like``: a registered factory's, else a path's or file object's.

    Factories registered with :func:`~proxylib.io.protocol.register_opener`
    (remote files, see :mod:`proxylib.io.remote`) are asked first. A path's
    opener starts from ``seen`` (see :meth:`PathOpener.from_seen`) when given,
    else from a ``stat`` of the path now.
    """
    if not isinstance(file_like, (bytes, os.PathLike)):
        claimed = registered_opener_for(file_like)  # a URL, an fsspec file, ...
        if claimed is not None:
            return claimed
    if isinstance(file_like, (str, bytes, os.PathLike)):
        if seen is not None:
            return PathOpener.from_seen(file_like, seen, keep_open=keep_open,
                                        required_size=required_size, use_mmap=use_mmap)
        opener = PathOpener(file_like, keep_open=keep_open, required_size=required_size,
                            use_mmap=use_mmap)
        opener.remember_current_file()
        return opener
    return FileObjectOpener(file_like)


__all__ = ["PathOpener", "FileObjectOpener", "HandlelessOpener", "make_opener", "lock_for",
           "FileIdentity", "MissingFileError", "FileAccessError", "require_regular_file"]
