"""The standard keys every strategy is timed on, scaled to the file's shape."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional, Tuple

import numpy as np

MASK_VOXELS = 1000
SMALL_MASK_VOXELS = 20

KeyDraw = Callable[[np.random.Generator], Any]


@dataclass(frozen=True)
class Workload:
    """One thing a user does with a volume.

    ``draw(rng)`` makes a new key of the same kind (another voxel, volume,
    slab or mask): each timed round reads a fresh one, because a repeated key
    measures a cache, not a read.
    """

    name: str
    kind: str          # "key": target[key]; "full": a full float32 read
    key: Any = None
    draw: Optional[KeyDraw] = field(default=None, compare=False, repr=False)

    def fresh(self, rng: np.random.Generator) -> "Workload":
        """The same workload with a newly drawn key (itself when it has no draw)."""
        return self if self.draw is None else replace(self, key=self.draw(rng))


def random_mask(spatial: Tuple[int, ...], count: int, rng: np.random.Generator) -> np.ndarray:
    """A 3D boolean mask of ``count`` voxels drawn without replacement."""
    mask = np.zeros(spatial, dtype=bool)
    total = int(np.prod(spatial))
    mask.reshape(-1)[rng.choice(total, size=min(count, total), replace=False)] = True
    return mask


def standard_workloads(shape: Tuple[int, ...], seed: int = 0) -> Tuple[Workload, ...]:
    """One volume, one voxel time series, one x-slab, 1,000- and 20-voxel masks, a full read.

    ``key`` is a first key (the middle voxel, volume and slab; masks drawn
    from ``seed``); ``draw`` makes the next ones.
    """
    if len(shape) != 4:
        raise ValueError(f"the benchmark's workloads need a 4D image; this one has shape {shape}")
    middle = tuple(n // 2 for n in shape)
    rng = np.random.default_rng(seed)
    spatial = shape[:3]

    def point(rng: np.random.Generator, axis: int) -> int:
        return int(rng.integers(0, shape[axis]))

    return (
        Workload("volume", "key", (Ellipsis, middle[3]),
                 lambda rng: (Ellipsis, point(rng, 3))),
        Workload("time series", "key", (middle[0], middle[1], middle[2], slice(None)),
                 lambda rng: (point(rng, 0), point(rng, 1), point(rng, 2), slice(None))),
        Workload("x-slab", "key", (middle[0],), lambda rng: (point(rng, 0),)),
        Workload("mask 1000 voxels", "key", random_mask(spatial, MASK_VOXELS, rng),
                 lambda rng: random_mask(spatial, MASK_VOXELS, rng)),
        Workload("mask 20 voxels", "key", random_mask(spatial, SMALL_MASK_VOXELS, rng),
                 lambda rng: random_mask(spatial, SMALL_MASK_VOXELS, rng)),
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
