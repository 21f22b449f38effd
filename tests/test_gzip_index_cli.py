"""`proxylib index` and build_index on sound, truncated, corrupt and changing files."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys

import numpy as np
import pytest

import proxylib
from proxylib import CorruptDataError, FileChangedError
from proxylib.cli.progress import Progress
from proxylib.io.gzip import source as pgz
from proxylib.io.gzip import build as gzip_build
from proxylib.io.gzip import index_cache

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)
DATA = np.cumsum(np.random.default_rng(2).standard_normal(400_000), 0).astype(np.float32)


def cli(*args, cache):
    env = dict(os.environ, PROXYLIB_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-m", "proxylib", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, check=False)


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.gz"
    path.write_bytes(gzip.compress(DATA.tobytes(), 6))
    return path


def test_index_says_built_then_reused_then_rebuilt(good, tmp_path):
    cache = tmp_path / "cache"
    runs = [cli("index", str(good), cache=cache), cli("index", str(good), cache=cache),
            cli("index", "--force", str(good), cache=cache)]
    assert [r.returncode for r in runs] == [0, 0, 0]
    for run, word in zip(runs, ["built", "reused", "rebuilt"]):
        assert f"{good}: index {word}: {cache}" in run.stdout, run.stdout


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_file_saves_nothing_and_exits_1(good, tmp_path, cut):
    data = good.read_bytes()
    good.write_bytes(data[:int(len(data) * cut)])
    cache = tmp_path / "cache"
    run = cli("index", str(good), cache=cache)
    assert run.returncode == 1
    assert run.stderr.startswith("proxylib index: error: ") and str(good) in run.stderr
    assert "truncated at compressed offset" in run.stderr
    assert not list((cache / "gzip").glob("*.pxgzi")) if (cache / "gzip").exists() else True


def test_crc_error_is_named_as_a_crc_error(good, tmp_path, gzip_isolated):
    data = bytearray(good.read_bytes())
    data[-8] ^= 0xFF                       # the stored CRC-32
    good.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="CRC-32 mismatch"):
        proxylib.build_index(good)
    run = cli("index", str(good), cache=tmp_path / "cache2")
    assert run.returncode == 1 and "CRC-32 mismatch" in run.stderr and "truncated" not in run.stderr


def test_trailing_garbage_is_accepted(good, gzip_isolated):
    with open(good, "ab") as out:
        out.write(b"this is not gzip" * 100)
    assert proxylib.build_index(good) is not None
    proxy = proxylib.ArrayProxy(str(good), ((DATA.size,), np.float32, 0))
    np.testing.assert_array_equal(proxy[-1000:], DATA[-1000:])


def test_file_rewritten_during_the_build_saves_nothing(good, gzip_isolated, monkeypatch):
    """Truncated and written back with its mtime restored (as cp -p does) mid-build."""
    original = gzip_build._verify_end
    data = good.read_bytes()
    st = os.stat(good)

    def rewrite_then_verify(index, fd, name):
        with open(good, "r+b") as out:
            out.truncate(len(data) // 2)
            out.seek(0)
            out.write(data)
        os.utime(good, ns=(st.st_atime_ns, st.st_mtime_ns))
        original(index, fd, name)

    monkeypatch.setattr(gzip_build, "_verify_end", rewrite_then_verify)
    with pytest.raises(FileChangedError, match="changed while its gzip index was built"):
        proxylib.build_index(good)
    assert not list(index_cache.cache_dir().glob("gzip/*.pxgzi"))


def test_saved_index_failing_in_use_is_discarded_and_rebuilt_once(good, gzip_isolated,
                                                                  monkeypatch):
    where = proxylib.build_index(good)
    pgz.STATES.clear()
    from proxylib.io.gzip import members as gzip_members
    real = gzip_members.MemberCursor.at_point
    calls = []

    def failing(points, point, name):      # the index's jump fails once, as a bad one would
        cursor = real(points, point, name)
        if not calls:
            calls.append(point)
            cursor.next_byte += 7
        return cursor

    monkeypatch.setattr(gzip_members.MemberCursor, "at_point", staticmethod(failing))
    proxy = proxylib.ArrayProxy(str(good), ((DATA.size,), np.float32, 0))
    with pytest.warns(index_cache.IndexCacheWarning, match="failed in use") as caught:
        np.testing.assert_array_equal(proxy[-5000:], DATA[-5000:])
    assert len(caught) == 1
    assert not where.exists() or calls      # discarded (and may be rebuilt by later reads)
    np.testing.assert_array_equal(proxy[200_000:201_000], DATA[200_000:201_000])


def test_progress_is_cleared_before_a_result_line():
    stream = io.StringIO()
    stream.isatty = lambda: True
    progress = Progress(stream=stream)
    progress(0, 2, "a.nii.gz")
    progress.clear()
    assert stream.getvalue().endswith("\r") and "\r" + " " * 10 in stream.getvalue()
