"""nibabel both ways: to_nibabel, from_nibabel and header conversion, nibabel as the oracle."""

import gzip
import shutil

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

import proxylib  # noqa: E402
from proxylib.arrayproxy import ArrayProxy  # noqa: E402
from proxylib.interop.nibabel import to_nibabel_header  # noqa: E402

AFFINE = np.array([[-2.0, 0, 0, 90], [0, 2.5, 0, -126], [0, 0, 3, -72], [0, 0, 0, 1]])


def _write(path, *, version=1, dtype=np.int16, slope=0.5, inter=1.0, order="<",
           extensions=True):
    """A NIfTI file written by nibabel, with descrip, units, intent, codes and extensions."""
    stored = (np.arange(4 * 5 * 3 * 6) % 97).reshape(4, 5, 3, 6).astype(dtype)
    klass = {(1, True): nib.Nifti1Image, (1, False): nib.Nifti1Pair,
             (2, True): nib.Nifti2Image, (2, False): nib.Nifti2Pair}[
        (version, not str(path).endswith((".hdr", ".img", ".hdr.gz", ".img.gz")))]
    img = klass(stored, AFFINE)
    header = img.header
    header.set_data_dtype(dtype)
    header["descrip"] = b"interop test"
    header.set_xyzt_units("mm", "sec")
    header.set_intent("t test", (12.0,), name="tmap")
    header.set_sform(AFFINE, code="mni")
    header.set_qform(AFFINE, code="scanner")
    if extensions:
        header.extensions.append(nib.nifti1.Nifti1Extension(6, b"a comment"))
        header.extensions.append(nib.nifti1.Nifti1Extension(40, b"\x01\x02\x03" * 7))
    if order != "=":
        img = klass(stored, AFFINE, header=header.as_byteswapped(order)
                    if header.endianness != order else header)
        header = img.header
    header.set_slope_inter(slope, inter)
    nib.save(img, str(path))
    return stored


def _no_reads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the proxy was read")
    monkeypatch.setattr(ArrayProxy, "__getitem__", refuse)
    monkeypatch.setattr(ArrayProxy, "__array__", refuse)


