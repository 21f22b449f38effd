"""Large reads with a complete saved index, decompressed by several threads."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

import proxylib
from proxylib import ArrayProxy
from proxylib.io import gzip as pgz
from proxylib.io import gzip_parallel
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
        assert state.stream_bytes_read == 0 < state.jump_bytes_read   # no pass from the start


def test_spans_are_cut_at_points_and_cover_the_read():
    from proxylib.io import gzip_jump
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
