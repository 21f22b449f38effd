"""The one typed selection every key becomes: per-axis selectors and a points group.

Like zarr's per-dimension indexers, a :class:`Selection` holds one selector
per array axis, in the user's order (``items``, the Ellipsis expanded,
:data:`NEWAXIS` where a length-1 axis is inserted):

* an ``int`` (non-negative, in range): one index, axis dropped;
* an :class:`AxisRange`: a slice, ``start + i * step`` for ``i < count``;
* an :class:`AxisIndices`: a 1-d integer selection along that axis alone
  (orthogonal selection, zarr's ``oindex``);
* :data:`POINTS`: the axis is indexed jointly with the other ``POINTS`` axes
  by the broadcast coordinate arrays of ``points`` (vectorized selection,
  numpy's advanced indexing; a boolean mask becomes its ``nonzero()``).

Basic, orthogonal and vectorized keys are three ways of combining these
parts. ``layout`` is None for a basic selection (ints, ranges and new axes
only: the result's dimensions follow ``items``); otherwise it lists the
result's dimensions in numpy's order: a kept array axis, :data:`NEWAXIS`,
or :data:`POINTS` where the broadcast shape of the points goes.

A named tuple: one is built per read, and the basic case is the hot one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Tuple, Union

import numpy as np


class AxisRange(NamedTuple):
    """Elements ``start + i * step`` for ``i in range(count)`` along one axis."""

    start: int
    count: int
    step: int

    @classmethod
    def from_slice(cls, item: slice, size: int) -> "AxisRange":
        start, stop, step = item.indices(size)
        count = len(range(start, stop, step))
        return cls(start if count else 0, count, step if count else 1)

    def ascending(self) -> Tuple[int, int, int, bool]:
        """``(first, count, positive_step, reversed)`` covering the same elements."""
        if self.count <= 1:
            return self.start, self.count, 1, False
        if self.step > 0:
            return self.start, self.count, self.step, False
        last = self.start + (self.count - 1) * self.step
        return last, self.count, -self.step, True


class _Marker:
    """A named singleton in a selection's items or layout."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: A length-1 axis inserted by ``None``/``np.newaxis``.
NEWAXIS = _Marker("NEWAXIS")
#: The jointly indexed axes (and, in a layout, where their broadcast dims go).
POINTS = _Marker("POINTS")


@dataclass(frozen=True, eq=False)
class AxisIndices:
    """Integer indices split into what is read and how it is placed.

    ``unique`` holds the distinct indices in increasing order (what is read);
    ``inverse`` has the requested shape and gives, for every requested index,
    its position in ``unique``. ``sorted_request`` is True when the request
    was already strictly increasing (``inverse`` is then ``arange``).
    """

    unique: np.ndarray
    inverse: np.ndarray
    sorted_request: bool

    @classmethod
    def of(cls, indices: np.ndarray, distinct: bool = False) -> "AxisIndices":
        """Split ``indices`` (any shape, non-negative integers).

        ``distinct=True`` promises no index repeats (as for a boolean mask's
        points): one argsort then replaces ``np.unique``.
        """
        flat = np.asarray(indices, dtype=np.int64).reshape(-1)
        if flat.size <= 1 or bool(np.all(flat[1:] > flat[:-1])):
            return cls(flat, np.arange(flat.size).reshape(np.shape(indices)), True)
        if distinct:
            order = np.argsort(flat, kind="stable")
            inverse = np.empty_like(order)
            inverse[order] = np.arange(order.size)
            return cls(flat[order], inverse.reshape(np.shape(indices)), False)
        unique, inverse = np.unique(flat, return_inverse=True)
        return cls(unique, inverse.reshape(np.shape(indices)), False)

    def __len__(self) -> int:
        return len(self.unique)

    @property
    def distinct(self) -> bool:
        """True when no index is requested twice."""
        return self.unique.size == self.inverse.size

    def as_range(self) -> Optional[AxisRange]:
        """The unique indices as an :class:`AxisRange` if evenly spaced, else None."""
        unique = self.unique
        if unique.size <= 1:
            return AxisRange(int(unique[0]) if unique.size else 0, unique.size, 1)
        step = int(unique[1] - unique[0])
        if unique.size > 2 and not bool(np.all(np.diff(unique) == step)):
            return None
        return AxisRange(int(unique[0]), unique.size, step)


