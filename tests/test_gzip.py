"""Gzip sources: correctness against numpy, one-pass costs, the saved index, failures."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import proxylib
from proxylib import (ArrayProxy, CorruptDataError, FileChangedError, ProxyReadError,
                      TruncatedFileError)
from proxylib.io.gzip import index_cache
from proxylib.io.identity import FileIdentity
from proxylib.io.gzip import source as pgz

SHAPE = (32, 32, 32, 20)
OFFSET = 352
SPEC = (SHAPE, np.float32, OFFSET)


def make_array(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.standard_normal(SHAPE).astype(np.float32)
    data[rng.random(SHAPE) > 0.1] = 0  # 10% non-zero, like the benchmark volume
    return data


def payload(data: np.ndarray) -> bytes:
    return b"\x5c" * OFFSET + data.tobytes(order="F")


pytestmark = pytest.mark.usefixtures("gzip_isolated")  # see tests/conftest.py


@pytest.fixture(scope="module")
def array() -> np.ndarray:
    return make_array()


@pytest.fixture
def gz_path(tmp_path, array) -> str:
    path = str(tmp_path / "vol.gz")
    with open(path, "wb") as out:
        out.write(gzip.compress(payload(array), 6))
    return path


def compressed_bytes_read() -> int:
    """Compressed bytes read by every gzip state in this process so far."""
    return sum(s.stream.bytes_read + s.indexed.bytes_read + s.jumps.bytes_read + s.parallel.bytes_read
               for s in list(pgz.STATES.values()))


KEYS = [
    (Ellipsis, 0), (Ellipsis, 19), (Ellipsis, 11), (3,), (slice(None), 5), (1, 2, 3),
    (1, 2, 3, slice(None)), (slice(None, None, -3), 4, slice(2, 20, 5)), (Ellipsis,),
    (slice(5, 9), slice(None), slice(None), slice(18, 2, -7)), (31, 31, 31, 19),
    (Ellipsis, slice(10, 12)), (None, 0, Ellipsis, None),
]


@pytest.mark.parametrize("keep", [False, True])
def test_keys_match_numpy(gz_path, array, keep):
    with ArrayProxy(gz_path, SPEC, keep_file_open=keep) as proxy:
        for key in KEYS + KEYS[::-1]:
            np.testing.assert_array_equal(proxy[key], array[key], err_msg=str(key))
        np.testing.assert_array_equal(np.asarray(proxy), array)
        assert proxy.dtype == np.float32


def axis_keys(size):
    return st.one_of(
        st.integers(-size, size - 1),
        st.builds(slice, st.none() | st.integers(-40, 40), st.none() | st.integers(-40, 40),
                  st.none() | st.sampled_from([1, 2, 3, -1, -2, 7])))


@settings(max_examples=60, deadline=None)
@given(key=st.tuples(*(axis_keys(n) for n in SHAPE)))
def test_random_keys_match_numpy(tmp_path_factory, key):
    data = make_array(1)
    path = str(tmp_path_factory.getbasetemp() / "hypothesis.gz")
    if not os.path.exists(path):
        with open(path, "wb") as out:
            out.write(gzip.compress(payload(data), 1))
    proxy = ArrayProxy(path, SPEC, keep_file_open=False)
    np.testing.assert_array_equal(proxy[key], data[key])


@pytest.mark.parametrize("keep", [False, True])
def test_volumes_in_order_cost_one_pass(gz_path, array, keep):
    size = os.path.getsize(gz_path)
    proxy = ArrayProxy(gz_path, SPEC, keep_file_open=keep)
    for t in range(SHAPE[3]):
        np.testing.assert_array_equal(proxy[..., t], array[..., t])
    assert compressed_bytes_read() <= 1.1 * size + 64 * 1024


def test_strided_key_is_one_pass(gz_path, array):
    size = os.path.getsize(gz_path)
    proxy = ArrayProxy(gz_path, SPEC)
    np.testing.assert_array_equal(proxy[7], array[7])          # an x-slab: 1-voxel runs
    np.testing.assert_array_equal(proxy[:, 3], array[:, 3])
    assert compressed_bytes_read() <= 2 * (size + 64 * 1024)


def test_saved_index_serves_jumps_without_a_full_pass(gz_path, array):
    size = os.path.getsize(gz_path)
    assert proxylib.build_index(gz_path) is not None
    pgz.STATES.clear()                                           # as in a new process
    proxy = ArrayProxy(gz_path, SPEC)
    np.testing.assert_array_equal(proxy[..., -1], array[..., -1])
    np.testing.assert_array_equal(proxy[5, 6, 7, 9:17:7], array[5, 6, 7, 9:17:7])
    state = next(iter(pgz.STATES.values()))
    assert state.stream.bytes_read == 0                      # no pass from the start
    jumped = state.indexed.bytes_read + state.jumps.bytes_read
    assert 0 < jumped < 0.3 * size                                # three jumps, no pass


def test_index_built_by_a_read_is_saved_and_used_by_another_process(gz_path, array, tmp_path):
    proxy = ArrayProxy(gz_path, SPEC)
    np.testing.assert_array_equal(proxy[..., -1], array[..., -1])    # builds the index
    saved = list((tmp_path / "cache" / "gzip").glob("*.pxgzi"))
    assert len(saved) == 1
    script = (
        "import sys, numpy as np, proxylib\n"
        "from proxylib.io.gzip import GzipConfig, source as g\n"
        "g.STATES.configure(GzipConfig(spacing=64 * 1024, readbuf=16 * 1024))\n"
        f"p = proxylib.ArrayProxy({gz_path!r}, ({SHAPE!r}, np.float32, {OFFSET}))\n"
        "v = p[..., -1]\n"
        "s = next(iter(g.STATES.values()))\n"
        "print(s.index.saved_points, s.indexed.bytes_read + s.stream.bytes_read + s.jumps.bytes_read,"
        " float(v.sum()))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ), check=True).stdout.split()
    assert int(out[0]) > 3
    assert int(out[1]) < 0.5 * os.path.getsize(gz_path)
    assert float(out[2]) == pytest.approx(float(array[..., -1].sum()), rel=1e-5)


def test_changed_file_gets_a_new_index_not_the_stale_one(gz_path, tmp_path):
    ArrayProxy(gz_path, SPEC)[..., -1]
    other = make_array(7)
    with open(gz_path, "wb") as out:
        out.write(gzip.compress(payload(other), 6))
    os.utime(gz_path, ns=(1, 1))                                 # a different identity
    pgz.STATES.clear()
    np.testing.assert_array_equal(ArrayProxy(gz_path, SPEC)[..., -1], other[..., -1])
    assert len(list((tmp_path / "cache" / "gzip").glob("*.pxgzi"))) == 2


def _identity(path):
    return FileIdentity.of_path(path)


@pytest.mark.parametrize("damage", ["foreign", "truncated", "flipped", "flipped points",
                                    "garbage"])
def test_untrustworthy_saved_index_is_ignored(gz_path, array, tmp_path, damage):
    foreign = str(tmp_path / "other.gz")
    with open(foreign, "wb") as out:
        out.write(gzip.compress(payload(make_array(3)), 6))
    ArrayProxy(foreign, SPEC)[..., -1]
    ArrayProxy(gz_path, SPEC)[..., -1]
    mine = index_cache.index_path(_identity(gz_path))
    theirs = index_cache.index_path(_identity(foreign))
    data = mine.read_bytes()
    if damage == "foreign":
        shutil.copyfile(theirs, mine)
    elif damage == "truncated":
        mine.write_bytes(data[:len(data) // 2])
    elif damage == "flipped":
        mine.write_bytes(data[:-100] + bytes(b ^ 0xFF for b in data[-100:]))
    elif damage == "flipped points":
        at = data.index(b"GZIDX") + 60
        mine.write_bytes(data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:])
    else:
        mine.write_bytes(os.urandom(len(data)))
    saved = index_cache.load_index(_identity(gz_path))
    if damage == "flipped":        # windows are checked when a jump first needs them
        with pytest.raises(index_cache.DamagedIndexError):
            saved.window(len(saved._ends) - 2)
    else:
        assert saved is None
    pgz.STATES.clear()
    proxy = ArrayProxy(gz_path, SPEC)
    np.testing.assert_array_equal(proxy[..., -1], array[..., -1])
    np.testing.assert_array_equal(proxy[2, 3, 4], array[2, 3, 4])
    assert index_cache.load_index(_identity(gz_path)) is not None      # rebuilt


def test_unwritable_cache_dir_warns_once_and_reads(gz_path, array, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(blocker / "cache"))
    second = str(tmp_path / "second.gz")
    shutil.copyfile(gz_path, second)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path in (gz_path, second):
            np.testing.assert_array_equal(ArrayProxy(path, SPEC)[..., -1], array[..., -1])
        assert proxylib.build_index(gz_path) is None
    messages = [w for w in caught if issubclass(w.category, index_cache.IndexCacheWarning)]
    assert len(messages) == 1
    assert "PROXYLIB_CACHE_DIR" in str(messages[0].message)


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(tmp_path / "a"))
    assert index_cache.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("PROXYLIB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert index_cache.cache_dir() == tmp_path / "xdg" / "proxylib"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert index_cache.cache_dir() == tmp_path / "home" / ".cache" / "proxylib"


def test_build_indexes_api(gz_path, tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(b"\0" * 100)
    first, = proxylib.build_indexes([gz_path])
    assert first.exists() and first.parent == tmp_path / "cache" / "gzip"
    stamp = first.stat().st_mtime_ns
    pgz.STATES.clear()
    assert proxylib.build_index(gz_path) == first            # already complete: kept
    assert first.stat().st_mtime_ns == stamp
    with pytest.raises(ProxyReadError, match="not a gzip file"):
        proxylib.build_index(raw)


@pytest.mark.parametrize("keep", [False, True])
def test_threads_read_one_proxy(gz_path, array, keep):
    proxy = ArrayProxy(gz_path, SPEC, keep_file_open=keep)
    keys = [(Ellipsis, t) for t in range(SHAPE[3])] + [(i, j, 3) for i in range(3) for j in range(3)]
    failures = []

    def work(offset):
        try:
            for key in keys[offset::3] + keys[::-5]:
                if not np.array_equal(proxy[key], array[key]):
                    failures.append(key)
        except Exception as err:  # pragma: no cover - reported below
            failures.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("keep", [False, True])
def test_forked_child_reads_on_its_own(gz_path, array, keep):
    proxy = ArrayProxy(gz_path, SPEC, keep_file_open=keep)
    np.testing.assert_array_equal(proxy[..., 12], array[..., 12])
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        ok = all(np.array_equal(proxy[..., t], array[..., t]) for t in (3, 19, 13))
        os._exit(0 if ok else 1)
    np.testing.assert_array_equal(proxy[..., 14], array[..., 14])
    np.testing.assert_array_equal(proxy[..., 2], array[..., 2])
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("keep", [False, True])
def test_pickles_in_every_state(gz_path, array, keep):
    proxy = ArrayProxy(gz_path, SPEC, keep_file_open=keep)
    states = [pickle.dumps(proxy)]
    proxy[..., 15]
    states.append(pickle.dumps(proxy))
    proxy.close()
    states.append(pickle.dumps(proxy))
    for blob in states:
        assert len(blob) < 4096                                 # no index, no handle
        np.testing.assert_array_equal(pickle.loads(blob)[..., 16], array[..., 16])


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("change", ["delete", "truncate", "replace", "chmod"])
def test_file_changed_after_open_never_crashes(gz_path, array, keep, change, tmp_path):
    proxy = ArrayProxy(gz_path, SPEC, keep_file_open=keep)
    np.testing.assert_array_equal(proxy[..., 1], array[..., 1])
    if change == "delete":
        os.unlink(gz_path)
    elif change == "truncate":
        os.truncate(gz_path, os.path.getsize(gz_path) // 2)
    elif change == "replace":
        other = tmp_path / "new.gz"
        other.write_bytes(gzip.compress(payload(make_array(5))))
        os.replace(other, gz_path)
    else:
        os.chmod(gz_path, 0)
    try:
        for key in [(Ellipsis, 19), (Ellipsis, 2), (4, 5, 6)]:
            try:
                values = proxy[key]
            except ProxyReadError:
                continue
            np.testing.assert_array_equal(values, array[key])
    finally:
        if os.path.exists(gz_path):
            os.chmod(gz_path, 0o644)


def test_truncation_during_an_access_names_file_and_compressed_offset(gz_path, array):
    fd = os.open(gz_path, os.O_RDONLY)
    try:
        source = pgz.GzipSource(fd, gz_path)
        buffer = bytearray(1000)
        source.readinto(OFFSET, memoryview(buffer))
        os.truncate(gz_path, os.path.getsize(gz_path) // 3)
        end = len(payload(array)) - 2000
        try:   # the streaming decoder may already hold the end (it checks the last CRC)
            source.readinto(end, memoryview(buffer))
        except TruncatedFileError as err:
            assert gz_path in str(err) and "compressed offset" in str(err)
        else:
            assert bytes(buffer) == payload(array)[end:end + 1000]
        expected = payload(array)[OFFSET + 50_000:OFFSET + 51_000]
        try:                           # data the decompressor already holds is still right
            source.readinto(OFFSET + 50_000, memoryview(buffer))
        except TruncatedFileError as err:
            assert "compressed offset" in str(err)
        else:
            assert bytes(buffer) == expected
    finally:
        os.close(fd)


@pytest.mark.parametrize("where", ["early", "late"])
def test_truncated_stream(tmp_path, array, where):
    path = str(tmp_path / "cut.gz")
    data = gzip.compress(payload(array), 6)
    with open(path, "wb") as out:
        out.write(data[:len(data) // 2])
    proxy = ArrayProxy(path, SPEC)
    key = (Ellipsis, slice(None)) if where == "early" else (Ellipsis, -1)
    with pytest.raises(TruncatedFileError, match="compressed offset") as info:
        proxy[key]
    assert path in str(info.value)


def test_corrupt_data_and_bad_crc_raise(tmp_path, array):
    data = bytearray(gzip.compress(payload(array), 6))
    bad_crc = bytearray(data)
    bad_crc[-8] ^= 0xFF
    broken = bytearray(data)
    middle = len(broken) // 2
    broken[middle:middle + 64] = os.urandom(64)
    for name, content in (("crc.gz", bad_crc), ("broken.gz", broken)):
        path = tmp_path / name
        path.write_bytes(bytes(content))
        with pytest.raises(CorruptDataError):
            np.asarray(ArrayProxy(str(path), SPEC))
        with pytest.raises((CorruptDataError, TruncatedFileError)):
            for t in range(SHAPE[3]):
                ArrayProxy(str(path), SPEC, keep_file_open=False)[..., t]


def test_concatenated_members(tmp_path, array):
    whole = payload(array)
    cuts = [0, 1000, len(whole) // 3, len(whole) // 3 + 7, len(whole)]
    path = tmp_path / "members.gz"
    path.write_bytes(b"".join(gzip.compress(whole[a:b]) for a, b in zip(cuts, cuts[1:])))
    proxy = ArrayProxy(str(path), SPEC)
    for key in [(Ellipsis, -1), (Ellipsis, 9), (2, 3, 4), (Ellipsis, 0)]:
        np.testing.assert_array_equal(proxy[key], array[key])
    np.testing.assert_array_equal(np.asarray(proxy), array)
    pgz.STATES.clear()
    np.testing.assert_array_equal(ArrayProxy(str(path), SPEC)[5, 5, 5], array[5, 5, 5])


def test_file_change_between_accesses_is_reported(gz_path, array):
    proxy = ArrayProxy(gz_path, SPEC, keep_file_open=False)
    proxy[..., 0]
    with open(gz_path, "r+b") as handle:
        handle.seek(0, os.SEEK_END)
        handle.write(b"\0")
    with pytest.raises(FileChangedError):
        proxy[..., 1]
