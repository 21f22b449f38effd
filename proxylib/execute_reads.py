"""Serve a plan with positional reads: straight into the result, or through one buffer.

The reads strategy of :mod:`proxylib.execute`. Runs that hold nothing but
wanted bytes, stored as the result wants them, are read straight into the
result (:func:`read_box`). Every other read goes through
:func:`read_through`: runs in file order are read into one bounded buffer,
as many per fill as fit, in one ``readinto_runs`` call per fill (a remote
source sends them concurrently), and after each fill the wanted elements are
copied out: a strided view for a box, an element gather for rows.
"""

from __future__ import annotations

import math
from itertools import accumulate
from typing import Callable, List

import numpy as np

from .execute_map import gather_elements
from .indexing.readplan import ReadPlan
from .io.sources import ByteSource

#: Direct block-sized runs handed to the source per call: one call lets a
#: source work on many at once (the gzip source decompresses them in parallel
#: threads) while the list of views stays short.
DIRECT_RUNS_PER_CALL = 256


def read_through(source: ByteSource, offsets: np.ndarray, lengths: np.ndarray,
                 buffer: np.ndarray, place: Callable[[int, int, np.ndarray], None]) -> None:
    """Read runs ``[offsets, offsets + lengths)`` (file order) through ``buffer``.

    Each fill holds consecutive runs back to back (at least one, so the
    buffer must hold the longest run). After a fill of runs ``run:stop``,
    ``place(run, stop, starts)`` copies them out; ``starts[k]`` is where run
    ``run + k`` begins in the buffer, in bytes.
    """
    raw = memoryview(buffer.reshape(-1).view(np.uint8))
    capacity = len(raw)
    ends = np.cumsum(lengths)
    run, count = 0, len(lengths)
    while run < count:
        done = int(ends[run - 1]) if run else 0
        stop = max(int(np.searchsorted(ends, done + capacity, side="right")), run + 1)
        fill_lengths = lengths[run:stop].tolist()
        fill_starts = [0, *accumulate(fill_lengths[:-1])]
        source.readinto_runs(offsets[run:stop].tolist(),
                             [raw[start:start + length]
                              for start, length in zip(fill_starts, fill_lengths)])
        place(run, stop, np.asarray(fill_starts, dtype=np.int64))
        run = stop


def read_box(plan: ReadPlan, source: ByteSource, dest: np.ndarray,
             storage_dtype: np.dtype, block_size: int) -> None:
    """Read a box's runs from ``source`` into ``dest`` (C-contiguous, the box's shape)."""
    if plan.is_empty:
        return
    direct = dest.dtype == storage_dtype and plan.dense
    rows = dest.reshape((math.prod(plan.grid_shape), plan.grouped_count) + plan.inner_shape)
    whole_rows = plan.group == plan.grouped_count
    if direct and whole_rows:
        _read_rows_direct(plan, source, rows)
    elif direct:
        _read_groups_direct(plan, source, rows)
    elif whole_rows:
        _read_rows_buffered(plan, source, rows, storage_dtype, block_size)
    else:
        _read_groups_buffered(plan, source, rows, storage_dtype)


def _read_rows_direct(plan: ReadPlan, source: ByteSource, rows: np.ndarray) -> None:
    row_bytes = rows.reshape(rows.shape[0], -1).view(np.uint8)
    if rows.shape[0] == 1:
        source.readinto(plan.base, memoryview(row_bytes[0]))
        return
    for flat, offsets in plan.iter_runs():
        source.readinto_runs(offsets.tolist(),
                             [memoryview(row_bytes[index]) for index in flat.tolist()])


def _read_groups_direct(plan: ReadPlan, source: ByteSource, rows: np.ndarray) -> None:
    offsets: List[int] = []
    views: List[memoryview] = []
    for run in plan.iter_grouped_runs():
        target = rows[run.grid_index, run.first:run.first + run.count]
        offsets.append(run.offset)
        views.append(memoryview(target.reshape(-1).view(np.uint8)))
        if len(views) == DIRECT_RUNS_PER_CALL:
            source.readinto_runs(offsets, views)
            offsets, views = [], []
    if views:
        source.readinto_runs(offsets, views)


