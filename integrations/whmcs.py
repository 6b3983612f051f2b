"""The WHMCS gateway: find, create and accept the billing order for a Salesforce order.

WHMCS has one endpoint (`POST /includes/api.php`), form-encoded with PHP bracket arrays and
1/0 booleans, and answers `result: success|error`. It has no idempotency key, so the
Salesforce Order id is written into a product custom field on every service we create and
`find_order` looks for it before anything is created again (see `tasks.steps`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any
from urllib.parse import urlencode

import requests

import settings as process_settings
from settings import WhmcsConfig

from .errors import IntegrationError, PermanentError, TransientError
from .http import GatewaySession
from .metrics import timed_call
from .records import OrderLine, WhmcsOrder
from .settings import whmcs_settings

SYSTEM = "whmcs"
_transient = partial(TransientError, system=SYSTEM)
_permanent = partial(PermanentError, system=SYSTEM)
_PAGE = 250


class WhmcsGateway:
    """Calls the WHMCS API for one process; safe to share between threads."""

    def __init__(self, config: WhmcsConfig | None = None) -> None:
        """`config`: where the system is (default: this process's settings). The sandbox's
        credentials are read on first use (a sandbox may start after this process)."""
        self._config = config
        self._settings: WhmcsConfig | None = None
        self._session: GatewaySession | None = None
        self.api_calls = 0

    @property
    def settings(self) -> WhmcsConfig:
        if self._settings is None:
            config = self._config or process_settings.current().whmcs
            self._settings = whmcs_settings(config)
        return self._settings

    # --- operations ------------------------------------------------------------------------

    def find_order(self, client_id: int, sf_order_id: str, product_id: int) -> WhmcsOrder | None:
        """The WHMCS order whose services carry `sf_order_id`, if one was ever created."""
        services = self._client_services(client_id, product_id)
        match = next((s for s in services if sf_order_id in _custom_values(s)), None)
        if match is None:
            return None
        order_id = _as_int(match.get("orderid"), "orderid")
        items = _listed(self._order(order_id).get("lineitems"), "lineitem")
        service_ids = [
            _as_int(i.get("relid"), "relid") for i in items if i.get("type") == "product"
        ]
        return WhmcsOrder(order_id=order_id, service_ids=tuple(sorted(service_ids)))

    def add_order(self, client_id: int, lines: Iterable[OrderLine], sf_order_id: str) -> WhmcsOrder:
        """Create a Pending order, one service per line, each tagged with the Salesforce id."""
        lines = list(lines)
        s = self.settings
        tag = php_serialized_map({s.order_field_id: sf_order_id})
        body = self.call(
            "AddOrder",
            {
                "clientid": client_id,
                "paymentmethod": s.payment_method,
                "pid": [line.product_id for line in lines],
                "qty": [line.quantity for line in lines],
                "billingcycle": [s.billing_cycle for _ in lines],
                "customfields": [tag for _ in lines],
                "noemail": True,
            },
        )
        return WhmcsOrder(
            order_id=_as_int(body.get("orderid"), "orderid"),
            service_ids=tuple(_id_list(body.get("serviceids", body.get("productids", "")))),
        )

    def order_status(self, order_id: int) -> str:
        status = self._order(order_id).get("status")
        if not isinstance(status, str):
            raise _permanent("WHMCS_BAD_RESPONSE", "GetOrders returned no status")
        return status

    def _order(self, order_id: int) -> dict[str, Any]:
        orders = _listed(self.call("GetOrders", {"id": order_id}).get("orders"), "order")
        if not orders:
            raise _permanent("WHMCS_ORDER_MISSING", f"WHMCS order {order_id} not found")
        return orders[0]

    def accept_order(self, order_id: int, *, pending: bool = False) -> None:
        """Accept a Pending order (running its modules' setup) and make sure every service is
        set up; safe to repeat: nothing already done is done again. `pending`: the order was
        created just now, so it is accepted without being looked at first (one call, not two;
        a refusal still looks)."""
        order = {"status": "Pending"} if pending else self._order(order_id)
        if order.get("status") == "Pending":
            try:
                self.call(
                    "AcceptOrder", {"orderid": order_id, "autosetup": True, "sendemail": True}
                )
                return  # accepted with autosetup: every service was set up
            except PermanentError as exc:
                # Accepted by someone else meanwhile, or accepted while a module failed: look.
                order = self._order(order_id)
                if order.get("status") == "Pending":
                    raise exc from None
        if order.get("status") != "Active":
            raise _permanent(
                "WHMCS_ORDER_STATE", f"WHMCS order {order_id} is {order.get('status')}"
            )
        for service_id in _pending_services(order):
            self.call("ModuleCreate", {"serviceid": service_id})

    def _client_services(self, client_id: int, product_id: int) -> list[dict[str, Any]]:
        services: list[dict[str, Any]] = []
        start = 0
        while True:
            body = self.call(
                "GetClientsProducts",
                {"clientid": client_id, "pid": product_id, "limitstart": start, "limitnum": _PAGE},
            )
            page = _listed(body.get("products"), "product")
            services.extend(page)
            start += len(page)
            if not page or start >= _as_int(body.get("totalresults", 0), "totalresults"):
                return services

    # --- transport and error mapping -------------------------------------------------------

    def call(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """POST one API action; return the JSON body of a `result: success` answer."""
        s = self.settings
        auth = {"identifier": s.identifier, "secret": s.secret, "accesskey": s.access_key}
        form = encode_form({"action": action, "responsetype": "json", **auth, **params})
        self.api_calls += 1
        with timed_call(SYSTEM, action):
            try:
                # Encoded here, as requests would: handed pairs, it spends three Protocol
                # checks on them (`integrations.http`).
                body = urlencode(form)
                response = self._http().post(f"{s.url}/includes/api.php", data=body, headers=_FORM)
            except requests.RequestException as exc:
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                raise _transient("WHMCS_UNAVAILABLE", f"WHMCS {action} {kind}") from None
            return _checked_body(action, response)

    def _http(self) -> GatewaySession:
        if self._session is None:
            self._session = GatewaySession(self.settings.timeout, self.settings.ca_bundle)
        return self._session


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _checked_body(action: str, response: requests.Response) -> dict[str, Any]:
    status = response.status_code
    if status >= 500 or status == 429:
        code = "WHMCS_LIMIT" if status == 429 else "WHMCS_UNAVAILABLE"
        raise _transient(code, f"WHMCS {action} answered HTTP {status}")
    try:
        body = response.json()
    except ValueError:
        # Maintenance mode and WAFs answer 200 with HTML; a cut-off body looks the same.
        raise _transient(
            "WHMCS_BAD_RESPONSE",
            f"WHMCS {action} answered something that is not JSON",
        ) from None
    if not isinstance(body, dict) or body.get("result") not in ("success", "error"):
        raise _permanent("WHMCS_BAD_RESPONSE", f"WHMCS {action} answered no result")
    if body["result"] == "error" or status != 200:
        raise _error_for(action, status, str(body.get("message") or "unknown error"))
    return body


def _error_for(action: str, status: int, message: str) -> IntegrationError:
    code = "WHMCS_AUTH" if status in (401, 403) else "WHMCS_ERROR"
    return _permanent(code, f"{action}: {message[:300]}")


# --- encoding ------------------------------------------------------------------------------


def encode_form(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Encode params as PHP's `http_build_query` would: `a[0]=x`, `m[k]=v`, booleans as 1/0."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        _encode_value(key, value, pairs)
    return pairs


def _encode_value(key: str, value: Any, pairs: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for sub_key, sub_value in value.items():
            _encode_value(f"{key}[{sub_key}]", sub_value, pairs)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _encode_value(f"{key}[{index}]", item, pairs)
    elif isinstance(value, bool):
        # requests would send "True"/"False", and PHP reads "False" as true.
        pairs.append((key, "1" if value else "0"))
    else:
        pairs.append((key, str(value)))


def php_serialized_map(values: Mapping[int | str, str]) -> str:
    """base64(serialize(array(...))): how WHMCS takes custom field values in AddOrder."""

    def php_key(key: int | str) -> str:
        text = str(key)
        return f"i:{int(text)};" if text.isdigit() else f's:{len(text.encode())}:"{text}";'

    body = "".join(
        f'{php_key(key)}s:{len(str(value).encode())}:"{value}";' for key, value in values.items()
    )
    return base64.b64encode(f"a:{len(values)}:{{{body}}}".encode()).decode()


# --- decoding ------------------------------------------------------------------------------


def _listed(container: Any, item_key: str) -> list[dict[str, Any]]:
    # WHMCS wraps lists as {"orders": {"order": [...]}}; empty ones come back as "" or absent.
    if not container:
        return []
    items = container.get(item_key) if isinstance(container, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise _permanent("WHMCS_BAD_RESPONSE", f"malformed {item_key} list")
    return items


def _pending_services(order: Mapping[str, Any]) -> list[int]:
    """Services of the order whose setup has not run (a module failed, or no autosetup)."""
    items = _listed(order.get("lineitems"), "lineitem")
    return [
        _as_int(item.get("relid"), "relid")
        for item in items
        if item.get("type") == "product" and item.get("status") == "Pending"
    ]


def _custom_values(service: Mapping[str, Any]) -> set[str]:
    fields = _listed(service.get("customfields"), "customfield")
    return {str(field.get("value", "")) for field in fields}


def _as_int(value: Any, name: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise _permanent(
            "WHMCS_BAD_RESPONSE", f"{name} is not a number: {str(value)[:40]!r}"
        ) from None


def _id_list(value: Any) -> list[int]:
    text = str(value or "").strip()
    return [_as_int(part, "serviceids") for part in text.split(",") if part.strip()]
