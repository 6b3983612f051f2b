"""Development only (sandbox mode): a demo home, a demo sign-in, and demo orders.

Registered only when the app talks to the sandbox, so none of it exists in production. The
sandbox is driven over its HTTP control API, as any client would; nothing here imports it.
"""

from __future__ import annotations

from typing import Any

import requests
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from integrations.http import GatewaySession
from notifier.order_ids import normalize_salesforce_id

from .auth import mint_token
from .errors import ApiError

bp = Blueprint("dev", __name__)

#: The demo customer's Salesforce Account (the sandbox creates it on first use).
DEMO_ACCOUNT = normalize_salesforce_id("001DEMO00000001") or ""
SESSION_HOURS = 8
PRODUCTS = {
    "FIBRE-100": "Fibre 100 Mbps",
    "FIBRE-500": "Fibre 500 Mbps",
    "FIBRE-1000": "Fibre 1 Gbps",
    "STATIC-IP": "Static IPv4 address",
    "ROUTER": "Wi-Fi 6 router",
}
#: Demo scenarios: sandbox faults to switch on before the order is placed.
SCENARIOS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "normal": ("Everything works", []),
    "slow": (
        "Slow systems (1.5 s per call)",
        [{"system": "salesforce", "action": "*", "latencyMs": 1500, "times": 4},
         {"system": "whmcs", "action": "*", "latencyMs": 1500, "times": 4}],
    ),
    "busy": (
        "WHMCS busy twice, then fine",
        [{"system": "whmcs", "action": "AddOrder", "mode": "http503", "times": 2}],
    ),
    "rejected": (
        "WHMCS rejects the order",
        [{"system": "whmcs", "action": "AddOrder", "mode": "error", "times": 1,
          "message": "Client ID Not Found"}],
    ),
}  # fmt: skip


def _signed_in_account() -> str | None:
    token = request.cookies.get("access_token")
    if not token:
        return None
    try:
        return current_app.extensions["auth"].verify(token).account_id
    except ApiError:
        return None


@bp.get("/")
def home() -> str:
    return render_template(
        "home.html", account=_signed_in_account(), products=PRODUCTS, scenarios=SCENARIOS
    )


@bp.post("/dev/sign-in")
def sign_in() -> Response:
    ttl = SESSION_HOURS * 3600
    token = mint_token(
        current_app.extensions["web_settings"], account_id=DEMO_ACCOUNT, scope=None, ttl=ttl
    )
    response = redirect(_local_path(request.form.get("next")) or url_for("dev.home"), code=303)
    response.set_cookie(
        "access_token", token, max_age=ttl, httponly=True, samesite="Lax", secure=request.is_secure
    )
    return response


def _local_path(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None: never an open redirect (`//host`,
    `/\\host`, a scheme) and never a header injection (control characters)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target) or "\\" in target:
        return None
    return target


@bp.post("/dev/sign-out")
def sign_out() -> Response:
    response = redirect(url_for("dev.home"), code=303)
    response.delete_cookie("access_token")
    return response


@bp.post("/dev/orders")
def place_order() -> Response:
    """Create and approve an order for the demo customer in the sandbox, open its page.

    Approving it publishes its Platform Event, as a record-triggered Flow would; the listener
    (`fulfillment listen`, part of `make run`) then starts it. No HTTP trigger."""
    if _signed_in_account() is None:
        raise ApiError(401, "SIGN_IN_REQUIRED", "sign in as the demo customer first")
    products = [code for code in request.form.getlist("product") if code in PRODUCTS]
    scenario = SCENARIOS.get(request.form.get("scenario", "normal"), SCENARIOS["normal"])
    for fault in scenario[1]:
        _control(
            "POST", fault["system"], "faults", {k: v for k, v in fault.items() if k != "system"}
        )
    created = _control("POST", "salesforce", "orders", {"products": products or ["FIBRE-100"],
                                                         "accountId": DEMO_ACCOUNT,
                                                         "approve": True})  # fmt: skip
    return redirect(url_for("pages.order_page", order_id=created["orderId"]), code=303)


def _control(method: str, system: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    if system == "salesforce":
        where = current_app.extensions["settings"].salesforce
        base, ca_bundle = where.instance_url, where.ca_bundle
    else:
        base, ca_bundle = current_app.extensions["settings"].whmcs.url, None
    session = GatewaySession(timeout=10, ca_bundle=ca_bundle)
    try:
        response = session.request(method, f"{base}/__sandbox/{path}", json=body)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise ApiError(
            503, "SANDBOX_UNAVAILABLE", f"the sandbox did not answer ({exc.__class__.__name__})"
        ) from None
    return dict(response.json())
