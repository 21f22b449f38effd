"""Checks on every remote response before any of its bytes is used.

Pure functions over a status code and a header mapping, shared by the HTTP
and S3 transports: which version of the file a response came from, whether a
ranged answer covers exactly the range asked, and what a failing status
means (retry, or a named permanent error).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Tuple

from ...errors import (FileAccessError, FileChangedError, MissingFileError, ProxyReadError,
                       RangeIgnoredError, TransientReadError)

_CONTENT_RANGE = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def where(start: Optional[int], end: Optional[int]) -> str:
    """`` bytes a-b`` for messages (``end`` exclusive), or nothing."""
    return "" if start is None or end is None else f" bytes {start}-{end - 1}"


def header(headers: Mapping[str, Any], name: str) -> Optional[str]:
    """A header's value by case-insensitive name (aiohttp and botocore spell them differently)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, found in headers.items():
            if key.lower() == lowered:
                value = found
                break
    return None if value is None else str(value)


def version_of(headers: Mapping[str, Any]) -> Optional[str]:
    """What tells versions of the file apart: ``ETag=...``, else ``Last-Modified=...``."""
    etag = header(headers, "ETag")
    if etag:
        # a weak validator of the same entity keeps its opaque part
        return "ETag=" + (etag[2:] if etag.startswith("W/") else etag)
    modified = header(headers, "Last-Modified")
    return f"Last-Modified={modified}" if modified else None


def parse_content_range(value: Optional[str]) -> Optional[Tuple[int, int, Optional[int]]]:
    """``(first, last, total)`` of a ``Content-Range: bytes first-last/total`` value."""
    if value is None:
        return None
    found = _CONTENT_RANGE.match(value)
    if found is None:
        return None
    total = None if found.group(3) == "*" else int(found.group(3))
    return int(found.group(1)), int(found.group(2)), total


def check_version(url: str, first_seen: Optional[str], seen: Optional[str],
                  start: Optional[int], end: Optional[int]) -> None:
    """FileChangedError unless a response's version is the one first seen.

    A response that carries no validator at all cannot be compared and
    passes; one that carries a different ETag (or Last-Modified) does not,
    whether or not the server honoured the ``If-Match`` it was sent.
    """
    if first_seen is None or seen is None or seen == first_seen:
        return
    kind = first_seen.split("=", 1)[0]
    if not seen.startswith(kind + "="):
        return  # e.g. a CDN that strips ETag but keeps Last-Modified: nothing comparable
    raise FileChangedError(
        f"{url}: the file changed on the server while it was being read: the answer for"
        f"{where(start, end)} has {seen}, but the file was first seen with {first_seen}. "
        "Load it again to read the new version.", path=url, offset=start)


def check_range(url: str, start: int, end: int, status: int,
                headers: Mapping[str, Any], size: Optional[int]) -> None:
    """Raise unless a ``206`` whose ``Content-Range`` is exactly ``start``..``end - 1``.

    ``200`` means the server ignored ``Range`` (the caller decides whether to
    refuse or stream); any other ranged answer is a :class:`RangeIgnoredError`,
    except a total size that differs from the one first seen, which means the
    file was replaced (:class:`~proxylib.FileChangedError`).
    """
    asked = f"bytes {start}-{end - 1}"
    if status == 200:
        raise RangeIgnoredError(
            f"{url}: asked for {asked} and the server sent the whole file instead (status "
            "200, it ignores Range requests). proxylib stopped the transfer; open the URL "
            "with open_url(url, ignored_range='stream') to read such a server as a stream.",
            path=url, offset=start, expected=end - start)
    if status != 206:
        raise RangeIgnoredError(
            f"{url}: asked for {asked} and the server answered with status {status} instead "
            "of 206 Partial Content.", path=url, offset=start, expected=end - start)
    raw = header(headers, "Content-Range")
    parsed = parse_content_range(raw)
    if parsed is None:
        raise RangeIgnoredError(
            f"{url}: asked for {asked} and the 206 answer has "
            f"{'no Content-Range header' if raw is None else f'Content-Range {raw!r}'}, "
            "so proxylib cannot tell which bytes it holds.", path=url, offset=start,
            expected=end - start)
    first, last, total = parsed
    if size is not None and total is not None and total != size:
        raise FileChangedError(
            f"{url}: the file changed on the server: the answer for {asked} says the file "
            f"holds {total} bytes, but it held {size} when first seen. Load it again to read "
            "the new version.", path=url, offset=start, expected=size, found=total)
    if (first, last) != (start, end - 1):
        raise RangeIgnoredError(
            f"{url}: asked for {asked} and the server sent bytes {first}-{last} (Content-Range "
            f"{raw!r}); proxylib refuses to use a range it did not ask for.", path=url,
            offset=start, expected=end - start, found=last - first + 1)


def check_length(url: str, start: int, end: int, headers: Mapping[str, Any]) -> None:
    """A ``Content-Length`` that disagrees with the range asked is refused before reading."""
    raw = header(headers, "Content-Length")
    if raw is not None and raw.strip().isdigit() and int(raw) != end - start:
        raise RangeIgnoredError(
            f"{url}: asked for{where(start, end)} ({end - start} bytes) and the answer's "
            f"Content-Length is {raw}; proxylib refuses a body of another length.",
            path=url, offset=start, expected=end - start, found=int(raw))


def status_error(url: str, status: int, doing: str, start: Optional[int] = None,
                 end: Optional[int] = None, reason: str = "") -> Exception:
    """The error a failing status means: permanent ones named, others transient."""
    span = where(start, end)
    detail = f" ({reason})" if reason else ""
    if status == 404 or status == 410:
        return MissingFileError(f"{url}: the file was not found on the server (status "
                                f"{status}{detail}) while {doing}{span}.", path=url,
                                offset=start)
    if status in (401, 403):
        return FileAccessError(f"{url}: the server refused access (status {status}{detail}) "
                               f"while {doing}{span}; check the credentials or permissions.",
                               path=url, offset=start)
    if status == 412:
        return FileChangedError(f"{url}: the file changed on the server since it was first "
                                f"seen (status 412, its ETag no longer matches) while {doing}"
                                f"{span}. Load it again to read the new version.", path=url,
                                offset=start)
    if status >= 500 or status in (408, 429):
        # wrapped by the retry loop, whose final message names URL and range
        return TransientReadError(f"the server answered status {status}{detail}", path=url,
                                  offset=start)
    return ProxyReadError(f"{url}: the server answered status {status}{detail} while {doing}"
                          f"{span}.", path=url, offset=start)
