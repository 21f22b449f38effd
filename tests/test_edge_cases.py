"""Edge cases found in review: each once gave wrong data, a hang or a foreign exception."""

import io
import multiprocessing
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import proxylib
from proxylib import ArrayProxy
from proxylib.indexing.plan import CostModel


@pytest.fixture
def small():
    data = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    return ArrayProxy(io.BytesIO(data.tobytes()), (data.shape, data.dtype), order="C"), data


@pytest.mark.parametrize("key", [np.int64(1), (0, np.uint64(2)), (np.int8(-1), Ellipsis),
                                 np.array(1), (slice(None), np.intp(1), np.int16(3))])
def test_numpy_integer_scalars_index_like_ints(small, key):
    proxy, data = small
    np.testing.assert_array_equal(proxy[key], data[key])
    np.testing.assert_array_equal(proxy.oindex[key], data[key])


def test_huge_numpy_integer_is_an_index_error(small):
    proxy, _ = small
    with pytest.raises(IndexError, match="out of bounds"):
        proxy[np.int64(2**62)]


@pytest.mark.parametrize("key", [((0, 1),), range(2), (slice(None), range(1, 3)),
                                 (memoryview(np.array([1, 0], dtype=np.intp)),)])
def test_sequences_numpy_accepts(small, key):
    proxy, data = small
    np.testing.assert_array_equal(proxy[key], data[key])


@pytest.mark.parametrize("dtype", [
    np.dtype({"names": ["a", "b"], "formats": ["<i2", "<i4"], "offsets": [0, 4], "itemsize": 12}),
    np.dtype({"names": ["a", "b"], "formats": ["<i2", "<i4"], "offsets": [4, 0], "itemsize": 12}),
    np.dtype([("a", ">i2"), ("b", ">i4"), ("pad", "V2")]),
    np.dtype([("a", ">i2"), ("b", "<f8")]),
])
@pytest.mark.parametrize("mmap", [True, False])
def test_structured_dtypes_keep_layout(tmp_path, dtype, mmap):
    data = np.zeros(6, dtype=dtype)
    data["a"] = [1, 2, 3, 4, 5, 6]
    data["b"] = [1000, 2000, 3000, 4000, 5000, 6000]
    path = tmp_path / "records.bin"
    path.write_bytes(data.tobytes())
    proxy = ArrayProxy(str(path), ((6,), dtype), mmap=mmap)
    for key in (slice(None), slice(None, None, -2), 3):
        result = proxy[key]
        assert result.dtype.names == dtype.names
        for name in ("a", "b"):
            np.testing.assert_array_equal(result[name], data[key][name])
    full = np.asarray(proxy)
    np.testing.assert_array_equal(full["b"], data["b"])


def _read_in_child(args):
    proxy, keys, expected = args
    return sum(0 if np.array_equal(proxy[k], expected[k]) else 1 for k in keys)


_SHARED = {}


def _forked_reads(seed):
    proxy, expected = _SHARED["proxy"], _SHARED["expected"]
    rng = np.random.default_rng(seed)
    bad = 0
    for _ in range(150):
        i = int(rng.integers(0, expected.shape[0]))
        bad += 0 if np.array_equal(proxy[i], expected[i]) else 1
    return bad


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_open_file_object_is_safe_in_forked_workers(tmp_path):
    data = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    path = tmp_path / "data.bin"
    path.write_bytes(data.tobytes())
    handle = open(path, "rb")
    handle.seek(5)
    _SHARED.update(proxy=ArrayProxy(handle, (data.shape, data.dtype), order="C", mmap=False),
                   expected=data)
    try:
        with multiprocessing.get_context("fork").Pool(8) as pool:
            assert pool.map(_forked_reads, range(8)) == [0] * 8
        assert handle.tell() == 5
    finally:
        _SHARED.clear()
        handle.close()


def _gzip_object_in_child(_):
    try:
        _SHARED["proxy"][0]
    except proxylib.ProxyReadError as err:
        return "refused" if "fork" in str(err) else repr(err)
    return "read"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_descriptor_backed_stream_is_refused_in_a_forked_child(tmp_path):
    import gzip
    data = np.arange(100, dtype=np.int16).reshape(10, 10)
    path = tmp_path / "data.gz"
    with gzip.open(path, "wb") as out:
        out.write(data.tobytes())
    stream = gzip.open(path, "rb")
    _SHARED["proxy"] = ArrayProxy(stream, (data.shape, data.dtype), order="C")
    try:
        np.testing.assert_array_equal(_SHARED["proxy"][3], data[3])  # fine in this process
        with multiprocessing.get_context("fork").Pool(2) as pool:
            assert pool.map(_gzip_object_in_child, range(2)) == ["refused", "refused"]
    finally:
        _SHARED.clear()
        stream.close()


