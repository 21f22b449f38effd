"""The xarray engine: lazy opening, names and coordinates, key kinds, dask chunks."""

import sys
from pathlib import Path

import numpy as np
import pytest

xr = pytest.importorskip("xarray")
nib = pytest.importorskip("nibabel")

from proxylib.arrayproxy import ArrayProxy  # noqa: E402
from proxylib.interop.xarray_backend import ProxylibBackendEntrypoint  # noqa: E402

ENGINE = ProxylibBackendEntrypoint
DIAGONAL = np.array([[2.0, 0, 0, -90], [0, 2.5, 0, -126], [0, 0, 3, -72], [0, 0, 0, 1]])


def _write(path, affine=DIAGONAL, tr=1.5):
    data = (np.arange(5 * 4 * 3 * 6) % 89).reshape(5, 4, 3, 6).astype(np.int16)
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms(tuple(np.sqrt((affine[:3, :3] ** 2).sum(0))) + (tr,))
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"xarray test"
    img.header.set_slope_inter(0.5, 2.0)
    nib.save(img, str(path))
    return nib.load(str(path)).get_fdata()


@pytest.fixture
def reads(monkeypatch):
    """Count calls into ArrayProxy's read entry points."""
    calls = []
    for name in ("__getitem__", "read_selection", "__array__", "get_unscaled"):
        original = getattr(ArrayProxy, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(ArrayProxy, name, counted)
    return calls


def test_open_is_lazy_named_and_has_world_coordinates(tmp_path, reads):
    path = tmp_path / "bold.nii.gz"
    expected = _write(path)
    array = xr.open_dataarray(path, engine=ENGINE)
    assert array.dims == ("x", "y", "z", "t")
    assert array.name == "bold"
    assert array.dtype == np.float64
    np.testing.assert_allclose(array.x, -90 + 2.0 * np.arange(5))
    np.testing.assert_allclose(array.y, -126 + 2.5 * np.arange(4))
    np.testing.assert_allclose(array.z, -72 + 3.0 * np.arange(3))
    np.testing.assert_allclose(array.t, 1.5 * np.arange(6))
    assert array.attrs["descrip"] == "xarray test"
    assert array.attrs["affine"] == DIAGONAL.tolist()
    assert array.attrs["pixdim"][1:5] == [2.0, 2.5, 3.0, 1.5]
    selected = array.isel(t=slice(1, 4)).sel(x=-88.0)
    assert reads == []
    np.testing.assert_array_equal(selected.values, expected[1, :, :, 1:4])
    assert reads
    np.testing.assert_array_equal(array.values, expected)


def test_oblique_affine_goes_to_attrs_only(tmp_path):
    angle = 0.3
    oblique = DIAGONAL.copy()
    oblique[:2, :2] = [[np.cos(angle) * 2, -np.sin(angle) * 2.5],
                       [np.sin(angle) * 2, np.cos(angle) * 2.5]]
    path = tmp_path / "obl.nii"
    _write(path, affine=oblique)
    array = xr.open_dataarray(path, engine=ENGINE)
    assert set(array.coords) == {"t"}
    np.testing.assert_allclose(array.attrs["affine"], nib.load(str(path)).affine)


def test_outer_keys_go_to_oindex(tmp_path, reads, monkeypatch):
    path = tmp_path / "a.nii"
    expected = _write(path)
    array = xr.open_dataarray(path, engine=ENGINE)
    seen = []
    original = type(ArrayProxy.oindex.fget(ArrayProxy.__new__(ArrayProxy)))
    monkeypatch.setattr(original, "__getitem__",
                        lambda self, key, _get=original.__getitem__: seen.append(key) or
                        _get(self, key))
    result = array.isel(x=[4, 0, 2], t=[5, 1]).values
    np.testing.assert_array_equal(result, expected[[4, 0, 2]][:, :, :, [5, 1]])
    assert len(seen) == 1


def test_vectorized_keys_go_to_vindex_with_xarrays_axis_order(tmp_path, reads):
    path = tmp_path / "a.nii"
    expected = _write(path)
    array = xr.open_dataarray(path, engine=ENGINE)
    points = xr.DataArray([0, 3, 4], dims="p")
    times = xr.DataArray([5, 0, 2], dims="p")
    picked = array.isel(x=points, t=times)
    assert reads == []
    values = picked.values
    assert picked.dims == ("p", "y", "z")
    np.testing.assert_array_equal(values, expected[[0, 3, 4], :, :, [5, 0, 2]])
    adjacent = array.isel(y=xr.DataArray([1, 2], dims="q"), z=xr.DataArray([0, 2], dims="q"))
    assert adjacent.dims == ("x", "q", "t")
    np.testing.assert_array_equal(adjacent.values, expected[:, [1, 2], [0, 2], :])
    assert reads


def test_chunks_give_dask_reading_per_chunk(tmp_path, reads):
    pytest.importorskip("dask")
    path = tmp_path / "a.nii.gz"
    expected = _write(path)
    array = xr.open_dataarray(path, engine=ENGINE, chunks={"t": 2})
    assert array.chunks == ((5,), (4,), (3,), (2, 2, 2))
    mean = array.mean("t")
    assert reads == []
    np.testing.assert_allclose(mean.values, expected.mean(-1))


def test_guess_can_open_by_name():
    entry = ProxylibBackendEntrypoint()
    for name in ("a.nii", "a.NII.GZ", "a.hdr", "b.img.gz", "c.mgz", "c.mgh"):
        assert entry.guess_can_open(name)
    for name in ("a.nc", "a.zarr", 3):
        assert not entry.guess_can_open(name)


def test_engine_declared_as_an_entry_point():
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is Python 3.11+")
    import tomllib
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    target = pyproject["project"]["entry-points"]["xarray.backends"]["proxylib"]
    module, _, name = target.partition(":")
    assert getattr(__import__(module, fromlist=[name]), name) is ProxylibBackendEntrypoint
    assert "xarray" in pyproject["project"]["optional-dependencies"]


def test_engine_name_resolves_when_installed(tmp_path):
    from importlib.metadata import entry_points
    if not any(ep.name == "proxylib" for ep in entry_points(group="xarray.backends")):
        pytest.skip("installed proxylib metadata predates the entry point: pip install -e .")
    path = tmp_path / "bold.nii"
    expected = _write(path)
    np.testing.assert_array_equal(xr.open_dataarray(path, engine="proxylib").values, expected)
