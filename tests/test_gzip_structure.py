"""The gzip package's parts: one GzipIndex, engines behind one readinto, a passed-in config."""

from __future__ import annotations

import gzip
import io
import os

import numpy as np
import pytest

import proxylib
from proxylib import ArrayProxy
from proxylib.io import streams
from proxylib.io.gzip import GzipConfig
from proxylib.io.gzip import build as gzip_build
from proxylib.io.gzip import source as pgz
from proxylib.io.gzip.engines import IndexedEngine, JumpEngine, ParallelEngine, StreamEngine
from proxylib.io.gzip.index import GzipIndex
from proxylib.io.identity import FileIdentity

pytestmark = pytest.mark.usefixtures("gzip_isolated")   # 64 KiB spacing, private cache
SHAPE = (64, 64, 16, 8)   # 2 MiB: 32 seek points at 64 KiB


@pytest.fixture
def walk():
    return np.cumsum(np.random.default_rng(4).standard_normal(SHAPE), 0).astype(np.float32)


@pytest.fixture
def gz(tmp_path, walk):
    path = tmp_path / "walk.gz"
    path.write_bytes(gzip.compress(walk.tobytes(order="F"), compresslevel=6, mtime=0))
    return str(path)


def _identity(path):
    return FileIdentity.of_path(path)


def test_build_exports_the_index_once_and_saves_what_it_verified(gz, monkeypatch):
    exports = []
    original = GzipIndex.exported.__func__

    def counting(cls, zran, identity, *, complete):
        exports.append(identity)
        return original(cls, zran, identity, complete=complete)
    monkeypatch.setattr(GzipIndex, "exported", classmethod(counting))
    result = gzip_build.build_full_index(gz)
    assert result.action == "built" and len(exports) == 1
    saved = GzipIndex.load(_identity(gz))
    assert saved is not None and saved.complete and saved.points == result.points
    # the state jumps from the very index it saved, its windows held as saved
    state = pgz.STATES.values()[0]
    assert state.index.points is not None and len(state.index.points) == result.points


def test_a_saved_index_round_trips_and_imports_into_a_new_reader(gz, walk):
    proxylib.build_index(gz)
    index = GzipIndex.load(_identity(gz))
    from indexed_gzip.indexed_gzip import _IndexedGzipFile
    with open(gz, "rb") as raw:
        reader = _IndexedGzipFile(fileobj=raw, spacing=index.spacing, auto_build=False)
        index.import_into(reader)
        assert reader.npoints == index.points
        reader.seek(walk[..., :5].nbytes)
        assert reader.read(64) == walk[..., 5].tobytes(order="F")[:64]
    points = index.verified_points()
    assert [int(u) for u in points.uncompressed] == [u for u, _ in reader.seek_points()]


def test_points_beyond_the_file_are_refused_before_any_use(gz):
    proxylib.build_index(gz)
    identity = _identity(gz)
    index = GzipIndex.load(identity)
    head = bytearray(index.head)
    at = 35 + 18 * (index.points - 1)   # the last point's compressed offset
    head[at:at + 8] = (identity.size + 100).to_bytes(8, "little")
    forged = GzipIndex(identity, bytes(head), index.window, index.windows,
                       spacing=index.spacing, complete=True)
    assert forged.seek_points() is None
    with pytest.raises(ValueError, match="beyond the file"):
        forged.verified_points()


def test_engines_share_one_readinto(gz, walk):
    raw = walk.tobytes(order="F")
    proxylib.build_index(gz)
    pgz.STATES.clear()
    with open(gz, "rb") as f:
        source = pgz.GzipSource(f.fileno(), gz)
        state = source.state
        engines = [state.stream, state.jumps, state.indexed]
        assert {type(e) for e in engines} == {StreamEngine, JumpEngine, IndexedEngine}
        assert isinstance(state.parallel, ParallelEngine)
        from proxylib.io.gzip.members import DescriptorBytes
        file = DescriptorBytes(f.fileno(), os.fstat(f.fileno()).st_size)
        for engine in engines:
            offsets = [700_000, 700_100]
            views = [memoryview(bytearray(100)), memoryview(bytearray(3000))]
            engine.readinto(file, offsets, views)
            assert bytes(views[0]) + bytes(views[1]) == raw[700_000:703_100], engine
            assert engine.bytes_read > 0


def test_the_chooser(gz):
    proxylib.build_index(gz)
    pgz.STATES.configure(GzipConfig(spacing=64 * 1024, threads=2))
    with open(gz, "rb") as f:
        state = pgz.GzipSource(f.fileno(), gz).state
        assert state.choose(0, 100) is state.stream                 # near the start
        assert state.choose(1_500_000, 100) is state.jumps          # far ahead
        assert state.choose(0, 2_000_000) is state.parallel         # large, complete index
        state.stream_only = True
        assert state.choose(1_500_000, 100) is state.stream


def test_config_is_passed_in_not_read_from_module_globals(gz, walk):
    pgz.STATES.configure(GzipConfig(spacing=96 * 1024, jump=1 << 62, readbuf=32 * 1024,
                                    threads=1))
    proxy = ArrayProxy(gz, (SHAPE, np.float32))
    np.testing.assert_array_equal(proxy[..., 7], walk[..., 7])
    state = pgz.STATES.values()[0]
    assert state.config.spacing == 96 * 1024 and state.config.threads == 1
    assert state.jumps.bytes_read == state.indexed.bytes_read == 0   # jump=inf: streamed
    with proxy.opener.source() as source:
        assert source.cost.gap_threshold == 96 * 1024
    with pytest.raises(ValueError):
        GzipConfig(spacing=0)
    monkeypatch_env = pytest.MonkeyPatch()
    monkeypatch_env.setenv("PROXYLIB_GZIP_THREADS", "3")
    try:
        assert GzipConfig().resolved().threads == 3      # read when a state is made
    finally:
        monkeypatch_env.undo()


def test_streaming_reads_take_the_size_from_the_identity(gz, walk, monkeypatch):
    pgz.STATES.configure(GzipConfig(spacing=64 * 1024, jump=1 << 62))
    proxy = ArrayProxy(gz, (SHAPE, np.float32), keep_file_open=True)
    proxy[..., 0]
    calls = []
    real = os.fstat
    monkeypatch.setattr(os, "fstat", lambda fd: calls.append(fd) or real(fd))
    for t in range(1, SHAPE[-1]):
        np.testing.assert_array_equal(proxy[..., t], walk[..., t])
    monkeypatch.undo()
    assert len(calls) == SHAPE[-1] - 1        # one identity check per access, no more
    proxy.close()


def test_one_sniff_picks_the_decompressor(monkeypatch, tmp_path):
    import bz2
    from proxylib.io import compressed
    calls = []
    real = compressed._bz2_codec
    monkeypatch.setattr(compressed, "_bz2_codec", lambda: calls.append(1) or real())
    payload = bz2.compress(b"x" * 1000)
    with streams.wrap_fileobj(io.BytesIO(payload)) as stream:
        assert stream.read() == b"x" * 1000 and stream.compression == "bz2"
    assert len(calls) == 1
    calls.clear()
    from proxylib.fileholder import FileHolder
    holder = FileHolder(fileobj=io.BytesIO(payload))
    assert holder.file_like.read() == b"x" * 1000 and len(calls) == 1
    path = tmp_path / "x.bz2"
    path.write_bytes(payload)
    calls.clear()
    proxy = ArrayProxy(str(path), ((1000,), np.uint8))
    assert bytes(proxy[:5]) == b"xxxxx" and len(calls) == 1    # one sniff per access
