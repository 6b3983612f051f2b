"""SSE framing and envelope decoding, without services."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from streaming.hub import Frame, Subscriber, decode_envelope
from streaming.sse import HEARTBEAT, encode_json, event_frame, parse_event_id, retry_frame


def test_frames_use_field_colon_space_and_one_data_line() -> None:
    data = encode_json({"message": "line one\nline two \u2028 é"})
    frame = event_frame("order.update", "1700000000000-0", data)
    assert frame.decode().split("\n") == [
        "event: order.update",
        "id: 1700000000000-0",
        'data: {"message":"line one\\nline two \\u2028 \\u00e9"}',
        "",
        "",
    ]
    assert event_frame("stream.end", None, "{}") == b"event: stream.end\ndata: {}\n\n"
    assert retry_frame(3000) == b"retry: 3000\n\n"
    assert HEARTBEAT == b": heartbeat\n\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1700000000000-0", (1700000000000, 0)),
        (" 1700000000000-12 ", (1700000000000, 12)),
        ("1700000000000", None),
        ("abc", None),
        ("1-2-3", None),
        ("", None),
        (None, None),
        ("9" * 40 + "-0", None),
        (f"{2**64 - 1}-0", (2**64 - 1, 0)),
        (f"{2**64}-0", None),  # beyond what Redis accepts: a fresh snapshot, not an error
        (f"0-{2**64}", None),
        (f"{2**64 - 1}-{2**64 - 1}", None),  # nothing can come after it
    ],
)
def test_event_ids_parse_to_comparable_pairs(value, expected) -> None:
    assert parse_event_id(value) == expected


def test_envelopes_decode_once_into_shared_frames() -> None:
    raw = json.dumps({"data": {"stage": "completed"}, "id": "5-1", "type": "order.update"})
    frame = decode_envelope(raw)
    assert frame == Frame(
        (5, 1), b'event: order.update\nid: 5-1\ndata: {"stage":"completed"}\n\n', True
    )


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        json.dumps({"data": {}, "id": "5-1", "event": "x"}),  # an unknown key
        json.dumps({"data": {"stage": "queued"}}),  # no id
        json.dumps({"data": "text", "id": "5-1"}),  # data is not an object
    ],
)
def test_malformed_envelopes_are_dropped_not_fatal(raw) -> None:
    assert decode_envelope(raw) is None


def test_a_subscriber_that_falls_behind_is_ended() -> None:
    subscriber = Subscriber("801", "ch", limit=2)
    frame = Frame((1, 0), b"x", False)
    for _ in range(3):
        subscriber.deliver(frame)
    assert subscriber.ended == "slow-client"
    assert subscriber.take(0) == [frame, frame]


def test_envelopes_as_our_scripts_publish_them_keep_their_data_as_published() -> None:
    data = '{"orderId":"801","stage":"completed","timestamp":"2026-12-03T10:00:00.000Z"}'
    raw = '{"data":' + data + ',"id":"5-1","type":"order.update"}'
    frame = decode_envelope(raw)
    assert frame is not None
    assert frame.data == b"event: order.update\nid: 5-1\ndata: " + data.encode() + b"\n\n"
    assert (frame.event_id, frame.terminal) == ((5, 1), True)
    assert frame.published_at == datetime(2026, 12, 3, 10, tzinfo=UTC).timestamp()
    # The same envelope laid out otherwise decodes to the same frame.
    assert decode_envelope(json.dumps(json.loads(raw), indent=1)) == frame


@pytest.mark.parametrize(
    "data, sent",
    [
        ('{"note":"a\\u2028b"}', '{"note":"a\\u2028b"}'),  # escaped: passed through as is
        ('{"note":"a\u2028b"}', '{"note":"a\\u2028b"}'),  # raw: escaped, one line for parsers
        ('{"a": 1}', '{"a": 1}'),
    ],
)
def test_published_data_goes_out_as_one_ascii_line(data, sent) -> None:
    frame = decode_envelope('{"data":' + data + ',"id":"5-1","type":"order.update"}')
    assert frame is not None
    assert frame.data.decode("ascii").endswith("data: " + sent + "\n\n")
