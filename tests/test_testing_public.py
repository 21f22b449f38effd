"""proxylib.testing from outside: importable without hypothesis, structured dtypes optional."""

import subprocess
import sys

import numpy as np
import pytest

import proxylib
import proxylib.testing as testing

HIDE_HYPOTHESIS = ("import sys; sys.modules['hypothesis'] = None; "
                   "sys.modules['hypothesis.strategies'] = None; ")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDE_HYPOTHESIS + code],
                          capture_output=True, text=True)


def test_non_hypothesis_parts_work_without_hypothesis(tmp_path):
    code = (
        "import numpy as np, tempfile; from proxylib.spec import ArraySpec; "
        "from proxylib.testing import CostModel, check_read, open_case_proxy; "
        "stored = np.arange(24, dtype='>i2').reshape(2, 3, 4); "
        "spec = ArraySpec((2, 3, 4), '>i2', offset=5, order='F', slope=2.0, inter=1.0); "
        f"cm = open_case_proxy(stored, spec, 'path', {str(tmp_path)!r}, cost=CostModel(0, 16)); "
        "proxy = cm.__enter__(); "
        "[check_read(proxy, stored, key) for key in [(1, slice(None), 2), [0, 1], (Ellipsis, 9)]]; "
        "cm.__exit__(None, None, None); "
        "assert 'hypothesis' not in [m for m in sys.modules if sys.modules[m] is not None]; "
        "print('ok')")
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_strategies_say_they_need_hypothesis():
    result = _run("import proxylib.testing.strategies")
    assert result.returncode != 0
    assert "proxylib.testing.strategies needs hypothesis: pip install hypothesis" in result.stderr


def test_check_read_fails_on_a_wrong_reader(tmp_path):
    stored = np.arange(12, dtype="<i2").reshape(3, 4)
    path = tmp_path / "a.raw"
    path.write_bytes(stored.tobytes(order="C"))
    wrong_order = proxylib.ArrayProxy(path, ((3, 4), "<i2"), order="F")
    with pytest.raises(AssertionError):
        testing.check_read(wrong_order, stored, (slice(None), 1))


def test_cost_model_is_the_public_one():
    assert testing.CostModel is proxylib.CostModel


def test_structured_dtypes_can_be_left_out():
    hypothesis = pytest.importorskip("hypothesis")
    from proxylib.testing.fancy_strategies import fancy_cases
    from proxylib.testing.strategies import proxy_cases, storage_dtypes

    seen_structured = []

    @hypothesis.settings(max_examples=60, deadline=None, database=None)
    @hypothesis.given(dtype=storage_dtypes(structured=False),
                      case=proxy_cases(max_dims=2, structured=False),
                      fancy=fancy_cases(max_dims=2, structured=False))
    def plain_only(dtype, case, fancy):
        assert dtype.fields is None
        assert case.spec.storage_dtype.fields is None
        assert fancy.spec.storage_dtype.fields is None

    @hypothesis.settings(max_examples=200, deadline=None, database=None)
    @hypothesis.given(dtype=storage_dtypes())
    def default_includes_structs(dtype):
        seen_structured.append(dtype.fields is not None)

    plain_only()
    default_includes_structs()
    assert any(seen_structured)
