"""Remote reads against servers that misbehave: one regression test per defect of
issue 14, each against tests/test_remote_server.py's loopback server told to
misbehave that way. numpy is the oracle for values; the server's own log is
the oracle for what went over the wire."""

from __future__ import annotations

import gzip
import time

import numpy as np
import pytest

pytest.importorskip("fsspec", reason="fsspec is not installed (pip install 'proxylib[remote]')")
aiohttp = pytest.importorskip("aiohttp", reason="aiohttp is not installed")

import proxylib  # noqa: E402
from proxylib import ArrayProxy, FileChangedError, ProxyReadError  # noqa: E402
from proxylib.errors import FileAccessError, MissingFileError  # noqa: E402
from proxylib.io.remote import open_url  # noqa: E402
from proxylib import RangeIgnoredError  # noqa: E402
from proxylib.io.remote.transports import (CONNECT_TIMEOUT, READ_TIMEOUT,  # noqa: E402
                                           with_default_timeouts)

from test_remote_server import RangeServer, refused_url  # noqa: E402

SHAPE = (32, 32, 16, 12)           # 32 KiB int16 volumes
VOLUME = 32 * 32 * 16 * 2
OFFSET = 352


def nifti_bytes(values: np.ndarray, offset: int = OFFSET) -> bytes:
    """A single-file NIfTI-1 image of int16 ``values`` (header from nibabel, an outside oracle)."""
    nib = pytest.importorskip("nibabel")
    header = nib.Nifti1Header()
    header.set_data_shape(values.shape)
    header.set_data_dtype(np.int16)
    header.set_data_offset(offset)
    header["magic"] = b"n+1"
    head = header.binaryblock
    return head + b"\0" * (offset - len(head)) + values.astype("<i2").tobytes(order="F")


@pytest.fixture(scope="module")
def stored():
    return np.random.default_rng(14).integers(-3000, 3000, size=SHAPE, dtype=np.int16)


@pytest.fixture(scope="module")
def nii(stored):
    return nifti_bytes(stored)


@pytest.fixture
def server(nii):
    with RangeServer({"bold.nii": nii}) as running:
        yield running


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def quick(url: str, **kwargs):
    return open_url(url, backoff=0.01, **kwargs)


# -- a 206 for another range -----------------------------------------------------
def test_206_for_another_range_with_honest_content_range_is_refused(server, stored):
    proxy = ArrayProxy(quick(server.url("bold.nii")), (SHAPE, np.int16, OFFSET))
    server.shift = 4096
    start = OFFSET + 3 * VOLUME
    with pytest.raises(RangeIgnoredError) as info:
        proxy[..., 3]
    message = str(info.value)
    assert server.url("bold.nii") in message and f"bytes {start}-{start + VOLUME - 1}" in message
    assert f"sent bytes {start + 4096}-" in message and message.endswith(".")
    assert len(server.gets()) == 2  # the header, then one refused answer: nothing retried


def test_206_with_a_lying_content_range_is_refused(server):
    proxy = ArrayProxy(quick(server.url("bold.nii")), (SHAPE, np.int16, OFFSET))
    server.shift, server.lie = 100, True  # names the range asked, sends 100 bytes fewer
    with pytest.raises(RangeIgnoredError, match="Content-Length is"):
        proxy[..., 2]


def test_206_without_content_range_is_refused():
    from proxylib.io.remote.responses import check_range
    with pytest.raises(RangeIgnoredError, match="no Content-Range"):
        check_range("http://h/x", 0, 10, 206, {}, 100)
    with pytest.raises(RangeIgnoredError, match="status 204"):
        check_range("http://h/x", 0, 10, 204, {}, 100)
    with pytest.raises(FileChangedError, match="holds 99 bytes"):
        check_range("http://h/x", 0, 10, 206, {"content-range": "bytes 0-9/99"}, 100)
    check_range("http://h/x", 0, 10, 206, {"content-range": "bytes 0-9/100"}, 100)


# -- no effective timeout ----------------------------------------------------------
def test_timeouts_are_on_by_default_and_overridable():
    options = with_default_timeouts("http", {})
    timeout = options["client_kwargs"]["timeout"]
    assert timeout.sock_connect == CONNECT_TIMEOUT and timeout.sock_read == READ_TIMEOUT
    assert 10 <= CONNECT_TIMEOUT <= 60 and 10 <= READ_TIMEOUT <= 60
    mine = aiohttp.ClientTimeout(sock_read=1)
    assert with_default_timeouts("http", {"client_kwargs": {"timeout": mine}}) \
        ["client_kwargs"]["timeout"] is mine
    s3 = with_default_timeouts("s3", {"config_kwargs": {"read_timeout": 5}})["config_kwargs"]
    assert s3 == {"read_timeout": 5, "connect_timeout": CONNECT_TIMEOUT}


