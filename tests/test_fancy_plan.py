"""Fancy reads are planned: distinct rows, coalesced runs, file order, bounded memory."""

import tracemalloc

import numpy as np
import pytest

import proxylib
from proxylib.execute import fetch
from proxylib.indexing.select import select, select_orthogonal
from proxylib.indexing.plan import CostModel
from proxylib.indexing.plan import LARGE_ROW_BYTES, plan_read
from proxylib.indexing.runs import coalesce_runs
from proxylib.io.gzip import GZIP_COST
from proxylib.io.sources import ByteSource
from proxylib.spec import ArraySpec

SHAPE = (20, 20, 20, 30)
SPEC = ArraySpec(SHAPE, np.float32, offset=352)


class RecordingSource(ByteSource):
    """Serves bytes from memory and records every read."""

    def __init__(self, payload: bytes, cost: CostModel) -> None:
        self.payload = payload
        self.cost = cost
        self.reads = []

    def readinto(self, offset, buffer):
        view = memoryview(buffer).cast("B")
        view[:] = self.payload[offset:offset + len(view)]
        self.reads.append((offset, len(view)))


def _mask(shape, count, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, bool)
    mask.flat[rng.choice(mask.size, count, replace=False)] = True
    return mask


def _data(spec):
    values = np.random.default_rng(1).standard_normal(spec.shape).astype(spec.storage_dtype)
    payload = b"\0" * spec.offset + values.tobytes(order=spec.order)
    return values, payload


def _read(spec, key, cost, orthogonal=False):
    values, payload = _data(spec)
    source = RecordingSource(payload, cost)
    fancy = (select_orthogonal if orthogonal else select)(key, spec.shape)
    plan = plan_read(fancy, spec, cost)
    fetched = np.empty(plan.fetched_shape, spec.storage_dtype)
    # the executor's reads strategy (no map): long rows one box each, short rows coalesced
    fetch(plan, source, fetched, spec.storage_dtype, may_map=False, map_kept=False,
          casts=False, block_size=cost.block_size)
    return plan.rows, plan.finish(fetched), values, source.reads


def test_mask_is_read_in_few_coalesced_runs():
    mask = _mask(SHAPE[:3], 200)
    plan, result, values, reads = _read(SPEC, mask, CostModel())
    np.testing.assert_array_equal(result, values[mask])
    # 200 voxels x 30 volumes = 6000 elements, but the file is 960 kB with gaps < 32 kB:
    # a handful of block-sized runs, not one read per voxel per volume
    runs = [plan.runs(chunk.offsets) for chunk in plan.chunks()]
    assert len(reads) == sum(len(starts) - 1 for starts in runs) <= 2
    assert plan.row_count == 6000


def test_sparse_mask_skips_large_gaps():
    mask = _mask(SHAPE[:3], 3)
    plan, result, values, reads = _read(SPEC, mask, CostModel(gap_threshold=64))
    np.testing.assert_array_equal(result, values[mask])
    assert len(reads) == 3 * SHAPE[3]                  # one 4-byte read per point and volume
    assert sum(n for _, n in reads) == 3 * SHAPE[3] * 4


def test_gzip_cost_reads_one_forward_pass():
    mask = _mask(SHAPE[:3], 50)
    plan, result, values, reads = _read(SPEC, (mask, slice(3, 20, 4)), GZIP_COST)
    np.testing.assert_array_equal(result, values[mask, 3:20:4])
    offsets = [offset for offset, _ in reads]
    assert offsets == sorted(offsets)
    for (offset, length), (following, _) in zip(reads, reads[1:]):
        assert offset + length <= following         # no byte is read twice
    offsets = np.concatenate([chunk.offsets for chunk in plan.chunks()])
    assert (np.diff(offsets) > 0).all()
    first, last = offsets[0], offsets[-1] + SPEC.storage_dtype.itemsize
    assert sum(n for _, n in reads) <= last - first


def test_repeated_unsorted_indices_read_once():
    spec = ArraySpec((10, 1000), np.float32, order="C")
    key = [3, 3, -9, 3, 1]
    plan, result, values, reads = _read(spec, (key,), CostModel(gap_threshold=0))
    np.testing.assert_array_equal(result, values[key])
    assert sorted(reads) == [(1 * 4000, 4000), (3 * 4000, 4000)]


