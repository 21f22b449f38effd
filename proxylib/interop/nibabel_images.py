"""proxylib NIfTI images as nibabel images, without reading data.

:func:`to_nibabel` (``img.to_nibabel()``) gives a nibabel image of the right
class (``Nifti1Image``, ``Nifti1Pair``, ``Nifti2Image``, ``Nifti2Pair``)
whose ``dataobj`` is the proxylib proxy itself; :func:`to_nibabel_header`
the nibabel header with the same bytes and extensions. The other direction,
:func:`proxylib.interop.nibabel.from_nibabel`, needs the loaders; this module
needs only headers and proxies, so the image classes can reach it (on use,
nibabel being optional) without an import cycle. See
:mod:`proxylib.interop.nibabel` for how saving keeps the stored form.
"""

from __future__ import annotations

import io
import sys
from typing import Any, Dict, Tuple

import nibabel
from nibabel import imageclasses, nifti1, nifti2

from ..arrayproxy import ArrayProxy
from ..errors import UnsupportedImageError
from ..formats.extensions import extensions_bytes
from ..formats.niftiheader import NiftiHeader


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


def to_nibabel(img: Any) -> Any:
    """A nibabel image over ``img``'s dataobj (the same object: no copy, no read).

    Header bytes and extensions come over as they are; the affine is the
    image's (with the header's sform/qform codes). The nibabel image knows
    the file name, and ``nibabel.save`` of it keeps the stored dtype and scale
    factors of a proxy's file.
    """
    if not isinstance(getattr(img, "header", None), NiftiHeader) or not hasattr(img, "affine"):
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


__all__ = ["to_nibabel", "to_nibabel_header", "ProxylibNifti1Image", "ProxylibNifti1Pair",
           "ProxylibNifti2Image", "ProxylibNifti2Pair"]
