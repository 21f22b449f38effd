"""Every subcommand run as a user would: a subprocess on real files, bad input included."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import proxylib
from proxylib.cli.keys import parse_key
from proxylib.cli.slicing import sliced_affine

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "data", "example4d.nii.gz")


def cli(*args, env=None, check=True):
    full_env = dict(os.environ, **(env or {}))
    result = subprocess.run([sys.executable, "-m", "proxylib", *args], capture_output=True,
                            text=True, env=full_env, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def plain(tmp_path):
    path = str(tmp_path / "example.nii")
    proxylib.save(proxylib.load(EXAMPLE), path)
    return path


@pytest.mark.parametrize("text, expected", [
    ("..., 10:20", (Ellipsis, slice(10, 20))),
    ("5, :, :, 0", (5, slice(None), slice(None), 0)),
    ("::-2, None, -1", (slice(None, None, -2), None, -1)),
    ("[1, 3, -2], 0", ([1, 3, -2], 0)),
    ("3", 3),
])
def test_parse_key(text, expected):
    assert parse_key(text) == expected


@pytest.mark.parametrize("text", ["__import__('os')", "1.5", "a", "1:2:3:4", "x.y", "{1}"])
def test_parse_key_refuses_non_literals(text):
    with pytest.raises(ValueError):
        parse_key(text)


def test_version_and_help():
    assert cli("--version").stdout.strip() == f"proxylib {proxylib.__version__}"
    for command in ("bench", "ls", "slice", "index"):
        assert "usage: proxylib " + command in cli(command, "--help").stdout


def test_ls(plain):
    out = cli("ls", plain, EXAMPLE).stdout.splitlines()
    assert len(out) == 2
    assert "shape=(32, 32, 12, 10)" in out[0] and "storage=int16" in out[0]
    assert "output=float64" in out[0] and "uncompressed" in out[0]
    assert "gzip" in out[1] and "index" in out[1]
    stats = cli("ls", "-s", plain).stdout
    data = proxylib.load(plain).get_fdata()
    line = next(line for line in stats.splitlines() if "min=" in line)
    values = dict(part.split("=") for part in line.split())
    assert float(values["min"]) == pytest.approx(data.min())
    assert float(values["max"]) == pytest.approx(data.max())
    assert float(values["mean"]) == pytest.approx(data.mean(), rel=1e-5)
    verbose = cli("ls", "-v", plain).stdout
    assert "vox_offset" in verbose and "affine:" in verbose


@pytest.mark.parametrize("suffix", [".npy", ".nii", ".nii.gz"])
def test_slice(tmp_path, plain, suffix):
    out = str(tmp_path / ("out" + suffix))
    cli("slice", plain, "2:30:3, ::-1, 4, 1:3", "-o", out)
    image = proxylib.load(plain)
    expected = image.get_fdata()[2:30:3, ::-1, 4, 1:3]
    if suffix == ".npy":
        np.testing.assert_allclose(np.load(out), expected)
        return
    sliced = proxylib.load(out)
    np.testing.assert_allclose(sliced.get_fdata()[:, :, 0], expected)
    # voxel (i, j, 0) of the slice sits where voxel (2 + 3i, 31 - j, 4) of the source sits
    for i, j in [(0, 0), (3, 5), (9, 31)]:
        np.testing.assert_allclose(sliced.affine @ [i, j, 0, 1],
                                   image.affine @ [2 + 3 * i, 31 - j, 4, 1])


def test_index(tmp_path):
    env = {"PROXYLIB_CACHE_DIR": str(tmp_path / "cache")}
    out = cli("index", EXAMPLE, env=env).stdout
    assert "index" in out and str(tmp_path / "cache") in out
    assert "saved index" in cli("ls", EXAMPLE, env=env).stdout


def test_bench_on_a_file(tmp_path, plain):
    report = str(tmp_path / "bench.json")
    out = cli("bench", plain, "--repeat", "1", "--keys", "volume", "x-slab", "--json", report).stdout
    assert "recommended for this file" in out and "numpy.memmap" in out
    payload = json.load(open(report))
    names = {r["strategy"] for r in payload["results"]}
    assert {"proxylib mmap='c' keep=True", "proxylib mmap=False keep=False"} <= names
    assert {r["workload"] for r in payload["results"]} == {"volume", "x-slab"}
    assert all(r["error"] is None for r in payload["results"] if r["family"] == "proxylib")
    assert payload["recommended"] is not None


def test_default_bench_runs_without_arguments(tmp_path):
    """`proxylib` alone: the README's main job (on a small generated volume here)."""
    out = cli("--shape", "12,10,8,6", "--repeat", "1", "--quiet").stdout
    assert out.count("recommended for this file") == 2
    assert "12x10x8x6 float32" in out and "generated; deleted when the run ends" in out
    assert "on disk (gzipped)" in out and "gz saved-index" in out


