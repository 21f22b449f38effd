"""The frozen description of an on-disk array: :class:`ArraySpec`.

A spec says where the bytes are (offset), how to read them (shape, storage
dtype, order) and how to turn stored values into returned values
(slope/intercept). It is built and validated once; ``copy()`` and
``reshape()`` of a proxy derive new specs with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Sequence, Tuple

import numpy as np

from .errors import SpecError

#: Largest byte count we accept for one array (numpy's own ceiling).
MAX_NBYTES = np.iinfo(np.intp).max


@dataclass(frozen=True)
class ArraySpec:
    """Immutable layout and scaling of an array stored in a byte source."""

    shape: Tuple[int, ...]
    storage_dtype: np.dtype
    offset: int = 0
    order: str = "F"
    slope: Any = 1.0
    inter: Any = 0.0
    _nbytes: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        shape = _validate_shape(self.shape)
        dtype = _validate_dtype(self.storage_dtype)
        offset = _validate_offset(self.offset)
        if self.order not in ("F", "C"):
            raise SpecError(f"order must be 'F' or 'C', not {self.order!r}")
        slope = _validate_scale("slope", self.slope)
        inter = _validate_scale("inter", self.inter)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > MAX_NBYTES:
            raise SpecError(
                f"array of shape {shape} and dtype {dtype} needs {nbytes} bytes, "
                f"more than this platform can address ({MAX_NBYTES})")
        if offset + nbytes > MAX_NBYTES:
            raise SpecError(
                f"offset {offset} plus {nbytes} bytes of data ends past the largest file "
                f"position this platform can address ({MAX_NBYTES})")
        if (slope != 1 or inter != 0) and not _is_numeric(dtype):
            raise SpecError(f"cannot scale values of non-numeric dtype {dtype}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "storage_dtype", dtype)
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "slope", slope)
        object.__setattr__(self, "inter", inter)
        object.__setattr__(self, "_nbytes", nbytes)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of array data in the file (not counting ``offset``)."""
        return self._nbytes

    @property
    def end(self) -> int:
        """Byte position just past the last array byte."""
        return self.offset + self._nbytes

    @property
    def has_scaling(self) -> bool:
        return bool(self.slope != 1 or self.inter != 0)

    @property
    def native_storage_dtype(self) -> np.dtype:
        return native(self.storage_dtype)

    @cached_property
    def axis_strides(self) -> Tuple[int, ...]:
        """Bytes between neighbouring elements along each axis (user order) in the file."""
        fastest_first = self.shape if self.order == "F" else self.shape[::-1]
        strides = []
        step = self.storage_dtype.itemsize
        for length in fastest_first:
            strides.append(step)
            step *= max(length, 1)
        return tuple(strides) if self.order == "F" else tuple(reversed(strides))

    @cached_property
    def output_dtype(self) -> np.dtype:
        """The dtype indexing returns, known without reading anything.

        With scaling: ``np.result_type`` of the storage dtype and the numpy
        types of the scale factors in effect (a slope of 1 or an inter of 0
        does not take part, so int16 with a float32 slope gives float32).
        """
        if not self.has_scaling:
            return self.native_storage_dtype
        active = [np.asarray(value).dtype for value, identity in
                  ((self.slope, 1), (self.inter, 0)) if value != identity]
        return native(np.result_type(self.storage_dtype, *active))

    def with_shape(self, shape: Sequence[int]) -> "ArraySpec":
        return replace(self, shape=tuple(shape))


def native(dtype: np.dtype) -> np.dtype:
    """``dtype`` in native byte order; structured dtypes keep offsets and itemsize."""
    return np.dtype(dtype).newbyteorder("=")


def _is_numeric(dtype: np.dtype) -> bool:
    return dtype.kind in "biufc"


def _validate_shape(shape: Any) -> Tuple[int, ...]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise SpecError(f"shape must be a sequence of integers, not {shape!r}") from None
    out = []
    for axis, dim in enumerate(dims):
        if isinstance(dim, (bool, np.bool_)):
            raise SpecError(f"shape[{axis}] must be an integer, not {dim!r}")
        try:
            value = operator.index(dim)
        except TypeError:
            raise SpecError(f"shape[{axis}] must be an integer, not {dim!r}") from None
        if value < 0:
            raise SpecError(f"shape[{axis}] must be >= 0, not {value}")
        out.append(value)
    return tuple(out)


def _validate_dtype(dtype: Any) -> np.dtype:
    try:
        result = np.dtype(dtype)
    except TypeError as err:
        raise SpecError(f"storage dtype {dtype!r} is not a numpy dtype: {err}") from None
    structured = result.kind == "V" and result.fields is not None
    if result.hasobject or result.itemsize == 0 or not (_is_numeric(result) or structured):
        raise SpecError(
            f"storage dtype {result} cannot be read from raw bytes; use a numeric "
            "(bool, integer, float, complex) or structured dtype")
    return result


def _validate_offset(offset: Any) -> int:
    if isinstance(offset, (bool, np.bool_)):
        raise SpecError(f"offset must be an integer, not {offset!r}")
    if isinstance(offset, numbers.Real) and not isinstance(offset, numbers.Integral):
        if not math.isfinite(offset) or offset != int(offset):
            raise SpecError(f"offset must be a whole number of bytes, not {offset!r}")
        offset = int(offset)
    try:
        value = operator.index(offset)
    except TypeError:
        raise SpecError(f"offset must be an integer, not {offset!r}") from None
    if value < 0:
        raise SpecError(f"offset must be >= 0, not {value}")
    return value


def _validate_scale(name: str, value: Any) -> Any:
    if value is None:
        return 1.0 if name == "slope" else 0.0
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise SpecError(f"{name} must be a scalar, not an array of shape {value.shape}")
        value = value.reshape(())[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Number, np.number)):
        raise SpecError(f"{name} must be a real or complex number, not {value!r}")
    if not np.isfinite(value):
        raise SpecError(f"{name} must be finite, not {value!r}")
    return value
