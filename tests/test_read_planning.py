"""The fast paths of key normalization, run planning and the plan memo agree with
the general rules (and with numpy)."""

import pickle
import tempfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from proxylib import ArrayProxy
from proxylib.indexing.normalize import _normalize_general, normalize_if_basic
from proxylib.indexing.plan import CostModel, ReadPlan, choose_runs, with_runs_for
from proxylib.testing.conformance import check_read, open_case_proxy
from proxylib.testing.strategies import cost_models, proxy_cases, shapes


def _outcome(normalize, items, shape):
    try:
        return normalize(items, shape)
    except Exception as err:  # the same exception, with the same words, is the point
        return type(err), str(err)


@st.composite
def plain_keys(draw):
    """Keys of exact ints, slices, None and Ellipsis, some out of range or too long."""
    shape = draw(shapes(max_dims=5, max_side=6))
    key = draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True))
    items = key if isinstance(key, tuple) else (key,)
    extra = draw(st.sampled_from([(), (7,), (-9,), (Ellipsis,), (slice(None),) * 7]))
    return shape, tuple(items) + extra


@given(plain_keys())
def test_plain_key_fast_path_matches_general_path(case):
    shape, items = case
    fast = _outcome(normalize_if_basic, items, shape)
    assert fast is not None
    assert fast == _outcome(_normalize_general, items, shape)


@pytest.mark.parametrize("item, basic", [(np.int64(1), True), (np.array(2), True),
                                         (True, False), ([0], False),
                                         (np.array([True]), False)])
def test_other_item_types_take_the_general_path(item, basic):
    key = (item, slice(None))
    expected = _normalize_general(key, (3, 3)) if basic else None
    assert normalize_if_basic(key, (3, 3)) == expected


@st.composite
def boxes(draw):
    """A positive-step box over a C-ordered array: (fetch_shape, byte_steps, itemsize)."""
    itemsize = draw(st.sampled_from([1, 2, 4, 8]))
    ndim = draw(st.integers(1, 4))
    counts = draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim))
    multipliers = draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim))
    extents = [count * multiplier + draw(st.integers(0, 2))
               for count, multiplier in zip(counts, multipliers)]
    strides, acc = [], itemsize
    for extent in reversed(extents):
        strides.append(acc)
        acc *= extent
    strides.reverse()
    steps = tuple(m * s for m, s in zip(multipliers, strides))
    return tuple(counts), steps, itemsize


@given(boxes(), cost_models())
def test_run_facts_match_the_runs(box, cost):
    """``run_bytes`` is the first run's length; ``dense``: runs hold only selected bytes."""
    fetch_shape, byte_steps, itemsize = box
    plan = ReadPlan(fetch_shape, byte_steps, 0, itemsize,
                    *choose_runs(fetch_shape, byte_steps, itemsize, cost), False, ())
    grids = np.indices(fetch_shape).reshape(len(fetch_shape), -1)
    starts = set((np.asarray(byte_steps)[:, None] * grids).sum(axis=0).tolist())
    selected = {start + byte for start in starts for byte in range(itemsize)}
    all_runs = list(plan.iter_grouped_runs())
    assert all_runs[0].length == plan.run_bytes
    read = {run.offset + byte for run in all_runs for byte in range(run.length)}
    assert selected <= read
    assert plan.dense == (read == selected and
                          sum(run.length for run in all_runs) == len(selected))
    assert plan.run_bytes <= max(cost.block_size, itemsize)


def test_empty_box_has_no_runs():
    plan = ReadPlan((3, 0, 2), (24, 8, 4), 0, 4,
                    *choose_runs((3, 0, 2), (24, 8, 4), 4, CostModel()), False, ())
    assert plan.run_bytes == 0 and plan.dense and plan.is_empty


def _plain(key):
    """``key`` with numpy integers as Python ints, so the plan memo applies to it."""
    items = key if isinstance(key, tuple) else (key,)
    return tuple(int(item) if isinstance(item, np.integer) or (
        isinstance(item, np.ndarray) and item.ndim == 0) else item for item in items)


@given(case=proxy_cases(max_dims=4), data=st.data())
def test_keys_of_a_remembered_structure_match_numpy(case, data):
    """After one key is planned, keys differing only in integers reuse its plan."""
    key = _plain(case.key)
    variants = [tuple(data.draw(st.integers(-7, 7)) if type(item) is int else item
                      for item in key) for _ in range(4)]
    with tempfile.TemporaryDirectory() as directory, open_case_proxy(
            case.stored, case.spec, case.source, directory, mmap=case.mmap,
            keep_file_open=case.keep_file_open, cost=case.cost) as proxy:
        check_read(proxy, case.stored, key)
        for variant in variants:
            try:
                np.empty(case.spec.shape, dtype=np.int8)[variant]
            except IndexError as err:
                with pytest.raises(IndexError) as raised:
                    proxy[variant]
                assert str(raised.value) == str(err)
            else:
                check_read(proxy, case.stored, variant)


