"""FreeSurfer MGH/MGZ: files written by nibabel, read and written by proxylib.

nibabel (``nibabel.freesurfer.MGHImage``) is the oracle for values, affines
and header fields; numpy for slices.
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

import proxylib
from proxylib import HeaderError, TruncatedFileError
from proxylib.formats.mgh import DATA_OFFSET, MGHHeader, MGHImage
from proxylib.io.gzip import source as pgz

nib = pytest.importorskip("nibabel")

AFFINE = np.array([[-2.0, 0.1, 0.0, 5.0], [0.0, 0.0, 3.0, 6.0], [0.0, -4.0, 0.2, 7.0],
                   [0.0, 0.0, 0.0, 1.0]])


def values(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is None:
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def write_nibabel(path, data, tail=True):
    image = nib.MGHImage(data, AFFINE)
    if tail:
        image.header["tr"], image.header["te"] = 2000.0, 30.0
        image.header["ti"], image.header["flip_angle"] = 900.0, 0.5
    nib.save(image, str(path))
    return nib.load(str(path))


@pytest.mark.parametrize("suffix", [".mgh", ".mgz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.float32])
@pytest.mark.parametrize("shape", [(5, 6, 7), (5, 6, 7, 3)])
def test_values_affine_and_header_match_nibabel(tmp_path, suffix, dtype, shape):
    path = tmp_path / ("image" + suffix)
    data = values(shape, dtype)
    theirs = write_nibabel(path, data)
    mine = proxylib.load(path)
    assert isinstance(mine, MGHImage) and mine.shape == theirs.shape
    assert mine.dataobj.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(np.asarray(mine.dataobj), np.asarray(theirs.dataobj))
    np.testing.assert_array_equal(mine.dataobj[1, :, 2:5], data[1, :, 2:5])
    np.testing.assert_array_equal(mine.get_fdata(), theirs.get_fdata())
    np.testing.assert_allclose(mine.affine, theirs.affine, rtol=0, atol=1e-6)
    assert mine.header.get_zooms() == pytest.approx([float(z) for z in theirs.header.get_zooms()])
    for field in ("version", "dims", "type", "dof", "goodRASFlag", "delta", "Mdc", "Pxyz_c",
                  "tr", "te", "ti", "flip_angle", "fov"):
        np.testing.assert_array_equal(mine.header[field], theirs.header[field], err_msg=field)


def test_layout_is_big_endian_fortran_order(tmp_path):
    path = tmp_path / "image.mgh"
    data = values((4, 3, 2, 2), np.int16)
    write_nibabel(path, data)
    raw = path.read_bytes()
    assert raw[DATA_OFFSET:DATA_OFFSET + data.nbytes] == data.astype(">i2").tobytes(order="F")
    proxy = proxylib.load(path).dataobj
    assert proxy.spec.storage_dtype == np.dtype(">i2") and proxy.dtype == np.dtype("=i2")


def test_file_without_tail_reads_and_has_zero_scan_parameters(tmp_path):
    path = tmp_path / "image.mgh"
    data = values((4, 5, 6, 2), np.float32)
    write_nibabel(path, data)
    path.write_bytes(path.read_bytes()[:DATA_OFFSET + data.nbytes])  # no tail at all
    theirs = nib.load(str(path))
    mine = proxylib.load(path)
    np.testing.assert_array_equal(np.asarray(mine.dataobj), data)
    assert float(mine.header["tr"]) == float(theirs.header["tr"]) == 0.0
    assert mine.header.get_zooms() == pytest.approx([float(z) for z in theirs.header.get_zooms()])


def test_tail_is_not_read_at_load(tmp_path):
    path = tmp_path / "image.mgh"
    data = values((4, 5, 6, 2), np.float32)
    write_nibabel(path, data)
    image = proxylib.load(path)
    with open(path, "r+b") as handle:  # change the tail after loading: the new one is read
        handle.seek(DATA_OFFSET + data.nbytes + 8)
        handle.write(np.array(12.5, ">f4").tobytes())
    assert float(image.header["te"]) == 12.5


def test_mgz_uses_the_gzip_engine_and_its_saved_index(tmp_path, gzip_isolated):
    path = tmp_path / "image.mgz"
    data = values((32, 32, 16, 8), np.float32)
    write_nibabel(path, data)
    size = os.path.getsize(path)
    assert proxylib.build_index(path) is not None
    pgz.STATES.clear()                                           # as in a new process
    image = proxylib.load(path)
    np.testing.assert_array_equal(image.dataobj[..., -1], data[..., -1])
    state = next(iter(pgz.STATES.values()))
    assert state.stream.bytes_read == 0                    # no pass from the start
    assert 0 < state.indexed.bytes_read + state.jumps.bytes_read < 0.3 * size
    assert float(image.header["tr"]) == 2000.0                   # the tail, read on demand


@pytest.mark.parametrize("suffix", [".mgh", ".mgz"])
def test_save_round_trip_matches_nibabel_byte_for_byte(tmp_path, suffix):
    source = tmp_path / ("source" + suffix)
    copy = tmp_path / ("copy" + suffix)
    data = values((5, 6, 7, 3), np.int16)
    write_nibabel(source, data)
    proxylib.save(proxylib.load(source), copy)
    def content(path):
        raw = path.read_bytes()
        return gzip.decompress(raw) if suffix == ".mgz" else raw
    assert content(copy) == content(source)
    theirs = nib.load(str(copy))
    np.testing.assert_array_equal(np.asarray(theirs.dataobj), data)
    np.testing.assert_allclose(theirs.affine, AFFINE, atol=1e-5)
    assert float(theirs.header["te"]) == 30.0


@pytest.mark.parametrize("dtype,stored", [(np.float32, np.float32), (np.uint8, np.uint8),
                                          (bool, np.uint8), (np.int8, np.int16),
                                          (np.float16, np.float32)])
def test_array_image_saves_in_a_type_that_holds_its_values(tmp_path, dtype, stored):
    data = (values((4, 5, 6), np.float32) * 10).astype(dtype)
    path = tmp_path / "array.mgz"
    proxylib.save(MGHImage(data, AFFINE), path)
    theirs = nib.load(str(path))
    assert theirs.get_data_dtype().newbyteorder("=") == np.dtype(stored)
    np.testing.assert_array_equal(np.asarray(theirs.dataobj), data.astype(stored))
    np.testing.assert_allclose(theirs.affine, AFFINE, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.uint32, np.complex64])
def test_types_mgh_cannot_hold_are_refused(tmp_path, dtype):
    with pytest.raises(HeaderError, match="MGH cannot store") as info:
        MGHImage(np.zeros((2, 3, 4), dtype), AFFINE)
    assert info.value.field == "type"


def test_one_and_two_dimensional_arrays_become_volumes(tmp_path):
    image = MGHImage(np.arange(6, dtype=np.float32).reshape(2, 3), np.eye(4))
    assert image.shape == (2, 3, 1)
    proxylib.save(image, tmp_path / "flat.mgh")
    assert nib.load(str(tmp_path / "flat.mgh")).shape == (2, 3, 1)


def _patched(tmp_path, offset, value):
    path = tmp_path / "image.mgh"
    write_nibabel(path, values((4, 5, 6), np.int16))
    raw = bytearray(path.read_bytes())
    raw[offset:offset + 4] = np.array(value, ">i4").tobytes()
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("code", [2, 5, 6, 99, -1])
def test_unsupported_types_are_refused_naming_file_and_field(tmp_path, code):
    path = _patched(tmp_path, 20, code)
    with pytest.raises(HeaderError, match="supported") as info:
        proxylib.load(path)
    assert info.value.field == "type" and info.value.value == code
    assert str(path) in str(info.value)


@pytest.mark.parametrize("dim", [0, -3])
def test_bad_dims_are_refused(tmp_path, dim):
    path = _patched(tmp_path, 8, dim)
    with pytest.raises(HeaderError) as info:
        proxylib.load(path)
    assert info.value.field == "dims" and str(path) in str(info.value)


def test_other_versions_are_not_mgh(tmp_path):
    path = _patched(tmp_path, 0, 2)
    with pytest.raises(HeaderError, match="MGH"):
        proxylib.load(path)


@pytest.mark.parametrize("suffix", [".mgh", ".mgz"])
def test_truncated_data_is_refused_at_load_or_read(tmp_path, suffix):
    path = tmp_path / ("image" + suffix)
    data = values((8, 8, 8, 4), np.float32)
    write_nibabel(path, data)
    raw = path.read_bytes()
    if suffix == ".mgz":
        raw = gzip.compress(gzip.decompress(raw)[:DATA_OFFSET + data.nbytes // 2], mtime=0)
    else:
        raw = raw[:DATA_OFFSET + data.nbytes // 2]
    path.write_bytes(raw)
    with pytest.raises(TruncatedFileError) as info:
        np.asarray(proxylib.load(path).dataobj)
    assert str(path) in str(info.value)


def test_header_sniffing_ignores_the_name(tmp_path):
    path = tmp_path / "image.mgz"
    data = values((4, 5, 6), np.int16)
    write_nibabel(path, data)
    renamed = tmp_path / "volume.data"
    os.rename(path, renamed)
    np.testing.assert_array_equal(np.asarray(proxylib.load(renamed).dataobj), data)


def test_header_from_other_formats_is_a_fresh_mgh_header():
    assert MGHHeader.from_header(proxylib.Nifti1Header()) == MGHHeader()


def test_unset_transform_flag_gives_freesurfers_default_affine(tmp_path):
    path = tmp_path / "image.mgh"
    write_nibabel(path, values((4, 5, 6), np.int16))
    raw = bytearray(path.read_bytes())
    raw[28:30] = b"\x00\x00"  # goodRASFlag
    path.write_bytes(bytes(raw))
    theirs, mine = nib.load(str(path)), proxylib.load(path)
    np.testing.assert_allclose(mine.affine, theirs.affine, atol=1e-6)
    assert mine.header.get_zooms() == pytest.approx([float(z) for z in
                                                     theirs.header.get_zooms()])
