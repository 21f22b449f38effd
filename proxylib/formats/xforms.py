"""qform / sform handling of a NIfTI header: codes, transforms, best affine.

The rules follow the NIfTI-1 standard and nibabel's reading of it:

* a transform code is one of 0 to 5, given as a number, a short name
  (``'aligned'``) or the standard's label (``'NIFTI_XFORM_ALIGNED_ANAT'``);
  anything else is refused;
* the best affine is the sform when its code is set, else the qform when its
  code is set, else method 1: ``|pixdim|`` voxel sizes, x flipped, origin at
  the centre of the volume;
* loading a file repairs what nibabel repairs (zero or negative voxel sizes,
  a qfac other than +-1, unknown codes), with a :class:`HeaderWarning`.
"""

from __future__ import annotations

from typing import Any, List, Optional, Union

import numpy as np

from ..errors import HeaderError
from . import affines
from .fields import XFORM_CODES

#: The standard's label for each transform code (nifti1.h ``NIFTI_XFORM_*``).
XFORM_LABELS = {0: "NIFTI_XFORM_UNKNOWN", 1: "NIFTI_XFORM_SCANNER_ANAT",
                2: "NIFTI_XFORM_ALIGNED_ANAT", 3: "NIFTI_XFORM_TALAIRACH",
                4: "NIFTI_XFORM_MNI_152", 5: "NIFTI_XFORM_TEMPLATE_OTHER"}
#: Transform codes that name a space (0 is "unknown": do not use the transform).
VALID_XFORM_CODES = frozenset(code for code in XFORM_CODES if code > 0)

XformCode = Union[int, str]


def xform_code(code: Any) -> int:
    """The numeric transform code of ``code`` (number, short name or label)."""
    if isinstance(code, str):
        for value in XFORM_CODES:
            if code in (XFORM_CODES[value], XFORM_LABELS[value]):
                return value
        raise HeaderError(f"unknown transform code {code!r}; expected one of "
                          f"{list(XFORM_CODES.values())} or {list(XFORM_LABELS.values())}",
                          field="xform_code", value=code)
    try:
        number = int(code)
    except (TypeError, ValueError) as err:
        raise HeaderError(f"transform code must be a number or a name, not {code!r}",
                          field="xform_code", value=code) from err
    if number != code or number not in XFORM_CODES:
        raise HeaderError(f"transform code {code!r} is not one of the NIfTI codes "
                          f"{sorted(XFORM_CODES)} ({', '.join(XFORM_CODES.values())})",
                          field="xform_code", value=code)
    return number


