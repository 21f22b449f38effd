"""The one executor: fill the fetched array of a :class:`ReadPlan`. The only code that reads.

:func:`read` plans (:func:`~proxylib.indexing.plan.plan_read`) and serves one
selection from a byte source; :func:`fetch` fills a given array. One chooser (:func:`choose_mapping`) picks, for every
plan, one of two ways:

* **reads** (:mod:`proxylib.execute_reads`): positional reads of the plan's
  runs. Dense runs (nothing but wanted bytes) go straight into the result;
  other runs go through one bounded read-through buffer, from which a
  strided view (a box) or an element gather (rows) is copied;
* **map** (:mod:`proxylib.execute_map`): a copy out of a memory map, a
  strided view (a box) or an element gather (rows), with the kernel told
  what the copy touches when the data is cold (:mod:`proxylib.io.advice`).

Rows on a warm file that the chooser would serve from a map made for one
access are the one case decided by measurement, not by the plan
(:mod:`proxylib.execute_measured`): which way is cheaper there depends on
how the pages came into the page cache.

A plan whose one dense run is the whole result is a single ``preadv`` into
it, with no further bookkeeping: the common one-volume read. Rows of at
least ``LARGE_ROW_BYTES`` (not coalesced) are each served as a box, with the
chooser asked per box.
"""

from __future__ import annotations

from typing import Iterable, Iterator, List, Optional, Tuple

import mmap
import numpy as np

from .allocation import allocate
from .execute_map import copy_box_from_map, gather_rows_from_map
from .execute_measured import Trial
from .execute_reads import read_box, read_rows
from .indexing.plan import plan_read
from .indexing.readplan import ReadPlan, Rows
from .indexing.selection import Selection
from .io.cost import CostModel
from .io.sources import ByteSource
from .scaling import Conversion
from .spec import ArraySpec

#: A dense run at least this long is read with pread even when a memory map
#: is allowed: one copy from the page cache beats page faults.
DIRECT_READ_MIN_RUN = 64 * 1024

#: With a map made for this access only, sparse reads use it when pread would
#: read at least this many times the wanted bytes (and at least WASTE_MIN_BYTES).
WASTE_RATIO_FOR_FRESH_MAP = 4
WASTE_MIN_BYTES = 1 << 20


def choose_mapping(plan: ReadPlan, mapping_allowed: bool, mapping_kept: bool) -> bool:
    """True when a memory-map copy is the cheaper way to serve ``plan``.

    A box: dense runs of at least ``DIRECT_READ_MIN_RUN`` bytes are always
    read with pread. A kept map (already made, pages already faulted in)
    serves every other box. A map made for one access costs its set-up and a
    page fault per region touched, so it only pays when pread would read
    mostly gaps. Rows: a kept map serves them all (long rows then choose per
    box); a map made for this access pays only for short rows gathered from
    it, so long rows are not mapped for (issue 16).
    """
    if not mapping_allowed or plan.nothing_to_read:
        return False
    rows = plan.rows
    if rows is not None:
        return mapping_kept or rows.coalesce
    if plan.dense and plan.run_bytes >= DIRECT_READ_MIN_RUN:
        return False
    if mapping_kept:
        return True
    read = plan.read_bytes
    return read >= WASTE_MIN_BYTES and read >= WASTE_RATIO_FOR_FRESH_MAP * plan.selected_bytes


