"""Remote files by byte range: :class:`RemoteFile`, retries, URL detection."""

from __future__ import annotations

import io
import threading
import time
from typing import Any, Dict, Optional, Tuple

from ...errors import FileChangedError, ProxyReadError, TruncatedFileError
from ..cost import CostModel
from ..positional import seek_position
from ..sources import _byte_view


GZIP_MAGIC = b"\x1f\x8b"

#: Cost of a remote source: read through gaps up to 2 MiB (a request's round
#: trip costs about that much transfer on a typical WAN link, see the module
#: docstring and benchmarks/bench_remote.py), requests of at most 16 MiB.
REMOTE_COST = CostModel(gap_threshold=2 * 1024 * 1024, block_size=16 * 1024 * 1024)
#: Retries after a failed request (so at most RETRIES + 1 attempts per range).
RETRIES = 3
#: Seconds before the first retry; doubled for each further one.
BACKOFF = 0.1
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
    try:
        from fsspec.core import OpenFile
        from fsspec.spec import AbstractBufferedFile
    except ImportError:
        return False
    return isinstance(obj, (OpenFile, AbstractBufferedFile))


def _is_permanent(err: BaseException) -> bool:
    """Errors a retry cannot cure: no such file, no permission, bad request."""
    if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError, ValueError,
                        TypeError)):
        return True
    status = getattr(err, "status", None) or getattr(err, "code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)


class RemoteFile(io.RawIOBase):
    """A remote file read by byte range; picklable, thread-safe positional reads.

    Parameters
    ----------
    url : str
        Any URL fsspec understands.
    storage_options : dict, optional
        Passed to the fsspec filesystem (credentials, headers, ...).
    retries, backoff : int, float
        At most ``retries`` retries per range, the first after ``backoff``
        seconds, doubling.
    identity : dict, optional
        ``{'size': ..., 'etag': ...}`` seen earlier (pickled copies carry it);
        looked up with one metadata request when not given.
    """

    cost = REMOTE_COST

    def __init__(self, url: str, storage_options: Optional[Dict[str, Any]] = None, *,
                 retries: int = RETRIES, backoff: float = BACKOFF,
                 identity: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()
        self.url = url
        self.storage_options = dict(storage_options or {})
        self.retries = int(retries)
        self.backoff = float(backoff)
        self._fs: Any = None
        self._path: Optional[str] = None
        self._pos = 0
        self._identity = dict(identity) if identity else None
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
            self._fs, self._path = url_to_fs(self.url, **self.storage_options)
        return self._fs, self._path

    @property
    def is_http(self) -> bool:
        return self.url.split("://", 1)[0].lower() in ("http", "https")

    def identity(self) -> Dict[str, Any]:
        """``{'url', 'size', 'etag'}`` of the version first seen (one metadata request)."""
        if self._identity is None:
            fs, path = self._filesystem()
            info = self._with_retries("looking up the size of", lambda: fs.info(path))
            size = info.get("size")
            if size is None:
                raise ProxyReadError(
                    f"{self.url}: the server does not report the file's size (no "
                    "Content-Length); byte-range reads need it", path=self.url)
            etag = None
            for field in ("ETag", "etag", "Last-Modified", "LastModified", "last_modified",
                          "mtime", "md5", "checksum"):
                if info.get(field) is not None:
                    etag = f"{field}={info[field]}"
                    break
            self._identity = {"size": int(size), "etag": etag}
        return {"url": self.url, **self._identity}

    @property
    def size(self) -> int:
        return self.identity()["size"]

    def __dask_tokenize__(self) -> Any:
        identity = self.identity()
        return ("proxylib.RemoteFile", identity["url"], identity["size"], identity["etag"])

    # -- positional reads --------------------------------------------------------
    def _with_retries(self, doing: str, call: Any, start: Optional[int] = None,
                      end: Optional[int] = None) -> Any:
        where = "" if start is None else f" bytes {start}-{end - 1}"
        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                return call()
            except ProxyReadError:
                raise
            except Exception as err:
                status = getattr(err, "status", None) or getattr(err, "code", None)
                if status == 412:
                    raise FileChangedError(
                        f"{self.url}: the file changed on the server since it was opened "
                        f"(its ETag no longer matches) while reading{where}; load it again",
                        path=self.url, offset=start) from err
                if isinstance(err, FileNotFoundError):
                    raise ProxyReadError(
                        f"{self.url}: not found on the server while {doing}{where}",
                        path=self.url, offset=start) from err
                if _is_permanent(err) or attempt == attempts - 1:
                    tried = "" if _is_permanent(err) else f" after {attempts} attempts"
                    raise ProxyReadError(
                        f"{self.url}: {doing}{where} failed{tried}: "
                        f"{type(err).__name__}: {err}", path=self.url, offset=start,
                        expected=None if start is None else end - start) from err
                time.sleep(self.backoff * (2 ** attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch(self, start: int, end: int) -> bytes:
        fs, path = self._filesystem()
        kwargs: Dict[str, Any] = {}
        etag = (self._identity or {}).get("etag")
        if self.is_http and etag and etag.startswith("ETag="):
            kwargs["headers"] = {"If-Match": etag[len("ETag="):]}
        with self._count_lock:
            self.requests += 1
        data = fs.cat_file(path, start=start, end=end, **kwargs)
        with self._count_lock:
            self.bytes_received += len(data)
        if len(data) > end - start:
            raise ProxyReadError(
                f"{self.url}: asked for bytes {start}-{end - 1} and got {len(data)} bytes; "
                "the server ignores Range requests, so proxylib cannot read it by range "
                "(download the file instead)", path=self.url, offset=start,
                expected=end - start, found=len(data))
        return data

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
        data = self._with_retries("reading", lambda: self._checked_fetch(offset, end),
                                  offset, end)
        view[:] = data

    def _checked_fetch(self, start: int, end: int) -> bytes:
        data = self._fetch(start, end)
        if len(data) < end - start:  # a cut-off body: worth another try
            raise ConnectionError(f"short body: {len(data)} of {end - start} bytes")
        return data

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
                           self.backoff, self._identity))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def _rebuild(cls: type, url: str, options: Dict[str, Any], retries: int, backoff: float,
             identity: Optional[Dict[str, Any]]) -> "RemoteFile":
    return cls(url, options, retries=retries, backoff=backoff, identity=identity)
