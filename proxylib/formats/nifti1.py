"""NIfTI-1: 348-byte header, single file (``.nii``) or pair (``.hdr`` + ``.img``).

Data types: every NIfTI-1 type numpy holds exactly - int8 to uint64,
float32/64, complex64/128 - plus RGB24 and RGBA32, which load as
*structured* arrays with uint8 fields ``R``, ``G``, ``B`` (and ``A``), the
same as nibabel: one element per voxel, so ``img.dataobj[..., t]`` and the
shape mean what they mean for every other type, and
``rgb.view((np.uint8, 3))`` turns the result into a ``(..., 3)`` uint8 array
without a copy. float128/complex256 (IEEE quad) and 1-bit data are refused
with a :class:`~proxylib.HeaderError`. NIfTI has no bool or float16 type:
saving such arrays stores uint8 / float32, which holds every value exactly.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .fields import NIFTI1_FIELDS
from .nifti2 import Nifti2Image
from .niftiheader import NiftiHeader
from .niftiimage import NiftiImage


class Nifti1Header(NiftiHeader):
    """The NIfTI-1 header (float32 geometry, int16 dims)."""

    fields = NIFTI1_FIELDS
    sizeof_hdr = 348
    version = 1
    single_magic = b"n+1\x00"
    pair_magic = b"ni1\x00"
    #: |1 - |bcd|²| below this is rounding of float32 quaternion fields.
    quaternion_threshold = float(np.finfo(np.float32).eps * 3)

    def _negative_dim(self, shape: Tuple[int, ...]) -> Tuple[int, ...]:
        """FreeSurfer's vector convention: dim[1:4] = (-1, 1, 1), length in ``glmin``.

        FreeSurfer stores vectors longer than int16 allows this way; nibabel
        reads them, and so does proxylib. Other negative dimensions are refused.
        """
        length = int(self._struct["glmin"])
        if shape[:3] != (-1, 1, 1):
            raise self._fail("dim", shape, "dimensions must not be negative (only "
                             "FreeSurfer's dim[1:4] = (-1, 1, 1) vector form, with the "
                             "length in glmin, is understood)")
        if length <= 0:
            raise self._fail("glmin", length, "dim[1] = -1 marks a FreeSurfer vector whose "
                             "length is in glmin, but glmin is not positive; inconsistent "
                             "FreeSurfer header")
        return (length,) + shape[1:]


class Nifti1Image(NiftiImage):
    """A NIfTI-1 image: ``dataobj`` (array or proxy), ``affine``, ``header``."""

    header_class = Nifti1Header

    @classmethod
    def _wider_class(cls):
        return Nifti2Image
