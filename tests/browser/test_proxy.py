"""The order page through nginx (docker/nginx.conf) over TLS and HTTP/2, in front of two web
processes with round robin and no sticky sessions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from notifier import read_snapshot
from tests.browser.test_order_page import (
    history_stages,
    page_stages,
    place_order,
    sign_in,
    wait_for_result,
)
from tests.browser.test_tab_sharing import NO_WEB_LOCKS
from tests.helpers import sample, wait_until
from tests.integration.test_metrics import scrape
from tests.proxy import Proxy, nginx_path, start_proxy
from tests.sse import WebProcess, start_web

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        nginx_path() is None,
        reason="Debian's nginx is not installed (apt-get install nginx); proxy tests skipped",
    ),
]

Running = tuple[Proxy, list[WebProcess]]


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 and localhost."""
    from sandbox.tls import ensure_certificate

    return ensure_certificate(tmp_path_factory.mktemp("tls"))


@contextmanager
def proxied(tls: tuple[Path, Path], directory: Path) -> Iterator[Running]:
    """Two web processes and nginx in front of them."""
    webs: list[WebProcess] = []
    try:
        webs = [start_web(SSE_HEARTBEAT_SECONDS="2", WEB_TRUSTED_PROXIES="1") for _ in range(2)]
        proxy = start_proxy([web.port for web in webs], directory, *tls)
        try:
            yield proxy, webs
        finally:
            proxy.stop()
    finally:
        for web in webs:
            web.stop()


@pytest.fixture(scope="module")
def behind_nginx(demo_listener, tls, tmp_path_factory) -> Iterator[Running]:
    with proxied(tls, tmp_path_factory.mktemp("nginx")) as running:
        yield running


@pytest.fixture
def https(browser) -> Iterator[Any]:
    """A browser context that accepts the throwaway certificate."""
    ctx = browser.new_context(ignore_https_errors=True, viewport={"width": 420, "height": 860})
    yield ctx
    ctx.close()


def protocol(page) -> str:
    return str(page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol"))


def stream_protocols(page) -> list[str]:
    return list(
        page.evaluate(
            "performance.getEntriesByType('resource')"
            ".filter(e => e.name.includes('/events')).map(e => e.nextHopProtocol)"
        )
    )


def streams_open(web: WebProcess) -> float:
    return sample(scrape(web), "fulfillment_streams_open")


def test_with_no_web_process_up_the_proxy_answers_in_the_apis_error_shape(tls, tmp_path):
    from sandbox.redis_server import free_port

    proxy = start_proxy([free_port(), free_port()], tmp_path / "nginx", *tls)  # nobody listens
    try:
        down = requests.get(f"{proxy.url}/api/orders/events", verify=str(proxy.cert), timeout=10)
        metrics = requests.get(f"{proxy.url}/metrics", verify=str(proxy.cert), timeout=10)
    finally:
        proxy.stop()

    assert down.status_code == 503
    assert down.json()["error"]["code"] == "WEB_UNAVAILABLE"
    assert down.headers["Retry-After"] == "5"
    assert metrics.status_code == 404  # never served through the proxy
    assert "connect() failed" in proxy.error_log()


def test_eight_tabs_over_http2_all_follow_their_orders_live(
    https, behind_nginx, sandbox_client, tokens
):
    from app.dev import DEMO_ACCOUNT

    proxy, webs = behind_nginx
    # Tabs that cannot share one stream (a browser with neither SharedWorker nor Web Locks:
    # see test_tab_sharing.py) open one each: over HTTP/1.1 they would starve the origin.
    https.add_init_script(NO_WEB_LOCKS)
    first = https.new_page()
    sign_in(first, proxy)
    # Not started yet: each tab's stream opens and waits, so all eight are open at once.
    orders = [sandbox_client.create_order(account_id=DEMO_ACCOUNT)["orderId"] for _ in range(3)]
    pages = [first, *(https.new_page() for _ in range(7))]
    for number, page in enumerate(pages):
        page.goto(f"{proxy.url}/orders/{orders[number % len(orders)]}")
    for page in pages:
        expect(page.locator("#current")).to_have_text(re.compile(r"^Order placed"))

    # Eight streams open at once from one browser to one origin: over HTTP/1.1 the seventh
    # would wait for one of six connections. Here they share the browser's HTTP/2 connection.
    wait_until(lambda: sum(streams_open(web) for web in webs) == len(pages), 10)
    assert {protocol(page) for page in pages} == {"h2"}
    assert proxy.client_connections() == 1

    for order_id in orders:
        queued = requests.post(
            f"{proxy.url}/api/orders/{order_id}/fulfill",
            headers=tokens.headers(tokens.service()),
            verify=str(proxy.cert),
            timeout=10,
        )
        assert queued.status_code == 202, queued.text
    for page in pages:
        wait_for_result(page)
    for number, page in enumerate(pages):
        assert page.inner_text("#current") == "All done — your order is complete"
        assert page_stages(page) == history_stages(orders[number % len(orders)])
        assert page.evaluate("window.orderPage.connections") == 1
    # The streams themselves went over h2 (resource timing lists them once they have ended).
    for page in pages:
        assert stream_protocols(page) == ["h2"]


def test_events_arrive_through_the_proxy_as_they_happen(https, behind_nginx):
    proxy, _ = behind_nginx
    page = https.new_page()
    sign_in(page, proxy)
    # The app believes nginx's X-Forwarded-Proto (WEB_TRUSTED_PROXIES): the session cookie
    # it set over TLS is Secure.
    (cookie,) = [c for c in https.cookies() if c["name"] == "access_token"]
    assert cookie["secure"]

    order_id = place_order(page, scenario="slow")

    # A step shows while the order is still running: nothing held back until the stream ends
    # (gzip on the stream would hold every event until then).
    page.wait_for_selector("#timeline [data-step=activating].done")
    assert page.locator("#timeline [data-step=result]").get_attribute("class") == "step pending"
    wait_for_result(page)
    assert page_stages(page) == history_stages(order_id)
    assert protocol(page) == "h2"


def test_killing_the_web_process_serving_a_stream_resumes_on_the_other(
    https, demo_listener, tls, tmp_path
):
    with proxied(tls, tmp_path / "nginx") as (proxy, webs):
        page = https.new_page()
        sign_in(page, proxy)
        order_id = place_order(page, scenario="slow")
        page.wait_for_selector("#timeline [data-step=queued].done")

        # The page's stream is the only one open: the web process counting it serves it.
        wait_until(lambda: sorted(streams_open(web) for web in webs) == [0, 1], 10)
        serving, other = sorted(webs, key=streams_open, reverse=True)
        resumed_before = sample(scrape(other), "fulfillment_stream_resumes_total", outcome="replay")

        serving.kill()
        assert read_snapshot(order_id).body["stage"] not in ("completed", "failed")  # mid-order
        page.wait_for_selector("#connection:not([hidden])")
        assert page.inner_text("#connection") == "Reconnecting…"

        wait_for_result(page)
        assert page.locator("#connection").is_hidden()
        assert page_stages(page) == history_stages(order_id)  # every step once: no gap, no repeat
        # The browser resumed by event id on the other process (no sticky session to lose).
        resumed = sample(scrape(other), "fulfillment_stream_resumes_total", outcome="replay")
        assert resumed == resumed_before + 1
        assert serving.process.poll() is not None
        assert protocol(page) == "h2"
