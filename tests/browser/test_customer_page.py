"""What a customer meets besides a moving order: wrong links, no session, no JavaScript."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_order_page import place_order, sign_in, wait_for_result

pytestmark = pytest.mark.browser

UNKNOWN_ORDER = "801000000000000AAA"  # a Salesforce Order id's shape; no such order


def test_an_unknown_order_says_so_and_stops(context, site):
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    sign_in(page, site)

    page.goto(f"{site.url}/orders/{UNKNOWN_ORDER}")

    expect(page.locator("#current")).to_have_text("We couldn't find this order")
    expect(page.locator("#missing")).to_be_visible()
    assert page.locator("#timeline").is_hidden()
    assert page.locator("#connection").is_hidden()
    assert page.evaluate("window.orderPage.finished") is True
    assert asked.count(f"{site.url}/api/orders/{UNKNOWN_ORDER}") == 1  # asked once, then stopped


def test_a_malformed_order_id_gets_a_page_not_json(context, site):
    page = context.new_page()

    response = page.goto(f"{site.url}/orders/not-an-id")

    assert response is not None and response.status == 400
    assert response.headers["content-type"].startswith("text/html")
    expect(page.locator("h1")).to_have_text("We couldn't find this order")
    expect(page.locator("main .notice a")).to_have_attribute("href", "/orders")


@contextmanager
def signed_in_from_the_notice(browser, site, path: str, why: str) -> Iterator[Any]:
    """A visitor who never signed in opens `path`, is asked to, signs in from the notice's
    link and is back on `path`: the page, for the caller to check."""
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.goto(site.url + path)
        notice = page.locator("#signed-out")
        expect(notice).to_be_visible()
        assert notice.locator(".why").inner_text() == why
        assert "session" not in notice.inner_text()

        notice.locator("a").click()
        page.click("#sign-in")
        page.wait_for_url(site.url + path)
        yield page
        assert page.locator("#signed-out").is_hidden()
    finally:
        ctx.close()


def test_a_visitor_who_never_signed_in_is_asked_to_and_comes_back(browser, site, sandbox_client):
    from app.dev import DEMO_ACCOUNT

    order_id = sandbox_client.create_order(account_id=DEMO_ACCOUNT)["orderId"]  # not submitted
    why = "Sign in to see your order."
    with signed_in_from_the_notice(browser, site, f"/orders/{order_id}", why) as page:
        expect(page.locator("#current")).to_have_text(re.compile(r"^Order placed"))


def test_without_javascript_the_page_says_it_needs_it(browser, site, order):
    ctx = browser.new_context(java_script_enabled=False)
    try:
        page = ctx.new_page()
        page.goto(f"{site.url}/orders/{order['orderId']}")

        notice = page.locator("noscript .notice")
        expect(notice).to_be_visible()
        assert "needs JavaScript" in notice.inner_text()
        assert page.locator("#current").is_hidden()  # no "Connecting…" forever
        assert page.locator("#timeline").is_hidden()
    finally:
        ctx.close()


def test_the_steps_tell_screen_readers_their_state(context, site):
    page = context.new_page()
    sign_in(page, site)
    place_order(page, scenario="slow")

    # While it runs: the active step is the current one, the ones before it completed.
    active = page.locator("#timeline [aria-current=step]")
    expect(active).to_have_count(1)
    assert active.locator(".state").text_content() == "in progress"
    assert page.locator("#timeline [data-step=result] .state").text_content() == "not started"
    assert page.locator("#timeline [data-step=queued] .state").text_content() == "completed"
    assert page.locator(".visually-hidden").first.is_visible()  # in the accessibility tree
    box = page.locator("#timeline [data-step=queued] .state").bounding_box()
    assert box is not None and box["width"] <= 1 and box["height"] <= 1  # but not on screen

    # Finished: every step completed, none current (and no order left running for the next
    # test, whose slow scenario's faults it would take).
    wait_for_result(page)
    states = page.locator("#timeline .state").all_text_contents()
    assert states == ["completed"] * 4
    assert page.locator("#timeline [aria-current]").count() == 0


def test_the_demo_form_has_thumb_sized_targets_and_a_pending_button(context, site):
    page = context.new_page()
    sign_in(page, site)

    targets = page.locator("form .choice, form button")
    assert targets.count() > 5
    for index in range(targets.count()):
        box = targets.nth(index).bounding_box()
        assert box is not None and box["height"] >= 44, targets.nth(index).inner_text()

    # What the button showed while its form was on its way, kept across the navigation.
    page.add_init_script("""
        addEventListener("DOMContentLoaded", () => {
            const button = document.getElementById("place-order");
            if (!button) return;
            new MutationObserver(() => {
                const seen = JSON.parse(sessionStorage.getItem("seen") || "[]");
                seen.push([button.textContent, button.disabled, button.getAttribute("aria-busy")]);
                sessionStorage.setItem("seen", JSON.stringify(seen));
            }).observe(button, {attributes: true, childList: true, characterData: true});
        });
    """)
    page.reload()
    place_order(page)
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('seen'))")
    assert ["Placing your order…", True, "true"] in seen, seen
    wait_for_result(page)  # nothing left running for the next test


def test_the_orders_page_asks_a_visitor_to_sign_in_and_comes_back(browser, site):
    with signed_in_from_the_notice(browser, site, "/orders", "Sign in to see your orders.") as page:
        expect(page.locator("#orders")).to_have_attribute("data-state", "live")
