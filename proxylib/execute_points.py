"""Execute a :class:`~proxylib.indexing.plan_points.PointPlan`: fancy reads.

Three ways to fill the fetched array (distinct rows x inner box), all in
increasing file order:

* rows of at least ``LARGE_ROW_BYTES``: each row is a basic read, handed to
  ``fetch_box`` (:func:`proxylib.execute.fetch` under the proxy's mmap and handle policy);
* short rows, memory map allowed: one vectorized gather from the map;
* short rows, reads: coalesced runs are read into one bounded buffer
  (several runs per fill) and the rows gathered from it with numpy.

Gathers are vectorized and cut into batches of ``GATHER_ELEMENTS``, so no
Python loop runs per element and index arrays stay bounded.
:func:`fetch_fancy` wires plan and fetch for one key.
"""

from __future__ import annotations

import mmap
from contextlib import ExitStack, contextmanager
from functools import partial
from itertools import accumulate
from typing import Any, Callable, Iterator, Optional, Tuple

import numpy as np

from .allocation import allocate
from .execute import fetch
from .indexing.plan_points import PointPlan, plan_points
from .indexing.selection import Selection
from .io.advice import PREFETCH_MIN_BYTES, prefetch_pages, resident, streaming
from .io.cost import CostModel
from .io.sources import ByteSource
from .scaling import Conversion
from .spec import ArraySpec

#: Most elements gathered (and index entries held) per vectorized step.
GATHER_ELEMENTS = 1 << 20

FetchBox = Callable[[Any, ByteSource, np.ndarray], None]


def fetch_fancy(key: Selection, spec: ArraySpec, source: ByteSource, cost: CostModel,
                conversion: Conversion, *, may_map: bool, map_kept: bool) -> Tuple[np.ndarray, Any]:
    """Plan and fetch one fancy key from ``source``: the fetched rows and their placement.

    The caller finishes (scales) the fetched array and applies the placement.
    """
    if may_map and map_kept:  # a kept map: gathered from, whatever the rows
        mapping = source.mapping()
        plan = plan_points(key, spec, cost, ordered=mapping is None)
    else:
        # a map made for this access only pays for short rows gathered from it; long
        # rows are read with pread, so the file is not mapped for them (issue 16)
        mapping = None
        plan = plan_points(key, spec, cost, ordered=True)
        if may_map and plan.coalesce and not plan.is_empty:
            mapping = source.mapping()
            if mapping is not None:
                plan = plan_points(key, spec, cost, ordered=False)
    fetched = allocate(plan.fetch_shape, conversion.fetch_dtype, source.name)
    if not plan.is_empty:
        fetch_points(plan, source, fetched, spec.storage_dtype,
                     mapping=mapping if plan.coalesce else None,
                     fetch_box=partial(fetch, storage_dtype=spec.storage_dtype,
                                       may_map=may_map, map_kept=map_kept,
                                       casts=conversion.casts, block_size=cost.block_size),
                     block_size=cost.block_size)
    return fetched, plan.placement


def fetch_points(plan: PointPlan, source: ByteSource, dest: np.ndarray, storage_dtype: np.dtype,
                 *, mapping: Optional[mmap.mmap], fetch_box: FetchBox,
                 block_size: int) -> None:
    """Fill ``dest`` (C-contiguous, ``plan.fetch_shape``) with the selected elements."""
    if plan.is_empty:
        return
    rows = dest.reshape((plan.row_count,) + plan.inner_shape)
    if not plan.coalesce:
        _read_rows(plan, source, rows, fetch_box)
    elif mapping is not None:
        _gather_from_mapping(plan, mapping, rows, storage_dtype)
    else:
        _gather_from_reads(plan, source, rows, storage_dtype, block_size)


def _read_rows(plan: PointPlan, source: ByteSource, rows: np.ndarray,
               fetch_box: FetchBox) -> None:
    row = plan.row_plan
    for chunk in plan.chunks():
        destination = chunk.destination
        positions = (range(destination.start, destination.stop)
                     if isinstance(destination, slice) else destination.tolist())
        for position, offset in zip(positions, chunk.offsets.tolist()):
            fetch_box(row._replace(base=offset), source, rows[position])


