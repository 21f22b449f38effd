"""How one ranged request is made and checked, per kind of filesystem.

A transport answers two questions for :class:`~proxylib.io.remote.RemoteFile`:
``info()`` (size and version of the file) and ``read_into(start, view, ...)``
(one request whose answer is checked by :mod:`.responses` before its body is
copied, chunk by chunk, into the caller's buffer). HTTP goes through the
fsspec filesystem's own aiohttp session (its options, headers and auth
apply); S3 through s3fs's botocore client; any other fsspec filesystem
through ``cat_file``, with only the length checked. Retrying is the caller's
job: a transport raises :class:`.responses.TransientReadError` or a network
exception for what another attempt may cure, and a proxylib error otherwise.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from ...errors import ProxyReadError, RangeIgnoredError, TransientReadError
from .responses import (check_length, check_range,
                        check_version, header, status_error, version_of, where)

#: Seconds to wait for a connection, and for each chunk of an answer, unless the
#: storage options say otherwise (aiohttp's ``client_kwargs={'timeout': ...}``,
#: s3fs's ``config_kwargs={'connect_timeout': ..., 'read_timeout': ...}``).
CONNECT_TIMEOUT = 20.0
READ_TIMEOUT = 30.0
#: Largest chunk copied from a response into the caller's buffer at once.
CHUNK = 1024 * 1024
#: Redirects followed before a URL is called a redirect loop.
MAX_REDIRECTS = 10


def with_default_timeouts(protocol: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """``options`` with connect/read timeouts added where the user set none."""
    options = dict(options)
    if protocol in ("http", "https"):
        client = dict(options.get("client_kwargs") or {})
        if "timeout" not in client and "timeout" not in options:
            import aiohttp
            client["timeout"] = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT,
                                                      sock_read=READ_TIMEOUT)
        options["client_kwargs"] = client
    elif protocol in ("s3", "s3a"):
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("connect_timeout", CONNECT_TIMEOUT)
        config.setdefault("read_timeout", READ_TIMEOUT)
        options["config_kwargs"] = config
    return options


async def _fill(url: str, start: int, read: Any, view: memoryview, skip: int = 0) -> int:
    """Copy a body into ``view`` after dropping ``skip`` bytes; returns bytes received.

    ``read(n)`` returns at most ``n`` bytes (``b''`` at the end). A body that
    ends early is a :class:`TransientReadError`; one with bytes past the range is
    refused. Memory: one chunk at a time.
    """
    received = 0
    while skip:
        chunk = await read(min(CHUNK, skip))
        if not chunk:
            raise TransientReadError(f"the body ended after {received} bytes")
        received += len(chunk)
        skip -= len(chunk)
    filled = 0
    wanted = len(view)
    while filled < wanted:
        chunk = await read(min(CHUNK, wanted - filled))
        if not chunk:
            raise TransientReadError(f"short body: {filled} of {wanted} bytes")
        view[filled:filled + len(chunk)] = chunk
        filled += len(chunk)
        received += len(chunk)
    return received


class HttpTransport:
    """Ranged GETs through an fsspec ``HTTPFileSystem``'s aiohttp session."""

    def __init__(self, fs: Any, url: str) -> None:
        self.fs = fs
        self.url = url

    def _run(self, function: Any, *args: Any) -> Any:
        from fsspec.asyn import sync
        return sync(self.fs.loop, function, *args)

    def _request_options(self, extra: Dict[str, str]) -> Dict[str, Any]:
        options = dict(self.fs.kwargs)
        options["headers"] = {**(options.get("headers") or {}), **extra}
        options.setdefault("max_redirects", MAX_REDIRECTS)
        return options

    def info(self) -> Tuple[int, Optional[str]]:
        return self._run(self._info)

    async def _info(self) -> Tuple[int, Optional[str]]:
        session = await self.fs.set_session()
        options = self._request_options({"Accept-Encoding": "identity"})
        async with session.head(self.fs.encode_url(self.url), allow_redirects=True,
                                **options) as response:
            status, headers = response.status, response.headers
        if status == 200 and header(headers, "Content-Length") is not None:
            return int(header(headers, "Content-Length")), version_of(headers)
        if status not in (200, 405, 501):  # 405/501: no HEAD here, a GET of one byte tells
            raise status_error(self.url, status, "looking up its size")
        options = self._request_options({"Accept-Encoding": "identity", "Range": "bytes=0-0"})
        async with session.get(self.fs.encode_url(self.url), **options) as response:
            status, headers = response.status, response.headers
            response.close()
        found = header(headers, "Content-Range")
        if status == 206 and found and found.rsplit("/", 1)[-1].strip().isdigit():
            return int(found.rsplit("/", 1)[-1]), version_of(headers)
        if status == 200 and header(headers, "Content-Length") is not None:
            return int(header(headers, "Content-Length")), version_of(headers)
        if status in (200, 206):
            raise ProxyReadError(f"{self.url}: the server reports no size for the file "
                                 "(no Content-Length or Content-Range); reading by byte range "
                                 "needs it.", path=self.url)
        raise status_error(self.url, status, "looking up its size")

    def read_into(self, start: int, view: memoryview, version: Optional[str],
                  size: Optional[int], stream: bool) -> int:
        return self._run(self._read_into, start, view, version, size, stream)

    async def _read_into(self, start: int, view: memoryview, version: Optional[str],
                         size: Optional[int], stream: bool) -> int:
        end = start + len(view)
        extra = {"Range": f"bytes={start}-{end - 1}", "Accept-Encoding": "identity"}
        if version and version.startswith("ETag="):
            extra["If-Match"] = version[len("ETag="):]
        session = await self.fs.set_session()
        response = await session.get(self.fs.encode_url(self.url),
                                     **self._request_options(extra))
        try:
            if response.status not in (200, 206):
                raise status_error(self.url, response.status, "reading", start, end,
                                   response.reason or "")
            check_version(self.url, version, version_of(response.headers), start, end)
            if response.status == 200 and stream:  # opted in: read on, keep only the range
                length = header(response.headers, "Content-Length")
                if length is not None and length.isdigit():  # a whole file of another size?
                    check_range(self.url, start, end, 206,
                                {"Content-Range": f"bytes {start}-{end - 1}/{length}"}, size)
                return await _fill(self.url, start, response.content.read, view, skip=start)
            check_range(self.url, start, end, response.status, response.headers, size)
            check_length(self.url, start, end, response.headers)
            received = await _fill(self.url, start, response.content.read, view)
            if (await response.content.read(1)):
                raise RangeIgnoredError(
                    f"{self.url}: asked for{where(start, end)} and the body holds more than "
                    f"{end - start} bytes; proxylib refuses a body longer than the range.",
                    path=self.url, offset=start, expected=end - start)
            return received
        finally:
            response.close()  # never drains the rest: a refused body stops here


