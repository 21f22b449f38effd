"""Cross-checks with nibabel (a test-only dependency), in both directions.

nibabel writes NIfTI-1/2 files over every dtype both support, both byte
orders, with and without scaling (nibabel picks scl_slope/scl_inter when
float data goes into an integer type), 3D to 5D, single and paired, plain and
gzipped; proxylib must report the same shape, affine, zooms, slices and
get_fdata. Then proxylib writes, and nibabel must read what proxylib meant.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import proxylib
from proxylib import Nifti1Image, Nifti2Image

from nifti_cases import nib, nib_write

RGB = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
DTYPES = ["i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8", "c8", "c16", RGB]
SCALED_TYPES = ["i1", "u1", "i2", "u2", "i4"]
KINDS = ("x.nii", "x.nii.gz", "x.hdr", "x.img", "x.hdr.gz", "x.img.gz")


def values(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.fields is not None:
        raw = rng.integers(0, 256, (int(np.prod(shape)), 3), dtype=np.uint8)
        return raw.view(dtype).reshape(shape)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    if dtype.kind == "c":
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype) * 100
    return (rng.normal(size=shape) * 1000).astype(dtype)


def random_affine(rng):
    quat = rng.normal(size=4)
    quat /= np.linalg.norm(quat)
    w, x, y, z = quat
    rotation = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                         [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                         [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(rng.uniform(0.5, 4, 3) * rng.choice([-1, 1], 3))
    affine[:3, 3] = rng.uniform(-100, 100, 3)
    return affine


@st.composite
def nib_cases(draw):
    scaled = draw(st.booleans())
    dtype = np.dtype(draw(st.sampled_from(SCALED_TYPES if scaled else DTYPES)))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=3, max_size=5)))
    return dict(dtype=dtype, shape=shape, scaled=scaled,
                order=draw(st.sampled_from("<>")), version=draw(st.sampled_from([1, 2])),
                kind=draw(st.sampled_from(KINDS)), seed=draw(st.integers(0, 2**16)))


def assert_same_values(mine, theirs, *, exact=True):
    mine, theirs = np.asarray(mine), np.asarray(theirs)
    assert mine.shape == theirs.shape
    if theirs.dtype.fields is not None:
        assert mine.tobytes() == theirs.astype(mine.dtype).tobytes()
    elif exact:
        np.testing.assert_array_equal(mine, theirs)
    else:
        np.testing.assert_allclose(mine, theirs, rtol=2e-6, atol=1e-6 * np.abs(theirs).max())


@settings(max_examples=80, deadline=None)
@given(case=nib_cases(), data=st.data())
def test_files_nibabel_writes(case, data):
    rng = np.random.default_rng(case["seed"])
    shape, dtype = case["shape"], case["dtype"]
    source = (rng.normal(size=shape) * 50 + 20) if case["scaled"] else values(shape, dtype, rng)
    with tempfile.TemporaryDirectory() as folder:
        path = nib_write(os.path.join(folder, case["kind"]), source, version=case["version"],
                         order=case["order"], affine=random_affine(rng), dtype=dtype)
        theirs, mine = nib.load(path), proxylib.load(path)
        assert type(mine) is (Nifti1Image if case["version"] == 1 else Nifti2Image)
        assert mine.shape == theirs.shape == shape
        assert mine.header.endianness == case["order"]
        np.testing.assert_allclose(mine.affine, theirs.affine, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(mine.header.get_zooms(), theirs.header.get_zooms())
        slope, inter = theirs.dataobj.slope, theirs.dataobj.inter
        if case["scaled"]:
            assert (slope, inter) != (1.0, 0.0) or np.all(source == np.round(source))
        assert mine.header.get_slope_inter() in (((None, None), (1.0, 0.0)) if
                                                 (slope, inter) == (1.0, 0.0) else
                                                 ((float(slope), float(inter)),))
        for t in range(shape[-1]):
            assert_same_values(mine.dataobj[..., t], theirs.dataobj[..., t])
        for k in range(shape[2]):
            assert_same_values(mine.dataobj[:, :, k], theirs.dataobj[:, :, k])
        assert_same_values(mine.dataobj[shape[0] // 2, shape[1] // 2, shape[2] // 2],
                           theirs.dataobj[shape[0] // 2, shape[1] // 2, shape[2] // 2])
        whole = np.asarray(theirs.dataobj)
        for _ in range(3):
            # nibabel's own slicing fails on empty slices (OSError from
            # fileslice), so the oracle is its full read indexed by numpy
            key = data.draw(hnp.basic_indices(shape, allow_newaxis=True), label="key")
            assert_same_values(mine.dataobj[key], whole[key])
        if dtype.fields is None:
            ftype = np.complex128 if dtype.kind == "c" else np.float64
            assert_same_values(mine.get_fdata(dtype=ftype), theirs.get_fdata(dtype=ftype))
            if dtype.kind != "c":
                assert_same_values(mine.get_fdata(dtype=np.float32),
                                   theirs.get_fdata(dtype=np.float32), exact=False)
        mine.dataobj.close()


@settings(max_examples=60, deadline=None)
@given(case=nib_cases())
def test_files_proxylib_writes(case):
    rng = np.random.default_rng(case["seed"])
    shape, dtype = case["shape"], case["dtype"]
    data = values(shape, dtype, rng)
    affine = random_affine(rng)
    image_class = Nifti1Image if case["version"] == 1 else Nifti2Image
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, case["kind"])
        if case["scaled"]:
            # a proxy with scale factors: proxylib stores the raw values + factors
            raw = os.path.join(folder, "raw.bin")
            stored = data.astype(dtype.newbyteorder(case["order"]))
            with open(raw, "wb") as out:
                out.write(b"\0" * 7 + stored.tobytes(order="F"))
            slope, inter = float(np.float32(rng.uniform(0.1, 3))), float(rng.integers(-50, 50))
            dataobj = proxylib.ArrayProxy(raw, (shape, stored.dtype, 7, slope, inter))
            expected = data * slope + inter
        else:
            dataobj, expected = data, data
        img = image_class(dataobj, affine)
        proxylib.save(img, path)
        theirs = nib.load(path)
        assert theirs.shape == shape
        version = 1 if isinstance(theirs, (nib.Nifti1Image, nib.Nifti1Pair)) and not \
            isinstance(theirs, (nib.Nifti2Image, nib.Nifti2Pair)) else 2
        assert version == case["version"]
        np.testing.assert_allclose(theirs.affine, affine, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(theirs.header.get_zooms()[:3],
                                   np.sqrt((affine[:3, :3] ** 2).sum(0)), rtol=1e-6)
        if dtype.fields is not None:
            assert_same_values(np.asarray(theirs.dataobj), data)
        else:
            assert theirs.get_data_dtype().newbyteorder("=") == dtype.newbyteorder("=")
            ftype = np.complex128 if dtype.kind == "c" else np.float64
            assert_same_values(theirs.get_fdata(dtype=ftype), expected.astype(ftype))
            assert_same_values(theirs.dataobj[..., 0], np.asarray(expected)[..., 0])
            # and proxylib reads back what nibabel reads
            assert_same_values(proxylib.load(path).get_fdata(dtype=ftype),
                               theirs.get_fdata(dtype=ftype))


@pytest.mark.parametrize("kind", KINDS)
def test_example_matches_nibabel(tmp_path, kind):
    example = os.path.join(os.path.dirname(__file__), "..", "data", "example4d.nii.gz")
    path = str(tmp_path / kind)
    proxylib.save(proxylib.load(example), path)
    theirs, mine = nib.load(path), proxylib.load(path)
    np.testing.assert_array_equal(mine.get_fdata(), theirs.get_fdata())
    np.testing.assert_allclose(mine.affine, theirs.affine, rtol=1e-12, atol=1e-12)
    assert mine.header.get_zooms() == tuple(float(z) for z in theirs.header.get_zooms())
    assert [e.get_code() for e in theirs.header.extensions] == [6]
