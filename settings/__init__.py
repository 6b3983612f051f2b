"""One typed, frozen settings tree, read from the environment once per process.

Rule of this package: it imports nothing from the project, and it is the only product code
that reads the environment (`environment.py`). A process builds its settings once at its
edge (gunicorn's config and `create_app`, the Celery app, the CLI, the sandbox, the
benchmarks) and passes the parts inward; code with no edge of its own (`notifier.publish`
called from any process) asks `current()`, which builds them on first use. Tests build
settings with `from_environment({...})` and install them with `configure()`.

Every variable is listed, with its default, in the README's configuration table; a test
holds the two together.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .environment import STACK_FILE, Environment, process_environment
from .listener import ListenerSettings, read_listener
from .sections import (
    DEFAULT_REDIS_URL,
    SANDBOX_CERTIFICATE,
    SANDBOX_CREDENTIALS,
    BrokerSettings,
    EventSettings,
    ObservabilitySettings,
    RecoverySettings,
    RedisSettings,
    RetrySettings,
    SalesforceConfig,
    SandboxSettings,
    ServerSettings,
    WebSettings,
    WhmcsConfig,
    read_broker,
    read_events,
    read_namespace,
    read_observability,
    read_recovery,
    read_redis,
    read_retry,
    read_salesforce,
    read_sandbox,
    read_server,
    read_web,
    read_whmcs,
)

__all__ = [
    "DEFAULT_REDIS_URL",
    "SANDBOX_CERTIFICATE",
    "SANDBOX_CREDENTIALS",
    "STACK_FILE",
    "BrokerSettings",
    "EventSettings",
    "ListenerSettings",
    "ObservabilitySettings",
    "RecoverySettings",
    "RedisSettings",
    "RetrySettings",
    "SalesforceConfig",
    "SandboxSettings",
    "ServerSettings",
    "Settings",
    "WebSettings",
    "WhmcsConfig",
    "configure",
    "current",
    "from_environment",
    "process_environment",
]


@dataclass(frozen=True)
class Settings:
    #: Prefix of every Redis key, channel and the Celery queue.
    namespace: str
    redis: RedisSettings
    events: EventSettings
    broker: BrokerSettings
    retry: RetrySettings
    recovery: RecoverySettings
    observability: ObservabilitySettings
    server: ServerSettings
    web: WebSettings
    salesforce: SalesforceConfig
    whmcs: WhmcsConfig
    listener: ListenerSettings
    sandbox: SandboxSettings

    def replace(self, **parts: Any) -> Settings:
        """A copy with some parts, or some fields of parts, changed:
        `replace(web={"jwt_audience": "portal"})` or `replace(namespace="x")`."""
        changes: dict[str, Any] = {}
        for name, value in parts.items():
            if isinstance(value, Mapping):
                changes[name] = dataclasses.replace(getattr(self, name), **value)
            else:
                changes[name] = value
        return dataclasses.replace(self, **changes)


def from_environment(values: Mapping[str, str] | None = None, with_stack: bool = False) -> Settings:
    """Settings from `values` (default: this process's environment and `.env`; and the file
    `make run` wrote, with `with_stack`)."""
    return _build(Environment(process_environment(with_stack) if values is None else values))


def variables_read(values: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every variable the settings read, with the default each is read with (None: computed
    from others, or unset)."""
    env = Environment({"JWT_SECRET": "-", **(values or {})})  # no development secret made
    _build(env)
    return env.read


def _build(env: Environment) -> Settings:
    sandbox = read_sandbox(env)
    redis = read_redis(env)
    salesforce = read_salesforce(env, sandbox)
    return Settings(
        namespace=read_namespace(env, sandbox),
        redis=redis,
        events=read_events(env),
        broker=read_broker(env, redis),
        retry=read_retry(env),
        recovery=read_recovery(env),
        observability=read_observability(env),
        server=read_server(env),
        web=read_web(env, sandbox),
        salesforce=salesforce,
        whmcs=read_whmcs(env, sandbox),
        listener=read_listener(env, sandbox, salesforce),
        sandbox=sandbox,
    )


_current: Settings | None = None
_lock = threading.Lock()


def current() -> Settings:
    """This process's settings: those `configure()` installed, else read once now."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = from_environment()
    return _current


def configure(settings: Settings) -> Settings:
    """Install `settings` as this process's (its edge, or a test); returns them."""
    global _current
    with _lock:
        _current = settings
    return settings