def test_volume_list_reads_whole_volumes_one_by_one():
    idx = [7, 2, 2, 29]
    spec = ArraySpec((40, 40, 20, 30), np.float32, offset=352)
    plan, result, values, reads = _read(spec, (Ellipsis, idx), CostModel())
    np.testing.assert_array_equal(result, values[..., idx])
    volume = 40 * 40 * 20 * 4
    assert volume >= LARGE_ROW_BYTES and not plan.coalesce
    assert reads == [(352 + t * volume, volume) for t in (2, 7, 29)]


def test_coalesce_runs_cuts_at_gaps_and_blocks():
    offsets = np.array([0, 8, 16, 100, 108, 400, 404, 408, 412], dtype=np.int64)
    starts = coalesce_runs(offsets, 4, CostModel(gap_threshold=10, block_size=1 << 20))
    assert starts.tolist() == [0, 3, 5, 9]
    starts = coalesce_runs(offsets, 4, CostModel(gap_threshold=1 << 62, block_size=12))
    runs = [(offsets[a], offsets[b - 1] + 4) for a, b in zip(starts[:-1], starts[1:])]
    assert all(end - begin <= 12 for begin, end in runs)
    assert coalesce_runs(offsets[:0], 4, CostModel()).tolist() == [0]


def test_oindex_plan_reads_outer_product_of_distinct_indices():
    spec = ArraySpec((6, 7, 8), np.int16, order="F")
    key = ([5, 0, 5], slice(None, None, -2), np.arange(8) % 3 == 0)
    plan, result, values, reads = _read(spec, key, CostModel(gap_threshold=0), orthogonal=True)
    expected = values[[5, 0, 5]][:, ::-2][:, :, np.arange(8) % 3 == 0]
    np.testing.assert_array_equal(result, expected)
    assert plan.outer_shape[:1] == (3,) and sum(n for _, n in reads) == 2 * 4 * 3 * 2


@pytest.mark.parametrize("mmap", [False, True])
def test_mask_read_memory_is_the_result_plus_a_block(tmp_path, mmap):
    shape = (64, 64, 64, 16)
    path = tmp_path / "big.bin"
    rng = np.random.default_rng(0)
    with open(path, "wb") as handle:
        for _ in range(shape[3]):
            handle.write(rng.standard_normal(shape[:3]).astype(np.float32).tobytes("F"))
    mask = _mask(shape[:3], 1000)
    block = 256 * 1024
    proxy = proxylib.ArrayProxy(str(path), (shape, np.float32), mmap=mmap,
                                cost=CostModel(block_size=block))
    tracemalloc.start()
    try:
        result = proxy[mask]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    file_size = np.prod(shape) * 4                       # 16 MiB
    assert result.shape == (1000, 16)
    # result (64 kB) + fetched copy + row offsets (128 kB) + one block and its index
    assert peak < 2 * block + 40 * result.size + 256 * 1024
    assert peak < file_size / 8
    mm = np.memmap(path, np.float32, "r", shape=shape, order="F")
    np.testing.assert_array_equal(result, mm[mask])


LONG_ROW_KEYS = [
    (Ellipsis, [5, 0, 3]),                     # distinct, unsorted: fetched in request order
    (Ellipsis, [[5, 0], [3, 1]]),              # ... with a 2-d broadcast shape
    (Ellipsis, [5, 0, 5, 3]),                  # repeats: sorted, then taken
    ([4, 1, 0], Ellipsis),
    ([4, 1], slice(None), slice(None), [5, 0]),   # non-adjacent points
]


@pytest.mark.parametrize("order", ["F", "C"])
@pytest.mark.parametrize("key", LONG_ROW_KEYS, ids=range(len(LONG_ROW_KEYS)))
def test_long_rows_in_request_order(tmp_path, order, key):
    shape = (5, 8, 8, 6)
    values = np.random.default_rng(3).integers(-99, 99, shape).astype(">i2")
    path = tmp_path / "a.bin"
    path.write_bytes(values.tobytes(order=order))
    for mmap in (True, False):
        proxy = proxylib.ArrayProxy(str(path), (shape, ">i2"), order=order, mmap=mmap)
        np.testing.assert_array_equal(proxy[key], values[key])
        assert proxy[key].shape == values[key].shape
        if isinstance(key[0], list) and key[-1] is Ellipsis:
            expected = values[key[0]]
            np.testing.assert_array_equal(proxy.oindex[key[0], :, [7, 0, 1], ::-1],
                                          expected[:, :, [7, 0, 1], ::-1])
