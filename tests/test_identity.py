"""One FileIdentity names a file version for every source: plain, gzip, bz2, zstd, remote."""

from __future__ import annotations

import bz2
import gzip
import os
import pickle

import numpy as np
import pytest

from proxylib import ArrayProxy, FileChangedError
from proxylib.io import compressed
from proxylib.io.gzip import index_cache
from proxylib.io.gzip import source as pgz
from proxylib.io.identity import EDGE_BYTES, FileIdentity

SHAPE = (8, 8, 4, 3)


def _zstd(data: bytes) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found]
        return zstd.compress(data)
    except ImportError:
        return pytest.importorskip("zstandard").ZstdCompressor().compress(data)


WRITERS = {"raw": lambda b: b, "gz": lambda b: gzip.compress(b, mtime=0), "bz2": bz2.compress,
           "zst": _zstd}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(tmp_path / "cache"))
    compressed.SEQUENTIAL_CURSORS.clear()
    pgz.STATES.clear()


def _write(path, kind, values):
    payload = WRITERS[kind](values.tobytes(order="F"))
    with open(path, "r+b" if os.path.exists(path) else "wb") as out:
        out.write(payload)
    return payload


@pytest.mark.parametrize("kind", sorted(WRITERS))
@pytest.mark.parametrize("keep", [False, True])
def test_live_proxy_sees_a_same_size_rewrite_with_the_mtime_put_back(tmp_path, kind, keep):
    path = str(tmp_path / f"vol.{kind}")
    old = np.ones(SHAPE, np.int16)
    size = len(_write(path, kind, old))
    new = next(new for new in (np.full(SHAPE, v, np.int16) for v in range(2, 200))
               if len(WRITERS[kind](new.tobytes(order="F"))) == size)
    proxy = ArrayProxy(path, (SHAPE, np.int16), keep_file_open=keep, mmap=False)
    np.testing.assert_array_equal(proxy[..., 1], old[..., 1])
    st = os.stat(path)
    _write(path, kind, new)
    assert os.stat(path).st_size == size     # same size: only the ctime tells
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(FileChangedError, match=f"vol.{kind}.*ctime"):
        proxy[..., 1]
    with pytest.raises(FileChangedError):
        pickle.loads(pickle.dumps(proxy))[..., 1]   # the identity travels with the proxy
    np.testing.assert_array_equal(ArrayProxy(path, (SHAPE, np.int16))[..., 2], new[..., 2])


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_every_local_source_is_keyed_by_the_same_identity_type(tmp_path, kind):
    path = str(tmp_path / f"vol.{kind}")
    _write(path, kind, np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE))
    proxy = ArrayProxy(path, (SHAPE, np.int16), keep_file_open=True)
    proxy[..., 0]
    stat_identity = FileIdentity.of_stat(os.stat(path))
    assert proxy.opener.fingerprint == stat_identity
    with proxy.opener.source() as source:
        if kind == "gz":      # the gzip state (and its saved index) add the content digest
            assert source.state.identity == stat_identity._replace(
                content=source.state.identity.content)
            assert len(source.state.identity.content) == 64
        elif kind in ("bz2", "zst"):
            keys = [key for key in compressed.SEQUENTIAL_CURSORS._entries]
            assert [key[1] for key in keys] == [stat_identity]
    proxy.close()


def test_identity_changes_with_each_field_and_the_key_with_it(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(3 * EDGE_BYTES))
    fd = os.open(path, os.O_RDONLY)
    try:
        identity = FileIdentity.of_descriptor(fd)
    finally:
        os.close(fd)
    assert identity.size == 3 * EDGE_BYTES and identity.ctime_ns and identity.inode
    keys = {identity.key}
    for field in FileIdentity._fields:
        value = getattr(identity, field)
        changed = identity._replace(**{field: value + 1 if isinstance(value, int) else value + "x"})
        assert changed != identity
        keys.add(changed.key)
    assert len(keys) == 1 + len(FileIdentity._fields)
    # a remote identity is the same type: URL and version take the place of the inode
    remote = FileIdentity.remote("http://h/f.gz", 10, "ETag=1", "ab")
    assert "version 'ETag=1' -> 'ETag=2'" in remote.differences(remote._replace(version="ETag=2"))


def test_a_saved_index_never_serves_another_identity(tmp_path):
    path = str(tmp_path / "vol.gz")
    data = np.random.default_rng(0).random((64, 64, 16, 4), dtype=np.float32)
    with open(path, "wb") as out:
        out.write(gzip.compress(data.tobytes(order="F"), compresslevel=1, mtime=0))
    import proxylib
    proxylib.build_index(path)
    identity = FileIdentity.of_path(path)
    assert index_cache.load_index(identity) is not None
    for field in ("ctime_ns", "mtime_ns", "inode", "size"):
        assert index_cache.load_index(identity._replace(**{field: getattr(identity, field) + 1})) \
            is None
    assert index_cache.load_index(identity._replace(content="0" * 64)) is None
