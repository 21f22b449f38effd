"""The one plan type: what a read fetches, in which runs, and how it is finished.

Nothing here touches a file. A plan works in *storage space*: the axes in
the order bytes vary slowest to fastest (the user's axes reversed for an
F-ordered array), every step made positive. A :class:`ReadPlan` describes

* the **box**: ``fetch_shape`` elements whose element ``idx`` lives at byte
  ``base + sum(idx * byte_steps)``: the regular-stride fast case, what a
  basic key reads;
* the **runs** of the box: the storage axes split at ``grid_ndim``; every
  combination of indices on the axes before it is a run of its own (or
  several, see ``group``); the axes from it on are read through in one go,
  gaps included (see :mod:`proxylib.indexing.runs`);
* optionally **rows** (:class:`Rows`), the offset-array general case: the box
  is read at every offset of an outer product of offset arrays (index sets,
  a mask's points), short rows coalesced across small gaps;
* the **finish**: the in-memory key that undoes the storage-space view
  (transpose, reversed steps, dropped integer axes, new axes), or for rows
  a :class:`Placement` (repeats, request order, broadcast dims).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, NamedTuple, Optional, Tuple

import numpy as np

from ..io.cost import CostModel
from .runs import box_span, coalesce_runs

#: Rows whose offsets are made (and gathered, and coalesced) in one step:
#: bounds the plan's memory to a few MiB however many rows there are.
ROWS_PER_CHUNK = 1 << 18


class Run(NamedTuple):
    """One contiguous read and where its elements go."""

    offset: int          # absolute byte offset in the source
    length: int          # bytes to read
    grid_index: int      # flat index over the grid axes
    first: int           # first index on the grouped axis
    count: int           # indices on the grouped axis covered by this run


class ReadPlan(NamedTuple):
    """The one plan type: a regular-stride box, optionally repeated at an offset array.

    The box fields (``fetch_shape`` to ``dense``) describe elements
    ``base + sum(idx * byte_steps)`` and how they are cut into runs; with
    ``rows`` None that box is the whole read (the regular-stride fast case)
    and ``transpose``/``finish_key`` finish it. With ``rows`` the box is one
    row, read at each of the rows' offsets (``base`` is then 0), and the
    rows' placement finishes the read (the offset-array general case).

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
    rows: Optional["Rows"] = None

    # -- the whole read ---------------------------------------------------
    @property
    def fetched_shape(self) -> Tuple[int, ...]:
        """Shape of the array the executor fills: the box, or rows x box."""
        rows = self.rows
        return self.fetch_shape if rows is None else rows.outer_shape + self.fetch_shape

    @property
    def nothing_to_read(self) -> bool:
        rows = self.rows
        return self.run_bytes == 0 or (rows is not None and rows.row_count == 0)

    def finish(self, values: np.ndarray) -> Any:
        """numpy's result from the fetched (and scaled) values."""
        if self.rows is not None:
            return self.rows.placement.apply(values)
        if self.transpose:
            values = values.transpose()
        return values[self.finish_key]

    def element_offsets(self) -> np.ndarray:
        """Element offsets (not bytes) of the box's elements from its first, C order."""
        offsets = np.zeros(1, dtype=np.int64)
        for count, step in zip(self.fetch_shape, self.byte_steps):
            along = np.arange(count, dtype=np.int64) * (step // self.itemsize)
            offsets = (offsets[:, None] + along[None, :]).reshape(-1)
        return offsets

    # -- derived geometry of the box ------------------------------------
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
        return box_span(self.inner_shape, self.inner_steps, self.itemsize)

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
        return self.base, self.base + box_span(self.fetch_shape, self.byte_steps, self.itemsize)

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
class Rows:
    """The offset-array part of a :class:`ReadPlan`: where its box is read.

    The fetched array is ``outer_shape + box shape``: one row per
    combination of the outer ``factors`` (increasing byte offsets, one array
    per outer dim), in C order; the row made of entries ``j_k`` starts at
    ``base + sum(factors[k][j_k])`` and is fetched at index ``positions[k][j_k]``
    of outer dim ``k`` (``j_k`` itself where ``positions[k]`` is None).
    When the factors are ``nested`` (each one's steps exceed the extent of
    everything inside it), C order is file order and row offsets are made
    chunk by chunk, never all at once. Otherwise they are made once and
    sorted (``read_order``). ``coalesce`` says whether short rows are
    coalesced into runs (else every row is read on its own: the box at its
    offset). ``data_offset``/``data_count``: the array's first byte and
    element count (a gather from a map views the whole array).
    """

    outer_shape: Tuple[int, ...]
    factors: Tuple[np.ndarray, ...]
    positions: Tuple[Optional[np.ndarray], ...]
    base: int
    read_order: Optional[np.ndarray]
    sorted_offsets: Optional[np.ndarray]
    row_span: int
    coalesce: bool
    cost: CostModel
    data_offset: int
    data_count: int
    placement: Placement

    @property
    def row_count(self) -> int:
        return math.prod(self.outer_shape)

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
