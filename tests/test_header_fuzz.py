"""Header fuzz: 10,000 mutated NIfTI-1/NIfTI-2 files give proxylib errors or data, nothing else.

The cases (tests/header_fuzz_cases.py, fixed seed) mutate every field of both
layouts with boundary and random values, flip bytes, truncate, swap
sizeof_hdr/magic between versions and byte orders, claim terabytes, and come
as ``.nii`` and ``.nii.gz``. Two child processes load them (warnings are
errors; a load that succeeds is followed by a full read and a volume read) so
that a crash shows up as a signal and the peak RSS is the fuzz's own.

The regression tests below pin each bug the fuzz found, in process.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest

import proxylib
from proxylib.errors import HeaderWarning
from proxylib.formats.fields import NIFTI1_FIELDS, NIFTI2_FIELDS

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import header_fuzz_cases as fuzz  # noqa: E402

CASES = 10_000
SHARDS = 2

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses resource and /dev/shm")


def _run_shards() -> list:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [HERE, os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
    children = [subprocess.Popen(
        [sys.executable, os.path.join(HERE, "header_fuzz_cases.py"), str(shard), str(SHARDS),
         str(CASES), str(fuzz.SEED)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for shard in range(SHARDS)]
    results = []
    for child in children:
        out, err = child.communicate(timeout=600)
        assert child.returncode == 0, (
            f"fuzz child ended with {child.returncode} "
            f"({'signal ' + str(-child.returncode) if child.returncode < 0 else 'error'}):\n"
            f"{err.decode(errors='replace')[-3000:]}")
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    return results


@pytest.fixture(scope="module")
def shards():
    return _run_shards()


def test_fuzz_raises_only_proxylib_errors(shards):
    failures = [f for shard in shards for f in shard["failures"]]
    assert not failures, "\n\n".join(
        f"{f['case']}: {f['type']}: {f['error']}\n{f.get('trace', '')}" for f in failures[:5])


def test_fuzz_ran_every_case(shards):
    assert sum(shard["cases"] for shard in shards) == CASES
    loaded = sum(shard["loaded"] for shard in shards)
    read = sum(shard["read"] for shard in shards)
    errors = {}
    for shard in shards:
        for name, count in shard["errors"].items():
            errors[name] = errors.get(name, 0) + count
    # every case either read its data or raised a proxylib error
    assert read + sum(errors.values()) == CASES, (read, errors)
    # the fuzz exercises both outcomes, and the data path, in earnest
    assert read >= CASES // 5 and loaded >= read
    assert errors.get("HeaderError", 0) >= CASES // 5
    assert errors.get("CorruptDataError", 0) > 0 and errors.get("TruncatedFileError", 0) > 0
    assert sum(shard["gz"] for shard in shards) >= CASES // 4


def test_fuzz_covers_every_field_and_mutation_kind(shards):
    fields = set().union(*(shard["fields"] for shard in shards))
    expected = {f"1:{name}" for name in NIFTI1_FIELDS.names}
    expected |= {f"2:{name}" for name in NIFTI2_FIELDS.names}
    assert expected <= fields, sorted(expected - fields)
    kinds = {}
    for shard in shards:
        for kind, count in shard["labels"].items():
            kinds[kind] = kinds.get(kind, 0) + count
    assert set(kinds) == {"field", "claim", "flip", "truncate", "swap"}
    assert min(kinds.values()) >= 300, kinds


def test_fuzz_memory_stays_bounded(shards):
    for shard in shards:
        assert shard["peak_traced"] < fuzz.MEMORY_LIMIT, (
            shard["peak_traced"], shard["peak_traced_case"])
        assert shard["rss_growth"] < fuzz.MEMORY_LIMIT, shard["rss_growth"]


def test_fuzz_cases_are_reproducible():
    first = list(fuzz.cases(200))
    assert first == list(fuzz.cases(200))
    assert first != list(fuzz.cases(200, fuzz.SEED + 1))


# -- regressions for what the fuzz found -----------------------------------------------
def _header(version=1, order="<"):
    header = (proxylib.Nifti1Header if version == 1 else proxylib.Nifti2Header)(order)
    header.set_data_dtype(np.int16)
    header.set_data_shape((2, 3, 4))
    header.set_data_offset(header.single_vox_offset)
    return header


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def _replace(path, content):
    with open(path, "wb") as handle:
        handle.write(content)


def _write(path, header, *, flag=b"\x00", extra=b"", data=None, compress=False):
    if data is None:
        data = np.arange(24, dtype=header.get_data_dtype()).tobytes()
    raw = header.binaryblock + flag + b"\x00" * 3 + extra + data
    with open(path, "wb") as handle:
        handle.write(gzip.compress(raw, mtime=0) if compress else raw)
    return str(path)


@pytest.mark.filterwarnings("ignore::proxylib.errors.HeaderWarning")
@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("vox_offset", [2**31, 2**40])
def test_huge_vox_offset_with_extension_flag_allocates_nothing(tmp_path, version, vox_offset):
    header = _header(version)
    header.set_data_offset(vox_offset)
    path = _write(tmp_path / "x.nii", header, flag=b"\x01")
    with pytest.raises(proxylib.HeaderError):  # warm up imports outside the trace
        proxylib.load(path)
    tracemalloc.start()
    try:
        with pytest.raises(proxylib.HeaderError, match="vox_offset"):
            proxylib.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20  # bytes: one read block, not the claimed offset


def test_huge_shape_claim_fails_before_allocating(tmp_path):
    header = _header(2)
    header["dim"][:] = [4, 1024, 1024, 1024, 1024, 1, 1, 1]  # 2 TiB of int16
    path = _write(tmp_path / "x.nii", header)
    with pytest.raises(proxylib.HeaderError):
        proxylib.load(path)
    tracemalloc.start()
    try:
        with pytest.raises(proxylib.HeaderError, match="needs"):
            proxylib.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20  # bytes: one read block, not the claimed offset


def test_corrupt_gzip_header_is_corrupt_data_error(tmp_path):
    path = _write(tmp_path / "x.nii.gz", _header(), compress=True)
    raw = bytearray(_read(path))
    raw[-6] ^= 0x01  # inside the CRC32 trailer
    _replace(path, bytes(raw))
    with pytest.raises(proxylib.CorruptDataError, match="x.nii.gz"):
        proxylib.load(path)


def test_truncated_gzip_header_is_truncated_file_error(tmp_path):
    path = _write(tmp_path / "x.nii.gz", _header(), compress=True)
    _replace(path, _read(path)[:60])
    with pytest.raises(proxylib.TruncatedFileError, match="x.nii.gz"):
        proxylib.load(path)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_pair_magic_in_single_file_is_proxylib_error(tmp_path, suffix):
    header = _header()
    header["magic"] = b"ni1"
    path = _write(tmp_path / ("x" + suffix), header, compress=suffix.endswith(".gz"))
    with pytest.raises(proxylib.ProxyError, match="magic") as info:
        proxylib.load(path)
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("field,index,code", [("srow_y", 3, "sform_code"),
                                              ("qoffset_z", None, "qform_code"),
                                              ("pixdim", 2, "qform_code")])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_affine_is_header_error(tmp_path, field, index, code, value):
    header = _header()
    header[code] = 1
    if index is None:
        header[field] = value
    else:
        header[field][index] = value
    path = _write(tmp_path / "x.nii", header)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(proxylib.HeaderError, match=field):
            proxylib.load(path)


def test_scaling_overflow_gives_inf_without_warning(tmp_path):
    header = _header(2)
    header.set_data_dtype(np.int32)
    header.set_slope_inter(1e300, 0.0)
    stored = np.zeros((2, 3, 4), np.int32)
    stored[0, 0, 0], stored[1, 0, 0], stored[0, 1, 0] = 2**30, -2**30, 3
    path = _write(tmp_path / "x.nii", header, data=stored.tobytes(order="F"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = np.asarray(proxylib.load(path).dataobj)
    assert data[0, 0, 0] == np.inf and data[1, 0, 0] == -np.inf
    assert data[0, 1, 0] == 3e300 and np.count_nonzero(data) == 3


def test_bad_extension_warns_header_warning(tmp_path):
    header = _header()
    header.set_data_offset(header.single_vox_offset + 16)
    extension = np.array([1 << 29, 6], "<i4").tobytes() + b"\x00" * 8
    path = _write(tmp_path / "x.nii", header, flag=b"\x01", extra=extension)
    with pytest.warns(HeaderWarning, match="invalid size"):
        img = proxylib.load(path)
    assert img.header.extensions == []
    assert np.array_equal(np.asarray(img.dataobj),
                          np.arange(24, dtype=np.int16).reshape((2, 3, 4), order="F"))


SIGNALLING_NAN_F32 = np.array([0x7FA00000], np.uint32).view(np.float32)[0]


@pytest.mark.parametrize("order", ["<", ">"])
def test_signalling_nan_in_sform_is_header_error_without_warning(tmp_path, order):
    header = _header(1, order)
    header["sform_code"] = 1
    header["srow_x"] = [1.0, 0.0, 0.0, 0.0]
    header["srow_y"] = [0.0, 1.0, 0.0, 0.0]
    header["srow_z"] = [0.0, 0.0, 1.0, 0.0]
    raw = bytearray(header.binaryblock)
    srow_x = proxylib.Nifti1Header.fields.fields["srow_x"][1]
    raw[srow_x:srow_x + 4] = np.array([SIGNALLING_NAN_F32], order + "f4").tobytes()
    path = str(tmp_path / "x.nii")
    _replace(path, bytes(raw) + b"\x00" * 4 + np.arange(24, dtype=order + "i2").tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(proxylib.HeaderError, match="srow_x"):
            proxylib.load(path)


@pytest.mark.parametrize("dtype", ["<f4", ">f4"])
@pytest.mark.parametrize("version,slope", [(1, 1.0), (2, 2.0)])
def test_signalling_nan_data_reads_as_nan_without_warning(tmp_path, dtype, version, slope):
    header = _header(version, dtype[0])
    header.set_data_dtype(np.dtype(dtype))
    header.set_slope_inter(slope, 0.0)
    values = np.arange(24, dtype=np.float32)
    values[5] = SIGNALLING_NAN_F32
    with np.errstate(invalid="ignore"):
        stored = values.astype(dtype).tobytes()
        expected = values.astype(np.float64) * slope
    path = _write(tmp_path / "x.nii", header, data=stored)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = proxylib.load(path)
        data = np.asarray(img.dataobj)
        fdata = img.get_fdata(dtype=np.float32)
        fancy = img.dataobj[[1, 0], :, [2, 0]]
        strided = img.dataobj[1, ::2, :]
    for got in (data, fdata):
        assert np.array_equal(got.reshape(-1, order="F"), expected, equal_nan=True)
    grid = expected.reshape((2, 3, 4), order="F")
    assert np.array_equal(fancy, grid[[1, 0], :, [2, 0]], equal_nan=True)
    assert np.array_equal(strided, grid[1, ::2, :], equal_nan=True)
