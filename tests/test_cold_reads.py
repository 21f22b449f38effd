"""The read chooser on a cold page cache (proxylib.io.advice): right values, right advice.

No timings here (benchmarks/README.md, "Cold page cache", has them): these
tests check that cold data are read correctly by every path, and that each
path gives the kernel the advice the measurements chose.
"""

from __future__ import annotations

import mmap
import os

import numpy as np
import pytest

import proxylib.execute_map
from proxylib import ArrayProxy
from proxylib.io import advice, sources


def _residency(monkeypatch, answer):
    for module in (advice, proxylib.execute_map):
        monkeypatch.setattr(module, "resident", lambda m, o: answer)

SHAPE = (40, 30, 20, 12)  # 1.1 MB of float32: volumes of 96 KB, a span worth streaming


@pytest.fixture
def stored(tmp_path):
    data = np.random.default_rng(1).standard_normal(SHAPE, dtype=np.float32)
    path = tmp_path / "cold.raw"
    path.write_bytes(b"\0" * 352 + data.tobytes(order="F"))
    return path, data


def evict(path) -> None:
    """Drop the file's pages from the page cache (no map of it may be alive)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


KEYS = {"volume": (Ellipsis, 5), "series": (3, 4, 5, slice(None)), "xslab": (7,),
        "mask": (np.random.default_rng(2).random(SHAPE[:3]) < 0.01,),
        "volumes": (Ellipsis, [9, 2]), "oindex_like": ([1, 30], slice(None), 4)}


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="needs posix_fadvise")
@pytest.mark.parametrize("mmap_mode", [True, False])
@pytest.mark.parametrize("keep", [True, False])
def test_cold_reads_match_numpy(stored, mmap_mode, keep):
    path, data = stored
    for name, key in KEYS.items():
        evict(path)
        proxy = ArrayProxy(path, (SHAPE, "<f4", 352), mmap=mmap_mode, keep_file_open=keep)
        np.testing.assert_array_equal(proxy[key], data[key], err_msg=name)
        proxy.close()


def test_maps_are_made_random_access(stored, monkeypatch):
    seen = []
    monkeypatch.setattr(sources, "_advise", lambda m, a, o, n: seen.append((a, o, n)))
    path, data = stored
    proxy = ArrayProxy(path, (SHAPE, "<f4", 352), keep_file_open=True)
    proxy[3, 4, 5]
    assert seen and seen[0] == (mmap.MADV_RANDOM, 0, path.stat().st_size)


def test_cold_spans_stream_then_go_back_to_random(stored, monkeypatch):
    path, data = stored
    seen = []
    monkeypatch.setattr(advice, "_advise", lambda m, a, o, n: seen.append(a))
    _residency(monkeypatch, False)
    proxy = ArrayProxy(path, (SHAPE, "<f4", 352), keep_file_open=True)
    np.testing.assert_array_equal(proxy[7], data[7])  # an x-slab: read through, from the map
    assert seen == [mmap.MADV_SEQUENTIAL, mmap.MADV_RANDOM]
    seen.clear()
    _residency(monkeypatch, True)  # warm: no advice at all
    np.testing.assert_array_equal(proxy[8], data[8])
    assert seen == []


def test_cold_sparse_reads_ask_for_all_their_pages_first(stored, monkeypatch):
    path, data = stored
    seen = []
    monkeypatch.setattr(advice, "_advise", lambda m, a, o, n: seen.append((a, o)))
    _residency(monkeypatch, False)
    proxy = ArrayProxy(path, (SHAPE, "<f4", 352), keep_file_open=True)
    np.testing.assert_array_equal(proxy[3, 4, 5], data[3, 4, 5])
    assert [a for a, _ in seen] == [mmap.MADV_WILLNEED] * SHAPE[3]
    assert len({o for _, o in seen}) == SHAPE[3]


def test_cold_pread_runs_are_advised_together_and_read_right(stored, monkeypatch):
    path, data = stored
    real = os.preadv
    missed, advised = [], []

    def nowait_misses_odd_runs(fd, buffers, offset, flags=0):
        if flags & advice._RWF_NOWAIT and (offset // 4) % 2:
            missed.append(offset)
            raise BlockingIOError
        return real(fd, buffers, offset, flags)

    monkeypatch.setattr(advice.os, "preadv", nowait_misses_odd_runs)
    monkeypatch.setattr(advice.os, "posix_fadvise", lambda fd, o, n, a: advised.append(o))
    proxy = ArrayProxy(path, (SHAPE, "<f4", 352), mmap=False)
    np.testing.assert_array_equal(proxy[3, 4, 5], data[3, 4, 5])
    assert missed and advised == missed


def test_per_access_fancy_reads_of_long_rows_do_not_map(stored, monkeypatch):
    path, data = stored
    maps = []
    real = sources.DescriptorSource.mapping
    monkeypatch.setattr(sources.DescriptorSource, "mapping",
                        lambda self: maps.append(1) or real(self))
    proxy = ArrayProxy(path, (SHAPE, "<f4", 352), keep_file_open=False)
    np.testing.assert_array_equal(proxy[..., [9, 2]], data[..., [9, 2]])
    assert maps == []
    mask = KEYS["mask"][0]
    np.testing.assert_array_equal(proxy[mask], data[mask])  # short rows: gathered from a map
    assert maps
