"""Remote reads over a loopback S3 server: one volume, a 100-point time series, memory.

Run: ``pytest benchmarks/bench_remote_s3.py --benchmark-only -s`` (under
``flock /work/notes/bench.lock`` on a shared machine). The server is moto's, in
a subprocess on 127.0.0.1 (its own GIL); ``PROXYLIB_BENCH_S3RVER=/path/to/s3rver``
uses the node server ``s3rver`` from the npm registry instead (not installed by
any extra). Each round reads a fresh random volume or voxel, so no read repeats
the last one.

The time series is measured with no round trip (loopback) and through
:class:`LatencyProxy`, which adds one (20 ms, a nearby region), with
``in_flight`` requests at most (proxylib's
:data:`~proxylib.io.remote.opening.CONCURRENT_REQUESTS` is 8). Besides wall
time, each series benchmark records the CPU time the server process and this
process spent per request (psutil); the report prints the floor those set for
a concurrent read on this machine: moto and s3rver each answer on one
interpreter or event loop (their CPU is serial), the client's botocore work
runs on fsspec's one event-loop thread, and both share the machine's cores.
When one-by-one time is mostly CPU, as on loopback, no amount of concurrency
gets below that floor.

moto reads a whole object for every ranged GET (about 0.3-1 s for 400 MB on a
busy 2-core machine), so the series runs on a 6.6 MB object of 100 volumes,
with a gap threshold below one volume so that each point is its own request,
as it is for a 400 MB file under the default 2 MiB threshold.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")
psutil = pytest.importorskip("psutil")

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from test_remote_server import RangeServer  # noqa: E402

S3_BUCKET = "proxylib-bench"
#: The time-series object: 100 volumes of 64 KiB (float32).
SERIES_SHAPE = (32, 32, 16, 100)
#: Simulated round trips for the time series: none (loopback) and 20 ms (a nearby region).
LATENCIES = [0.0, 0.02]
#: Most range requests in flight for the concurrent series: proxylib's default and twice it.
IN_FLIGHT = [8, 16]


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(port):
    """The S3 server subprocess and its credentials: moto, or s3rver when asked for."""
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    s3rver = os.environ.get("PROXYLIB_BENCH_S3RVER")
    if s3rver:
        command = [s3rver, "-d", tempfile.mkdtemp(prefix="proxylib-s3rver-"), "-a",
                   "127.0.0.1", "-p", str(port), "-s", "--allow-mismatched-signatures",
                   "--no-vhost-buckets"]
        key, name = "S3RVER", "s3rver"
    else:
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        key, name = "bench", "moto"
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    for _ in range(300):  # up to 30 s for the server to listen
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    return process, key, name


@pytest.fixture(scope="module")
def s3_served(volume):
    import boto3
    port = _free_port()
    server, key, name = _start_server(port)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        options = {"key": key, "secret": key,
                   "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                              aws_secret_access_key=key, region_name="us-east-1")
        client.create_bucket(Bucket=S3_BUCKET)
        client.upload_file(volume.path, S3_BUCKET, "volume.nii")
        series = np.random.default_rng(5).standard_normal(SERIES_SHAPE, dtype=np.float32)
        client.put_object(Bucket=S3_BUCKET, Key="series.nii",
                          Body=b"\0" * volume.offset + series.tobytes(order="F"))
        _s3["server"] = name
        yield f"s3://{S3_BUCKET}/volume.nii", options, psutil.Process(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def http_served(volume):
    with open(volume.path, "rb") as handle:
        data = handle.read()
    with RangeServer({"volume.nii": data}) as server:
        yield server


class LatencyProxy:
    """A loopback TCP forwarder that holds each client-to-server chunk ``delay`` seconds:
    every request pays one simulated network round trip (loopback has none)."""

    def __init__(self, port, delay):
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


_proxies = {}


def _options_via(options, latency, in_flight=None):
    """The storage options, through a latency proxy when ``latency`` > 0, with a
    connection pool for ``in_flight`` requests (botocore's default pool holds 10)."""
    if latency:
        port = int(options["client_kwargs"]["endpoint_url"].rsplit(":", 1)[1])
        if latency not in _proxies:
            _proxies[latency] = LatencyProxy(port, latency)
        client = dict(options["client_kwargs"],
                      endpoint_url=f"http://127.0.0.1:{_proxies[latency].port}")
        options = dict(options, client_kwargs=client)
    if in_flight and in_flight > 10:
        options = dict(options, config_kwargs={"max_pool_connections": in_flight})
    return options


@pytest.fixture(scope="module", autouse=True)
def _close_proxies():
    yield
    for proxy in _proxies.values():
        proxy.close()
    _proxies.clear()


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


def _cpu(process):
    times = process.cpu_times()
    return times.user + times.system


def _keep_cpu(name, benchmark, server, read, draw, rounds=3):
    """Server and client CPU seconds per request over ``rounds`` fresh reads (not in a
    smoke run, where the benchmark is disabled)."""
    if getattr(benchmark, "stats", None) is None:
        return
    me = psutil.Process()
    server_cpu = client_cpu = 0.0
    for _ in range(rounds):
        key = draw()
        before = _cpu(server), _cpu(me)
        read(key)
        server_cpu += _cpu(server) - before[0]
        client_cpu += _cpu(me) - before[1]
    requests = rounds * SERIES_SHAPE[3]
    _s3[name] = (server_cpu / requests, client_cpu / requests)


def _volume_bytes(volume):
    return int(np.prod(volume.shape[:3])) * volume.dtype.itemsize


def bench_s3_volume_proxylib(benchmark, s3_served, volume):
    import proxylib
    url, options, _ = s3_served
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
    url, options, _ = s3_served
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


def _voxels(seed):
    rng = np.random.default_rng(seed)
    return lambda: tuple(int(rng.integers(d)) for d in SERIES_SHAPE[:3])


@pytest.mark.parametrize("in_flight", IN_FLIGHT)
@pytest.mark.parametrize("latency", LATENCIES)
def bench_s3_series_concurrent(benchmark, s3_served, volume, latency, in_flight, monkeypatch):
    from proxylib.io.remote import opening
    # the request pool is process-wide and sized once: a fresh one for this limit
    monkeypatch.setattr(opening, "CONCURRENT_REQUESTS", in_flight)
    monkeypatch.setattr(opening, "_POOL", None)
    url, options, server = s3_served
    proxy = _series_proxy(url, _options_via(options, latency, in_flight), volume)
    counter = _GetCounter(proxy.file_like._fs)
    voxel = _voxels(3)
    counter.take()
    proxy[voxel()]
    _s3["series requests"] = len(counter.take())
    benchmark.group = f"s3 100-point time series, {latency * 1e3:.0f} ms round trip"
    benchmark.pedantic(lambda key: proxy[key], setup=lambda: ((voxel(),), {}), rounds=5,
                       warmup_rounds=1)
    _keep_median(f"series concurrent {latency} {in_flight}", benchmark)
    _keep_cpu(f"cpu concurrent {latency} {in_flight}", benchmark, server, lambda key: proxy[key], voxel)
    monkeypatch.setattr(opening, "_POOL", None)  # the default-sized pool for what follows


@pytest.mark.parametrize("latency", LATENCIES)
def bench_s3_series_one_by_one(benchmark, s3_served, volume, latency):
    import s3fs
    url, options, server = s3_served
    series_url = url.rsplit("/", 1)[0] + "/series.nii"
    fs = s3fs.S3FileSystem(**_options_via(options, latency))
    size = int(np.prod(SERIES_SHAPE[:3])) * 4

    def read(key):
        x, y, z = key
        first = volume.offset + (x + SERIES_SHAPE[0] * (y + SERIES_SHAPE[1] * z)) * 4
        return [fs.cat_file(series_url, start=first + t * size, end=first + t * size + 4)
                for t in range(SERIES_SHAPE[3])]

    voxel = _voxels(4)
    benchmark.group = f"s3 100-point time series, {latency * 1e3:.0f} ms round trip"
    benchmark.pedantic(read, setup=lambda: ((voxel(),), {}), rounds=5, warmup_rounds=1)
    _keep_median(f"series one by one {latency}", benchmark)
    _keep_cpu(f"cpu one by one {latency}", benchmark, server, read, voxel)


def bench_s3_memory(benchmark, s3_served, volume, http_served):
    """Peak allocation of one volume over S3, and over HTTP from a server ignoring Range."""
    import proxylib
    from proxylib.bench.runner import peak_allocation
    from proxylib.io.remote import open_url
    url, options, _ = s3_served
    img = proxylib.load(url, storage_options=options)
    result = _volume_bytes(volume)
    t = volume.shape[3] // 2
    _s3["memory s3"] = peak_allocation(lambda: img.dataobj[..., t]) - result
    streamed = proxylib.load(open_url(http_served.url("volume.nii"), ignored_range="stream"))
    http_served.ignore_range = True
    try:
        _s3["memory ignored range"] = peak_allocation(lambda: streamed.dataobj[..., t]) - result
    finally:
        http_served.ignore_range = False
    _s3["memory result"] = result
    benchmark.pedantic(lambda: None, rounds=1)


def _series_lines():
    lines = []
    cores = psutil.cpu_count() or 1
    for latency in LATENCIES:
        alone = _s3.get(f"series one by one {latency}")
        alone_cpu = _s3.get(f"cpu one by one {latency}", (0.0, 0.0))
        if alone is None:
            continue
        lines.append(f"  time series, {latency * 1e3:.0f} ms round trip: one by one (s3fs) "
                     f"{alone * 1e3:.1f} ms; server CPU {alone_cpu[0] * 1e3:.2f} ms, client "
                     f"CPU {alone_cpu[1] * 1e3:.2f} ms per request")
        for in_flight in IN_FLIGHT:
            together = _s3.get(f"series concurrent {latency} {in_flight}")
            server_cpu, client_cpu = _s3.get(f"cpu concurrent {latency} {in_flight}", (0, 0))
            if together is None:
                continue
            requests = SERIES_SHAPE[3]
            floor = max(server_cpu, client_cpu, (server_cpu + client_cpu) / cores) * requests
            lines.append(f"    {in_flight:2d} in flight: {together * 1e3:.1f} ms, ratio "
                         f"{together / alone:.2f}x (target <= 0.3x); server CPU "
                         f"{server_cpu * 1e3:.2f}, client CPU {client_cpu * 1e3:.2f} ms per "
                         f"request; CPU floor on {cores} cores {floor * 1e3:.0f} ms = "
                         f"{floor / alone:.2f}x")
    return lines


@pytest.fixture(scope="module", autouse=True)
def _report_s3(request):
    yield
    if not any(isinstance(value, float) for value in _s3.values()):
        return
    lines = ["", f"loopback S3 ({_s3.get('server')} in a subprocess):"]
    if "volume proxylib" in _s3 and "volume s3fs" in _s3:
        calls = _s3.get("volume requests", [])
        lines.append(f"  one volume: proxylib {_s3['volume proxylib'] * 1e3:.1f} ms, s3fs "
                     f"ranged GET {_s3['volume s3fs'] * 1e3:.1f} ms, ratio "
                     f"{_s3['volume proxylib'] / _s3['volume s3fs']:.2f}x (target <= 1.5x); "
                     f"{len(calls)} GetObject of {calls} bytes")
    lines += _series_lines()
    if "memory s3" in _s3:
        lines.append(f"  memory beyond the {_s3['memory result'] / 2**20:.1f} MiB result: S3 "
                     f"{_s3['memory s3'] / 2**20:.2f} MiB, HTTP ignoring Range (streamed) "
                     f"{_s3['memory ignored range'] / 2**20:.2f} MiB")
    lines.append(f"  load average {os.getloadavg()[0]:.1f} at the end")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n".join(lines))
