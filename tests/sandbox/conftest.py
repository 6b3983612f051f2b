"""Fixtures for the sandbox tests: a sandbox on free loopback ports, and the real clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from sandbox.server import Sandbox, start


class TrustingSession(requests.Session):
    """A session that trusts the sandbox's certificate and never waits forever.

    `verify` is passed per request because this machine exports REQUESTS_CA_BUNDLE, which
    would otherwise override a session-level `verify`.
    """

    def __init__(self, ca_file: str, timeout: float = 5.0) -> None:
        super().__init__()
        self.ca_file = ca_file
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("verify", self.ca_file)
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


class Control:
    """The `/__sandbox/` API of both emulators."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.http = TrustingSession(sandbox.ca_file)

    def url(self, system: str, path: str) -> str:
        base = self.sandbox.salesforce_url if system == "salesforce" else self.sandbox.whmcs_url
        return f"{base}/__sandbox{path}"

    def new_order(self, **body: Any) -> dict[str, str]:
        response = self.http.post(self.url("salesforce", "/orders"), json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.http.get(self.url("salesforce", f"/orders/{order_id}"))
        assert response.status_code == 200, response.text
        return response.json()

    def fault(self, system: str, **body: Any) -> dict[str, Any]:
        response = self.http.post(self.url(system, "/faults"), json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def whmcs_orders(self, salesforce_order_id: str | None = None) -> list[dict[str, Any]]:
        params = {"salesforceOrderId": salesforce_order_id} if salesforce_order_id else None
        response = self.http.get(self.url("whmcs", "/orders"), params=params)
        assert response.status_code == 200, response.text
        return response.json()


class Whmcs:
    """A bare WHMCS API caller: PHP bracket arrays in, the raw response out."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.url = f"{sandbox.whmcs_url}/includes/api.php"
        self.auth = dict(sandbox.credentials["whmcs"])
        self.http = requests.Session()

    def post(self, action: str, *pairs: tuple[str, Any], auth: bool = True, **params: Any) -> Any:
        form: list[tuple[str, Any]] = [("action", action), ("responsetype", "json")]
        if auth:
            form += list(self.auth.items())
        form += list(pairs) + list(params.items())
        return self.http.post(self.url, data=form, timeout=5)

    def call(self, action: str, *pairs: tuple[str, Any], **params: Any) -> dict[str, Any]:
        response = self.post(action, *pairs, **params)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/json"
        return response.json()


def token_for(sandbox: Sandbox, session: requests.Session | None = None) -> dict[str, Any]:
    """A client-credentials token response from the sandbox."""
    creds = sandbox.credentials["salesforce"]
    http = session or TrustingSession(sandbox.ca_file)
    response = http.post(
        f"{sandbox.salesforce_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(creds["clientId"], creds["clientSecret"]),
    )
    assert response.status_code == 200, response.text
    return response.json()


def salesforce_client(sandbox: Sandbox, timeout: float = 5.0) -> Salesforce:
    """simple-salesforce in direct-session mode, as the project's gateway builds it."""
    session = TrustingSession(sandbox.ca_file, timeout)
    token = token_for(sandbox, session)
    return Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=session,
        version="59.0",
    )


@pytest.fixture
def sandbox(tmp_path: Any) -> Iterator[Sandbox]:
    with start(tmp_path / "sandbox") as running:
        yield running


@pytest.fixture
def sf(sandbox: Sandbox) -> Salesforce:
    return salesforce_client(sandbox)


@pytest.fixture
def control(sandbox: Sandbox) -> Control:
    return Control(sandbox)


@pytest.fixture
def whmcs(sandbox: Sandbox) -> Whmcs:
    return Whmcs(sandbox)


# Test modules take helpers through fixtures rather than importing this file, so they work
# whatever pytest's import mode and whatever other conftest.py files the suite has.


@pytest.fixture
def https(sandbox: Sandbox) -> TrustingSession:
    return TrustingSession(sandbox.ca_file)


@pytest.fixture
def make_sf(sandbox: Sandbox) -> Any:
    """Build another simple-salesforce client (fresh token), optionally with a short timeout."""
    return lambda timeout=5.0: salesforce_client(sandbox, timeout)


@pytest.fixture
def get_token(sandbox: Sandbox) -> Any:
    return lambda: token_for(sandbox)
