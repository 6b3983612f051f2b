"""Celery workers as separate processes (the way the Procfile runs them), for tests that kill
them, restart them, or point them at another broker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sandbox.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent


def stack_env(**overrides: str) -> dict[str, str]:
    """The test environment with its own namespace (queue, keys, channels)."""
    env = {**os.environ, "FULFILLMENT_NAMESPACE": f"test-proc-{uuid.uuid4().hex[:8]}"}
    env.update(overrides)
    return env


@dataclass
class _ProcessGroup:
    """A process started in its own process group, killed or stopped as a whole."""

    process: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group (a worker's main process and pool children), no warm
        shutdown."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class WorkerProcess(_ProcessGroup):
    """`celery worker` (prefork unless told otherwise) in its own process group."""

    log_file: Path | None = None
    log_start: int = 0  # where this run's lines begin in a log shared by restarts

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the worker has logged that it is ready (its pool started, its queues
        consumed); needs the log file it was started with."""
        assert self.log_file is not None, "a worker started without a log file"
        deadline = time.monotonic() + timeout
        while not self._logged_ready():
            if not self.alive() or time.monotonic() > deadline:
                raise AssertionError(f"the worker did not become ready; see {self.log_file}")
            time.sleep(0.05)

    def _logged_ready(self) -> bool:
        with self.log_file.open("rb") as log:  # type: ignore[union-attr]
            log.seek(self.log_start)
            return b' ready."' in log.read()

    @classmethod
    def start(
        cls,
        env: dict[str, str],
        concurrency: int = 1,
        log_file: Path | None = None,
        pool: str = "prefork",
        hostname: str | None = None,
    ) -> WorkerProcess:
        """`hostname`: the worker's node name (`celery@<hostname>`); two workers on one
        machine over RabbitMQ need different ones (each node's control queue is exclusive)."""
        command = [sys.executable, "-m", "celery", "--app", "tasks.celery_app", "worker",
                   "--pool", pool, "--concurrency", str(concurrency), "--loglevel", "INFO",
                   "--task-events", "--without-gossip", "--without-mingle",
                   *(["--hostname", f"celery@{hostname}"] if hostname else [])]  # fmt: skip
        env = {**env, "WORKER_METRICS_PORT": env.get("WORKER_METRICS_PORT") or str(free_port())}
        output = log_file.open("ab") if log_file else None
        log_start = output.tell() if output else 0
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=output, start_new_session=True
        )
        return cls(process, log_file, log_start)


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the `fulfillment` CLI with `env`."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=timeout, check=False,
    )  # fmt: skip


class ListenerProcess(_ProcessGroup):
    """`fulfillment listen` in its own process group, as the Procfile runs it."""

    def wait_subscribed(
        self, topic: str = "/event/Order_Activation__e", timeout: float = 30
    ) -> None:
        """Until a listener holds the lease and the stream has answered (a position stored:
        its first keep-alive or event), so what is approved next reaches it."""
        from listener import lease, position

        deadline = time.monotonic() + timeout
        while lease.holder() is None or position.load(topic) is None:
            if not self.alive() or time.monotonic() > deadline:
                raise AssertionError("the listener did not subscribe")
            time.sleep(0.05)

    @classmethod
    def start(cls, env: dict[str, str], log_file: Path | None = None) -> ListenerProcess:
        env = {**env, "LISTENER_METRICS_PORT": env.get("LISTENER_METRICS_PORT") or "0"}
        output = log_file.open("ab") if log_file else None
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "listen"], cwd=ROOT, env=env, stdout=output,
            stderr=output, start_new_session=True,
        )  # fmt: skip
        return cls(process)
