"""FreeSurfer MGH (``.mgh``) and its gzipped form (``.mgz``).

Layout, always big-endian: a 284-byte header (90 bytes of fields, zero
padding), the data in Fortran order (x fastest, then y, z, frames), then an
optional tail: the scan parameters TR, flip angle, TE, TI and FoV as
float32, possibly followed by free-form tags (not kept).

Loading reads the header only and embeds an :class:`~proxylib.ArrayProxy`;
an ``.mgz`` is read through proxylib's gzip engine and its saved seek index.
The tail lies past the data, so it is read on first use of a tail field
(``header['tr']``, or ``get_zooms()`` of a 4D image), not at load time.
Types: uint8, int16, uint16, int32, float32; others are refused with a
:class:`~proxylib.HeaderError`. MGH has no scale factors.
"""

from __future__ import annotations

import gzip
from typing import Any, Callable, Iterator, Optional, Tuple, Union

import numpy as np

from ..arrayproxy import ArrayProxy
from ..errors import HeaderError, TruncatedFileError
from ..fileholder import DataFile
from ..io.streams import read_on
from ..images import (GZIP_COMPRESSLEVEL, FileHolder, FileMap, ImageFileError,
                      check_load_options)
from ..spec import ArraySpec
from .blocks import write_blocks
from .spatial import AffineImage

HEADER_FIELDS = np.dtype([
    ("version", ">i4"),
    ("dims", ">i4", (4,)),
    ("type", ">i4"),
    ("dof", ">i4"),
    ("goodRASFlag", ">i2"),
    ("delta", ">f4", (3,)),
    ("Mdc", ">f4", (3, 3)),   # rows are the direction cosines of x, y, z
    ("Pxyz_c", ">f4", (3,)),  # world position of the volume's centre
])
TAIL_FIELDS = np.dtype([("tr", ">f4"), ("flip_angle", ">f4"), ("te", ">f4"), ("ti", ">f4"),
                        ("fov", ">f4")])
DATA_OFFSET = 284
#: FreeSurfer type codes numpy holds exactly (MRI_UCHAR, MRI_INT, MRI_FLOAT, MRI_SHORT, MRI_USHRT).
DATATYPES = {0: np.dtype(">u1"), 1: np.dtype(">i4"), 3: np.dtype(">f4"), 4: np.dtype(">i2"),
             10: np.dtype(">u2")}
#: Array dtypes stored in a wider MGH type that holds every value exactly.
WIDENED = {np.dtype(bool): np.dtype(np.uint8), np.dtype(np.int8): np.dtype(np.int16),
           np.dtype(np.float16): np.dtype(np.float32)}
#: The direction cosines of a new header (FreeSurfer's coronal conformed space).
DEFAULT_MDC = ((-1, 0, 0), (0, 0, 1), (0, -1, 0))


def mgh_type_code(dtype: Any) -> Optional[int]:
    """The MGH type code of ``dtype`` (any byte order), or None."""
    wanted = np.dtype(dtype).newbyteorder(">")
    return next((code for code, known in DATATYPES.items() if known == wanted), None)


