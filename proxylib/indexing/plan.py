"""The one planner: (:class:`Selection`, array layout, cost model) -> :class:`ReadPlan`.

Pure: nothing here touches a file. :func:`plan_read` plans every selection.
A basic one (ints, ranges, new axes) is a single regular-stride box
(:func:`plan_basic`, on every read not remembered, so kept lean). Any other
is cut (:func:`plan_rows`) into

* a **box**: the longest run of fastest-varying storage axes that are
  regular (ints, slices, evenly spaced index sets), one *row*, planned like
  a basic key;
* **rows**: the outer product of the other storage axes' sorted, distinct
  byte offsets. Jointly indexed (``POINTS``) axes form a single factor: the
  distinct points, by byte offset. Offsets are computed with numpy, never a
  Python loop per element.

Rows are read in increasing file order (one forward pass, which a gzip
source needs), except for a gather from a memory map (``ordered=False``),
where indices are taken as asked, repeats included, and nothing is sorted.
Both cases are cut into reads by the one coalescer
(:mod:`proxylib.indexing.runs`) from the byte source's cost model; rows of
at least :data:`LARGE_ROW_BYTES` are not coalesced but read one by one as
boxes (which split into blocks themselves). The plan's finish turns the
fetched array into numpy's result.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Tuple

import numpy as np

from ..io.cost import (DEFAULT_BLOCK_SIZE, DEFAULT_GAP_THRESHOLD, LOCAL_FILE_COST,
                       CostModel)
from ..spec import ArraySpec
from .readplan import Placement, ReadPlan, Rows
from .runs import choose_runs
from .selection import NEWAXIS, POINTS, AxisIndices, AxisRange, Selection

__all__ = ["plan_read", "plan_basic", "plan_rows", "with_runs_for", "ReadPlan", "CostModel",
           "choose_runs", "LARGE_ROW_BYTES", "LOCAL_FILE_COST", "DEFAULT_BLOCK_SIZE",
           "DEFAULT_GAP_THRESHOLD"]

#: Rows (boxes) at least this long are read one by one as boxes, not
#: coalesced with their neighbours: one call per row is then cheap against
#: the bytes it moves, and dense rows go straight into the result.
LARGE_ROW_BYTES = 64 * 1024

_NO_BLOCK_LIMIT = 1 << 62
_ALL = slice(None)
_REVERSED = slice(None, None, -1)


def plan_read(selection: Selection, spec: ArraySpec, cost: CostModel = LOCAL_FILE_COST,
              ordered: bool = True) -> ReadPlan:
    """Plan the reads of ``selection`` on the array ``spec``, cut for ``cost``.

    ``ordered=False`` (for a gather from a memory map, where file order buys
    nothing) keeps rows in the order asked, repeats included.
    """
    if selection.layout is None:
        return plan_basic(selection, spec, cost)
    return plan_rows(selection, spec, cost, ordered)


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
                                    transpose, tuple(finish), None))


def with_runs_for(plan: ReadPlan, cost: CostModel) -> ReadPlan:
    """``plan`` with its runs cut for ``cost`` instead (same selection, same bytes)."""
    runs = choose_runs(plan.fetch_shape, plan.byte_steps, plan.itemsize, cost)
    return tuple.__new__(ReadPlan, plan[:4] + runs + plan[8:])


def _regular(selection: Any) -> Optional[AxisRange]:
    """The selection as an AxisRange when it can be part of the inner box."""
    if isinstance(selection, AxisRange):
        return selection
    if isinstance(selection, AxisIndices):
        return selection.as_range()
    if selection is POINTS:
        return None
    return AxisRange(selection, 1, 1)


class _OuterFactors:
    """The outer factors of a plan, in storage order, and what each fetched dim is.

    Index sets are read in sorted order; distinct indices asked in another
    order are written straight to the position they were asked at
    (``positions``), so no permuting copy is needed after the read.
    """

    def __init__(self, ordered: bool) -> None:
        self.ordered = ordered
        self.factors: List[np.ndarray] = []
        self.labels: List[Any] = []              # storage axis, or POINTS
        self.flipped: List[bool] = []
        self.positions: List[Optional[np.ndarray]] = []
        self.reordered: set = set()              # labels fetched in request order
        self.points: Optional[AxisIndices] = None

    def add_range(self, selection: AxisRange, stride: int, label: int) -> None:
        first, count, step, flip = selection.ascending()
        self.factors.append((first + np.arange(count, dtype=np.int64) * step) * stride)
        self.labels.append(label)
        self.flipped.append(flip)
        self.positions.append(None)

    def add_points(self, offsets: np.ndarray, distinct: bool) -> None:
        if self.ordered:
            self.points = AxisIndices.of(offsets, distinct)
            self.add_indices(self.points, 1, POINTS)
        else:  # a gather from a map: points as asked, repeats included, no sort;
            # so the fetched order already is the requested one (identity inverse)
            flat = offsets.reshape(-1)
            self.points = AxisIndices(flat, np.arange(flat.size).reshape(offsets.shape), True)
            self._add_as_asked(flat, POINTS)

    def _add_as_asked(self, offsets: np.ndarray, label: Any) -> None:
        self.factors.append(offsets)
        self.labels.append(label)
        self.flipped.append(False)
        self.positions.append(None)
        self.reordered.add(label)

    def add_indices(self, indices: AxisIndices, scale: int, label: Any) -> None:
        if not self.ordered and not indices.sorted_request:
            self._add_as_asked(indices.unique[indices.inverse.reshape(-1)] * scale, label)
            return
        self.factors.append(indices.unique * scale)
        self.labels.append(label)
        self.flipped.append(False)
        if indices.distinct and not indices.sorted_request:
            where = np.empty(indices.unique.size, dtype=np.int64)
            where[indices.inverse.reshape(-1)] = np.arange(indices.inverse.size)
            self.positions.append(where)
            self.reordered.add(label)
        else:
            self.positions.append(None)


def plan_rows(key: Selection, spec: ArraySpec, cost: CostModel = LOCAL_FILE_COST,
              ordered: bool = True) -> ReadPlan:
    """The offset-array case of :func:`plan_read`: a box repeated at rows.

    ``ordered=False`` (for a gather from a memory map, where file order buys
    nothing) skips sorting: rows go in the order asked, repeats included.
    """
    itemsize = spec.storage_dtype.itemsize
    ndim = spec.ndim
    user_axis = (lambda s: ndim - 1 - s) if spec.order == "F" else (lambda s: s)
    selections = [key.per_axis[user_axis(s)] for s in range(ndim)]
    strides = tuple(spec.axis_strides[user_axis(s)] for s in range(ndim))

    # The inner box: of the longest suffix of regular storage axes, the part
    # whose gaps the cost model reads through (as for a basic key).
    split = ndim
    while split > 0 and _regular(selections[split - 1]) is not None:
        split -= 1
    split += _unmerged_axes([_regular(selections[s]) for s in range(split, ndim)],
                            strides[split:], itemsize, cost)
    inner_ranges = [_regular(selections[s]).ascending() for s in range(split, ndim)]
    inner_shape = tuple(r[1] for r in inner_ranges)
    inner_steps = tuple(r[2] * strides[s] for r, s in zip(inner_ranges, range(split, ndim)))
    base = spec.offset + sum(r[0] * strides[s] for r, s in zip(inner_ranges, range(split, ndim)))

    outer = _OuterFactors(ordered)
    if key.has_points and not any(selections[s] is POINTS for s in range(split)):
        outer.add_points(_point_offsets(key, spec, strides, user_axis), True)  # 0-d bools only
    for s in range(split):
        selection = selections[s]
        if selection is POINTS:
            if outer.points is None:
                outer.add_points(_point_offsets(key, spec, strides, user_axis),
                                 key.point_group.distinct)
        elif isinstance(selection, AxisIndices):
            outer.add_indices(selection, strides[s], s)
        else:
            outer.add_range(_regular(selection), strides[s], s)
    factors, labels, flipped = outer.factors, outer.labels, outer.flipped
    positions, reordered, points = outer.positions, outer.reordered, outer.points
    labels = labels + list(range(split, ndim))
    flipped = flipped + [r[3] for r in inner_ranges]

    outer_shape = tuple(len(f) for f in factors)
    row_plan, span = _row_plan(inner_shape, inner_steps, itemsize, cost)
    read_order = sorted_offsets = None
    if ordered and not _nested(factors, span):
        row_offsets = np.full(outer_shape, base, dtype=np.int64)
        for axis, factor in enumerate(factors):
            row_offsets += factor.reshape((-1,) + (1,) * (len(factors) - axis - 1))
        read_order = np.argsort(row_offsets.reshape(-1), kind="stable")
        sorted_offsets = row_offsets.reshape(-1)[read_order]
    placement = _placement(key, selections, labels, flipped, points, user_axis, reordered)
    rows = Rows(outer_shape=outer_shape, factors=tuple(factors), positions=tuple(positions),
                base=base, read_order=read_order, sorted_offsets=sorted_offsets, row_span=span,
                coalesce=span < LARGE_ROW_BYTES, cost=cost, data_offset=spec.offset,
                data_count=spec.size, placement=placement)
    return row_plan._replace(rows=rows)


def _nested(factors: List[np.ndarray], span: int) -> bool:
    """True when the C order of the factors' outer sum is strictly increasing."""
    extent = span
    for factor in reversed(factors):
        if len(factor) > 1:
            if int(np.diff(factor).min()) < extent:
                return False
            extent += int(factor[-1] - factor[0])
    return True


