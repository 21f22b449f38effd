"""Time workloads over strategies: medians, peak allocations, errors kept per cell."""

from __future__ import annotations

import statistics
import time
import tracemalloc
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional, Sequence

from ..io.remote import is_url
from ..loading import load

from .strategies import (Strategy, gzip_cache, is_gzip, peer_strategies, proxylib_strategies,
                         remote_strategy)
from .workloads import Workload, select, standard_workloads

#: A cell whose first round takes longer than this gets fewer rounds.
CELL_BUDGET_SECONDS = 3.0

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
            memory: bool = True) -> Measurement:
    """Median of ``repeat`` timed rounds (after one warm-up), and one traced round."""
    targets = []

    def prepared():
        strategy.reset()
        if strategy.fresh_each_round or not targets:
            targets.append(strategy.open())
        return targets[-1]

    def one_round() -> float:
        target = prepared()
        start = time.perf_counter()
        target.read(workload)
        return time.perf_counter() - start

    try:
        first = one_round()
        rounds = max(1, min(repeat, int(CELL_BUDGET_SECONDS / max(first, 1e-9))))
        times = [one_round() for _ in range(rounds)]
        peak = None
        if memory:
            target = prepared()
            peak = peak_allocation(lambda: target.read(workload))
        return Measurement(strategy.name, strategy.family, workload.name,
                           statistics.median(times), rounds, peak, settings=strategy.settings)
    except Exception as err:  # a strategy that cannot do a workload is reported, not fatal
        return Measurement(strategy.name, strategy.family, workload.name, None, 0, None,
                           error=f"{type(err).__name__}: {err}", settings=strategy.settings)
    finally:
        for target in targets:
            target.close()


def run_benchmark(path: str, *, workload_names: Sequence[str] = (), repeat: int = 5,
                  memory: bool = True, progress: Optional[Progress] = None,
                  include_peers: bool = True,
                  on_strategy: Optional[Progress] = None,
                  storage_options: Optional[dict] = None) -> List[Measurement]:
    """Measure every applicable strategy on every selected workload for one file.

    ``progress(done, total, label)`` is called before every cell and once at the end;
    ``on_strategy(number, count, name)`` when a strategy starts (1-based). A URL
    is measured with one strategy, a fresh ``proxylib.load`` each round
    (``storage_options`` go to fsspec), and no peers.
    """
    remote = is_url(path)
    shape = load(path, storage_options=storage_options if remote else None).shape
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
        total = len(strategies) * len(workloads)
        done = 0
        for number, strategy in enumerate(strategies, 1):
            if on_strategy is not None:
                on_strategy(number, len(strategies), strategy.name)
            for workload in workloads:
                if progress is not None:
                    progress(done, total, f"{strategy.name}: {workload.name}")
                results.append(measure(strategy, workload, repeat, memory))
                done += 1
        if progress is not None:
            progress(total, total, "done")
    return results
