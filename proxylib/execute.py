"""Execute a :class:`~proxylib.indexing.plan.ReadPlan`: the only code that reads.

:func:`fetch` is the entry point: it picks one of two ways to fill the
fetched array (:func:`choose_mapping`) and guards value casts:

* :func:`fetch_by_reads` asks a byte source for the plan's runs. Dense runs
  (nothing but wanted bytes) go straight into the destination; other runs
  go through one buffer of at most ``block_size`` bytes, from which a
  strided view is copied (and cast) into the destination.
* :func:`fetch_by_mapping` copies a strided view of a memory map.

A plan whose one dense run is the whole result is a single ``preadv`` into
it, with no further bookkeeping: the common one-volume read.
"""

from __future__ import annotations

import math
from typing import List, Optional

import mmap
import numpy as np

from .indexing.plan import ReadPlan
from .io.advice import (MAX_ADVISED_POINTS, PREFETCH_MIN_BYTES, prefetch_pages, resident,
                        streaming)
from .io.sources import ByteSource

#: A dense run at least this long is read with pread even when a memory map
#: is allowed: one copy from the page cache beats page faults.
DIRECT_READ_MIN_RUN = 64 * 1024


#: With a map made for this access only, sparse reads use it when pread would
#: read at least this many times the wanted bytes (and at least WASTE_MIN_BYTES).
WASTE_RATIO_FOR_FRESH_MAP = 4
WASTE_MIN_BYTES = 1 << 20


def fetch(plan: ReadPlan, source: ByteSource, dest: np.ndarray, storage_dtype: np.dtype, *,
          may_map: bool, map_kept: bool, casts: bool, block_size: int) -> None:
    """Fill ``dest`` (C-contiguous, ``plan.fetch_shape``) with the plan's box.

    ``may_map``: the proxy allows memory maps; ``map_kept``: a map lives as
    long as the handle; ``casts``: ``dest`` has another dtype than the stored
    values (not just another byte order), so the copy converts values.
    """
    run_bytes = plan.run_bytes
    if not run_bytes:  # nothing selected (plan.is_empty, without a property call)
        return
    if plan.dense and run_bytes == dest.nbytes and dest.dtype == storage_dtype and (
            run_bytes >= DIRECT_READ_MIN_RUN or not (may_map and map_kept)):
        # one dense run that is the whole result: choose_mapping's answer is pread
        # (asked here without the call: this is the one-volume read)
        try:
            view = memoryview(dest).cast("B")
        except (TypeError, ValueError):  # records with out-of-order fields export no buffer
            view = memoryview(dest.reshape(-1).view(np.uint8))
        source.readinto(plan.base, view)
        return
    mapping = source.mapping() if may_map and choose_mapping(plan, True, map_kept) else None
    if not casts:  # bytes only: no floating-point state to guard
        _fetch_with(plan, source, mapping, dest, storage_dtype, block_size)
        return
    # casting stored values into ``dest``: a signalling NaN stays NaN, a value out of
    # range becomes +-inf, with no numpy warning (see proxylib.scaling)
    with np.errstate(over="ignore", invalid="ignore"):
        _fetch_with(plan, source, mapping, dest, storage_dtype, block_size)


def _fetch_with(plan: ReadPlan, source: ByteSource, mapping: Optional[mmap.mmap],
                dest: np.ndarray, storage_dtype: np.dtype, block_size: int) -> None:
    if mapping is not None:
        fetch_by_mapping(plan, mapping, dest, storage_dtype)
    else:
        fetch_by_reads(plan, source, dest, storage_dtype, block_size)


def choose_mapping(plan: ReadPlan, mapping_allowed: bool, mapping_kept: bool) -> bool:
    """True when a memory-map copy is the cheaper way to serve ``plan``.

    Dense runs of at least ``DIRECT_READ_MIN_RUN`` bytes are always read with
    pread. A kept map (already made, pages already faulted in) serves every
    other plan. A map made for one access costs its set-up and a page fault
    per region touched, so it only pays when pread would read mostly gaps.
    """
    if not mapping_allowed or plan.is_empty:
        return False
    if plan.dense and plan.run_bytes >= DIRECT_READ_MIN_RUN:
        return False
    if mapping_kept:
        return True
    read = plan.read_bytes
    return read >= WASTE_MIN_BYTES and read >= WASTE_RATIO_FOR_FRESH_MAP * plan.selected_bytes


