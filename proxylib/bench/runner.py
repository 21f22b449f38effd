"""Time workloads over strategies: medians, peak allocations, errors kept per cell."""

from __future__ import annotations

import os
import statistics
import time
import tracemalloc
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np

from ..io.remote import is_url
from ..loading import load
from .cold import drop_page_cache, warm_page_cache
from .strategies import (Strategy, gzip_cache, is_gzip, peer_strategies, proxylib_strategies,
                         remote_strategy)
from .workloads import Workload, select, standard_workloads

#: A cell whose first round takes longer than this gets fewer rounds.
CELL_BUDGET_SECONDS = 3.0
#: A warm cell gets at least this much time in rounds (at most FAST_CELL_ROUNDS):
#: sub-millisecond reads need many rounds before one scheduler hiccup no longer
#: moves their median (9 rounds of a 0.1 ms time series put its ratio to nibabel
#: anywhere from 0.15 to 0.34 on a shared machine).
FAST_CELL_SECONDS = 0.3
FAST_CELL_ROUNDS = 300

Progress = Callable[[int, int, str], None]


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


def measure(strategy: Strategy, workload: Workload, repeat: int,
            memory: bool = True, cold: bool = False,
            rng: Optional[np.random.Generator] = None,
            paths: Sequence[str] = ()) -> Measurement:
    """Median of ``repeat`` timed rounds (after one warm-up), and one traced round.

    Fewer rounds when a round is slow (:data:`CELL_BUDGET_SECONDS`); more when
    a warm round is fast (:data:`FAST_CELL_SECONDS`, at most :data:`FAST_CELL_ROUNDS`).

    Every round reads a freshly drawn key (:meth:`Workload.fresh`). ``cold``:
    before each round the previous target is closed and the page cache dropped
    (:func:`~proxylib.bench.cold.drop_page_cache` on ``paths``), and the round
    times opening a fresh target (image header included) plus the read.
    """
    rng = np.random.default_rng() if rng is None else rng
    targets = []

    def prepared():
        strategy.reset()
        if strategy.fresh_each_round or not targets:
            targets.append(strategy.open())
        return targets[-1]

    def one_round() -> float:
        task = workload.fresh(rng)
        if cold:
            while targets:
                targets.pop().close()
            drop_page_cache(paths)
            strategy.reset()
            start = time.perf_counter()
            target = strategy.open()
            targets.append(target)
            target.read(task)
            return time.perf_counter() - start
        target = prepared()
        start = time.perf_counter()
        target.read(task)
        return time.perf_counter() - start

    cache = "cold" if cold else "warm"
    try:
        first = one_round()
        rounds = max(1, min(repeat, int(CELL_BUDGET_SECONDS / max(first, 1e-9))))
        if not cold:  # (a cold round's cost is its cache drop, not its read)
            rounds = max(rounds, min(FAST_CELL_ROUNDS, int(FAST_CELL_SECONDS / max(first, 1e-9))))
        times = [one_round() for _ in range(rounds)]
        peak = None
        if memory and not cold:
            target = prepared()
            task = workload.fresh(rng)
            peak = peak_allocation(lambda: target.read(task))
        return Measurement(strategy.name, strategy.family, workload.name,
                           statistics.median(times), rounds, peak, settings=strategy.settings,
                           cache=cache)
    except Exception as err:  # a strategy that cannot do a workload is reported, not fatal
        return Measurement(strategy.name, strategy.family, workload.name, None, 0, None,
                           error=f"{type(err).__name__}: {err}", settings=strategy.settings,
                           cache=cache)
    finally:
        for target in targets:
            target.close()


def run_benchmark(path: str, *, workload_names: Sequence[str] = (), repeat: int = 5,
                  memory: bool = True, progress: Optional[Progress] = None,
                  include_peers: bool = True,
                  on_strategy: Optional[Progress] = None,
                  cold: bool = False,
                  storage_options: Optional[dict] = None) -> List[Measurement]:
    """Measure every applicable strategy on every selected workload for one file.

    ``progress(done, total, label)`` is called before every cell and once at the end;
    ``on_strategy(number, count, name)`` when a strategy starts (1-based). A URL
    is measured with one strategy, a fresh ``proxylib.load`` each round
    (``storage_options`` go to fsspec), and no peers. ``cold``: every cell is
    measured warm and then cold (a dropped page cache and a fresh target each
    round; a local file's pages only).
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
        total = len(strategies) * len(workloads) * len(caches)
        done = 0
        for number, strategy in enumerate(strategies, 1):
            if on_strategy is not None:
                on_strategy(number, len(strategies), strategy.name)
            for workload in workloads:
                for cold_round in caches:
                    if cold and not cold_round:  # warm means warm, even after a cold cell
                        warm_page_cache(paths)
                    if progress is not None:
                        label = " (cold)" if cold_round else ""
                        progress(done, total, f"{strategy.name}: {workload.name}{label}")
                    results.append(measure(strategy, workload, repeat, memory, cold=cold_round,
                                           rng=rng, paths=paths))
                    done += 1
        if progress is not None:
            progress(total, total, "done")
    return results