class S3Transport:
    """Ranged ``GetObject`` calls through an s3fs filesystem's botocore client."""

    def __init__(self, fs: Any, url: str, path: str) -> None:
        self.fs = fs
        self.url = url
        self.bucket, self.key, self.version_id = fs.split_path(path)

    def _run(self, function: Any, *args: Any) -> Any:
        from fsspec.asyn import sync
        return sync(self.fs.loop, function, *args)

    def _object(self) -> Dict[str, Any]:
        found = {"Bucket": self.bucket, "Key": self.key}
        if self.version_id:
            found["VersionId"] = self.version_id
        return found

    async def _head(self) -> Dict[str, Any]:
        return await self.fs._call_s3("head_object", **self._object())

    def info(self) -> Tuple[int, Optional[str]]:
        answer = self._run(self._head)
        size = answer.get("ContentLength")
        if size is None:
            raise ProxyReadError(f"{self.url}: the store reports no size for the object.",
                                 path=self.url)
        return int(size), version_of({"ETag": answer.get("ETag"),
                                      "Last-Modified": answer.get("LastModified")})

    def read_into(self, start: int, view: memoryview, version: Optional[str],
                  size: Optional[int], stream: bool) -> int:
        return self._run(self._read_into, start, view, version, size)

    async def _read_into(self, start: int, view: memoryview, version: Optional[str],
                         size: Optional[int]) -> int:
        end = start + len(view)
        request = dict(self._object(), Range=f"bytes={start}-{end - 1}")
        if version and version.startswith("ETag="):
            request["IfMatch"] = version[len("ETag="):]
        answer = await self.fs._call_s3("get_object", **request)
        body = answer["Body"]
        try:
            status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode", 206)
            headers = {"Content-Range": answer.get("ContentRange"),
                       "Content-Length": answer.get("ContentLength")}
            check_version(self.url, version, version_of({"ETag": answer.get("ETag"),
                          "Last-Modified": answer.get("LastModified")}), start, end)
            if status == 206 or headers["Content-Range"] is not None:
                check_range(self.url, start, end, 206, headers, size)
            elif len(view) != size:
                check_range(self.url, start, end, status, headers, size)
            check_length(self.url, start, end, headers)
            return await _fill(self.url, start, body.read, view)
        finally:
            body.close()


class FsspecTransport:
    """Any other fsspec filesystem: ``info`` and ``cat_file``, with the length checked."""

    def __init__(self, fs: Any, url: str, path: str) -> None:
        self.fs = fs
        self.url = url
        self.path = path

    def info(self) -> Tuple[int, Optional[str]]:
        info = self.fs.info(self.path)
        if info.get("size") is None:
            raise ProxyReadError(f"{self.url}: the filesystem reports no size for the file; "
                                 "reading by byte range needs it.", path=self.url)
        version = None
        for field in ("ETag", "etag", "Last-Modified", "LastModified", "last_modified",
                      "mtime", "md5", "checksum"):
            if info.get(field) is not None:
                version = f"{field}={info[field]}"
                break
        return int(info["size"]), version

    def read_into(self, start: int, view: memoryview, version: Optional[str],
                  size: Optional[int], stream: bool) -> int:
        end = start + len(view)
        data = self.fs.cat_file(self.path, start=start, end=end)
        if len(data) > end - start:
            raise RangeIgnoredError(
                f"{self.url}: asked for{where(start, end)} and got {len(data)} bytes; "
                "proxylib refuses a body longer than the range.", path=self.url,
                offset=start, expected=end - start, found=len(data))
        if len(data) < end - start:
            raise TransientReadError(f"short body: {len(data)} of {end - start} bytes")
        view[:] = data
        return len(data)


def transport_for(fs: Any, url: str, path: str) -> Any:
    """The transport for an fsspec filesystem: HTTP, S3, or the generic one."""
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    if "http" in protocols or "https" in protocols:
        return HttpTransport(fs, path if "://" in path else url)
    if ("s3" in protocols or "s3a" in protocols) and hasattr(fs, "_call_s3"):
        return S3Transport(fs, url, path)
    return FsspecTransport(fs, url, path)
