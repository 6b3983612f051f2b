"""An asyncio SSE load generator: ten thousand streams and more from one process.

Each stream is a raw socket speaking just enough HTTP/1.1 (chunked responses) and SSE to time
every event on arrival; there is no thread per stream. uvloop is used when installed. Opening
a stream only sends the request: stock flask-sse sends nothing, not even headers, until its
channel publishes, so the response is read by the consuming task.

Two kinds of client: `Stream` (fanout, leak) reads one response and stops. `BrowserStream`
(storm) behaves as a browser's EventSource does: when a 200 ends or the connection drops or
cannot be made, it waits the last `retry:` it received and reconnects with `Last-Event-ID`;
a 204 or any other status ends it for good. `start_storm` starts every connect at the same
moment, with no semaphore and no pacing, and `phase_figures` says how a phase went.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from .percentiles import in_milliseconds

#: (stream, when it arrived, its type, its data, its id)
OnEvent = Callable[["Stream", float, str | None, str, str | None], None]
OnBrowserEvent = Callable[["BrowserStream", float, str | None, str], None]
#: What a browser waits before reconnecting until the server sends `retry:`.
DEFAULT_RETRY_MS = 3000
#: The event our server ends a stream with; its data says why.
END_EVENT = "stream.end"


def raise_fd_limit(wanted: int) -> tuple[int, int]:
    """Raise RLIMIT_NOFILE to `wanted` (the hard limit too, when we may); returns the limits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted > hard:
        with contextlib.suppress(ValueError, OSError):  # only root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


@dataclass
class Stream:
    """One event stream and what happened to it."""

    path: str
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    status: int = 0
    events: int = 0
    #: HTTP chunks read: one per write the server made (events written together share one).
    chunks: int = 0
    first_event_at: float | None = None
    error: str | None = None
    ended: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    async def open(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port, limit=1 << 20)
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def consume(self, on_event: OnEvent) -> None:
        """Read the response (head, then chunked SSE) until the server ends it."""
        assert self.reader is not None
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            self.status = int(head.split(b" ", 2)[1])
            if self.status == 200:
                await self._read_chunks(on_event)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            self.error = type(exc).__name__
        finally:
            self.ended = True

    async def _read_chunks(self, on_event: OnEvent) -> None:
        assert self.reader is not None
        pending = b""
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                return
            self.chunks += 1
            pending += (await self.reader.readexactly(size + 2))[:-2]
            while b"\n\n" in pending:
                block, pending = pending.split(b"\n\n", 1)
                kind, data, event_id = _parse(block)
                if data is not None:
                    now = time.time()
                    self.events += 1
                    self.first_event_at = self.first_event_at or now
                    on_event(self, now, kind, data, event_id)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _parse(block: bytes) -> tuple[str | None, str | None, str | None]:
    kind, data, event_id = None, None, None
    for line in block.decode().split("\n"):
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line.startswith("id:"):
            event_id = line[3:].strip()
    return kind, data, event_id


async def open_many(
    host: str,
    port: int,
    paths: list[str],
    headers: dict[str, str] | list[dict[str, str]],
    on_event: OnEvent,
    concurrency: int = 500,
) -> tuple[list[Stream], list[asyncio.Task[None]]]:
    """Open one stream per path (at most `concurrency` connecting at once), start reading.
    `headers` go with every request, or a list of them gives each path its own."""
    gate = asyncio.Semaphore(concurrency)
    streams = [Stream(path) for path in paths]
    per_stream = headers if isinstance(headers, list) else [headers] * len(paths)
    readers: list[asyncio.Task[None]] = []

    async def connect(stream: Stream, stream_headers: dict[str, str]) -> None:
        async with gate:
            try:
                await stream.open(host, port, stream_headers)
            except OSError as exc:
                stream.error, stream.ended = type(exc).__name__, True
                return
        readers.append(asyncio.create_task(stream.consume(on_event)))

    await asyncio.gather(*(connect(s, h) for s, h in zip(streams, per_stream, strict=True)))
    return streams, readers


