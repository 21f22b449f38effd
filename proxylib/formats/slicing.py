"""``img.slicer``: slice an image without reading it, with the affine to match.

``img.slicer[10:20, ::2, :, 3]`` is a new image of the same class whose data
is a :class:`SlicedProxy` (nothing is read until it is indexed) and whose
affine maps the new voxel indices to the same world points: the affine is
multiplied by the scaling (step) and shift (start) of each spatial axis. As
in nibabel, the three spatial axes may only be sliced (no integer index, no
new axis), fancy indices are refused, and an empty result is an error.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple, Union

import numpy as np

from ..errors import ProxyIndexError
from ..indexing.normalize import NEWAXIS, AxisRange, expand_ellipsis, is_basic, normalize_key

#: Parts of a sliced view: a kept base axis, a dropped base axis, an inserted axis.
_Kept = Tuple[str, int, range]
_Dropped = Tuple[str, int, int]
_New = Tuple[str, int, range]
_Part = Union[_Kept, _Dropped, _New]


def _range_slice(rng: range) -> slice:
    """The slice that selects ``rng`` from an axis (stop < 0 means 'to the start')."""
    return slice(rng.start, rng.stop if rng.stop >= 0 else None, rng.step)


def _axis_slice(item: AxisRange) -> slice:
    stop = item.start + item.count * item.step
    return slice(item.start, stop if stop >= 0 else None, item.step)


class SlicedProxy:
    """A basic-index view of a proxy (or array); reads go to the base, composed.

    Indexing a view with a basic key reads only the selected part of the
    base; a key with arrays reads the view, then applies the key in memory.
    """

    is_proxy = True

    def __init__(self, base: Any, parts: Optional[Tuple[_Part, ...]] = None) -> None:
        self.base = base
        if parts is None:
            parts = tuple(("kept", axis, range(n)) for axis, n in enumerate(base.shape))
        self._parts = parts

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(len(part[2]) for part in self._parts if part[0] != "dropped")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.base.dtype)

    def __repr__(self) -> str:
        return f"SlicedProxy(shape={self.shape}, base={self.base!r})"

    def sliced(self, key: Any) -> "SlicedProxy":
        """A view of this view (``key`` must be basic); nothing is read."""
        items = normalize_key(key, self.shape).items
        parts: List[_Part] = []
        visible = iter(self._parts)

        def next_visible() -> _Part:
            for part in visible:
                if part[0] == "dropped":
                    parts.append(part)
                    continue
                return part
            raise AssertionError("normalize_key checked the number of indices")

        for item in items:
            if item is NEWAXIS:
                parts.append(("new", -1, range(1)))
                continue
            kind, axis, rng = next_visible()
            if isinstance(item, AxisRange):
                parts.append((kind, axis, rng[_axis_slice(item)]))
            elif kind == "kept":
                parts.append(("dropped", axis, rng[item]))
            # an integer on an inserted axis removes it
        parts.extend(visible)
        return SlicedProxy(self.base, tuple(parts))

    def _read(self) -> Any:
        if any(kind == "new" and len(rng) == 0 for kind, _, rng in self._parts):
            return np.empty(self.shape, dtype=self.dtype)  # an empty new axis: nothing to read
        key = tuple(_range_slice(rng) if kind == "kept" else rng
                    for kind, _, rng in self._parts if kind != "new")
        result = self.base[key]
        if any(part[0] == "new" for part in self._parts):
            result = np.asarray(result).reshape(self.shape)
        return result

    def __getitem__(self, key: Any) -> Any:
        if is_basic(key):
            result = self.sliced(key)._read()
            has_ellipsis = any(item is Ellipsis for item in
                               (key if isinstance(key, tuple) else (key,)))
            return np.asarray(result) if has_ellipsis else result
        return np.asarray(self)[key]

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        result = np.asarray(self._read())
        return result if dtype is None else result.astype(dtype, copy=False)


def slice_affine(affine: np.ndarray, ranges: List[range]) -> np.ndarray:
    """``affine`` for voxels ``ranges[i][j]`` of the first ``len(ranges)`` axes."""
    transform = np.eye(4)
    for axis, rng in enumerate(ranges):
        transform[axis, axis] = rng.step
        transform[axis, 3] = rng.start
    return affine @ transform


class ImageSlicer:
    """``img.slicer[key]``: a lazily sliced image of the same class."""

    def __init__(self, image: Any) -> None:
        self.image = image

    def __getitem__(self, key: Any) -> Any:
        image = self.image
        items = key if isinstance(key, tuple) else (key,)
        if not is_basic(items):
            raise ProxyIndexError("img.slicer cannot handle fancy indexing (index arrays or "
                                  "masks); slice img.dataobj for that")
        expanded, _ = expand_ellipsis(items, image.ndim)
        spatial = min(3, image.ndim)
        for position, item in enumerate(expanded[:spatial]):
            if item is None:
                raise ProxyIndexError("img.slicer: a new axis is not allowed among the "
                                      "spatial axes (the first three)")
            if not isinstance(item, slice):
                raise ProxyIndexError(
                    f"img.slicer: integer index {item!r} on spatial axis {position} would "
                    f"drop it; use [{item}:{item}+1] to keep a one-voxel slab")
        dataobj = image.dataobj
        view = dataobj.sliced(key) if isinstance(dataobj, SlicedProxy) else None
        if view is None and getattr(dataobj, "is_proxy", False) is True:
            view = SlicedProxy(dataobj).sliced(key)
        if view is not None:
            data = view
        elif hasattr(dataobj, "__getitem__"):  # ndarray, dask, zarr: their own (lazy) slicing
            data = dataobj[key]
        else:
            data = np.asanyarray(dataobj)[key]
        if 0 in data.shape:
            raise ProxyIndexError(f"img.slicer[{key!r}] selects no voxels (shape "
                                  f"{data.shape}); empty images are not made")
        affine = image.affine
        if affine is not None:
            ranges = [range(n)[item] for n, item in zip(image.shape[:spatial],
                                                        expanded[:spatial])]
            affine = slice_affine(affine, ranges)
        return type(image)(data, affine, image.header, extra=image.extra)
