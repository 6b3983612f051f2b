"""The Salesforce gateway: the Order and Account reads and writes fulfillment needs.

Built on simple-salesforce in "direct session" mode: we fetch the OAuth token ourselves
(client credentials, or the JWT bearer grant when a private key is configured) against a
configurable host, because simple-salesforce hard-codes `https://{domain}.salesforce.com` for
its own logins and, in its SFType re-login path, can recurse without bound on repeated 401s
(simple-salesforce#804). An expired session is refreshed once per call; vendor errors are
mapped by one table onto the transient/permanent tree.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlencode, urlsplit

import jwt
import requests
from simple_salesforce import Salesforce, SFType, format_soql
from simple_salesforce.exceptions import SalesforceError

import settings as process_settings
from settings import SalesforceConfig

from .errors import IntegrationError, PermanentError, TransientError
from .http import GatewaySession
from .metrics import timed_call
from .records import OrderActivation, OrderFacts, OrderLine, OrderRecord, OrderSummary
from .settings import salesforce_settings

SYSTEM = "salesforce"
_transient = partial(TransientError, system=SYSTEM)
_permanent = partial(PermanentError, system=SYSTEM)
T = TypeVar("T")
#: The activation status `activate_and_read` writes.
ACTIVATING = "Activating"
#: What Salesforce answers, in an all-or-none composite call, for every subrequest but the
#: one that failed.
_HALTED = "PROCESSING_HALTED"

#: errorCode -> (error class, our code). Anything else 4xx is permanent, 5xx transient.
_ERROR_CODES: dict[str, tuple[type[IntegrationError], str]] = {
    "REQUEST_LIMIT_EXCEEDED": (TransientError, "SALESFORCE_LIMIT"),
    "UNABLE_TO_LOCK_ROW": (TransientError, "SALESFORCE_LOCKED"),
    "SERVER_UNAVAILABLE": (TransientError, "SALESFORCE_UNAVAILABLE"),
    "INVALID_SESSION_ID": (TransientError, "SALESFORCE_SESSION"),
    "NOT_FOUND": (PermanentError, "SALESFORCE_NOT_FOUND"),
    "MALFORMED_ID": (PermanentError, "SALESFORCE_NOT_FOUND"),
}


@dataclass(frozen=True)
class PubSubAuth:
    access_token: str
    instance_url: str
    tenant_id: str

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (
            ("accesstoken", self.access_token),
            ("instanceurl", self.instance_url),
            ("tenantid", self.tenant_id),
        )


class SalesforceGateway:
    """Reads and writes Salesforce Orders for one process; safe to share between threads."""

    def __init__(self, config: SalesforceConfig | None = None) -> None:
        """`config`: where the system is (default: this process's settings). The sandbox's
        credentials are read on first use (a sandbox may start after this process)."""
        self._config = config
        self._settings: SalesforceConfig | None = None
        self._lock = threading.Lock()
        self._client: Salesforce | None = None
        self._org_id: str | None = None
        self._instance_url: str | None = None
        self.api_calls = 0

    @property
    def settings(self) -> SalesforceConfig:
        if self._settings is None:
            config = self._config or process_settings.current().salesforce
            self._settings = salesforce_settings(config)
        return self._settings

    # --- operations ------------------------------------------------------------------------

    def get_order(self, order_id: str) -> OrderRecord:
        """The order's activation fields and its Account's WHMCS client id, in one query."""
        s = self.settings
        fields = f"Id, AccountId, Account.{s.client_field}, {s.status_field}"
        soql = f"SELECT {fields} FROM Order"  # noqa: S608 (field names are configuration)
        soql += format_soql(" WHERE Id = {}", order_id)
        records = _records(self._call("get_order", lambda sf: sf.query(soql)))
        return _order_record(_the_order(records, order_id), s, order_id)

    def activate_and_read(self, order_id: str) -> OrderActivation:
        """Mark the order Activating (clearing its error, as `update_order(status=...)` does)
        and read it back, in one API call: a Composite request, all or none, of that PATCH
        and then one query of the order's activation fields, its Account's WHMCS client id,
        its number and date, and its items with their products. Salesforce writes nothing
        unless both succeed, and the read sees the write.

        The lines are checked as `get_order_lines` checks them (PRODUCT_NOT_MAPPED,
        ORDER_EMPTY, SALESFORCE_BAD_DATA), which can only be once the answer is here: such an
        order is left Activating, for the caller to fail."""
        s = self.settings
        fields = (f"Account.{s.client_field}", s.status_field)
        read = _order_read(fields, _line_fields(s.product_field))
        soql = read + format_soql(" WHERE Id = {}", order_id)
        changes = self._order_fields(status=ACTIVATING)

        def activate(sf: Salesforce) -> dict[str, Any]:
            base = urlsplit(sf.base_url).path  # /services/data/vNN.N/
            return _composite(
                sf,
                {
                    "method": "PATCH",
                    "url": f"{base}sobjects/Order/{quote(order_id, safe='')}",
                    "referenceId": "activate",
                    "body": changes,
                },
                {
                    "method": "GET",
                    "url": f"{base}query?{urlencode({'q': soql})}",
                    "referenceId": "order",
                },
            )

        answers = self._call("activate_and_read", activate)
        record = _the_order(_records(answers["order"]), order_id)
        if _items_paged(record):
            # More items than one answer holds: what is provisioned must be all of them.
            lines = self.get_order_lines(order_id)
        else:
            lines = _order_lines(_item_rows(record), s.product_field, order_id)
        return OrderActivation(
            order=_order_record(record, s, order_id),
            lines=tuple(lines),
            summary=_facts(record).summary,
        )

    def account_orders(self, account_id: str, limit: int = 100) -> dict[str, OrderFacts]:
        """The account's orders, newest first, with what was ordered: one query (one API
        call) for a customer's list of orders that nobody looked up yet."""
        # CreatedDate has whole seconds; the auto-numbered OrderNumber breaks its ties.
        where = " WHERE AccountId = {} ORDER BY CreatedDate DESC, OrderNumber DESC LIMIT {}"
        soql = format_soql(_ORDER_READ + where, account_id, int(limit))
        records = _records(self._call("account_orders", lambda sf: sf.query_all(soql)))
        return {str(r["Id"]): _facts(r) for r in records if isinstance(r.get("Id"), str)}

    def get_order_facts(self, order_ids: list[str]) -> dict[str, OrderFacts | None]:
        """Each order's AccountId and what was ordered (None for orders Salesforce does not
        have), in one query with its items as a subquery: one API call for a whole batch of
        lookups. `order_ids` are 18-character ids."""
        soql = format_soql(_ORDER_READ + " WHERE Id IN {}", order_ids)
        records = _records(self._call("get_order_facts", lambda sf: sf.query_all(soql)))
        found = {str(r.get("Id")): _facts(r) for r in records}
        return {order_id: found.get(order_id) for order_id in order_ids}

    def orders_not_started(self, approved_condition: str, limit: int = 2000) -> list[str]:
        """Ids of approved orders fulfillment never touched (no activation status): what the
        listener's sweep starts when the event stream may have lost approvals."""
        s = self.settings
        soql = (
            f"SELECT Id FROM Order WHERE {approved_condition} "  # noqa: S608 (configuration)
            f"AND {s.status_field} = null LIMIT {int(limit)}"
        )
        records = _records(self._call("orders_not_started", lambda sf: sf.query_all(soql)))
        return [str(r["Id"]) for r in records if isinstance(r.get("Id"), str)]

    def pubsub_auth(self, renew: bool = False) -> PubSubAuth:
        """The session as the Pub/Sub API wants it (`accesstoken`, `instanceurl`, `tenantid`
        metadata); `renew` logs in again (the API answered UNAUTHENTICATED)."""
        with self._lock:
            if self._client is None or renew:
                self._client = self._login()
            client, org_id, instance = self._client, self._org_id, self._instance_url
        return PubSubAuth(client.session_id, instance or "", org_id or "")

    def get_account_id(self, order_id: str) -> str | None:
        """The order's AccountId, or None when Salesforce has no such order."""
        try:
            record = self._call(
                "get_account_id",
                lambda sf: _sobject(sf, "Order").get(order_id, params={"fields": "AccountId"}),
            )
        except PermanentError as exc:
            if exc.code == "SALESFORCE_NOT_FOUND":
                return None
            raise
        if not isinstance(record, dict):
            raise _permanent("SALESFORCE_BAD_RESPONSE", "the Order record is not an object")
        account = record.get("AccountId")
        return account if isinstance(account, str) else None

    def get_order_lines(self, order_id: str) -> list[OrderLine]:
        """The order's products as WHMCS product ids and quantities."""
        field = self.settings.product_field
        # The field name is configuration, never input; the id goes through format_soql.
        select = f"SELECT {', '.join(_line_fields(field))} FROM OrderItem"  # noqa: S608
        soql = select + format_soql(" WHERE OrderId = {}", order_id)
        records = _records(self._call("get_order_lines", lambda sf: sf.query_all(soql)))
        return _order_lines(records, field, order_id)

    def update_order(
        self,
        order_id: str,
        *,
        status: str | None = None,
        error: str | None = None,
        whmcs_order_id: int | None = None,
    ) -> None:
        """Write the activation status (clearing or setting the error) and the WHMCS id, in
        one PATCH."""
        fields = self._order_fields(status, error, whmcs_order_id)
        if fields:
            self._call("update_order", lambda sf: _sobject(sf, "Order").update(order_id, fields))

    def _order_fields(
        self,
        status: str | None = None,
        error: str | None = None,
        whmcs_order_id: int | None = None,
    ) -> dict[str, Any]:
        """The Order fields a write sets: a status comes with its error (cleared unless
        given), and the WHMCS order id is text."""
        s = self.settings
        fields: dict[str, Any] = {}
        if status is not None:
            fields[s.status_field] = status
            fields[s.error_field] = error[:32000] if error else None
        if whmcs_order_id is not None:
            fields[s.whmcs_order_field] = str(whmcs_order_id)
        return fields

    # --- session and error mapping ---------------------------------------------------------

    def _call(self, name: str, operation: Callable[[Salesforce], T]) -> T:
        with timed_call(SYSTEM, name):
            client = self._session()
            try:
                return self._mapped(operation, client)
            except TransientError as exc:
                if exc.code != "SALESFORCE_SESSION":
                    raise
            # The session expired: log in again once, then give the call one more try.
            return self._mapped(operation, self._session(replacing=client))

    def _mapped(self, operation: Callable[[Salesforce], T], client: Salesforce) -> T:
        self.api_calls += 1
        try:
            return operation(client)
        except SalesforceError as exc:
            raise _map_salesforce_error(exc) from None
        except requests.RequestException as exc:
            raise _map_transport_error(exc) from None

    def _session(self, replacing: Salesforce | None = None) -> Salesforce:
        with self._lock:
            if self._client is None or self._client is replacing:
                self._client = self._login()
            return self._client

    def _login(self) -> Salesforce:
        s = self.settings
        session = GatewaySession(s.timeout, s.ca_bundle)
        with timed_call(SYSTEM, "token"):
            try:
                response = session.post(f"{s.login_url}/services/oauth2/token", **self._grant())
            except requests.RequestException as exc:
                raise _map_transport_error(exc) from None
            token = _token_from(response)
        self._org_id, self._instance_url = _org_of(token.get("id")), token["instance_url"]
        return Salesforce(
            instance_url=token["instance_url"],
            session_id=token["access_token"],
            session=session,
            version=s.api_version,
        )

    def _grant(self) -> dict[str, Any]:
        s = self.settings
        if s.uses_jwt_bearer:
            claims = {
                "iss": s.client_id,
                "sub": s.username,
                "aud": s.audience,
                "exp": int(time.time()) + 180,
            }
            assertion = jwt.encode(claims, s.private_key, algorithm="RS256")  # type: ignore[arg-type]
            grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
            return {"data": {"grant_type": grant, "assertion": assertion}}
        return {
            "data": {"grant_type": "client_credentials"},
            "auth": (s.client_id, s.client_secret),
        }


