"""The descriptive side of a NIfTI header: mapping access, units, intent, slices.

None of these fields changes how the data is read; they are what tools
print and what analysis code asks for. Labels are the short names nibabel
uses, so code written against nibabel's header reads the same answers.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import HeaderError
from .fields import DATATYPES, XFORM_CODES

#: Spatial unit codes (bits 0-2 of ``xyzt_units``) and temporal ones (bits 3-5).
SPACE_UNITS = {0: "unknown", 1: "meter", 2: "mm", 3: "micron"}
TIME_UNITS = {0: "unknown", 8: "sec", 16: "msec", 24: "usec", 32: "hz", 40: "ppm", 48: "rads"}

#: Statistic / meaning codes: code -> (label, number of intent_p parameters used).
INTENTS: Dict[int, Tuple[str, int]] = {
    0: ("none", 0), 2: ("correlation", 1), 3: ("t test", 1), 4: ("f test", 2),
    5: ("z score", 0), 6: ("chi2", 1), 7: ("beta", 2), 8: ("binomial", 2), 9: ("gamma", 2),
    10: ("poisson", 1), 11: ("normal", 2), 12: ("non central f test", 3),
    13: ("non central chi2", 2), 14: ("logistic", 2), 15: ("laplace", 2),
    16: ("uniform", 2), 17: ("non central t test", 2), 18: ("weibull", 2), 19: ("chi", 1),
    20: ("inverse gaussian", 2), 21: ("extreme value 1", 2), 22: ("p value", 0),
    23: ("log p value", 0), 24: ("log10 p value", 0),
    1001: ("estimate", 0), 1002: ("label", 0), 1003: ("neuroname", 0),
    1004: ("general matrix", 2), 1005: ("symmetric matrix", 1),
    1006: ("displacement vector", 0), 1007: ("vector", 0), 1008: ("pointset", 0),
    1009: ("triangle", 0), 1010: ("quaternion", 0), 1011: ("dimensionless", 0),
    2001: ("time series", 0), 2002: ("node index", 0), 2003: ("rgb vector", 0),
    2004: ("rgba vector", 0), 2005: ("shape", 0),
    2006: ("fnirt disp field", 0), 2007: ("fnirt cubic spline coef", 0),
    2008: ("fnirt dct coef", 0), 2009: ("fnirt quad spline coef", 0),
    2016: ("topup cubic spline coef ", 0), 2017: ("topup quad spline coef", 0),
    2018: ("topup field", 0),
    3000: ("ConnUnknown", 0), 3001: ("ConnDense", 0), 3002: ("ConnDenseSeries", 0),
    3003: ("ConnParcels", 0), 3004: ("ConnParcelSries", 0), 3006: ("ConnDenseScalar", 0),
    3007: ("ConnDenseLabel", 0), 3008: ("ConnParcelScalr", 0), 3009: ("ConnParcelDense", 0),
    3010: ("ConnDenseParcel", 0), 3011: ("ConnPPSr", 0), 3012: ("ConnPPSc", 0),
}

SLICE_ORDERS = {0: "unknown", 1: "sequential increasing", 2: "sequential decreasing",
                3: "alternating increasing", 4: "alternating decreasing",
                5: "alternating increasing 2", 6: "alternating decreasing 2"}


class HeaderInfoMixin:
    """Mapping access and descriptive accessors of a NIfTI header."""

    _struct: np.ndarray
    # also relies on the header's keys(), __getitem__ and _fail(field, value, problem)

    # -- mapping ------------------------------------------------------------------
    def values(self) -> List[Any]:
        """Field values in header order (array fields as views)."""
        return [self[name] for name in self.keys()]

    def items(self) -> List[Tuple[str, Any]]:
        """``(name, value)`` pairs in header order."""
        return [(name, self[name]) for name in self.keys()]

    def get(self, name: str, default: Any = None) -> Any:
        """The field ``name``, or ``default`` when the header has no such field."""
        return self[name] if name in self.keys() else default

    def __str__(self) -> str:
        lines = [f"{type(self).__name__} (NIfTI-{self.version}), "
                 f"byte order {self.endianness!r}"]
        for name in self.keys():
            lines.append(f"{name:<15} : {self._describe_field(name)}")
        if self.extensions:
            lines.append(f"{'extensions':<15} : "
                         + ", ".join(f"code {e.code} ({len(e.content)} bytes)"
                                     for e in self.extensions))
        return "\n".join(lines)

    def _describe_field(self, name: str) -> str:
        value = self[name]
        code = int(value) if np.ndim(value) == 0 and np.asarray(value).dtype.kind in "iu" else None
        if name == "datatype" and code in DATATYPES:
            return f"{code} ({DATATYPES[code]})"
        if name in ("qform_code", "sform_code") and code in XFORM_CODES:
            return f"{code} ({XFORM_CODES[code]})"
        if name == "intent_code" and code in INTENTS:
            return f"{code} ({INTENTS[code][0]})"
        if name == "slice_code" and code in SLICE_ORDERS:
            return f"{code} ({SLICE_ORDERS[code]})"
        if name == "xyzt_units":
            space, time = self.get_xyzt_units()
            return f"{code} ({space}, {time})"
        if name == "dim_info":
            return f"{code} (freq, phase, slice = {self.get_dim_info()})"
        if isinstance(value, bytes) or np.asarray(value).dtype.kind == "S":
            return repr(np.asarray(value).item())
        return str(np.asarray(value).tolist())

    # -- units, intent, slices --------------------------------------------------------
    def get_xyzt_units(self) -> Tuple[str, str]:
        """(space unit, time unit) names from ``xyzt_units``; 'unknown' for unknown codes."""
        packed = int(self._struct["xyzt_units"])
        return SPACE_UNITS.get(packed & 0x07, "unknown"), TIME_UNITS.get(packed & 0x38, "unknown")

    def set_xyzt_units(self, xyz: Any = None, t: Any = None) -> None:
        """Set the space and time units by name or code (None: unknown)."""
        space = _unit_code(xyz, SPACE_UNITS, "space")
        time = _unit_code(t, TIME_UNITS, "time")
        self._struct["xyzt_units"] = space | time

    def get_intent(self, code_repr: str = "label") -> Tuple[Any, Tuple[float, ...], str]:
        """(intent label or code, the parameters that intent uses, intent_name)."""
        if code_repr not in ("label", "code"):
            raise ValueError(f"code_repr must be 'label' or 'code', not {code_repr!r}")
        code = int(self._struct["intent_code"])
        if code not in INTENTS:
            raise self._fail("intent_code", code, "not a NIfTI intent code")
        label, count = INTENTS[code]
        params = tuple(float(self._struct[f"intent_p{i}"]) for i in range(1, count + 1))
        name = self._struct["intent_name"].item().decode("latin-1")
        return (label if code_repr == "label" else code), params, name

    def set_intent(self, code: Any, params: Tuple[float, ...] = (), name: str = "") -> None:
        """Set the intent by code or label, with its parameters and a name."""
        number = _intent_code(code)
        wanted = INTENTS[number][1]
        params = tuple(float(p) for p in params)
        if len(params) not in (0, wanted):
            raise HeaderError(f"intent {INTENTS[number][0]!r} takes {wanted} parameters, "
                              f"not {len(params)}", field="intent_code", value=code)
        params = params or (0.0,) * wanted
        for i in range(3):
            self._struct[f"intent_p{i + 1}"] = params[i] if i < len(params) else 0.0
        self._struct["intent_code"] = number
        self._struct["intent_name"] = name.encode("latin-1")

    def get_dim_info(self) -> Tuple[Optional[int], Optional[int], Optional[int]]:
        """Axes of (frequency, phase, slice) encoding from ``dim_info``; None if unset."""
        packed = int(self._struct["dim_info"])
        freq, phase, slice_ = (((packed >> shift) & 3) - 1 for shift in (0, 2, 4))
        return (None if freq < 0 else freq, None if phase < 0 else phase,
                None if slice_ < 0 else slice_)

    def set_dim_info(self, freq: Optional[int] = None, phase: Optional[int] = None,
                     slice: Optional[int] = None) -> None:
        """Set the frequency, phase and slice axes (0, 1, 2 or None)."""
        packed = 0
        for shift, axis in zip((0, 2, 4), (freq, phase, slice)):
            if axis is None:
                continue
            if axis not in (0, 1, 2):
                raise HeaderError(f"dim_info axes must be 0, 1, 2 or None, not {axis!r}",
                                  field="dim_info", value=axis)
            packed |= (axis + 1) << shift
        self._struct["dim_info"] = packed

    def get_slice_duration(self) -> float:
        """``slice_duration``; refused unless ``dim_info`` names the slice axis."""
        if self.get_dim_info()[2] is None:
            raise self._fail("dim_info", int(self._struct["dim_info"]),
                             "the slice axis must be set (set_dim_info(slice=...)) for "
                             "slice_duration to mean anything")
        return float(self._struct["slice_duration"])


def _unit_code(unit: Any, table: Dict[int, str], kind: str) -> int:
    if unit is None:
        return 0
    for code, label in table.items():
        if unit == label or (not isinstance(unit, str) and unit == code):
            return code
    raise HeaderError(f"unknown {kind} unit {unit!r}; expected one of {list(table.values())}",
                      field="xyzt_units", value=unit)


def _intent_code(code: Any) -> int:
    if isinstance(code, str):
        for number, (label, _) in INTENTS.items():
            if code == label:
                return number
    elif code in INTENTS:
        return int(code)
    raise HeaderError(f"unknown intent {code!r}", field="intent_code", value=code)
