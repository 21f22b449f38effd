"""The ArrayProxy contract: construction, attributes, dtype rules, copies, pickling, handles."""

import copy
import io
import os
import pickle
import threading

import numpy as np
import pytest

import proxylib
import proxylib.arrayproxy as arrayproxy_module
from proxylib import ArrayProxy, ArraySpec, is_proxy
from proxylib.indexing.plan import CostModel


@pytest.fixture
def stored():
    rng = np.random.default_rng(0)
    return rng.integers(-1000, 1000, size=(4, 5, 6, 3)).astype("<i2")


def write(path, array, offset=0, order="F"):
    with open(path, "wb") as handle:
        handle.write(b"\0" * offset + array.tobytes(order=order))
    return str(path)


@pytest.fixture
def path(tmp_path, stored):
    return write(tmp_path / "data.bin", stored, offset=16)


class Header:
    def __init__(self, shape, dtype, offset, slope, inter):
        self.values = [shape, dtype, offset, (slope, inter)]

    def get_data_shape(self):
        return self.values[0]

    def get_data_dtype(self):
        return self.values[1]

    def get_data_offset(self):
        return self.values[2]

    def get_slope_inter(self):
        return self.values[3]


def test_attributes(path, stored):
    proxy = ArrayProxy(path, (stored.shape, stored.dtype, 16))
    assert proxy.shape == stored.shape and proxy.ndim == 4 and proxy.size == stored.size
    assert proxy.order == "F" and proxy.offset == 16
    assert proxy.slope == 1.0 and proxy.inter == 0.0
    assert proxy.file_like == path and proxy.is_proxy is True and is_proxy(proxy)
    assert not is_proxy(stored) and not is_proxy(object())
    assert proxy.storage_dtype == np.dtype("<i2") and proxy.dtype == np.dtype("i2")
    np.testing.assert_array_equal(proxy[...], stored)


def test_header_spec_is_read_once(path, stored):
    header = Header(stored.shape, stored.dtype, 16, None, None)
    proxy = ArrayProxy(path, header)
    header.values = [(1,), np.float64, 0, (2.0, 3.0)]
    assert proxy.shape == stored.shape and proxy.slope == 1.0 and proxy.inter == 0.0
    np.testing.assert_array_equal(proxy[1], stored[1])


@pytest.mark.parametrize("spec", [None, 3, "spec", [(2, 2), np.int8], ((2,),)])
def test_bad_spec_type(path, spec):
    with pytest.raises(TypeError, match="spec must be|spec tuple"):
        ArrayProxy(path, spec)


@pytest.mark.parametrize("spec", [((2, -1), np.int8), ((2,), object), ((2,), np.int8, -1),
                                  ((2,), np.int8, 0, float("nan")), ((2.5,), np.int8)])
def test_bad_spec_values(path, spec):
    with pytest.raises(ValueError):
        ArrayProxy(path, spec)


@pytest.mark.parametrize("mmap", [None, "w+", "x", 1, 0])
def test_bad_mmap(path, mmap):
    with pytest.raises(ValueError, match="mmap"):
        ArrayProxy(path, ((2,), np.int8), mmap=mmap)


def test_bad_order(path):
    with pytest.raises(ValueError, match="order"):
        ArrayProxy(path, ((2,), np.int8), order="A")


def test_keep_file_open_default(path, monkeypatch):
    assert ArrayProxy(path, ((2,), np.int8)).keep_file_open is False
    monkeypatch.setattr(arrayproxy_module, "KEEP_FILE_OPEN_DEFAULT", True)
    assert ArrayProxy(path, ((2,), np.int8)).keep_file_open is True
    monkeypatch.setattr(arrayproxy_module, "KEEP_FILE_OPEN_DEFAULT", "auto")
    with pytest.raises(ValueError, match="KEEP_FILE_OPEN_DEFAULT"):
        ArrayProxy(path, ((2,), np.int8))
    with pytest.raises(ValueError, match="keep_file_open"):
        ArrayProxy(path, ((2,), np.int8), keep_file_open="yes")


def test_default_order_subclass(tmp_path, stored):
    class CProxy(ArrayProxy):
        _default_order = "C"

    path = write(tmp_path / "c.bin", stored, order="C")
    proxy = CProxy(path, (stored.shape, stored.dtype))
    assert proxy.order == "C"
    np.testing.assert_array_equal(proxy[:, 2], stored[:, 2])
    assert CProxy(path, (stored.shape, stored.dtype), order="F").order == "F"


