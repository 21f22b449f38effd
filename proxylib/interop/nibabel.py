"""proxylib images as nibabel images and back, without reading data.

* :func:`to_nibabel` (``img.to_nibabel()``): a nibabel image of the right
  class (``Nifti1Image``, ``Nifti1Pair``, ``Nifti2Image``, ``Nifti2Pair``)
  whose ``dataobj`` is the proxylib proxy itself. Its header is the proxylib
  header's bytes and extensions, parsed by nibabel, so it equals what
  ``nibabel.load`` gives for the same file (nibabel, too, keeps
  ``scl_slope``/``scl_inter`` as NaN in an image's header: the proxy scales).
* ``nibabel.save`` of such an image writes the source's stored dtype and
  scale factors. nibabel writes ``np.asanyarray(img.dataobj)`` and, when the
  header has no scale factors, computes new ones from the scaled values; a
  proxylib proxy's ``dtype`` is what reads return (float64 for scaled
  int16), so a plain nibabel image of it would be rescaled or saved as
  float. The image classes here hand nibabel's writer the stored values and
  the proxy's factors instead, for the length of the save. They are
  subclasses of nibabel's, registered as spatial-axes-first (nibabel checks
  that by exact type), so ``img.slicer``, ``nibabel.processing`` and
  nilearn treat them as the NIfTI images they are.
* :func:`from_nibabel`: the proxylib image of the file a nibabel image was
  loaded from (single file, pair, ``.gz``), or a proxylib image wrapping a
  nibabel array image's array without a copy.
* Headers: :func:`to_nibabel_header`; the other way
  ``proxylib.Nifti1Header.from_header(nib_header)`` (or passing the nibabel
  header to ``proxylib.Nifti1Image``), keeping descrip, units, intent and
  extensions.

nibabel is an optional dependency; this module imports it, so proxylib
imports this module only when one of these functions is used.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any, Dict, Optional, Tuple

import nibabel
import numpy as np
from nibabel import imageclasses, nifti1, nifti2

from ..arrayproxy import ArrayProxy
from ..errors import UnsupportedImageError
from ..formats.extensions import extensions_bytes
from ..formats.nifti1 import Nifti1Image
from ..formats.nifti2 import Nifti2Image
from ..formats.niftiheader import NiftiHeader
from ..formats.niftiimage import NiftiImage
from ..loading import load
from ..protocols import is_proxy


class _SavesStoredForm:
    """Mixin for nibabel image classes: save a proxylib proxy in its stored form."""

    def to_file_map(self, file_map: Any = None, dtype: Any = None) -> None:
        proxy = self._dataobj
        header = self._header
        stored = header.get_data_dtype()
        if (dtype is not None or not isinstance(proxy, ArrayProxy)
                or proxy.storage_dtype.newbyteorder("=") != stored.newbyteorder("=")
                or not proxy.spec.has_scaling):
            # nibabel's own rules: no factors to keep, or the caller chose the dtype
            super().to_file_map(file_map, dtype=dtype)
            return
        self._dataobj = proxy.unscaled()
        header.set_slope_inter(float(proxy.slope), float(proxy.inter))
        try:
            super().to_file_map(file_map)
        finally:
            self._dataobj = proxy
            self._header.set_slope_inter(None, None)


class ProxylibNifti1Image(_SavesStoredForm, nibabel.Nifti1Image):
    """A ``nibabel.Nifti1Image`` over a proxylib proxy (see :func:`to_nibabel`)."""


class ProxylibNifti1Pair(_SavesStoredForm, nibabel.Nifti1Pair):
    """A ``nibabel.Nifti1Pair`` over a proxylib proxy (see :func:`to_nibabel`)."""


class ProxylibNifti2Image(_SavesStoredForm, nibabel.Nifti2Image):
    """A ``nibabel.Nifti2Image`` over a proxylib proxy (see :func:`to_nibabel`)."""


class ProxylibNifti2Pair(_SavesStoredForm, nibabel.Nifti2Pair):
    """A ``nibabel.Nifti2Pair`` over a proxylib proxy (see :func:`to_nibabel`)."""


def _declare_spatial_axes_first(classes: Tuple[type, ...]) -> None:
    """Tell nibabel these NIfTI classes keep the spatial axes first.

    nibabel decides that by exact type (``nibabel.imageclasses.KNOWN_SPATIAL_FIRST``,
    read by ``img.slicer``, ``nibabel.processing`` and nilearn's ``index_img``),
    so subclasses of its NIfTI classes must be added to that tuple.
    """
    known = imageclasses.KNOWN_SPATIAL_FIRST
    imageclasses.KNOWN_SPATIAL_FIRST = known + tuple(c for c in classes if c not in known)


_declare_spatial_axes_first((ProxylibNifti1Image, ProxylibNifti1Pair, ProxylibNifti2Image,
                             ProxylibNifti2Pair))

#: (NIfTI version, single file) -> (nibabel header class, nibabel image class)
_NIBABEL_CLASSES: Dict[Tuple[int, bool], Tuple[type, type]] = {
    (1, True): (nifti1.Nifti1Header, ProxylibNifti1Image),
    (1, False): (nifti1.Nifti1PairHeader, ProxylibNifti1Pair),
    (2, True): (nifti2.Nifti2Header, ProxylibNifti2Image),
    (2, False): (nifti2.Nifti2PairHeader, ProxylibNifti2Pair),
}


def to_nibabel_header(header: NiftiHeader) -> Any:
    """The nibabel header with the same bytes and extensions as a proxylib NIfTI header."""
    if not isinstance(header, NiftiHeader):
        raise UnsupportedImageError(f"to_nibabel_header converts proxylib NIfTI headers, not "
                                    f"{type(header).__name__}")
    header_class, _ = _NIBABEL_CLASSES[(header.version, header.is_single)]
    converted = header_class(header.binaryblock, check=False)
    raw = extensions_bytes(header.extensions, header.endianness)
    if raw:
        swapped = header.endianness != ("<" if sys.byteorder == "little" else ">")
        converted.extensions = header_class.exts_klass.from_fileobj(
            io.BytesIO(raw), len(raw), swapped)
    return converted


def to_nibabel(img: NiftiImage) -> Any:
    """A nibabel image over ``img``'s dataobj (the same object: no copy, no read).

    Header bytes and extensions come over as they are; the affine is the
    image's (with the header's sform/qform codes). The nibabel image knows
    the file name, and ``nibabel.save`` of it keeps the stored dtype and scale
    factors of a proxy's file.
    """
    if not isinstance(img, NiftiImage):
        raise UnsupportedImageError(
            f"to_nibabel converts proxylib NIfTI images, not {type(img).__name__}; save "
            "the image and load it with nibabel")
    header = to_nibabel_header(img.header)
    _, image_class = _NIBABEL_CLASSES[(img.header.version, img.header.is_single)]
    converted = image_class(img.dataobj, img.affine, header=header)
    filename = img.get_filename()
    if filename is not None:
        try:
            converted.set_filename(filename)
        except nibabel.filebasedimages.ImageFileError:
            pass  # a name nibabel does not know (e.g. .nii.zst); the image still works
    return converted


def from_nibabel(img: Any, **load_options: Any) -> Any:
    """The proxylib image for a nibabel image.

    A nibabel image that reads its data from a file (its ``dataobj`` is a
    proxy) gives ``proxylib.load`` of that file (``load_options``:
    ``mmap``, ``keep_file_open``), with the nibabel image's affine if it was
    changed in memory. A nibabel NIfTI image holding an array gives a
    proxylib image over the same array (no copy) with its header converted.
    Anything else raises :class:`~proxylib.UnsupportedImageError`.
    """
    if not isinstance(img, nibabel.spatialimages.SpatialImage):
        raise UnsupportedImageError(
            f"from_nibabel converts nibabel images, not {type(img).__name__}")
    if is_proxy(img.dataobj):
        filename = _file_of(img)
        loaded = load(filename, **load_options)
        affine = img.affine
        if affine is not None and not np.allclose(affine, loaded.affine, rtol=0, atol=1e-6):
            return type(loaded)(loaded.dataobj, affine, header=loaded.header,
                                file_map=loaded.file_map)
        return loaded
    if not isinstance(img.dataobj, np.ndarray):
        raise UnsupportedImageError(
            f"from_nibabel needs a nibabel image backed by a file or a numpy array; this "
            f"{type(img).__name__}'s dataobj is a {type(img.dataobj).__name__}")
    target = _array_class(img)
    return target(img.dataobj, img.affine, header=img.header)


def _array_class(img: Any) -> type:
    header = img.header  # nibabel's NIfTI-2 classes derive from its NIfTI-1 ones
    if isinstance(header, nifti2.Nifti2Header):
        return Nifti2Image
    if isinstance(header, nifti1.Nifti1Header):
        return Nifti1Image
    raise UnsupportedImageError(
        f"from_nibabel wraps NIfTI array images; a {type(img).__name__} holding an array "
        "has no proxylib counterpart here: save it (nibabel.save) and proxylib.load the file")


def _file_of(img: Any) -> str:
    """The file a file-backed nibabel image reads (its data file for a pair)."""
    proxy = img.dataobj
    file_like = getattr(proxy, "file_like", None)
    if isinstance(file_like, (str, os.PathLike)):
        return os.fsdecode(os.fspath(file_like))
    filename: Optional[str] = img.get_filename()
    if filename is None:
        raise UnsupportedImageError(
            f"this {type(img).__name__} reads from {file_like!r}, not a named file; "
            "proxylib.from_nibabel needs a file name (use proxylib.load on the file, or "
            "wrap the file object with proxylib.ArrayProxy)")
    return filename


__all__ = ["to_nibabel", "from_nibabel", "to_nibabel_header", "ProxylibNifti1Image",
           "ProxylibNifti1Pair", "ProxylibNifti2Image", "ProxylibNifti2Pair"]
