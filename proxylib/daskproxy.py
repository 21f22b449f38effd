"""Dask arrays over proxies already open: :func:`proxy_to_dask` (``img.to_dask()``).

:func:`proxylib.daskarray.to_dask` is the public entry, which also opens paths and
URLs; this module sits below the images and loading, which it never imports.

The dask graph holds the proxy itself (a path or URL plus its spec and
policy; proxies pickle without handles), never data. Each task reads its own
chunk with ``proxy[slices]``, so a task touches only the bytes of its chunk.

* **dtype** is the proxy's output dtype, known before reading; it is passed
  to dask as ``meta``, so building the array reads nothing.
* **default chunks** follow the file layout: whole extents of the fastest
  varying axes (the first axes of an F-order file, the last of a C-order
  one) and as many steps of the next axis as fit in ``limit`` bytes of
  output. A 4D F-order file is cut into runs of whole volumes, and every
  chunk is one contiguous byte range of the file.
* **no lock**: plain files are read with positional reads (``os.preadv``)
  that need none; gzip sources and open file objects serialize their own
  access internally, so dask never adds a global lock.
* **deterministic names**: :func:`proxy_token` describes what the proxy
  reads (file identity, spec, policy), so the same proxy gives the same keys,
  and a file changed on disk gives new ones.

dask is an optional dependency (``pip install 'proxylib[dask]'``); it is
imported only when a dask array is built.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from .protocols import is_proxy

#: Default upper bound of one chunk's output bytes when dask's configuration
#: does not say otherwise (dask's own default ``array.chunk-size``).
DEFAULT_CHUNK_BYTES = 128 * 1024 * 1024

Chunks = Union[None, str, int, Sequence[Any], dict]


def _require_dask() -> Any:
    try:
        import dask.array as da
    except ImportError as err:  # pragma: no cover - exercised only without dask
        raise ImportError(
            "proxylib.to_dask needs dask: pip install 'proxylib[dask]' "
            "(or pip install 'dask[array]')") from err
    return da


def _chunk_limit(limit: Optional[Union[int, str]]) -> int:
    """Bytes per chunk: ``limit``, else dask's ``array.chunk-size``, else 128 MiB."""
    if limit is None:
        try:
            import dask
            limit = dask.config.get("array.chunk-size", DEFAULT_CHUNK_BYTES)
        except ImportError:  # pragma: no cover
            limit = DEFAULT_CHUNK_BYTES
    if isinstance(limit, str):
        from dask.utils import parse_bytes
        limit = parse_bytes(limit)
    limit = int(limit)
    if limit <= 0:
        raise ValueError(f"limit must be a positive number of bytes, not {limit}")
    return limit


