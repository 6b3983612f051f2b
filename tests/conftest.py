"""Shared fixtures: a real Redis, the sandbox over real HTTP(S), a real Celery worker.

Everything a test run writes lives under a fresh `FULFILLMENT_NAMESPACE`, so the suite can run
against the machine's Redis beside a `make run` stack without either seeing the other.

With `TEST_REDIS_CLUSTER=1` the event store is a local 3-master Redis Cluster the run starts
(`sandbox.redis_cluster`; `REDIS_CLUSTER=1`), the broker stays the single Redis: `make test`
runs the suites that exercise the event store (`CLUSTER_SUITES`) that way too. Without
Debian's redis-server 7 every test of such a run is skipped, with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import settings
from sandbox.redis_server import RedisServer, answers

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_TEST_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
_throwaway: RedisServer | None = None
_throwaway_rabbit: object = None
_cluster: object = None
_cluster_missing: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Point every process setting at test values before any project module reads them."""
    global _throwaway
    url = os.environ.get("TEST_REDIS_URL") or DEFAULT_TEST_REDIS_URL
    if not answers(url):
        _throwaway = RedisServer().start()
        url = _throwaway.url
    os.environ["TEST_RABBITMQ_URL"] = _rabbitmq_url()
    base = Path(config.rootpath) / ".pytest-sandbox" / uuid.uuid4().hex[:8]
    event_store = _cluster_url() or url
    os.environ.update(
        {
            "TEST_REDIS_URL": url,
            "REDIS_URL": event_store,
            "REDIS_CLUSTER": "1" if event_store != url else "0",
            "CELERY_BROKER_URL": url,
            "FULFILLMENT_NAMESPACE": f"test-{uuid.uuid4().hex[:10]}",
            "SANDBOX_DIR": str(base),
            "RETRY_BACKOFF_SECONDS": "0.05",
            "RETRY_BACKOFF_MAX_SECONDS": "0.2",
            "FULFILLMENT_MAX_ATTEMPTS": "4",
            "SALESFORCE_TIMEOUT_SECONDS": "2",
            "WHMCS_TIMEOUT_SECONDS": "2",
            "WORKER_METRICS_PORT": "0",  # the in-process worker serves no endpoint
            "RECONCILE_INTERVAL_SECONDS": "0",  # tests run the reconciler when they mean to
        }
    )
    for name in ("SALESFORCE_INSTANCE_URL", "WHMCS_URL", "JWT_PUBLIC_KEY", "JWT_AUDIENCE"):
        os.environ.pop(name, None)
    # The variables above are for the processes tests start; this one gets its settings here.
    settings.configure(settings.from_environment(dict(os.environ)))


def _cluster_url() -> str | None:
    """A local cluster's URL when this run asks for one (`TEST_REDIS_CLUSTER=1`) and can."""
    global _cluster, _cluster_missing
    if os.environ.get("TEST_REDIS_CLUSTER") not in ("1", "true", "yes"):
        return None
    from sandbox import redis_cluster

    _cluster_missing = redis_cluster.available()
    if _cluster_missing:
        return None
    _cluster = redis_cluster.LocalCluster().start()
    return _cluster.url  # type: ignore[attr-defined,no-any-return]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _cluster_missing:
        skip = pytest.mark.skip(reason=f"TEST_REDIS_CLUSTER=1: {_cluster_missing}")
        for item in items:
            item.add_marker(skip)


def _rabbitmq_url() -> str:
    """The RabbitMQ to test against; a throwaway node when none answers and one can start."""
    global _throwaway_rabbit
    from urllib.parse import urlparse

    from sandbox import rabbitmq_server

    url = os.environ.get("TEST_RABBITMQ_URL") or DEFAULT_TEST_RABBITMQ_URL
    parsed = urlparse(url)
    if rabbitmq_server.answers(parsed.hostname or "127.0.0.1", parsed.port or 5672):
        return url
    if rabbitmq_server.find_binary() is None:
        return url  # the RabbitMQ tests skip and say why
    _throwaway_rabbit = rabbitmq_server.RabbitServer().start()
    return _throwaway_rabbit.url  # type: ignore[attr-defined,no-any-return]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _throwaway is not None:
        _throwaway.stop()
    if _cluster is not None:
        _cluster.stop()  # type: ignore[attr-defined]
    if _throwaway_rabbit is not None:
        _throwaway_rabbit.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ["REDIS_URL"]


@pytest.fixture
def stack_variables(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """`stack_variables(NAME=value, ...)`: set variables for the processes a test starts, and
    give this process the settings they make; both are restored afterwards."""
    before = settings.current()

    def use(**variables: str) -> settings.Settings:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return settings.configure(settings.from_environment(dict(os.environ)))

    yield use
    settings.configure(before)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[object]:
    """The project's pooled client; this test run's keys are deleted afterwards."""
    from notifier.connection import get_redis

    client = get_redis()
    yield client
    namespace = os.environ["FULFILLMENT_NAMESPACE"]
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        client.delete(key)


@pytest.fixture(scope="session")
def sandbox(redis_url: str) -> Iterator[object]:
    """Both emulators on free ports, in this process, over real HTTP(S)."""
    from urllib.parse import urlparse

    from sandbox.server import start

    running = start(os.environ["SANDBOX_DIR"])
    os.environ["SANDBOX_SALESFORCE_PORT"] = str(urlparse(running.salesforce_url).port)
    os.environ["SANDBOX_WHMCS_PORT"] = str(urlparse(running.whmcs_url).port)
    os.environ["SANDBOX_PUBSUB_PORT"] = running.pubsub_url.rsplit(":", 1)[1]
    settings.configure(settings.from_environment(dict(os.environ)))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def sandbox_client(sandbox: object) -> object:
    from sandbox.client import SandboxClient

    return SandboxClient.from_environment()


@pytest.fixture(autouse=True)
def _clear_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sandbox_client" in request.fixturenames:
        request.getfixturevalue("sandbox_client").clear_faults()


@pytest.fixture(scope="session")
def worker(sandbox: object) -> Iterator[object]:
    """A real Celery worker (thread pool) consuming this run's queue on the test Redis."""
    from celery.contrib.testing.worker import start_worker

    from tasks.celery_app import celery

    with start_worker(
        celery, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=10
    ) as running:
        yield running


@pytest.fixture
def app(sandbox: object) -> object:
    from app import create_app

    return create_app({"TESTING": True})


@pytest.fixture
def client(app) -> object:
    return app.test_client()


@pytest.fixture
def tokens(app) -> object:
    from tests.helpers import Tokens

    return Tokens(app.extensions["web_settings"])


@pytest.fixture
def order(sandbox_client, redis_client) -> dict[str, str]:
    """A sandbox order (with its account) that has been submitted: its stage is `queued`."""
    from notifier import publish

    created = sandbox_client.create_order()
    publish(created["orderId"], {"stage": "queued", "message": "waiting"})
    return created


@pytest.fixture(scope="session")
def local_cluster() -> object:
    """The run's local Redis Cluster (`TEST_REDIS_CLUSTER=1` runs only)."""
    if _cluster is None:
        pytest.skip("runs on a local Redis Cluster: make test runs it with TEST_REDIS_CLUSTER=1")
    return _cluster
