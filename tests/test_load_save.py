"""proxylib.load / proxylib.save: detection by header bytes, round trips, streaming saves."""

from __future__ import annotations

import gzip
import io
import os
import pathlib
import shutil
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import proxylib
from proxylib import HeaderError, Nifti1Image, Nifti2Image
from proxylib.formats import blocks
from proxylib.formats.extensions import Extension

from nifti_cases import AFFINE, nib, nib_write

KINDS = ("x.nii", "x.nii.gz", "x.hdr", "x.img.gz")
RGB = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
RGBA = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1"), ("A", "u1")])


def sample(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.fields is not None:
        raw = rng.integers(0, 256, (int(np.prod(shape)), dtype.itemsize), dtype=np.uint8)
        return raw.view(dtype).reshape(shape)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    if dtype.kind == "c":
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)
    return (rng.normal(size=shape) * 1000).astype(dtype)


def assert_values(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    if expected.dtype.fields is not None:
        assert actual.dtype == expected.dtype
        assert actual.tobytes() == expected.tobytes()
    else:
        np.testing.assert_array_equal(actual, expected)


# -- round trips of arrays -----------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8",
                                   "c8", "c16", RGB, RGBA])
def test_array_round_trip(tmp_path, kind, dtype):
    data = sample((3, 4, 5, 2), dtype)
    path = str(tmp_path / kind)
    proxylib.save(Nifti1Image(data, AFFINE), path)
    img = proxylib.load(path)
    assert type(img) is Nifti1Image
    assert img.header.get_data_dtype() == np.dtype(dtype).newbyteorder("=") or \
        img.header.get_data_dtype() == np.dtype(dtype)
    assert_values(img.dataobj[...], data)
    assert_values(img.dataobj[1, :, 2:4, -1], data[1, :, 2:4, -1])
    np.testing.assert_allclose(img.affine, AFFINE, rtol=1e-6, atol=1e-6)
    if np.dtype(dtype).fields is None:
        np.testing.assert_array_equal(img.get_fdata(dtype=np.complex128 if np.dtype(dtype).kind
                                                    == "c" else np.float64), data)


@pytest.mark.parametrize("dtype, stored", [(bool, "u1"), ("f2", "f4")])
def test_types_without_nifti_code_are_widened_exactly(tmp_path, dtype, stored):
    data = sample((4, 3, 2), dtype)
    path = str(tmp_path / "w.nii")
    proxylib.save(Nifti1Image(data, np.eye(4)), path)
    img = proxylib.load(path)
    assert img.dataobj.dtype == np.dtype(stored)
    np.testing.assert_array_equal(np.asarray(img.dataobj), data.astype(stored))


@pytest.mark.parametrize("shape", [(7,), (2, 3), (2, 3, 4), (1, 2, 3, 4, 5), (2, 1, 2, 1, 2, 1, 2),
                                   (0, 3, 4), (3, 4, 5, 0)])
def test_dimensions(tmp_path, shape):
    data = sample(shape, "i2")
    path = str(tmp_path / "d.nii")
    proxylib.save(Nifti1Image(data, np.eye(4)), path)
    img = proxylib.load(path)
    assert img.shape == shape
    np.testing.assert_array_equal(img.get_fdata(), data)
    assert nib.load(path).shape == shape


def test_nifti2_when_a_dimension_does_not_fit_nifti1(tmp_path):
    data = sample((40000, 1, 2), "i1")
    image = Nifti1Image(data, AFFINE)
    path = tmp_path / "wide.nii"
    proxylib.save(image, path)
    assert int.from_bytes(path.read_bytes()[:4], "little") == 540
    img = proxylib.load(path)
    assert type(img) is Nifti2Image and img.shape == (40000, 1, 2)
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)
    np.testing.assert_allclose(img.affine, AFFINE, rtol=1e-6, atol=1e-6)
    theirs = nib.load(str(path))
    assert isinstance(theirs, nib.Nifti2Image)
    np.testing.assert_array_equal(np.asarray(theirs.dataobj), data)
    image.to_filename(str(tmp_path / "wide.hdr"))
    assert type(proxylib.load(tmp_path / "wide.img")) is Nifti2Image
    assert image.get_filename() == str(tmp_path / "wide.img")


