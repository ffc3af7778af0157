"""Issue 13 items 2 and 3 in a real browser (Debian's Chromium via Playwright, against ``parametric serve``), on a
laptop-sized and a phone-sized screen, axe-core finding no violation on the customer's pages: a shoe size typed in
the box orders a pair; a cart holds two products for one order and one checkout with one setup fee, with
JavaScript and without it."""

from __future__ import annotations

import re

import pytest

from .test_browser import (  # noqa: F401
    SCREENSHOTS,
    SIZES,
    axe_violations,
    browser,
    no_sideways_scrolling,
    open_page,
    stack,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


@pytest.mark.parametrize("size", SIZES)
def test_a_shoe_size_typed_in_the_box_orders_a_pair(browser, stack, size):  # noqa: F811
    """Issue 13: with the pre-filled foot length "EU 46" was refused as a conflict, and quantity 2 made two right
    insoles. The foot length now starts empty; the size typed is used; the checkout lists a left and a right."""
    from templates_models.footwear.sizing import size_table

    problems: list[str] = []
    page = open_page(browser, problems, **SIZES[size])
    page.goto(f"{stack.base}/configure/insole")
    wait_for(page, "window.__preview && window.__preview.done >= 1", timeout=150)
    assert page.locator("#f-foot_length").input_value() == ""
    assert page.locator("#f-side").input_value() == "pair"
    help_text = page.locator("#h-shoe_size").inner_text()
    assert "characters" not in help_text and "EU 35-50" in help_text
    assert axe_violations(page) == []
    no_sideways_scrolling(page)
    done = page.evaluate("window.__preview.done")
    page.locator("#f-shoe_size").fill("EU 46")
    page.keyboard.press("Tab")
    wait_for(page, f"window.__preview.done > {done}", timeout=150)
    assert page.locator("#e-shoe_size").is_hidden() and page.locator("#form-errors").is_hidden()
    assert not page.locator("#order-button").is_disabled()
    # a pair: the two insoles side by side, 20 mm apart (291.7 mm foot + 5 mm allowance long)
    assert "296.7 × 220 × 13 mm" in page.locator("#dimensions").inner_text()
    assert page.locator("#f-foot_length").input_value() == ""  # the size's foot length is not written into the box
    # another size: still the one source, never a conflict with a foot length the customer did not type
    done = page.evaluate("window.__preview.done")
    page.locator("#f-shoe_size").fill("EU 40")
    page.keyboard.press("Tab")
    wait_for(page, f"window.__preview.done > {done}", timeout=150)
    assert page.locator("#e-shoe_size").is_hidden() and page.locator("#form-errors").is_hidden()
    assert f"{size_table()[('EU', 40.0)] + 5:g} × 220" in page.locator("#dimensions").inner_text()
    done = page.evaluate("window.__preview.done")
    page.locator("#f-shoe_size").fill("EU 46")
    page.keyboard.press("Tab")
    wait_for(page, f"window.__preview.done > {done}", timeout=150)
    screenshot(page, f"20-{size}-insole-pair.png")
    page.locator("#order-button").click()
    page.wait_for_selector("#checkout-total", timeout=240_000)  # the price page refreshes itself until it is there
    text = page.locator("main").inner_text()
    assert "EU 46" in text and "291.7 mm" in text
    assert "1 × left_insole" in text and "1 × right_insole" in text
    assert axe_violations(page) == []
    no_sideways_scrolling(page)
    assert not problems, problems


HEEL_LIFT_SIZE = "EU 43"
LEG_CAP_DIAMETER = "29"


def add_to_cart(page, base: str, template: str, values: dict[str, str], javascript: bool) -> None:
    page.goto(f"{base}/configure/{template}")
    if javascript:
        wait_for(page, "window.__preview && window.__preview.done >= 1", timeout=150)
    for selector, value in values.items():
        page.locator(selector).fill(value)
    if javascript:
        page.keyboard.press("Tab")
        wait_for(page, "!document.getElementById('order-button').disabled", timeout=150)
    page.locator("#cart-button").click()
    page.wait_for_url("**/cart")


def wait_for_prices(page, javascript: bool) -> None:
    """The cart page refreshes itself (a Refresh header: no script needed) until every line has its price."""
    for _ in range(120):
        if page.locator("#cart-total").count():
            return
        page.wait_for_timeout(1000)
    raise AssertionError("the cart's prices never came")


@pytest.mark.parametrize(("size", "javascript"), [("laptop", True), ("phone", True), ("laptop", False)],
                         ids=["laptop", "phone", "no-javascript"])
def test_a_cart_takes_two_products_to_one_order_with_one_setup_fee(browser, stack, size, javascript):  # noqa: F811
    """Issue 13: an insole and a heel lift took two checkouts, each with its own setup fee. Two products go into the
    cart, survive a reload, change quantity, and are placed in one order; confirmation and tracking list both."""
    problems: list[str] = []
    page = open_page(browser, problems, **SIZES[size], java_script_enabled=javascript)
    add_to_cart(page, stack.base, "heel_lift", {"#f-shoe_size": HEEL_LIFT_SIZE}, javascript)
    assert "Added 1 × Heel lift to your cart." in page.locator(".flashes").inner_text()
    add_to_cart(page, stack.base, "leg_cap", {"#f-leg_diameter": LEG_CAP_DIAMETER}, javascript)
    page.reload()  # the cart is kept (in the session)
    wait_for_prices(page, javascript)
    lines = page.locator("article.cart-line h3").all_inner_texts()
    assert len(lines) == 2 and lines[0].startswith("1 × Heel lift") and lines[1].startswith("1 × Leg cap"), lines
    assert page.locator("#cart-link").inner_text().strip() == "Cart (2)"
    # both printed: one setup fee for the whole order, not one per product
    assert page.locator("tr[data-role='setup']").count() == 1
    assert "once per order" in page.locator("tr[data-role='setup'] th").inner_text()
    page.locator("#q-1").fill("3")
    page.locator("article.cart-line[data-index='1'] [data-role='update']").click()
    page.wait_for_url("**/cart")
    wait_for_prices(page, javascript)
    assert page.locator("article.cart-line h3").all_inner_texts()[1].startswith("3 × Leg cap")
    total = page.locator("#cart-total").inner_text()
    prices = [float(re.match(r"[\d.]+", text).group()) for text in
              page.locator("[data-role='line-price']").all_inner_texts()]
    assert sum(prices) == pytest.approx(float(total.split()[0]), abs=0.011)
    if javascript:  # axe runs as a script: with scripts off the page is the same HTML, checked in the runs above
        assert axe_violations(page) == []
    no_sideways_scrolling(page)
    screenshot(page, f"21-{size}-{'js' if javascript else 'nojs'}-cart.png")

    page.locator("#c-name").fill("Katherine Johnson")
    page.locator("#c-email").fill("katherine@example.com")
    page.locator("#place-order").click()
    page.wait_for_url("**/confirmation?token=*")
    ordered = page.locator("article.line h3").all_inner_texts()
    assert len(ordered) == 2 and "Heel lift" in ordered[0] and "3 × Leg cap" in ordered[1]
    assert total in page.locator("#order-total").inner_text()
    if javascript:
        assert axe_violations(page) == []
    screenshot(page, f"22-{size}-{'js' if javascript else 'nojs'}-confirmation.png")
    page.locator("#tracking-link").click()
    page.wait_for_url("**/track/*")
    assert page.locator("article.line").count() == 2
    if javascript:
        assert axe_violations(page) == []
    page.goto(f"{stack.base}/cart")
    assert "Your cart is empty" in page.locator("main").inner_text()
    assert not problems, problems


@pytest.mark.parametrize("size", SIZES)
def test_an_api_orders_tracking_page_shows_the_apis_total_once_priced(browser, stack, size):  # noqa: F811
    """An order placed through the API is priced after it is placed (its lines' quotes, one setup fee per
    process): the tracking page says the total is not known yet, then shows the API's figure as it polls.

    The first line is a configuration no other test builds, and one that takes seconds to slice, so the page
    nearly always opens while the order is pending. Nearly: CI once priced a leg cap before the page opened, so
    the page's state and words are read together and checked against each other (the pending words the server
    writes are also checked, without the race, in test_orders)."""
    body = {"customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
            "items": [{"template": "heel_lift", "params": {"foot_length": 271.3 if size == "laptop" else 273.9,
                                                           "lift_height": 17.5},
                       "quantity": 1, "material": "pla"},
                      {"template": "leg_cap", "params": {"leg_diameter": 26}, "quantity": 1, "material": "pla"}]}
    status, order, _ = stack.request("POST", "/api/v1/orders", body)
    assert status == 201, order
    assert order["total"]["state"] == "pending", order["total"]
    problems: list[str] = []
    page = open_page(browser, problems, **SIZES[size])
    page.goto(f"{stack.base}/track/{order['id']}?token={order['token']}")
    # The state and the words read together: the page's own polling may turn it final between two reads.
    state, words = page.evaluate("[document.getElementById('order-total').dataset.state,"
                                 " document.getElementById('order-total').innerText]")
    assert state in ("pending", "final"), state
    assert ("not known yet" in words) == (state == "pending"), (state, words)
    wait_for(page, "document.getElementById('order-total').dataset.state === 'final'", timeout=240)
    _, shown, _ = stack.get(f"/api/v1/orders/{order['id']}?token={order['token']}")
    total = shown["total"]
    assert total["state"] == "final" and [line["setup_processes"] for line in total["lines"]] == [["fdm"], []]
    text = page.locator("#order-total").inner_text()
    assert f"Order total: {total['total']:.2f} EUR" in text and f"setup {total['setup']:.2f} EUR" in text
    page.reload()  # the server's page says the same
    assert page.locator("#order-total").inner_text() == text
    assert axe_violations(page) == []
    no_sideways_scrolling(page)
    assert not problems, problems
