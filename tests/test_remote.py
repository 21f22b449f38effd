"""Remote files read by byte range, against a real HTTP server on 127.0.0.1 that
honours Range requests and counts the requests and bytes it sends."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

pytest.importorskip("fsspec", reason="fsspec is not installed (pip install 'proxylib[remote]')")
pytest.importorskip("aiohttp", reason="aiohttp is not installed (pip install 'proxylib[remote]')")

import proxylib  # noqa: E402
from proxylib import ArrayProxy, FileChangedError, HeaderError, ProxyReadError  # noqa: E402
from proxylib.indexing.plan import CostModel  # noqa: E402
from proxylib.io.remote import (HEAD_BYTES, REMOTE_COST, RETRIES, RemoteFile,  # noqa: E402
                                RemoteGzipFile, is_url, open_url)

from test_remote_server import RangeServer  # noqa: E402

SHAPE = (64, 64, 32, 24)          # 256 KiB int16 volumes, 6 MiB in all
VOLUME = 64 * 64 * 32 * 2
OFFSET = 352
SLOPE, INTER = 0.5, 10.0


@pytest.fixture(scope="module")
def stored():
    rng = np.random.default_rng(3)
    return rng.integers(-3000, 3000, size=SHAPE, dtype=np.int16)


@pytest.fixture(scope="module")
def files(stored, tmp_path_factory):
    folder = tmp_path_factory.mktemp("remote")
    raw = folder / "bold.raw"
    stored.T.tofile(raw)
    img = proxylib.Nifti1Image(ArrayProxy(raw, (SHAPE, np.int16, 0, SLOPE, INTER)), np.eye(4))
    proxylib.save(img, folder / "bold.nii")
    proxylib.save(img, folder / "bold.nii.gz")
    return {name: (folder / name).read_bytes() for name in ("bold.nii", "bold.nii.gz")}


@pytest.fixture
def server(files):
    with RangeServer(files) as running:
        yield running


@pytest.fixture
def values(stored):
    return stored.astype(np.float64) * SLOPE + INTER


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_is_url():
    assert is_url("http://host/x.nii") and is_url("s3://bucket/key") and is_url("gcs://b/k")
    assert not is_url("/data/x.nii") and not is_url("file:///data/x.nii")
    assert not is_url("x.nii") and not is_url(b"http://x") and not is_url(3)


def test_load_reads_only_the_header(server, files):
    img = proxylib.load(server.url("bold.nii"))
    assert img.shape == SHAPE and img.dataobj.dtype == np.float64
    gets = server.gets()
    assert len(gets) == 1 and server.bytes_sent <= HEAD_BYTES
    assert len(server.requests) <= 2                     # a HEAD for size + ETag, one GET


def test_one_volume_transfers_one_volume(server, values):
    img = proxylib.load(server.url("bold.nii"))
    server.reset_counts()
    np.testing.assert_array_equal(img.dataobj[..., 17], values[..., 17])
    [get] = server.gets()
    assert get.body_bytes == VOLUME
    start = OFFSET + 17 * VOLUME
    assert get.range == f"bytes={start}-{start + VOLUME - 1}"


def test_x_slab_requests_bounded_by_the_cost_model(server, values):
    img = proxylib.load(server.url("bold.nii"))
    server.reset_counts()
    np.testing.assert_array_equal(img.dataobj[10], values[10])
    rows = math.prod(SHAPE[1:])
    span = (math.prod(SHAPE) - 63) * 2
    bound = math.ceil(span / REMOTE_COST.block_size) + 1
    assert len(server.gets()) <= bound < rows
    # a time series: runs one volume apart, read through (gap < threshold)
    server.reset_counts()
    np.testing.assert_array_equal(img.dataobj[3, 4, 5, :], values[3, 4, 5, :])
    assert len(server.gets()) <= bound
    # a cost model with a small gap threshold makes one request per run instead
    proxy = ArrayProxy(open_url(server.url("bold.nii")), img.dataobj.spec,
                       cost=CostModel(gap_threshold=1024))
    server.reset_counts()
    np.testing.assert_array_equal(proxy[3, 4, 5, :], values[3, 4, 5, :])
    assert len(server.gets()) == SHAPE[3] and server.bytes_sent == 2 * SHAPE[3]


def test_proxy_pickles_as_a_url_and_reads_after(server, values):
    img = proxylib.load(server.url("bold.nii"))
    blob = pickle.dumps(img.dataobj)
    assert len(blob) < 4096
    copy = pickle.loads(blob)
    server.reset_counts()
    np.testing.assert_array_equal(copy[5:9, :, 2, 20], values[5:9, :, 2, 20])
    assert all(r.method == "GET" for r in server.requests)  # identity travelled: no HEAD


def test_dropped_connections_are_retried(server, values):
    proxy = ArrayProxy(open_url(server.url("bold.nii"), backoff=0.01),
                       (SHAPE, np.int16, OFFSET, SLOPE, INTER), cost=REMOTE_COST)
    server.reset_counts()
    server.drop_next = RETRIES
    np.testing.assert_array_equal(proxy[..., 2], values[..., 2])
    statuses = [r.status for r in server.gets()]
    assert statuses == [0] * RETRIES + [206]  # every drop seen, then the answer


def test_retries_are_bounded_and_the_error_names_url_and_range(server):
    url = server.url("bold.nii")
    proxy = ArrayProxy(open_url(url, backoff=0.01), (SHAPE, np.int16, OFFSET),
                       cost=REMOTE_COST)
    server.reset_counts()
    server.drop_always = True
    start = OFFSET + 3 * VOLUME
    with pytest.raises(ProxyReadError) as info:
        proxy[..., 3]
    message = str(info.value)
    assert url in message and f"bytes {start}-{start + VOLUME - 1}" in message
    assert f"after {RETRIES + 1} attempts" in message
    assert isinstance(info.value, OSError) and info.value.path == url
    assert info.value.offset == start
    # proxylib makes RETRIES + 1 attempts; aiohttp itself re-sends an idempotent
    # request once when a reused keep-alive connection turns out to be closed
    assert RETRIES + 1 <= len(server.gets()) <= 2 * (RETRIES + 1)


def test_missing_file_is_not_retried(server):
    url = server.url("nothere.nii")
    with pytest.raises(ProxyReadError, match="nothere.nii.*not found"):
        proxylib.load(url)
    assert len(server.requests) <= 2


def test_file_changed_on_server(server, files, values):
    img = proxylib.load(server.url("bold.nii"))
    changed = bytearray(files["bold.nii"])
    changed[OFFSET] ^= 1
    server.files["bold.nii"] = bytes(changed)
    with pytest.raises(FileChangedError, match="bold.nii.*changed on the server"):
        img.dataobj[..., 0]


def test_truncated_file_is_found_at_load(server, files):
    server.files["short.nii"] = files["bold.nii"][:OFFSET + VOLUME]
    with pytest.raises(HeaderError, match="short.nii"):
        proxylib.load(server.url("short.nii"))


def test_server_without_ranges_is_refused(server):
    proxy = ArrayProxy(open_url(server.url("bold.nii")), (SHAPE, np.int16, OFFSET),
                       cost=REMOTE_COST)
    server.ignore_range = True
    with pytest.raises(ProxyReadError, match="ignores Range"):
        proxy[..., 1]


def test_fsspec_open_file(server, values):
    import fsspec
    with fsspec.open(server.url("bold.nii"), "rb") as handle:
        img = proxylib.load(handle)
        np.testing.assert_array_equal(img.dataobj[..., 5], values[..., 5])
    img = proxylib.load(fsspec.open(server.url("bold.nii")))
    np.testing.assert_array_equal(img.dataobj[1, 2], values[1, 2])


def test_gzip_over_http_uses_a_saved_index(server, files, values, cache_dir):
    url = server.url("bold.nii.gz")
    img = proxylib.load(url)
    assert isinstance(img.dataobj.file_like, RemoteGzipFile)
    np.testing.assert_array_equal(img.dataobj[..., 12], values[..., 12])
    saved = list((cache_dir / "gzip").glob("*.pxgzi"))
    assert len(saved) == 1
    # a fresh reader (another process, a dask worker) imports the index and starts
    # at the seek point before the volume instead of the start of the file
    again = pickle.loads(pickle.dumps(img.dataobj))
    server.reset_counts()
    np.testing.assert_array_equal(again[..., 11], values[..., 11])
    compressed_volume = len(files["bold.nii.gz"]) / SHAPE[3]
    assert server.bytes_sent < compressed_volume + 2 * (1 << 20)
    assert server.bytes_sent < len(files["bold.nii.gz"]) / 2
    # a whole index, built once, serves the last volume the same way
    img.dataobj.file_like.build_index()
    fresh = pickle.loads(pickle.dumps(img.dataobj))
    server.reset_counts()
    np.testing.assert_array_equal(fresh[..., -1], values[..., -1])
    assert server.bytes_sent < compressed_volume + 2 * (1 << 20)


def test_gzip_index_is_keyed_by_etag(server, files):
    first = open_url(server.url("bold.nii.gz"))
    server.files["bold.nii.gz"] = files["bold.nii.gz"] + b""  # same bytes: same ETag
    assert open_url(server.url("bold.nii.gz")).index_identity() == first.index_identity()
    server.files["other.nii.gz"] = files["bold.nii.gz"]
    assert open_url(server.url("other.nii.gz")).index_identity() != first.index_identity()


def test_dask_over_http(server, values):
    da = pytest.importorskip("dask.array")
    from proxylib.daskarray import to_dask
    for name in ("bold.nii", "bold.nii.gz"):
        img = proxylib.load(server.url(name))
        arr = to_dask(img, chunks=(-1, -1, -1, 4))
        assert arr.name == to_dask(proxylib.load(server.url(name)), chunks=(-1, -1, -1, 4)).name
        np.testing.assert_allclose(arr.mean(axis=-1).compute(scheduler="threads"),
                                   values.mean(axis=-1), rtol=1e-12)
        assert isinstance(arr, da.Array)


def test_remote_file_protocol(server, files):
    remote = open_url(server.url("bold.nii"))
    assert isinstance(remote, RemoteFile) and remote.size == len(files["bold.nii"])
    remote.seek(-10, 2)
    assert remote.read() == files["bold.nii"][-10:]
    remote.seek(100)
    assert remote.read(50) == files["bold.nii"][100:150]


def test_to_dask_workers_carry_the_storage_options(server, values):
    pytest.importorskip("dask.array")
    options = {"headers": {"X-Any": "1"}}
    arr = proxylib.to_dask(proxylib.load(server.url("bold.nii"), storage_options=options),
                           chunks=(-1, -1, -1, 6))
    np.testing.assert_allclose(arr.mean(axis=-1).compute(scheduler="threads"),
                               values.mean(axis=-1), rtol=1e-12)
    carried = [v for v in arr.dask.values() if isinstance(v, ArrayProxy)]
    assert carried and all(p.file_like.storage_options == options for p in carried)
    shipped = pickle.loads(pickle.dumps(carried[0]))
    assert shipped.file_like.storage_options == options
    proxy = ArrayProxy(server.url("bold.nii"), (SHAPE, np.int16, OFFSET),
                       storage_options=options)
    assert proxy.file_like.storage_options == options
    assert pickle.loads(pickle.dumps(proxy.copy())).file_like.storage_options == options
    with pytest.raises(ValueError, match="storage_options apply to URLs"):
        ArrayProxy("local.raw", (SHAPE, np.int16), storage_options=options)


def test_to_dask_opens_a_url_with_storage_options(server, values, tmp_path):
    """``to_dask(url, storage_options=...)``: the options reach every request, the
    tasks' pickled proxies carry them, and they are refused where they cannot apply."""
    pytest.importorskip("dask.array")
    seen = server.watch_header("X-Token")
    options = {"headers": {"X-Token": "dask"}}
    arr = proxylib.to_dask(server.url("bold.nii"), chunks=(-1, -1, -1, 6),
                           storage_options=options)
    carried = [v for v in arr.dask.values() if isinstance(v, ArrayProxy)]
    assert carried and pickle.loads(pickle.dumps(carried[0])).file_like.storage_options == options
    np.testing.assert_allclose(arr.mean(axis=-1).compute(scheduler="threads"),
                               values.mean(axis=-1), rtol=1e-12)
    assert len(seen) >= 5 and set(seen) == {"dask"}  # size, header, 4 chunks
    img = proxylib.load(server.url("bold.nii"))
    with pytest.raises(TypeError, match="already open and carries the options"):
        proxylib.to_dask(img, storage_options=options)
    with pytest.raises(TypeError, match="already open"):
        proxylib.to_dask(img.dataobj, storage_options=options)
    local = tmp_path / "local.nii"
    proxylib.save(proxylib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4)), local)
    with pytest.raises(ValueError, match="storage_options"):
        proxylib.to_dask(local, storage_options=options)
    np.testing.assert_array_equal(proxylib.to_dask(local).compute(), np.zeros((2, 2, 2)))
