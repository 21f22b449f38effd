"""The image facade: FileHolder, FileBasedImage, and DataobjImage caching semantics."""

from __future__ import annotations

import gzip
import io
import os
import pickle

import numpy as np
import pytest

import proxylib
from proxylib import DataobjImage, FileBasedImage, FileHolder
from proxylib.images import ImageFileError

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "data", "example4d.nii.gz")


@pytest.fixture
def proxy_img():
    return proxylib.load(EXAMPLE)


@pytest.fixture
def example_values():
    """What the example holds, computed independently of proxylib's reader."""
    raw = gzip.open(EXAMPLE).read()
    offset = int(np.frombuffer(raw, "<f4", 1, 108)[0])
    slope, inter = np.frombuffer(raw, "<f4", 2, 112)
    stored = np.frombuffer(raw, "<i2", 32 * 32 * 12 * 10, offset).reshape(
        (32, 32, 12, 10), order="F")
    return stored, float(slope), float(inter)


# -- the example image -----------------------------------------------------------

def test_example_is_small_and_regenerable():
    assert os.path.getsize(EXAMPLE) < 200_000
    img = proxylib.load(EXAMPLE)
    assert img.shape == (32, 32, 12, 10)
    assert img.header.get_slope_inter() == (0.5, 10.0)
    assert img.header.get_zooms() == (2.5, 2.5, 3.0, 2.0)
    assert img.header.extensions[0].code == 6


# -- the documented caching walk-through, on a proxy image -----------------------------

def test_proxy_image_caching_walk_through(proxy_img, example_values):
    stored, slope, inter = example_values
    original = stored * slope + inter
    img = proxy_img
    assert proxylib.is_proxy(img.dataobj)
    assert not img.in_memory

    data = img.get_fdata()
    assert img.in_memory
    assert data.dtype == np.float64
    np.testing.assert_array_equal(data, original)

    data[0, 0, 0, 0] = 99
    again = img.get_fdata()
    assert again is data
    assert again[0, 0, 0, 0] == 99

    img.uncache()
    assert not img.in_memory
    fresh = img.get_fdata()
    assert fresh is not data
    assert fresh[0, 0, 0, 0] == original[0, 0, 0, 0]
    np.testing.assert_array_equal(fresh, original)


def test_unchanged_never_fills(proxy_img):
    img = proxy_img
    first = img.get_fdata(caching="unchanged")
    assert not img.in_memory
    second = img.get_fdata(caching="unchanged")
    assert second is not first
    np.testing.assert_array_equal(first, second)


def test_unchanged_returns_cache_of_same_dtype(proxy_img):
    img = proxy_img
    cached = img.get_fdata()
    assert img.get_fdata(caching="unchanged") is cached
    other = img.get_fdata(caching="unchanged", dtype=np.float32)
    assert other.dtype == np.float32
    assert img.get_fdata() is cached  # 'unchanged' with another dtype keeps the cache


def test_fill_with_another_dtype_replaces_cache(proxy_img):
    img = proxy_img
    f64 = img.get_fdata()
    f32 = img.get_fdata(dtype=np.float32)
    assert f32.dtype == np.float32
    assert img.get_fdata(dtype=np.float32) is f32
    f64_again = img.get_fdata()
    assert f64_again is not f64
    assert img.get_fdata() is f64_again


def test_dtype_equality_not_identity(proxy_img):
    img = proxy_img
    cached = img.get_fdata(dtype="float32")
    assert img.get_fdata(dtype=np.dtype("<f4") if np.little_endian else ">f4") is cached


def test_scaling_happens_in_requested_dtype(proxy_img, example_values):
    stored, slope, inter = example_values
    img = proxy_img
    f32 = img.get_fdata(dtype=np.float32)
    expected = stored.astype(np.float32) * np.float32(slope) + np.float32(inter)
    np.testing.assert_array_equal(f32, expected)
    c64 = img.get_fdata(dtype=np.complex64)
    assert c64.dtype == np.complex64
    np.testing.assert_array_equal(c64.real, expected)


