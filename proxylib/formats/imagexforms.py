"""qform/sform and on-disk dtype on a NIfTI image, kept in step with its affine.

nibabel's rules, which proxylib follows:

* ``img.affine`` belongs to the image; editing it in place is kept, and
  saving writes it into the header (sform code 2 'aligned', qform code 0)
  whenever it differs from the header's best affine;
* a header change made after construction (``img.header.set_sform(...)``)
  does not change ``img.affine``; the image's ``set_sform``/``set_qform`` do
  (with ``update_affine``);
* ``get_data_dtype``/``set_data_dtype`` are the header's on-disk dtype.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import HeaderError
from .xforms import XformCode


class XformImageMixin:
    """Image methods over the header's transforms and data dtype."""

    _affine: Optional[np.ndarray]
    _header: Any

    def _affine2header(self) -> None:
        """Store the image affine as the sform ('aligned') with the qform unused."""
        self._header.set_sform(self._affine, code="aligned")
        self._header.set_qform(self._affine, code="unknown")

    def _sync_affine(self) -> None:
        """Write the image affine into the header unless the header already gives it."""
        if self._affine is None:
            return
        try:
            current = self._header.get_best_affine()
        except HeaderError:
            current = None
        if current is not None and np.allclose(self._affine, current):
            return
        self._affine2header()

    def _update_affine(self) -> None:
        best = self._header.get_best_affine()
        if self._affine is None:
            self._affine = best
        else:
            self._affine[:] = best

    def get_qform(self, coded: bool = False) -> Any:
        """The header's qform (see ``NiftiHeader.get_qform``)."""
        return self._header.get_qform(coded)

    def set_qform(self, affine: Optional[np.ndarray], code: Optional[XformCode] = None,
                  strip_shears: bool = True, update_affine: bool = True) -> None:
        """Set the header's qform; with ``update_affine`` ``img.affine`` follows the header."""
        self._header.set_qform(affine, code, strip_shears)
        if update_affine:
            self._update_affine()

    def get_sform(self, coded: bool = False) -> Any:
        """The header's sform (see ``NiftiHeader.get_sform``)."""
        return self._header.get_sform(coded)

    def set_sform(self, affine: Optional[np.ndarray], code: Optional[XformCode] = None,
                  update_affine: bool = True) -> None:
        """Set the header's sform; with ``update_affine`` ``img.affine`` follows the header."""
        self._header.set_sform(affine, code)
        if update_affine:
            self._update_affine()

    def get_data_dtype(self) -> np.dtype:
        """The dtype the data is (or will be) stored in on disk."""
        return self._header.get_data_dtype()

    def set_data_dtype(self, dtype: Any) -> None:
        """Store the data as ``dtype`` when saved; integer types get scale factors."""
        self._header.set_data_dtype(dtype)