class XformHeaderMixin:
    """qform/sform accessors of :class:`~proxylib.formats.niftiheader.NiftiHeader`."""

    _struct: np.ndarray
    quaternion_threshold: float
    # also relies on the header's _fail(field, value, problem) and get_data_shape()

    def get_qform(self, coded: bool = False) -> Any:
        """The qform affine (method 2); with ``coded`` the pair (affine or None, code)."""
        s = self._struct
        code = int(s["qform_code"])
        if coded and code == 0:
            return None, 0
        bcd = [s["quatern_b"], s["quatern_c"], s["quatern_d"]]
        try:
            affine = affines.qform_affine(bcd, self.quaternion_threshold, s["pixdim"],
                                          [s["qoffset_x"], s["qoffset_y"], s["qoffset_z"]])
        except ValueError as err:
            raise self._fail("quatern_b", tuple(float(v) for v in bcd), str(err)) from None
        return (affine, code) if coded else affine

    def set_qform(self, affine: Optional[np.ndarray], code: Optional[XformCode] = None,
                  strip_shears: bool = True) -> None:
        """Store the rotation, voxel sizes and offsets of ``affine`` with ``code``.

        ``code`` None keeps a set code (2, 'aligned', if none is set); with
        ``affine`` None it means 0. A qform cannot hold shears: they are
        dropped (the nearest rotation is kept) unless ``strip_shears`` is
        False, which refuses them instead.
        """
        s = self._struct
        number = _code_for(code, affine, int(s["qform_code"]))
        if affine is None:
            s["qform_code"] = number
            return
        affine = affines.check_affine(affine)
        bcd, qfac, zooms, offsets = affines.affine_to_qform(affine)
        if not strip_shears:
            rebuilt = affines.qform_affine(bcd, 1e-12, [qfac, *zooms], offsets)
            if not np.allclose(rebuilt, affine, atol=1e-6, rtol=1e-6):
                raise HeaderError(f"affine has shears, which a qform cannot hold; pass "
                                  f"strip_shears=True to drop them\n{affine}",
                                  field="qform_code", value=affine.tolist())
        s["qform_code"] = number
        s["quatern_b"], s["quatern_c"], s["quatern_d"] = bcd
        s["qoffset_x"], s["qoffset_y"], s["qoffset_z"] = offsets
        s["pixdim"][0] = qfac
        s["pixdim"][1:4] = zooms

    def get_sform(self, coded: bool = False) -> Any:
        """The sform affine (method 3); with ``coded`` the pair (affine or None, code)."""
        s = self._struct
        code = int(s["sform_code"])
        if coded and code == 0:
            return None, 0
        affine = np.eye(4)
        with np.errstate(invalid="ignore"):  # a signalling NaN stays NaN; callers check
            affine[0], affine[1], affine[2] = s["srow_x"], s["srow_y"], s["srow_z"]
        return (affine, code) if coded else affine

    def set_sform(self, affine: Optional[np.ndarray], code: Optional[XformCode] = None) -> None:
        """Store ``affine`` in the srow fields with ``code`` (same code rules as qform)."""
        s = self._struct
        number = _code_for(code, affine, int(s["sform_code"]))
        if affine is not None:
            affine = affines.check_affine(affine)
            s["srow_x"], s["srow_y"], s["srow_z"] = affine[0], affine[1], affine[2]
        s["sform_code"] = number

    def get_base_affine(self) -> np.ndarray:
        """Method 1: ``|pixdim|`` voxel sizes, x flipped, origin at the volume centre."""
        shape = self.get_data_shape()
        zooms = np.abs(np.asarray(self._struct["pixdim"][1:len(shape) + 1], dtype=float))
        return affines.fallback_affine(shape, zooms)

    def get_best_affine(self) -> np.ndarray:
        """sform if its code is set, else qform if its code is set, else method 1.

        A code counts as set when it is one the standard defines (1 to 5).
        """
        if int(self._struct["sform_code"]) in VALID_XFORM_CODES:
            affine, fields = self.get_sform(), ("srow_x", "srow_y", "srow_z")
        elif int(self._struct["qform_code"]) in VALID_XFORM_CODES:
            affine, fields = self.get_qform(), ("quatern_b", "quatern_c", "quatern_d",
                                                "qoffset_x", "qoffset_y", "qoffset_z", "pixdim")
        else:
            affine, fields = self.get_base_affine(), ("pixdim",)
        if not np.all(np.isfinite(affine)):
            values = {name: np.asarray(self._struct[name]).tolist() for name in fields}
            raise self._fail("/".join(fields), values,
                             "the affine these fields give is not finite (NaN or inf); fix "
                             "them, or set the transform's code to 0 to ignore it")
        return affine

    @np.errstate(invalid="ignore")  # signalling NaNs in the fields stay NaN
    def _repair_xforms(self) -> List[str]:
        """Repair what nibabel repairs on load; return what was changed."""
        s = self._struct
        changes = []
        spatial = np.asarray(s["pixdim"][1:4], dtype=float)
        if np.any(spatial == 0):
            changes.append(f"pixdim[1:4] {spatial.tolist()}: zero voxel sizes set to 1")
            s["pixdim"][1:4] = np.where(spatial == 0, 1.0, spatial)
            spatial = np.asarray(s["pixdim"][1:4], dtype=float)
        if np.any(spatial < 0):
            changes.append(f"pixdim[1:4] {spatial.tolist()}: negative voxel sizes made "
                           "positive")
            s["pixdim"][1:4] = np.abs(spatial)
        qfac = float(s["pixdim"][0])
        if qfac not in (-1.0, 1.0):
            changes.append(f"pixdim[0] (qfac) {qfac} set to 1")
            s["pixdim"][0] = 1.0
        for field in ("qform_code", "sform_code"):
            if int(s[field]) not in XFORM_CODES:
                changes.append(f"{field} {int(s[field])} is not a NIfTI code; set to 0")
                s[field] = 0
        return changes


def _code_for(code: Optional[XformCode], affine: Optional[np.ndarray], current: int) -> int:
    if code is not None:
        return xform_code(code)
    if affine is None:
        return 0
    return current if current in VALID_XFORM_CODES else 2
