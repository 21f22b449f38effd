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
imports this module only when one of these functions is used. The
proxylib-to-nibabel half lives in :mod:`proxylib.interop.nibabel_images`
(re-exported here), which the image classes use for ``img.to_nibabel()``.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import nibabel
import numpy as np
from nibabel import nifti1, nifti2

from ..errors import UnsupportedImageError
from ..formats.nifti1 import Nifti1Image
from ..formats.nifti2 import Nifti2Image
from ..loading import load
from ..protocols import is_proxy
from .nibabel_images import (ProxylibNifti1Image, ProxylibNifti1Pair, ProxylibNifti2Image,
                             ProxylibNifti2Pair, to_nibabel, to_nibabel_header)


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
