"""The residency probe and what it changes (proxylib.io.advice.looks_cold, io/sources).

A file found cold is planned with the cold cost model and is not mapped for
one access; a warm one keeps the warm plan and its map. No timings here
(benchmarks/README.md, "Cold page cache", has them).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from proxylib import ArrayProxy
from proxylib.io import advice, sources
from proxylib.io.cost import COLD_GAP_THRESHOLD, LOCAL_FILE_COLD_COST, LOCAL_FILE_COST

needs_cachestat = pytest.mark.skipif(advice._syscall is None or not hasattr(os, "posix_fadvise"),
                                     reason="needs Linux cachestat and posix_fadvise")

SHAPE = (64, 64, 16, 6)  # 1.5 MiB of float32, volumes of 256 KiB


@pytest.fixture(autouse=True)
def probe_every_time(monkeypatch):
    """Each access here probes anew (the tests change residency between accesses)."""
    monkeypatch.setattr(advice.Residency, "REUSE_SECONDS", 0.0)


@pytest.fixture
def stored(tmp_path):
    data = np.random.default_rng(5).standard_normal(SHAPE, dtype=np.float32)
    path = tmp_path / "chooser.raw"
    path.write_bytes(b"\0" * 352 + data.tobytes(order="F"))
    return path, data


def _pages(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return advice.cached_pages(fd, 0, 0)
    finally:
        os.close(fd)


def evict(path, check: bool = True) -> None:
    """Drop the file's pages, or skip where the file system keeps them (tmpfs).

    Pages a live map has faulted in stay: ``check=False`` where that may be.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    if check and _pages(path):
        pytest.skip("this file system keeps the file's pages after POSIX_FADV_DONTNEED")


def warm(path) -> None:
    path.read_bytes()


