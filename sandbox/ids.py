"""Salesforce record ids: minting them and checking the ones clients send.

An id is a 15-character case-sensitive body (3-character key prefix naming the object, then
12 characters) plus a 3-character suffix that encodes which body characters are upper case,
so the 18-character form survives case-insensitive systems. Responses always carry 18
characters; requests may carry either form.
"""

from __future__ import annotations

import re
import secrets
import string

KEY_PREFIXES = {"Account": "001", "Order": "801", "OrderItem": "802", "Product2": "01t"}

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BODY_CHARS = string.ascii_letters + string.digits
_ID15 = re.compile(r"[A-Za-z0-9]{15}")
_ID18 = re.compile(r"[A-Za-z0-9]{18}")


def to18(id15: str) -> str:
    """Append the case-safe checksum suffix to a 15-character id."""
    suffix = ""
    for start in range(0, 15, 5):
        chunk = id15[start : start + 5]
        bits = sum(1 << i for i, ch in enumerate(chunk) if ch.isupper())
        suffix += _SUFFIX_ALPHABET[bits]
    return id15 + suffix


def normalize(value: object) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when it is malformed."""
    if not isinstance(value, str):
        return None
    if _ID15.fullmatch(value):
        return to18(value)
    if _ID18.fullmatch(value):
        full = to18(value[:15])
        # The suffix is case-insensitive by design; only its letters carry meaning.
        return full if full[15:] == value[15:].upper() else None
    return None


def new_id(sobject: str) -> str:
    """Mint a fresh 18-character id for `sobject`.

    Twelve random characters (about 71 bits) keep ids unique across sandboxes, so a stale id
    from another run is never mistaken for a record of this one.
    """
    body = "".join(secrets.choice(_BODY_CHARS) for _ in range(12))
    return to18(KEY_PREFIXES[sobject] + body)


def is_id_of(value: object, sobject: str) -> bool:
    """True when `value` is a well-formed id whose key prefix is `sobject`'s."""
    full = normalize(value)
    return full is not None and full.startswith(KEY_PREFIXES[sobject])
