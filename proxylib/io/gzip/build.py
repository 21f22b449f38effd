"""Building the full seek index of a local gzip file, saved only when it is sound
(``proxylib.build_index``).

An index is saved only for what was really read: indexed_gzip builds the
points (with a read buffer large enough for the file's member headers), then
a :class:`~proxylib.io.gzip.members.MemberCursor` inflates from the last point
to the end of the data, so a truncated file (no final trailer) or a damaged
last member raises instead of giving a "complete" index. The file's identity
is checked before and after (same inode, size, mtime and ctime through the
descriptor and the path), so an index is never saved under an identity that a
rewrite during the build made stale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Union

from ...errors import FileChangedError, ProxyReadError
from . import index_cache, jump
from .index import GzipIndex
from .members import DescriptorBytes, MemberCursor
from .source import GZIP_MAGIC, STATES, GzipRegistry
from .state import GzipState
from ..identity import FileIdentity, path_and_descriptor_unchanged
from ..paths import open_descriptor
from ..positional import pread


PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_full_index` did: ``action`` is 'built', 'rebuilt' or 'reused'."""

    where: Optional[os.PathLike]
    action: str
    points: int


def _check_unchanged(path: str, fd: int, before: FileIdentity) -> None:
    if not path_and_descriptor_unchanged(path, fd, before):
        raise FileChangedError(
            f"{path}: the file changed while its gzip index was built (size, mtime, ctime or "
            "inode differ); no index was saved, run the build again", path=path)


def _verify_end(index: GzipIndex, fd: int, name: str) -> None:
    """Inflate from the last seek point to the end; raises if the data stop early."""
    points = index.verified_points()
    # the last point may sit at the very end of the data: start at one before it
    last = points.before(int(points.uncompressed[-1]) - 1) if len(points) else -1
    cursor = jump.jump_cursor(points, last, name) if last >= 0 else MemberCursor(name)
    cursor.run_to_end(fd)


def _stream_verdict(state: GzipState, fd: int, err: BaseException) -> None:
    """indexed_gzip failed: let the member walker read the whole file to say why."""
    cursor = MemberCursor(state.name)
    cursor.run_to_end(fd)        # raises the real error (truncation, CRC, bad data)
    if not state.indexed.grow_readbuf(cursor.max_header):
        raise state.indexed.translate(err, 0) from err


def build_full_index(path: str, *, spacing: Optional[int] = None, force: bool = False,
                     registry: GzipRegistry = STATES) -> BuildResult:
    """Build (or reuse) and save the complete index of one gzip file (settings from
    ``registry``'s config; ``spacing`` overrides its spacing)."""
    fd = open_descriptor(path)
    try:
        if pread(fd, 2, 0) != GZIP_MAGIC:
            raise ProxyReadError(f"{path}: not a gzip file (no 1f 8b magic bytes)", path=path)
        identity = FileIdentity.of_descriptor(fd)
        state = registry.state(identity, path)
        with state.lock:
            if spacing is not None and spacing != state.indexed.spacing:
                state.indexed.drop()
                state.indexed.spacing = spacing
                state.index.forget_saved_offer()   # explicit spacing: import no other
            with state.indexed.attached(DescriptorBytes(fd, identity.size)):
                return _build(state, fd, path, identity, force)
    finally:
        os.close(fd)


def _build(state: GzipState, fd: int, path: str, before: FileIdentity,
           force: bool) -> BuildResult:
    had_saved = index_cache.index_path(state.identity).exists()
    reader = state.indexed.open_reader()
    if (not force and state.index.reaches_end(reader)
            and state.index.saved_points == reader.npoints and had_saved):
        _check_unchanged(path, fd, before)
        return BuildResult(index_cache.index_path(state.identity), "reused", reader.npoints)
    for attempt in range(2):
        try:
            reader.build_full_index()
            break
        except Exception as err:
            state.indexed.drop()
            if attempt:
                raise state.indexed.translate(err, 0) from err
            _stream_verdict(state, fd, err)    # raises unless a bigger buffer may help
            state.index.forget_saved_offer()
            reader = state.indexed.open_reader()
    index = GzipIndex.exported(reader, state.identity, complete=True)   # the one export
    _verify_end(index, fd, state.name)
    _check_unchanged(path, fd, before)
    state.index.complete = True
    where = state.index.adopt(index)
    return BuildResult(where, "rebuilt" if had_saved else "built", index.points)


def build_index(path: PathLike, *, spacing: Optional[int] = None, force: bool = False) -> Optional[Path]:
    """Build the full seek index of a gzip file and save it in the cache.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.gz`` file (recognised by its magic bytes, not its name).
    spacing : int, optional
        Uncompressed bytes between seek points; default
        :data:`proxylib.io.gzip.source.INDEX_SPACING`.
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
        The file cannot be read, is not gzip, or its data are truncated or corrupt
        (nothing is saved then); FileChangedError if it changed during the build.
    """
    return build_full_index(os.fsdecode(os.fspath(path)), spacing=spacing, force=force).where


def build_indexes(paths: Iterable[PathLike], *, spacing: Optional[int] = None,
                  force: bool = False) -> List[Optional[Path]]:
    """:func:`build_index` for each path in turn; returns the saved locations."""
    return [build_index(path, spacing=spacing, force=force) for path in paths]


__all__ = ["BuildResult", "build_full_index", "build_index", "build_indexes"]