def fetch_by_mapping(plan: ReadPlan, mapping: mmap.mmap, dest: np.ndarray,
                     storage_dtype: np.dtype) -> None:
    """Copy the selection out of a memory map into ``dest`` (casting as needed)."""
    if plan.is_empty:
        return
    # tell the kernel what the copy touches (see proxylib.io.advice): a plan whose runs
    # read through (a volume, an x-slab) streams its extent; a sparse one asks for its
    # rows' own pages together when they are cold
    dense = plan.run_bytes >= PREFETCH_MIN_BYTES
    if (not dense and math.prod(plan.grid_shape) <= MAX_ADVISED_POINTS
            and resident(mapping, plan.extent[1] - plan.itemsize) is False):
        prefetch_pages(mapping, [offset for _, batch in plan.iter_runs() for offset in
                                 batch.tolist()], plan.run_length(plan.grouped_count))
    first, stop = plan.extent
    view = np.ndarray(plan.fetch_shape, dtype=storage_dtype, buffer=mapping,
                      offset=plan.base, strides=plan.byte_steps)
    try:
        with streaming(mapping, (first,) if dense else (), stop - first):
            np.copyto(dest, view, casting="unsafe")
    finally:
        del view


def fetch_by_reads(plan: ReadPlan, source: ByteSource, dest: np.ndarray,
                   storage_dtype: np.dtype, block_size: Optional[int] = None) -> None:
    """Read the plan's runs from ``source`` into ``dest`` (C-contiguous)."""
    if plan.is_empty:
        return
    direct = dest.dtype == storage_dtype and plan.dense
    block_size = source.cost.block_size if block_size is None else block_size
    rows = dest.reshape((math.prod(plan.grid_shape), plan.grouped_count) + plan.inner_shape)
    if plan.group == plan.grouped_count:
        if direct:
            _read_rows_direct(plan, source, rows)
        else:
            _read_rows_buffered(plan, source, rows, storage_dtype, block_size)
    else:
        _read_groups(plan, source, rows, storage_dtype, direct)


def _read_rows_direct(plan: ReadPlan, source: ByteSource, rows: np.ndarray) -> None:
    row_bytes = rows.reshape(rows.shape[0], -1).view(np.uint8)
    if rows.shape[0] == 1:
        source.readinto(plan.base, memoryview(row_bytes[0]))
        return
    for flat, offsets in plan.iter_runs():
        source.readinto_runs(offsets.tolist(),
                             [memoryview(row_bytes[index]) for index in flat.tolist()])


def _read_rows_buffered(plan: ReadPlan, source: ByteSource, rows: np.ndarray,
                        storage_dtype: np.dtype, block_size: int) -> None:
    run_length = plan.run_bytes
    per_buffer = max(1, min(block_size // run_length, rows.shape[0]))
    buffer = np.empty(per_buffer * run_length, dtype=np.uint8)
    view = memoryview(buffer)
    run_shape = (plan.grouped_count,) + plan.inner_shape
    run_steps = (plan.grouped_step,) + plan.inner_steps
    for flat, offsets in plan.iter_runs(batch=per_buffer):
        count = len(offsets)
        source.readinto_runs(offsets.tolist(), [view[slot * run_length:(slot + 1) * run_length]
                                                for slot in range(count)])
        selected = np.ndarray((count,) + run_shape, dtype=storage_dtype, buffer=buffer,
                              strides=(run_length,) + run_steps)
        first = int(flat[0])
        np.copyto(rows[first:first + count], selected, casting="unsafe")


def _read_groups(plan: ReadPlan, source: ByteSource, rows: np.ndarray,
                 storage_dtype: np.dtype, direct: bool) -> None:
    if direct:
        _read_groups_direct(plan, source, rows)
        return
    buffer = np.empty(plan.run_bytes, dtype=np.uint8)
    run_steps = (plan.grouped_step,) + plan.inner_steps
    for run in plan.iter_grouped_runs():
        target = rows[run.grid_index, run.first:run.first + run.count]
        source.readinto(run.offset, memoryview(buffer)[:run.length])
        selected = np.ndarray((run.count,) + plan.inner_shape, dtype=storage_dtype,
                              buffer=buffer, strides=run_steps)
        np.copyto(target, selected, casting="unsafe")


#: Direct block-sized runs handed to the source per call: one call lets a
#: source work on many at once (the gzip source decompresses them in parallel
#: threads) while the list of views stays short.
DIRECT_RUNS_PER_CALL = 256


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
