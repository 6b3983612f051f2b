"""One stream per browser: the tabs of an origin share the account stream (order-events.js).

Each test is one browser (one Playwright context, one socket pool): eight tabs on the pages of
three orders, over HTTP/1.1, where a browser has six connections per origin for all its tabs.
The server's open-stream gauge says how many streams the browser holds; a sampler reads it
all along, so a second stream during a hand-over, or one per tab, cannot slip by unseen.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.test_order_page import history_stages, page_stages, sign_in, wait_for_result
from tests.helpers import sample, wait_until

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"

NO_SHARED_WORKER = "delete window.SharedWorker;"
NO_WEB_LOCKS = "delete window.SharedWorker; delete Navigator.prototype.locks;"


def streams_open(site) -> float:
    return sample(requests.get(f"{site.url}/metrics", timeout=5).text, "fulfillment_streams_open")


def client_events(site, reason: str) -> float:
    text = requests.get(f"{site.url}/metrics", timeout=5).text
    return sample(text, "fulfillment_client_events_total", reason=reason)


class Gauge:
    """The open-stream gauge, read every 50 ms from a thread: the most it showed."""

    def __init__(self, site) -> None:
        self.site = site
        self.most = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            self.most = max(self.most, streams_open(self.site))


@contextmanager
def watching_streams(site) -> Iterator[Gauge]:
    wait_until(lambda: streams_open(site) == 0, timeout=20)  # the tests before us are gone
    gauge = Gauge(site)
    thread = threading.Thread(target=gauge.run, daemon=True)
    thread.start()
    try:
        yield gauge
    finally:
        gauge.stopped.set()
        thread.join()


def new_orders(sandbox_client, count: int = 3) -> list[str]:
    """Orders of the demo customer that Salesforce has and fulfillment has not started."""
    from app.dev import DEMO_ACCOUNT

    return [sandbox_client.create_order(account_id=DEMO_ACCOUNT)["orderId"] for _ in range(count)]


def start(site, tokens, sandbox_client, orders: list[str]) -> None:
    """Trigger the orders together; WHMCS takes 1.5 s to create each (under the tests' 2 s
    timeout), so every order is still short of `completed` for a while after the tabs show it
    activating."""
    sandbox_client.fault("whmcs", "AddOrder", latencyMs=1500, times=len(orders))
    for order_id in orders:
        answer = requests.post(
            f"{site.url}/api/orders/{order_id}/fulfill",
            headers=tokens.headers(tokens.service()),
            timeout=10,
        )
        assert answer.status_code == 202


def open_tabs(context, site, orders: list[str], count: int = 8) -> list[tuple[object, str]]:
    """`count` tabs on the orders' pages, round robin, each waiting for its order to start."""
    first = context.new_page()
    sign_in(first, site)
    tabs = [(first, orders[0])]
    tabs += [(context.new_page(), orders[i % len(orders)]) for i in range(1, count)]
    for tab, order_id in tabs:
        tab.goto(f"{site.url}/orders/{order_id}")
    for tab, _ in tabs:
        expect(tab.locator("#current")).to_have_text(re.compile(r"^Order placed"))
    return tabs


def sharing(tabs) -> list[str]:
    return [tab.evaluate("window.orderPage.sharing()") for tab, _ in tabs]


def wait_all_activating(tabs) -> None:
    for tab, _ in tabs:
        tab.wait_for_selector("#timeline [data-step=activating].done", timeout=30_000)


def none_completed(orders: list[str]) -> bool:
    return all(history_stages(order_id)[-1:] != ["completed"] for order_id in orders)


def finish_and_compare(tabs) -> None:
    """Every tab reaches Completed, with every step of its order once, in order."""
    for tab, _ in tabs:
        wait_for_result(tab)
    for tab, order_id in tabs:
        assert page_stages(tab) == history_stages(order_id), order_id


def reported(site, tabs, reason: str) -> float:
    for tab, _ in tabs:
        tab.evaluate("window.orderPage.report()")
    return client_events(site, reason)


def test_a_shared_worker_holds_one_stream_for_eight_tabs(context, site, sandbox_client, tokens):
    orders = new_orders(sandbox_client)
    with watching_streams(site) as gauge:
        tabs = open_tabs(context, site, orders)
        assert sharing(tabs) == ["worker"] * 8
        wait_until(lambda: streams_open(site) == 1)

        start(site, tokens, sandbox_client, orders)
        wait_all_activating(tabs)
        # The worker lives while any tab is open: closing five tabs, the one that started it
        # and the newest (which the worker asks for tickets and hands its notes to) among
        # them, leaves the other three on the same stream.
        assert none_completed(orders)
        for tab, _ in tabs[:4] + tabs[-1:]:
            tab.close()
        left = tabs[4:-1]
        finish_and_compare(left)

    assert gauge.most == 1
    wait_until(lambda: streams_open(site) == 0)  # every order done: nothing left to follow


