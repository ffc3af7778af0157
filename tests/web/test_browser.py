"""The shop in a real browser: headless Chromium (Debian's) driven by Playwright, against ``parametric serve``.

The server is the real one (waitress) with its embedded worker process, on SQLite and the
SQLite queue in a temporary folder, sharing the test session's cache. The tests change a
dimension and compare screenshots of the WebGL preview, see an out-of-range value refused
next to its field, order, and follow the order to its files; they also order with
JavaScript switched off, and use the configurator on a phone-sized screen. Screenshots are
kept in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from .live import Stack

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = os.environ.get("PARAMETRIC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]  # WebGL on the CPU: no GPU here
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
BACKGROUND = (0xEE, 0xF1, 0xF4)  # the viewer's clear colour (web/static/configurator.js)
STAFF = ("grace", "a staff password for the browser test")


def tool_missing(message: str) -> None:
    """Skip loudly when the browser is missing; on CI (CI=true) a missing tool fails the run."""
    message += (" The browser tests need Debian's chromium (`make setup` runs scripts/install-system-deps.sh) "
                "and Playwright for Python (`pip install -e '.[dev]'`; never `playwright install`).")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    warnings.warn(message, stacklevel=2)
    pytest.skip(f"SKIPPED LOUDLY: {message}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        tool_missing(f"Playwright is not installed ({error}).")
    if not Path(CHROMIUM).is_file():
        tool_missing(f"{CHROMIUM} does not exist.")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, output_root) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("browser")
    live = Stack(folder, {
        "DATABASE_URL": "", "REDIS_URL": "",  # SQLite and the SQLite queue, whatever the environment says
        "PARAMETRIC_INSTANCE": str(folder / "instance"), "PARAMETRIC_OUTPUT": str(folder / "output"),
        "PARAMETRIC_CACHE_FOLDER": str(output_root / "cache"), "PARAMETRIC_HUEY_NAME": "parametric-browser-test",
    })
    try:
        live.start_server("--workers", "1")
        added = subprocess.run([sys.executable, "-m", "parametric.cli", "users", "add", STAFF[0], "--password",
                                STAFF[1]], env=live.env, capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        yield live
    finally:
        live.stop()


def staff_sign_in(page: Any, base: str, path: str, staff: tuple[str, str] = STAFF) -> None:
    """Open the staff page ``path`` as staff do: sent to the login form first, signed in, brought back to it."""
    page.goto(f"{base}{path}")
    assert "/staff/login?next=" in page.url
    page.locator("#login-name").fill(staff[0])
    page.locator("#login-password").fill(staff[1])
    page.locator("#login-password").press("Enter")
    page.wait_for_url(f"**{path}")


def open_page(browser: Any, problems: list[str], **options: Any) -> Any:
    """A fresh context and page that records script errors and Content-Security-Policy violations."""
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **options})
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    expected = ("GPU stall", "status of 422")  # SwiftShader's notes; the refusals the test provokes on purpose
    page.on("console", lambda message: problems.append(f"console: {message.text}")
            if message.type == "error" and not any(text in message.text for text in expected) else None)
    return page


def wait_for(page: Any, expression: str, timeout: float = 60) -> Any:
    """Poll a JavaScript expression until it is truthy (Playwright's own waiting evaluates strings, which
    the pages' Content-Security-Policy rightly forbids)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{expression} still false after {timeout}s")


def shot(locator: Any, name: str) -> Image.Image:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    locator.screenshot(path=str(path))
    return Image.open(path).convert("RGB")


def model_fraction(picture: Image.Image) -> float:
    """The share of pixels that are not the viewer's background: the model on screen."""
    background = Image.new("RGB", picture.size, BACKGROUND)
    difference = ImageChops.difference(picture, background).convert("L").point(lambda v: 255 if v > 24 else 0)
    return ImageStat.Stat(difference).mean[0] / 255


def axe_violations(page: Any) -> list[str]:
    """axe-core's violations on the page as it stands (every rule axe runs by default), one line each."""
    from importlib import resources

    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(resources.files("axe_playwright_python").joinpath("axe.min.js").read_text("utf-8"))
    return page.evaluate("axe.run(document).then(result => result.violations.map(v => `${v.id}: ${v.help} `"
                         " + v.nodes.map(n => n.target.join(' ')).join(', ')))")


def no_sideways_scrolling(page: Any) -> None:
    """The page is no wider than the screen. (Not ``window.innerWidth``: with a phone's viewport emulated, Chromium
    widens the layout viewport to the content, so a page 714 px wide on a 390 px screen has innerWidth 714.)"""
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    if widths[0] > widths[1]:
        wide = page.evaluate(WIDE_ELEMENTS)
        raise AssertionError(f"sideways scrolling: the page is {widths[0]} px wide on a {widths[1]} px screen; "
                             f"too wide: {wide}")


WIDE_ELEMENTS = """(() => {
  const edge = document.documentElement.clientWidth + 1;
  const wide = (e) => !e.parentElement.closest('.table-scroll')
    && (e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > edge);
  return [...document.querySelectorAll('body *')].filter(wide).filter(e => ![...e.children].some(wide))
    .slice(0, 8).map(e => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${e.className ? '.' + e.className : ''}`
      + ` (${Math.round(e.getBoundingClientRect().right)} px: ${e.textContent.trim().slice(0, 60)})`);
})()"""
"""The innermost elements that stick out of the page (not those scrolling in a box of their own), for the message."""


SIZES = {"laptop": {"viewport": {"width": 1280, "height": 900}},
         "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
                   "device_scale_factor": 2}}


