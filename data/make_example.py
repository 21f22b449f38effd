"""Write ``example4d.nii.gz``: a small, deterministic 4D NIfTI-1 image.

A 32 x 32 x 12 x 10 int16 volume series (2.5 x 2.5 x 3 mm voxels, TR 2 s):
an ellipsoidal "head" whose intensity rises and falls over time in one
region, with a little seeded noise. Stored values are scaled by
``scl_slope = 0.5``, ``scl_inter = 10`` so readers must apply scaling; the
sform is an oblique affine, and one header extension (a comment) shows that
extensions survive a load/save round trip.

Run ``python data/make_example.py`` from the repository root; the output is
byte-for-byte the same every time.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

import proxylib
from proxylib.formats.extensions import Extension

SHAPE = (32, 32, 12, 10)
ZOOMS = (2.5, 2.5, 3.0, 2.0)
SLOPE, INTER = 0.5, 10.0
HERE = os.path.dirname(os.path.abspath(__file__))
#: Installed with the package (proxylib.example_path()); data/example4d.nii.gz links to it.
OUTPUT = os.path.join(HERE, os.pardir, "proxylib", "data", "example4d.nii.gz")


def make_values() -> np.ndarray:
    """The stored int16 values."""
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in SHAPE[:3]), indexing="ij")
    head = (x / 0.85) ** 2 + (y / 0.95) ** 2 + (z / 0.9) ** 2 <= 1
    active = ((x - 0.3) ** 2 + (y + 0.2) ** 2 + z ** 2) <= 0.1
    time = np.arange(SHAPE[3])
    signal = 800 + 120 * active[..., None] * np.sin(2 * np.pi * time / SHAPE[3])
    noise = np.random.default_rng(20240501).integers(-8, 9, SHAPE)
    values = np.where(head[..., None], signal + noise, 0)
    return np.round(values).astype(np.int16)


def make_affine() -> np.ndarray:
    angle = np.deg2rad(10)
    rotation = np.array([[1, 0, 0],
                         [0, np.cos(angle), -np.sin(angle)],
                         [0, np.sin(angle), np.cos(angle)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(ZOOMS[:3])
    affine[:3, 3] = [-40.0, -45.0, -15.0]
    return affine


def main() -> None:
    values = make_values()
    with tempfile.TemporaryDirectory() as folder:
        raw = os.path.join(folder, "values.nii")
        proxylib.save(proxylib.Nifti1Image(values, make_affine()), raw)
        # Attach scaling to the stored values through a proxy, so the file
        # holds int16 values plus scl_slope/scl_inter.
        stored = proxylib.load(raw).dataobj
        scaled = proxylib.ArrayProxy(raw, (SHAPE, stored.storage_dtype, stored.offset,
                                          SLOPE, INTER))
        image = proxylib.Nifti1Image(scaled, make_affine())
        image.header.set_zooms(ZOOMS)
        image.header["xyzt_units"] = 2 | 8  # mm, seconds
        image.header["descrip"] = b"proxylib example: 4D phantom, see data/make_example.py"
        image.header.extensions.append(
            Extension(6, b"Made by data/make_example.py; extension kept on round trip."))
        proxylib.save(image, OUTPUT)
    print(f"wrote {OUTPUT} ({os.path.getsize(OUTPUT)} bytes)")


if __name__ == "__main__":
    main()
