"""The cost sample's MONITOR reader: client-sent commands apart from those run inside scripts,
the benchmark's own connections left out, key patterns without ids, background subtracted."""

from __future__ import annotations

import hashlib

from bench.monitor import ROOT, Monitor, Tally, script_names

NS = "bench-1a2b3c4d"


def parse(lines: list[str], excluded: set[str] | None = None) -> Tally:
    data = "\r\n".join(lines).encode() + b"\r\n+1701.5 [0 127.0.0.1:9"  # a partial last line
    return Monitor("redis://127.0.0.1:1/0", NS, excluded)._parse(data, seconds=2.0)


def test_client_commands_and_script_commands_are_counted_apart() -> None:
    publish = next(ROOT.glob("notifier/lua/publish.lua"))
    sha = hashlib.sha1(publish.read_bytes()).hexdigest()  # noqa: S324
    tally = parse([
        f'+1701441234.100000 [0 127.0.0.1:50001] "EVALSHA" "{sha}" "2" '
        f'"{NS}:order:{{8015g00000AbCdEAAV}}:state" "k2" "arg"',
        f'+1701441234.100100 [0 lua] "HSET" "{NS}:order:{{8015g00000AbCdEAAV}}:state" "a" "1"',
        f'+1701441234.100200 [0 lua] "PUBLISH" "{NS}:sse:order.{{8015g00000AbCdEAAV}}" '
        '"{\\"x\\"}"',
        '+1701441234.200000 [0 127.0.0.1:50002] "MULTI"',
        '+1701441234.200100 [0 127.0.0.1:50002] "LPUSH" "q" "a \\"quoted\\" body"',
        '+1701441234.200200 [0 127.0.0.1:50002] "EXEC"',
        '+1701441234.300000 [0 127.0.0.1:50003] "ZCARD" "mine"',
    ], excluded={"127.0.0.1:50003"})  # fmt: skip

    assert dict(tally.client) == {"EVALSHA": 1, "MULTI": 1, "LPUSH": 1, "EXEC": 1}
    assert dict(tally.lua) == {"HSET": 1, "PUBLISH": 1}
    assert tally.keys["EVALSHA notifier/publish.lua {ns}:order:{<id>}:state"] == 1
    assert tally.keys["lua PUBLISH {ns}:sse:order.{<id>}"] == 1
    assert script_names()[sha] == "notifier/publish.lua"


def test_the_background_is_subtracted_at_its_rate() -> None:
    sample = Tally(10.0)
    sample.client.update({"BRPOP": 12.0, "GET": 100.0})
    idle = Tally(5.0)
    idle.client.update({"BRPOP": 5.0})

    net = sample.minus_background(idle)

    assert net.client == {"BRPOP": 2.0, "GET": 100.0}
