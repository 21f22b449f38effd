"""The NIfTI image: load a header and a proxy from a file map, save in blocks.

One class serves single files and pairs: the file map has an ``'image'`` and
a ``'header'`` holder, naming the same file for ``.nii`` / ``.nii.gz`` and two
files for ``.hdr`` + ``.img`` (either gzipped).

Loading reads only the header (and its extensions), checks it against the
size of the data file, then embeds an :class:`~proxylib.ArrayProxy`; no data
is read. Saving writes the header in native byte order, keeps extensions,
and streams the data in bounded blocks. A proxy image keeps its stored
dtype and scale factors (the stored values are copied unscaled), so a
load/save round trip is lossless.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any, Mapping, Optional, Tuple, Union

import numpy as np

from ..arrayproxy import ArrayProxy, is_proxy
from ..errors import HeaderError, HeaderWarning, warn_at_caller
from ..fileholder import DataFile
from ..images import (DataobjImage, FileHolder, FileMap, ImageFileError,
                      check_load_options, sibling_name, split_filename)
from ..io.streams import Prepended, read_on
from ..spec import ArraySpec, native
from .affines import check_affine
from .blocks import write_blocks
from .extensions import extensions_bytes, read_extensions
from .fields import EXTENSION_FLAG_SIZE, WIDENED, datatype_code
from .imagexforms import XformImageMixin
from .savescaling import CastSource, ScaledSource, choose_scaling, value_range
from .slicing import ImageSlicer


class NiftiImage(XformImageMixin, DataobjImage):
    """Shared behaviour of :class:`Nifti1Image` and :class:`Nifti2Image`.

    Parameters
    ----------
    dataobj : array-like or proxy
        The data; a proxy is read only when asked.
    affine : (4, 4) array-like or None
        Voxel to world transform; None keeps the header's transforms.
    header : NIfTI header, optional
        Copied; shape and data type are updated from ``dataobj``. An
        ``affine`` that differs from the header's best affine replaces its
        transforms (sform code 2 'aligned', qform code 0), as in nibabel;
        without a header an ``affine`` is always stored that way.
    dtype : dtype-like, optional
        The on-disk dtype (as :meth:`set_data_dtype`).
    """

    files_types = (("image", ".nii"), ("header", ".nii"))
    valid_exts = (".nii", ".hdr", ".img")

    def __init__(self, dataobj: Any, affine: Any, header: Any = None,
                 extra: Optional[Mapping] = None, file_map: Optional[FileMap] = None,
                 dtype: Any = None) -> None:
        if not is_proxy(dataobj) and not hasattr(dataobj, "shape"):
            dataobj = np.asanyarray(dataobj)
        super().__init__(dataobj, header=header, extra=extra, file_map=file_map)
        self._affine = None if affine is None else check_affine(affine)
        self.update_header()
        if header is None and self._affine is not None:
            self._affine2header()
        if dtype is not None:
            self.set_data_dtype(dtype)

    @classmethod
    def _wider_class(cls) -> Optional[type]:
        """The format to save as when a dimension does not fit this one."""
        return None

    # -- geometry ---------------------------------------------------------------
    @property
    def affine(self) -> Optional[np.ndarray]:
        """4x4 float64 voxel-to-world transform, owned by the image (in-place edits are saved)."""
        return self._affine

    @property
    def slicer(self) -> ImageSlicer:
        """``img.slicer[key]``: a lazily sliced image with its affine updated."""
        return ImageSlicer(self)

    def update_header(self) -> None:
        """Put the data's shape and dtype, and the affine, into the header."""
        header = self._header
        if self._fits_header():
            header.set_data_shape(self.shape)
        dtype, slope, inter, _ = _stored_layout(self._dataobj, header)
        header.set_data_dtype(dtype)
        try:
            current = header.get_slope_inter()
        except HeaderError:
            current = (None, None)
        if (current[0] or 1.0, current[1] or 0.0) != (slope, inter):
            header.set_slope_inter(slope, inter)
        self._sync_affine()

    def _fits_header(self) -> bool:
        try:
            if self._header.get_data_shape() == self.shape:
                return True
        except HeaderError:
            pass
        limit = np.iinfo(self._header["dim"].dtype).max
        return all(n <= limit for n in self.shape)

    def get_zooms(self) -> Tuple[float, ...]:
        return self._header.get_zooms()

    # -- file names -------------------------------------------------------------
    @classmethod
    def filespec_to_file_map(cls, filespec: Any) -> FileMap:
        """``x.nii[.gz]``: one file for both; ``x.hdr``/``x.img`` [.gz]: a pair."""
        _, ext, _ = split_filename(filespec)
        name = os.fsdecode(os.fspath(filespec))
        if ext == ".nii":
            return {"image": FileHolder(name), "header": FileHolder(name)}
        if ext in (".hdr", ".img"):  # the user's case kept: PAIR.HDR goes with PAIR.IMG
            return {kind: FileHolder(name if ext == own else sibling_name(name, own))
                    for kind, own in (("image", ".img"), ("header", ".hdr"))}
        raise ImageFileError(
            f"{os.fsdecode(os.fspath(filespec))}: NIfTI file names end in .nii, .hdr or "
            ".img (optionally followed by .gz)")

    # -- loading ------------------------------------------------------------------
    @classmethod
    def from_file_map(cls, file_map: FileMap, *, mmap: Union[bool, str] = True,
                      keep_file_open: Optional[bool] = None) -> "NiftiImage":
        """Read the header (no data) and wrap the data file in an ArrayProxy."""
        check_load_options(mmap, keep_file_open)
        header_holder = file_map["header"]
        with header_holder.open_for_read() as stream:
            header = read_header(cls.header_class, stream, header_holder.describe())
        # a single file's header stream already looked at it: not opened again
        data = file_map["image"].data_file(stream)
        return cls.from_header(header, file_map, data, mmap=mmap, keep_file_open=keep_file_open)

    @classmethod
    def from_header(cls, header: Any, file_map: FileMap, data: DataFile, *,
                    mmap: Union[bool, str] = True, keep_file_open: Optional[bool] = None,
                    cost: Any = None) -> "NiftiImage":
        """The image of a parsed ``header`` whose data file ``file_map['image']`` holds ``data``.

        Checks the size, embeds an ArrayProxy (starting from ``data.seen``, the
        file as opened for its size) and reads nothing; ``cost`` overrides the
        proxy's cost model (a remote file's). The one way every loader
        (:meth:`from_file_map`, :func:`proxylib.load`, ``load_url``) builds a NIfTI
        image from a header.
        """
        image_holder = file_map["image"]
        if data.available is not None:
            header.check_data_size(data.available - image_holder.pos, at_least=data.upper_bound,
                                   path=image_holder.describe())
        proxy = ArrayProxy(image_holder.file_like, _data_spec(header, image_holder), mmap=mmap,
                           keep_file_open=keep_file_open, cost=cost, seen=data.seen)
        return cls(proxy, header.get_best_affine(), header=header, file_map=file_map)

    # -- saving ----------------------------------------------------------------------
    def to_file_map(self, file_map: Optional[FileMap] = None) -> None:
        """Write header, extensions and data (streamed in blocks) to ``file_map``."""
        file_map = self.file_map if file_map is None else file_map
        self._sync_affine()
        if not self._fits_header():
            wider = self._wider_class()
            if wider is None:
                raise HeaderError(f"shape {self.shape} does not fit a "
                                  f"{type(self).__name__}", field="dim", value=self.shape)
            converted = wider(self._dataobj, self._affine,
                              wider.header_class.from_header(self._header), extra=self.extra,
                              dtype=self.get_data_dtype())
            converted.to_file_map(file_map)
            self.file_map = file_map
            return
        single = file_map["header"].same_file_as(file_map["image"])
        header, source, dtype = self._prepare_save(single)
        extensions = extensions_bytes(header.extensions)
        flag = (b"\x01" if extensions else b"\x00") + b"\x00" * (EXTENSION_FLAG_SIZE - 1)
        header.set_data_offset(header.single_vox_offset + len(extensions) if single else 0)
        header.validate()
        # a .hdr without extensions is the bare header, as nibabel writes it
        prefix = header.binaryblock + (flag + extensions if single or extensions else b"")
        overwritten = _reads_from(self._dataobj, file_map)
        if single:
            with file_map["image"].open_for_write() as out:
                out.write(prefix)
                write_blocks(out, source, dtype)
        else:
            with file_map["header"].open_for_write() as out:
                out.write(prefix)
            with file_map["image"].open_for_write() as out:
                write_blocks(out, source, dtype)
        self.file_map = file_map
        if overwritten:
            self._reopen(header, file_map["image"])

    def _reopen(self, header: Any, holder: FileHolder) -> None:
        """Point the proxy at the file just written over the one it read.

        The new file holds the same stored values and scale factors, so the
        image's values do not change; the old proxy would only report that
        its file changed.
        """
        old = self._dataobj
        self._dataobj = ArrayProxy(holder.file_like, _data_spec(header, holder), mmap=old.mmap,
                                   keep_file_open=old.keep_file_open, cost=old.cost)
        old.close()

    def _prepare_save(self, single: bool) -> Tuple[Any, Any, np.dtype]:
        """The header to write, the object to slice for data, and the dtype to store."""
        header = self._header.as_byteorder("=")
        header.set_data_shape(self.shape)
        header["magic"] = header.single_magic if single else header.pair_magic
        wanted = native(header.get_data_dtype())
        source, dtype, slope, inter = _stored_form(self._dataobj, header)
        if wanted != native(dtype):
            source, dtype, slope, inter = _converted_form(self._dataobj, wanted)
        header.set_data_dtype(dtype)
        header.set_slope_inter(slope, inter)
        return header, source, native(header.get_data_dtype())

    def to_nibabel(self) -> Any:
        """This image as a nibabel image over the same dataobj (no copy, no read).

        See :func:`proxylib.interop.nibabel_images.to_nibabel`; needs nibabel.
        """
        # the interop module imports nibabel, an optional package: loaded on use only
        return import_module("proxylib.interop.nibabel_images").to_nibabel(self)

    def __repr__(self) -> str:
        kind = "proxy" if is_proxy(self._dataobj) else "array"
        return (f"{type(self).__name__}(shape={self.shape}, {kind} data, "
                f"file={self.get_filename()!r})")