def _read_rows_buffered(plan: ReadPlan, source: ByteSource, rows: np.ndarray,
                        storage_dtype: np.dtype, block_size: int) -> None:
    """Whole-row runs of equal length: a fill is a stack of runs, copied as one view."""
    run_length = plan.run_bytes
    per_buffer = max(1, min(block_size // run_length, rows.shape[0]))
    buffer = np.empty(per_buffer * run_length, dtype=np.uint8)
    run_shape = (plan.grouped_count,) + plan.inner_shape
    run_strides = (run_length, plan.grouped_step) + plan.inner_steps
    for flat, offsets in plan.iter_runs():
        first_row = int(flat[0])  # the grid cells of a batch are consecutive

        def place(run: int, stop: int, starts: np.ndarray) -> None:
            selected = np.ndarray((stop - run,) + run_shape, dtype=storage_dtype, buffer=buffer,
                                  strides=run_strides)
            np.copyto(rows[first_row + run:first_row + stop], selected, casting="unsafe")

        read_through(source, offsets, np.full(len(offsets), run_length, dtype=np.int64),
                     buffer, place)


def _read_groups_buffered(plan: ReadPlan, source: ByteSource, rows: np.ndarray,
                          storage_dtype: np.dtype) -> None:
    """Runs cut into groups (each at most a block): copied out one view per run."""
    runs = list(plan.iter_grouped_runs())
    buffer = np.empty(plan.run_bytes, dtype=np.uint8)
    run_steps = (plan.grouped_step,) + plan.inner_steps

    def place(run: int, stop: int, starts: np.ndarray) -> None:
        for each, start in zip(runs[run:stop], starts.tolist()):
            selected = np.ndarray((each.count,) + plan.inner_shape, dtype=storage_dtype,
                                  buffer=buffer, offset=start, strides=run_steps)
            np.copyto(rows[each.grid_index, each.first:each.first + each.count], selected,
                      casting="unsafe")

    read_through(source, np.array([run.offset for run in runs], dtype=np.int64),
                 np.array([run.length for run in runs], dtype=np.int64), buffer, place)


def read_rows(plan: ReadPlan, source: ByteSource, rows: np.ndarray, storage_dtype: np.dtype,
              block_size: int) -> None:
    """Read a plan's coalesced rows through one buffer and gather them into ``rows``."""
    layout = plan.rows
    itemsize = plan.itemsize
    buffer = None
    for chunk in layout.chunks():
        starts = layout.runs(chunk.offsets)
        offsets, lengths = layout.run_extents(chunk.offsets, starts)
        # a block, or less when this chunk's runs need less; never less than one run
        capacity = max(min(block_size, int(lengths.sum())), int(lengths.max()))
        if buffer is None or buffer.nbytes < capacity:
            buffer = np.empty(-(-capacity // itemsize), dtype=storage_dtype)
        _read_chunk(plan, source, rows, chunk, starts, offsets, lengths, buffer)


def _read_chunk(plan: ReadPlan, source: ByteSource, rows: np.ndarray, chunk: object,
                starts: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
                buffer: np.ndarray) -> None:
    """One chunk of rows: its runs read through ``buffer``, its rows gathered after each fill."""
    row_offsets = chunk.offsets
    destination = chunk.destination

    def place(run: int, stop: int, fill_starts: np.ndarray) -> None:
        first_row, stop_row = int(starts[run]), int(starts[stop])
        shift = fill_starts - offsets[run:stop]  # buffer position minus file offset, per run
        byte_positions = np.repeat(shift, np.diff(starts[run:stop + 1])) + \
            row_offsets[first_row:stop_row]
        where = (slice(destination.start + first_row, destination.start + stop_row)
                 if isinstance(destination, slice) else destination[first_row:stop_row])
        gather_elements(plan, buffer, byte_positions // plan.itemsize, where, rows)

    read_through(source, offsets, lengths, buffer, place)
