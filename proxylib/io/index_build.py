"""``proxylib.build_index``: gzip seek indexes built ahead of time and saved.

The index format and cache live in :mod:`.index_cache`; building one needs
the gzip codec (:mod:`.gzip`), which itself saves through the cache, so the
public entry point sits above both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Optional, Union

from .gzip_build import build_full_index

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
        The file cannot be read, is not gzip, or its data are truncated or corrupt
        (nothing is saved then); FileChangedError if it changed during the build.
    """
    return build_full_index(os.fsdecode(os.fspath(path)), spacing=spacing, force=force).where


def build_indexes(paths: Iterable[PathLike], *, spacing: Optional[int] = None,
                  force: bool = False) -> List[Optional[Path]]:
    """:func:`build_index` for each path in turn; returns the saved locations."""
    return [build_index(path, spacing=spacing, force=force) for path in paths]


__all__ = ["build_index", "build_indexes"]
