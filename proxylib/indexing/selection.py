"""Typed fancy keys: what :mod:`~proxylib.indexing.advanced` hands the point planner.

A :class:`FancyKey` covers both numpy's vectorized (advanced) indexing and
zarr's orthogonal (outer) selection. Per array axis it holds one of

* an ``int`` (non-negative, in range): one index, axis dropped;
* an :class:`~proxylib.indexing.normalize.AxisRange`: a slice, axis kept;
* an :class:`AxisIndices`: a 1-d integer selection along that axis alone
  (orthogonal selection), axis kept;
* :data:`POINTS`: the axis is indexed jointly with the other ``POINTS`` axes
  by broadcast coordinate arrays (vectorized selection).

``layout`` lists the result's dimensions in numpy's order: an array axis that
is kept, :data:`~proxylib.indexing.normalize.NEWAXIS`, or :data:`POINTS` where
the broadcast shape of the coordinate arrays goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple, Union

import numpy as np

from .normalize import NEWAXIS, AxisRange, _NewAxis


class _Points:
    """Marker for the jointly indexed axes (and where their broadcast dims go)."""

    def __repr__(self) -> str:
        return "POINTS"


POINTS = _Points()


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

AxisSelection = Union[int, AxisRange, AxisIndices, _Points]
LayoutItem = Union[int, _NewAxis, _Points]


@dataclass(frozen=True, eq=False)
class FancyKey:
    """A fancy key resolved against a shape; see the module docstring.

    ``coords`` holds one non-negative int64 array of shape ``broadcast_shape``
    per ``POINTS`` axis, in axis order (read-only broadcast views allowed).
    ``distinct_points`` is True when no point can repeat (one boolean mask,
    with nothing but scalars besides). When the points are exactly one
    boolean mask's, ``mask`` holds ``(first_axis, mask_shape, flat_indices)``
    (``np.flatnonzero`` of the mask) instead of ``coords``: a quarter of the
    memory for a 4-D mask, and no ``unravel_index``.
    """

    per_axis: Tuple[AxisSelection, ...]
    coords: Tuple[np.ndarray, ...] = ()
    broadcast_shape: Tuple[int, ...] = ()
    layout: Tuple[LayoutItem, ...] = ()
    distinct_points: bool = False
    mask: Optional[Tuple[int, Tuple[int, ...], np.ndarray]] = None

    def point_offsets(self, stride_of: Any) -> np.ndarray:
        """``sum(coords[k] * stride_of(axis_k))``, shape ``broadcast_shape`` (int64)."""
        offsets = np.zeros(self.broadcast_shape, dtype=np.int64)
        if self.mask is None:
            for axis, coord in zip(self.point_axes, self.coords):
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

    @property
    def point_axes(self) -> Tuple[int, ...]:
        return tuple(axis for axis, item in enumerate(self.per_axis) if item is POINTS)

    @property
    def has_points(self) -> bool:
        return any(item is POINTS for item in self.layout)

    @property
    def result_shape(self) -> Tuple[int, ...]:
        shape = []
        for item in self.layout:
            if item is NEWAXIS:
                shape.append(1)
            elif item is POINTS:
                shape.extend(self.broadcast_shape)
            else:
                selection = self.per_axis[item]
                shape.extend(np.shape(selection.inverse) if isinstance(selection, AxisIndices)
                             else (selection.count,))
        return tuple(shape)
