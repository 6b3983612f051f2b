"""An asyncio SSE load generator: thousands of streams from one process.

Each stream is a raw socket speaking just enough HTTP/1.1 (chunked responses) and SSE to
count events and time them; no per-stream thread, so 10,000+ streams fit in one process.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def raise_fd_limit(wanted: int) -> tuple[int, int]:
    """Raise RLIMIT_NOFILE toward `wanted` (as far as the hard limit allows); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


@dataclass
class Stream:
    """One open event stream and what it has seen."""

    path: str
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    status: int = 0
    events: list[tuple[float, str | None, str]] = field(default_factory=list)  # (time, type, data)
    snapshot: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None

    async def open(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port, limit=1 << 20)
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])

    async def consume(self, on_event: Callable[[Stream, float, str | None, str], None]) -> None:
        """Read chunked SSE until the server ends the stream."""
        assert self.reader is not None
        pending = b""
        try:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    break
                pending += await self.reader.readexactly(size + 2)
                pending = pending[:-2] if pending.endswith(b"\r\n") else pending
                while b"\n\n" in pending:
                    block, pending = pending.split(b"\n\n", 1)
                    kind, data = _parse(block)
                    if data is not None:
                        on_event(self, time.time(), kind, data)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.error = type(exc).__name__
        finally:
            self.done.set()

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


def payload_timestamp(data: str) -> float | None:
    """The publish time carried in an order.update payload (ISO 8601, ms)."""
    from datetime import datetime

    try:
        stamp = json.loads(data).get("timestamp")
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError, TypeError):
        return None


async def open_many(
    host: str,
    port: int,
    paths: list[str],
    headers: dict[str, str],
    on_event: Callable[[Stream, float, str | None, str], None],
    concurrency: int = 200,
) -> tuple[list[Stream], list[asyncio.Task[None]]]:
    """Open one stream per path (at most `concurrency` connecting at once) and start reading."""
    gate = asyncio.Semaphore(concurrency)
    streams = [Stream(path) for path in paths]
    readers: list[asyncio.Task[None]] = []

    async def connect(stream: Stream) -> None:
        async with gate:
            try:
                await stream.open(host, port, headers)
            except OSError as exc:
                stream.error = type(exc).__name__
                stream.done.set()
                return
        readers.append(asyncio.create_task(stream.consume(on_event)))

    await asyncio.gather(*(connect(s) for s in streams))
    return streams, readers
