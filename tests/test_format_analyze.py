"""ANALYZE 7.5 with SPM's additions: pairs written by nibabel, read and written by proxylib.

nibabel (``AnalyzeImage``, ``Spm99AnalyzeImage``, ``Spm2AnalyzeImage``; its
loader reads every ANALYZE header as SPM2 does) is the oracle for values,
scale factors, affines and zooms; numpy for slices.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import proxylib
from proxylib import HeaderError, TruncatedFileError
from proxylib.formats.analyzeimage import AnalyzeImage

nib = pytest.importorskip("nibabel")
pytest.importorskip("scipy")  # nibabel writes SPM's .mat with scipy

AFFINE = np.array([[2.0, 0.1, 0.0, 5.0], [0.0, 3.0, 0.0, 6.0], [0.0, 0.0, 4.0, 7.0],
                   [0.0, 0.0, 0.0, 1.0]])
CLASSES = {"analyze": nib.AnalyzeImage, "spm99": nib.Spm99AnalyzeImage,
           "spm2": nib.Spm2AnalyzeImage}


def values(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    return (rng.standard_normal(shape) * 100).astype(dtype)


def write_nibabel(path, data, kind="spm2", order="<", slope=None, affine=AFFINE):
    cls = CLASSES[kind]
    header = cls.header_class(endianness=order)
    header.set_data_dtype(data.dtype)
    image = cls(data, affine, header=header)
    if slope is not None:
        image.header.set_slope_inter(slope)
    nib.save(image, str(path))
    return nib.load(str(path))


def check_same(mine, theirs):
    assert isinstance(mine, AnalyzeImage) and mine.shape == theirs.shape
    np.testing.assert_array_equal(np.asarray(mine.dataobj), np.asarray(theirs.dataobj))
    np.testing.assert_array_equal(mine.get_fdata(), theirs.get_fdata())
    np.testing.assert_allclose(mine.affine, theirs.affine, rtol=0, atol=1e-6)
    assert mine.header.get_zooms() == pytest.approx([float(z) for z in
                                                     theirs.header.get_zooms()])


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_both_byte_orders_and_every_variant_match_nibabel(tmp_path, kind, order):
    path = tmp_path / "image.img"
    data = values((5, 6, 7, 3), np.int16)
    theirs = write_nibabel(path, data, kind, order, slope=None if kind == "analyze" else 0.5)
    mine = proxylib.load(path)
    assert mine.header.endianness == order
    assert mine.dataobj.spec.storage_dtype == np.dtype(order + "i2")
    assert (mine.dataobj.spec.slope, mine.dataobj.spec.inter) == (theirs.dataobj.slope,
                                                                  theirs.dataobj.inter)
    check_same(mine, theirs)
    np.testing.assert_array_equal(mine.dataobj[2, :, 1:6:2], np.asarray(theirs.dataobj)[2, :, 1:6:2])


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64,
                                   np.complex64])
def test_every_analyze_type(tmp_path, dtype):
    path = tmp_path / "image.hdr"
    theirs = write_nibabel(path, values((4, 5, 6), dtype))
    mine = proxylib.load(path)
    np.testing.assert_array_equal(np.asarray(mine.dataobj), np.asarray(theirs.dataobj))
    np.testing.assert_allclose(mine.affine, theirs.affine, atol=1e-6)


def _patch(path, **fields):
    """Set header fields in place (in the header's own byte order), as another tool would."""
    header = nib.AnalyzeHeader.from_fileobj(open(path, "rb"))
    for name, value in fields.items():
        header[name] = value
    with open(path, "r+b") as handle:
        handle.write(header.binaryblock)


def test_spm2_intercept_in_funused2(tmp_path):
    path = tmp_path / "image.hdr"
    write_nibabel(path, values((4, 5, 6), np.int16), slope=0.25)
    _patch(path, funused2=-3.5)
    theirs, mine = nib.load(str(path)), proxylib.load(path)
    assert mine.dataobj.spec.inter == theirs.dataobj.inter == -3.5
    check_same(mine, theirs)


def test_scale_from_gl_and_cal_ranges_when_funused1_is_unset(tmp_path):
    path = tmp_path / "image.hdr"
    write_nibabel(path, values((4, 5, 6), np.int16))
    _patch(path, funused1=0, glmin=10, glmax=110, cal_min=0.2, cal_max=0.8)
    theirs, mine = nib.load(str(path)), proxylib.load(path)
    assert mine.dataobj.spec.slope == pytest.approx(theirs.dataobj.slope)
    assert mine.dataobj.spec.inter == pytest.approx(theirs.dataobj.inter)
    np.testing.assert_allclose(mine.get_fdata(), theirs.get_fdata())


@pytest.mark.parametrize("origin", [(3, 4, 5), (0, 0, 0), (900, 4, 5)])
def test_affine_without_mat_from_origin_or_centre(tmp_path, origin):
    path = tmp_path / "image.hdr"
    write_nibabel(path, values((6, 7, 8), np.int16), kind="spm99")
    os.remove(tmp_path / "image.mat")
    header = nib.Spm99AnalyzeHeader.from_fileobj(open(path, "rb"))
    header["origin"][:3] = origin
    with open(path, "r+b") as handle:
        handle.write(header.binaryblock)
    theirs, mine = nib.load(str(path)), proxylib.load(path)
    np.testing.assert_allclose(mine.affine, theirs.affine, atol=1e-6)


def test_gzipped_pair(tmp_path):
    path = tmp_path / "image.img.gz"
    data = values((5, 6, 7, 3), np.float32)
    theirs = write_nibabel(path, data, kind="analyze")
    assert (tmp_path / "image.hdr.gz").exists()
    check_same(proxylib.load(path), theirs)


@pytest.mark.parametrize("kind", ["analyze", "spm2"])
def test_save_round_trip_keeps_stored_type_scale_and_affine(tmp_path, kind):
    source = tmp_path / "source.hdr"
    data = values((5, 6, 7, 2), np.int16)
    theirs = write_nibabel(source, data, kind, ">", slope=None if kind == "analyze" else 0.5)
    proxylib.save(proxylib.load(source), tmp_path / "copy.img")
    copy = nib.load(str(tmp_path / "copy.hdr"))
    assert copy.get_data_dtype().newbyteorder("=") == np.dtype(np.int16)
    assert (copy.dataobj.slope, copy.dataobj.inter) == (theirs.dataobj.slope,
                                                        theirs.dataobj.inter)
    check_same(proxylib.load(tmp_path / "copy.img"), copy)
    np.testing.assert_array_equal(copy.get_fdata(), theirs.get_fdata())
    np.testing.assert_allclose(copy.affine, theirs.affine, atol=1e-6)


def test_array_image_saves_with_its_affine_in_the_mat(tmp_path):
    data = values((4, 5, 6), np.float32)
    proxylib.save(AnalyzeImage(data, AFFINE), tmp_path / "array.hdr")
    theirs = nib.load(str(tmp_path / "array.hdr"))
    np.testing.assert_array_equal(np.asarray(theirs.dataobj), data)
    np.testing.assert_allclose(theirs.affine, AFFINE, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint16, np.int64, np.complex128])
