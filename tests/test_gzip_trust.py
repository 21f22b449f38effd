"""Saved gzip indexes are trusted only when they verify: identity (with ctime),
owner and directory permissions, and an HMAC under a per-user secret."""

from __future__ import annotations

import gzip
import json
import os
import stat
import struct
import warnings

import numpy as np
import pytest

import proxylib
from proxylib import ArrayProxy, FileChangedError
from proxylib.errors import IndexCacheWarning
from proxylib.io.gzip import cache_trust, index_cache
from proxylib.io.gzip import source as pgz
from proxylib.io.identity import FileIdentity

pytestmark = pytest.mark.usefixtures("gzip_isolated")

SHAPE = (32, 32, 16, 8)


@pytest.fixture
def array():
    return np.cumsum(np.random.default_rng(5).standard_normal(SHAPE), 0).astype(np.float32)


@pytest.fixture
def gz_path(tmp_path, array):
    path = str(tmp_path / "walk.gz")
    with open(path, "wb") as out:
        out.write(gzip.compress(array.tobytes(order="F"), 6))
    return path


@pytest.fixture(autouse=True)
def fresh_warnings():
    cache_trust.reset_warnings()
    yield
    cache_trust.reset_warnings()


def identity_of(path):
    return FileIdentity.of_path(path)


def last_volume(path, array):
    pgz.STATES.clear()                     # as a new process would
    values = ArrayProxy(path, (SHAPE, np.float32, 0))[..., -1]
    np.testing.assert_array_equal(values, array[..., -1])
    return pgz.STATES.values()[0]


def test_secret_is_private_and_index_verifies(gz_path, array):
    where = proxylib.build_index(gz_path)
    secret = where.parent.parent / "secret.key"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(where.parent).st_mode) & 0o077 == 0
    state = last_volume(gz_path, array)
    assert state.stream.bytes_read == 0 and state.jumps.bytes_read > 0   # the index served


def rewrite_header(where, edit):
    data = bytearray(where.read_bytes())
    length = struct.unpack_from("<I", data, 8)[0]
    header = json.loads(bytes(data[12:12 + length]))
    start = 12 + length
    table = bytearray(data[start:start + header["table_size"]])
    edit(header, table)
    body = json.dumps(header).encode()
    where.write_bytes(bytes(data[:8]) + struct.pack("<I", len(body)) + body + bytes(table)
                      + bytes(data[start + header["table_size"]:]))


def shift_points(header, table):
    count = struct.unpack_from("<I", table, 31)[0]
    for point in range(1, count):
        at = 35 + 18 * point
        value = struct.unpack_from("<Q", table, at)[0]
        struct.pack_into("<Q", table, at, value + 2)


def swap_first_windows(where):
    data = where.read_bytes()
    length = struct.unpack_from("<I", data, 8)[0]
    header = json.loads(data[12:12 + length])
    start = 12 + length
    table = bytearray(data[start:start + header["table_size"]])
    count = header["windows"]
    blobs = data[start + header["table_size"]:]
    ends_at = len(table) - 8 * (count + 1) - cache_trust.WINDOW_MAC_BYTES * count
    ends = list(struct.unpack_from(f"<{count + 1}Q", table, ends_at))
    pieces = [blobs[a:b] for a, b in zip(ends, ends[1:])]
    pieces[0], pieces[1] = pieces[1], pieces[0]
    ends = [0]
    for piece in pieces:
        ends.append(ends[-1] + len(piece))
    struct.pack_into(f"<{count + 1}Q", table, ends_at, *ends)
    body = json.dumps(header).encode()
    where.write_bytes(data[:8] + struct.pack("<I", len(body)) + body + bytes(table)
                      + b"".join(pieces))


