"""Issue 13 in a real browser (Debian's Chromium via Playwright, against ``parametric serve`` with its worker), on a
laptop-sized and a phone-sized screen: the customer's downloads (each file and the "download all" zip, saved under
names that say order, item, product, part and copies), tracking in the workshop's words as the page updates itself,
and the staff's "not sent yet" for a job whose printer host cannot be reached. axe-core finds nothing on the
customer's pages; the staff page's findings are asserted as they stand (the issue does not cover staff pages)."""

from __future__ import annotations

import io
import json
import re
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from web import jobs
from web.db import Database
from web.models import Job, OrderItem

from .test_browser import (  # noqa: F401  the module's fixtures
    SCREENSHOTS,
    SIZES,
    STAFF,
    axe_violations,
    browser,
    check_stl,
    no_sideways_scrolling,
    open_page,
    stack,
    staff_sign_in,
    wait_for,
)
from .test_manufacturing import PRINTER, stored_job

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture(scope="module")
def shop_database(stack) -> Iterator[Database]:  # noqa: F811
    """The live server's own database (SQLite in its instance folder), for moving jobs as the workshop does."""
    database = Database(f"sqlite:///{stack.folder / 'instance' / 'parametric.db'}")
    try:
        yield database
    finally:
        database.dispose()


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def order_through_the_shop(page: Any, base: str, template: str, material: str | None = None,
                           name: str = "Grace Hopper") -> str:
    """Configure ``template`` at its defaults (in ``material``), check out, and follow the confirmation's tracking
    link; the order's id."""
    page.goto(f"{base}/configure/{template}")
    wait_for(page, "window.__preview && window.__preview.done >= 1", timeout=240)
    if material is not None:
        page.locator("#f-material").select_option(material)
    wait_for(page, "!document.getElementById('order-button').disabled", timeout=240)
    page.locator("#order-button").click()
    page.wait_for_selector("#place-order", timeout=240_000)  # the price page refreshes itself until it is there
    page.locator("#c-name").fill(name)
    page.locator("#c-email").fill("grace@example.com")
    page.locator("#place-order").click()
    page.wait_for_url("**/confirmation?token=*")
    page.locator("#tracking-link").click()
    page.wait_for_url("**/track/*")
    return page.locator(".order-id").inner_text().strip()


def wait_for_files(page: Any, timeout: float = 300) -> None:
    """The tracking page shows the files by itself (its polling) once they are made."""
    wait_for(page, "!document.querySelector('[data-role=\"files\"]').hidden && "
                   "!document.querySelector('[data-role=\"archive\"]').hidden", timeout=timeout)


# -- 1. downloads ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_the_customer_downloads_each_file_and_all_of_them_under_names_that_say_what_they_are(
        browser, stack, size):  # noqa: F811
    problems: list[str] = []
    page = open_page(browser, problems, accept_downloads=True, **SIZES[size])
    order_id = order_through_the_shop(page, stack.base, "leg_cap", "pla")
    wait_for_files(page)
    stem = f"order-{order_id[:8]}_item-1_leg_cap"
    links = page.locator("ul.files a")
    shown = links.all_inner_texts()
    assert len(shown) >= 3, shown
    for name in shown:  # order, item, product, part and copies: order-1a2b3c4d_item-1_leg_cap_cap_x1.stl
        assert re.fullmatch(rf"{stem}_[A-Za-z0-9._-]+?(_x\d+)?\.(stl|step|3mf|svg)", name), name
    assert all(a == b for a, b in zip(shown, links.evaluate_all("links => links.map(a => a.download)"), strict=True))
    assert any(name.endswith(".stl") for name in shown) and any(name.endswith(".step") for name in shown)
    assert not axe_violations(page), axe_violations(page)
    no_sideways_scrolling(page)
    screenshot(page, f"30-{size}-tracking-downloads.png")

    stl_link = page.locator("ul.files a", has_text=re.compile(r"\.stl$")).first
    with page.expect_download() as waiting:
        stl_link.click()
    download = waiting.value
    assert download.suggested_filename == stl_link.inner_text()
    check_stl(Path(download.path()).read_bytes())

    with page.expect_download() as waiting:
        page.locator("[data-role='archive'] a").click()
    archive = waiting.value
    assert archive.suggested_filename == f"{stem}.zip"
    with zipfile.ZipFile(Path(archive.path())) as bundle:
        assert bundle.testzip() is None  # every entry's CRC is right
        entries = bundle.namelist()
        assert sorted(entries) == sorted([f"{stem}/{name}" for name in shown] + [f"{stem}/{stem}_manifest.json"])
        sizes = dict(zip(shown, page.locator("ul.files li span.muted").all_inner_texts(), strict=True))
        for name in shown:
            data = bundle.read(f"{stem}/{name}")
            assert f"{len(data) / 1024:.1f} KB" in sizes[name], (name, len(data), sizes[name])
            if name.endswith(".stl"):
                check_stl(data)
            elif name.endswith(".step"):
                assert data.startswith(b"ISO-10303-21;")
            elif name.endswith(".3mf"):
                with zipfile.ZipFile(io.BytesIO(data)) as model:
                    assert "3D/3dmodel.model" in model.namelist()
            elif name.endswith(".svg"):
                assert b"<svg" in data[:2000]
        manifest = json.loads(bundle.read(f"{stem}/{stem}_manifest.json"))
        assert manifest["parts"]
        for part in manifest["parts"]:  # each part's STL says the part and how many copies the order needs
            assert f"{stem}_{part['name']}_x{part.get('quantity', 1)}.stl" in shown, (part, shown)
        assert bundle.read(f"{stem}/{stl_link.inner_text()}") == Path(download.path()).read_bytes()
    assert not problems, problems


