"""Credential rules without services: token lifetimes and when a stream must end."""

from __future__ import annotations

import time

import jwt
import pytest

import settings
from app.auth import Authenticator, AuthError, Principal

SECRET = "a-test-secret-that-is-long-enough-for-hs256!"


def authenticator(**overrides: str) -> Authenticator:
    """An authenticator as the settings make it from these variables (no environment)."""
    variables = {"JWT_SECRET": SECRET, "JWT_MAX_TTL_SECONDS": "3600", **overrides}
    return Authenticator(settings.from_environment(variables).web)


def principal(lifetime: float, remaining: float) -> Principal:
    now = time.time()
    return Principal(
        subject="u",
        account_id="001000000000001AAA",
        scopes=frozenset(),
        expires_at=now + remaining,
        issued_at=now + remaining - lifetime,
    )


def test_a_stream_ends_a_margin_before_its_credential_expires():
    auth = authenticator()
    # A five-minute ticket: 30 s early. A ten-second token: a tenth of its life, 1 s early.
    assert auth.stream_deadline(principal(300, 300)) == pytest.approx(time.time() + 270, abs=1)
    assert auth.stream_deadline(principal(10, 10)) == pytest.approx(time.time() + 9, abs=0.5)


def test_a_credential_inside_its_margin_is_refused_for_streams_and_tickets():
    auth = authenticator()
    lapsing = principal(600, 20)  # 20 s left, margin 30 s
    with pytest.raises(AuthError) as refused:
        auth.check_streamable(lapsing)
    assert refused.value.code == "TOKEN_EXPIRED"
    with pytest.raises(AuthError):
        auth.issue_ticket(lapsing, "8015g00000AbCdEAAV")
    ticket, expires_in = auth.issue_ticket(principal(600, 200), "8015g00000AbCdEAAV")
    assert 0 < expires_in <= 200
    assert auth.check_streamable(auth.verify_ticket(ticket)) > time.time()


def test_token_lifetimes_are_capped():
    now = int(time.time())
    auth = authenticator(JWT_MAX_TTL_SECONDS=3600)
    ok = jwt.encode({"sub": "u", "iat": now, "exp": now + 3600}, SECRET)
    assert auth.verify(ok).expires_at == now + 3600
    for claims in ({"iat": now, "exp": now + 3601}, {"exp": now + 7200}):
        with pytest.raises(AuthError) as refused:
            auth.verify(jwt.encode({"sub": "u", **claims}, SECRET))
        assert refused.value.code == "TOKEN_LIFETIME"
    unlimited = authenticator(JWT_MAX_TTL_SECONDS=0)
    assert unlimited.verify(jwt.encode({"sub": "u", "exp": now + 10**8}, SECRET))
