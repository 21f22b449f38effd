"""Opening URLs: :func:`open_url`, the remote byte source and handle-free opener."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional

from ..fileobjects import HandlelessOpener
from ..protocol import register_opener
from ..sources import ByteSource
from .files import BACKOFF, GZIP_MAGIC, RETRIES, RemoteFile, _fsspec, is_fsspec_file, is_url
from .gzipped import RemoteGzipFile

def open_url(url: Any, storage_options: Optional[Dict[str, Any]] = None, *,
             retries: int = RETRIES, backoff: float = BACKOFF,
             ignored_range: str = "refuse") -> RemoteFile:
    """A :class:`RemoteFile` (or :class:`RemoteGzipFile` for gzip data) for a URL.

    ``url`` may also be an open fsspec file or ``fsspec.core.OpenFile``; its
    filesystem's protocol and options are reused. One metadata request (size,
    ETag) and one request for the first :data:`HEAD_BYTES` are made.
    ``ignored_range='stream'`` reads servers that ignore ``Range`` as a stream
    (bounded memory, but up to the whole file transferred per read).
    """
    _fsspec()
    if is_fsspec_file(url):
        fs = url.fs
        path = url.path
        protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
        storage_options = {**getattr(fs, "storage_options", {}), **(storage_options or {})}
        url = path if "://" in path else f"{protocol}://{path}"
    if not isinstance(url, str):
        raise TypeError(f"open_url needs a URL string or an fsspec file, not "
                        f"{type(url).__name__}")
    plain = RemoteFile(url, storage_options, retries=retries, backoff=backoff,
                       ignored_range=ignored_range)
    if plain.prefetch_head()[:2] == GZIP_MAGIC:
        gz = RemoteGzipFile(url, storage_options, retries=retries, backoff=backoff,
                            identity=plain._identity, ignored_range=ignored_range)
        gz._fs, gz._path = plain._fs, plain._path
        gz._compressed_head = plain._head
        return gz
    return plain


class RemoteSource(ByteSource):
    """Byte source over a :class:`RemoteFile`: positional ranged reads, no lock."""

    def __init__(self, remote: RemoteFile) -> None:
        self.remote = remote
        self.name = remote.url
        self.cost = remote.cost

    def readinto(self, offset: int, buffer: Any) -> None:
        self.remote.read_at(offset, buffer)

    def readinto_runs(self, offsets, buffers) -> None:
        """Issue the runs' range requests concurrently (each still retried on its own).

        On the first failure the requests not yet started are cancelled and the
        running ones awaited, so nothing writes into the buffers after the error
        reaches the caller. At interpreter exit, when no thread can start any
        more, the runs are read one by one.
        """
        if len(offsets) <= 1:
            return super().readinto_runs(offsets, buffers)
        from concurrent.futures import FIRST_EXCEPTION, wait
        futures = []
        try:
            pool = _request_pool()
            for offset, buffer in zip(offsets, buffers):
                futures.append(pool.submit(self.remote.read_at, offset, buffer))
        except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
            wait(futures)
            return super().readinto_runs(offsets, buffers)
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        if pending:
            for future in pending:
                future.cancel()
            wait(pending)
        for future in futures:
            if not future.cancelled():
                future.result()  # raises the first failure, in file order


#: Range requests one read keeps in flight at most.
CONCURRENT_REQUESTS = 8
_POOL: Optional[Any] = None
_POOL_GUARD = threading.Lock()


def _request_pool():
    global _POOL
    with _POOL_GUARD:
        if _POOL is None or _POOL_PID[0] != os.getpid():
            from concurrent.futures import ThreadPoolExecutor
            _POOL = ThreadPoolExecutor(CONCURRENT_REQUESTS, thread_name_prefix="proxylib-range")
            _POOL_PID[0] = os.getpid()
        return _POOL


_POOL_PID = [0]


class RemoteOpener(HandlelessOpener):
    """Handle policy of a remote file: there are no handles, only requests.

    Plugs into :func:`proxylib.io.opening.make_opener` (see
    :func:`remote_opener_for`) so that proxies on URLs read without the
    per-object lock file objects need; pickles as its :class:`RemoteFile`.
    """

    def __init__(self, remote: RemoteFile) -> None:
        self.remote = remote
        self._source = RemoteSource(remote)

    @contextmanager
    def source(self) -> Iterator[ByteSource]:
        yield self._source

    def remember_current_file(self) -> None:
        self.remote.identity()

    def identity(self) -> Any:
        return self.remote.__dask_tokenize__()

    def clone(self) -> "RemoteOpener":
        return RemoteOpener(self.remote)

    def __getstate__(self) -> dict:
        return {"remote": self.remote}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["remote"])


@register_opener
def remote_opener_for(file_like: Any) -> Optional[RemoteOpener]:
    """The opener for a URL, an fsspec file or a RemoteFile; None for anything else."""
    if isinstance(file_like, RemoteFile):
        return RemoteOpener(file_like)
    if is_url(file_like) or is_fsspec_file(file_like):
        return RemoteOpener(open_url(file_like))
    return None
