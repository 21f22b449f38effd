"""Conformance with nibabel: proxy and image API, load/save round trips, pairs, odd headers.

Each test names the nibabel behaviour it holds proxylib to. Where proxylib
deliberately differs (README, "Differences from nibabel"), the test states
proxylib's rule and shows what nibabel does, so a change on either side is
noticed.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

import proxylib
from proxylib import HeaderError, Nifti1Header, Nifti1Image, Nifti2Image

from nifti_cases import nib, nib_write, patch_field

DATA = (np.arange(2 * 3 * 4 * 5, dtype="i2").reshape(2, 3, 4, 5) - 50)
AFFINE = np.array([[-2.0, 0, 0, 10], [0, 2.0, 0, -20], [0, 0, 2.5, 5], [0, 0, 0, 1]])


@pytest.fixture
def scaled(tmp_path):
    """An int16 file with scale factors, written by nibabel."""
    path = str(tmp_path / "s.nii")
    img = nib.Nifti1Image(DATA, AFFINE)
    img.header.set_slope_inter(0.5, 3.0)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_dim_info(0, 1, 2)
    img.header["slice_duration"] = 0.1
    img.header.set_intent("t test", (20,), name="tmap")
    img.to_filename(path)
    return path


def test_proxy_api(scaled):
    """nibabel: shape, ndim, is_proxy, slope, inter, offset; slicing scales; get_unscaled."""
    mine, ref = proxylib.load(scaled).dataobj, nib.load(scaled).dataobj
    assert proxylib.is_proxy(mine) and nib.is_proxy(ref)
    assert mine.shape == ref.shape and mine.ndim == ref.ndim
    assert (mine.slope, mine.inter, mine.offset) == (ref.slope, ref.inter, ref.offset)
    for key in [(Ellipsis, 2), (0, slice(None), 1), (slice(None, None, -1), 1, 2, slice(1, 4))]:
        np.testing.assert_array_equal(mine[key], ref[key])
    np.testing.assert_array_equal(mine.get_unscaled(), ref.get_unscaled())
    np.testing.assert_array_equal(np.asarray(mine), np.asarray(ref))
    np.testing.assert_array_equal(mine.reshape((6, 20))[:, 3], ref.reshape((6, 20))[:, 3])
    again = pickle.loads(pickle.dumps(mine))
    np.testing.assert_array_equal(again[..., 1], ref[..., 1])


def test_proxy_is_proxy_is_read_only(scaled):
    proxy = proxylib.load(scaled).dataobj
    with pytest.raises(AttributeError):
        proxy.is_proxy = False


def test_image_api(scaled):
    """nibabel: shape, ndim, affine, header, get_fdata caching, uncache, in_memory, zooms."""
    mine, ref = proxylib.load(scaled), nib.load(scaled)
    assert mine.shape == ref.shape and mine.ndim == ref.ndim
    np.testing.assert_array_equal(mine.affine, ref.affine)
    assert mine.header.get_zooms() == tuple(float(z) for z in ref.header.get_zooms())
    assert mine.get_data_dtype() == ref.get_data_dtype()
    assert not mine.in_memory and not ref.in_memory
    first = mine.get_fdata()
    np.testing.assert_array_equal(first, ref.get_fdata())
    assert mine.in_memory and ref.in_memory
    assert mine.get_fdata() is first
    np.testing.assert_array_equal(mine.get_fdata(dtype=np.float32),
                                  ref.get_fdata(dtype=np.float32))
    mine.uncache()
    assert not mine.in_memory
    assert mine.get_filename() == ref.get_filename() == scaled


def test_descriptive_header_fields_from_a_nibabel_file(scaled):
    mine, ref = proxylib.load(scaled).header, nib.load(scaled).header
    assert mine.get_xyzt_units() == ref.get_xyzt_units() == ("mm", "sec")
    assert mine.get_dim_info() == ref.get_dim_info() == (0, 1, 2)
    assert mine.get_slice_duration() == pytest.approx(ref.get_slice_duration())
    assert mine.get_intent() == ref.get_intent() == ("t test", (20.0,), "tmap")
    for name in ref.keys():
        if name not in ("vox_offset", "scl_slope", "scl_inter"):
            np.testing.assert_array_equal(np.asarray(mine[name]), np.asarray(ref[name]), name)
    # Difference: nibabel's loaded image header says vox_offset 0 and unscaled (it moves
    # the offset and the factors to the proxy); proxylib's header keeps the file's values
    assert int(mine["vox_offset"]) == 352 and int(ref["vox_offset"]) == 0
    assert mine.get_slope_inter() == (0.5, 3.0) and ref.get_slope_inter() == (None, None)


@pytest.mark.parametrize("name", ["x.nii", "x.nii.gz", "x.img", "x.hdr.gz"])
@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("order", ["<", ">"])
def test_round_trip_both_ways(tmp_path, name, version, order):
    """nibabel writes, proxylib reads and writes back, nibabel reads the same image."""
    src = nib_write(str(tmp_path / name), DATA.astype("f4"), version=version, order=order,
                    affine=AFFINE)
    mine = proxylib.load(src)
    out = str(tmp_path / ("out_" + name))
    mine.to_filename(out)
    ref, back = nib.load(src), nib.load(out)
    assert back.shape == ref.shape
    np.testing.assert_array_equal(back.get_fdata(), ref.get_fdata())
    np.testing.assert_allclose(back.affine, ref.affine, atol=1e-6)
    assert back.header.get_zooms() == ref.header.get_zooms()
    assert type(back.header) is type(ref.header) or back.header.sizeof_hdr == ref.header.sizeof_hdr


def test_pair_header_is_348_bytes_like_nibabel(tmp_path):
    Nifti1Image(DATA, AFFINE).to_filename(str(tmp_path / "p.img"))
    nib.Nifti1Pair(DATA, AFFINE).to_filename(str(tmp_path / "n.img"))
    assert os.path.getsize(tmp_path / "p.hdr") == os.path.getsize(tmp_path / "n.hdr") == 348
    back = nib.load(str(tmp_path / "p.hdr"))
    np.testing.assert_array_equal(back.get_fdata(), DATA)
    # with extensions, the flag and the extensions follow the header
    img = Nifti1Image(DATA, AFFINE)
    img.header.extensions.append(proxylib.formats.extensions.Extension(6, b"a comment"))
    img.to_filename(str(tmp_path / "e.img"))
    assert os.path.getsize(tmp_path / "e.hdr") == 348 + 4 + 32  # 8-byte head + 24 padded
    loaded = nib.load(str(tmp_path / "e.hdr"))
    assert [e.get_code() for e in loaded.header.extensions] == [6]


def test_header_scale_factors_are_not_applied_to_arrays(tmp_path):
    """Difference: nibabel writes a header slope set after construction over unscaled values."""
    mine = Nifti1Image(DATA.astype("f4"), AFFINE)
    mine.header.set_slope_inter(2.0, 1.0)
    mine.to_filename(str(tmp_path / "p.nii"))
    np.testing.assert_array_equal(proxylib.load(str(tmp_path / "p.nii")).get_fdata(), DATA)
    ref = nib.Nifti1Image(DATA.astype("f4"), AFFINE)
    ref.header.set_slope_inter(2.0, 1.0)
    ref.to_filename(str(tmp_path / "n.nii"))
    assert not np.array_equal(nib.load(str(tmp_path / "n.nii")).get_fdata(), DATA)


@pytest.mark.parametrize("slope,inter", [(0, 0), (np.inf, 0), (1, np.inf), (np.nan, 0),
                                         (1, np.nan)])
def test_set_slope_inter_is_validated_like_nibabel(slope, inter):
    with pytest.raises(HeaderError):
        Nifti1Header().set_slope_inter(slope, inter)
    with pytest.raises(Exception):
        nib.Nifti1Header().set_slope_inter(slope, inter)


def test_set_slope_inter_unscaled_forms():
    for args in [(None, None), (np.nan, np.nan), (-2.0, 1.0)]:
        mine, ref = Nifti1Header(), nib.Nifti1Header()
        mine.set_slope_inter(*args)
        ref.set_slope_inter(*args)
        assert mine.get_slope_inter() == ref.get_slope_inter()


def test_single_file_offset_inside_the_header_is_refused(tmp_path):
    """Difference: nibabel reads a vox_offset of 0 in a .nii from the header bytes."""
    path = str(tmp_path / "x.nii")
    nib.save(nib.Nifti1Image(DATA, AFFINE), path)
    patch_field(path, "vox_offset", 0)
    with pytest.raises(HeaderError, match="vox_offset"):
        proxylib.load(path)
    assert not np.array_equal(nib.load(path).get_fdata(), DATA)


def test_new_image_header_defaults(tmp_path):
    """Difference: a new proxylib header is a valid 1-voxel single file (vox_offset 352)."""
    mine, ref = Nifti1Header(), nib.Nifti1Header()
    assert mine.get_data_shape() == (1,) and ref.get_data_shape() == (0,)
    assert int(mine["vox_offset"]) == 352 and int(ref["vox_offset"]) == 0
    # both save the data at 352 in a single file
    Nifti1Image(DATA, AFFINE).to_filename(str(tmp_path / "p.nii"))
    nib.Nifti1Image(DATA, AFFINE).to_filename(str(tmp_path / "n.nii"))
    assert (proxylib.load(str(tmp_path / "p.nii")).dataobj.offset
            == nib.load(str(tmp_path / "n.nii")).dataobj.offset == 352)


def test_int64_arrays_save_without_a_dtype(tmp_path):
    """Difference: nibabel asks for an explicit dtype for int64 data; proxylib stores int64."""
    data = np.arange(24, dtype="i8").reshape(2, 3, 4)
    Nifti1Image(data, AFFINE).to_filename(str(tmp_path / "p.nii"))
    assert nib.load(str(tmp_path / "p.nii")).get_data_dtype() == np.dtype("i8")
    with pytest.raises(ValueError):
        nib.Nifti1Image(data, AFFINE)


def test_nifti2_image_from_nifti1_header(tmp_path):
    header = Nifti1Header()
    header.set_xyzt_units("mm", "sec")
    mine = Nifti2Image(DATA.astype("f8"), AFFINE, header, dtype="i2")
    ref = nib.Nifti2Image(DATA.astype("f8"), AFFINE, nib.Nifti1Header(), dtype="i2")
    assert mine.get_data_dtype() == ref.get_data_dtype() == np.dtype("i2")
    mine.to_filename(str(tmp_path / "p.nii"))
    back = nib.load(str(tmp_path / "p.nii"))
    assert back.header.sizeof_hdr == 540
    assert back.header.get_xyzt_units() == ("mm", "sec")
    np.testing.assert_allclose(back.get_fdata(), DATA, atol=abs(back.dataobj.slope) / 2)
