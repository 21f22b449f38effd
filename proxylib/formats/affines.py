"""Affine arithmetic for NIfTI headers: qform quaternions, sform rows, fallback.

The conventions follow the NIfTI-1 standard and give the same numbers as
nibabel (``Nifti1Header.get_best_affine``): quaternions are completed and
turned into rotations in extended precision, then rounded to float64.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

_LONG = np.longdouble
_FLOAT_EPS = np.finfo(np.float64).eps


def fill_quaternion(bcd: Sequence[float], threshold: float) -> np.ndarray:
    """The unit quaternion ``(a, b, c, d)`` with ``a >= 0`` from its b, c, d.

    ``threshold`` is the magnitude below which ``1 - (b² + c² + d²)`` counts
    as zero (rounding of the stored values); a clearly negative value means
    the stored quaternion is not a rotation and raises ``ValueError``.
    """
    xyz = np.asarray(bcd, dtype=_LONG)
    w2 = 1.0 - xyz @ xyz
    if abs(w2) < abs(threshold):
        w = _LONG(0)
    elif w2 < 0:
        raise ValueError(f"quatern_b/c/d {tuple(float(v) for v in bcd)} have norm > 1 "
                         f"(1 - |bcd|² = {float(w2):e}); not a rotation")
    else:
        w = np.sqrt(w2)
    return np.r_[w, xyz]


def quaternion_to_rotation(quat: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of quaternion ``(w, x, y, z)`` (need not be unit)."""
    w, x, y, z = quat
    norm = w * w + x * x + y * y + z * z
    if norm < _FLOAT_EPS:
        return np.eye(3)
    s = 2.0 / norm
    X, Y, Z = x * s, y * s, z * s
    wX, wY, wZ = w * X, w * Y, w * Z
    xX, xY, xZ = x * X, x * Y, x * Z
    yY, yZ, zZ = y * Y, y * Z, z * Z
    return np.array([[1.0 - (yY + zZ), xY - wZ, xZ + wY],
                     [xY + wZ, 1.0 - (xX + zZ), yZ - wX],
                     [xZ - wY, yZ + wX, 1.0 - (xX + yY)]])


def rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)``, ``w >= 0``, nearest to a 3x3 rotation.

    Bar-Itzhack's method: the eigenvector of the largest eigenvalue of a
    symmetric 4x4 matrix built from the rotation (robust to rounding).
    """
    Qxx, Qyx, Qzx, Qxy, Qyy, Qzy, Qxz, Qyz, Qzz = np.asarray(rotation, dtype=float).flat
    K = np.array([
        [Qxx - Qyy - Qzz, 0, 0, 0],
        [Qyx + Qxy, Qyy - Qxx - Qzz, 0, 0],
        [Qzx + Qxz, Qzy + Qyz, Qzz - Qxx - Qyy, 0],
        [Qyz - Qzy, Qzx - Qxz, Qxy - Qyx, Qxx + Qyy + Qzz]]) / 3.0
    values, vectors = np.linalg.eigh(K)
    quat = vectors[[3, 0, 1, 2], np.argmax(values)]
    return -quat if quat[0] < 0 else quat


@np.errstate(over="ignore", invalid="ignore")  # non-finite results: callers check
def qform_affine(bcd: Sequence[float], threshold: float, pixdim: Sequence[float],
                 offsets: Sequence[float]) -> np.ndarray:
    """4x4 affine of NIfTI method 2 (qform): rotation x voxel sizes x qfac + offset.

    ``pixdim`` is the whole pixdim array: ``pixdim[0]`` is qfac (any value
    other than -1 counts as 1, as the standard asks), ``pixdim[1:4]`` the
    voxel sizes (their magnitude is used).
    """
    rotation = quaternion_to_rotation(fill_quaternion(bcd, threshold))
    qfac = -1 if pixdim[0] == -1 else 1
    voxels = np.abs(np.asarray(pixdim[1:4], dtype=_LONG))
    voxels[-1] *= qfac
    out = np.eye(4)
    out[:3, :3] = rotation @ np.diag(voxels)
    out[:3, 3] = offsets
    return out


def affine_to_qform(affine: np.ndarray) -> Tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Quaternion b/c/d, qfac, voxel sizes and offsets that best express ``affine``.

    Shears cannot be expressed by a qform; the rotation is the orthogonal
    matrix nearest to the affine's (polar decomposition).
    """
    affine = np.asarray(affine, dtype=float)
    rzs = affine[:3, :3]
    zooms = np.sqrt(np.sum(rzs * rzs, axis=0))
    safe = np.where(zooms == 0, 1.0, zooms)
    rotation = rzs / safe
    rotation[:, zooms == 0] = np.eye(3)[:, zooms == 0]
    qfac = 1.0
    if np.linalg.det(rotation) <= 0:
        qfac = -1.0
        rotation[:, -1] *= -1
    left, _, right = np.linalg.svd(rotation)
    quat = rotation_to_quaternion(left @ right)
    return quat[1:], qfac, zooms, affine[:3, 3].copy()


@np.errstate(over="ignore", invalid="ignore")  # non-finite results: callers check
def fallback_affine(shape: Sequence[int], zooms: Sequence[float]) -> np.ndarray:
    """NIfTI method 1 / Analyze affine: voxel sizes, x flipped, origin at the centre."""
    shape = list(shape[:3]) + [1] * (3 - len(shape[:3]))
    zooms = list(zooms[:3]) + [1.0] * (3 - len(zooms[:3]))
    zooms = np.array(zooms, dtype=float)
    zooms[0] *= -1
    origin = (np.array(shape, dtype=float) - 1) / 2.0
    out = np.eye(4)
    out[:3, :3] = np.diag(zooms)
    out[:3, 3] = -origin * zooms
    return out


def check_affine(affine: object) -> np.ndarray:
    """``affine`` as a fresh finite 4x4 float64 array, or ``ValueError``."""
    array = np.array(affine, dtype=np.float64)
    if array.shape != (4, 4):
        raise ValueError(f"affine must be a 4x4 array, not shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"affine must be finite, got\n{array}")
    return array
