"""`GET /api/orders/<order_id>/events` and `GET /api/orders/events` (every order of the
caller's account): who may watch, and for how long.

The streaming itself is `streaming.blueprint.OrderEventsBlueprint`; this module decides, before
the response starts: whether the credential is good and until when (a margin before it
expires), then, on what the stream read once subscribed (the order's owner, the account's
stream slot), whether the caller may watch.
"""

from __future__ import annotations

from flask import current_app, request

from integrations import TransientError
from notifier.order_ids import normalize_salesforce_id
from streaming.account import AccountOpening
from streaming.admission import Admission
from streaming.blueprint import OrderEventsBlueprint, StreamRequest, TryLater
from streaming.metrics import STREAMS_OVER_QUOTA
from streaming.opening import Opening

from .auth import ACCOUNT_TICKET, Authenticator, Forbidden, Principal
from .errors import ApiError
from .orders import valid_order_id
from .ownership import authorize_read, ownership

#: Seconds a refused stream should wait: a closed stream frees its slot within a heartbeat.
_SLOT_RETRY_AFTER = 30


def authenticate_stream(raw_order_id: str) -> StreamRequest:
    order_id = valid_order_id(raw_order_id)
    auth: Authenticator = current_app.extensions["auth"]
    principal = auth.from_stream_request(request)
    ends_at = auth.check_streamable(principal)
    return StreamRequest(order_id, ends_at, _slot_key(principal), principal)


def _slot_key(principal: Principal) -> str | None:
    """Customers' streams count against their account; operators' tools are not capped."""
    return normalize_salesforce_id(principal.account_id) if principal.is_customer() else None


def authenticate_account_stream() -> StreamRequest:
    """The caller's account stream: a customer credential, or an account ticket."""
    auth: Authenticator = current_app.extensions["auth"]
    principal = auth.from_stream_request(request)
    if principal.order_id is not None and principal.order_id != ACCOUNT_TICKET:
        raise Forbidden("TICKET_NOT_ACCEPTED", "an order's ticket opens that order's stream only")
    account = normalize_salesforce_id(principal.account_id)
    if account is None:
        raise Forbidden("ACCOUNT_REQUIRED", "an account stream needs a customer credential")
    ends_at = auth.check_streamable(principal)
    admission: Admission = current_app.extensions["stream_admission"]
    # Its snapshot lists orders nobody looked up yet too (Salesforce, once a day): other
    # streams open meanwhile, as for an order's lookup.
    with admission.stepping_aside():
        ownership().list_account(account)
    return StreamRequest(account, ends_at, account, principal)


def authorize_account_stream(asked: StreamRequest, opening: AccountOpening) -> None:
    if opening.slot is False:
        _too_many_streams()


def _too_many_streams() -> None:
    limit = current_app.config["SSE_MAX_STREAMS_PER_CREDENTIAL"]
    STREAMS_OVER_QUOTA.inc()
    raise ApiError(
        429,
        "TOO_MANY_STREAMS",
        f"this account already has {limit} open streams; close one first",
        {"Retry-After": str(_SLOT_RETRY_AFTER)},
    )


def authorize_stream(asked: StreamRequest, opening: Opening) -> None:
    admission: Admission = current_app.extensions["stream_admission"]
    try:
        # A stream waiting on Salesforce lets others open: lookups then pile up into batches.
        authorize_read(
            asked.caller, asked.order_id, opening.owner, waiting=admission.stepping_aside
        )
    except TransientError as exc:  # Salesforce down on an ownership lookup
        raise TryLater(exc.code) from None
    if asked.quota_key is not None and opening.slot is False:
        _too_many_streams()


bp = OrderEventsBlueprint(
    "stream",
    __name__,
    authenticate=authenticate_stream,
    authorize=authorize_stream,
    authenticate_account=authenticate_account_stream,
    authorize_account=authorize_account_stream,
    url_prefix="/api/orders",
)
