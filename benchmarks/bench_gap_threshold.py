"""Where skipping a gap starts to beat reading through it (local files, pread).

A 64 MiB file is viewed as rows of ``run + gap`` bytes and the key takes
``run`` bytes of every row, so the plan is N runs separated by equal gaps.
Each round takes them at another random phase within the row, so no round
re-reads what the one before read. "skip" forces one pread per run
(gap_threshold=0); "read through" forces block-sized reads of everything and
a strided copy (gap_threshold=huge). The gap where the two cross is the right
default for ``proxylib.io.cost.DEFAULT_GAP_THRESHOLD``.

``PROXYLIB_BENCH_GAP_COLD=1`` drops the file's pages before every round
(``proxylib.bench.cold.drop_page_cache``; ``PROXYLIB_COLD_DROP=fadvise`` keeps
it to this file): the crossing on a cold page cache.
``PROXYLIB_BENCH_GAP_SPAN`` shrinks the file.
"""

import os
import tempfile

import numpy as np
import pytest

from proxylib import ArrayProxy
from proxylib.bench.cold import drop_page_cache
from proxylib.io.cost import DEFAULT_BLOCK_SIZE, CostModel

SPAN = int(os.environ.get("PROXYLIB_BENCH_GAP_SPAN", 64 << 20))
RUN = 4096
RNG = np.random.default_rng()
COLD = os.environ.get("PROXYLIB_BENCH_GAP_COLD") == "1"
GAPS = [1 << 10, 4 << 10, 16 << 10, 32 << 10, 64 << 10, 256 << 10]
POLICIES = {
    "skip": CostModel(gap_threshold=0),
    "read through": CostModel(gap_threshold=1 << 62),
    "default": CostModel(),
}


@pytest.fixture(scope="module")
def span_file():
    with tempfile.TemporaryDirectory(prefix="proxylib-gap-") as directory:
        path = os.path.join(directory, "span.bin")
        with open(path, "wb") as handle:
            handle.write(np.random.default_rng(0).integers(0, 255, SPAN, np.uint8).tobytes())
        yield path


def _draw(path, stop):
    """A random phase in ``[0, stop)``; the page cache dropped first in a cold run."""
    if COLD:
        drop_page_cache([path])
    return int(RNG.integers(0, stop))


@pytest.mark.parametrize("gap", GAPS)
@pytest.mark.parametrize("policy", list(POLICIES))
def bench_gap(record, span_file, gap, policy):
    rows = SPAN // (RUN + gap)
    proxy = ArrayProxy(span_file, ((rows, RUN + gap), np.uint8), order="C", mmap=False,
                       keep_file_open=True, cost=POLICIES[policy])
    result = record(f"gap {gap >> 10} KiB", policy, lambda phase: proxy[:, phase:phase + RUN],
                    rounds=7, draw=lambda: _draw(span_file, gap + 1))
    phase = record.key
    expected = np.memmap(span_file, np.uint8, "r", shape=(rows, RUN + gap))
    np.testing.assert_array_equal(result, expected[:, phase:phase + RUN])
    proxy.close()


@pytest.mark.parametrize("block", [256 << 10, 1 << 20, 4 << 20, DEFAULT_BLOCK_SIZE, 32 << 20])
def bench_block_size(record, span_file, block):
    """Read-through streaming of a sparse key (every 64th byte, from a random first
    byte each round): buffer size vs speed."""
    proxy = ArrayProxy(span_file, ((SPAN // 64, 64), np.uint8), order="C", mmap=False,
                       keep_file_open=True, cost=CostModel(gap_threshold=1 << 62, block_size=block))
    result = record("block size (strided read-through)", f"block {block >> 10} KiB",
                    lambda column: proxy[:, column], rounds=7, measure_memory=True,
                    draw=lambda: _draw(span_file, 64))
    assert result.shape == (SPAN // 64,)
    proxy.close()
