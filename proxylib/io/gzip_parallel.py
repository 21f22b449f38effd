"""Large reads of an indexed gzip file, decompressed in parallel threads.

With a complete seek index, the bytes between two seek points can be
decompressed independently. :func:`read_spans` cuts a large read at seek
points into spans and inflates each from its own point in a thread pool,
straight into the caller's buffer. python-isal and zlib release the GIL while
they inflate, so the spans run on separate cores. Extra memory is bounded by
the threads: each holds at most one compressed chunk (1 MiB) and one output
piece (256 KiB) besides its 32 KiB window.

The thread count is passed in; :func:`default_threads` reads
``PROXYLIB_GZIP_THREADS`` and otherwise uses the cores available to the
process.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

from . import gzip_jump
from .gzip_members import DescriptorBytes

#: Reads shorter than this many seek spacings are left to one cursor.
MIN_SPACINGS = 8
#: Spans per thread (more than one evens out spans that compress differently).
SPANS_PER_THREAD = 4


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


def plan_spans(points: "gzip_jump.SeekPoints", offset: int, length: int,
               threads: int) -> List[Tuple[int, int]]:
    """(start, stop) uncompressed spans covering the read, cut at seek points."""
    stop = offset + length
    inside = [int(u) for u in points.uncompressed if offset < u < stop]
    wanted = max(1, threads * SPANS_PER_THREAD)
    step = max(1, len(inside) // wanted) if inside else 1
    cuts = inside[step - 1::step] if inside else []
    edges = [offset, *[c for c in cuts if offset < c < stop], stop]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def worth_it(points: Optional["gzip_jump.SeekPoints"], offset: int, length: int,
             threads: int) -> bool:
    return (threads > 1 and points is not None and points.complete
            and length >= MIN_SPACINGS * points.spacing and len(points) > 2)


def read_spans(points: "gzip_jump.SeekPoints", fd: int, offset: int, view: memoryview,
               name: str, threads: int) -> int:
    """Fill ``view`` from uncompressed ``offset`` in parallel; returns compressed bytes read."""
    spans = plan_spans(points, offset, len(view), threads)
    source = DescriptorBytes(fd)

    def one(span: Tuple[int, int]) -> int:
        start, stop = span
        cursor = gzip_jump.jump_cursor(points, points.before(start), name)
        cursor.readinto(source, start, view[start - offset:stop - offset])
        return cursor.bytes_read

    with ThreadPoolExecutor(max_workers=min(threads, len(spans))) as pool:
        return sum(pool.map(one, spans))


__all__ = ["default_threads", "plan_spans", "read_spans", "worth_it"]
