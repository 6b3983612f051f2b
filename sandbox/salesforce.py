"""The Salesforce emulator: OAuth token endpoint and the REST API the pipeline uses.

Served over HTTPS (simple-salesforce forces `https://`). Routes:

- `POST /services/oauth2/token` (see `oauth.py`) and `GET /services/oauth2/userinfo` (where
  Pub/Sub API clients read the org id);
- `GET|PATCH /services/data/vNN.N/sobjects/<Object>/<id>` and `POST .../sobjects/<Object>/`;
- `GET /services/data/vNN.N/query[/]?q=` (and `queryAll`), see `query.py`;
- `/__sandbox/...` control routes (see `control.py`).

Every REST call counts toward `Sforce-Limit-Info`, needs `Authorization: Bearer|OAuth <token>`
and passes through the fault registry. Errors are Salesforce's JSON lists.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from . import clock, control, ids, oauth, pubsub_errors, query, sobjects
from .errors import SalesforceApiError, not_found
from .faults import COMMON_MODES, FaultRegistry, Plan
from .pubsub_bus import EventBus
from .responses import (
    html_page,
    json_response,
    maintenance_page,
    service_unavailable,
    truncated_json,
)
from .state import World

API_PREFIX = "/services/data/"
API_LIMIT = 15_000
ACTIONS = ("token", "get", "update", "create", "query")
_VERSION = re.compile(r"v\d+\.\d+")
_DEFAULT_ERROR = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
_ERROR_MESSAGES = {
    "UNABLE_TO_LOCK_ROW": "unable to obtain exclusive access to this record",
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": "The record failed a validation rule (sandbox fault)",
    "ENTITY_IS_LOCKED": "This record is locked. If you need to edit it, contact your admin",
    "REQUEST_LIMIT_EXCEEDED": "TotalRequests Limit exceeded.",
}
_UNKNOWN_EXCEPTION = (
    "An unexpected error occurred. Please include this ErrorId if you contact support: "
    "1234567890-12345 (-1234567890)"
)
log = logging.getLogger(__name__)


def fault_registry() -> FaultRegistry:
    """The Salesforce fault switches, REST and Pub/Sub API in one list: `*` covers REST calls
    only (not the token endpoint, not the RPCs), and each side's modes apply to its own
    actions."""
    rest = (*ACTIONS, "*")
    mode_actions: dict[str, tuple[str, ...]] = {mode: rest for mode in COMMON_MODES}
    mode_actions["expire_session"] = ("get", "update", "create", "query", "*")
    mode_actions.update(pubsub_errors.MODE_ACTIONS)
    return FaultRegistry(
        (*ACTIONS, *pubsub_errors.RPCS),
        modes=(*COMMON_MODES, *pubsub_errors.MODES),
        wildcard_skips=("token", *pubsub_errors.RPCS),
        mode_actions=mode_actions,
    )


def create_app(
    world: World,
    credentials: Mapping[str, str],
    tokens: oauth.TokenStore,
    faults: FaultRegistry,
    stopping: threading.Event,
    bus: EventBus,
) -> Flask:
    """Build the Salesforce emulator app over the shared world and the Pub/Sub event bus."""
    app = Flask(__name__)
    emulator = SalesforceEmulator(world, credentials, tokens, faults, stopping)
    app.before_request(emulator.before_request)
    app.after_request(emulator.after_request)
    app.register_error_handler(SalesforceApiError, _api_error)
    app.register_error_handler(oauth.GrantError, lambda e: json_response(e.body(), 400))
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    _add_api_routes(app, emulator)
    app.register_blueprint(control.salesforce_blueprint(world, faults, bus))
    return app


def _add_api_routes(app: Flask, emulator: SalesforceEmulator) -> None:
    data = API_PREFIX + "<version>"
    app.add_url_rule("/services/oauth2/token", view_func=emulator.token, methods=["POST"])
    app.add_url_rule("/services/oauth2/userinfo", view_func=emulator.userinfo)
    app.add_url_rule(
        data + "/sobjects/<sobject>/<record_id>",
        view_func=emulator.record,
        methods=["GET", "PATCH"],
    )
    # Salesforce answers with and without the trailing slash; simple-salesforce sends it.
    for suffix in ("", "/"):
        app.add_url_rule(
            f"{data}/sobjects/<sobject>{suffix}",
            endpoint=f"create{suffix}",
            view_func=emulator.create,
            methods=["POST"],
        )
        for name in ("query", "queryAll"):
            app.add_url_rule(
                f"{data}/{name}{suffix}", endpoint=f"{name}{suffix}", view_func=emulator.query
            )


class SalesforceEmulator:
    """The request hooks and views, sharing the world, the tokens and the fault switches."""

    def __init__(
        self,
        world: World,
        credentials: Mapping[str, str],
        tokens: oauth.TokenStore,
        faults: FaultRegistry,
        stopping: threading.Event,
    ) -> None:
        self.world = world
        self.credentials = credentials
        self.tokens = tokens
        self.faults = faults
        self.stopping = stopping

    # --- hooks -----------------------------------------------------------------------------

    def before_request(self) -> Response | None:
        # Read the whole body first: an unread body would corrupt the next request on a
        # keep-alive connection when we answer early (401, faults).
        request.get_data()
        g.plan = Plan()
        if not request.path.startswith(API_PREFIX):
            return None
        with self.world.lock:
            self.world.salesforce.api_usage += 1
            g.api_usage = self.world.salesforce.api_usage
        if request.routing_exception is not None:
            return None  # dispatch raises it: Salesforce's 404 or 405 list body
        if not _VERSION.fullmatch((request.view_args or {}).get("version", "")):
            raise not_found()
        self._authenticate()
        g.plan = self.faults.take(_action())
        self._pause(g.plan.latency)
        return self._misbehave(g.plan)

    def after_request(self, response: Response) -> Response:
        if "api_usage" in g:
            response.headers["Sforce-Limit-Info"] = f"api-usage={g.api_usage}/{API_LIMIT}"
        if g.get("plan") and g.plan.mode == "timeout":
            # The change is committed; now sit on the answer so the client gives up first.
            self._pause(g.plan.hold)
        return response

    def _authenticate(self) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not self.tokens.is_valid(token.strip()):
            raise _invalid_session()

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            # Waiting on the stop event lets `Sandbox.stop()` cut long holds short.
            self.stopping.wait(seconds)

    def _misbehave(self, plan: Plan) -> Response | None:
        fault = plan.fault
        if fault is None or fault.mode == "timeout":
            return None
        if fault.mode == "error":
            code = fault.error_code or _DEFAULT_ERROR
            message = fault.message or _ERROR_MESSAGES.get(code, f"{code} (sandbox fault)")
            raise SalesforceApiError(400, code, message)
        if fault.mode == "http500":
            raise SalesforceApiError(500, "UNKNOWN_EXCEPTION", fault.message or _UNKNOWN_EXCEPTION)
        if fault.mode == "limit":
            raise SalesforceApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        if fault.mode == "expire_session":
            self.tokens.expire_all()
            raise _invalid_session()
        pages: dict[str, Callable[[], Response]] = {
            "http503": service_unavailable,
            "html": maintenance_page,
            "truncated": lambda: truncated_json({"totalSize": 1, "done": True, "records": []}),
            # A 200 whose fields have the wrong types, for any call.
            "garbled": lambda: json_response({"totalSize": "x", "done": "y", "records": "nope"}),
        }
        return pages[fault.mode or ""]()

    # --- views -----------------------------------------------------------------------------

    def token(self) -> Response:
        g.plan = self.faults.take("token")
        self._pause(g.plan.latency)
        refused = self._refuse_token(g.plan)
        if refused is not None:
            return refused
        auth = request.authorization
        basic = (
            (auth.username or "", auth.password or "") if auth and auth.type == "basic" else None
        )
        oauth.check_grant(request.form, basic, self.credentials)
        instance_url = request.host_url.rstrip("/")
        return json_response(oauth.token_body(self.tokens.issue(), instance_url, self.credentials))

    def _refuse_token(self, plan: Plan) -> Response | None:
        fault = plan.fault
        if fault is None or fault.mode == "timeout":
            return None
        if fault.mode == "error":
            body = {
                "error": fault.error_code or "invalid_grant",
                "error_description": fault.message or "authentication failure",
            }
            return json_response(body, 400)
        if fault.mode == "limit":
            body = {"error": "rate_limit_exceeded", "error_description": "too many requests"}
            return json_response(body, 403)
        if fault.mode == "http500":
            return html_page(500, "Internal Server Error", "An internal server error occurred.")
        return self._misbehave(plan)

    def userinfo(self) -> Response:
        """The OpenID Connect user info of the token's user: its org id is Pub/Sub's tenantid."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.tokens.is_valid(token.strip()):
            return Response("Bad_OAuth_Token", status=403, mimetype="text/plain")
        instance_url = request.host_url.rstrip("/")
        return json_response(
            {
                "sub": f"{instance_url}/id/{oauth.ORG_ID}/{oauth.USER_ID}",
                "user_id": oauth.USER_ID,
                "organization_id": oauth.ORG_ID,
                "preferred_username": self.credentials["username"],
            }
        )

    def record(self, version: str, sobject: str, record_id: str) -> Response:
        name, full = _sobject(sobject), _record_id(sobject, record_id)
        with self.world.lock:
            stored = self.world.salesforce.table(name).get(full)
            if stored is None:
                raise not_found()
            if request.method == "GET":
                fields_param = request.args.get("fields")
                fields = (
                    None if fields_param is None else sobjects.parse_field_list(name, fields_param)
                )
                return json_response(sobjects.render(name, stored, version[1:], fields))
            changes = sobjects.validate_changes(name, _json_request(), self._exists)
            sobjects.apply_changes(stored, changes)
            write = {"at": clock.iso_timestamp(), "fields": changes}
            self.world.salesforce.writes.setdefault(full, []).append(write)
            self.world.changed()
        return Response(status=204)

    def create(self, version: str, sobject: str) -> Response:
        name = _sobject(sobject)
        with self.world.lock:
            changes = sobjects.validate_changes(name, _json_request(), self._exists)
            missing = [
                f.name
                for f in sobjects.SCHEMA[name]
                if f.updateable and not f.nillable and f.name not in changes
            ]
            if missing:
                raise SalesforceApiError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: {missing}",
                    missing,
                )
            record = sobjects.new_record(name, {**changes, **self._generated(name, changes)})
            self.world.salesforce.table(name)[record["Id"]] = record
            self.world.changed()
        return json_response({"id": record["Id"], "success": True, "errors": []}, 201)

    def _generated(self, sobject: str, changes: dict[str, object]) -> dict[str, object]:
        """Values Salesforce fills in itself on insert (with the world lock held)."""
        if sobject != "Order":
            return {}
        data = self.world.salesforce
        data.next_order_number += 1
        return {
            "OrderNumber": f"{data.next_order_number - 1:08d}",
            "StatusCode": changes.get("Status"),
        }

    def query(self, version: str) -> Response:
        text = request.args.get("q")
        if not text:
            raise SalesforceApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        with self.world.lock:
            return json_response(query.run(self.world.salesforce, text, version[1:]))

    def _exists(self, sobject: str, record_id: str) -> bool:
        return record_id in self.world.salesforce.table(sobject)