def check_stl(data: bytes) -> int:
    (triangles,) = struct.unpack("<I", data[80:84])
    assert triangles > 100 and len(data) == 84 + 50 * triangles, "not a binary STL"
    return triangles


def test_configure_preview_validate_order_and_download(browser, stack):
    problems: list[str] = []
    page = open_page(browser, problems)
    page.goto(f"{stack.base}/configure/wall_shelf")
    wait_for(page, "window.__preview && window.__preview.done >= 1", timeout=90)
    assert page.evaluate("window.__preview.viewer") == "webgl"
    canvas = page.locator("#preview-canvas")
    before = shot(canvas, "01-configurator-before.png")
    assert "800 × 200 × 168 mm" in page.locator("#dimensions").inner_text()

    # Change a dimension with the keyboard: type, then Tab on (the preview follows).
    width = page.locator("#f-width")
    width.focus()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"  # visible focus
    done = page.evaluate("window.__preview.done")
    width.fill("1450")
    page.keyboard.press("Tab")
    wait_for(page, f"window.__preview.done > {done}")
    after = shot(canvas, "02-configurator-after.png")
    assert "1450 × 200 × 168 mm" in page.locator("#dimensions").inner_text()
    for picture in (before, after):
        assert model_fraction(picture) > 0.03, "the preview canvas is blank"
        assert len(set(picture.getdata())) > 100, "the preview shows no shading"
    changed = ImageChops.difference(before, after).convert("L").point(lambda v: 255 if v > 24 else 0)
    assert ImageStat.Stat(changed).mean[0] / 255 > 0.01, "the preview did not redraw"
    wait_for(page, "/\\d+\\.\\d\\d EUR/.test(document.getElementById('quote-price').textContent)")

    # An out-of-range value: the server's message next to the field, and no ordering.
    width.fill("5000")
    page.keyboard.press("Tab")
    wait_for(page, "!document.getElementById('e-width').hidden")
    message = page.locator("#e-width").inner_text()
    assert message == "5000 mm is too long: the width must be 300 to 1500 mm"
    assert page.evaluate("document.getElementById('e-width').closest('.field') === "
                         "document.getElementById('f-width').closest('.field')")
    assert page.locator("#order-button").is_disabled()
    assert page.locator("#f-width").get_attribute("aria-invalid") == "true"
    page.locator("#f-width").scroll_into_view_if_needed()
    shot(page.locator("[data-field='width']"), "03-out-of-range.png")

    # Inches: the displayed values, limits and units follow; the configuration stays the same.
    width.fill("610")  # on the width's 10 mm step (off-step values are snapped to it)
    page.keyboard.press("Tab")
    wait_for(page, "document.getElementById('e-width').hidden && !document.getElementById('order-button').disabled")
    page.locator("input[name='units'][value='in']").check()
    assert width.input_value() == "24.016"
    assert page.locator("[data-field='width'] .allowed").inner_text() == "Allowed: 11.9 to 59 in."  # for people
    assert page.locator("[data-field='width'] .unit").inner_text() == "in"
    page.locator("input[name='units'][value='mm']").check()
    assert width.input_value() == "610"
    wait_for(page, "/610 × 200/.test(document.getElementById('dimensions').textContent)")
    wait_for(page, "/\\d+\\.\\d\\d EUR/.test(document.getElementById('quote-price').textContent)")
    live_price = page.locator("#quote-price").inner_text()

    # Order: checkout, confirmation, tracking until the files are there.
    page.locator("#order-button").click()
    page.wait_for_url("**/configure/wall_shelf")
    assert page.locator("#checkout-total").inner_text() == live_price
    page.locator("#c-name").fill("Grace Hopper")
    page.locator("#c-email").fill("grace@example.com")
    page.locator("#place-order").click()
    page.wait_for_url("**/confirmation?token=*")
    shot(page.locator("main"), "04-confirmation.png")
    page.locator("#tracking-link").click()
    page.wait_for_url("**/track/*")
    served_ready = page.evaluate("document.getElementById('tracking').dataset.status") == "ready"
    wait_for(page, "!document.querySelector('[data-role=\"files\"]').hidden", timeout=150)
    # files checked, not "ready": nothing is made yet (with no machine set up the parts wait for the workshop)
    assert page.locator("#order-status").inner_text() in ("files checked", "held up; our workshop is on it")
    if not served_ready:  # the files were still being made when the page came: its polling showed them
        assert page.evaluate("window.__tracking.polls") >= 1
    shot(page.locator("main"), "05-tracking-ready.png")
    links = page.locator("ul.files a").evaluate_all("links => links.map(a => a.href)")
    stl = next(link for link in links if ".stl?" in link)
    step = next(link for link in links if ".step?" in link)
    check_stl(page.request.get(stl).body())
    assert page.request.get(step).body().startswith(b"ISO-10303-21;")

    # The staff see it in the dashboard, with its checks.
    staff_sign_in(page, stack.base, "/staff/")
    assert "Grace Hopper" in page.locator("table.orders").inner_text()
    page.locator("table.orders a").first.click()
    assert "watertight: yes" in page.locator("main").inner_text()
    shot(page.locator("main"), "06-dashboard-order.png")
    assert not problems, problems


