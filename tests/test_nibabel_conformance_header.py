"""Conformance with nibabel: the NIfTI-1/2 header as a mapping and its descriptive fields.

Rules checked against nibabel: ``keys``/``values``/``items``/``get`` walk the
fields in header order; ``get_xyzt_units``, ``get_intent``, ``get_dim_info``
and ``get_slice_duration`` give nibabel's answers for the same bytes; a
NIfTI-2 ``eol_check`` of zeros loads; FreeSurfer's ``dim[1] = -1`` vectors
load with the length from ``glmin``; extension regions are read in bounded
pieces, and absurd sizes are refused without allocating them.
"""

from __future__ import annotations

import os
import tracemalloc
import warnings

import numpy as np
import pytest

import proxylib
from proxylib import HeaderError, Nifti1Header, Nifti2Header
from proxylib.errors import HeaderWarning
from proxylib.formats.extensions import MAX_EXTENSION_BYTES

from nifti_cases import nib, patch_field

HEADERS = [(Nifti1Header, nib.Nifti1Header), (Nifti2Header, nib.Nifti2Header)]


def twin_headers(ours, theirs, **fields):
    """A proxylib and a nibabel header holding the same field values."""
    mine, ref = ours(), theirs()
    for header in (mine, ref):
        header.set_data_shape((4, 5, 6, 7))
        for name, value in fields.items():
            header[name] = value
    return mine, ref


@pytest.mark.parametrize("ours,theirs", HEADERS)
def test_mapping_api_walks_fields_in_order(ours, theirs):
    mine, ref = twin_headers(ours, theirs)
    assert list(mine.keys()) == list(ref.keys())
    assert [name for name, _ in mine.items()] == list(ref.keys())
    assert len(mine.values()) == len(list(ref.values()))
    np.testing.assert_array_equal(mine.get("dim"), ref.get("dim"))
    assert mine.get("no such field", 3) == ref.get("no such field", 3) == 3
    assert "dim" in mine and "nope" not in mine
    dict(mine.items())["dim"][1] = 9
    assert mine.get_data_shape()[0] == 9  # array values are views, as in nibabel


@pytest.mark.parametrize("ours,theirs", HEADERS)
@pytest.mark.parametrize("packed", [0, 2, 10, 1 | 16, 3 | 24, 2 | 32, 40, 48, 7, 63, 255])
def test_xyzt_units(ours, theirs, packed):
    mine, ref = twin_headers(ours, theirs, xyzt_units=packed)
    try:
        expected = ref.get_xyzt_units()
    except KeyError:  # nibabel refuses codes outside the tables; proxylib says 'unknown'
        space, time = mine.get_xyzt_units()
        assert "unknown" in (space, time)
        assert (space == "unknown") == (packed & 0x07 not in (0, 1, 2, 3))
        return
    assert mine.get_xyzt_units() == expected


@pytest.mark.parametrize("ours,theirs", HEADERS)
def test_set_xyzt_units_round_trip(ours, theirs):
    for xyz, t in [("mm", "sec"), ("micron", "msec"), (2, 8), (None, "hz")]:
        mine, ref = ours(), theirs()
        mine.set_xyzt_units(xyz, t)
        ref.set_xyzt_units(xyz, t)
        assert int(mine["xyzt_units"]) == int(ref["xyzt_units"])
    with pytest.raises(HeaderError):
        ours().set_xyzt_units("furlong")


@pytest.mark.parametrize("ours,theirs", HEADERS)
@pytest.mark.parametrize("code", [0, 2, 3, 4, 5, 12, 22, 1002, 1004, 1007, 2001, 2005, 3001])
def test_get_intent(ours, theirs, code):
    mine, ref = twin_headers(ours, theirs, intent_code=code, intent_p1=1.5, intent_p2=2.5,
                             intent_p3=3.5, intent_name=b"stat map")
    assert mine.get_intent() == ref.get_intent()
    assert mine.get_intent("code") == ref.get_intent("code")


