"""Lua scripts as files: each one in `<package>/lua/<name>.lua`, loaded once at import.

A script's file begins with a header comment that says what it does and names every key and
argument it takes, one line each, numbered from 1 without gaps, keys first:

    -- Compare-and-delete a lease: never release one that expired and was taken by another.
    -- KEYS[1]: the lease key
    -- ARGV[1]: the holder's token
    -- ARGV[2..]: the stream ids to renew

`[n..]` (only on the last line of its kind) declares a variadic tail: zero or more further
keys or arguments from index n on. Any other header line is free text (what the script
returns, a continuation of the line above), but a header line that begins with `KEYS[` or
`ARGV[` must be one of the declarations above. The header is the file's leading run of `--`
lines; the script's body follows it. The whole file is what Redis runs, header included, so
the line numbers of a Lua error are the file's.

A script may call other scripts as local functions (`with_functions`): each one's body
becomes `local function <name>(KEYS, ARGV) ... end` ahead of the script's own body, so one
call does a step's bookkeeping and its publish, and each rule is still written once.

`notifier.connection.run_script` and `queue_script` take a `LuaScript` and check, before
anything reaches Redis, that they were given as many keys and arguments as its header
declares (at least the fixed ones, when it declares a tail): a caller that passes them in the
wrong shape fails at once with the script's name, not with a Lua error or a silent nil.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

_DECLARATION = re.compile(r"--\s*(KEYS|ARGV)\[(\d+)(\.\.)?\]:\s*(\S.*)$")
_MENTION = re.compile(r"--\s*(KEYS|ARGV)\[")


@dataclass(frozen=True, slots=True)
class LuaScript:
    """One Lua script and the keys and arguments its header declares."""

    #: Where it came from, for messages: `notifier/lua/publish.lua`.
    name: str
    #: What Redis runs (header included).
    source: str = field(repr=False)
    #: The fixed keys' and arguments' descriptions, in order (KEYS[1], KEYS[2], ...).
    keys: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    #: The variadic tail's description, when the header declares one.
    extra_keys: str | None = None
    extra_args: str | None = None

    @classmethod
    def load(cls, package: str | os.PathLike[str], name: str) -> LuaScript:
        """Read `lua/<name>.lua` beside `package` (a module's `__file__`, or its directory)."""
        base = Path(package)
        if not base.is_dir():
            base = base.parent
        path = base / "lua" / f"{name}.lua"
        return cls.parse(path.read_text(encoding="utf-8"), f"{base.name}/lua/{path.name}")

    @classmethod
    def parse(cls, source: str, name: str) -> LuaScript:
        """The script `source` (a whole file), named `name` in messages; ValueError if its
        header is missing or malformed."""
        declared: dict[str, list[str]] = {"KEYS": [], "ARGV": []}
        tails: dict[str, str | None] = {"KEYS": None, "ARGV": None}
        header = header_lines(source)
        if not header:
            raise ValueError(f"{name}: no header comment (what it does, its KEYS and ARGV)")
        for line in header:
            match = _DECLARATION.match(line)
            if match is None:
                if _MENTION.match(line):
                    raise ValueError(f"{name}: malformed declaration {line!r}")
                continue
            kind, index, variadic, text = match.groups()
            if tails[kind] is not None:
                raise ValueError(f"{name}: {kind}[{index}] follows the variadic {kind} tail")
            if int(index) != len(declared[kind]) + 1:
                expected = len(declared[kind]) + 1
                raise ValueError(f"{name}: {kind}[{index}] declared where {expected} was due")
            if kind == "KEYS" and declared["ARGV"]:
                raise ValueError(f"{name}: KEYS[{index}] declared after the arguments")
            if variadic:
                tails[kind] = text
            else:
                declared[kind].append(text)
        return cls(
            name=name,
            source=source,
            keys=tuple(declared["KEYS"]),
            args=tuple(declared["ARGV"]),
            extra_keys=tails["KEYS"],
            extra_args=tails["ARGV"],
        )

    def with_functions(self, **functions: LuaScript) -> LuaScript:
        """This script with `functions` (other scripts, by the name its body calls them)
        defined ahead of its body. Their `return` returns from the function; their KEYS and
        ARGV are the tables the caller passes. Line numbers in errors shift accordingly."""
        defined = "".join(
            f"local function {name}(KEYS, ARGV)\n{body(script.source)}end\n"
            for name, script in functions.items()
        )
        header = "".join(line + "\n" for line in header_lines(self.source))
        return replace(self, source=header + defined + body(self.source))

    def check(self, keys: Sequence[Any], args: Sequence[Any]) -> None:
        """TypeError unless `keys` and `args` have the counts the header declares."""
        if len(keys) != len(self.keys) and not (
            self.extra_keys is not None and len(keys) > len(self.keys)
        ):
            raise TypeError(self._mismatch("key", self.keys, self.extra_keys, len(keys)))
        if len(args) != len(self.args) and not (
            self.extra_args is not None and len(args) > len(self.args)
        ):
            raise TypeError(self._mismatch("argument", self.args, self.extra_args, len(args)))

    def _mismatch(self, what: str, fixed: tuple[str, ...], tail: str | None, got: int) -> str:
        count = f"at least {len(fixed)}" if tail is not None else str(len(fixed))
        plural = "" if len(fixed) == 1 else "s"
        names = [*fixed, *([f"{tail}..."] if tail is not None else [])]
        listed = f" ({'; '.join(names)})" if names else ""
        return f"Lua script {self.name} takes {count} {what}{plural}{listed}, got {got}"


def header_lines(source: str) -> list[str]:
    """The script's header: its leading run of `--` comment lines."""
    header = []
    for line in source.splitlines():
        if not line.startswith("--"):
            break
        header.append(line)
    return header


def body(source: str) -> str:
    """The script without its header."""
    lines = source.splitlines(keepends=True)
    return "".join(lines[len(header_lines(source)) :])
