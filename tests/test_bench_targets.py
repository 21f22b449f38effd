"""Issue 16's targets read off a ``proxylib bench --cold`` run (proxylib.bench.targets)."""

from __future__ import annotations

import json

import pytest

from proxylib.bench import report, targets
from proxylib.bench.runner import Measurement


def row(strategy, family, workload, seconds, cache, **settings):
    return Measurement(strategy, family, workload, seconds, 3, None, settings=settings or None,
                       cache=cache)


def proxylib_row(workload, seconds, cache, mmap, keep):
    return row(f"proxylib mmap={mmap!r} keep={keep}", "proxylib", workload, seconds, cache,
               mmap=mmap, keep_file_open=keep)


def test_ratios_are_taken_against_the_right_baseline():
    results = [
        row("raw floor (pread)", "raw", "time series", 0.010, "cold"),
        row("nibabel keep=True", "nibabel", "time series", 0.012, "cold"),
        row("nibabel keep=False", "nibabel", "time series", 0.008, "cold"),
        proxylib_row("time series", 0.014, "cold", "c", False),
        proxylib_row("time series", 0.020, "cold", "c", True),
        proxylib_row("mask 20 voxels", 0.003, "warm", "c", False),
        proxylib_row("mask 20 voxels", 0.001, "warm", "c", True),
    ]
    found = {(o.target.label, o.strategy): o for o in targets.evaluate(results)}
    floor = found[("cold time series <= 1.5x one pread per point", "proxylib mmap='c' keep=False")]
    assert floor.ratio == pytest.approx(1.4) and floor.met is True
    kept = found[("cold time series <= 1.5x one pread per point", "proxylib mmap='c' keep=True")]
    assert kept.ratio == pytest.approx(2.0) and kept.met is False
    nibabel = found[("cold time series never slower than nibabel", "proxylib mmap='c' keep=False")]
    assert nibabel.ratio == pytest.approx(0.014 / 0.008)  # the faster nibabel setting
    mask = found[("warm 20-voxel mask, default settings <= 4x a kept map",
                  "proxylib mmap='c' keep=False")]
    assert mask.ratio == pytest.approx(3.0) and mask.met is True


def test_cells_not_measured_are_never_met():
    outcomes = targets.evaluate([proxylib_row("volume", 0.01, "cold", "c", False)])
    assert outcomes and all(o.ratio is None and o.met is None for o in outcomes)
    assert "not measured" in targets.render([])
    assert "met" not in targets.render([]).replace("not measured", "")


def test_every_target_is_in_the_cold_report_and_its_json():
    results = [row("raw floor (pread)", "raw", "volume", 0.010, cache) for cache in
               ("warm", "cold")] + [proxylib_row("volume", 0.012, cache, "c", keep)
                                    for cache in ("warm", "cold") for keep in (True, False)]
    text = report.render_table(results, "f.nii")
    for target in targets.TARGETS:
        assert target.label in text
    assert "1.20  met" in text
    payload = json.loads(report.to_json(results, "f.nii"))
    cold_volume = [t for t in payload["targets"] if t["target"].startswith("cold one volume")]
    assert [t["ratio"] for t in cold_volume] == [pytest.approx(1.2)] * 2
    assert all(t["met"] for t in cold_volume)
