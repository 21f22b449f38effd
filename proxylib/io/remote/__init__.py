"""Remote files read by byte range, through fsspec (``pip install 'proxylib[remote]'``).

A URL (``http(s)://``, ``s3://``, ... anything fsspec knows) or an open fsspec
file becomes a :class:`RemoteFile`: a small picklable description (URL,
storage options, and the size and ETag seen when it was first opened) that
reads any byte range with one ranged request. Nothing is downloaded up front.

* **Ranged reads, coalesced by the planner.** A remote source declares
  :data:`REMOTE_COST`: gaps up to 2 MiB are read through, because a range
  request costs a round trip (at 20-50 ms and 50-100 MB/s that is the time
  of 1-5 MB of transfer); runs are cut at 16 MiB so memory stays bounded.
  One volume of a 4D file is one request for about one volume of bytes; an
  x-slab is ``span / block_size`` requests, not one per row.
* **Every answer checked** (:mod:`.responses`, used by :mod:`.transports`):
  status 206, ``Content-Range`` equal to the range asked, ``Content-Length``,
  total size, and the ETag (else Last-Modified) against the one first seen,
  before any byte is copied; a server that ignores ``Range`` is stopped after
  its headers (or, with ``ignored_range='stream'``, read as a stream).
  Connect/read timeouts are on by default.
* **Bounded retries.** A transient failure (5xx, 408, 429, a dropped
  connection, a timeout, a cut-off body) is retried :data:`RETRIES` times
  with exponential back-off; then :class:`~proxylib.ProxyReadError` names
  the URL, the byte range and the cause. 404, 401/403 and redirect loops are
  named and not retried.
* **gzip over the network** (:class:`RemoteGzipFile`): ``indexed_gzip`` seeks
  in the compressed stream, reading compressed bytes by range; its seek index
  is saved in the local cache (:mod:`proxylib.io.gzip.index_cache`) under an
  identity made of URL, ETag (or Last-Modified), size and a checksum of the
  compressed file's two ends, so a later process (a dask worker) jumps
  straight to the volume it needs and a replaced file never finds it.

Importing this package registers :func:`remote_opener_for` with
:func:`proxylib.io.protocol.register_opener`, so ``ArrayProxy(url, spec)``
reads by range. :func:`open_url` gives the file object (for
``ArrayProxy(open_url(url), spec)``); ``proxylib.load(url)`` is
:func:`proxylib.loading.load_url`.
"""

from typing import Any

from .files import (BACKOFF, GZIP_MAGIC, HEAD_BYTES, REMOTE_COST, RETRIES, RemoteFile,
                    is_fsspec_file, is_url)
from .gzipped import RemoteGzipFile
from .opening import RemoteOpener, RemoteSource, open_url, remote_opener_for
from .responses import RangeIgnoredError

def __getattr__(name: str) -> Any:
    """Names that moved out of io/ (a leaf: it imports nothing above it) say where they went."""
    if name == "load_url":
        raise AttributeError(f"{__name__}.load_url moved next to load: use proxylib.load_url "
                             "(or proxylib.load, which takes URLs too)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RemoteFile", "RemoteGzipFile", "RemoteSource", "RemoteOpener", "REMOTE_COST",
           "RETRIES", "BACKOFF", "open_url", "remote_opener_for", "is_url",
           "is_fsspec_file", "GZIP_MAGIC", "HEAD_BYTES", "RangeIgnoredError"]