def test_nifti2_image_round_trip(tmp_path):
    data = sample((3, 4, 5), "f8")
    path = str(tmp_path / "two.nii.gz")
    proxylib.save(Nifti2Image(data, AFFINE), path)
    img = proxylib.load(path)
    assert type(img) is Nifti2Image
    np.testing.assert_array_equal(img.get_fdata(), data)
    np.testing.assert_allclose(img.affine, AFFINE, rtol=1e-12)


# -- proxies: lossless, streamed, bounded ------------------------------------------------------

def test_proxy_round_trip_keeps_stored_values_and_scaling(tmp_path):
    source = os.path.join(os.path.dirname(__file__), "..", "data", "example4d.nii.gz")
    img = proxylib.load(source)
    for kind in KINDS:
        path = str(tmp_path / kind)
        proxylib.save(img, path)
        again = proxylib.load(path)
        assert again.header.get_slope_inter() == (0.5, 10.0)
        assert again.dataobj.storage_dtype.newbyteorder("=") == np.int16
        np.testing.assert_array_equal(again.dataobj.get_unscaled(), img.dataobj.get_unscaled())
        np.testing.assert_array_equal(again.get_fdata(), img.get_fdata(caching="unchanged"))
        np.testing.assert_array_equal(again.affine, img.affine)
        assert again.header.get_zooms() == img.header.get_zooms()
        assert again.header.extensions == img.header.extensions
        assert again.header["descrip"] == img.header["descrip"]


def test_save_reads_proxy_in_bounded_blocks(tmp_path, monkeypatch):
    data = sample((20, 30, 8, 6), "i2")
    path = str(tmp_path / "src.nii")
    proxylib.save(Nifti1Image(data, AFFINE), path)
    img = proxylib.load(path)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 2000)
    sizes = []
    real_getitem = proxylib.ArrayProxy.__getitem__

    def recording_getitem(self, key):
        result = real_getitem(self, key)
        sizes.append(result.nbytes)
        return result

    def forbidden(*args, **kwargs):
        raise AssertionError("save converted the whole proxy to an array")

    monkeypatch.setattr(proxylib.ArrayProxy, "__getitem__", recording_getitem)
    monkeypatch.setattr(proxylib.ArrayProxy, "__array__", forbidden)
    proxylib.save(img, str(tmp_path / "out.nii"))
    assert max(sizes) <= 2000 and sum(sizes) == data.nbytes
    monkeypatch.undo()
    np.testing.assert_array_equal(np.asarray(proxylib.load(tmp_path / "out.nii").dataobj), data)


def test_save_peak_memory_follows_block_not_image(tmp_path, monkeypatch):
    shape = (64, 64, 64, 48)  # 48 MiB of int32
    path = tmp_path / "big.nii"
    header = proxylib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.int32)
    with open(path, "wb") as out:
        out.write(header.binaryblock + b"\0" * 4)
        volume = np.arange(64 ** 3, dtype=np.int32).tobytes()
        for t in range(shape[3]):
            out.write(volume)
    img = proxylib.load(path)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 2 * 2**20)
    tracemalloc.start()
    try:
        proxylib.save(img, str(tmp_path / "copy.nii"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * 2**20, f"peak {peak / 2**20:.1f} MiB for a 48 MiB image"
    copy = proxylib.load(tmp_path / "copy.nii")
    np.testing.assert_array_equal(copy.dataobj[..., 47], img.dataobj[..., 47])
    assert os.path.getsize(tmp_path / "copy.nii") == os.path.getsize(path)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=5).map(tuple),
       itemsize=st.sampled_from([1, 2, 8]), block=st.integers(1, 400))
