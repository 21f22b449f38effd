"""Scale factors for saving values into a narrower on-disk type.

When an image is saved with an integer on-disk dtype (``set_data_dtype``)
that cannot hold its values as they are - floats, or integers out of range -
the values are stored as ``round((value - inter) / slope)`` and the header
gets ``scl_slope``/``scl_inter``. The factors are chosen the way nibabel
chooses them, so both libraries write the same file:

* no scaling when numpy casts the type safely, when the output is floating
  point or complex, when there is no data or no finite value, or when
  integer values already fit;
* integers whose span fits the output get an intercept only (slope 1): the
  lowest value to stored 0 for unsigned types, the midpoint to 0 for signed;
* else integers that are all <= 0 going into an unsigned type get slope -1;
* otherwise the finite value range (widened to include 0 when NaNs are
  present, since NaN is stored as the integer nearest to 0) is stretched over
  the output range that float32 represents exactly; an unsigned output puts
  whichever end of the input is nearer zero at stored 0 (slope may be
  negative); a constant array gets slope 1 and inter = the value; when NaNs
  are present and 0 is an end of the range, inter is moved so 0 is stored
  exactly.

Factors are float32 (the NIfTI-1 field type) and computed in extended
precision. Memory follows the block size: the range is found block by block.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import numpy as np

from ..errors import HeaderError
from .blocks import block_keys

_BIG = np.longdouble


def float32_range(dtype: np.dtype) -> Tuple[int, int]:
    """The widest ``[lo, hi]`` inside integer ``dtype``'s range that float32 holds exactly."""
    info = np.iinfo(dtype)
    bounds = []
    for bound in (int(info.min), int(info.max)):
        value = np.float32(bound)
        while abs(int(value)) > abs(bound):
            value = np.nextafter(value, np.float32(0))
        bounds.append(int(value))
    return bounds[0], bounds[1]


def value_range(source: Any) -> Tuple[Optional[float], Optional[float], bool]:
    """(finite min, finite max, any NaN) of ``source``, read in blocks; None when no finite value."""
    lo: Optional[Any] = None
    hi: Optional[Any] = None
    has_nan = False
    dtype = np.dtype(source.dtype)
    for key in block_keys(tuple(source.shape), dtype.itemsize):
        block = np.asarray(source[key])
        if block.dtype.kind == "f":
            has_nan = has_nan or bool(np.isnan(block).any())
            block = block[np.isfinite(block)]
        if block.size == 0:
            continue
        bmin, bmax = block.min(), block.max()
        lo = bmin if lo is None else min(lo, bmin)
        hi = bmax if hi is None else max(hi, bmax)
    return lo, hi, has_nan


def choose_scaling(in_dtype: np.dtype, out_dtype: np.dtype, lo: Any, hi: Any,
                   has_nan: bool) -> Optional[Tuple[float, float]]:
    """(slope, inter) to store values of ``in_dtype`` in ``[lo, hi]`` as ``out_dtype``.

    None when a plain cast is enough. ``lo``/``hi`` are the finite extremes
    (None when there is no finite value).
    """
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    if in_dtype.fields is not None or out_dtype.fields is not None:
        if in_dtype == out_dtype:
            return None
        raise HeaderError(f"cannot store {in_dtype} values as {out_dtype}",
                          field="datatype", value=str(out_dtype))
    if np.can_cast(in_dtype, out_dtype) or out_dtype.kind in "fc":
        return None
    if in_dtype.kind == "c":
        raise HeaderError(f"cannot store complex values as {out_dtype}; take the real part "
                          "or the magnitude first", field="datatype", value=str(out_dtype))
    if lo is None:
        return None
    if in_dtype.kind == "f":
        if has_nan:
            lo, hi = min(lo, 0), max(hi, 0)
        slope, inter = _range_scale(float(lo), float(hi), out_dtype, exact=False)
        if has_nan and 0 in (lo, hi):
            inter = _nan_fill_inter(slope, inter, out_dtype)
        return slope, inter
    lo, hi = int(lo), int(hi)
    info = np.iinfo(out_dtype)
    if lo >= int(info.min) and hi <= int(info.max):
        return None
    out_lo, out_hi = float32_range(out_dtype)
    if hi - lo <= out_hi - out_lo:  # an intercept alone may do
        inter = _floor_float32(lo if out_lo == 0 else lo + math.ceil((hi - lo) / 2))
        if lo - inter >= out_lo and hi - inter <= out_hi:
            return 1.0, float(inter)
    if out_dtype.kind == "u" and hi <= 0 and -lo <= out_hi:
        return -1.0, 0.0
    return _range_scale(lo, hi, out_dtype, exact=True)