def test_a_hung_server_fails_within_timeout_times_attempts(server):
    url = server.url("bold.nii")
    options = {"client_kwargs": {"timeout": aiohttp.ClientTimeout(sock_read=0.3)}}
    img = proxylib.load(url, storage_options=options)
    server.hang = True
    began = time.monotonic()
    with pytest.raises(ProxyReadError) as info:
        img.dataobj[..., 5]
    elapsed = time.monotonic() - began
    start = OFFSET + 5 * VOLUME
    message = str(info.value)
    assert url in message and f"bytes {start}-{start + VOLUME - 1}" in message
    assert "did not answer within the timeout" in message and "after 4 attempts" in message
    assert elapsed < 0.3 * 4 + 0.01 * 15 + 5  # 4 attempts, backoff 0.1 s doubling, slack


# -- a server that ignores Range -----------------------------------------------------
def test_a_server_ignoring_range_is_stopped_at_once(server):
    server.ignore_range = True
    with pytest.raises(RangeIgnoredError, match="ignores Range requests") as info:
        proxylib.load(server.url("bold.nii"))
    assert "bytes 0-" in str(info.value) and "ignored_range='stream'" in str(info.value)


def test_a_server_ignoring_range_read_as_a_stream_on_request(server, stored):
    server.ignore_range = True
    img = proxylib.load(open_url(server.url("bold.nii"), ignored_range="stream"))
    np.testing.assert_array_equal(img.dataobj[..., 7], stored[..., 7])
    np.testing.assert_array_equal(img.dataobj[3, 4], stored[3, 4])


def test_memory_stays_bounded_when_the_server_ignores_range():
    """A 64 MiB body: refused after the headers, or streamed in bounded chunks."""
    import tracemalloc
    shape = (64, 64, 64, 128)
    body = nifti_bytes(np.zeros(shape, np.int16))
    volume = 64 * 64 * 64 * 2  # 512 KiB
    with RangeServer({"big.nii": body}) as big:
        big.ignore_range = True
        tracemalloc.start()
        try:
            with pytest.raises(RangeIgnoredError):
                proxylib.load(big.url("big.nii"))
            _, refused_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            img = proxylib.load(open_url(big.url("big.nii"), ignored_range="stream"))
            tracemalloc.reset_peak()
            got = img.dataobj[..., 100]
            _, streamed_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert got.shape == shape[:3] and not got.any()
    assert refused_peak < 4 << 20, refused_peak
    # the volume is at 50 MiB into the body: result (as float64 after no scaling
    # it is int16) plus a bounded buffer, not the 64 MiB body
    assert streamed_peak < 2 * volume + (8 << 20), streamed_peak


# -- content that changes between responses ----------------------------------------
def test_changed_etag_is_noticed_when_if_match_is_ignored(server, nii):
    img = proxylib.load(server.url("bold.nii"))
    server.ignore_if_match = True
    changed = bytearray(nii)
    changed[OFFSET] ^= 1
    server.files["bold.nii"] = bytes(changed)
    with pytest.raises(FileChangedError, match="changed on the server while it was being read"):
        img.dataobj[..., 0]


def test_changed_last_modified_is_noticed_without_etag(server, nii):
    server.send_etag, server.send_last_modified = False, True
    img = proxylib.load(server.url("bold.nii"))
    assert img.dataobj.file_like.identity().version.startswith("Last-Modified=")
    server.files["bold.nii"] = nii[:OFFSET] + bytes(len(nii) - OFFSET)
    server.last_modified = "Thu, 02 Jan 2025 00:00:00 GMT"
    with pytest.raises(FileChangedError, match="Last-Modified"):
        img.dataobj[..., 0]


def test_content_swapped_between_requests_of_one_read_is_never_mixed(server, nii):
    from proxylib.indexing.plan import CostModel
    server.ignore_if_match = True
    proxy = ArrayProxy(quick(server.url("bold.nii")), (SHAPE, np.int16, OFFSET),
                       cost=CostModel(gap_threshold=16, block_size=1 << 20))
    server.reset_counts()
    server.swap_after = (3, "bold.nii", nii[:OFFSET] + bytes(len(nii) - OFFSET))
    with pytest.raises(FileChangedError):
        proxy[1, 2, 3, :]  # 12 requests, the content changes after the third


# -- a remote gzip index after the file is replaced ----------------------------------
def _stored_gzip(values: np.ndarray) -> bytes:
    """A .nii.gz of stored (level 0) deflate blocks: its size depends only on the data's."""
    return gzip.compress(nifti_bytes(values), compresslevel=0, mtime=0)


