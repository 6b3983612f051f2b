"""Web settings: defaults, then the environment (a `.env` file is read first), then overrides.

Every name here is listed, with its default, in the README's configuration table.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

from integrations.settings import sandbox_dir, uses_sandbox
from notifier.admission import default_max_streams

DEFAULTS: dict[str, Any] = {
    #: HS256 shared secret, or a PEM public key for RS256/ES256 (JWT_ALGORITHMS says which).
    "JWT_SECRET": None,
    "JWT_PUBLIC_KEY": None,
    #: Private key used only by `fulfillment token` to mint RS256/ES256 tokens in development.
    "JWT_PRIVATE_KEY": None,
    "JWT_ALGORITHMS": "HS256",
    "JWT_AUDIENCE": None,
    "JWT_ISSUER": None,
    "JWT_ACCOUNT_CLAIM": "account_id",
    #: Seconds of clock skew tolerated on exp/iat/nbf.
    "JWT_LEEWAY_SECONDS": 30,
    #: Secret signing stream tickets; derived from JWT_SECRET when unset.
    "STREAM_TICKET_SECRET": None,
    "STREAM_TICKET_TTL_SECONDS": 300,
    #: Seconds of silence on a stream before a `: heartbeat` comment.
    "SSE_HEARTBEAT_SECONDS": 15,
    #: The `retry:` a stream sends: how long browsers wait before reconnecting.
    "SSE_RETRY_MS": 3000,
    #: Events queued for one stream before it counts as too slow and is disconnected.
    "SSE_QUEUE_LIMIT": 256,
    #: The demo home, sign-in and demo orders; on by default only against the sandbox.
    "DEV_TOOLS": None,
    #: Bytes; larger request bodies get 413.
    "MAX_CONTENT_LENGTH": 64 * 1024,
    #: How long a looked-up AccountId of an order not submitted yet stays in Redis (a
    #: submitted order's owner lives as long as its state).
    "OWNERSHIP_CACHE_SECONDS": 24 * 3600,
    #: Ownership lookup queries one web process has in flight at once (each batches up to
    #: 200 orders; others wait their turn).
    "SALESFORCE_LOOKUP_CONCURRENCY": 8,
    #: Lookups a customer credential may spend on orders it may not see (unknown to Salesforce,
    #: or another account's) per window before it is answered 429.
    "OWNERSHIP_MISS_LIMIT": 10,
    "OWNERSHIP_MISS_WINDOW_SECONDS": 900,
    #: Longest token lifetime accepted (exp - iat); 0 for no limit.
    "JWT_MAX_TTL_SECONDS": 24 * 3600,
    #: Open streams one customer account may hold, across web processes.
    "SSE_MAX_STREAMS_PER_CREDENTIAL": 16,
    #: A stream ends this long (at most a tenth of its credential's lifetime) before the
    #: credential expires, so the page renews it before there is a gap.
    "SSE_EXPIRY_MARGIN_SECONDS": 30,
    #: Streams one web process serves before it sheds new ones (unset: what
    #: WEB_WORKER_CONNECTIONS and the file descriptor limit allow, less room for API calls).
    "SSE_MAX_STREAMS": None,
    #: Streams opening at once (reading Redis, asking Salesforce); the rest wait their turn.
    "SSE_OPEN_CONCURRENCY": 32,
    #: A shed connection is told to come back after a random time up to this many seconds.
    "SSE_SHED_RETRY_SECONDS": 60,
    #: Streams per second a process expects to take back: streams it ends (shutdown, Redis
    #: lost) are told to reconnect spread over open streams / this rate.
    "SSE_RECONNECT_RATE": 1000,
    #: Serve /metrics on this port instead of the web port (gunicorn.conf.py reads it too).
    "METRICS_PORT": None,
}

_INT_KEYS = {
    "SSE_RETRY_MS",
    "SSE_QUEUE_LIMIT",
    "JWT_LEEWAY_SECONDS",
    "JWT_MAX_TTL_SECONDS",
    "STREAM_TICKET_TTL_SECONDS",
    "MAX_CONTENT_LENGTH",
    "OWNERSHIP_CACHE_SECONDS",
    "SALESFORCE_LOOKUP_CONCURRENCY",
    "OWNERSHIP_MISS_LIMIT",
    "OWNERSHIP_MISS_WINDOW_SECONDS",
    "SSE_MAX_STREAMS_PER_CREDENTIAL",
    "SSE_MAX_STREAMS",
    "SSE_OPEN_CONCURRENCY",
    "METRICS_PORT",
}
_FLOAT_KEYS = {
    "SSE_HEARTBEAT_SECONDS",
    "SSE_EXPIRY_MARGIN_SECONDS",
    "SSE_SHED_RETRY_SECONDS",
    "SSE_RECONNECT_RATE",
}


def load_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then environment, then `overrides` (tests)."""
    load_dotenv(override=False)
    settings = dict(DEFAULTS)
    for key in DEFAULTS:
        value = os.environ.get(key)
        if value:
            settings[key] = _coerce(key, value)
    settings.update(overrides or {})
    if settings["SSE_MAX_STREAMS"] is None:
        connections = int(os.environ.get("WEB_WORKER_CONNECTIONS") or 20000)
        settings["SSE_MAX_STREAMS"] = default_max_streams(connections)
    if settings["DEV_TOOLS"] is None:
        settings["DEV_TOOLS"] = uses_sandbox()
    if not settings["JWT_SECRET"] and not settings["JWT_PUBLIC_KEY"] and uses_sandbox():
        settings["JWT_SECRET"] = development_secret("jwt-secret")
    return settings


def _coerce(key: str, value: str) -> Any:
    if key == "DEV_TOOLS":
        return value.lower() in ("1", "true", "yes", "on")
    if key in _INT_KEYS:
        return int(value)
    if key in _FLOAT_KEYS:
        return float(value)
    if key in ("JWT_PUBLIC_KEY", "JWT_PRIVATE_KEY") and not value.lstrip().startswith("-----"):
        return Path(value).read_text()  # a path to a PEM file
    return value


def development_secret(name: str) -> str:
    """A random secret kept in SANDBOX_DIR, shared by every process of a development stack."""
    path = sandbox_dir() / name
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
