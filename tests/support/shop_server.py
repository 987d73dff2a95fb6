"""A shop's web server on 127.0.0.1 for the tests: product feeds and their images, with the
faults real shops' servers have, and a log of what was asked and what was sent.

Files are served with an ETag and Last-Modified and answer conditional requests with 304, as
a CDN does. Fault paths (``/faults/...``) misbehave on purpose: see :data:`FAULTS`.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = {
    "/faults/missing.jpg": "404",
    "/faults/flaky.jpg": "500 on the first request, then the image",
    "/faults/busy.jpg": "429 with Retry-After: 1 on the first request, then the image",
    "/faults/slow.jpg": "the image after 0.4 s",
    "/faults/stalled.jpg": "nothing for 5 s (past the client's timeout)",
    "/faults/wrong-type.jpg": "the image, labelled text/plain",
    "/faults/page.jpg": "an HTML page, labelled text/html",
    "/faults/page-as-jpeg.jpg": "an HTML page, labelled image/jpeg",
    "/faults/huge.jpg": "a 30 MB body with its Content-Length",
    "/faults/huge-chunked.jpg": "a 30 MB body, chunked, no Content-Length",
    "/faults/moved.jpg": "302 to /images/moved-target.jpg",
    "/faults/loop.jpg": "302 to itself, forever",
}
HTML_PAGE = b"<!doctype html><html><body><h1>Our new collection</h1></body></html>"


@dataclass
class ShopServer:
    base_url: str
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    """Path → (body, content type) of the files it serves."""
    requests: Counter = field(default_factory=Counter)
    """Path → requests received."""
    bodies_sent: Counter = field(default_factory=Counter)
    """Path → responses with a body (200), as opposed to 304 and errors."""
    fault_image: bytes = b""
    """What the fault paths that end up serving an image serve."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def serve(self, path: str, body: bytes, content_type: str) -> str:
        """Serve ``body`` at ``path`` from now on; returns its URL."""
        with self._lock:
            self.files[path] = (body, content_type)
        return self.url(path)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bodies_sent.clear()

    def downloaded(self) -> int:
        """Responses that carried a body since the last :meth:`reset_counts`."""
        return sum(self.bodies_sent.values())


def _handler(shop: ShopServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep the test output clean
            pass

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            with shop._lock:
                shop.requests[path] += 1
                seen = shop.requests[path]
            if path.startswith("/faults/"):
                self._fault(path, seen)
            elif path in shop.files:
                self._file(path, *shop.files[path])
            else:
                self._status(404)

        def _fault(self, path: str, seen: int) -> None:
            image = shop.fault_image
            if path == "/faults/flaky.jpg" and seen == 1:
                self._status(500)
            elif path == "/faults/busy.jpg" and seen == 1:
                self._status(429, {"Retry-After": "1"})
            elif path in ("/faults/flaky.jpg", "/faults/busy.jpg"):
                self._file(path, image, "image/jpeg")
            elif path == "/faults/slow.jpg":
                time.sleep(0.4)
                self._file(path, image, "image/jpeg")
            elif path == "/faults/stalled.jpg":
                time.sleep(5)
                self._status(504)
            elif path == "/faults/wrong-type.jpg":
                self._file(path, image, "text/plain")
            elif path == "/faults/page.jpg":
                self._file(path, HTML_PAGE, "text/html; charset=utf-8")
            elif path == "/faults/page-as-jpeg.jpg":
                self._file(path, HTML_PAGE, "image/jpeg")
            elif path == "/faults/huge.jpg":
                self._file(path, b"\xff" * (30 * 1024 * 1024), "image/jpeg")
            elif path == "/faults/huge-chunked.jpg":
                self._chunked(b"\xff" * (30 * 1024 * 1024), "image/jpeg")
            elif path == "/faults/moved.jpg":
                self._status(302, {"Location": "/images/moved-target.jpg"})
            elif path == "/faults/loop.jpg":
                self._status(302, {"Location": "/faults/loop.jpg"})
            else:
                self._status(404)

        def _file(self, path: str, body: bytes, content_type: str) -> None:
            etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
            if self.headers.get("If-None-Match") == etag:
                self._status(304, {"ETag": etag})
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", formatdate(0, usegmt=True))
            self.end_headers()
            with shop._lock:
                shop.bodies_sent[path] += 1
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
                self.wfile.write(body)

        def _chunked(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for start in range(0, len(body), 1024 * 1024):
                    chunk = body[start : start + 1024 * 1024]
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _status(self, code: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@contextmanager
def shop_server() -> Iterator[ShopServer]:
    """A running shop server on a free port of 127.0.0.1."""
    shop = ShopServer("")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(shop))
    server.daemon_threads = True
    shop.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        server.shutdown()
        server.server_close()