def _org_of(identity: object) -> str | None:
    """The org id in a token's identity URL (`…/id/<org id>/<user id>`): the Pub/Sub API's
    tenant id."""
    parts = str(identity or "").rstrip("/").split("/")
    return parts[-2] if len(parts) >= 3 and parts[-3] == "id" else None


def _token_from(response: requests.Response) -> dict[str, Any]:
    if response.status_code >= 500:
        raise _transient(
            "SALESFORCE_UNAVAILABLE",
            f"token endpoint answered HTTP {response.status_code}",
        )
    try:
        body = response.json()
    except ValueError:
        raise _transient("SALESFORCE_BAD_RESPONSE", "token endpoint did not answer JSON") from None
    if response.status_code != 200 or not isinstance(body, dict):
        reason = body.get("error", "unknown") if isinstance(body, dict) else "unknown"
        raise _permanent(
            "SALESFORCE_AUTH",
            f"Salesforce refused the integration's login ({reason})",
        )
    if not isinstance(body.get("access_token"), str) or not isinstance(
        body.get("instance_url"), str
    ):
        raise _permanent(
            "SALESFORCE_BAD_RESPONSE",
            "token response lacks access_token/instance_url",
        )
    return body


def _order_read(order_fields: tuple[str, ...] = (), item_fields: tuple[str, ...] = ()) -> str:
    """One read of Orders: the owner, the number and date, and the items (a subquery) with
    what `_facts` sums up, plus the fields given (configuration, never input)."""
    # Salesforce refuses a field selected twice.
    order = ", ".join(
        dict.fromkeys(("Id", "AccountId", "OrderNumber", "EffectiveDate", *order_fields))
    )
    items = ", ".join(dict.fromkeys(("Quantity", "UnitPrice", "Product2.Name", *item_fields)))
    return f"SELECT {order}, (SELECT {items} FROM OrderItems) FROM Order"  # noqa: S608


