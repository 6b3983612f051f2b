"""The HTTP session both gateways share: a timeout on every call and deliberate TLS trust.

requests lets `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE` from the environment override a
session's `verify` (`Session.merge_environment_settings`), which would silently drop the CA
we were configured to trust (the sandbox's self-signed certificate, or a corporate CA). Passing
`verify` on every request keeps our choice while leaving proxies and the rest of the
environment alone.

requests also reads the environment on every call: the proxy variables (walking `os.environ`)
and `~/.netrc` (opening the file). That was a tenth of a worker's time per call. The proxies
are read once per host instead, and netrc not at all: our credentials are explicit.

Since 2.34, requests merges a session's headers, params and proxies into each request's
through `isinstance` checks against a runtime-checkable `Protocol`, which Python 3.11 does
not cache: eight of them doubled the cost of preparing a request (126 µs on 2.32.5, 256 on
2.34.2, `Session.prepare_request` timed on this machine), about 2 % of an order's CPU over its
four or five calls. `prepare_request` and `merge_environment_settings` here merge the same
plain dictionaries directly, with requests' rules (the request's value wins, None removes).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar, cookiejar_from_dict, merge_cookies
from requests.sessions import merge_hooks
from requests.structures import CaseInsensitiveDict
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
        found = {**self._environ_proxies(address), **(proxies or {})}
        return {
            "proxies": _merged(dict, self.proxies, found),
            "stream": self.stream if stream is None else stream,
            "verify": self.verify if verify is None else verify,
            "cert": self.cert if cert is None else cert,
        }

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """`requests.Session.prepare_request` without its Protocol checks (see the module);
        no netrc (`trust_env` is off)."""
        cookies = request.cookies or {}
        jar = cookies if isinstance(cookies, CookieJar) else cookiejar_from_dict(cookies)
        prepared = requests.PreparedRequest()
        prepared.prepare(
            method=str(request.method).upper(), url=request.url, files=request.files,
            data=request.data, json=request.json,
            headers=_merged(CaseInsensitiveDict, self.headers, request.headers),
            params=_merged(dict, self.params, request.params) or None,
            auth=request.auth or self.auth,
            cookies=merge_cookies(merge_cookies(RequestsCookieJar(), self.cookies), jar),
            hooks=merge_hooks(request.hooks, self.hooks),
        )  # fmt: skip
        return prepared

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


def _merged(kind: Any, session: Any, request: Any) -> Any:
    """`session`'s settings updated with `request`'s, keys set to None removed (requests'
    `merge_setting` for mappings); a request value that is not a mapping replaces them."""
    if request is not None and not isinstance(request, Mapping):
        return request
    merged = kind(session or {})
    merged.update(request or {})
    for key in [key for key, value in merged.items() if value is None]:
        del merged[key]
    return merged