def test_block_keys_cover_the_array_in_file_order(shape, itemsize, block):
    data = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    pieces = []
    for key in blocks.block_keys(shape, itemsize, block):
        part = data[key]
        assert part.size * itemsize <= max(block, shape[0] * itemsize)
        pieces.append(part.ravel(order="F"))
    joined = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
    np.testing.assert_array_equal(joined, data.ravel(order="F"))


def test_user_proxy_with_inexact_float32_slope_saves_values(tmp_path):
    raw = tmp_path / "raw.bin"
    stored = sample((4, 5, 6), "<i2")
    raw.write_bytes(stored.tobytes(order="F"))
    proxy = proxylib.ArrayProxy(str(raw), (stored.shape, "<i2", 0, 0.1, 0.0))
    img = Nifti1Image(proxy, np.eye(4))
    path = str(tmp_path / "s.nii")
    proxylib.save(img, path)
    np.testing.assert_array_equal(proxylib.load(path).get_fdata(), stored * 0.1)
    proxylib.save(Nifti2Image(proxy, np.eye(4)), str(tmp_path / "s2.nii"))
    again = proxylib.load(str(tmp_path / "s2.nii"))
    assert again.header.get_slope_inter() == (0.1, 0.0)
    assert again.dataobj.storage_dtype.newbyteorder("=") == np.int16


def test_save_over_the_file_being_read(tmp_path):
    path = str(tmp_path / "same.nii")
    data = sample((5, 6, 7, 3), "i2")
    proxylib.save(Nifti1Image(data, AFFINE), path)
    img = proxylib.load(path)
    img.header["descrip"] = b"rewritten"
    proxylib.save(img, path)
    np.testing.assert_array_equal(img.get_fdata(), data)
    again = proxylib.load(path)
    assert again.header["descrip"] == b"rewritten"
    np.testing.assert_array_equal(again.get_fdata(), data)
    assert [p.name for p in tmp_path.iterdir()] == ["same.nii"]


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    img = Nifti1Image(sample((3, 3, 3), "i2"), np.eye(4))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("proxylib.formats.niftiimage.write_blocks", broken)
    with pytest.raises(OSError, match="disk full"):
        proxylib.save(img, str(tmp_path / "never.nii.gz"))
    assert list(tmp_path.iterdir()) == []


def test_save_to_file_objects():
    data = sample((3, 4, 5), "u2")
    single = io.BytesIO()
    holder = proxylib.FileHolder(fileobj=single)
    Nifti1Image(data, AFFINE).to_file_map({"header": holder, "image": holder})
    single.seek(0)
    assert nib.Nifti1Image.from_bytes(single.getvalue()).shape == (3, 4, 5)
    img = Nifti1Image.from_file_map({"header": holder, "image": holder})
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)
    header, image = io.BytesIO(), io.BytesIO()
    file_map = Nifti1Image.make_file_map({"header": header, "image": image})
    Nifti1Image(data, AFFINE).to_file_map(file_map)
    assert len(image.getvalue()) == data.nbytes
    img = Nifti1Image.from_file_map(file_map)
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)


def test_extensions_round_trip(tmp_path):
    img = Nifti1Image(sample((3, 4, 5), "f4"), AFFINE)
    img.header.extensions.append(Extension(6, b"a comment"))
    img.header.extensions.append(Extension(4, b"x" * 40))
    for kind in KINDS:
        path = str(tmp_path / kind)
        proxylib.save(img, path)
        loaded = proxylib.load(path)
        assert [(e.code, e.content.rstrip(b"\0")) for e in loaded.header.extensions] == \
            [(6, b"a comment"), (4, b"x" * 40)]
        theirs = nib.load(path).header.extensions
        assert [e.get_code() for e in theirs] == [6, 4]
        np.testing.assert_array_equal(loaded.get_fdata(), img.get_fdata())


# -- detection by the header's own bytes --------------------------------------------------------

