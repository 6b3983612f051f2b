"""The `/__sandbox/pubsub/...` control routes' work: inspect the event log, tune it, age it,
and force redeliveries. Bodies are validated here; `control.py` only routes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from . import oauth
from .errors import ControlError
from .pubsub_bus import EventBus
from .pubsub_topics import ORDER_ACTIVATION_TOPIC, ORDER_FIELD, PayloadError


def overview(bus: EventBus) -> dict[str, Any]:
    """`GET /__sandbox/pubsub`: the org id, the topics, open subscriptions, the settings."""
    topics = [
        {"name": log.topic.name, "schemaId": log.topic.schema_id} for log in bus.logs.values()
    ]
    return {
        "orgId": oauth.ORG_ID,
        "topics": topics,
        "subscriptions": bus.subscriber_count(),
        **bus.settings(),
    }


def list_events(bus: EventBus, topic_name: str | None) -> dict[str, Any]:
    """`GET /__sandbox/pubsub/events[?topic=]`: the retained events, oldest first."""
    name = topic_name or ORDER_ACTIVATION_TOPIC
    topic = bus.topic(name)
    if topic is None:
        raise ControlError("NOT_FOUND", f"no topic {name}", status=404)
    events = []
    for event in bus.retained(name):
        try:
            fields: dict[str, Any] | None = topic.decode(event.payload)
        except PayloadError:
            fields = None
        events.append(
            {
                "id": event.id,
                "replayId": event.replay_id.hex(),
                "orderId": (fields or {}).get(ORDER_FIELD),
                "created": _iso(event.created),
                "payload": fields,
            }
        )
    return {"topic": name, "events": events}


def update_settings(bus: EventBus, body: Any) -> dict[str, Any]:
    """`POST /__sandbox/pubsub/settings` `{"retentionSeconds"?, "keepaliveSeconds"?}`."""
    body = _object(body, {"retentionSeconds", "keepaliveSeconds"})
    bus.configure(
        retention_seconds=_positive(body, "retentionSeconds"),
        keepalive_seconds=_positive(body, "keepaliveSeconds"),
    )
    return bus.settings()


def expire(bus: EventBus, body: Any) -> dict[str, int]:
    """`POST /__sandbox/pubsub/expire` `{"seconds"?}`: age every retained event by `seconds`
    (default: the retention period, so all of them fall out), then apply retention."""
    body = _object(body, {"seconds"})
    seconds = _positive(body, "seconds")
    return bus.age(bus.retention_seconds if seconds is None else seconds)


def redeliver(bus: EventBus, body: Any) -> dict[str, Any]:
    """`POST /__sandbox/pubsub/redeliver` `{"count"?, "on"?, "times"?, "topic"?}`.

    `on: "open"` (default): the last `count` (default 1) retained events go again to every
    open subscription. `on: "resume"`: the next `times` (default 1) CUSTOM subscriptions start
    `count` events before their replay id, so the event they name comes again.
    """
    body = _object(body, {"count", "on", "times", "topic"})
    count = _whole(body, "count", 1)
    times = _whole(body, "times", 1)
    topic = body.get("topic", ORDER_ACTIVATION_TOPIC)
    if bus.topic(topic) is None:
        raise ControlError("NOT_FOUND", f"no topic {topic}", status=404)
    on = body.get("on", "open")
    if on == "open":
        return {"subscriptions": bus.redeliver(topic, count)}
    if on == "resume":
        bus.rewind_resumes(count, times)
        return {"armed": times}
    raise ControlError("BAD_REQUEST", 'on must be "open" or "resume"')


def _object(body: Any, allowed: set[str]) -> dict[str, Any]:
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise ControlError("BAD_REQUEST", "the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ControlError("BAD_REQUEST", f"unknown field(s): {', '.join(unknown)}")
    return body


def _positive(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ControlError("BAD_REQUEST", f"{name} must be a positive number")
    return float(value)


def _whole(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ControlError("BAD_REQUEST", f"{name} must be a positive integer")
    return value


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")
