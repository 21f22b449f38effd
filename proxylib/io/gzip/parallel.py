"""Large reads of an indexed gzip file, inflated span by span, in parallel threads.

With a complete seek index, the bytes between two seek points can be
decompressed independently. :func:`read_runs` cuts a large read at seek
points into spans and inflates each from its own point in a thread pool.

Each span is inflated by ISA-L straight into the caller's buffer
(:mod:`~proxylib.io.gzip.inflate_into`): no output piece becomes a Python object
and nothing is copied under the GIL, so one thread costs what one plain
decompression pass costs and two threads about half (benchmarks/README.md).
That is also why a single thread takes this path (one span) rather than the
streaming cursor, which cost 1.10-1.15x a pass in copies. Where a member ends
inside a span (BGZF, pigz -i, ``cat a.gz b.gz``), the span goes on past the
trailer and the next member's header with a fresh inflater. A span that ISA-L
cannot produce (not installed, bad data) is re-read with the general
:class:`~proxylib.io.gzip.members.MemberCursor`, which walks members and names
errors. Neither path can check a CRC here (a
span never holds a whole member): the index was built by a pass that checked
them, and it serves only the identical file.

Extra memory is bounded per thread: ISA-L's state (192 KiB), one compressed
chunk (1 MiB) and, for the first span, a 256 KiB scratch buffer for the bytes
before the read; the fallback cursor holds one chunk and one 256 KiB output
piece. The result's pages are faulted in by the thread that writes them (numpy
already asks for transparent huge pages for large arrays).

A read may be several runs that follow each other in the file (the planner
cuts a full read into 8 MiB runs straight into the result): they are read as
one, so spans and threads are not re-planned and re-synchronised per run. The
worker threads are kept between reads (starting two threads per 8 MiB read
cost more than the parallelism gained); a forked child makes its own.

The thread count is passed in (``GzipConfig.threads``, by default
:func:`~proxylib.io.gzip.config.default_threads`: ``PROXYLIB_GZIP_THREADS`` or
the cores available to the process).
"""

from __future__ import annotations

import bisect
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, TypeVar

import numpy as np

from . import inflate_into, jump
from ...errors import ProxyReadError
from .config import default_threads
from .members import GZIP_MAGIC, DescriptorBytes, header_end

T = TypeVar("T")

#: Reads shorter than this many seek spacings are left to one cursor.
MIN_SPACINGS = 8
#: Spans per thread (more than one evens out spans that compress differently).
SPANS_PER_THREAD = 4
#: Fewer spans (but one per thread) when they would be shorter than this: each
#: span costs a window, a thread hand-off and a partial skip. An x-slab read of
#: the 400 MB benchmark volume comes in 8 MiB blocks: cut 10 ways each it took
#: 0.32 s of CPU, cut 2 ways 0.29 s (one isal pass: 0.27 s; /tmp/g12f/xslab.py).
MIN_SPAN = 4 << 20


