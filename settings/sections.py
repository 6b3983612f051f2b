"""The parts of the settings tree, each a frozen dataclass, and how each is read.

Each `read_*` function reads every variable of its part, whatever the others say (so what a
process reads does not depend on its mode, and the README check sees every name).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .environment import Environment

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_NAMESPACE = "fulfillment"
DEFAULT_SANDBOX_SALESFORCE_PORT = 8443


@dataclass(frozen=True)
class SandboxSettings:
    """Where the local emulators are; used by every system left unconfigured."""

    dir: Path
    host: str
    salesforce_port: int
    whmcs_port: int
    #: The Salesforce emulator's Pub/Sub API (gRPC over TLS).
    pubsub_port: int
    tls_names: tuple[str, ...]
    #: Neither Salesforce nor WHMCS is configured: development and tests.
    in_use: bool


def read_sandbox(env: Environment) -> SandboxSettings:
    salesforce = env.text("SALESFORCE_INSTANCE_URL")
    whmcs = env.text("WHMCS_URL")
    names = env.required_text("SANDBOX_TLS_NAMES", "")
    return SandboxSettings(
        dir=Path(env.required_text("SANDBOX_DIR", ".sandbox")).resolve(),
        host=env.required_text("SANDBOX_HOST", "127.0.0.1"),
        salesforce_port=env.whole("SANDBOX_SALESFORCE_PORT", DEFAULT_SANDBOX_SALESFORCE_PORT),
        whmcs_port=env.whole("SANDBOX_WHMCS_PORT", 8081),
        pubsub_port=env.whole("SANDBOX_PUBSUB_PORT", 7443),
        tls_names=tuple(n.strip() for n in names.split(",") if n.strip()),
        in_use=not (salesforce or whmcs),
    )


def read_namespace(env: Environment, sandbox: SandboxSettings) -> str:
    """`FULFILLMENT_NAMESPACE`, else `fulfillment`; a sandbox on another port than the default
    gets `fulfillment-sandbox-<port>`, so a second stack with other `SANDBOX_*` ports is
    independent of the first without any other setting."""
    explicit = env.text("FULFILLMENT_NAMESPACE")
    if explicit:
        return explicit
    if not sandbox.in_use or sandbox.salesforce_port == DEFAULT_SANDBOX_SALESFORCE_PORT:
        return DEFAULT_NAMESPACE
    return f"{DEFAULT_NAMESPACE}-sandbox-{sandbox.salesforce_port}"


@dataclass(frozen=True)
class RedisSettings:
    url: str
    #: Per-process pool size; callers wait for a free connection.
    max_connections: int
    pool_timeout_seconds: float
    #: `REDIS_URL` names a node of a Redis Cluster (see `notifier.placement`).
    cluster: bool = False
    #: Replicas each commit waits for (`WAIT`; see `notifier.replication`); 0: none.
    wait_replicas: int = 0
    wait_timeout_ms: int = 100


def read_redis(env: Environment) -> RedisSettings:
    return RedisSettings(
        url=env.required_text("REDIS_URL", DEFAULT_REDIS_URL),
        max_connections=env.whole("REDIS_MAX_CONNECTIONS", 8),
        pool_timeout_seconds=env.number("REDIS_POOL_TIMEOUT_SECONDS", 5),
        cluster=bool(env.flag("REDIS_CLUSTER", False)),
        wait_replicas=env.whole("REDIS_WAIT_REPLICAS", 0),
        wait_timeout_ms=env.whole("REDIS_WAIT_TIMEOUT_MS", 100),
    )


@dataclass(frozen=True)
class EventSettings:
    #: Entries kept per order (approximate trim).
    history_maxlen: int
    #: Seconds an order's state and history live after its last update (0: forever).
    ttl_seconds: int


def read_events(env: Environment) -> EventSettings:
    return EventSettings(
        history_maxlen=env.whole("ORDER_HISTORY_MAXLEN", 1000),
        ttl_seconds=env.whole("ORDER_TTL_SECONDS", 30 * 24 * 3600),
    )


@dataclass(frozen=True)
class BrokerSettings:
    url: str
    visibility_timeout_seconds: float
    #: RabbitMQ: `classic` or `quorum`.
    queue_type: str

    @property
    def is_rabbitmq(self) -> bool:
        return self.url.startswith(("amqp://", "amqps://", "pyamqp://"))


def read_broker(env: Environment, redis: RedisSettings) -> BrokerSettings:
    return BrokerSettings(
        url=env.text("CELERY_BROKER_URL") or redis.url,
        visibility_timeout_seconds=env.number("CELERY_VISIBILITY_TIMEOUT", 3600),
        queue_type=env.required_text("CELERY_QUEUE_TYPE", "classic"),
    )


@dataclass(frozen=True)
class RetrySettings:
    """How often and how patiently a step is retried after a transient error."""

    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float


def read_retry(env: Environment) -> RetrySettings:
    return RetrySettings(
        max_attempts=max(1, env.whole("FULFILLMENT_MAX_ATTEMPTS", 5)),
        backoff_seconds=env.number("RETRY_BACKOFF_SECONDS", 2),
        backoff_max_seconds=env.number("RETRY_BACKOFF_MAX_SECONDS", 60),
    )


@dataclass(frozen=True)
class RecoverySettings:
    """How quickly an order nobody is working on is noticed and taken over."""

    #: An order whose last event is older than this, and that nobody marks alive, is stuck.
    stuck_after_seconds: float
    #: How often a worker looks for stuck orders (0 disables the reconciler).
    reconcile_interval_seconds: float
    #: How long a running step's alive mark (and its provisioning lease) lasts unrenewed.
    alive_seconds: float
    #: Takeovers of one order before it is failed instead (a step that kills its worker).
    max_takeovers: int
    #: Test-only crash points armed in this process (never set in production).
    crashpoints: frozenset[str] = frozenset()
    #: `worker` kills the whole worker at a crash point; otherwise only the step's process.
    crash_scope: str = "process"


def read_recovery(env: Environment) -> RecoverySettings:
    points = env.required_text("FULFILLMENT_CRASHPOINTS", "")
    return RecoverySettings(
        stuck_after_seconds=env.number("STUCK_AFTER_SECONDS", 30),
        reconcile_interval_seconds=env.number("RECONCILE_INTERVAL_SECONDS", 10),
        alive_seconds=env.number("ALIVE_SECONDS", 15),
        max_takeovers=env.whole("FULFILLMENT_MAX_TAKEOVERS", 5),
        crashpoints=frozenset(p.strip() for p in points.split(",") if p.strip()),
        crash_scope=env.required_text("FULFILLMENT_CRASH_SCOPE", "process"),
    )


@dataclass(frozen=True)
class ObservabilitySettings:
    log_format: str
    log_level: str
    #: Where a process's metrics files go (prometheus-client's multiprocess mode).
    metrics_dir: str | None
    worker_metrics_port: int
    worker_metrics_address: str


def read_observability(env: Environment) -> ObservabilitySettings:
    return ObservabilitySettings(
        log_format=env.required_text("LOG_FORMAT", "json").lower(),
        log_level=env.required_text("LOG_LEVEL", "INFO").upper(),
        metrics_dir=env.text("PROMETHEUS_MULTIPROC_DIR"),
        worker_metrics_port=env.whole("WORKER_METRICS_PORT", 9808),
        worker_metrics_address=env.required_text("WORKER_METRICS_ADDRESS", "0.0.0.0"),
    )


@dataclass(frozen=True)
class ServerSettings:
    """The web server (gunicorn.conf.py) and the processes `make run` starts."""

    port: int
    #: The address the web process binds (one host's, to sit beside others on one machine).
    address: str
    concurrency: int
    worker_connections: int
    backlog: int
    graceful_timeout_seconds: int
    #: "-" is stdout; empty turns the access log off.
    access_log: str
    metrics_port: int | None
    metrics_address: str
    worker_concurrency: int
    flower_port: int
    flower_basic_auth: str | None


def read_server(env: Environment) -> ServerSettings:
    return ServerSettings(
        port=env.whole("PORT", 5000),
        address=env.required_text("WEB_ADDRESS", "0.0.0.0"),
        concurrency=env.whole("WEB_CONCURRENCY", 2),
        worker_connections=env.whole("WEB_WORKER_CONNECTIONS", 20000),
        backlog=env.whole("WEB_BACKLOG", 4096),
        graceful_timeout_seconds=env.whole("WEB_GRACEFUL_TIMEOUT", 10),
        access_log=env.exact("WEB_ACCESS_LOG", "-"),
        metrics_port=env.integer("METRICS_PORT") or None,
        metrics_address=env.required_text("METRICS_ADDRESS", "0.0.0.0"),
        worker_concurrency=env.whole("WORKER_CONCURRENCY", 4),
        flower_port=env.whole("FLOWER_PORT", 5555),
        flower_basic_auth=env.text("FLOWER_BASIC_AUTH"),
    )


@dataclass(frozen=True)
class SalesforceConfig:
    """Where Salesforce is. Unset instance URL: the sandbox's, whose credentials file the
    gateway reads when it first needs them (the sandbox may still be starting)."""

    instance_url: str
    client_id: str
    client_secret: str
    username: str | None
    private_key: str | None
    login_url: str
    audience: str
    api_version: str
    ca_bundle: str | None
    timeout: float
    status_field: str
    error_field: str
    whmcs_order_field: str
    client_field: str
    product_field: str
    #: Sandbox mode: the file holding the emulator's credentials.
    sandbox_credentials: Path | None

    @property
    def uses_jwt_bearer(self) -> bool:
        return bool(self.private_key and self.username)


@dataclass(frozen=True)
class WhmcsConfig:
    url: str
    identifier: str
    secret: str
    access_key: str | None
    ca_bundle: str | None
    timeout: float
    payment_method: str
    billing_cycle: str
    order_field_id: int
    sandbox_credentials: Path | None


SANDBOX_CREDENTIALS = "credentials.json"
SANDBOX_CERTIFICATE = "salesforce-cert.pem"


def read_salesforce(env: Environment, sandbox: SandboxSettings) -> SalesforceConfig:
    instance = env.text("SALESFORCE_INSTANCE_URL")
    ca_bundle = env.text("SALESFORCE_CA_BUNDLE")
    key_file = env.text("SALESFORCE_PRIVATE_KEY_FILE")
    sandboxed = instance is None
    if instance is None:
        instance = f"https://{sandbox.host}:{sandbox.salesforce_port}"
        ca_bundle = str(sandbox.dir / SANDBOX_CERTIFICATE)
    return SalesforceConfig(
        instance_url=instance.rstrip("/"),
        client_id=env.required_text("SALESFORCE_CLIENT_ID", ""),
        client_secret=env.required_text("SALESFORCE_CLIENT_SECRET", ""),
        username=env.text("SALESFORCE_USERNAME"),
        private_key=Path(key_file).read_text() if key_file else None,
        login_url=(env.text("SALESFORCE_LOGIN_URL") or instance).rstrip("/"),
        audience=env.required_text("SALESFORCE_AUDIENCE", "https://login.salesforce.com"),
        api_version=env.required_text("SALESFORCE_API_VERSION", "59.0"),
        ca_bundle=ca_bundle,
        timeout=env.number("SALESFORCE_TIMEOUT_SECONDS", 10),
        status_field=env.required_text("SALESFORCE_STATUS_FIELD", "Activation_Status__c"),
        error_field=env.required_text("SALESFORCE_ERROR_FIELD", "Activation_Error__c"),
        whmcs_order_field=env.required_text("SALESFORCE_WHMCS_ORDER_FIELD", "WHMCS_Order_Id__c"),
        client_field=env.required_text("SALESFORCE_WHMCS_CLIENT_FIELD", "WHMCS_Client_Id__c"),
        product_field=env.required_text("SALESFORCE_WHMCS_PRODUCT_FIELD", "WHMCS_Product_Id__c"),
        sandbox_credentials=sandbox.dir / SANDBOX_CREDENTIALS if sandboxed else None,
    )


def read_whmcs(env: Environment, sandbox: SandboxSettings) -> WhmcsConfig:
    url = env.text("WHMCS_URL")
    sandboxed = url is None
    if url is None:
        url = f"http://{sandbox.host}:{sandbox.whmcs_port}"
    return WhmcsConfig(
        url=url.rstrip("/"),
        identifier=env.required_text("WHMCS_IDENTIFIER", ""),
        secret=env.required_text("WHMCS_SECRET", ""),
        access_key=env.text("WHMCS_ACCESS_KEY"),
        ca_bundle=env.text("WHMCS_CA_BUNDLE"),
        timeout=env.number("WHMCS_TIMEOUT_SECONDS", 10),
        payment_method=env.required_text("WHMCS_PAYMENT_METHOD", "banktransfer"),
        billing_cycle=env.required_text("WHMCS_BILLING_CYCLE", "monthly"),
        order_field_id=env.whole("WHMCS_ORDER_FIELD_ID", 1),
        sandbox_credentials=sandbox.dir / SANDBOX_CREDENTIALS if sandboxed else None,
    )


@dataclass(frozen=True)
class WebSettings:
    """The web app's settings; Flask's `app.config` holds them under their variables' names."""

    #: HS256 shared secret, or a PEM public key for RS256/ES256 (jwt_algorithms says which).
    jwt_secret: str | None
    jwt_public_key: str | None
    #: Used only by `fulfillment token` to mint RS256/ES256 tokens in development.
    jwt_private_key: str | None
    jwt_algorithms: str
    jwt_audience: str | None
    jwt_issuer: str | None
    jwt_account_claim: str
    #: Seconds of clock skew tolerated on exp/iat/nbf.
    jwt_leeway_seconds: int
    #: Longest token lifetime accepted (exp - iat); 0 for no limit.
    jwt_max_ttl_seconds: int
    #: Signs stream tickets; derived from jwt_secret when unset.
    stream_ticket_secret: str | None
    stream_ticket_ttl_seconds: int
    #: Seconds of silence on a stream before a `: heartbeat` comment.
    sse_heartbeat_seconds: float
    #: The `retry:` a stream sends: how long browsers wait before reconnecting.
    sse_retry_ms: int
    #: Events queued for one stream before it counts as too slow and is disconnected.
    sse_queue_limit: int
    #: Open streams one customer account may hold, across web processes.
    sse_max_streams_per_credential: int
    #: A stream ends this long (at most a tenth of its credential's lifetime) before the
    #: credential expires, so the page renews it before there is a gap.
    sse_expiry_margin_seconds: float
    #: Streams one web process serves before it sheds new ones (None: what the connection
    #: and file descriptor limits allow, less room for API calls; see `admission`).
    sse_max_streams: int | None
    #: Streams opening at once (reading Redis, asking Salesforce); the rest wait their turn.
    sse_open_concurrency: int
    #: A shed connection is told to come back after a random time up to this many seconds.
    sse_shed_retry_seconds: float
    #: Streams per second a process expects to take back after ending them (shutdown).
    sse_reconnect_rate: float
    #: The demo home, sign-in and demo orders; on by default only against the sandbox.
    dev_tools: bool
    #: Bytes; larger request bodies get 413.
    max_content_length: int
    #: How long a looked-up owner of an order not submitted yet stays in Redis.
    ownership_cache_seconds: int
    #: Ownership lookup queries one web process has in flight at once.
    salesforce_lookup_concurrency: int
    #: Lookups a customer credential may spend on orders it may not see, per window.
    ownership_miss_limit: int
    ownership_miss_window_seconds: int
    #: Client health reports (`POST /api/client-events`) one credential may send per window.
    client_events_limit: int
    client_events_window_seconds: int
    #: Serve /metrics on this port (from gunicorn's master) instead of the web port.
    metrics_port: int | None
    #: Proxies in front whose X-Forwarded-For/Proto/Host are believed (0: none).
    trusted_proxies: int = 0

    def as_flask_config(self) -> dict[str, Any]:
        """The same values under their variables' names, for Flask's `app.config`."""
        return {f.name.upper(): getattr(self, f.name) for f in fields(self)}


