"""proxylib.load opens, fstats, sniffs and parses each header file once, and the proxy
starts from that fstat: counted at the os layer, values checked against numpy."""

from __future__ import annotations

import collections
import gzip
import os
import shutil
import struct
import warnings

import numpy as np
import pytest

import proxylib
from proxylib import FileChangedError, HeaderWarning
from proxylib.formats.mgh import MGHHeader
from proxylib.formats.nifti1 import Nifti1Header
from proxylib.io.identity import FileIdentity

SHAPE = (6, 5, 4, 3)
VALUES = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)


class _Counter:
    """Counts os.open per path, and os.stat / os.fstat calls, while ``active``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opens: collections.Counter = collections.Counter()
        self.stats: collections.Counter = collections.Counter()
        self.fstats = 0
        real_open, real_stat, real_fstat = os.open, os.stat, os.fstat

        def counting_open(path, *args, **kwargs):
            self.opens[os.path.basename(os.fsdecode(path))] += 1
            return real_open(path, *args, **kwargs)

        def counting_stat(path, *args, **kwargs):
            if isinstance(path, (str, bytes, os.PathLike)):
                self.stats[os.path.basename(os.fsdecode(path))] += 1
            return real_stat(path, *args, **kwargs)

        def counting_fstat(fd):
            self.fstats += 1
            return real_fstat(fd)

        monkeypatch.setattr(os, "open", counting_open)
        monkeypatch.setattr(os, "stat", counting_stat)
        monkeypatch.setattr(os, "fstat", counting_fstat)


def _save(tmp_path, name):
    path = str(tmp_path / name)
    proxylib.save(proxylib.Nifti1Image(VALUES, np.eye(4)), path)
    return path


@pytest.mark.parametrize("how", ["load", "from_filename"])
@pytest.mark.parametrize("name", ["vol.nii", "vol.nii.gz"])
def test_a_single_file_is_opened_and_fstat_ed_once(tmp_path, monkeypatch, name, how):
    path = _save(tmp_path, name)
    counter = _Counter(monkeypatch)
    img = proxylib.load(path) if how == "load" else proxylib.Nifti1Image.from_filename(path)
    assert counter.opens == {name: 1}
    assert counter.stats == {} and counter.fstats == 1   # the proxy's identity is that fstat
    monkeypatch.undo()
    np.testing.assert_array_equal(img.dataobj[..., 1], VALUES[..., 1])
    np.testing.assert_array_equal(np.asarray(img.dataobj), VALUES)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_a_pair_opens_each_file_once(tmp_path, monkeypatch, suffix):
    path = _save(tmp_path, "pair.hdr" + suffix)
    counter = _Counter(monkeypatch)
    img = proxylib.load(path)
    assert counter.opens == {"pair.hdr" + suffix: 1, "pair.img" + suffix: 1}
    assert counter.stats["pair.hdr" + suffix] == 0
    monkeypatch.undo()
    np.testing.assert_array_equal(img.dataobj[2], VALUES[2])


def test_loading_the_img_of_a_pair_opens_each_file_once(tmp_path, monkeypatch):
    _save(tmp_path, "pair.hdr")
    counter = _Counter(monkeypatch)
    img = proxylib.load(str(tmp_path / "pair.img"))
    assert counter.opens == {"pair.hdr": 1, "pair.img": 1}
    monkeypatch.undo()
    np.testing.assert_array_equal(img.get_fdata(), VALUES)


def test_other_formats_open_each_file_once(tmp_path, monkeypatch):
    mgz = str(tmp_path / "vol.mgz")
    proxylib.save(proxylib.MGHImage(VALUES, np.eye(4)), mgz)
    analyze = str(tmp_path / "spm.hdr")
    proxylib.save(proxylib.AnalyzeImage(VALUES[..., 0], np.eye(4)), analyze)
    os.remove(str(tmp_path / "spm.mat"))
    counter = _Counter(monkeypatch)
    mgh, spm = proxylib.load(mgz), proxylib.load(analyze)
    assert counter.opens["vol.mgz"] == 1
    assert counter.opens["spm.hdr"] == 1 and counter.opens["spm.img"] == 1
    monkeypatch.undo()
    np.testing.assert_array_equal(mgh.get_fdata(), VALUES)
    np.testing.assert_array_equal(spm.get_fdata(), VALUES[..., 0])


@pytest.mark.parametrize("name", ["vol.nii", "vol.nii.gz", "pair.hdr"])
def test_the_header_is_parsed_once(tmp_path, monkeypatch, name):
    path = _save(tmp_path, name)
    real = Nifti1Header.from_bytes.__func__
    blocks = []

    def counting(cls, block, **kwargs):
        blocks.append(bytes(block))
        return real(cls, block, **kwargs)

    monkeypatch.setattr(Nifti1Header, "from_bytes", classmethod(counting))
    proxylib.load(path)
    assert len(blocks) == 1
    monkeypatch.undo()
    header = gzip.decompress(open(path, "rb").read()) if name.endswith(".gz") else \
        open(path, "rb").read()
    assert blocks[0][:348] == header[:348]


def test_mgh_header_is_parsed_once(tmp_path, monkeypatch):
    path = str(tmp_path / "vol.mgh")
    proxylib.save(proxylib.MGHImage(VALUES, np.eye(4)), path)
    real = MGHHeader.from_bytes.__func__
    calls = []
    monkeypatch.setattr(MGHHeader, "from_bytes",
                        classmethod(lambda cls, block, **kw: calls.append(1)
                                    or real(cls, block, **kw)))
    proxylib.load(path)
    assert calls == [1]


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("name", ["vol.nii", "vol.nii.gz"])
def test_the_proxy_identity_is_the_loads_fstat(tmp_path, name, keep):
    path = _save(tmp_path, name)
    before = FileIdentity.of_stat(os.stat(path))
    img = proxylib.load(path, keep_file_open=keep)
    assert img.dataobj.opener.fingerprint == before
    # rewritten between load and the first read (same size, other values): reported
    replacement = str(tmp_path / ("new" + name))
    proxylib.save(proxylib.Nifti1Image(VALUES + 1, np.eye(4)), replacement)
    shutil.copyfile(replacement, path)
    with pytest.raises(FileChangedError, match=name):
        img.dataobj[..., 0]
    np.testing.assert_array_equal(proxylib.load(path).dataobj[..., 0], VALUES[..., 0] + 1)


def test_a_missing_file_is_reported_as_before(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.nii: no such file"):
        proxylib.load(str(tmp_path / "nothere.nii"))
    with pytest.raises(FileNotFoundError, match="nothere.img: no such file"):
        proxylib.load(str(tmp_path / "nothere.img"))


def _with_bad_fields(tmp_path):
    """A .nii whose sform_code nibabel repairs, with one extension of invalid size."""
    raw = bytearray(open(_save(tmp_path, "src.nii"), "rb").read())
    raw[254:256] = struct.pack("<h", 9)                   # sform_code 9: set to 0
    raw[108:112] = struct.pack("<f", 368.0)               # vox_offset past one extension
    raw[348] = 1                                          # extension flag
    raw[352:352] = struct.pack("<ii", 7, 0) + b"\0" * 8  # esize 7: not a multiple of 16
    path = tmp_path / "bad.nii"
    path.write_bytes(bytes(raw))
    return str(path)


@pytest.mark.parametrize("how", ["load", "from_filename"])
def test_header_warnings_point_at_the_callers_line(tmp_path, how):
    path = _with_bad_fields(tmp_path)
    opener = proxylib.load if how == "load" else proxylib.Nifti1Image.from_filename
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        img = opener(path)
    messages = [str(w.message) for w in caught if issubclass(w.category, HeaderWarning)]
    assert len(messages) == 2 and any("sform_code 9" in m for m in messages)
    assert any("invalid size 7" in m for m in messages)
    assert {w.filename for w in caught} == {__file__}
    np.testing.assert_array_equal(img.dataobj[..., 2], VALUES[..., 2])
