"""The order page and the orders page: HTML shells whose scripts follow the event streams."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from .errors import ApiError
from .orders import valid_order_id

bp = Blueprint("pages", __name__)


@bp.get("/orders")
def orders_page() -> str:
    # Like the order page: the script asks for credentials when it connects.
    return render_template("orders.html", auth_mode=_auth_mode())


@bp.get("/orders/<order_id>")
def order_page(order_id: str) -> str | tuple[str, int]:
    # No credentials needed for the HTML itself; the script asks for them when it connects.
    try:
        valid = valid_order_id(order_id)
    except ApiError:
        if not request.accept_mimetypes.accept_html:
            raise  # a client asking for no HTML gets the API's JSON error
        # A person followed this link: a page that says so, not the API's JSON error.
        return render_template("order-invalid.html"), 400
    return render_template("order.html", order_id=valid, auth_mode=_auth_mode())


def _auth_mode() -> str:
    return "cookie" if request.cookies.get("access_token") else "ticket"
