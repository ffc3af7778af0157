"""Issue 13, downloads, in a real browser (Debian's Chromium via Playwright, against ``parametric serve`` with its
worker), on a laptop-sized and a phone-sized screen: a customer on the tracking page chooses their own printer,
gets a page saying the plates are being prepared for it (the server's worker slices them, never the request) and
then receives the 3MF; axe-core finds no violation on the tracking page nor on the preparing page."""

from __future__ import annotations

import time
import zipfile

import pytest

from .live import Stack
from .test_browser import SCREENSHOTS, SIZES, axe_violations, browser, open_page, stack  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def ready_order(live: Stack, sleeve_depth: int) -> dict:
    """Leg caps ordered through the API, once the worker has made and checked their files."""
    status, order, _ = live.request("POST", "/api/v1/orders", {
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "items": [{"template": "leg_cap", "params": {"sleeve_depth": sleeve_depth}, "quantity": 3,
                   "material": "pla"}]})
    assert status == 201, order
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        _, described, _ = live.get(f"/api/v1/orders/{order['id']}?token={order['token']}")
        if described["items"][0]["state"] == "ready":
            return order
        assert described["items"][0]["state"] != "failed", described
        time.sleep(0.5)
    raise AssertionError(f"the order's files were not made in time:\n{live.logs()}")


@pytest.mark.parametrize("size", SIZES)
def test_a_customer_gets_plates_for_their_own_printer(browser, stack, size, tmp_path):  # noqa: F811
    problems: list[str] = []
    order = ready_order(stack, 10 if size == "laptop" else 12)
    page = open_page(browser, problems, **SIZES[size])
    page.goto(f"{stack.base}/track/{order['id']}?token={order['token']}")
    form = page.locator("form[data-role='plates']")
    assert form.is_visible()
    assert axe_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "sideways scrolling"
    page.locator("#printer-1").select_option(label="Original Prusa MINI / MINI+")
    with page.expect_download(timeout=240_000) as downloading:
        with page.expect_response(lambda response: "/items/1/plates?" in response.url) as first:
            page.get_by_role("button", name="Get print-ready plates (3MF)").click()
        assert first.value.status == 202  # the request only asked a worker: nothing was sliced in it
        page.wait_for_url("**/track/*/items/1/plates?*printer=prusa_mini*")
        assert page.locator("h1").inner_text() == "Your print-ready plates are being prepared"
        assert "Original Prusa MINI / MINI+" in page.locator("[role='status']").inner_text()
        assert axe_violations(page) == []
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "sideways scrolling"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"30-{size}-plates-preparing.png"), full_page=True)
    download = downloading.value
    assert page.evaluate("window.__plates.delivered && window.__plates.polls") >= 1  # asked in the background
    assert "are ready: your browser is saving them" in page.locator("[role='status']").inner_text()
    assert download.suggested_filename == f"order-{order['id'][:8]}_item-1_leg_cap_prusa_mini_plate-1_pla.3mf"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with zipfile.ZipFile(saved) as project:
        config = project.read("Metadata/Slic3r_PE.config").decode()
        model = project.read("Metadata/Slic3r_PE_model.config").decode()
    assert "; bed_shape = 0x0,180x0,180x180,0x180" in config and "; temperature = 210" in config
    assert sum(f'key="name" value="leg_cap-copy-{n}.stl"' in model for n in range(1, 5)) == 3  # every copy
    # the customer is still on the page that said it was coming, with the way back to the order
    assert page.get_by_role("link", name="Back to your order").get_attribute("href") == \
        f"/track/{order['id']}?token={order['token']}"
    assert not problems, problems


def test_the_preparing_page_works_without_javascript(browser, stack, tmp_path):  # noqa: F811
    """With JavaScript off the page's own refresh asks again, then the browser saves the 3MF."""
    problems: list[str] = []
    order = ready_order(stack, 14)
    page = open_page(browser, problems, java_script_enabled=False)
    page.goto(f"{stack.base}/track/{order['id']}?token={order['token']}")
    page.locator("#printer-1").select_option(label="Creality Ender-3 V2")
    with page.expect_download(timeout=240_000) as downloading:
        page.get_by_role("button", name="Get print-ready plates (3MF)").click()
        page.wait_for_url("**/track/*/items/1/plates?*printer=ender3_v2*")
        assert "Creality Ender-3 V2" in page.locator("[role='status']").inner_text()
    assert downloading.value.suggested_filename.endswith("_leg_cap_ender3_v2_plate-1_pla.3mf")
    assert not problems, problems

