"""Hypothesis strategies for fancy keys (numpy advanced indexing and ``oindex``).

Built on :mod:`proxylib.testing.strategies`: :func:`fancy_cases` draws the
same data, specs, scalings, sources and cost models as ``proxy_cases`` but a
fancy key: integer arrays and lists of any dimensionality (negative,
repeated, unsorted), boolean arrays over one or more axes (0-d included),
mixed with ints, slices, Ellipsis and newaxis, adjacent or not. Most keys are
valid; with ``invalid=True`` some are out of range or mis-shaped, so the
error paths are compared with numpy's too.
"""

from __future__ import annotations

import math
from typing import Any, List, Tuple

import numpy as np
from hypothesis import strategies as st

from .strategies import SOURCES, ProxyCase, read_settings, stored_specs


def _maybe_list(draw, array: np.ndarray) -> Any:
    """The array itself, or (sometimes) the same indices as nested lists."""
    return array.tolist() if draw(st.integers(0, 3)) == 0 else array


def integer_indices(draw, size: int, shape: Tuple[int, ...], invalid: bool) -> np.ndarray:
    """An integer index array of ``shape`` for an axis of ``size`` (negatives included)."""
    count = math.prod(shape)
    if size == 0:  # any entry is out of range; numpy must refuse, and so must the proxy
        low, high = -2, 2
    elif invalid:
        low, high = -size - 2, size + 1
    else:
        low, high = -size, size - 1
    values = draw(st.lists(st.integers(low, high), min_size=count, max_size=count))
    dtype = draw(st.sampled_from([np.intp, np.int64, np.int32, np.int16, np.uint8]))
    array = np.asarray(values, dtype=np.int64).reshape(shape)
    if np.dtype(dtype).kind == "u" and (array < 0).any():
        dtype = np.intp
    info = np.iinfo(dtype)
    if array.size and (array.min() < info.min or array.max() > info.max):
        dtype = np.intp
    return array.astype(dtype)


def boolean_mask(draw, shape: Tuple[int, ...], count: int) -> np.ndarray:
    """A boolean array of ``shape`` with ``count`` True entries (fewer if it is smaller)."""
    size = math.prod(shape)
    flat = np.zeros(size, dtype=bool)
    if size:
        chosen = draw(st.lists(st.integers(0, size - 1), min_size=min(count, size),
                               max_size=min(count, size), unique=True))
        flat[chosen] = True
    return flat.reshape(shape)


@st.composite
def fancy_keys(draw, shape: Tuple[int, ...], invalid: bool = False) -> Any:
    """A numpy advanced key for an array of ``shape`` (tuple or single item)."""
    ndim = len(shape)
    bad = invalid and draw(st.integers(0, 4)) == 0
    # Per axis, what indexes it; boolean arrays may cover several axes.
    items: List[Any] = []
    axis = 0
    n_indexed = draw(st.integers(0, ndim))
    mask_count = None
    broadcast = draw(st.lists(st.integers(0, 3), min_size=0, max_size=2).map(tuple))
    while axis < n_indexed:
        kind = draw(st.sampled_from(["int", "slice", "array", "array", "bool", "bool"]))
        if kind == "bool":
            cover = draw(st.integers(1, n_indexed - axis))
            mask_shape = shape[axis:axis + cover]
            if mask_count is None:
                mask_count = draw(st.integers(0, max(0, math.prod(mask_shape))))
            mask = boolean_mask(draw, mask_shape, mask_count)
            if bad and draw(st.booleans()):
                mask = np.zeros(mask_shape[:-1] + (mask_shape[-1] + 1,), dtype=bool)
            items.append(_maybe_list(draw, mask) if mask.ndim else mask)
            axis += cover
            continue
        size = shape[axis]
        if kind == "int" and size:
            low, high = (-size - 2, size + 1) if bad else (-size, size - 1)
            items.append(draw(st.integers(low, high)))
        elif kind == "slice" or (kind == "int" and not size):
            start = draw(st.none() | st.integers(-size - 1, size + 1))
            stop = draw(st.none() | st.integers(-size - 1, size + 1))
            step = draw(st.none() | st.sampled_from([1, 2, -1, -2, 3]))
            items.append(slice(start, stop, step))
        else:
            own = broadcast[len(broadcast) - draw(st.integers(0, len(broadcast))):]
            own = tuple(1 if draw(st.integers(0, 3)) == 0 else n for n in own)
            if mask_count is not None and draw(st.booleans()):
                own = (mask_count,) if not bad else (mask_count + 1,)
            items.append(_maybe_list(draw, integer_indices(draw, size, own, bad)))
        axis += 1
    if not any(isinstance(i, (np.ndarray, list)) for i in items):
        # make sure something is advanced: an index list or a 0-d boolean
        if draw(st.booleans()) or axis == ndim:
            items.insert(draw(st.integers(0, len(items))), draw(st.booleans()))
        else:  # index the next axis with a list
            size = shape[axis]
            items.append([size + 5] if bad else [draw(st.integers(-size, size - 1))]
                         if size else [])
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))),
                     draw(st.sampled_from([None, None, True, False])))
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), Ellipsis)
    if len(items) == 1 and draw(st.booleans()):
        return items[0]
    return tuple(items)


