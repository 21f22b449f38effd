"""The README's examples run as written (in a fresh folder, from the installed package)."""

from __future__ import annotations

import os
import re

import numpy as np

import proxylib

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def python_blocks():
    with open(README, encoding="utf-8") as handle:
        return re.findall(r"```python\n(.*?)```", handle.read(), flags=re.S)


def test_first_example_makes_its_own_file_and_reads_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing there: the example writes bold.raw itself
    namespace: dict = {}
    exec(compile(python_blocks()[0], "README.md: first example", "exec"), namespace)
    stored = namespace["stored"]
    assert os.path.getsize("bold.raw") == 352 + stored.nbytes
    np.testing.assert_array_equal(namespace["volume"], stored[..., 17] * 0.5 + 10.0)
    assert namespace["proxy"].dtype == np.float64


def test_full_read_maps_the_file_as_the_readme_says(tmp_path):
    path = tmp_path / "plain.raw"
    np.arange(24, dtype=np.int16).tofile(path)
    proxy = proxylib.ArrayProxy(str(path), ((2, 3, 4), np.int16, 0))
    assert type(np.asanyarray(proxy)) is np.memmap
    assert type(proxy.get_unscaled()) is np.memmap
    plain = np.asarray(proxy)
    assert type(plain) is np.ndarray and isinstance(plain.base, np.memmap)


def test_example_image_is_package_data_and_the_images_example_runs(tmp_path, monkeypatch):
    import pytest
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    path = proxylib.example_path()
    assert os.path.dirname(path) == os.path.join(os.path.dirname(proxylib.__file__), "data")
    with open(os.path.join(os.path.dirname(README), "pyproject.toml"), "rb") as handle:
        package_data = tomllib.load(handle)["tool"]["setuptools"]["package-data"]["proxylib"]
    assert "data/*.nii.gz" in package_data
    block = next(b for b in python_blocks() if "proxylib.example_path()" in b)
    monkeypatch.chdir(tmp_path)
    namespace = {"proxylib": proxylib, "np": np}
    exec(compile(block, "README.md: images example", "exec"), namespace)
    assert namespace["img"].shape == (32, 32, 12, 10)
    assert (tmp_path / "copy.nii.gz").exists()


def test_missing_example_names_what_there_is():
    import pytest
    with pytest.raises(FileNotFoundError, match="example4d.nii.gz"):
        proxylib.example_path("nothing.nii")
