"""Pure read planning: (typed key, array layout, cost model) -> :class:`ReadPlan`.

Nothing here touches a file. The plan works in *storage space*: the axes in
the order bytes vary slowest to fastest (the user's axes reversed for an
F-ordered array), every step made positive. It describes

* the **fetch**: the box of selected elements, ``fetch_shape``, whose element
  ``idx`` lives at byte ``base + sum(idx * byte_steps)``;
* the **runs**: the contiguous byte ranges to read. The storage axes split at
  ``grid_ndim``: every combination of indices on the axes before it is a run
  of its own (or several, see ``group``); the axes from it on are read through
  in one go, gaps included. Gaps up to ``CostModel.gap_threshold`` are read
  rather than skipped. A run longer than ``CostModel.block_size`` is cut
  along axis ``grid_ndim`` into groups of ``group`` indices, so no buffer
  ever exceeds the block size;
* the **finish**: the in-memory key that undoes the storage-space view
  (transpose, reversed steps, dropped integer axes, new axes).
"""

from __future__ import annotations

import math
from typing import Iterator, NamedTuple, Tuple

import numpy as np

from ..io.cost import (DEFAULT_BLOCK_SIZE, DEFAULT_GAP_THRESHOLD, LOCAL_FILE_COST,  # noqa: F401
                       CostModel)
from ..spec import ArraySpec
from .selection import NEWAXIS, Selection



class Run(NamedTuple):
    """One contiguous read and where its elements go."""

    offset: int          # absolute byte offset in the source
    length: int          # bytes to read
    grid_index: int      # flat index over the grid axes
    first: int           # first index on the grouped axis
    count: int           # indices on the grouped axis covered by this run


