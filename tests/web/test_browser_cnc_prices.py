"""Issue 13: a CNC product's price and machining time agree on every page, in a real browser (Debian's Chromium via
Playwright, against ``parametric serve`` with its worker), on a laptop-sized and a phone-sized screen, axe-core
finding no violation on the customer's pages.

The shop has a router set up as ``test_quotes_cnc`` sets one up, so the quote's cutting time is CAM's, from the
toolpaths of the router that will cut the part. A customer working in inches configures a wall shelf, reads the
price and the board's cutting time in the configurator, then on the checkout, the confirmation and the tracking
page; the staff open the board job's job sheet (HTML). Every page shows the same figures, and the time is the one
the job's CAM recorded."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import lxml.html
import pytest

from parametric.units import format_duration
from tests.parametric import conftest as tools

from .live import Stack
from .test_browser import (
    SIZES,
    STAFF,
    axe_violations,
    no_sideways_scrolling,
    open_page,
    shot,
    staff_sign_in,
    wait_for,
)
from .test_browser import browser as browser  # noqa: PLC0414  the module's Chromium fixture

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture(scope="module")
def cnc_stack(tmp_path_factory, output_root) -> Iterator[Stack]:
    """The shop with the router of ``test_quotes_cnc`` (birch plywood stocked, 6 mm backs too) and a dispatcher that
    prepares jobs every two seconds; its own server, so the other browser tests keep their shop without a router."""
    folder = tmp_path_factory.mktemp("browser-cnc")
    live = Stack(folder, {
        "DATABASE_URL": "", "REDIS_URL": "",
        "PARAMETRIC_INSTANCE": str(folder / "instance"), "PARAMETRIC_OUTPUT": str(folder / "output"),
        "PARAMETRIC_CACHE_FOLDER": str(output_root / "cache"), "PARAMETRIC_HUEY_NAME": "parametric-browser-cnc",
        "PARAMETRIC_DISPATCH_INTERVAL_SECONDS": "2",
    })
    try:
        live.start_server("--workers", "1")
        added = subprocess.run([sys.executable, "-m", "parametric.cli", "users", "add", STAFF[0], "--password",
                                STAFF[1]], env=live.env, capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        record = tools.router_record()
        record["stock"].append({"material": "birch_plywood", "thickness_mm": 6, "size_mm": [2500, 1250]})
        status, body, _ = live.request("POST", "/api/v1/staff/machines", record, headers=staff_auth())
        assert status == 201, body
        yield live
    finally:
        live.stop()


def staff_auth() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(":".join(STAFF).encode()).decode()}


def board_time(page: Any) -> str:
    """The board's cutting time as the page words it: "1 × board: about 8 min 30 s of cutting" gives "8 min 30 s"."""
    found = re.search(r"board: (?:\S.*?)?about (.+?) of cutting", page.locator("main").inner_text())
    assert found, page.locator("main").inner_text()
    return found.group(1)


