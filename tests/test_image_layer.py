"""Image-layer regressions of issue 13: proxy flag, in_memory, data objects without
dtype, file-name case, remembered names, and one byte stack for headers and data."""

import bz2
import gzip
import io
import os

import numpy as np
import pytest

import proxylib
from proxylib.images import FileBasedImage, FileHolder

nib = pytest.importorskip("nibabel")

DATA = np.arange(2 * 3 * 4 * 5, dtype="<i2").reshape(2, 3, 4, 5)
AFFINE = np.diag([2.0, 3.0, 4.0, 1.0])


def _image(data=DATA):
    return proxylib.Nifti1Image(data, AFFINE)


@pytest.fixture
def plain(tmp_path):
    path = str(tmp_path / "plain.nii")
    proxylib.save(_image(), path)
    return path


# -- the proxy flag and in_memory ----------------------------------------------------
def test_is_proxy_cannot_be_switched_off(plain):
    img = proxylib.load(plain)
    with pytest.raises(AttributeError):
        img.dataobj.is_proxy = False
    assert proxylib.is_proxy(img.dataobj) and not img.in_memory


class ArrayLike:
    """An object with shape and __array__ and nothing else (no dtype)."""

    shape = DATA.shape

    def __array__(self, dtype=None, copy=None):
        return DATA.astype(dtype) if dtype is not None else DATA.copy()


def test_dataobj_without_dtype_builds_and_saves(tmp_path):
    img = proxylib.Nifti1Image(ArrayLike(), AFFINE)
    assert img.shape == DATA.shape and not img.in_memory
    np.testing.assert_array_equal(img.get_fdata(), DATA)
    path = str(tmp_path / "nodtype.nii")
    proxylib.save(img, path)
    np.testing.assert_array_equal(np.asarray(nib.load(path).dataobj), DATA)


def test_in_memory_follows_the_documented_rule():
    assert _image().in_memory  # an ndarray
    da = pytest.importorskip("dask.array")
    lazy = proxylib.Nifti1Image(da.from_array(DATA.astype("f4"), chunks=2), AFFINE)
    assert not lazy.in_memory  # nothing read yet
    lazy.get_fdata()
    assert lazy.in_memory
    lazy.uncache()
    assert not lazy.in_memory
    # nibabel, the reference, agrees on the same objects
    assert not nib.Nifti1Image(da.from_array(DATA.astype("f4"), chunks=2), AFFINE).in_memory
    assert nib.Nifti1Image(DATA, AFFINE).in_memory


# -- file-name case --------------------------------------------------------------------
def test_upper_case_single_file_keeps_its_name(tmp_path):
    proxylib.save(_image(), str(tmp_path / "OUT.NII"))
    assert os.listdir(tmp_path) == ["OUT.NII"]
    with open(tmp_path / "OUT.NII", "rb") as handle:
        assert handle.read(2) != b"\x1f\x8b"
    np.testing.assert_array_equal(np.asarray(nib.load(str(tmp_path / "OUT.NII")).dataobj), DATA)


def test_upper_case_gz_is_compressed(tmp_path):
    img = _image()
    proxylib.save(img, str(tmp_path / "X.NII.GZ"))
    assert os.listdir(tmp_path) == ["X.NII.GZ"]
    with open(tmp_path / "X.NII.GZ", "rb") as handle:
        assert handle.read(2) == b"\x1f\x8b"
    with gzip.open(tmp_path / "X.NII.GZ") as handle:  # the standard library agrees
        assert len(handle.read()) == 352 + DATA.nbytes
    np.testing.assert_array_equal(np.asarray(proxylib.load(str(tmp_path / "X.NII.GZ"))
                                             .dataobj), DATA)
    assert img.get_filename() == str(tmp_path / "X.NII.GZ")


def test_upper_case_pair_written_and_found(tmp_path):
    proxylib.save(_image(), str(tmp_path / "PAIR.HDR"))
    assert sorted(os.listdir(tmp_path)) == ["PAIR.HDR", "PAIR.IMG"]
    for name in ("PAIR.HDR", "PAIR.IMG"):
        np.testing.assert_array_equal(
            np.asarray(proxylib.load(str(tmp_path / name)).dataobj), DATA)


def test_upper_case_pair_written_by_nibabel_loads(tmp_path):
    nib.Nifti1Pair(DATA, AFFINE).to_filename(str(tmp_path / "NB.HDR"))
    assert sorted(os.listdir(tmp_path)) == ["NB.HDR", "NB.IMG"]
    img = proxylib.load(str(tmp_path / "NB.HDR"))
    np.testing.assert_array_equal(np.asarray(img.dataobj), DATA)
    assert img.dataobj.file_like.endswith("NB.IMG")


def test_mixed_case_extensions_pair_in_lower_case(tmp_path):
    proxylib.save(_image(), str(tmp_path / "Mixed.Hdr"))
    assert sorted(os.listdir(tmp_path)) == ["Mixed.Hdr", "Mixed.img"]


