"""Conformance with nibabel: the affine, qform/sform and their codes.

Each test states one rule of nibabel's documented or observed behaviour and
checks proxylib against it, with nibabel itself as the oracle. The rules:

* ``img.affine`` belongs to the image: in-place edits are saved; a header
  transform changed after construction does not change it, and is replaced
  by the image affine on save;
* a new image without a header stores its affine as sform code 2
  ('aligned') with qform code 0, even when the affine equals the fallback;
* an image made from a header and a different affine resets the codes to
  (qform 0, sform 2); the same affine keeps the header's codes;
* with neither transform set, the affine uses |pixdim| (x flipped, origin at
  the centre); zero or negative voxel sizes are repaired on load;
* transform codes are 0-5, by number or name; anything else is refused.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import proxylib
from proxylib import HeaderError, Nifti1Header, Nifti1Image, Nifti2Header, Nifti2Image
from proxylib.errors import HeaderWarning, ProxyError
from proxylib.formats.slicing import SlicedProxy

from nifti_cases import nib, patch_field

AFFINE = np.array([[2.0, 0.0, 0.0, -10.0],
                   [0.0, 3.0, 0.0, 5.0],
                   [0.0, 0.0, 4.0, 7.0],
                   [0.0, 0.0, 0.0, 1.0]])
DATA = np.arange(24, dtype="f4").reshape(2, 3, 4)
PAIRS = [(Nifti1Image, nib.Nifti1Image), (Nifti2Image, nib.Nifti2Image)]


def codes(header):
    return int(header["qform_code"]), int(header["sform_code"])


def reload_both(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HeaderWarning)
        return proxylib.load(path), nib.load(path)


@pytest.mark.parametrize("ours,theirs", PAIRS)
def test_in_place_affine_edit_is_saved(tmp_path, ours, theirs):
    for cls, name in ((ours, "p.nii"), (theirs, "n.nii")):
        img = cls(DATA, np.eye(4))
        img.affine[0, 0] = 9
        img.to_filename(str(tmp_path / name))
    mine, ref = reload_both(str(tmp_path / "p.nii"))[0], nib.load(str(tmp_path / "n.nii"))
    assert ref.affine[0, 0] == 9
    np.testing.assert_array_equal(mine.affine, ref.affine)
    assert codes(mine.header) == codes(ref.header) == (0, 2)


def test_header_set_sform_after_construction_does_not_move_the_image(tmp_path):
    moved = np.eye(4)
    moved[0, 3] = 5
    for cls, name in ((Nifti1Image, "p.nii"), (nib.Nifti1Image, "n.nii")):
        img = cls(DATA, np.eye(4))
        img.header.set_sform(moved)
        assert img.affine[0, 3] == 0
        img.to_filename(str(tmp_path / name))
    mine, ref = proxylib.load(str(tmp_path / "p.nii")), nib.load(str(tmp_path / "n.nii"))
    np.testing.assert_array_equal(mine.affine, ref.affine)
    assert mine.affine[0, 3] == 0


def test_image_set_sform_updates_the_affine():
    moved = np.eye(4)
    moved[1, 3] = 7
    for cls in (Nifti1Image, nib.Nifti1Image):
        img = cls(DATA, np.eye(4))
        img.set_sform(moved, code="mni")
        assert img.affine[1, 3] == 7
        assert int(img.header["sform_code"]) == 4
        np.testing.assert_array_equal(img.get_sform(), moved)
        affine, code = img.get_sform(coded=True)
        assert code == 4
        img.set_sform(np.eye(4), update_affine=False)
        assert img.affine[1, 3] == 7


def test_image_set_qform_codes_and_shears():
    rotated = AFFINE.copy()
    for cls in (Nifti1Image, nib.Nifti1Image):
        img = cls(DATA, np.eye(4))
        img.set_qform(rotated, code="scanner")
        assert img.get_qform(coded=True)[1] == 1
        np.testing.assert_allclose(img.get_qform(), rotated, atol=1e-6)
        # the sform (code 2) still wins for img.affine
        np.testing.assert_array_equal(img.affine, np.eye(4))
        img.set_qform(None)
        assert img.get_qform(coded=True) == (None, 0)
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    with pytest.raises(HeaderError, match="shears"):
        Nifti1Image(DATA, np.eye(4)).set_qform(sheared, strip_shears=False)
    with pytest.raises(Exception):
        nib.Nifti1Image(DATA, np.eye(4)).set_qform(sheared, strip_shears=False)


@pytest.mark.parametrize("ours,theirs", PAIRS)
def test_explicit_fallback_affine_is_stored_as_aligned(tmp_path, ours, theirs):
    header = ours.header_class()
    header.set_data_shape(DATA.shape)
    fallback = header.get_base_affine()
    mine = ours(DATA, fallback)
    ref = theirs(DATA, fallback)
    assert codes(mine.header) == codes(ref.header) == (0, 2)
    mine.to_filename(str(tmp_path / "p.nii"))
    assert codes(proxylib.load(str(tmp_path / "p.nii")).header) == (0, 2)


def test_no_affine_keeps_codes_unknown():
    mine, ref = Nifti1Image(DATA, None), nib.Nifti1Image(DATA, None)
    assert mine.affine is None and ref.affine is None
    assert codes(mine.header) == codes(ref.header) == (0, 0)


@pytest.mark.parametrize("ours,theirs", PAIRS)
def test_new_affine_with_old_header_resets_codes(ours, theirs):
    for header_class, cls in ((ours.header_class, ours), (theirs.header_class, theirs)):
        header = header_class()
        header.set_data_shape(DATA.shape)
        header.set_qform(np.eye(4), 1)
        header.set_sform(np.eye(4), 3)
        changed = cls(DATA, np.diag([2.0, 2.0, 2.0, 1.0]), header)
        assert codes(changed.header) == (0, 2)
        same = cls(DATA, np.eye(4), header)
        assert codes(same.header) == (1, 3)


@pytest.mark.parametrize("pixdim", [[1, -2, 2, 2], [1, 2, 0, 3], [-1, -2, 0, -3], [0.5, 2, 3, 4]])
def test_no_transform_uses_repaired_pixdim(tmp_path, pixdim):
    path = str(tmp_path / "x.nii")
    nib.save(nib.Nifti1Image(DATA, AFFINE), path)
    patch_field(path, "sform_code", 0)
    patch_field(path, "qform_code", 0)
    for i, value in enumerate(pixdim):
        patch_field(path, "pixdim", value, index=i)
    with pytest.warns(HeaderWarning, match="repaired"):
        mine = proxylib.load(path)
    ref = nib.load(path)
    np.testing.assert_array_equal(mine.affine, ref.affine)
    assert mine.header.get_zooms() == tuple(float(z) for z in ref.header.get_zooms())
    np.testing.assert_array_equal(mine.header["pixdim"], ref.header["pixdim"])
    assert abs(np.linalg.det(mine.affine)) > 0
    # the repaired header is what gets saved, as nibabel saves it
    mine.to_filename(str(tmp_path / "p.nii"))
    ref.to_filename(str(tmp_path / "n.nii"))
    again, ref_again = reload_both(str(tmp_path / "p.nii"))[0], nib.load(str(tmp_path / "n.nii"))
    np.testing.assert_array_equal(again.header["pixdim"], ref_again.header["pixdim"])
    np.testing.assert_array_equal(again.affine, ref_again.affine)


def test_negative_pixdim_fallback_on_unrepaired_header():
    header = Nifti1Header.from_bytes(_header_bytes(pixdim=[1, -2, 2, 2, 0, 0, 0, 0]),
                                     repair=False)
    assert header.repairs == []
    assert header.get_base_affine()[0, 0] == -2  # |pixdim|, x flipped
    assert header["pixdim"][1] == -2


def _header_bytes(**fields):
    header = Nifti1Header()
    header.set_data_shape(DATA.shape)
    for name, value in fields.items():
        header[name] = value
    return header.binaryblock


def test_pixdim_beyond_ndim_is_not_padded(tmp_path):
    path = str(tmp_path / "x.nii")
    nib.save(nib.Nifti1Image(DATA, AFFINE), path)
    for i in range(4, 8):
        patch_field(path, "pixdim", 0, index=i)
    mine, ref = proxylib.load(path), nib.load(path)
    np.testing.assert_array_equal(mine.header["pixdim"], ref.header["pixdim"])
    assert list(mine.header["pixdim"][4:]) == [0, 0, 0, 0]
    mine.to_filename(str(tmp_path / "p.nii"))
    saved = nib.load(str(tmp_path / "p.nii"))
    assert list(saved.header["pixdim"][4:]) == [0, 0, 0, 0]
    header = Nifti1Header()
    header["pixdim"][5] = 0
    header.set_data_shape((2, 3))
    assert header["pixdim"][5] == 0


@pytest.mark.parametrize("header_class,ref_class", [(Nifti1Header, nib.Nifti1Header),
                                                    (Nifti2Header, nib.Nifti2Header)])
def test_transform_codes_by_number_and_name(header_class, ref_class):
    for code in [0, 1, 2, 3, 4, 5, "unknown", "scanner", "aligned", "talairach", "mni",
                 "template", "NIFTI_XFORM_SCANNER_ANAT", "NIFTI_XFORM_MNI_152",
                 "NIFTI_XFORM_TEMPLATE_OTHER", np.int16(3)]:
        mine, ref = header_class(), ref_class()
        mine.set_sform(np.eye(4), code)
        ref.set_sform(np.eye(4), code)
        mine.set_qform(np.eye(4), code)
        ref.set_qform(np.eye(4), code)
        assert codes(mine) == codes(ref), code


@pytest.mark.parametrize("code", [6, -1, 2.5, "bogus", "NIFTI_XFORM_NOPE", None.__class__])
def test_invalid_transform_code_is_refused(code):
    header = Nifti1Header()
    with pytest.raises(HeaderError) as info:
        header.set_sform(np.eye(4), code)
    assert isinstance(info.value, ProxyError)
    with pytest.raises(HeaderError):
        header.set_qform(np.eye(4), code)
    assert codes(header) == (0, 0)
    with pytest.raises(KeyError):  # nibabel refuses them too (its own KeyError)
        nib.Nifti1Header().set_sform(np.eye(4), code)


@pytest.mark.parametrize("code", [-1, 6, 9])
def test_out_of_range_codes_in_a_file_are_reset_like_nibabel(tmp_path, code):
    path = str(tmp_path / "x.nii")
    nib.save(nib.Nifti1Image(DATA, AFFINE), path)
    patch_field(path, "sform_code", code)
    with pytest.warns(HeaderWarning, match="sform_code"):
        mine = proxylib.load(path)
    ref = nib.load(path)
    assert codes(mine.header) == codes(ref.header)
    np.testing.assert_allclose(mine.affine, ref.affine, atol=1e-6)


@pytest.mark.parametrize("key", [
    (slice(1, 2), slice(None, None, 2), slice(3, 0, -2), 1),
    (Ellipsis, 0), (slice(None), slice(None), slice(None), None),
    (slice(None, None, -1),), (slice(1, None), Ellipsis, slice(0, 2)),
])
def test_slicer_matches_nibabel(tmp_path, key):
    data = np.arange(4 * 5 * 6 * 3, dtype="f4").reshape(4, 5, 6, 3)
    path = str(tmp_path / "x.nii")
    nib.save(nib.Nifti1Image(data, AFFINE), path)
    mine, ref = proxylib.load(path), nib.load(path)
    sliced, ref_sliced = mine.slicer[key], ref.slicer[key]
    assert proxylib.is_proxy(sliced.dataobj)  # nothing read yet
    assert sliced.shape == ref_sliced.shape == data[key].shape
    np.testing.assert_array_equal(np.asarray(sliced.dataobj), data[key])
    np.testing.assert_array_equal(sliced.get_fdata(), ref_sliced.get_fdata())
    if key == (slice(None, None, -1),):
        # nibabel puts the origin of a reversed axis at index 0, not at its first voxel
        expected = AFFINE.copy()
        expected[:3, 0] *= -1
        expected[:3, 3] += AFFINE[:3, 0] * 3
        np.testing.assert_allclose(sliced.affine, expected)
    else:
        np.testing.assert_allclose(sliced.affine, ref_sliced.affine)
    # the first voxel of the slice keeps its world position
    expanded = key[:key.index(Ellipsis)] + (slice(None),) * 3 if Ellipsis in key else key
    expanded = (tuple(expanded) + (slice(None),) * 3)[:3]
    first = [range(n)[item][0] for n, item in zip(data.shape, expanded)]
    np.testing.assert_allclose(sliced.affine @ [0, 0, 0, 1], AFFINE @ [*first, 1])


def test_sliced_image_reads_only_what_is_asked(tmp_path):
    data = np.arange(4 * 5 * 6 * 3, dtype="f4").reshape(4, 5, 6, 3)
    path = str(tmp_path / "x.nii")
    nib.save(nib.Nifti1Image(data, AFFINE), path)
    sliced = proxylib.load(path).slicer[1:4, ::2, ::-1]
    again = sliced.slicer[::2, 1:, 2:5, 1]
    view = data[1:4, ::2, ::-1][::2, 1:, 2:5, 1]
    np.testing.assert_array_equal(np.asarray(again.dataobj), view)
    np.testing.assert_array_equal(again.dataobj[1, 0], view[1, 0])
    np.testing.assert_array_equal(again.dataobj[..., None, 0], view[..., None, 0])
    np.testing.assert_array_equal(again.dataobj[[1, 0]], view[[1, 0]])
    np.testing.assert_allclose(again.affine @ [1, 1, 1, 1],
                               AFFINE @ [1 + 2 * 1, 0 + 2 * 2, 5 - (2 + 1), 1])
    again.to_filename(str(tmp_path / "s.nii"))
    saved = proxylib.load(str(tmp_path / "s.nii"))
    np.testing.assert_array_equal(np.asarray(saved.dataobj), view)
    np.testing.assert_allclose(saved.affine, again.affine, atol=1e-5)


@pytest.mark.parametrize("key,match", [((0,), "spatial"), ((None,), "new axis"),
                                       (([0, 1],), "fancy"), ((slice(0, 0),), "no voxels")])
def test_slicer_refusals_like_nibabel(key, match):
    img, ref = Nifti1Image(DATA, AFFINE), nib.Nifti1Image(DATA, AFFINE)
    with pytest.raises(IndexError, match=match):
        img.slicer[key]
    with pytest.raises(IndexError):
        ref.slicer[key]


class _Recording:
    """A proxy over an array that records the keys it is read with."""

    is_proxy = True

    def __init__(self, array):
        self.array, self.keys = array, []
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, key):
        self.keys.append(key)
        return self.array[key]


_BASIC_ITEM = st.one_of(st.integers(-6, 5), st.slices(6), st.none())


@settings(max_examples=80, deadline=None)
@given(first=st.lists(_BASIC_ITEM, max_size=4), second=st.lists(_BASIC_ITEM, max_size=4))
def test_sliced_proxy_composes_basic_keys_like_numpy(first, second):
    array = np.arange(6 * 5 * 4, dtype="i4").reshape(6, 5, 4)
    try:
        expected_view = array[tuple(first)]
    except IndexError:
        return
    base = _Recording(array)
    view = SlicedProxy(base).sliced(tuple(first))
    assert view.shape == expected_view.shape
    try:
        expected = expected_view[tuple(second)]
    except IndexError:
        with pytest.raises(IndexError):
            view[tuple(second)]
        return
    got = view[tuple(second)]
    np.testing.assert_array_equal(got, expected)
    # at most one read of the base, with a basic key: only the selection is read
    assert len(base.keys) <= 1
    read = array[base.keys[0]] if base.keys else np.empty(0)
    assert np.size(read) == np.size(expected)


def test_slicer_keeps_a_dask_image_lazy():
    da = pytest.importorskip("dask.array")
    data = da.from_array(np.arange(4 * 5 * 6, dtype="f4").reshape(4, 5, 6), chunks=2)
    sliced = Nifti1Image(data, AFFINE).slicer[1:3, :, ::2]
    assert isinstance(sliced.dataobj, da.Array)
    np.testing.assert_array_equal(np.asarray(sliced.dataobj),
                                  np.arange(4 * 5 * 6, dtype="f4").reshape(4, 5, 6)[1:3, :, ::2])
