"""PHP's wire conventions as WHMCS reads them.

- Bracket form keys (`pid[0]=1`, `pid[]=1`, `opts[k]=v`) become nested arrays, as PHP builds
  `$_POST`; an array whose keys are exactly 0..n-1 in order comes out as a list, any other as
  a dict with string keys.
- `serialize()`/`unserialize()` for the simple arrays WHMCS takes base64-encoded in
  `customfields` (`a:1:{i:1;s:18:"801...";}`).
- PHP truthiness for boolean parameters: "" and "0" are false, everything else is true.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


class PhpFormatError(ValueError):
    """Raised when a serialized PHP value cannot be read."""


# --- bracket forms --------------------------------------------------------------------------


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Build PHP's request array from (key, value) pairs; later pairs win, as in PHP."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.fullmatch(key)
        if match is None:
            root[key] = value
            continue
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        _assign(root, path, value)
    return {key: _listify(value) for key, value in root.items()}


def _assign(container: dict[str, Any], path: list[str], value: str) -> None:
    for depth, segment in enumerate(path):
        key = _next_index(container) if segment == "" and depth > 0 else segment
        if depth == len(path) - 1:
            container[key] = value
            return
        child = container.get(key)
        if not isinstance(child, dict):
            # A scalar under the same name is replaced by the array, as PHP does.
            child = container[key] = {}
        container = child


def _next_index(container: dict[str, Any]) -> str:
    numbers = [int(k) for k in container if k.lstrip("-").isdigit()]
    return str(max(numbers) + 1 if numbers else 0)


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {key: _listify(item) for key, item in value.items()}
    if list(converted) == [str(i) for i in range(len(converted))]:
        return list(converted.values())
    return converted


def entries(value: Any) -> list[tuple[str, Any]]:
    """The (key, item) pairs of a decoded PHP array, keys as strings."""
    if isinstance(value, list):
        return [(str(i), item) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return list(value.items())
    return []


def item(value: Any, key: str, default: Any = None) -> Any:
    """`$array[$key]` on a decoded PHP array (list or dict), or `default`."""
    if isinstance(value, list):
        index = int(key) if key.isdigit() else -1
        return value[index] if 0 <= index < len(value) else default
    if isinstance(value, dict):
        return value.get(key, default)
    return default


def truthy(value: Any, default: bool = False) -> bool:
    """PHP's `(bool)` of a request parameter: "" and "0" are false; absent is `default`."""
    if value is None:
        return default
    return value not in ("", "0")


# --- serialize / unserialize -----------------------------------------------------------------


def serialize(value: Any) -> str:
    """PHP `serialize()` of None, bool, int, float, str, list or dict."""
    if value is None:
        return "N;"
    if isinstance(value, bool):
        return f"b:{int(value)};"
    if isinstance(value, int):
        return f"i:{value};"
    if isinstance(value, float):
        return f"d:{value!r};"
    if isinstance(value, str):
        return f's:{len(value.encode())}:"{value}";'
    pairs = entries(value) if isinstance(value, list) else list(value.items())
    body = "".join(serialize(_array_key(k)) + serialize(v) for k, v in pairs)
    return f"a:{len(pairs)}:{{{body}}}"


def _array_key(key: Any) -> int | str:
    text = str(key)
    return int(text) if re.fullmatch(r"-?[1-9][0-9]*|0", text) else text


def unserialize(data: str | bytes) -> Any:
    """PHP `unserialize()` of scalars and arrays; arrays come back as dicts."""
    raw = data.encode() if isinstance(data, str) else data
    reader = _Reader(raw)
    value = reader.value()
    if reader.pos != len(raw):
        raise PhpFormatError(f"trailing data at offset {reader.pos}")
    return value


def decode_customfields(encoded: str) -> dict[str, str]:
    """`base64(serialize(array(fieldId => value)))` as {"fieldId": "value"}."""
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise PhpFormatError("not base64") from exc
    value = unserialize(raw)
    if not isinstance(value, dict):
        raise PhpFormatError("custom fields must be a serialized array")
    return {str(k): "" if v is None else _scalar_text(v) for k, v in value.items()}


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, dict):
        raise PhpFormatError("custom field values must be scalars")
    return str(value)


class _Reader:
    """A cursor over serialized bytes; each method reads one value and advances."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.pos = 0

    def value(self) -> Any:
        kind = self._take(1)
        if kind == b"N":
            self._expect(b";")
            return None
        self._expect(b":")
        readers = {b"b": self._bool, b"i": self._int, b"d": self._float}
        if kind in readers:
            return readers[kind]()
        if kind == b"s":
            return self._string()
        if kind == b"a":
            return self._array()
        raise PhpFormatError(f"unsupported type {kind!r} at offset {self.pos - 1}")

    def _bool(self) -> bool:
        return self._until(b";") == b"1"

    def _int(self) -> int:
        try:
            return int(self._until(b";"))
        except ValueError as exc:
            raise PhpFormatError("bad integer") from exc

    def _float(self) -> float:
        try:
            return float(self._until(b";"))
        except ValueError as exc:
            raise PhpFormatError("bad float") from exc

    def _string(self) -> str:
        length = self._length(b":")
        self._expect(b'"')
        text = self._take(length)
        self._expect(b'";')
        return text.decode("utf-8", errors="replace")

    def _array(self) -> dict[int | str, Any]:
        count = self._length(b":")
        self._expect(b"{")
        result: dict[int | str, Any] = {}
        for _ in range(count):
            key = self.value()
            if not isinstance(key, int | str) or isinstance(key, bool):
                raise PhpFormatError("array keys must be integers or strings")
            result[key] = self.value()
        self._expect(b"}")
        return result

    def _length(self, terminator: bytes) -> int:
        digits = self._until(terminator)
        if not digits.isdigit():
            raise PhpFormatError(f"bad length {digits!r}")
        return int(digits)

    def _until(self, terminator: bytes) -> bytes:
        end = self.raw.find(terminator, self.pos)
        if end < 0:
            raise PhpFormatError(f"missing {terminator!r}")
        chunk = self.raw[self.pos : end]
        self.pos = end + len(terminator)
        return chunk

    def _take(self, count: int) -> bytes:
        chunk = self.raw[self.pos : self.pos + count]
        if len(chunk) != count:
            raise PhpFormatError("unexpected end of data")
        self.pos += count
        return chunk

    def _expect(self, literal: bytes) -> None:
        if self._take(len(literal)) != literal:
            raise PhpFormatError(f"expected {literal!r} at offset {self.pos - len(literal)}")
