"""Helpers shared by the NIfTI tests: write files with nibabel, patch header fields."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

nib = __import__("pytest").importorskip("nibabel")

from proxylib.formats.fields import NIFTI1_FIELDS, NIFTI2_FIELDS  # noqa: E402

AFFINE = np.array([[2.0, 0.1, 0.0, -10.0],
                   [0.0, 3.0, 0.2, 5.0],
                   [0.1, 0.0, 4.0, 7.0],
                   [0.0, 0.0, 0.0, 1.0]])


def nib_write(path: str, data: np.ndarray, *, version: int = 1, order: str = "<",
              affine: np.ndarray = AFFINE, dtype: Any = None) -> str:
    """Write ``data`` with nibabel (NIfTI-``version``, byte order ``order``).

    With a ``dtype`` narrower than the data (float data, integer ``dtype``)
    nibabel picks scl_slope/scl_inter itself: files scaled by other software.
    """
    single = path.endswith((".nii", ".nii.gz"))
    header_class = {(1, True): nib.Nifti1Header, (1, False): nib.nifti1.Nifti1PairHeader,
                    (2, True): nib.Nifti2Header, (2, False): nib.nifti2.Nifti2PairHeader}[version, single]
    image_class = {(1, True): nib.Nifti1Image, (1, False): nib.Nifti1Pair,
                   (2, True): nib.Nifti2Image, (2, False): nib.Nifti2Pair}[version, single]
    header = header_class(endianness=order)
    header.set_data_dtype(dtype if dtype is not None else data.dtype)
    nib.save(image_class(data, affine, header), path)
    return path


def header_layout(path: str):
    """(fields dtype in the file's byte order, header start offset in the header file)."""
    with open(path, "rb") as handle:
        first = handle.read(4)
    for fields, size in ((NIFTI1_FIELDS, 348), (NIFTI2_FIELDS, 540)):
        for order in "<>":
            if int(np.frombuffer(first, order + "i4")[0]) == size:
                return fields.newbyteorder(order)
    raise ValueError(f"{path} is not an uncompressed NIfTI header")


def patch_field(path: str, field: str, value: Any, index: Any = None) -> None:
    """Overwrite one header field (or one element of it) in place."""
    fields = header_layout(path)
    with open(path, "r+b") as handle:
        record = np.frombuffer(handle.read(fields.itemsize), fields).copy()[0]
        if index is None:
            record[field] = value
        else:
            record[field][index] = value
        handle.seek(0)
        handle.write(np.array(record, dtype=fields).tobytes())


def file_size(path: str) -> int:
    return os.stat(path).st_size
