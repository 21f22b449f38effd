"""Pure read planning for fancy keys: (:class:`Selection`, layout, cost) -> :class:`PointPlan`.

Nothing here touches a file. Like :mod:`~proxylib.indexing.plan`, the plan
works in storage space (user axes reversed for F order). The selection is
cut into

* an **inner box**: the longest run of fastest-varying storage axes that are
  regular (ints, slices, evenly spaced index sets). One *row* is one such
  box, read like a basic key (:class:`~proxylib.indexing.plan.ReadPlan`);
* **rows**: the outer product of the other storage axes' sorted, distinct
  byte offsets. Jointly indexed (``POINTS``) axes form a single factor: the
  distinct points, by byte offset. Offsets are computed with numpy, never a
  Python loop per element.

Rows are read in increasing file order (one forward pass, which a gzip
source needs), except for a gather from a memory map (``ordered=False``),
where indices are taken as asked, repeats included, and nothing is sorted.
Short rows are coalesced into runs across gaps up to the cost
model's ``gap_threshold`` and cut at ``block_size``; rows of at least
:data:`LARGE_ROW_BYTES` are read one by one as basic reads (which split them
into blocks themselves). A :class:`Placement` then turns the fetched array
(distinct rows x inner box) into numpy's result: reversed slices, dropped
integer axes, repeats and order of the requested indices, axis placement and
new axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np

from ..spec import ArraySpec
from .plan import LOCAL_FILE_COST, CostModel, ReadPlan, choose_runs
from .selection import NEWAXIS, POINTS, AxisIndices, AxisRange, Selection

#: Rows (inner boxes) at least this long are read one by one as basic reads,
#: not coalesced with their neighbours: one call per row is then cheap
#: against the bytes it moves, and dense rows go straight into the result.
LARGE_ROW_BYTES = 64 * 1024

#: Rows whose offsets are made (and gathered, and coalesced) in one step:
#: bounds the plan's memory to a few MiB however many rows there are.
ROWS_PER_CHUNK = 1 << 18

_NO_BLOCK_LIMIT = 1 << 62
_ALL = slice(None)
_REVERSED = slice(None, None, -1)


@dataclass(frozen=True, eq=False)
class Placement:
    """The in-memory steps from the fetched array to numpy's result.

    Applied in order: ``basic`` (reverse flipped slices, drop integer axes),
    ``takes`` (``np.take(values, inverse, axis)``: repeats, request order and,
    for points, the broadcast shape), ``split_points`` (``(axis, shape)``: the
    broadcast shape of points fetched in request order), ``transpose``, then
    ``expand`` (new axes).
    """

    basic: Tuple[Any, ...]
    takes: Tuple[Tuple[int, np.ndarray], ...]
    split_points: Optional[Tuple[int, Tuple[int, ...]]]
    transpose: Tuple[int, ...]
    expand: Optional[Tuple[Any, ...]]

    def apply(self, values: np.ndarray) -> np.ndarray:
        values = values[self.basic]
        for axis, inverse in self.takes:
            values = np.take(values, inverse, axis=axis)
        if self.split_points is not None:
            axis, shape = self.split_points
            values = values.reshape(values.shape[:axis] + shape + values.shape[axis + 1:])
        if self.transpose != tuple(range(values.ndim)):
            values = values.transpose(self.transpose)
        if self.expand is not None:
            values = values[self.expand]
        return values


@dataclass(frozen=True, eq=False)
class RowChunk:
    """Rows ``first:first + len(offsets)`` in file order: their byte offsets and
    where they go in the fetched rows (a slice, or an index array)."""

    first: int
    offsets: np.ndarray
    destination: Any


@dataclass(frozen=True, eq=False)
class PointPlan:
    """Frozen description of one fancy read; see the module docstring.

    ``fetch_shape`` is ``outer_shape + row_plan.fetch_shape``: one row per
    combination of the outer ``factors`` (increasing byte offsets, one array
    per outer dim), in C order; the row made of entries ``j_k`` starts at
    ``base + sum(factors[k][j_k])`` and is fetched at index ``positions[k][j_k]``
    of outer dim ``k`` (``j_k`` itself where ``positions[k]`` is None).
    When the factors are ``nested`` (each one's steps exceed the extent of
    everything inside it), C order is file order and row offsets are made
    chunk by chunk, never all at once. Otherwise they are made once and
    sorted (``read_order``). ``coalesce`` says whether short rows are
    coalesced into runs (else every row is read on its own with ``row_plan``
    at its offset).
    """

    fetch_shape: Tuple[int, ...]
    outer_shape: Tuple[int, ...]
    factors: Tuple[np.ndarray, ...]
    positions: Tuple[Optional[np.ndarray], ...]
    base: int
    read_order: Optional[np.ndarray]
    sorted_offsets: Optional[np.ndarray]
    row_plan: ReadPlan
    row_span: int
    coalesce: bool
    cost: CostModel
    data_offset: int
    data_count: int
    placement: Placement

    @property
    def itemsize(self) -> int:
        return self.row_plan.itemsize

    @property
    def inner_shape(self) -> Tuple[int, ...]:
        return self.row_plan.fetch_shape

    @property
    def row_count(self) -> int:
        return math.prod(self.outer_shape)

    @property
    def is_empty(self) -> bool:
        return math.prod(self.fetch_shape) == 0

    @property
    def selected_bytes(self) -> int:
        return math.prod(self.fetch_shape) * self.itemsize

    def chunks(self, rows: Optional[int] = None) -> Iterator[RowChunk]:
        """The rows in file order, about ``rows`` (default ``ROWS_PER_CHUNK``) at a time."""
        rows = rows or ROWS_PER_CHUNK
        if self.sorted_offsets is not None:
            for first in range(0, self.row_count, rows):
                stop = min(first + rows, self.row_count)
                destination = self._fetched_rows(self.read_order[first:stop])
                yield RowChunk(first, self.sorted_offsets[first:stop], destination)
            return
        if not self.factors:
            yield RowChunk(0, np.full(1, self.base, dtype=np.int64), slice(0, 1))
            return
        # whole runs of the innermost factor per chunk (or slices of one run)
        last = self.factors[-1]
        length, lead_shape = len(last), self.outer_shape[:-1]
        leads = math.prod(lead_shape)
        per_chunk = max(1, rows // max(length, 1))
        for lead in range(0, leads if length else 0, per_chunk):
            lead_stop = min(lead + per_chunk, leads)
            lead_offsets = np.full(lead_stop - lead, self.base, dtype=np.int64)
            lead_rows = np.arange(lead, lead_stop)
            if lead_shape:
                coords = np.unravel_index(lead_rows, lead_shape)
                for factor, coord in zip(self.factors, coords):
                    lead_offsets += factor[coord]
            lead_rows = self._fetched_rows(lead_rows, self.positions[:-1], lead_shape)
            where = self.positions[-1]
            for begin in range(0, length, rows):  # one pass unless length > rows
                part = last[begin:begin + rows]
                first = lead * length + begin
                offsets = (lead_offsets[:, None] + part[None, :]).reshape(-1)
                if all(w is None for w in self.positions):
                    destination = slice(first, first + len(offsets))
                else:
                    inner = (np.arange(begin, begin + len(part)) if where is None
                             else where[begin:begin + len(part)])
                    destination = (lead_rows[:, None] * length + inner[None, :]).reshape(-1)
                yield RowChunk(first, offsets, destination)

    def _fetched_rows(self, rows: np.ndarray, positions: Optional[Tuple] = None,
                      shape: Optional[Tuple[int, ...]] = None) -> Any:
        """Where C-order rows of the sorted factors go in the fetched array."""
        positions = self.positions if positions is None else positions
        shape = self.outer_shape if shape is None else shape
        if all(where is None for where in positions):
            return rows
        coords = np.unravel_index(rows, shape)
        mapped = [c if where is None else where[c] for c, where in zip(coords, positions)]
        return np.ravel_multi_index(mapped, shape)

    def runs(self, offsets: np.ndarray) -> np.ndarray:
        """``run_starts`` of one chunk's sorted offsets (see :func:`coalesce_runs`)."""
        return coalesce_runs(offsets, self.row_span, self.cost)

    def run_extents(self, offsets: np.ndarray, starts: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``(offsets, lengths)`` in bytes of the runs ``starts`` cuts ``offsets`` into."""
        first = offsets[starts[:-1]]
        return first, offsets[starts[1:] - 1] + self.row_span - first

    @property
    def read_bytes(self) -> int:
        """Bytes the plan reads, gaps included (computes the runs)."""
        if self.is_empty:
            return 0
        if not self.coalesce:
            return self.row_count * self.row_span
        return sum(int(self.run_extents(chunk.offsets, self.runs(chunk.offsets))[1].sum())
                   for chunk in self.chunks())

    def inner_element_offsets(self) -> np.ndarray:
        """Element offsets (not bytes) of one row's elements from its first, C order."""
        offsets = np.zeros(1, dtype=np.int64)
        for count, step in zip(self.row_plan.fetch_shape, self.row_plan.byte_steps):
            along = np.arange(count, dtype=np.int64) * (step // self.itemsize)
            offsets = (offsets[:, None] + along[None, :]).reshape(-1)
        return offsets


def _regular(selection: Any) -> Optional[AxisRange]:
    """The selection as an AxisRange when it can be part of the inner box."""
    if isinstance(selection, AxisRange):
        return selection
    if isinstance(selection, AxisIndices):
        return selection.as_range()
    if selection is POINTS:
        return None
    return AxisRange(selection, 1, 1)


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


def plan_points(key: Selection, spec: ArraySpec, cost: CostModel = LOCAL_FILE_COST,
                ordered: bool = True) -> PointPlan:
    """Plan the reads for a normalized fancy key on the array ``spec``.

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
    return PointPlan(fetch_shape=outer_shape + inner_shape, outer_shape=outer_shape,
                     factors=tuple(factors), positions=tuple(positions), base=base,
                     read_order=read_order,
                     sorted_offsets=sorted_offsets, row_plan=row_plan, row_span=span,
                     coalesce=span < LARGE_ROW_BYTES, cost=cost, data_offset=spec.offset,
                     data_count=spec.size, placement=placement)


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
