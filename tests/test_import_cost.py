"""``import proxylib`` pulls in no optional stack; public names still resolve on first use."""

import json
import subprocess
import sys

import pytest

import proxylib

OPTIONAL = ("dask", "distributed", "fsspec", "aiohttp", "matplotlib", "nibabel",
            "hypothesis", "xarray")


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_proxylib_imports_no_optional_package():
    code = ("import sys, json; import proxylib; "
            f"print(json.dumps([m for m in {OPTIONAL!r} if m in sys.modules]))")
    assert _fresh(code) == []


#: Not optional, but each costs a large part of ``import numpy``; they load on first use.
HEAVY = ("asyncio", "indexed_gzip", "importlib.metadata", "tempfile")


def test_import_proxylib_leaves_heavy_modules_for_first_use():
    code = ("import sys, json; import proxylib; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert _fresh(code) == []


def test_using_the_core_imports_no_optional_package(tmp_path):
    path = tmp_path / "a.raw"
    path.write_bytes(bytes(range(24)))
    code = ("import sys, json, numpy as np, proxylib; "
            f"p = proxylib.ArrayProxy({str(path)!r}, ((2, 3, 4), np.uint8)); "
            "assert int(p[1, 2, 3]) == 23; "
            f"print(json.dumps([m for m in {OPTIONAL!r} if m in sys.modules]))")
    assert _fresh(code) == []


@pytest.mark.parametrize("name", sorted(proxylib.__all__))
def test_every_public_name_resolves(name):
    assert getattr(proxylib, name) is not None


def test_star_import_and_dir_list_the_lazy_names():
    namespace: dict = {}
    exec("from proxylib import *", namespace)
    assert {"load", "save", "Nifti1Image", "to_dask", "build_index", "CostModel"} <= set(namespace)
    assert "load" in dir(proxylib)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        proxylib.not_a_name


def test_lazy_name_is_the_defining_modules_object():
    from proxylib.formats import Nifti1Image
    from proxylib.indexing.plan import CostModel
    assert proxylib.Nifti1Image is Nifti1Image
    assert proxylib.CostModel is CostModel


def test_dask_names_are_deterministic_without_importing_dask_first(tmp_path):
    # ArrayProxy describes itself through __dask_tokenize__: nothing is registered
    # with dask at import, and dask finds the description when it is used
    pytest.importorskip("dask")
    path = tmp_path / "a.raw"
    path.write_bytes(bytes(24))
    code = ("import sys, json, numpy as np, proxylib; "
            f"p = proxylib.ArrayProxy({str(path)!r}, ((2, 3, 4), np.uint8)); "
            "before = 'dask' in sys.modules; "
            "from dask.base import tokenize; "
            "same = tokenize(p) == tokenize(p.copy()) and "
            "proxylib.to_dask(p).name == proxylib.to_dask(p.copy()).name; "
            "print(json.dumps([before, same]))")
    assert _fresh(code) == [False, True]