def test_set_intent_like_nibabel():
    mine, ref = Nifti1Header(), nib.Nifti1Header()
    for header in (mine, ref):
        header.set_intent("t test", (12,), name="tmap")
    assert mine.get_intent() == ref.get_intent() == ("t test", (12.0,), "tmap")
    with pytest.raises(HeaderError):
        mine.set_intent("t test", (1, 2))
    with pytest.raises(HeaderError):
        mine.set_intent("astrology")
    mine["intent_code"] = 999
    with pytest.raises(HeaderError, match="intent"):
        mine.get_intent()


@pytest.mark.parametrize("ours,theirs", HEADERS)
@pytest.mark.parametrize("packed", [0, 1, 6, 0b111001, 0b100000, 0b010110, 255])
def test_dim_info_and_slice_duration(ours, theirs, packed):
    mine, ref = twin_headers(ours, theirs, dim_info=packed, slice_duration=0.25)
    assert mine.get_dim_info() == ref.get_dim_info()
    if ref.get_dim_info()[2] is None:
        with pytest.raises(HeaderError, match="slice axis"):
            mine.get_slice_duration()
        with pytest.raises(Exception):
            ref.get_slice_duration()
    else:
        assert mine.get_slice_duration() == ref.get_slice_duration() == 0.25


def test_set_dim_info_like_nibabel():
    for args in [(0, 1, 2), (None, None, 2), (1, None, None), (2, 0, 1)]:
        mine, ref = Nifti1Header(), nib.Nifti1Header()
        mine.set_dim_info(*args)
        ref.set_dim_info(*args)
        assert int(mine["dim_info"]) == int(ref["dim_info"])
    with pytest.raises(HeaderError):
        Nifti1Header().set_dim_info(3)


def test_str_header_is_readable():
    header = Nifti1Header()
    header.set_data_shape((4, 5, 6))
    header.set_sform(np.eye(4), "mni")
    header.set_xyzt_units("mm", "sec")
    text = str(header)
    lines = text.splitlines()
    assert len(lines) == len(header.keys()) + 1
    assert "sform_code      : 4 (mni)" in lines
    assert "xyzt_units      : 10 (mm, sec)" in lines
    assert "datatype        : 16 (float32)" in lines
    assert "dim             : [3, 4, 5, 6, 1, 1, 1, 1]" in lines
    assert repr(header) != text


def _nifti2_file(tmp_path, eol):
    path = str(tmp_path / "x.nii")
    nib.save(nib.Nifti2Image(np.arange(24, dtype="f4").reshape(2, 3, 4), np.eye(4)), path)
    for i, value in enumerate(eol):
        patch_field(path, "eol_check", value, index=i)
    return path


def test_nifti2_eol_check_of_zeros_loads(tmp_path):
    path = _nifti2_file(tmp_path, [0, 0, 0, 0])
    with pytest.warns(HeaderWarning, match="eol_check"):
        mine = proxylib.load(path)
    ref = nib.load(path)
    np.testing.assert_array_equal(mine.header["eol_check"], ref.header["eol_check"])
    np.testing.assert_array_equal(mine.get_fdata(), ref.get_fdata())


def test_nifti2_damaged_eol_check_still_refused(tmp_path):
    path = _nifti2_file(tmp_path, [13, 10, 26, 13])
    with pytest.raises(HeaderError, match="text mode"):
        proxylib.load(path)
    with pytest.raises(Exception):
        nib.load(path)


def _freesurfer_vector(tmp_path, length, glmin):
    header = nib.Nifti1Header()
    header.set_data_shape((length, 1, 1))
    header["dim"][1] = -1
    header["glmin"] = glmin
    header["vox_offset"] = 352
    path = str(tmp_path / "fs.nii")
    with open(path, "wb") as out:
        out.write(header.binaryblock + b"\0" * 4 + np.arange(length, dtype="f4").tobytes())
    return path


