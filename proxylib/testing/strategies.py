"""Hypothesis strategies over everything a proxy read depends on.

Use them to test a reader that embeds :class:`~proxylib.ArrayProxy`::

    @given(case=proxy_cases())
    def test_reads(case): ...

Each :class:`ProxyCase` carries the stored array, its spec, a key and the
source/policy settings; :mod:`proxylib.testing.conformance` turns one into
files and proxies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Tuple

import numpy as np
try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as err:  # the rest of proxylib.testing works without hypothesis
    raise ImportError("proxylib.testing.strategies needs hypothesis: pip install hypothesis "
                      "(proxylib.testing.conformance and .oracle do not)") from err

from ..io.cost import CostModel
from ..spec import ArraySpec

STORAGE_DTYPES = tuple(np.dtype(code) for code in (
    "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8", "c8", "c16", "?"))
SOURCES = ("path", "bytesio", "fileobj")
MMAP_MODES = (True, "c", "r", False)


@dataclass(frozen=True)
class ProxyCase:
    """One randomly drawn read: data, layout, key and policies."""

    stored: np.ndarray
    spec: ArraySpec
    key: Any
    mmap: Any
    keep_file_open: bool
    source: str
    cost: CostModel


#: Structured dtypes: RGB-like, mixed byte order, padded, fields out of order.
STRUCTURED_DTYPES = (
    np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")]),
    np.dtype([("a", ">i2"), ("b", "<f4")]),
    np.dtype({"names": ["a", "b"], "formats": ["<i2", "<i4"], "offsets": [4, 0],
              "itemsize": 12}),
    np.dtype({"names": ["x"], "formats": [">u4"], "offsets": [2], "itemsize": 8}),
)


def storage_dtypes(structured: bool = True) -> st.SearchStrategy[np.dtype]:
    """Every integer, float, complex and bool width in both byte orders; some structs.

    ``structured=False`` leaves out the structured dtypes, for readers whose
    format stores only plain numbers.
    """
    numeric = st.tuples(st.sampled_from(STORAGE_DTYPES), st.sampled_from("<>")).map(
        lambda pair: pair[0].newbyteorder(pair[1]) if pair[0].itemsize > 1 else pair[0])
    if not structured:
        return numeric
    return st.one_of(numeric, numeric, numeric, st.sampled_from(STRUCTURED_DTYPES))


def shapes(max_dims: int = 6, max_side: int = 5) -> st.SearchStrategy[Tuple[int, ...]]:
    """0-6 dimensional shapes, size-1 and zero-length axes included."""
    return hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side)


def scalings(dtype: np.dtype) -> st.SearchStrategy[Tuple[Any, Any]]:
    """(slope, inter) pairs of assorted numeric types; (1, 0) often."""
    if dtype.kind in "bV":
        return st.just((1.0, 0.0))
    factors = st.sampled_from([
        1.0, 0.5, 2, -3, np.float32(0.25), np.float32(4), np.float64(1.5), np.int16(3)])
    offsets = st.sampled_from([0.0, 0, 1.5, -7, np.float32(2), np.float64(-0.5), np.int8(2)])
    return st.one_of(st.just((1.0, 0.0)), st.tuples(factors, offsets))


def cost_models() -> st.SearchStrategy[CostModel]:
    """Tiny block sizes and gap thresholds, so small arrays exercise every path."""
    return st.builds(CostModel,
                     gap_threshold=st.sampled_from([0, 8, 64, 1 << 20, 1 << 62]),
                     block_size=st.sampled_from([16, 64, 256, 8 << 20]))


def stored_arrays(shape: Tuple[int, ...], dtype: np.dtype) -> st.SearchStrategy[np.ndarray]:
    elements = None
    if dtype.kind == "f" or dtype.kind == "c":
        elements = {"allow_nan": False, "allow_infinity": False,
                    "min_value": -1000, "max_value": 1000}
        if dtype.kind == "c":
            elements = {"allow_nan": False, "allow_infinity": False, "max_magnitude": 1000}
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        elements = {"min_value": max(info.min, -1000), "max_value": min(info.max, 1000)}
    return hnp.arrays(dtype, shape, elements=elements)


@st.composite
def _with_numpy_integers(draw, key: Any) -> Any:
    """``key`` with some Python ints replaced by numpy integer scalars or 0-d arrays."""
    def convert(item):
        if type(item) is not int:
            return item
        kind = draw(st.sampled_from(["int", "int", "int64", "intp", "int16", "0d"]))
        if kind == "int" or (kind == "int16" and not -2**15 <= item < 2**15):
            return item
        if kind == "0d":
            return np.array(item)
        return np.dtype(kind).type(item)
    return tuple(convert(item) for item in key) if isinstance(key, tuple) else convert(key)


@st.composite
def stored_specs(draw, max_dims: int = 6,
                 structured: bool = True) -> Tuple[np.ndarray, ArraySpec]:
    """Stored values and the spec of a file holding them (dtype, offset, order, scaling)."""
    dtype = draw(storage_dtypes(structured))
    shape = draw(shapes(max_dims))
    stored = draw(stored_arrays(shape, dtype))
    slope, inter = draw(scalings(dtype))
    spec = ArraySpec(shape, dtype, offset=draw(st.integers(0, 40)),
                     order=draw(st.sampled_from("FC")), slope=slope, inter=inter)
    return stored, spec


@st.composite
def read_settings(draw, sources=SOURCES) -> dict:
    """How a case is read: mmap mode, handle policy, byte source and cost model."""
    return {"mmap": draw(st.sampled_from(MMAP_MODES)), "keep_file_open": draw(st.booleans()),
            "source": draw(st.sampled_from(sources)), "cost": draw(cost_models())}


@st.composite
def proxy_cases(draw, max_dims: int = 6, sources=SOURCES,
                structured: bool = True) -> ProxyCase:
    """A full read case; see :class:`ProxyCase` (``structured``: see :func:`storage_dtypes`)."""
    stored, spec = draw(stored_specs(max_dims, structured))
    key = draw(hnp.basic_indices(spec.shape, min_dims=0, allow_newaxis=True,
                                 allow_ellipsis=True))
    key = draw(_with_numpy_integers(key))
    return ProxyCase(stored=stored, spec=spec, key=key, **draw(read_settings(sources)))
