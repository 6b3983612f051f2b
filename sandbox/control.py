"""The `/__sandbox/` control API of each emulator: demo orders, approvals, inspection, fault
switches, and (on the Salesforce emulator) the Pub/Sub API emulator's event log.

No authentication and JSON only; errors are `{"error": {"code", "message"}}`. Mounted as one
blueprint per emulator, since each exposes a different view of the shared world.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request

from . import approvals, demo, ids, pubsub_control
from .errors import ControlError
from .faults import FaultRegistry
from .pubsub_bus import EventBus
from .responses import json_response
from .state import Record, World


def salesforce_blueprint(world: World, faults: FaultRegistry, bus: EventBus) -> Blueprint:
    """Control routes of the Salesforce emulator (and of its Pub/Sub API)."""
    bp = _base_blueprint("salesforce", faults)

    def created(body: Any, made: list[dict[str, str]]) -> list[dict[str, Any]]:
        """New orders' answers, approved together first when the body asked for it."""
        if not (isinstance(body, dict) and body.get("approve") is True):
            return [dict(m) for m in made]
        with world.lock:
            orders = [_record(world, "Order", m["orderId"]) for m in made]
        answers = approvals.approve_all(world, bus, orders)
        return [{**m, **answer} for m, answer in zip(made, answers, strict=True)]

    @bp.post("/orders")
    def create_order() -> Response:
        body = _json_body()
        (answer,) = created(body, [demo.create_order(world, body)])
        return json_response(answer, 201)

    @bp.post("/orders/batch")
    def create_orders() -> Response:
        body = _json_body()
        return json_response({"orders": created(body, demo.create_orders(world, body))}, 201)

    @bp.post("/orders/<order_id>/approve")
    def approve_order(order_id: str) -> Response:
        with world.lock:
            order = _record(world, "Order", order_id)
        return json_response(approvals.approve(world, bus, order), 202)

    @bp.get("/usage")
    def usage() -> Response:
        # The number Sforce-Limit-Info reports: REST and SOQL calls since the sandbox started.
        with world.lock:
            return json_response({"apiCalls": world.salesforce.api_usage})

    @bp.get("/orders/<order_id>")
    def show_order(order_id: str) -> Response:
        with world.lock:
            order = _record(world, "Order", order_id)
            items = [dict(item) for item in world.salesforce.items_of(order["Id"])]
            writes = [dict(w) for w in world.salesforce.writes.get(order["Id"], [])]
            return json_response({"record": dict(order), "items": items, "writes": writes})

    @bp.get("/accounts/<account_id>")
    def show_account(account_id: str) -> Response:
        with world.lock:
            return json_response(dict(_record(world, "Account", account_id)))

    _pubsub_routes(bp, bus)
    return bp


def _pubsub_routes(bp: Blueprint, bus: EventBus) -> None:
    @bp.get("/pubsub")
    def pubsub_overview() -> Response:
        return json_response(pubsub_control.overview(bus))

    @bp.get("/pubsub/events")
    def pubsub_events() -> Response:
        return json_response(pubsub_control.list_events(bus, request.args.get("topic")))

    @bp.get("/pubsub/settings")
    def pubsub_settings() -> Response:
        return json_response(bus.settings())

    @bp.post("/pubsub/settings")
    def pubsub_configure() -> Response:
        return json_response(pubsub_control.update_settings(bus, _json_body()))

    @bp.post("/pubsub/expire")
    def pubsub_expire() -> Response:
        return json_response(pubsub_control.expire(bus, _json_body()))

    @bp.post("/pubsub/redeliver")
    def pubsub_redeliver() -> Response:
        return json_response(pubsub_control.redeliver(bus, _json_body()))


def whmcs_blueprint(world: World, faults: FaultRegistry) -> Blueprint:
    """Control routes of the WHMCS emulator."""
    bp = _base_blueprint("whmcs", faults)

    @bp.get("/orders")
    def list_orders() -> Response:
        wanted = request.args.get("salesforceOrderId")
        with world.lock:
            data = world.whmcs
            orders = [
                _order_summary(world, order)
                for order in data.orders.values()
                if wanted is None or _carries(world, order, wanted)
            ]
        return json_response(orders)

    return bp


def _base_blueprint(system: str, faults: FaultRegistry) -> Blueprint:
    bp = Blueprint(f"{system}_control", __name__, url_prefix="/__sandbox")

    @bp.get("/")
    def health() -> Response:
        return json_response({"system": system, "status": "ok"})

    @bp.post("/faults")
    def add_fault() -> Response:
        return json_response(faults.add(_json_body()).to_json(), 201)

    @bp.get("/faults")
    def list_faults() -> Response:
        return json_response(faults.list())

    @bp.delete("/faults")
    def clear_faults() -> Response:
        faults.clear()
        return Response(status=204)

    @bp.errorhandler(ControlError)
    def control_error(exc: ControlError) -> Response:
        return json_response(exc.body(), exc.status)

    return bp


def _json_body() -> Any:
    raw = request.get_data()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ControlError("BAD_JSON", "the body is not valid JSON") from None


def _record(world: World, sobject: str, record_id: str) -> Record:
    full = ids.normalize(record_id)
    if full is None or not ids.is_id_of(full, sobject):
        raise ControlError("MALFORMED_ID", f"not {sobject} id: {record_id!r}")
    record = world.salesforce.table(sobject).get(full)
    if record is None:
        raise ControlError("NOT_FOUND", f"no {sobject} {full}", status=404)
    return record


def _carries(world: World, order: Record, salesforce_id: str) -> bool:
    """True when a service of `order` has `salesforce_id` in a custom field."""
    wanted = ids.normalize(salesforce_id) or salesforce_id
    for service_id in order["serviceids"]:
        service = world.whmcs.services.get(service_id, {})
        for value in service.get("customfields", {}).values():
            if value and (ids.normalize(value) or value) == wanted:
                return True
    return False


def _order_summary(world: World, order: Record) -> dict[str, Any]:
    services = [world.whmcs.services[sid] for sid in order["serviceids"]]
    return {
        "id": order["id"],
        "status": order["status"],
        "clientid": order["userid"],
        "ordernum": order["ordernum"],
        "services": [
            {
                "id": s["id"],
                "pid": s["pid"],
                "status": s["status"],
                "customfields": s["customfields"],
            }
            for s in services
        ],
    }
