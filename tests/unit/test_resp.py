"""The pub/sub connection's replies, parsed from bytes as Redis sends them (RESP2)."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from streaming.resp import ReplyReader


def bulk(text: str) -> bytes:
    data = text.encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def push(*elements: str | int) -> bytes:
    parts = [b":%d\r\n" % e if isinstance(e, int) else bulk(e) for e in elements]
    return b"*%d\r\n" % len(elements) + b"".join(parts)


STREAM = (
    push("subscribe", "ns:sse:__hub__", 1)
    + push("message", "ns:sse:801", '{"data":{"stage":"queued"},"id":"1-0","type":"order.update"}')
    + push("smessage", "ns:sse:{801}", "é ünïcode")
    + push("pong", "")
    + push("unsubscribe", "ns:sse:801", 0)
)
EXPECTED = [
    ("subscribe", "ns:sse:__hub__", 1),
    ("message", "ns:sse:801", '{"data":{"stage":"queued"},"id":"1-0","type":"order.update"}'),
    ("smessage", "ns:sse:{801}", "é ünïcode"),
    ("pong", ""),
    ("unsubscribe", "ns:sse:801", 0),
]


def test_replies_in_one_read_come_out_whole_and_in_order() -> None:
    assert ReplyReader().feed(STREAM) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 64])
def test_replies_cut_anywhere_between_reads_are_kept_until_complete(size) -> None:
    reader = ReplyReader()
    replies = []
    for start in range(0, len(STREAM), size):
        replies += reader.feed(STREAM[start : start + size])
    assert replies == EXPECTED


def test_a_long_message_still_arriving_waits_for_its_last_byte() -> None:
    reader = ReplyReader()
    message = push("message", "ch", "x" * 1_000_000)
    assert reader.feed(message[:-1]) == []
    assert reader.feed(message[-1:]) == [("message", "ch", "x" * 1_000_000)]


def test_a_null_element_and_an_undecodable_one_do_not_stop_the_reader() -> None:
    reply = b"*3\r\n$7\r\nmessage\r\n$-1\r\n$2\r\n\xff\xfe\r\n" + push("pong", "")
    assert ReplyReader().feed(reply) == [("message", None, "\ufffd\ufffd"), ("pong", "")]


def test_an_error_reply_raises_as_redis_py_did() -> None:
    reader = ReplyReader()
    with pytest.raises(ResponseError, match="MOVED 1234"):
        reader.feed(push("pong", "") + b"-MOVED 1234 127.0.0.1:7001\r\n")


def test_resp3_pushes_and_simple_strings_read_as_resp2_replies() -> None:
    pushed = b">" + push("message", "ch", "hello")[1:] + b"+PONG\r\n"
    assert ReplyReader().feed(pushed) == [("message", "ch", "hello"), ("PONG",)]


def test_bytes_that_are_not_a_pub_sub_reply_are_refused() -> None:
    with pytest.raises(ValueError, match="unexpected reply on a pub/sub connection: '%'"):
        ReplyReader().feed(b"%1\r\n")