@st.composite
def orthogonal_keys(draw, shape: Tuple[int, ...], invalid: bool = False) -> Any:
    """An ``oindex`` key: per axis an int, slice, 1-d int array/list or 1-d bool array."""
    bad = invalid and draw(st.integers(0, 4)) == 0
    items: List[Any] = []
    for size in shape[:draw(st.integers(0, len(shape)))]:
        kind = draw(st.sampled_from(["int", "slice", "array", "bool"]))
        if kind == "int" and size:
            items.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice" or kind == "int":
            items.append(slice(draw(st.none() | st.integers(-size, size)),
                               draw(st.none() | st.integers(-size, size)),
                               draw(st.none() | st.sampled_from([1, 2, -1, -3]))))
        elif kind == "bool":
            length = size + 1 if bad else size
            mask = boolean_mask(draw, (length,), draw(st.integers(0, length)))
            items.append(_maybe_list(draw, mask))
        else:
            count = draw(st.integers(0, 5))
            items.append(_maybe_list(draw, integer_indices(draw, size, (count,), bad)))
    if items and draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), Ellipsis)
    return tuple(items)


@st.composite
def fancy_cases(draw, max_dims: int = 4, sources=SOURCES, orthogonal: bool = False,
                invalid: bool = True, structured: bool = True) -> ProxyCase:
    """A :class:`ProxyCase` whose key is a fancy key (or an ``oindex`` key)."""
    stored, spec = draw(stored_specs(max_dims, structured))
    keys = orthogonal_keys if orthogonal else fancy_keys
    return ProxyCase(stored=stored, spec=spec, key=draw(keys(spec.shape, invalid)),
                     **draw(read_settings(sources)))


def orthogonal_oracle(values: np.ndarray, key: Any) -> Any:
    """What zarr's orthogonal selection returns, from numpy one axis at a time."""
    items = key if isinstance(key, tuple) else (key,)
    if not any(isinstance(item, (list, np.ndarray)) for item in items):
        return values[key]  # no array: a basic key, numpy's meaning
    if len(items) - (Ellipsis in [i for i in items if not isinstance(i, (list, np.ndarray))]) \
            > values.ndim:
        raise IndexError("too many indices")
    if any(item is Ellipsis for item in items):
        where = next(i for i, item in enumerate(items) if item is Ellipsis)
        fill = values.ndim - (len(items) - 1)
        items = items[:where] + (slice(None),) * fill + items[where + 1:]
    result = values
    axis = 0
    for item in items:
        if isinstance(item, slice):
            result = result[(slice(None),) * axis + (item,)]
            axis += 1
        elif isinstance(item, (list, np.ndarray)):
            array = np.asarray(item)
            if array.dtype == bool:
                if len(array) != result.shape[axis]:
                    raise IndexError("boolean index did not match")
                array = np.flatnonzero(array)
            size = result.shape[axis]
            if array.size and (array.min() < -size or array.max() >= size):
                raise IndexError("index out of bounds")  # per axis, even if the result is empty
            result = np.take(result, array.astype(np.intp), axis=axis, mode="raise") \
                if array.size else np.take(result, np.zeros(0, np.intp), axis=axis)
            axis += 1
        else:
            result = result[(slice(None),) * axis + (item,)]
    return result