class MGHHeader:
    """The MGH header fields plus the optional tail, read lazily.

    ``header[name]`` gives header fields (``version``, ``dims``, ``type``,
    ``dof``, ``goodRASFlag``, ``delta``, ``Mdc``, ``Pxyz_c``) and tail fields
    (``tr``, ``flip_angle``, ``te``, ``ti``, ``fov``).
    """

    sizeof_hdr = DATA_OFFSET

    def __init__(self) -> None:
        self._struct = np.zeros((), HEADER_FIELDS)
        self._struct["version"] = 1
        self._struct["dims"] = 1
        self._struct["type"] = 3
        self._struct["goodRASFlag"] = 1
        self._struct["delta"] = 1
        self._struct["Mdc"] = DEFAULT_MDC
        self._tail: Optional[np.ndarray] = np.zeros((), TAIL_FIELDS)
        self._tail_reader: Optional[Callable[[], bytes]] = None
        self.path: Optional[str] = None

    @staticmethod
    def sniff(block: bytes) -> bool:
        """True if ``block`` starts like an MGH header (big-endian version 1)."""
        return len(block) >= 4 and block[:4] == b"\x00\x00\x00\x01"

    @classmethod
    def from_bytes(cls, block: bytes, *, path: Optional[str] = None,
                   tail_reader: Optional[Callable[[], bytes]] = None) -> "MGHHeader":
        """Parse and check the first 90 bytes of ``block``; the tail comes from ``tail_reader``."""
        name = path or "<header bytes>"
        if len(block) < HEADER_FIELDS.itemsize:
            raise HeaderError(f"{name}: an MGH header needs {HEADER_FIELDS.itemsize} bytes, the "
                              f"file holds {len(block)}; the file is truncated", path=path,
                              field="version", value=len(block))
        header = cls()
        header._struct = np.frombuffer(block[:HEADER_FIELDS.itemsize], HEADER_FIELDS)[0].copy()
        header.path = path
        header._tail = None if tail_reader is not None else np.zeros((), TAIL_FIELDS)
        header._tail_reader = tail_reader
        header.validate()
        if not header["goodRASFlag"]:  # the transform fields are not set: FreeSurfer's default
            header._struct["delta"] = 1
            header._struct["Mdc"] = DEFAULT_MDC
            header._struct["Pxyz_c"] = 0
        return header

    @classmethod
    def from_header(cls, other: Any = None) -> "MGHHeader":
        """A copy of an MGH header; a new default header for anything else."""
        return other.copy() if isinstance(other, MGHHeader) else cls()

    def copy(self) -> "MGHHeader":
        new = type(self)()
        new._struct = self._struct.copy()
        new._tail = None if self._tail is None else self._tail.copy()
        new._tail_reader = self._tail_reader
        new.path = self.path
        return new

    def _fail(self, field: str, value: Any, problem: str) -> HeaderError:
        name = self.path or "<header>"
        return HeaderError(f"{name}: MGH header field {field} = {value!r}: {problem}",
                           path=self.path, field=field, value=value)

    def validate(self) -> None:
        """Raise :class:`~proxylib.HeaderError` for a version, shape or type proxylib cannot use."""
        if int(self["version"]) != 1:
            raise self._fail("version", int(self["version"]), "expected 1")
        dims = tuple(int(n) for n in self["dims"])
        if any(n < 1 for n in dims):
            raise self._fail("dims", dims, "every dimension must be at least 1")
        code = int(self["type"])
        if code not in DATATYPES:
            raise self._fail("type", code, "not a supported MGH type; supported: 0 (uint8), "
                             "1 (int32), 3 (float32), 4 (int16), 10 (uint16)")

    # -- fields ------------------------------------------------------------------
    def keys(self) -> Tuple[str, ...]:
        return HEADER_FIELDS.names + TAIL_FIELDS.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.keys()

    def _record(self, name: str) -> np.ndarray:
        if name in HEADER_FIELDS.names:
            return self._struct
        if name in TAIL_FIELDS.names:
            return self.tail
        raise KeyError(name)

    def __getitem__(self, name: str) -> Any:
        return self._record(name)[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._record(name)[name] = value

    @property
    def tail(self) -> np.ndarray:
        """The scan parameters after the data (zeros when the file has none)."""
        if self._tail is None:
            raw = self._tail_reader() if self._tail_reader is not None else b""
            self._tail = (np.frombuffer(raw, TAIL_FIELDS)[0].copy()
                          if len(raw) >= TAIL_FIELDS.itemsize else np.zeros((), TAIL_FIELDS))
        return self._tail

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MGHHeader):
            return NotImplemented
        return (self._struct.tobytes() == other._struct.tobytes()
                and self.tail.tobytes() == other.tail.tobytes())

    def __repr__(self) -> str:
        return (f"MGHHeader(dims={tuple(int(n) for n in self['dims'])}, "
                f"type={int(self['type'])}, delta={tuple(float(d) for d in self['delta'])})")

    @property
    def binaryblock(self) -> bytes:
        """The 284 header bytes as written."""
        return self._struct.tobytes().ljust(DATA_OFFSET, b"\x00")

    # -- shape, type, geometry ------------------------------------------------------
    def get_data_shape(self) -> Tuple[int, ...]:
        """(x, y, z) or (x, y, z, frames); one frame is a 3D image."""
        dims = tuple(int(n) for n in self["dims"])
        return dims[:3] if dims[3] == 1 else dims

    def set_data_shape(self, shape: Any) -> None:
        shape = tuple(int(n) for n in shape)
        if not 1 <= len(shape) <= 4 or any(n < 1 for n in shape):
            raise HeaderError(f"an MGH image has 1 to 4 dimensions of at least 1, not "
                              f"shape {shape}", field="dims", value=shape)
        if any(n > np.iinfo(np.int32).max for n in shape):
            raise HeaderError(f"shape {shape} does not fit MGH's int32 dims", field="dims",
                              value=shape)
        self._struct["dims"] = shape + (1,) * (4 - len(shape))

    def get_data_dtype(self) -> np.dtype:
        return DATATYPES[int(self["type"])]

    def set_data_dtype(self, dtype: Any) -> None:
        code = mgh_type_code(dtype)
        if code is None:
            raise HeaderError(f"MGH cannot store {np.dtype(dtype)} data exactly; supported: "
                              "uint8, int16, uint16, int32, float32 (convert first, e.g. "
                              "data.astype(np.float32))", field="type", value=str(dtype))
        self._struct["type"] = code

    def get_data_offset(self) -> int:
        return DATA_OFFSET

    def data_nbytes(self) -> int:
        return int(np.prod([int(n) for n in self["dims"]], dtype=object)) * \
            self.get_data_dtype().itemsize

    def get_slope_inter(self) -> Tuple[None, None]:
        """MGH stores no scale factors."""
        return None, None

    def get_zooms(self) -> Tuple[float, ...]:
        """Voxel sizes, plus TR (in ms, from the tail) for a 4D image."""
        zooms = tuple(float(d) for d in self["delta"])
        return zooms + (float(self["tr"]),) if len(self.get_data_shape()) == 4 else zooms

    def set_zooms(self, zooms: Any) -> None:
        zooms = tuple(float(z) for z in zooms)
        if len(zooms) > 4 or any(z <= 0 for z in zooms[:3]):
            raise HeaderError(f"MGH zooms are 3 positive voxel sizes and an optional TR, not "
                              f"{zooms}", field="delta", value=zooms)
        self._struct["delta"][:len(zooms[:3])] = zooms[:3]
        if len(zooms) == 4:
            self["tr"] = zooms[3]

    def get_affine(self) -> np.ndarray:
        """Voxel-to-RAS transform from ``Mdc``, ``delta`` and ``Pxyz_c`` (the centre voxel)."""
        scaled = self["Mdc"].T.astype(np.float64) * self["delta"].astype(np.float64)
        centre = scaled @ (self["dims"][:3].astype(np.float64) / 2)
        affine = np.eye(4)
        affine[:3, :3] = scaled
        affine[:3, 3] = self["Pxyz_c"].astype(np.float64) - centre
        return affine

    get_best_affine = get_affine

    def set_affine(self, affine: np.ndarray) -> None:
        """Store ``affine`` as voxel sizes, direction cosines and the centre's position."""
        affine = np.asarray(affine, dtype=np.float64)
        sizes = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        if not np.all(sizes > 0):
            raise HeaderError("the affine has a zero column; MGH needs voxel sizes > 0",
                              field="delta", value=tuple(sizes))
        centre = affine @ np.append(self["dims"][:3].astype(np.float64) / 2, 1.0)
        self._struct["delta"] = sizes
        self._struct["Mdc"] = (affine[:3, :3] / sizes).T
        self._struct["Pxyz_c"] = centre[:3]
        self._struct["goodRASFlag"] = 1


