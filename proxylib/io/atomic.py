"""Writing a file so that readers only ever see the old or the whole new one."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import BinaryIO, Iterator


@contextmanager
def replacing(target: str, *, suffix: str = "", keep_mode: bool = True) -> Iterator[BinaryIO]:
    """A binary file written beside ``target`` and moved onto it when the block ends.

    A failed write leaves no half file, and writing over a file that is being
    read is safe. ``keep_mode``: give the new file the mode a plain
    ``open(target, 'wb')`` would have given it (else mkstemp's private 0o600).
    Errors name ``target``, not the temporary file.
    """
    folder = os.path.dirname(os.path.abspath(target))
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".proxylib-", suffix=suffix)
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
