"""The fast paths of key normalization and run planning agree with the general rules."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from proxylib.indexing.normalize import _normalize_general, normalize_if_basic
from proxylib.indexing.plan import CostModel, ReadPlan, choose_runs
from proxylib.testing.strategies import cost_models, shapes


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
