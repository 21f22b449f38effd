"""Command-line edges of issue 13, run as a user would: subprocesses on real files."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import proxylib
from proxylib.io import atomic

nib = pytest.importorskip("nibabel")

DATA = np.arange(4 * 5 * 6 * 10, dtype="<i2").reshape(4, 5, 6, 10)
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, cwd=None, **env_vars):
    """``python -m proxylib ARGS`` with this checkout first on the path; args may be bytes."""
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""),
               **env_vars)
    return subprocess.run([sys.executable, "-m", "proxylib", *args], capture_output=True,
                          env=env, timeout=120, cwd=cwd)


def _odd_header_file(path):
    """A file written by nibabel with a negative pixdim, a NaN TR and no qform/sform."""
    img = nib.Nifti1Image(DATA, None)
    img.header["pixdim"] = [-1, -2, 2, 2, np.nan, 0, 0, 0]
    img.header["qform_code"] = 0
    img.header["sform_code"] = 0
    nib.save(img, str(path))
    return str(path)


@pytest.mark.filterwarnings("ignore:.*negative voxel sizes:proxylib.HeaderWarning")
def test_slice_accepts_negative_pixdim_and_nan_tr(tmp_path):
    source = _odd_header_file(tmp_path / "odd.nii")
    proxylib.load(source)  # loads fine, so it must slice fine
    out = str(tmp_path / "part.nii")
    result = cli("slice", source, "..., 2:4", "-o", out)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.asarray(nib.load(out).dataobj), DATA[..., 2:4])
    np.testing.assert_array_equal(np.asarray(proxylib.load(out).dataobj), DATA[..., 2:4])
    assert np.isnan(proxylib.load(out).header["pixdim"][4])


@pytest.mark.parametrize("out", ["empty.nii", "empty.npy"])
def test_slice_with_an_empty_result_is_an_error(tmp_path, out):
    source = str(tmp_path / "ten.nii")
    proxylib.save(proxylib.Nifti1Image(DATA, np.eye(4)), source)
    result = cli("slice", source, "..., 10:20", "-o", str(tmp_path / out))
    assert result.returncode == 1
    assert b"selects no elements" in result.stderr and b"(4, 5, 6, 0)" in result.stderr
    assert not (tmp_path / out).exists()


@pytest.mark.parametrize("stdout_encoding", [
    "utf-8:strict",  # what a desktop UTF-8 locale gives Python's stdout
    "utf-8:surrogateescape",  # what the C.UTF-8 locale gives
])
def test_slice_prints_non_utf8_names(tmp_path, stdout_encoding):
    folder = os.fsencode(str(tmp_path))
    source = os.path.join(folder, b"caf\xe9.nii")
    out = os.path.join(folder, b"sortie-\xff.npy")
    proxylib.save(proxylib.Nifti1Image(DATA, np.eye(4)), os.fsdecode(source))
    result = cli(b"slice", source, b"0, 0, 0", b"-o", out, PYTHONIOENCODING=stdout_encoding)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == source + b"[0, 0, 0] -> " + out
    np.testing.assert_array_equal(np.load(os.fsdecode(out)), DATA[0, 0, 0])


@pytest.mark.parametrize("command", ["ls", "index"])
def test_ls_and_index_print_non_utf8_names(tmp_path, command):
    source = os.path.join(os.fsencode(str(tmp_path)), b"\xe9t\xe9.nii.gz")
    proxylib.save(proxylib.Nifti1Image(DATA, np.eye(4)), os.fsdecode(source))
    result = cli(command, source, PYTHONIOENCODING="utf-8:strict",
                 PROXYLIB_CACHE_DIR=str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(source + b": ")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".npy"])
def test_slice_writes_names_of_nearly_name_max_bytes(tmp_path, suffix):
    source = str(tmp_path / "s.nii")
    proxylib.save(proxylib.Nifti1Image(DATA, np.eye(4)), source)
    name = "n" * (255 - len(suffix)) + suffix  # NAME_MAX on Linux file systems
    result = cli("slice", source, "..., 0", "-o", str(tmp_path / name))
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == sorted(["s.nii", name])


def test_unknown_command_says_so():
    result = cli("bogus")
    assert result.returncode == 2
    assert b"'bogus' is an unknown command or a missing file" in result.stderr


def test_never_existing_file_is_not_called_moved(tmp_path):
    result = cli("ls", str(tmp_path / "never.nii"))
    assert result.returncode == 1
    assert b"no such file" in result.stderr and b"moved" not in result.stderr


# -- temporaries of killed writers ------------------------------------------------------
_KILLED_SAVE = textwrap.dedent("""
    import sys, time
    import numpy as np
    import proxylib

    class Slow:  # a foreign proxy: its dtype is probed with one element, then it hangs
        is_proxy = True
        shape = (4, 5, 6, 10)
        dtype = np.dtype("<i2")
        def __getitem__(self, key):
            if key == (0, 0, 0, 0):
                return np.zeros((), self.dtype)
            print("writing", flush=True)
            time.sleep(600)

    proxylib.save(proxylib.Nifti1Image(Slow(), np.eye(4)), sys.argv[1])
""")


def _killed_save(target):
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen([sys.executable, "-c", _KILLED_SAVE, target], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"writing", child.stderr.read()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    return child.pid


def test_sigkill_during_save_leaves_a_temporary_that_the_next_save_removes(tmp_path):
    target = str(tmp_path / "out.nii.gz")
    _killed_save(target)
    left = [n for n in os.listdir(tmp_path) if n.startswith(atomic.PREFIX)]
    assert len(left) == 1 and not os.path.exists(target)  # SIGKILL cannot clean up
    proxylib.save(proxylib.Nifti1Image(DATA, np.eye(4)), str(tmp_path / "other.nii"))
    assert sorted(os.listdir(tmp_path)) == ["other.nii"]


def test_temporaries_of_live_processes_and_other_programs_are_kept(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        live = os.path.basename(atomic.temporary_name(str(tmp_path), ".nii")).split("-")
        live[2] = str(sleeper.pid)  # a temporary of a running process of this host
        names = ["-".join(live), ".proxylib-notours.nii",
                 f"{atomic.PREFIX}00000000-1-abcd.nii"]  # another host's
        for name in names:
            (tmp_path / name).write_bytes(b"x")
        assert atomic.remove_stale_temporaries(str(tmp_path)) == 0
        assert sorted(os.listdir(tmp_path)) == sorted(names)
    finally:
        sleeper.kill()
        sleeper.wait(timeout=60)
    deadline = time.monotonic() + 30
    while atomic.remove_stale_temporaries(str(tmp_path)) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)  # the sleeper is gone now: its temporary is stale
    assert sorted(os.listdir(tmp_path)) == sorted(names[1:])


def test_temporary_names_stay_short(tmp_path):
    name = atomic.temporary_name(str(tmp_path), ".x" * 200)
    assert len(os.path.basename(name)) <= 64