def test_freesurfer_negative_dim_loads_like_nibabel(tmp_path):
    path = _freesurfer_vector(tmp_path, 40000, 40000)
    mine, ref = proxylib.load(path), nib.load(path)
    assert mine.shape == ref.shape == (40000, 1, 1)
    np.testing.assert_array_equal(mine.get_fdata(), ref.get_fdata())
    np.testing.assert_array_equal(mine.dataobj[39990:, 0, 0], np.arange(39990, 40000))
    mine.to_filename(str(tmp_path / "again.nii"))
    again = nib.load(str(tmp_path / "again.nii"))
    assert again.shape == (40000, 1, 1)
    np.testing.assert_array_equal(again.get_fdata(), ref.get_fdata())


def test_freesurfer_negative_dim_without_length_is_refused(tmp_path):
    path = _freesurfer_vector(tmp_path, 5, 0)
    with pytest.raises(HeaderError, match="FreeSurfer.*glmin"):
        proxylib.load(path)
    with pytest.raises(Exception, match="glmin"):
        nib.load(path)


def test_other_negative_dims_are_refused_with_the_reason(tmp_path):
    path = str(tmp_path / "x.nii")
    nib.save(nib.Nifti1Image(np.zeros((2, 3, 4), "f4"), np.eye(4)), path)
    patch_field(path, "dim", -3, index=2)
    with pytest.raises(HeaderError, match="negative.*FreeSurfer"):
        proxylib.load(path)
    two = Nifti2Header()
    two["dim"][:4] = [3, -1, 1, 1]
    with pytest.raises(HeaderError, match="NIfTI-1 convention"):
        two.get_data_shape()


def _with_extension_region(tmp_path, vox_offset, first=b""):
    """A single-file NIfTI-1 whose data starts at ``vox_offset``, extensions flagged.

    The region is sparse (holes read as zeros), so a 512 MiB region costs no disk.
    """
    header = Nifti1Header()
    header.set_data_shape((2, 3, 4))
    header.set_data_offset(vox_offset)
    path = str(tmp_path / "ext.nii")
    with open(path, "wb") as out:
        out.write(header.binaryblock + b"\x01\0\0\0" + first)
        out.seek(vox_offset)
        out.write(np.arange(24, dtype="f4").tobytes())
    return path


def _peak_while(action):
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_large_extension_region_is_not_read_whole(tmp_path):
    path = _with_extension_region(tmp_path, 512 * 2**20)
    with pytest.warns(HeaderWarning, match="invalid size 0"):
        img, peak = _peak_while(lambda: proxylib.load(path))
    assert peak < 8 * 2**20, peak
    assert img.header.extensions == []
    np.testing.assert_array_equal(img.get_fdata().ravel(order="F"), np.arange(24))


def test_absurd_extension_size_is_refused_before_reading(tmp_path):
    size = MAX_EXTENSION_BYTES + 16 * 1024
    first = np.array([size, 4], "<i4").tobytes()
    path = _with_extension_region(tmp_path, 512 * 2**20, first)

    def load():
        with pytest.raises(HeaderError, match="extension 0.*claims"):
            proxylib.load(path)

    _, peak = _peak_while(load)
    assert peak < 8 * 2**20, peak


def test_real_extensions_are_read_in_pieces(tmp_path):
    content = os.urandom(3 * 2**20 + 8)  # several pieces, padded to 16 on save
    img = nib.Nifti1Image(np.zeros((2, 3, 4), "f4"), np.eye(4))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(40, content))
    path = str(tmp_path / "x.nii")
    nib.save(img, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mine = proxylib.load(path)
    ref = nib.load(path)
    assert [e.code for e in mine.header.extensions] == [e.get_code() for e in ref.header.extensions]
    assert mine.header.extensions[0].content.rstrip(b"\0") == \
        ref.header.extensions[0].content.rstrip(b"\0")
