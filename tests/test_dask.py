"""Dask arrays over proxies: dtype without reading, layout chunks, per-chunk reads,
deterministic names, and the threaded scheduler without a global lock."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask is not installed (pip install 'proxylib[dask]')")
import dask  # noqa: E402

import proxylib  # noqa: E402
from proxylib import ArrayProxy  # noqa: E402
from proxylib.daskarray import layout_chunks, to_dask  # noqa: E402
from proxylib.io import sources  # noqa: E402

SHAPE = (6, 5, 4, 7)
OFFSET = 352


@pytest.fixture
def raw4d(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(-1000, 1000, size=SHAPE, dtype=np.int16)
    path = tmp_path / "bold.raw"
    with open(path, "wb") as out:
        out.write(b"\0" * OFFSET)
        out.write(data.tobytes(order="F"))
    return path, data


class ReadCounter:
    """Counts bytes and calls through every positional read (DescriptorSource)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        self.bytes = 0
        self.lock = threading.Lock()
        original = sources.DescriptorSource.readinto
        counter = self

        def counting(source, offset, buffer):
            with counter.lock:
                counter.calls += 1
                counter.bytes += memoryview(buffer).nbytes
            return original(source, offset, buffer)

        monkeypatch.setattr(sources.DescriptorSource, "readinto", counting)


def test_dtype_from_proxy_without_reading(raw4d, monkeypatch):
    path, data = raw4d
    proxy = ArrayProxy(path, (SHAPE, np.int16, OFFSET, np.float32(0.5), np.float32(10)),
                       mmap=False)
    counter = ReadCounter(monkeypatch)
    opened = []
    monkeypatch.setattr(proxylib.io.opening, "OpenFile",
                        _recording(proxylib.io.opening.OpenFile, opened))
    arr = to_dask(proxy)
    assert counter.calls == 0 and opened == []
    assert arr.dtype == proxy.dtype == np.float32
    assert arr._meta.dtype == np.float32 and isinstance(arr._meta, np.ndarray)
    assert arr.shape == SHAPE
    expected = data.astype(np.float32) * np.float32(0.5) + np.float32(10)
    np.testing.assert_array_equal(arr.compute(scheduler="sync"), expected)


def _recording(cls, log):
    class Recording(cls):
        def __init__(self, *args, **kwargs):
            log.append(args[0])
            super().__init__(*args, **kwargs)
    return Recording


def test_layout_chunks_follow_storage_order():
    # F order: fastest axes first, whole volumes, cut along time.
    assert layout_chunks((10, 10, 10, 50), 2, "F", 2000 * 3) == (
        (10,), (10,), (10,), (3,) * 16 + (2,))
    # C order: the last axes are the fast ones.
    assert layout_chunks((50, 10, 10, 10), 2, "C", 2000 * 3) == (
        (3,) * 16 + (2,), (10,), (10,), (10,))
    # A volume larger than the limit: cut inside the volume along z, t in ones.
    assert layout_chunks((10, 10, 10, 4), 8, "F", 8 * 100 * 4) == (
        (10,), (10,), (4, 4, 2), (1,) * 4)
    # Never a zero step, even when one row exceeds the limit.
    assert layout_chunks((1000, 3), 8, "F", 10) == ((1,) * 1000, (1,) * 3)
    # Everything fits: one chunk.
    assert layout_chunks((4, 5), 4, "F", 1 << 20) == ((4,), (5,))
    assert layout_chunks((0, 5), 4, "F", 1 << 20) == ((0,), (5,))


def test_default_chunks_are_whole_volumes_within_limit(raw4d):
    path, data = raw4d
    proxy = ArrayProxy(path, (SHAPE, np.int16, OFFSET))
    volume = int(np.prod(SHAPE[:3])) * 2
    arr = proxy.to_dask(limit=3 * volume)
    assert arr.chunks == ((6,), (5,), (4,), (3, 3, 1))
    arr = to_dask(proxy, limit=f"{3 * volume}B")
    assert arr.chunks == ((6,), (5,), (4,), (3, 3, 1))
    # default limit (128 MiB) holds this small file in one chunk
    assert to_dask(proxy).chunks == tuple((n,) for n in SHAPE)
    # limits count output bytes: float64 output of a scaled int16 file is 4x larger
    scaled = ArrayProxy(path, (SHAPE, np.int16, OFFSET, 2.0, 0.0))
    assert scaled.dtype == np.float64
    assert to_dask(scaled, limit=3 * volume * 4).chunks[3] == (3, 3, 1)
    with pytest.raises(ValueError, match="positive"):
        to_dask(proxy, limit=0)


def test_explicit_chunks_are_normalized(raw4d):
    path, data = raw4d
    proxy = ArrayProxy(path, (SHAPE, np.int16, OFFSET))
    arr = to_dask(proxy, chunks=(3, -1, 2, 4))
    assert arr.chunks == ((3, 3), (5,), (2, 2), (4, 3))
    np.testing.assert_array_equal(arr.compute(scheduler="sync"), data)
    arr = to_dask(proxy, chunks={3: 1})
    assert arr.chunks[3] == (1,) * 7
    np.testing.assert_array_equal(arr[..., 5].compute(scheduler="sync"), data[..., 5])


