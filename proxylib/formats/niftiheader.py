"""The NIfTI header object shared by NIfTI-1 and NIfTI-2.

A header holds one structured numpy record in the byte order of its file
(``header['dim']`` is a view into it) plus the list of header extensions.
:meth:`NiftiHeader.from_bytes` parses and validates a header before any data
is read: every problem raises :class:`~proxylib.HeaderError` naming the file,
the field and the offending value. :meth:`NiftiHeader.check_data_size` then
checks the data it describes against what the file holds.

Scaling follows the standard: ``scl_slope`` 0 or non-finite means the stored
values are the values; otherwise ``value = scl_slope * stored + scl_inter``.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Tuple

import numpy as np

from ..errors import HeaderError
from ..spec import MAX_NBYTES
from .extensions import Extension, extensions_from_nibabel, is_nibabel_nifti_header
from .fields import (DATATYPES, EXTENSION_FLAG_SIZE, UNSUPPORTED_DATATYPES, WIDENED,
                     datatype_code)
from .headerinfo import HeaderInfoMixin
from .records import RecordFieldsMixin
from .xforms import XformHeaderMixin

MAX_NDIM = 7


class NiftiHeader(RecordFieldsMixin, XformHeaderMixin, HeaderInfoMixin):
    """Header fields of one NIfTI image, with typed accessors.

    Parameters
    ----------
    endianness : {'<', '>', '='}
        Byte order of the new (default) header; native by default.
    """

    #: Set by subclasses.
    fields: np.dtype
    sizeof_hdr: int
    version: int
    single_magic: bytes
    pair_magic: bytes
    quaternion_threshold: float

    def __init__(self, endianness: str = "=") -> None:
        if endianness not in ("<", ">", "="):
            raise ValueError(f"endianness must be '<', '>' or '=', not {endianness!r}")
        self._struct = np.zeros((), dtype=self.fields.newbyteorder(endianness))
        self.extensions: List[Extension] = []
        self.path: Optional[str] = None
        #: What parsing repaired (see :meth:`from_bytes`); empty for a new header.
        self.repairs: List[str] = []
        self._set_defaults()

    def _set_defaults(self) -> None:
        s = self._struct
        s["sizeof_hdr"] = self.sizeof_hdr
        s["magic"] = self.single_magic
        s["dim"] = [1, 1, 1, 1, 1, 1, 1, 1]
        s["pixdim"] = 1.0
        s["vox_offset"] = self.single_vox_offset
        s["scl_slope"] = 1.0
        s["scl_inter"] = 0.0
        self.set_data_dtype(np.float32)

    # -- construction ---------------------------------------------------------
    @property
    def single_vox_offset(self) -> int:
        """Smallest data offset of a single-file image (header + extension flag)."""
        return self.sizeof_hdr + EXTENSION_FLAG_SIZE

    @classmethod
    def byteorder_of(cls, block: bytes) -> Optional[str]:
        """'<' or '>' if ``block`` starts with this version's sizeof_hdr, else None."""
        if len(block) < 4:
            return None
        for order in "<>":
            if int(np.frombuffer(block[:4], order + "i4")[0]) == cls.sizeof_hdr:
                return order
        return None

    @classmethod
    def from_bytes(cls, block: bytes, *, path: Optional[str] = None,
                   repair: bool = True) -> "NiftiHeader":
        """Parse and validate the first ``sizeof_hdr`` bytes of ``block``.

        With ``repair`` (the default, as when loading a file) the fields
        nibabel repairs on load are repaired the same way and listed in
        ``header.repairs`` (loading an image warns with them): zero
        voxel sizes become 1, negative ones positive, a qfac other than
        +-1 becomes 1, unknown transform codes 0, and a NIfTI-2
        ``eol_check`` of all zeros the standard bytes.
        """
        name = path or "<header bytes>"
        if len(block) < cls.sizeof_hdr:
            raise HeaderError(
                f"{name}: a NIfTI-{cls.version} header needs {cls.sizeof_hdr} bytes, the "
                f"file holds {len(block)}; the file is truncated", path=path,
                field="sizeof_hdr", value=len(block))
        order = cls.byteorder_of(block)
        if order is None:
            found = tuple(int(np.frombuffer(block[:4], o + "i4")[0]) for o in "<>")
            raise HeaderError(
                f"{name}: sizeof_hdr is {found[0]} (little-endian) / {found[1]} "
                f"(big-endian), expected {cls.sizeof_hdr} for NIfTI-{cls.version}",
                path=path, field="sizeof_hdr", value=found[0])
        header = cls.__new__(cls)
        header._struct = np.frombuffer(block[:cls.sizeof_hdr],
                                       cls.fields.newbyteorder(order)).reshape(()).copy()
        header.extensions = []
        header.path = path
        header.repairs = header._repair() if repair else []
        header.validate()
        return header

    def _repair(self) -> List[str]:
        """Repair the fields nibabel repairs on load; return what changed."""
        return self._repair_xforms()

    @classmethod
    def from_header(cls, other: Any = None) -> "NiftiHeader":
        """A header of this class with every field ``other`` shares copied.

        ``other`` may be a proxylib NIfTI header or a nibabel one (its fields,
        descrip, units, intent and extensions all come over).
        """
        if other is None:
            return cls()
        if type(other) is cls:
            return other.copy()
        foreign = is_nibabel_nifti_header(other)
        if not isinstance(other, NiftiHeader) and not foreign:
            raise TypeError(f"header must be a NIfTI header (proxylib's or nibabel's), not "
                            f"{type(other).__name__}")
        new = cls(other.endianness)
        for name in other.keys():
            if name in ("sizeof_hdr", "magic", "eol_check") or name not in new._struct.dtype.names:
                continue
            value = other[name]
            try:
                new._struct[name] = value
            except (OverflowError, ValueError) as err:
                raise HeaderError(
                    f"field {name} = {value!r} does not fit a NIfTI-{cls.version} header",
                    field=name, value=value) from err
            copied = np.asarray(new._struct[name])
            if not np.array_equal(copied, np.asarray(value),
                                  equal_nan=copied.dtype.kind in "fc"):  # NaN scl_slope
                raise HeaderError(
                    f"field {name} = {value!r} does not fit a NIfTI-{cls.version} header",
                    field=name, value=value)
        new["magic"] = new.single_magic if other.is_single else new.pair_magic
        new.extensions = (extensions_from_nibabel(other.extensions) if foreign
                          else list(other.extensions))
        return new

    def copy(self) -> "NiftiHeader":
        new = type(self).__new__(type(self))
        new._struct = self._struct.copy()
        new.extensions = list(self.extensions)
        new.path = self.path
        new.repairs = list(self.repairs)
        return new

    # -- raw fields (keys, [] and `in` come from RecordFieldsMixin) ------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NiftiHeader) or other.version != self.version:
            return NotImplemented
        mine = self._struct.astype(self.fields.newbyteorder("<"))
        theirs = other._struct.astype(other.fields.newbyteorder("<"))
        return mine.tobytes() == theirs.tobytes() and self.extensions == other.extensions

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(shape={self.get_data_shape()}, "
                f"dtype={self.get_data_dtype()}, endianness={self.endianness!r})")

    @property
    def endianness(self) -> str:
        """'<' or '>': the byte order of the fields (and of the data)."""
        order = self._struct.dtype["sizeof_hdr"].byteorder
        if order == "=":
            return "<" if np.little_endian else ">"
        return order

    @property
    def binaryblock(self) -> bytes:
        """The ``sizeof_hdr`` header bytes, in the header's byte order."""
        return self._struct.tobytes()

    def as_byteorder(self, order: str) -> "NiftiHeader":
        """A copy of this header with fields (and data dtype) in byte order ``order``."""
        new = self.copy()
        new._struct = self._struct.astype(self.fields.newbyteorder(order))
        return new

    @property
    def is_single(self) -> bool:
        """True for a single-file (``.nii``) magic, False for a pair (``.hdr``/``.img``)."""
        return self._struct["magic"].item() == self.single_magic.rstrip(b"\x00")

    # -- validation -----------------------------------------------------------
    def _fail(self, field: str, value: Any, problem: str) -> HeaderError:
        name = self.path or "<header>"
        return HeaderError(f"{name}: {field} = {value!r}: {problem}", path=self.path,
                           field=field, value=value)

    def validate(self) -> None:
        """Raise :class:`HeaderError` for any field that makes the data unreadable."""
        self._check_magic()
        self.get_data_shape()
        self.get_data_dtype()
        self.get_data_offset()
        self.get_slope_inter()
        self.data_nbytes()

    def _check_magic(self) -> None:
        magic = self._struct["magic"].item()
        valid = {self.single_magic.rstrip(b"\x00"), self.pair_magic.rstrip(b"\x00")}
        if magic not in valid:
            raise self._fail("magic", magic, f"expected {sorted(valid)}; not a NIfTI-"
                             f"{self.version} file (an Analyze 7.5 header has no magic)")

    # -- shape ------------------------------------------------------------------
    def get_data_shape(self) -> Tuple[int, ...]:
        dim = [int(d) for d in self._struct["dim"]]
        ndim = dim[0]
        if not 1 <= ndim <= MAX_NDIM:
            raise self._fail("dim", tuple(dim), f"dim[0] (the number of dimensions) must be "
                             f"1 to {MAX_NDIM}, not {ndim}")
        shape = tuple(dim[1:ndim + 1])
        if any(n < 0 for n in shape):
            return self._negative_dim(shape)
        return shape

    def _negative_dim(self, shape: Tuple[int, ...]) -> Tuple[int, ...]:
        """The shape of a header with a negative dimension (refused; see NIfTI-1)."""
        raise self._fail("dim", shape, f"dimensions must not be negative (FreeSurfer's "
                         f"dim[1] = -1 vector convention is a NIfTI-1 convention, not "
                         f"NIfTI-{self.version})")

    def set_data_shape(self, shape: Any) -> None:
        """Set ``dim``; ``pixdim`` is left alone (as nibabel does).

        A shape equal to the current one leaves ``dim`` as it is, so a
        FreeSurfer vector header keeps its form.
        """
        shape = tuple(int(n) for n in shape)
        try:
            if self.get_data_shape() == shape:
                return
        except HeaderError:
            pass
        if not 1 <= len(shape) <= MAX_NDIM:
            raise ValueError(f"NIfTI holds 1 to {MAX_NDIM} dimensions, not {len(shape)} "
                             f"(shape {shape})")
        limit = np.iinfo(self._struct["dim"].dtype).max
        if any(n < 0 or n > limit for n in shape):
            raise HeaderError(f"shape {shape} does not fit NIfTI-{self.version} dim "
                              f"(0 to {limit} per axis)", field="dim", value=shape)
        dim = self._struct["dim"]
        dim[:] = 1
        dim[0] = len(shape)
        dim[1:len(shape) + 1] = shape

    def data_nbytes(self) -> int:
        """Bytes of image data the header describes (overflow-safe)."""
        shape = self.get_data_shape()
        nbytes = math.prod(shape) * self.get_data_dtype().itemsize
        if nbytes > MAX_NBYTES:
            raise self._fail("dim", shape, f"the data would need {nbytes} bytes, more than "
                             f"any file or this platform can hold ({MAX_NBYTES})")
        return nbytes

    # -- dtype -----------------------------------------------------------------
    def get_data_dtype(self) -> np.dtype:
        """Storage dtype of the data, in the header's byte order."""
        code = int(self._struct["datatype"])
        if code in UNSUPPORTED_DATATYPES:
            raise self._fail("datatype", code, f"NIfTI type {UNSUPPORTED_DATATYPES[code]} "
                             "cannot be read: numpy has no exact equivalent")
        if code not in DATATYPES:
            raise self._fail("datatype", code, "unknown NIfTI datatype code; expected one of "
                             f"{sorted(DATATYPES)}")
        dtype = DATATYPES[code]
        return dtype if dtype.fields is not None else dtype.newbyteorder(self.endianness)

    def set_data_dtype(self, dtype: Any) -> None:
        """Set the on-disk dtype; plain ``int``/``'int'`` is refused (give a size, as nibabel)."""
        if dtype is int or (isinstance(dtype, str) and dtype == "int"):
            raise HeaderError(f"data type {dtype!r} has no size; give a sized integer type "
                              "such as 'int16' or np.uint8", field="datatype", value=str(dtype))
        dtype = np.dtype(dtype)
        dtype = WIDENED.get(dtype.newbyteorder("="), dtype)
        code = datatype_code(dtype)
        if code is None:
            raise HeaderError(f"NIfTI has no datatype for {dtype}; use one of "
                              f"{sorted(str(d) for d in DATATYPES.values())}",
                              field="datatype", value=str(dtype))
        self._struct["datatype"] = code
        self._struct["bitpix"] = DATATYPES[code].itemsize * 8

    # -- offset ------------------------------------------------------------------
    def get_data_offset(self) -> int:
        raw = self._struct["vox_offset"]
        value = float(raw)
        if not math.isfinite(value):
            raise self._fail("vox_offset", value, "the data offset must be finite")
        if value < 0 or value != int(value):
            raise self._fail("vox_offset", value,
                             "the data offset must be a whole, non-negative number of bytes")
        offset = int(raw)
        if self.is_single and offset < self.single_vox_offset:
            raise self._fail("vox_offset", offset, f"the data would start inside the header "
                             f"(a single-file NIfTI-{self.version} needs vox_offset >= "
                             f"{self.single_vox_offset})")
        return offset

    def set_data_offset(self, offset: int) -> None:
        self._struct["vox_offset"] = offset

    def check_data_size(self, available: int, *, at_least: bool = False,
                        path: Optional[str] = None) -> None:
        """Raise :class:`HeaderError` if a data file of ``available`` bytes is too short.

        ``at_least`` marks ``available`` as an upper bound only (compressed
        files): then only a size that cannot possibly fit fails.
        """
        offset = self.get_data_offset()
        nbytes = self.data_nbytes()
        where = path or self.path or "<data file>"
        bound = "at most " if at_least else ""
        if offset > available or (offset == available and nbytes > 0):
            raise HeaderError(
                f"{where}: vox_offset = {offset}: the data would start past the end of the "
                f"file, which holds {bound}{available} bytes", path=where,
                field="vox_offset", value=offset)
        if offset + nbytes > available:
            raise HeaderError(
                f"{where}: dim = {self.get_data_shape()}: {self.get_data_dtype()} data of "
                f"this shape needs {nbytes} bytes from offset {offset}, but the file holds "
                f"{bound}{available} bytes; the file is truncated or the header is wrong",
                path=where, field="dim", value=self.get_data_shape())

    # -- scaling -------------------------------------------------------------------
    def get_slope_inter(self) -> Tuple[Optional[float], Optional[float]]:
        """(slope, inter) as floats, or (None, None) when the data is not scaled."""
        slope = float(self._struct["scl_slope"])
        inter = float(self._struct["scl_inter"])
        if slope == 0 or not math.isfinite(slope) or self.get_data_dtype().fields is not None:
            return None, None
        if not math.isfinite(inter):
            raise self._fail("scl_inter", inter,
                             f"scl_slope is {slope} (valid), so scl_inter must be finite")
        return slope, inter

    def set_slope_inter(self, slope: Optional[float], inter: Optional[float] = None) -> None:
        """Set ``scl_slope``/``scl_inter``; None (or NaN for both) means unscaled.

        Refused as nibabel refuses them: a slope of 0 or infinity, an
        infinite intercept, or NaN in only one of the two.
        """
        slope = np.nan if slope is None else float(slope)
        inter = np.nan if inter is None else float(inter)
        if math.isnan(slope) != math.isnan(inter):
            raise HeaderError(f"scl_slope {slope} / scl_inter {inter}: give both or neither "
                              "(None or NaN means unscaled)", field="scl_slope", value=slope)
        if slope == 0 or math.isinf(slope):
            raise HeaderError(f"scl_slope must not be 0 or infinite, not {slope}",
                              field="scl_slope", value=slope)
        if math.isinf(inter):
            raise HeaderError(f"scl_inter must not be infinite, not {inter}",
                              field="scl_inter", value=inter)
        self._struct["scl_slope"] = slope
        self._struct["scl_inter"] = inter

    # -- geometry ------------------------------------------------------------------
    def get_zooms(self) -> Tuple[float, ...]:
        """Voxel sizes (``pixdim[1:ndim+1]``) as floats."""
        ndim = len(self.get_data_shape())
        return tuple(float(z) for z in self._struct["pixdim"][1:ndim + 1])

    def set_zooms(self, zooms: Any) -> None:
        ndim = len(self.get_data_shape())
        zooms = [float(z) for z in zooms]
        if len(zooms) != ndim:
            raise ValueError(f"expected {ndim} zooms, got {len(zooms)}")
        if any(z < 0 or not math.isfinite(z) for z in zooms):
            raise ValueError(f"zooms must be finite and non-negative, not {zooms}")
        self._struct["pixdim"][1:ndim + 1] = zooms
