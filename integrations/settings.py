"""Where the external systems are and how to reach them, read from the environment.

With `SALESFORCE_INSTANCE_URL` (or `WHMCS_URL`) unset, that system is the local sandbox:
its port comes from `SANDBOX_SALESFORCE_PORT` / `SANDBOX_WHMCS_PORT` and its credentials and
certificate from `SANDBOX_DIR`, so `make run` needs no configuration and a second stack with
other `SANDBOX_*` values talks to its own sandbox.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import TransientError

SANDBOX_CREDENTIALS = "credentials.json"
SANDBOX_CERTIFICATE = "salesforce-cert.pem"


@dataclass(frozen=True)
class SalesforceSettings:
    instance_url: str
    client_id: str
    client_secret: str
    username: str | None
    private_key: str | None
    login_url: str
    audience: str
    api_version: str
    ca_bundle: str | None
    timeout: float
    status_field: str
    error_field: str
    whmcs_order_field: str
    client_field: str
    product_field: str

    @property
    def uses_jwt_bearer(self) -> bool:
        return bool(self.private_key and self.username)


@dataclass(frozen=True)
class WhmcsSettings:
    url: str
    identifier: str
    secret: str
    access_key: str | None
    ca_bundle: str | None
    timeout: float
    payment_method: str
    billing_cycle: str
    order_field_id: int


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def sandbox_dir() -> Path:
    return Path(_env("SANDBOX_DIR", ".sandbox")).resolve()


def sandbox_host() -> str:
    """Where the sandbox listens (another container's name under docker compose)."""
    return _env("SANDBOX_HOST", "127.0.0.1")


def uses_sandbox() -> bool:
    """True when neither external system is configured: development and tests."""
    return not (os.environ.get("SALESFORCE_INSTANCE_URL") or os.environ.get("WHMCS_URL"))


def _sandbox_credentials(system: str) -> dict[str, str]:
    path = sandbox_dir() / SANDBOX_CREDENTIALS
    try:
        return dict(json.loads(path.read_text())[system])
    except (OSError, ValueError, KeyError):
        # The sandbox writes this file when it starts; it may simply not be up yet.
        raise TransientError(
            "SANDBOX_UNAVAILABLE", f"no sandbox credentials in {path}", system=system
        ) from None


def salesforce_settings() -> SalesforceSettings:
    instance = os.environ.get("SALESFORCE_INSTANCE_URL")
    if instance:
        creds = {
            "clientId": _env("SALESFORCE_CLIENT_ID", ""),
            "clientSecret": _env("SALESFORCE_CLIENT_SECRET", ""),
            "username": _env("SALESFORCE_USERNAME", ""),
        }
        ca_bundle = os.environ.get("SALESFORCE_CA_BUNDLE")
    else:
        instance = f"https://{sandbox_host()}:{_env('SANDBOX_SALESFORCE_PORT', '8443')}"
        creds = _sandbox_credentials("salesforce")
        ca_bundle = str(sandbox_dir() / SANDBOX_CERTIFICATE)
    return SalesforceSettings(
        instance_url=instance.rstrip("/"),
        client_id=creds["clientId"],
        client_secret=creds.get("clientSecret", ""),
        username=creds.get("username") or None,
        private_key=_read_private_key(),
        login_url=_env("SALESFORCE_LOGIN_URL", instance).rstrip("/"),
        audience=_env("SALESFORCE_AUDIENCE", "https://login.salesforce.com"),
        api_version=_env("SALESFORCE_API_VERSION", "59.0"),
        ca_bundle=ca_bundle,
        timeout=float(_env("SALESFORCE_TIMEOUT_SECONDS", "10")),
        status_field=_env("SALESFORCE_STATUS_FIELD", "Activation_Status__c"),
        error_field=_env("SALESFORCE_ERROR_FIELD", "Activation_Error__c"),
        whmcs_order_field=_env("SALESFORCE_WHMCS_ORDER_FIELD", "WHMCS_Order_Id__c"),
        client_field=_env("SALESFORCE_WHMCS_CLIENT_FIELD", "WHMCS_Client_Id__c"),
        product_field=_env("SALESFORCE_WHMCS_PRODUCT_FIELD", "WHMCS_Product_Id__c"),
    )


def _read_private_key() -> str | None:
    path = os.environ.get("SALESFORCE_PRIVATE_KEY_FILE")
    return Path(path).read_text() if path else None


def whmcs_settings() -> WhmcsSettings:
    url = os.environ.get("WHMCS_URL")
    if url:
        creds = {
            "identifier": _env("WHMCS_IDENTIFIER", ""),
            "secret": _env("WHMCS_SECRET", ""),
        }
    else:
        url = f"http://{sandbox_host()}:{_env('SANDBOX_WHMCS_PORT', '8081')}"
        creds = _sandbox_credentials("whmcs")
    return WhmcsSettings(
        url=url.rstrip("/"),
        identifier=creds["identifier"],
        secret=creds["secret"],
        access_key=os.environ.get("WHMCS_ACCESS_KEY") or None,
        ca_bundle=os.environ.get("WHMCS_CA_BUNDLE") or None,
        timeout=float(_env("WHMCS_TIMEOUT_SECONDS", "10")),
        payment_method=_env("WHMCS_PAYMENT_METHOD", "banktransfer"),
        billing_cycle=_env("WHMCS_BILLING_CYCLE", "monthly"),
        order_field_id=int(_env("WHMCS_ORDER_FIELD_ID", "1")),
    )
