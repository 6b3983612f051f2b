"""The HTTP API's answers: status codes, JSON errors, and the auth rules (CONTRACT §3)."""

from __future__ import annotations

import time

import jwt
import pytest

from notifier import normalize_order_id

SECRET_ALT = "another-secret-that-is-long-enough-for-hs256!"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    assert set(response.json) == {"error"}
    assert set(response.json["error"]) == {"code", "message"}
    if code:
        assert response.json["error"]["code"] == code


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["redis"] == "up"


@pytest.mark.parametrize(
    "bad_id",
    ["nope", "801", "8015g00000AbCdEAAA", "0015g00000AbCdEAAV", "8015g00000AbCdE%20", "a" * 300],
)
def test_malformed_order_ids_are_400(client, tokens, bad_id):
    headers = tokens.headers(tokens.service())
    assert_error(
        client.post(f"/api/orders/{bad_id}/fulfill", headers=headers), 400, "INVALID_ORDER_ID"
    )
    assert_error(client.get(f"/api/orders/{bad_id}", headers=headers), 400, "INVALID_ORDER_ID")


def claims(**extra: object) -> dict[str, object]:
    return {"sub": "svc", "scope": "orders:fulfill", "exp": int(time.time()) + 300, **extra}


@pytest.mark.parametrize(
    ("make_headers", "status", "code"),
    [
        (lambda app: {}, 401, "TOKEN_MISSING"),
        (lambda app: {"Authorization": "Basic dXNlcjpwYXNz"}, 401, "TOKEN_MISSING"),
        (lambda app: bearer("not.a.jwt"), 401, "TOKEN_MALFORMED"),
        (
            lambda app: bearer(
                jwt.encode(claims(exp=int(time.time()) - 120), app.config["JWT_SECRET"])
            ),
            401,
            "TOKEN_EXPIRED",
        ),
        (lambda app: bearer(jwt.encode(claims(), SECRET_ALT)), 401, "TOKEN_INVALID"),
        (lambda app: bearer(jwt.encode(claims(), None, algorithm="none")), 401, "TOKEN_ALGORITHM"),
        (
            lambda app: bearer(
                jwt.encode({"sub": "svc", "scope": "orders:fulfill"}, app.config["JWT_SECRET"])
            ),
            401,
            "TOKEN_INVALID",
        ),
        (
            lambda app: bearer(jwt.encode(claims(scope="orders:read"), app.config["JWT_SECRET"])),
            403,
            "SCOPE_MISSING",
        ),
        (
            lambda app: bearer(
                jwt.encode(
                    claims(scope=None, account_id="001000000000001AAA"), app.config["JWT_SECRET"]
                )
            ),
            403,
            "SCOPE_MISSING",
        ),
    ],
    ids=[
        "missing",
        "basic",
        "garbage",
        "expired",
        "wrong-key",
        "alg-none",
        "no-exp",
        "wrong-scope",
        "customer",
    ],
)
def test_the_trigger_requires_a_valid_service_token(app, client, order, make_headers, status, code):
    response = client.post(f"/api/orders/{order['orderId']}/fulfill", headers=make_headers(app))
    assert_error(response, status, code)


def test_an_audience_is_checked_when_configured(sandbox, order):
    from app import create_app

    app = create_app({"JWT_AUDIENCE": "orders-api"})
    client = app.test_client()
    secret = app.config["JWT_SECRET"]
    url = f"/api/orders/{order['orderId']}"
    wrong = jwt.encode(claims(scope="orders:read", aud="someone-else"), secret)
    right = jwt.encode(claims(scope="orders:read", aud="orders-api"), secret)
    assert_error(client.get(url, headers=bearer(wrong)), 401, "TOKEN_INVALID")
    assert client.get(url, headers=bearer(right)).status_code == 200


def test_trigger_bodies_must_be_json_objects(client, tokens, order):
    url = f"/api/orders/{order['orderId']}/fulfill"
    headers = tokens.headers(tokens.service())
    assert_error(
        client.post(url, headers=headers, data="{bad", content_type="application/json"),
        400,
        "INVALID_JSON",
    )
    assert_error(
        client.post(url, headers=headers, data="[1]", content_type="application/json"),
        400,
        "INVALID_JSON",
    )
    assert_error(client.post(url, headers=headers, data="x=1", content_type="text/plain"), 415)
    big = "{" + '"k": "' + "x" * 100_000 + '"}'
    assert_error(client.post(url, headers=headers, data=big, content_type="application/json"), 413)


