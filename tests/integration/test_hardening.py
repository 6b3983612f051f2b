"""The smaller holes a hostile-input pass found, each closed: bodies, event ids, logs,
headers, the metrics port, the development tools and token lifetimes."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
import requests
import yaml

from tests.sse import web_process

ROOT = Path(__file__).resolve().parents[2]


def test_deeply_nested_json_is_a_400(client, tokens, order):
    for depth in (1_000, 30_000):  # both under the body size limit
        response = client.post(
            f"/api/orders/{order['orderId']}/fulfill",
            data=b"[" * depth + b"]" * depth,
            content_type="application/json",
            headers=tokens.headers(tokens.service()),
        )
        assert response.status_code == 400
        assert response.json["error"]["code"] == "INVALID_JSON"


@pytest.mark.parametrize(
    "last_event_id",
    [f"{2**64}-0", f"0-{2**64}", f"{2**64 - 1}-{2**64 - 1}", "99999999999999999999-1"],
)
def test_an_out_of_range_event_id_gets_a_fresh_snapshot(
    app, client, tokens, order, caplog, last_event_id
):
    response = client.get(
        f"/api/orders/{order['orderId']}/events",
        headers={**tokens.headers(tokens.service()), "Last-Event-ID": last_event_id},
        buffered=False,
    )
    first = next(iter(response.response))  # `retry:` and the catch-up go out as one write
    assert first.startswith(b"retry: ")
    assert b"\n\nevent: order.snapshot\n" in first
    response.close()
    assert "stream deferred" not in caplog.text  # before: Redis refused the id, and we logged


def test_a_token_in_the_path_never_reaches_the_access_log(sandbox, tokens, tmp_path):
    log_file = tmp_path / "web.log"
    token = tokens.service()
    with web_process(WEB_ACCESS_LOG="-", log_file=log_file) as web:
        requests.get(f"{web.url}/api/orders/{token}/events", timeout=5)
        requests.get(f"{web.url}/orders/{token}", timeout=5)
    logged = log_file.read_text()
    assert '"path": "/api/orders/[redacted]/events"' in logged
    assert token.split(".")[1] not in logged


def test_pages_carry_the_security_headers(client, order):
    for path in (f"/orders/{order['orderId']}", "/"):
        page = client.get(path)
        assert page.mimetype == "text/html"
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "worker-src 'self'" in policy  # the SharedWorker sharing one stream per browser
        assert "frame-ancestors 'none'" in policy
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"
    assert client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"


def test_metrics_can_live_on_a_port_of_their_own(sandbox):
    from sandbox.redis_server import free_port

    port = free_port()
    with web_process(METRICS_PORT=str(port)) as web:
        assert requests.get(f"{web.url}/metrics", timeout=5).status_code == 404
        private = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert private.status_code == 200
    assert "fulfillment_" in private.text


@pytest.mark.parametrize(
    ("target", "lands_on"),
    [
        ("/orders/8015g00000AbCdEAAV", "/orders/8015g00000AbCdEAAV"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("/x\r\nSet-Cookie: stolen=1", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_the_dev_sign_in_only_returns_to_local_pages(client, target, lands_on):
    response = client.post("/dev/sign-in", data={"next": target})
    assert response.status_code == 303
    assert response.headers["Location"] == lands_on
    assert "stolen" not in response.headers.get("Set-Cookie", "")


def test_cookie_authenticated_writes_from_another_site_are_refused(client, tokens, order):
    client.set_cookie("access_token", tokens.customer(order["accountId"]))
    ticket = f"/api/orders/{order['orderId']}/stream-ticket"
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        for path in (ticket, "/dev/orders", "/dev/sign-in", "/dev/sign-out"):
            refused = client.post(path, headers=headers)
            assert refused.status_code == 403, path
            assert refused.json["error"]["code"] == "CROSS_SITE_REQUEST"
    same_site = client.post(ticket, headers={"Origin": "http://localhost"})
    assert same_site.status_code == 201


def test_the_compose_file_publishes_only_on_loopback_and_keeps_dev_tools_off():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    published = [
        str(port) for service in compose["services"].values() for port in service.get("ports", [])
    ]
    assert published and all(port.startswith("127.0.0.1:") for port in published)
    for web in ("web-a", "web-b"):
        assert compose["services"][web]["environment"]["DEV_TOOLS"] == "${DEV_TOOLS:-false}"


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"iat": 0, "exp": 10**400}, "TOKEN_INVALID"),
        ({"exp": "soon"}, "TOKEN_INVALID"),
        ({"exp": "2000000000"}, "TOKEN_INVALID"),  # a string, however numeric
        ({"exp": True}, "TOKEN_EXPIRED"),  # PyJWT reads True as 1
        ({"iat": "now", "exp": "later"}, "TOKEN_INVALID"),
        ({"exp": 2**31}, "TOKEN_LIFETIME"),  # no iat: counted from now
        ({"iat": "NOW", "exp": "NOW+2d"}, "TOKEN_LIFETIME"),
    ],
)
def test_absurd_and_too_long_lived_tokens_are_401(app, client, order, claims, code):
    now = int(time.time())
    resolved = {
        key: (now if value == "NOW" else now + 2 * 86400 if value == "NOW+2d" else value)
        for key, value in claims.items()
    }
    token = jwt.encode(
        {"sub": "u", "account_id": order["accountId"], **resolved}, app.config["JWT_SECRET"]
    )
    response = client.get(
        f"/api/orders/{order['orderId']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.json["error"]["code"] == code
    stream = client.get(
        f"/api/orders/{order['orderId']}/events",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert stream.status_code == 401


def test_a_token_within_the_lifetime_limit_is_accepted(app, client, order):
    now = int(time.time())
    claims = {"sub": "u", "account_id": order["accountId"], "iat": now, "exp": now + 3600}
    token = jwt.encode(claims, app.config["JWT_SECRET"])
    response = client.get(
        f"/api/orders/{order['orderId']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
