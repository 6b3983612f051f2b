"""How to reach the external systems: each one's part of the settings, with its credentials.

Where a system is comes from `settings` (read once per process). In sandbox mode (no
`SALESFORCE_INSTANCE_URL` / `WHMCS_URL`) the credentials are in the file the sandbox writes
when it starts; it is read when a gateway first needs it, so a process may start before the
sandbox has. A part with its credentials filled in has no `sandbox_credentials` left.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from settings import SalesforceConfig, WhmcsConfig

from .errors import TransientError


def _sandbox_credentials(path: Path, system: str) -> dict[str, str]:
    try:
        return dict(json.loads(path.read_text())[system])
    except (OSError, ValueError, KeyError):
        # The sandbox writes this file when it starts; it may simply not be up yet.
        raise TransientError(
            "SANDBOX_UNAVAILABLE", f"no sandbox credentials in {path}", system=system
        ) from None


def salesforce_settings(config: SalesforceConfig) -> SalesforceConfig:
    """`config` with its credentials (the sandbox's, read from its file, in sandbox mode)."""
    if config.sandbox_credentials is None:
        return config
    creds = _sandbox_credentials(config.sandbox_credentials, "salesforce")
    return dataclasses.replace(
        config,
        client_id=creds["clientId"],
        client_secret=creds.get("clientSecret", ""),
        username=creds.get("username") or None,
        sandbox_credentials=None,
    )


def whmcs_settings(config: WhmcsConfig) -> WhmcsConfig:
    """`config` with its API credential (the sandbox's in sandbox mode)."""
    if config.sandbox_credentials is None:
        return config
    creds = _sandbox_credentials(config.sandbox_credentials, "whmcs")
    return dataclasses.replace(
        config, identifier=creds["identifier"], secret=creds["secret"], sandbox_credentials=None
    )
