"""The main job as a newcomer meets it: what `proxylib` (bench) says, shows and draws."""

from __future__ import annotations

import builtins
import itertools
import re

import pytest

from proxylib.bench.report import draw, series_style
from proxylib.bench.runner import Measurement
from proxylib.cli import main

SMALL = ["--shape", "6,5,4,3", "--repeat", "1", "--keys", "volume"]


def run(capsys, *args):
    assert main(list(SMALL) + list(args)) == 0
    return capsys.readouterr()


def test_bench_states_shape_size_and_location_and_gzip_rows_have_no_mmap(capsys):
    out = run(capsys, "--no-peers").out
    described = re.findall(r"proxylib bench: (\S+) \(generated; deleted when the run ends\): "
                           r"6x5x4x3 float32, ([\d.]+) KiB of data, ([\d.]+) KiB on disk "
                           r"\((uncompressed|gzipped)\)", out)
    assert [(path.rsplit("/", 1)[1], kind) for path, _, _, kind in described] == \
        [("volume.nii", "uncompressed"), ("volume.nii.gz", "gzipped")]
    assert all(float(data) == pytest.approx(6 * 5 * 4 * 3 * 4 / 1024, abs=0.05)
               for _, data, _, _ in described)
    gzip_rows = [line for line in out.splitlines() if line.startswith("  proxylib gz")]
    assert len(gzip_rows) == 4 and not any("mmap" in line for line in gzip_rows)
    assert "recommended for this file: keep_file_open=" in out  # no mmap for gzip either


def test_progress_is_a_line_per_cell_when_not_a_terminal(capsys):
    # strategies run interleaved round by round, so a line per cell (a workload, warm or
    # cold, over every strategy), no longer a line per strategy
    err = run(capsys, "--no-peers", "--keys", "volume", "time").err  # capture is no terminal
    lines = [line.strip() for line in err.splitlines() if line.strip().startswith("[")]
    assert lines == [f"[{i}/2] {w}: {n} strategies interleaved"
                     for n in (6, 4) for i, w in enumerate(("volume", "time series"), 1)]
    assert run(capsys, "--no-peers", "--quiet").err == ""


def test_nibabel_column_or_a_line_saying_how_to_fill_it(capsys, monkeypatch):
    pytest.importorskip("nibabel")
    with_nibabel = run(capsys).out
    assert "nibabel keep=True" in with_nibabel and "nibabel gz keep=True" in with_nibabel
    assert "pip install nibabel" not in with_nibabel
    real_import = builtins.__import__

    def without_nibabel(name, *args, **kwargs):
        if name == "nibabel" or name.startswith("nibabel."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", without_nibabel)
    out = run(capsys).out
    assert "nibabel keep" not in out
    assert out.count("python3 -m pip install nibabel") == 1


def _every_strategy():
    names = [(f"proxylib mmap={m!r} keep={k}", "proxylib", {"mmap": m, "keep_file_open": k})
             for m in ("c", "r", False) for k in (True, False)]
    names += [(f"proxylib gz {s} keep={k}", "proxylib", {"keep_file_open": k})
              for s in ("no-index", "saved-index") for k in (True, False)]
    names += [("numpy.memmap kept", "numpy.memmap", {}), ("numpy.memmap fresh", "numpy.memmap", {})]
    names += [(f"nibabel{g} keep={k}", "nibabel", {}) for g in ("", " gz") for k in (True, False)]
    return [Measurement(name, family, workload, 0.001 * (i + 1), 1, None, settings=settings)
            for workload in ("volume", "x-slab")
            for i, (name, family, settings) in enumerate(names)]


def test_plot_tells_every_series_apart_and_keeps_the_legend_off_the_bars():
    pytest.importorskip("matplotlib")
    results = _every_strategy()
    styles = {r.strategy: (series_style(r)["color"], series_style(r)["hatch"]) for r in results}
    assert len(set(styles.values())) == len(styles) == 16
    colours = {name: style[0] for name, style in styles.items()}
    assert colours["proxylib mmap='c' keep=True"] == colours["proxylib mmap='r' keep=True"]
    assert colours["proxylib mmap='c' keep=True"] != colours["nibabel keep=True"]
    fig = draw(results)
    renderer = fig.canvas.get_renderer()
    axes = fig.axes[0]
    legend = axes.get_legend()
    assert len(legend.get_texts()) == 16
    assert legend.get_window_extent(renderer).x0 >= axes.get_window_extent(renderer).x1
    import matplotlib.pyplot as plt
    plt.close(fig)
