"""io/ without os.pread/os.preadv (Windows, old macOS): the seek + readinto fallback.

In-process tests switch proxylib.io.positional to its fallback; one test runs the
core and fancy read property tests in a child interpreter with ``os.pread`` and
``os.preadv`` deleted before proxylib is imported (tests/conftest.py,
``PROXYLIB_HIDE_PREAD=1``).
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from proxylib import ArrayProxy
from proxylib.io import positional

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_pread(monkeypatch):
    monkeypatch.setattr(positional, "_os_pread", None)
    monkeypatch.setattr(positional, "_os_preadv", None)
    assert not positional.has_native_pread()


@pytest.fixture
def stored(tmp_path):
    data = np.arange(4 * 5 * 6 * 7, dtype="<f4").reshape((4, 5, 6, 7), order="F")
    path = tmp_path / "a.raw"
    path.write_bytes(b"\0" * 16 + data.tobytes(order="F"))
    return path, data


KEYS = [(Ellipsis, 3), (1, 2, 3, slice(None)), (slice(None), 0), (slice(None, None, -2),),
        ([0, 3, 1], slice(None), 2), (Ellipsis, [6, 0, 6]), (np.arange(4) % 2 == 0,)]


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("keep", [False, True])
def test_path_reads_match_numpy(no_pread, stored, mmap, keep):
    path, data = stored
    proxy = ArrayProxy(path, (data.shape, data.dtype, 16), mmap=mmap, keep_file_open=keep)
    for key in KEYS:
        np.testing.assert_array_equal(proxy[key], data[key])
    np.testing.assert_array_equal(np.array(proxy, copy=True), data)


def test_open_file_object_keeps_its_position(no_pread, stored):
    path, data = stored
    with open(path, "rb") as handle:
        handle.seek(5)
        proxy = ArrayProxy(handle, (data.shape, data.dtype, 16))
        np.testing.assert_array_equal(proxy[..., 2], data[..., 2])
        assert handle.tell() == 5
        assert os.lseek(handle.fileno(), 0, os.SEEK_CUR) == handle.raw.tell()


def test_threads_share_one_descriptor(no_pread, stored):
    path, data = stored
    proxy = ArrayProxy(path, (data.shape, data.dtype, 16), mmap=False, keep_file_open=True)
    errors = []

    def read(t):
        try:
            for _ in range(20):
                np.testing.assert_array_equal(proxy[..., t], data[..., t])
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=read, args=(t,)) for t in range(7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_gzip_reads_match_numpy(no_pread, stored, tmp_path, gzip_isolated):
    path, data = stored
    gz = tmp_path / "a.raw.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    proxy = ArrayProxy(gz, (data.shape, data.dtype, 16))
    np.testing.assert_array_equal(proxy[..., 5], data[..., 5])
    np.testing.assert_array_equal(proxy[1, 2], data[1, 2])


def test_fallback_reads_short_at_the_end(no_pread, tmp_path):
    path = tmp_path / "b.raw"
    path.write_bytes(bytes(range(10)))
    fd = os.open(path, os.O_RDONLY)
    try:
        buffer = bytearray(8)
        assert positional.pread_into(fd, buffer, 6) == 4
        assert bytes(buffer[:4]) == bytes(range(6, 10))
        assert positional.pread(fd, 100, 8) == bytes([8, 9])
        assert positional.pread(fd, 3, 20) == b""
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
    finally:
        os.close(fd)


def test_read_properties_pass_without_pread():
    """The core and fancy property tests, in a child where os.pread/preadv do not exist."""
    env = dict(os.environ, PROXYLIB_HIDE_PREAD="1", PROXYLIB_HYPOTHESIS_PROFILE="quick")
    probe = subprocess.run(
        [sys.executable, "-c", "import os; os.environ['PROXYLIB_HIDE_PREAD']; "
         "import sys; sys.path.insert(0, 'tests'); import conftest, proxylib.io.positional as p; "
         "print(hasattr(os, 'pread'), hasattr(os, 'preadv'), p.has_native_pread())"],
        cwd=ROOT, env=env, capture_output=True, text=True)
    assert probe.stdout.split() == ["False", "False", "False"], probe.stderr
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "tests/test_read_properties.py", "tests/test_fancy_properties.py"],
        cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


MAP_LIMIT_CHILD = r"""
import json, resource, sys
import numpy as np
import proxylib
from proxylib import ArrayProxy, ProxyError