def test_each_task_reads_only_its_chunk(raw4d, monkeypatch):
    path, data = raw4d
    proxy = ArrayProxy(path, (SHAPE, np.int16, OFFSET), mmap=False)
    arr = to_dask(proxy, chunks=(-1, -1, -1, 1))
    counter = ReadCounter(monkeypatch)
    block = arr.blocks[..., 4].compute(scheduler="sync")
    np.testing.assert_array_equal(block, data[..., 4:5])
    volume = int(np.prod(SHAPE[:3])) * 2
    assert counter.bytes == volume and counter.calls == 1
    counter.bytes = counter.calls = 0
    np.testing.assert_array_equal(arr.sum(axis=-1).compute(scheduler="sync"),
                                  data.sum(axis=-1))
    assert counter.bytes == volume * SHAPE[3]


def test_graph_holds_the_proxy_not_data(tmp_path):
    shape = (64, 64, 32, 16)  # 4 MiB of int16
    path = tmp_path / "big.raw"
    np.zeros(shape, np.int16).tofile(path)
    proxy = ArrayProxy(path, (shape, np.int16))
    arr = to_dask(proxy, chunks=(-1, -1, -1, 1))
    graph = dict(arr.__dask_graph__())
    held = [v for v in graph.values() if isinstance(v, ArrayProxy)]
    assert len(held) == 1
    assert len(pickle.dumps(graph)) < 64 * 1024
    assert not any(isinstance(v, np.ndarray) and v.size > 0 for v in graph.values())


def test_names_are_deterministic(raw4d, tmp_path):
    path, data = raw4d
    spec = (SHAPE, np.int16, OFFSET)
    proxy = ArrayProxy(path, spec)
    name = to_dask(proxy).name
    assert to_dask(proxy).name == name
    assert to_dask(ArrayProxy(path, spec)).name == name           # same file, same spec
    assert to_dask(pickle.loads(pickle.dumps(proxy))).name == name
    assert to_dask(proxy, chunks={3: 1}).name != name
    assert to_dask(ArrayProxy(path, (SHAPE, np.int16, OFFSET, 2.0))).name != name
    assert to_dask(ArrayProxy(path, spec, order="C")).name != name
    assert dask.base.tokenize(proxy) == dask.base.tokenize(ArrayProxy(path, spec))
    # the same in a fresh interpreter (no per-process randomness)
    code = ("import numpy as np, proxylib; from proxylib.daskarray import to_dask; "
            f"print(to_dask(proxylib.ArrayProxy({str(path)!r}, ({SHAPE!r}, np.int16, "
            f"{OFFSET}))).name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == name
    # a file rewritten on disk is another array: new keys
    with open(path, "r+b") as handle:
        handle.seek(OFFSET)
        handle.write(b"\1\2")
    import os
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    assert to_dask(ArrayProxy(path, spec)).name != name


def test_threaded_reads_run_concurrently_without_a_lock(raw4d, monkeypatch):
    """Two chunks must be inside a read at the same moment; a lock would deadlock
    the barrier and fail the test (BrokenBarrierError after the timeout)."""
    path, data = raw4d
    proxy = ArrayProxy(path, (SHAPE, np.int16, OFFSET), mmap=False, keep_file_open=False)
    arr = to_dask(proxy, chunks=(-1, -1, -1, 4))
    assert len(arr.chunks[3]) == 2
    barrier = threading.Barrier(2, timeout=10)
    original = sources.DescriptorSource.readinto
    seen = set()

    def meeting(source, offset, buffer):
        me = threading.get_ident()
        if me not in seen:
            seen.add(me)
            barrier.wait()
        return original(source, offset, buffer)

    monkeypatch.setattr(sources.DescriptorSource, "readinto", meeting)
    result = arr.compute(scheduler="threads", num_workers=2)
    np.testing.assert_array_equal(result, data)
    assert len(seen) == 2
    graph = dict(arr.__dask_graph__())
    assert not any("lock" in repr(v).lower() for v in graph.values())


def test_threaded_gzip_image_matches_numpy(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.normal(size=(9, 8, 7, 12)).astype(np.float32)
    img = proxylib.Nifti1Image(data, np.eye(4))
    proxylib.save(img, tmp_path / "bold.nii.gz")
    proxylib.save(img, tmp_path / "bold.nii")
    for name in ("bold.nii", "bold.nii.gz"):
        loaded = proxylib.load(tmp_path / name)
        arr = loaded.to_dask(chunks=(-1, -1, -1, 1))
        assert arr.dtype == loaded.dataobj.dtype
        with dask.config.set(scheduler="threads", num_workers=4):
            np.testing.assert_allclose(arr.mean(axis=-1, dtype=np.float64).compute(),
                                       data.mean(axis=-1, dtype=np.float64), rtol=1e-12)
            np.testing.assert_array_equal(arr[2, 3, 4].compute(), data[2, 3, 4])
            np.testing.assert_array_equal(arr.compute(), data)


def test_image_with_array_data(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    img = proxylib.Nifti1Image(data, np.eye(4))
    arr = img.to_dask()
    np.testing.assert_array_equal(arr.compute(), data)


def test_rejects_other_objects():
    with pytest.raises(TypeError, match="ArrayProxy or an image"):
        to_dask(object())
