"""Response builders shared by both emulators: exact JSON, and the non-JSON pages faults serve.

JSON is serialized here rather than through Flask's provider so key order stays as written
(Salesforce puts `attributes` first) and so a fault can cut a body short byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response

_PAGE = """<!DOCTYPE html>
<html><head><title>{title}</title></head>
<body><h1>{title}</h1><p>{text}</p></body></html>
"""


def json_response(body: Any, status: int = 200) -> Response:
    """`body` as JSON with `Content-Type: application/json`."""
    return Response(json.dumps(body), status=status, mimetype="application/json")


def html_page(status: int, title: str, text: str) -> Response:
    """A small HTML page, as a proxy or a maintenance switch would serve."""
    return Response(_PAGE.format(title=title, text=text), status=status, mimetype="text/html")


def service_unavailable() -> Response:
    return html_page(
        503,
        "Service Unavailable",
        "The server is temporarily unable to service your request. Please try again later.",
    )


def maintenance_page() -> Response:
    """200 with HTML: what a system in maintenance mode answers instead of its API."""
    return html_page(
        200, "Down for Maintenance", "We are performing scheduled maintenance. Back soon."
    )


def truncated_json(body: Any) -> Response:
    """200 `application/json` whose body stops halfway, as when a connection is cut."""
    text = json.dumps(body)
    return Response(text[: max(1, len(text) // 2)], status=200, mimetype="application/json")