def layout_chunks(shape: Tuple[int, ...], itemsize: int, order: str,
                  limit: int) -> Tuple[Tuple[int, ...], ...]:
    """Chunks that follow the storage layout of an array, within ``limit`` bytes.

    The axes are walked from the fastest varying (the first for ``order='F'``,
    the last for ``'C'``): each is taken whole while the chunk stays within
    ``limit``; the first that does not fit is cut into the largest equal
    steps that do (at least 1); slower axes get steps of 1. Every chunk is
    then one contiguous byte range of the file (or a part of one).

    >>> layout_chunks((100, 100, 100, 100), 2, "F", 64 * 2 ** 20)
    ((100,), (100,), (100,), (33, 33, 33, 1))
    """
    ndim = len(shape)
    axes = range(ndim) if order == "F" else range(ndim - 1, -1, -1)
    steps = [1] * ndim
    inner = max(1, itemsize)
    cut = False
    for axis in axes:
        n = shape[axis]
        if cut:
            steps[axis] = 1
        elif inner * max(n, 1) <= limit:
            steps[axis] = max(n, 1)
            inner *= max(n, 1)
        else:
            steps[axis] = max(1, limit // inner)
            cut = True
    return tuple(_split(n, step) for n, step in zip(shape, steps))


def _split(n: int, step: int) -> Tuple[int, ...]:
    if n == 0:
        return (0,)
    full, rest = divmod(n, step)
    return (step,) * full + ((rest,) if rest else ())


def proxy_token(proxy: Any) -> Tuple[Any, ...]:
    """What determines the values a proxy reads, as plain data (for dask's tokenize).

    A path is described by its absolute path and the fingerprint (size,
    inode, device, mtime) the proxy recorded, so a file replaced on disk
    gives a new token; other file objects describe themselves (a remote file
    by URL, ETag and size) or are left to dask's own tokenization.
    """
    opener = getattr(proxy, "opener", None)
    describe = getattr(opener, "identity", None)
    where = describe() if callable(describe) else ("fileobj", proxy.file_like)
    spec = proxy.spec
    return ("proxylib.ArrayProxy", type(proxy).__qualname__, where,
            spec.shape, spec.storage_dtype.str, spec.offset, spec.order,
            repr(spec.slope), repr(spec.inter), str(proxy.dtype), proxy.mmap)


def returned_dtype(proxy: Any) -> np.dtype:
    """The dtype ``proxy[key]`` returns, known without reading data.

    A proxylib proxy (one that also has ``storage_dtype``) says so in
    ``.dtype``. Another library's ``.dtype`` may be the stored type while reads
    come back scaled (nibabel's ArrayProxy: int16 on disk, float64 read), so
    it is asked with an empty read, which touches no data bytes.
    """
    if getattr(proxy, "storage_dtype", None) is not None:
        return np.dtype(proxy.dtype)
    empty = (slice(0, 0),) * len(tuple(proxy.shape))
    try:
        return np.asarray(proxy[empty]).dtype
    except (IndexError, TypeError, ValueError):  # a proxy that refuses empty keys
        if 0 in tuple(proxy.shape):
            return np.dtype(proxy.dtype)
        return np.asarray(proxy[(0,) * len(tuple(proxy.shape))]).dtype


def _storage_order(proxy: Any) -> str:
    """The proxy's storage order for layout chunks; numpy's C when it does not say."""
    order = getattr(proxy, "order", None)
    return order if order in ("F", "C") else "C"


def _foreign_token(proxy: Any) -> Tuple[Any, ...]:
    """Describe another library's proxy: its file's identity (a path's stat) and layout."""
    file_like = getattr(proxy, "file_like", None)
    where: Any = None
    if isinstance(file_like, (str, os.PathLike)):
        try:
            status = os.stat(file_like)
            where = (os.path.abspath(file_like), status.st_size, status.st_mtime_ns,
                     status.st_ino)
        except OSError:
            where = os.fspath(file_like)
    return (type(proxy).__module__, type(proxy).__qualname__, where, tuple(proxy.shape))


class ForeignProxy:
    """Another library's proxy as dask must see it: ``dtype`` is what reads return.

    dask takes ``.dtype`` from the object it is given; nibabel's is the stored
    type, so dask would be told int16 and handed float64 chunks.
    """

    def __init__(self, proxy: Any, dtype: np.dtype) -> None:
        self.proxy = proxy
        self.shape = tuple(proxy.shape)
        self.ndim = len(self.shape)
        self.dtype = dtype

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self.proxy[key], dtype=self.dtype)


def _proxy_of(obj: Any) -> Any:
    if is_proxy(obj):
        return obj
    dataobj = getattr(obj, "dataobj", None)
    if dataobj is not None:
        return dataobj
    raise TypeError(f"to_dask needs an ArrayProxy or an image with a dataobj (or a path "
                    f"or URL to open), not {type(obj).__name__}")


def proxy_to_dask(obj: Any, chunks: Chunks = None, *, limit: Optional[Union[int, str]] = None,
                  name: Optional[str] = None) -> Any:
    """:func:`proxylib.daskarray.to_dask` for a proxy or image already open."""
    da = _require_dask()
    from dask.array.core import normalize_chunks
    from dask.base import tokenize

    source = _proxy_of(obj)
    if not is_proxy(source):
        return da.from_array(np.asanyarray(source), chunks="auto" if chunks is None else chunks)
    ours = getattr(source, "storage_dtype", None) is not None
    dtype = returned_dtype(source)
    shape = tuple(source.shape)
    nbytes = _chunk_limit(limit)
    if chunks is None:
        chunks = layout_chunks(shape, dtype.itemsize, _storage_order(source), nbytes)
    else:
        chunks = normalize_chunks(chunks, shape, limit=nbytes, dtype=dtype)
    if name is None:
        described = source if ours else (_foreign_token(source), source)
        name = "proxylib-" + tokenize(described, chunks)
    meta = np.empty((0,) * len(shape), dtype=dtype)
    if not ours:
        source = ForeignProxy(source, dtype)
    return da.from_array(source, chunks=chunks, name=name, meta=meta, lock=False,
                         asarray=False, fancy=False, inline_array=False)


__all__ = ["proxy_to_dask", "Chunks", "layout_chunks", "proxy_token", "returned_dtype", "DEFAULT_CHUNK_BYTES"]
