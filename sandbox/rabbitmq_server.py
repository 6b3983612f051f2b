"""A throwaway RabbitMQ node for tests, on free ports, when none answers.

Uses the rabbitmq-server of Debian's package, started directly (not through its wrapper,
which switches to the `rabbitmq` user and drops our environment), with its data, logs and
Erlang cookie in a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .redis_server import free_port

_CANDIDATES = ("/usr/lib/rabbitmq/bin/rabbitmq-server",)


def find_binary() -> str | None:
    for candidate in _CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class RabbitServer:
    """One RabbitMQ node on 127.0.0.1, in its own process group."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="rabbitmq-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self, timeout: float = 60) -> RabbitServer:
        binary = find_binary()
        if binary is None:
            raise RuntimeError("rabbitmq-server is not installed")
        node = f"test{self.port}@localhost"
        env = {
            **os.environ,
            "HOME": str(self.directory),  # the Erlang cookie lives here
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "plugins"),
            "RABBITMQ_PID_FILE": str(self.directory / "pid"),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "none"),
        }
        log = (self.directory / "out.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            [binary], cwd=self.directory, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not answers("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the throwaway RabbitMQ did not start")
            time.sleep(0.25)
        return self

    def stop(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)
