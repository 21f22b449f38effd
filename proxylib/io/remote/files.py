"""Remote files by byte range: :class:`RemoteFile`, retries, URL detection."""

from __future__ import annotations

import io
import sys
import threading
import time
from typing import Any, Dict, Optional, Tuple

from ...errors import ProxyError, ProxyReadError, TransientReadError, TruncatedFileError
from ..cost import CostModel
from ..identity import FileIdentity
from ..positional import seek_position
from ..sources import _byte_view
from .responses import status_error, where
from .transports import transport_for, with_default_timeouts


GZIP_MAGIC = b"\x1f\x8b"

#: Cost of a remote source: read through gaps up to 2 MiB (a request's round
#: trip costs about that much transfer on a typical WAN link, see the module
#: docstring and benchmarks/bench_remote.py), requests of at most 16 MiB.
REMOTE_COST = CostModel(gap_threshold=2 * 1024 * 1024, block_size=16 * 1024 * 1024)
#: Retries after a failed request (so at most RETRIES + 1 attempts per range).
RETRIES = 3
#: Seconds before the first retry; doubled for each further one, at most MAX_BACKOFF.
BACKOFF = 0.1
MAX_BACKOFF = 2.0
#: What to do when a server answers a range request with the whole file:
#: ``'refuse'`` (stop the transfer, raise) or ``'stream'`` (read on, keep the range).
IGNORED_RANGE_POLICIES = ("refuse", "stream")
#: Bytes fetched with the first request (gzip magic, header, extensions): one
#: round trip instead of three for a NIfTI header.
HEAD_BYTES = 16 * 1024
#: Compressed bytes fetched per request while decompressing a remote gzip file.
GZIP_READ_SIZE = 1024 * 1024


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError as err:  # pragma: no cover - exercised only without fsspec
        raise ImportError("reading URLs needs fsspec: pip install 'proxylib[remote]' "
                          "(or pip install fsspec aiohttp requests)") from err
    return fsspec


def is_url(obj: Any) -> bool:
    """True for a ``scheme://`` string other than ``file://`` (a URL, not a path)."""
    if isinstance(obj, bytes):
        return False
    if not isinstance(obj, str) or "://" not in obj:
        return False
    scheme = obj.split("://", 1)[0]
    return scheme.replace("+", "").replace("-", "").replace(".", "").isalnum() and \
        scheme.lower() not in ("file", "local")


def is_fsspec_file(obj: Any) -> bool:
    """True for an open fsspec file (``fs.open(...)``) or an ``fsspec.core.OpenFile``."""
    if "fsspec" not in sys.modules:  # no fsspec object exists; do not import it for a path
        return False
    try:
        from fsspec.core import OpenFile
        from fsspec.spec import AbstractBufferedFile
    except ImportError:
        return False
    return isinstance(obj, (OpenFile, AbstractBufferedFile))


def _describe(err: BaseException) -> str:
    """What went wrong, as the end of a sentence (a timeout, a refused connection, ...)."""
    text = str(err).strip() or type(err).__name__
    # asyncio (imported by fsspec's HTTP client, not here: it costs more than numpy)
    # can only have raised its TimeoutError if it is loaded
    loaded = sys.modules.get("asyncio")
    timeouts = (TimeoutError,) + ((loaded.TimeoutError,) if loaded is not None else ())
    if isinstance(err, timeouts) or "timeout" in \
            type(err).__name__.lower():
        return ("the server did not answer within the timeout "
                f"({type(err).__name__}{': ' + str(err) if str(err) else ''})")
    if isinstance(err, TransientReadError):
        return text
    if isinstance(err, ConnectionRefusedError) or "connect call failed" in text.lower() \
            or "cannot connect" in text.lower():
        return f"the connection was refused or could not be made ({text})"
    return f"{type(err).__name__}: {text}"


