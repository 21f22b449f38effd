"""numpy is the oracle: every basic read equals the same key on the in-memory array."""

import tempfile

import numpy as np
from hypothesis import given, strategies as st

from proxylib.testing.conformance import check_position_kept, check_read, open_case_proxy
from proxylib.testing.oracle import assert_same, expected_values
from proxylib.testing.strategies import proxy_cases


@given(case=proxy_cases())
def test_basic_key_matches_numpy(case):
    with tempfile.TemporaryDirectory() as directory, open_case_proxy(
            case.stored, case.spec, case.source, directory, mmap=case.mmap,
            keep_file_open=case.keep_file_open, cost=case.cost) as proxy:
        assert proxy.dtype == np.asarray(expected_values(case.stored, case.spec)).dtype
        check_read(proxy, case.stored, case.key)
        # a second read through the same proxy (kept handle, cached map) agrees too
        check_read(proxy, case.stored, case.key)


@given(case=proxy_cases(max_dims=4), dtype=st.sampled_from([None, np.float32, np.float64,
                                                            np.complex64]))
def test_full_read_matches_numpy(case, dtype):
    if dtype is not None and np.dtype(dtype).kind == "f" and case.spec.output_dtype.kind == "c":
        dtype = np.complex128
    if case.spec.storage_dtype.fields is not None:
        dtype = None  # records have no float conversion (numpy refuses it too)
    with tempfile.TemporaryDirectory() as directory, open_case_proxy(
            case.stored, case.spec, case.source, directory, mmap=case.mmap,
            keep_file_open=case.keep_file_open, cost=case.cost) as proxy:
        expected = expected_values(case.stored, case.spec, dtype=dtype)
        actual = np.asarray(proxy, dtype=dtype)
        assert_same(np.array(actual), expected)
        assert_same(np.array(proxy.get_unscaled()),
                    expected_values(case.stored, case.spec, scaled=False))


@given(case=proxy_cases(max_dims=4, sources=("bytesio", "fileobj")))
def test_file_position_is_kept(case):
    with tempfile.TemporaryDirectory() as directory, open_case_proxy(
            case.stored, case.spec, case.source, directory, cost=case.cost) as proxy:
        if case.spec.size and np.shape(expected_values(case.stored, case.spec, case.key)) != ():
            check_position_kept(proxy.file_like, proxy, case.key)
