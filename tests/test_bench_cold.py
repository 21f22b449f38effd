"""``proxylib bench --cold`` and the benchmark's fresh keys and raw floor (no timings)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import proxylib
from proxylib.bench import cold, runner
from proxylib.bench.workloads import standard_workloads
from proxylib.cli import main

SHAPE = (9, 8, 7, 6)


@pytest.fixture
def volume(tmp_path):
    data = np.random.default_rng(3).standard_normal(SHAPE, dtype=np.float32)
    path = str(tmp_path / "v.nii")
    proxylib.save(proxylib.Nifti1Image(data, np.eye(4)), path)
    return path, data


def test_every_round_draws_a_fresh_key():
    rng = np.random.default_rng(0)
    for workload in standard_workloads((50, 40, 30, 20)):
        if workload.kind == "full":
            assert workload.fresh(rng) is workload
            continue
        keys = [workload.fresh(rng).key for _ in range(6)]
        assert len({repr(k) if not isinstance(k, tuple) or not isinstance(k[0], np.ndarray)
                    else k[0].tobytes() for k in
                    [(k,) if isinstance(k, np.ndarray) else k for k in keys]}) > 1, workload.name


def test_raw_floor_reads_the_same_values(volume):
    path, data = volume
    image = proxylib.load(path)
    target = cold.RawTarget(path, SHAPE, np.dtype("<f4"), image.dataobj.offset)
    rng = np.random.default_rng(1)
    try:
        for workload in standard_workloads(SHAPE):
            task = workload.fresh(rng)
            values = target.read(task)
            if task.name == "volume":
                expected = data[task.key].reshape(-1, order="F")
            elif task.name == "time series":
                expected = data[task.key]
            elif task.name.startswith("mask 20"):
                # time-major, voxels in file order: one pread per voxel per volume
                voxels = np.flatnonzero(task.key.reshape(-1, order="F"))
                expected = data.reshape((-1, SHAPE[3]), order="F")[voxels].T
            elif task.name == "x-slab":  # one sequential read, the slab kept in file order
                expected = data[task.key].reshape(-1, order="F")
            elif task.name.startswith("mask"):  # time-major, voxels in file order
                voxels = np.flatnonzero(task.key.reshape(-1, order="F"))
                expected = data.reshape((-1, SHAPE[3]), order="F")[voxels].T.reshape(-1)
            else:  # a full read: the whole array
                expected = data.reshape(-1, order="F")
            np.testing.assert_array_equal(values, expected, err_msg=task.name)
    finally:
        target.close()


@pytest.mark.parametrize("block", [4 * 37, 4 * 4000, 8 << 20])
def test_sequential_floor_keeps_the_right_elements_across_blocks(tmp_path, monkeypatch, block):
    # blocks that split volumes and x-rows at odd places, one block per volume, one for all
    shape = (20, 20, 10, 4)  # 4,000 voxels: the 1,000-voxel mask is a real subset
    data = np.random.default_rng(4).standard_normal(shape, dtype=np.float32)
    path = str(tmp_path / "w.nii")
    proxylib.save(proxylib.Nifti1Image(data, np.eye(4)), path)
    monkeypatch.setattr(cold, "SEQUENTIAL_BLOCK", block)
    target = cold.RawTarget(path, shape, np.dtype("<f4"), proxylib.load(path).dataobj.offset)
    rng = np.random.default_rng(2)
    try:
        for workload in standard_workloads(shape):
            if workload.name.startswith(("x-slab", "mask 1000")):
                for _ in range(3):
                    task = workload.fresh(rng)
                    if task.name == "x-slab":
                        expected = data[task.key].reshape(-1, order="F")
                    else:
                        assert task.key.sum() == 1000  # voxels in file (F) order:
                        voxels = np.flatnonzero(task.key.reshape(-1, order="F"))
                        expected = data.reshape((-1, shape[3]), order="F")[voxels].T.reshape(-1)
                    np.testing.assert_array_equal(target.read(task), expected, err_msg=task.name)
    finally:
        target.close()


def test_bench_cold_reports_both_caches_and_recommends_for_cold(volume, monkeypatch, capsys):
    path, _ = volume
    drops = []
    monkeypatch.setattr(runner, "drop_page_cache", lambda paths: drops.append(list(paths)))
    assert main(["bench", path, "--cold", "--repeat", "1", "--keys", "volume", "time",
                 "-q", "--no-peers"]) == 0
    out = capsys.readouterr().out
    assert "cold ms" in out and "warm ms" in out
    assert "recommended for this file, cold page cache (the case asked with --cold)" in out
    assert "recommended for this file, warm page cache" in out
    assert drops and all(paths == [path] for paths in drops)


def test_drop_page_cache_says_how(volume, monkeypatch):
    path, _ = volume

    def refuse(*args, **kwargs):
        raise PermissionError("not root")

    monkeypatch.setattr("builtins.open", refuse)
    assert cold.drop_page_cache([path]) in ("fadvise", "none")


def run_benchmark_script(name: str, *args: str, **environment: str) -> str:
    """The standard output of ``benchmarks/NAME args``, with this checkout's proxylib."""
    script = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", name)
    root = os.path.abspath(os.path.join(os.path.dirname(script), os.pardir))
    env = dict(os.environ, **environment,
               PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          env=env, timeout=120, check=True).stdout


def test_cold_mask_gap_script_measures_every_strategy(volume, tmp_path):
    path, _ = volume
    out = run_benchmark_script("cold_mask_gap.py", path, "--rounds", "1", "--gaps", "16", "64",
                               PROXYLIB_COLD_DROP="fadvise")
    rows = [(line[:40].strip(), float(line[40:].split()[0])) for line in out.splitlines()[1:]]
    assert rows[0][0] == "one sequential read"
    assert len(rows) == 1 + 3 * 3  # three settings: the probed cost and two forced gaps
    assert sum("probed cost" in name for name, _ in rows) == 3
    assert all(median > 0 for _, median in rows)


def test_small_mask_floor_script_checks_values_and_reports_every_reader(volume):
    path, _ = volume
    # --warm-by none: a test must not drop the machine's page cache
    out = run_benchmark_script("small_mask_floor.py", path, "--rounds", "2", "--warm-by", "none")
    rows = {line[:36].strip(): float(line[36:].split()[1]) for line in out.splitlines()[1:]}
    assert len(rows) == 3 + 4 and rows["proxylib mmap=True keep=True"] == 1.0
    assert all(ratio > 0 for ratio in rows.values())


def test_warm_volume_overhead_script_checks_values_and_reports_every_setting(volume):
    path, _ = volume
    out = run_benchmark_script("warm_volume_overhead.py", path, "--probe-every-read")
    lines = out.splitlines()
    assert lines[0].startswith("raw preadv (floor)") and len(lines) == 5
    assert all(float(line.split()[-1].rstrip("x")) > 0 for line in lines[1:])


def test_kept_map_first_touch_script_reports_both_ways(volume):
    path, _ = volume
    out = run_benchmark_script("kept_map_first_touch.py", path, "--rounds", "3", "--warm-by",
                               "none")
    lines = out.splitlines()
    assert [line[:32].strip() for line in lines] == ["first copy out of a fresh map",
                                                     "one preadv"]
    assert lines[1].split()[-1] == "1.00x"
