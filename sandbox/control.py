"""The `/__sandbox/` control API of each emulator: demo orders, inspection, fault switches.

No authentication and JSON only; errors are `{"error": {"code", "message"}}`. Mounted as one
blueprint per emulator, since each exposes a different view of the shared world.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request

from . import demo, ids
from .errors import ControlError
from .faults import FaultRegistry
from .responses import json_response
from .state import Record, World


def salesforce_blueprint(world: World, faults: FaultRegistry) -> Blueprint:
    """Control routes of the Salesforce emulator."""
    bp = _base_blueprint("salesforce", faults)

    @bp.post("/orders")
    def create_order() -> Response:
        return json_response(demo.create_order(world, _json_body()), 201)

    @bp.post("/orders/batch")
    def create_orders() -> Response:
        return json_response({"orders": demo.create_orders(world, _json_body())}, 201)

    @bp.get("/usage")
    def usage() -> Response:
        # The number Sforce-Limit-Info reports: REST and SOQL calls since the sandbox started.
        with world.lock:
            return json_response({"apiCalls": world.salesforce.api_usage})

    @bp.get("/orders/<order_id>")
    def show_order(order_id: str) -> Response:
        with world.lock:
            order = _record(world, "Order", order_id)
            items = [
                dict(item)
                for item in world.salesforce.order_items.values()
                if item["OrderId"] == order["Id"]
            ]
            writes = [dict(w) for w in world.salesforce.writes.get(order["Id"], [])]
            return json_response({"record": dict(order), "items": items, "writes": writes})

    @bp.get("/accounts/<account_id>")
    def show_account(account_id: str) -> Response:
        with world.lock:
            return json_response(dict(_record(world, "Account", account_id)))

    return bp


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
