"""Where skipping a gap starts to beat reading through it (local files, pread).

A 64 MiB file is viewed as rows of ``run + gap`` bytes and the key takes the
first ``run`` bytes of every row, so the plan is N runs separated by equal
gaps. "skip" forces one pread per run (gap_threshold=0); "read through"
forces block-sized reads of everything and a strided copy
(gap_threshold=huge). The gap where the two cross is the right default for
``proxylib.indexing.plan.DEFAULT_GAP_THRESHOLD``.
"""

import os
import tempfile

import numpy as np
import pytest

from proxylib import ArrayProxy
from proxylib.indexing.plan import DEFAULT_BLOCK_SIZE, CostModel

SPAN = int(os.environ.get("PROXYLIB_BENCH_GAP_SPAN", 64 << 20))
RUN = 4096
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


@pytest.mark.parametrize("gap", GAPS)
@pytest.mark.parametrize("policy", list(POLICIES))
def bench_gap(record, span_file, gap, policy):
    rows = SPAN // (RUN + gap)
    proxy = ArrayProxy(span_file, ((rows, RUN + gap), np.uint8), order="C", mmap=False,
                       keep_file_open=True, cost=POLICIES[policy])
    result = record(f"gap {gap >> 10} KiB", policy, lambda: proxy[:, :RUN], rounds=7)
    assert result.shape == (rows, RUN)
    proxy.close()


@pytest.mark.parametrize("block", [256 << 10, 1 << 20, 4 << 20, DEFAULT_BLOCK_SIZE, 32 << 20])
def bench_block_size(record, span_file, block):
    """Read-through streaming of a sparse key (every 64th byte): buffer size vs speed."""
    proxy = ArrayProxy(span_file, ((SPAN // 64, 64), np.uint8), order="C", mmap=False,
                       keep_file_open=True, cost=CostModel(gap_threshold=1 << 62, block_size=block))
    record("block size (strided read-through)", f"block {block >> 10} KiB",
           lambda: proxy[:, 0], rounds=7, measure_memory=True)
    proxy.close()
