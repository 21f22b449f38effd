"""The ANALYZE 7.5 image: ``x.hdr`` + ``x.img`` (either gzipped), and SPM's ``x.mat``.

Loading reads the 348-byte header and the small ``.mat`` if there is one,
checks the ``.img`` is long enough, and embeds an
:class:`~proxylib.ArrayProxy` in the header's byte order with SPM's scale
factor; no data is read. Saving writes the header in native byte order,
streams the data in bounded blocks, and writes the affine to ``x.mat``
(MATLAB level 4, as SPM and nibabel read it). A proxy whose stored type and
scale factors ANALYZE holds keeps them, so a load/save round trip is lossless.
"""

from __future__ import annotations

import io
import os
from typing import Any, Optional, Tuple, Union

import numpy as np

from ..arrayproxy import ArrayProxy
from ..errors import (HeaderError, HeaderWarning, MissingFileError, TruncatedFileError,
                      warn_at_caller)
from ..io.streams import read_on
from ..images import (FileHolder, FileMap, ImageFileError, check_load_options,
                      in_case_of, sibling_name, split_name)
from ..spec import ArraySpec, native
from .analyze import WIDENED, AnalyzeHeader, datatype_code
from .blocks import write_blocks
from .matv4 import is_level4, read_level4, write_level4
from .spatial import AffineImage

#: A ``.mat`` holding one 4x4 transform is a few hundred bytes; larger ones are not read.
MAX_MAT_BYTES = 1 << 20
#: SPM's matrices index voxels from 1; proxylib's from 0.
_FROM_ONE = np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1], [0, 0, 0, 1]], dtype=float)
_FLIP_X = np.diag([-1.0, 1.0, 1.0, 1.0])


class AnalyzeImage(AffineImage):
    """An ANALYZE 7.5 (SPM) image: ``dataobj`` (array or proxy), ``affine``, ``header``."""

    header_class = AnalyzeHeader
    files_types = (("image", ".img"), ("header", ".hdr"), ("mat", ".mat"))
    valid_exts = (".hdr", ".img")

    def update_header(self) -> None:
        """Put the data's shape and stored type, and the affine's voxel sizes, into the header."""
        header = self._header
        header.set_data_shape(self.shape)
        dtype, slope, inter, _ = _stored_layout(self._dataobj)
        header.set_data_dtype(dtype)
        header.set_slope_inter(slope, inter)
        if self._affine is not None:
            sizes = np.sqrt((self._affine[:3, :3] ** 2).sum(axis=0))
            header.set_zooms(tuple(sizes[:min(3, self.ndim)]))

    @classmethod
    def filespec_to_file_map(cls, filespec: Any) -> FileMap:
        base, ext, _ = split_name(filespec)
        if ext.lower() not in cls.valid_exts:
            raise ImageFileError(f"{os.fsdecode(os.fspath(filespec))}: ANALYZE file names end "
                                 "in .hdr or .img (optionally followed by .gz)")
        return {"image": FileHolder(sibling_name(filespec, ".img")),
                "header": FileHolder(sibling_name(filespec, ".hdr")),
                "mat": FileHolder(base + in_case_of(split_name(filespec)[1], ".mat"))}

    @classmethod
    def from_file_map(cls, file_map: FileMap, *, mmap: Union[bool, str] = True,
                      keep_file_open: Optional[bool] = None) -> "AnalyzeImage":
        """Read the header (and ``.mat``), no data, and wrap the ``.img`` in an ArrayProxy."""
        check_load_options(mmap, keep_file_open)
        with file_map["header"].open_for_read() as stream:
            return cls.from_stream(file_map, stream, mmap=mmap, keep_file_open=keep_file_open)

    @classmethod
    def from_stream(cls, file_map: FileMap, stream: Any, head: bytes = b"", *,
                    mmap: Union[bool, str] = True,
                    keep_file_open: Optional[bool] = None) -> "AnalyzeImage":
        """:meth:`from_file_map` with the ``.hdr`` already open as ``stream``, of which
        ``head`` was read (the ``.img`` is opened once, for its size)."""
        header_holder, image_holder = file_map["header"], file_map["image"]
        name = header_holder.describe()
        wanted = AnalyzeHeader.sizeof_hdr
        block = read_on(stream, head, wanted)
        header = AnalyzeHeader.from_bytes(block[:wanted], path=name)
        offset = image_holder.pos + header.get_data_offset()
        available, upper_bound, seen = image_holder.data_file(stream)
        needed = offset + header.data_nbytes()
        if available is not None and available < needed:
            raise TruncatedFileError(
                f"{image_holder.describe()}: the header {name} describes data up to byte "
                f"{needed}, the file holds {'at most ' if upper_bound else ''}{available} "
                "bytes; the file is truncated", path=image_holder.describe(), offset=needed,
                found=available)
        slope, inter = header.get_slope_inter()
        spec = ArraySpec(header.get_data_shape(), header.get_data_dtype(), offset=offset,
                         order="F", slope=1.0 if slope is None else slope,
                         inter=0.0 if inter is None else inter)
        proxy = ArrayProxy(image_holder.file_like, spec, mmap=mmap,
                           keep_file_open=keep_file_open, seen=seen)
        affine = _read_mat(file_map.get("mat"))
        return cls(proxy, header.get_best_affine() if affine is None else affine,
                   header=header, file_map=file_map)

    def to_file_map(self, file_map: Optional[FileMap] = None) -> None:
        """Write ``.hdr``, ``.img`` (streamed in blocks) and, with an affine, ``.mat``."""
        file_map = self.file_map if file_map is None else file_map
        self.update_header()
        header = self._header.as_byteorder("=")
        copy_stored = _stored_layout(self._dataobj)[3]
        source = self._dataobj.unscaled() if copy_stored else self._dataobj
        header["vox_offset"] = 0
        with file_map["header"].open_for_write() as out:
            out.write(header.binaryblock)
        with file_map["image"].open_for_write() as out:
            write_blocks(out, source, native(header.get_data_dtype()))
        mat = file_map.get("mat")
        if self._affine is not None and mat is not None and mat.file_like is not None:
            spm = self._affine @ np.linalg.inv(_FROM_ONE)
            with mat.open_for_write() as out:
                write_level4(out, {"M": _FLIP_X @ spm, "mat": spm})
        self._header = header
        self.file_map = file_map

    def __repr__(self) -> str:
        return f"AnalyzeImage(shape={self.shape}, file={self.get_filename()!r})"


