"""MGH/MGZ and ANALYZE pairs by URL: sniffed from the header bytes, data by range."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fsspec", reason="fsspec is not installed (pip install 'proxylib[remote]')")
pytest.importorskip("aiohttp", reason="aiohttp is not installed (pip install 'proxylib[remote]')")
nib = pytest.importorskip("nibabel")

import proxylib  # noqa: E402

from test_remote_server import RangeServer  # noqa: E402

STORED = np.random.default_rng(5).integers(-3000, 3000, (16, 12, 8, 5), dtype=np.int16)
AFFINE = np.diag([-2.0, 2.0, 3.0, 1.0])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("remote-formats")
    nib.save(nib.MGHImage(STORED, AFFINE), str(folder / "brain.mgh"))
    nib.save(nib.MGHImage(STORED, AFFINE), str(folder / "brain.mgz"))
    nib.save(nib.AnalyzeImage(STORED, AFFINE), str(folder / "scan.hdr"))
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture(scope="module")
def server(files):
    with RangeServer(files) as running:
        yield running


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXYLIB_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("name, kind", [("brain.mgh", proxylib.MGHImage),
                                        ("brain.mgz", proxylib.MGHImage),
                                        ("scan.hdr", proxylib.AnalyzeImage)])
def test_other_formats_load_by_url(server, files, name, kind, tmp_path):
    local = tmp_path / name
    for other, payload in files.items():
        (tmp_path / other).write_bytes(payload)
    theirs = nib.load(str(local))
    image = proxylib.load(server.url(name))
    assert isinstance(image, kind)
    np.testing.assert_array_equal(image.dataobj[..., 3], STORED[..., 3])
    np.testing.assert_array_equal(image.dataobj[4, 5, 6, :], STORED[4, 5, 6, :])
    np.testing.assert_allclose(image.affine, theirs.affine, atol=1e-6)