@pytest.mark.parametrize("args, message", [
    (["ls", "missing.nii"], "missing.nii"),
    (["slice", EXAMPLE, "1.5", "-o", "x.npy"], "not allowed"),
    (["slice", EXAMPLE, "99", "-o", "x.npy"], "out of bounds"),
    (["slice", EXAMPLE, "0", "-o", "x.txt"], "must end in"),
    (["index", "missing.nii.gz"], "missing.nii.gz"),
])
def test_expected_errors_are_one_line(tmp_path, args, message):
    result = cli(*args, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_bad_header_is_one_line(tmp_path):
    bad = tmp_path / "bad.nii"
    bad.write_bytes(b"\0" * 400)
    result = cli("ls", str(bad), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "bad.nii" in result.stderr


def test_quiet_when_piped(tmp_path):
    result = cli("index", EXAMPLE, env={"PROXYLIB_CACHE_DIR": str(tmp_path)})
    assert "[" not in result.stderr  # no progress bar when stderr is not a terminal


def test_bench_plot(tmp_path, plain):
    pytest.importorskip("matplotlib")  # installed by the test extra (proxylib[plot])
    chart = tmp_path / "bench.png"
    cli("bench", plain, "--repeat", "1", "--keys", "volume", "time", "--plot", str(chart),
        "--no-peers")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000


def test_slice_keeps_header_fields(tmp_path):
    data = np.arange(4 * 5 * 6 * 8, dtype=np.int16).reshape(4, 5, 6, 8)
    image = proxylib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    image.header.set_zooms((2.0, 2.0, 2.0, 2.5))
    image.header["xyzt_units"] = 2 | 8  # mm, sec
    source = str(tmp_path / "bold.nii")
    proxylib.save(image, source)
    out = str(tmp_path / "every_other.nii")
    cli("slice", source, "..., 1:7:2", "-o", out)
    sliced = proxylib.load(out)
    assert tuple(sliced.header.get_zooms()) == (2.0, 2.0, 2.0, 5.0)  # TR times the step
    assert int(sliced.header["xyzt_units"]) == 2 | 8
    np.testing.assert_array_equal(sliced.get_fdata(), data[..., 1:7:2])


def test_ls_reports_the_data_file_of_a_pair_and_skips_stats_of_records(tmp_path):
    env = {"PROXYLIB_CACHE_DIR": str(tmp_path / "cache")}
    pair = str(tmp_path / "pair.hdr.gz")
    proxylib.save(proxylib.load(EXAMPLE), pair)
    cli("index", str(tmp_path / "pair.img.gz"), env=env)
    assert "gzip, saved index" in cli("ls", pair, env=env).stdout
    rgb = np.zeros((3, 3, 3), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb_path = str(tmp_path / "rgb.nii")
    proxylib.save(proxylib.Nifti1Image(rgb, np.eye(4)), rgb_path)
    out = cli("ls", "-s", rgb_path).stdout
    assert "statistics: not computed" in out


def test_bench_fails_clearly_when_every_strategy_fails(tmp_path):
    whole = open(EXAMPLE, "rb").read()
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(whole[:len(whole) // 2])
    result = cli("bench", str(broken), "--repeat", "1", "--keys", "volume", "--no-peers",
                 check=False, env={"PROXYLIB_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 1 and "every proxylib strategy failed" in result.stderr
    assert "recommended for this file" not in result.stdout
    assert "no recommendation" in result.stdout


@pytest.mark.parametrize("key", [(slice(2, 8, 2), slice(None), slice(1, 5)),
                                 (slice(None, None, -1), 3, slice(8, 0, -3), 1),
                                 (slice(1, 9, 3), Ellipsis, 2)])
def test_sliced_affine_keeps_every_voxels_world_position(key):
    affine = np.array([[2, 0.1, 0, -10], [0, 3, 0.2, 5], [0.3, 0, 1.5, 7], [0, 0, 0, 1.]])
    shape = (10, 12, 9, 4)
    nifti_key, new_affine = sliced_affine(key, shape, affine)
    old_voxels = np.indices(shape[:3]).reshape(3, *shape[:3])
    picked = [old_voxels[axis][nifti_key[:3]] for axis in range(3)]
    new_voxels = np.indices(picked[0].shape)
    for new, old in zip(zip(*(v.ravel() for v in new_voxels)), zip(*(p.ravel() for p in picked))):
        np.testing.assert_allclose(new_affine @ [*new, 1], affine @ [*old, 1])