def test_phone_sized_configurator_with_shoe_size_picker(browser, stack):
    from templates_models.footwear.sizing import size_table

    problems: list[str] = []
    page = open_page(browser, problems, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                     device_scale_factor=2)
    page.goto(f"{stack.base}/configure/heel_lift")
    wait_for(page, "window.__preview && window.__preview.done >= 1", timeout=180)  # a pair: two parts to build
    no_sideways_scrolling(page)
    box = page.locator("#preview-canvas").bounding_box()
    assert box["width"] <= 390 and box["height"] > 150
    done = page.evaluate("window.__preview.done")
    page.locator("#size-system").select_option("UK")
    page.locator("#size-value").select_option(label="UK 10")
    wait_for(page, f"window.__preview.done > {done}")
    foot = float(page.locator("input[name='params.foot_length']").input_value())
    assert foot == pytest.approx(size_table()[("UK", 10.0)], abs=0.5)  # on the foot length's 1 mm step
    assert model_fraction(shot(page.locator("#preview-canvas"), "07-phone-preview.png")) > 0.01
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "08-phone-configurator.png"), full_page=True)
    page.goto(f"{stack.base}/")
    no_sideways_scrolling(page)
    wait_for(page, "document.querySelector('.card img').naturalWidth > 0")  # drawn by the server on first use
    page.screenshot(path=str(SCREENSHOTS / "09-phone-catalog.png"))
    assert not problems, problems


