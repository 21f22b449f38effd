"""Time workloads over strategies, interleaved round by round; errors kept per strategy.

A *cell* is one workload in one cache state (warm or cold) over every
strategy. Its rounds are interleaved: round ``r`` runs every strategy once,
in a fresh random order, each reading its own freshly drawn key. Strategies
are so timed side by side, and a ratio of two of them can be taken per round
(:mod:`~proxylib.bench.targets`), which slow drift on a shared machine or VM
(a host caching the virtual disk, other jobs coming and going) cannot move
the way it moves two cells measured minutes apart.
"""

from __future__ import annotations

import os
import statistics
import time
import tracemalloc
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any, Callable, List, Optional, Sequence

import numpy as np

from ..io.remote import is_url
from ..loading import load
from .cold import drop_page_cache, warm_page_cache
from .strategies import (Strategy, gzip_cache, is_gzip, peer_strategies, proxylib_strategies,
                         remote_strategy)
from .workloads import Workload, select, standard_workloads

#: A strategy whose probe round takes longer than this gets fewer rounds.
CELL_BUDGET_SECONDS = 3.0
#: A warm strategy gets at least this much time in rounds (at most FAST_CELL_ROUNDS):
#: sub-millisecond reads need many rounds before one scheduler hiccup no longer
#: moves their median (9 rounds of a 0.1 ms time series put its ratio to nibabel
#: anywhere from 0.15 to 0.34 on a shared machine).
FAST_CELL_SECONDS = 0.3
FAST_CELL_ROUNDS = 300

Progress = Callable[[int, int, str], None]
Clock = Callable[[], float]


@dataclass
class Measurement:
    strategy: str
    family: str
    workload: str
    median_seconds: Optional[float]
    rounds: int
    peak_bytes: Optional[int]
    error: Optional[str] = None
    settings: Optional[dict] = None
    #: "warm" (page cache as the previous rounds left it) or "cold" (dropped each round)
    cache: str = "warm"
    #: This strategy's time in each interleaved round of its cell (None: it did not
    #: run in that round); index r of two strategies of one cell were taken side by side.
    round_seconds: Optional[List[Optional[float]]] = None

    def to_dict(self) -> dict:
        return asdict(self)


def peak_allocation(fn: Callable[[], object]) -> int:
    """Peak bytes allocated (as tracemalloc sees numpy and Python) while ``fn`` runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def planned_rounds(first: float, repeat: int, cold: bool) -> int:
    """Timed rounds for a strategy whose probe round took ``first`` seconds."""
    rounds = max(1, min(repeat, int(CELL_BUDGET_SECONDS / max(first, 1e-9))))
    if not cold:  # (a cold round's cost is its cache drop, not its read)
        rounds = max(rounds, min(FAST_CELL_ROUNDS, int(FAST_CELL_SECONDS / max(first, 1e-9))))
    return rounds


class _Contender:
    """One strategy's state in a cell: its target, its round times, its first error."""

    def __init__(self, strategy: Strategy, workload: Workload, cold: bool,
                 rng: np.random.Generator, paths: Sequence[str], clock: Clock) -> None:
        self.strategy, self.workload, self.cold = strategy, workload, cold
        self.rng, self.paths, self.clock = rng, paths, clock
        self.target: Any = None
        self.rounds = 0
        self.times: List[Optional[float]] = []
        self.error: Optional[str] = None

    def close(self) -> None:
        if self.target is not None:
            target, self.target = self.target, None
            target.close()

    def prepared(self) -> Any:
        self.strategy.reset()
        if self.strategy.fresh_each_round or self.target is None:
            self.close()
            self.target = self.strategy.open()
        return self.target

    def _round(self) -> float:
        task = self.workload.fresh(self.rng)
        if self.cold:  # no target alive: a live map would keep its pages cached
            drop_page_cache(self.paths)
            self.strategy.reset()
            start = self.clock()
            self.target = self.strategy.open()
            self.target.read(task)
            elapsed = self.clock() - start
            self.close()
            return elapsed
        target = self.prepared()
        start = self.clock()
        target.read(task)
        return self.clock() - start

    def attempt(self) -> Optional[float]:
        """One round's time, or None after recording why it failed (then it runs no more)."""
        try:
            return self._round()
        except Exception as err:  # a strategy that cannot do a workload is reported, not fatal
            self.error = f"{type(err).__name__}: {err}"
            try:
                self.close()
            except Exception:  # its error is the one worth reporting
                self.target = None
            return None

    def measurement(self, peak: Optional[int]) -> Measurement:
        done = [t for t in self.times if t is not None]
        failed = self.error is not None
        return Measurement(self.strategy.name, self.strategy.family, self.workload.name,
                           None if failed else statistics.median(done),
                           0 if failed else len(done), None if failed else peak,
                           error=self.error, settings=self.strategy.settings,
                           cache="cold" if self.cold else "warm",
                           round_seconds=None if failed else self.times)