def plan_spans(points: "jump.SeekPoints", offset: int, length: int,
               threads: int) -> List[Tuple[int, int]]:
    """(start, stop) uncompressed spans covering the read, cut at seek points."""
    stop = offset + length
    low, high = np.searchsorted(points.uncompressed, [offset, stop], side="right")
    inside = points.uncompressed[low:high]
    inside = inside[inside < stop]
    wanted = max(1, min(threads * SPANS_PER_THREAD, max(threads, length // MIN_SPAN)))
    picks = sorted({len(inside) * k // wanted for k in range(1, wanted)})
    cuts = [int(inside[i - 1]) for i in picks if 0 < i <= len(inside)]
    edges = [offset, *cuts, stop]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def worth_it(points: Optional["jump.SeekPoints"], offset: int, length: int,
             threads: int) -> bool:
    """Whether a read goes to :func:`read_runs`: with threads, or with one thread when
    ISA-L can inflate straight into the result (one span, no copies)."""
    return ((threads > 1 or inflate_into.available()) and points is not None
            and points.complete
            and length >= MIN_SPACINGS * points.spacing and len(points) > 2)


class _Pool:
    """One shared executor of the asked-for size (remade when the size changes)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.executor: Optional[ThreadPoolExecutor] = None
        self.size = 0

    def get(self, threads: int) -> ThreadPoolExecutor:
        with self.lock:
            return self._get(threads)

    def _get(self, threads: int) -> ThreadPoolExecutor:
        if self.executor is None or self.size != threads:
            old, self.size = self.executor, threads
            self.executor = ThreadPoolExecutor(threads, thread_name_prefix="proxylib-gzip")
            if old is not None:
                old.shutdown(wait=False)       # its queued tasks still run
        return self.executor

    def run(self, threads: int, job: Callable[[T], int], items: Sequence[T]) -> int:
        """Sum of ``job`` over ``items`` on ``threads`` threads. Every job has ended
        before this returns or raises (a failed read's fallback may then rewrite
        the same buffers)."""
        with self.lock:                        # not shut down by another caller meanwhile
            executor = self._get(threads)
            futures = [executor.submit(job, item) for item in items]
        wait(futures)
        return sum(future.result() for future in futures)

    def forget(self) -> None:
        """In a forked child: the parent's threads do not exist here."""
        self.lock = threading.Lock()
        self.executor, self.size = None, 0


POOL = _Pool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=POOL.forget)


def contiguous(offsets: Sequence[int], views: Sequence[memoryview]) -> bool:
    """Whether each run starts where the one before it ends."""
    return all(offsets[i] + len(views[i]) == offsets[i + 1] for i in range(len(views) - 1))


class SpanCounts:
    """How a parallel read's spans were served (tests and benchmarks)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.direct = 0
        self.cursor = 0

    def add(self, direct: bool) -> None:
        with self.lock:
            if direct:
                self.direct += 1
            else:
                self.cursor += 1


SPANS = SpanCounts()


def _pieces(starts: Sequence[int], views: Sequence[memoryview], start: int,
            stop: int) -> Iterator[Tuple[int, memoryview]]:
    """(offset, view) of the parts of the runs in uncompressed [start, stop), in order."""
    run = bisect.bisect_right(starts, start) - 1
    while run < len(starts) and starts[run] < stop:
        first = max(start, starts[run])
        last = min(stop, starts[run] + len(views[run]))
        if last > first:
            yield first, views[run][first - starts[run]:last - starts[run]]
        run += 1


def _next_member(source: DescriptorBytes, name: str) -> Callable[[int], Optional[int]]:
    """For a deflate stream ending at ``end``: where the next member's deflate data
    start (past the 8-byte trailer and the member header), None if no member follows."""
    def after(end: int) -> Optional[int]:
        at = end + 8
        if source.pread(2, at) != GZIP_MAGIC:
            return None
        return header_end(source, at, name)
    return after


def _direct_span(points: "jump.SeekPoints", fd: int, point: int, start: int, stop: int,
                 pieces: Iterator[Tuple[int, memoryview]], name: str) -> int:
    """One span with ISA-L writing into the result (InflateIntoError if it cannot)."""
    row = points.table[point]
    bits = int(row["bits"])
    following = int(np.searchsorted(points.uncompressed, stop, "left"))
    compressed_stop = (int(points.table["compressed"][following]) + 1
                       if following < len(points) else os.fstat(fd).st_size)
    with inflate_into.SpanInflater(
            fd, int(row["compressed"]) - (1 if bits else 0), bits, points.window(point),
            compressed_stop, next_stream=_next_member(DescriptorBytes(fd), name)) as inflater:
        inflater.skip(start - int(points.uncompressed[point]))
        for _, piece in pieces:
            inflater.readinto(piece)
        return inflater.bytes_read


def read_runs(points: "jump.SeekPoints", fd: int, offsets: Sequence[int],
              views: Sequence[memoryview], name: str, threads: int) -> int:
    """Fill contiguous runs (see :func:`contiguous`) in parallel; returns compressed bytes read."""
    starts = list(offsets)
    total = starts[-1] + len(views[-1]) - starts[0]
    spans = plan_spans(points, starts[0], total, threads) if threads > 1 else [
        (starts[0], starts[0] + total)]
    source = DescriptorBytes(fd)
    direct = inflate_into.available()

    def one(span: Tuple[int, int]) -> int:
        start, stop = span
        point = points.before(start)
        if direct:
            try:
                count = _direct_span(points, fd, point, start, stop,
                                     _pieces(starts, views, start, stop), name)
                SPANS.add(True)
                return count
            except (inflate_into.InflateIntoError, ProxyReadError):
                pass                       # the member walker decides (and names errors)
        SPANS.add(False)
        cursor = jump.jump_cursor(points, point, name)
        for offset, piece in _pieces(starts, views, start, stop):
            cursor.readinto(source, offset, piece)
        return cursor.bytes_read

    if len(spans) == 1:
        return one(spans[0])
    return POOL.run(threads, one, spans)


__all__ = ["contiguous", "default_threads", "plan_spans", "read_runs", "worth_it", "SPANS"]
