"""The Salesforce emulator: OAuth token endpoint and the REST API the pipeline uses.

Served over HTTPS (simple-salesforce forces `https://`). Routes:

- `POST /services/oauth2/token` (see `oauth.py`) and `GET /services/oauth2/userinfo` (where
  Pub/Sub API clients read the org id);
- `GET|PATCH /services/data/vNN.N/sobjects/<Object>/<id>` and `POST .../sobjects/<Object>/`;
- `GET /services/data/vNN.N/query[/]?q=` (and `queryAll`), see `query.py`;
- `POST /services/data/vNN.N/composite`: those calls as subrequests of one (`composite.py`);
- `/__sandbox/...` control routes (see `control.py`).

Every REST call counts toward `Sforce-Limit-Info` (a composite call once, whatever it holds),
needs `Authorization: Bearer|OAuth <token>` and passes through the fault registry. Errors are
Salesforce's JSON lists. The record and query operations themselves live in `rest.py`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from . import composite, control, oauth, pubsub_errors
from .errors import SalesforceApiError, not_found
from .faults import COMMON_MODES, Fault, FaultRegistry, Plan
from .pubsub_bus import EventBus
from .responses import (
    html_page,
    json_response,
    maintenance_page,
    service_unavailable,
    truncated_json,
)
from .rest import Journal, RestApi
from .state import World

API_PREFIX = "/services/data/"
API_LIMIT = 15_000
ACTIONS = ("token", "get", "update", "create", "query", "composite")
#: Fault modes that a composite's subrequest answers as its own error; the other modes of a
#: fault aimed at a subrequest's action (a session, a limit, a broken answer) hit the whole
#: composite call, as they would on Salesforce.
SUBREQUEST_MODES = ("error", "http500")
_WHOLE_CALL_MODES = tuple(mode for mode in COMMON_MODES if mode not in SUBREQUEST_MODES)
#: Endpoints a composite subrequest may name: the record, create and query routes.
_SUBREQUEST_ENDPOINTS = ("record", "create", "query", "queryAll")
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
    mode_actions["expire_session"] = ("get", "update", "create", "query", "composite", "*")
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
        app.add_url_rule(
            f"{data}/composite{suffix}",
            endpoint=f"composite{suffix}",
            view_func=emulator.composite_call,
            methods=["POST"],
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
        self.rest = RestApi(world)
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
        g.plan = self.faults.take(_action(request.endpoint, request.method))
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
        if fault.mode in SUBREQUEST_MODES:
            raise _fault_error(fault)
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
        if request.method == "GET":
            fields = request.args.get("fields")
            return json_response(self.rest.get(version, sobject, record_id, fields))
        self.rest.update(sobject, record_id, _json_request)
        return Response(status=204)

    def create(self, version: str, sobject: str) -> Response:
        return json_response(self.rest.create(sobject, _json_request), 201)

    def query(self, version: str) -> Response:
        return json_response(self.rest.query(version, request.args.get("q")))

    def composite_call(self, version: str) -> Response:
        """One API call (counted by `before_request`, faults for `composite` applied there),
        then each subrequest's faults, then the subrequests in order under the world lock."""
        call = composite.parse(_json_request(), _route)
        refused = self._subrequest_faults(call)
        if refused is not None:
            return refused
        with self.world.lock:
            return json_response(composite.run(call, self._subrequest, Journal(self.world)))

    def _subrequest_faults(self, call: composite.Composite) -> Response | None:
        """Apply the faults aimed at the subrequests' actions that concern the whole call:
        their latency (before anything runs) and the modes that are not a subrequest's own
        answer. `*` faults are left out: they applied to this call already."""
        plans = [
            self.faults.take(s.route.action, modes=_WHOLE_CALL_MODES, wildcard=False)
            for s in call.subrequests
            if s.route.action is not None
        ]
        self._pause(sum(plan.latency for plan in plans))
        fault = next((plan.fault for plan in plans if plan.fault is not None), None)
        if fault is None:
            return None
        if fault.mode == "timeout" and g.plan.fault is None:
            g.plan = Plan(0.0, fault)  # after_request holds the answer
        return self._misbehave(Plan(0.0, fault))

    def _subrequest(self, sub: composite.Subrequest, journal: Journal) -> composite.Result:
        route = sub.route
        if route.error is not None or route.action is None:
            raise route.error or not_found()
        plan = self.faults.take(route.action, modes=SUBREQUEST_MODES, latency=False, wildcard=False)
        if plan.fault is not None:
            raise _fault_error(plan.fault)
        args, params = route.args, route.params
        if route.action == "get":
            record = self.rest.get(
                args["version"], args["sobject"], args["record_id"], params.get("fields")
            )
            return composite.Result(200, record)
        if route.action == "update":
            self.rest.update(args["sobject"], args["record_id"], lambda: sub.body, journal)
            return composite.Result(204)
        if route.action == "create":
            created = self.rest.create(args["sobject"], lambda: sub.body, journal)
            location = f"{API_PREFIX}{args['version']}/sobjects/{args['sobject']}/{created['id']}"
            return composite.Result(201, created, {"Location": location})
        return composite.Result(200, self.rest.query(args["version"], params.get("q")))


# --- helpers ---------------------------------------------------------------------------------


def _action(endpoint: str | None, method: str) -> str:
    """The fault-switch action name of a REST request to `endpoint` with `method`."""
    endpoint = endpoint or ""
    if endpoint == "record":
        return "get" if method == "GET" else "update"
    for action in ("create", "query", "composite"):
        if endpoint.startswith(action):
            return action
    return "other"


def _route(method: str, url: str) -> composite.Route:
    """What a composite subrequest's `url` names, matched against this app's own routes, so
    that a subrequest reaches exactly what the same call made alone would."""
    parts = urlsplit(url)
    try:
        endpoint, args = current_app.url_map.bind("sandbox").match(parts.path, method=method)
    except MethodNotAllowed:
        return composite.Route(None, error=_method_not_allowed(method))
    except HTTPException:
        return composite.Route(None, error=not_found())
    usable = endpoint.rstrip("/") in _SUBREQUEST_ENDPOINTS
    if not usable or not _VERSION.fullmatch(args.get("version", "")):
        return composite.Route(None, error=not_found())
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    return composite.Route(_action(endpoint, method), dict(args), params)


def _fault_error(fault: Fault) -> SalesforceApiError:
    """The Salesforce error an `error` or `http500` fault answers with."""
    if fault.mode == "http500":
        return SalesforceApiError(500, "UNKNOWN_EXCEPTION", fault.message or _UNKNOWN_EXCEPTION)
    code = fault.error_code or _DEFAULT_ERROR
    message = fault.message or _ERROR_MESSAGES.get(code, f"{code} (sandbox fault)")
    return SalesforceApiError(400, code, message)


def _method_not_allowed(method: str) -> SalesforceApiError:
    return SalesforceApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed.")


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
            return json_response(_method_not_allowed(request.method).body(), 405)
        return json_response([{"errorCode": code, "message": exc.description}], status)
    return json_response({"error": {"code": code, "message": exc.description}}, status)


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unexpected error in the Salesforce emulator")
    if request.path.startswith(API_PREFIX):
        body = [{"errorCode": "UNKNOWN_EXCEPTION", "message": _UNKNOWN_EXCEPTION}]
        return json_response(body, 500)
    return json_response({"error": {"code": "INTERNAL_ERROR", "message": "sandbox error"}}, 500)
