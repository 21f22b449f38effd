"""One identity type for every byte source: what names one version of one file.

A :class:`FileIdentity` serves three purposes, for plain, gzip, bzip2,
Zstandard and remote files alike:

* a live proxy compares the identity of each access with the first one it
  saw and raises :class:`~proxylib.errors.FileChangedError` on any difference;
* process-wide decompressor states (stream cursors, gzip seek indexes) are
  kept per identity, so a rewritten file never continues an old cursor;
* a saved gzip index is filed under, and repeats, the identity with
  :attr:`~FileIdentity.content` filled in, and is used only for an equal one.

For a local file the stat part is size, inode, device, mtime and ctime. ctime
matters: a same-size rewrite whose mtime was put back (``cp -p``, ``touch -r``,
``rsync --inplace -t``) keeps the other four, and no call can set the ctime
back. ``content`` (a SHA-256 of the first and last :data:`EDGE_BYTES`) is
added only where an identity outlives the process, for saved indexes. A
remote file has no inode or ctime: its identity is its URL (``location``),
version (ETag or Last-Modified), size and the content digest of its
compressed edges.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Dict, NamedTuple

from .positional import pread

#: Bytes hashed at each end of a local file for :attr:`FileIdentity.content`.
EDGE_BYTES = 64 * 1024


class FileIdentity(NamedTuple):
    """What names one version of one file (see the module docstring)."""

    size: int
    inode: int = 0
    device: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    #: SHA-256 of the file's edges; '' until :meth:`with_content` (live checks skip it).
    content: str = ""
    #: A remote file's URL ('' for a local file).
    location: str = ""
    #: A remote file's version: its ETag or Last-Modified ('' for a local file).
    version: str = ""

    @classmethod
    def of_stat(cls, st: os.stat_result) -> "FileIdentity":
        """The stat part of a local file's identity (no read: this runs on every access)."""
        # tuple.__new__ directly: the generated __new__ is a Python call
        return tuple.__new__(cls, (st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns,
                                   st.st_ctime_ns, "", "", ""))

    @classmethod
    def of_descriptor(cls, fd: int) -> "FileIdentity":
        """The full identity (content digest included) of the open local file ``fd``."""
        return cls.of_stat(os.fstat(fd)).with_content(fd)

    @classmethod
    def of_path(cls, path: "os.PathLike[str] | str") -> "FileIdentity":
        """The full identity of the local file at ``path`` (opened and closed here)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            return cls.of_descriptor(fd)
        finally:
            os.close(fd)

    @classmethod
    def remote(cls, location: str, size: int, version: str, content: str = "") -> "FileIdentity":
        """The identity of a remote file."""
        return cls(size=size, content=content, location=location, version=version)

    def with_content(self, fd: int) -> "FileIdentity":
        """This identity with the digest of ``fd``'s first and last EDGE_BYTES, hashed
        once per stat identity in a process (a per-access reader must not pay 128 KiB
        of reading for every access)."""
        if self.content:
            return self
        with _DIGEST_GUARD:
            known = _DIGESTS.get(self)
        if known is None:
            digest = hashlib.sha256(pread(fd, min(EDGE_BYTES, self.size), 0))
            tail_start = max(0, self.size - EDGE_BYTES)
            digest.update(pread(fd, self.size - tail_start, tail_start))
            known = digest.hexdigest()
            with _DIGEST_GUARD:
                _DIGESTS[self] = known
                while len(_DIGESTS) > _DIGEST_LIMIT:
                    _DIGESTS.pop(next(iter(_DIGESTS)))
        return self._replace(content=known)

    @property
    def key(self) -> str:
        """A short hash of every field: the file name of a saved index."""
        text = ":".join(str(field) for field in self)
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def differences(self, other: "FileIdentity") -> str:
        """What changed from this identity to ``other``, in words."""
        changes = []
        if self.size != other.size:
            changes.append(f"size {self.size} -> {other.size} bytes")
        if (self.inode, self.device, self.location) != (other.inode, other.device,
                                                        other.location):
            changes.append("replaced by another file (inode changed)")
        if self.mtime_ns != other.mtime_ns:
            changes.append("modified (mtime changed)")
        elif self.ctime_ns != other.ctime_ns:
            changes.append("rewritten or its attributes changed (ctime changed, mtime put back)")
        if self.version != other.version:
            changes.append(f"version {self.version!r} -> {other.version!r}")
        if self.content and other.content and self.content != other.content:
            changes.append("content changed")
        return ", ".join(changes) or "identity changed"


#: Identity of a file that could not be looked at (deleted or unreadable): a change.
UNREADABLE = FileIdentity(-1, -1, -1, -1, -1)

_DIGESTS: Dict[FileIdentity, str] = {}
_DIGEST_GUARD = threading.Lock()
_DIGEST_LIMIT = 256


def _new_digest_guard() -> None:
    global _DIGEST_GUARD
    _DIGEST_GUARD = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_digest_guard)


def stat_identity(fd: int) -> FileIdentity:
    """The stat identity of the open local file ``fd``."""
    return FileIdentity.of_stat(os.fstat(fd))


def path_and_descriptor_unchanged(path: str, fd: int, before: FileIdentity) -> bool:
    """True if both the descriptor and the path still show the stat identity ``before``."""
    try:
        at_path = FileIdentity.of_stat(os.stat(path))
    except OSError:
        return False
    return stat_identity(fd) == at_path == before._replace(content="")


__all__ = ["FileIdentity", "EDGE_BYTES", "UNREADABLE", "stat_identity",
           "path_and_descriptor_unchanged"]
