"""Redis commands as clients send them, counted with `MONITOR` (issue #14: cost per order).

`INFO commandstats` counts every command a server *executes*, the ones a Lua script runs
included, and cannot tell one client from another. MONITOR shows each command with its
source: a client's address, or `lua` for a command run inside a script (an EVALSHA is one
command its client sent, then one `lua` line per `redis.call`). A pipeline of N commands is N
lines, a MULTI/EXEC block N + 2.

MONITOR costs the server CPU (it formats every command for every monitor), so it only runs
in a cost sample, never while throughput is measured. The reader only stores what arrives
while the sample runs; the lines are parsed after `stop()`.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import redis

ROOT = Path(__file__).resolve().parent.parent

_LINE = re.compile(rb"^\+\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$")
_ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"')
#: What a key pattern hides: Salesforce ids (Order 801…, Account 001…), uuids, long hex,
#: numbers.
_PATTERNS = (
    (re.compile(r"(?<![A-Za-z0-9])(?:801|001)[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?(?![A-Za-z0-9])"),
     "<id>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"[0-9a-f]{16,}"), "<hex>"),
    (re.compile(r"\d{3,}"), "<n>"),
)  # fmt: skip


@dataclass
class Tally:
    """What one server received during a window."""

    seconds: float
    #: Command name -> count, as clients sent them (no `lua` lines).
    client: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: Command name -> count, run inside scripts (`lua` lines).
    lua: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: "COMMAND key-pattern" -> count, client-sent and inside scripts (prefixed `lua `).
    keys: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def minus_background(self, idle: Tally) -> Tally:
        """This window less `idle`'s rate over this window's length (may leave small negative
        counts where the background varied)."""
        scale = self.seconds / idle.seconds if idle.seconds else 0.0

        def less(mine: dict[str, float], theirs: dict[str, float]) -> defaultdict[str, float]:
            out: defaultdict[str, float] = defaultdict(float)
            for name in set(mine) | set(theirs):
                out[name] = mine.get(name, 0.0) - theirs.get(name, 0.0) * scale
            return out

        return Tally(
            self.seconds,
            less(self.client, idle.client),
            less(self.lua, idle.lua),
            less(self.keys, idle.keys),
        )


class Monitor:
    """`MONITOR` on one server from `start()` to `stop()`, on a raw socket read by a thread;
    commands from `excluded` client addresses (`ip:port`, e.g. the benchmark's own) are left
    out."""

    def __init__(self, url: str, namespace: str, excluded: set[str] | None = None) -> None:
        parsed = urlparse(url)
        self.address = (parsed.hostname or "127.0.0.1", parsed.port or 6379)
        self.namespace = namespace
        self.excluded = {a.encode() for a in excluded or set()}
        self._chunks: list[bytes] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def start(self) -> Monitor:
        sock = socket.create_connection(self.address, timeout=5)
        sock.sendall(b"MONITOR\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            piece = sock.recv(64)
            if not piece:
                raise RuntimeError("redis closed the MONITOR connection")
            reply += piece
        head, _, rest = reply.partition(b"\r\n")
        if head != b"+OK":
            raise RuntimeError(f"MONITOR answered {head!r}")
        sock.settimeout(None)
        self._chunks = [rest] if rest else []
        self._sock = sock
        self._thread = threading.Thread(target=self._read, name="redis-monitor", daemon=True)
        self._thread.start()
        self._started = time.monotonic()
        return self

    def _read(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            while True:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    return
                self._chunks.append(chunk)
        except OSError:
            return  # stop() shut the socket

    def stop(self) -> Tally:
        seconds = time.monotonic() - self._started
        sock, thread = self._sock, self._thread
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if thread is not None:
            thread.join(timeout=10)
        self._sock = self._thread = None
        return self._parse(b"".join(self._chunks), seconds)

    def _parse(self, data: bytes, seconds: float) -> Tally:
        tally = Tally(seconds)
        names = script_names()
        for line in data.split(b"\r\n"):
            match = _LINE.match(line)
            if match is None:
                continue  # the last, partial line
            source, rest = match.groups()
            if source in self.excluded:
                continue
            args = _ARG.findall(rest)
            if not args:
                continue
            command = args[0].decode(errors="replace").upper()
            pattern = self._pattern(command, args, names)
            if source == b"lua":
                tally.lua[command] += 1
                tally.keys[f"lua {pattern}"] += 1
            else:
                tally.client[command] += 1
                tally.keys[pattern] += 1
        return tally

    def _pattern(self, command: str, args: list[bytes], names: dict[str, str]) -> str:
        if command in ("EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO") and len(args) >= 3:
            script = args[1].decode(errors="replace")
            script = names.get(script, script[:8]) if command.startswith("EVALSHA") else "<lua>"
            key = args[3] if len(args) > 3 and args[2] != b"0" else b""
            return f"{command} {script} {self._key(key)}".rstrip()
        if len(args) < 2:
            return command
        return f"{command} {self._key(args[1])}"

    def _key(self, raw: bytes) -> str:
        key = raw.decode(errors="replace")
        if self.namespace:
            key = key.replace(self.namespace, "{ns}")
        for pattern, replacement in _PATTERNS:
            key = pattern.sub(replacement, key)
        return key[:80]


def script_names() -> dict[str, str]:
    """The SHA-1 of every Lua script in the project (what EVALSHA names) -> its file."""
    found: dict[str, str] = {}
    for path in ROOT.glob("*/lua/*.lua"):
        digest = hashlib.sha1(path.read_bytes()).hexdigest()  # noqa: S324 (Redis's script id)
        found[digest] = f"{path.parent.parent.name}/{path.name}"
    return found


def client_address(client: redis.Redis) -> str:
    """`ip:port` of a single-connection redis-py client, as MONITOR shows it."""
    return str(client.client_info()["addr"])
