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


# -- loopback S3 (moto's server in its own process) ------------------------------------
#
# ``pytest benchmarks/bench_remote.py -k s3 --benchmark-only -s``. The 400 MB volume
# is put into a moto S3 server running in a subprocess on 127.0.0.1 (its own GIL);
# each round reads a fresh random volume or voxel, so no read repeats the last one.
# moto reads a whole object for every ranged GET (about 0.3-1 s for 400 MB on a busy
# 2-core machine), so the 100-request time series runs on a 6.6 MB object of 100
# volumes, with a gap threshold below one volume so that each point is its own
# request, as it is for a 400 MB file under the default 2 MiB threshold.

S3_BUCKET = "proxylib-bench"
#: The time-series object: 100 volumes of 64 KiB (float32).
SERIES_SHAPE = (32, 32, 16, 100)


def _free_port():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_served(volume):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    import socket
    import subprocess

    import boto3
    port = _free_port()
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                               "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):  # up to 30 s for the server to listen
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        options = {"key": "bench", "secret": "bench",
                   "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench",
                              aws_secret_access_key="bench", region_name="us-east-1")
        client.create_bucket(Bucket=S3_BUCKET)
        client.upload_file(volume.path, S3_BUCKET, "volume.nii")
        series = np.random.default_rng(5).standard_normal(SERIES_SHAPE, dtype=np.float32)
        client.put_object(Bucket=S3_BUCKET, Key="series.nii",
                          Body=b"\0" * volume.offset + series.tobytes(order="F"))
        yield f"s3://{S3_BUCKET}/volume.nii", options
    finally:
        server.terminate()
        server.wait(timeout=30)


class _LatencyProxy:
    """A loopback TCP forwarder that holds each client-to-server chunk ``delay`` seconds:
    every request pays one simulated network round trip (loopback has none)."""

    def __init__(self, port, delay):
        import asyncio
        import threading
        self.target, self.delay = port, delay
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def serve():
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(serve(), self.loop)
        ready.wait(10)

    async def _handle(self, reader, writer):
        import asyncio
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def pipe(source, sink, delay):
            try:
                while True:
                    data = await source.read(1 << 16)
                    if not data:
                        break
                    if delay:
                        await asyncio.sleep(delay)
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer, self.delay), pipe(up_reader, writer, 0))

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _options_via(options, latency, proxies):
    """The storage options, pointed through a latency proxy when ``latency`` > 0."""
    if not latency:
        return options
    port = int(options["client_kwargs"]["endpoint_url"].rsplit(":", 1)[1])
    if latency not in proxies:
        proxies[latency] = _LatencyProxy(port, latency)
    client = dict(options["client_kwargs"],
                  endpoint_url=f"http://127.0.0.1:{proxies[latency].port}")
    return dict(options, client_kwargs=client)


_proxies = {}


@pytest.fixture(scope="module", autouse=True)
def _close_proxies():
    yield
    for proxy in _proxies.values():
        proxy.close()


class _GetCounter:
    """GetObject calls and body bytes seen by botocore on one s3fs client."""

    def __init__(self, fs):
        fs.connect()
        self.calls = []
        fs.s3.meta.events.register("after-call.s3.GetObject", self._seen)

    def _seen(self, parsed=None, **_):
        self.calls.append((parsed or {}).get("ContentLength"))

    def take(self):
        calls, self.calls = self.calls, []
        return calls


_s3 = {}


def _keep_median(name, benchmark):
    stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    if stats is not None:
        _s3[name] = stats.stats.median


def _volume_bytes(volume):
    return int(np.prod(volume.shape[:3])) * volume.dtype.itemsize


def bench_s3_volume_proxylib(benchmark, s3_served, volume):
    import proxylib
    url, options = s3_served
    img = proxylib.load(url, storage_options=options)
    counter = _GetCounter(img.dataobj.file_like._fs)
    rng = np.random.default_rng(1)
    n = volume.shape[3]
    counter.take()
    img.dataobj[..., 0]
    _s3["volume requests"] = counter.take()
    benchmark.group = "s3 one volume (fresh random volume each round)"
    benchmark.pedantic(lambda t: img.dataobj[..., t], setup=lambda: ((int(rng.integers(n)),), {}),
                       rounds=5, warmup_rounds=1)
    _keep_median("volume proxylib", benchmark)


def bench_s3_volume_s3fs(benchmark, s3_served, volume):
    import s3fs
    url, options = s3_served
    fs = s3fs.S3FileSystem(**options)
    size = _volume_bytes(volume)
    rng = np.random.default_rng(2)
    n = volume.shape[3]

    def read(t):
        start = volume.offset + t * size
        data = fs.cat_file(url, start=start, end=start + size)
        return np.frombuffer(data, volume.dtype).reshape(volume.shape[:3], order="F")

    benchmark.group = "s3 one volume (fresh random volume each round)"
    benchmark.pedantic(read, setup=lambda: ((int(rng.integers(n)),), {}), rounds=5,
                       warmup_rounds=1)
    _keep_median("volume s3fs", benchmark)


