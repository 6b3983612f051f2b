"""A small client for the sandbox's `/__sandbox/` control API (tests, benchmarks, the demo).

Plain HTTP(S) with `requests`, trusting the sandbox's certificate explicitly (the environment's
`REQUESTS_CA_BUNDLE` would otherwise win over a session's `verify`).
"""

from __future__ import annotations

from typing import Any

import requests

import settings
from settings import SandboxSettings

from .tls import CERT_FILE


class SandboxClient:
    """Create orders, read what the emulators saw, switch faults on and off."""

    def __init__(
        self,
        salesforce_url: str,
        whmcs_url: str,
        ca_file: str,
        timeout: float = 10,
        pubsub_url: str | None = None,
    ):
        self.urls = {"salesforce": salesforce_url.rstrip("/"), "whmcs": whmcs_url.rstrip("/")}
        #: `host:port` of the Pub/Sub API emulator (a gRPC target), when known.
        self.pubsub_url = pubsub_url
        self.ca_file = ca_file
        self.timeout = timeout
        self.http = requests.Session()

    @classmethod
    def for_sandbox(cls, sandbox: SandboxSettings) -> SandboxClient:
        return cls(
            f"https://{sandbox.host}:{sandbox.salesforce_port}",
            f"http://{sandbox.host}:{sandbox.whmcs_port}",
            str(sandbox.dir / CERT_FILE),
            pubsub_url=f"{sandbox.host}:{sandbox.pubsub_port}",
        )

    @classmethod
    def from_environment(cls) -> SandboxClient:
        """The sandbox that `SANDBOX_*` point at now (read afresh: tests and benchmarks start
        sandboxes on ports they choose)."""
        return cls.for_sandbox(settings.from_environment().sandbox)

    def _request(self, method: str, system: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        response = self.http.request(
            method, f"{self.urls[system]}/__sandbox/{path}", verify=self.ca_file, **kwargs
        )
        response.raise_for_status()
        return response

    def create_order(
        self,
        products: list[Any] | None = None,
        account_id: str | None = None,
        approve: bool = False,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A new Draft order; with `approve`, approved at once (its answer then carries the
        `eventId` and `replayId` of the `Order_Activation__e` event)."""
        body: dict[str, Any] = {}
        if products is not None:
            body["products"] = products
        if account_id is not None:
            body["accountId"] = account_id
        if approve:
            body["approve"] = True
        if description is not None:
            body["description"] = description
        return dict(self._request("POST", "salesforce", "orders", json=body).json())

    def approve_order(self, order_id: str) -> dict[str, Any]:
        """Approve an order as a user would: `{"orderId", "eventId", "replayId"}`."""
        return dict(self._request("POST", "salesforce", f"orders/{order_id}/approve").json())

    def pubsub_events(self) -> list[dict[str, Any]]:
        """The retained `Order_Activation__e` events, oldest first."""
        return list(self._request("GET", "salesforce", "pubsub/events").json()["events"])

    def pubsub_settings(self, **settings: float) -> dict[str, Any]:
        """Set `retentionSeconds` and/or `keepaliveSeconds`; the settings now."""
        return dict(self._request("POST", "salesforce", "pubsub/settings", json=settings).json())

    def expire_events(self, seconds: float | None = None) -> dict[str, int]:
        """Age the retained events by `seconds` (default: the retention, so all expire)."""
        body = {} if seconds is None else {"seconds": seconds}
        return dict(self._request("POST", "salesforce", "pubsub/expire", json=body).json())

    def redeliver(self, **body: Any) -> dict[str, Any]:
        """`count`, `on` ("open" or "resume"), `times`: see the sandbox README."""
        return dict(self._request("POST", "salesforce", "pubsub/redeliver", json=body).json())

    def create_orders(self, count: int, **body: Any) -> list[dict[str, Any]]:
        """`count` orders at once (each with an account of its own unless `accountId` is given)."""
        response = self._request(
            "POST", "salesforce", "orders/batch", json={"count": count, **body}
        )
        return list(response.json()["orders"])

    def api_calls(self) -> int:
        """REST and SOQL calls Salesforce counted against the org's allowance so far."""
        return int(self._request("GET", "salesforce", "usage").json()["apiCalls"])

    def salesforce_order(self, order_id: str) -> dict[str, Any]:
        """`{"record", "items", "writes"}`: the Order and every field write it received."""
        return dict(self._request("GET", "salesforce", f"orders/{order_id}").json())

    def whmcs_orders(self, salesforce_order_id: str) -> list[dict[str, Any]]:
        """Every WHMCS order created for the Salesforce order."""
        params = {"salesforceOrderId": salesforce_order_id}
        return list(self._request("GET", "whmcs", "orders", params=params).json())

    def fault(self, system: str, action: str, **spec: Any) -> dict[str, Any]:
        """Inject a fault: `mode`, `times`, `latencyMs`, `errorCode`, `message`, `holdMs`."""
        body = {"action": action, **{k: v for k, v in spec.items() if v is not None}}
        return dict(self._request("POST", system, "faults", json=body).json())

    def clear_faults(self) -> None:
        for system in self.urls:
            self._request("DELETE", system, "faults")
