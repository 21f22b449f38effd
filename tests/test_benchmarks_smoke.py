"""The benchmark suite runs on a tiny volume so it never rots (no timings checked)."""

import os
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks")
SMOKE_ENV = {
    "PROXYLIB_BENCH_SHAPE": "6,5,4,3",
    "PROXYLIB_BENCH_GAP_SPAN": str(1 << 20),
    "PROXYLIB_BENCH_SMOKE": "1",
    "PROXYLIB_BENCH_COLD_ROUNDS": "1",
    "PROXYLIB_COLD_DROP": "fadvise",  # a smoke run must not empty the machine's page cache
}


@pytest.mark.slow
def test_benchmark_suite_runs_on_tiny_data(tmp_path):
    env = dict(os.environ, **SMOKE_ENV, PROXYLIB_CACHE_DIR=str(tmp_path / "cache"))
    # the checkout's proxylib, not whichever one the environment has installed
    root = os.path.abspath(os.path.join(BENCHMARKS, os.pardir))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", BENCHMARKS, "-q", "--benchmark-disable", "-x",
         "-p", "no:randomly"],
        capture_output=True, text=True, env=env, timeout=600, cwd=BENCHMARKS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
