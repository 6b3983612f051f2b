"""Playwright driving Debian's chromium (never a downloaded browser) against gunicorn."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.sse import WebProcess, start_web
from tests.workers import ListenerProcess

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # This machine's network is closed: without these, chromium keeps dialling Google.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if os.path.exists(configured) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip(
            "Debian's chromium is not installed (apt-get install chromium); browser tests skipped"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_FLAGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def demo_listener(sandbox, worker, tmp_path_factory) -> Iterator[ListenerProcess]:
    """The listener that starts the demo orders the page approves (as under `make run`); the
    worker and sandbox run in the test process."""
    from app.dev import DEMO_ACCOUNT
    from sandbox.client import SandboxClient

    SandboxClient.from_environment().pubsub_settings(keepaliveSeconds=0.5)
    # Its sweep only ever sees the demo account's orders, not other tests' approvals.
    condition = f"Approved__c = true AND AccountId = '{DEMO_ACCOUNT}'"
    env = {**os.environ, "SALESFORCE_APPROVED_CONDITION": condition, "LOG_FORMAT": "text"}
    listener = ListenerProcess.start(env, log_file=tmp_path_factory.mktemp("listener") / "log")
    listener.wait_subscribed()
    yield listener
    listener.stop()


@pytest.fixture(scope="module")
def site(demo_listener) -> Iterator[WebProcess]:
    """The web process the browser talks to, with the demo listener running."""
    web = start_web(SSE_HEARTBEAT_SECONDS="2")
    yield web
    web.stop()


@pytest.fixture
def context(browser) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 420, "height": 860})
    # Count every timer the page starts: following an order must never need one that repeats.
    ctx.add_init_script("""
        window.__intervals = 0;
        const setIntervalOriginal = window.setInterval;
        window.setInterval = function () {
            window.__intervals += 1;
            return setIntervalOriginal.apply(this, arguments);
        };
    """)
    yield ctx
    ctx.close()
