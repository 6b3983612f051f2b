"""`GET /api/orders/<order_id>/events`: who may watch an order's stream.

The streaming itself is `notifier.blueprint.OrderEventsBlueprint`; this module only decides,
before the response starts, whether the caller may watch and until when (the credential's
expiry ends the stream).
"""

from __future__ import annotations

from flask import current_app, request

from integrations import TransientError
from notifier.blueprint import OrderEventsBlueprint, TryLater

from .orders import valid_order_id
from .ownership import authorize_read


def authorize_stream(raw_order_id: str) -> tuple[str, float]:
    order_id = valid_order_id(raw_order_id)
    principal = current_app.extensions["auth"].from_stream_request(request)
    try:
        authorize_read(principal, order_id)
    except TransientError as exc:  # Salesforce down on an ownership cache miss
        raise TryLater(exc.code) from None
    return order_id, principal.expires_at


bp = OrderEventsBlueprint("stream", __name__, authorize=authorize_stream, url_prefix="/api/orders")
