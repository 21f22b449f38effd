"""The ANALYZE 7.5 header, as SPM reads it.

348 bytes, in either byte order (the data shares it), always a ``.hdr``
beside an ``.img``. It has no magic: NIfTI-1 put ``ni1``/``n+1`` in its last
four bytes, so a 348-byte header without them is ANALYZE.

SPM's additions, which this header honours as SPM2 does: ``funused1`` is
the scale factor and ``funused2`` the intercept (``value = funused1 * stored
+ funused2``; a zero or non-finite ``funused1`` means no scale factor, and
then ``glmin``/``glmax`` -> ``cal_min``/``cal_max`` give one if both ranges
are set), and the ten ``originator`` bytes hold the origin voxel as five
int16 (1-based). The transform is, best first: the ``mat`` beside the pair
(see :mod:`.analyzeimage`), the origin with the voxel sizes, the image
centre with the voxel sizes. x is flipped (ANALYZE is radiological).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import numpy as np

from ..errors import HeaderError
from ..spec import MAX_NBYTES
from .fields import RGB24
from .records import RecordFieldsMixin

ANALYZE_FIELDS = np.dtype([
    ("sizeof_hdr", "<i4"), ("data_type", "S10"), ("db_name", "S18"), ("extents", "<i4"),
    ("session_error", "<i2"), ("regular", "S1"), ("hkey_un0", "S1"),
    ("dim", "<i2", (8,)), ("vox_units", "S4"), ("cal_units", "S8"), ("unused1", "<i2"),
    ("datatype", "<i2"), ("bitpix", "<i2"), ("dim_un0", "<i2"), ("pixdim", "<f4", (8,)),
    ("vox_offset", "<f4"), ("funused1", "<f4"), ("funused2", "<f4"), ("funused3", "<f4"),
    ("cal_max", "<f4"), ("cal_min", "<f4"), ("compressed", "<i4"), ("verified", "<i4"),
    ("glmax", "<i4"), ("glmin", "<i4"),
    ("descrip", "S80"), ("aux_file", "S24"), ("orient", "S1"), ("originator", "S10"),
    ("generated", "S10"), ("scannum", "S10"), ("patient_id", "S10"), ("exp_date", "S10"),
    ("exp_time", "S10"), ("hist_un0", "S3"), ("views", "<i4"), ("vols_added", "<i4"),
    ("start_field", "<i4"), ("field_skip", "<i4"), ("omax", "<i4"), ("omin", "<i4"),
    ("smax", "<i4"), ("smin", "<i4"),
])
assert ANALYZE_FIELDS.itemsize == 348

#: ANALYZE datatype code -> numpy dtype (little-endian form).
DATATYPES = {2: np.dtype("u1"), 4: np.dtype("<i2"), 8: np.dtype("<i4"), 16: np.dtype("<f4"),
             32: np.dtype("<c8"), 64: np.dtype("<f8"), 128: RGB24}
#: Types an array is stored in when ANALYZE has no code for its own (exact).
WIDENED = {np.dtype(bool): np.dtype("u1"), np.dtype("i1"): np.dtype("<i2"),
           np.dtype("f2"): np.dtype("<f4")}
NIFTI_MAGICS = (b"ni1\x00", b"n+1\x00")


def datatype_code(dtype: Any) -> Optional[int]:
    dtype = np.dtype(dtype)
    for code, known in DATATYPES.items():
        if known.fields is not None or dtype.fields is not None:
            if known == dtype:
                return code
        elif known.newbyteorder("=") == dtype.newbyteorder("="):
            return code
    return None


class AnalyzeHeader(RecordFieldsMixin):
    """One ANALYZE 7.5 header record in its file's byte order."""

    sizeof_hdr = 348

    def __init__(self, endianness: str = "=") -> None:
        self._struct = np.zeros((), ANALYZE_FIELDS.newbyteorder(endianness))
        self._struct["sizeof_hdr"] = self.sizeof_hdr
        self._struct["regular"] = b"r"
        self._struct["dim"] = [3, 1, 1, 1, 1, 1, 1, 1]
        self._struct["pixdim"] = 1.0
        self._struct["funused1"] = 1.0
        self.path: Optional[str] = None
        self.set_data_dtype(np.float32)

    @staticmethod
    def byteorder_of(block: bytes) -> Optional[str]:
        """'<' or '>' for a 348-byte header without NIfTI magic, else None."""
        if len(block) < 348 or block[344:348] in NIFTI_MAGICS:
            return None
        for order in "<>":
            if int(np.frombuffer(block[:4], order + "i4")[0]) == 348:
                return order
        return None

    @classmethod
    def from_bytes(cls, block: bytes, *, path: Optional[str] = None) -> "AnalyzeHeader":
        order = cls.byteorder_of(block)
        if order is None:
            raise HeaderError(f"{path or '<header bytes>'}: not an ANALYZE 7.5 header "
                              "(sizeof_hdr 348 in either byte order, no NIfTI magic)",
                              path=path, field="sizeof_hdr", value=len(block))
        header = cls.__new__(cls)
        header._struct = np.frombuffer(block[:348], ANALYZE_FIELDS.newbyteorder(order))[0].copy()
        header.path = path
        header.validate()
        return header

    @classmethod
    def from_header(cls, other: Any = None) -> "AnalyzeHeader":
        """A copy of an ANALYZE header; the shared fields of a NIfTI-1 header; else default."""
        if isinstance(other, AnalyzeHeader):
            return other.copy()
        new = cls()
        if other is not None and getattr(other, "sizeof_hdr", None) == 348:
            for name in ("dim", "pixdim", "descrip", "aux_file", "cal_max", "cal_min",
                         "glmax", "glmin", "db_name"):
                new[name] = other[name]
        return new

    def copy(self) -> "AnalyzeHeader":
        new = type(self).__new__(type(self))
        new._struct = self._struct.copy()
        new.path = self.path
        return new

    def _fail(self, field: str, value: Any, problem: str) -> HeaderError:
        return HeaderError(f"{self.path or '<header>'}: ANALYZE header field {field} = "
                           f"{value!r}: {problem}", path=self.path, field=field, value=value)

    def validate(self) -> None:
        """Raise :class:`~proxylib.HeaderError` for a shape, type or offset that cannot be read."""
        self.get_data_shape()
        self.get_data_dtype()
        self.get_data_offset()
        if self.data_nbytes() > MAX_NBYTES:
            raise self._fail("dim", self.get_data_shape(), "describes more data than any "
                             "file can hold")

    # -- fields (keys, [] and `in` come from RecordFieldsMixin) -------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AnalyzeHeader):
            return NotImplemented
        return self.binaryblock == other.as_byteorder(self.endianness).binaryblock

    def __repr__(self) -> str:
        return (f"AnalyzeHeader(shape={self.get_data_shape()}, dtype={self.get_data_dtype()}, "
                f"endianness={self.endianness!r})")

    @property
    def endianness(self) -> str:
        order = self._struct.dtype["sizeof_hdr"].byteorder
        return {"=": "<" if np.little_endian else ">", "|": "<"}.get(order, order)

    @property
    def binaryblock(self) -> bytes:
        return self._struct.tobytes()

    def as_byteorder(self, order: str) -> "AnalyzeHeader":
        new = self.copy()
        new._struct = self._struct.astype(ANALYZE_FIELDS.newbyteorder(order))
        return new

    # -- shape, type, offset, scaling --------------------------------------------------
    def get_data_shape(self) -> Tuple[int, ...]:
        dim = [int(d) for d in self["dim"]]
        if not 1 <= dim[0] <= 7:
            raise self._fail("dim", tuple(dim), f"dim[0] = {dim[0]} dimensions; must be 1 to 7")
        shape = tuple(dim[1:dim[0] + 1])
        if any(n < 1 for n in shape):
            raise self._fail("dim", tuple(dim), f"shape {shape} has a dimension below 1")
        return shape

    def set_data_shape(self, shape: Any) -> None:
        shape = tuple(int(n) for n in shape)
        limit = np.iinfo(np.int16).max
        if not 1 <= len(shape) <= 7 or any(not 1 <= n <= limit for n in shape):
            raise HeaderError(f"ANALYZE holds 1 to 7 dimensions of 1 to {limit}, not shape "
                              f"{shape}", field="dim", value=shape)
        self["dim"] = (len(shape),) + shape + (1,) * (7 - len(shape))

    def get_data_dtype(self) -> np.dtype:
        code = int(self["datatype"])
        known = DATATYPES.get(code)
        if known is None:
            raise self._fail("datatype", code, "not an ANALYZE type proxylib reads; supported: "
                             "2 uint8, 4 int16, 8 int32, 16 float32, 32 complex64, 64 float64, "
                             "128 RGB")
        return known if known.fields is not None else known.newbyteorder(self.endianness)

    def set_data_dtype(self, dtype: Any) -> None:
        code = datatype_code(dtype)
        if code is None:
            raise HeaderError(f"ANALYZE cannot store {np.dtype(dtype)} data; supported: uint8, "
                              "int16, int32, float32, float64, complex64, RGB (convert first, "
                              "or save as NIfTI)", field="datatype", value=str(dtype))
        self["datatype"] = code
        self["bitpix"] = DATATYPES[code].itemsize * 8

    def get_data_offset(self) -> int:
        offset = float(self["vox_offset"])
        if not (math.isfinite(offset) and offset >= 0 and offset == int(offset)):
            raise self._fail("vox_offset", offset, "must be a whole number of bytes >= 0")
        return int(offset)

    def data_nbytes(self) -> int:
        return math.prod(self.get_data_shape()) * self.get_data_dtype().itemsize

    def get_slope_inter(self) -> Tuple[Optional[float], Optional[float]]:
        """SPM2's rule: funused1/funused2, else the gl/cal ranges, else (None, None)."""
        slope = float(self["funused1"])
        if math.isfinite(slope) and slope != 0:
            inter = float(self["funused2"])
            return slope, inter if math.isfinite(inter) else 0.0
        stored = int(self["glmax"]) - int(self["glmin"])
        scaled = float(self["cal_max"]) - float(self["cal_min"])
        if stored and scaled and math.isfinite(scaled):
            slope = scaled / stored
            return slope, float(self["cal_min"]) - slope * int(self["glmin"])
        return None, None

    def set_slope_inter(self, slope: Optional[float], inter: Optional[float] = None) -> None:
        self["funused1"] = 1.0 if slope is None else slope
        self["funused2"] = 0.0 if inter is None else inter

    # -- geometry ----------------------------------------------------------------------
    def get_zooms(self) -> Tuple[float, ...]:
        return tuple(float(z) for z in self["pixdim"][1:len(self.get_data_shape()) + 1])

    def set_zooms(self, zooms: Any) -> None:
        zooms = [float(z) for z in zooms]
        if any(z < 0 or not math.isfinite(z) for z in zooms):
            raise HeaderError(f"zooms must be finite and >= 0, not {zooms}", field="pixdim",
                              value=tuple(zooms))
        self._struct["pixdim"][1:len(zooms) + 1] = zooms

    def get_origin(self) -> np.ndarray:
        """SPM's origin: five int16 in the ``originator`` bytes, 1-based voxel indices."""
        return np.frombuffer(self["originator"].ljust(10, b"\x00"), self.endianness + "i2")

    def get_best_affine(self) -> np.ndarray:
        """Voxel sizes with x flipped, about SPM's origin if it lies near the image, else
        about the image centre (what SPM and nibabel do without a ``.mat``)."""
        shape = np.array((self.get_data_shape() + (1, 1))[:3], dtype=np.float64)
        zooms = np.array((tuple(float(z) for z in self["pixdim"][1:4])), dtype=np.float64)
        zooms[0] *= -1
        origin = self.get_origin()[:3].astype(np.float64)
        if np.any(origin) and np.all(origin > -shape) and np.all(origin < shape * 2):
            centre = origin - 1
        else:
            centre = (shape - 1) / 2
        affine = np.diag(np.append(zooms, 1.0))
        affine[:3, 3] = -centre * zooms
        return affine
