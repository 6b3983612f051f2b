"""The sandbox's secrets, kept in `<dir>/credentials.json` (mode 0600).

Generated on first start and reused afterwards, so the app (which reads this file to find
the sandbox's credentials) and the sandbox agree across restarts. Shape, fixed:

    {"salesforce": {"clientId": ..., "clientSecret": ..., "username": ...},
     "whmcs": {"identifier": ..., "secret": ...}}
"""

from __future__ import annotations

import json
import logging
import secrets
import string
from pathlib import Path
from typing import Any

from .files import write_atomic

CREDENTIALS_FILE = "credentials.json"
USERNAME = "integration@sandbox.example"
_SHAPE = {"salesforce": ("clientId", "clientSecret", "username"), "whmcs": ("identifier", "secret")}
_ALNUM = string.ascii_letters + string.digits
log = logging.getLogger(__name__)

Credentials = dict[str, dict[str, str]]


def load_or_create(directory: Path) -> Credentials:
    """The credentials in `directory`, created with fresh random secrets when missing."""
    path = directory / CREDENTIALS_FILE
    existing = _read(path)
    if existing is not None:
        return existing
    created = _generate()
    write_atomic(path, (json.dumps(created, indent=2) + "\n").encode(), private=True)
    return created


def _read(path: Path) -> Credentials | None:
    try:
        data: Any = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("replacing unreadable %s: %s", path, exc)
        return None
    if not _well_formed(data):
        log.warning("replacing %s: it lacks some of the expected keys", path)
        return None
    return {system: {key: data[system][key] for key in keys} for system, keys in _SHAPE.items()}


def _well_formed(data: Any) -> bool:
    return isinstance(data, dict) and all(
        isinstance(data.get(system), dict)
        and all(isinstance(data[system].get(key), str) and data[system][key] for key in keys)
        for system, keys in _SHAPE.items()
    )


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def _generate() -> Credentials:
    return {
        # Salesforce consumer keys start with 3MVG9; the shape helps spot them in logs.
        "salesforce": {
            "clientId": "3MVG9" + _random(80),
            "clientSecret": secrets.token_hex(32).upper(),
            "username": USERNAME,
        },
        "whmcs": {"identifier": _random(32), "secret": _random(32)},
    }
