"""A real HTTP server on 127.0.0.1 (in a thread) that honours Range requests and
counts what it sends; used by tests/test_remote.py and benchmarks/bench_remote.py.
The tests here check the server itself, so the remote tests' counts can be trusted."""

from __future__ import annotations

import hashlib
import http.client
import re
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
    """

    def __init__(self, files: Optional[Dict[str, bytes]] = None) -> None:
        self.files: Dict[str, bytes] = dict(files or {})
        self.requests: List[Request] = []
        self.lock = threading.Lock()
        self.drop_next = 0
        self.drop_always = False
        self.ignore_range = False
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
                data = server.files.get(name)
                if data is None:
                    self._send(404, b"not found", rng, head)
                    return
                etag = server.etag(name)
                match = self.headers.get("If-Match")
                if match is not None and match != etag:
                    self._send(412, b"precondition failed", rng, head)
                    return
                status, start, end = 200, 0, len(data)
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
                body = data[start:end]
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                self.end_headers()
                # logged before the body goes out, so a client that has its bytes
                # always finds the request counted
                server._log(self.command, name, rng, status, 0 if head else len(body))
                if not head:
                    self.wfile.write(body)

            def _send(self, status: int, body: bytes, rng, head: bool) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                server._log(self.command, self.path, rng, status, 0 if head else len(body))
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

    def __enter__(self) -> "RangeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


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