# -- remembered names and valid extensions ------------------------------------------------
class TwoExtensionImage(FileBasedImage):
    files_types = (("image", ".foo"),)
    valid_exts = (".foo", ".bar")

    def to_file_map(self, file_map=None):
        holder = (file_map or self.file_map)["image"]
        with holder.open_for_write() as out:
            out.write(b"payload")


def test_to_filename_remembers_the_names(tmp_path):
    img = TwoExtensionImage()
    img.to_filename(str(tmp_path / "a.foo"))
    assert img.get_filename() == str(tmp_path / "a.foo")


def test_every_valid_extension_is_accepted(tmp_path):
    img = TwoExtensionImage()
    img.to_filename(str(tmp_path / "b.BAR"))
    assert img.get_filename() == str(tmp_path / "b.BAR")
    assert (tmp_path / "b.BAR").read_bytes() == b"payload"
    with pytest.raises(proxylib.ImageFileError, match=r"'\.bar', '\.foo'.*not '\.baz'"):
        img.to_filename(str(tmp_path / "c.baz"))


def test_nifti_save_remembers_the_names(tmp_path):
    img = _image()
    proxylib.save(img, str(tmp_path / "n.hdr"))
    assert img.get_filename() == str(tmp_path / "n.img")
    assert img.file_map["header"].filename == str(tmp_path / "n.hdr")


# -- one byte stack ----------------------------------------------------------------------
def test_bz2_file_loads_like_the_proxy_reads_it(plain, tmp_path):
    path = str(tmp_path / "a.nii.bz2")
    with open(plain, "rb") as source, open(path, "wb") as out:
        out.write(bz2.compress(source.read()))
    img = proxylib.load(path)
    np.testing.assert_array_equal(np.asarray(img.dataobj), DATA)
    np.testing.assert_array_equal(img.affine, nib.load(plain).affine)


def test_zstd_file_loads(plain, tmp_path):
    zstandard = pytest.importorskip("zstandard")
    path = str(tmp_path / "a.nii.zst")
    with open(plain, "rb") as source, open(path, "wb") as out:
        out.write(zstandard.ZstdCompressor().compress(source.read()))
    np.testing.assert_array_equal(np.asarray(proxylib.load(path).dataobj[..., 2]),
                                  DATA[..., 2])


def test_damaged_bz2_header_is_a_proxylib_error(plain, tmp_path):
    path = str(tmp_path / "bad.nii.bz2")
    with open(plain, "rb") as source:
        packed = bytearray(bz2.compress(source.read()))
    packed[20:40] = bytes(20)
    with open(path, "wb") as out:
        out.write(packed)
    with pytest.raises(proxylib.ProxyReadError, match="bad.nii.bz2"):
        proxylib.load(path)


def _from_fileobj(fileobj):
    return proxylib.Nifti1Image.from_file_map({"header": FileHolder(fileobj=fileobj),
                                               "image": FileHolder(fileobj=fileobj)})


def test_gzip_stream_as_file_object_is_decompressed(plain, tmp_path):
    path = tmp_path / "a.nii.gz"
    with open(plain, "rb") as source:
        path.write_bytes(gzip.compress(source.read()))
    with open(path, "rb") as raw:
        img = _from_fileobj(raw)
        np.testing.assert_array_equal(np.asarray(img.dataobj[..., 1]), DATA[..., 1])
    memory = io.BytesIO(path.read_bytes())
    np.testing.assert_array_equal(np.asarray(_from_fileobj(memory).dataobj), DATA)


def test_compressed_file_object_at_an_offset_is_refused(plain):
    with open(plain, "rb") as source:
        memory = io.BytesIO(b"junk" + gzip.compress(source.read()))
    holder = FileHolder(fileobj=memory, pos=4)
    with pytest.raises(proxylib.ImageFileError, match="gzip-compressed"):
        proxylib.Nifti1Image.from_file_map({"header": holder, "image": holder})


def test_missing_pair_data_file_named(tmp_path):
    proxylib.save(_image(), str(tmp_path / "p.hdr"))
    os.unlink(tmp_path / "p.img")
    with pytest.raises(proxylib.MissingFileError, match="p.img"):
        proxylib.Nifti1Image.from_filename(str(tmp_path / "p.hdr"))


# -- file objects and URLs through the same sniffer ---------------------------------------
def _gzipped(plain, tmp_path):
    path = tmp_path / "a.nii.gz"
    with open(plain, "rb") as source:
        path.write_bytes(gzip.compress(source.read()))
    return path