def _floor_float32(value: int) -> int:
    """The largest float32 value <= ``value`` (as an exact integer)."""
    rounded = np.float32(value)
    if int(rounded) > value:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return int(rounded)


def _range_scale(lo: Any, hi: Any, out_dtype: np.dtype, *, exact: bool) -> Tuple[float, float]:
    if lo == hi:
        return 1.0, float(np.float32(lo))
    out_lo, out_hi = (_BIG(v) for v in float32_range(out_dtype))
    span = _BIG(hi - lo) if exact else _BIG(hi) - _BIG(lo)
    big_lo, big_hi = _BIG(lo), _BIG(hi)
    slope = span / (out_hi - out_lo)
    if out_lo == 0 and abs(big_hi) < abs(big_lo):
        inter = big_hi + out_lo * slope
        slope = -slope
    else:
        inter = big_lo - out_lo * slope
    slope32, inter32 = np.float32(slope), np.float32(inter)
    if not (math.isfinite(slope32) and math.isfinite(inter32)):
        raise HeaderError(f"values from {lo} to {hi} need scale factors float32 cannot hold",
                          field="scl_slope", value=float(slope))
    return float(slope32), float(inter32)


def _nan_fill_inter(slope: float, inter: float, out_dtype: np.dtype) -> float:
    """``inter`` moved, if needed, so that the value 0 (NaN's stand-in) has a stored value."""
    fill = -np.float32(inter) / np.float32(slope)
    rounded = np.rint(fill)
    info = np.iinfo(out_dtype)
    if np.isfinite(rounded) and int(info.min) <= int(rounded) <= int(info.max):
        return inter
    out_lo, out_hi = (_BIG(v) for v in float32_range(out_dtype))
    return float(np.float32(-np.clip(_BIG(fill), out_lo, out_hi) * _BIG(np.float32(slope))))


class ScaledSource:
    """``source`` read block by block and turned into stored ``out_dtype`` values.

    ``stored = round((value - inter) / slope)``, clipped to the type's range;
    NaN becomes the stored value nearest to 0.
    """

    def __init__(self, source: Any, out_dtype: np.dtype, slope: float, inter: float) -> None:
        self.source = source
        self.shape = tuple(source.shape)
        self.dtype = np.dtype(out_dtype)
        self.slope, self.inter = slope, inter
        self._limits = tuple(float(v) for v in float32_range(self.dtype))
        self._nan_fill = float(np.clip(np.rint(-inter / slope), *self._limits))

    def __getitem__(self, key: Any) -> np.ndarray:
        values = np.asarray(self.source[key], dtype=np.float64)
        stored = np.rint((values - self.inter) / self.slope)
        stored[np.isnan(stored)] = self._nan_fill
        np.clip(stored, *self._limits, out=stored)
        return stored.astype(self.dtype)


class CastSource:
    """``source`` cast to integer ``out_dtype`` block by block, NaN stored as 0 (as nibabel)."""

    def __init__(self, source: Any, out_dtype: np.dtype) -> None:
        self.source = source
        self.shape = tuple(source.shape)
        self.dtype = np.dtype(out_dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        values = np.asarray(self.source[key])
        if values.dtype.kind == "f" and self.dtype.kind in "iu":
            lo, hi = float32_range(self.dtype)
            values = np.clip(np.nan_to_num(np.rint(values), nan=0.0), lo, hi)
        return values.astype(self.dtype)
