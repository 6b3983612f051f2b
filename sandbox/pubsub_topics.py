"""The org's event channels: each topic's Avro schema, its schema id, and its payload codec.

Salesforce encodes event payloads as header-less ("schemaless") Avro binary of the topic's
record schema; subscribers fetch the schema by id with `GetSchema`. The sandbox org has one
high-volume platform event, `Order_Activation__e`, in the compact shape Salesforce generates:
`CreatedDate` (epoch ms), `CreatedById`, and each custom field as a nullable union.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import fastavro

ORDER_ACTIVATION_TOPIC = "/event/Order_Activation__e"
ORDER_FIELD = "OrderId__c"

ORDER_ACTIVATION_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Order_Activation__e",
    "namespace": "com.sforce.eventbus",
    "fields": [
        {"name": "CreatedDate", "type": "long", "doc": "CreatedDate:DateTime"},
        {"name": "CreatedById", "type": "string", "doc": "CreatedBy:EntityId"},
        {"name": ORDER_FIELD, "type": ["null", "string"], "doc": "Data:Text:00N", "default": None},
    ],
}


class PayloadError(ValueError):
    """A payload that is not a record of the topic's schema."""


@dataclass(frozen=True)
class TopicDef:
    """A channel and the schema its events are written with."""

    name: str
    schema: dict[str, Any]
    schema_json: str = field(init=False)
    schema_id: str = field(init=False)
    _parsed: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text = json.dumps(self.schema, separators=(",", ":"))
        object.__setattr__(self, "schema_json", text)
        object.__setattr__(self, "schema_id", schema_id_of(text))
        object.__setattr__(self, "_parsed", fastavro.parse_schema(self.schema))

    def encode(self, record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self._parsed, record)
        return buffer.getvalue()

    def decode(self, payload: bytes) -> dict[str, Any]:
        """The record in `payload`, or PayloadError when it is not exactly one record."""
        buffer = io.BytesIO(payload)
        try:
            record = fastavro.schemaless_reader(buffer, self._parsed, None)
        # fastavro reports truncated or garbled input with several exception types.
        except Exception as exc:
            raise PayloadError(f"payload does not match schema {self.schema_id}: {exc}") from None
        if buffer.tell() != len(payload) or not isinstance(record, dict):
            raise PayloadError(f"payload does not match schema {self.schema_id}")
        return record


def schema_id_of(schema_json: str) -> str:
    """A stable opaque id, like Salesforce's: a fingerprint of the schema, base64url."""
    digest = hashlib.sha256(schema_json.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def default_topics() -> list[TopicDef]:
    return [TopicDef(ORDER_ACTIVATION_TOPIC, ORDER_ACTIVATION_SCHEMA)]