def test_detection_ignores_misleading_names(tmp_path):
    data = sample((3, 4, 5), "i2")
    two = nib_write(str(tmp_path / "two.nii"), data, version=2)
    assert type(proxylib.load(two)) is Nifti2Image
    zipped = tmp_path / "zipped.nii"
    with gzip.open(zipped, "wb") as out:
        out.write(open(two, "rb").read())
    assert type(proxylib.load(zipped)) is Nifti2Image
    plain = tmp_path / "plain.nii.gz"
    shutil.copy(two, plain)
    np.testing.assert_array_equal(proxylib.load(plain).get_fdata(), data)


def test_pair_found_from_either_file_and_any_compression(tmp_path):
    data = sample((3, 4, 5), "i2")
    nib_write(str(tmp_path / "p.hdr"), data)
    for name in ("p.hdr", "p.img"):
        np.testing.assert_array_equal(proxylib.load(tmp_path / name).get_fdata(), data)
    with open(tmp_path / "p.img", "rb") as src, gzip.open(tmp_path / "p.img.gz", "wb") as dst:
        dst.write(src.read())
    os.remove(tmp_path / "p.img")
    np.testing.assert_array_equal(proxylib.load(tmp_path / "p.hdr").get_fdata(), data)
    os.remove(tmp_path / "p.img.gz")
    with pytest.raises(FileNotFoundError, match=r"\.img"):
        proxylib.load(tmp_path / "p.hdr")


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        proxylib.load(tmp_path / "missing.nii")
    with pytest.raises(FileNotFoundError, match="hdr"):
        (tmp_path / "lonely.img").write_bytes(b"\0" * 10)
        proxylib.load(tmp_path / "lonely.img")
    text = tmp_path / "text.nii"
    text.write_bytes(b"this is not an image at all" * 20)
    with pytest.raises(HeaderError, match="sizeof_hdr") as info:
        proxylib.load(text)
    assert info.value.path == str(text)
    with pytest.raises(TypeError):
        proxylib.load(3)
    two = nib_write(str(tmp_path / "two.nii"), sample((2, 2, 2), "u1"), version=2)
    with pytest.raises(HeaderError, match="sizeof_hdr"):
        Nifti1Image.from_filename(two)
    with pytest.raises(TypeError):
        proxylib.save(np.zeros(3), str(tmp_path / "a.nii"))


def test_path_types(tmp_path):
    data = sample((2, 3, 4), "u1")
    proxylib.save(Nifti1Image(data, np.eye(4)), tmp_path / "p.nii")
    for name in (tmp_path / "p.nii", str(tmp_path / "p.nii"),
                 os.fsencode(str(tmp_path / "p.nii"))):
        np.testing.assert_array_equal(np.asarray(proxylib.load(name).dataobj), data)
    assert isinstance(proxylib.load(pathlib.Path(tmp_path / "p.nii")).get_filename(), str)


def test_affine_none_keeps_header_transforms(tmp_path):
    source = proxylib.load(os.path.join(os.path.dirname(__file__), "..", "data",
                                        "example4d.nii.gz"))
    img = Nifti1Image(np.zeros(source.shape, np.int16), None, header=source.header)
    assert img.affine is None
    path = str(tmp_path / "n.nii")
    proxylib.save(img, path)
    np.testing.assert_array_equal(proxylib.load(path).affine, source.affine)


def test_new_affine_replaces_header_transforms(tmp_path):
    source = proxylib.load(os.path.join(os.path.dirname(__file__), "..", "data",
                                        "example4d.nii.gz"))
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    img = Nifti1Image(source.dataobj, affine, header=source.header)
    path = str(tmp_path / "n.nii")
    proxylib.save(img, path)
    np.testing.assert_array_equal(proxylib.load(path).affine, affine)
    np.testing.assert_array_equal(nib.load(path).affine, affine)
    assert proxylib.load(path).header.get_zooms()[:3] == (3.0, 3.0, 3.0)
