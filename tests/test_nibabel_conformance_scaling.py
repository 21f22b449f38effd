"""Conformance with nibabel: on-disk dtype and the scale factors chosen on save.

``get_data_dtype``/``set_data_dtype`` (on the image, on its header, or as the
``dtype`` argument) name the on-disk type. When that type is an integer type that cannot
hold the values, saving picks ``scl_slope``/``scl_inter`` - and proxylib must
pick the very factors nibabel picks for the same values, so the two write the
same file. nibabel writes, proxylib writes, each reads the other's file.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import proxylib
from proxylib import HeaderError, Nifti1Image, Nifti2Image

from nifti_cases import nib

NARROW = ["i1", "u1", "i2", "u2"]
WIDE = ["i4", "u4", "i8", "u8"]


def _cases():
    rng = np.random.default_rng(7)
    ramp = np.arange(60).reshape(3, 4, 5)
    return {
        "normal": rng.normal(size=(3, 4, 5)) * 100,
        "offset": rng.normal(size=(3, 4, 5)) * 100 + 1000,
        "unit": rng.uniform(0, 1, (3, 4, 5)),
        "negative": -rng.uniform(0, 1, (3, 4, 5)),
        "float32": (rng.normal(size=(3, 4, 5)) * 1e6).astype("f4"),
        "halves": ramp + 0.5,
        "constant": np.full((3, 4, 5), 7.0),
        "zeros": np.zeros((3, 4, 5)),
        "nan_positive": np.array([np.nan, 1, 2, 3.0]).reshape(4, 1, 1),
        "nan_negative": np.array([np.nan, -1, -2, -3.0]).reshape(4, 1, 1),
        "inf": np.array([np.inf, 1, 2, 3.0]).reshape(4, 1, 1),
        "all_nan": np.full((4, 1, 1), np.nan),
        "int_wide": (ramp * 1000).astype("i4"),
        "int_centred": (ramp - 30).astype("i4"),
        "int_negative": (-ramp).astype("i4"),
        "int64_huge": rng.integers(-2**40, 2**40, (3, 4, 5)),
        "uint64_huge": rng.integers(0, 2**63, (3, 4, 5), dtype="u8"),
    }


CASES = _cases()


def save_both(tmp_path, data, dtype, version=1):
    ours = {1: Nifti1Image, 2: Nifti2Image}[version]
    theirs = {1: nib.Nifti1Image, 2: nib.Nifti2Image}[version]
    mine = ours(data, np.eye(4))
    mine.set_data_dtype(dtype)
    mine.to_filename(str(tmp_path / "p.nii"))
    theirs(data, np.eye(4), dtype=dtype).to_filename(str(tmp_path / "n.nii"))
    return proxylib.load(str(tmp_path / "p.nii")), nib.load(str(tmp_path / "n.nii"))


def factors(mine, ref):
    spec = mine.dataobj.spec
    return (float(spec.slope), float(spec.inter)), (float(ref.dataobj.slope),
                                                    float(ref.dataobj.inter))


@pytest.mark.parametrize("dtype", NARROW + WIDE)
@pytest.mark.parametrize("name", sorted(CASES))
def test_scale_factors_match_nibabel(tmp_path, name, dtype):
    data = CASES[name]
    mine, ref = save_both(tmp_path, data, dtype)
    assert mine.get_data_dtype() == ref.get_data_dtype() == np.dtype(dtype)
    ours, theirs = factors(mine, ref)
    assert ours == theirs
    if dtype in NARROW:
        # the same stored integers, and so the same values, within one rounding step
        stored = np.asarray(mine.dataobj.unscaled()).astype(float)
        np.testing.assert_allclose(stored, np.asarray(ref.dataobj.get_unscaled()), atol=1)
        finite = np.isfinite(data)
        error = np.abs(mine.get_fdata()[finite] - data[finite])
        assert error.max(initial=0) <= abs(ours[0]) / 2 * (1 + 1e-6) + 1e-9
        ref_values = ref.get_fdata()
        assert np.array_equal(np.isnan(mine.get_fdata()), np.isnan(ref_values))


@pytest.mark.parametrize("version", [1, 2])
def test_nibabel_reads_what_proxylib_scaled(tmp_path, version):
    data = CASES["offset"]
    mine, _ = save_both(tmp_path, data, "i2", version)
    ref = nib.load(str(tmp_path / "p.nii"))
    np.testing.assert_allclose(ref.get_fdata(), data, atol=abs(factors(mine, ref)[0][0]))
    assert ref.get_data_dtype() == np.dtype("i2")


@settings(max_examples=40, deadline=None)
@given(data=hnp.arrays(np.float64, (3, 2, 2),
                       elements=st.floats(-1e6, 1e6, allow_nan=False, width=32)),
       dtype=st.sampled_from(NARROW))
def test_scale_factors_property(data, dtype):
    from proxylib.formats.savescaling import choose_scaling
    writer = nib.arraywriters.make_array_writer(data, np.dtype(dtype), True, True)
    expected = (float(writer.slope), float(writer.inter))
    got = choose_scaling(data.dtype, np.dtype(dtype), data.min(), data.max(), False)
    assert (got or (1.0, 0.0)) == expected


def test_on_disk_dtype_set_on_the_image_or_its_header(tmp_path):
    data = CASES["normal"]
    img = Nifti1Image(data, np.eye(4))
    assert img.get_data_dtype() == np.dtype("f8")
    # a header change after construction counts, as in nibabel
    img.header.set_data_dtype("u1")
    img.to_filename(str(tmp_path / "h.nii"))
    assert proxylib.load(str(tmp_path / "h.nii")).get_data_dtype() == np.dtype("u1")
    # the dtype argument
    assert Nifti1Image(data, np.eye(4), dtype="i4").get_data_dtype() == np.dtype("i4")


def test_header_given_with_an_array_does_not_narrow_it():
    """Difference: nibabel stores array data in the given header's dtype (lossy here)."""
    data = CASES["normal"]
    header = proxylib.Nifti1Header()
    header.set_data_dtype("i2")
    ref_header = nib.Nifti1Header()
    ref_header.set_data_dtype("i2")
    assert Nifti1Image(data, np.eye(4), header).get_data_dtype() == np.dtype("f8")
    assert nib.Nifti1Image(data, np.eye(4), ref_header).get_data_dtype() == np.dtype("i2")