NAMES = ["a.nii", "a.nii.gz", "a.hdr", "a.img.gz"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("version", [1, 2])
def test_to_nibabel_shares_the_proxy_and_matches_nibabel_load(tmp_path, monkeypatch, name,
                                                              version):
    path = tmp_path / name
    _write(path, version=version)
    img = proxylib.load(path)
    expected = nib.load(str(path))
    _no_reads(monkeypatch)
    converted = img.to_nibabel()
    assert converted.dataobj is img.dataobj
    assert type(converted).__mro__[2] is type(expected)
    assert converted.header.binaryblock == expected.header.binaryblock
    assert list(converted.header.extensions) == list(expected.header.extensions)
    np.testing.assert_array_equal(converted.affine, expected.affine)
    assert converted.header.get_sform(coded=True)[1] == expected.header.get_sform(coded=True)[1]
    assert converted.header.get_qform(coded=True)[1] == expected.header.get_qform(coded=True)[1]
    assert converted.get_filename() == expected.get_filename()
    monkeypatch.undo()
    np.testing.assert_array_equal(converted.get_fdata(), expected.get_fdata())
    np.testing.assert_array_equal(converted.dataobj[..., 2], expected.dataobj[..., 2])


def test_to_nibabel_big_endian_header_and_extensions(tmp_path):
    path = tmp_path / "big.nii"
    _write(path, order=">")
    expected = nib.load(str(path))
    assert expected.header.endianness == ">"
    converted = proxylib.load(path).to_nibabel()
    assert converted.header.endianness == ">"
    assert converted.header.binaryblock == expected.header.binaryblock
    assert list(converted.header.extensions) == list(expected.header.extensions)


@pytest.mark.parametrize("name", ["a.nii", "a.nii.gz", "a.hdr"])
@pytest.mark.parametrize("scaling", [(0.5, 1.0), (2.0, 0.0), (None, None)])
def test_nibabel_save_keeps_stored_dtype_and_scale_factors(tmp_path, name, scaling):
    path = tmp_path / name
    stored = _write(path, slope=scaling[0], inter=scaling[1])
    converted = proxylib.load(path).to_nibabel()
    out = tmp_path / ("out" + name[1:])
    nib.save(converted, str(out))
    source, written = nib.load(str(path)), nib.load(str(out))
    assert written.get_data_dtype() == np.dtype(np.int16)
    assert (written.dataobj.slope, written.dataobj.inter) == (source.dataobj.slope,
                                                              source.dataobj.inter)
    np.testing.assert_array_equal(np.asarray(written.dataobj.get_unscaled()), stored)
    np.testing.assert_array_equal(written.get_fdata(), source.get_fdata())
    assert list(written.header.extensions) == list(source.header.extensions)
    # the image is unchanged by the save: same proxy, scaling only in the proxy
    assert converted.dataobj.slope == (scaling[0] or 1.0)
    assert converted.header.get_slope_inter() == (None, None)


def test_nibabel_save_with_a_chosen_dtype_follows_nibabel(tmp_path):
    path = tmp_path / "a.nii"
    _write(path)
    converted = proxylib.load(path).to_nibabel()
    converted.set_data_dtype(np.float32)
    nib.save(converted, str(tmp_path / "f.nii"))
    written = nib.load(str(tmp_path / "f.nii"))
    assert written.get_data_dtype() == np.float32
    np.testing.assert_allclose(written.get_fdata(), nib.load(str(path)).get_fdata())


def test_to_nibabel_works_in_nilearn(tmp_path):
    image = pytest.importorskip("nilearn.image")
    path = tmp_path / "a.nii.gz"
    _write(path)
    converted = proxylib.load(path).to_nibabel()
    expected = nib.load(str(path))
    np.testing.assert_allclose(image.mean_img(converted, copy_header=True).get_fdata(),
                               image.mean_img(expected, copy_header=True).get_fdata())
    volume = image.index_img(converted, 2)
    np.testing.assert_array_equal(volume.get_fdata(), expected.get_fdata()[..., 2])
    np.testing.assert_array_equal(volume.affine, expected.affine)


def test_to_nibabel_refuses_other_images():
    with pytest.raises(proxylib.UnsupportedImageError, match="NIfTI images"):
        proxylib.interop.nibabel.to_nibabel(np.zeros(3))


@pytest.mark.parametrize("name", NAMES)
def test_from_nibabel_loads_the_same_file_with_proxylib(tmp_path, name):
    path = tmp_path / name
    _write(path)
    nib_img = nib.load(str(path))
    img = proxylib.from_nibabel(nib_img)
    assert isinstance(img, proxylib.Nifti1Image)
    assert isinstance(img.dataobj, ArrayProxy)
    reference = proxylib.load(path)
    assert img.header.binaryblock == reference.header.binaryblock
    assert img.header.extensions == reference.header.extensions
    np.testing.assert_array_equal(img.affine, nib_img.affine)
    np.testing.assert_array_equal(img.dataobj[1, :, 2], nib_img.dataobj[1, :, 2])
    np.testing.assert_array_equal(img.get_fdata(), nib_img.get_fdata())


def test_from_nibabel_keeps_an_affine_changed_in_memory(tmp_path):
    path = tmp_path / "a.nii"
    _write(path)
    nib_img = nib.load(str(path))
    moved = nib.Nifti1Image(nib_img.dataobj, nib_img.affine @ np.diag([1, 1, 1, 1.0]) + 
                            np.array([[0, 0, 0, 5.0], [0] * 4, [0] * 4, [0] * 4]),
                            header=nib_img.header)
    moved.file_map = nib_img.file_map
    img = proxylib.from_nibabel(moved)
    np.testing.assert_array_equal(img.affine, moved.affine)
    np.testing.assert_array_equal(img.get_fdata(), nib_img.get_fdata())


@pytest.mark.parametrize("klass", [nib.Nifti1Image, nib.Nifti2Image, nib.Nifti1Pair])
def test_from_nibabel_wraps_an_array_without_a_copy(klass):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    nib_img = klass(data, AFFINE)
    nib_img.header["descrip"] = b"in memory"
    img = proxylib.from_nibabel(nib_img)
    assert img.dataobj is data
    np.testing.assert_array_equal(img.affine, AFFINE)
    assert img.header["descrip"].item() == b"in memory"
    assert img.header.version == (2 if klass is nib.Nifti2Image else 1)


def test_from_nibabel_refuses_what_it_cannot_convert(tmp_path):
    with pytest.raises(proxylib.UnsupportedImageError, match="nibabel images"):
        proxylib.from_nibabel(np.zeros((2, 2)))
    mgh = nib.MGHImage(np.zeros((2, 3, 4), np.float32), np.eye(4))
    with pytest.raises(proxylib.UnsupportedImageError, match="save it"):
        proxylib.from_nibabel(mgh)
    path = tmp_path / "a.nii"
    _write(path)
    with open(path, "rb") as handle:
        from_fileobj = nib.Nifti1Image.from_file_map(
            {"image": nib.FileHolder(fileobj=handle), "header": nib.FileHolder(fileobj=handle)})
        with pytest.raises(proxylib.UnsupportedImageError, match="not a named file"):
            proxylib.from_nibabel(from_fileobj)
    with pytest.raises(TypeError):  # also a ProxyError
        proxylib.from_nibabel("a.nii")


@pytest.mark.parametrize("version", [1, 2])
def test_headers_convert_both_ways_without_loss(tmp_path, version):
    path = tmp_path / "a.nii"
    _write(path, version=version)
    header = proxylib.load(path).header
    as_nibabel = to_nibabel_header(header)
    assert as_nibabel.binaryblock == header.binaryblock
    assert as_nibabel["descrip"].item() == b"interop test"
    assert as_nibabel.get_xyzt_units() == ("mm", "sec")
    assert as_nibabel.get_intent() == ("t test", (12.0,), "tmap")
    assert [e.get_code() for e in as_nibabel.extensions] == [6, 40]
    back = type(header).from_header(as_nibabel)
    assert back.binaryblock == header.binaryblock
    assert back.extensions == header.extensions


def test_proxylib_image_from_a_nibabel_header(tmp_path):
    nib_header = nib.Nifti1Header()
    nib_header["descrip"] = b"from nibabel"
    nib_header.set_xyzt_units("mm", "msec")
    nib_header.set_intent("z score")
    nib_header.extensions.append(nib.nifti1.Nifti1Extension(6, b"kept"))
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    img = proxylib.Nifti1Image(data, AFFINE, header=nib_header)
    assert img.header["descrip"].item() == b"from nibabel"
    assert img.header["xyzt_units"] == nib_header["xyzt_units"]
    assert img.header["intent_code"] == nib_header["intent_code"]
    proxylib.save(img, tmp_path / "out.nii")
    written = nib.load(str(tmp_path / "out.nii"))
    assert written.header.get_xyzt_units() == ("mm", "msec")
    assert written.header.get_intent()[0] == "z score"
    assert [(e.get_code(), e.get_content()) for e in written.header.extensions] == [
        (6, b"kept")]
    np.testing.assert_array_equal(written.get_fdata(), data)
    np.testing.assert_array_equal(written.affine, AFFINE)


def test_from_nibabel_of_a_gzipped_pair(tmp_path):
    path = tmp_path / "p.hdr"
    _write(path)
    for suffix in (".hdr", ".img"):
        with open(tmp_path / f"p{suffix}", "rb") as src, \
                gzip.open(tmp_path / f"z{suffix}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    nib_img = nib.load(str(tmp_path / "z.img.gz"))
    img = proxylib.from_nibabel(nib_img)
    np.testing.assert_array_equal(img.get_fdata(), nib_img.get_fdata())


@pytest.mark.parametrize("name", ["a.mgz", "a.mgh"])
def test_from_nibabel_of_a_file_backed_mgh_image(tmp_path, name):
    data = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2)
    nib.save(nib.MGHImage(data, AFFINE), str(tmp_path / name))
    nib_img = nib.load(str(tmp_path / name))
    img = proxylib.from_nibabel(nib_img)
    assert isinstance(img, proxylib.MGHImage)
    np.testing.assert_array_equal(img.get_fdata(), nib_img.get_fdata())
    np.testing.assert_allclose(img.affine, nib_img.affine, atol=1e-5)