class ReadPlan(NamedTuple):
    """Immutable description of one basic read; see the module docstring.

    A named tuple rather than a frozen dataclass: one is built per read, and
    its construction cost shows on small reads.
    """

    fetch_shape: Tuple[int, ...]
    byte_steps: Tuple[int, ...]
    base: int
    itemsize: int
    grid_ndim: int
    group: int
    run_bytes: int       # bytes of one run of ``group`` indices, gaps included; 0: empty
    dense: bool          # every run holds exactly its selected elements, in order
    transpose: bool
    finish_key: Tuple[object, ...]

    # -- derived geometry -------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.fetch_shape)

    @property
    def selected_count(self) -> int:
        return math.prod(self.fetch_shape)

    @property
    def selected_bytes(self) -> int:
        return self.selected_count * self.itemsize

    @property
    def is_empty(self) -> bool:
        return self.run_bytes == 0

    @property
    def grid_shape(self) -> Tuple[int, ...]:
        return self.fetch_shape[:self.grid_ndim]

    @property
    def grouped_count(self) -> int:
        """Indices along the grouped axis (1 when every axis is a grid axis)."""
        return self.fetch_shape[self.grid_ndim] if self.grid_ndim < self.ndim else 1

    @property
    def groups_per_run_row(self) -> int:
        return -(-self.grouped_count // self.group)

    @property
    def inner_shape(self) -> Tuple[int, ...]:
        return self.fetch_shape[self.grid_ndim + 1:]

    @property
    def inner_steps(self) -> Tuple[int, ...]:
        return self.byte_steps[self.grid_ndim + 1:]

    @property
    def grouped_step(self) -> int:
        return self.byte_steps[self.grid_ndim] if self.grid_ndim < self.ndim else self.itemsize

    @property
    def inner_span(self) -> int:
        """Bytes from the first to one past the last element of one grouped index."""
        return _span(self.inner_shape, self.inner_steps, self.itemsize)

    def run_length(self, count: int) -> int:
        return (count - 1) * self.grouped_step + self.inner_span

    @property
    def read_bytes(self) -> int:
        """Bytes the runs read, gaps included."""
        if self.is_empty:
            return 0
        full, rest = divmod(self.grouped_count, self.group)
        per_row = full * self.run_length(self.group) + (self.run_length(rest) if rest else 0)
        return math.prod(self.grid_shape) * per_row

    @property
    def extent(self) -> Tuple[int, int]:
        """``(first, stop)`` byte positions touched by the whole selection."""
        return self.base, self.base + _span(self.fetch_shape, self.byte_steps, self.itemsize)

    # -- enumeration ------------------------------------------------------
    def iter_runs(self, batch: int = 65536) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Yield ``(grid_indices, offsets)`` for all full-row runs, in file order.

        Only meaningful when ``group == grouped_count`` (one run per grid
        cell); offsets are computed vectorised, ``batch`` at a time.
        """
        grid = self.grid_shape
        total = math.prod(grid)
        if total == 1:
            yield np.zeros(1, dtype=np.int64), np.full(1, self.base, dtype=np.int64)
            return
        steps = np.asarray(self.byte_steps[:self.grid_ndim], dtype=np.int64)
        for start in range(0, total, batch):
            flat = np.arange(start, min(start + batch, total), dtype=np.int64)
            if grid:
                coords = np.unravel_index(flat, grid)
                offsets = self.base + sum(c.astype(np.int64) * s for c, s in zip(coords, steps))
            else:
                offsets = np.full(flat.shape, self.base, dtype=np.int64)
            yield flat, np.asarray(offsets, dtype=np.int64)

    def iter_grouped_runs(self) -> Iterator[Run]:
        """Yield every run one by one, groups included, in file order.

        Used when runs are block-sized, so the number of runs is the data
        size divided by the block size.
        """
        for flat, offsets in self.iter_runs(batch=4096):
            for grid_index, row_offset in zip(flat.tolist(), offsets.tolist()):
                for first in range(0, self.grouped_count, self.group):
                    count = min(self.group, self.grouped_count - first)
                    yield Run(row_offset + first * self.grouped_step, self.run_length(count),
                              grid_index, first, count)


def _span(shape: Tuple[int, ...], steps: Tuple[int, ...], itemsize: int) -> int:
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


def plan_basic(key: Selection, spec: ArraySpec, cost: CostModel = LOCAL_FILE_COST) -> ReadPlan:
    """Plan the reads for a normalized basic key on the array ``spec``.

    Runs on every read, so the per-axis work is one inlined loop over the
    key in the user's axis order; an F-ordered plan is then reversed into
    storage order.
    """
    strides = spec.axis_strides
    base = spec.offset
    counts, byte_steps, finish = [], [], []
    axis = 0
    for item in key.items:
        if type(item) is int:
            stride = strides[axis]
            base += item * stride
            counts.append(1)
            byte_steps.append(stride)
            finish.append(0)
        elif item is NEWAXIS:
            finish.append(None)
            continue
        else:  # an AxisRange, read in ascending order and reversed in memory if needed
            start, count, step = item
            stride = strides[axis]
            if count <= 1:
                byte_steps.append(stride)
                finish.append(_ALL)
            elif step < 0:
                start += (count - 1) * step
                byte_steps.append(-step * stride)
                finish.append(_REVERSED)
            else:
                byte_steps.append(step * stride)
                finish.append(_ALL)
            base += start * stride
            counts.append(count)
        axis += 1
    if key.had_ellipsis:
        finish.append(Ellipsis)
    transpose = spec.order == "F" and axis > 1
    if transpose:
        counts.reverse()
        byte_steps.reverse()
    fetch_shape = tuple(counts)
    byte_steps = tuple(byte_steps)
    itemsize = spec.storage_dtype.itemsize
    # tuple.__new__ rather than ReadPlan(...): the generated __new__ is one more
    # Python call with ten arguments, on every read
    return tuple.__new__(ReadPlan, (fetch_shape, byte_steps, base, itemsize,
                                    *choose_runs(fetch_shape, byte_steps, itemsize, cost),
                                    transpose, tuple(finish)))


_ALL = slice(None)
_REVERSED = slice(None, None, -1)


def with_runs_for(plan: ReadPlan, cost: CostModel) -> ReadPlan:
    """``plan`` with its runs cut for ``cost`` instead (same selection, same bytes)."""
    runs = choose_runs(plan.fetch_shape, plan.byte_steps, plan.itemsize, cost)
    return tuple.__new__(ReadPlan, plan[:4] + runs + plan[8:])
