"""NIfTI-2: the 540-byte header with int64 dims and float64 geometry.

Same data types and layout rules as :mod:`proxylib.formats.nifti1` (RGB24 as
a structured ``R``/``G``/``B`` uint8 array). proxylib writes NIfTI-2 when a
dimension of the data does not fit NIfTI-1's int16 ``dim`` fields.
"""

from __future__ import annotations

from typing import List

import numpy as np

from .fields import NIFTI2_EOL_CHECK, NIFTI2_FIELDS
from .niftiheader import NiftiHeader
from .niftiimage import NiftiImage


class Nifti2Header(NiftiHeader):
    """The NIfTI-2 header (float64 geometry, int64 dims and offset)."""

    fields = NIFTI2_FIELDS
    sizeof_hdr = 540
    version = 2
    single_magic = b"n+2\x00"
    pair_magic = b"ni2\x00"
    quaternion_threshold = float(np.finfo(np.float64).eps * 3)

    def _set_defaults(self) -> None:
        super()._set_defaults()
        self._struct["eol_check"] = NIFTI2_EOL_CHECK

    def _repair(self) -> List[str]:
        changes = super()._repair()
        eol = tuple(int(b) for b in self._struct["eol_check"])
        if eol == (0, 0, 0, 0):
            self._struct["eol_check"] = NIFTI2_EOL_CHECK
            changes.append(f"eol_check of zeros set to {NIFTI2_EOL_CHECK}")
        return changes

    def _check_magic(self) -> None:
        super()._check_magic()
        eol = tuple(int(b) for b in self._struct["eol_check"])
        if eol != NIFTI2_EOL_CHECK:
            raise self._fail("eol_check", eol, f"expected {NIFTI2_EOL_CHECK} (or all zeros); "
                             "the file was probably copied in text mode, which corrupts "
                             "binary data")


class Nifti2Image(NiftiImage):
    """A NIfTI-2 image: ``dataobj`` (array or proxy), ``affine``, ``header``."""

    header_class = Nifti2Header

    @classmethod
    def _wider_class(cls):
        return None
