"""Hostile input: whatever arrives, the API answers a clear 4xx (or 2xx) in JSON, never a 5xx
or a stack trace. Property-based (hypothesis) over ids, headers, bodies, tokens and event ids."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
import time

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier import normalize_order_id

HEADER_TEXT = st.text(
    alphabet=string.printable.replace("\r", "")
    .replace("\n", "")
    .replace("\x0b", "")
    .replace("\x0c", ""),
    max_size=300,
)
ORDER_IDS = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.ascii_letters + string.digits, min_size=15, max_size=18),
    st.builds(
        lambda body: normalize_order_id("801" + body) or "801",
        st.text(alphabet=string.ascii_letters + string.digits, min_size=12, max_size=12),
    ),
)
BODIES = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=2000).map(str.encode),
    st.just(b"{}"),
    st.just(b"[]"),
    st.just(b"null"),
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
        "application/json; charset=utf-8",
        "multipart/form-data; boundary=x",
    ]
)
PATHS = st.sampled_from(
    [
        "/api/orders/{id}/fulfill",
        "/api/orders/{id}/retry",
        "/api/orders/{id}",
        "/api/orders/{id}/stream-ticket",
        "/api/orders/{id}/events",
        "/orders/{id}",
    ]
)
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def tokens_for(app):
    secret = app.config["JWT_SECRET"]
    now = int(time.time())
    return st.one_of(
        HEADER_TEXT,
        st.just(
            "Bearer "
            + jwt.encode(
                {"sub": "s", "scope": "orders:fulfill orders:read", "exp": now + 600}, secret
            )
        ),
        st.builds(
            lambda claims: "Bearer " + raw_jwt(claims, secret),
            st.dictionaries(
                st.sampled_from(["sub", "exp", "scope", "account_id", "aud", "iss", "nbf", "iat"]),
                st.one_of(
                    st.integers(-(2**40), 2**40),
                    st.text(max_size=20),
                    st.none(),
                    st.lists(st.integers(), max_size=3),
                ),
                max_size=6,
            ),
        ),
        st.builds(lambda t: "Bearer " + t, HEADER_TEXT),
    )


def raw_jwt(claims: dict, secret: str) -> str:
    """HS256-sign any claims, even ones PyJWT would refuse to encode (a hostile client's)."""

    def part(data: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def assert_clean(response, method: str = "GET") -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if method == "HEAD":
        return  # no body to look at
    text = (
        response.get_data(as_text=True)
        if response.status_code != 200 or not response.is_streamed
        else ""
    )
    assert "Traceback" not in text and 'File "' not in text
    if (response.status_code >= 400 and response.status_code != 405) or response.status_code in (
        401,
        403,
    ):
        assert response.is_json and set(response.json) == {"error"}


@pytest.fixture
def fuzz_client(app, sandbox, redis_client):
    return app.test_client()


def test_any_request_gets_a_clean_answer(app, fuzz_client):
    @FUZZ
    @given(
        method=METHODS,
        path=PATHS,
        order_id=ORDER_IDS,
        auth=tokens_for(app),
        body=BODIES,
        content_type=CONTENT_TYPES,
        last_event_id=HEADER_TEXT,
    )
    def check(method, path, order_id, auth, body, content_type, last_event_id):
        url = path.format(id=order_id.replace("/", "%2F").replace("?", "%3F").replace("#", "%23"))
        headers = {"Authorization": auth, "Last-Event-ID": last_event_id}
        response = fuzz_client.open(
            url,
            method=method,
            data=body,
            content_type=content_type or None,
            headers=headers,
            buffered=False,
        )
        try:
            assert_clean(response, method)
        finally:
            response.close()

    check()


def test_stream_resume_points_never_break_the_stream(app, fuzz_client, order, tokens):
    headers = tokens.headers(tokens.service())

    @FUZZ
    @given(last_event_id=HEADER_TEXT, query=st.text(max_size=60))
    def check(last_event_id, query):
        from urllib.parse import quote

        url = f"/api/orders/{order['orderId']}/events?lastEventId={quote(query)}"
        response = fuzz_client.get(
            url, headers={**headers, "Last-Event-ID": last_event_id}, buffered=False
        )
        try:
            assert response.status_code in (200, 204)
            if response.status_code == 200:
                first = next(iter(response.response))
                assert first.startswith(b"retry: ")
        finally:
            response.close()

    check()


def test_oversize_and_deeply_nested_bodies_are_4xx(fuzz_client, tokens, order):
    url = f"/api/orders/{order['orderId']}/fulfill"
    headers = tokens.headers(tokens.service())
    huge = b'{"k": "' + b"x" * 1_000_000 + b'"}'
    nested = b"[" * 100_000 + b"]" * 100_000
    for body in (huge, nested, b"\xff\xfe\x00", b'{"a": 1e999999}'):
        response = fuzz_client.post(
            url, data=body, content_type="application/json", headers=headers
        )
        assert_clean(response)
        assert response.status_code in (200, 202, 400, 413)
