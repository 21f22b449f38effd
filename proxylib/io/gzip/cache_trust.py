"""Whether a saved-index cache can be trusted, and the key that signs its files.

A saved index tells the reader where to restart decompression and what the
32 KiB before that point were; a forged one makes reads return wrong values
without any error. So an index is used only when

* the cache directory (and its ``gzip`` folder) belongs to this user and is
  not writable by others, unless it has the sticky bit (as ``/tmp`` has),
  and the index file belongs to this user; otherwise it is ignored with one
  :class:`~proxylib.errors.IndexCacheWarning`, and nothing is saved there;
* its content verifies against a keyed MAC (HMAC-SHA256) made with a per-user
  secret, ``<cache dir>/secret.key`` (32 random bytes, created mode 0600). A
  file written by someone else, or edited and re-checksummed, fails to verify
  and is rebuilt.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import stat
import sys
import threading
import warnings
from pathlib import Path
from typing import Optional

from ...errors import IndexCacheWarning

SECRET_NAME = "secret.key"
SECRET_BYTES = 32
#: Bytes of an HMAC-SHA256 kept per window (128 bits).
WINDOW_MAC_BYTES = 16

_lock = threading.Lock()
_warned: "set[str]" = set()


def warn_untrusted(path: Path, reason: str) -> None:
    """One warning per path: the cache at ``path`` is not used, and why."""
    with _lock:
        if str(path) in _warned:
            return
        _warned.add(str(path))
    warnings.warn(f"proxylib: the gzip index cache {path} is not used: {reason}; reads work "
                  "without it. Set PROXYLIB_CACHE_DIR to a private directory.",
                  IndexCacheWarning, stacklevel=5)


def reset_warnings() -> None:
    """Allow the untrusted-cache warnings to be given again (for tests)."""
    with _lock:
        _warned.clear()


def _owned_by_me(st: os.stat_result) -> bool:
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()


def unsafe_reason(st: os.stat_result, what: str) -> Optional[str]:
    """Why a cache directory or file with status ``st`` must not be trusted (None: fine)."""
    if sys.platform == "win32":
        return None
    if not _owned_by_me(st):
        return f"{what} belongs to another user (uid {st.st_uid})"
    if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        return f"{what} is writable by every user and has no sticky bit"
    if not stat.S_ISDIR(st.st_mode) and st.st_mode & (stat.S_IWOTH | stat.S_IWGRP):
        return f"{what} is writable by other users"
    return None


def trusted_directory(root: Path, folder: Path, create: bool) -> bool:
    """Whether ``folder`` (inside cache dir ``root``) may hold indexes; made 0700 if ``create``."""
    if create:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return False
    for where, what in ((root, "the cache directory"), (folder, "its gzip folder")):
        try:
            st = os.stat(where)
        except OSError:
            return False
        reason = unsafe_reason(st, what)
        if reason is not None:
            warn_untrusted(where, reason)
            return False
    return True


def secret(root: Path, create: bool) -> Optional[bytes]:
    """This user's MAC key in ``root``, created (0600) if ``create``; None if unusable."""
    path = root / SECRET_NAME
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        if not create:
            return None
        return _create_secret(path)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        reason = unsafe_reason(st, "its secret.key")
        if reason is None and sys.platform != "win32" and st.st_mode & 0o077:
            reason = "its secret.key is readable by other users"
        if reason is not None:
            warn_untrusted(path, reason)
            return None
        key = os.read(fd, SECRET_BYTES + 1)
    finally:
        os.close(fd)
    return key if len(key) == SECRET_BYTES else None


def _create_secret(path: Path) -> Optional[bytes]:
    key = os.urandom(SECRET_BYTES)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
    except FileExistsError:        # another process made it first: use theirs
        return secret(path.parent, create=False)
    except OSError:
        return None
    try:
        os.write(fd, key)
    except OSError as err:
        os.close(fd)
        if err.errno != errno.EINTR:
            return None
        raise
    os.close(fd)
    return key


def mac(key: bytes, *parts: bytes) -> str:
    """HMAC-SHA256 of the parts (each length-prefixed), as hex."""
    digest = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def window_mac(key: bytes, rank: int, blob: bytes) -> bytes:
    """The MAC of one saved window (its rank and its stored bytes)."""
    return hmac.new(key, rank.to_bytes(8, "little") + bytes(blob),
                    hashlib.sha256).digest()[:WINDOW_MAC_BYTES]


__all__ = ["warn_untrusted", "trusted_directory", "secret", "mac", "window_mac", "unsafe_reason",
           "reset_warnings", "WINDOW_MAC_BYTES"]
