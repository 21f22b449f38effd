"""bz2 and zstd files: sequential decompression, one pass per key, clear errors."""

from __future__ import annotations

import bz2
import os

import numpy as np
import pytest

from proxylib import ArrayProxy, CorruptDataError, TruncatedFileError
from proxylib.io import compressed

SHAPE = (16, 16, 16, 12)
OFFSET = 352
SPEC = (SHAPE, np.float32, OFFSET)


def _zstd_compress(data: bytes) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found]
        return zstd.compress(data)
    except ImportError:
        zstandard = pytest.importorskip("zstandard")
        return zstandard.ZstdCompressor().compress(data)


COMPRESSORS = {"bz2": bz2.compress, "zst": _zstd_compress}


@pytest.fixture(autouse=True)
def fresh_cursors():
    compressed.SEQUENTIAL_CURSORS.clear()
    yield
    compressed.SEQUENTIAL_CURSORS.clear()


@pytest.fixture(scope="module")
def array():
    rng = np.random.default_rng(2)
    data = rng.standard_normal(SHAPE).astype(np.float32)
    data[rng.random(SHAPE) > 0.1] = 0
    return data


def write(tmp_path, kind, content, name=None):
    path = tmp_path / (name or f"vol.{kind}")
    path.write_bytes(COMPRESSORS[kind](content))
    return str(path)


def raw(array):
    return b"\x11" * OFFSET + array.tobytes(order="F")


def cursor_bytes():
    return sum(c.file.bytes_read for _, c in compressed.SEQUENTIAL_CURSORS._entries.values())


@pytest.mark.parametrize("kind", ["bz2", "zst"])
@pytest.mark.parametrize("keep", [False, True])
def test_keys_match_numpy(tmp_path, array, kind, keep):
    proxy = ArrayProxy(write(tmp_path, kind, raw(array)), SPEC, keep_file_open=keep)
    for key in [(Ellipsis, 11), (Ellipsis, 0), (3,), (1, 2, 3), (slice(None, None, -2), 5),
                (Ellipsis, slice(3, 9, 2)), (15, 15, 15, 11), (Ellipsis,)]:
        np.testing.assert_array_equal(proxy[key], array[key], err_msg=str(key))
    np.testing.assert_array_equal(np.asarray(proxy), array)


@pytest.mark.parametrize("kind", ["bz2", "zst"])
def test_volumes_in_order_are_one_pass(tmp_path, array, kind):
    path = write(tmp_path, kind, raw(array))
    proxy = ArrayProxy(path, SPEC, keep_file_open=False)
    for t in range(SHAPE[3]):
        np.testing.assert_array_equal(proxy[..., t], array[..., t])
    assert cursor_bytes() <= os.path.getsize(path) + 1024 * 1024


@pytest.mark.parametrize("kind", ["bz2", "zst"])
def test_multiple_streams(tmp_path, array, kind):
    content = raw(array)
    cut = len(content) // 3
    path = tmp_path / f"multi.{kind}"
    path.write_bytes(COMPRESSORS[kind](content[:cut]) + COMPRESSORS[kind](content[cut:]))
    np.testing.assert_array_equal(np.asarray(ArrayProxy(str(path), SPEC)), array)


@pytest.mark.parametrize("kind", ["bz2", "zst"])
def test_truncated(tmp_path, array, kind):
    path = tmp_path / f"cut.{kind}"
    data = COMPRESSORS[kind](raw(array))
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(TruncatedFileError, match="compressed offset") as info:
        np.asarray(ArrayProxy(str(path), SPEC))
    assert str(path) in str(info.value)


def test_corrupt_bz2(tmp_path, array):
    data = bytearray(bz2.compress(raw(array)))
    data[len(data) // 2:len(data) // 2 + 32] = os.urandom(32)
    path = tmp_path / "bad.bz2"
    path.write_bytes(bytes(data))
    with pytest.raises((CorruptDataError, TruncatedFileError)):
        np.asarray(ArrayProxy(str(path), SPEC))


def test_raw_file_starting_like_bz2_is_not_decompressed(tmp_path):
    path = tmp_path / "raw.bin"
    path.write_bytes(b"BZh9" + bytes(60))
    proxy = ArrayProxy(str(path), ((64,), np.uint8, 0))
    assert bytes(np.asarray(proxy)) == b"BZh9" + bytes(60)


@pytest.mark.parametrize("kind, values", [("bz2", (1.0, 5.0)), ("zst", (1.0, 2.0))])
def test_rewritten_in_place_with_restored_mtime_reads_new_data(tmp_path, kind, values):
    """cp -p / rsync --inplace -t: same size, same mtime, new bytes; ctime still moves,
    so the process-wide cursor of the old bytes is not reused."""
    old, new = (np.full(SHAPE, value, np.float32) for value in values)
    payloads = [COMPRESSORS[kind](raw(a)) for a in (old, new)]
    assert len(payloads[0]) == len(payloads[1])
    path = str(tmp_path / f"vol.{kind}")
    with open(path, "wb") as out:
        out.write(payloads[0])
    before = ArrayProxy(path, SPEC)
    np.testing.assert_array_equal(before[..., 1], old[..., 1])  # a cursor, parked mid-stream
    stat = os.stat(path)
    with open(path, "r+b") as out:
        out.write(payloads[1])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    np.testing.assert_array_equal(ArrayProxy(path, SPEC)[..., 2], new[..., 2])
