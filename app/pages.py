"""The order page: HTML and a small script that follows the order's event stream."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from .orders import valid_order_id

bp = Blueprint("pages", __name__)


@bp.get("/orders/<order_id>")
def order_page(order_id: str) -> str:
    # No credentials needed for the HTML itself; the script asks for them when it connects.
    return render_template(
        "order.html",
        order_id=valid_order_id(order_id),
        auth_mode="cookie" if request.cookies.get("access_token") else "ticket",
    )