@needs_cachestat
def test_cached_pages_counts_what_the_kernel_holds(stored):
    path, _ = stored
    evict(path)
    assert _pages(path) == 0  # no map of it is alive
    warm(path)
    assert _pages(path) == -(-path.stat().st_size // advice.PAGE)


@needs_cachestat
def test_looks_cold_follows_the_page_cache(stored):
    path, _ = stored
    fd = os.open(path, os.O_RDONLY)
    try:
        evict(path)
        assert advice.looks_cold(fd) is True
        warm(path)
        assert advice.looks_cold(fd) is False
        evict(path)
        os.pread(fd, 4096, 0)  # the header alone does not make the file warm
        assert advice.looks_cold(fd) is True
    finally:
        os.close(fd)


def test_looks_cold_says_unknown_without_cachestat(stored, monkeypatch):
    path, _ = stored
    monkeypatch.setattr(advice, "_syscall", None)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert advice.looks_cold(fd) is None
        assert sources.DescriptorSource(fd, str(path), os.fstat(fd).st_size).cost \
            is LOCAL_FILE_COST
    finally:
        os.close(fd)


@needs_cachestat
def test_descriptor_cost_and_map_follow_residency(stored):
    path, _ = stored
    fd = os.open(path, os.O_RDONLY)
    source = sources.DescriptorSource(fd, str(path), os.fstat(fd).st_size)
    try:
        evict(path)
        assert source.cost is LOCAL_FILE_COLD_COST
        assert source.mapping() is None  # cold: no map for one access
        warm(path)
        assert source.cost is LOCAL_FILE_COST
        assert source.mapping() is not None
    finally:
        source.close()
        os.close(fd)



def runs_per_call(monkeypatch):
    """A list that receives the number of runs of every positional batch read."""
    counts = []
    real = sources.DescriptorSource.readinto_runs
    monkeypatch.setattr(sources.DescriptorSource, "readinto_runs",
                        lambda self, offsets, buffers: counts.append(len(offsets))
                        or real(self, offsets, buffers))
    return counts

@needs_cachestat
@pytest.mark.parametrize("mmap_mode", [True, False])
def test_a_cold_sparse_read_is_planned_to_read_through_small_gaps(stored, monkeypatch, mmap_mode):
    """Rows 32 KiB apart: warm, one read per row; cold, read through (one run)."""
    path, data = stored
    rows = runs_per_call(monkeypatch)
    plane, row = SHAPE[0] * SHAPE[1] * 4, SHAPE[0] * 4
    gap_rows = 3  # rows of 256 bytes, every third z-plane: gaps of 48 KiB - 256 bytes
    key = (slice(None), 5, slice(None, None, gap_rows), 2)
    assert LOCAL_FILE_COST.gap_threshold < gap_rows * plane - row < COLD_GAP_THRESHOLD
    for cold, expected_runs in ((True, 1), (False, len(range(0, SHAPE[2], gap_rows)))):
        evict(path) if cold else warm(path)
        rows.clear()
        proxy = ArrayProxy(path, (SHAPE, "<f4", 352), mmap=mmap_mode, keep_file_open=False)
        np.testing.assert_array_equal(proxy[key], data[key])
        proxy.close()
        if cold or not mmap_mode:
            assert sum(rows) == expected_runs, (cold, rows)


@needs_cachestat
def test_cold_per_access_reads_do_not_map_and_match_numpy(stored, monkeypatch):
    path, data = stored
    maps = []
    real = sources.Mapper.get
    monkeypatch.setattr(sources.Mapper, "get", lambda self: maps.append(1) or real(self))
    mask = np.random.default_rng(3).random(SHAPE[:3]) < 0.02
    for key in ((7,), (mask,), (3, 4, 5, slice(None))):
        evict(path)
        proxy = ArrayProxy(path, (SHAPE, "<f4", 352), keep_file_open=False)
        np.testing.assert_array_equal(proxy[key], data[key])
        proxy.close()
    assert maps == []
    warm(path)  # warm: the map per access is used again where the executor asks for it
    proxy = ArrayProxy(path, (SHAPE, "<f4", 352), keep_file_open=False)
    np.testing.assert_array_equal(proxy[mask], data[mask])
    proxy.close()
    assert maps


@needs_cachestat
def test_a_cold_kept_map_is_read_with_preads(stored, monkeypatch):
    path, data = stored
    batches = runs_per_call(monkeypatch)
    mask = np.random.default_rng(4).random(SHAPE[:3]) < 0.02
    before = _descriptors_of(path)
    proxy = ArrayProxy(path, (SHAPE, "<f4", 352), keep_file_open=True)
    try:
        with proxy.opener.source() as source:  # the map is made and kept (no page faulted)
            assert isinstance(source, sources.MappedSource)
            evict(path)
            assert advice.map_looks_cold(source._mapper.get()) is True
            assert source.cost is LOCAL_FILE_COLD_COST and source.mapping() is None
        for key in ((7,), (mask,), (3, 4, 5, slice(None)), (Ellipsis, 2)):
            evict(path, check=False)
            assert _pages(path) == 0  # so no read before faulted a page in from the map
            batches.clear()
            np.testing.assert_array_equal(proxy[key], data[key])
            assert batches, key  # read with preads
        warm(path)
        batches.clear()
        with proxy.opener.source() as source:
            assert source.cost is LOCAL_FILE_COST and source.mapping() is not None
        np.testing.assert_array_equal(proxy[mask], data[mask])
        assert batches == []  # warm: gathered from the kept map
        if before is not None:  # the map's descriptor and the one cold reads keep
            assert _descriptors_of(path) == before + 2
    finally:
        proxy.close()
    if before is not None:
        assert _descriptors_of(path) == before  # close() closes both


def _descriptors_of(path):
    """Descriptors of this process open on ``path`` (None without /proc)."""
    if not os.path.isdir("/proc/self/fd"):
        return None
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{name}") == str(path)
        except OSError:
            pass
    return count


def test_one_probe_serves_the_reads_of_a_moment(monkeypatch):
    monkeypatch.setattr(advice.Residency, "REUSE_SECONDS", 60.0)
    answers = iter([True, False])
    residency = advice.Residency(lambda: next(answers))
    assert residency.last() is None
    assert [residency.cold() for _ in range(5)] == [True] * 5  # one probe
    assert residency.last() is True
    monkeypatch.setattr(advice.Residency, "REUSE_SECONDS", 0.0)
    assert residency.cold() is False  # the next probe


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("keep", [True, False])
def test_a_remembered_one_run_read_asks_for_no_file_level_probe(stored, monkeypatch, mmap, keep):
    # a volume is one pread (or one copy) whatever the residency: nothing to plan by it
    path, data = stored
    probes = []
    for name in ("looks_cold", "map_looks_cold"):
        real = getattr(sources, name)
        monkeypatch.setattr(sources, name,
                            lambda *args, real=real, name=name: probes.append(name) or real(*args))
    proxy = ArrayProxy(path, (SHAPE, "<f4", 352), mmap=mmap, keep_file_open=keep)
    np.testing.assert_array_equal(proxy[..., 0], data[..., 0])  # planned: may probe
    before = len(probes)
    for t in (1, 5, 2):
        np.testing.assert_array_equal(proxy[..., t], data[..., t])
    assert len(probes) == before
    np.testing.assert_array_equal(proxy[3], data[3])  # many runs: the probe is asked again
    assert len(probes) > before
    proxy.close()


def test_a_cold_kept_map_access_reads_every_run_by_pread_however_warm_later_spans_look(
        stored, monkeypatch):
    # one decision per access: pages the first preads brought in (read-ahead) must not
    # turn the rest of a cold read into page faults, one disk read each, on a MADV_RANDOM map
    path, data = stored
    proxy = ArrayProxy(path, (SHAPE, "<f4", 352), mmap=True, keep_file_open=True)
    np.testing.assert_array_equal(proxy[..., 0], data[..., 0])
    monkeypatch.setattr(sources, "map_looks_cold", lambda mapping: True)  # this access: cold
    monkeypatch.setattr(sources, "resident", lambda mapping, offset: True)  # spans look warm
    copied = []
    real = sources.streaming
    monkeypatch.setattr(sources, "streaming",
                        lambda *args, **kwargs: copied.append(args[1]) or real(*args, **kwargs))
    np.testing.assert_array_equal(proxy[3], data[3])  # an x-slab: runs through the file
    np.testing.assert_array_equal(proxy[:, :, 2:9], data[:, :, 2:9])  # long runs
    assert copied == []
    proxy.close()