def _data_spec(header: Any, holder: FileHolder) -> ArraySpec:
    """The array ``header`` describes in the data file of ``holder`` (F order, its scaling)."""
    slope, inter = header.get_slope_inter()
    return ArraySpec(header.get_data_shape(), header.get_data_dtype(),
                     offset=holder.pos + header.get_data_offset(), order="F",
                     slope=slope, inter=inter)


def _storage_dtype(dataobj: Any) -> np.dtype:
    """The dtype to store an array or a foreign proxy's values in (never an ArrayProxy)."""
    if is_proxy(dataobj):  # another library's proxy: its .dtype may be the stored one
        dtype = _returned_dtype(dataobj)
    elif getattr(dataobj, "dtype", None) is None:  # shape and __array__ only
        dtype = np.asarray(dataobj).dtype
    else:
        dtype = np.dtype(dataobj.dtype)
    return WIDENED.get(native(dtype), dtype)


def _returned_dtype(proxy: Any) -> np.dtype:
    """The dtype a foreign proxy's reads return, from a one-element read.

    nibabel's proxies report the on-disk dtype as ``.dtype`` while reads come
    back scaled; storing scaled values in the on-disk dtype would truncate them.
    """
    shape = tuple(proxy.shape)
    if 0 in shape:
        return np.dtype(proxy.dtype)
    return np.asarray(proxy[(0,) * len(shape)]).dtype


