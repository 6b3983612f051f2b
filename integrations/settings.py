"""How to reach the external systems: the settings' part for each, with its credentials.

Where a system is comes from `settings` (read once per process). In sandbox mode (no
`SALESFORCE_INSTANCE_URL` / `WHMCS_URL`) the credentials are in the file the sandbox writes
when it starts; it is read when a gateway first needs it, so a process may start before the
sandbox has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from settings import SalesforceConfig, WhmcsConfig

from .errors import TransientError


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


def _sandbox_credentials(path: Path, system: str) -> dict[str, str]:
    try:
        return dict(json.loads(path.read_text())[system])
    except (OSError, ValueError, KeyError):
        # The sandbox writes this file when it starts; it may simply not be up yet.
        raise TransientError(
            "SANDBOX_UNAVAILABLE", f"no sandbox credentials in {path}", system=system
        ) from None


def salesforce_settings(config: SalesforceConfig) -> SalesforceSettings:
    creds = {
        "clientId": config.client_id,
        "clientSecret": config.client_secret,
        "username": config.username or "",
    }
    if config.sandbox_credentials is not None:
        creds = _sandbox_credentials(config.sandbox_credentials, "salesforce")
    return SalesforceSettings(
        instance_url=config.instance_url,
        client_id=creds["clientId"],
        client_secret=creds.get("clientSecret", ""),
        username=creds.get("username") or None,
        private_key=config.private_key,
        login_url=config.login_url,
        audience=config.audience,
        api_version=config.api_version,
        ca_bundle=config.ca_bundle,
        timeout=config.timeout,
        status_field=config.status_field,
        error_field=config.error_field,
        whmcs_order_field=config.whmcs_order_field,
        client_field=config.client_field,
        product_field=config.product_field,
    )


def whmcs_settings(config: WhmcsConfig) -> WhmcsSettings:
    creds = {"identifier": config.identifier, "secret": config.secret}
    if config.sandbox_credentials is not None:
        creds = _sandbox_credentials(config.sandbox_credentials, "whmcs")
    return WhmcsSettings(
        url=config.url,
        identifier=creds["identifier"],
        secret=creds["secret"],
        access_key=config.access_key,
        ca_bundle=config.ca_bundle,
        timeout=config.timeout,
        payment_method=config.payment_method,
        billing_cycle=config.billing_cycle,
        order_field_id=config.order_field_id,
    )
