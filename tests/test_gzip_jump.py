"""isal jumps from indexed_gzip seek points (proxylib.io.gzip.jump) against the bytes themselves."""

from __future__ import annotations

import gzip
import io
import os
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import proxylib
from proxylib import ArrayProxy, CorruptDataError, TruncatedFileError
from proxylib.io.gzip import jump as gzip_jump
from proxylib.io.gzip import source as pgz

pytestmark = pytest.mark.skipif(not gzip_jump.HAVE_ISAL, reason="python-isal not installed")


def sample(size: int, seed: int) -> bytes:
    """Data that compresses about 3x, so deflate blocks (and points) come often."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 40, size, dtype=np.uint8)
    values[rng.random(size) < 0.3] = 0
    return values.tobytes()


def gzip_members(data: bytes, cuts, level: int = 6) -> bytes:
    edges = [0, *cuts, len(data)]
    return b"".join(gzip.compress(data[a:b], level) for a, b in zip(edges, edges[1:]))


def seek_points(path: str, spacing: int = 64 * 1024) -> gzip_jump.SeekPoints:
    from indexed_gzip.indexed_gzip import _IndexedGzipFile
    reader = _IndexedGzipFile(path, spacing=spacing, readbuf_size=16 * 1024)
    try:
        reader.build_full_index()
        buffer = io.BytesIO()
        reader.export_index(fileobj=buffer)
    finally:
        reader.close()
    return gzip_jump.SeekPoints.from_export(buffer.getvalue(), os.path.getsize(path),
                                            complete=True)


def jump_read(path: str, points: gzip_jump.SeekPoints, offset: int, length: int,
              point: int = None) -> bytes:
    out = bytearray(length)
    fd = os.open(path, os.O_RDONLY)
    try:
        start = points.before(offset) if point is None else point
        gzip_jump.jump_cursor(points, start, path).readinto(fd, offset, memoryview(out))
    finally:
        os.close(fd)
    return bytes(out)


DATA = sample(1_500_000, 0)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("jump") / "single.gz")
    with open(path, "wb") as out:
        out.write(gzip.compress(DATA, 6))
    return path, seek_points(path)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("jump") / "members.gz")
    cuts = [1, 1000, 400_000, 400_000, 400_007, 900_000]   # an empty member too
    with open(path, "wb") as out:
        out.write(gzip_members(DATA, cuts) + gzip.compress(b""))
    return path, seek_points(path)


def test_points_start_at_every_bit_offset(single):
    path, points = single
    bits = set(int(b) for b in points.table["bits"])
    assert bits == set(range(8)), bits
    for bit in range(8):                   # from each kind of point, to the end of the data
        for point in np.flatnonzero(points.table["bits"] == bit)[:3]:
            start = int(points.uncompressed[point])
            assert jump_read(path, points, start, len(DATA) - start, point) == DATA[start:]


@settings(max_examples=80, deadline=None)
@given(offset=st.integers(0, len(DATA) - 1), length=st.integers(1, 300_000),
       which=st.sampled_from(["single", "members"]))
def test_random_offsets_match_the_bytes(single, members, offset, length, which):
    path, points = single if which == "single" else members
    length = min(length, len(DATA) - offset)
    assert jump_read(path, points, offset, length) == DATA[offset:offset + length]


def test_a_cursor_reads_on_across_member_boundaries(members):
    path, points = members
    fd = os.open(path, os.O_RDONLY)
    try:
        for point in range(len(points)):
            cursor = gzip_jump.jump_cursor(points, point, path)
            offset = int(points.uncompressed[point])
            while offset < len(DATA):
                length = min(70_001, len(DATA) - offset)
                out = bytearray(length)
                cursor.readinto(fd, offset + 3 if offset + 3 < len(DATA) - length else offset,
                                memoryview(out))
                offset = cursor.position
                assert bytes(out) == DATA[offset - length:offset]
        with pytest.raises(TruncatedFileError):
            gzip_jump.jump_cursor(points, points.before(len(DATA) - 10), path).readinto(
                fd, len(DATA) - 10, memoryview(bytearray(20)))
    finally:
        os.close(fd)


def test_member_checksums_are_checked(tmp_path):
    data = DATA[:600_000]
    parts = [gzip.compress(data[:300_000]), gzip.compress(data[300_000:])]
    path = str(tmp_path / "good.gz")
    with open(path, "wb") as out:
        out.write(gzip.compress(b"") + parts[0] + parts[1])
    good_points = seek_points(path)        # indexed_gzip refuses to index bad CRCs
    for name, where in (("crc", -8), ("isize", -3)):
        bad = bytearray(parts[0])
        bad[where] ^= 0x40
        path = str(tmp_path / f"{name}.gz")
        with open(path, "wb") as out:
            out.write(gzip.compress(b"") + bytes(bad) + parts[1])
        points = good_points
        start = next(i for i in range(len(points)) if int(points.uncompressed[i]) == 0
                     and points.window(i) is None and i > 0)
        with pytest.raises(CorruptDataError, match="compressed offset"):  # from member start
            jump_read(path, points, 10, 599_000, start)
        if name == "isize":                # entered mid-member: the length is still checked
            mid = points.before(200_000)
            assert points.window(mid) is not None
            with pytest.raises(CorruptDataError):
                jump_read(path, points, 200_000, 399_000, mid)
    # the second member's CRC is checked by isal in gzip mode
    path = str(tmp_path / "second.gz")
    with open(path, "wb") as out:
        out.write(parts[0] + parts[1])
    points = seek_points(path)
    bad = bytearray(parts[1])
    bad[-6] ^= 1
    with open(path, "wb") as out:
        out.write(parts[0] + bytes(bad))
    with pytest.raises(CorruptDataError):
        jump_read(path, points, 250_000, 350_000)


def test_corrupt_deflate_data_raises(single, tmp_path):
    path, points = single
    content = bytearray(open(path, "rb").read())
    rng = np.random.default_rng(7)
    point = len(points) // 2
    at = int(points.table["compressed"][point]) + 2_000
    content[at:at + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    broken = str(tmp_path / "broken.gz")
    with open(broken, "wb") as out:
        out.write(bytes(content))
    start = int(points.uncompressed[point])
    with pytest.raises(CorruptDataError, match="compressed offset"):
        jump_read(broken, points, start, len(DATA) - start, point)


def test_truncated_file_raises_naming_the_offset(single, tmp_path):
    path, points = single
    content = open(path, "rb").read()
    cut = str(tmp_path / "cut.gz")
    with open(cut, "wb") as out:
        out.write(content[:len(content) * 2 // 3])
    point = points.before(len(DATA) // 2)
    start = int(points.uncompressed[point])
    with pytest.raises(TruncatedFileError, match="compressed offset") as info:
        jump_read(cut, points, start, len(DATA) - start, point)
    assert cut in str(info.value)


def test_unsound_exports_are_refused(single):
    path, points = single
    from indexed_gzip.indexed_gzip import _IndexedGzipFile
    reader = _IndexedGzipFile(path, spacing=64 * 1024, readbuf_size=16 * 1024)
    reader.build_full_index()
    buffer = io.BytesIO()
    reader.export_index(fileobj=buffer)
    reader.close()
    good = buffer.getvalue()
    size = os.path.getsize(path)
    with pytest.raises(ValueError):
        gzip_jump.SeekPoints.from_export(good[:-1], size, complete=True)
    with pytest.raises(ValueError):
        gzip_jump.SeekPoints.from_export(good, 100, complete=True)   # points beyond the file
    swapped = bytearray(good)
    first = 35 + 18 * 3
    swapped[first:first + 18], swapped[first + 18:first + 36] = (
        good[first + 18:first + 36], good[first:first + 18])
    with pytest.raises(ValueError):
        gzip_jump.SeekPoints.from_export(bytes(swapped), size, complete=True)


# -- through ArrayProxy ---------------------------------------------------------

SHAPE = (40, 40, 30, 12)
OFFSET = 352


@pytest.fixture
def volume(tmp_path, gzip_isolated):
    rng = np.random.default_rng(3)
    array = rng.standard_normal(SHAPE).astype(np.float32)
    array[rng.random(SHAPE) > 0.1] = 0
    path = str(tmp_path / "vol.nii.gz")
    with open(path, "wb") as out:
        out.write(gzip.compress(b"\0" * OFFSET + array.tobytes(order="F"), 6))
    yield path, array


def test_proxy_jumps_use_isal_after_a_saved_index(volume):
    path, array = volume
    proxylib.build_index(path)
    pgz.STATES.clear()
    proxy = ArrayProxy(path, (SHAPE, np.float32, OFFSET), keep_file_open=False)
    for key in [(Ellipsis, -1), (3, 4, 5, slice(1, None)), (slice(None), 7, 2, slice(2, 9, 3)),
                (Ellipsis, 5), (Ellipsis, 6)]:
        np.testing.assert_array_equal(proxy[key], array[key])
    state = next(iter(pgz.STATES.values()))
    assert state.indexed.reader is None and state.indexed.bytes_read == 0   # indexed_gzip never inflated
    assert state.stream.bytes_read == 0
    assert 0 < state.jumps.bytes_read


def test_without_isal_jumps_fall_back_to_indexed_gzip(volume, monkeypatch):
    path, array = volume
    monkeypatch.setattr(gzip_jump, "HAVE_ISAL", False)
    proxylib.build_index(path)
    pgz.STATES.clear()
    proxy = ArrayProxy(path, (SHAPE, np.float32, OFFSET))
    np.testing.assert_array_equal(proxy[..., -1], array[..., -1])
    np.testing.assert_array_equal(proxy[1, 2, 3], array[1, 2, 3])
    state = next(iter(pgz.STATES.values()))
    assert state.jumps.bytes_read == 0 and state.indexed.bytes_read > 0


def test_index_built_by_reads_then_serves_isal_jumps(volume):
    path, array = volume
    proxy = ArrayProxy(path, (SHAPE, np.float32, OFFSET))
    np.testing.assert_array_equal(proxy[..., -1], array[..., -1])   # indexed_gzip builds
    state = next(iter(pgz.STATES.values()))
    assert state.index.points is not None and state.index.points.complete
    before = state.indexed.bytes_read
    for t in (3, 9, 1):
        np.testing.assert_array_equal(proxy[5, 6, 7:9, t], array[5, 6, 7:9, t])
    assert state.indexed.bytes_read == before and state.jumps.bytes_read > 0
    assert zlib.crc32(np.asarray(proxy).tobytes()) == zlib.crc32(array.tobytes())


def test_issue_repro_walk_saved_by_nibabel_reads_last_volume(tmp_path, monkeypatch):
    """Issue 12's repro: isal jumps raised 'Invalid deflate block found' on this valid file
    (a stored block after a mid-byte point was misread by the old bit-shifted restart)."""
    nib = pytest.importorskip("nibabel")
    import proxylib
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(tmp_path / "cache"))
    walk = np.cumsum(np.random.default_rng(0).standard_normal((64, 64, 32, 12)), 0)
    walk = walk.astype(np.float32)
    path = str(tmp_path / "x.nii.gz")
    nib.save(nib.Nifti1Image(walk, np.eye(4)), path)
    proxylib.build_index(path)
    pgz.STATES.clear()                     # as a fresh process
    np.testing.assert_array_equal(proxylib.load(path).dataobj[..., 11], walk[..., 11])
    assert pgz.STATES.values()[0].jumps.bytes_read > 0