class MGHImage(AffineImage):
    """A FreeSurfer MGH/MGZ image: ``dataobj`` (array or proxy), ``affine``, ``header``."""

    header_class = MGHHeader
    files_types = (("image", ".mgh"),)
    valid_exts = (".mgh", ".mgz")

    @staticmethod
    def prepare_dataobj(dataobj: Any) -> Any:
        if len(dataobj.shape) < 3:  # MGH volumes are 3D or 4D
            dataobj = dataobj.reshape(tuple(dataobj.shape) + (1,) * (3 - len(dataobj.shape)))
        return dataobj

    def update_header(self) -> None:
        """Put the data's shape and stored type, and the affine, into the header."""
        self._header.set_data_shape(self.shape)
        self._header.set_data_dtype(_stored_dtype(self._dataobj))
        if self._affine is not None and not np.allclose(self._header.get_affine(),
                                                        self._affine, rtol=1e-6, atol=1e-6):
            self._header.set_affine(self._affine)

    @classmethod
    def filespec_to_file_map(cls, filespec: Any) -> FileMap:
        name = str(filespec)
        if not name.lower().endswith(cls.valid_exts):
            raise ImageFileError(f"{name}: MGH file names end in .mgh or .mgz (gzipped)")
        return {"image": FileHolder(name)}

    @classmethod
    def from_file_map(cls, file_map: FileMap, *, mmap: Union[bool, str] = True,
                      keep_file_open: Optional[bool] = None) -> "MGHImage":
        """Read the header (no data, no tail) and wrap the file in an ArrayProxy."""
        check_load_options(mmap, keep_file_open)
        with file_map["image"].open_for_read() as stream:
            return cls.from_stream(file_map, stream, mmap=mmap, keep_file_open=keep_file_open)

    @classmethod
    def from_stream(cls, file_map: FileMap, stream: Any, head: bytes = b"", *,
                    mmap: Union[bool, str] = True,
                    keep_file_open: Optional[bool] = None) -> "MGHImage":
        """:meth:`from_file_map` with the file already open as ``stream``, of which
        ``head`` was read; its ``fstat`` serves the size check and the proxy."""
        holder = file_map["image"]
        name = holder.filename or repr(holder.fileobj)
        wanted = HEADER_FIELDS.itemsize
        block = read_on(stream, head, wanted)
        header = MGHHeader.from_bytes(
            block, path=name, tail_reader=lambda: _read_tail(holder.file_like, tail_offset))
        offset = holder.pos + DATA_OFFSET
        tail_offset = offset + header.data_nbytes()  # read by the lazy tail_reader above
        data = holder.data_file(stream)
        _check_size(data, tail_offset, name)
        spec = ArraySpec(header.get_data_shape(), header.get_data_dtype(), offset=offset,
                         order="F")
        proxy = ArrayProxy(holder.file_like, spec, mmap=mmap, keep_file_open=keep_file_open,
                           seen=data.seen)
        return cls(proxy, header.get_affine(), header=header, file_map=file_map)

    def to_file_map(self, file_map: Optional[FileMap] = None) -> None:
        """Write header, data (streamed in blocks, big-endian) and tail; ``.mgz`` is gzipped."""
        file_map = self.file_map if file_map is None else file_map
        self.update_header()
        header = self._header
        holder = file_map["image"]
        with holder.open_for_write() as raw:
            if holder.fileobj is None and holder.filename.lower().endswith(".mgz"):
                with gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0,
                                   compresslevel=GZIP_COMPRESSLEVEL) as zipped:
                    _write(zipped, header, self._dataobj)
            else:
                _write(raw, header, self._dataobj)
        self.file_map = file_map

    def __repr__(self) -> str:
        return f"MGHImage(shape={self.shape}, file={self.get_filename()!r})"


