"""Copy a plan's elements out of memory: a memory map, or a buffer of runs just read.

The map strategy of :mod:`proxylib.execute`: a box is one strided view of
the map, copied (and cast) into the result; rows are gathered element-wise
(:func:`gather_elements`, also used on the read-through buffer of
:mod:`proxylib.execute_reads`). Both tell the kernel what the copy will touch
by one policy (:func:`advised`, measurements in :mod:`proxylib.io.advice`):
nothing when the data is resident (one ``mincore`` probe); when it is cold,
spans a copy reads through are streamed and the short ones asked for
together, so their disk reads overlap.

Gathers are vectorized and cut into batches of ``GATHER_ELEMENTS``, so no
Python loop runs per element and index arrays stay bounded.
"""

from __future__ import annotations

import math
import mmap
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any, Callable, Iterator, Tuple

import numpy as np

from .indexing.readplan import ReadPlan
from .io.advice import MAX_ADVISED_POINTS, PREFETCH_MIN_BYTES, prefetch_pages, resident, streaming

#: Most elements gathered (and index entries held) per vectorized step.
GATHER_ELEMENTS = 1 << 20


Spans = Tuple[np.ndarray, np.ndarray]


@contextmanager
def advised(mapping: mmap.mmap, probe: int, spans: Callable[[], Spans]) -> Iterator[None]:
    """Around a copy out of ``mapping`` that reads ``spans()`` (offsets, lengths).

    When the page holding byte ``probe`` (one the copy touches) is not
    resident: spans of at least ``PREFETCH_MIN_BYTES`` are streamed
    (:func:`~proxylib.io.advice.streaming`), the shorter ones asked for
    together (``MADV_WILLNEED``). When it is resident, the spans are not even
    computed.
    """
    if resident(mapping, probe) is not False:
        yield
        return
    offsets, lengths = spans()
    if not len(offsets):
        yield
        return
    long = lengths >= PREFETCH_MIN_BYTES
    if not long.all():
        prefetch_pages(mapping, offsets[~long].tolist(), int(lengths[~long].max()))
    with ExitStack() as stack:
        for offset, length in zip(offsets[long].tolist(), lengths[long].tolist()):
            stack.enter_context(streaming(mapping, (offset,), length))
        yield


def copy_box_from_map(plan: ReadPlan, mapping: mmap.mmap, dest: np.ndarray,
                      storage_dtype: np.dtype) -> None:
    """Copy a box out of a memory map into ``dest`` (casting as needed)."""
    if plan.is_empty:
        return
    first, stop = plan.extent

    def spans() -> Spans:
        if plan.run_bytes >= PREFETCH_MIN_BYTES:  # runs read through (a volume, an x-slab)
            return np.array([first]), np.array([stop - first])
        if math.prod(plan.grid_shape) > MAX_ADVISED_POINTS:  # too many to advise one by one
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        offsets = np.concatenate([batch for _, batch in plan.iter_runs()])  # each run's pages
        return offsets, np.full(offsets.shape, plan.run_length(plan.grouped_count))

    view = np.ndarray(plan.fetch_shape, dtype=storage_dtype, buffer=mapping,
                      offset=plan.base, strides=plan.byte_steps)
    try:
        with advised(mapping, stop - plan.itemsize, spans):
            np.copyto(dest, view, casting="unsafe")
    finally:
        del view


def gather_rows_from_map(plan: ReadPlan, mapping: mmap.mmap, rows: np.ndarray,
                         storage_dtype: np.dtype) -> None:
    """Gather every row of ``plan`` out of a memory map into ``rows`` (rows x box)."""
    layout = plan.rows
    elements = np.frombuffer(mapping, dtype=storage_dtype, count=layout.data_count,
                             offset=layout.data_offset)
    try:
        for chunk in layout.chunks():
            offsets = chunk.offsets
            if not len(offsets):
                continue
            with advised(mapping, int(offsets[len(offsets) // 2]),
                         partial(_row_spans, layout, offsets)):
                firsts = (chunk.offsets - layout.data_offset) // plan.itemsize
                gather_elements(plan, elements, firsts, chunk.destination, rows)
    finally:
        del elements


def _row_spans(layout: Any, offsets: np.ndarray) -> Spans:
    """The coalesced runs (offsets, lengths) that rows at ``offsets`` make."""
    ordered = np.sort(offsets)
    return layout.run_extents(ordered, layout.runs(ordered))


def gather_elements(plan: ReadPlan, elements: np.ndarray, first_elements: np.ndarray,
                    destination: Any, rows: np.ndarray) -> None:
    """Copy boxes out of the 1-d array ``elements`` into ``rows[destination]``.

    ``first_elements`` gives each box's first element as an index into
    ``elements``; ``destination`` (a slice or an index array) where they go.
    """
    inner = plan.element_offsets()
    per_step = max(1, GATHER_ELEMENTS // inner.size)
    shape = plan.fetch_shape
    for begin in range(0, len(first_elements), per_step):
        firsts = first_elements[begin:begin + per_step]
        index = firsts if inner.size == 1 else firsts[:, None] + inner[None, :]
        values = elements[index].reshape((len(firsts),) + shape)
        if isinstance(destination, slice):
            start = destination.start + begin
            rows[start:start + len(firsts)] = values
        else:
            rows[destination[begin:begin + len(firsts)]] = values