#: Mask points turned into byte offsets per step (bounds the temporaries).
MASK_CHUNK = 1 << 20


class Points(NamedTuple):
    """The vectorized group: which axes are indexed jointly, and at which points.

    ``coords`` holds one non-negative int64 array of shape ``broadcast_shape``
    per axis in ``axes`` (read-only broadcast views allowed). ``distinct`` is
    True when no point can repeat (one boolean mask, with nothing but scalars
    besides). When the points are exactly one boolean mask's, ``mask`` holds
    ``(first_axis, mask_shape, flat_indices)`` (``np.flatnonzero`` of the
    mask) instead of ``coords``: a quarter of the memory for a 4-D mask.
    """

    axes: Tuple[int, ...]
    coords: Tuple[np.ndarray, ...]
    broadcast_shape: Tuple[int, ...]
    distinct: bool = False
    mask: Optional[Tuple[int, Tuple[int, ...], np.ndarray]] = None

    def offsets(self, stride_of: Any) -> np.ndarray:
        """``sum(coords[k] * stride_of(axes[k]))``, shape ``broadcast_shape`` (int64)."""
        offsets = np.zeros(self.broadcast_shape, dtype=np.int64)
        if self.mask is None:
            for axis, coord in zip(self.axes, self.coords):
                offsets += coord * np.int64(stride_of(axis))
            return offsets
        first, shape, flat = self.mask
        c_strides = np.cumprod((1,) + shape[:0:-1])[::-1]
        for begin in range(0, flat.size, MASK_CHUNK):  # bounded temporaries
            part = flat[begin:begin + MASK_CHUNK]
            for k, (size, c_stride) in enumerate(zip(shape, c_strides)):
                offsets[begin:begin + part.size] += (part // c_stride % size) * np.int64(
                    stride_of(first + k))
        return offsets


Selector = Union[int, AxisRange, AxisIndices, _Marker]  # _Marker: NEWAXIS or POINTS
LayoutItem = Union[int, _Marker]

_NO_POINTS = Points((), (), ())


class Selection(NamedTuple):
    """One key resolved against a shape; see the module docstring.

    ``had_ellipsis`` matters only for an all-integer basic key, which numpy
    answers with a 0-d array instead of a scalar when an Ellipsis was given.
    """

    items: Tuple[Selector, ...]
    had_ellipsis: bool = False
    points: Optional[Points] = None
    layout: Optional[Tuple[LayoutItem, ...]] = None

    @property
    def is_basic(self) -> bool:
        """Ints, ranges and new axes only (numpy's basic indexing)."""
        return self.layout is None

    @property
    def per_axis(self) -> Tuple[Selector, ...]:
        """One selector per array axis, newaxis markers left out."""
        return tuple(item for item in self.items if item is not NEWAXIS)

    @property
    def has_points(self) -> bool:
        return self.layout is not None and any(item is POINTS for item in self.layout)

    @property
    def point_group(self) -> Points:
        return _NO_POINTS if self.points is None else self.points

    @property
    def result_shape(self) -> Tuple[int, ...]:
        """The shape numpy gives this selection's result (known before reading)."""
        per_axis = self.per_axis
        if self.layout is None:
            layout: Tuple[Any, ...] = tuple(
                NEWAXIS if item is NEWAXIS else axis for axis, item in
                zip(_axis_numbers(self.items), self.items) if type(item) is not int)
        else:
            layout = self.layout
        shape = []
        for item in layout:
            if item is NEWAXIS:
                shape.append(1)
            elif item is POINTS:
                shape.extend(self.point_group.broadcast_shape)
            else:
                selector = per_axis[item]
                shape.extend(np.shape(selector.inverse) if isinstance(selector, AxisIndices)
                             else (selector.count,))
        return tuple(shape)


def _axis_numbers(items: Tuple[Any, ...]) -> Tuple[int, ...]:
    """For each item, the array axis it indexes (a new axis: the next one's number)."""
    numbers = []
    axis = 0
    for item in items:
        numbers.append(axis)
        if item is not NEWAXIS:
            axis += 1
    return tuple(numbers)
