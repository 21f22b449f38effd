"""Resolve a basic key (ints, slices, Ellipsis, None) into a :class:`Selection`.

numpy's rules and wording. :mod:`proxylib.indexing.select` is the one entry
for every key; it hands basic keys here and array keys to
:mod:`proxylib.indexing.advanced`. After that nothing looks at the raw key
again: the planner works from the :class:`~proxylib.indexing.selection.Selection`.
"""

from __future__ import annotations

import operator
from functools import lru_cache
from typing import Any, Optional, Tuple

import numpy as np

from ..errors import ProxyIndexError
from .selection import NEWAXIS, AxisRange, Selection

__all__ = ["NEWAXIS", "AxisRange", "Selection", "normalize_key", "normalize_if_basic",
           "normalize_plain",
           "is_basic", "expand_ellipsis", "resolve_integer", "split_key", "out_of_bounds"]

INVALID_INDEX_MESSAGE = (
    "only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) "
    "and integer or boolean arrays are valid indices")


#: Item types that are basic without further inspection (the common case).
_PLAIN_BASIC_TYPES = frozenset({int, slice, type(None), type(Ellipsis)})


def _is_integer_scalar(item: Any) -> bool:
    if type(item) is int:
        return True
    if isinstance(item, (bool, np.bool_)):
        return False
    if isinstance(item, np.ndarray):
        return item.ndim == 0 and item.dtype.kind in "iu"
    if isinstance(item, (int, np.integer)):
        return True
    return hasattr(type(item), "__index__") and not isinstance(item, (list, tuple))


def _is_advanced(item: Any) -> bool:
    if _is_integer_scalar(item):  # numpy integers have __array__ but index like ints
        return False
    if isinstance(item, np.generic) and not isinstance(item, np.bool_):
        return False  # np.float64(1) & co: invalid, with numpy's "only integers..." message
    if isinstance(item, (bool, np.bool_, list, tuple, range, memoryview)):
        return True
    if isinstance(item, np.ndarray):
        return not _is_integer_scalar(item)
    return hasattr(item, "__array__") or hasattr(item, "__array_interface__")


def split_key(key: Any) -> Tuple[Any, ...]:
    """The key as a tuple of per-position items, as numpy reads it."""
    return key if isinstance(key, tuple) else (key,)


def is_basic(key: Any) -> bool:
    """True when every item of ``key`` is an int, slice, Ellipsis or None."""
    items = split_key(key)
    if all(type(item) in _PLAIN_BASIC_TYPES for item in items):
        return True
    return not any(_is_advanced(item) for item in items)


def expand_ellipsis(items: Tuple[Any, ...], ndim: int) -> Tuple[Tuple[Any, ...], bool]:
    """Replace the Ellipsis (at most one) by full slices; count axes like numpy."""
    n_ellipsis = 0
    indexed = 0
    for item in items:
        if type(item) is int or type(item) is slice:
            indexed += 1
        elif item is Ellipsis:
            n_ellipsis += 1
        elif item is None or isinstance(item, (bool, np.bool_)):
            continue
        elif isinstance(item, np.ndarray) and item.dtype == bool:
            indexed += item.ndim
        else:
            indexed += 1
    if n_ellipsis > 1:
        raise ProxyIndexError("an index can only have a single ellipsis ('...')")
    if indexed > ndim:
        raise _too_many(ndim, indexed)
    if n_ellipsis:
        where = next(i for i, item in enumerate(items) if item is Ellipsis)
        fill = (slice(None),) * (ndim - indexed)
        return items[:where] + fill + items[where + 1:], True
    return items + (slice(None),) * (ndim - indexed), False


def resolve_integer(item: Any, axis: int, size: int) -> int:
    """A single integer index, bounds-checked with numpy's message."""
    value = operator.index(item)
    if not -size <= value < size:
        raise out_of_bounds(value, axis, size)
    return value + size if value < 0 else value


def normalize_key(key: Any, shape: Tuple[int, ...]) -> Selection:
    """Resolve a basic numpy key against ``shape``.

    Raises ``IndexError`` (as :class:`ProxyIndexError`) for out-of-range
    integers, too many indices or invalid items, ``ValueError`` for a zero
    slice step and ``TypeError`` for non-integer slice bounds, as numpy does.
    Advanced (array or boolean) items are not basic and must be routed to the
    advanced normalizer by the caller.
    """
    basic = normalize_if_basic(key, shape)
    if basic is not None:
        return basic
    return _normalize_general(key if type(key) is tuple else (key,), shape)  # raises


