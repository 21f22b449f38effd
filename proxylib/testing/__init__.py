"""Reusable checks for proxylib and for readers that embed ArrayProxy.

Without hypothesis (numpy only), imported here:

* :func:`check_read` - ``proxy[key]`` equals numpy's answer on the stored
  array (values, shape, dtype; numpy's exception type when numpy refuses);
* :func:`expected_values` / :func:`assert_same` - the oracle behind it;
* :func:`open_case_proxy` / :func:`file_bytes` - write stored values as a
  spec describes and open a proxy on them from a path, a ``BytesIO`` or an
  open file;
* :class:`CostModel` - gap threshold and block size, to force every read
  strategy (``ArrayProxy(..., cost=CostModel(0, 16))``).

With hypothesis (``pip install hypothesis``), import the submodules:
``strategies`` (dtypes, shapes, stored arrays, specs, read settings, basic
keys; ``structured=False`` leaves out structured dtypes) and
``fancy_strategies`` (advanced and ``oindex`` keys).
"""

from ..io.cost import CostModel
from .conformance import check_position_kept, check_read, file_bytes, open_case_proxy
from .oracle import assert_same, expected_values

__all__ = ["CostModel", "check_read", "check_position_kept", "file_bytes", "open_case_proxy",
           "assert_same", "expected_values"]
