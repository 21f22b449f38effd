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
* **Bounded retries.** A failed request is retried :data:`RETRIES` times
  with exponential back-off; then :class:`~proxylib.ProxyReadError` names
  the URL and the byte range. A missing file or a refused request is not
  retried. A file whose ETag changed answers ``412`` to the ``If-Match``
  sent with every HTTP range request and gives
  :class:`~proxylib.FileChangedError`.
* **gzip over the network** (:class:`RemoteGzipFile`): ``indexed_gzip`` seeks
  in the compressed stream, reading compressed bytes by range; its seek index
  is saved in the local cache (:mod:`proxylib.io.index_cache`) under an
  identity made of URL, ETag (or Last-Modified) and size, so a later process
  (a dask worker) jumps straight to the volume it needs.

:func:`load_url` is what ``proxylib.load(url)`` calls; :func:`open_url` gives
the file object (for ``ArrayProxy(open_url(url), spec)``).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Tuple, Union

from ..errors import (FileChangedError, HeaderError, ProxyReadError, TruncatedFileError,
                      CorruptDataError)
from ..indexing.plan import CostModel
from .sources import ByteSource, _byte_view

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
        if whence == 0:
            pos = offset
        elif whence == 1:
            pos = self._pos + offset
        elif whence == 2:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

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