def test_ordering_works_with_javascript_switched_off(browser, stack):
    problems: list[str] = []
    page = open_page(browser, problems, java_script_enabled=False)
    page.goto(f"{stack.base}/configure/leg_cap")
    assert page.locator("#viewer img").count() == 1  # the <noscript> picture instead of the 3D preview
    page.locator("#f-leg_diameter").fill("4")
    page.locator("#order-button").click()
    page.wait_for_load_state()
    assert page.locator("#e-leg_diameter").inner_text().startswith("4 mm is too short: the leg diameter must be")
    assert page.locator("#f-leg_diameter").input_value() == "4"
    page.locator("#f-leg_diameter").fill("27.3")
    page.locator("#order-button").click()
    page.locator("#c-name").fill("Alan Turing")
    page.locator("#c-email").fill("alan@example.com")
    page.locator("#place-order").click()
    page.wait_for_url("**/confirmation?token=*")
    assert "is placed" in page.locator("main").inner_text()
    page.locator("#tracking-link").click()
    assert page.locator("[data-role='state']").inner_text() in ("files waiting to be made", "files being made",
                                                                "files checked")
    shot(page.locator("main"), "10-no-javascript-tracking.png")
    assert not problems, problems


@pytest.mark.parametrize("size", SIZES)
def test_a_customer_who_works_in_inches_is_answered_in_inches(browser, stack, size):
    """Issue 13: "6ft" typed in the box is 6 ft (not 6), the error and the limits are in inches, and the checkout
    and confirmation show inches; axe finds nothing on any of the pages."""
    problems: list[str] = []
    page = open_page(browser, problems, **SIZES[size])
    page.goto(f"{stack.base}/configure/bookcase")
    wait_for(page, "window.__preview && window.__preview.done >= 1", timeout=120)
    page.locator("input[name='units'][value='in']").check()
    height = page.locator("#f-height")
    assert height.get_attribute("inputmode") == "text" and height.get_attribute("type") == "text"
    assert page.locator("[data-field='height'] .allowed").inner_text() == "Allowed: 11.9 to 94.4 in."
    height.fill("6")
    height.press("Tab")
    wait_for(page, "!document.getElementById('e-height').hidden")
    assert page.locator("#e-height").inner_text() == "6 in is too short: the height must be 11.9 to 94.4 in"
    assert not axe_violations(page), axe_violations(page)
    shot(page.locator("[data-field='height']"), f"11-inches-error-{size}.png")
    done = page.evaluate("window.__preview.done")
    height.fill("6ft")
    height.press("Tab")
    wait_for(page, f"window.__preview.done > {done}", timeout=120)
    assert page.locator("#e-height").is_hidden()
    assert "72 in" in page.locator("#dimensions").inner_text() or " × 72" in page.locator("#dimensions").inner_text()
    page.locator("input[name='units'][value='mm']").check()
    assert height.input_value() == "1828.8"  # the server read "6ft"; switching units keeps it exact
    page.locator("input[name='units'][value='in']").check()
    assert height.input_value() == "72"
    page.locator("#order-button").click()
    page.wait_for_url("**/configure/bookcase")
    summary = page.locator("table.parameters").inner_text()
    assert "72 in" in summary and "1828.8" not in summary
    assert not axe_violations(page), axe_violations(page)
    page.locator("#c-name").fill("Grace Hopper")
    page.locator("#c-email").fill("grace@example.com")
    page.locator("#place-order").click()
    page.wait_for_url("**/confirmation?token=*")
    text = page.locator("main").inner_text()
    assert "72 in" in text and "1828.8" not in text
    assert not axe_violations(page), axe_violations(page)
    shot(page.locator("main"), f"12-inches-confirmation-{size}.png")
    page.locator("#tracking-link").click()
    page.wait_for_url("**/track/*")
    assert "72 in" in page.locator("details table.parameters").text_content()  # folded away under Parameters
    assert not axe_violations(page), axe_violations(page)
    no_sideways_scrolling(page)
    assert not problems, problems


