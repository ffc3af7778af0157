"""The staff dashboard's manufacturing pages: machines added, edited and removed through forms (read by the
core's own spec parsers, checked by ``machine_from_dict``), the API key never shown, CSRF on every form, and
the live state the page's script polls (``state.json``); with a real browser at the end."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from parametric.machines import Printer, Router, default_feeds, machine_from_dict
from web import jobs, machines
from web.models import Job

from .conftest import STAFF, services
from .test_manufacturing import PRINTER, make_job, stored_job
from .test_pages import csrf_token, error_for, form_values, login, page

SECRET = "s3cret-octoprint-key-0f9a"
MACHINES = "/staff/manufacturing/machines"


def staff_headers() -> dict[str, str]:
    """HTTP basic auth for the API, for the account :func:`login` makes."""
    return {"Authorization": "Basic " + base64.b64encode(":".join(STAFF).encode()).decode()}


def submit(client: FlaskClient, url: str, changes: dict[str, Any]) -> Any:
    """Fill in the form at ``url`` as a browser would (its CSRF token, its defaults) with ``changes``, and send it."""
    document = page(client.get(url))
    values: dict[str, Any] = form_values(document, "machine-form")
    values.update(changes)
    return client.post(document.get_element_by_id("machine-form").action, data=values)


def shown_value(document: Any, name: str) -> str:
    (element,) = document.xpath(f"//form[@id='machine-form']//*[@name='{name}']")
    return element.text_content() if element.tag == "textarea" else element.get("value", "")


def database(app: Flask) -> Any:
    return services(app).database


@pytest.fixture
def staff_client(app: Flask, client: FlaskClient) -> FlaskClient:
    assert login(client, app).status_code == 303
    return client


# -- printers ----------------------------------------------------------------------------------------------


def test_a_printer_added_and_edited_through_the_form_keeps_its_api_key_secret(app, staff_client):
    client = staff_client
    document = page(client.get(MACHINES))
    assert document.get_element_by_id("add-printer").get("href") == f"{MACHINES}/new/printer"
    response = submit(client, f"{MACHINES}/new/printer", {
        "name": "mk4", "build_volume": "250x210x220", "nozzle": "0.6", "materials": ["pla", "petg"],
        "flavor": "klipper", "octoprint_url": "http://octopi.local/", "api_key": SECRET})
    assert response.status_code == 303 and response.headers["Location"] == MACHINES
    stored = machines.get(database(app), "mk4")
    assert isinstance(stored, Printer)
    assert (stored.build_volume_mm, stored.nozzle_diameter_mm, stored.materials, stored.gcode_flavor) == \
        ((250, 210, 220), 0.6, ["pla", "petg"], "klipper")
    assert stored.filament_diameter_mm == 1.75  # the form's default
    assert (stored.host.settings["url"], stored.host.settings["api_key"]) == ("http://octopi.local", SECRET)
    listed = client.get("/api/v1/staff/machines", headers=staff_headers()).get_json()["machines"]
    assert [m["name"] for m in listed] == ["mk4"] and listed[0]["host"] == {"kind": "octoprint",
                                                                             "url": "http://octopi.local"}
    listing = client.get(MACHINES).get_data(as_text=True)
    assert "Added printer mk4: 250 x 210 x 220 mm" in listing

    # the edit form is the add form, filled in: everything but the key
    edit_url = f"{MACHINES}/mk4/edit"
    edit = page(client.get(edit_url))
    assert shown_value(edit, "build_volume") == "250x210x220" and shown_value(edit, "nozzle") == "0.6"
    assert edit.xpath("//input[@name='name']/@readonly") and shown_value(edit, "api_key") == ""
    assert sorted(edit.xpath("//input[@name='materials' and @checked]/@value")) == ["petg", "pla"]
    assert "A key is stored" in edit.get_element_by_id("h-api_key").text_content()
    # an empty key field keeps the stored key; the name cannot be changed by the form
    response = submit(client, edit_url, {"name": "other", "materials": ["tpu"], "build_volume": "300x300x300"})
    assert response.status_code == 303
    assert [m.name for m in machines.all_machines(database(app))] == ["mk4"]
    stored = machines.get(database(app), "mk4")
    assert stored.materials == ["tpu"] and stored.build_volume_mm == (300, 300, 300)
    assert stored.host.settings["api_key"] == SECRET
    assert submit(client, edit_url, {"api_key": "a-new-key"}).status_code == 303
    assert machines.get(database(app), "mk4").host.settings["api_key"] == "a-new-key"
    assert submit(client, edit_url, {"octoprint_url": ""}).status_code == 303  # no URL: no host (key gone too)
    assert machines.get(database(app), "mk4").host is None
    assert client.get(f"{MACHINES}/nothing/edit").status_code == 404


def test_the_api_key_never_reaches_a_page(app, staff_client):
    client = staff_client
    machines.add(database(app), machines.parse({**PRINTER, "host": {**PRINTER["host"], "api_key": SECRET}}))
    job_id = make_job(app, state="ready")
    pages = [client.get(url) for url in ("/staff/manufacturing", MACHINES, f"{MACHINES}/mk3/edit",
                                         "/staff/manufacturing/state.json", f"{MACHINES}/new/printer")]
    # a refused edit (bad nozzle) and a refused new printer with a key typed in: the key is not echoed back
    pages.append(submit(client, f"{MACHINES}/mk3/edit", {"nozzle": "wide", "api_key": SECRET + "-new"}))
    pages.append(submit(client, f"{MACHINES}/new/printer", {"name": "x", "api_key": SECRET}))
    assert [response.status_code for response in pages] == [200] * 5 + [422] * 2
    for response in pages:
        assert SECRET not in response.get_data(as_text=True)
    assert f'id="job-{job_id}"' in pages[0].get_data(as_text=True)
    assert machines.get(database(app), "mk3").host.settings["api_key"] == SECRET  # the refused edit changed nothing


def test_bad_printer_input_is_shown_next_to_each_field_with_the_values_kept(app, staff_client):
    client = staff_client
    response = submit(client, f"{MACHINES}/new/printer", {
        "name": "mk/4", "build_volume": "250x210", "nozzle": "wide", "materials": ["pla", "oak"],
        "flavor": "gcode", "octoprint_url": "octopi.local", "api_key": SECRET})
    assert response.status_code == 422
    document = page(response)
    assert "no slashes" in error_for(document, "name")
    assert "3 positive sizes in mm" in error_for(document, "build_volume")
    assert error_for(document, "nozzle") == "must be a number in mm"
    assert "'oak' is not a printing material" in error_for(document, "materials")
    assert "'gcode' is not allowed" in error_for(document, "flavor")
    assert "must start with http://" in error_for(document, "octoprint_url")
    assert document.get_element_by_id("f-nozzle").get("aria-invalid") == "true"
    # every value as typed, except the key
    assert (shown_value(document, "name"), shown_value(document, "build_volume"), shown_value(document, "nozzle"),
            shown_value(document, "octoprint_url"), shown_value(document, "api_key")) == \
        ("mk/4", "250x210", "wide", "octopi.local", "")
    assert document.xpath("//input[@name='materials' and @checked]/@value") == ["pla"]  # oak is not offered
    assert "Traceback" not in response.get_data(as_text=True)
    assert machines.all_machines(database(app)) == []
    # a URL without a key, and a taken name
    machines.add(database(app), machines.parse(PRINTER))
    response = submit(client, f"{MACHINES}/new/printer", {"name": "mk3", "build_volume": "250x210x210"})
    assert response.status_code == 409
    document = page(response)
    assert "already a machine named 'mk3'" in error_for(document, "name")
    response = submit(client, f"{MACHINES}/new/printer", {"name": "mk5", "build_volume": "250x210x210",
                                                          "octoprint_url": "http://octopi.local"})
    assert response.status_code == 422 and error_for(page(response), "api_key") == "required"


# -- routers -----------------------------------------------------------------------------------------------


def test_a_router_added_through_the_form_reads_the_clis_specs_with_default_feeds(app, staff_client, tmp_path):
    client = staff_client
    hot = tmp_path / "hot"
    response = submit(client, f"{MACHINES}/new/router", {
        "name": "shop-router", "bed": "2500x1250", "dialect": "linuxcnc",
        "tools": "1:6:endmill:2:22\n\n  2:5:drill  \r\n3:3:endmill:2:12:3 mm finisher\n",
        "stock": "birch_plywood:18:2500x1250\noak:19:2000x600", "feeds": "1:oak:1500:450:16000:2.5",
        "delivery": "hot_folder", "hot_folder": str(hot), "safe_height": "8", "rapid": "6000"})
    assert response.status_code == 303, error_text(response)
    router = machines.get(database(app), "shop-router")
    assert isinstance(router, Router)
    assert (router.bed_mm, router.dialect, router.safe_height_mm, router.rapid_mm_min) == \
        ((2500, 1250), "linuxcnc", 8, 6000)
    assert [(t.number, t.diameter_mm, t.type, t.flutes, t.name) for t in router.tools] == \
        [(1, 6, "endmill", 2, ""), (2, 5, "drill", 1, ""), (3, 3, "endmill", 2, "3 mm finisher")]
    # default feeds from data/cutting.toml for each stocked material, the one given line on top
    assert router.tool(1).feeds["birch_plywood"] == default_feeds("birch_plywood", 6, 2)
    assert router.tool(2).feeds["oak"] == default_feeds("oak", 5, 1, "drill")
    assert router.tool(1).feeds["oak"].feed_mm_min == 1500 and router.tool(1).feeds["oak"].stepdown_mm == 2.5
    assert (router.delivery.method, router.delivery.path) == ("hot_folder", str(hot))
    listed = client.get("/api/v1/staff/machines", headers=staff_headers()).get_json()["machines"]
    assert listed[0]["tools"][2]["name"] == "3 mm finisher" and len(listed[0]["stock"]) == 2

    # edited: the same specs come back (feeds only where they are not the defaults), and saving them unchanged
    # stores the same router; switching to download drops the folder
    edit_url = f"{MACHINES}/shop-router/edit"
    edit = page(client.get(edit_url))
    assert shown_value(edit, "tools").splitlines() == ["1:6:endmill:2:22", "2:5:drill:1:25",
                                                       "3:3:endmill:2:12:3 mm finisher"]
    assert shown_value(edit, "feeds") == "1:oak:1500:450:16000:2.5"
    assert edit.xpath("//input[@name='delivery' and @checked]/@value") == ["hot_folder"]
    assert submit(client, edit_url, {}).status_code == 303
    assert machines.get(database(app), "shop-router") == router
    assert submit(client, edit_url, {"delivery": "download"}).status_code == 303
    assert machines.get(database(app), "shop-router").delivery.method == "download"
    assert machines.get(database(app), "shop-router").delivery.path is None


def error_text(response: Any) -> str:
    document = page(response)
    return " | ".join(e.text_content().strip() for e in document.xpath("//*[@data-error-for]") if e.text_content())


def test_bad_router_input_names_the_line_of_each_bad_spec_and_keeps_the_text(app, staff_client):
    tools = "1:6:endmill:2:22\n\n1:x\n3:6:saw\n4:60"
    response = submit(staff_client, f"{MACHINES}/new/router", {
        "name": "r", "bed": "2500", "dialect": "fanuc", "tools": tools, "stock": "oak:19",
        "feeds": "1:oak:fast", "delivery": "hot_folder", "hot_folder": "", "rapid": "quick"})
    assert response.status_code == 422
    document = page(response)
    tool_errors = error_for(document, "tools")
    assert "line 3: '1:x': write NUMBER:DIAMETER" in tool_errors and "line 4: type: 'saw'" in tool_errors
    assert "line 1: 'oak:19': write MATERIAL:THICKNESS:LENGTHxWIDTH" in error_for(document, "stock")
    assert "line 1: '1:oak:fast'" in error_for(document, "feeds")
    assert "2 positive sizes" in error_for(document, "bed")
    assert "'fanuc' is not allowed" in error_for(document, "dialect")
    assert "needs the folder's path" in error_for(document, "hot_folder")
    assert "must be a number in mm/min" in error_for(document, "rapid")
    assert shown_value(document, "tools") == tools and shown_value(document, "bed") == "2500"
    assert machines.all_machines(database(app)) == []
    # once the specs read, what machine_from_dict refuses in a tool is named by its line too
    response = submit(staff_client, f"{MACHINES}/new/router", {"name": "r", "bed": "2500x1250",
                                                               "tools": "1:6\n\n2:60:endmill:2:22"})
    assert response.status_code == 422
    assert "line 3: diameter_mm: 60 mm is out of range" in error_for(page(response), "tools")


# -- removing, CSRF ----------------------------------------------------------------------------------------


def remove_form(client: FlaskClient, name: str) -> Any:
    forms = page(client.get(MACHINES)).xpath(f"//form[contains(@action, '/machines/{name}/remove')]")
    return forms[0] if forms else None


def test_a_machine_is_removed_unless_a_job_is_on_it_and_its_waiting_jobs_stay_listed(app, staff_client):
    client = staff_client
    machines.add(database(app), machines.parse(PRINTER))
    machines.add(database(app), machine_from_dict({**PRINTER, "name": "spare", "host": None}))
    printing = make_job(app, state="printing", progress=40.0)
    assert remove_form(client, "mk3") is None  # no button: the page says why
    assert "Cannot be removed while it has jobs sent or in progress" in client.get(MACHINES).get_data(as_text=True)
    form = remove_form(client, "spare")
    assert form is not None and form.get("data-confirm") == "Remove spare?"
    response = client.post(f"{MACHINES}/mk3/remove", data={"csrf_token": form.inputs["csrf_token"].value})
    assert response.status_code == 303
    assert "Not removed: mk3 has 1 job sent to it or in progress on it" in client.get(MACHINES).get_data(as_text=True)
    assert machines.get(database(app), "mk3") is not None

    jobs.transition(database(app), printing, "done")
    waiting = make_job(app, state="ready")
    form = remove_form(client, "mk3")
    assert "1 waiting job(s) can then no longer be made" in form.get("data-confirm")
    assert client.post(form.action, data={"csrf_token": form.inputs["csrf_token"].value}).status_code == 303
    assert machines.get(database(app), "mk3") is None
    listing = client.get(MACHINES).get_data(as_text=True)
    assert "Removed mk3. Its 1 job waiting in the queue can no longer be made there" in listing
    queue_page = page(client.get("/staff/manufacturing"))
    assert queue_page.get_element_by_id("no-machine").get_element_by_id(f"job-{waiting}") is not None
    assert client.post(f"{MACHINES}/mk3/remove", data={"csrf_token": csrf_token(queue_page)}).status_code == 303
    assert "There is no machine called mk3." in client.get(MACHINES).get_data(as_text=True)


def test_every_machine_form_needs_its_csrf_token(app, staff_client):
    client = staff_client
    machines.add(database(app), machines.parse(PRINTER))
    record = {"name": "p2", "build_volume": "200x200x200"}
    for url, data in ((f"{MACHINES}/new/printer", record), (f"{MACHINES}/mk3/edit", {**record, "nozzle": "0.8"}),
                      (f"{MACHINES}/mk3/remove", {}),
                      (f"{MACHINES}/new/printer", {**record, "csrf_token": "forged"})):
        response = client.post(url, data=data)
        assert response.status_code == 400, url
        assert "security token" in response.get_data(as_text=True)
    assert [(m.name, m.nozzle_diameter_mm) for m in machines.all_machines(database(app))] == [("mk3", 0.4)]


def test_the_machine_pages_need_a_login(app, client):
    machines.add(database(app), machines.parse(PRINTER))
    token = csrf_token(page(client.get("/staff/login")))
    for url in (MACHINES, f"{MACHINES}/new/printer", f"{MACHINES}/mk3/edit", "/staff/manufacturing/state.json"):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login?next="), url
    for url in (f"{MACHINES}/new/router", f"{MACHINES}/mk3/edit", f"{MACHINES}/mk3/remove"):
        response = client.post(url, data={"csrf_token": token, "name": "x", "bed": "100x100"})
        assert response.status_code == 302 and "/staff/login" in response.headers["Location"], url
    assert [m.name for m in machines.all_machines(database(app))] == ["mk3"]


# -- live state ----------------------------------------------------------------------------------------------


def test_state_json_follows_a_jobs_state_and_progress_and_says_when_the_page_must_reload(app, staff_client):
    client = staff_client
    machines.add(database(app), machines.parse(PRINTER))
    job_id = make_job(app, state="ready", files={"gcode": "/nonexistent.gcode"}, estimates={"print_time_s": 600})
    queue_page = page(client.get("/staff/manufacturing"))
    live = queue_page.get_element_by_id("live")
    assert live.get("data-state-url") == "/staff/manufacturing/state.json"
    assert queue_page.get_element_by_id("refresh").get("href") == "/staff/manufacturing"  # without JavaScript
    assert queue_page.xpath("//script[@type='module']/@src") == ["/static/manufacturing.js"]
    row = queue_page.get_element_by_id(f"job-{job_id}")
    visible = {form.action.rsplit("/", 1)[1] for form in row.iter("form") if form.get("hidden") is None}
    assert visible == {"send", "cancel", "done"}  # retry is on the page, hidden until the job fails

    def state() -> dict[str, Any]:
        response = client.get("/staff/manufacturing/state.json")
        assert response.status_code == 200 and response.mimetype == "application/json"
        assert response.headers["Cache-Control"] == "no-store"
        return response.get_json()

    first = state()
    assert first["layout"] == live.get("data-layout")
    assert first["jobs"] == [{"id": job_id, "machine": "mk3", "kind": "fdm", "state": "ready", "label": "ready",
                              "progress": 0.0, "not_sent": False, "last_error": ""}]
    # the printer takes it and reports progress: shown in place, no reload
    assert jobs.transition(database(app), job_id, "sent", expect=("ready",))
    assert jobs.transition(database(app), job_id, "printing", progress=12.5)
    with database(app).transaction() as session:
        session.get(Job, job_id).progress = 42.04
    now = state()
    assert (now["jobs"][0]["state"], now["jobs"][0]["progress"]) == ("printing", 42.0)
    assert now["layout"] == first["layout"]
    # a new job, then the job finished: the page must reload
    other = make_job(app)
    with_new = state()
    assert [j["id"] for j in with_new["jobs"]] == [job_id, other] and with_new["layout"] != now["layout"]
    jobs.transition(database(app), job_id, "done")
    finished = state()
    assert [j["id"] for j in finished["jobs"]] == [other] and finished["layout"] != with_new["layout"]
    # slicing the other job gives it files and estimates: its row changes, the page reloads
    jobs.transition(database(app), other, "slicing")
    assert state()["layout"] == finished["layout"]
    with database(app).transaction() as session:
        session.get(Job, other).files = {"gcode": "/elsewhere.gcode"}
    assert state()["layout"] != finished["layout"]
    # editing a machine changes the page too; the page loaded now carries the current fingerprint
    machines.add(database(app), machines.parse({**PRINTER, "materials": ["tpu"]}), replace=True)
    latest = state()
    assert page(client.get("/staff/manufacturing")).get_element_by_id("live").get("data-layout") == latest["layout"]


# -- in a real browser ---------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.browser
def test_the_page_follows_a_job_live_and_a_machine_is_added_in_the_browser(browser_stack):
    from .test_browser import open_page, shot, wait_for

    browser, stack, shop_database = browser_stack
    problems: list[str] = []
    page_ = open_page(browser, problems)
    page_.goto(f"{stack.base}/staff/manufacturing/machines/new/router")
    page_.locator("#login-name").fill(BROWSER_STAFF[0])
    page_.locator("#login-password").fill(BROWSER_STAFF[1])
    page_.locator("#login-password").press("Enter")
    page_.wait_for_url("**/machines/new/router")
    # a router from the form; a bad line first
    page_.locator("#f-name").fill("browser-router")
    page_.locator("#f-bed").fill("1200x600")
    page_.locator("#f-stock").fill("mdf:18:1200x600")
    page_.locator("#f-tools").fill("1:6:endmill:2:22\n2:x")
    page_.locator("#save-machine").click()
    page_.wait_for_load_state()
    assert "line 2: '2:x'" in page_.locator("#e-tools").inner_text()
    shot(page_.locator("main"), "11-dashboard-router-form-refused.png")
    assert page_.locator("#f-bed").input_value() == "1200x600"
    page_.locator("#f-tools").fill("1:6:endmill:2:22\n2:5:drill")
    page_.locator("#save-machine").click()
    page_.wait_for_url("**/staff/manufacturing/machines")
    assert "Added router browser-router" in page_.locator("main").inner_text()
    shot(page_.locator("main"), "12-dashboard-machines.png")

    # a job on it, cutting; the queue page follows it without a reload
    job_id = make_browser_job(shop_database, "browser-router")
    page_.goto(f"{stack.base}/staff/manufacturing")
    row = page_.locator(f"#job-{job_id}")
    assert row.locator("[data-role='state']").inner_text() == "ready"
    page_.evaluate("window.__marker = 'same page'")
    assert jobs.transition(shop_database, job_id, "sent")
    assert jobs.transition(shop_database, job_id, "printing")
    wait_for(page_, f"document.querySelector('#job-{job_id} [data-role=state]').textContent === 'cutting'", 20)
    assert page_.evaluate("window.__marker") == "same page" and page_.evaluate("window.__manufacturing.polls") >= 1
    assert row.locator("form[action$='/send']").is_hidden() and row.locator("form[action$='/done']").is_visible()
    shot(page_.locator("main"), "13-dashboard-manufacturing-live.png")
    # while someone types in a form, polling pauses and a change waits: no reload under their fingers
    page_.evaluate("(id) => { const note = document.createElement('input'); note.id = 'note'; "
                   "document.querySelector(`#job-${id} form[action$='/done']`).append(note); }", job_id)
    page_.locator("#note").type("a note")
    paused = page_.evaluate("window.__manufacturing.paused")
    other = make_browser_job(shop_database, "browser-router")  # a new job: the page's layout changed
    time.sleep(4)
    assert page_.evaluate("window.__marker") == "same page"
    assert page_.evaluate("window.__manufacturing.paused") > paused
    with page_.expect_navigation(timeout=30_000):
        page_.locator("#note").blur()  # polling resumes a few seconds after the last keystroke
    assert page_.locator(f"#job-{other}").count() == 1
    page_.evaluate("window.__marker = 'same page'")
    # marked done elsewhere: the set of jobs changed, the page reloads and lists it as finished
    with page_.expect_navigation(timeout=20_000):
        jobs.finish(shop_database, job_id)
    assert page_.evaluate("window.__marker") is None
    assert page_.locator("#job-" + str(job_id)).locator("[data-role='state']").inner_text() == "done"
    assert not problems, problems


BROWSER_STAFF = ("linus", "a staff password for the dashboard test")


@pytest.fixture(scope="module")
def browser_stack(tmp_path_factory, output_root):
    """Chromium and a real ``parametric serve`` (no worker: the test moves its job itself) on SQLite."""
    import subprocess
    import sys

    from web.db import Database

    from .live import Stack
    from .test_browser import CHROMIUM, tool_missing

    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        tool_missing(f"Playwright is not installed ({error}).")
    from pathlib import Path

    if not Path(CHROMIUM).is_file():
        tool_missing(f"{CHROMIUM} does not exist.")
    folder = tmp_path_factory.mktemp("dashboard-browser")
    live = Stack(folder, {
        "DATABASE_URL": "", "REDIS_URL": "", "PARAMETRIC_INSTANCE": str(folder / "instance"),
        "PARAMETRIC_OUTPUT": str(folder / "output"), "PARAMETRIC_CACHE_FOLDER": str(output_root / "cache"),
        "PARAMETRIC_HUEY_NAME": "parametric-dashboard-browser-test"})
    shop_database = None
    try:
        live.start_server("--no-worker")
        added = subprocess.run([sys.executable, "-m", "parametric.cli", "users", "add", BROWSER_STAFF[0],
                                "--password", BROWSER_STAFF[1]], env=live.env, capture_output=True, text=True,
                               timeout=60)
        assert added.returncode == 0, added.stderr
        shop_database = Database(f"sqlite:///{folder / 'instance' / 'parametric.db'}")
        from .test_browser import CHROMIUM_ARGS

        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                yield launched, live, shop_database
            finally:
                launched.close()
    finally:
        if shop_database is not None:
            shop_database.dispose()
        live.stop()


def make_browser_job(shop_database: Any, machine: str) -> int:
    """A ready CNC job on ``machine`` in the live server's database."""
    return stored_job(shop_database, template="cabinet_door", material="mdf", part="door", kind="cnc",
                      machine=machine, state="ready")