class _CompressedReader:
    """Sequential file-like view of a RemoteFile for indexed_gzip (own position)."""

    def __init__(self, remote: RemoteFile) -> None:
        self.remote = remote
        self.pos = 0
        self._block: Tuple[int, bytes] = (0, b"")
        self.name = remote.url
        self.mode = "rb"
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.remote.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, size: int = -1) -> bytes:
        total = self.remote.size
        remaining = max(0, total - self.pos)
        size = remaining if size is None or size < 0 else min(size, remaining)
        if size == 0:
            return b""
        start, block = self._block
        if not (start <= self.pos and self.pos + size <= start + len(block)):
            # one request per GZIP_READ_SIZE, kept: indexed_gzip re-reads the
            # block around a seek point when it restarts there
            start = self.pos
            block = bytearray(min(max(size, GZIP_READ_SIZE), total - start))
            self.remote.read_at(start, block)
            block = bytes(block)
            self._block = (start, block)
        data = block[self.pos - start:self.pos - start + size]
        self.pos += size
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(_byte_view(buffer)))
        _byte_view(buffer)[:len(data)] = data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class RemoteGzipFile(RemoteFile):
    """The decompressed content of a remote ``.gz`` file, seekable through a saved index.

    Positions and sizes are in uncompressed bytes except :attr:`compressed_size`.
    One lock serializes decompression (one ``indexed_gzip`` reader per object
    and process); the index is imported from and saved to the local cache.
    """

    def __init__(self, url: str, storage_options: Optional[Dict[str, Any]] = None,
                 **kwargs: Any) -> None:
        super().__init__(url, storage_options, **kwargs)
        self._zran: Any = None
        self._zlock = threading.RLock()
        self._saved_points = 0
        self._complete = False
        from .gzip import INDEX_SPACING
        self.cost = CostModel(gap_threshold=max(INDEX_SPACING, REMOTE_COST.gap_threshold),
                              block_size=REMOTE_COST.block_size)

    @property
    def compressed_size(self) -> int:
        return super().size

    @property
    def size(self) -> int:  # type: ignore[override]
        with self._zlock:
            zran = self._indexed()
            if not self._complete:
                self._wrap(lambda: zran.build_full_index(), 0)
                self._complete = True
                self._save(force=True)
            return self._wrap(lambda: zran.seek(0, os.SEEK_END), 0)

    def index_identity(self) -> Any:
        """The :class:`~proxylib.io.index_cache.FileIdentity` the saved index is filed under."""
        from .index_cache import FileIdentity
        identity = self.identity()
        tag = hashlib.sha256(f"{identity['url']}\n{identity['etag']}".encode()).hexdigest()
        return FileIdentity(size=identity["size"], mtime_ns=0, edges_sha256=tag)

    def _new_zran(self) -> Any:
        from indexed_gzip.indexed_gzip import _IndexedGzipFile
        from .gzip import INDEX_SPACING
        return _IndexedGzipFile(fileobj=_CompressedReader(self._as_plain(self)),
                                spacing=INDEX_SPACING, readbuf_size=GZIP_READ_SIZE,
                                auto_build=True, skip_crc_check=False)

    def _indexed(self) -> Any:
        if self._zran is None:
            from . import index_cache
            self._zran = self._new_zran()
            saved = index_cache.load_index(self.index_identity())
            if saved is not None:
                try:
                    self._zran.import_index(fileobj=io.BytesIO(saved.payload))
                    self._saved_points = self._zran.npoints
                    self._complete = saved.complete
                except Exception:  # a damaged index is never trusted: rebuild
                    index_cache.discard_index(self.index_identity())
                    self._zran = self._new_zran()
        return self._zran

    def _save(self, force: bool = False) -> None:
        from . import index_cache
        zran = self._zran
        if zran is None or zran.npoints == 0:
            return
        # Saved whenever it grew: a remote restart costs a download, far more
        # than rewriting a small index file.
        if not (force or zran.npoints > self._saved_points):
            return
        buffer = io.BytesIO()
        zran.export_index(fileobj=buffer)
        index_cache.save_index(self.index_identity(), buffer.getvalue(), spacing=zran.spacing,
                               points=zran.npoints, complete=self._complete)
        self._saved_points = zran.npoints

    def _wrap(self, call: Any, offset: int) -> Any:
        try:
            return call()
        except ProxyReadError:
            raise
        except Exception as err:
            self._zran = None  # its state after a failed inflate is not to be trusted
            cause = err.__cause__ or err.__context__
            if isinstance(cause, ProxyReadError):
                raise cause from err
            raise CorruptDataError(
                f"{self.url}: cannot decompress the gzip data at uncompressed offset "
                f"{offset}: {type(err).__name__}: {err}", path=self.url, offset=offset) from err

    def read_at(self, offset: int, buffer: Any) -> None:
        view = _byte_view(buffer)
        wanted = len(view)
        if wanted == 0:
            return
        with self._zlock:
            zran = self._indexed()
            done = 0

            def fill() -> int:
                zran.seek(offset)
                got_total = 0
                while got_total < wanted:
                    got = zran.readinto(view[got_total:])
                    if not got:
                        break
                    got_total += got
                return got_total

            done = self._wrap(fill, offset)
            self._save()
        if done < wanted:
            raise TruncatedFileError(
                f"{self.url}: the gzip stream ends at uncompressed offset {offset + done} "
                f"but bytes up to {offset + wanted} were needed; the file is shorter than "
                "its header says", path=self.url, offset=offset, expected=wanted, found=done)

    def readinto(self, buffer: Any) -> int:
        view = _byte_view(buffer)
        if not len(view):
            return 0
        with self._zlock:
            zran = self._indexed()

            def fill() -> int:
                zran.seek(self._pos)
                return zran.readinto(view)

            got = self._wrap(fill, self._pos)
            self._save()
            self._pos += got
            return got

    def build_index(self) -> None:
        """Read the whole compressed file once and save its complete seek index."""
        self.size  # noqa: B018 - builds and saves

    def __dask_tokenize__(self) -> Any:
        return ("proxylib.RemoteGzipFile",) + super().__dask_tokenize__()[1:]

    @staticmethod
    def _as_plain(remote: "RemoteFile") -> RemoteFile:
        """A plain RemoteFile sharing the URL, options and identity (compressed bytes)."""
        plain = RemoteFile(remote.url, remote.storage_options, retries=remote.retries,
                           backoff=remote.backoff, identity=remote._identity)
        plain._fs, plain._path = remote._filesystem()
        plain._identity = remote._identity
        remote._plain = plain
        return plain

    @property
    def requests_made(self) -> int:
        plain = getattr(self, "_plain", None)
        return self.requests + (plain.requests if plain is not None else 0)

    @property
    def compressed_bytes_received(self) -> int:
        plain = getattr(self, "_plain", None)
        return self.bytes_received + (plain.bytes_received if plain is not None else 0)


# -- opening ---------------------------------------------------------------------
def open_url(url: Any, storage_options: Optional[Dict[str, Any]] = None, *,
             retries: int = RETRIES, backoff: float = BACKOFF) -> RemoteFile:
    """A :class:`RemoteFile` (or :class:`RemoteGzipFile` for gzip data) for a URL.

    ``url`` may also be an open fsspec file or ``fsspec.core.OpenFile``; its
    filesystem's protocol and options are reused. One metadata request (size,
    ETag) and one 2-byte request (gzip magic) are made.
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
    plain = RemoteFile(url, storage_options, retries=retries, backoff=backoff)
    if plain.prefetch_head()[:2] == GZIP_MAGIC:
        gz = RemoteGzipFile(url, storage_options, retries=retries, backoff=backoff,
                            identity=plain._identity)
        gz._fs, gz._path = plain._fs, plain._path
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
        """Issue the runs' range requests concurrently (each still retried on its own)."""
        if len(offsets) <= 1:
            return super().readinto_runs(offsets, buffers)
        futures = [_request_pool().submit(self.remote.read_at, offset, buffer)
                   for offset, buffer in zip(offsets, buffers)]
        for future in futures:
            future.result()


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


