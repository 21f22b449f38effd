"""Remote gzip files that indexed_gzip must not read (a member header about as long as
its read buffer), and what reading them with the member walker costs in requests.

The loopback RangeServer counts every GET and the bytes it sends; numpy (values) and
the file's own length are the oracles."""

from __future__ import annotations

import gzip
import math
import pickle

import numpy as np
import pytest

pytest.importorskip("fsspec", reason="fsspec is not installed (pip install 'proxylib[remote]')")
pytest.importorskip("aiohttp", reason="aiohttp is not installed")

import proxylib  # noqa: E402
from proxylib.io.gzip.config import GzipConfig  # noqa: E402
from proxylib.io.remote import RemoteGzipFile  # noqa: E402
from proxylib.io.remote.gzip_bytes import LONGEST_INDEXED_HEADER, READ_AHEAD  # noqa: E402
from proxylib.testing import gzip_corpus as corpus  # noqa: E402

from test_remote_defects import nifti_bytes  # noqa: E402
from test_remote_server import RangeServer  # noqa: E402

SHAPE = (64, 64, 8, 20)           # 64 KiB int16 volumes, 1.3 MiB in all
MEMBERS = 20
#: A comment just past indexed_gzip's 1 MiB read buffer: with it, indexed_gzip 1.10
#: returned other bytes than the file holds, without an error.
LONG = (1 << 20) + 5000


@pytest.fixture(scope="module")
def stored():
    return np.random.default_rng(12).integers(-3000, 3000, size=SHAPE, dtype=np.int16)


def members(raw: bytes, long_at: int, comment: int = LONG) -> bytes:
    """``raw`` as MEMBERS gzip members with 30-byte names; member ``long_at`` carries a
    ``comment``-byte comment instead."""
    step = math.ceil(len(raw) / MEMBERS)
    parts = [raw[i:i + step] for i in range(0, len(raw), step)]
    return b"".join(corpus.member(part, corpus.Layout(comment=comment) if n == long_at
                                  else corpus.Layout(name=30))
                    for n, part in enumerate(parts))


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("long_at,comment", [(0, LONG), (1, LONG), (7, 3 << 20)],
                         ids=["first-member", "second-member", "later-3MiB"])
def test_a_member_header_indexed_gzip_would_misread_is_read_by_the_walker(
        stored, long_at, comment):
    body = members(nifti_bytes(stored), long_at, comment)
    with RangeServer({"long.nii.gz": body}) as server:
        img = proxylib.load(server.url("long.nii.gz"))
        assert img.shape == SHAPE
        np.testing.assert_array_equal(img.dataobj[..., SHAPE[3] - 1], stored[..., -1])
        np.testing.assert_array_equal(img.dataobj[...], stored)
        np.testing.assert_array_equal(img.dataobj[1, 2, 3], stored[1, 2, 3])
        assert img.dataobj.file_like._stream_only


def test_short_member_headers_stay_on_the_indexed_reader(stored):
    """The header guard raises no false alarm on ordinary multi-member files."""
    raw = nifti_bytes(stored)
    for body in (members(raw, long_at=-1), corpus.compress(raw, corpus.bgzf(len(raw))),
                 corpus.compress(raw, corpus.Layout(comment=LONGEST_INDEXED_HEADER // 2))):
        with RangeServer({"short.nii.gz": body}) as server:
            img = proxylib.load(server.url("short.nii.gz"))
            np.testing.assert_array_equal(img.dataobj[..., 17], stored[..., 17])
            assert not img.dataobj.file_like._stream_only


def test_walking_members_fetches_each_compressed_byte_about_once(stored):
    """Member boundaries cost no requests of their own: trailer, magic, header and name
    are read from bytes already fetched (they were read twice, two requests a member)."""
    body = members(nifti_bytes(stored), long_at=1)
    with RangeServer({"long.nii.gz": body}) as server:
        img = proxylib.load(server.url("long.nii.gz"))
        np.testing.assert_array_equal(img.dataobj[...], stored)
        gets = server.gets()
        # load: the first request, indexed_gzip's refused block, its header
        # measurement; then the walk, at least READ_AHEAD bytes a request
        assert len(gets) <= len(body) // READ_AHEAD + 8, [g.range for g in gets]
        assert server.bytes_sent <= 1.5 * len(body) + (2 << 20), (server.bytes_sent, len(body))


def test_streamed_size_is_right_and_walked_once(stored):
    raw = nifti_bytes(stored)
    body = members(raw, long_at=1)
    with RangeServer({"long.nii.gz": body}) as server:
        remote = proxylib.io.remote.open_url(server.url("long.nii.gz"))
        assert isinstance(remote, RemoteGzipFile)
        server.reset_counts()
        assert remote.size == len(raw)
        assert remote._stream_only
        walked = len(server.gets())
        assert 0 < walked <= len(body) // READ_AHEAD + 4
        server.reset_counts()
        assert remote.size == len(raw) and remote.size == len(raw)
        assert server.gets() == []


def test_gzip_settings_are_passed_in_and_travel_with_a_pickle(stored):
    """RemoteGzipFile takes a GzipConfig (spacing, read size) instead of module globals;
    a pickled file (a dask task) keeps it."""
    raw = nifti_bytes(stored)
    body = gzip.compress(raw, 6)
    names = {64 << 10: "fine.nii.gz", 512 << 10: "coarse.nii.gz"}  # no shared saved index
    with RangeServer({name: body for name in names.values()}) as server:
        points = {}
        for spacing, name in names.items():
            config = GzipConfig(spacing=spacing, readbuf=128 << 10)
            remote = RemoteGzipFile(server.url(name), gzip_config=config)
            again = pickle.loads(pickle.dumps(remote))
            assert again.gzip_config == config
            tail = bytearray(1000)             # a seek to the end builds every point
            again.read_at(len(raw) - 1000, tail)
            out = bytearray(len(raw))
            again.read_at(0, out)
            assert bytes(out) == raw and bytes(tail) == raw[-1000:]
            points[spacing] = again._zran.npoints
        assert points[64 << 10] >= len(raw) // (64 << 10) > points[512 << 10]
