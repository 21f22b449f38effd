"""Issue 16's read targets, as ratios taken from one ``proxylib bench --cold`` run.

Each :class:`Target` names a workload, the cache state, the proxylib
settings it holds for, what it is compared with (the raw floor, nibabel, or
another proxylib strategy of the same run) and the largest ratio allowed.
:func:`evaluate` turns a run's measurements into one :class:`Outcome` per
target and setting; cells the run did not measure are reported as missing,
never as met.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .runner import Measurement

DEFAULT = (("mmap", "c"), ("keep_file_open", False))
KEPT = (("mmap", "c"), ("keep_file_open", True))
EVERY_SETTING = tuple((("mmap", mmap), ("keep_file_open", keep))
                      for mmap in ("c", "r", False) for keep in (True, False))

Settings = Tuple[Tuple[str, object], ...]


@dataclass(frozen=True)
class Target:
    """``workload`` (a name prefix) read with each of ``settings`` in ``cache`` must take
    at most ``limit`` times ``baseline``: ``"floor"`` (the raw pread floor),
    ``"nibabel"`` (the faster nibabel setting) or proxylib with the given settings."""

    label: str
    cache: str
    workload: str
    settings: Tuple[Settings, ...]
    baseline: Union[str, Settings]
    limit: float


TARGETS: Tuple[Target, ...] = (
    Target("cold time series <= 1.5x one pread per point", "cold", "time series",
           (DEFAULT, KEPT), "floor", 1.5),
    Target("cold time series never slower than nibabel", "cold", "time series",
           (DEFAULT, KEPT), "nibabel", 1.0),
    Target("cold one volume <= 1.3x open + header + preadv", "cold", "volume",
           (DEFAULT, KEPT), "floor", 1.3),
    Target("cold 20-voxel mask <= 1.5x one pread per voxel per volume", "cold", "mask 20",
           (DEFAULT, KEPT), "floor", 1.5),
    Target("cold x-slab <= 1.2x one sequential read", "cold", "x-slab",
           (DEFAULT, KEPT), "floor", 1.2),
    Target("cold 1,000-voxel mask <= 1.3x one sequential read", "cold", "mask 1000",
           (DEFAULT, KEPT), "floor", 1.3),
    Target("warm time series, keep_file_open=True <= 0.25x nibabel", "warm", "time series",
           (KEPT,), "nibabel", 0.25),
    Target("warm one volume <= 1.3x raw preadv, every setting", "warm", "volume",
           EVERY_SETTING, "floor", 1.3),
    Target("warm 20-voxel mask, default settings <= 4x a kept map", "warm", "mask 20",
           (DEFAULT,), KEPT, 4.0),
)


@dataclass(frozen=True)
class Outcome:
    target: Target
    strategy: str
    ratio: Optional[float]  # None: a cell of the comparison was not measured

    @property
    def met(self) -> Optional[bool]:
        return None if self.ratio is None else self.ratio <= self.target.limit


def _settings_of(row: Measurement) -> Settings:
    return tuple(sorted((row.settings or {}).items()))


def _seconds(rows: Sequence[Measurement], baseline: Union[str, Settings]) -> Optional[float]:
    """The fastest median among ``rows`` of the baseline (a family, or proxylib settings)."""
    if isinstance(baseline, tuple):
        wanted = tuple(sorted(baseline))
        chosen = [r for r in rows if r.family == "proxylib" and _settings_of(r) == wanted]
    else:
        family = {"floor": "raw", "nibabel": "nibabel"}[baseline]
        chosen = [r for r in rows if r.family == family]
    return min((r.median_seconds for r in chosen if r.median_seconds), default=None)


def _describe(settings: Settings) -> str:
    values = dict(settings)
    return f"proxylib mmap={values.get('mmap')!r} keep={values.get('keep_file_open')}"


def evaluate(results: Sequence[Measurement],
             targets: Sequence[Target] = TARGETS) -> List[Outcome]:
    """One outcome per target and setting, from the run's median times."""
    cells: Dict[Tuple[str, str], List[Measurement]] = {}
    for row in results:
        cells.setdefault((row.cache, row.workload), []).append(row)
    outcomes = []
    for target in targets:
        rows = next((group for (cache, workload), group in cells.items()
                     if cache == target.cache and workload.startswith(target.workload)), [])
        base = _seconds(rows, target.baseline)
        for settings in target.settings:
            mine = _seconds(rows, settings)
            ratio = mine / base if mine and base else None
            outcomes.append(Outcome(target, _describe(settings), ratio))
    return outcomes


def render(results: Sequence[Measurement]) -> str:
    """The targets as a table: ratio, limit, met / MISSED / not measured."""
    lines = ["issue 16 targets (ratios of medians in this run)",
             f"  {'target':60s} {'strategy':34s} {'ratio':>6s}  verdict"]
    for outcome in evaluate(results):
        ratio = "-" if outcome.ratio is None else f"{outcome.ratio:.2f}"
        verdict = {None: "not measured", True: "met", False: "MISSED"}[outcome.met]
        lines.append(f"  {outcome.target.label:60s} {outcome.strategy:34s} {ratio:>6s}  "
                     f"{verdict}")
    return "\n".join(lines)


def to_dicts(results: Sequence[Measurement]) -> List[dict]:
    return [{"target": o.target.label, "strategy": o.strategy, "ratio": o.ratio,
             "limit": o.target.limit, "met": o.met} for o in evaluate(results)]