def read(selection: Optional[Selection], plan: Optional[ReadPlan], spec: ArraySpec,
         source: ByteSource, cost: CostModel, conversion: Conversion, *, may_map: bool,
         map_kept: bool, trial: Optional[Trial] = None) -> Tuple[np.ndarray, ReadPlan]:
    """Plan (unless ``plan`` is given: a remembered one) and fetch ``selection`` from ``source``.

    Returns the fetched array (``conversion.fetch_dtype``) and the plan that
    finishes it. Rows that will be gathered from a map are planned as asked
    (``ordered=False``: no sort, repeats read in place): at once when a kept
    map serves every fancy read, else after the chooser saw the sorted plan.
    ``trial``: the access's timing (:mod:`proxylib.execute_measured`), which
    decides between a fresh map and preads for rows the chooser would map
    for this access alone, on a warm file.
    """
    if plan is None:
        kept_map = (may_map and map_kept and not selection.is_basic
                    and source.mapping() is not None)
        plan = plan_read(selection, spec, cost, ordered=not kept_map)
        if (plan.rows is not None and not kept_map and may_map
                and choose_mapping(plan, True, map_kept) and source.mapping() is not None):
            if trial is None or trial.choose(True, plan.rows.row_count):
                plan = plan_read(selection, spec, cost, ordered=False)
            else:
                may_map = False
    fetched = allocate(plan.fetched_shape, conversion.fetch_dtype, source.name)
    fetch(plan, source, fetched, spec.storage_dtype, may_map=may_map, map_kept=map_kept,
          casts=conversion.casts, block_size=cost.block_size)
    return fetched, plan


def fetch(plan: ReadPlan, source: ByteSource, dest: np.ndarray, storage_dtype: np.dtype, *,
          may_map: bool, map_kept: bool, casts: bool, block_size: int) -> None:
    """Fill ``dest`` (C-contiguous, ``plan.fetched_shape``) with the plan's elements.

    ``may_map``: the proxy allows memory maps; ``map_kept``: a map lives as
    long as the handle; ``casts``: ``dest`` has another dtype than the stored
    values (not just another byte order), so the copy converts values.
    """
    run_bytes = plan.run_bytes
    if not run_bytes:  # nothing selected (plan.is_empty, without a property call)
        return
    if plan.dense and run_bytes == dest.nbytes and dest.dtype == storage_dtype and (
            run_bytes >= DIRECT_READ_MIN_RUN or not (may_map and map_kept)) and plan.rows is None:
        # one dense box run that is the whole result: choose_mapping's answer is pread
        # (asked here without the call: this is the one-volume read)
        try:
            view = memoryview(dest).cast("B")
        except (TypeError, ValueError):  # records with out-of-order fields export no buffer
            view = memoryview(dest.reshape(-1).view(np.uint8))
        source.readinto(plan.base, view)
        return
    mapping = source.mapping() if may_map and choose_mapping(plan, True, map_kept) else None
    if not casts:  # bytes only: no floating-point state to guard
        _fill(plan, source, mapping, dest, storage_dtype, may_map, map_kept, block_size)
        return
    # casting stored values into ``dest``: a signalling NaN stays NaN, a value out of
    # range becomes +-inf, with no numpy warning (see proxylib.scaling)
    with np.errstate(over="ignore", invalid="ignore"):
        _fill(plan, source, mapping, dest, storage_dtype, may_map, map_kept, block_size)


def _fill(plan: ReadPlan, source: ByteSource, mapping: Optional[mmap.mmap], dest: np.ndarray,
          storage_dtype: np.dtype, may_map: bool, map_kept: bool, block_size: int) -> None:
    rows = plan.rows
    if rows is None:
        if mapping is not None:
            copy_box_from_map(plan, mapping, dest, storage_dtype)
        else:
            read_box(plan, source, dest, storage_dtype, block_size)
        return
    if rows.row_count == 0:
        return
    fetched_rows = dest.reshape((rows.row_count,) + plan.fetch_shape)
    if not rows.coalesce:  # long rows: each one a box, with its own choice
        for offsets, positions in _row_positions(rows):
            for position, offset in zip(positions, offsets):
                fetch(plan._replace(base=offset, rows=None), source, fetched_rows[position],
                      storage_dtype, may_map=may_map, map_kept=map_kept, casts=False,
                      block_size=block_size)
    elif mapping is not None:
        gather_rows_from_map(plan, mapping, fetched_rows, storage_dtype)
    else:
        read_rows(plan, source, fetched_rows, storage_dtype, block_size)


def _row_positions(rows: Rows) -> Iterator[Tuple[List[int], Iterable[int]]]:
    """Per chunk of rows in file order: their offsets and positions in the fetched rows."""
    for chunk in rows.chunks():
        destination = chunk.destination
        positions = (range(destination.start, destination.stop)
                     if isinstance(destination, slice) else destination.tolist())
        yield chunk.offsets.tolist(), positions