def test_types_analyze_cannot_hold_are_refused_on_save(dtype):
    with pytest.raises(HeaderError, match="ANALYZE cannot store") as info:
        AnalyzeImage(np.zeros((2, 3, 4), dtype), AFFINE)
    assert info.value.field == "datatype"


@pytest.mark.parametrize("code", [0, 1, 255, 256, 512])
def test_unsupported_types_are_refused_naming_file_and_field(tmp_path, code):
    path = tmp_path / "image.hdr"
    write_nibabel(path, values((4, 5, 6), np.int16))
    _patch(path, datatype=code)
    with pytest.raises(HeaderError, match="supported") as info:
        proxylib.load(path)
    assert info.value.field == "datatype" and info.value.value == code
    assert str(path) in str(info.value)


def test_truncated_img_is_refused_at_load(tmp_path):
    path = tmp_path / "image.hdr"
    write_nibabel(path, values((8, 8, 8), np.float32))
    img = tmp_path / "image.img"
    img.write_bytes(img.read_bytes()[:1000])
    with pytest.raises(TruncatedFileError, match="truncated") as info:
        proxylib.load(path)
    assert str(img) in str(info.value)


def test_unreadable_mat_falls_back_to_the_header_with_a_warning(tmp_path, monkeypatch):
    path = tmp_path / "image.hdr"
    theirs = write_nibabel(path, values((4, 5, 6), np.int16), kind="analyze")
    (tmp_path / "image.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 200)
    import builtins
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_scipy)
    with pytest.warns(proxylib.HeaderWarning, match="scipy"):
        mine = proxylib.load(path)
    np.testing.assert_allclose(mine.affine, theirs.affine, atol=1e-6)


def test_nifti_single_file_with_broken_magic_is_still_an_error(tmp_path):
    path = tmp_path / "image.nii"
    nib.save(nib.Nifti1Image(values((4, 5, 6), np.int16), AFFINE), str(path))
    raw = bytearray(path.read_bytes())
    raw[344:348] = b"\x00" * 4
    path.write_bytes(bytes(raw))
    with pytest.raises(HeaderError, match="magic"):
        proxylib.load(path)


def test_nifti_pairs_are_not_taken_for_analyze(tmp_path):
    path = tmp_path / "pair.hdr"
    nib.save(nib.Nifti1Pair(values((4, 5, 6), np.int16), AFFINE), str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert type(proxylib.load(path)).__name__ == "Nifti1Image"


@pytest.mark.parametrize("order", ["<", ">"])
def test_header_fields_match_nibabel_and_the_file_bytes(tmp_path, order):
    path = tmp_path / "image.hdr"
    write_nibabel(path, values((4, 5, 6, 2), np.int16), "spm2", order, slope=2.0)
    _patch(path, descrip=b"a scan", cal_max=9.5, glmax=300, orient=b"\x01")
    theirs = nib.AnalyzeHeader.from_fileobj(open(path, "rb"))
    mine = proxylib.load(path).header
    assert mine.binaryblock == path.read_bytes()[:348]
    for name in mine.keys():
        np.testing.assert_array_equal(mine[name], theirs[name], err_msg=name)