_ORDER_READ = _order_read()


def _line_fields(product_field: str) -> tuple[str, ...]:
    """The OrderItem fields `_order_line` reads."""
    return ("Id", "Quantity", f"Product2.{product_field}", "Product2.Name")


def _order_record(record: dict[str, Any], s: SalesforceConfig, order_id: str) -> OrderRecord:
    account = record.get("Account")
    account = account if isinstance(account, dict) else {}
    return OrderRecord(
        order_id=str(record.get("Id") or order_id),
        account_id=record.get("AccountId"),
        client_id=_optional_int(account.get(s.client_field), f"Account.{s.client_field}"),
        activation_status=record.get(s.status_field),
    )


def _the_order(records: list[dict[str, Any]], order_id: str) -> dict[str, Any]:
    if not records:
        raise _permanent("SALESFORCE_NOT_FOUND", f"Order {order_id} not found")
    return records[0]


def _item_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The order's items, from its `OrderItems` subquery (null when it has none)."""
    children = record.get("OrderItems")
    if children is None:
        return []
    return _records(children)


def _items_paged(record: dict[str, Any]) -> bool:
    """Whether the `OrderItems` subquery left items for a next page (`done` false)."""
    children = record.get("OrderItems")
    return isinstance(children, dict) and children.get("done") is False