def measure_cell(strategies: Sequence[Strategy], workload: Workload, repeat: int,
                 memory: bool = True, cold: bool = False,
                 rng: Optional[np.random.Generator] = None,
                 paths: Sequence[str] = (), clock: Clock = time.perf_counter
                 ) -> List[Measurement]:
    """Every strategy on ``workload``, rounds interleaved; one measurement per strategy.

    A probe round (each strategy once, in random order, not reported) sets each
    strategy's round count: fewer when a round is slow (:data:`CELL_BUDGET_SECONDS`,
    at most ``repeat``), more when a warm round is fast (:data:`FAST_CELL_SECONDS`,
    at most :data:`FAST_CELL_ROUNDS`). Then round ``r`` runs, in a fresh random
    order, every strategy that has an ``r``-th round; each draws its own key
    (:meth:`Workload.fresh`). ``cold``: each strategy's round drops the page cache
    (:func:`~proxylib.bench.cold.drop_page_cache` on ``paths``) with no target of
    any strategy open, then times opening a fresh target (image header included)
    plus the read, and closes it. Warm: a strategy keeps its target across rounds
    (a new, untimed one each round if ``fresh_each_round``), and after its rounds
    one traced read gives its peak allocation (``memory``). A strategy that fails
    is reported with its error and leaves the others running.
    """
    rng = np.random.default_rng() if rng is None else rng
    contenders = [_Contender(s, workload, cold, rng, paths, clock) for s in strategies]

    def shuffled(group: Sequence[_Contender]) -> List[_Contender]:
        return [group[i] for i in rng.permutation(len(group))]

    peaks: dict = {}
    try:
        for one in shuffled(contenders):
            first = one.attempt()
            if first is not None:
                one.rounds = planned_rounds(first, repeat, cold)
        total = max((c.rounds for c in contenders if c.error is None), default=0)
        for one in contenders:
            one.times = [None] * one.rounds
        for r in range(total):
            for one in shuffled([c for c in contenders if c.error is None and c.rounds > r]):
                one.times[r] = one.attempt()
        if memory and not cold:
            for one in contenders:
                if one.error is None:
                    task = workload.fresh(rng)
                    try:
                        target = one.prepared()
                        peaks[id(one)] = peak_allocation(lambda: target.read(task))
                    except Exception as err:
                        one.error = f"{type(err).__name__}: {err}"
    finally:
        for one in contenders:
            one.close()
    return [one.measurement(peaks.get(id(one))) for one in contenders]


def prepare_warm_cache(paths: Sequence[str]) -> None:
    """Before a warm cell of a cold run: the files dropped, then read through once.

    Only reading the pages a cold cell left out would keep the ones its
    rounds faulted in one at a time, in small folios, where a fresh map's
    faults cost several times more (``benchmarks/small_mask_floor.py
    --warm-by random-faults``; :mod:`proxylib.execute_measured`), and which
    pages those are is chance: the warm figures would change from run to
    run. Read through after a drop, every run's warm cells start alike, as
    after copying the file.
    """
    drop_page_cache(paths)
    warm_page_cache(paths)


def run_benchmark(path: str, *, workload_names: Sequence[str] = (), repeat: int = 5,
                  memory: bool = True, progress: Optional[Progress] = None,
                  include_peers: bool = True,
                  on_cell: Optional[Progress] = None,
                  cold: bool = False,
                  storage_options: Optional[dict] = None) -> List[Measurement]:
    """Measure every applicable strategy on every selected workload for one file.

    Each workload is one cell (two with ``cold``: warm, then cold) whose
    strategies run interleaved (:func:`measure_cell`). ``progress(done, total,
    label)`` is called before every cell and once at the end; ``on_cell(number,
    count, label)`` when a cell starts (1-based). A URL is measured with one
    strategy, a fresh ``proxylib.load`` each round (``storage_options`` go to
    fsspec), and no peers. ``cold``: warm cells follow a full read of the file,
    cold cells drop the page cache and open a fresh target every round (a local
    file's pages only).
    """
    remote = is_url(path)
    image = load(path, storage_options=storage_options if remote else None)
    shape = image.shape
    paths = [] if remote else sorted(
        {os.fspath(path), os.fspath(getattr(image.dataobj, "file_like", path))})
    rng = np.random.default_rng()
    workloads = select(standard_workloads(shape), workload_names)
    compressed = not remote and is_gzip(path)
    results: List[Measurement] = []
    with ExitStack() as stack:
        if remote:
            strategies = [remote_strategy(path, storage_options)]
            include_peers = False
        elif compressed:
            strategies: List[Strategy] = []
            for saved in (False, True):
                reset = stack.enter_context(gzip_cache(path, saved))
                label = " gz saved-index" if saved else " gz no-index"
                strategies += proxylib_strategies(path, reset, label, fresh_each_round=True,
                                                  compressed=True)
        else:
            strategies = proxylib_strategies(path)
        if include_peers:
            strategies += peer_strategies(path, compressed)
        caches = (False, True) if cold else (False,)
        cells = [(workload, cold_cell) for workload in workloads for cold_cell in caches]
        for done, (workload, cold_cell) in enumerate(cells):
            if cold and not cold_cell:  # warm means warm, and the same warm every run
                prepare_warm_cache(paths)
            label = (f"{workload.name}{' (cold)' if cold_cell else ''}: "
                     f"{len(strategies)} strategies interleaved")
            if progress is not None:
                progress(done, len(cells), label)
            if on_cell is not None:
                on_cell(done + 1, len(cells), label)
            results.extend(measure_cell(strategies, workload, repeat, memory, cold=cold_cell,
                                        rng=rng, paths=paths))
        if progress is not None:
            progress(len(cells), len(cells), "done")
    return results