@pytest.mark.parametrize("size", SIZES)
def test_a_cnc_shelfs_price_and_cutting_time_agree_from_configurator_to_job_sheet(browser, cnc_stack, size):
    problems: list[str] = []
    page = open_page(browser, problems, **SIZES[size])
    page.goto(f"{cnc_stack.base}/configure/wall_shelf")
    wait_for(page, "window.__preview && window.__preview.done >= 1", timeout=180)
    page.locator("input[name='units'][value='in']").check()
    page.locator("#f-material").select_option("birch_plywood")
    wait_for(page, "[...document.querySelectorAll('#f-board_thickness option')].some(o => o.value === '18' "
                   "&& !o.disabled)")
    page.locator("#f-board_thickness").select_option("18")
    wait_for(page, "window.__preview.settled", timeout=300)  # the 18 mm birch board's preview, no other coming
    done = page.evaluate("window.__preview.done")
    page.locator("#f-width").fill("30")  # 762 mm, off the width's 10 mm step: kept exact, as typed in inches
    page.locator("#f-depth").fill("11")
    page.keyboard.press("Tab")
    wait_for(page, f"window.__preview.done > {done}", timeout=300)
    wait_for(page, "/^\\d+\\.\\d\\d EUR$/.test(document.getElementById('quote-price').textContent) && "
                   "document.querySelector('#quote-times li[data-part=\"board\"]')", timeout=300)
    price = page.locator("#quote-price").inner_text()
    width = page.locator("#f-width").input_value()
    assert width == "30" and "30 × 11 × " in page.locator("#dimensions").inner_text()  # inches kept exact
    shown_time = board_time(page)
    assert page.locator("#quote-times").is_visible()
    assert not axe_violations(page), axe_violations(page)
    no_sideways_scrolling(page)
    shot(page.locator("#quote"), f"30-cnc-configurator-{size}.png")

    page.locator("#order-button").click()
    page.wait_for_selector("#checkout-total", timeout=300_000)
    assert page.locator("#checkout-total").inner_text() == price
    cell = page.locator("table.parts tr:has(th:text('board')) td[data-role='machine-time']").inner_text()
    assert cell.startswith(f"{shown_time} (toolpaths for shop-router)"), cell
    summary = page.locator("table.parameters").inner_text()
    assert "30 in" in summary and "762" not in summary, summary
    assert not axe_violations(page), axe_violations(page)
    no_sideways_scrolling(page)
    page.locator("#c-name").fill("Grace Hopper")
    page.locator("#c-email").fill("grace@example.com")
    earlier = {job["id"] for job in jobs_of(cnc_stack)}
    page.locator("#place-order").click()
    page.wait_for_url("**/confirmation?token=*")
    main = page.locator("main").inner_text()
    assert f"Price: {price}" in main and f"{width} in" in main
    assert board_time(page) == shown_time
    assert not axe_violations(page), axe_violations(page)
    no_sideways_scrolling(page)

    page.locator("#tracking-link").click()
    page.wait_for_url("**/track/*")
    assert board_time(page) == shown_time  # the quote's time, then the job's once CAM has run
    job = ready_board_job(cnc_stack, earlier)
    seconds = job["estimates"]["machining_time_s"]
    assert format_duration(seconds) == shown_time, (seconds, shown_time)  # the job's CAM time, to the second
    page.reload()
    assert re.search(r"board: .*about " + re.escape(shown_time) + " of cutting", page.locator("main").inner_text())
    assert f"{width} in" in page.locator("details table.parameters").text_content()
    assert not axe_violations(page), axe_violations(page)
    no_sideways_scrolling(page)
    shot(page.locator("main"), f"31-cnc-tracking-{size}.png")

    # the staff's job sheet of the board job: the same time (to the minute, as at the machine) and inches
    staff_sign_in(page, cnc_stack.base, "/staff/manufacturing")
    row = page.locator(f"#job-{job['id']}")
    assert row.locator("td.estimate").inner_text() == f"machining {shown_time}"  # as the customer reads it
    link = row.locator("td.files a[title^='job sheet (HTML)']")
    assert link.count() == 1, row.inner_html()
    sheet = page.request.get(cnc_stack.base + link.get_attribute("href"))  # the staff session's cookies
    assert sheet.status == 200
    text = lxml.html.fromstring(sheet.text()).text_content()
    assert re.search(r"Machining time \(estimated\)\s*" + re.escape(format_duration(seconds, precise=False)), text), \
        text
    assert f"{width} in" in text, text
    assert not problems, problems


def jobs_of(stack: Stack) -> list[dict[str, Any]]:
    status, body, _ = stack.get("/api/v1/staff/jobs", headers=staff_auth())
    assert status == 200, body
    return body["jobs"]


def ready_board_job(stack: Stack, earlier: set[int], timeout: float = 300) -> dict[str, Any]:
    """The new order's board job once CAM has toolpathed it (the dispatcher plans and prepares it by itself)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [j for j in jobs_of(stack) if j["part"] == "board" and j["id"] not in earlier]
        assert len(new) <= 1, new
        if new and new[0]["state"] not in ("queued", "slicing"):
            assert new[0]["state"] == "ready" and new[0]["kind"] == "cnc", new[0]
            return new[0]
        time.sleep(1)
    raise AssertionError(f"no ready board job after {timeout}s:\n{stack.logs()}")