@pytest.mark.parametrize("storage, slope, inter, expected", [
    ("<i2", 1.0, 0.0, "i2"),
    (">i2", 1, 0, "i2"),
    (">f4", 1.0, 0.0, "f4"),
    ("<i2", np.float32(2), 0.0, "f4"),
    ("<i2", np.float32(2), np.float32(1), "f4"),
    ("<i2", 2.0, 0.0, "f8"),
    ("<i2", np.float32(2), 1.0, "f8"),
    ("<i2", 2, 0, "i8"),
    ("<u1", 1.0, np.float32(3), "f4"),
    ("<c8", np.float32(2), 0.0, "c8"),
])
def test_output_dtype_rule(tmp_path, storage, slope, inter, expected):
    stored = np.arange(24, dtype=storage).reshape(2, 3, 4)
    path = write(tmp_path / "d.bin", stored)
    proxy = ArrayProxy(path, (stored.shape, storage, 0, slope, inter))
    assert proxy.dtype == np.dtype(expected)
    assert proxy[0].dtype == proxy.dtype and proxy[...].dtype == proxy.dtype
    assert np.asarray(proxy).dtype == proxy.dtype
    assert proxy.storage_dtype == np.dtype(storage)


def test_scaling_values(tmp_path):
    stored = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    path = write(tmp_path / "d.bin", stored)
    proxy = ArrayProxy(path, (stored.shape, stored.dtype, 0, np.float32(0.5), np.float32(-1)))
    expected = stored.astype(np.float32) * np.float32(0.5) + np.float32(-1)
    np.testing.assert_array_equal(proxy[...], expected)
    as64 = np.asarray(proxy, dtype=np.float64)
    assert as64.dtype == np.float64
    np.testing.assert_array_equal(as64, stored.astype(np.float64) * 0.5 - 1)
    np.testing.assert_array_equal(proxy.get_unscaled(), stored)


def test_full_read_memmap(path, stored):
    for mode, expected_mode in [(True, "c"), ("c", "c"), ("r", "r")]:
        proxy = ArrayProxy(path, (stored.shape, stored.dtype, 16), mmap=mode)
        full = np.asanyarray(proxy)
        assert isinstance(full, np.memmap) and full.mode == expected_mode
        assert np.shares_memory(np.asarray(proxy, copy=False), np.asarray(proxy, copy=False)) \
            is False  # each full read maps afresh
        np.testing.assert_array_equal(full, stored)
        assert isinstance(proxy.get_unscaled(), np.memmap)
        assert np.asarray(proxy, copy=False) is not None
        copied = np.array(proxy, copy=True)
        assert not isinstance(copied, np.memmap)
    writable = np.asanyarray(ArrayProxy(path, (stored.shape, stored.dtype, 16), mmap="c"))
    writable[0, 0, 0, 0] = 12345  # copy-on-write: the file keeps its value
    np.testing.assert_array_equal(ArrayProxy(path, (stored.shape, stored.dtype, 16))[0, 0, 0],
                                  stored[0, 0, 0])
    readonly = np.asanyarray(ArrayProxy(path, (stored.shape, stored.dtype, 16), mmap="r"))
    with pytest.raises(ValueError):
        readonly[0, 0, 0, 0] = 1


def test_no_memmap_when_not_zero_copy(tmp_path, path, stored):
    cases = [
        ArrayProxy(path, (stored.shape, stored.dtype, 16), mmap=False),
        ArrayProxy(path, (stored.shape, stored.dtype, 16, 2.0, 0.0)),
        ArrayProxy(write(tmp_path / "be.bin", stored.astype(">i2")), (stored.shape, ">i2")),
        ArrayProxy(io.BytesIO(open(path, "rb").read()), (stored.shape, stored.dtype, 16)),
    ]
    for proxy in cases:
        full = np.asanyarray(proxy)
        assert not isinstance(full, np.memmap)
        with pytest.raises(ValueError, match="without a copy"):
            np.asarray(proxy, copy=False)
    proxy = ArrayProxy(path, (stored.shape, stored.dtype, 16))
    with pytest.raises(ValueError, match="without a copy"):
        np.asarray(proxy, dtype=np.float32, copy=False)


def test_slices_are_fresh_arrays(path, stored):
    for mmap in (True, "r", False):
        for keep in (True, False):
            with ArrayProxy(path, (stored.shape, stored.dtype, 16), mmap=mmap,
                            keep_file_open=keep) as proxy:
                for key in [(Ellipsis, 1), (slice(None), 2), (1, 2, 3), np.s_[::2, ::-1]]:
                    result = proxy[key]
                    assert not isinstance(result, np.memmap)
                    base = result.base if isinstance(result, np.ndarray) else None
                    while isinstance(base, np.ndarray):
                        assert not isinstance(base, np.memmap)
                        base = base.base
                    assert base is None or isinstance(base, (bytes, bytearray)) is False
                    if isinstance(result, np.ndarray):
                        assert result.dtype.isnative and result.flags.writeable