def read_web(env: Environment, sandbox: SandboxSettings) -> WebSettings:
    secret = env.text("JWT_SECRET")
    public_key = _pem(env.text("JWT_PUBLIC_KEY"))
    if not secret and not public_key and sandbox.in_use:
        secret = development_secret(sandbox.dir, "jwt-secret")
    dev_tools = env.flag("DEV_TOOLS")
    return WebSettings(
        jwt_secret=secret,
        jwt_public_key=public_key,
        jwt_private_key=_pem(env.text("JWT_PRIVATE_KEY")),
        jwt_algorithms=env.required_text("JWT_ALGORITHMS", "HS256"),
        jwt_audience=env.text("JWT_AUDIENCE"),
        jwt_issuer=env.text("JWT_ISSUER"),
        jwt_account_claim=env.required_text("JWT_ACCOUNT_CLAIM", "account_id"),
        jwt_leeway_seconds=env.whole("JWT_LEEWAY_SECONDS", 30),
        jwt_max_ttl_seconds=env.whole("JWT_MAX_TTL_SECONDS", 24 * 3600),
        stream_ticket_secret=env.text("STREAM_TICKET_SECRET"),
        stream_ticket_ttl_seconds=env.whole("STREAM_TICKET_TTL_SECONDS", 300),
        sse_heartbeat_seconds=env.number("SSE_HEARTBEAT_SECONDS", 15),
        sse_retry_ms=env.whole("SSE_RETRY_MS", 3000),
        sse_queue_limit=env.whole("SSE_QUEUE_LIMIT", 256),
        sse_max_streams_per_credential=env.whole("SSE_MAX_STREAMS_PER_CREDENTIAL", 16),
        sse_expiry_margin_seconds=env.number("SSE_EXPIRY_MARGIN_SECONDS", 30),
        sse_max_streams=env.integer("SSE_MAX_STREAMS"),
        sse_open_concurrency=env.whole("SSE_OPEN_CONCURRENCY", 32),
        sse_shed_retry_seconds=env.number("SSE_SHED_RETRY_SECONDS", 60),
        sse_reconnect_rate=env.number("SSE_RECONNECT_RATE", 1000),
        dev_tools=sandbox.in_use if dev_tools is None else dev_tools,
        max_content_length=env.whole("MAX_CONTENT_LENGTH", 64 * 1024),
        ownership_cache_seconds=env.whole("OWNERSHIP_CACHE_SECONDS", 24 * 3600),
        salesforce_lookup_concurrency=env.whole("SALESFORCE_LOOKUP_CONCURRENCY", 8),
        ownership_miss_limit=env.whole("OWNERSHIP_MISS_LIMIT", 10),
        ownership_miss_window_seconds=env.whole("OWNERSHIP_MISS_WINDOW_SECONDS", 900),
        client_events_limit=env.whole("CLIENT_EVENTS_LIMIT", 30),
        client_events_window_seconds=env.whole("CLIENT_EVENTS_WINDOW_SECONDS", 300),
        metrics_port=env.integer("METRICS_PORT") or None,
        trusted_proxies=env.whole("WEB_TRUSTED_PROXIES", 0),
    )


def _pem(value: str | None) -> str | None:
    """A PEM given inline, or a path to one."""
    if value and not value.lstrip().startswith("-----"):
        return Path(value).read_text()
    return value


def development_secret(directory: Path, name: str) -> str:
    """A random secret kept in the sandbox directory, shared by every process of a stack."""
    path = directory / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{name}.{os.getpid()}")
        draft.write_text(secrets.token_urlsafe(48))
        draft.chmod(0o600)
        # link() refuses to overwrite: when two processes race, the first secret wins whole.
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return path.read_text().strip()
