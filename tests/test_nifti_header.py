"""NIfTI header parsing: validation before any data read, scaling rules, affines."""

from __future__ import annotations

import gzip
import io
import os
import shutil

import numpy as np
import pytest

import proxylib
from proxylib import HeaderError, Nifti1Header, Nifti2Header
from proxylib.formats import affines

from nifti_cases import AFFINE, nib, nib_write, patch_field


@pytest.fixture
def small(tmp_path):
    data = np.arange(4 * 5 * 6 * 3, dtype=np.int16).reshape(4, 5, 6, 3)
    return nib_write(str(tmp_path / "small.nii"), data), data


@pytest.fixture
def small2(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    return nib_write(str(tmp_path / "small2.nii"), data, version=2, order=">"), data


def assert_header_error(path, field, value, match=None):
    with pytest.raises(HeaderError) as info:
        proxylib.load(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.field == field, str(err)
    assert os.fspath(path) in str(err) and field in str(err)
    if value is not None:
        assert err.value == value
        assert str(value) in str(err)
    if match:
        assert match in str(err)
    return err


# -- every malformed field is named, with its file and value -------------------------

def test_bad_sizeof_hdr(small):
    path, _ = small
    patch_field(path, "sizeof_hdr", 349)
    with pytest.raises(HeaderError) as info:
        proxylib.load(path)
    assert info.value.field == "sizeof_hdr" and info.value.value == 349
    assert path in str(info.value) and "349" in str(info.value)


def test_file_too_short_for_any_header(tmp_path):
    path = tmp_path / "tiny.nii"
    path.write_bytes(b"\x5c\x01")
    with pytest.raises(HeaderError) as info:
        proxylib.load(path)
    assert info.value.field == "sizeof_hdr"


def test_truncated_header(small, tmp_path):
    path, _ = small
    short = tmp_path / "short.nii"
    short.write_bytes(open(path, "rb").read()[:200])
    with pytest.raises(HeaderError, match="truncated") as info:
        proxylib.load(short)
    assert info.value.field == "sizeof_hdr"


@pytest.mark.parametrize("code", [9999, 3, 0, 1, 1536, 2048])
def test_unknown_or_unsupported_datatype(small, code):
    path, _ = small
    patch_field(path, "datatype", code)
    assert_header_error(path, "datatype", code)


def test_bad_magic_analyze(small):
    path, _ = small
    patch_field(path, "magic", b"")
    assert_header_error(path, "magic", b"", match="Analyze")


@pytest.mark.parametrize("ndim", [0, 8, -1])
def test_bad_number_of_dims(small, ndim):
    path, _ = small
    patch_field(path, "dim", ndim, index=0)
    err = assert_header_error(path, "dim", None)
    assert str(ndim) in str(err)


def test_negative_dim(small):
    path, _ = small
    patch_field(path, "dim", -4, index=2)
    assert_header_error(path, "dim", (4, -4, 6, 3))


def test_size_exceeds_file(small):
    path, _ = small
    patch_field(path, "dim", 30000, index=4)
    err = assert_header_error(path, "dim", (4, 5, 6, 30000), match="needs")
    assert str(os.stat(path).st_size) in str(err)


def test_size_overflows_nifti2(small2):
    path, _ = small2
    patch_field(path, "dim", 2**40, index=1)
    patch_field(path, "dim", 2**40, index=2)
    assert_header_error(path, "dim", (2**40, 2**40, 6))


def test_size_check_allocates_nothing(small2, monkeypatch):
    """An absurd size is refused from the header alone: no array is ever made."""
    path, _ = small2
    patch_field(path, "dim", 2**33, index=3)
    calls = []
    real_empty = np.empty
    monkeypatch.setattr(np, "empty", lambda *a, **k: calls.append(a) or real_empty(*a, **k))
    with pytest.raises(HeaderError):
        proxylib.load(path)
    assert not calls


@pytest.mark.parametrize("offset", [0, 100, 348, 351])
def test_vox_offset_inside_header(small, offset):
    path, _ = small
    patch_field(path, "vox_offset", offset)
    assert_header_error(path, "vox_offset", offset, match="inside the header")


def test_vox_offset_past_end(small):
    path, _ = small
    end = os.stat(path).st_size
    patch_field(path, "vox_offset", end + 16)
    assert_header_error(path, "vox_offset", end + 16, match="past the end")


@pytest.mark.parametrize("offset", [np.nan, np.inf, -np.inf, 352.5, -16])
def test_vox_offset_not_a_byte_position(small, offset):
    path, _ = small
    patch_field(path, "vox_offset", offset)
    err = assert_header_error(path, "vox_offset", None)
    assert err.value == offset or (np.isnan(offset) and np.isnan(err.value))


def test_nifti2_eol_check(small2):
    path, _ = small2
    patch_field(path, "eol_check", 0, index=1)
    assert_header_error(path, "eol_check", (13, 0, 26, 10), match="text mode")


def test_gzipped_size_beyond_any_compression(small, tmp_path):
    path, _ = small
    patch_field(path, "dim", 32767, index=1)
    patch_field(path, "dim", 32767, index=2)
    gz = str(tmp_path / "big.nii.gz")
    with open(path, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert_header_error(gz, "dim", (32767, 32767, 6, 3), match="at most")


def test_header_errors_pickle(small):
    import pickle
    path, _ = small
    patch_field(path, "datatype", 9999)
    with pytest.raises(HeaderError) as info:
        proxylib.load(path)
    again = pickle.loads(pickle.dumps(info.value))
    assert (again.path, again.field, again.value) == (path, "datatype", 9999)


def test_load_reads_header_only():
    """Loading from a file object reads the header and nothing of the data."""
    data = np.arange(10 * 10 * 10 * 4, dtype=np.int32).reshape(10, 10, 10, 4)
    image = nib.Nifti1Image(data, AFFINE)
    raw = io.BytesIO(image.to_bytes())

    class Recorder(io.BytesIO):
        reads = []

        def read(self, size=-1):
            self.reads.append((self.tell(), size))
            return super().read(size)

    recorder = Recorder(raw.getvalue())
    holder = proxylib.FileHolder(fileobj=recorder)
    img = proxylib.Nifti1Image.from_file_map({"header": holder, "image": holder})
    assert all(start + size <= 352 for start, size in recorder.reads), recorder.reads
    assert img.shape == data.shape
    np.testing.assert_array_equal(img.dataobj[..., 2], data[..., 2])


# -- scaling as the standard says ---------------------------------------------------------

@pytest.mark.parametrize("slope", [0.0, np.nan, np.inf, -np.inf])
def test_no_scaling_when_slope_zero_or_not_finite(small, slope):
    path, data = small
    patch_field(path, "scl_slope", slope)
    patch_field(path, "scl_inter", 5.0)
    img = proxylib.load(path)
    assert img.header.get_slope_inter() == (None, None)
    assert img.dataobj.dtype == np.int16
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)


def test_scaling_applied(small):
    path, data = small
    patch_field(path, "scl_slope", 0.5)
    patch_field(path, "scl_inter", -3.0)
    img = proxylib.load(path)
    assert img.header.get_slope_inter() == (0.5, -3.0)
    assert img.dataobj.dtype == np.float64
    np.testing.assert_array_equal(img.get_fdata(), data * 0.5 - 3)
    f32 = img.get_fdata(dtype=np.float32)
    assert f32.dtype == np.float32
    np.testing.assert_array_equal(f32, data.astype(np.float32) * np.float32(0.5) - 3)


def test_valid_slope_with_non_finite_inter(small):
    path, _ = small
    patch_field(path, "scl_slope", 2.0)
    patch_field(path, "scl_inter", np.nan)
    err = assert_header_error(path, "scl_inter", None)
    assert np.isnan(err.value)


# -- header object ---------------------------------------------------------------------

def test_header_accessors(small):
    path, data = small
    header = proxylib.load(path).header
    assert header.get_data_shape() == data.shape
    assert header.get_data_dtype() == np.dtype("<i2")
    assert header.get_data_offset() == 352
    assert header["dim"][0] == 4 and list(header["dim"][1:5]) == [4, 5, 6, 3]
    assert header["sizeof_hdr"] == 348
    assert "descrip" in header and len(header.keys()) == 43
    header["descrip"] = b"hello"
    assert header["descrip"] == b"hello"
    assert header.get_zooms() == pytest.approx(np.sqrt((AFFINE[:3, :3] ** 2).sum(0)).tolist()
                                               + [1.0], rel=1e-6)


def test_big_endian_header(small2):
    path, data = small2
    img = proxylib.load(path)
    assert img.header.endianness == ">"
    assert img.header.get_data_dtype() == np.dtype(">f4")
    assert img.dataobj.dtype == np.dtype("=f4")
    np.testing.assert_array_equal(img.get_fdata(), data)


def test_default_header_round_trips_through_bytes():
    for cls in (Nifti1Header, Nifti2Header):
        header = cls()
        header.set_data_shape((2, 3, 4))
        header.set_data_dtype(np.uint16)
        again = cls.from_bytes(header.binaryblock + b"\0" * 4)
        assert again == header
        assert again.get_data_shape() == (2, 3, 4)
        assert again.get_data_dtype() == np.dtype("u2")
        swapped = header.as_byteorder(">" if np.little_endian else "<")
        assert cls.from_bytes(swapped.binaryblock) == header


def test_set_data_shape_limits():
    header = Nifti1Header()
    with pytest.raises(HeaderError, match="does not fit"):
        header.set_data_shape((40000, 2, 2))
    Nifti2Header().set_data_shape((40000, 2, 2))
    with pytest.raises(ValueError):
        header.set_data_shape((1,) * 8)


def test_unsupported_dtype_for_saving():
    with pytest.raises(HeaderError) as info:
        Nifti1Header().set_data_dtype(np.dtype("M8[s]"))
    assert info.value.field == "datatype"


def test_nifti2_header_from_nifti1():
    one = Nifti1Header()
    one.set_data_shape((3, 4, 5))
    one.set_sform(AFFINE, code=3)
    one["descrip"] = b"converted"
    two = Nifti2Header.from_header(one)
    assert two.get_data_shape() == (3, 4, 5)
    assert two["descrip"] == b"converted"
    np.testing.assert_allclose(two.get_sform(), one.get_sform())
    assert int(two["sform_code"]) == 3
    assert two.is_single


# -- affines -----------------------------------------------------------------------------

def test_affine_method_precedence(small):
    path, _ = small
    sform = np.array([[1, 0, 0, 1], [0, 2, 0, 2], [0, 0, 3, 3], [0, 0, 0, 1.0]])
    patch_field(path, "srow_x", sform[0])
    patch_field(path, "srow_y", sform[1])
    patch_field(path, "srow_z", sform[2])
    for sform_code, qform_code in [(1, 1), (4, 0), (0, 2), (0, 0), (-1, 0), (-2, 3), (9, 0)]:
        patch_field(path, "sform_code", sform_code)
        patch_field(path, "qform_code", qform_code)
        mine, theirs = proxylib.load(path), nib.load(path)
        np.testing.assert_allclose(mine.affine, theirs.affine, rtol=1e-12, atol=1e-12)
        if 1 <= sform_code <= 5:
            np.testing.assert_array_equal(mine.affine, sform)
        elif 1 <= qform_code <= 5:
            np.testing.assert_allclose(mine.affine, theirs.header.get_qform())
        else:
            np.testing.assert_allclose(mine.affine, theirs.header.get_base_affine())


@pytest.mark.parametrize("qfac", [1.0, -1.0, 0.0])
def test_qform_matches_nibabel(small, qfac):
    path, _ = small
    rng = np.random.default_rng(int(qfac + 5))
    patch_field(path, "sform_code", 0)
    patch_field(path, "qform_code", 1)
    for _ in range(20):
        quat = rng.normal(size=4)
        quat /= np.linalg.norm(quat)
        quat *= np.sign(quat[0])
        patch_field(path, "quatern_b", quat[1])
        patch_field(path, "quatern_c", quat[2])
        patch_field(path, "quatern_d", quat[3])
        patch_field(path, "pixdim", qfac, index=0)
        for name in ("qoffset_x", "qoffset_y", "qoffset_z"):
            patch_field(path, name, rng.uniform(-100, 100))
        np.testing.assert_allclose(proxylib.load(path).affine, nib.load(path).affine,
                                   rtol=1e-10, atol=1e-10)


def test_quaternion_not_a_rotation(small):
    path, _ = small
    patch_field(path, "sform_code", 0)
    patch_field(path, "qform_code", 1)
    patch_field(path, "quatern_b", 0.9)
    patch_field(path, "quatern_c", 0.9)
    err = assert_header_error(path, "quatern_b", None, match="not a rotation")
    assert err.value[:2] == pytest.approx((0.9, 0.9))


def test_affine_to_qform_round_trip():
    rng = np.random.default_rng(3)
    for flip in (1, -1):
        quat = rng.normal(size=4)
        quat /= np.linalg.norm(quat)
        rotation = affines.quaternion_to_rotation(quat)
        affine = np.eye(4)
        affine[:3, :3] = rotation @ np.diag([1.5, 2.0, 3.0 * flip])
        affine[:3, 3] = [4, 5, 6]
        bcd, qfac, zooms, offsets = affines.affine_to_qform(affine)
        assert qfac == flip
        pixdim = [qfac, *zooms, 1, 1, 1, 1]
        again = affines.qform_affine(bcd, 1e-12, pixdim, offsets)
        np.testing.assert_allclose(again, affine, atol=1e-12)