@given(boxes(), cost_models(), cost_models())
def test_recut_plan_is_the_plan_for_the_other_cost(box, cost, other):
    fetch_shape, byte_steps, itemsize = box
    plan = ReadPlan(fetch_shape, byte_steps, 7, itemsize,
                    *choose_runs(fetch_shape, byte_steps, itemsize, cost), True, (0,))
    expected = ReadPlan(fetch_shape, byte_steps, 7, itemsize,
                        *choose_runs(fetch_shape, byte_steps, itemsize, other), True, (0,))
    assert with_runs_for(plan, other) == expected


def test_only_exact_integer_keys_are_remembered(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(4, 6)
    path = tmp_path / "a.bin"
    path.write_bytes(data.tobytes(order="F"))
    proxy = ArrayProxy(str(path), (data.shape, np.int16))
    np.testing.assert_array_equal(proxy[1:3], data[1:3])
    np.testing.assert_array_equal(proxy[..., 2], data[..., 2])
    with pytest.raises(TypeError):  # 1.0 == 1, but numpy refuses a float bound
        proxy[1.0:3]
    with pytest.raises(IndexError, match="only integers"):
        proxy[..., 2.0]
    np.testing.assert_array_equal(proxy[..., np.int64(-1)], data[..., -1])
    assert set(proxy._plans._entries) == {((1, 3, None),), (type(Ellipsis), int)}


def test_derived_and_unpickled_proxies_plan_afresh(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(4, 6)
    path = tmp_path / "a.bin"
    path.write_bytes(data.tobytes(order="F"))
    proxy = ArrayProxy(str(path), (data.shape, np.int16))
    proxy[1]
    reshaped = proxy.reshape((6, 4))
    np.testing.assert_array_equal(reshaped[1], data.reshape((6, 4), order="F")[1])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(proxy))[2], data[2])
    assert proxy._plans is not reshaped._plans


@pytest.mark.parametrize("run_bytes", [64, 1 << 20])
@pytest.mark.parametrize("may_map, map_kept", [(False, False), (False, True), (True, False),
                                               (True, True)])
def test_single_dense_run_shortcut_agrees_with_choose_mapping(run_bytes, may_map, map_kept):
    """fetch() reads one dense whole-result run without asking choose_mapping; same answer."""
    from proxylib.execute import choose_mapping, fetch
    from proxylib.io.sources import ByteSource

    class Recorder(ByteSource):
        def __init__(self):
            self.calls = []
            self.data = bytearray(range(256)) * (run_bytes // 256 + 1)

        def readinto(self, offset, buffer):
            self.calls.append("read")
            memoryview(buffer).cast("B")[:] = self.data[offset:offset + len(buffer)]

        def mapping(self):
            self.calls.append("map")
            return self.data

    items = run_bytes // 4
    plan = ReadPlan((1, items), (run_bytes, 4), 0, 4,
                    *choose_runs((1, items), (run_bytes, 4), 4, CostModel()), False, ())
    dest = np.empty((1, items), dtype=np.float32)
    source = Recorder()
    fetch(plan, source, dest, np.dtype(np.float32), may_map=may_map, map_kept=map_kept,
          casts=False, block_size=1 << 23)
    expected = "map" if may_map and choose_mapping(plan, True, map_kept) else "read"
    assert source.calls == [expected]
    assert dest.tobytes() == bytes(source.data[:run_bytes])


def test_single_run_of_records_without_a_buffer_format(tmp_path):
    """Out-of-order record fields cannot be exported as a buffer; the byte view falls back."""
    dtype = np.dtype({"names": ["a", "b"], "formats": ["<i2", "<i4"], "offsets": [4, 0],
                      "itemsize": 12})
    data = np.zeros((3, 4), dtype=dtype)
    data["a"] = np.arange(12).reshape(3, 4)
    data["b"] = -np.arange(12).reshape(3, 4)
    path = tmp_path / "records.bin"
    path.write_bytes(data.tobytes(order="F"))
    proxy = ArrayProxy(str(path), (data.shape, dtype), mmap=False)
    column = proxy[:, 2]  # one dense run (F order): read straight into the result
    for name in ("a", "b"):
        np.testing.assert_array_equal(column[name], data[:, 2][name])
