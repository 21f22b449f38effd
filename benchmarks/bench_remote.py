"""Remote reads over HTTP (loopback): bytes transferred and time per standard key,
vs downloading the whole file first.

Run: ``pytest benchmarks/bench_remote.py --benchmark-only`` (``PROXYLIB_BENCH_SHAPE``
shrinks the volume). The server is tests/test_remote_server.py's RangeServer on
127.0.0.1, which counts the bytes it sends; each benchmark's ``extra_info``
holds ``requests`` and ``bytes`` for one read, and the terminal summary prints
them. ``bench_round_trip`` measures one small range request and one large one;
latency x bandwidth is the gap worth reading through rather than skipping
(loopback has almost no latency; on a WAN it is 20-50 ms, hence
``REMOTE_COST.gap_threshold`` = 2 MiB).
"""

import os
import sys
import time

import numpy as np
import pytest

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from test_remote_server import RangeServer  # noqa: E402

from proxylib import ArrayProxy  # noqa: E402
from proxylib.io.remote import open_url  # noqa: E402

from bench_core import KEYS  # noqa: E402

_transfers = {}


@pytest.fixture(scope="module")
def served(volume):
    with open(volume.path, "rb") as handle:
        data = handle.read()
    with RangeServer({"volume.nii": data}) as server:
        yield server, len(data)


def _one_read_counts(server, fn):
    server.reset_counts()
    fn()
    return len(server.gets()), server.bytes_sent


@pytest.mark.parametrize("key_name", list(KEYS))
def bench_remote_key(record, benchmark, served, volume, key_name):
    server, size = served
    key = KEYS[key_name](volume.shape)
    proxy = ArrayProxy(open_url(server.url("volume.nii")), volume.spec,
                       cost=open_url(server.url("volume.nii")).cost)
    read = lambda: proxy[key]  # noqa: E731
    requests, nbytes = _one_read_counts(server, read)
    record(key_name, "proxylib over HTTP", read, rounds=3)
    benchmark.extra_info.update(requests=requests, bytes=nbytes, file_bytes=size)
    _transfers[key_name] = (requests, nbytes, size)


@pytest.mark.parametrize("key_name", list(KEYS))
def bench_download_then_index(record, benchmark, served, volume, key_name):
    server, size = served
    import fsspec
    key = KEYS[key_name](volume.shape)
    url = server.url("volume.nii")

    def read():
        data = fsspec.filesystem("http").cat_file(url)
        array = np.frombuffer(data, volume.dtype, count=int(np.prod(volume.shape)),
                              offset=volume.offset).reshape(volume.shape, order="F")
        return np.array(array[key])

    requests, nbytes = _one_read_counts(server, read)
    record(key_name, "download whole file", read, rounds=3)
    benchmark.extra_info.update(requests=requests, bytes=nbytes, file_bytes=size)


def bench_round_trip(benchmark, served):
    server, size = served
    remote = open_url(server.url("volume.nii"))
    small = bytearray(1)
    big = bytearray(min(size, 64 << 20))
    t0 = time.perf_counter()
    for _ in range(50):
        remote.read_at(0, small)
    latency = (time.perf_counter() - t0) / 50
    t0 = time.perf_counter()
    remote.read_at(0, big)
    bandwidth = len(big) / (time.perf_counter() - t0 - latency)
    benchmark.extra_info.update(latency_ms=latency * 1e3, bandwidth_MBps=bandwidth / 1e6,
                                break_even_gap_bytes=latency * bandwidth)
    _transfers["(round trip)"] = (latency, bandwidth, latency * bandwidth)
    benchmark.pedantic(lambda: remote.read_at(0, small), rounds=20, iterations=1)


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    if not _transfers:
        return
    lines = ["", "remote transfers (one read each):"]
    for key, values in _transfers.items():
        if key == "(round trip)":
            latency, bandwidth, gap = values
            lines.append(f"  loopback: {latency * 1e3:.3f} ms per request, "
                         f"{bandwidth / 1e6:.0f} MB/s, break-even gap {gap / 1024:.0f} KiB")
        else:
            requests, nbytes, size = values
            lines.append(f"  {key:28s} {requests:4d} requests {nbytes / 2**20:9.2f} MiB "
                         f"({nbytes / size:.3%} of the {size / 2**20:.0f} MiB file)")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n".join(lines))
