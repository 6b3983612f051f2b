"""Redis key and channel names, all under one namespace.

`FULFILLMENT_NAMESPACE` prefixes everything, so two stacks, or a test run beside `make run`,
can share one Redis without seeing each other. It defaults to `fulfillment`; a development
stack on a sandbox with a non-default `SANDBOX_SALESFORCE_PORT` (and no real Salesforce or
WHMCS configured) defaults to `fulfillment-sandbox-<port>`, so changing the `SANDBOX_*`
variables alone is enough to run a second, independent stack beside the first.

Per-order keys carry the order id as a hash tag (`{801...}`) so an order's state and history
always share a Redis Cluster slot.

Redis pub/sub ignores database numbers: channel names are namespaced for the same reason.
"""

from __future__ import annotations

import os

DEFAULT_NAMESPACE = "fulfillment"
_DEFAULT_SANDBOX_PORT = "8443"


def namespace() -> str:
    explicit = os.environ.get("FULFILLMENT_NAMESPACE")
    if explicit:
        return explicit
    external = os.environ.get("SALESFORCE_INSTANCE_URL") or os.environ.get("WHMCS_URL")
    port = os.environ.get("SANDBOX_SALESFORCE_PORT") or _DEFAULT_SANDBOX_PORT
    if external or port == _DEFAULT_SANDBOX_PORT:
        return DEFAULT_NAMESPACE
    return f"{DEFAULT_NAMESPACE}-sandbox-{port}"


def state_key(order_id: str) -> str:
    """Hash: `payload` (the last update, JSON), `seq`, `lastEventId`, `progress`."""
    return f"{namespace()}:order:{{{order_id}}}:state"


def history_key(order_id: str) -> str:
    """Stream: one entry per published update; the entry id is the SSE event id."""
    return f"{namespace()}:order:{{{order_id}}}:history"


def order_key(order_id: str, purpose: str) -> str:
    """Another per-order key (a lock, a cache) in the order's slot."""
    return f"{namespace()}:order:{{{order_id}}}:{purpose}"


def channel(order_id: str) -> str:
    """The pub/sub channel carrying the order's flask-sse envelopes."""
    return f"{namespace()}:sse:order.{order_id}"


def channel_prefix() -> str:
    return f"{namespace()}:sse:order."


def active_orders_key() -> str:
    """Sorted set of non-terminal orders scored by their last update time (for the reconciler)."""
    return f"{namespace()}:orders:active"
