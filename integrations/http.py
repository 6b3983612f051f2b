"""The HTTP session both gateways share: a timeout on every call and deliberate TLS trust.

requests lets `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE` from the environment override a
session's `verify` (`Session.merge_environment_settings`), which would silently drop the CA
we were configured to trust (the sandbox's self-signed certificate, or a corporate CA). Passing
`verify` on every request keeps our choice while leaving proxies and the rest of the
environment alone.

requests also reads the environment on every call: the proxy variables (walking `os.environ`)
and `~/.netrc` (opening the file). That was a tenth of a worker's time per call. The proxies
are read once per host instead, and netrc not at all: our credentials are explicit.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies

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
        self.trust_env = False  # the environment's proxies are read below, once per host
        self._proxies_by_host: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        address = url.decode() if isinstance(url, bytes) else str(url or "")
        return {
            "proxies": merge_setting({**self._environ_proxies(address), **(proxies or {})},
                                     self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }  # fmt: skip

    def _environ_proxies(self, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        host = (parts.scheme, parts.netloc)
        found = self._proxies_by_host.get(host)
        if found is None:
            with self._lock:
                found = self._proxies_by_host[host] = get_environ_proxies(url)
        return found

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any):
        kwargs.setdefault("timeout", self._timeout)
        kwargs.setdefault("verify", self._verify)
        return super().request(method, url, *args, **kwargs)
