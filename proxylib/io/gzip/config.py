"""The settings of gzip reading, passed in as one frozen object.

A :class:`GzipConfig` is handed to every gzip state, engine and index build
(``GzipRegistry(config)``, ``build_full_index(path, config=...)``,
``RemoteGzipFile(..., gzip_config=...)``); nothing reads module globals at read
time, so a test or a benchmark chooses its settings by building one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Optional

#: Uncompressed bytes between seek points. 256 KiB: with isal jumps a voxel
#: time series (100 jumps) on the 100^4 float32 benchmark volume takes
#: 79/63/40/27 ms at 1024/512/256/128 KiB (nibabel: about 600 ms), while the
#: saved index (which is also what a process holds: points plus deflated
#: windows) is 1.6/3.3/6.6/13.1 MiB; 256 KiB is the widest spacing that
#: meets the 0.1x target with margin (python /tmp/gzbench/exp5.py SPACING_KIB).
INDEX_SPACING = 256 * 1024
#: Compressed bytes indexed_gzip asks for per read call.
READBUF = 256 * 1024
#: Largest buffer given to indexed_gzip for a file with huge member headers
#: (larger ones are read by streaming only).
MAX_READBUF = 64 << 20
#: A read ending this close (compressed bytes) to the end of the file goes on
#: to the end, holding at most SETTLE_HOLD bytes, so the last CRC is checked.
SETTLE_WITHIN = 1 << 20
SETTLE_HOLD = 8 << 20


def default_threads() -> int:
    """``PROXYLIB_GZIP_THREADS`` if set (at least 1), else the usable cores."""
    text = os.environ.get("PROXYLIB_GZIP_THREADS", "").strip()
    if text:
        try:
            return max(1, int(text))
        except ValueError:
            pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class GzipConfig:
    """How gzip files are indexed and read.

    ``spacing``: uncompressed bytes between seek points. ``jump``: a read at
    most this far beyond a cursor streams on instead of jumping (negative: one
    spacing; streaming one spacing with isal costs about what a jump does).
    ``threads``: threads for large reads with a complete index (None:
    :func:`default_threads`, read by :meth:`resolved` when a file's state is
    made, so the environment variable set before a file's first read counts). ``readbuf`` and
    ``max_readbuf``: indexed_gzip's read buffer and how far it may grow for
    long member headers. ``settle_within``/``settle_hold``: see
    :data:`SETTLE_WITHIN`.
    """

    spacing: int = INDEX_SPACING
    jump: int = -1
    threads: Optional[int] = None
    readbuf: int = READBUF
    max_readbuf: int = MAX_READBUF
    settle_within: int = SETTLE_WITHIN
    settle_hold: int = SETTLE_HOLD

    def __post_init__(self) -> None:
        if self.jump < 0:
            object.__setattr__(self, "jump", self.spacing)
        if (self.spacing <= 0 or self.readbuf <= 0
                or self.threads is not None and self.threads < 1):
            raise ValueError(f"invalid gzip settings: {self}")

    def resolved(self) -> "GzipConfig":
        """This config with the thread count filled in."""
        return self if self.threads is not None else replace(self, threads=default_threads())


__all__ = ["GzipConfig", "INDEX_SPACING", "default_threads"]
