"""A real HTTP server on 127.0.0.1 (in a thread) that honours Range requests and
counts what it sends, and that can be told to misbehave the ways real servers,
CDNs and proxies do; used by tests/test_remote*.py and benchmarks/bench_remote*.py.
The tests here check the server itself, so the remote tests' counts can be trusted."""

from __future__ import annotations

import hashlib
import http.client
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, NamedTuple, Optional

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class Request(NamedTuple):
    method: str
    path: str
    range: Optional[str]
    status: int
    body_bytes: int


class RangeServer:
    """Serves ``files`` (name -> bytes) over HTTP/1.1 with ``Range`` and ``If-Match``.

    Attributes
    ----------
    requests : list of Request
        Every request answered (or dropped, status 0).
    drop_next : int
        The next this-many GETs are answered by closing the connection.
    drop_always : bool
        Every GET is dropped.
    ignore_range : bool
        GETs are answered 200 with the whole body, whatever ``Range`` says.
    shift : int
        A ranged GET is answered 206 with the range moved by this many bytes,
        and ``Content-Range`` says so; with ``lie`` set the body starts this
        many bytes late (ends where asked) while ``Content-Range`` names the
        range asked.
    hang : bool
        GETs (``hang_heads``: HEADs) are accepted and never answered, until the
        server stops.
    send_etag, send_last_modified, ignore_if_match : bool
        Which validators are sent, and whether ``If-Match`` is checked.
    last_modified : str
        The Last-Modified value sent for every file (unchanged when content is).
    fail_heads, fail_gets : int
        The next this-many HEADs (GETs) are answered 503.
    swap_after : tuple or None
        ``(n, name, data)``: once ``n`` GETs have been answered, ``files[name]``
        becomes ``data`` (content that changes between the requests of one read).

    A path starting ``loop/`` redirects to itself forever; one starting
    ``forbidden/`` is answered 403.
    """

    def __init__(self, files: Optional[Dict[str, bytes]] = None) -> None:
        self.files: Dict[str, bytes] = dict(files or {})
        self.requests: List[Request] = []
        self.lock = threading.Lock()
        self.drop_next = 0
        self.drop_always = False
        self.ignore_range = False
        self.shift = 0
        self.lie = False
        self.hang = False
        self.hang_heads = False
        self.send_etag = True
        self.send_last_modified = False
        self.ignore_if_match = False
        self.last_modified = "Wed, 01 Jan 2025 00:00:00 GMT"
        self.fail_heads = 0
        self.fail_gets = 0
        self.swap_after: Optional[tuple] = None
        self.stopping = threading.Event()
        self._etags: Dict[str, tuple] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms Nagle + delayed-ACK stalls

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self._answer(head=True)

            def do_GET(self):
                self._answer(head=False)

            def _answer(self, head: bool) -> None:
                name = self.path.lstrip("/").split("?")[0]
                rng = self.headers.get("Range")
                if not head and server._should_drop():
                    server._log(self.command, name, rng, 0, 0)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if (server.hang and not head) or (server.hang_heads and head):
                    server._log(self.command, name, rng, 0, 0)
                    server.stopping.wait(60)  # bounded: the test's client gives up first
                    self.close_connection = True
                    return
                if server._take_failure(head):
                    self._send(503, b"busy", rng, head)
                    return
                if name.startswith("loop/"):
                    self.send_response(302)
                    self.send_header("Location", self.path)
                    self.send_header("Content-Length", "0")
                    server._log(self.command, name, rng, 302, 0)
                    self.end_headers()
                    return
                if name.startswith("forbidden/"):
                    self._send(403, b"forbidden", rng, head)
                    return
                data = server.files.get(name)
                if data is None:
                    self._send(404, b"not found", rng, head)
                    return
                etag = server.etag(name)
                match = self.headers.get("If-Match")
                if match is not None and match != etag and not server.ignore_if_match:
                    self._send(412, b"precondition failed", rng, head)
                    return
                status, start, end = 200, 0, len(data)
                said = None
                if rng and not server.ignore_range:
                    found = _RANGE.match(rng.strip())
                    if not found:
                        self._send(416, b"bad range", rng, head)
                        return
                    start = int(found.group(1))
                    end = min(len(data), int(found.group(2)) + 1) if found.group(2) else len(data)
                    if start >= len(data):
                        self._send(416, b"range not satisfiable", rng, head)
                        return
                    status = 206
                    said = (start, end)
                    if server.shift and server.lie:
                        start = min(end - 1, start + server.shift)
                    elif server.shift:
                        start = max(0, min(len(data) - 1, start + server.shift))
                        end = max(start + 1, min(len(data), end + server.shift))
                        said = (start, end)
                body = memoryview(data)[start:end]
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Accept-Ranges", "bytes")
                if server.send_etag:
                    self.send_header("ETag", etag)
                if server.send_last_modified:
                    self.send_header("Last-Modified", server.last_modified)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {said[0]}-{said[1] - 1}/{len(data)}")
                # logged before the headers go out, so a client that has its answer
                # (or refused it on its headers) always finds the request counted
                server._log(self.command, name, rng, status, 0 if head else len(body))
                self.end_headers()
                if not head:
                    server._count_get_and_maybe_swap()
                    try:
                        self.wfile.write(body)
                    except (ConnectionError, OSError):  # the client stopped the transfer
                        self.close_connection = True

            def _send(self, status: int, body: bytes, rng, head: bool) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                server._log(self.command, self.path, rng, status, 0 if head else len(body))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def etag(self, name: str) -> str:
        data = self.files[name]
        cached = self._etags.get(name)
        if cached is None or cached[0] is not data:  # hash each content once, not per request
            cached = self._etags[name] = (data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"')
        return cached[1]

    def _should_drop(self) -> bool:
        with self.lock:
            if self.drop_always:
                return True
            if self.drop_next > 0:
                self.drop_next -= 1
                return True
            return False

    def _take_failure(self, head: bool) -> bool:
        name = "fail_heads" if head else "fail_gets"
        with self.lock:
            if getattr(self, name) > 0:
                setattr(self, name, getattr(self, name) - 1)
                return True
            return False

    def _count_get_and_maybe_swap(self) -> None:
        with self.lock:
            self._answered = getattr(self, "_answered", 0) + 1
            if self.swap_after is not None and self._answered >= self.swap_after[0]:
                _, name, data = self.swap_after
                self.files[name] = data
                self.swap_after = None

    def _log(self, method, path, rng, status, nbytes) -> None:
        with self.lock:
            self.requests.append(Request(method, path, rng, status, nbytes))

    # -- what tests look at ------------------------------------------------------
    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{name}"

    @property
    def bytes_sent(self) -> int:
        with self.lock:
            return sum(r.body_bytes for r in self.requests)

    def gets(self) -> List[Request]:
        with self.lock:
            return [r for r in self.requests if r.method == "GET"]

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()

    def watch_header(self, name: str) -> List[Optional[str]]:
        """A list that receives header ``name`` of every request from now on (None if absent)."""
        seen: List[Optional[str]] = []
        handler = self.httpd.RequestHandlerClass
        original = handler.parse_request

        def spy(request):
            ok = original(request)
            seen.append(request.headers.get(name))
            return ok
        handler.parse_request = spy
        return seen

    def __enter__(self) -> "RangeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def refused_url(name: str = "x.nii") -> str:
    """A loopback URL whose port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


# -- the server's own behaviour ------------------------------------------------------
def _get(server: RangeServer, name: str, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.httpd.server_port, timeout=5)
    conn.request("GET", "/" + name, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def test_server_honours_ranges_and_counts_bytes():
    data = bytes(range(256)) * 40
    with RangeServer({"f.bin": data}) as server:
        response, body = _get(server, "f.bin", {"Range": "bytes=10-19"})
        assert response.status == 206 and body == data[10:20]
        assert response.getheader("Content-Range") == f"bytes 10-19/{len(data)}"
        response, body = _get(server, "f.bin")
        assert response.status == 200 and body == data
        assert server.bytes_sent == 10 + len(data)
        assert [r.status for r in server.gets()] == [206, 200]
        response, _ = _get(server, "f.bin", {"If-Match": '"other"'})
        assert response.status == 412
        response, _ = _get(server, "missing")
        assert response.status == 404


def test_server_drops_connections_when_told():
    with RangeServer({"f.bin": b"x" * 100}) as server:
        server.drop_next = 1
        try:
            _get(server, "f.bin")
        except (http.client.HTTPException, ConnectionError):
            pass
        else:  # pragma: no cover
            raise AssertionError("the connection was not dropped")
        response, body = _get(server, "f.bin")
        assert body == b"x" * 100


def test_server_misbehaves_when_told():
    data = bytes(range(256)) * 40
    with RangeServer({"f.bin": data}) as server:
        server.shift = 5
        response, body = _get(server, "f.bin", {"Range": "bytes=10-19"})
        assert response.status == 206 and body == data[15:25]
        assert response.getheader("Content-Range") == f"bytes 15-24/{len(data)}"
        server.lie = True
        response, body = _get(server, "f.bin", {"Range": "bytes=10-19"})
        assert body == data[15:20]
        assert response.getheader("Content-Range") == f"bytes 10-19/{len(data)}"
        server.shift, server.lie = 0, False
        server.ignore_range = True
        response, body = _get(server, "f.bin", {"Range": "bytes=10-19"})
        assert response.status == 200 and body == data
        server.ignore_range = False
        server.send_etag, server.send_last_modified = False, True
        response, _ = _get(server, "f.bin", {"Range": "bytes=0-0"})
        assert response.getheader("ETag") is None
        assert response.getheader("Last-Modified") == server.last_modified
        server.ignore_if_match = True
        response, _ = _get(server, "f.bin", {"If-Match": '"other"'})
        assert response.status == 200
        server.swap_after = (1, "f.bin", b"y" * len(data))
        _get(server, "f.bin", {"Range": "bytes=0-0"})
        assert _get(server, "f.bin", {"Range": "bytes=0-1"})[1] == b"yy"
        server.fail_heads = 1
        conn = http.client.HTTPConnection("127.0.0.1", server.httpd.server_port, timeout=5)
        conn.request("HEAD", "/f.bin")
        assert conn.getresponse().status == 503
        conn.close()
        server.fail_gets = 1
        assert _get(server, "f.bin")[0].status == 503
        response, _ = _get(server, "loop/f.bin")
        assert response.status == 302 and response.getheader("Location") == "/loop/f.bin"
        assert _get(server, "forbidden/f.bin")[0].status == 403


def test_server_hangs_and_refused_port_refuses():
    with RangeServer({"f.bin": b"x"}) as server:
        server.hang = True
        conn = http.client.HTTPConnection("127.0.0.1", server.httpd.server_port, timeout=0.3)
        conn.request("GET", "/f.bin")
        try:
            conn.getresponse()
        except socket.timeout:
            pass
        else:  # pragma: no cover
            raise AssertionError("the server answered")
        finally:
            conn.close()
    url = refused_url()
    host, port = url.split("/")[2].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        pass
    else:  # pragma: no cover
        raise AssertionError("something listens on the refused port")
