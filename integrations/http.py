"""The HTTP session both gateways share: a timeout on every call and deliberate TLS trust.

requests lets `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE` from the environment override a
session's `verify` (`Session.merge_environment_settings`), which would silently drop the CA
we were configured to trust (the sandbox's self-signed certificate, or a corporate CA). Passing
`verify` on every request keeps our choice while leaving proxies and the rest of the
environment alone.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

#: (connect, read) seconds; connect is short because a dead host should fail fast.
DEFAULT_CONNECT_TIMEOUT = 3.05


class GatewaySession(requests.Session):
    """A `requests.Session` with a default timeout and a fixed trust anchor."""

    def __init__(self, timeout: float, ca_bundle: str | None = None, pool_size: int = 32) -> None:
        super().__init__()
        self._timeout = (min(DEFAULT_CONNECT_TIMEOUT, timeout), timeout)
        self._verify: str | bool = ca_bundle or True
        # One pool slot per worker thread avoids "connection pool is full" churn.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any):
        kwargs.setdefault("timeout", self._timeout)
        kwargs.setdefault("verify", self._verify)
        return super().request(method, url, *args, **kwargs)
