"""What a benchmark runs on and against: a private Redis and, when a scenario needs Salesforce
and WHMCS, a private sandbox beside it; this machine, these versions."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import requests

import settings
from sandbox.client import SandboxClient
from sandbox.redis_server import RedisServer, find_binary, free_port

ROOT = Path(__file__).resolve().parent.parent

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
    before = settings.current()
    settings.configure(settings.from_environment())  # this process uses the stack too
    try:
        yield server
    finally:
        os.environ.clear()
        os.environ.update(saved)
        settings.configure(before)
        server.stop()


@contextmanager
def private_broker() -> Iterator[RedisServer]:
    """A second redis-server of our own for the Celery broker alone: `CELERY_BROKER_URL` points
    at it (in this process's environment, for every child started afterwards) while the event
    store stays on `REDIS_URL`, so each server's commands can be counted apart. Call it inside
    `private_stack`."""
    server = RedisServer().start()
    saved = os.environ.get("CELERY_BROKER_URL")
    os.environ["CELERY_BROKER_URL"] = server.url
    settings.configure(settings.from_environment())
    try:
        yield server
    finally:
        if saved is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved
        settings.configure(settings.from_environment())
        server.stop()


@contextmanager
def event_store_on_cluster(replicas: int = 0, **variables: str) -> Iterator[Any]:
    """`REDIS_URL` on a local 3-master Redis Cluster (`replicas` replicas each) of our own,
    with `variables`, for this process and every process started meanwhile; yields the
    `LocalCluster`, or None where Debian's redis-server 7 is missing."""
    from sandbox.redis_cluster import LocalCluster, available

    if available():
        yield None
        return
    cluster = LocalCluster(replicas=replicas).start()
    changed = {"REDIS_URL": cluster.url, "REDIS_CLUSTER": "1", **variables}
    saved = {name: os.environ.get(name) for name in changed}
    before = settings.current()
    os.environ.update(changed)
    settings.configure(settings.from_environment())
    try:
        yield cluster
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.update({name: value})
        settings.configure(before)
        cluster.stop()


@contextmanager
def private_sandbox() -> Iterator[subprocess.Popen[bytes]]:
    """`python -m sandbox` on free ports, in the private stack's sandbox directory. Call it
    inside `private_stack`: the ports go into this process's environment, so every web and
    worker process started afterwards talks to this sandbox (and the stack restores it)."""
    os.environ.update(
        SANDBOX_SALESFORCE_PORT=str(free_port()),
        SANDBOX_WHMCS_PORT=str(free_port()),
        SANDBOX_PUBSUB_PORT=str(free_port()),
    )
    settings.configure(settings.from_environment())
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox"], cwd=ROOT, env=dict(os.environ),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_sandbox(process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_sandbox(process: subprocess.Popen[bytes]) -> None:
    client = SandboxClient.from_environment()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            client.clear_faults()
            return
        except (requests.RequestException, OSError):
            time.sleep(0.2)
    raise RuntimeError("the sandbox did not start")


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