def test_scalar_and_zero_d_results(path, stored):
    proxy = ArrayProxy(path, (stored.shape, stored.dtype, 16))
    assert type(proxy[1, 2, 3, 0]) is np.int16 and proxy[1, 2, 3, 0] == stored[1, 2, 3, 0]
    zero_d = proxy[1, 2, 3, 0, ...]
    assert isinstance(zero_d, np.ndarray) and zero_d.shape == ()


@pytest.mark.parametrize("key, message", [
    ((4,), "index 4 is out of bounds for axis 0 with size 4"),
    ((0, -6), "index -6 is out of bounds for axis 1 with size 5"),
    ((0, 0, 0, 0, 0), "too many indices for array: array is 4-dimensional, but 5 were indexed"),
    ((Ellipsis, 0, Ellipsis), "an index can only have a single ellipsis"),
    ((1.5,), "only integers, slices"),
    (("a",), "only integers, slices"),
])
def test_bad_keys_raise_index_error(path, stored, key, message):
    proxy = ArrayProxy(path, (stored.shape, stored.dtype, 16))
    with pytest.raises(IndexError, match=message.replace("(", r"\(").replace(")", r"\)")):
        proxy[key]
    with pytest.raises(IndexError):
        stored[key]


def test_zero_step_and_bad_slice_bounds(path, stored):
    proxy = ArrayProxy(path, (stored.shape, stored.dtype, 16))
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        proxy[::0]
    with pytest.raises(TypeError, match="slice indices"):
        proxy[1.5:]


def test_reshape_keeps_settings(tmp_path, stored):
    path = write(tmp_path / "r.bin", stored, offset=8)
    proxy = ArrayProxy(path, (stored.shape, ">i2" if False else stored.dtype, 8, 2.0, 1.0),
                       mmap="r", keep_file_open=True)
    reshaped = proxy.reshape((4, 5, -1))
    assert reshaped.shape == (4, 5, 18)
    assert (reshaped.order, reshaped.mmap, reshaped.keep_file_open) == ("F", "r", True)
    assert (reshaped.slope, reshaped.inter, reshaped.offset) == (2.0, 1.0, 8)
    expected = (stored.astype(np.float64) * 2 + 1).reshape((4, 5, 18), order="F")
    np.testing.assert_array_equal(reshaped[...], expected)
    np.testing.assert_array_equal(proxy.reshape(-1)[...], expected.reshape(-1, order="F"))
    with pytest.raises(ValueError):
        proxy.reshape((7, -1))
    with pytest.raises(ValueError):
        proxy.reshape((3, 3))
    with pytest.raises(ValueError):
        proxy.reshape((-1, -1))
    c_path = write(tmp_path / "c.bin", stored, order="C")
    c_proxy = ArrayProxy(c_path, (stored.shape, stored.dtype), order="C")
    np.testing.assert_array_equal(c_proxy.reshape((20, 18))[...], stored.reshape(20, 18))
    proxy.close()


def test_copy_keeps_settings_and_shares_lock(path, stored):
    fileobj = io.BytesIO(open(path, "rb").read())
    proxy = ArrayProxy(fileobj, (stored.shape, stored.dtype, 16, 3, 0), order="F", mmap=False)
    twin = proxy.copy()
    assert twin is not proxy and twin.file_like is fileobj
    assert twin._opener.lock is proxy._opener.lock
    assert (twin.mmap, twin.order, twin.slope, twin.dtype) == (False, "F", 3, np.dtype("i8"))
    np.testing.assert_array_equal(twin[2], stored[2].astype(np.int64) * 3)
    # a second proxy on the same object shares the same lock too
    other = ArrayProxy(fileobj, (stored.shape, stored.dtype, 16))
    assert other._opener.lock is proxy._opener.lock


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("source", ["path", "bytesio"])
def test_pickle_and_deepcopy_in_every_state(path, stored, keep, source):
    target = path if source == "path" else io.BytesIO(open(path, "rb").read())
    proxy = ArrayProxy(target, (stored.shape, stored.dtype, 16, 0.5, 2.0), keep_file_open=keep)
    states = []
    for _ in range(2):
        states.append(pickle.loads(pickle.dumps(proxy)))
        states.append(copy.deepcopy(proxy))
        proxy[0]  # now after a read (and with a kept handle when keep=True)
    expected = stored.astype(np.float64) * 0.5 + 2.0
    for clone in states:
        assert not clone._opener.is_open
        assert clone.keep_file_open is keep and clone.dtype == proxy.dtype
        np.testing.assert_array_equal(clone[1, ::2], expected[1, ::2])
        clone.close()
    if keep and source == "path":
        assert proxy._opener.is_open
    proxy.close()
    assert not proxy._opener.is_open