def _unmerged_axes(ranges: List[AxisRange], strides: Tuple[int, ...], itemsize: int,
                   cost: CostModel) -> int:
    """How many leading axes of a regular box are too sparse to read through."""
    shape = tuple(r.count for r in ranges)
    if not shape or math.prod(shape) == 0:
        return 0
    steps = tuple(abs(r.step) * stride for r, stride in zip(ranges, strides))
    unbounded = CostModel(gap_threshold=cost.gap_threshold, block_size=_NO_BLOCK_LIMIT)
    return choose_runs(shape, steps, itemsize, unbounded)[0]


def _point_offsets(key: Selection, spec: ArraySpec, strides: Tuple[int, ...],
                   user_axis: Any) -> np.ndarray:
    """Byte offsets (from the inner box's origin) of the selected points, as asked."""
    storage_of = {user_axis(s): s for s in range(spec.ndim)}
    return key.point_group.offsets(lambda axis: strides[storage_of[axis]])


def _row_plan(shape: Tuple[int, ...], steps: Tuple[int, ...], itemsize: int,
              cost: CostModel) -> Tuple[ReadPlan, int]:
    """The basic plan of one row (base 0) and its byte span."""
    plan = ReadPlan(shape, steps, 0, itemsize, *choose_runs(shape, steps, itemsize, cost),
                    transpose=False, finish_key=())
    first, stop = plan.extent
    return plan, max(stop - first, itemsize)