def test_gzip_index_is_not_reused_for_a_replaced_file_of_the_same_size(stored):
    other = (stored[..., ::-1] // 2).copy()
    first, second = _stored_gzip(stored), _stored_gzip(other)
    assert len(first) == len(second) and first != second
    with RangeServer({"bold.nii.gz": first}) as server:
        server.send_etag, server.send_last_modified = False, True  # Last-Modified never moves
        img = proxylib.load(server.url("bold.nii.gz"))
        np.testing.assert_array_equal(img.dataobj[..., -1], stored[..., -1])  # saves an index
        server.files["bold.nii.gz"] = second
        again = proxylib.load(server.url("bold.nii.gz"))
        assert again.dataobj.file_like.index_identity() != img.dataobj.file_like.index_identity()
        np.testing.assert_array_equal(again.dataobj[..., -2], other[..., -2])


def test_a_failing_saved_index_is_discarded_and_rebuilt_once(stored, cache_dir):
    """An index that imports cleanly but fails when used: rebuilt, the read still right."""
    import struct
    from proxylib.io.gzip import index_cache
    data = gzip.compress(nifti_bytes(stored), compresslevel=6, mtime=0)
    with RangeServer({"b.nii.gz": data}) as server:
        built = open_url(server.url("b.nii.gz"))
        built.build_index()
        key = built.index_identity()
        saved = index_cache.load_index(key)
        assert saved.points >= 2
        # move every seek point but the first and the last a few compressed bytes: the
        # point table still verifies (in order, inside the file) and imports, but
        # inflating from any of them fails
        assert saved.points >= 3
        head = bytearray(saved.head)
        for point in range(1, saved.points - 1):
            at = 35 + 18 * point  # indexed_gzip's export: 35-byte head, 18 per point
            struct.pack_into("<Q", head, at, struct.unpack_from("<Q", head, at)[0] + 7)
        payload = bytes(head) + saved.payload[len(saved.head):]
        index_cache.save_index(key, payload, spacing=saved.spacing, points=saved.points,
                               complete=saved.complete)
        img = proxylib.load(server.url("b.nii.gz"))
        np.testing.assert_array_equal(img.dataobj[..., -1], stored[..., -1])
        assert img.dataobj.file_like._saved_failed  # it was used, failed, and was dropped
        rebuilt = index_cache.load_index(key)
        assert rebuilt is not None and rebuilt.head != bytes(head)


# -- status codes and network failures -----------------------------------------------
def test_a_brief_503_on_the_size_lookup_is_retried(server, stored):
    server.fail_heads = 2
    img = proxylib.load(server.url("bold.nii"))
    np.testing.assert_array_equal(img.dataobj[..., 1], stored[..., 1])
    assert [r.status for r in server.requests if r.method == "HEAD"] == [503, 503, 200]


def test_5xx_on_a_range_request_is_retried_with_backoff(server, stored):
    proxy = ArrayProxy(quick(server.url("bold.nii")), (SHAPE, np.int16, OFFSET))
    server.reset_counts()
    server.fail_gets = 2
    np.testing.assert_array_equal(proxy[..., 4], stored[..., 4])
    assert [r.status for r in server.gets()] == [503, 503, 206]


def test_a_lasting_503_is_named_as_such(server):
    server.fail_heads = 100
    with pytest.raises(ProxyReadError) as info:
        open_url(server.url("bold.nii"), backoff=0.01)
    message = str(info.value)
    assert "looking up its size failed after 4 attempts" in message
    assert "status 503" in message and "not found" not in message and message.endswith(".")


def test_a_redirect_loop_is_named(server):
    with pytest.raises(ProxyReadError, match="redirect") as info:
        open_url(server.url("loop/bold.nii"), backoff=0.01)
    assert "not found" not in str(info.value)


def test_a_refused_connection_is_named_not_called_missing():
    url = refused_url("bold.nii")
    with pytest.raises(ProxyReadError) as info:
        open_url(url, backoff=0.01)
    message = str(info.value)
    assert url in message and "refused" in message and "not found" not in message
    assert "while looking up its size" not in message or message.endswith(".")
    assert not isinstance(info.value, FileNotFoundError)


def test_404_and_403_are_permanent_and_named(server):
    with pytest.raises(MissingFileError, match="not found on the server .status 404"):
        open_url(server.url("nothere.nii"))
    assert len(server.requests) == 1
    server.reset_counts()
    with pytest.raises(FileAccessError, match="refused access .status 403"):
        open_url(server.url("forbidden/bold.nii"))
    assert len(server.requests) == 1


def test_storage_options_reach_the_requests(server, stored):
    """Headers given as fsspec options are sent with every request (the server sees them)."""
    seen = server.watch_header("X-Token")
    img = proxylib.load(server.url("bold.nii"), storage_options={"headers": {"X-Token": "t1"}})
    np.testing.assert_array_equal(img.dataobj[..., 2], stored[..., 2])
    proxy = ArrayProxy(server.url("bold.nii"), (SHAPE, np.int16, OFFSET),
                       storage_options={"headers": {"X-Token": "t2"}})
    np.testing.assert_array_equal(proxy[..., 3], stored[..., 3])
    assert set(seen) == {"t1", "t2"} and len(seen) >= 4
    with pytest.raises(ValueError, match="storage_options apply to URLs"):
        proxylib.load("local.nii", storage_options={"anon": True})