def test_scaling_in_requested_dtype_differs_from_casting_float64(tmp_path):
    """float32 scaling is observable: it differs from float64 scaling then cast."""
    stored = np.arange(1, 2001, dtype=np.int32).reshape(10, 10, 20) * 7919
    path = str(tmp_path / "raw.nii")
    proxylib.save(proxylib.Nifti1Image(stored, np.eye(4)), path)
    base = proxylib.load(path).dataobj
    slope, inter = float(np.float32(0.1)), float(np.float32(1 / 3))
    proxy = proxylib.ArrayProxy(path, (stored.shape, stored.dtype, base.offset, slope, inter))
    img = proxylib.Nifti1Image(proxy, np.eye(4))
    got = img.get_fdata(dtype=np.float32)
    in_f32 = stored.astype(np.float32) * np.float32(slope) + np.float32(inter)
    via_f64 = (stored * slope + inter).astype(np.float32)
    assert not np.array_equal(in_f32, via_f64)
    np.testing.assert_array_equal(got, in_f32)


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.bool_, "i8", object])
def test_get_fdata_rejects_non_float_dtype(proxy_img, dtype):
    with pytest.raises(ValueError, match="floating"):
        proxy_img.get_fdata(dtype=dtype)
    assert not proxy_img.in_memory


@pytest.mark.parametrize("caching", ["full", None, "FILL", ""])
def test_get_fdata_rejects_bad_caching(proxy_img, caching):
    with pytest.raises(ValueError, match="caching"):
        proxy_img.get_fdata(caching=caching)


# -- the same walk-through, on an array image ---------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.int16])
def test_array_image_caching(dtype):
    array = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    img = proxylib.Nifti1Image(array, np.eye(4))
    assert img.in_memory
    assert img.dataobj is array
    data = img.get_fdata()
    assert data.dtype == np.float64
    data[0, 0, 0] = 99
    assert img.get_fdata() is data
    img.uncache()  # no effect on an array image
    assert img.in_memory
    after = img.get_fdata()
    assert after is data and after[0, 0, 0] == 99
    assert img.get_fdata(caching="unchanged") is data


def test_array_image_unchanged_on_empty_cache():
    array = np.arange(6, dtype=np.int16).reshape(1, 2, 3)
    img = proxylib.Nifti1Image(array, np.eye(4))
    a = img.get_fdata(caching="unchanged")
    b = img.get_fdata(caching="unchanged")
    assert a is not b
    np.testing.assert_array_equal(a, array)


def test_float64_array_image_shares_memory():
    array = np.zeros((2, 2, 2))
    img = proxylib.Nifti1Image(array, np.eye(4))
    img.get_fdata()[1, 1, 1] = 5
    assert array[1, 1, 1] == 5


