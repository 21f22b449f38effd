"""What a byte source's reads cost: the one input the planner takes from io/.

A byte source declares a :class:`CostModel`; the planner coalesces runs and
cuts blocks by it. The defaults for local files are here, with the
benchmark that chose them.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

#: Gaps up to this many bytes are read through rather than skipped with a new
#: read (local files). benchmarks/bench_gap_threshold.py, 4 KiB runs over a
#: 64 MiB span, page cache warm: reading through wins at a 16 KiB gap (9.5 ms
#: vs 12.6 ms for one pread per run) and loses at 32 KiB (9.0 vs 5.4 ms).
DEFAULT_GAP_THRESHOLD = 16 * 1024
#: Largest buffer one read step may allocate; also the unit of streaming.
#: Same benchmark, read-through of a 64 MiB span: 8 MiB blocks 7.3 ms,
#: 4 MiB 9.5 ms, 1 MiB 10.4 ms, 32 MiB 43.8 ms.
DEFAULT_BLOCK_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True)
class CostModel:
    """What a byte source's reads cost, as the planner needs to know it.

    ``gap_threshold``: bytes of unwanted data worth reading to save one extra
    read call (``math.inf``-like large values mean "never skip", as for a
    compressed stream where a seek costs a decompression).
    ``block_size``: the largest buffer allocated for one read.
    """

    gap_threshold: int = DEFAULT_GAP_THRESHOLD
    block_size: int = DEFAULT_BLOCK_SIZE

    def __post_init__(self) -> None:
        object.__setattr__(self, "gap_threshold", _whole("gap_threshold", self.gap_threshold, 0))
        object.__setattr__(self, "block_size", _whole("block_size", self.block_size, 1))


def _whole(name: str, value: object, minimum: int) -> int:
    """``value`` as a Python int of at least ``minimum`` (numpy integers accepted)."""
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return number


LOCAL_FILE_COST = CostModel()

#: Gap threshold for a local file that is not in the page cache (see
#: :func:`proxylib.io.advice.looks_cold`). A gap left in a cold read costs the
#: kernel's read-ahead across it, not just a system call. benchmarks/cold_mask_gap.py,
#: cold 1,000-voxel mask of a 400 MB file against one sequential read: 16 KiB
#: 2.07-2.33x, 64 KiB 0.91-1.03x, 256 KiB 0.98-1.04x. Isolated 4 KiB runs
#: cross over lower (skipping wins from 32 KiB gaps), so between tiny runs
#: 32-64 KiB apart the cold plan reads more than it must (benchmarks/README.md,
#: "Cold page cache").
COLD_GAP_THRESHOLD = 64 * 1024
LOCAL_FILE_COLD_COST = CostModel(gap_threshold=COLD_GAP_THRESHOLD)
