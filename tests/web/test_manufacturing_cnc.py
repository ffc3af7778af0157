"""CNC jobs in the web layer: a real order of a flat-pack part, real CadQuery and CAM, delivered into a router's
hot folder once (checked by LinuxCNC's rs274), followed while the router's sender takes it, retried with backoff
while the folder cannot be written; and a download router's files fetched by staff from the API and the page."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from parametric.cnc import check_programs, run_rs274
from tests.parametric import conftest as tools
from web import jobs
from web.models import Job, OrderItem

from .conftest import STAFF, order_body, run_queue, services
from .test_manufacturing import make_job
from .test_pages import form_values, page

# the real tools' fixtures (skipped loudly when missing, a failure under CI=true), shared with tests/parametric
rs274 = tools.rs274

WIDTH, HEIGHT, THICKNESS = 302.0, 150.0, 18  # on the width's 1 mm step (orders snap to it)
DOOR = {"template": "cabinet_door", "preset": "drawer-front-80", "params": {"width": WIDTH, "height": HEIGHT},
        "quantity": 1, "material": "birch_plywood"}
"""A small drawer front (through outline, two handle holes): one flat part, a few seconds to render."""


def add_router(client: FlaskClient, staff: dict[str, str], *, dialect: str = "grbl", name: str = "shop-router",
               hot_folder: Path | None = None) -> dict[str, Any]:
    record = tools.router_record(dialect, name)
    if hot_folder is not None:
        record["delivery"] = {"method": "hot_folder", "path": str(hot_folder)}
    response = client.post("/api/v1/staff/machines", json=record, headers=staff)
    assert response.status_code == 201, response.get_json()
    return record


def ready_cnc_jobs(app: Flask, client: FlaskClient, items: int = 1) -> list[Job]:
    """Order ``items`` drawer fronts and run the queue as its consumer would: render, plan, prepare (real CAM)."""
    assert client.post("/api/v1/orders", json=order_body(*[DOOR] * items)).status_code == 201
    run_queue(app)  # render → ready
    services(app).queue.manufacture()  # enqueued: plans the jobs (nothing ready to send yet) and prepares them
    run_queue(app)  # planning, then CAM and the job sheet
    database = services(app).database
    with database.session() as session:
        found = session.scalars(select(Job).order_by(Job.id)).all()
        assert session.scalars(select(OrderItem.state)).all() == ["ready"] * items
    assert [(j.kind, j.part, j.state) for j in found] == [("cnc", "door", "ready")] * items, \
        [j.last_error for j in found]
    return list(found)


def hot_files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def job_due_now(app: Flask, job_id: int) -> None:
    """Skip the backoff wait (what the clock does in production)."""
    with services(app).database.transaction() as session:
        session.get(Job, job_id).next_attempt_at = None


def page_login(client: FlaskClient) -> None:
    """Log in on the staff page with the account the ``staff`` fixture made."""
    form = page(client.get("/staff/login"))
    response = client.post("/staff/login", data={**form_values(form), "name": STAFF[0], "password": STAFF[1]})
    assert response.status_code in (302, 303)


# -- a hot folder: delivered once, taken by the sender, done ------------------------------------------------


@pytest.mark.integration
def test_a_cnc_job_goes_into_the_hot_folder_once_and_is_followed_to_done(app, client, staff, rs274, tmp_path):
    database = services(app).database
    hot = tmp_path / "hot"
    hot.mkdir()
    add_router(client, staff, hot_folder=hot)
    first, second = ready_cnc_jobs(app, client, items=2)
    assert first.machine == "shop-router" and first.estimates["machining_time_s"] > 0
    programs = jobs.programs(first)
    assert [p.suffix for p in programs] == [".nc", ".nc"]  # GRBL: one program per tool
    # nothing is offered unchecked: the job's programs went through rs274 when they were made
    made = json.loads((programs[0].parent.parent / "manifest.json").read_text("utf-8"))
    assert [part["verified_moves"] > 0 for part in made["cam"]["parts"]] == [True]

    # the periodic task delivers the oldest ready job, and only that one: one job at a time per router
    outcome = services(app).queue.manufacture.call_local()  # what the consumer runs every minute
    assert outcome["sent"] == {"shop-router": "sent"}
    expected = [f"job-{first.id}-{p.name}" for p in programs]
    assert hot_files(hot) == sorted(expected)  # whole files, no .partial left behind
    for program in programs:
        assert (hot / f"job-{first.id}-{program.name}").read_bytes() == program.read_bytes()
    assert jobs.get(database, first.id).state == "sent" and jobs.get(database, second.id).state == "ready"

    # what the router will run passes LinuxCNC's interpreter and cuts the door's outline through the sheet
    canon = check_programs(sorted(hot / name for name in expected))
    assert canon.cutting and canon.deepest() < -THICKNESS
    xmin, ymin, xmax, ymax = canon.extents(-THICKNESS + 0.5)
    assert (xmax - xmin, ymax - ymin) == pytest.approx((WIDTH + 6, HEIGHT + 6), abs=0.05)  # outside by the 6 mm tool

    # sending again (the dispatcher each minute, staff's "send") writes nothing a second time
    stamps = {name: os.stat(hot / name) for name in expected}
    assert jobs.dispatch(database) == {"shop-router": "sent"}
    resent = client.post(f"/api/v1/staff/jobs/{first.id}/send", headers=staff)
    assert resent.status_code == 200 and resent.get_json()["state"] == "sent"
    # even without its record of the delivery (a crash before it was saved) the hash finds the file in place
    with database.transaction() as session:
        job = session.get(Job, first.id)
        job.files = {k: v for k, v in job.files.items() if k != "delivered"}
    assert jobs.send(database, first.id) == "sent"
    assert hot_files(hot) == sorted(expected)
    for name, stat in stamps.items():
        now = os.stat(hot / name)
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), name
    busy = client.post(f"/api/v1/staff/jobs/{second.id}/send", headers=staff)  # the router has a job
    assert busy.status_code == 409 and "router is busy" in busy.get_json()["errors"][0]["message"]
    assert jobs.get(database, second.id).state == "ready" and hot_files(hot) == sorted(expected)

    # the sender takes the programs: the job is cutting; nothing is written again, the next job still waits
    taken = tmp_path / "sender"
    taken.mkdir()
    for name in expected:
        shutil.move(hot / name, taken / name)
    assert jobs.dispatch(database) == {"shop-router": "printing"}
    cutting = jobs.get(database, first.id)
    assert cutting.state == "printing" and jobs.state_label(cutting) == "cutting"
    assert jobs.dispatch(database) == {} and hot_files(hot) == []
    assert jobs.send(database, first.id) == "printing" and hot_files(hot) == []
    page_login(client)
    html = client.get("/staff/manufacturing").get_data(as_text=True)
    row = lxml.html.fromstring(html).get_element_by_id(f"job-{first.id}")
    assert row.find_class("state")[0].text_content() == "cutting"
    assert "machining" in row.find_class("estimate")[0].text_content()
    assert str(hot) in html

    # staff mark it done from the page (with its CSRF token); the router's next job goes
    form = lxml.html.fromstring(html).xpath(f'//form[contains(@action, "/jobs/{first.id}/done")]')[0]
    assert client.post(form.action, data={"csrf_token": form.inputs["csrf_token"].value}).status_code == 303
    assert jobs.get(database, first.id).state == "done"
    assert jobs.dispatch(database) == {"shop-router": "sent"}
    waiting = [f"job-{second.id}-{p.name}" for p in jobs.programs(second)]
    assert hot_files(hot) == sorted(waiting)

    # cancelling a job whose programs wait in the folder takes them back: the sender never sees them
    cancelled = client.post(f"/api/v1/staff/jobs/{second.id}/cancel", headers=staff)
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "cancelled"
    assert cancelled.get_json()["last_error"] is None and hot_files(hot) == []
    assert sorted(os.listdir(taken)) == sorted(expected)  # the first job was handed to the sender exactly once


@pytest.mark.integration  # the job sheet's PDF (WeasyPrint, pango)
def test_cancelling_after_the_sender_took_a_program_says_to_stop_the_router(app, client, staff, tmp_path):
    database = services(app).database
    hot = tmp_path / "hot"
    hot.mkdir()
    add_router(client, staff, hot_folder=hot)
    (job,) = ready_cnc_jobs(app, client)
    assert jobs.dispatch(database) == {"shop-router": "sent"}
    first, second = (f"job-{job.id}-{p.name}" for p in jobs.programs(job))
    (hot / first).unlink()  # the sender took the first tool's program; the second waits for the tool change
    assert jobs.dispatch(database) == {"shop-router": "printing"}
    response = client.post(f"/api/v1/staff/jobs/{job.id}/cancel", headers=staff)
    assert response.status_code == 200 and response.get_json()["state"] == "cancelled"
    assert first in response.get_json()["last_error"] and "stop the router" in response.get_json()["last_error"]
    assert hot_files(hot) == []  # the second program was taken back


# -- a hot folder that cannot be written -------------------------------------------------------------------


@pytest.mark.integration  # the job sheet's PDF (WeasyPrint, pango)
def test_an_unwritable_hot_folder_backs_off_and_delivers_once_it_is_fixed(app, client, staff, tmp_path):
    database = services(app).database
    blocker = tmp_path / "share"
    blocker.write_text("a file where the mount should be")
    hot = blocker / "hot"
    add_router(client, staff, hot_folder=hot)
    (job,) = ready_cnc_jobs(app, client)
    assert jobs.dispatch(database) == {"shop-router": "deferred"}
    deferred = jobs.get(database, job.id)
    assert deferred.state == "sent" and deferred.attempts == 1
    assert str(hot) in deferred.last_error and "Not a directory (ENOTDIR)" in deferred.last_error
    assert "will retry" in deferred.last_error
    assert 4 <= (deferred.next_attempt_at - deferred.updated_at).total_seconds() <= 6
    assert jobs.dispatch(database) == {}  # not due yet: nothing is tried
    job_due_now(app, job.id)
    assert jobs.dispatch(database) == {"shop-router": "deferred"}
    again = jobs.get(database, job.id)
    assert again.attempts == 2 and again.state == "sent"
    assert 9 <= (again.next_attempt_at - again.updated_at).total_seconds() <= 11  # backing off
    # the page says why
    page_login(client)
    assert "Not a directory (ENOTDIR)" in client.get("/staff/manufacturing").get_data(as_text=True)

    blocker.unlink()
    hot.mkdir(parents=True)
    job_due_now(app, job.id)
    assert jobs.dispatch(database) == {"shop-router": "sent"}
    delivered = jobs.get(database, job.id)
    assert delivered.last_error is None and delivered.next_attempt_at is None
    assert hot_files(hot) == sorted(f"job-{job.id}-{p.name}" for p in jobs.programs(job))

    # a folder that disappears after delivery is not mistaken for the sender having taken the files
    shutil.rmtree(hot)
    job_due_now(app, job.id)
    assert jobs.dispatch(database) == {"shop-router": "deferred"}
    assert jobs.get(database, job.id).state == "sent"
    refused = client.post(f"/api/v1/staff/jobs/{job.id}/done", headers=staff)
    assert refused.status_code == 409 and str(hot) in refused.get_json()["errors"][0]["message"]
    assert jobs.get(database, job.id).state == "sent"
    hot.mkdir()  # back: the programs are not there to take back, so staff can finish the job
    done = client.post(f"/api/v1/staff/jobs/{job.id}/done", headers=staff)
    assert done.status_code == 200 and done.get_json()["state"] == "done" and done.get_json()["last_error"] is None


def test_a_job_never_delivered_to_a_broken_hot_folder_can_be_cancelled(app, client, staff, tmp_path):
    """Nothing of it can be waiting there, so a folder that cannot be read does not hold the cancel up."""
    add_router(client, staff, hot_folder=tmp_path / "never-mounted")
    job_id = make_job(app, kind="cnc", part="door", machine="shop-router", state="ready",
                      files={"gcode": [str(tmp_path / "door.nc")]})
    (tmp_path / "door.nc").write_text("G21 G90\nG0 X0 Y0\nM30\n")
    assert jobs.dispatch(services(app).database) == {"shop-router": "deferred"}
    response = client.post(f"/api/v1/staff/jobs/{job_id}/cancel", headers=staff)
    assert response.status_code == 200 and response.get_json()["state"] == "cancelled"
    assert not (tmp_path / "never-mounted").exists()  # a missing folder is never created by us


# -- a router fed by download ------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_download_routers_job_files_are_downloaded_by_staff_only(app, client, staff, rs274, tmp_path):
    database = services(app).database
    add_router(client, staff, dialect="linuxcnc", name="mill")
    (job,) = ready_cnc_jobs(app, client)
    assert jobs.dispatch(database) == {}  # nothing is sent by itself: staff fetch the files
    assert jobs.get(database, job.id).state == "ready"

    listed = client.get(f"/api/v1/staff/jobs/{job.id}/files", headers=staff)
    assert listed.status_code == 200
    files = {f["name"]: f for f in listed.get_json()["files"]}
    recorded = [Path(p) for p in job.files["gcode"] + job.files["dxf"] + job.files["tool_table"]]
    recorded.append(Path(job.files["job_sheet_html"]))
    if "job_sheet_pdf" in job.files:
        recorded.append(Path(job.files["job_sheet_pdf"]))
    assert sorted(files) == sorted(p.name for p in recorded)
    assert {files[p.name]["kind"] for p in recorded} >= {"gcode", "dxf", "tool_table", "job_sheet_html"}
    for path in recorded:
        response = client.get(files[path.name]["url"], headers=staff)
        assert response.status_code == 200 and response.data == path.read_bytes(), path.name
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert files[path.name]["size_bytes"] == path.stat().st_size

    # the downloaded program runs in LinuxCNC's interpreter with the job's tool table
    (program,) = jobs.programs(job)
    assert program.suffix == ".ngc"
    downloaded = tmp_path / program.name
    downloaded.write_bytes(client.get(files[program.name]["url"], headers=staff).data)
    table = tmp_path / "tool.tbl"
    table.write_bytes(client.get(files["tool.tbl"]["url"], headers=staff).data)
    canon = run_rs274(downloaded, table)
    assert canon.tools and canon.deepest() < -THICKNESS

    # staff only, and only the job's own files
    assert client.get(f"/api/v1/staff/jobs/{job.id}/files").status_code == 401
    assert client.get(files[program.name]["url"]).status_code == 401
    page_url = f"/staff/manufacturing/jobs/{job.id}/files/{program.name}"
    assert client.get(page_url).status_code == 302  # the login page first
    secret = tmp_path / "secret.txt"
    secret.write_text("not a job file")
    with database.transaction() as session:
        stored = session.get(Job, job.id)
        stored.files = {**stored.files, "dxf": [*stored.files["dxf"], str(secret), "/etc/passwd"]}
    for name in ("secret.txt", "passwd", "nope.nc", "..%2F..%2Fsecret.txt", "tool.tb", "manifest.json"):
        assert client.get(f"/api/v1/staff/jobs/{job.id}/files/{name}", headers=staff).status_code == 404, name
    assert client.get(f"/api/v1/staff/jobs/999999/files/{program.name}", headers=staff).status_code == 404
    assert client.get("/api/v1/staff/jobs/999999/files", headers=staff).status_code == 404
    assert "secret.txt" not in {f["name"] for f in
                                client.get(f"/api/v1/staff/jobs/{job.id}/files", headers=staff).get_json()["files"]}

    # the dashboard lists the files as links that download for a logged-in staff member
    page_login(client)
    document = page(client.get("/staff/manufacturing"))
    row = document.get_element_by_id(f"job-{job.id}")
    links = {a.text_content().strip(): a.get("href") for a in row.find_class("files")[0].iter("a")}
    assert sorted(links) == sorted(p.name for p in recorded)
    for path in recorded:
        response = client.get(links[path.name])
        assert response.status_code == 200 and response.data == path.read_bytes(), path.name
    assert client.get(f"/staff/manufacturing/jobs/{job.id}/files/secret.txt").status_code == 404
    assert "machining" in row.find_class("estimate")[0].text_content()

    # "send" hands the job over (nothing is written anywhere); "done" finishes it
    sent = client.post(f"/api/v1/staff/jobs/{job.id}/send", headers=staff)
    assert sent.status_code == 200 and sent.get_json()["state"] == "sent"
    assert jobs.dispatch(database) == {}
    done = client.post(f"/api/v1/staff/jobs/{job.id}/done", headers=staff)
    assert done.status_code == 200 and done.get_json()["state"] == "done"


@pytest.mark.integration
def test_a_job_file_changed_on_disk_is_never_downloaded_and_the_job_is_prepared_again(app, client, staff):
    """Each file staff download is checked (size, SHA-256 recorded when the job was prepared) as it is handed out:
    a program changed on disk is refused (503), the job is prepared again, and the new program is served."""
    import hashlib
    import os

    database = services(app).database
    add_router(client, staff, dialect="linuxcnc", name="mill")
    (job,) = ready_cnc_jobs(app, client)
    (program,) = jobs.programs(job)
    files = {f["name"]: f for f in client.get(f"/api/v1/staff/jobs/{job.id}/files", headers=staff).get_json()["files"]}
    original = program.read_bytes()
    first = client.get(files[program.name]["url"], headers=staff)
    assert first.status_code == 200 and first.data == original
    assert job.files["checksums"][str(program)] == [len(original), hashlib.sha256(original).hexdigest()]

    os.chmod(program, 0o644)
    middle = len(original) // 2
    program.write_bytes(original[:middle] + (b"9" if original[middle:middle + 1] != b"9" else b"8")
                        + original[middle + 1:])  # the same size, one digit changed: only the SHA-256 tells
    refused = client.get(files[program.name]["url"], headers=staff)
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
    assert original[:middle] not in refused.data
    assert "changed on disk" in refused.get_json()["errors"][0]["message"]
    page_login(client)
    assert client.get(f"/staff/manufacturing/jobs/{job.id}/files/{program.name}").status_code == 503
    assert jobs.get(database, job.id).state == "queued"  # being prepared again, not sent with a broken program
    run_queue(app)
    again = jobs.get(database, job.id)
    assert again.state == "ready", again.last_error
    (rebuilt,) = jobs.programs(again)
    served = client.get(f"/api/v1/staff/jobs/{job.id}/files/{rebuilt.name}", headers=staff)
    assert served.status_code == 200 and served.data == rebuilt.read_bytes()
    assert hashlib.sha256(served.data).hexdigest() == again.files["checksums"][str(rebuilt)][1]
