"""Accessibility of the order page and the orders page, checked by axe-core in the browser,
and their screenshots at a phone's and a desktop's width.

axe-core (tests/browser/vendor/axe-core, MPL-2.0) is put into the page by the test: the pages'
CSP forbids inline scripts, so these contexts bypass it (only here: the other tests keep it).
The screenshots go to build/screenshots/; with SAVE_DOCS_SCREENSHOTS=1 also to docs/, the
README's copies (`SAVE_DOCS_SCREENSHOTS=1 .venv/bin/pytest tests/browser/test_accessibility.py`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_order_page import place_order, sign_in, wait_for_result

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
# What axe must find checked and passing on both pages, besides no serious or critical finding.
MUST_PASS = {"landmark-one-main", "color-contrast", "aria-allowed-attr", "page-has-heading-one"}


@pytest.fixture
def open_context(browser) -> Iterator[Any]:
    ctx = browser.new_context(viewport=SIZES["phone"], bypass_csp=True)
    yield ctx
    ctx.close()


def axe(page) -> dict[str, Any]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate("""async () => {
        const results = await axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21aa", "best-practice"]},
        });
        const brief = (rule) => ({
            id: rule.id, impact: rule.impact, help: rule.help,
            nodes: rule.nodes.map((node) => node.target.join(" ")),
        });
        return {violations: results.violations.map(brief), passes: results.passes.map(brief)};
    }""")


def assert_accessible(page) -> None:
    results = axe(page)
    serious = [v for v in results["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, serious
    passed = {rule["id"] for rule in results["passes"]}
    assert not MUST_PASS - passed, MUST_PASS - passed
    # Landmarks: one main, a banner outside it; the status line is a polite live region.
    assert page.locator("main").count() == 1
    assert page.locator("body > .page > header").count() == 1  # the banner landmark
    live = page.locator("main [aria-live]")
    assert live.count() == 1 and live.get_attribute("aria-live") == "polite"
    # Every list and section that holds the state has a name.
    for landmark in page.locator("main > ol, main > ul, main > section").all():
        named = landmark.get_attribute("aria-label") or landmark.get_attribute("aria-labelledby")
        assert named or landmark.is_hidden(), landmark.evaluate("e => e.outerHTML.slice(0, 80)")


def screenshots(page, name: str) -> None:
    targets = [ROOT / "build" / "screenshots"]
    if os.environ.get("SAVE_DOCS_SCREENSHOTS") == "1":
        targets.append(ROOT / "docs")
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        for folder in targets:
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / f"{name}-{size}.png"), full_page=True)


@pytest.mark.parametrize(
    ("scenario", "state", "name"),
    [("normal", "done", "order-page"), ("rejected", "failed", "order-page-failed")],
)
def test_the_order_page_is_accessible(open_context, site, scenario, state, name):
    page = open_context.new_page()
    sign_in(page, site)
    place_order(page, scenario=scenario)
    wait_for_result(page, state)

    assert_accessible(page)
    screenshots(page, name)


def test_the_orders_page_is_accessible(open_context, site):
    page = open_context.new_page()
    sign_in(page, site)
    place_order(page, scenario="normal")
    wait_for_result(page)
    page.goto(site.url + "/orders")
    expect(page.locator(".order-row").first).to_be_visible()
    expect(page.locator("#summary")).not_to_have_text("Connecting…")

    assert_accessible(page)
    screenshots(page, "orders-page")
