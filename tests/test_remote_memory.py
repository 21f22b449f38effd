"""Memory of remote reads: any key costs at most its result plus a bounded buffer, from
a server that honours Range, one that ignores it (read as a stream on request), and
one that ignores it when proxylib refuses (the read fails, nothing piles up).

The bound does not grow with the file: the body here is larger than it."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

pytest.importorskip("fsspec", reason="fsspec is not installed (pip install 'proxylib[remote]')")
pytest.importorskip("aiohttp", reason="aiohttp is not installed")

import proxylib  # noqa: E402
from proxylib import RangeIgnoredError  # noqa: E402
from proxylib.io.remote import REMOTE_COST, open_url  # noqa: E402
from proxylib.io.remote.opening import CONCURRENT_REQUESTS  # noqa: E402
from proxylib.io.remote.transports import CHUNK  # noqa: E402

from test_remote_defects import nifti_bytes  # noqa: E402
from test_remote_server import RangeServer  # noqa: E402

SHAPE = (64, 64, 64, 96)   # 512 KiB int16 volumes, 48 MiB in all
#: What a read may hold beyond its result: one block of a read-through run, one
#: response chunk per request in flight, and slack for the interpreter's own.
BOUND = REMOTE_COST.block_size + CONCURRENT_REQUESTS * CHUNK + (2 << 20)
KEYS = {
    "volume": (..., 70),
    "voxel time series": (3, 4, 5),
    "x-slab": (slice(10, 18),),          # 6 MiB, every volume
    "two volumes by index": (..., [5, 90]),
}


@pytest.fixture(scope="module")
def big():
    values = np.zeros(SHAPE, np.int16)
    values[3, 4, 5] = np.arange(SHAPE[3])
    values[..., 70] = 7
    body = nifti_bytes(values)
    largest = max(values[key].nbytes for key in KEYS.values())
    assert len(body) > BOUND + largest + (8 << 20)  # what a read may hold cannot hold the file
    with RangeServer({"big.nii": body}) as server:
        yield server, values


def _peak(read):
    tracemalloc.start()
    try:
        try:
            result, failure = read(), None
        except RangeIgnoredError as err:
            result, failure = None, err
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, failure, peak


@pytest.mark.parametrize("mode", ["honoured", "stream", "refuse"])
def test_any_key_costs_its_result_plus_a_bounded_buffer(big, mode):
    server, values = big
    img = proxylib.load(open_url(server.url("big.nii"),
                                 ignored_range="stream" if mode == "stream" else "refuse"))
    server.ignore_range = mode != "honoured"
    try:
        for name, key in KEYS.items():
            expected = values[key]
            result, failure, peak = _peak(lambda: img.dataobj[key])
            if mode == "refuse":
                assert failure is not None and result is None, name
            else:
                np.testing.assert_array_equal(result, expected, err_msg=name)
            # the result buffer is allocated before a refused transfer stops
            assert peak <= expected.nbytes + BOUND, (name, peak, expected.nbytes)
    finally:
        server.ignore_range = False