def _gather(plan: PointPlan, elements: np.ndarray, first_elements: np.ndarray,
            destination: Any, rows: np.ndarray) -> None:
    """Copy rows out of the 1-d array ``elements`` into ``rows[destination]``.

    ``first_elements`` gives each row's first element as an index into
    ``elements``; ``destination`` (a slice or an index array) where they go.
    """
    inner = plan.inner_element_offsets()
    per_step = max(1, GATHER_ELEMENTS // inner.size)
    shape = plan.inner_shape
    for begin in range(0, len(first_elements), per_step):
        firsts = first_elements[begin:begin + per_step]
        index = firsts if inner.size == 1 else firsts[:, None] + inner[None, :]
        values = elements[index].reshape((len(firsts),) + shape)
        if isinstance(destination, slice):
            start = destination.start + begin
            rows[start:start + len(firsts)] = values
        else:
            rows[destination[begin:begin + len(firsts)]] = values


def _gather_from_mapping(plan: PointPlan, mapping: mmap.mmap, rows: np.ndarray,
                         storage_dtype: np.dtype) -> None:
    elements = np.frombuffer(mapping, dtype=storage_dtype, count=plan.data_count,
                             offset=plan.data_offset)
    try:
        for chunk in plan.chunks():
            with _advised(plan, mapping, chunk.offsets):
                firsts = (chunk.offsets - plan.data_offset) // plan.itemsize
                _gather(plan, elements, firsts, chunk.destination, rows)
    finally:
        del elements


@contextmanager
def _advised(plan: PointPlan, mapping: mmap.mmap, offsets: np.ndarray) -> Iterator[None]:
    """Around a gather from a map (proxylib.io.advice): when the data is cold,
    coalesced runs long enough are streamed and the other points' pages asked
    for together; when warm (one ``mincore`` probe) nothing is computed."""
    if not len(offsets) or resident(mapping, int(offsets[len(offsets) // 2])) is not False:
        yield
        return
    ordered = np.sort(offsets)
    starts = plan.runs(ordered)
    first, lengths = plan.run_extents(ordered, starts)
    long = lengths >= PREFETCH_MIN_BYTES
    if not long.all():
        prefetch_pages(mapping, first[~long].tolist(), plan.row_span)
    with ExitStack() as stack:
        for offset, length in zip(first[long].tolist(), lengths[long].tolist()):
            stack.enter_context(streaming(mapping, (offset,), length))
        yield


def _gather_from_reads(plan: PointPlan, source: ByteSource, rows: np.ndarray,
                       storage_dtype: np.dtype, block_size: int) -> None:
    buffer = raw = None
    for chunk in plan.chunks():
        starts = plan.runs(chunk.offsets)
        offsets, lengths = plan.run_extents(chunk.offsets, starts)
        # a block, or less when this chunk's runs need less; never less than one run
        capacity = max(min(block_size, int(lengths.sum())), int(lengths.max()))
        if buffer is None or buffer.nbytes < capacity:
            buffer = np.empty(-(-capacity // plan.itemsize), dtype=storage_dtype)
            raw = memoryview(buffer.view(np.uint8))
        _read_chunk(plan, source, rows, chunk, starts, offsets, lengths, buffer, raw)


def _read_chunk(plan: PointPlan, source: ByteSource, rows: np.ndarray, chunk: Any,
                starts: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
                buffer: np.ndarray, raw: memoryview) -> None:
    """Read one chunk's runs, as many per buffer fill as fit, and gather its rows."""
    ends = np.cumsum(lengths)
    run = 0
    while run < len(lengths):
        done = int(ends[run - 1]) if run else 0
        stop = max(int(np.searchsorted(ends, done + buffer.nbytes, side="right")), run + 1)
        # one read per run, handed over as one batch (a remote source sends them
        # concurrently); this fill's runs sit back to back in the buffer
        fill_lengths = lengths[run:stop].tolist()
        fill_starts = [0, *accumulate(fill_lengths[:-1])]
        source.readinto_runs(offsets[run:stop].tolist(),
                             [raw[start:start + length]
                              for start, length in zip(fill_starts, fill_lengths)])
        first_row, stop_row = int(starts[run]), int(starts[stop])
        run_position = (ends[run:stop] - lengths[run:stop]) - done - offsets[run:stop]
        byte_positions = (np.repeat(run_position, np.diff(starts[run:stop + 1]))
                          + chunk.offsets[first_row:stop_row])
        destination = chunk.destination
        destination = (slice(destination.start + first_row, destination.start + stop_row)
                       if isinstance(destination, slice) else destination[first_row:stop_row])
        _gather(plan, buffer, byte_positions // plan.itemsize, destination, rows)
        run = stop
