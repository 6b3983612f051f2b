"""Salesforce ids: the only order and account identity the system accepts.

Order ids are checked before anything touches Redis or Salesforce, so a malformed id is a 400
and never a key, a channel name or a SOQL literal. Ids are compared in their 18-character
form: Salesforce hands out both forms of the same id.
"""

from __future__ import annotations

import re

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_BODY = re.compile(r"[A-Za-z0-9]{15}")
ORDER_KEY_PREFIX = "801"


def _checksum(body: str) -> str:
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, ch in enumerate(body[chunk * 5 : chunk * 5 + 5]) if ch.isupper())
        suffix += _CHECKSUM_ALPHABET[bits]
    return suffix


def normalize_salesforce_id(value: object, key_prefix: str | None = None) -> str | None:
    """The 18-character form of a Salesforce id, or None when `value` is not one.

    Accepts the 15-character case-sensitive form and the 18-character form, whose suffix
    (compared case-insensitively, as Salesforce does) must match the checksum.
    """
    if not isinstance(value, str) or len(value) not in (15, 18) or not value.isascii():
        return None
    body = value[:15]
    if not _ID_BODY.fullmatch(body) or (key_prefix and not body.startswith(key_prefix)):
        return None
    suffix = _checksum(body)
    if len(value) == 18 and value[15:].upper() != suffix:
        return None
    return body + suffix


def normalize_order_id(value: object) -> str | None:
    """The 18-character form of a Salesforce Order id (key prefix 801), or None."""
    return normalize_salesforce_id(value, ORDER_KEY_PREFIX)
