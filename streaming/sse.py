"""Server-Sent Events framing: pure functions from events to bytes.

Frames use `field: value` lines. Event data is always one line of JSON (json.dumps escapes
newlines, and `ensure_ascii` escapes U+2028/2029, which some parsers treat as line breaks), so a
frame is exactly `event`, `id` and one `data` line.
"""

from __future__ import annotations

import json
import re
from typing import Any

HEARTBEAT = b": heartbeat\n\n"
_EVENT_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
_U64_MAX = 2**64 - 1

EventId = tuple[int, int]


def retry_frame(milliseconds: int) -> bytes:
    return b"retry: %d\n\n" % milliseconds


def encode_json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True)


def event_frame(event_type: str, event_id: str | None, data_json: str) -> bytes:
    """One SSE event; `data_json` must already be a single line."""
    head = f"event: {event_type}\n"
    if event_id:
        head += f"id: {event_id}\n"
    return f"{head}data: {data_json}\n\n".encode()


def parse_event_id(value: str | None) -> EventId | None:
    """A Redis Stream entry id (`<ms>-<seq>`) as a comparable pair, or None if malformed or
    out of range (each part is an unsigned 64-bit number, and nothing can follow the largest
    id: Redis refuses both)."""
    if not value:
        return None
    match = _EVENT_ID.fullmatch(value.strip())
    if match is None:
        return None
    ms, seq = int(match.group(1)), int(match.group(2))
    if ms > _U64_MAX or seq > _U64_MAX or ms == seq == _U64_MAX:
        return None
    return ms, seq
