"""Shared fixtures for the benchmark suite: the 4D volume and the ratio report.

Run: ``pytest benchmarks/ --benchmark-only`` (see benchmarks/README.md).
``PROXYLIB_BENCH_SHAPE`` (e.g. ``8,8,8,8``) shrinks the volume for smoke runs.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict

import numpy as np
import pytest

from proxylib.bench.runner import peak_allocation

NIFTI1_OFFSET = 352
DEFAULT_SHAPE = (100, 100, 100, 100)


def bench_shape():
    text = os.environ.get("PROXYLIB_BENCH_SHAPE")
    return tuple(int(n) for n in text.split(",")) if text else DEFAULT_SHAPE


def write_volume(path, data):
    """A NIfTI-1 file (via nibabel when installed, else raw data after 352 bytes)."""
    try:
        import nibabel
    except ImportError:
        nibabel = None
    if nibabel is not None:
        image = nibabel.Nifti1Image(data, np.eye(4))
        image.header.set_data_dtype(data.dtype)
        image.header.set_slope_inter(1.0, 0.0)
        nibabel.save(image, path)
        return nibabel.load(path).dataobj.offset
    with open(path, "wb") as handle:
        handle.write(b"\0" * NIFTI1_OFFSET)
        handle.write(data.tobytes(order="F"))
    return NIFTI1_OFFSET


class Volume:
    def __init__(self, path, shape, dtype, offset):
        self.path, self.shape, self.dtype, self.offset = path, shape, np.dtype(dtype), offset

    @property
    def spec(self):
        return (self.shape, self.dtype, self.offset)


@pytest.fixture(scope="session")
def volume():
    shape = bench_shape()
    with tempfile.TemporaryDirectory(prefix="proxylib-bench-") as directory:
        rng = np.random.default_rng(0)
        data = np.asfortranarray(rng.standard_normal(shape, dtype=np.float32))
        path = os.path.join(directory, "volume.nii")
        offset = write_volume(path, data)
        del data
        yield Volume(path, shape, np.float32, offset)


_medians = defaultdict(dict)
_memory = defaultdict(dict)


@pytest.fixture
def record(benchmark):
    """Run ``fn`` under pytest-benchmark and remember its median for the ratio table.

    With ``draw``, every round (warm-up and traced round included) calls
    ``fn(key)`` with ``key = draw()`` made before the timer starts: a fresh
    key each round, because a repeated key measures a cache, not a read.
    ``record.key`` is then the last key drawn, to check the last result with.
    """
    def run(group, name, fn, rounds=10, measure_memory=False, draw=None):
        benchmark.group = group
        benchmark.name = name
        def fresh_key():
            run.key = draw()
            return (run.key,), {}
        result = benchmark.pedantic(fn, setup=None if draw is None else fresh_key, rounds=rounds,
                                    iterations=1, warmup_rounds=1)
        stats = getattr(benchmark, "stats", None)
        if stats is not None:
            _medians[group][name] = stats.stats.median
        if measure_memory:
            _memory[group][name] = peak_allocation(fn if draw is None else lambda: fn(draw()))
        return result
    run.key = None
    return run


@pytest.fixture
def record_medians():
    """Add medians measured outside pytest-benchmark's timer (seconds) to the ratio table."""
    def run(group, medians):
        _medians[group].update(medians)
    return run


BASELINES = ("raw preadv", "raw open+fstat+preadv+close", "numpy.memmap kept", "numpy.memmap fresh",
             "nibabel")


def pytest_terminal_summary(terminalreporter):
    if not _medians:
        return
    write = terminalreporter.write_line
    terminalreporter.section("proxylib ratios (median time / baseline median; < 1 is faster)")
    for group in sorted(_medians):
        results = _medians[group]
        present = [b for b in BASELINES if b in results]
        write(f"[{group}]")
        header = f"  {'strategy':34s} {'median ms':>10s} " + " ".join(
            f"{'/' + b:>20s}" for b in present) + f" {'peak MiB':>9s}"
        write(header)
        for name in sorted(results):
            median = results[name]
            ratios = " ".join(f"{median / results[b]:20.3f}" for b in present)
            memory = _memory[group].get(name)
            mem = f"{memory / 2**20:9.1f}" if memory is not None else f"{'':9s}"
            write(f"  {name:34s} {median * 1e3:10.3f} {ratios} {mem}")
