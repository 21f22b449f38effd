"""``proxylib.to_dask``: a dask array from a proxy, an image, a path or a URL.

Paths and URLs are opened with :func:`proxylib.load` (so ``storage_options``
reach fsspec: credentials, endpoint, timeouts), then handed to
:func:`proxylib.daskproxy.proxy_to_dask`, which builds the graph. Every task
holds the proxy, and a proxy on a URL carries its storage options when it is
pickled to a worker, so workers read with the same options.

This module sits above :mod:`proxylib.loading`; the proxy and image classes
use :mod:`proxylib.daskproxy` for their ``to_dask`` methods.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

from .daskproxy import (DEFAULT_CHUNK_BYTES, Chunks, layout_chunks, proxy_to_dask,
                        proxy_token, returned_dtype)
from .io.remote import is_fsspec_file
from .loading import load


def _opens_a_file(obj: Any) -> bool:
    return isinstance(obj, (str, os.PathLike)) or is_fsspec_file(obj)


def to_dask(obj: Any, chunks: Chunks = None, *, limit: Optional[Union[int, str]] = None,
            name: Optional[str] = None,
            storage_options: Optional[Dict[str, Any]] = None) -> Any:
    """A dask array reading ``obj`` chunk by chunk, without reading anything now.

    Parameters
    ----------
    obj : proxy, image, path or URL
        A proxy (proxylib's, or any object with ``is_proxy = True``, ``shape``
        and ``__getitem__``, such as nibabel's), an image (``img.dataobj`` is
        used: a proxy, or an array already in memory), or a path, URL or open
        fsspec file, opened with :func:`proxylib.load`. Another library's
        proxy is asked its result dtype with an empty read (see
        :func:`~proxylib.daskproxy.returned_dtype`); without ``order`` it is
        chunked as C order.
    chunks : None or anything ``dask.array.from_array`` accepts
        None follows the file layout (see :func:`layout_chunks`); ``'auto'``,
        an int, a tuple or a dict are normalized by dask with ``limit``.
    limit : int or str, optional
        Largest chunk in output bytes (``'64MiB'`` or a number); default
        dask's ``array.chunk-size`` (128 MiB unless configured).
    name : str, optional
        Graph name; default ``'proxylib-' + tokenize(proxy, chunks)``, the same
        for the same proxy and chunks.
    storage_options : dict, optional
        fsspec options for a URL ``obj`` (as for :func:`proxylib.load`); the
        workers' reads use them too. A proxy or image already open carries
        the options it was opened with, so they are refused there.

    Returns
    -------
    dask.array.Array
        With ``dtype == proxy.dtype`` and numpy chunks.
    """
    if _opens_a_file(obj):
        obj = load(obj, storage_options=storage_options)
    elif storage_options is not None:
        raise TypeError(
            f"to_dask: storage_options apply when to_dask opens a path or URL; this "
            f"{type(obj).__name__} is already open and carries the options it was opened "
            "with (pass them to proxylib.load or ArrayProxy instead)")
    return proxy_to_dask(obj, chunks, limit=limit, name=name)


__all__ = ["to_dask", "layout_chunks", "proxy_token", "returned_dtype", "DEFAULT_CHUNK_BYTES"]
