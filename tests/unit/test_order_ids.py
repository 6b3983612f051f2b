"""Salesforce id validation: 15/18 characters, checksum, key prefix."""

from __future__ import annotations

import pytest

from notifier.order_ids import normalize_order_id, normalize_salesforce_id


def test_published_example_checksum() -> None:
    # Salesforce's documented pair: 00558000001N0Ke -> 00558000001N0KeAAK
    assert normalize_salesforce_id("00558000001N0Ke") == "00558000001N0KeAAK"
    assert normalize_salesforce_id("001A0000006Vm9r") == "001A0000006Vm9rIAC"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8015g00000AbCdE", "8015g00000AbCdEAAV"),
        ("8015g00000AbCdEAAV", "8015g00000AbCdEAAV"),
        ("8015g00000AbCdEaav", "8015g00000AbCdEAAV"),  # the suffix is case-insensitive
        ("8015g00000AbCdEAAA", None),  # wrong checksum
        ("0015g00000AbCdEAAV", None),  # an Account, not an Order
        ("8015g00000AbCd", None),  # 14 characters
        ("8015g00000AbCdE-AV", None),
        ("8015g00000AbCdé", None),
        ("", None),
        (None, None),
        (12345, None),
    ],
)
def test_order_ids(raw, expected) -> None:
    assert normalize_order_id(raw) == expected
