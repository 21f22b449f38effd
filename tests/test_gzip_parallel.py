"""Large reads with a complete saved index, decompressed by several threads."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import proxylib
from proxylib import ArrayProxy
from proxylib.io.gzip import source as pgz
from proxylib.io.cost import CostModel
from proxylib.io.gzip import inflate_into
from proxylib.io.gzip import parallel as gzip_parallel
from proxylib.testing import gzip_corpus as corpus

pytestmark = pytest.mark.usefixtures("gzip_isolated")   # 64 KiB spacing, private cache

SHAPE = (48, 40, 32, 6)


@pytest.fixture
def array():
    return np.cumsum(np.random.default_rng(9).standard_normal(SHAPE), 0).astype(np.float32)


@pytest.mark.parametrize("layout", [corpus.Layout(label="plain"), corpus.pigz(32 * 1024),
                                    corpus.bgzf(1_474_560, 100_000)], ids=str)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_full_and_large_reads_match(tmp_path, array, monkeypatch, layout, threads):
    path = tmp_path / "walk.gz"
    path.write_bytes(corpus.compress(array.tobytes(order="F"), layout))
    monkeypatch.setenv("PROXYLIB_GZIP_THREADS", str(threads))
    proxylib.build_index(path, spacing=64 * 1024)
    pgz.STATES.clear()
    proxy = ArrayProxy(str(path), (SHAPE, np.float32, 0))
    np.testing.assert_array_equal(np.asarray(proxy), array)
    np.testing.assert_array_equal(proxy[:, :, 3:29, 1:5], array[:, :, 3:29, 1:5])
    state = pgz.STATES.values()[0]
    if threads > 1:                                       # spans from seek points,
        assert state.stream.bytes_read == 0 < state.parallel.bytes_read   # no pass from the start


def test_spans_are_cut_at_points_and_cover_the_read():
    from proxylib.io.gzip import jump as gzip_jump
    table = np.zeros(10, gzip_jump._POINT)
    table["uncompressed"] = np.arange(10) * 1000
    table["compressed"] = np.arange(10) * 300
    table["has_window"][1:] = 1
    points = gzip_jump.SeekPoints(table, np.cumsum(table["has_window"]) - 1, lambda r: b"",
                                  spacing=1000, complete=True)
    spans = gzip_parallel.plan_spans(points, 1500, 7000, threads=2)
    assert spans[0][0] == 1500 and spans[-1][1] == 8500
    assert all(b == c for (_, b), (c, _) in zip(spans, spans[1:]))
    assert all(a % 1000 == 0 for a, _ in spans[1:])


def test_thread_setting(monkeypatch):
    monkeypatch.setenv("PROXYLIB_GZIP_THREADS", "3")
    assert gzip_parallel.default_threads() == 3
    monkeypatch.delenv("PROXYLIB_GZIP_THREADS")
    assert gzip_parallel.default_threads() >= 1


def test_block_sized_runs_of_a_full_read_are_read_as_one(tmp_path, array, monkeypatch):
    """The planner cuts a full read into block-sized runs; with threads they reach
    the parallel reader in one call (spans are not re-planned per run)."""
    from proxylib import execute_reads as execute  # where the direct runs are batched
    path = tmp_path / "walk.gz"
    path.write_bytes(gzip.compress(array.tobytes(order="F")))
    monkeypatch.setenv("PROXYLIB_GZIP_THREADS", "2")
    proxylib.build_index(path, spacing=64 * 1024)
    pgz.STATES.clear()
    calls = []
    original = gzip_parallel.read_runs

    def spy(points, fd, offsets, views, name, threads):
        calls.append(len(views))
        return original(points, fd, offsets, views, name, threads)
    monkeypatch.setattr(gzip_parallel, "read_runs", spy)
    monkeypatch.setattr(execute, "DIRECT_RUNS_PER_CALL", 1000)
    proxy = ArrayProxy(str(path), (SHAPE, np.float32, 0),
                       cost=CostModel(gap_threshold=64 * 1024, block_size=40 * 1024))
    np.testing.assert_array_equal(np.asarray(proxy), array)
    assert calls and calls[0] > 1 and len(calls) == 1


def test_runs_not_following_each_other_are_read_one_by_one(tmp_path, array, monkeypatch):
    raw = array.tobytes(order="F")
    path = tmp_path / "walk.gz"
    path.write_bytes(gzip.compress(raw))
    monkeypatch.setenv("PROXYLIB_GZIP_THREADS", "2")
    proxylib.build_index(path, spacing=64 * 1024)
    pgz.STATES.clear()
    offsets = [5, 700_000, 700_100, 1_300_000]
    buffers = [bytearray(600_000), bytearray(100), bytearray(3), bytearray(50_000)]
    fd = os.open(path, os.O_RDONLY)
    try:
        pgz.GzipSource(fd, str(path)).readinto_runs(offsets, [memoryview(b) for b in buffers])
    finally:
        os.close(fd)
    for offset, buffer in zip(offsets, buffers):
        assert bytes(buffer) == raw[offset:offset + len(buffer)]


def test_worker_threads_are_kept_and_capped(tmp_path, array, monkeypatch):
    path = tmp_path / "walk.gz"
    path.write_bytes(gzip.compress(array.tobytes(order="F")))
    proxylib.build_index(path, spacing=64 * 1024)
    for threads in (2, 2, 3, 2):
        monkeypatch.setenv("PROXYLIB_GZIP_THREADS", str(threads))
        pgz.STATES.clear()
        np.testing.assert_array_equal(np.asarray(ArrayProxy(str(path), (SHAPE, np.float32, 0))),
                                      array)
        assert gzip_parallel.POOL.size == threads
    first = gzip_parallel.POOL.get(2)
    assert gzip_parallel.POOL.get(2) is first
    assert first._max_workers == 2


@pytest.mark.parametrize("feed", [1, 7, 4096])
def test_tiny_input_pieces_keep_member_and_trailer_bookkeeping(tmp_path, monkeypatch, feed):
    """The inflater gets the input in pieces of at most _FEED bytes; piece edges
    may fall anywhere, including inside a trailer between members."""
    from proxylib.io.gzip import members as gzip_members
    raw = np.random.default_rng(3).integers(0, 4, 300_000, dtype=np.uint8).tobytes()
    blob = gzip.compress(raw[:150_000]) + gzip.compress(b"") + gzip.compress(raw[150_000:])
    path = tmp_path / "members.gz"
    path.write_bytes(blob)
    monkeypatch.setattr(gzip_members, "_FEED", feed)
    fd = os.open(path, os.O_RDONLY)
    try:
        out = bytearray(len(raw))
        cursor = gzip_members.MemberCursor(str(path))
        cursor.readinto(fd, 0, memoryview(out))
        cursor.run_to_end(fd)                  # every trailer (CRC-32, ISIZE) checked
    finally:
        os.close(fd)
    assert bytes(out) == gzip.decompress(blob) and cursor.members == 3 and cursor.ended


def test_a_failing_span_returns_only_after_every_span_ended():
    """A failed parallel read falls back to another decoder writing the same
    buffers: no span may still be writing then."""
    import time
    ended = []

    def job(item):
        if item == 0:
            raise ValueError("span 0 failed")
        time.sleep(0.05)
        ended.append(item)
        return 1
    with pytest.raises(ValueError, match="span 0 failed"):
        gzip_parallel.POOL.run(2, job, [0, 1, 2, 3])
    assert sorted(ended) == [1, 2, 3]


# -- ISA-L inflating straight into the result (proxylib.io.inflate_into) ----------

needs_direct = pytest.mark.skipif(not inflate_into.available(),
                                  reason="ISA-L's inflate API (python-isal) is not installed")
LAYOUTS = list(corpus.standard_layouts(400_000))


def _members(stream: bytes) -> int:
    """Gzip members with data, counted by the standard library."""
    import zlib
    count = 0
    while stream[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(31)
        count += bool(inflater.decompress(stream))
        stream = inflater.unused_data
    return count


def _full_read(path, shape, dtype, threads, monkeypatch):
    monkeypatch.setenv("PROXYLIB_GZIP_THREADS", str(threads))
    pgz.STATES.clear()
    before = (gzip_parallel.SPANS.direct, gzip_parallel.SPANS.cursor)
    data = np.asarray(ArrayProxy(str(path), (shape, dtype, 0)))
    return data, (gzip_parallel.SPANS.direct - before[0], gzip_parallel.SPANS.cursor - before[1])


def _seek_points_of_a_full_read(path, shape, dtype, threads, monkeypatch):
    """The seek points a full read of ``path`` hands to ``gzip_parallel.read_runs``."""
    seen = []
    original = gzip_parallel.read_runs

    def spy(points, *args):
        seen.append(points)
        return original(points, *args)
    monkeypatch.setattr(gzip_parallel, "read_runs", spy)
    _full_read(path, shape, dtype, threads, monkeypatch)
    monkeypatch.setattr(gzip_parallel, "read_runs", original)
    return seen[0]


@needs_direct
@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
def test_full_reads_of_every_layout_match_the_standard_library(tmp_path, layout, monkeypatch):
    """Full reads from a saved index, 1 and 2 threads, against gzip.decompress; spans of
    single-member streams are inflated straight into the result."""
    raw = np.random.default_rng(len(str(layout))).integers(0, 5, 600_000, np.uint8) * 40
    raw = np.cumsum(raw.view(np.int8).astype(np.int16)).astype(np.int16).tobytes()
    stream = corpus.compress(raw, layout)
    path = tmp_path / "layout.gz"
    path.write_bytes(stream)
    expected = np.frombuffer(corpus.reference(stream), np.int16)
    proxylib.build_index(path, spacing=64 * 1024)
    for threads in (1, 2):
        data, (direct, cursor) = _full_read(path, expected.shape, np.int16, threads, monkeypatch)
        np.testing.assert_array_equal(data, expected)
        assert direct + cursor >= threads
        assert cursor == 0, "a span fell back to the member walker"


@needs_direct
def test_direct_inflater_from_every_seek_point_matches_zlib(tmp_path, monkeypatch):
    """Each point (mid-byte ones primed, with their window) inflated by ISA-L into a
    buffer: the same bytes as the standard library from that offset."""
    raw = np.cumsum(np.random.default_rng(5).standard_normal(300_000)).astype(np.float32)
    raw = raw.tobytes()
    path = tmp_path / "walk.gz"
    path.write_bytes(gzip.compress(raw, 6))
    proxylib.build_index(path, spacing=64 * 1024)
    points = _seek_points_of_a_full_read(path, (len(raw),), np.uint8, 1, monkeypatch)
    assert len(points) > 10
    assert any(int(b) for b in points.table["bits"]), "no mid-byte point to prime"
    fd = os.open(path, os.O_RDONLY)
    try:
        for point in range(len(points)):
            row = points.table[point]
            start = int(row["uncompressed"])
            bits = int(row["bits"])
            if start + 200 > len(raw):
                continue
            out = bytearray(min(70_000, len(raw) - start - 100))
            with inflate_into.SpanInflater(                # each reuses the last one's buffers
                    fd, int(row["compressed"]) - (1 if bits else 0), bits,
                    points.window(point), os.fstat(fd).st_size) as inflater:
                inflater.skip(100)
                inflater.readinto(memoryview(out)[:3])
                inflater.readinto(memoryview(out)[3:])
            assert bytes(out) == raw[start + 100:start + 100 + len(out)], f"point {point}"
    finally:
        os.close(fd)


@needs_direct
def test_direct_inflater_refuses_what_it_cannot_produce(tmp_path):
    """Corrupt data, a stream ending inside the span and truncated input each raise
    InflateIntoError (the caller then lets the member walker decide)."""
    import zlib
    data = np.random.default_rng(2).integers(0, 9, 200_000, np.uint8).tobytes()
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflate = packer.compress(data) + packer.flush()
    cases = {"corrupt": b"\xff" * 4000, "ends early": deflate + b"\0" * 64,
             "truncated": deflate[:len(deflate) // 2]}
    for label, blob in cases.items():
        path = tmp_path / label.replace(" ", "_")
        path.write_bytes(blob)
        fd = os.open(path, os.O_RDONLY)
        try:
            inflater = inflate_into.SpanInflater(fd, 0, 0, None, len(blob))
            with pytest.raises(inflate_into.InflateIntoError):
                inflater.readinto(memoryview(bytearray(len(data) + 1000)))
        finally:
            os.close(fd)


@needs_direct
def test_corrupt_span_falls_back_and_names_the_error(tmp_path, array, monkeypatch):
    """A span ISA-L refuses is re-read by the member walker, whose CorruptDataError (the
    second decoder refusing too) is what the caller sees."""
    from proxylib.errors import CorruptDataError
    raw = array.tobytes(order="F")
    blob = bytearray(gzip.compress(raw))
    path = tmp_path / "walk.gz"
    path.write_bytes(bytes(blob))
    proxylib.build_index(path, spacing=64 * 1024)
    points = _seek_points_of_a_full_read(path, SHAPE, np.float32, 2, monkeypatch)
    blob[len(blob) // 2:len(blob) // 2 + 4096] = b"\xff" * 4096   # no valid deflate codes
    bad = tmp_path / "bad.gz"
    bad.write_bytes(bytes(blob))
    fd = os.open(bad, os.O_RDONLY)
    before = gzip_parallel.SPANS.cursor
    try:
        with pytest.raises(CorruptDataError, match="bad.gz"):
            gzip_parallel.read_runs(points, fd, [0], [memoryview(bytearray(len(raw)))], str(bad), 2)
    finally:
        os.close(fd)
    assert gzip_parallel.SPANS.cursor > before


def test_without_isal_api_spans_use_the_member_walker(tmp_path, array, monkeypatch):
    path = tmp_path / "walk.gz"
    path.write_bytes(gzip.compress(array.tobytes(order="F")))
    proxylib.build_index(path, spacing=64 * 1024)
    monkeypatch.setattr(inflate_into, "available", lambda: False)
    data, (direct, cursor) = _full_read(path, SHAPE, np.float32, 2, monkeypatch)
    np.testing.assert_array_equal(data, array)
    assert direct == 0 and cursor > 1



def test_an_unknown_isal_major_version_is_never_called(monkeypatch):
    """The state buffer is sized for ISA-L 2.x; another major version is not loaded."""
    isal = pytest.importorskip("isal")
    monkeypatch.setattr(isal, "ISAL_MAJOR_VERSION", inflate_into.ISAL_MAJOR + 1, raising=False)
    assert inflate_into._Library().get() is None
    monkeypatch.setattr(isal, "ISAL_MAJOR_VERSION", inflate_into.ISAL_MAJOR)
    assert inflate_into._Library().get() is not None


@needs_direct
@settings(max_examples=10, deadline=None)
@given(level=st.integers(0, 9), flush=st.sampled_from(sorted(corpus.FLUSHES)),
       every=st.integers(1, 300_000), cuts=st.lists(st.integers(0, 600_000), max_size=5),
       threads=st.integers(1, 3))
def test_generated_member_and_flush_layouts_read_exactly(level, flush, every, cuts, threads,
                                                         tmp_path_factory):
    """Full reads from a saved index over hypothesis-drawn member cuts and flush
    patterns, against the standard library, with no span falling back."""
    raw = np.cumsum(np.random.default_rng(every).integers(-2, 3, 300_000)).astype(np.int16)
    layout = corpus.Layout(level=level, flush=flush, flush_every=every,
                           members=tuple(sorted(cuts)))
    stream = corpus.compress(raw.tobytes(), layout)
    path = tmp_path_factory.mktemp("generated") / "raw.gz"
    path.write_bytes(stream)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        proxylib.build_index(path, spacing=64 * 1024)
        data, (direct, cursor) = _full_read(path, raw.shape, np.int16, threads, monkeypatch)
    np.testing.assert_array_equal(data, np.frombuffer(corpus.reference(stream), np.int16))
    assert direct >= 1 and cursor == 0


def test_running_to_the_end_counts_every_uncompressed_byte(tmp_path):
    """The member walker's position after run_to_end is the stream's length as the
    standard library inflates it (the remote stream-only size relies on it)."""
    from proxylib.io.gzip import members as gzip_members
    raw = np.random.default_rng(4).integers(0, 9, 700_000, dtype=np.uint8).tobytes()
    blob = gzip.compress(raw[:200_000], 1) + gzip.compress(b"") + gzip.compress(raw[200_000:], 9)
    path = tmp_path / "members.gz"
    path.write_bytes(blob)
    fd = os.open(path, os.O_RDONLY)
    try:
        cursor = gzip_members.MemberCursor(str(path))
        cursor.run_to_end(fd)
    finally:
        os.close(fd)
    assert cursor.position == len(gzip.decompress(blob)) and cursor.members == 3


def test_short_reads_get_one_span_per_thread_long_ones_several():
    """Spans shorter than MIN_SPAN cost more than they even out (an 8 MiB block of an
    x-slab read); a long read gets SPANS_PER_THREAD spans per thread, cut at points."""
    from proxylib.io.gzip import jump as gzip_jump
    spacing = 256 * 1024
    table = np.zeros(1600, gzip_jump._POINT)
    table["uncompressed"] = np.arange(1600) * spacing
    table["compressed"] = np.arange(1600) * 40_000
    table["has_window"][1:] = 1
    points = gzip_jump.SeekPoints(table, np.cumsum(table["has_window"]) - 1, lambda r: b"",
                                  spacing=spacing, complete=True)
    block = gzip_parallel.plan_spans(points, 352 + 8_000_000 * 3, 7_999_604, threads=2)
    whole = gzip_parallel.plan_spans(points, 352, 400_000_000, threads=2)
    assert len(block) == 2 and len(whole) == 2 * gzip_parallel.SPANS_PER_THREAD
    for spans, (start, stop) in ((block, (24_000_352, 31_999_956)), (whole, (352, 400_000_352))):
        assert spans[0][0] == start and spans[-1][1] == stop
        assert all(b == c and b % spacing == 0 for (_, b), (c, _) in zip(spans, spans[1:]))
    sizes = [b - a for a, b in whole]
    assert max(sizes) - min(sizes) <= 2 * spacing