def test_save_refuses_a_file_changed_since_load(tmp_path):
    source = str(tmp_path / "source.nii")
    values = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    image = proxylib.Nifti1Image(values, np.eye(4))
    image.header.set_slope_inter(2.0, 1.0)
    proxylib.save(image, source)
    loaded = proxylib.load(source)
    with open(source, "r+b") as handle:  # another program rewrites the data in place
        handle.seek(352)
        handle.write(np.full(24, 7, np.int16).tobytes())
    os.utime(source, ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(proxylib.FileChangedError):
        proxylib.save(loaded, str(tmp_path / "copy.nii"))


class Slotted:
    """A file object that cannot be weak-referenced or hashed."""

    __slots__ = ("inner",)
    __hash__ = None

    def __init__(self, payload):
        self.inner = io.BytesIO(payload)

    def seek(self, *args):
        time.sleep(0.0001)
        return self.inner.seek(*args)

    def tell(self):
        return self.inner.tell()

    def read(self, n=-1):
        return self.inner.read(n)


def test_unregistrable_file_objects_still_share_one_lock():
    data = np.arange(400, dtype=np.int32).reshape(20, 20)
    shared = Slotted(data.tobytes())
    proxies = [ArrayProxy(shared, (data.shape, data.dtype), order="C", cost=CostModel(0, 64))
               for _ in range(2)]
    assert proxies[0]._opener.lock is proxies[1]._opener.lock
    wrong = []

    def worker(n):
        for i in range(40):
            row = (i * 7 + n) % 20
            if not np.array_equal(proxies[i % 2][row, ::3], data[row, ::3]):
                wrong.append(row)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
def test_fifo_and_directory_are_refused_without_hanging(tmp_path):
    fifo = tmp_path / "fifo.nii"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.nii"
    folder.mkdir()
    script = f"""
import numpy as np, proxylib
for path in ({str(fifo)!r}, {str(folder)!r}):
    for attempt in (lambda: proxylib.load(path),
                    lambda: proxylib.ArrayProxy(path, ((2, 2), np.uint8))[0]):
        try:
            attempt()
        except proxylib.ProxyReadError as err:
            assert "not a regular file" in str(err) and path in str(err), err
        else:
            raise AssertionError("read a " + path)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def test_offset_past_addressable_range_is_a_spec_error():
    with pytest.raises(proxylib.SpecError, match="offset"):
        ArrayProxy(io.BytesIO(b"x" * 100), ((4, 3), np.float32, 2**63))


@pytest.mark.parametrize("kwargs", [{"block_size": 0}, {"gap_threshold": -5},
                                    {"block_size": 1.5}])
def test_cost_model_is_validated(kwargs):
    with pytest.raises(ValueError):
        CostModel(**kwargs)


def test_block_smaller_than_an_element_still_reads():
    data = np.arange(4.0)
    proxy = ArrayProxy(io.BytesIO(data.tobytes()), ((4,), np.float64),
                       cost=CostModel(block_size=4))
    np.testing.assert_array_equal(proxy[:], data)
    np.testing.assert_array_equal(proxy[::-3], data[::-3])


def test_numpy_bool_mmap_is_accepted(tmp_path):
    path = tmp_path / "d.bin"
    path.write_bytes(bytes(8))
    assert ArrayProxy(str(path), ((8,), np.uint8), mmap=np.True_).mmap == "c"
    assert ArrayProxy(str(path), ((8,), np.uint8), mmap=np.False_).mmap is False


def test_gzip_rewritten_in_place_with_restored_mtime_reads_new_data(tmp_path):
    """cp -p / rsync --inplace -t: same size, same mtime, new bytes (ctime still moves)."""
    import gzip
    shape = (64, 64, 64, 4)  # 1 MiB volumes: later volumes are reached by index jumps
    first, second = (np.random.default_rng(seed).random(shape, dtype=np.float32)
                     for seed in (1, 2))
    path = str(tmp_path / "data.gz")
    payloads = [gzip.compress(a.tobytes(order="F"), compresslevel=0, mtime=0)
                for a in (first, second)]
    assert len(payloads[0]) == len(payloads[1])
    with open(path, "wb") as out:
        out.write(payloads[0])
    before = ArrayProxy(path, (shape, np.float32))
    for t in (3, 1):  # jumps: builds seek points (and windows) of the first version
        np.testing.assert_array_equal(before[..., t], first[..., t])
    stat = os.stat(path)
    with open(path, "r+b") as out:
        out.write(payloads[1])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    fresh = ArrayProxy(path, (shape, np.float32))
    for t in (2, 1, 3):  # jumps: the old version's points must not be used
        np.testing.assert_array_equal(fresh[..., t], second[..., t])


class _FailingRemote:
    """A stand-in RemoteFile: the first run fails at once, the others are slow."""

    def __init__(self):
        self.calls = 0
        self.url = "http://example.invalid/data"
        self.cost = CostModel()

    def read_at(self, offset, buffer):
        self.calls += 1
        if offset == 0:
            raise proxylib.ProxyReadError(f"{self.url}: bytes 0-7 failed", path=self.url)
        time.sleep(0.05)
        memoryview(buffer)[:] = b"\1" * len(buffer)


def test_failed_remote_batch_stops_issuing_requests():
    from proxylib.io.remote.opening import RemoteSource
    remote = _FailingRemote()
    source = RemoteSource.__new__(RemoteSource)
    source.remote, source.name, source.cost = remote, remote.url, remote.cost
    buffers = [bytearray(8) for _ in range(40)]
    with pytest.raises(proxylib.ProxyReadError, match="bytes 0-7"):
        source.readinto_runs([i * 8 for i in range(40)], [memoryview(b) for b in buffers])
    seen = remote.calls
    time.sleep(0.3)
    assert remote.calls == seen < 40  # nothing runs after the error reached us


def test_remote_batch_after_pool_shutdown_reads_one_by_one(monkeypatch):
    from proxylib.io.remote import opening as remote_opening
    remote = _FailingRemote()
    remote.read_at = lambda offset, buffer: memoryview(buffer).__setitem__(
        slice(None), bytes([offset // 8]) * len(buffer))

    def no_more_threads():
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")
    monkeypatch.setattr(remote_opening, "_request_pool", no_more_threads)
    source = remote_opening.RemoteSource.__new__(remote_opening.RemoteSource)
    source.remote, source.name, source.cost = remote, remote.url, remote.cost
    buffers = [bytearray(8) for _ in range(5)]
    source.readinto_runs([i * 8 for i in range(5)], [memoryview(b) for b in buffers])
    assert [b[0] for b in buffers] == [0, 1, 2, 3, 4]


def _spooled_in_child(_):
    return _SHARED["proxy"][2].tolist()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_in_memory_spooled_file_reads_in_a_forked_child():
    import tempfile
    data = np.arange(40, dtype=np.int16).reshape(4, 10)
    spooled = tempfile.SpooledTemporaryFile(max_size=1 << 20)
    spooled.write(data.tobytes())
    _SHARED["proxy"] = ArrayProxy(spooled, (data.shape, data.dtype), order="C")
    try:
        with multiprocessing.get_context("fork").Pool(1) as pool:
            assert pool.map(_spooled_in_child, [0]) == [data[2].tolist()]
        assert not spooled._rolled
    finally:
        _SHARED.clear()
        spooled.close()


class _BreaksOnRead(io.BytesIO):
    def readinto(self, buffer):
        self.close()
        raise OSError("device went away")


def test_error_inside_an_access_is_not_masked_by_restoring_the_position():
    proxy = ArrayProxy(_BreaksOnRead(bytes(100)), ((10, 10), np.int8))
    with pytest.raises(proxylib.ProxyReadError, match="device went away"):
        proxy[3]


def test_cost_model_accepts_numpy_integers_not_bools():
    assert CostModel(gap_threshold=np.int64(4096), block_size=np.uint32(1 << 20)).block_size \
        == 1 << 20
    with pytest.raises(ValueError):
        CostModel(block_size=True)


def test_numpy_float_key_has_numpys_message(small):
    proxy, data = small
    with pytest.raises(IndexError, match="only integers, slices"):
        proxy[np.float64(1)]


def test_saving_another_librarys_proxy_keeps_its_scaled_values(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    source = str(tmp_path / "scaled.nii")
    stored = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    image = nibabel.Nifti1Image(stored, np.eye(4))
    image.header.set_slope_inter(0.5, 10.0)
    nibabel.save(image, source)
    foreign = nibabel.load(source)
    copy = str(tmp_path / "copy.nii")
    proxylib.save(proxylib.Nifti1Image(foreign.dataobj, foreign.affine), copy)
    np.testing.assert_array_equal(proxylib.load(copy).get_fdata(), foreign.get_fdata())


def test_bench_no_index_strategies_really_start_without_an_index(tmp_path, monkeypatch):
    from proxylib.bench.runner import run_benchmark
    from proxylib.io.gzip import index_cache
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(tmp_path / "user-cache"))
    path = str(tmp_path / "v.nii.gz")
    proxylib.save(proxylib.Nifti1Image(np.random.default_rng(0).random((64, 64, 32, 6),
                                                                   dtype=np.float32),
                                       np.eye(4)), path)
    loaded = []
    real_load = index_cache.load_index

    def recording(identity, directory=None):
        found = real_load(identity, directory)
        loaded.append((os.environ["PROXYLIB_CACHE_DIR"], found is not None))
        return found
    monkeypatch.setattr(index_cache, "load_index", recording)
    # one key every round: with a fresh volume per round (the benchmark's default) the
    # index grows and is saved within a round, and saving re-reads the file it just wrote
    # (a load_index call that finds it), which this recorder cannot tell from a round
    # that started with an index
    from proxylib.bench.workloads import Workload
    monkeypatch.setattr(Workload, "fresh", lambda self, rng: self)
    results = run_benchmark(path, workload_names=("volume",), repeat=2, memory=False,
                            include_peers=False)
    assert {r.strategy for r in results} >= {"proxylib gz no-index keep=True",
                                             "proxylib gz saved-index keep=True"}
    directories = {d for d, _ in loaded}
    assert len(directories) == 2  # each family read its own cache
    found_in = {d: any(found for e, found in loaded if e == d) for d in directories}
    assert sorted(found_in.values()) == [False, True]  # no-index never finds one, saved does
