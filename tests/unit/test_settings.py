"""The settings tree: read once, typed, and found by a new shell through `make run`'s file."""

from __future__ import annotations

import pytest

import settings
from settings.environment import STACK_FILE, process_environment


def test_a_process_reads_its_settings_once() -> None:
    assert settings.current() is settings.current()


def test_values_are_typed_and_defaults_fill_the_rest() -> None:
    read = settings.from_environment({"JWT_SECRET": "s", "REDIS_MAX_CONNECTIONS": "3",
                                      "SSE_HEARTBEAT_SECONDS": "2.5"})  # fmt: skip
    assert read.redis.max_connections == 3
    assert read.web.sse_heartbeat_seconds == 2.5
    assert read.retry.max_attempts == 5
    assert read.broker.url == read.redis.url  # the broker defaults to the event store's Redis


def test_a_malformed_number_names_its_variable() -> None:
    with pytest.raises(ValueError, match="REDIS_MAX_CONNECTIONS must be an integer"):
        settings.from_environment({"JWT_SECRET": "s", "REDIS_MAX_CONNECTIONS": "eight"})


def test_an_empty_access_log_turns_it_off_but_other_empty_values_are_unset() -> None:
    read = settings.from_environment({"JWT_SECRET": "s", "WEB_ACCESS_LOG": "", "PORT": ""})
    assert read.server.access_log == ""
    assert read.server.port == 5000


def test_only_the_cli_reads_the_stack_file(tmp_path, monkeypatch) -> None:
    (tmp_path / STACK_FILE).write_text("SANDBOX_SALESFORCE_PORT=9999\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SANDBOX_SALESFORCE_PORT", raising=False)
    assert "SANDBOX_SALESFORCE_PORT" not in process_environment()
    assert process_environment(with_stack=True)["SANDBOX_SALESFORCE_PORT"] == "9999"


def test_replace_changes_a_part_and_keeps_the_rest() -> None:
    before = settings.from_environment({"JWT_SECRET": "s"})
    after = before.replace(web={"jwt_audience": "portal"}, namespace="blue")
    assert (after.web.jwt_audience, after.namespace) == ("portal", "blue")
    assert after.redis == before.redis and before.web.jwt_audience is None
