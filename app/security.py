"""Browser-facing protections: security headers, and no cross-site state changes.

Pages get a Content-Security-Policy that allows scripts, workers and styles from this origin
only (the pages have no inline ones; the SharedWorker that shares one stream among the tabs is
`static/order-events.js`) and forbids framing; every response gets `nosniff`. A state-changing
request that a browser marks as coming from another site (its `Origin`, or `Sec-Fetch-Site`)
is refused unless it carries a bearer token: cookies are sent with cross-site requests, bearer
tokens are not, so only cookie-authenticated requests can be forged.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request

from .errors import ApiError

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "worker-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def register_security_headers(app: Flask) -> None:
    app.before_request(refuse_cross_site_writes)
    app.after_request(add_security_headers)


def refuse_cross_site_writes() -> None:
    if request.method in _SAFE_METHODS or request.headers.get("Authorization"):
        return
    if not _same_site():
        raise ApiError(403, "CROSS_SITE_REQUEST", "this request must come from this site's pages")


def _same_site() -> bool:
    origin = request.headers.get("Origin")
    if origin is not None:
        # Compare host and port only: behind a TLS-terminating proxy our scheme is http.
        return urlsplit(origin).netloc.lower() == request.host.lower()
    # No Origin: an old browser or not a browser at all. Fetch metadata still tells.
    return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")


def add_security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        for name, value in _PAGE_HEADERS.items():
            response.headers.setdefault(name, value)
    return response
