"""The standard keys every strategy is timed on, scaled to the file's shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Tuple

import numpy as np

MASK_VOXELS = 1000


@dataclass(frozen=True)
class Workload:
    """One thing a user does with a volume."""

    name: str
    kind: str          # "key": target[key]; "full": a full float32 read
    key: Any = None


def standard_workloads(shape: Tuple[int, ...], seed: int = 0) -> Tuple[Workload, ...]:
    """One volume, one voxel time series, one x-slab, a 1,000-voxel mask, a full read."""
    if len(shape) != 4:
        raise ValueError(f"the benchmark's workloads need a 4D image; this one has shape {shape}")
    middle = tuple(n // 2 for n in shape)
    rng = np.random.default_rng(seed)
    spatial = shape[:3]
    mask = np.zeros(spatial, dtype=bool)
    picks = rng.choice(int(np.prod(spatial)), size=min(MASK_VOXELS, int(np.prod(spatial))),
                       replace=False)
    mask.reshape(-1)[picks] = True
    return (
        Workload("volume", "key", (Ellipsis, middle[3])),
        Workload("time series", "key", (middle[0], middle[1], middle[2], slice(None))),
        Workload("x-slab", "key", (middle[0],)),
        Workload("mask 1000 voxels", "key", mask),
        Workload("full float32", "full"),
    )


WORKLOAD_NAMES = ("volume", "time series", "x-slab", "mask", "full")


def select(workloads, names):
    """The workloads whose name starts with one of ``names`` (all when empty)."""
    if not names:
        return tuple(workloads)
    chosen = tuple(w for w in workloads if any(w.name.startswith(n) for n in names))
    if not chosen:
        raise ValueError(f"no workload matches {', '.join(names)}; choose from "
                         f"{', '.join(WORKLOAD_NAMES)}")
    return chosen
