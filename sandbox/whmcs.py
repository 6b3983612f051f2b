"""The WHMCS emulator: `POST /includes/api.php` (also `/api.php`) over plain HTTP.

Parameters come from the query string and the form body merged (the body wins, as in PHP's
`$_REQUEST`), with PHP bracket arrays decoded. Checks run in WHMCS's order: credentials
(403), then the action (fault switches apply here), then the action's own validation
(HTTP 200 with `result: error`). Every answer is JSON with a `result`, except the HTML and
truncated pages some faults serve on purpose.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Mapping

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from . import control, php
from .errors import WhmcsError
from .faults import COMMON_MODES, Fault, FaultRegistry
from .responses import (
    html_page,
    json_response,
    maintenance_page,
    service_unavailable,
    truncated_json,
)
from .state import World
from .whmcs_actions import ACTIONS, Call

log = logging.getLogger(__name__)
_BY_LOWER = {name.lower(): name for name in ACTIONS}
# What an `error` fault answers when it names no message: a documented error of the action.
_DEFAULT_ERRORS = {
    "addorder": "Unable to add order when client status is Closed",
    "acceptorder": "Order ID not found or Status not Pending",
    "cancelorder": "Order ID not found or Status not Pending",
    "addclient": "A user already exists with that email address",
    "getclientsdetails": "Client Not Found",
    "modulecreate": "Service not assigned to a module",
    "updateclientproduct": "Service ID Not Found",
    "pendingorder": "Order ID Not Found",
}
_MODULE_FAILURE = "Module Create Failed: could not connect to the provisioning server"


def fault_registry() -> FaultRegistry:
    """The WHMCS fault switches; `module_failure` fits only the actions that provision."""
    return FaultRegistry(
        ACTIONS,
        modes=(*COMMON_MODES, "module_failure"),
        mode_actions={"module_failure": ("AcceptOrder", "ModuleCreate")},
    )


def create_app(
    world: World,
    credentials: Mapping[str, str],
    faults: FaultRegistry,
    stopping: threading.Event,
) -> Flask:
    """Build the WHMCS emulator app over the shared world."""
    app = Flask(__name__)
    emulator = WhmcsEmulator(world, credentials, faults, stopping)
    app.before_request(_drain_body)
    app.after_request(emulator.after_request)
    for path in ("/includes/api.php", "/api.php"):
        app.add_url_rule(path, endpoint=path, view_func=emulator.api, methods=["GET", "POST"])
    app.register_blueprint(control.whmcs_blueprint(world, faults))
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


class WhmcsEmulator:
    """The API endpoint: credentials, fault switches, then the action handler."""

    def __init__(
        self,
        world: World,
        credentials: Mapping[str, str],
        faults: FaultRegistry,
        stopping: threading.Event,
    ) -> None:
        self.world = world
        self.credentials = credentials
        self.faults = faults
        self.stopping = stopping

    def api(self) -> Response:
        params = php.decode_form([*request.args.items(multi=True), *request.form.items(multi=True)])
        refused = self._check_credentials(params)
        if refused is not None:
            return refused
        action = _text(params, "action")
        g.plan = self.faults.take(action)
        self._pause(g.plan.latency)
        faulted = self._misbehave(g.plan.fault, action)
        if faulted is not None:
            return faulted
        return self._dispatch(action, params)

    def after_request(self, response: Response) -> Response:
        if g.get("plan") and g.plan.mode == "timeout":
            # The action is committed; now sit on the answer so the client gives up first.
            self._pause(g.plan.hold)
        return response

    def _check_credentials(self, params: dict[str, object]) -> Response | None:
        identifier = _text(params, "identifier") or _text(params, "username")
        secret = _text(params, "secret") or _text(params, "password")
        if not identifier or not secret:
            return _error("Invalid or missing credentials", 403)
        if not (
            secrets.compare_digest(identifier.encode(), self.credentials["identifier"].encode())
            and secrets.compare_digest(secret.encode(), self.credentials["secret"].encode())
        ):
            return _error("Authentication Failed", 403)
        return None

    def _dispatch(self, action: str, params: dict[str, object]) -> Response:
        name = _BY_LOWER.get(action.lower())
        if name is None:
            return _error(f'Invalid API Action: "{action.lower()}" is not a valid API action')
        handler, mutates = ACTIONS[name]
        failure = (
            (g.plan.fault.message or _MODULE_FAILURE) if g.plan.mode == "module_failure" else None
        )
        call = Call(self.world.whmcs, dict(params), request.remote_addr or "", failure)
        with self.world.lock:
            try:
                return json_response(handler(call))
            except WhmcsError as exc:
                return _error(exc.message)
            finally:
                if mutates:  # errors may come after a change (a failed module after accept)
                    self.world.changed()

    def _misbehave(self, fault: Fault | None, action: str) -> Response | None:
        if fault is None or fault.mode in ("timeout", "module_failure"):
            return None
        if fault.mode == "error":
            default = _DEFAULT_ERRORS.get(action.lower(), "An unexpected error occurred")
            return _error(fault.message or default)
        pages: dict[str, Callable[[], Response]] = {
            "http500": lambda: html_page(500, "Internal Server Error", "A fatal error occurred."),
            "http503": service_unavailable,
            "limit": lambda: _error("Too many requests", 429),
            "expire_session": lambda: _error("Authentication Failed", 403),
            "html": maintenance_page,
            "truncated": lambda: truncated_json({"result": "success", "message": "ok"}),
            "garbled": lambda: json_response(_GARBLED),
        }
        return pages[fault.mode or ""]()

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self.stopping.wait(seconds)


#: A "success" whose fields have the wrong types, whatever the action.
_GARBLED = {
    "result": "success",
    "orderid": "not-a-number",
    "serviceids": {"unexpected": True},
    "totalresults": "many",
    "orders": "garbage",
    "products": {"product": "x"},
}


def _drain_body() -> None:
    # Read the whole body up front, so an early answer (403, a fault) never leaves unread
    # bytes on a keep-alive connection.
    request.get_data()


def _text(params: dict[str, object], name: str) -> str:
    value = params.get(name)
    return value if isinstance(value, str) else ""


def _error(message: str, status: int = 200) -> Response:
    return json_response({"result": "error", "message": message}, status)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if request.path.startswith("/__sandbox"):
        code = exc.name.upper().replace(" ", "_")
        return json_response({"error": {"code": code, "message": exc.description}}, status)
    return _error(exc.description or exc.name, status)


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unexpected error in the WHMCS emulator")
    return _error("An internal error occurred in the sandbox", 500)
