"""The order page in a real browser: it follows the order live, without polling."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from notifier import read_snapshot
from tests.helpers import wait_until
from tests.sse import start_web

pytestmark = pytest.mark.browser
SCREENSHOT = Path(__file__).resolve().parents[2] / "build" / "screenshots" / "order-page.png"


def sign_in(page, site) -> None:
    page.goto(site.url + "/")
    page.click("#sign-in")
    page.wait_for_selector("#place-order")


def place_order(page, scenario: str = "normal", products: tuple[str, ...] = ()) -> str:
    for code in products:
        page.check(f"input[name=product][value={code}]")
    page.check(f"input[name=scenario][value={scenario}]")
    page.click("#place-order")
    page.wait_for_url(re.compile(r"/orders/801\w+$"))
    return page.url.rsplit("/", 1)[1]


def wait_for_result(page, state: str = "done", timeout: float = 60_000) -> None:
    page.wait_for_selector(f"#timeline [data-step=result].{state}", timeout=timeout)


def page_stages(page) -> list[str]:
    return page.evaluate("window.orderPage.events.map(e => e.stage)")


def history_stages(order_id: str) -> list[str]:
    return [e["stage"] for e in read_snapshot(order_id).body["history"]]


def test_the_page_follows_an_order_to_completed_live(context, site):
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    sign_in(page, site)

    order_id = place_order(page, scenario="slow")

    # It starts before the end (live, not a finished snapshot) and advances to Completed.
    page.wait_for_selector("#timeline [data-step=activating].done")
    assert page.locator("#timeline [data-step=result]").get_attribute("class") == "step pending"
    wait_for_result(page)
    assert page.inner_text("#current") == "All done — your order is complete"
    for step in ("queued", "activating", "provisioning", "result"):
        item = page.locator(f"#timeline [data-step={step}]")
        assert "done" in item.get_attribute("class")
        assert item.locator("time").get_attribute("datetime")  # each step has its time
        assert item.locator(".state").text_content() == "completed"  # for screen readers
    result = page.locator("#timeline [data-step=result]")
    assert result.locator("h2").inner_text() == "Your service is active"
    assert result.locator(".detail").inner_text() == "Everything you ordered is ready to use"
    assert_customer_words(page)
    assert page_stages(page) == history_stages(order_id)
    assert page.locator("#current").get_attribute("aria-live") == "polite"

    # What was ordered, above the timeline: the order number Salesforce shows, its products.
    summary = read_snapshot(order_id).body["order"]
    assert page.inner_text(".order-number") == f"Order {summary['number']}"
    assert page.locator("#summary").is_visible()
    items = page.locator("#items li").all_inner_texts()
    assert len(items) == len(summary["items"]) and summary["items"][0]["name"] in items[0]

    # No polling: one read of the order (its snapshot, joined to the shared account stream,
    # which the SharedWorker holds out of the page's sight), one connection, no repeating timer.
    api = [r for r in requests if "/api/orders/" in r]
    assert api == [f"GET {site.url}/api/orders/{order_id}"]
    assert page.evaluate("window.orderPage.sharing()") == "worker"
    assert page.evaluate("window.orderPage.connections") == 1
    assert page.evaluate("window.__intervals") == 0

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=str(SCREENSHOT.with_name("order-page-phone.png")), full_page=True)


# What the customer never reads: the systems' names, the codes, the vendors' messages.
OPERATOR_WORDS = re.compile(r"WHMCS|Salesforce|worker|_[A-Z]+\b|[A-Z]+_[A-Z]|AddOrder|Client ID")


def assert_customer_words(page) -> None:
    text = page.inner_text("main")
    assert not OPERATOR_WORDS.search(text), text
    sentences = [s.strip() for s in re.split(r"[.\n]", text) if len(s.strip()) > 12]
    assert len(sentences) == len(set(sentences)), text  # nothing said twice


def test_a_failed_order_shows_the_reason(context, site):
    page = context.new_page()
    sign_in(page, site)

    order_id = place_order(page, scenario="rejected")

    wait_for_result(page, "failed")
    result = page.locator("#timeline [data-step=result]")
    assert result.locator("h2").inner_text() == "Not completed"
    # WHMCS_ERROR (AddOrder: Client ID Not Found), in plain words, and what happens next.
    assert result.locator(".detail").inner_text() == (
        "Our billing system couldn't accept the order for your account."
    )
    assert page.inner_text("#current") == "We couldn't finish your order"
    error = read_snapshot(order_id).body["history"][-1]["error"]
    assert error["code"] == "WHMCS_ERROR" and error["retryable"] is False
    problem = page.locator("#problem")
    assert "Please contact support" in problem.locator(".next").inner_text()
    number = read_snapshot(order_id).body["order"]["number"]
    assert problem.locator(".reference strong").inner_text() == f"Order {number}"
    # The step it stopped at says so, for screen readers too; the steps after it not started.
    stopped = page.locator("#timeline .step.stopped")
    assert stopped.get_attribute("data-step") == "provisioning"
    assert stopped.locator(".state").text_content() == "stopped"
    assert stopped.locator(".detail").inner_text() == "This is where it stopped"
    assert page.locator("#timeline [aria-current]").count() == 0
    assert_customer_words(page)


def test_retries_show_as_such(context, site, sandbox_client):
    page = context.new_page()
    sign_in(page, site)
    # The retries come 50-200 ms apart here; the page shows one as current only if it follows
    # the order by then. Salesforce takes a second over the activation: longer than the page
    # takes to join the shared stream, so the retries come live, not in the snapshot.
    sandbox_client.fault("salesforce", "update", latencyMs=1000, times=1)
    # Retries in the tests are 50-200 ms apart: record every text the live region shows.
    page.add_init_script("""
        window.__said = [];
        window.__details = [];
        new MutationObserver(() => {
            const current = document.getElementById("current");
            if (current) window.__said.push(current.textContent);
            const detail = document.querySelector("[data-step=provisioning] .detail");
            if (detail) window.__details.push(detail.textContent);
        }).observe(document, {subtree: true, childList: true, characterData: true});
    """)

    order_id = place_order(page, scenario="busy")

    wait_for_result(page)
    said = page.evaluate("window.__said")
    assert "Taking a little longer than usual — we're trying again" in said, said
    # The countdown to nextRetryAt was shown on the step, outside the live region.
    details = page.evaluate("window.__details")
    assert any(re.fullmatch(r"Next try in \d+ s|Trying again now", t) for t in details), details
    # The record keeps the retries: two busy answers, two more tries.
    provisioning = page.locator("#timeline [data-step=provisioning]")
    assert provisioning.locator(".note").inner_text() == "Tried again 2 times"
    assert page_stages(page) == history_stages(order_id)
    assert_customer_words(page)


def test_two_tabs_on_one_order_both_advance(context, site):
    first = context.new_page()
    sign_in(first, site)
    order_id = place_order(first, scenario="slow")
    second = context.new_page()
    second.goto(f"{site.url}/orders/{order_id}")

    wait_for_result(first)
    wait_for_result(second)
    assert page_stages(first) == page_stages(second) == history_stages(order_id)


def test_a_web_restart_mid_order_shows_reconnecting_then_the_rest(context, sandbox, worker):
    web = start_web(SSE_HEARTBEAT_SECONDS="2")
    port = web.port
    page = context.new_page()
    try:
        sign_in(page, web)
        order_id = place_order(page, scenario="slow")
        page.wait_for_selector("#timeline [data-step=queued].done")

        web.kill()
        page.wait_for_selector("#connection:not([hidden])")
        assert page.inner_text("#connection") == "Reconnecting…"
        web = start_web(port=port, SSE_HEARTBEAT_SECONDS="2")

        wait_for_result(page)
        assert page.locator("#connection").is_hidden()
        assert page_stages(page) == history_stages(order_id)  # no gap, no repeat

        # What the page went through reaches operators: its beacon, counted by reason.
        page.evaluate("window.orderPage.report()")
        wait_until(lambda: client_events(web.url, "eventsource-error") >= 1, timeout=10)
    finally:
        web.stop()


def client_events(url: str, reason: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=5).text
    pattern = rf'fulfillment_client_events_total{{reason="{reason}"}} (\S+)'
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


def test_an_expired_ticket_is_renewed_and_the_stream_resumes(browser, sandbox, worker, tokens):
    from app.dev import DEMO_ACCOUNT

    web = start_web(SSE_HEARTBEAT_SECONDS="1", STREAM_TICKET_TTL_SECONDS="2")
    try:
        # A portal that holds the customer's token itself: no cookie, tickets only.
        ctx = browser.new_context()
        token = tokens.customer(DEMO_ACCOUNT)
        ctx.add_init_script(f"window.sessionStorage.setItem('access_token', '{token}')")
        setup = ctx.new_page()
        setup.goto(web.url + "/")
        setup.click("#sign-in")
        order_id = place_order(setup, scenario="slow")
        setup.context.clear_cookies()
        page = ctx.new_page()
        page.goto(f"{web.url}/orders/{order_id}")

        wait_for_result(page)
        assert page.evaluate("window.orderPage.connections") >= 2
        assert page_stages(page) == history_stages(order_id)
        ctx.close()
    finally:
        web.stop()


def test_a_page_left_open_on_a_failed_order_follows_an_operator_retry(context, site, tokens):
    import requests

    page = context.new_page()
    sign_in(page, site)
    order_id = place_order(page, scenario="rejected")
    wait_for_result(page, "failed")

    retried = requests.post(
        f"{site.url}/api/orders/{order_id}/retry",
        headers=tokens.headers(tokens.service()),
        timeout=10,
    )

    assert retried.status_code == 202
    wait_for_result(page, "done")
    assert page.inner_text("#current") == "All done — your order is complete"
    assert page_stages(page) == history_stages(order_id)
    assert page.evaluate("window.orderPage.events.at(-1).run") == 2
    # The first run's failure stays on the record, at the step where it stopped.
    note = page.locator("#timeline [data-step=provisioning] .note").inner_text()
    assert re.fullmatch(r"Stopped at .+, started again at .+", note), note
    assert page.locator("#problem").is_hidden()
    # Times never run backwards down the timeline.
    times = page.locator("#timeline time").evaluate_all("ts => ts.map(t => t.dateTime)")
    assert times == sorted(times) and all(times), times


def test_an_order_not_started_yet_waits_on_the_open_stream(context, site, tokens, sandbox_client):
    import requests

    from app.dev import DEMO_ACCOUNT

    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(f"{r.method} {r.url}"))
    sign_in(page, site)
    order_id = sandbox_client.create_order(account_id=DEMO_ACCOUNT)["orderId"]  # not submitted
    page.goto(f"{site.url}/orders/{order_id}")
    # A locator, not wait_for_function: the page's CSP forbids the eval its polling needs.
    expect(page.locator("#current")).to_have_text(re.compile(r"^Order placed"))
    assert page.evaluate("window.orderPage.connections") == 1

    queued = requests.post(
        f"{site.url}/api/orders/{order_id}/fulfill",
        headers=tokens.headers(tokens.service()),
        timeout=10,
    )
    assert queued.status_code == 202
    wait_for_result(page)
    # The first step arrived on the stream opened while waiting: no retry, no poll.
    assert page.evaluate("window.orderPage.connections") == 1
    assert asked.count(f"GET {site.url}/api/orders/{order_id}") == 1
    assert page.evaluate("window.__intervals") == 0
    assert page_stages(page) == history_stages(order_id)


def test_a_token_past_its_expiry_asks_for_one_ticket_and_says_so(browser, site, tokens, order):
    import time

    import jwt

    ctx = browser.new_context()
    now = int(time.time())
    claims = {"sub": "u", "account_id": order["accountId"], "iat": now - 600, "exp": now - 5}
    lapsed = jwt.encode(claims, tokens.settings.jwt_secret)  # inside the 30 s leeway
    ctx.add_init_script(f"window.sessionStorage.setItem('access_token', '{lapsed}')")
    page = ctx.new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.goto(f"{site.url}/orders/{order['orderId']}")

    page.wait_for_selector("#signed-out", state="visible")
    # The portal's token lapsed: not a visitor who never signed in.
    assert page.inner_text("#signed-out .why").startswith("Your session has ended.")
    page.wait_for_timeout(3000)  # long enough for a looping page to have asked again
    assert sum(url.endswith("/stream-ticket") for url in asked) == 1
    assert not any("/events" in url for url in asked)
    ctx.close()
