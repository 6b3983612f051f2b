"""What a benchmark runs on and against: a private Redis, this machine, these versions."""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Any

from sandbox.redis_server import RedisServer, find_binary

PACKAGES = ("flask", "flask-sse", "gunicorn", "gevent", "redis", "celery", "kombu", "requests")


@contextmanager
def private_stack() -> Iterator[RedisServer]:
    """A redis-server of our own (both sides of a comparison use it), and a fresh namespace
    and sandbox directory in this process's environment for every child to inherit."""
    server = RedisServer().start()
    saved = dict(os.environ)
    os.environ.update(
        REDIS_URL=server.url,
        CELERY_BROKER_URL=server.url,
        FULFILLMENT_NAMESPACE=f"bench-{uuid.uuid4().hex[:8]}",
        SANDBOX_DIR=tempfile.mkdtemp(prefix="bench-sandbox-"),
        WEB_ACCESS_LOG="",
        LOG_LEVEL="WARNING",
    )
    try:
        yield server
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()


def machine() -> dict[str, Any]:
    """This machine and the software measured on it."""
    versions = {name: _version(name) for name in PACKAGES}
    redis_version = subprocess.run(
        [find_binary(), "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "redis_server": next((w[2:] for w in redis_version if w.startswith("v=")), "unknown"),
        "packages": versions,
    }


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