def open_descriptors():
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_handle_lifetime(path, stored):
    before = open_descriptors()
    proxy = ArrayProxy(path, (stored.shape, stored.dtype, 16), keep_file_open=False)
    for _ in range(50):
        proxy[1, :, 2]
    assert open_descriptors() == before
    kept = ArrayProxy(path, (stored.shape, stored.dtype, 16), keep_file_open=True)
    for _ in range(50):
        kept[1, :, 2]
        kept[..., 1]
    assert open_descriptors() == before + 1
    kept.close()
    assert open_descriptors() == before
    kept[0]  # re-opens on demand
    assert open_descriptors() == before + 1
    del kept
    import gc
    gc.collect()
    assert open_descriptors() == before
    with ArrayProxy(path, (stored.shape, stored.dtype, 16), keep_file_open=True) as scoped:
        scoped[0]
        assert open_descriptors() == before + 1
    assert open_descriptors() == before


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_first_access_from_many_threads_opens_one_handle(path, stored):
    before = open_descriptors()
    proxy = ArrayProxy(path, (stored.shape, stored.dtype, 16), keep_file_open=True)
    barrier = threading.Barrier(32)
    errors = []

    def first_read():
        barrier.wait()
        try:
            np.testing.assert_array_equal(proxy[..., 1], stored[..., 1])
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=first_read) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert open_descriptors() == before + 1
    proxy.close()


@pytest.mark.parametrize("source", ["path", "bytesio", "shared-fileobj"])
def test_threads_equal_serial(tmp_path, source):
    rng = np.random.default_rng(1)
    stored = rng.standard_normal((12, 11, 10, 9)).astype(">f4")
    path = write(tmp_path / "t.bin", stored, offset=5)
    spec = (stored.shape, stored.dtype, 5, np.float32(2), np.float32(1))
    small = CostModel(gap_threshold=16, block_size=512)
    if source == "path":
        proxies = [ArrayProxy(path, spec, keep_file_open=True, mmap=False, cost=small)]
    else:
        shared = io.BytesIO(open(path, "rb").read()) if source == "bytesio" else open(path, "rb")
        proxies = [ArrayProxy(shared, spec, cost=small), ArrayProxy(shared, spec, cost=small)]
    keys = [tuple(slice(int(a), int(b), int(s)) for a, b, s in zip(
        rng.integers(0, 4, 4), rng.integers(6, 13, 4), rng.integers(1, 3, 4))) for _ in range(60)]
    expected = [stored.astype(np.float32)[key] * np.float32(2) + np.float32(1) for key in keys]
    mismatches = []

    def worker(offset):
        for i in range(len(keys)):
            index = (i + offset) % len(keys)
            result = proxies[index % len(proxies)][keys[index]]
            if not np.array_equal(result, expected[index]):
                mismatches.append(index)

    threads = [threading.Thread(target=worker, args=(n * 7,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not mismatches
    for proxy in proxies:
        proxy.close()


def test_short_file_error_names_file_and_sizes(tmp_path, stored):
    path = write(tmp_path / "short.bin", stored)
    proxy = ArrayProxy(path, (stored.shape, stored.dtype, 100))
    with pytest.raises(proxylib.TruncatedFileError) as info:
        proxy[0]
    error = info.value
    assert isinstance(error, OSError) and isinstance(error, proxylib.ProxyError)
    assert "short.bin" in str(error)
    assert error.expected == 100 + stored.nbytes and error.found == stored.nbytes
    assert error.path == path
    short = io.BytesIO(stored.tobytes()[:-10])
    with pytest.raises(proxylib.TruncatedFileError, match="needed"):
        ArrayProxy(short, (stored.shape, stored.dtype))[...]


def test_missing_file_error(tmp_path):
    proxy = ArrayProxy(str(tmp_path / "nope.bin"), ((2,), np.int8))
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        proxy[0]
    with pytest.raises(proxylib.ProxyReadError):
        proxy[0]


def test_changed_file_is_detected(tmp_path, stored):
    path = write(tmp_path / "c.bin", stored)
    proxy = ArrayProxy(path, (stored.shape, stored.dtype))
    proxy[0]
    write(tmp_path / "c.bin", np.concatenate([stored, stored]))
    with pytest.raises(proxylib.FileChangedError, match="changed"):
        proxy[0]


def test_arrayspec_roundtrip(path, stored):
    spec = ArraySpec(stored.shape, stored.dtype, 16, "C")
    proxy = ArrayProxy(path, spec)
    assert proxy.order == "C" and proxy.spec == spec
    assert ArrayProxy(path, spec, order="F").order == "F"
