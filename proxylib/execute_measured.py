"""Sparse reads on a warm file: a fresh map or preads, chosen by what each has cost lately.

With ``keep_file_open=False`` a sparse read (a mask's rows of points) is
served either by a memory map made for that access (a gather, one page
fault per page touched, and the unmap) or by positional reads. Which is
cheaper depends on the page cache, not on the plan. Measured on this
project's 2-core VM (``benchmarks/small_mask_floor.py``, a 20-voxel mask of
a 400 MB 100^4 float32 file, 2,000 points):

* pages the kernel read ahead in large blocks (the file was read with
  ``read``/``pread``, or written): fresh map 0.7 ms, preads 1.7-1.9 ms;
* pages brought in one at a time (random faults on a ``MADV_RANDOM`` map:
  our own cold sparse reads, nibabel's and numpy's maps): fresh map
  6.2-7.2 ms, preads 1.9-2.3 ms. Each fault then maps its neighbours one
  small folio at a time, and the unmap undoes them one at a time
  (2.3 ms of the 7).

No probe tells the two states apart, so :class:`MeasuredChoice` times
them: each proxy keeps a moving average of the seconds per row of its
recent accesses by each way, serves an access the cheaper way, and tries
the other one every :attr:`MeasuredChoice.EXPLORE_EVERY` accesses (the
page cache changes under a long-running process). Until both ways are
measured it takes the planner's static answer, then the other once.
Only warm accesses with a fresh map possible and at least
:data:`MEASURED_MIN_ROWS` rows are timed; everything else follows
:func:`proxylib.execute.choose_mapping` alone.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional

#: Accesses with fewer rows are left to the static rule: fixed costs (the
#: map's set-up, opening the file) would dominate their seconds per row.
MEASURED_MIN_ROWS = 64


class MeasuredChoice:
    """A proxy's running cost, in seconds per row, of sparse reads by fresh map and by preads."""

    #: Weight of the newest access in the moving average.
    WEIGHT = 0.25
    #: One access in this many goes the other way, to notice a change.
    EXPLORE_EVERY = 32

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._seconds_per_row: Dict[bool, Optional[float]] = {True: None, False: None}
        self._since_explored = 0
        self._lock = threading.Lock()

    def costs(self) -> Dict[str, Optional[float]]:
        """The running seconds per row: ``{"map": ..., "reads": ...}`` (None: not measured)."""
        return {"map": self._seconds_per_row[True], "reads": self._seconds_per_row[False]}

    def pick(self, preferred: bool) -> bool:
        """Whether to use the fresh map for the next timed access (``preferred``: the static rule's answer)."""
        with self._lock:
            measured = self._seconds_per_row
            if measured[preferred] is None:
                return preferred
            if measured[not preferred] is None:
                return not preferred
            cheaper = measured[True] <= measured[False]
            self._since_explored += 1
            if self._since_explored >= self.EXPLORE_EVERY:
                self._since_explored = 0
                return not cheaper
            return cheaper

    def trial(self) -> "Trial":
        """A context for one access: timed and recorded if the executor asks it to choose."""
        return Trial(self)

    def record(self, used_map: bool, seconds: float, rows: int) -> None:
        per_row = seconds / rows
        with self._lock:
            old = self._seconds_per_row[used_map]
            self._seconds_per_row[used_map] = (
                per_row if old is None else old + self.WEIGHT * (per_row - old))


class Trial:
    """One access, timed from entry to exit (opening and closing the file included).

    The executor calls :meth:`choose` when the access is one the measured
    choice decides; the time is recorded on exit only then, and only if the
    access did not fail.
    """

    __slots__ = ("_choice", "_start", "_used_map", "_rows")

    def __init__(self, choice: MeasuredChoice) -> None:
        self._choice = choice
        self._used_map: Optional[bool] = None
        self._rows = 0

    def choose(self, preferred: bool, rows: int) -> bool:
        """The way to serve ``rows`` rows (True: the fresh map); static below the threshold."""
        if rows < MEASURED_MIN_ROWS:
            return preferred
        self._used_map = self._choice.pick(preferred)
        self._rows = rows
        return self._used_map

    def __enter__(self) -> "Trial":
        self._start = self._choice._clock()
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._used_map is not None and exc_type is None:
            self._choice.record(self._used_map, self._choice._clock() - self._start, self._rows)