def test_wrong_methods_are_405_json(client, order):
    response = client.delete(f"/api/orders/{order['orderId']}")
    assert_error(response, 405)
    assert "GET" in response.headers["Allow"]
    assert_error(client.get("/api/nothing-here"), 404)


def test_a_customer_reads_only_orders_of_its_account(client, tokens, order, sandbox_client):
    url = f"/api/orders/{order['orderId']}"
    mine = client.get(url, headers=tokens.headers(tokens.customer(order["accountId"])))
    assert mine.status_code == 200
    assert mine.json["stage"] == "queued" and mine.json["orderId"] == order["orderId"]
    assert [h["stage"] for h in mine.json["history"]] == ["queued"]

    # The 15-character form of the same account id is the same account.
    short = client.get(url, headers=tokens.headers(tokens.customer(order["accountId"][:15])))
    assert short.status_code == 200

    other = sandbox_client.create_order()["accountId"]
    assert_error(
        client.get(url, headers=tokens.headers(tokens.customer(other))), 403, "OTHER_ACCOUNT"
    )


def test_the_service_scope_reads_any_order(client, tokens, order):
    response = client.get(
        f"/api/orders/{order['orderId']}", headers=tokens.headers(tokens.service())
    )
    assert response.status_code == 200


def test_unknown_orders_are_404(client, tokens, sandbox_client, redis_client):
    missing = normalize_order_id("801000000000404")
    customer = tokens.headers(tokens.customer(sandbox_client.create_order()["accountId"]))
    assert_error(client.get(f"/api/orders/{missing}", headers=customer), 404, "ORDER_NOT_FOUND")
    service = tokens.headers(tokens.service())
    assert_error(client.get(f"/api/orders/{missing}", headers=service), 404, "ORDER_NOT_FOUND")


def test_orders_not_started_yet_answer_an_empty_snapshot(client, tokens, sandbox_client):
    # Known to Salesforce but never submitted: the owner and the service both see it waiting.
    fresh = sandbox_client.create_order()
    pending = {"orderId": fresh["orderId"], "stage": None, "status": None, "history": []}
    calls = sandbox_client.api_calls()
    for token in (tokens.customer(fresh["accountId"]), tokens.service()):
        response = client.get(f"/api/orders/{fresh['orderId']}", headers=tokens.headers(token))
        assert response.status_code == 200
        body = dict(response.json)
        # What was ordered came with the ownership lookup's one read: no call of its own.
        summary = body.pop("order")
        assert body == pending
        assert summary["number"] == fresh["orderNumber"] and summary["items"]
        assert all(item["quantity"] >= 1 and item["name"] for item in summary["items"])
    assert sandbox_client.api_calls() - calls == 1


def test_tokens_never_appear_in_error_messages(client, tokens, order, caplog):
    token = jwt.encode(claims(), SECRET_ALT)
    response = client.post(f"/api/orders/{order['orderId']}/fulfill", headers=bearer(token))
    assert token not in response.get_data(as_text=True)
    assert token not in caplog.text


def test_the_order_page_is_html_and_checks_its_id(client, order):
    page = client.get(f"/orders/{order['orderId']}")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert f'data-order-id="{order["orderId"]}"' in page.get_data(as_text=True)
    assert_error(client.get("/orders/not-an-order"), 400, "INVALID_ORDER_ID")


def test_dev_tools_exist_only_against_the_sandbox(sandbox):
    from app import create_app

    production_like = create_app({"DEV_TOOLS": False}).test_client()
    assert_error(production_like.get("/"), 404)
    assert_error(production_like.post("/dev/sign-in"), 404)
    development = create_app().test_client()
    assert development.get("/").status_code == 200
    signed_in = development.post("/dev/sign-in")
    assert signed_in.status_code == 303
    cookie = signed_in.headers["Set-Cookie"]
    assert "access_token=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
