"""The replies of a pub/sub connection, parsed from its socket's bytes (RESP2).

The hub's reader used redis-py's `get_message`, whose Python parser and per-message checks
cost about 15 µs a message: in a burst of 25,000 events that was most of the reader's time.
A subscribed connection only ever receives a few shapes (an array of bulk strings and
integers: `message`, `smessage`, the (un)subscribe confirmations, `pong`; or an error), so the
reader takes whatever the socket holds in one `recv` and parses every complete reply in it
here, a message in about 2 µs. Commands still go out through redis-py (`PubSub.subscribe`),
which only writes to the connection; this is its only reader.

Pure: fed bytes, it returns replies, so it is tested without a server.
"""

from __future__ import annotations

from redis.exceptions import ResponseError

#: A reply: its elements (a bulk string as `str`, an integer as `int`, a null as None).
Reply = tuple[str | int | None, ...]

_MESSAGE = b"*3\r\n$7\r\nmessage\r\n"
#: An array, and RESP3's push (the hub asks for RESP2; this reads either).
_ARRAYS = (b"*"[0], b">"[0])


class ReplyReader:
    """Turns a connection's bytes into complete replies, keeping a reply cut between reads
    for the next one."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Reply]:
        """The replies completed by `data`, in order. Raises ResponseError for an error reply
        (as redis-py's reader did: the hub then ends the connection's streams), and
        ValueError for bytes that are not RESP2."""
        buffer = self._buffer
        buffer += data
        replies: list[Reply] = []
        position, end = 0, len(buffer)
        while position < end:
            parsed = _reply(buffer, position)
            if parsed is None:
                break
            reply, position = parsed
            replies.append(reply)
        del buffer[:position]
        return replies


def _reply(buffer: bytearray, position: int) -> tuple[Reply, int] | None:
    """The reply starting at `position` and where the next one starts; None if incomplete."""
    if buffer.startswith(_MESSAGE, position):  # most replies, read without the general path
        position += len(_MESSAGE)
        count = 2
        elements: list[str | int | None] = ["message"]
    else:
        line = _line(buffer, position)
        if line is None:
            return None
        kind, text, position = line
        if kind == b"-"[0]:
            raise ResponseError(text.decode("utf-8", "replace"))
        if kind == b"+"[0]:  # a simple string (a RESP3 connection's PONG)
            return (text.decode("utf-8", "replace"),), position
        if kind not in _ARRAYS:
            raise ValueError(f"unexpected reply on a pub/sub connection: {chr(kind)!r}")
        count, elements = int(text), []
    for _ in range(count):
        element = _element(buffer, position)
        if element is None:
            return None
        value, position = element
        elements.append(value)
    return tuple(elements), position


def _element(buffer: bytearray, position: int) -> tuple[str | int | None, int] | None:
    line = _line(buffer, position)
    if line is None:
        return None
    kind, text, position = line
    if kind == b":"[0]:
        return int(text), position
    if kind != b"$"[0]:
        raise ValueError(f"unexpected element in a pub/sub reply: {chr(kind)!r}")
    length = int(text)
    if length < 0:
        return None, position
    end = position + length
    if end + 2 > len(buffer):  # a long message still arriving: wait, without scanning it
        return None
    return buffer[position:end].decode("utf-8", "replace"), end + 2


def _line(buffer: bytearray, position: int) -> tuple[int, bytearray, int] | None:
    """A `<type><text>\\r\\n` line: its type byte, its text and where the next starts."""
    end = buffer.find(b"\r\n", position)
    if end < 0:
        return None
    return buffer[position], buffer[position + 1 : end], end + 2