@pytest.mark.parametrize("size", SIZES)
def test_an_unknown_product_and_a_mistyped_link_get_a_page_with_a_way_back(browser, stack, size):
    problems: list[str] = []
    page = open_page(browser, problems, **SIZES[size])
    response = page.goto(f"{stack.base}/configure/bookcasee")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "We could not find that page"
    assert "no product called “bookcasee”" in page.locator("main").inner_text()
    assert not axe_violations(page), axe_violations(page)
    shot(page.locator("main"), f"13-not-found-{size}.png")
    assert page.goto(f"{stack.base}/track/0123456789abcdef?token=mistyped").status == 404
    assert "tracking link from your order confirmation" in page.locator("main").inner_text()
    assert not axe_violations(page), axe_violations(page)
    no_sideways_scrolling(page)
    page.locator("main a.button").click()  # the way back: the catalog
    page.wait_for_url(f"{stack.base}/", wait_until="commit")
    assert not [p for p in problems if "404" not in p], problems


def test_sheet_thicknesses_follow_the_routers_stock_when_the_material_changes(browser, stack):
    """With a router stocking oak in 18 and 22 mm and birch plywood in 18 mm, the wall shelf's board thickness
    offers only those; choosing birch plywood with 22 mm selected moves it to the stocked 18 mm."""
    import base64
    import json
    import urllib.request

    from tests.parametric import conftest as tools

    record = tools.router_record(name="stock-router")
    record["stock"] = [{"material": m, "thickness_mm": t, "size_mm": [2500, 1250]}
                       for m, t in (("oak", 18), ("oak", 22), ("birch_plywood", 18))]
    auth = {"Authorization": "Basic " + base64.b64encode(":".join(STAFF).encode()).decode(),
            "Content-Type": "application/json"}
    added = urllib.request.urlopen(urllib.request.Request(f"{stack.base}/api/v1/staff/machines", method="POST",
                                                          data=json.dumps(record).encode(), headers=auth))
    assert added.status == 201
    try:
        problems: list[str] = []
        page = open_page(browser, problems)
        page.goto(f"{stack.base}/configure/wall_shelf")
        page.locator("#f-material").select_option("oak")
        thickness = page.locator("#f-board_thickness")
        enabled = "[...document.querySelectorAll('#f-board_thickness option')].filter(o => !o.disabled)" \
                  ".map(o => o.value).join(' ')"
        assert wait_for(page, f"{enabled} === '18 22'")
        thickness.select_option("22")
        page.locator("#f-material").select_option("birch_plywood")
        assert wait_for(page, f"{enabled} === '18'")
        assert thickness.input_value() == "18"
        assert not problems, problems
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{stack.base}/api/v1/staff/machines/stock-router",
                                                      method="DELETE", headers=auth))


def same_camera(a: dict, b: dict) -> bool:
    return all(abs(x - y) < 1e-6 for key in ("position", "target") for x, y in zip(a[key], b[key], strict=True)) \
        and abs(a["zoom"] - b["zoom"]) < 1e-9


