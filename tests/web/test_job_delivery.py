"""A job whose upload failed says so, on the staff pages and the API, until it is really sent: "not sent yet:
<why>; retrying in 40 s", not "sent, 0.0 %". A real connection to a closed port stands for the unreachable
print host; a real hot folder that cannot be written, then can, for the router."""

from __future__ import annotations

import re
import shutil

import lxml.html

from web import jobs, machines

from .conftest import services
from .test_manufacturing import PRINTER, make_job
from .test_manufacturing_cnc import add_router, job_due_now, page_login


def test_an_upload_that_failed_says_not_sent_yet_with_why_and_when(app, client, staff):
    machines.add(services(app).database, machines.parse(PRINTER))
    database = services(app).database
    job_id = make_job(app, state="ready", files={"gcode": "/nonexistent.gcode"})
    assert jobs.dispatch(database, timeout_s=2) == {"mk3": "deferred"}
    job = jobs.get(database, job_id)
    assert job.state == "sent"  # the intent is recorded, but nothing reached the printer

    described = client.get(f"/api/v1/staff/jobs/{job_id}", headers=staff).get_json()
    assert described["delivered"] is False
    assert re.fullmatch(r"not sent yet: .+; retrying in \d+ s", described["label"]), described["label"]
    assert job.last_error.removesuffix("; will retry") in described["label"]
    assert "will retry" not in described["label"]  # once, with when: "retrying in 5 s" (not "will retry; retrying")

    page_login(client)
    row = lxml.html.fromstring(client.get("/staff/manufacturing").get_data(as_text=True)).get_element_by_id(
        f"job-{job_id}")
    state = row.xpath(".//*[@data-role='state']")[0].text_content()
    progress = row.xpath(".//*[@data-role='progress']")[0].text_content()
    assert state.startswith("not sent yet: ") and "retrying in" in state
    assert progress == "not sent yet" and "0.0 %" not in row.text_content()
    live = client.get("/staff/manufacturing/state.json").get_json()
    [shown] = [j for j in live["jobs"] if j["id"] == job_id]
    assert shown["not_sent"] is True and shown["label"].startswith("not sent yet: ")


def test_it_says_sent_once_the_files_are_really_on_the_machine(app, client, staff, tmp_path):
    blocker = tmp_path / "share"
    blocker.write_text("a file where the mount should be")
    hot = blocker / "hot"
    add_router(client, staff, hot_folder=hot)
    program = tmp_path / "door.nc"
    program.write_text("G21 G90\nG0 X0 Y0\nM30\n")
    database = services(app).database
    job_id = make_job(app, kind="cnc", part="door", machine="shop-router", state="ready",
                      files={"gcode": [str(program)]})
    assert jobs.dispatch(database) == {"shop-router": "deferred"}
    label = client.get(f"/api/v1/staff/jobs/{job_id}", headers=staff).get_json()["label"]
    assert label.startswith("not sent yet: ") and "Not a directory" in label

    blocker.unlink()
    hot.mkdir(parents=True)
    job_due_now(app, job_id)
    assert jobs.dispatch(database) == {"shop-router": "sent"}
    described = client.get(f"/api/v1/staff/jobs/{job_id}", headers=staff).get_json()
    assert described["label"] == "sent" and described["delivered"] is True

    # the folder going away after delivery is retried, but the files did reach it: still "sent"
    shutil.rmtree(hot)
    job_due_now(app, job_id)
    assert jobs.dispatch(database) == {"shop-router": "deferred"}
    again = jobs.get(database, job_id)
    assert again.state == "sent" and again.next_attempt_at is not None
    assert not jobs.not_sent(again) and jobs.state_label(again) == "sent"
