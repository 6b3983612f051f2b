"""`GatewaySession` prepares requests as `requests.Session` does, without its slow merges
(`integrations.http`): the same method, URL, headers, body and auth for what the gateways
and simple-salesforce send."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from integrations.http import GatewaySession

CASES: list[dict[str, Any]] = [
    {"method": "post", "data": "action=AddOrder&pid=1", "headers": {"Content-Type": "text/x"}},
    {"method": "GET", "params": {"q": "SELECT Id FROM Order", "n": None}},
    {"method": "PATCH", "data": '{"Status": "Activating"}', "headers": {"Authorization": "x"}},
    {"method": "POST", "json": {"a": [1, 2]}, "headers": {"Accept": None}},  # None removes
    {"method": "POST", "data": [("k", "v"), ("k", "w")], "cookies": {"sid": "1"}},
    {"method": "GET", "auth": ("user", "secret"), "params": [("a", "1")]},
]


def prepared(session: requests.Session, case: dict[str, Any]) -> tuple[Any, ...]:
    session.headers["X-Session"] = "kept"
    session.params = {"always": "1"}
    session.trust_env = False  # as GatewaySession: no netrc
    p = session.prepare_request(requests.Request(url="https://sf.example/a?b=c", **case))
    return p.method, p.url, dict(p.headers), p.body


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_a_request_is_prepared_as_requests_prepares_it(case: dict[str, Any]) -> None:
    ours = prepared(GatewaySession(timeout=5), case)

    assert ours == prepared(requests.Session(), case)


def test_proxies_given_with_a_call_win_over_the_sessions() -> None:
    session = GatewaySession(timeout=5)
    session.proxies = {"https": "http://session:1", "http": "http://session:2"}

    merged = session.merge_environment_settings(
        "https://sf.example/a", {"https": "http://call:3"}, None, None, None
    )

    assert merged["proxies"] == {"https": "http://call:3", "http": "http://session:2"}
    assert merged["verify"] is True and merged["stream"] is False
