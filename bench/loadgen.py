"""An asyncio SSE load generator: ten thousand streams and more from one process.

Each stream is a raw socket speaking just enough HTTP/1.1 (chunked responses) and SSE to time
every event on arrival; there is no thread per stream. uvloop is used when installed. Opening
a stream only sends the request: stock flask-sse sends nothing, not even headers, until its
channel publishes, so the response is read by the consuming task.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field

OnEvent = Callable[["Stream", float, str | None, str], None]


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
            pending += (await self.reader.readexactly(size + 2))[:-2]
            while b"\n\n" in pending:
                block, pending = pending.split(b"\n\n", 1)
                kind, data = _parse(block)
                if data is not None:
                    now = time.time()
                    self.events += 1
                    self.first_event_at = self.first_event_at or now
                    on_event(self, now, kind, data)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _parse(block: bytes) -> tuple[str | None, str | None]:
    kind, data = None, None
    for line in block.decode().split("\n"):
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
    return kind, data


async def open_many(
    host: str,
    port: int,
    paths: list[str],
    headers: dict[str, str],
    on_event: OnEvent,
    concurrency: int = 500,
) -> tuple[list[Stream], list[asyncio.Task[None]]]:
    """Open one stream per path (at most `concurrency` connecting at once), start reading."""
    gate = asyncio.Semaphore(concurrency)
    streams = [Stream(path) for path in paths]
    readers: list[asyncio.Task[None]] = []

    async def connect(stream: Stream) -> None:
        async with gate:
            try:
                await stream.open(host, port, headers)
            except OSError as exc:
                stream.error, stream.ended = type(exc).__name__, True
                return
        readers.append(asyncio.create_task(stream.consume(on_event)))

    await asyncio.gather(*(connect(s) for s in streams))
    return streams, readers


async def close_all(streams: list[Stream], readers: list[asyncio.Task[None]]) -> None:
    for stream in streams:
        stream.close()
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