def test_plain_int_is_refused_like_nibabel():
    for dtype in (int, "int"):
        with pytest.raises(HeaderError, match="sized integer"):
            Nifti1Image(np.zeros((2, 2, 2)), np.eye(4)).set_data_dtype(dtype)
        with pytest.raises(ValueError):
            nib.Nifti1Header().set_data_dtype(dtype)
    img = Nifti1Image(np.zeros((2, 2, 2)), np.eye(4))
    img.set_data_dtype(np.int16)
    assert img.get_data_dtype() == np.dtype("i2")


def test_complex_into_integer_is_refused(tmp_path):
    img = Nifti1Image(np.ones((2, 2, 2), "c8"), np.eye(4))
    img.set_data_dtype("i2")
    with pytest.raises(HeaderError, match="complex"):
        img.to_filename(str(tmp_path / "c.nii"))


def test_proxy_image_saved_in_a_new_dtype(tmp_path):
    data = CASES["offset"].astype("f4")
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / "src.nii"))
    img = proxylib.load(str(tmp_path / "src.nii"))
    img.set_data_dtype("i2")
    img.to_filename(str(tmp_path / "out.nii"))
    ref = nib.Nifti1Image(data, np.eye(4), dtype="i2")
    ref.to_filename(str(tmp_path / "ref.nii"))
    ours, theirs = factors(proxylib.load(str(tmp_path / "out.nii")),
                           nib.load(str(tmp_path / "ref.nii")))
    assert ours == theirs