def _facts(record: dict[str, Any]) -> OrderFacts:
    account = record.get("AccountId")
    items: list[tuple[str, int]] = []
    total = 0.0
    for row in _item_rows(record):
        product = row.get("Product2")
        name = product.get("Name") if isinstance(product, dict) else None
        quantity, price = row.get("Quantity"), row.get("UnitPrice")
        if isinstance(quantity, int | float):
            items.append((str(name or "Product"), int(quantity)))
            total += float(quantity) * float(price) if isinstance(price, int | float) else 0.0
    number, placed = record.get("OrderNumber"), record.get("EffectiveDate")
    summary = OrderSummary(
        number=str(number) if number else None,
        placed=str(placed) if placed else None,
        total=round(total, 2) if items else None,
        items=tuple(items),
    )
    return OrderFacts(account if isinstance(account, str) else None, summary)


def _records(result: Any) -> list[dict[str, Any]]:
    records = result.get("records") if isinstance(result, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise _permanent("SALESFORCE_BAD_RESPONSE", "the query answer has no list of records")
    return records


def _sobject(sf: Salesforce, name: str) -> SFType:
    # `sf.Order` is typed as a union of Bulk handlers; at run time it is an SFType.
    return cast(SFType, getattr(sf, name))


def _first_error(content: Any) -> tuple[str, str]:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    return "", ""


def _map_salesforce_error(exc: SalesforceError) -> IntegrationError:
    return _map_error(exc.status, exc.content)


def _map_error(status: int, content: Any) -> IntegrationError:
    """The one error table: for a call's error answer, and a composite subrequest's."""
    error_code, message = _first_error(content)
    if status == 401:
        # Any 401 means the session is unusable; re-authenticating is the remedy.
        return _transient("SALESFORCE_SESSION", "Salesforce session expired")
    if error_code in _ERROR_CODES:
        cls, code = _ERROR_CODES[error_code]
        return cls(code, message or error_code, system=SYSTEM)
    if status == 404:
        return _permanent("SALESFORCE_NOT_FOUND", "record not found")
    if status >= 500:
        return _transient("SALESFORCE_UNAVAILABLE", f"Salesforce answered HTTP {status}")
    detail = f"{error_code}: {message}" if error_code else f"HTTP {status}"
    return _permanent("SALESFORCE_ERROR", detail)


def _composite(sf: Salesforce, *subrequests: dict[str, Any]) -> dict[str, Any]:
    """Run `subrequests` as one Composite call (one API call), all or none: each one's body
    by its referenceId, or the error of the one that failed, mapped as any call's is. Raising
    from here, inside `_call`, lets an expired session log in again as for any call."""
    body = {"allOrNone": True, "compositeRequest": list(subrequests)}
    answer = sf.restful("composite", method="POST", json=body)
    return _composite_bodies(answer, [str(r["referenceId"]) for r in subrequests])


def _composite_bodies(answer: Any, references: list[str]) -> dict[str, Any]:
    """The subrequests' bodies by referenceId from a composite answer, or the error of the
    subrequest that failed (the others answer PROCESSING_HALTED)."""
    results = answer.get("compositeResponse") if isinstance(answer, dict) else None
    if not isinstance(results, list) or not all(
        isinstance(r, dict) and type(r.get("httpStatusCode")) is int for r in results
    ):
        raise _permanent("SALESFORCE_BAD_RESPONSE", "the composite answer has no list of results")
    failed = [r for r in results if not 200 <= r["httpStatusCode"] < 300]
    if failed:
        cause = next((r for r in failed if _first_error(r.get("body"))[0] != _HALTED), failed[0])
        raise _map_error(cause["httpStatusCode"], cause.get("body"))
    bodies = {r.get("referenceId"): r.get("body") for r in results}
    missing = [reference for reference in references if reference not in bodies]
    if missing:
        raise _permanent(
            "SALESFORCE_BAD_RESPONSE", f"the composite answer lacks {', '.join(missing)}"
        )
    return {reference: bodies[reference] for reference in references}


def _map_transport_error(exc: requests.RequestException) -> IntegrationError:
    if isinstance(exc, requests.exceptions.SSLError):
        return _permanent("SALESFORCE_TLS", "TLS verification failed")
    if isinstance(exc, ValueError):
        # A 200 whose body is not JSON: a maintenance page or a cut-off response.
        return _transient(
            "SALESFORCE_BAD_RESPONSE",
            "Salesforce answered something that is not JSON",
        )
    kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
    return _transient("SALESFORCE_UNAVAILABLE", f"Salesforce {kind}")


def _optional_int(value: Any, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise _permanent(
            "SALESFORCE_BAD_DATA", f"{field} is not a number: {str(value)[:40]!r}"
        ) from None


def _order_lines(records: list[dict[str, Any]], field: str, order_id: str) -> list[OrderLine]:
    """The order's items as WHMCS products; an order without any cannot be provisioned."""
    if not records:
        raise _permanent("ORDER_EMPTY", f"Order {order_id} has no products")
    return [_order_line(record, field) for record in records]


def _order_line(record: dict[str, Any], field: str) -> OrderLine:
    product = record.get("Product2") or {}
    product_id = _optional_int(product.get(field), f"Product2.{field}")
    if product_id is None:
        name = product.get("Name") or record.get("Id")
        raise _permanent("PRODUCT_NOT_MAPPED", f"product {name} has no {field}")
    quantity = record.get("Quantity") or 1
    if not isinstance(quantity, int | float) or quantity < 1:
        raise _permanent("SALESFORCE_BAD_DATA", "OrderItem.Quantity is invalid")
    return OrderLine(
        product_id=product_id, quantity=int(quantity), name=str(product.get("Name", ""))
    )
