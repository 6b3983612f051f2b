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
    #: How long an order's AccountId (for ownership checks) stays cached in Redis.
    "OWNERSHIP_CACHE_SECONDS": 24 * 3600,
}

_INT_KEYS = {
    "SSE_RETRY_MS",
    "SSE_QUEUE_LIMIT",
    "JWT_LEEWAY_SECONDS",
    "STREAM_TICKET_TTL_SECONDS",
    "MAX_CONTENT_LENGTH",
    "OWNERSHIP_CACHE_SECONDS",
}
_FLOAT_KEYS = {"SSE_HEARTBEAT_SECONDS"}


def load_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then environment, then `overrides` (tests)."""
    load_dotenv(override=False)
    settings = dict(DEFAULTS)
    for key in DEFAULTS:
        value = os.environ.get(key)
        if value:
            settings[key] = _coerce(key, value)
    settings.update(overrides or {})
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
