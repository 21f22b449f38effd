"""The default benchmark volume: a 4D float32 NIfTI, plain and gzipped."""

from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np

from ..formats.nifti1 import Nifti1Image
from ..io.remote import is_url
from ..loading import load, save

DEFAULT_SHAPE = (64, 64, 32, 100)
#: Share of voxels that are non-zero, like a masked brain (and like the gzip
#: benchmark of the issue tracker), so the gzipped copy compresses realistically.
NONZERO_FRACTION = 0.10


def default_data(shape: Tuple[int, ...] = DEFAULT_SHAPE, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = np.zeros(shape, dtype=np.float32, order="F")
    spatial = shape[:3]
    inside = rng.random(spatial) < NONZERO_FRACTION
    count = int(inside.sum())
    data[inside] = rng.standard_normal((count,) + tuple(shape[3:]), dtype=np.float32) * 100
    return data


def make_default_volume(directory: str, shape: Tuple[int, ...] = DEFAULT_SHAPE) -> Tuple[str, str]:
    """Write ``volume.nii`` and ``volume.nii.gz`` in ``directory``; return their paths."""
    image = Nifti1Image(default_data(shape), np.diag([2.0, 2.0, 2.0, 1.0]))
    plain = os.path.join(directory, "volume.nii")
    gzipped = os.path.join(directory, "volume.nii.gz")
    save(image, plain)
    save(image, gzipped)
    return plain, gzipped


def describe(path: str, temporary: bool = False,
             storage_options: Optional[dict] = None) -> str:
    """One line saying what is measured: where the file is, its shape, type and sizes."""
    remote = is_url(path)
    proxy = load(path, storage_options=storage_options if remote else None).dataobj
    shape = "x".join(str(n) for n in proxy.shape)
    stored = proxy.spec.storage_dtype
    data = proxy.size * stored.itemsize
    if remote:  # the stored (compressed) size the server reports
        disk = getattr(proxy.file_like, "compressed_size", None) or proxy.file_like.size
    else:
        disk = os.path.getsize(path)
    kind = "gzipped" if path.endswith(".gz") else "uncompressed"
    where = f"{path} (generated; deleted when the run ends)" if temporary else path
    return (f"{where}: {shape} {stored.newbyteorder('=').name}, {_size(data)} of data, "
            f"{_size(disk)} on disk ({kind})")


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**20:.1f} MiB" if nbytes >= 2**20 else f"{nbytes / 2**10:.1f} KiB"
