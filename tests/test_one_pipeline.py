"""Every read takes the one pipeline: one selection type, one plan type, one entry point."""

from unittest import mock

import numpy as np
import pytest

import proxylib
from proxylib.indexing.plan import plan_read
from proxylib.indexing.readplan import ReadPlan
from proxylib.indexing.select import select, select_orthogonal
from proxylib.indexing.selection import POINTS, AxisIndices, AxisRange, Selection
from proxylib.spec import ArraySpec

SHAPE = (4, 5, 6)
KEYS = [(1, slice(None), 2), (Ellipsis, 3), (None, 0), ([0, 2], slice(1, 4)),
        (np.arange(4) % 2 == 0,), (np.ones(SHAPE, bool),), (slice(None), [4, 1], [5, 0])]


@pytest.mark.parametrize("key", KEYS, ids=range(len(KEYS)))
def test_every_key_is_one_selection_planned_into_one_plan_type(key):
    spec = ArraySpec(SHAPE, np.float32)
    selection = select(key, SHAPE)
    assert type(selection) is Selection
    assert selection.result_shape == np.zeros(SHAPE)[key].shape
    plan = plan_read(selection, spec)
    assert type(plan) is ReadPlan
    assert (plan.rows is None) == selection.is_basic


def test_orthogonal_and_vectorized_share_the_selectors():
    orthogonal = select_orthogonal(([0, 2], slice(None), 1), SHAPE)
    vectorized = select(([0, 2], slice(None), [1, 1]), SHAPE)
    assert isinstance(orthogonal.items[0], AxisIndices)
    assert isinstance(orthogonal.items[1], AxisRange) and orthogonal.items[2] == 1
    assert vectorized.items[0] is POINTS and vectorized.items[2] is POINTS
    assert vectorized.points.broadcast_shape == (2,)


@pytest.fixture
def stored(tmp_path):
    data = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    path = tmp_path / "a.bin"
    path.write_bytes(data.tobytes(order="F"))
    return path, data


@pytest.mark.parametrize("scaled", [False, True])
def test_every_read_goes_through_read_selection(stored, scaled):
    path, data = stored
    spec = (SHAPE, np.float32, 0, 2.0 if scaled else 1.0, 0.0)
    proxy = proxylib.ArrayProxy(path, spec, keep_file_open=True)
    expected = data * 2 if scaled else data
    real = proxylib.ArrayProxy.read_selection
    reads = [
        ("basic", lambda: proxy[1, :, 2], expected[1, :, 2]),
        ("remembered", lambda: proxy[2, :, 3], expected[2, :, 3]),
        ("fancy", lambda: proxy[[0, 3]], expected[[0, 3]]),
        ("oindex", lambda: proxy.oindex[[0, 3], :, [1, 2]], expected[[0, 3]][:, :, [1, 2]]),
        ("vindex", lambda: proxy.vindex[[0, 3], 1], expected[[0, 3], 1]),
        ("asarray", lambda: np.asarray(proxy), expected),
        ("copy", lambda: np.array(proxy, copy=True), expected),
        ("unscaled", lambda: proxy.get_unscaled(), data),
    ]
    for name, action, values in reads:
        with mock.patch.object(proxylib.ArrayProxy, "read_selection", autospec=True,
                               side_effect=real) as spy:
            np.testing.assert_array_equal(action(), values, err_msg=name)
        assert spy.call_count == 1, name
    # the zero-copy full read, taken through read_selection, is a map of the file itself
    assert isinstance(proxy.__array__(), np.memmap) is (not scaled)
    assert isinstance(proxy.get_unscaled(), np.memmap)


def test_dask_chunks_go_through_read_selection(stored):
    pytest.importorskip("dask.array")
    path, data = stored
    proxy = proxylib.ArrayProxy(path, (SHAPE, np.float32))
    real = proxylib.ArrayProxy.read_selection
    with mock.patch.object(proxylib.ArrayProxy, "read_selection", autospec=True,
                           side_effect=real) as spy:
        total = proxy.to_dask(chunks=(2, 5, 6)).sum().compute(scheduler="synchronous")
    assert total == data.sum()
    assert spy.call_count >= 2
