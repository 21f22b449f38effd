"""Output dtypes and in-place scaling.

The rules, all decided before any byte is read:

* no scaling (slope 1, inter 0): values come back in the storage dtype in
  native byte order;
* scaling: ``np.result_type(storage, slope, inter)`` on numpy scalars of the
  slope and inter types (int16 with a float32 slope -> float32; with a
  Python float -> float64);
* a requested floating or complex dtype: values are converted to it and
  scaled *in it* (float32 requested: no float64 intermediate array).

Scaling multiplies and adds in place on the destination, so it never holds
a second full-size array. A scaled value beyond the range of the output
dtype becomes +-inf (IEEE overflow) and a signalling NaN stored in the file
a NaN, without a numpy warning: the file's values and scale factors, not the
reader, put them there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .spec import ArraySpec, native


@dataclass(frozen=True)
class Conversion:
    """How fetched storage values become returned values."""

    fetch_dtype: np.dtype      # dtype the executor fills (storage order kept if only swapping)
    compute_dtype: np.dtype    # dtype scaling runs in
    result_dtype: np.dtype     # dtype handed back
    slope: Any
    inter: Any
    scales: bool               # slope or inter takes part
    casts: bool                # fetching converts values, not just bytes
    passthrough: bool          # the fetched array is already the result


def conversion_for(spec: ArraySpec, dtype: Optional[Any] = None,
                   scaled: bool = True) -> Conversion:
    """The conversion a read of ``spec`` needs to return ``dtype`` (or the default)."""
    slope, inter = (spec.slope, spec.inter) if scaled else (1, 0)
    default = spec.output_dtype if scaled else spec.native_storage_dtype
    result = default if dtype is None else native(np.dtype(dtype))
    compute = result if (result.kind in "fc" or not (slope != 1 or inter != 0)) else default
    scales = bool(slope != 1 or inter != 0)
    fetch = spec.storage_dtype if compute == spec.native_storage_dtype and not scales else compute
    passthrough = fetch == result and not scales
    return Conversion(fetch, compute, result, slope, inter, scales,
                      casts=native(fetch) != spec.native_storage_dtype, passthrough=passthrough)


def finish_values(values: np.ndarray, conversion: Conversion) -> np.ndarray:
    """Byte-swap and scale ``values`` (as fetched: ``conversion.fetch_dtype``) in place;
    cast last if still needed."""
    if conversion.passthrough:
        return values  # the common case: nothing to do (np.errstate alone costs ~5 us)
    # out of range for the dtype: +-inf, as IEEE says; a signalling NaN read from the
    # file stays NaN (numpy would flag 'invalid value encountered in cast')
    with np.errstate(over="ignore", invalid="ignore"):
        if values.dtype != conversion.compute_dtype:
            if values.dtype.fields is None and \
                    values.dtype.newbyteorder("=") == conversion.compute_dtype:
                values = values.byteswap(inplace=True).view(conversion.compute_dtype)
            else:  # other values, or a structured dtype (fields may differ in byte order)
                values = values.astype(conversion.compute_dtype)
        if conversion.scales:
            scalar = conversion.compute_dtype.type
            if conversion.slope != 1:
                np.multiply(values, scalar(conversion.slope), out=values, casting="unsafe")
            if conversion.inter != 0:
                np.add(values, scalar(conversion.inter), out=values, casting="unsafe")
        if values.dtype != conversion.result_dtype:
            values = values.astype(conversion.result_dtype)
    return values