def _status_of(err: BaseException) -> Optional[int]:
    """The HTTP status behind an exception: aiohttp's ``status``, botocore's response
    (also when s3fs re-raised it as an OSError, the original as its cause)."""
    seen = 0
    while err is not None and seen < 5:
        status = getattr(err, "status", None) or getattr(err, "code", None)
        if isinstance(status, int):
            return status
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if isinstance(status, int):
                return status
        err = err.__cause__ or err.__context__
        seen += 1
    return None


def _permanent(url: str, err: BaseException, doing: str, start: Optional[int],
               end: Optional[int]) -> Optional[Exception]:
    """The named error for a failure no retry can cure, or None for a transient one."""
    span = where(start, end)
    if type(err).__name__ == "TooManyRedirects":
        return ProxyReadError(f"{url}: the server redirected more than the allowed number of "
                              f"times (a redirect loop?) while {doing}{span}.", path=url,
                              offset=start)
    status = _status_of(err)
    if isinstance(status, int) and 400 <= status < 600:
        found = status_error(url, status, doing, start, end)
        return None if isinstance(found, TransientReadError) else found
    if isinstance(err, FileNotFoundError):
        return status_error(url, 404, doing, start, end, str(err))
    if isinstance(err, PermissionError):
        return status_error(url, 403, doing, start, end, str(err))
    if isinstance(err, (ValueError, TypeError, IsADirectoryError)):
        return ProxyReadError(f"{url}: {doing}{span} failed: {type(err).__name__}: {err}.",
                              path=url, offset=start)
    return None


