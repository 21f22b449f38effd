"""Bad fancy keys raise numpy's exception types with numpy's words."""

import numpy as np
import pytest

import proxylib

SHAPE = (2, 3, 4, 5)

BAD_KEYS = [
    ([5],),                                        # out of range
    ([-3],),                                       # negative out of range
    ([1, 7, 9],),                                  # first bad entry is reported
    ([0, 1], [0, 9]),                              # second axis
    ([[0], [9]], [[7, 0]]),                        # arrays checked in key order
    (5, [0]),                                      # integer scalars before arrays
    ([0, 1], [0, 1, 2], 5),                        # ... even before broadcasting
    ([0, 1], [0, 1, 2]),                           # broadcast mismatch
    (np.zeros((2, 3), int), 0, np.zeros((4, 1, 2), int)),  # 2-d shapes in the message
    (True, [0, 1], [0, 1, 2]),                     # 0-d boolean shows as (1,)
    (np.zeros((2, 3), bool), [0, 1, 1]),           # mask contributes one shape per axis
    (np.array([True, False, True]),),              # wrong-length mask
    ([0, 1], np.zeros((3, 5), bool)),              # mask over two axes, second wrong
    (np.zeros((2, 3), bool), np.zeros((4, 6), bool)),
    ([0], [0], [0], [0], [0]),                     # too many indices
    (np.zeros((2, 3, 4, 5, 1), bool),),            # mask with too many dims
    ([1.0],),                                      # list of floats
    (np.array([1.0]),),                            # float array
    (np.array(1.0),),                              # 0-d float array
    (np.array([0], dtype=object),),                # object array
    ([0], Ellipsis, Ellipsis),                     # two ellipses
    ([0], 1.5),                                    # float scalar
    ([0], "a"),                                    # string
    (np.zeros(2, bool), [0, 9]),                   # empty broadcast skips bounds, not shapes
    ([[0, 1], [2]],),                              # ragged list: ValueError
]


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    path = tmp_path_factory.mktemp("errors") / "a.bin"
    np.arange(np.prod(SHAPE), dtype="<i2").tofile(path)
    with proxylib.ArrayProxy(str(path), (SHAPE, "<i2")) as proxy:
        yield proxy


@pytest.mark.parametrize("key", BAD_KEYS, ids=range(len(BAD_KEYS)))
def test_bad_key_raises_like_numpy(proxy, key):
    values = np.zeros(SHAPE)
    with pytest.raises(Exception) as numpy_error:
        values[key]
    with pytest.raises(type(numpy_error.value)) as proxy_error:
        proxy[key]
    assert str(proxy_error.value) == str(numpy_error.value)
    if isinstance(numpy_error.value, IndexError):
        assert isinstance(proxy_error.value, proxylib.ProxyIndexError)


@pytest.mark.parametrize("key", [
    (np.zeros((0, 9), bool), [1]),       # empty boolean axes pass, the next does not
])
def test_numpy_quirks_kept(proxy, key):
    with pytest.raises(IndexError) as numpy_error:
        np.zeros(SHAPE)[key]
    with pytest.raises(IndexError, match="boolean index did not match") as proxy_error:
        proxy[key]
    assert str(proxy_error.value) == str(numpy_error.value)


def test_empty_selections_check_nothing(proxy):
    # numpy checks no entry when the broadcast selection is empty
    assert proxy[False, [7]].shape == np.zeros(SHAPE)[False, [7]].shape
    assert proxy[np.zeros((0, 1), int), [9]].shape == (0, 1, 4, 5)


@pytest.mark.parametrize("key, words", [
    (([0, 1], None), "newaxis"),
    ((np.zeros((2, 2), int),), "1-d integer or boolean array"),
    ((slice(None), [True, False]), "boolean index did not match indexed array along axis 1"),
    (([0], [3]), "index 3 is out of bounds for axis 1 with size 3"),
    (([0], [0], [0], [0], [0]), "too many indices"),
    (([0.5],), "only integers"),
])
def test_bad_oindex_keys(proxy, key, words):
    with pytest.raises(IndexError, match=words):
        proxy.oindex[key]
