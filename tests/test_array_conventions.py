"""nbytes, len(), vindex and image reprs: what numpy, zarr and h5py users expect."""

import numpy as np
import pytest

import proxylib
from proxylib.images import DataobjImage


@pytest.fixture
def proxy(tmp_path):
    path = tmp_path / "a.raw"
    stored = np.arange(3 * 4 * 5, dtype="<i2").reshape(3, 4, 5, order="F")
    path.write_bytes(stored.tobytes(order="F"))
    return proxylib.ArrayProxy(path, ((3, 4, 5), "<i2", 0, 0.5, 0.0)), stored * 0.5


def test_nbytes_is_the_result_size(proxy):
    proxy, expected = proxy
    assert proxy.nbytes == expected.nbytes == 3 * 4 * 5 * 8
    assert proxy.unscaled().nbytes == 3 * 4 * 5 * 2


def test_len_is_the_first_axis(proxy, tmp_path):
    proxy, expected = proxy
    assert len(proxy) == len(expected) == 3
    scalar_path = tmp_path / "s.raw"
    scalar_path.write_bytes(b"\x01\x00")
    scalar = proxylib.ArrayProxy(scalar_path, ((), "<i2"))
    with pytest.raises(TypeError, match="unsized"):
        len(scalar)
    with pytest.raises(TypeError, match="unsized"):
        len(np.asarray(scalar))


@pytest.mark.parametrize("key", [
    ([0, 2], [1, 3]),
    ([[0, 1], [2, 2]], slice(None), [4, 0]),
    (slice(1, 3), [0, 3], [1, 2]),
    (np.ones((3, 4), bool),),
    (1, [3, 0, 3]),
])
def test_vindex_is_numpys_vectorized_indexing(proxy, key):
    proxy, expected = proxy
    np.testing.assert_array_equal(proxy.vindex[key], expected[key])
    assert proxy.vindex[key].shape == expected[key].shape
    assert "vindex" in repr(proxy.vindex)


def test_vindex_raises_numpys_errors(proxy):
    proxy, expected = proxy
    with pytest.raises(IndexError):
        expected[[0, 5]]
    with pytest.raises(IndexError):
        proxy.vindex[[0, 5]]


def test_image_reprs_name_shape_dtype_and_file(tmp_path):
    data = np.zeros((2, 3, 4), np.int16)
    img = proxylib.Nifti1Image(data, np.eye(4))
    proxylib.save(img, tmp_path / "a.nii")
    loaded = proxylib.load(tmp_path / "a.nii")
    text = repr(loaded)
    assert text.startswith("Nifti1Image(") and "(2, 3, 4)" in text and "a.nii" in text
    plain = DataobjImage(data)
    assert repr(plain) == ("DataobjImage(shape=(2, 3, 4), dtype=int16, ndarray data, "
                           "file=None)")
