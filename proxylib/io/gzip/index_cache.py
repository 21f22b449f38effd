"""Saved gzip seek indexes: where they live, how they are tied to a file.

An index is saved as ``<cache dir>/gzip/<key>.pxgzi``; the cache directory is

1. ``$PROXYLIB_CACHE_DIR`` when set,
2. else ``$XDG_CACHE_HOME/proxylib`` when ``XDG_CACHE_HOME`` is set,
3. else ``~/.cache/proxylib`` (``%LOCALAPPDATA%\\proxylib`` on Windows).

``key`` is a hash of the file's :class:`~proxylib.io.identity.FileIdentity`:
its size, mtime, ctime, inode, device and a SHA-256 of its first and last
64 KiB (a rewrite of the middle with the size and mtime put back still changes
the ctime); for a remote file its URL, version, size and edge digest. The saved file
repeats that identity in a header that is authenticated, with the seek points
and a MAC per window, by an HMAC-SHA256 under a per-user secret
(:mod:`proxylib.io.gzip.cache_trust`, which also refuses other users' and shared
directories). Each 32 KiB window is deflated on its own and verified when a
jump first needs it, so a later process loads an index in about a
millisecond whatever its spacing. An index that does not verify (stale,
foreign, forged, truncated or damaged) is ignored and rebuilt, so a saved
index can make reads faster but never wrong.

Failures to write (read-only or full disk, no permission) never fail a read:
they give one :class:`IndexCacheWarning` per process.
"""

from __future__ import annotations

import hmac
import json
import os
import struct
import sys
import threading
import warnings
import zlib
from pathlib import Path
from typing import List, Optional

import numpy as np

from ...errors import DamagedIndexError, IndexCacheWarning
from . import cache_trust
from ..atomic import replacing
from ..identity import FileIdentity

_MAGIC = b"PXGZIDX\x04"  # 4: the identity is a proxylib.io.identity.FileIdentity
#: indexed_gzip's export: a 35-byte header, 18 bytes per point, then 32 KiB
#: windows for the points flagged as having one.
_EXPORT_HEAD = 35
_EXPORT_POINT = 18
_WINDOW = 32 * 1024
_HEADER = struct.Struct("<8sI")  # magic, length of the JSON header


try:  # python-isal inflates the saved windows about 3x faster than zlib (same format)
    from isal import isal_zlib as _deflate  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - isal is optional
    _deflate = zlib  # type: ignore[assignment]


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


def split_export(payload: bytes) -> "tuple[bytes, List[memoryview]]":
    """An export's head (header and points) and its windows."""
    count = struct.unpack_from("<I", payload, _EXPORT_HEAD - 4)[0]
    head = _EXPORT_HEAD + count * _EXPORT_POINT
    view = memoryview(payload)
    return bytes(view[:head]), [view[at:at + _WINDOW] for at in range(head, len(payload), _WINDOW)]


def save_index(identity: FileIdentity, payload: bytes, *, spacing: int, points: int,
               complete: bool, directory: Optional[Path] = None) -> Optional["SavedIndex"]:
    """Write an exported index atomically and return it as saved (its ``where`` is the
    file); warn once and return None on failure.

    The points are stored as they are; each 32 KiB window is deflated on its own
    (zlib format, so its Adler-32 is checked when it is inflated), so a later
    process reads the points and inflates only the windows its jumps use.
    """
    target = index_path(identity, directory)
    root = target.parent.parent
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        _cannot_save(target, err)
        return None
    if not cache_trust.trusted_directory(root, target.parent, create=False):
        return None                        # warned: another user's or a shared directory
    key = cache_trust.secret(root, create=True)
    if key is None:
        _warn_once(f"proxylib: cannot keep a secret key in {root}; gzip indexes are not "
                   "saved. Set PROXYLIB_CACHE_DIR to a writable private directory.")
        return None
    head, windows = split_export(payload)
    packed = [_deflate.compress(window, 1) for window in windows]
    ends = np.cumsum([0] + [len(blob) for blob in packed], dtype="<u8")
    macs = b"".join(cache_trust.window_mac(key, rank, blob) for rank, blob in enumerate(packed))
    table = head + ends.tobytes() + macs
    fields = {
        "identity": identity._asdict(), "spacing": spacing, "points": points,
        "complete": complete, "table_size": len(table), "windows": len(packed),
        "windows_size": int(ends[-1]),
    }
    fields["mac"] = cache_trust.mac(key, json.dumps(fields, sort_keys=True).encode(), table)
    header = json.dumps(fields).encode()
    try:
        with replacing(str(target), suffix=".pxgzi", keep_mode=False) as out:
            out.write(_HEADER.pack(_MAGIC, len(header)))
            out.write(header)
            out.write(table)
            for blob in packed:
                out.write(blob)
    except OSError as err:
        _cannot_save(target, err)
        return None
    return SavedIndex(head, ends, memoryview(b"".join(packed)), spacing=spacing, points=points,
                      complete=complete, key=key, macs=macs, where=target)


