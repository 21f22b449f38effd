"""Materialize test cases as real files and proxies, and check reads against numpy."""

from __future__ import annotations

import io
import os
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import numpy as np

from ..arrayproxy import ArrayProxy
from ..spec import ArraySpec
from .oracle import assert_same, expected_values

PREFIX_BYTE = b"\xa5"


def file_bytes(stored: np.ndarray, spec: ArraySpec, trailing: int = 3) -> bytes:
    """The bytes of a file holding ``stored`` as ``spec`` describes, with padding."""
    data = np.asarray(stored, dtype=spec.storage_dtype).tobytes(order=spec.order)
    return PREFIX_BYTE * spec.offset + data + PREFIX_BYTE * trailing


@contextmanager
def open_case_proxy(stored: np.ndarray, spec: ArraySpec, source: str, directory: str,
                    proxy_class: type = ArrayProxy, **proxy_args: Any) -> Iterator[ArrayProxy]:
    """Write ``stored`` and yield a proxy reading it from ``source``.

    ``source`` is 'path' (a file name), 'bytesio' (an ``io.BytesIO``) or
    'fileobj' (an open ``io.BufferedReader``).
    """
    payload = file_bytes(stored, spec)
    path = os.path.join(directory, "case.bin")
    with open(path, "wb") as handle:
        handle.write(payload)
    fileobj: Optional[Any] = None
    if source == "path":
        target: Any = path
    elif source == "bytesio":
        target = fileobj = io.BytesIO(payload)
    elif source == "fileobj":
        target = fileobj = open(path, "rb")
    else:
        raise ValueError(f"unknown source {source!r}")
    proxy = proxy_class(target, spec, **proxy_args)
    try:
        yield proxy
    finally:
        proxy.close()
        if fileobj is not None:
            fileobj.close()


def check_read(proxy: ArrayProxy, stored: np.ndarray, key: Any) -> None:
    """``proxy[key]`` equals numpy's answer on the stored array."""
    try:
        expected = expected_values(stored, proxy.spec, key)
    except Exception as numpy_error:  # numpy refused the key: so must we
        try:
            proxy[key]
        except type(numpy_error):
            return
        raise AssertionError(f"numpy raised {numpy_error!r} for {key!r}; the proxy did not")
    assert_same(proxy[key], expected)


def check_position_kept(fileobj: Any, proxy: ArrayProxy, key: Any) -> None:
    """Reading through ``proxy`` leaves ``fileobj``'s position where it was."""
    fileobj.seek(1)
    proxy[key]
    assert fileobj.tell() == 1