def _stored_layout(dataobj: Any, header: Any) -> Tuple[np.dtype, float, float, bool]:
    """How ``dataobj`` is stored: (dtype, scl_slope, scl_inter, copy the stored values?).

    An ArrayProxy whose stored dtype NIfTI knows and whose scale factors the
    header holds exactly keeps them (its stored values are copied as they are);
    anything else is stored as the values it returns, unscaled.
    """
    if isinstance(dataobj, ArrayProxy):
        spec = dataobj.spec
        factor_type = header["scl_slope"].dtype.type
        exact = all(isinstance(v, (int, float, np.integer, np.floating))
                    and float(factor_type(v)) == float(v) for v in (spec.slope, spec.inter))
        if datatype_code(spec.storage_dtype) is not None and exact:
            return spec.storage_dtype, float(spec.slope), float(spec.inter), True
        return WIDENED.get(dataobj.dtype, dataobj.dtype), 1.0, 0.0, False
    return _storage_dtype(dataobj), 1.0, 0.0, False


def _stored_form(dataobj: Any, header: Any) -> Tuple[Any, np.dtype, float, float]:
    """What to write: (sliceable source, dtype, scl_slope, scl_inter)."""
    dtype, slope, inter, copy_stored = _stored_layout(dataobj, header)
    if copy_stored:  # same file identity: a changed file is reported, not copied
        source = dataobj.unscaled()
    else:
        source = dataobj if is_proxy(dataobj) else np.asanyarray(dataobj)
    return source, dtype, slope, inter