# --- helpers ---------------------------------------------------------------------------------


def _action() -> str:
    """The fault-switch action name of the current REST request."""
    endpoint = request.endpoint or ""
    if endpoint == "record":
        return "get" if request.method == "GET" else "update"
    if endpoint.startswith("create"):
        return "create"
    if endpoint.startswith("query"):
        return "query"
    return "other"


def _sobject(name: str) -> str:
    canonical = sobjects.canonical_sobject(name)
    if canonical is None:
        raise not_found()
    return canonical


def _record_id(sobject: str, record_id: str) -> str:
    name = sobjects.canonical_sobject(sobject) or sobject
    if not ids.is_id_of(record_id, name):
        raise SalesforceApiError(
            400, "MALFORMED_ID", f"{name} ID: id value of incorrect type: {record_id}", ["Id"]
        )
    return ids.normalize(record_id) or record_id


def _json_request() -> object:
    try:
        return json.loads(request.get_data() or b"null")
    except ValueError:
        raise SalesforceApiError(
            400, "JSON_PARSER_ERROR", "The request body is not valid JSON"
        ) from None


def _invalid_session() -> SalesforceApiError:
    return SalesforceApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def _api_error(exc: SalesforceApiError) -> Response:
    return json_response(exc.body(), exc.status)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = exc.name.upper().replace(" ", "_")
    if request.path.startswith(API_PREFIX):
        if status == 404:
            return json_response(not_found().body(), 404)
        if status == 405:
            message = f"HTTP Method '{request.method}' not allowed."
            return json_response([{"errorCode": "METHOD_NOT_ALLOWED", "message": message}], 405)
        return json_response([{"errorCode": code, "message": exc.description}], status)
    return json_response({"error": {"code": code, "message": exc.description}}, status)


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unexpected error in the Salesforce emulator")
    if request.path.startswith(API_PREFIX):
        body = [{"errorCode": "UNKNOWN_EXCEPTION", "message": _UNKNOWN_EXCEPTION}]
        return json_response(body, 500)
    return json_response({"error": {"code": "INTERNAL_ERROR", "message": "sandbox error"}}, 500)