class RemoteOpener:
    """Handle policy of a remote file: there are no handles, only requests.

    Plugs into :func:`proxylib.io.opening.make_opener` (see
    :func:`remote_opener_for`) so that proxies on URLs read without the
    per-object lock file objects need; pickles as its :class:`RemoteFile`.
    """

    keep_open = False

    def __init__(self, remote: RemoteFile) -> None:
        self.remote = remote
        self._source = RemoteSource(remote)

    @contextmanager
    def source(self) -> Iterator[ByteSource]:
        yield self._source

    @contextmanager
    def opened(self) -> Iterator[None]:
        yield None

    @property
    def is_open(self) -> bool:
        return False

    def remember_current_file(self) -> None:
        self.remote.identity()

    def identity(self) -> Any:
        return self.remote.__dask_tokenize__()

    def close(self) -> None:
        pass

    def clone(self) -> "RemoteOpener":
        return RemoteOpener(self.remote)

    def __getstate__(self) -> dict:
        return {"remote": self.remote}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["remote"])


def remote_opener_for(file_like: Any) -> Optional[RemoteOpener]:
    """The opener for a URL, an fsspec file or a RemoteFile; None for anything else."""
    if isinstance(file_like, RemoteFile):
        return RemoteOpener(file_like)
    if is_url(file_like) or is_fsspec_file(file_like):
        return RemoteOpener(open_url(file_like))
    return None


# -- images -------------------------------------------------------------------------
def load_url(url: Any, *, mmap: Union[bool, str] = True, keep_file_open: Optional[bool] = None,
             storage_options: Optional[Dict[str, Any]] = None) -> Any:
    """``proxylib.load`` for a URL or an open fsspec file: header now, data by range.

    Reads the header (one request for a plain file, one or two for gzip) and
    returns a NIfTI image whose ``dataobj`` proxy reads only the ranges keys
    need. Single files (``.nii``, ``.nii.gz``) and pairs (``.hdr`` + ``.img``).
    """
    from ..arrayproxy import ArrayProxy
    from ..formats.niftiimage import read_header
    from ..images import FileHolder
    from ..loading import SNIFF_BYTES, sniff_class
    from ..spec import ArraySpec

    header_file = open_url(url, storage_options)
    name = header_file.url
    header_file.seek(0)
    block = header_file.read(SNIFF_BYTES)
    image_class = sniff_class(block, name)
    holder = FileHolder(fileobj=header_file)
    header = read_header(image_class.header_class, holder)
    if header.is_single:
        data_file = header_file
    else:
        data_file = open_url(_pair_image_url(name), storage_options)
    if not isinstance(data_file, RemoteGzipFile):
        header.check_data_size(data_file.size, path=data_file.url)
    slope, inter = header.get_slope_inter()
    spec = ArraySpec(header.get_data_shape(), header.get_data_dtype(),
                     offset=header.get_data_offset(), order="F", slope=slope, inter=inter)
    proxy = ArrayProxy(data_file, spec, mmap=mmap, keep_file_open=keep_file_open,
                       cost=data_file.cost)
    file_map = {"header": holder, "image": FileHolder(fileobj=data_file)}
    return image_class(proxy, header.get_best_affine(), header=header, file_map=file_map)


def _pair_image_url(header_url: str) -> str:
    stem, dot, suffix = header_url.rpartition(".")
    compressed = suffix.lower() == "gz"
    if compressed:
        stem, dot, suffix = stem.rpartition(".")
    if suffix.lower() != "hdr":
        raise HeaderError(f"{header_url}: the header says the data is in a separate .img "
                          "file, but the URL does not end in .hdr[.gz]", path=header_url)
    return stem + ".img" + (".gz" if compressed else "")


__all__ = ["RemoteFile", "RemoteGzipFile", "RemoteSource", "RemoteOpener", "REMOTE_COST",
           "RETRIES", "BACKOFF", "open_url", "load_url", "remote_opener_for", "is_url",
           "is_fsspec_file"]