def _converted_form(dataobj: Any, wanted: np.dtype) -> Tuple[Any, np.dtype, float, float]:
    """What to write to store ``dataobj``'s values as ``wanted`` (set_data_dtype)."""
    values = dataobj if is_proxy(dataobj) else np.asanyarray(dataobj)
    in_dtype = _returned_dtype(values) if is_proxy(values) else values.dtype
    needs_range = (in_dtype.fields is None and wanted.kind in "iu"
                   and not np.can_cast(in_dtype, wanted) and in_dtype.kind != "c")
    lo, hi, has_nan = value_range(values) if needs_range else (None, None, False)
    scaling = choose_scaling(in_dtype, wanted, lo, hi, has_nan)
    if scaling is None:
        return CastSource(values, wanted), wanted, 1.0, 0.0
    slope, inter = scaling
    return ScaledSource(values, wanted, slope, inter), wanted, slope, inter


def _reads_from(dataobj: Any, file_map: FileMap) -> bool:
    """True when ``dataobj`` is an ArrayProxy reading a file ``file_map`` will replace."""
    if not isinstance(dataobj, ArrayProxy) or not isinstance(dataobj.file_like,
                                                             (str, bytes, os.PathLike)):
        return False
    source = os.path.realpath(os.fsdecode(os.fspath(dataobj.file_like)))
    return any(holder.fileobj is None and holder.filename is not None
               and os.path.realpath(holder.filename) == source
               for holder in file_map.values())


def read_header(header_class: Any, stream: Any, name: str, head: bytes = b"") -> Any:
    """Parse and validate the header that ``stream`` (a forwards reader of the header
    file, see :meth:`~proxylib.images.FileHolder.open_for_read`) holds, with its extensions.

    ``head``: bytes already read from the start of ``stream`` (a sniffing read);
    the rest is read on. What parsing repaired (as nibabel repairs it) is
    reported with a :class:`~proxylib.errors.HeaderWarning` at the caller's line.
    """
    size = header_class.sizeof_hdr
    wanted = size + EXTENSION_FLAG_SIZE
    block = read_on(stream, head, wanted)
    header = header_class.from_bytes(block[:wanted], path=name)
    flag = block[size:wanted]
    if len(flag) == EXTENSION_FLAG_SIZE and flag[0] != 0:
        region = header.get_data_offset() - wanted if header.is_single else None
        header.extensions = read_extensions(Prepended(block[wanted:], stream), region,
                                            header.endianness, name)
    if header.repairs:
        warn_at_caller(f"{name}: repaired on load as nibabel does: "
                       + "; ".join(header.repairs), HeaderWarning)
    return header
