"""Who may open an order's stream: the auth matrix with the exact status for each case."""

from __future__ import annotations

import time

import jwt
import pytest

OTHER_SECRET = "another-secret-that-is-long-enough-for-hs256!"


def stream_url(order_id: str, query: str = "") -> str:
    return f"/api/orders/{order_id}/events{query}"


def get_stream(client, url: str, **kwargs):
    response = client.get(url, buffered=False, **kwargs)
    status, body = response.status_code, None
    if status != 200:
        body = response.get_json(silent=True)
    response.close()  # frees the subscription, as a disconnecting browser would
    return status, body


def customer_claims(app, account_id: str, **extra: object) -> str:
    claims = {
        "sub": "u1",
        app.config["JWT_ACCOUNT_CLAIM"]: account_id,
        "exp": int(time.time()) + 300,
    }
    claims.update(extra)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, app.config["JWT_SECRET"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_owner_may_watch_with_a_header_a_cookie_or_a_ticket(app, client, tokens, order):
    token = tokens.customer(order["accountId"])
    assert get_stream(client, stream_url(order["orderId"]), headers=bearer(token))[0] == 200

    client.set_cookie("access_token", token)
    assert get_stream(client, stream_url(order["orderId"]))[0] == 200
    client.delete_cookie("access_token")

    issued = client.post(f"/api/orders/{order['orderId']}/stream-ticket", headers=bearer(token))
    assert issued.status_code == 201
    assert 0 < issued.json["expiresIn"] <= 300
    ticket = issued.json["ticket"]
    assert get_stream(client, stream_url(order["orderId"], f"?ticket={ticket}"))[0] == 200


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("missing", 401, "TOKEN_MISSING"),
        ("expired", 401, "TOKEN_EXPIRED"),
        ("wrong-key", 401, "TOKEN_INVALID"),
        ("alg-none", 401, "TOKEN_ALGORITHM"),
        ("no-exp", 401, "TOKEN_INVALID"),
        ("jwt-in-query", 401, "TOKEN_IN_QUERY"),
        ("jwt-as-ticket", 401, "TOKEN_INVALID"),
        ("ticket-as-bearer", 401, "TOKEN_INVALID"),
        ("other-account", 403, "OTHER_ACCOUNT"),
        ("ticket-for-another-order", 403, "TICKET_SCOPE"),
        ("no-account-no-scope", 403, "SCOPE_MISSING"),
    ],
)
def test_refusals(app, client, tokens, order, sandbox_client, case, status, code):
    mine = order["accountId"]
    url = stream_url(order["orderId"])
    own_token = tokens.customer(mine)
    headers: dict[str, str] = {}
    if case == "expired":
        headers = bearer(customer_claims(app, mine, exp=int(time.time()) - 300))
    elif case == "wrong-key":
        headers = bearer(jwt.encode({"sub": "u", "account_id": mine, "exp": 2**31}, OTHER_SECRET))
    elif case == "alg-none":
        headers = bearer(
            jwt.encode({"sub": "u", "account_id": mine, "exp": 2**31}, None, algorithm="none")
        )
    elif case == "no-exp":
        headers = bearer(customer_claims(app, mine, exp=None))
    elif case == "jwt-in-query":
        url += f"?access_token={own_token}"
    elif case == "jwt-as-ticket":
        url += f"?ticket={own_token}"
    elif case == "ticket-as-bearer":
        ticket = client.post(
            f"/api/orders/{order['orderId']}/stream-ticket", headers=bearer(own_token)
        )
        headers = bearer(ticket.json["ticket"])
    elif case == "other-account":
        headers = bearer(tokens.customer(sandbox_client.create_order()["accountId"]))
    elif case == "ticket-for-another-order":
        other = sandbox_client.create_order(account_id=mine)
        ticket = client.post(
            f"/api/orders/{other['orderId']}/stream-ticket", headers=bearer(own_token)
        )
        url += f"?ticket={ticket.json['ticket']}"
    elif case == "no-account-no-scope":
        no_account = {"sub": "u", "exp": int(time.time()) + 300}
        headers = bearer(jwt.encode(no_account, app.config["JWT_SECRET"]))

    got, body = get_stream(client, url, headers=headers)

    assert (got, body["error"]["code"]) == (status, code)
    assert own_token not in str(body)


def test_a_wrong_audience_is_refused_when_one_is_configured(sandbox, order):
    from app import create_app

    app = create_app({"JWT_AUDIENCE": "portal"})
    client = app.test_client()
    url = stream_url(order["orderId"])
    wrong = customer_claims(app, order["accountId"], aud="someone-else")
    right = customer_claims(app, order["accountId"], aud="portal")
    assert get_stream(client, url, headers=bearer(wrong)) == (
        401,
        {"error": {"code": "TOKEN_INVALID", "message": "the token is not meant for this service"}},
    )
    assert get_stream(client, url, headers=bearer(right))[0] == 200


def test_bad_order_ids_are_400_before_anything_else(client, tokens):
    status, body = get_stream(client, stream_url("801-not-an-id"), headers=bearer(tokens.service()))
    assert (status, body["error"]["code"]) == (400, "INVALID_ORDER_ID")


def test_an_order_salesforce_does_not_know_is_404(client, tokens, sandbox_client, redis_client):
    from notifier import normalize_order_id

    missing = normalize_order_id("801000000000405")
    account = sandbox_client.create_order()["accountId"]
    for token in (tokens.service(), tokens.customer(account)):
        status, body = get_stream(client, stream_url(missing), headers=bearer(token))
        assert (status, body["error"]["code"]) == (404, "ORDER_NOT_FOUND")


def test_ownership_is_looked_up_in_salesforce_once(app, client, tokens, order):
    gateway = app.extensions["salesforce"]
    headers = bearer(tokens.customer(order["accountId"]))
    before = gateway.api_calls
    for _ in range(3):
        assert get_stream(client, stream_url(order["orderId"]), headers=headers)[0] == 200
    assert gateway.api_calls - before <= 1  # cached in Redis (maybe by an earlier test)