# -- 2. tracking in workshop words -----------------------------------------------------------------------------


def production_text(page: Any) -> str:
    return page.locator("[data-role='production']").inner_text()


@pytest.mark.parametrize("size", SIZES)
def test_tracking_says_in_workshop_words_what_is_happening_as_the_page_updates_itself(
        browser, stack, shop_database, size):  # noqa: F811
    import base64

    problems: list[str] = []
    page = open_page(browser, problems, **SIZES[size])
    order_id = order_through_the_shop(page, stack.base, "wall_shelf", "birch_plywood", name="Ada Lovelace")
    heading = page.locator("article.line h2").inner_text()
    assert heading == "1 × Wall shelf in Birch plywood", heading
    assert "birch_plywood" not in page.locator("main").inner_text()
    assert page.locator("[data-role='state']").inner_text() in ("files waiting to be made", "files being made",
                                                                "files checked", "held up; our workshop is on it")
    wait_for_files(page)
    # checked, not "ready": nothing is made yet (no machine is set up here, so the workshop has it in hand)
    assert page.locator("[data-role='state']").inner_text() in ("files checked", "held up; our workshop is on it")
    assert not axe_violations(page), axe_violations(page)

    # The workshop takes it on: the board is on the router, the bracket waits for a printer (as the server-side
    # test puts them; the jobs the worker planned, if any, are replaced in the same transaction).
    with shop_database.transaction() as session:
        item = session.query(OrderItem).filter_by(order_id=order_id).one()
        session.query(Job).filter_by(item_id=item.id).delete()
        board = Job(item_id=item.id, part="board", kind="cnc", machine="shop-router", state="printing",
                    estimates={"machining_time_s": 4140.0}, files={})
        bracket = Job(item_id=item.id, part="bracket", kind="fdm", machine="mk3", state="ready", estimates={},
                      files={})
        cleat = Job(item_id=item.id, part="cleat", kind="fdm", machine="mk3", state="printing", progress=40.0,
                    estimates={"print_time_s": 1500.0}, files={})
        session.add_all([board, bracket, cleat])
        session.flush()
        board_id, bracket_id, cleat_id = board.id, bracket.id, cleat.id
    page.reload()
    text = production_text(page)
    assert "board: being cut" in text and "about 1 h 09 min of cutting" in text
    assert "bracket: waiting for a machine" in text
    assert "cleat: being printed (40%) about 25 min 00 s of printing" in text, text
    assert page.locator("#order-status").inner_text() == "being cut and being printed"
    assert page.locator("[data-role='state']").inner_text() == "being cut and being printed"
    assert "birch_plywood" not in page.locator("main").inner_text()
    assert not axe_violations(page), axe_violations(page)
    screenshot(page, f"31-{size}-tracking-being-cut.png")

    # The workshop cancels the bracket, saying why, and finishes the board: the open page shows it by itself.
    page.evaluate("window.__marker = 'same page'")
    polls = page.evaluate("window.__tracking.polls")
    auth = {"Authorization": "Basic " + base64.b64encode(":".join(STAFF).encode()).decode()}
    reason = "the bracket is out of stock; we will refund it"
    status, body, _ = stack.request("POST", f"/api/v1/staff/jobs/{bracket_id}/cancel", {"reason": reason},
                                    headers=auth)
    assert status == 200, body
    assert jobs.transition(shop_database, board_id, "done")
    assert jobs.transition(shop_database, cleat_id, "done")
    wait_for(page, "document.getElementById('order-status').textContent === 'made: ready to ship'", timeout=40)
    assert page.evaluate("window.__marker") == "same page" and page.evaluate("window.__tracking.polls") > polls
    text = production_text(page)
    assert f"bracket: cancelled: {reason}" in text, text
    assert "board: cut" in text and "about 1 h 09 min of cutting" in text, text
    assert "cleat: printed about 25 min 00 s of printing" in text, text
    assert page.locator("[data-role='state']").inner_text() == "made: ready to ship"
    assert "birch_plywood" not in page.locator("main").inner_text()
    assert not axe_violations(page), axe_violations(page)
    no_sideways_scrolling(page)
    screenshot(page, f"32-{size}-tracking-ready-to-ship.png")
    page.reload()  # the server says the same as the live update
    assert page.locator("#order-status").inner_text() == "made: ready to ship"
    assert production_text(page) == text
    assert not problems, problems


