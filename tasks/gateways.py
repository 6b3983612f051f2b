"""The worker process's gateways, created on first use (after a prefork worker forks)."""

from __future__ import annotations

from functools import cache

from integrations import SalesforceGateway, WhmcsGateway


@cache
def salesforce() -> SalesforceGateway:
    return SalesforceGateway()


@cache
def whmcs() -> WhmcsGateway:
    return WhmcsGateway()


def reset() -> None:
    """Forget the gateways (and their settings), e.g. after the environment changed."""
    salesforce.cache_clear()
    whmcs.cache_clear()
