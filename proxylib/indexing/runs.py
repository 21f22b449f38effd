"""The coalescer: how a plan's bytes are cut into reads, by the source's cost model.

One rule, two cases. Neighbouring wanted bytes join one read while the gap
between them is at most ``CostModel.gap_threshold`` (reading a gap is cheaper
than another call), and no read is longer than ``CostModel.block_size`` (no
buffer outgrows a block):

* :func:`choose_runs`, the regular-stride case: a box of elements ``byte_steps``
  apart. Axes are merged from the fastest outwards, so the runs are described
  by a few integers, never listed;
* :func:`coalesce_runs`, the offset-array case: sorted row offsets (fancy
  selections) split into runs with numpy, one Python step per block cut.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import numpy as np

from ..io.cost import CostModel


def box_span(shape: Tuple[int, ...], steps: Tuple[int, ...], itemsize: int) -> int:
    """Bytes from the first to one past the last element of a box (0: empty)."""
    if any(n == 0 for n in shape):
        return 0
    return sum((n - 1) * s for n, s in zip(shape, steps)) + itemsize


#: ``(grid_ndim, group, run_bytes, dense)``: how a box is cut into reads, the
#: :class:`ReadPlan` fields of the same names (a plain tuple: made on every read).
Runs = Tuple[int, int, int, bool]


def choose_runs(fetch_shape: Tuple[int, ...], byte_steps: Tuple[int, ...], itemsize: int,
                cost: CostModel) -> Runs:
    """Where runs split (``grid_ndim``), how they are cut (``group``), their length.

    Axes are merged into one run from the fastest outwards while the gap
    between consecutive runs along the next axis is at most the gap
    threshold. A run longer than the block size is then cut along the
    outermost merged axis whose single index still fits a block. The runs
    are dense when one run's bytes are exactly its ``group`` indices' elements.
    """
    ndim = len(fetch_shape)
    if 0 in fetch_shape:
        return ndim, 1, 0, True
    gap_threshold = cost.gap_threshold
    span = itemsize  # bytes of the run made of the axes merged so far
    elements = 1     # elements in it
    split = ndim
    for count, step in zip(reversed(fetch_shape), reversed(byte_steps)):
        if count > 1:
            if step - span > gap_threshold:
                break
            span += (count - 1) * step
            elements *= count
        split -= 1
    if split == ndim:
        return ndim, 1, itemsize, True
    if span <= max(cost.block_size, itemsize):  # a block always holds one element
        return split, fetch_shape[split], span, span == elements * itemsize
    return _cut_runs(fetch_shape, byte_steps, itemsize, split, max(cost.block_size, itemsize))


def _cut_runs(fetch_shape: Tuple[int, ...], byte_steps: Tuple[int, ...], itemsize: int,
              split: int, block: int) -> Runs:
    """:func:`choose_runs` for a merged run longer than ``block``: cut it into groups."""
    ndim = len(fetch_shape)
    # spans[axis]: bytes from the first to one past the last element of axes axis..
    spans = [itemsize] * (ndim + 1)
    for axis in range(ndim - 1, split - 1, -1):
        spans[axis] = (fetch_shape[axis] - 1) * byte_steps[axis] + spans[axis + 1]
    axis = split
    while spans[axis + 1] > block:
        axis += 1
    group = max(1, min((block - spans[axis + 1]) // byte_steps[axis] + 1, fetch_shape[axis]))
    run_bytes = (group - 1) * byte_steps[axis] + spans[axis + 1]
    return (axis, group, run_bytes,
            run_bytes == group * itemsize * math.prod(fetch_shape[axis + 1:]))


def coalesce_runs(sorted_offsets: np.ndarray, span: int, cost: CostModel) -> np.ndarray:
    """Split sorted row offsets into runs; return the ``run_starts`` boundaries.

    Consecutive rows join a run while the gap between them is at most
    ``cost.gap_threshold``; a run longer than ``cost.block_size`` is then cut
    greedily (a single row longer than a block stays a run of its own). The
    loop runs once per run cut, never per row.
    """
    count = len(sorted_offsets)
    if count == 0:
        return np.zeros(1, dtype=np.int64)
    gaps = sorted_offsets[1:] - sorted_offsets[:-1] - span
    bounds = np.concatenate(([0], np.flatnonzero(gaps > cost.gap_threshold) + 1, [count]))
    ends = sorted_offsets + span
    lengths = ends[bounds[1:] - 1] - sorted_offsets[bounds[:-1]]
    cuts: List[int] = []
    for segment in np.flatnonzero(lengths > cost.block_size).tolist():
        row, stop = int(bounds[segment]), int(bounds[segment + 1])
        while True:
            limit = int(sorted_offsets[row]) + cost.block_size
            after = int(np.searchsorted(ends[row:stop], limit, side="right")) + row
            row = max(after, row + 1)
            if row >= stop:
                break
            cuts.append(row)
    if cuts:
        bounds = np.union1d(bounds, np.asarray(cuts, dtype=np.int64))
    return bounds.astype(np.int64)