def _placement(key: Selection, selections: List[Any], labels: List[Any], flipped: List[bool],
               points: Optional[AxisIndices], user_axis: Any, reordered: set) -> Placement:
    basic: List[Any] = []
    kept: List[Any] = []
    in_order = []
    for label, flip in zip(labels, flipped):
        if label is not POINTS and isinstance(selections[label], (int, np.integer)):
            basic.append(0)
            continue
        basic.append(_REVERSED if flip else _ALL)
        kept.append(POINTS if label is POINTS else user_axis(label))
        in_order.append(label in reordered)
    takes = []
    for dim, (label, ordered) in enumerate(zip(kept, in_order)):
        selection = key.per_axis[label] if label is not POINTS else None
        if isinstance(selection, AxisIndices) and not (selection.sorted_request or ordered):
            takes.append((dim, selection.inverse))
    split_points = None
    if points is not None:
        dim = kept.index(POINTS)
        if points.sorted_request or POINTS in reordered:
            if len(key.point_group.broadcast_shape) != 1:
                split_points = (dim, key.point_group.broadcast_shape)
        else:
            takes.append((dim, points.inverse))
        kept[dim:dim + 1] = [("broadcast", i) for i in range(len(key.point_group.broadcast_shape))]
    targets = []
    for item in key.layout:
        if item is POINTS:
            targets.extend(("broadcast", i) for i in range(len(key.point_group.broadcast_shape)))
        elif item is not NEWAXIS:
            targets.append(item)
    transpose = tuple(kept.index(target) for target in targets)
    expand = None
    if any(item is NEWAXIS for item in key.layout):
        expand = []
        for item in key.layout:
            if item is NEWAXIS:
                expand.append(None)
            elif item is POINTS:
                expand.extend([_ALL] * len(key.point_group.broadcast_shape))
            else:
                expand.append(_ALL)
        expand = tuple(expand)
    return Placement(basic=tuple(basic), takes=tuple(takes), split_points=split_points,
                     transpose=transpose, expand=expand)
