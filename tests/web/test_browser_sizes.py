"""Issue 13: the configurator's shoe-size menus follow the size typed in the box (read by the core's sizing.py, on
the server), and a size chosen in the menus empties the box, so the page never shows two sizes at once; in a real
browser (Debian's Chromium via Playwright, against ``parametric serve``) on a laptop-sized and a phone-sized
screen, axe-core finding no violation."""

from __future__ import annotations

import json
import time

import pytest

from .test_browser import SIZES, axe_violations, browser, open_page, stack, wait_for  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.browser]

MENUS = ("[document.getElementById('size-system').value, "
         "document.getElementById('size-value').selectedOptions[0]?.textContent]")


def type_size(page, text: str) -> None:
    done = page.evaluate("window.__preview.done + window.__preview.errors")
    page.locator("#f-shoe_size").fill(text)
    page.keyboard.press("Tab")
    wait_for(page, f"window.__preview.done + window.__preview.errors > {done}", timeout=150)


def quoted_with(asked: list[dict], shoe_size: str, timeout: float = 150) -> dict:
    """The configurator's latest quote request for ``shoe_size`` (it asks once its preview is there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [body for body in asked if body["params"].get("shoe_size") == shoe_size]
        if found:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError(f"no quote asked for {shoe_size}; asked: {[b['params'].get('shoe_size') for b in asked]}")


@pytest.mark.parametrize("size", SIZES)
def test_the_size_menus_follow_the_size_typed_in_the_box(browser, stack, size):  # noqa: F811
    from templates_models.footwear.sizing import size_table

    problems: list[str] = []
    page = open_page(browser, problems, **SIZES[size])
    asked: list[dict] = []
    page.on("request", lambda request: asked.append(json.loads(request.post_data))
            if request.method == "POST" and request.url.endswith("/api/v1/quotes") else None)
    page.goto(f"{stack.base}/configure/insole")
    wait_for(page, "window.__preview && window.__preview.done >= 1", timeout=150)
    wait_for(page, "!document.getElementById('size-picker').hidden")
    assert page.evaluate(MENUS) == ["EU", "choose"]  # no size given yet: the menus choose none
    # a size typed in the box: the menus show it, the preview and the quote use it
    type_size(page, "eu46")
    wait_for(page, f"JSON.stringify({MENUS}) === JSON.stringify(['EU', 'EU 46'])")
    assert page.locator("#f-shoe_size").input_value() == "eu46" and page.locator("#f-foot_length").input_value() == ""
    assert page.locator("#e-shoe_size").is_hidden() and page.locator("#form-errors").is_hidden()
    assert "296.7 × 220 × 13 mm" in page.locator("#dimensions").inner_text()  # a pair of 291.7 mm + 5 mm insoles
    quoted = quoted_with(asked, "EU 46")
    assert quoted["params"]["foot_length"] == size_table()[("EU", 46.0)] == 291.7
    assert axe_violations(page) == []
    # a size chosen in the menus: the foot length from the table, the box emptied (one size on the page)
    done = page.evaluate("window.__preview.done")
    page.locator("#size-system").select_option("UK")
    page.locator("#size-value").select_option(label="UK 10")
    wait_for(page, f"window.__preview.done > {done}", timeout=150)
    assert page.locator("#f-shoe_size").input_value() == ""
    assert float(page.locator("#f-foot_length").input_value()) == pytest.approx(size_table()[("UK", 10.0)], abs=0.5)
    assert page.evaluate(MENUS) == ["UK", "UK 10"]  # the preview's answer keeps the menus' own size
    # typed again: the menus follow it, and the foot length the menus wrote goes (no conflict the customer made)
    type_size(page, "US M 9.5")
    wait_for(page, f"JSON.stringify({MENUS}) === JSON.stringify(['US-M', 'US M 9.5'])")
    assert page.locator("#f-foot_length").input_value() == ""
    assert page.locator("#e-shoe_size").is_hidden() and page.locator("#form-errors").is_hidden()
    assert quoted_with(asked, "US-M 9.5")["params"]["foot_length"] == size_table()[("US-M", 9.5)]
    # a size the table does not have: its message, and the menus show no size rather than the last one
    type_size(page, "EU 99")
    wait_for(page, "!document.getElementById('e-shoe_size').hidden")
    assert "EU 99 is not in the shoe-size table" in page.locator("#e-shoe_size").inner_text()
    assert page.evaluate(MENUS)[1] == "choose"
    assert axe_violations(page) == []
    assert not problems, problems