@pytest.mark.parametrize("opener", ["file", "bytesio"])
def test_proxy_refuses_a_file_object_of_compressed_bytes(plain, tmp_path, opener):
    path = _gzipped(plain, tmp_path)
    spec = (DATA.shape, DATA.dtype, 352)
    fileobj = open(path, "rb") if opener == "file" else io.BytesIO(path.read_bytes())
    with fileobj:
        fileobj.seek(7)
        with pytest.raises(proxylib.ProxyReadError, match="gzip-compressed"):
            proxylib.ArrayProxy(fileobj, spec)
        assert fileobj.tell() == 7  # the sniff put the position back
        fileobj.seek(0)
        with gzip.GzipFile(fileobj=fileobj) as unzipped:  # decompressed: accepted
            np.testing.assert_array_equal(np.asarray(proxylib.ArrayProxy(unzipped, spec)),
                                          DATA)


def test_proxy_of_a_bz2_path_and_header_agree(plain, tmp_path):
    path = str(tmp_path / "b.nii.bz2")
    with open(plain, "rb") as source, open(path, "wb") as out:
        out.write(bz2.compress(source.read()))
    proxy = proxylib.ArrayProxy(path, proxylib.load(path).header)
    np.testing.assert_array_equal(np.asarray(proxy), DATA)


@pytest.fixture
def memory_fs():
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    made = []
    yield fs, made
    for name in made:
        fs.rm(name)


@pytest.mark.parametrize("codec", ["bz2", "gzip", None])
def test_url_of_a_compressed_file_loads(plain, memory_fs, codec):
    fs, made = memory_fs
    with open(plain, "rb") as source:
        raw = source.read()
    packed = {"bz2": bz2.compress, "gzip": gzip.compress, None: bytes}[codec](raw)
    name = f"/i13/a.nii{'.' + codec if codec else ''}"
    fs.pipe(name, packed)
    made.append(name)
    img = proxylib.load("memory://" + name.lstrip("/"))
    np.testing.assert_array_equal(np.asarray(img.dataobj[..., 3]), DATA[..., 3])


def test_upper_case_pair_url_finds_its_image(tmp_path, memory_fs):
    fs, made = memory_fs
    proxylib.save(_image(), str(tmp_path / "P.HDR"))
    for name in ("P.HDR", "P.IMG"):
        fs.pipe(f"/i13/{name}", (tmp_path / name).read_bytes())
        made.append(f"/i13/{name}")
    img = proxylib.load("memory://i13/P.HDR")
    np.testing.assert_array_equal(np.asarray(img.dataobj), DATA)


def _image_classes(cls=FileBasedImage):
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("proxylib."):
            yield sub
        yield from _image_classes(sub)


@pytest.mark.parametrize("image_class", sorted(set(_image_classes()), key=lambda c: c.__name__),
                         ids=lambda c: c.__name__)
def test_no_valid_extension_is_refused(image_class):
    """Every extension a class lists in valid_exts names a file map, in either case."""
    for ext in image_class.valid_exts:
        for name in ("x" + ext.lower(), "X" + ext.upper()):
            file_map = image_class.filespec_to_file_map(name)
            assert name in [holder.filename for holder in file_map.values()]


# -- file-name rules as properties ------------------------------------------------------
from hypothesis import given, strategies as st  # noqa: E402

_cases = st.lists(st.booleans(), min_size=4, max_size=4)


def _recase(text, uppers):
    return "".join(c.upper() if up else c.lower() for c, up in zip(text, uppers))


@given(base=st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
                    min_size=0, max_size=20),
       ext=st.sampled_from([".nii", ".hdr", ".img"]), ext_case=_cases,
       gz=st.sampled_from(["", ".gz", ".GZ", ".Gz"]))
def test_nifti_names_keep_the_given_name_and_case(base, ext, ext_case, gz):
    given_ext = _recase(ext, ext_case)
    name = base + given_ext + gz
    file_map = proxylib.Nifti1Image.filespec_to_file_map(name)
    names = {kind: holder.filename for kind, holder in file_map.items()}
    assert name in names.values()  # the given name, exactly
    for other in names.values():  # siblings: same base and compression suffix as written
        assert other.startswith(base) and other.endswith(gz)
        sibling_ext = other[len(base):len(other) - len(gz)]
        assert sibling_ext.lower() in (".nii", ".hdr", ".img")
        if given_ext.isupper() or other == name:
            assert sibling_ext == (sibling_ext.upper() if given_ext.isupper() else given_ext)
        else:
            assert sibling_ext == sibling_ext.lower()


@pytest.mark.parametrize("name", ["..nii", ".nii", "dir/.hdr"])
def test_dot_names_with_a_nifti_extension_are_accepted(tmp_path, name):
    """nibabel accepts them; they were refused with "NIfTI file names end in .nii"."""
    (tmp_path / "dir").mkdir()
    path = str(tmp_path / name)
    img = _image()
    proxylib.save(img, path)
    assert img.get_filename().endswith(name.replace(".hdr", ".img"))
    np.testing.assert_array_equal(np.asarray(proxylib.load(path).dataobj), DATA)