@pytest.mark.parametrize("forgery", ["shifted-points", "edited-window", "foreign-key"])
def test_forged_index_is_never_used(gz_path, array, forgery):
    where = proxylib.build_index(gz_path)
    if forgery == "shifted-points":
        rewrite_header(where, shift_points)
    elif forgery == "edited-window":       # two valid windows swapped, offsets redone
        swap_first_windows(where)
    else:                                  # signed with another secret
        secret = where.parent.parent / "secret.key"
        os.chmod(secret, 0o600)
        secret.write_bytes(os.urandom(32))
    assert index_cache.load_index(identity_of(gz_path)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IndexCacheWarning)
        last_volume(gz_path, array)        # right values: the forgery was refused
        np.testing.assert_array_equal(
            np.asarray(ArrayProxy(gz_path, (SHAPE, np.float32, 0))), array)


def test_index_owned_by_another_user_is_ignored_with_a_warning(gz_path, array, monkeypatch):
    where = proxylib.build_index(gz_path)
    if os.geteuid() == 0:
        os.chown(where, 65534, 65534)
    else:
        monkeypatch.setattr(os, "getuid", lambda: os.geteuid() + 1)
    with pytest.warns(IndexCacheWarning, match="another user"):
        assert index_cache.load_index(identity_of(gz_path)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IndexCacheWarning)
        last_volume(gz_path, array)


@pytest.mark.parametrize("sticky", [False, True])
def test_world_writable_cache_directory(gz_path, array, tmp_path, monkeypatch, sticky):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777 | (stat.S_ISVTX if sticky else 0))
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(shared))
    if sticky:
        with warnings.catch_warnings():
            warnings.simplefilter("error", IndexCacheWarning)
            assert proxylib.build_index(gz_path) is not None
    else:
        with pytest.warns(IndexCacheWarning, match="writable by every user"):
            assert proxylib.build_index(gz_path) is None
        assert not (shared / "gzip").exists() or not any((shared / "gzip").iterdir())
    last_volume(gz_path, array)


def test_changed_middle_with_size_and_mtime_put_back(gz_path, tmp_path):
    """Same size, same mtime, same first and last 64 KiB: only the middle differs."""
    first = np.zeros(SHAPE, np.float32)
    second = first.copy()
    second[10:20, :, :, 4] = 7.0           # the middle of the uncompressed data
    def write(a):                          # stored blocks: same size; two members, so the
        data = a.tobytes(order="F")        # CRC that differs sits in the middle too
        return gzip.compress(data[:-100_000], 0, mtime=0) + gzip.compress(data[-100_000:], 0,
                                                                           mtime=0)
    raw = [write(a) for a in (first, second)]
    assert len(raw[0]) == len(raw[1]) and raw[0][:65536] == raw[1][:65536]
    assert raw[0][-65536:] == raw[1][-65536:]
    with open(gz_path, "wb") as out:
        out.write(raw[0])
    proxylib.build_index(gz_path)
    proxy = ArrayProxy(gz_path, (SHAPE, np.float32, 0))
    np.testing.assert_array_equal(proxy[..., 4], first[..., 4])
    st = os.stat(gz_path)
    with open(gz_path, "r+b") as out:      # in place, as rsync --inplace does
        out.write(raw[1])
    os.utime(gz_path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(FileChangedError, match="ctime"):
        proxy[..., 4]                      # the live proxy sees the change
    fresh = ArrayProxy(gz_path, (SHAPE, np.float32, 0))
    np.testing.assert_array_equal(fresh[..., 4], second[..., 4])   # no stale index or state


def test_plain_file_same_size_rewrite_with_mtime_put_back(tmp_path):
    path = tmp_path / "plain.raw"
    np.arange(1000, dtype=np.int32).tofile(path)
    for keep in (True, False):
        proxy = ArrayProxy(str(path), ((1000,), np.int32, 0), keep_file_open=keep, mmap=False)
        assert proxy[5] == 5
        st = os.stat(path)
        with open(path, "r+b") as out:
            out.write(np.full(1000, 9, np.int32).tobytes())
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        with pytest.raises(FileChangedError):
            proxy[5]
        np.arange(1000, dtype=np.int32).tofile(path)
