"""Per-voxel temporal mean: dask (threaded, proxylib chunks) vs reading the whole array.

Run: ``pytest benchmarks/bench_dask.py --benchmark-only`` (``PROXYLIB_BENCH_SHAPE``
shrinks the 100x100x100x100 float32 volume). Peers in the same run:

* ``np.asarray(proxy).mean(-1)``: an unscaled native file comes back as a
  memory map, so this is numpy streaming the page cache;
* ``np.array(proxy).mean(-1)``: the whole array read into memory first;
* ``to_dask(proxy)`` with default chunks (whole volumes up to 128 MiB) and with
  8-volume chunks, threaded scheduler (no lock), 2 workers.

Peak memory (tracemalloc, all threads) should follow the chunks in flight,
not the file.
"""

import numpy as np
import pytest

pytest.importorskip("dask.array")

from proxylib import ArrayProxy  # noqa: E402
from proxylib.daskarray import to_dask  # noqa: E402

GROUP = "temporal mean [..., :].mean(-1)"


@pytest.fixture
def proxy(volume):
    with ArrayProxy(volume.path, volume.spec) as p:
        yield p


def bench_numpy_asarray(record, proxy):
    result = record(GROUP, "np.asarray(proxy).mean(-1)",
                    lambda: np.asarray(proxy).mean(-1), rounds=3, measure_memory=True)
    assert result.shape == proxy.shape[:3]


def bench_numpy_array_copy(record, proxy):
    record(GROUP, "np.array(proxy).mean(-1)", lambda: np.array(proxy).mean(-1),
           rounds=3, measure_memory=True)


@pytest.mark.parametrize("chunks", [None, (-1, -1, -1, 8)], ids=["layout", "8 volumes"])
def bench_dask_threads(record, proxy, chunks):
    arr = to_dask(proxy, chunks=chunks)
    name = f"dask threads x2, chunks {arr.chunksize[3]} volumes"

    def run():
        return arr.mean(axis=-1).compute(scheduler="threads", num_workers=2)

    result = record(GROUP, name, run, rounds=3, measure_memory=True)
    expected = np.asarray(proxy)[:3, :3, :3].mean(-1)
    np.testing.assert_allclose(result[:3, :3, :3], expected, rtol=1e-5)
