"""Every CLI command on URLs, run as a user would (a subprocess) against the loopback server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("fsspec", reason="fsspec is not installed (pip install 'proxylib[remote]')")
pytest.importorskip("aiohttp", reason="aiohttp is not installed")

import proxylib  # noqa: E402

from test_remote_server import RangeServer  # noqa: E402

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "data", "example4d.nii.gz")


def cli(*args, env=None, check=True):
    result = subprocess.run([sys.executable, "-m", "proxylib", *args], capture_output=True,
                            text=True, env=dict(os.environ, **(env or {})), timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    plain = folder / "example.nii"
    proxylib.save(proxylib.load(EXAMPLE), plain)
    files = {"example.nii": plain.read_bytes(), "example.nii.gz": open(EXAMPLE, "rb").read()}
    with RangeServer(files) as server:
        yield server


@pytest.fixture
def env(tmp_path):
    return {"PROXYLIB_CACHE_DIR": str(tmp_path / "cache")}


def test_ls_url(served, env):
    out = cli("ls", served.url("example.nii"), served.url("example.nii.gz"), env=env).stdout
    lines = out.splitlines()
    assert len(lines) == 2 and served.url("example.nii") in lines[0]
    assert "shape=(32, 32, 12, 10)" in lines[0] and "uncompressed" in lines[0]
    assert "gzip" in lines[1] and "saved index" in lines[1]  # reading the header saved one
    stats = cli("ls", "-s", "-q", served.url("example.nii"), env=env).stdout
    line = next(line for line in stats.splitlines() if "min=" in line)
    values = dict(part.split("=") for part in line.split())
    data = proxylib.load(EXAMPLE).get_fdata()
    assert float(values["max"]) == pytest.approx(data.max())


def test_index_url_then_ls_sees_it(served, env, monkeypatch):
    url = served.url("example.nii.gz")
    out = cli("index", "-q", url, env=env).stdout
    assert url in out and env["PROXYLIB_CACHE_DIR"] in out
    assert ", saved index" in cli("ls", url, env=env).stdout
    from proxylib.io.gzip import index_cache
    from proxylib.io.remote import open_url
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", env["PROXYLIB_CACHE_DIR"])
    saved = index_cache.load_index(open_url(url).index_identity())
    assert saved is not None and saved.complete  # the whole file's index, from another process
    refused = cli("index", served.url("example.nii"), env=env, check=False)
    assert refused.returncode == 1 and "not gzip-compressed" in refused.stderr


def test_slice_url(served, env, tmp_path):
    out = str(tmp_path / "out.npy")
    cli("slice", served.url("example.nii.gz"), "..., 3", "-o", out, env=env)
    np.testing.assert_allclose(np.load(out), proxylib.load(EXAMPLE).get_fdata()[..., 3])


def test_bench_url(served, env, tmp_path):
    report = str(tmp_path / "bench.json")
    out = cli("bench", served.url("example.nii"), "--repeat", "1", "--keys", "volume",
              "--json", report, env=env).stdout
    assert "proxylib remote" in out
    payload = json.load(open(report))
    assert [r["error"] for r in payload["results"]] == [None]


def test_storage_options_on_the_command_line(served, env):
    good = cli("ls", served.url("example.nii"), "--storage-options",
               '{"headers": {"X-Any": "1"}}', env=env)
    assert "shape=" in good.stdout
    bad = cli("ls", served.url("example.nii"), "--storage-options", "[1]", env=env, check=False)
    assert bad.returncode == 1 and "JSON object" in bad.stderr
    missing = cli("ls", served.url("nothere.nii"), env=env, check=False)
    assert missing.returncode == 1 and "not found on the server" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