def _stored_layout(dataobj: Any) -> Tuple[np.dtype, float, float, bool]:
    """(stored dtype, funused1, funused2, copy the stored values?) for ``dataobj``.

    An ArrayProxy keeps its stored type and scale factors when ANALYZE holds
    them exactly (float32 fields); anything else is stored as its values.
    """
    if isinstance(dataobj, ArrayProxy):
        spec = dataobj.spec
        exact = all(float(np.float32(v)) == float(v) for v in (spec.slope, spec.inter))
        if datatype_code(spec.storage_dtype) is not None and exact:
            return spec.storage_dtype, float(spec.slope), float(spec.inter), True
    dtype = np.dtype(dataobj.dtype)
    return WIDENED.get(native(dtype), dtype), 1.0, 0.0, False


def _read_mat(holder: Optional[FileHolder]) -> Optional[np.ndarray]:
    """The affine in SPM's ``.mat`` beside the pair (0-based voxels), or None if there is none."""
    if holder is None or (holder.fileobj is None and holder.filename is None):
        return None
    name = holder.describe()
    try:
        with holder.open_for_read() as stream:
            data = stream.read(MAX_MAT_BYTES + 1)
    except MissingFileError:  # most pairs have no .mat
        return None
    if not data:
        return None
    if len(data) > MAX_MAT_BYTES:
        warn_at_caller(f"{name}: {len(data)}+ bytes is too large for an SPM transform; "
                       "ignored, the affine comes from the header", HeaderWarning)
        return None
    if is_level4(data):
        matrices = read_level4(data, name)
    else:
        try:
            from scipy.io import loadmat
        except ImportError:
            warn_at_caller(f"{name}: a MATLAB 5+ file needs scipy to read; ignored, the "
                           "affine comes from the header (pip install scipy)", HeaderWarning)
            return None
        matrices = loadmat(io.BytesIO(data))
    if "mat" in matrices:
        spm = np.asarray(matrices["mat"], dtype=np.float64)
        spm = spm[:, :, 0] if spm.ndim == 3 else spm
    elif "M" in matrices:  # M has no x flip
        spm = _FLIP_X @ np.asarray(matrices["M"], dtype=np.float64)
    else:
        raise HeaderError(f"{name}: an SPM .mat holds 'mat' or 'M'; this one holds "
                          f"{sorted(k for k in matrices if not k.startswith('__'))}",
                          path=name, field="mat", value=None)
    if spm.shape != (4, 4) or not np.all(np.isfinite(spm)):
        raise HeaderError(f"{name}: the SPM transform must be a finite 4x4 matrix, not shape "
                          f"{spm.shape}", path=name, field="mat", value=spm.shape)
    return spm @ _FROM_ONE
