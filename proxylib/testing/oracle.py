"""What numpy says a proxy read must return."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..scaling import conversion_for
from ..spec import ArraySpec


def expected_values(stored: np.ndarray, spec: ArraySpec, key: Any = Ellipsis,
                    dtype: Optional[Any] = None, scaled: bool = True) -> Any:
    """``stored[key]`` converted and scaled the way the proxy documents.

    ``stored`` is the in-memory array of stored values (any byte order).
    Conversion is done on the whole array first, then the key applied, so
    the oracle shares no code path with the planner.
    """
    conversion = conversion_for(spec, dtype, scaled=scaled)
    values = np.asarray(stored).astype(conversion.compute_dtype)
    if conversion.scales:
        scalar = conversion.compute_dtype.type
        with np.errstate(all="ignore"):
            values = values * scalar(conversion.slope) + scalar(conversion.inter) \
                if conversion.inter != 0 else values * scalar(conversion.slope)
    values = values.astype(conversion.result_dtype)
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
    if a.dtype.fields is not None:
        assert a.tobytes() == e.tobytes()
    else:
        np.testing.assert_array_equal(a, e)