class RemoteFile(io.RawIOBase):
    """A remote file read by byte range; picklable, thread-safe positional reads.

    Parameters
    ----------
    url : str
        Any URL fsspec understands.
    storage_options : dict, optional
        Passed to the fsspec filesystem (credentials, endpoint, headers,
        timeouts). Connect and read timeouts default to
        :data:`~.transports.CONNECT_TIMEOUT` and :data:`~.transports.READ_TIMEOUT`.
    retries, backoff : int, float
        At most ``retries`` retries per request, the first after ``backoff``
        seconds, doubling up to :data:`MAX_BACKOFF`.
    identity : FileIdentity, optional
        The :class:`~proxylib.io.identity.FileIdentity` seen earlier (pickled
        copies carry it); looked up with one metadata request when not given.
    ignored_range : {'refuse', 'stream'}
        A server that answers a range request with the whole file is refused
        (the default), or read as a stream keeping only the range asked.
    """

    cost = REMOTE_COST

    def __init__(self, url: str, storage_options: Optional[Dict[str, Any]] = None, *,
                 retries: int = RETRIES, backoff: float = BACKOFF,
                 identity: Optional[FileIdentity] = None,
                 ignored_range: str = "refuse") -> None:
        super().__init__()
        if ignored_range not in IGNORED_RANGE_POLICIES:
            raise ValueError(f"ignored_range must be one of {IGNORED_RANGE_POLICIES}, "
                             f"not {ignored_range!r}")
        self.url = url
        self.storage_options = dict(storage_options or {})
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.ignored_range = ignored_range
        self._fs: Any = None
        self._path: Optional[str] = None
        self._transport: Any = None
        self._pos = 0
        self._identity = identity
        self._head: Optional[bytes] = None
        #: Requests made and bytes received by this object (for tests and benchmarks).
        self.requests = 0
        self.bytes_received = 0
        self._count_lock = threading.Lock()

    # -- identity ---------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.url

    def _filesystem(self) -> Tuple[Any, str]:
        if self._fs is None:
            from fsspec.core import url_to_fs
            protocol = self.url.split("://", 1)[0].lower()
            self._fs, self._path = url_to_fs(
                self.url, **with_default_timeouts(protocol, self.storage_options))
        return self._fs, self._path

    def _channel(self) -> Any:
        if self._transport is None:
            fs, path = self._filesystem()
            self._transport = transport_for(fs, self.url, path)
        return self._transport

    @property
    def is_http(self) -> bool:
        return self.url.split("://", 1)[0].lower() in ("http", "https")

    def identity(self) -> FileIdentity:
        """The identity of the version first seen (one metadata request): URL, size and
        ``version``, which is ``'ETag=...'``, else ``'Last-Modified=...'`` (or another
        version field the filesystem reports), else ''.
        """
        if self._identity is None:
            transport = self._channel()
            size, version = self._with_retries("looking up its size", transport.info)
            self._identity = FileIdentity.remote(self.url, int(size), version or "")
        return self._identity

    @property
    def size(self) -> int:
        return self.identity().size

    def __dask_tokenize__(self) -> Any:
        identity = self.identity()
        return ("proxylib.RemoteFile", identity.location, identity.size,
                identity.version or None)

    # -- positional reads --------------------------------------------------------
    def _with_retries(self, doing: str, call: Any, start: Optional[int] = None,
                      end: Optional[int] = None) -> Any:
        """``call()``, retried on transient failures; proxylib errors for the rest."""
        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                return call()
            except ProxyError as err:
                if not isinstance(err, TransientReadError):
                    raise
                failure: Exception = err
            except Exception as err:
                named = _permanent(self.url, err, doing, start, end)
                if named is not None:
                    raise named from err
                failure = err
            if attempt == attempts - 1:
                raise ProxyReadError(
                    f"{self.url}: {doing}{where(start, end)} failed after {attempts} "
                    f"attempts: {_describe(failure)}.", path=self.url, offset=start,
                    expected=None if start is None else end - start) from failure
            time.sleep(min(MAX_BACKOFF, self.backoff * (2 ** attempt)))
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch_into(self, start: int, view: memoryview) -> None:
        """One request for ``view``'s bytes at ``start``, checked before it is used."""
        transport = self._channel()
        identity = self._identity
        version = None if identity is None else identity.version or None
        size = None if identity is None else identity.size
        with self._count_lock:
            self.requests += 1
        received = transport.read_into(start, view, version, size,
                                       self.ignored_range == "stream")
        with self._count_lock:
            self.bytes_received += received

    def read_at(self, offset: int, buffer: Any) -> None:
        """Fill ``buffer`` with the bytes at ``offset`` (one request, retried)."""
        view = _byte_view(buffer)
        wanted = len(view)
        if wanted == 0:
            return
        size = self.size
        end = offset + wanted
        if end > size:
            raise TruncatedFileError(
                f"{self.url}: needed bytes {offset}-{end - 1} but the file holds {size} "
                "bytes; it is shorter than its header says", path=self.url, offset=offset,
                expected=wanted, found=max(0, size - offset))
        self._with_retries("reading", lambda: self._fetch_into(offset, view), offset, end)

    # -- file-object protocol (for header parsing and FileObjectOpener) ----------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = seek_position(self._pos, offset, whence, lambda: self.size)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = _byte_view(buffer)
        count = max(0, min(len(view), self.size - self._pos))
        if count:
            head = self._head
            if head is not None and self._pos + count <= len(head):
                view[:count] = head[self._pos:self._pos + count]
            else:
                self.read_at(self._pos, view[:count])
            self._pos += count
        return count

    def prefetch_head(self, nbytes: int = HEAD_BYTES) -> bytes:
        """Fetch the first ``nbytes`` once; header parsing then reads them from memory."""
        if self._head is None:
            head = bytearray(min(nbytes, self.size))
            self.read_at(0, head)
            self._head = bytes(head)
        return self._head

    # -- pickling: a description, never a connection ------------------------------
    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.url, self.storage_options, self.retries,
                           self.backoff, self._identity, self.ignored_range))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def _rebuild(cls: type, url: str, options: Dict[str, Any], retries: int, backoff: float,
             identity: Optional[FileIdentity], ignored_range: str = "refuse") -> "RemoteFile":
    return cls(url, options, retries=retries, backoff=backoff, identity=identity,
               ignored_range=ignored_range)
