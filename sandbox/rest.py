"""The sObject and query operations of the Salesforce emulator, on the shared world.

The REST views and the Composite resource's subrequests both run these, so a subrequest
behaves exactly as the same call made on its own. Each operation takes the world lock, which
is re-entrant: a composite call holds it across all its subrequests, so nobody (the autosaver
included) sees a composite half done. Given a `Journal`, a write also records how to undo
itself, which is how an all-or-none composite rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import clock, ids, query, sobjects
from .errors import SalesforceApiError, not_found
from .state import Record, World


class Journal:
    """The undo steps of one transaction's writes; `roll_back` runs them newest first."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._undo: list[Callable[[], None]] = []

    def record(self, undo: Callable[[], None]) -> None:
        self._undo.append(undo)

    def roll_back(self) -> None:
        """Undo every recorded write (call with the world lock held)."""
        if not self._undo:
            return
        while self._undo:
            self._undo.pop()()
        self.world.changed()


class RestApi:
    """Read, update and create records, and run SOQL, as the REST API does."""

    def __init__(self, world: World) -> None:
        self.world = world

    def get(self, version: str, sobject: str, record_id: str, fields: str | None) -> Record:
        """`GET sobjects/<Object>/<id>[?fields=A,B]`: the record as the REST API shows it."""
        name, full = _sobject(sobject), _record_id(sobject, record_id)
        with self.world.lock:
            stored = self._stored(name, full)
            chosen = None if fields is None else sobjects.parse_field_list(name, fields)
            return sobjects.render(name, stored, _number(version), chosen)

    def update(
        self,
        sobject: str,
        record_id: str,
        body: Callable[[], object],
        journal: Journal | None = None,
    ) -> None:
        """`PATCH sobjects/<Object>/<id>`. `body` is read only once the record is found, so
        an unknown record is NOT_FOUND whatever the body, as on Salesforce."""
        name, full = _sobject(sobject), _record_id(sobject, record_id)
        with self.world.lock:
            stored = self._stored(name, full)
            changes = sobjects.validate_changes(name, body(), self._exists)
            before = dict(stored)
            sobjects.apply_changes(stored, changes)
            self.world.salesforce.index(name, stored)
            log = self.world.salesforce.writes.setdefault(full, [])
            write = {"at": clock.iso_timestamp(), "fields": changes}
            log.append(write)
            self.world.changed()
            if journal is not None:

                def undo() -> None:
                    stored.clear()
                    stored.update(before)
                    self.world.salesforce.index(name, stored)
                    log.remove(write)

                journal.record(undo)

    def create(
        self, sobject: str, body: Callable[[], object], journal: Journal | None = None
    ) -> Record:
        """`POST sobjects/<Object>/`: the new record's `{"id", "success", "errors"}`."""
        name = _sobject(sobject)
        with self.world.lock:
            changes = sobjects.validate_changes(name, body(), self._exists)
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
            data = self.world.salesforce
            number = data.next_order_number
            record = sobjects.new_record(name, {**changes, **self._generated(name, changes)})
            data.insert(name, record)
            self.world.changed()
            if journal is not None:

                def undo() -> None:
                    data.remove(name, record["Id"])
                    data.next_order_number = number

                journal.record(undo)
        return {"id": record["Id"], "success": True, "errors": []}

    def query(self, version: str, text: str | None) -> dict[str, Any]:
        """`GET query?q=` (and `queryAll`)."""
        if not text:
            raise SalesforceApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        with self.world.lock:
            return query.run(self.world.salesforce, text, _number(version))

    def _stored(self, sobject: str, full_id: str) -> Record:
        stored = self.world.salesforce.table(sobject).get(full_id)
        if stored is None:
            raise not_found()
        return stored

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

    def _exists(self, sobject: str, record_id: str) -> bool:
        return record_id in self.world.salesforce.table(sobject)


def _number(version: str) -> str:
    """`59.0` of a `v59.0` path segment."""
    return version[1:]


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
