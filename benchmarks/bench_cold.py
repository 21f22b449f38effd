"""Cold page cache: every round drops the cache, opens a fresh image and reads a fresh key.

Warm and cold side by side for every proxylib setting, the raw pread floor,
numpy.memmap and nibabel, through the same machinery as ``proxylib bench
--cold`` (proxylib/bench/runner.py, proxylib/bench/cold.py). As root the
whole page cache is dropped (``/proc/sys/vm/drop_caches``); otherwise the
file's pages are (``POSIX_FADV_DONTNEED``; no map of it is alive between
rounds). Run: ``python -m pytest benchmarks/bench_cold.py -q -s`` (prints the
table; ``PROXYLIB_BENCH_SHAPE`` shrinks the volume). The table ends with every
issue-16 target as a ratio of this run (proxylib/bench/targets.py). Figures
and the choices they made: benchmarks/README.md, "Cold page cache".
"""

import os

import pytest

from proxylib.bench import report
from proxylib.bench.runner import run_benchmark

ROUNDS = int(os.environ.get("PROXYLIB_BENCH_COLD_ROUNDS", "3"))


def bench_cold_and_warm(volume, capsys):
    results = run_benchmark(volume.path, repeat=ROUNDS, memory=False, cold=True,
                            workload_names=("volume", "time", "x-slab", "mask"))
    table = report.render_table(results, volume.path)
    with capsys.disabled():
        print()
        print(table)
    own = [r for r in results if r.family == "proxylib"]
    assert own and all(r.error is None for r in own)
    assert {r.cache for r in results} == {"warm", "cold"}
    assert "issue 16 targets" in table


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q", "-s"])
