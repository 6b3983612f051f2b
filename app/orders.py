"""The orders API: trigger fulfillment, read an order, get a stream ticket."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from fulfillment.claims import UnknownOrder
from fulfillment.ownership import Ownership
from fulfillment.requests import (
    BrokerUnavailable,
    NotFailed,
    Trigger,
    request_fulfillment,
)
from notifier import normalize_order_id, read_snapshot
from notifier.events import pending_snapshot
from notifier.order_ids import normalize_salesforce_id
from notifier.state import read_summary
from streaming.account import account_orders
from tasks.celery_app import dispatcher

from .auth import ACCOUNT_TICKET, SERVICE_SCOPE, Authenticator, Forbidden, Principal
from .errors import ApiError
from .ownership import authorize_read, ownership

bp = Blueprint("orders", __name__, url_prefix="/api/orders")


def authenticator() -> Authenticator:
    return current_app.extensions["auth"]


def valid_order_id(raw: str) -> str:
    order_id = normalize_order_id(raw)
    if order_id is None:
        raise ApiError(400, "INVALID_ORDER_ID", "not a 15- or 18-character Salesforce Order id")
    return order_id


def optional_json_body() -> dict[str, Any]:
    """The request's JSON object body; an empty body is an empty object."""
    if not request.content_length and not request.data:
        return {}
    if not request.is_json:
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes: not a body we accept
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "INVALID_JSON", "the body must be a JSON object")
    return body


@bp.post("/<order_id>/fulfill")
def fulfill(order_id: str) -> tuple[Response, int]:
    return trigger_response(trigger_fulfillment(_service_request(order_id)))


@bp.post("/<order_id>/retry")
def retry(order_id: str) -> tuple[Response, int]:
    """Operator retry: a failed order's next run, from the step that failed."""
    return trigger_response(trigger_fulfillment(_service_request(order_id), retry=True))


def _service_request(raw_order_id: str) -> str:
    """The order id of a request that needs the service scope, once all is checked."""
    order_id = valid_order_id(raw_order_id)
    principal = authenticator().from_header(request)
    if not principal.has_scope(SERVICE_SCOPE):
        raise Forbidden("SCOPE_MISSING", f"the {SERVICE_SCOPE} scope is required")
    optional_json_body()
    return order_id


def trigger_response(trigger: Trigger) -> tuple[Response, int]:
    body = {"orderId": trigger.order_id, "taskId": trigger.task_id, "stage": trigger.stage}
    if trigger.duplicate:
        return jsonify({**body, "duplicate": True}), 200
    response = jsonify({**body, "run": trigger.run})
    response.headers["Location"] = f"/api/orders/{trigger.order_id}"
    return response, 202


def trigger_fulfillment(order_id: str, *, retry: bool = False) -> Trigger:
    """Queue an order, or retry a failed one: the use case, its refusals as HTTP answers."""
    return ask_for_fulfillment(ownership(), order_id, retry=retry)


def ask_for_fulfillment(known: Ownership, order_id: str, *, retry: bool = False) -> Trigger:
    """The use case with this process's dispatcher; a refusal raises its `ApiError` (the
    CLI prints the same code and message)."""
    try:
        return request_fulfillment(order_id, dispatcher(), known.ask, retry=retry)
    except UnknownOrder:
        raise ApiError(404, "ORDER_NOT_FOUND", "Salesforce has no such order") from None
    except NotFailed as exc:
        raise ApiError(409, "NOT_FAILED", f"only a failed order can be retried ({exc})") from None
    except BrokerUnavailable:
        raise ApiError(503, "BROKER_UNAVAILABLE", "could not queue the order, try again") from None


@bp.get("")
def list_orders() -> Response:
    """The caller's account's orders, newest first, each with its live stage."""
    account = _customer_account(authenticator().from_header_or_cookie(request))
    ownership().list_account(account)  # orders nobody looked up yet: once a day, one call
    return jsonify({"accountId": account, "orders": account_orders(account)})


@bp.get("/<order_id>")
def show(order_id: str) -> Response:
    oid = valid_order_id(order_id)
    authorize_read(authenticator().from_header_or_cookie(request), oid)
    snapshot = read_snapshot(oid)
    # Known to Salesforce (authorize_read said so) but not started: the same empty snapshot
    # the stream sends.
    if snapshot is None:
        return jsonify(pending_snapshot(oid, read_summary(oid)))
    # The id to join the account stream at (its updates name their order's event ids).
    return jsonify({**snapshot.body, "lastEventId": snapshot.event_id})


@bp.post("/stream-ticket")
def account_stream_ticket() -> tuple[Response, int]:
    """A ticket for the caller's account stream (`GET /api/orders/events?ticket=`)."""
    principal = authenticator().from_header_or_cookie(request)
    if principal.order_id is not None:
        raise Forbidden("TICKET_NOT_ACCEPTED", "a ticket cannot mint another ticket")
    _customer_account(principal)
    ticket, expires_in = authenticator().issue_ticket(principal, ACCOUNT_TICKET)
    return jsonify({"ticket": ticket, "expiresIn": expires_in}), 201


def _customer_account(principal: Principal) -> str:
    account = normalize_salesforce_id(principal.account_id)
    if account is None or principal.order_id is not None:
        raise Forbidden("ACCOUNT_REQUIRED", "a customer credential is needed for its orders")
    return account


@bp.post("/<order_id>/stream-ticket")
def stream_ticket(order_id: str) -> tuple[Response, int]:
    oid = valid_order_id(order_id)
    principal = authenticator().from_header_or_cookie(request)
    if principal.order_id is not None:
        raise Forbidden("TICKET_NOT_ACCEPTED", "a ticket cannot mint another ticket")
    authenticator().check_streamable(principal)  # before any lookup: it would be wasted
    authorize_read(principal, oid)
    ticket, expires_in = authenticator().issue_ticket(principal, oid)
    return jsonify({"ticket": ticket, "expiresIn": expires_in}), 201