async def close_all(streams: list[Stream], readers: list[asyncio.Task[None]]) -> None:
    for stream in streams:
        stream.close()
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


# --- browser-like streams (storm) --------------------------------------------------------------


@dataclass
class Attempt:
    """One connection of a `BrowserStream`."""

    started_at: float
    #: The `Last-Event-ID` it sent (None: a new stream, which only a snapshot serves).
    resumed_from: str | None
    status: int = 0
    served_at: float | None = None
    #: The reason a `stream.end` gave, if the server sent one.
    end_reason: str | None = None
    #: Why it ended unserved: the `stream.end` reason, `http-<status>`, `connect:<error>` (the
    #: TCP connect failed) or `dropped:<error>` (connected, but the answer never came whole).
    refusal: str | None = None
    error: str | None = None


@dataclass(eq=False)
class BrowserStream:
    """An EventSource on one URL, with one set of headers, reconnecting as browsers do.

    A new connection is served when an event of a `served_by` type arrives (our snapshot, a
    stock probe). A resume (one that sent `Last-Event-ID`) is also served by a 200 whose first
    bytes are not a `stream.end`: an up-to-date client gets `retry:` and then nothing.
    """

    path: str
    headers: dict[str, str]
    served_by: frozenset[str]
    on_event: OnBrowserEvent | None = None
    retry_ms: int = DEFAULT_RETRY_MS
    last_event_id: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    #: Only a connection started at or after this moment serves the stream in this phase.
    phase_started_at: float = 0.0
    served_at: float | None = None
    gave_up: bool = False
    closed: bool = False
    _writer: asyncio.StreamWriter | None = None

    def begin_phase(self, at: float) -> None:
        self.phase_started_at, self.served_at = at, None

    async def run(self, host: str, port: int) -> None:
        while not self.closed:
            attempt = Attempt(time.time(), self.last_event_id)
            self.attempts.append(attempt)
            await self._connect(host, port, attempt)
            attempt.refusal = None if attempt.served_at else _refusal(attempt)
            if attempt.status not in (0, 200):
                self.gave_up = True  # a 204, or any other status: EventSource stops for good
                return
            if not self.closed:
                await asyncio.sleep(self.retry_ms / 1000)

    def close(self) -> None:
        self.closed = True
        if self._writer is not None:
            self._writer.close()

    async def _connect(self, host: str, port: int, attempt: Attempt) -> None:
        try:
            reader, self._writer = await asyncio.open_connection(host, port, limit=1 << 20)
        except OSError as exc:
            attempt.error = f"connect:{type(exc).__name__}"
            return
        try:
            self._writer.write(self._request(host, port, attempt.resumed_from))
            await self._read(reader, attempt)
        except (asyncio.IncompleteReadError, ValueError, OSError) as exc:
            attempt.error = f"dropped:{type(exc).__name__}"
        finally:
            self._writer.close()

    def _request(self, host: str, port: int, last_event_id: str | None) -> bytes:
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        if last_event_id is not None:
            lines.append(f"Last-Event-ID: {last_event_id}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def _read(self, reader: asyncio.StreamReader, attempt: Attempt) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        attempt.status = int(head.split(b" ", 2)[1])
        if attempt.status != 200:
            return
        pending = b""
        async for piece in _body(reader, head.lower()):
            pending += piece
            *blocks, pending = pending.split(b"\n\n")
            now = time.time()
            for block in blocks:
                self._block(block, attempt, now)
            # A refusal is one body (`retry:` and `stream.end` together), so a resume whose
            # first whole blocks hold no `stream.end` is being served.
            if blocks and attempt.resumed_from is not None and attempt.end_reason is None:
                self._served(attempt, now)

    def _block(self, block: bytes, attempt: Attempt, at: float) -> None:
        kind, data = None, None
        for line in block.decode().split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "retry" and value.isdigit():
                self.retry_ms = int(value)
            elif name == "id":
                self.last_event_id = value
            elif name == "event":
                kind = value
            elif name == "data":
                data = value if data is None else f"{data}\n{value}"
        if data is None:
            return  # `retry:` alone, or a heartbeat comment
        if kind == END_EVENT:
            attempt.end_reason = _end_reason(data)
        elif kind in self.served_by:
            self._served(attempt, at)
        if self.on_event is not None:
            self.on_event(self, at, kind, data)

    def _served(self, attempt: Attempt, at: float) -> None:
        if attempt.served_at is None:
            attempt.served_at = at
        if self.served_at is None and attempt.started_at >= self.phase_started_at:
            self.served_at = at


async def _body(reader: asyncio.StreamReader, head: bytes) -> AsyncIterator[bytes]:
    """The response body as it arrives: chunked, by Content-Length, or until the server closes
    (a refusal is a plain body; a stream is chunked)."""
    if b"transfer-encoding: chunked" in head:
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            yield (await reader.readexactly(size + 2))[:-2]
        return
    marker = head.find(b"content-length:")
    if marker >= 0:
        length = int(head[marker + 15 :].split(b"\r\n", 1)[0])
        if length:
            yield await reader.readexactly(length)
        return
    while piece := await reader.read(65536):
        yield piece


def _end_reason(data: str) -> str:
    try:
        return str(json.loads(data).get("reason") or "unknown")
    except (ValueError, AttributeError):
        return "unknown"


def _refusal(attempt: Attempt) -> str:
    if attempt.status not in (0, 200):
        return f"http-{attempt.status}"
    if attempt.end_reason is not None:
        return attempt.end_reason
    return attempt.error or "ended-unserved"


def start_storm(host: str, port: int, streams: list[BrowserStream]) -> list[asyncio.Task[None]]:
    """Start every stream's connect at the same moment: no semaphore, no pacing, the way users
    arrive after a mail-out or a deploy. The phase starts now."""
    begin_phase(streams, time.time())
    return [asyncio.create_task(stream.run(host, port)) for stream in streams]


def begin_phase(streams: list[BrowserStream], at: float) -> None:
    for stream in streams:
        stream.begin_phase(at)


async def wait_served(streams: list[BrowserStream], timeout: float) -> bool:
    """Until every stream is served in this phase or has given up; False after `timeout`."""
    deadline = time.monotonic() + timeout
    while any(s.served_at is None and not s.gave_up for s in streams):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def phase_figures(streams: list[BrowserStream], started_at: float) -> dict[str, Any]:
    """How a phase went: refused connections by reason, how long until every stream was
    served (None if some never were), per-stream times, and when the connects started (for
    a restart: how spread the reconnects were), all in seconds from `started_at`."""
    attempts = [[a for a in s.attempts if a.started_at >= started_at] for s in streams]
    refusals = Counter(a.refusal for mine in attempts for a in mine if a.refusal)
    served = [s.served_at - started_at for s in streams if s.served_at is not None]
    firsts = [mine[0].started_at - started_at for mine in attempts if mine]
    everyone = len(served) == len(streams)
    return {
        "streams": len(streams),
        "served": len(served),
        "unserved": len(streams) - len(served),
        "gave_up": sum(1 for s in streams if s.gave_up),
        "refused": sum(refusals.values()),
        "streams_refused": sum(1 for mine in attempts if any(a.refusal for a in mine)),
        "refused_by_reason": dict(refusals.most_common()),
        "attempts": sum(len(mine) for mine in attempts),
        "all_served_seconds": round(max(served), 2) if served and everyone else None,
        "per_stream_ms": in_milliseconds(served),
        "connects_started_seconds": {
            "first": round(min(firsts), 2) if firsts else None,
            "last": round(max(firsts), 2) if firsts else None,
        },
    }


async def stop_all(streams: list[BrowserStream], tasks: list[asyncio.Task[None]]) -> None:
    for stream in streams:
        stream.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
