"""The web app's configuration: the process's settings, as Flask's `app.config` holds them.

Every value comes from `settings` (read once per process); `app.config` carries the web part
under its variables' names, plus the stream limit that depends on the server's settings.
"""

from __future__ import annotations

from typing import Any

from settings import Settings, WebSettings
from streaming.admission import default_max_streams


def web_settings(settings: Settings, overrides: dict[str, Any] | None = None) -> WebSettings:
    """The web part, with `overrides` (by variable name: tests) and every default resolved."""
    changes = {name.lower(): value for name, value in (overrides or {}).items()}
    known = {name: value for name, value in changes.items() if hasattr(settings.web, name)}
    if known.get("sse_max_streams", settings.web.sse_max_streams) is None:
        known["sse_max_streams"] = default_max_streams(settings.server.worker_connections)
    return settings.replace(web=known).web


def flask_config(web: WebSettings, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """`app.config`: the web settings by variable name, and Flask's own keys from `overrides`
    (`TESTING`)."""
    config = web.as_flask_config()
    config.update({k: v for k, v in (overrides or {}).items() if k not in config})
    return config
