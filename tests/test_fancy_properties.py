"""numpy is the oracle: every fancy read equals the same key on the in-memory array.

Covers every source and policy (path with each mmap mode and keep_file_open,
BytesIO, open file object, gzip), random shapes, orders, dtypes, scalings and
cost models (tiny gap thresholds and block sizes, so small arrays exercise
coalescing, block cuts and row-by-row reads).
"""

import gzip
import os
import tempfile
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import proxylib
from proxylib.indexing import readplan
from proxylib.testing.conformance import (check_position_kept, check_read, file_bytes,
                                          open_case_proxy)
from proxylib.testing.fancy_strategies import fancy_cases, fancy_keys, orthogonal_oracle
from proxylib.testing.oracle import assert_same, expected_values
from proxylib.testing.strategies import shapes


def _open(case, directory):
    return open_case_proxy(case.stored, case.spec, case.source, directory, mmap=case.mmap,
                           keep_file_open=case.keep_file_open, cost=case.cost)


@given(case=fancy_cases(), rows_per_chunk=st.sampled_from([1, 3, readplan.ROWS_PER_CHUNK]))
def test_fancy_key_matches_numpy(case, rows_per_chunk):
    with tempfile.TemporaryDirectory() as directory, _open(case, directory) as proxy, \
            mock.patch.object(readplan, "ROWS_PER_CHUNK", rows_per_chunk):
        check_read(proxy, case.stored, case.key)
        check_read(proxy, case.stored, case.key)  # again: kept handle / cached map


@given(case=fancy_cases(orthogonal=True))
def test_oindex_matches_axis_by_axis_numpy(case):
    with tempfile.TemporaryDirectory() as directory, _open(case, directory) as proxy:
        full = expected_values(case.stored, case.spec)
        try:
            expected = orthogonal_oracle(full, case.key)
        except IndexError:
            with pytest.raises(IndexError):
                proxy.oindex[case.key]
            return
        assert_same(proxy.oindex[case.key], expected)


@given(case=fancy_cases(sources=("bytesio", "fileobj"), invalid=False))
def test_file_position_is_kept(case):
    try:
        expected = expected_values(case.stored, case.spec, case.key)
    except IndexError:
        return  # an invalid key reads nothing
    with tempfile.TemporaryDirectory() as directory, _open(case, directory) as proxy:
        if case.spec.size and np.size(expected):
            check_position_kept(proxy.file_like, proxy, case.key)


@settings(max_examples=60)
@given(case=fancy_cases(max_dims=3, sources=("path",)))
def test_gzip_file_matches_numpy(case):
    """A .gz path (indexed_gzip) and a GzipFile object read the same values."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "case.bin.gz")
        with gzip.open(path, "wb") as handle:
            handle.write(file_bytes(case.stored, case.spec))
        with proxylib.ArrayProxy(path, case.spec, cost=case.cost) as proxy:
            check_read(proxy, case.stored, case.key)
        with gzip.open(path, "rb") as fileobj:
            check_read(proxylib.ArrayProxy(fileobj, case.spec), case.stored, case.key)


@given(data=st.data(), shape=shapes(max_dims=4, max_side=4))
def test_result_shape_is_known_before_reading(data, shape):
    """The one selection predicts numpy's result shape (axis placement rules), basic or not."""
    from proxylib.indexing.select import select
    key = data.draw(fancy_keys(shape))
    values = np.zeros(shape)
    try:
        expected = values[key].shape
    except (IndexError, ValueError) as err:
        with pytest.raises(type(err)):
            select(key, shape)
        return
    assert select(key, shape).result_shape == expected
