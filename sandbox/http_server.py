"""A small threaded WSGI server that keeps HTTP/1.1 connections open, with optional TLS.

Werkzeug's development server closes every connection after one response (and then waits
10 ms for stray bytes), so every call a client made paid a TCP and a TLS handshake: the
emulators cost their clients far more than Salesforce or WHMCS do, and benchmarks measured
the emulator. Real services keep connections alive; so does this: one thread per connection,
requests read exactly (Content-Length or chunked), responses sent with their length, the
connection kept until the client closes it, asks to, or stays idle for `IDLE_SECONDS`.
TLS handshakes happen in the connection's thread, never in the accept loop.

Responses are buffered whole: the emulators' answers are small, and a length up front is what
lets the connection be reused.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import unquote

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
#: An idle keep-alive connection is closed after this long (its thread ends with it).
IDLE_SECONDS = 60
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


class KeepAliveServer(ThreadingMixIn, HTTPServer):
    """Serves `app` on (host, port); TLS when `ssl_context` is given."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, host: str, port: int, app: WsgiApp, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.host = host
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        super().__init__((host, port), _Handler)
        self.port = self.server_address[1]

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections.add(request)
        try:
            # Without it, a response's last segment waits for the client's delayed ACK of the
            # one before (Nagle's algorithm): 40 ms per call on Linux, the emulators' whole
            # latency. Real services, and our clients (urllib3), set it too.
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                request.settimeout(IDLE_SECONDS)
                request = self.ssl_context.wrap_socket(request, server_side=True)
            super().finish_request(request, client_address)
        finally:
            with self._lock:
                self._connections.discard(request)

    def server_close(self) -> None:
        """Stop listening and hang up on every kept-alive connection: a stopped emulator must
        not go on answering through connections its clients pooled."""
        super().server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request or rejects our certificate is not our bug.
        log.debug("connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    #: Buffered, so a response's headers and body leave in one write (one TLS record, one
    #: segment) on `flush()`, not two.
    wbufsize = 64 * 1024
    server: KeepAliveServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            self.send_error(400, "unreadable body")
            self.close_connection = True
            return
        status, headers, payload = self._call_app(body)
        code, _, reason = status.partition(" ")
        self.send_response_only(int(code), reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        while True:
            try:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            except ValueError:
                return None
            if size == 0:
                while self.rfile.readline().strip():  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _call_app(self, body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        started: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            started["status"], started["headers"] = status, headers
            return lambda data: None  # the write() callable; our apps return their body

        result = self.server.app(self._environ(body), start_response)
        try:
            payload = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return started["status"], started["headers"], payload

    def _environ(self, body: bytes) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": self.server.host,
            "SERVER_PORT": str(self.server.port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if self.server.ssl_context else "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError, ssl.SSLError):
            self.close_connection = True