def _stored_dtype(dataobj: Any) -> np.dtype:
    """The MGH type for ``dataobj``'s values (an ArrayProxy: its unscaled stored type)."""
    if isinstance(dataobj, ArrayProxy) and dataobj.spec.slope == 1 and dataobj.spec.inter == 0:
        dtype = dataobj.spec.storage_dtype
    else:
        dtype = np.dtype(dataobj.dtype)
    return WIDENED.get(dtype.newbyteorder("="), dtype)


def _check_size(data: DataFile, needed: int, name: str) -> None:
    """Refuse, before any data is read, a file too short for the data its header describes."""
    available, upper_bound, _ = data
    if available is not None and available < needed:
        raise TruncatedFileError(
            f"{name}: the MGH header describes data up to byte {needed}, the file holds "
            f"{'at most ' if upper_bound else ''}{available} bytes; the file is truncated",
            path=name, offset=needed, found=available)


def _write(out: Any, header: MGHHeader, dataobj: Any) -> None:
    out.write(header.binaryblock)
    write_blocks(out, dataobj, header.get_data_dtype())
    out.write(header.tail.tobytes())


def _read_tail(file_like: Any, offset: int) -> bytes:
    """The tail's bytes through proxylib's engine (gzip: the seek index), or b'' if absent."""
    spec = ArraySpec((TAIL_FIELDS.itemsize,), np.uint8, offset=offset)
    try:
        with ArrayProxy(file_like, spec, mmap=False, keep_file_open=False) as proxy:
            return np.asarray(proxy).tobytes()
    except TruncatedFileError:
        return b""
