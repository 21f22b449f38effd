"""What numpy says a proxy read must return."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..spec import ArraySpec


def expected_values(stored: np.ndarray, spec: ArraySpec, key: Any = Ellipsis,
                    dtype: Optional[Any] = None, scaled: bool = True) -> Any:
    """``stored[key]`` converted and scaled the way the proxy documents.

    ``stored`` is the in-memory array of stored values (any byte order).
    Conversion is done on the whole array first, then the key applied, and
    the dtype rules are restated here from the documentation rather than
    taken from :mod:`proxylib.scaling`, so the oracle shares no code with
    the reader it checks.
    """
    slope, inter = (spec.slope, spec.inter) if scaled else (1, 0)
    scales = slope != 1 or inter != 0
    if scales:  # the numpy types of the factors in effect take part, 1 and 0 do not
        active = [np.asarray(v).dtype for v, identity in ((slope, 1), (inter, 0))
                  if v != identity]
        default = np.result_type(spec.storage_dtype, *active).newbyteorder("=")
    else:
        default = spec.storage_dtype.newbyteorder("=")
    result = default if dtype is None else np.dtype(dtype).newbyteorder("=")
    compute = result if (result.kind in "fc" or not scales) else default
    values = np.asarray(stored).astype(compute)
    if scales:
        with np.errstate(all="ignore"):
            values = values * compute.type(slope)
            if inter != 0:
                values = values + compute.type(inter)
    with np.errstate(all="ignore"):
        values = values.astype(result)
    return values[key]


def assert_same(actual: Any, expected: Any) -> None:
    """Values, shape, dtype and scalar-ness equal (NaNs compare equal)."""
    assert type(actual) is type(expected) or (
        isinstance(actual, np.ndarray) and isinstance(expected, np.ndarray)), (
        f"type {type(actual).__name__} != {type(expected).__name__}")
    assert np.shape(actual) == np.shape(expected), f"shape {np.shape(actual)} != {np.shape(expected)}"
    assert np.asarray(actual).dtype == np.asarray(expected).dtype, (
        f"dtype {np.asarray(actual).dtype} != {np.asarray(expected).dtype}")
    a, e = np.asarray(actual), np.asarray(expected)
    if a.dtype.fields is not None:  # field by field: padding bytes carry no value
        for name in a.dtype.names:
            np.testing.assert_array_equal(a[name], e[name])
    else:
        np.testing.assert_array_equal(a, e)
