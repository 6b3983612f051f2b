"""A small, strict SSE client over a raw socket, and a gunicorn web process to point it at.

Raw sockets let tests do what browsers do (and what misbehaving clients do): read events as
they arrive, stop reading, vanish without a word, and see exactly when the server hangs up.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from sandbox.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Event:
    type: str | None = None
    id: str | None = None
    data: str | None = None
    comment: str | None = None
    retry: int | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.data or "null")


@dataclass
class SSEConnection:
    """One `GET` of an event stream, parsed incrementally (chunked or not)."""

    sock: socket.socket
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    _raw: bytes = b""
    _body: bytearray = field(default_factory=bytearray)
    _chunked: bool = False
    _eof: bool = False

    @classmethod
    def open(
        cls,
        port: int,
        path: str,
        headers: dict[str, str] | None = None,
        timeout: float = 10,
        host: str = "127.0.0.1",
    ) -> SSEConnection:
        sock = socket.create_connection((host, port), timeout=timeout)
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        connection = cls(sock)
        connection._read_head()
        return connection

    def _recv(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self._raw += data

    def _read_head(self) -> None:
        while b"\r\n\r\n" not in self._raw:
            self._recv()
        head, self._raw = self._raw.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        for line in header_lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        if self.status == 204 or self.headers.get("content-length") == "0":
            self._eof = True

    def _fill_body(self) -> None:
        """Move at least some bytes from the socket into the decoded body, or raise EOFError."""
        if self._eof:
            raise EOFError("the stream ended")
        if not self._chunked:
            if not self._raw:
                try:
                    self._recv()
                except EOFError:
                    self._eof = True
                    raise
            self._body += self._raw
            self._raw = b""
            return
        while True:
            if b"\r\n" in self._raw:
                size_line, rest = self._raw.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self._eof = True
                    raise EOFError("the stream ended")
                if len(rest) >= size + 2:
                    self._body += rest[:size]
                    self._raw = rest[size + 2 :]
                    return
            self._recv()

    def next_event(self) -> Event:
        """The next event or comment block; raises EOFError at the end, socket.timeout if idle."""
        while (end := self._body.find(b"\n\n")) < 0:
            self._fill_body()
        block = bytes(self._body[:end])
        del self._body[: end + 2]
        return _parse_block(block.decode())

    def events(self) -> Iterator[Event]:
        """Every block until the server ends the stream."""
        while True:
            try:
                yield self.next_event()
            except EOFError:
                return

    def until(self, predicate: Any, limit: int = 10_000) -> list[Event]:
        """Blocks read until one satisfies `predicate` (included)."""
        seen: list[Event] = []
        for _ in range(limit):
            seen.append(self.next_event())
            if predicate(seen[-1]):
                return seen
        raise AssertionError(f"no matching event in {limit} blocks")

    def closed_by_server(self, timeout: float) -> bool:
        """Drain whatever comes; True when the server ends the stream within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self._fill_body()
                self._body.clear()
            except EOFError:
                return True
            except TimeoutError:
                return False
            except OSError:  # reset by the server
                return True
        return False

    def body(self) -> bytes:
        """The whole body of a response that is not a stream (an error's JSON, say)."""
        length = int(self.headers.get("content-length", "0"))
        while len(self._raw) < length:
            self._recv()
        return self._raw[:length]

    def close(self) -> None:
        self.sock.close()


def _parse_block(block: str) -> Event:
    event = Event()
    data: list[str] = []
    for line in block.split("\n"):
        name, colon, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if not colon:
            name, value = line, ""
        if name == "":
            event.comment = value
        elif name == "event":
            event.type = value
        elif name == "id":
            event.id = value
        elif name == "data":
            data.append(value)
        elif name == "retry":
            event.retry = int(value)
    if data:
        event.data = "\n".join(data)
    return event


@dataclass
class WebProcess:
    """gunicorn with one gevent worker, serving an app on a free port (tests and benchmarks)."""

    port: int
    process: subprocess.Popen[bytes]
    #: The address it binds (`WEB_ADDRESS`).
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def worker(self) -> Any:
        import psutil

        return psutil.Process(self.process.pid).children()[0]

    def worker_pid(self) -> int:
        return int(self.worker().pid)

    def rss(self) -> int:
        return int(self.worker().memory_info().rss)

    def connections_to(self, port: int) -> int:
        """TCP connections the worker holds to `port` (Redis's, say)."""
        return sum(
            1 for c in self.worker().net_connections("tcp") if c.raddr and c.raddr.port == port
        )

    def server_sockets(self) -> int:
        """Client connections the worker holds (the listening socket not counted)."""
        return sum(
            1
            for c in self.worker().net_connections("tcp")
            if c.laddr and c.laddr.port == self.port and c.status != "LISTEN"
        )

    def kill(self) -> None:
        """SIGKILL the master and its worker: no goodbye to anyone."""
        for process in (self.worker(), self.process):
            process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_web(
    app: str = "app:create_app()",
    quiet: bool = False,
    port: int = 0,
    log_file: Path | None = None,
    host: str = "127.0.0.1",
    **settings: str,
) -> WebProcess:
    """The web process on `host` (its `WEB_ADDRESS`) and `port` (default: a free one), with
    this process's environment and `settings` over it."""
    port = port or free_port()
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "1", "WEB_ACCESS_LOG": ""}
    env.update(settings, WEB_ADDRESS=host)
    command = [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), app]
    stderr: Any = subprocess.DEVNULL if quiet else None
    if log_file is not None:
        stderr = log_file.open("ab")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=stderr)
    web = WebProcess(port, process, host)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited")
        try:
            requests.get(f"{web.url}/healthz", timeout=0.5)
            return web
        except requests.RequestException:
            time.sleep(0.1)
    web.stop()
    raise RuntimeError("gunicorn did not come up")


@contextmanager
def web_process(**settings: Any) -> Iterator[WebProcess]:
    web = start_web(**settings)
    try:
        yield web
    finally:
        web.stop()