def test_rgb_has_no_float_form(tmp_path):
    rgb = np.zeros((2, 3, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    img = proxylib.Nifti1Image(rgb, np.eye(4))
    with pytest.raises(ValueError, match="RGB"):
        img.get_fdata()


# -- dataobj, shape, get_data ---------------------------------------------------------------

def test_dataobj_is_read_only(proxy_img):
    with pytest.raises(AttributeError):
        proxy_img.dataobj = np.zeros(3)
    assert proxy_img.shape == (32, 32, 12, 10)
    assert proxy_img.ndim == 4


def test_get_data_is_removed(proxy_img):
    with pytest.raises(proxylib.ExpiredDeprecationError) as info:
        proxy_img.get_data()
    message = str(info.value)
    assert "get_fdata()" in message and "np.asanyarray(img.dataobj)" in message
    assert proxylib.deprecator.ExpiredDeprecationError is proxylib.ExpiredDeprecationError
    assert isinstance(info.value, proxylib.ProxyError)


# -- load options are validated and reach the proxy -------------------------------------------

@pytest.mark.parametrize("mmap", [True, False, "c", "r"])
@pytest.mark.parametrize("keep", [None, True, False])
def test_load_options_reach_the_proxy(tmp_path, mmap, keep):
    path = str(tmp_path / "x.nii")
    array = np.arange(8, dtype=np.int16).reshape(2, 2, 2)
    proxylib.save(proxylib.Nifti1Image(array, np.eye(4)), path)
    for loader in (proxylib.load, proxylib.Nifti1Image.from_filename, proxylib.Nifti1Image.load):
        img = loader(path, mmap=mmap, keep_file_open=keep)
        assert img.dataobj.mmap == {True: "c", "c": "c", "r": "r", False: False}[mmap]
        default = proxylib.arrayproxy.KEEP_FILE_OPEN_DEFAULT
        assert img.dataobj.keep_file_open == (default if keep is None else keep)
        np.testing.assert_array_equal(img.get_fdata(), array)
        img.dataobj.close()


@pytest.mark.parametrize("bad", [{"mmap": "w"}, {"mmap": 1}, {"mmap": None},
                                 {"keep_file_open": "auto"}, {"keep_file_open": 1}])
def test_load_options_rejected(bad):
    for loader in (proxylib.load, proxylib.Nifti1Image.from_filename):
        with pytest.raises(ValueError):
            loader(EXAMPLE, **bad)


# -- FileHolder and FileBasedImage ------------------------------------------------------------------

def test_file_holder():
    named = FileHolder("a.nii")
    assert named.file_like == "a.nii" and named.pos == 0
    buffer = io.BytesIO(b"abc")
    held = FileHolder("a.nii", buffer, pos=1)
    assert held.file_like is buffer
    assert named.same_file_as(FileHolder("a.nii"))
    assert not named.same_file_as(held)
    assert not named.same_file_as(FileHolder("b.nii"))
    assert held.same_file_as(FileHolder("a.nii", buffer))
    with held.open_for_read() as stream:
        assert stream.read() == b"bc"
    import pathlib
    assert FileHolder(pathlib.Path("x.nii")).filename == "x.nii"


def test_file_holder_write_is_atomic(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with FileHolder(str(target)).open_for_write() as out:
            out.write(b"partial")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]
    with FileHolder(str(target)).open_for_write() as out:
        out.write(b"new")
    assert target.read_bytes() == b"new"


def test_file_holder_reads_gzip_transparently(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as out:
        out.write(b"hello")
    with FileHolder(str(path)).open_for_read() as stream:
        assert stream.read() == b"hello"
    with pytest.raises(ImageFileError):
        with FileHolder().open_for_read():
            pass


class PairImage(FileBasedImage):
    files_types = (("image", ".img"), ("header", ".hdr"))
    valid_exts = (".img", ".hdr")


def test_file_based_image_file_maps(tmp_path):
    img = PairImage(extra={"k": 1})
    assert img.header is None and img.extra == {"k": 1}
    assert set(img.file_map) == {"image", "header"}
    assert img.get_filename() is None
    img.set_filename("/x/brain.hdr.gz")
    assert img.get_filename() == "/x/brain.img.gz"
    assert img.file_map["header"].filename == "/x/brain.hdr.gz"
    mapped = PairImage.make_file_map({"image": "a.img", "header": io.BytesIO()})
    assert mapped["image"].filename == "a.img" and mapped["header"].fileobj is not None
    with pytest.raises(ImageFileError, match="extensions"):
        PairImage.filespec_to_file_map("brain.nii")
    with pytest.raises(NotImplementedError):
        PairImage.from_filename("a.img")
    with pytest.raises(NotImplementedError):
        img.to_filename(str(tmp_path / "a.img"))


def test_nifti_file_maps():
    single = proxylib.Nifti1Image.filespec_to_file_map("b.nii.gz")
    assert single["image"].same_file_as(single["header"])
    pair = proxylib.Nifti1Image.filespec_to_file_map("b.IMG")  # the user's case is kept
    assert (pair["header"].filename, pair["image"].filename) == ("b.HDR", "b.IMG")
    pair = proxylib.Nifti1Image.filespec_to_file_map("b.img")
    assert (pair["header"].filename, pair["image"].filename) == ("b.hdr", "b.img")
    with pytest.raises(ImageFileError):
        proxylib.Nifti1Image.filespec_to_file_map("b.mgz")


def test_dataobj_image_base_cannot_load():
    with pytest.raises(NotImplementedError):
        DataobjImage.from_file_map({})
    img = DataobjImage(np.zeros((2, 3)))
    assert img.shape == (2, 3) and img.in_memory


def test_image_pickles_with_its_proxy(proxy_img):
    again = pickle.loads(pickle.dumps(proxy_img))
    np.testing.assert_array_equal(again.dataobj[..., 3], proxy_img.dataobj[..., 3])
    np.testing.assert_array_equal(again.affine, proxy_img.affine)