path, shape = sys.argv[1], (256, 256, 128, 64)
with open("/proc/self/status") as status:
    vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
# room for volumes and buffers, none for a map of the 2 GiB file
resource.setrlimit(resource.RLIMIT_AS, (vm + 384 * 2**20, resource.RLIM_INFINITY))
out = {}
mask = np.zeros(shape[:3], bool)
mask[3, 4, 5] = mask[200, 100, 50] = True
for mmap in (True, "r"):
    for keep in (False, True):
        proxy = ArrayProxy(path, (shape, "<f4"), mmap=mmap, keep_file_open=keep)
        cell = out[f"{mmap}-{keep}"] = {}
        for name, key in (("volume", (Ellipsis, 3)), ("series", (10, 20, 30, slice(None))),
                          ("mask", (mask,)), ("ilist", (Ellipsis, [5, 1]))):
            try:
                cell[name] = float(np.asarray(proxy[key]).sum())
            except BaseException as err:
                cell[name] = f"{type(err).__name__}: {err}"
        try:
            np.asarray(proxy)
            cell["full"] = "read"
        except ProxyError as err:
            cell["full"] = "ProxyError" if path in str(err) else f"unnamed: {err}"
        except BaseException as err:
            cell["full"] = f"{type(err).__name__}: {err}"
        proxy.close()
print(json.dumps(out))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
def test_a_map_that_cannot_be_made_falls_back_to_reads(tmp_path):
    """Under an address-space limit no map of the file fits: reads use pread instead,
    and a full read (which would return a map) raises a proxylib error naming the file."""
    path = tmp_path / "big.raw"
    with open(path, "wb") as handle:
        handle.truncate(256 * 256 * 128 * 64 * 4)  # sparse: reads as zeros, costs no disk
    result = subprocess.run([sys.executable, "-c", MAP_LIMIT_CHILD, str(path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    import json
    cells = json.loads(result.stdout)
    assert len(cells) == 4
    for cell in cells.values():
        assert cell == {"volume": 0.0, "series": 0.0, "mask": 0.0, "ilist": 0.0,
                        "full": "ProxyError"}, cells


@pytest.mark.parametrize("kind", ["bytesio", "gzip", "open"])
def test_a_file_object_closed_by_another_thread_raises_a_proxy_error(kind, stored):
    from proxylib import ProxyError
    path, data = stored
    payload = path.read_bytes()
    if kind == "bytesio":
        handle = __import__("io").BytesIO(payload)
    elif kind == "gzip":
        handle = gzip.GzipFile(fileobj=__import__("io").BytesIO(gzip.compress(payload)))
    else:
        handle = open(path, "rb")
    proxy = ArrayProxy(handle, (data.shape, data.dtype, 16))
    np.testing.assert_array_equal(proxy[..., 1], data[..., 1])
    failures = []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            for key in ((Ellipsis, 2), (1, 2, 3), ([0, 2], slice(None), 4)):
                try:
                    np.testing.assert_array_equal(proxy[key], data[key])
                except ProxyError:
                    pass
                except BaseException as err:  # anything else is the bug
                    failures.append(err)

    reader = threading.Thread(target=read)
    reader.start()
    handle.close()
    stop.set()
    reader.join()
    assert failures == []
    with pytest.raises(ProxyError, match="closed"):
        proxy[..., 0]
