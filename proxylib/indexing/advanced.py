"""Resolve keys with array items into a :class:`~proxylib.indexing.selection.Selection`.

:mod:`proxylib.indexing.select` converts a key's items once
(:func:`convert_items`) and hands keys that hold an array here. Two kinds:

* **vectorized** (``proxy[key]`` with any array, list or boolean item), as
  numpy defines advanced indexing: integer arrays of any shape (negative,
  repeated, unsorted), boolean arrays covering one or more axes (replaced by
  their ``nonzero()``), 0-d booleans (a new length-1 or length-0 axis),
  mixed with ints, slices, Ellipsis and newaxis. Integer scalars then count
  as advanced indices. The broadcast dims go where the first advanced index
  stands if all advanced indices are adjacent in the key, else first;
* **orthogonal** (``proxy.oindex[key]``), as zarr defines it: per axis an
  int, a slice, a 1-d integer array or a 1-d boolean array of the axis'
  length, each applied to its own axis.

Errors follow numpy's order and words: invalid items and integer scalars
first (in key order, booleans checked against the axes they cover), then
broadcasting, then out-of-range array entries (array by array).
"""

from __future__ import annotations

from typing import Any, List, Tuple

import numpy as np

from ..errors import ProxyIndexError
from .normalize import (INVALID_INDEX_MESSAGE, NEWAXIS, _is_integer_scalar, expand_ellipsis,
                        resolve_integer)
from .selection import POINTS, AxisIndices, AxisRange, Points, Selection

NON_INTEGER_ARRAY_MESSAGE = "arrays used as indices must be of integer (or boolean) type"


def _as_index_array(item: Any) -> Any:
    """``item`` with every array-like turned into an integer or boolean ndarray."""
    if item is None or item is Ellipsis or isinstance(item, slice):
        return item
    if isinstance(item, (bool, np.bool_)):
        return np.asarray(item)
    if isinstance(item, np.ndarray):
        if item.dtype.kind not in "biu":
            raise ProxyIndexError(NON_INTEGER_ARRAY_MESSAGE)
        return item
    if _is_integer_scalar(item):
        return item
    if isinstance(item, np.generic):  # np.float64(1) & co: numpy's "only integers..."
        raise ProxyIndexError(INVALID_INDEX_MESSAGE)
    if isinstance(item, (list, tuple, range, memoryview)) or hasattr(item, "__array__") \
            or hasattr(item, "__array_interface__"):
        array = np.asarray(item)
        if array.size == 0 and array.dtype.kind not in "biu":
            return array.astype(np.intp)
        if array.dtype.kind not in "biu":
            if isinstance(item, (list, tuple)):
                raise ProxyIndexError(INVALID_INDEX_MESSAGE)
            raise ProxyIndexError(NON_INTEGER_ARRAY_MESSAGE)
        return array
    raise ProxyIndexError(INVALID_INDEX_MESSAGE)


def convert_items(items: Tuple[Any, ...]) -> Tuple[Any, ...]:
    """Every item of a key with array-likes made integer or boolean ndarrays (one pass)."""
    return tuple(_as_index_array(item) for item in items)


def is_array(item: Any) -> bool:
    """True for a converted item that is an index array (not an integer scalar)."""
    return isinstance(item, np.ndarray) and not _is_integer_scalar(item)


def _check_boolean(mask: np.ndarray, first_axis: int, shape: Tuple[int, ...],
                   strict: bool = False) -> None:
    """Mask axes must match the array's (numpy lets an empty one pass unless ``strict``)."""
    for offset, size in enumerate(mask.shape):
        axis = first_axis + offset
        if size != shape[axis] and (strict or size != 0):
            raise ProxyIndexError(
                f"boolean index did not match indexed array along axis {axis}; size of axis "
                f"is {shape[axis]} but size of corresponding boolean axis is {size}")


