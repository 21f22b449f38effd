"""to_dask over proxies proxylib did not make: nibabel's, and a minimal duck proxy."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
nib = pytest.importorskip("nibabel")

import proxylib  # noqa: E402
from proxylib.daskarray import returned_dtype  # noqa: E402


@pytest.fixture
def scaled_nifti(tmp_path):
    stored = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(2, 3, 4, 5)
    img = nib.Nifti1Image(stored, np.eye(4))
    img.header.set_slope_inter(0.5, 1.0)
    path = tmp_path / "scaled.nii"
    nib.save(img, str(path))
    return path


def test_nibabel_proxy_gives_the_dtype_and_values_nibabel_reads(scaled_nifti):
    proxy = nib.load(str(scaled_nifti)).dataobj
    expected = np.asarray(proxy)
    assert proxy.dtype == np.int16 and expected.dtype == np.float64  # nibabel's meaning
    array = proxylib.to_dask(proxy)
    assert array.dtype == expected.dtype
    assert array.chunks == ((2,), (3,), (4,), (5,))  # nibabel's .order 'F': whole volumes
    computed = array.compute()
    assert computed.dtype == expected.dtype
    np.testing.assert_array_equal(computed, expected)
    assert float(array.sum().compute()) == float(expected.sum())
    np.testing.assert_array_equal(proxylib.to_dask(nib.load(str(scaled_nifti))).compute(),
                                  expected)


def test_nibabel_proxy_names_are_deterministic_and_follow_the_file(scaled_nifti):
    first = proxylib.to_dask(nib.load(str(scaled_nifti)).dataobj)
    again = proxylib.to_dask(nib.load(str(scaled_nifti)).dataobj)
    assert first.name == again.name
    img = nib.load(str(scaled_nifti))
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.int16), np.eye(4)), str(scaled_nifti))
    assert proxylib.to_dask(nib.load(str(scaled_nifti)).dataobj).name != first.name


class DuckProxy:
    """A proxy with only what is_proxy needs: no order, no storage_dtype."""

    is_proxy = True

    def __init__(self, array):
        self._array = array
        self.shape = array.shape
        self.dtype = np.dtype(np.uint8)  # deliberately not what reads return
        self.reads = []

    def __getitem__(self, key):
        self.reads.append(key)
        return self._array[key] * 1.5


def test_a_proxy_without_order_is_chunked_in_c_order():
    data = np.arange(60, dtype=np.int32).reshape(3, 4, 5)
    duck = DuckProxy(data)
    array = proxylib.to_dask(duck, limit=5 * 4 * 8)
    assert array.dtype == np.float64
    assert array.chunks == ((1, 1, 1), (4,), (5,))
    assert all(np.prod([s.stop - s.start for s in key]) == 0 for key in duck.reads)
    np.testing.assert_array_equal(array.compute(), data * 1.5)
    assert returned_dtype(duck) == np.float64


def test_proxylib_proxy_dtype_is_taken_without_a_read(tmp_path):
    path = tmp_path / "a.raw"
    np.arange(24, dtype="<i2").tofile(path)
    proxy = proxylib.ArrayProxy(path, ((2, 3, 4), "<i2", 0, 2.0, 0.0))

    def refuse(*args):
        raise AssertionError("read")
    proxy.__class__ = type("NoReads", (proxylib.ArrayProxy,), {"__getitem__": refuse})
    assert returned_dtype(proxy) == np.float64
