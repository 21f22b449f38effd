"""Saved gzip seek indexes: where they live, how they are tied to a file.

An index is saved as ``<cache dir>/gzip/<key>.pxgzi``; the cache directory is

1. ``$PROXYLIB_CACHE_DIR`` when set,
2. else ``$XDG_CACHE_HOME/proxylib`` when ``XDG_CACHE_HOME`` is set,
3. else ``~/.cache/proxylib`` (``%LOCALAPPDATA%\\proxylib`` on Windows).

``key`` is a hash of the file's *identity*: its size, its mtime and a SHA-256
of its first and last 64 KiB. The saved file repeats that identity and a
SHA-256 of the index payload in a header; an index whose header does not
match the file being read (stale, foreign, truncated or damaged) is ignored
and rebuilt, so a saved index can make reads faster but never wrong.

Failures to write (read-only or full disk, no permission) never fail a read:
they give one :class:`IndexCacheWarning` per process.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import tempfile
import threading
import warnings
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Union

#: Bytes hashed at each end of the file for its identity.
EDGE_BYTES = 64 * 1024
_MAGIC = b"PXGZIDX\x01"
_HEADER = struct.Struct("<8sI")  # magic, length of the JSON header


try:  # python-isal inflates the saved windows about 3x faster than zlib (same format)
    from isal import isal_zlib as _deflate  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - isal is optional
    _deflate = zlib  # type: ignore[assignment]


class IndexCacheWarning(UserWarning):
    """The gzip index cache could not be written; reads still work."""


@dataclass(frozen=True)
class FileIdentity:
    """What ties a saved index to one version of one file."""

    size: int
    mtime_ns: int
    edges_sha256: str

    @classmethod
    def of_descriptor(cls, fd: int) -> "FileIdentity":
        """The identity of the open file, hashed once per (device, inode, size, mtime).

        A reader with keep_file_open=False opens the file on every access;
        hashing 128 KiB each time would cost more than many reads.
        """
        st = os.fstat(fd)
        stat_key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with _IDENTITY_GUARD:
            known = _IDENTITIES.get(stat_key)
        if known is not None:
            return known
        identity = cls._hashed(fd, st)
        with _IDENTITY_GUARD:
            _IDENTITIES[stat_key] = identity
            while len(_IDENTITIES) > _IDENTITY_LIMIT:
                _IDENTITIES.pop(next(iter(_IDENTITIES)))
        return identity

    @classmethod
    def _hashed(cls, fd: int, st: os.stat_result) -> "FileIdentity":
        digest = hashlib.sha256()
        digest.update(os.pread(fd, min(EDGE_BYTES, st.st_size), 0))
        tail_start = max(0, st.st_size - EDGE_BYTES)
        digest.update(os.pread(fd, st.st_size - tail_start, tail_start))
        return cls(st.st_size, st.st_mtime_ns, digest.hexdigest())

    @property
    def key(self) -> str:
        text = f"{self.size}:{self.mtime_ns}:{self.edges_sha256}"
        return hashlib.sha256(text.encode()).hexdigest()[:40]


_IDENTITIES: "dict[tuple, FileIdentity]" = {}
_IDENTITY_GUARD = threading.Lock()
_IDENTITY_LIMIT = 256


def _new_identity_guard() -> None:
    global _IDENTITY_GUARD
    _IDENTITY_GUARD = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_identity_guard)


def cache_dir() -> Path:
    """The directory saved indexes go to (see the module docstring)."""
    explicit = os.environ.get("PROXYLIB_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "proxylib"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "proxylib"
    return Path.home() / ".cache" / "proxylib"


def index_path(identity: FileIdentity, directory: Optional[Path] = None) -> Path:
    """Where the index of the file with ``identity`` is saved."""
    return (directory or cache_dir()) / "gzip" / f"{identity.key}.pxgzi"


_warned = False
_warn_lock = threading.Lock()


def _warn_once(message: str) -> None:
    global _warned
    with _warn_lock:
        if _warned:
            return
        _warned = True
    warnings.warn(message, IndexCacheWarning, stacklevel=4)


def reset_warning() -> None:
    """Allow the unwritable-cache warning to be given again (for tests)."""
    global _warned
    with _warn_lock:
        _warned = False


def save_index(identity: FileIdentity, payload: bytes, *, spacing: int, points: int,
               complete: bool, directory: Optional[Path] = None) -> Optional[Path]:
    """Write an exported index atomically; warn once and return None on failure."""
    target = index_path(identity, directory)
    packed = _deflate.compress(payload, 1)
    header = json.dumps({
        "identity": asdict(identity), "spacing": spacing, "points": points,
        "complete": complete, "payload_sha256": hashlib.sha256(packed).hexdigest(),
        "payload_size": len(packed),
    }).encode()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-",
                                             suffix=".pxgzi")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(_HEADER.pack(_MAGIC, len(header)))
                out.write(header)
                out.write(packed)
            os.replace(temporary, target)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
    except OSError as err:
        _warn_once(
            f"proxylib: cannot save the gzip index in {target.parent} ({err.strerror or err}); "
            "reads still work but a later process will rebuild the index. Set "
            "PROXYLIB_CACHE_DIR to a writable directory to keep indexes.")
        return None
    return target


@dataclass(frozen=True)
class SavedIndex:
    payload: bytes
    spacing: int
    points: int
    complete: bool


def load_index(identity: FileIdentity, directory: Optional[Path] = None) -> Optional[SavedIndex]:
    """The saved index for ``identity``, or None if absent or not trustworthy."""
    target = index_path(identity, directory)
    try:
        with open(target, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    try:
        magic, length = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            return None
        header = json.loads(data[_HEADER.size:_HEADER.size + length])
        packed = data[_HEADER.size + length:]
        if (header["identity"] != asdict(identity)
                or header["payload_size"] != len(packed)
                or header["payload_sha256"] != hashlib.sha256(packed).hexdigest()):
            return None
        return SavedIndex(_deflate.decompress(packed), int(header["spacing"]),
                          int(header["points"]), bool(header["complete"]))
    except Exception:  # any damage means: not trustworthy, rebuild
        return None


def discard_index(identity: FileIdentity, directory: Optional[Path] = None) -> None:
    """Remove a saved index that turned out to be unusable."""
    try:
        os.unlink(index_path(identity, directory))
    except OSError:
        pass


PathLike = Union[str, os.PathLike]


def build_index(path: PathLike, *, spacing: Optional[int] = None, force: bool = False) -> Optional[Path]:
    """Build the full seek index of a gzip file and save it in the cache.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.gz`` file (recognised by its magic bytes, not its name).
    spacing : int, optional
        Uncompressed bytes between seek points; default
        :data:`proxylib.io.gzip.INDEX_SPACING`.
    force : bool
        Rebuild even when a valid complete index is already saved.

    Returns
    -------
    pathlib.Path or None
        Where the index was saved, or None if the cache directory is not
        writable (an :class:`IndexCacheWarning` says why).

    Raises
    ------
    proxylib.ProxyReadError
        The file cannot be read, is not gzip, or its data are truncated or corrupt.
    """
    from .gzip import build_full_index
    return build_full_index(os.fsdecode(os.fspath(path)), spacing=spacing, force=force)


def build_indexes(paths: Iterable[PathLike], *, spacing: Optional[int] = None,
                  force: bool = False) -> List[Optional[Path]]:
    """:func:`build_index` for each path in turn; returns the saved locations."""
    return [build_index(path, spacing=spacing, force=force) for path in paths]


__all__ = ["FileIdentity", "IndexCacheWarning", "cache_dir", "index_path", "save_index",
           "load_index", "discard_index", "build_index", "build_indexes"]
