"""Key names: one namespace per stack, per-order keys in one cluster slot."""

from __future__ import annotations

import pytest

import settings
from notifier import keys

ORDER = "8015g00000AbCdEAAV"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "fulfillment"),
        ({"SANDBOX_SALESFORCE_PORT": "8443"}, "fulfillment"),
        ({"SANDBOX_SALESFORCE_PORT": "9443"}, "fulfillment-sandbox-9443"),
        ({"SANDBOX_SALESFORCE_PORT": "9443", "WHMCS_URL": "https://billing"}, "fulfillment"),
        ({"SANDBOX_SALESFORCE_PORT": "9443", "FULFILLMENT_NAMESPACE": "blue"}, "blue"),
    ],
)
def test_the_namespace_follows_the_stack(env, expected) -> None:
    assert settings.from_environment({"JWT_SECRET": "s", **env}).namespace == expected


@pytest.fixture
def namespace_ns():
    before = settings.current()
    settings.configure(before.replace(namespace="ns"))
    yield
    settings.configure(before)


def test_an_orders_keys_share_a_hash_tag(namespace_ns) -> None:
    assert keys.state_key(ORDER) == "ns:order:{8015g00000AbCdEAAV}:state"
    assert keys.history_key(ORDER) == "ns:order:{8015g00000AbCdEAAV}:history"
    assert keys.channel(ORDER) == "ns:sse:order.{8015g00000AbCdEAAV}"
