"""Many threads, shared file objects, fork and spawn pools: results equal serial reads."""

import io
import multiprocessing
import os
import pickle
import threading
import time

import numpy as np
import pytest

import proxylib
from proxylib import ArrayProxy
from proxylib.indexing.plan import CostModel

SHAPE = (9, 8, 7, 6)


@pytest.fixture(scope="module")
def stored_file(tmp_path_factory):
    data = np.random.default_rng(11).standard_normal(SHAPE).astype(">f4")
    path = tmp_path_factory.mktemp("threads") / "data.bin"
    path.write_bytes(b"\x07" * 13 + data.tobytes(order="F"))
    return str(path), data


def random_keys(count, seed):
    rng = np.random.default_rng(seed)
    keys = []
    for _ in range(count):
        key = []
        for size in SHAPE:
            kind = rng.integers(0, 3)
            if kind == 0:
                key.append(int(rng.integers(-size, size)))
            elif kind == 1:
                start, stop = sorted(rng.integers(0, size + 1, 2))
                step = int(rng.choice([1, 2, -1, -2]))
                key.append(slice(int(start), int(stop), step) if step > 0
                           else slice(int(stop), int(start), step))
            else:
                key.append(slice(None))
        keys.append(tuple(key))
    return keys


def run_threads(count, target):
    errors = []

    def guarded(n):
        try:
            target(n)
        except BaseException as err:  # pragma: no cover - reported by the assert
            errors.append(err)
    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]


@pytest.mark.parametrize("mmap, keep", [(True, True), (False, True), (True, False),
                                        (False, False)])
def test_32_threads_1000_keys_equal_serial(stored_file, mmap, keep):
    path, data = stored_file
    proxy = ArrayProxy(path, (SHAPE, data.dtype, 13, np.float32(2), np.float32(-1)),
                       mmap=mmap, keep_file_open=keep, cost=CostModel(64, 256))
    keys = random_keys(1000, seed=5)
    serial = [proxy[key] for key in keys]

    def worker(n):
        for i in range(n, len(keys) + n, 3):
            index = i % len(keys)
            assert np.array_equal(proxy[keys[index]], serial[index])
    run_threads(32, worker)
    expected = data.astype(np.float32) * np.float32(2) + np.float32(-1)
    for key, result in zip(keys[:50], serial[:50]):
        assert np.array_equal(result, expected[key])
    proxy.close()


class SlowFile(io.BytesIO):
    """A file object whose reads yield the GIL mid-read, forcing interleavings."""

    def readinto(self, buffer):
        time.sleep(0.0002)
        return super().readinto(buffer)

    def read(self, size=-1):
        time.sleep(0.0002)
        return super().read(size)


def test_interleaved_reads_on_one_file_object(stored_file):
    path, data = stored_file
    shared = SlowFile(open(path, "rb").read())
    spec = (SHAPE, data.dtype, 13)
    proxies = [ArrayProxy(shared, spec, cost=CostModel(64, 1024)) for _ in range(2)]
    keys = random_keys(60, seed=8)
    native = data.astype("=f4")

    def worker(n):
        for i, key in enumerate(keys):
            result = proxies[(i + n) % 2][key]
            assert np.array_equal(result, native[key]), key
    run_threads(8, worker)
    assert shared.tell() == 0


_FORK_PROXY = None


def _fork_check(seed):
    keys = random_keys(150, seed)
    data = _FORK_PROXY.expected
    return sum(0 if np.array_equal(_FORK_PROXY.proxy[key], data[key]) else 1 for key in keys)


class _Holder:
    pass


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_pool_with_kept_handle(stored_file):
    global _FORK_PROXY
    path, data = stored_file
    holder = _Holder()
    holder.proxy = ArrayProxy(path, (SHAPE, data.dtype, 13), keep_file_open=True)
    holder.expected = data.astype("=f4")
    holder.proxy[0]  # the parent's handle is open before the fork
    _FORK_PROXY = holder
    try:
        with multiprocessing.get_context("fork").Pool(8) as pool:
            mismatches = pool.map(_fork_check, range(8))
    finally:
        _FORK_PROXY = None
    assert mismatches == [0] * 8
    assert np.array_equal(holder.proxy[1], holder.expected[1])
    holder.proxy.close()


def _read_pickled(payload):
    proxy, key = pickle.loads(payload)
    return proxy[key]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pickled_proxies_and_images_in_pools(tmp_path, stored_file, method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} not available")
    path, data = stored_file
    image_path = str(tmp_path / "image.nii.gz")
    proxylib.save(proxylib.Nifti1Image(data.astype(np.float32), np.eye(4)), image_path)
    objects = []
    for keep in (True, False):
        proxy = ArrayProxy(path, (SHAPE, data.dtype, 13), keep_file_open=keep)
        objects.append(proxy)
        proxy[0]  # after a read too
        image = proxylib.load(image_path, keep_file_open=keep)
        image.dataobj[..., 0]
        objects.append(image.dataobj)
    key = (slice(1, 8, 2), Ellipsis, 3)
    payloads = [pickle.dumps((obj, key)) for obj in objects]
    with multiprocessing.get_context(method).Pool(2) as pool:
        results = pool.map(_read_pickled, payloads)
    for result in results:
        assert np.array_equal(result, data.astype(np.float32)[key])
