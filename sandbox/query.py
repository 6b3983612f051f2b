"""Running a parsed SOQL query against the Salesforce records.

Names resolve case-insensitively against `sobjects.SCHEMA`; relationship paths
(`Product2.Name` on OrderItem) follow reference fields and come back nested the way Salesforce
nests them, with `null` for an empty reference. String comparisons ignore case, as SOQL's do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import ids, soql
from .errors import SalesforceApiError
from .sobjects import FieldDef, attributes, canonical_sobject, field, no_such_column, relationship
from .state import Record, SalesforceData

# The literal kinds each field type accepts in a filter.
_ACCEPTS = {
    "id": ("string",),
    "reference": ("string",),
    "string": ("string",),
    "textarea": ("string",),
    "picklist": ("string",),
    "double": ("number",),
    "boolean": ("boolean",),
    "date": ("date",),
    "datetime": ("datetime",),
}


@dataclass(frozen=True)
class Column:
    """A resolved field path: the reference fields to follow, then the field to read."""

    hops: tuple[FieldDef, ...]
    field: FieldDef

    def tail(self) -> Column:
        return Column(self.hops[1:], self.field)


def run(data: SalesforceData, text: str, version: str) -> dict[str, Any]:
    """The REST answer to `GET query?q=<text>`."""
    try:
        parsed = soql.parse(text)
    except soql.SoqlError as exc:
        raise SalesforceApiError(400, "MALFORMED_QUERY", str(exc)) from None
    sobject = _sobject(parsed.sobject)
    columns = _columns(sobject, parsed.fields)
    tests = [_condition(sobject, condition) for condition in parsed.where]
    candidates = _by_id(data, sobject, parsed.where)
    rows = [row for row in candidates if all(t(data, row) for t in tests)]
    rows = _ordered(data, sobject, rows, parsed.order_by)
    start = parsed.offset or 0
    rows = rows[start : None if parsed.limit is None else start + parsed.limit]
    children = [_child_columns(sobject, sub) for sub in parsed.subqueries]
    found = [_children_of(data, child, rows) for child in children]
    records = [
        {**_render(data, sobject, row, columns, version), **_nested(data, row, found, version)}
        for row in rows
    ]
    return {"totalSize": len(records), "done": True, "records": records}


#: Child relationships a subquery may name: (parent, name) -> (child sObject, its reference).
_CHILD_RELATIONSHIPS = {("Order", "orderitems"): ("OrderItem", "OrderId", "OrderItems")}


@dataclass(frozen=True)
class _Children:
    name: str
    sobject: str
    reference: str
    columns: list[Column]


def _child_columns(sobject: str, sub: soql.Subquery) -> _Children:
    known = _CHILD_RELATIONSHIPS.get((sobject, sub.relationship.lower()))
    if known is None:
        raise SalesforceApiError(
            400,
            "INVALID_TYPE",
            f"Didn't understand relationship '{sub.relationship}' in FROM part of query call.",
        )
    child, reference, name = known
    return _Children(name, child, reference, _columns(child, sub.fields))


def _children_of(data: SalesforceData, child: _Children, rows: list[Record]) -> _Found:
    """Each row's child records, by the index on their reference (`_CHILD_RELATIONSHIPS` has
    order items only)."""
    return child, {row["Id"]: data.items_of(row["Id"]) for row in rows}


#: A subquery and the records it found, by parent id.
_Found = tuple[_Children, dict[str, list[Record]]]


def _nested(data: SalesforceData, row: Record, found: list[_Found], version: str) -> dict[str, Any]:
    """Each subquery's records under its relationship's name; null when there are none, as
    Salesforce answers."""
    body: dict[str, Any] = {}
    for child, by_parent in found:
        records = [
            _render(data, child.sobject, r, child.columns, version) for r in by_parent[row["Id"]]
        ]
        body[child.name] = (
            {"totalSize": len(records), "done": True, "records": records} if records else None
        )
    return body


def _by_id(data: SalesforceData, sobject: str, where: tuple[soql.Condition, ...]) -> list[Record]:
    """The rows a query can match: those an `Id = ` or `Id IN` condition names (found by key,
    as Salesforce's index would), else the whole table. The conditions still run on them."""
    table = data.table(sobject)
    for condition in where:
        if condition.path.lower() == "id" and condition.op in ("=", "in"):
            wanted = dict.fromkeys(ids.normalize(str(v.value)) for v in condition.values)
            return [table[record_id] for record_id in wanted if record_id in table]
    return list(table.values())


def _sobject(name: str) -> str:
    sobject = canonical_sobject(name)
    if sobject is None:
        raise SalesforceApiError(
            400,
            "INVALID_TYPE",
            f"sObject type '{name}' is not supported. If you are attempting to use a custom "
            "object, be sure to append the '__c' after the entity name. Please reference your "
            "WSDL or the describe call for the appropriate names.",
        )
    return sobject


def _columns(sobject: str, paths: tuple[str, ...]) -> list[Column]:
    columns: list[Column] = []
    for path in paths:
        column = resolve(sobject, path)
        if column in columns:
            raise SalesforceApiError(400, "MALFORMED_QUERY", f"duplicate field selected: {path}")
        columns.append(column)
    return columns


def resolve(sobject: str, path: str) -> Column:
    """Resolve `Rel.Field` (any depth) from `sobject`, or raise INVALID_FIELD."""
    *relationships, name = path.split(".")
    hops: list[FieldDef] = []
    current = sobject
    for rel in relationships:
        hop = relationship(current, rel)
        if hop is None or hop.reference_to is None:
            raise SalesforceApiError(
                400,
                "INVALID_FIELD",
                f"Didn't understand relationship '{rel}' in field path. If you are attempting "
                "to use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name. Please reference your WSDL or the describe call for the "
                "appropriate names.",
            )
        hops.append(hop)
        current = hop.reference_to
    found = field(current, name)
    if found is None:
        raise no_such_column(current, name)
    return Column(tuple(hops), found)


def _follow(data: SalesforceData, row: Record, hop: FieldDef) -> Record | None:
    target = row.get(hop.name)
    if target is None or hop.reference_to is None:
        return None
    return data.table(hop.reference_to).get(target)


def _value(data: SalesforceData, row: Record, column: Column) -> Any:
    current: Record | None = row
    for hop in column.hops:
        current = _follow(data, current, hop) if current is not None else None
    return None if current is None else current.get(column.field.name)


def _render(
    data: SalesforceData, sobject: str, row: Record, columns: list[Column], version: str
) -> dict[str, Any]:
    body: dict[str, Any] = {"attributes": attributes(sobject, row["Id"], version)}
    for column in columns:
        if not column.hops:
            body[column.field.name] = row.get(column.field.name)
            continue
        hop = column.hops[0]
        key = hop.relationship or hop.name
        if key in body:
            continue  # rendered together with an earlier field of the same relationship
        target = _follow(data, row, hop)
        nested = [c.tail() for c in columns if c.hops and c.hops[0] == hop]
        body[key] = (
            None
            if target is None or hop.reference_to is None
            else _render(data, hop.reference_to, target, nested, version)
        )
    return body


# --- filters ---------------------------------------------------------------------------------

Test = Callable[[SalesforceData, Record], bool]


def _condition(sobject: str, condition: soql.Condition) -> Test:
    column = resolve(sobject, condition.path)
    wanted = [_literal_value(column.field, literal) for literal in condition.values]
    compare = _comparison(condition.op, wanted)
    return lambda data, row: compare(_comparable(column.field, _value(data, row, column)))


def _literal_value(definition: FieldDef, literal: soql.Literal) -> Any:
    if literal.kind == "null":
        return None
    accepted = _ACCEPTS.get(definition.type, ("string",))
    if literal.kind not in accepted:
        quoted = "should" if "string" in accepted else "should not"
        raise SalesforceApiError(
            400,
            "MALFORMED_QUERY",
            f"value of filter criterion for field '{definition.name}' must be of type "
            f"{definition.type} and {quoted} be enclosed in quotes",
        )
    if definition.type in ("id", "reference"):
        normalized = ids.normalize(literal.value)
        if normalized is None:
            raise SalesforceApiError(
                400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {literal.value}"
            )
        return normalized
    return _comparable(definition, literal.value)


def _comparable(definition: FieldDef, value: Any) -> Any:
    if value is None:
        return None
    if definition.type == "datetime":
        return _parse_datetime(value)
    if definition.type == "double":
        return float(value)
    if isinstance(value, str) and definition.type not in ("id", "reference"):
        return value.lower()
    return value


def _parse_datetime(text: str) -> datetime:
    # Stored as 2026-01-15T10:00:00.000+0000; SOQL literals may say Z or +00:00.
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _comparison(op: str, wanted: list[Any]) -> Callable[[Any], bool]:
    first = wanted[0]
    if op == "in":
        return lambda value: value in wanted
    if op == "not in":
        return lambda value: value is not None and value not in wanted
    if op == "=":
        return lambda value: value == first
    if op in ("!=", "<>"):
        return lambda value: value != first
    if op == "like":
        pattern = _like_pattern(str(first))
        return lambda value: value is not None and pattern.fullmatch(str(value)) is not None
    ordering: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    check = ordering[op]
    return lambda value: value is not None and first is not None and check(value, first)


def _like_pattern(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\\%|\\_|%|_)", pattern)
    wildcards = {"%": ".*", "_": ".", "\\%": "%", "\\_": "_"}
    regex = "".join(wildcards.get(p, re.escape(p)) for p in parts)
    return re.compile(regex, re.IGNORECASE | re.DOTALL)


def _ordered(
    data: SalesforceData, sobject: str, rows: list[Record], orderings: tuple[soql.Ordering, ...]
) -> list[Record]:
    # Sort by the last key first; Python's sort is stable, so earlier keys win.
    for ordering in reversed(orderings):
        column = resolve(sobject, ordering.path)

        def key(row: Record, column: Column = column) -> Any:
            return _comparable(column.field, _value(data, row, column))

        present = [row for row in rows if key(row) is not None]
        missing = [row for row in rows if key(row) is None]
        present.sort(key=key, reverse=ordering.descending)
        rows = present + missing if ordering.nulls_last else missing + present
    return rows