def _cannot_save(target: Path, err: OSError) -> None:
    _warn_once(
        f"proxylib: cannot save the gzip index in {target.parent} ({err.strerror or err}); "
        "reads still work but a later process will rebuild the index. Set "
        "PROXYLIB_CACHE_DIR to a writable directory to keep indexes.")


class SavedIndex:
    """A saved index: its points at once, each window inflated when asked for."""

    def __init__(self, head: bytes, ends: np.ndarray, blobs: memoryview, *, spacing: int,
                 points: int, complete: bool, key: bytes, macs: bytes, where: Path) -> None:
        self.where = where
        self.head = head
        self._ends = ends
        self._blobs = blobs
        self._key = key
        self._macs = macs
        self.spacing = spacing
        self.points = points
        self.complete = complete

    def window(self, rank: int) -> bytes:
        """The ``rank``-th saved window; DamagedIndexError if it fails its MAC or checksum."""
        blob = self._blobs[int(self._ends[rank]):int(self._ends[rank + 1])]
        size = cache_trust.WINDOW_MAC_BYTES
        if not hmac.compare_digest(cache_trust.window_mac(self._key, rank, blob),
                                   self._macs[rank * size:(rank + 1) * size]):
            raise DamagedIndexError(f"saved gzip index window {rank} fails its MAC")
        try:
            window = _deflate.decompress(blob)
        except Exception as err:
            raise DamagedIndexError(f"saved gzip index window {rank} is damaged: {err}") from err
        if len(window) != _WINDOW:
            raise DamagedIndexError(f"saved gzip index window {rank} has {len(window)} bytes")
        return window

    @property
    def windows(self) -> int:
        return len(self._ends) - 1

    @property
    def payload(self) -> bytes:
        """The whole export, as indexed_gzip's import_index reads it."""
        return self.head + b"".join(self.window(r) for r in range(len(self._ends) - 1))


def load_index(identity: FileIdentity, directory: Optional[Path] = None) -> Optional[SavedIndex]:
    """The saved index for ``identity``, or None if absent or not trustworthy."""
    target = index_path(identity, directory)
    root = target.parent.parent
    try:
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        reason = cache_trust.unsafe_reason(os.fstat(fd), "a saved index in it")
        if reason is not None:
            cache_trust.warn_untrusted(target, reason)
            return None
        if not cache_trust.trusted_directory(root, target.parent, create=False):
            return None
        key = cache_trust.secret(root, create=False)
        if key is None:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read()
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        magic, length = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            return None
        header = json.loads(data[_HEADER.size:_HEADER.size + length])
        start = _HEADER.size + length
        table = data[start:start + header["table_size"]]
        count = int(header["windows"])
        blobs = memoryview(data)[start + len(table):]
        claimed = header.pop("mac")
        if (header["identity"] != identity._asdict()
                or len(table) != header["table_size"]
                or not hmac.compare_digest(claimed, cache_trust.mac(
                    key, json.dumps(header, sort_keys=True).encode(), table))
                or len(blobs) != header["windows_size"]):
            return None
        macs_size = cache_trust.WINDOW_MAC_BYTES * count
        head_size = len(table) - 8 * (count + 1) - macs_size
        ends = np.frombuffer(table, "<u8", count + 1, head_size)
        points = struct.unpack_from("<I", table, _EXPORT_HEAD - 4)[0]
        if (head_size != _EXPORT_HEAD + points * _EXPORT_POINT or ends[0] != 0
                or np.any(np.diff(ends.astype(np.int64)) <= 0) or int(ends[-1]) != len(blobs)):
            return None
        return SavedIndex(table[:head_size], ends, blobs, spacing=int(header["spacing"]),
                          points=int(header["points"]), complete=bool(header["complete"]),
                          key=key, macs=table[len(table) - macs_size:], where=target)
    except Exception:  # any damage means: not trustworthy, rebuild
        return None


def discard_index(identity: FileIdentity, directory: Optional[Path] = None) -> None:
    """Remove a saved index that turned out to be unusable."""
    try:
        os.unlink(index_path(identity, directory))
    except OSError:
        pass


__all__ = ["IndexCacheWarning", "SavedIndex", "DamagedIndexError", "cache_dir",
           "index_path", "split_export", "save_index", "load_index", "discard_index"]
