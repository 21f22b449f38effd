"""Writing a file so that readers only ever see the old or the whole new one.

The new content goes to a temporary file beside the target, named
``.proxylib-<host>-<pid>-<random><suffix>``, which is moved onto the target
when writing succeeded and removed when it failed. A process killed while
writing (SIGKILL, the OOM killer) cannot remove its temporary file, so the
first :func:`replacing` of each process in a folder removes the temporaries
of processes of this host that no longer run (once per folder and process:
listing a folder of 10,000 files takes about 18 ms).

The temporary name is short whatever the target's length: the suffix is
at most :data:`MAX_SUFFIX` characters, so a target name of up to NAME_MAX
bytes always has a temporary name that fits too.
"""

from __future__ import annotations

import os
import secrets
import socket
import zlib
from contextlib import contextmanager
from typing import BinaryIO, Iterator, Set

PREFIX = ".proxylib-"
#: Longest suffix kept in a temporary name (".nii.gz" and the like fit).
MAX_SUFFIX = 16
_OPEN_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_BINARY", 0))


#: Folders this process has swept of dead processes' temporaries.
_swept: Set[str] = set()


def _host_tag() -> str:
    """Eight hex digits naming this host, so a shared folder's temporaries of
    processes on other machines are never taken for dead ones."""
    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'surrogateescape')):08x}"


def temporary_name(folder: str, suffix: str = "") -> str:
    """A fresh temporary path in ``folder`` that records this host and process."""
    suffix = suffix[-MAX_SUFFIX:] if len(suffix) > MAX_SUFFIX else suffix
    return os.path.join(folder, f"{PREFIX}{_host_tag()}-{os.getpid()}-"
                                f"{secrets.token_hex(4)}{suffix}")


def _owner_pid(name: str, host: str) -> int:
    """The pid recorded in a temporary name of this host, or 0 if it is none of ours."""
    if not name.startswith(PREFIX):
        return 0
    parts = name[len(PREFIX):].split("-", 2)
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return 0
    return int(parts[1])


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return True
    return True


def remove_stale_temporaries(folder: str) -> int:
    """Remove the temporaries in ``folder`` left by dead processes of this host.

    Returns how many were removed. Files of live processes, of other hosts
    and of other programs are never touched; errors (a folder that cannot be
    listed, a file removed meanwhile) are ignored.
    """
    host, removed = _host_tag(), 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        pid = _owner_pid(entry.name, host)
        if pid <= 0 or pid == os.getpid() or _is_running(pid):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            pass
    return removed


@contextmanager
def replacing(target: str, *, suffix: str = "", keep_mode: bool = True) -> Iterator[BinaryIO]:
    """A binary file written beside ``target`` and moved onto it when the block ends.

    A failed write leaves no half file, and writing over a file that is being
    read is safe. ``keep_mode``: give the new file the mode a plain
    ``open(target, 'wb')`` would have given it (else a private 0o600).
    Errors name ``target``, not the temporary file.
    """
    folder = os.path.dirname(os.path.abspath(target))
    if folder not in _swept:
        remove_stale_temporaries(folder)
        _swept.add(folder)
    while True:
        temporary = temporary_name(folder, suffix)
        try:
            handle = os.open(temporary, _OPEN_FLAGS, 0o600)
            break
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        except OSError as err:
            raise type(err)(err.errno, f"{target}: cannot write here: {err.strerror}") from err
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
        if keep_mode:
            os.chmod(temporary, _mode_for(target))
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _mode_for(target: str) -> int:
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


__all__ = ["replacing", "remove_stale_temporaries", "temporary_name", "PREFIX"]