@pytest.mark.parametrize("size", SIZES)
def test_a_saved_link_restores_the_configuration_and_the_camera_stays_put(browser, stack, size):
    """Issue 13 item 9: the customer turns and zooms the preview, changes a value (typed in inches): the new model
    comes in under the same camera. The page's link (copied with its button) opens the same configuration, inches
    as typed, units and preset, also in a browser without JavaScript; axe finds nothing."""
    from urllib.parse import parse_qsl, urlsplit

    problems: list[str] = []
    page = open_page(browser, problems, **SIZES[size])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.base)
    page.goto(f"{stack.base}/configure/wall_shelf?preset=bookshelf")
    wait_for(page, "window.__preview && window.__preview.done >= 1", timeout=300)
    framed = page.evaluate("window.__preview.camera()")
    canvas = page.locator("#preview-canvas")
    box = canvas.bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(*centre)
    page.mouse.down()
    page.mouse.move(centre[0] + 60, centre[1] + 25, steps=6)  # turn
    page.mouse.up()
    page.mouse.wheel(0, -300)  # zoom in
    canvas.focus()
    canvas.press("ArrowLeft")  # pan: the target moves off the model's centre
    time.sleep(0.3)
    left = page.evaluate("window.__preview.camera()")
    assert not same_camera(framed, left), "the test could not move the camera"
    done = page.evaluate("window.__preview.done")
    page.locator("input[name='units'][value='in']").check()
    width = page.locator("#f-width")
    width.fill("31.4999")
    width.press("Tab")
    wait_for(page, f"window.__preview.done > {done}", timeout=300)
    glb = page.evaluate("window.__preview.last.glb")
    after = page.evaluate("window.__preview.camera()")
    assert same_camera(left, after), (left, after)
    assert not axe_violations(page), axe_violations(page)

    link = page.locator("#share-link").input_value()
    query = dict(parse_qsl(urlsplit(link).query, keep_blank_values=True))
    assert (query["params.width"], query["units"], query["preset"]) == ("31.4999", "in", "bookshelf")
    assert "csrf_token" not in query
    page.locator("#share-copy").click()
    wait_for(page, "document.getElementById('share-status').textContent === 'Link copied.'")
    assert page.evaluate("navigator.clipboard.readText()") == link
    shot(page.locator("#share"), f"13-share-link-{size}.png")

    page.locator("#view-fit").click()  # framed again on request
    assert not same_camera(after, page.evaluate("window.__preview.camera()"))

    again = open_page(browser, problems, **SIZES[size])  # the link in another browser
    again.goto(link)
    wait_for(again, "window.__preview && window.__preview.done >= 1", timeout=300)
    assert again.locator("#f-width").input_value() == "31.4999"
    assert again.locator("input[name='units'][value='in']").is_checked()
    assert again.locator(".presets a[aria-current='true']").inner_text() == "Bookshelf" or \
        "bookshelf" in (again.locator(".presets a[aria-current='true']").get_attribute("href") or "")
    assert again.evaluate("window.__preview.last.glb") == glb  # the same model: the same configuration
    assert dict(parse_qsl(urlsplit(again.locator("#share-link").input_value()).query,
                          keep_blank_values=True)) == query
    assert not axe_violations(again), axe_violations(again)

    plain = open_page(browser, problems, java_script_enabled=False, **SIZES[size])
    plain.goto(link)
    assert plain.locator("#f-width").input_value() == "31.4999"
    plain.locator("#f-width").fill("32.125")
    plain.get_by_role("button", name="Make the link for the values above").click()
    plain.wait_for_url("**/configure/wall_shelf?*#share")
    made = plain.locator("#share-link").input_value()
    assert made == plain.url.split("#")[0]
    assert dict(parse_qsl(urlsplit(made).query, keep_blank_values=True)) == {**query, "params.width": "32.125"}
    # No axe here: it runs as a script, and Playwright's evaluate never returns on a page with scripts off (the
    # test hung there). The same page's HTML was checked with scripts on above.
    no_sideways_scrolling(page)
    assert not problems, problems
