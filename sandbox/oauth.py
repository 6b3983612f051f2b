"""Salesforce's OAuth 2.0 token endpoint: the three grants, and the access tokens it issues.

Grants accepted (`POST /services/oauth2/token`, form-encoded):

- `client_credentials`, the client id and secret in HTTP Basic auth or in the form;
- `urn:ietf:params:oauth:grant-type:jwt-bearer` with an `assertion` whose `iss` is the client
  id, `sub` the integration username and `exp` (number or numeric string) in the future. The
  signature is not verified: the sandbox has no way to know the client's public key;
- `password` with the client id and secret plus username and password (the password is the
  client secret).

Tokens live in memory, so a restarted sandbox answers 401 to old ones, as a revoked session
would be answered; clients are expected to log in again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

import jwt

#: The sandbox org's id: in every token's identity URL, `tenantid` on the Pub/Sub API.
ORG_ID = "00D000000000001EAA"
USER_ID = "005000000000001AAA"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class GrantError(Exception):
    """Raised when a token request is refused; renders as `{"error", "error_description"}`."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class TokenStore:
    """The access tokens issued and not yet expired, shared by all request threads."""

    def __init__(self) -> None:
        self._tokens: set[str] = set()
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        with self._lock:
            self._tokens.add(token)
        return token

    def is_valid(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens

    def revoke(self, token: str) -> None:
        """Invalidate one token, as its session expiring would."""
        with self._lock:
            self._tokens.discard(token)

    def expire_all(self) -> None:
        """Invalidate every token issued so far; tokens issued afterwards work."""
        with self._lock:
            self._tokens.clear()


def check_grant(
    form: Mapping[str, str], basic: tuple[str, str] | None, credentials: Mapping[str, str]
) -> None:
    """Accept the token request or raise GrantError. `credentials` is the Salesforce part."""
    grant = form.get("grant_type", "")
    client = basic or (form.get("client_id", ""), form.get("client_secret", ""))
    if grant == "client_credentials":
        _check_client(client, credentials)
    elif grant == "password":
        _check_client(client, credentials)
        if not (
            _same(form.get("username", ""), credentials["username"])
            and _same(form.get("password", ""), credentials["clientSecret"])
        ):
            raise GrantError("invalid_grant", "authentication failure")
    elif grant == JWT_BEARER:
        _check_assertion(form.get("assertion", ""), credentials)
    else:
        raise GrantError("unsupported_grant_type", "grant type not supported")


def _check_client(client: tuple[str, str], credentials: Mapping[str, str]) -> None:
    client_id, client_secret = client
    if not _same(client_id, credentials["clientId"]):
        raise GrantError("invalid_client", "client identifier invalid")
    if not _same(client_secret, credentials["clientSecret"]):
        raise GrantError("invalid_client", "invalid client credentials")


def _check_assertion(assertion: str, credentials: Mapping[str, str]) -> None:
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise GrantError("invalid_grant", "invalid assertion") from None
    if not _same(str(claims.get("iss", "")), credentials["clientId"]):
        raise GrantError("invalid_client", "client identifier invalid")
    if not _same(str(claims.get("sub", "")), credentials["username"]):
        raise GrantError("invalid_grant", "authentication failure")
    try:
        # simple-salesforce sends exp as a string of unix seconds.
        expires = float(claims["exp"])
    except (KeyError, TypeError, ValueError):
        raise GrantError("invalid_grant", "invalid assertion") from None
    if expires <= time.time():
        raise GrantError("invalid_grant", "expired authorization code")


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode(), expected.encode())


def token_body(token: str, instance_url: str, credentials: Mapping[str, str]) -> dict[str, Any]:
    """The success body Salesforce returns (simple-salesforce reads only the first two)."""
    identity = f"{instance_url}/id/{ORG_ID}/{USER_ID}"
    issued_at = str(int(time.time() * 1000))
    digest = hmac.new(
        credentials["clientSecret"].encode(), (identity + issued_at).encode(), hashlib.sha256
    ).digest()
    return {
        "access_token": token,
        "instance_url": instance_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": base64.b64encode(digest).decode(),
        "scope": "api",
    }
