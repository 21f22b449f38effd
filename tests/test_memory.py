"""Memory follows the result, not the file: streamed reads and in-dtype scaling."""

import tracemalloc

import numpy as np
import pytest

from proxylib import ArrayProxy
from proxylib.indexing.plan import CostModel

BLOCK = 1 << 20
SHAPE = (40, 40, 40, 60)  # 15 MiB of float32, 7.3 MiB of int16


def peak_bytes(fn):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def int16_file(tmp_path_factory):
    data = np.random.default_rng(3).integers(-30000, 30000, SHAPE).astype(np.int16)
    path = tmp_path_factory.mktemp("memory") / "v.bin"
    path.write_bytes(data.tobytes(order="F"))
    return str(path), data


@pytest.mark.parametrize("keep", [True, False])
def test_strided_slab_streams_in_blocks(int16_file, keep):
    path, data = int16_file
    proxy = ArrayProxy(path, (SHAPE, np.int16), mmap=False, keep_file_open=keep,
                       cost=CostModel(block_size=BLOCK))
    result, peak = peak_bytes(lambda: proxy[7])
    np.testing.assert_array_equal(result, data[7])
    assert peak <= result.nbytes + 2 * BLOCK, f"peak {peak} for a {result.nbytes}-byte result"


def test_scaled_float32_read_has_no_float64_or_raw_copy(int16_file):
    path, data = int16_file
    proxy = ArrayProxy(path, (SHAPE, np.int16, 0, np.float32(0.5), np.float32(3)),
                       mmap=False, cost=CostModel(block_size=BLOCK))
    assert proxy.dtype == np.float32
    result, peak = peak_bytes(lambda: proxy[..., 3:40])
    expected = data[..., 3:40].astype(np.float32) * np.float32(0.5) + np.float32(3)
    np.testing.assert_array_equal(result, expected)
    # float64 would double the result; a full raw int16 copy would add half of it
    assert peak <= result.nbytes + 2 * BLOCK


def test_full_read_as_float32_from_float64_scaling(int16_file):
    path, data = int16_file
    proxy = ArrayProxy(path, (SHAPE, np.int16, 0, 0.5, 3.0), mmap=False,
                       cost=CostModel(block_size=BLOCK))
    assert proxy.dtype == np.float64
    result, peak = peak_bytes(lambda: np.asarray(proxy, dtype=np.float32))
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, data.astype(np.float32) * np.float32(0.5)
                                  + np.float32(3))
    assert peak <= result.nbytes + 2 * BLOCK