# -- 3. staff: "not sent yet" ----------------------------------------------------------------------------------


def closed_port() -> int:
    """A local port nothing listens on: a real connection to it is refused, as to a print host that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("size", SIZES)
def test_staff_see_not_sent_yet_with_why_and_when_for_a_printer_that_cannot_be_reached(
        browser, stack, shop_database, size, tmp_path):  # noqa: F811
    import base64

    auth = {"Authorization": "Basic " + base64.b64encode(":".join(STAFF).encode()).decode()}
    printer = {**PRINTER, "name": "mk3-down",
               "host": {"kind": "octoprint", "url": f"http://127.0.0.1:{closed_port()}", "api_key": "secret-key"}}
    status, body, _ = stack.request("POST", "/api/v1/staff/machines?replace=1", printer, headers=auth)
    assert status == 201, body
    gcode = tmp_path / "bracket.gcode"
    gcode.write_text("; a bracket\nG28\nG1 X10 Y10 F3000\nM84\n")
    job_id = stored_job(shop_database, machine="mk3-down", state="ready", files={"gcode": str(gcode)})

    problems: list[str] = []
    page = open_page(browser, problems, **SIZES[size])
    staff_sign_in(page, stack.base, "/staff/manufacturing")
    no_sideways_scrolling(page)  # on a phone the wide job tables scroll in their own box, not the whole page
    row = page.locator(f"#job-{job_id}")
    state = row.locator("[data-role='state']")
    assert state.inner_text() == "ready" or state.inner_text().startswith("not sent yet: ")  # the dispatcher's try
    with page.expect_navigation():
        row.locator("form[action$='/send'] button").click()  # staff send it now: it fails now, retried later
    flash = page.locator(".flashes").inner_text()
    assert "not delivered yet, trying again later (OctoPrint at " in flash and "will retry" not in flash, flash
    label = state.inner_text()
    match = re.fullmatch(r"not sent yet: (.+); retrying in (\d+) s", label)
    assert match, label
    reason = match.group(1)
    assert reason.startswith(f"OctoPrint at {printer['host']['url']}: ") and "Connection refused" in reason, reason
    assert "will retry" not in label  # said once, with when: "retrying in 5 s"
    assert 0 < int(match.group(2)) <= 300  # the backoff: 5 s, 10 s, 20 s ... at most 5 min
    progress = row.locator("[data-role='progress']").inner_text()
    assert progress == "not sent yet" and "0.0 %" not in row.inner_text() and "sent, " not in row.inner_text()
    assert jobs.get(shop_database, job_id).last_error.startswith(reason)
    screenshot(page, f"33-{size}-staff-not-sent-yet.png")

    # the page's own live update keeps saying it (never the progress bar of a job that is on its printer)
    polls = page.evaluate("window.__manufacturing.polls")
    wait_for(page, f"window.__manufacturing.polls > {polls}", timeout=20)
    assert re.fullmatch(rf"not sent yet: {re.escape(reason)}; retrying (in \d+ s|in \d+ min \d+ s|now)",
                        state.inner_text()), state.inner_text()
    assert row.locator("[data-role='progress']").inner_text() == "not sent yet"
    assert row.locator("progress").count() == 0

    found = axe_violations(page)
    print(f"axe on the staff manufacturing page ({size}): {found}")
    assert found == [], found
    assert not problems, problems


def test_the_pages_live_durations_are_the_servers_words(browser, stack):  # noqa: F811
    """The configurator's live quote and the tracking page's updates word machine times in the browser. They
    had their own copies of the wording, and the tracking page's rounded half-seconds up where the server
    (Python's round) rounds them to even: 2.5 s was '3 s' there and '2 s' on the server's pages. Both now import
    ``web/static/units.js``, checked here against ``parametric.units.format_duration`` itself."""
    from parametric.units import format_duration

    seconds = [0, 0.4, 0.5, 1.5, 2.5, 29.5, 59.4, 59.5, 60, 89.5, 90, 149.5, 512, 3569.4, 3569.5, 3570, 3599.5,
               3600, 3629, 3630, 3659.9, 4799.5, 7199.5, 86399, 123456.5]
    problems: list[str] = []
    page = open_page(browser, problems)
    page.goto(f"{stack.base}/")
    shown = page.evaluate("""async (seconds) => {
        const { duration } = await import('/static/units.js');
        return seconds.map((s) => [duration(s), duration(s, { precise: false })]);
    }""", seconds)
    expected = [[format_duration(s), format_duration(s, precise=False)] for s in seconds]
    differ = [(s, got, want) for s, got, want in zip(seconds, shown, expected, strict=True) if got != want]
    assert not differ, differ
    for script in ("configurator.js", "track.js"):
        source = (Path(__file__).parents[2] / "web" / "static" / script).read_text()
        assert "import { duration } from './units.js';" in source and "function duration" not in source, script
    assert not problems, problems
