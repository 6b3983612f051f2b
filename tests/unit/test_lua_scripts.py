"""The Lua scripts' files: each header names the keys and arguments its body uses, the wheel
ships every file, and the runner refuses a call in the wrong shape (no Redis needed)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

from notifier.connection import queue_script, run_script
from notifier.scripts import LuaScript, body

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    path
    for package in (
        "notifier",
        "streaming",
        "fulfillment",
        "listener",
        "tasks",
        "app",
        "integrations",
        "sandbox",
    )
    for path in (ROOT / package).rglob("*.lua")
)


def test_the_scripts_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in SCRIPTS}
    assert "notifier/lua/publish.lua" in names and "fulfillment/lua/take_over.lua" in names
    assert len(names) >= 10


def test_the_wheel_ships_every_script() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    for path in SCRIPTS:
        package, inside = path.relative_to(ROOT).as_posix().split("/", 1)
        globs = package_data.get(package, [])
        assert any(fnmatch.fnmatch(inside, glob) for glob in globs), f"{path}: not in the wheel"


def _uses(source: str, kind: str) -> tuple[set[int], bool]:
    """The numbered `KEYS[n]`/`ARGV[n]` the body uses, and whether it uses the table otherwise
    (`#ARGV`, `ARGV[i]`, `ipairs(KEYS)`: a variadic tail)."""
    code = re.sub(r"--[^\n]*", "", body(source))
    numbered = {int(n) for n in re.findall(rf"\b{kind}\[(\d+)\]", code)}
    whole = re.search(rf"\b{kind}\b(?!\[\d+\])", code) is not None
    return numbered, whole


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_each_header_declares_what_the_body_uses(path: Path) -> None:
    script = LuaScript.load(path.parents[1], path.stem)
    assert not script.source.startswith("-- KEYS") and not script.source.startswith("-- ARGV")
    for kind, fixed, tail in (
        ("KEYS", script.keys, script.extra_keys),
        ("ARGV", script.args, script.extra_args),
    ):
        numbered, whole = _uses(script.source, kind)
        declared = set(range(1, len(fixed) + 1))
        undeclared = {n for n in numbered - declared if tail is None or n <= len(fixed)}
        assert not undeclared, f"{script.name}: uses {kind}{sorted(undeclared)} undeclared"
        assert declared <= numbered, f"{script.name}: {kind}{sorted(declared - numbered)} unused"
        assert whole == (tail is not None), f"{script.name}: a {kind} tail, declared or used"


def test_a_header_declares_keys_arguments_and_a_variadic_tail() -> None:
    script = LuaScript.parse(
        "-- Renew some streams.\n"
        "-- KEYS[1]: the set\n"
        "-- ARGV[1]: the lease, in ms\n"
        "-- ARGV[2..]: the members\n"
        "--   (continued: free text)\n"
        "-- Returns nothing.\n"
        "for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i]) end\n",
        "x/lua/renew.lua",
    )
    assert script.keys == ("the set",)
    assert script.args == ("the lease, in ms",)
    assert (script.extra_keys, script.extra_args) == (None, "the members")
    script.check(["k"], [1])  # a tail may be empty
    script.check(["k"], [1, "a", "b"])
    with pytest.raises(TypeError, match=r"x/lua/renew\.lua takes at least 1 argument \("):
        script.check(["k"], [])


def test_a_variadic_key_tail() -> None:
    script = LuaScript.parse("-- Scan lists.\n-- KEYS[1..]: the lists\nreturn #KEYS\n", "s.lua")
    assert script.keys == () and script.extra_keys == "the lists"
    script.check([], [])
    script.check(["a", "b", "c"], [])
    with pytest.raises(TypeError, match="takes 0 arguments"):
        script.check(["a"], ["surplus"])


@pytest.mark.parametrize(
    "header",
    [
        "return 1\n",  # no header
        "-- Gap.\n-- KEYS[2]: the second\n",
        "-- Order.\n-- ARGV[1]: one\n-- KEYS[1]: too late\n",
        "-- Tail.\n-- ARGV[1..]: the rest\n-- ARGV[2]: after the tail\n",
        "-- Shape.\n-- ARGV[1] no colon\n",
    ],
)
def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(ValueError):
        LuaScript.parse(header + "return 1\n", "bad.lua")


def test_the_runner_refuses_a_wrong_key_count_naming_the_script() -> None:
    take_over = LuaScript.load(ROOT / "fulfillment", "take_over")
    message = r"Lua script fulfillment/lua/take_over\.lua takes 2 keys \(the order's alive mark; "
    with pytest.raises(TypeError, match=message):
        run_script(take_over, ["only-one"], [30], client=_Unreachable())
    with pytest.raises(TypeError, match=r"notifier/lua/publish\.lua takes 11 arguments"):
        queue_script(_Unreachable(), LuaScript.load(ROOT / "notifier", "publish"), ["a"] * 3, [1])


class _Unreachable:
    """A client or pipeline that fails the test if the runner sends anything."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the runner reached Redis ({name}) with a call in the wrong shape")
