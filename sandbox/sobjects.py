"""The Salesforce schema the emulator knows, and records shaped the way the REST API shows them.

Four objects (Account, Product2, Order, OrderItem) with the standard and custom fields the
pipeline uses. Field names resolve case-insensitively, as in Salesforce. Writes are checked
against the schema here (unknown field, read-only field, restricted picklist, type, length),
so the REST handlers only move data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from . import clock, ids
from .errors import SalesforceApiError
from .state import Record


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str  # id, string, textarea, picklist, reference, date, datetime, double, boolean
    updateable: bool = True
    reference_to: str | None = None
    relationship: str | None = None
    picklist: tuple[str, ...] = ()
    max_length: int = 255
    nillable: bool = True
    #: The value a new record gets when the insert does not set it (a checkbox's is false).
    default: Any = None

    @property
    def label(self) -> str:
        return self.name.removesuffix("__c").removesuffix("Id").replace("_", " ").strip()


def _audit_fields() -> tuple[FieldDef, ...]:
    return tuple(
        FieldDef(name, "datetime", updateable=False)
        for name in ("CreatedDate", "LastModifiedDate", "SystemModstamp")
    )


_ID = FieldDef("Id", "id", updateable=False)
ACTIVATION_STATUSES = ("Activating", "Completed", "Failed")
ORDER_STATUSES = ("Draft", "Activated")

SCHEMA: dict[str, tuple[FieldDef, ...]] = {
    "Account": (
        _ID,
        FieldDef("Name", "string", nillable=False),
        FieldDef("WHMCS_Client_Id__c", "string"),
        *_audit_fields(),
    ),
    "Product2": (
        _ID,
        FieldDef("Name", "string", nillable=False),
        FieldDef("ProductCode", "string"),
        FieldDef("WHMCS_Product_Id__c", "string"),
        FieldDef("IsActive", "boolean", nillable=False),
    ),
    "Order": (
        _ID,
        FieldDef("OrderNumber", "string", updateable=False),
        FieldDef("AccountId", "reference", reference_to="Account", relationship="Account"),
        FieldDef("Status", "picklist", picklist=ORDER_STATUSES, nillable=False),
        FieldDef("StatusCode", "picklist", updateable=False),
        FieldDef("EffectiveDate", "date", nillable=False),
        FieldDef("Description", "textarea", max_length=32000),
        FieldDef("Activation_Status__c", "picklist", picklist=ACTIVATION_STATUSES),
        FieldDef("Activation_Error__c", "textarea", max_length=32768),
        FieldDef("WHMCS_Order_Id__c", "string"),
        # Ticked when the order is approved; the record-triggered Flow reacts to it.
        FieldDef("Approved__c", "boolean", default=False),
        *_audit_fields(),
    ),
    "OrderItem": (
        _ID,
        FieldDef("OrderId", "reference", reference_to="Order", relationship="Order"),
        FieldDef("Product2Id", "reference", reference_to="Product2", relationship="Product2"),
        FieldDef("Quantity", "double", nillable=False),
        FieldDef("UnitPrice", "double"),
    ),
}


def canonical_sobject(name: str) -> str | None:
    """The schema's spelling of an sObject name, matched case-insensitively."""
    return next((known for known in SCHEMA if known.lower() == name.lower()), None)


def field(sobject: str, name: str) -> FieldDef | None:
    """A field of `sobject` by case-insensitive name."""
    lowered = name.lower()
    return next((f for f in SCHEMA[sobject] if f.name.lower() == lowered), None)


def relationship(sobject: str, name: str) -> FieldDef | None:
    """The reference field behind relationship `name` (e.g. `Product2` on OrderItem)."""
    lowered = name.lower()
    return next(
        (f for f in SCHEMA[sobject] if f.relationship and f.relationship.lower() == lowered),
        None,
    )


def no_such_column(sobject: str, name: str) -> SalesforceApiError:
    return SalesforceApiError(
        400,
        "INVALID_FIELD",
        f"No such column '{name}' on entity '{sobject}'. If you are attempting to use a "
        "custom field, be sure to append the '__c' after the custom field name. Please "
        "reference your WSDL or the describe call for the appropriate names.",
    )


# --- reading --------------------------------------------------------------------------------


