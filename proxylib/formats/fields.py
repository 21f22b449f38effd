"""NIfTI-1 and NIfTI-2 header layouts and code tables (data only, no logic).

The layouts are numpy structured dtypes in little-endian order; a header in
the other byte order uses ``dtype.newbyteorder('>')``.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

NIFTI1_FIELDS = np.dtype([
    ("sizeof_hdr", "<i4"),
    ("data_type", "S10"),
    ("db_name", "S18"),
    ("extents", "<i4"),
    ("session_error", "<i2"),
    ("regular", "S1"),
    ("dim_info", "u1"),
    ("dim", "<i2", (8,)),
    ("intent_p1", "<f4"),
    ("intent_p2", "<f4"),
    ("intent_p3", "<f4"),
    ("intent_code", "<i2"),
    ("datatype", "<i2"),
    ("bitpix", "<i2"),
    ("slice_start", "<i2"),
    ("pixdim", "<f4", (8,)),
    ("vox_offset", "<f4"),
    ("scl_slope", "<f4"),
    ("scl_inter", "<f4"),
    ("slice_end", "<i2"),
    ("slice_code", "u1"),
    ("xyzt_units", "u1"),
    ("cal_max", "<f4"),
    ("cal_min", "<f4"),
    ("slice_duration", "<f4"),
    ("toffset", "<f4"),
    ("glmax", "<i4"),
    ("glmin", "<i4"),
    ("descrip", "S80"),
    ("aux_file", "S24"),
    ("qform_code", "<i2"),
    ("sform_code", "<i2"),
    ("quatern_b", "<f4"),
    ("quatern_c", "<f4"),
    ("quatern_d", "<f4"),
    ("qoffset_x", "<f4"),
    ("qoffset_y", "<f4"),
    ("qoffset_z", "<f4"),
    ("srow_x", "<f4", (4,)),
    ("srow_y", "<f4", (4,)),
    ("srow_z", "<f4", (4,)),
    ("intent_name", "S16"),
    ("magic", "S4"),
])

NIFTI2_FIELDS = np.dtype([
    ("sizeof_hdr", "<i4"),
    ("magic", "S4"),
    ("eol_check", "u1", (4,)),
    ("datatype", "<i2"),
    ("bitpix", "<i2"),
    ("dim", "<i8", (8,)),
    ("intent_p1", "<f8"),
    ("intent_p2", "<f8"),
    ("intent_p3", "<f8"),
    ("pixdim", "<f8", (8,)),
    ("vox_offset", "<i8"),
    ("scl_slope", "<f8"),
    ("scl_inter", "<f8"),
    ("cal_max", "<f8"),
    ("cal_min", "<f8"),
    ("slice_duration", "<f8"),
    ("toffset", "<f8"),
    ("slice_start", "<i8"),
    ("slice_end", "<i8"),
    ("descrip", "S80"),
    ("aux_file", "S24"),
    ("qform_code", "<i4"),
    ("sform_code", "<i4"),
    ("quatern_b", "<f8"),
    ("quatern_c", "<f8"),
    ("quatern_d", "<f8"),
    ("qoffset_x", "<f8"),
    ("qoffset_y", "<f8"),
    ("qoffset_z", "<f8"),
    ("srow_x", "<f8", (4,)),
    ("srow_y", "<f8", (4,)),
    ("srow_z", "<f8", (4,)),
    ("slice_code", "<i4"),
    ("xyzt_units", "<i4"),
    ("intent_code", "<i4"),
    ("intent_name", "S16"),
    ("dim_info", "u1"),
    ("unused_str", "S15"),
])

assert NIFTI1_FIELDS.itemsize == 348 and NIFTI2_FIELDS.itemsize == 540

#: Bytes after the header that flag extensions (``extension[0] != 0``).
EXTENSION_FLAG_SIZE = 4
#: NIfTI-2 magic is followed by this DOS/Unix line-ending check.
NIFTI2_EOL_CHECK = (13, 10, 26, 10)

RGB24 = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
RGBA32 = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1"), ("A", "u1")])

#: NIfTI datatype code -> numpy dtype (little-endian, for every type numpy holds exactly).
DATATYPES: Dict[int, np.dtype] = {
    2: np.dtype("u1"),
    4: np.dtype("<i2"),
    8: np.dtype("<i4"),
    16: np.dtype("<f4"),
    32: np.dtype("<c8"),
    64: np.dtype("<f8"),
    128: RGB24,
    256: np.dtype("i1"),
    512: np.dtype("<u2"),
    768: np.dtype("<u4"),
    1024: np.dtype("<i8"),
    1280: np.dtype("<u8"),
    1792: np.dtype("<c16"),
    2304: RGBA32,
}

#: Codes the standard defines that numpy cannot hold exactly (IEEE binary128
#: is not ``np.longdouble`` on common platforms; 1-bit packed data).
UNSUPPORTED_DATATYPES = {0: "none", 1: "binary (1 bit)", 255: "all",
                         1536: "float128", 2048: "complex256"}

#: numpy types NIfTI has no code for, stored widened without loss.
WIDENED = {np.dtype("bool"): np.dtype("u1"), np.dtype("f2"): np.dtype("f4")}

XFORM_CODES = {0: "unknown", 1: "scanner", 2: "aligned", 3: "talairach", 4: "mni",
               5: "template"}


def datatype_code(dtype: np.dtype) -> Optional[int]:
    """The NIfTI code of ``dtype`` (either byte order), or None if it has none."""
    dtype = np.dtype(dtype)
    for code, known in DATATYPES.items():
        if _same_layout(known, dtype):
            return code
    return None


def _same_layout(known: np.dtype, dtype: np.dtype) -> bool:
    if known.fields is not None or dtype.fields is not None:
        return known == dtype
    return known.newbyteorder("=") == dtype.newbyteorder("=")
