"""Reading variables: the only place in the product that looks at `os.environ`.

The variables come from the process's environment, then a `.env` file in the working
directory; the CLI also reads the file `make run` writes for new shells (`STACK_FILE`), last.
The first found wins. Every read is recorded with its default, so a test can compare what the
settings read with the README's configuration table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

#: Written by `make run` in the directory it runs in: the stack's Redis, namespace and ports,
#: so `fulfillment watch` in a new shell talks to the same stack.
STACK_FILE = ".fulfillment-stack.env"


def process_environment(with_stack: bool = False) -> dict[str, str]:
    """What this process is configured with: its environment over `.env` (over `STACK_FILE`
    with `with_stack`: the CLI, which a new shell starts without the stack's variables)."""
    here = Path.cwd()
    sources = [here / STACK_FILE] if with_stack else []
    merged: dict[str, str] = {}
    for source in [*sources, here / ".env"]:
        if source.is_file():
            merged.update({k: v for k, v in dotenv_values(source).items() if v is not None})
    merged.update(os.environ)
    return merged


class Environment:
    """Typed reads of one mapping of variables; an empty value counts as unset."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values
        #: Every variable asked for, with the default the caller gave (None: computed).
        self.read: dict[str, Any] = {}

    def _raw(self, name: str, default: Any) -> str | None:
        self.read.setdefault(name, default)
        value = self._values.get(name)
        return None if value is None or value == "" else str(value)

    def text(self, name: str, default: str | None = None) -> str | None:
        raw = self._raw(name, default)
        return raw if raw is not None else default

    def required_text(self, name: str, default: str) -> str:
        return self.text(name, default) or default

    def integer(self, name: str, default: int | None = None) -> int | None:
        raw = self._raw(name, default)
        return _parse(name, raw, int) if raw is not None else default

    def whole(self, name: str, default: int) -> int:
        value = self.integer(name, default)
        return default if value is None else value

    def number(self, name: str, default: float) -> float:
        raw = self._raw(name, default)
        return _parse(name, raw, float) if raw is not None else default

    def flag(self, name: str, default: bool | None = None) -> bool | None:
        raw = self._raw(name, default)
        if raw is None:
            return default
        return raw.strip().lower() in ("1", "true", "yes", "on")

    def exact(self, name: str, default: str) -> str:
        """The value as set, an empty one included (`WEB_ACCESS_LOG=` turns the log off)."""
        self.read.setdefault(name, default)
        return self._values.get(name, default)


def _parse(name: str, raw: str, kind: type) -> Any:
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(
            f"{name} must be {'an integer' if kind is int else 'a number'}, not {raw!r}"
        ) from None