def attributes(sobject: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": sobject, "url": f"/services/data/v{version}/sobjects/{sobject}/{record_id}"}


def render(
    sobject: str, record: Record, version: str, fields: Iterable[FieldDef] | None = None
) -> dict[str, Any]:
    """A record as the REST API returns it: `attributes` first, then the fields asked for."""
    chosen = list(SCHEMA[sobject] if fields is None else fields)
    body: dict[str, Any] = {"attributes": attributes(sobject, record["Id"], version)}
    body.update((f.name, record.get(f.name)) for f in chosen)
    # Salesforce always names the record, even when `fields` left Id out.
    body.setdefault("Id", record["Id"])
    return body


def parse_field_list(sobject: str, text: str) -> list[FieldDef]:
    """The fields of a `?fields=A,B` parameter, or INVALID_FIELD for an unknown one."""
    chosen: list[FieldDef] = []
    for name in (part.strip() for part in text.split(",")):
        found = field(sobject, name) if name else None
        if found is None:
            raise no_such_column(sobject, name)
        chosen.append(found)
    return chosen


# --- writing --------------------------------------------------------------------------------


def new_record(sobject: str, values: Record) -> Record:
    """A full record of `sobject`: every field present, audit fields stamped, a fresh Id."""
    now = clock.salesforce_datetime()
    record: Record = {f.name: f.default for f in SCHEMA[sobject]}
    record.update(values)
    if not record["Id"]:
        record["Id"] = ids.new_id(sobject)
    for name in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
        if name in record:
            record[name] = now
    return record


def validate_changes(sobject: str, body: Any, exists: Callable[[str, str], bool]) -> dict[str, Any]:
    """Check a create/update body against the schema; return {canonical name: stored value}.

    `exists(sobject, id)` tells whether a referenced record is there.
    """
    if not isinstance(body, dict):
        raise SalesforceApiError(400, "JSON_PARSER_ERROR", "The request body must be an object")
    changes: dict[str, Any] = {}
    for name, value in body.items():
        if name == "attributes":
            continue
        definition = field(sobject, name)
        if definition is None:
            raise SalesforceApiError(
                400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}"
            )
        if not definition.updateable:
            raise SalesforceApiError(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {definition.name}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.",
                [definition.name],
            )
        changes[definition.name] = _coerce(definition, value, exists)
    return changes


def apply_changes(record: Record, changes: dict[str, Any]) -> None:
    """Write validated changes into a stored record and bump its modification stamps."""
    record.update(changes)
    if "Status" in changes and "StatusCode" in record:
        record["StatusCode"] = changes["Status"]
    now = clock.salesforce_datetime()
    for name in ("LastModifiedDate", "SystemModstamp"):
        if name in record:
            record[name] = now


def _coerce(definition: FieldDef, value: Any, exists: Callable[[str, str], bool]) -> Any:
    if value is None:
        if not definition.nillable:
            raise _required_missing(definition)
        return None
    coercers: dict[str, Callable[[FieldDef, Any], Any]] = {
        "double": _as_number,
        "boolean": _as_boolean,
        "date": _as_date,
        "reference": _as_reference,
    }
    coerced = coercers.get(definition.type, _as_text)(definition, value)
    if definition.type == "picklist" and coerced not in definition.picklist:
        raise SalesforceApiError(
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{definition.label}: bad value for restricted picklist field: {coerced}",
            [definition.name],
        )
    if definition.reference_to and not exists(definition.reference_to, coerced):
        raise SalesforceApiError(
            400,
            "INVALID_CROSS_REFERENCE_KEY",
            f"invalid cross reference id: {value}",
            [definition.name],
        )
    return coerced


def _required_missing(definition: FieldDef) -> SalesforceApiError:
    if definition.type == "picklist":
        return SalesforceApiError(
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{definition.label}: bad value for restricted picklist field: null",
            [definition.name],
        )
    return SalesforceApiError(
        400,
        "REQUIRED_FIELD_MISSING",
        f"Required fields are missing: [{definition.name}]",
        [definition.name],
    )


def _deserialize_error(definition: FieldDef, value: Any) -> SalesforceApiError:
    return SalesforceApiError(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {definition.type} from value {value!r} "
        f"for field {definition.name}",
    )


def _as_text(definition: FieldDef, value: Any) -> str:
    # Salesforce accepts a JSON number for a text field and stores its text.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _deserialize_error(definition, value)
    text = value if isinstance(value, str) else str(value)
    if len(text) > definition.max_length:
        raise SalesforceApiError(
            400,
            "STRING_TOO_LONG",
            f"{definition.label}: data value too large: {text[:40]}... "
            f"(max length={definition.max_length})",
            [definition.name],
        )
    return text


def _as_number(definition: FieldDef, value: Any) -> float:
    if isinstance(value, bool):
        raise _deserialize_error(definition, value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _deserialize_error(definition, value) from None


def _as_boolean(definition: FieldDef, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _deserialize_error(definition, value)
    return value


def _as_date(definition: FieldDef, value: Any) -> str:
    if not isinstance(value, str) or len(value) != 10 or value[4] != "-" or value[7] != "-":
        raise _deserialize_error(definition, value)
    return value


def _as_reference(definition: FieldDef, value: Any) -> str:
    target = definition.reference_to or ""
    if not ids.is_id_of(value, target):
        raise SalesforceApiError(
            400,
            "MALFORMED_ID",
            f"{definition.label} ID: id value of incorrect type: {value}",
            [definition.name],
        )
    return ids.normalize(value) or ""