def _series_proxy(url, options, volume):
    from proxylib import ArrayProxy
    from proxylib.io.cost import CostModel
    series_url = url.rsplit("/", 1)[0] + "/series.nii"
    one_volume = int(np.prod(SERIES_SHAPE[:3])) * 4
    return ArrayProxy(series_url, (SERIES_SHAPE, np.float32, volume.offset),
                      storage_options=options,
                      cost=CostModel(gap_threshold=one_volume // 2, block_size=16 << 20))


#: Simulated round trips for the time series: none (loopback) and 20 ms (a nearby region).
LATENCIES = [0.0, 0.02]


@pytest.mark.parametrize("latency", LATENCIES)
def bench_s3_series_concurrent(benchmark, s3_served, volume, latency):
    from proxylib.io.remote.opening import CONCURRENT_REQUESTS
    url, options = s3_served
    proxy = _series_proxy(url, _options_via(options, latency, _proxies), volume)
    counter = _GetCounter(proxy.file_like._fs)
    rng = np.random.default_rng(3)
    voxel = lambda: tuple(int(rng.integers(d)) for d in SERIES_SHAPE[:3])  # noqa: E731
    counter.take()
    proxy[voxel()]
    _s3["series requests"] = len(counter.take())
    _s3["in flight"] = CONCURRENT_REQUESTS
    benchmark.group = f"s3 100-point time series, {latency * 1e3:.0f} ms round trip"
    benchmark.pedantic(lambda key: proxy[key], setup=lambda: ((voxel(),), {}), rounds=5,
                       warmup_rounds=1)
    _keep_median(f"series concurrent {latency}", benchmark)


@pytest.mark.parametrize("latency", LATENCIES)
def bench_s3_series_one_by_one(benchmark, s3_served, volume, latency):
    import s3fs
    url, options = s3_served
    series_url = url.rsplit("/", 1)[0] + "/series.nii"
    fs = s3fs.S3FileSystem(**_options_via(options, latency, _proxies))
    rng = np.random.default_rng(4)
    size = int(np.prod(SERIES_SHAPE[:3])) * 4

    def read(x, y, z):
        first = volume.offset + (x + SERIES_SHAPE[0] * (y + SERIES_SHAPE[1] * z)) * 4
        return [fs.cat_file(series_url, start=first + t * size, end=first + t * size + 4)
                for t in range(SERIES_SHAPE[3])]

    benchmark.group = f"s3 100-point time series, {latency * 1e3:.0f} ms round trip"
    benchmark.pedantic(read, setup=lambda: (tuple(int(rng.integers(d))
                                                  for d in SERIES_SHAPE[:3]), {}),
                       rounds=5, warmup_rounds=1)
    _keep_median(f"series one by one {latency}", benchmark)


def bench_s3_memory(benchmark, s3_served, volume, served):
    """Peak allocation of one volume over S3, and over HTTP from a server ignoring Range."""
    import proxylib
    from proxylib.bench.runner import peak_allocation
    from proxylib.io.remote import open_url as open_remote
    url, options = s3_served
    img = proxylib.load(url, storage_options=options)
    result = _volume_bytes(volume)
    t = volume.shape[3] // 2
    _s3["memory s3"] = peak_allocation(lambda: img.dataobj[..., t]) - result
    server, _ = served
    streamed = proxylib.load(open_remote(server.url("volume.nii"), ignored_range="stream"))
    server.ignore_range = True
    try:
        _s3["memory ignored range"] = peak_allocation(lambda: streamed.dataobj[..., t]) - result
    finally:
        server.ignore_range = False
    _s3["memory result"] = result
    benchmark.pedantic(lambda: None, rounds=1)


@pytest.fixture(scope="module", autouse=True)
def _report_s3(request):
    yield
    if not _s3:
        return
    lines = ["", "loopback S3 (moto in a subprocess):"]
    if "volume proxylib" in _s3 and "volume s3fs" in _s3:
        calls = _s3.get("volume requests", [])
        lines.append(f"  one volume: proxylib {_s3['volume proxylib'] * 1e3:.1f} ms, s3fs "
                     f"ranged GET {_s3['volume s3fs'] * 1e3:.1f} ms, ratio "
                     f"{_s3['volume proxylib'] / _s3['volume s3fs']:.2f}x (target <= 1.5x); "
                     f"{len(calls)} GetObject of {calls} bytes")
    for latency in LATENCIES:
        together = _s3.get(f"series concurrent {latency}")
        alone = _s3.get(f"series one by one {latency}")
        if together is None or alone is None:
            continue
        lines.append(f"  time series, {latency * 1e3:.0f} ms round trip: concurrent "
                     f"{together * 1e3:.1f} ms ({_s3.get('series requests')} requests, at most "
                     f"{_s3.get('in flight')} in flight), one by one {alone * 1e3:.1f} ms, "
                     f"ratio {together / alone:.2f}x (target <= 0.3x)")
    if "memory s3" in _s3:
        lines.append(f"  memory beyond the {_s3['memory result'] / 2**20:.1f} MiB result: S3 "
                     f"{_s3['memory s3'] / 2**20:.2f} MiB, HTTP ignoring Range (streamed) "
                     f"{_s3['memory ignored range'] / 2**20:.2f} MiB")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n".join(lines))