class _MaskAxis:
    """Axis ``k`` of ``np.nonzero(mask)``, from ``np.flatnonzero(mask)``, made on demand."""

    def __init__(self, flat: np.ndarray, mask_shape: Tuple[int, ...], k: int) -> None:
        self.flat, self.mask_shape, self.k = flat, mask_shape, k

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.flat.shape

    @property
    def size(self) -> int:
        return self.flat.size

    def values(self) -> np.ndarray:
        inner = int(np.prod(self.mask_shape[self.k + 1:], dtype=np.int64))
        return self.flat // inner % self.mask_shape[self.k]


def _resolve_array(indices: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Integer indices bounds-checked with numpy's message, made non-negative int64."""
    if indices.size == 0:
        return indices.astype(np.int64)
    bad = (indices >= size) if indices.dtype.kind == "u" else ((indices < -size)
                                                               | (indices >= size))
    if bad.any():
        value = indices.reshape(-1)[int(np.argmax(bad.reshape(-1)))]
        raise ProxyIndexError(f"index {value} is out of bounds for axis {axis} with size {size}")
    resolved = indices.astype(np.int64)
    if indices.dtype.kind == "i":
        resolved[resolved < 0] += size
    return resolved


def _format_shape(shape: Tuple[int, ...]) -> str:
    return "(" + ",".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


#: An Ellipsis that stands for no axis still separates advanced indices (numpy).
_GAP = object()


def _expand_keeping_gap(items: Tuple[Any, ...], ndim: int) -> Tuple[Any, ...]:
    """:func:`expand_ellipsis`, but an Ellipsis filling no axis leaves a ``_GAP``."""
    expanded, had_ellipsis = expand_ellipsis(items, ndim)
    if not had_ellipsis or len(expanded) != len(items) - 1:
        return expanded
    where = next(i for i, item in enumerate(items) if item is Ellipsis)
    return expanded[:where] + (_GAP,) + expanded[where:]


def vectorized(items: Tuple[Any, ...], shape: Tuple[int, ...]) -> Selection:
    """Resolve converted items holding an index array as numpy's advanced indexing does."""
    per_axis: List[Any] = [None] * len(shape)
    records: List[Any] = []      # per key position: axis kept, NEWAXIS, POINTS or _GAP
    arrays: List[Tuple[Any, np.ndarray]] = []   # (axis or None, indices), in key order
    masks: List[Any] = []        # (first axis, shape, flatnonzero) of each boolean mask
    new_axes: List[int] = []     # for each new axis, the array axes before it
    axis = 0
    for item in _expand_keeping_gap(items, len(shape)):
        if item is _GAP:
            records.append(_GAP)
        elif item is None:
            records.append(NEWAXIS)
            new_axes.append(axis)
        elif isinstance(item, slice):
            per_axis[axis] = AxisRange.from_slice(item, shape[axis])
            records.append(axis)
            axis += 1
        elif not is_array(item):
            per_axis[axis] = resolve_integer(item, axis, shape[axis])
            records.append(POINTS)
            axis += 1
        elif item.dtype == bool:
            _check_boolean(item, axis, shape)
            if item.ndim == 0:
                arrays.append((None, np.zeros(int(bool(item)), dtype=np.int64)))
            flat = np.flatnonzero(item) if item.ndim else None
            for offset in range(item.ndim):
                arrays.append((axis + offset, _MaskAxis(flat, item.shape, offset)))
                per_axis[axis + offset] = POINTS
            if item.ndim:
                masks.append((axis, item.shape, flat))
            records.append(POINTS)
            axis += item.ndim
        else:
            arrays.append((axis, item))
            per_axis[axis] = POINTS
            records.append(POINTS)
            axis += 1
    try:
        broadcast = np.broadcast_shapes(*(indices.shape for _, indices in arrays))
    except ValueError:
        shapes = " ".join(_format_shape(indices.shape) for _, indices in arrays)
        raise ProxyIndexError("shape mismatch: indexing arrays could not be broadcast "
                              f"together with shapes {shapes} ") from None
    # Points are distinct when they are one mask's, with nothing but scalars besides;
    # exactly one mask's points need no coordinate arrays at all.
    mask_only = len(masks) == 1 and all(isinstance(indices, _MaskAxis) or axis_of is None
                                        for axis_of, indices in arrays)
    distinct = len(masks) == 1 and all(isinstance(indices, _MaskAxis) or indices.size <= 1
                                       for _, indices in arrays)
    mask = masks[0] if mask_only and broadcast == masks[0][2].shape else None
    coords = []
    empty = 0 in broadcast  # numpy checks no entry when there is nothing to select
    for axis_of, indices in arrays if mask is None else ():
        if axis_of is not None:
            if empty:
                resolved = np.zeros(broadcast, dtype=np.int64)
            elif isinstance(indices, _MaskAxis):
                resolved = indices.values()  # in range by construction
            else:
                resolved = _resolve_array(indices, axis_of, shape[axis_of])
            coords.append((axis_of, np.broadcast_to(resolved, broadcast)))
    coords.sort(key=lambda pair: pair[0])
    advanced = [position for position, record in enumerate(records) if record is POINTS]
    adjacent = advanced == list(range(advanced[0], advanced[-1] + 1))
    if adjacent:
        layout = [record for position, record in enumerate(records)
                  if record is not _GAP and (record is not POINTS or position == advanced[0])]
    else:
        layout = [POINTS] + [record for record in records
                             if record is not POINTS and record is not _GAP]
    point_axes = tuple(axis for axis, item in enumerate(per_axis) if item is POINTS)
    points = Points(point_axes, tuple(c for _, c in coords), tuple(broadcast), distinct, mask)
    return Selection(_with_new_axes(per_axis, new_axes), False, points, tuple(layout))


def _with_new_axes(per_axis: List[Any], new_axes: List[int]) -> Tuple[Any, ...]:
    """The per-axis selectors in key order, with the key's new axes put back."""
    items: List[Any] = []
    for axis, selector in enumerate(per_axis):
        items.extend(NEWAXIS for before in new_axes if before == axis)
        items.append(selector)
    items.extend(NEWAXIS for before in new_axes if before == len(per_axis))
    return tuple(items)


def check_orthogonal(items: Tuple[Any, ...]) -> None:
    """Refuse converted items that have no orthogonal meaning (new axes, n-d arrays)."""
    for position, item in enumerate(items):
        if item is None:
            raise ProxyIndexError(
                "orthogonal indexing does not support newaxis (None); add axes to the result "
                "instead")
        if is_array(item) and item.ndim != 1:
            raise ProxyIndexError(
                f"orthogonal indexing takes one 1-d integer or boolean array per axis; item "
                f"{position} of the key is a {item.ndim}-d {item.dtype} array; use proxy[...] "
                "for numpy's vectorized indexing")


def orthogonal(items: Tuple[Any, ...], shape: Tuple[int, ...]) -> Selection:
    """Resolve converted, checked items holding an index array as zarr's ``oindex`` does."""
    expanded, _ = expand_ellipsis(items, len(shape))
    per_axis: List[Any] = []
    for axis, (item, size) in enumerate(zip(expanded, shape)):
        if isinstance(item, slice):
            per_axis.append(AxisRange.from_slice(item, size))
        elif not is_array(item):
            per_axis.append(resolve_integer(item, axis, size))
        elif item.dtype == bool:
            _check_boolean(item, axis, shape, strict=True)
            per_axis.append(AxisIndices.of(np.flatnonzero(item)))
        else:
            per_axis.append(AxisIndices.of(_resolve_array(item, axis, size)))
    layout = tuple(axis for axis, item in enumerate(per_axis) if not isinstance(item, int))
    return Selection(tuple(per_axis), False, None, layout)