def stop_shared_workers(browser, site) -> None:
    """Stop the site's shared worker from outside, as a browser may (Chrome on Android warns it
    might stop one while its tabs live on)."""
    cdp = browser.new_browser_cdp_session()
    try:
        targets = cdp.send("Target.getTargets")["targetInfos"]
        workers = [t for t in targets if t["type"] == "shared_worker" and site.url in t["url"]]
        assert workers
        for worker in workers:
            cdp.send("Target.closeTarget", {"targetId": worker["targetId"]})
    finally:
        cdp.detach()


def test_when_the_shared_worker_is_stopped_a_tab_takes_the_stream_over(
    browser, context, site, sandbox_client, tokens
):
    orders = new_orders(sandbox_client)
    with watching_streams(site) as gauge:
        tabs = open_tabs(context, site, orders)
        wait_until(lambda: streams_open(site) == 1)

        start(site, tokens, sandbox_client, orders)
        wait_all_activating(tabs)
        assert none_completed(orders)
        stop_shared_workers(browser, site)
        # Every tab learns it from the lock the worker held; one leads, from its last event id.
        wait_until(lambda: sorted(sharing(tabs)) == ["follower"] * 7 + ["leader"], timeout=10)
        finish_and_compare(tabs)

    assert gauge.most <= 2  # the worker's stream, closing, beside the leader's


def test_without_shared_worker_a_leader_tab_holds_the_stream_and_hands_it_over(
    context, site, sandbox_client, tokens
):
    context.add_init_script(NO_SHARED_WORKER)
    orders = new_orders(sandbox_client)
    with watching_streams(site) as gauge:
        tabs = open_tabs(context, site, orders)
        roles = sharing(tabs)
        assert sorted(roles) == ["follower"] * 7 + ["leader"]
        wait_until(lambda: streams_open(site) == 1)

        start(site, tokens, sandbox_client, orders)
        wait_all_activating(tabs)
        assert none_completed(orders)
        leader = tabs[roles.index("leader")]
        leader[0].close()
        left = [tab for tab in tabs if tab is not leader]
        # Another tab takes over, and resumes from the last event id it received.
        wait_until(lambda: sharing(left).count("leader") == 1, timeout=10)
        finish_and_compare(left)

    assert gauge.most <= 2  # the old stream, closing, beside the new one
    wait_until(lambda: reported(site, left, "leader-change") >= 1)
    wait_until(lambda: streams_open(site) == 0)  # every order done: nothing left to follow


def test_without_shared_worker_and_web_locks_each_tab_connects(
    context, site, sandbox_client, tokens
):
    # One stream per tab: over HTTP/1.1 a browser has six connections per origin for all its
    # tabs, so four tabs here (eight would starve the origin: see the README).
    context.add_init_script(NO_WEB_LOCKS)
    orders = new_orders(sandbox_client)
    with watching_streams(site) as gauge:
        tabs = open_tabs(context, site, orders, count=4)
        assert sharing(tabs) == ["direct"] * 4
        wait_until(lambda: streams_open(site) == 4)

        start(site, tokens, sandbox_client, orders)
        finish_and_compare(tabs)

    assert gauge.most == 4
    wait_until(lambda: reported(site, tabs, "unshared") >= 4)


def test_the_orders_page_shows_three_orders_advancing_at_once(
    context, site, sandbox_client, tokens
):
    orders = new_orders(sandbox_client)
    with watching_streams(site) as gauge:
        page = context.new_page()
        sign_in(page, site)
        page.goto(f"{site.url}/orders")
        expect(page.locator("#orders")).to_have_attribute("data-state", "live")

        start(site, tokens, sandbox_client, orders)
        for order_id in orders:
            row = page.locator(f"#order-list [data-order-id='{order_id}']")
            expect(row.locator(".stage")).to_have_text("Completed", timeout=60_000)

    updates = page.evaluate("window.ordersPage.events")
    for order_id in orders:
        seen = [u["stage"] for u in updates if u["orderId"] == order_id]
        assert seen == history_stages(order_id)  # every step, live, once
    # At once: every order was under way before the first of them completed.
    first_done = next(i for i, u in enumerate(updates) if u["stage"] == "completed")
    assert {u["orderId"] for u in updates[:first_done] if u["stage"] == "activating"} == set(orders)
    assert gauge.most == 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=str(SCREENSHOTS / "orders-page-phone.png"), full_page=True)