def normalize_if_basic(key: Any, shape: Tuple[int, ...]) -> Optional[Selection]:
    """:func:`normalize_key` for a basic key; None when ``key`` has an advanced item.

    One call answers both questions a reader asks of every key (basic? and
    resolved how?). Keys of exact ints, slices, None and Ellipsis (the common
    case) are resolved here in two passes; a key structure read before does
    not get here at all (:mod:`proxylib.indexing.memo`). Any other item type
    goes to the general path (same checks, same wording).
    """
    items = key if type(key) is tuple else (key,)
    plain = normalize_plain(items, shape)
    if plain is not None:
        return plain
    return _normalize_general(items, shape) if is_basic(items) else None


def normalize_plain(items: Tuple[Any, ...], shape: Tuple[int, ...]) -> Optional[Selection]:
    """Resolve items that are all exact ints, slices, None or Ellipsis; None if one is not.

    The common keys, in two passes over the items (the first stops at the
    first other item, so a caller can go on with the general path).
    """
    indexed = 0
    ellipses = 0
    for item in items:
        kind = type(item)
        if kind is int or kind is slice:
            indexed += 1
        elif item is Ellipsis:
            ellipses += 1
        elif item is not None:
            return None
    ndim = len(shape)
    if ellipses > 1:
        raise ProxyIndexError("an index can only have a single ellipsis ('...')")
    if indexed > ndim:
        raise _too_many(ndim, indexed)
    whole = _whole_axes(shape)
    out = []
    axis = 0
    for item in items:
        kind = type(item)
        if kind is int:
            out.append(resolve_integer(item, axis, shape[axis]))
            axis += 1
        elif kind is slice:
            if item.start is None and item.stop is None and item.step is None:
                out.append(whole[axis])
            else:
                out.append(AxisRange.from_slice(item, shape[axis]))
            axis += 1
        elif item is None:
            out.append(NEWAXIS)
        else:  # the Ellipsis: whole axes where no other item indexes one
            stop = axis + ndim - indexed
            out.extend(whole[axis:stop])
            axis = stop
    out.extend(whole[axis:])  # no Ellipsis: trailing axes are taken whole
    # tuple.__new__: no generated __new__ call (this runs on every read not remembered)
    return tuple.__new__(Selection, (tuple(out), ellipses == 1, None, None))


@lru_cache(maxsize=64)
def _whole_axes(shape: Tuple[int, ...]) -> Tuple[AxisRange, ...]:
    """``AxisRange(0, n, 1)`` for every axis of ``shape`` (``slice(None)`` resolved)."""
    return tuple(AxisRange(0, size, 1) for size in shape)


def _too_many(ndim: int, indexed: int) -> ProxyIndexError:
    return ProxyIndexError(
        f"too many indices for array: array is {ndim}-dimensional, "
        f"but {indexed} were indexed")


def out_of_bounds(value: int, axis: int, size: int) -> ProxyIndexError:
    return ProxyIndexError(f"index {value} is out of bounds for axis {axis} with size {size}")


def _normalize_general(items: Tuple[Any, ...], shape: Tuple[int, ...]) -> Selection:
    """:func:`normalize_key` for any basic key (numpy integers, 0-d arrays, ``__index__``)."""
    for item in items:
        if type(item) in _PLAIN_BASIC_TYPES or _is_integer_scalar(item):
            continue
        if _is_advanced(item):
            raise ProxyIndexError(
                f"{type(item).__name__} index is an advanced index; basic indexing "
                "accepts integers, slices, Ellipsis and None")
        raise ProxyIndexError(INVALID_INDEX_MESSAGE)
    expanded, had_ellipsis = expand_ellipsis(items, len(shape))
    out = []
    axis = 0
    for item in expanded:
        if item is None:
            out.append(NEWAXIS)
            continue
        size = shape[axis]
        if isinstance(item, slice):
            out.append(AxisRange.from_slice(item, size))
        else:
            out.append(resolve_integer(item, axis, size))
        axis += 1
    return Selection(tuple(out), had_ellipsis)
