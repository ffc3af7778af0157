"""Manufacturing in the web layer: machines in the database, jobs and their state machine, staff actions,
the queue page; with a real render, real PrusaSlicer and a real (closed) network port for the retry path."""

from __future__ import annotations

import time
import uuid
from typing import Any

import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.parametric import conftest as tools
from web import jobs, machines
from web.models import Job, Order, OrderItem, utcnow

from .conftest import order_body, run_queue, services, unique_shelf
from .test_pages import login

# the real tools' fixtures (skipped loudly when missing, a failure under CI=true), shared with tests/parametric
prusa_slicer = tools.prusa_slicer
octoprint = tools.octoprint

PRINTER = {"kind": "printer", "name": "mk3", "build_volume_mm": [250, 210, 210], "nozzle_diameter_mm": 0.4,
           "materials": ["pla", "petg"],
           "host": {"kind": "octoprint", "url": "http://127.0.0.1:1", "api_key": "secret-key"}}


def add_printer(client: FlaskClient, staff: dict[str, str], record: dict[str, Any] | None = None) -> Any:
    return client.post("/api/v1/staff/machines", json=record or PRINTER, headers=staff)


def stored_job(database: Any, *, template: str = "wall_shelf", material: str = "pla", **values: Any) -> int:
    """A job on a stored order item of ``template`` (no render: for state-machine and page tests)."""
    with database.transaction() as session:
        order = Order(id=uuid.uuid4().hex, token_hash="t", customer_name="A", customer_email="a@example.com")
        session.add(order)
        session.flush()
        item = OrderItem(order_id=order.id, position=1, template=template, template_version="1.0.0",
                         params={}, quantity=1, material=material, state="ready")
        session.add(item)
        session.flush()
        job = Job(**{"item_id": item.id, "part": "bracket", "kind": "fdm", "machine": "mk3", "estimates": {},
                          "files": {}, **values})
        session.add(job)
        session.flush()
        return job.id


def make_job(app: Flask, **values: Any) -> int:
    """A job on a stored wall shelf item in the app's database."""
    return stored_job(services(app).database, **values)


# -- machines ------------------------------------------------------------------------------------------


def test_machines_are_added_listed_and_removed_by_staff(client, staff):
    assert client.get("/api/v1/staff/machines").status_code == 401
    response = add_printer(client, staff)
    assert response.status_code == 201
    assert response.get_json()["host"] == {"kind": "octoprint", "url": "http://127.0.0.1:1"}
    listed = client.get("/api/v1/staff/machines", headers=staff).get_json()["machines"]
    assert [m["name"] for m in listed] == ["mk3"] and "api_key" not in listed[0]["host"]
    stored = machines.get(services(client.application).database, "mk3")
    assert stored is not None and stored.host is not None and stored.host.settings["api_key"] == "secret-key"
    again = add_printer(client, staff)
    assert again.status_code == 409 and again.get_json()["errors"][0]["field"] == "name"
    changed = {**PRINTER, "materials": ["tpu"]}
    assert client.post("/api/v1/staff/machines?replace=1", json=changed, headers=staff).status_code == 201
    assert machines.get(services(client.application).database, "mk3").materials == ["tpu"]
    assert client.delete("/api/v1/staff/machines/mk3", headers=staff).status_code == 204
    assert client.delete("/api/v1/staff/machines/mk3", headers=staff).status_code == 404
    assert client.get("/api/v1/staff/machines", headers=staff).get_json() == {"machines": []}


def test_a_bad_machine_record_is_refused_with_the_cores_field_errors(client, staff):
    response = add_printer(client, staff, {**PRINTER, "build_volume_mm": [250, -1, 210], "speed": 3})
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    fields = {e["field"] for e in errors}
    assert any("build_volume" in f for f in fields) and any("speed" in f for f in fields), errors
    assert all(e["message"] for e in errors)
    assert client.post("/api/v1/staff/machines", data="nope", headers=staff,
                       content_type="application/json").status_code == 422


# -- the state machine ---------------------------------------------------------------------------------


def test_states_change_only_along_the_allowed_transitions(app):
    database = services(app).database
    job_id = make_job(app)
    with pytest.raises(jobs.TransitionError, match="a queued job cannot become printing"):
        jobs.transition(database, job_id, "printing")
    with pytest.raises(jobs.TransitionError, match="unknown job state"):
        jobs.transition(database, job_id, "melted")
    for state in ("slicing", "ready", "sent", "printing", "done"):
        assert jobs.transition(database, job_id, state)
    job = jobs.get(database, job_id)
    assert job.state == "done" and job.progress == 100.0 and job.finished_at is not None
    for state in jobs.JOB_STATES:
        with pytest.raises(jobs.TransitionError):
            jobs.transition(database, job_id, state)  # done is final
    other = make_job(app)
    assert not jobs.transition(database, other, "slicing", expect=("ready",))  # someone else moved it
    assert jobs.get(database, other).state == "queued"


def test_staff_actions_follow_the_state_machine(app, client, staff):
    database = services(app).database
    assert add_printer(client, staff).status_code == 201  # a retry keeps a job on its machine while it is set up
    job_id = make_job(app, state="failed", last_error="the slicer crashed")
    url = f"/api/v1/staff/jobs/{job_id}"
    assert client.post(url + "/done", headers={}).status_code == 401
    refused = client.post(url + "/done", headers=staff)
    assert refused.status_code == 409 and "cannot become done" in refused.get_json()["errors"][0]["message"]
    retried = client.post(url + "/retry", headers=staff)
    assert retried.status_code == 200
    assert retried.get_json()["state"] == "queued" and retried.get_json()["last_error"] is None
    assert client.post(url + "/send", headers=staff).status_code == 409  # not ready
    assert client.post(url + "/cancel", headers=staff).get_json()["state"] == "cancelled"
    assert client.post(url + "/retry", headers=staff).get_json()["state"] == "queued"
    jobs.transition(database, job_id, "slicing")
    jobs.transition(database, job_id, "ready")
    assert client.post(url + "/done", headers=staff).get_json()["state"] == "done"
    assert client.post("/api/v1/staff/jobs/999999/cancel", headers=staff).status_code == 404
    listed = client.get("/api/v1/staff/jobs?state=done", headers=staff).get_json()["jobs"]
    assert [j["id"] for j in listed] == [job_id]
    assert client.get("/api/v1/staff/jobs?state=melted", headers=staff).status_code == 422


def test_an_unreachable_host_backs_off_and_the_job_stays_sent(app, client, staff):
    """A real connection to a closed port: the job is recorded as sent, retried later, never failed."""
    add_printer(client, staff)
    database = services(app).database
    job_id = make_job(app, state="ready", files={"gcode": "/nonexistent.gcode"})
    assert jobs.dispatch(database, timeout_s=2) == {"mk3": "deferred"}
    job = jobs.get(database, job_id)
    assert job.state == "sent" and job.attempts == 1 and "will retry" in job.last_error
    first_wait = (job.next_attempt_at - job.updated_at).total_seconds()
    assert 4 <= first_wait <= 6
    assert jobs.dispatch(database, timeout_s=2) == {}  # not due yet: nothing is tried
    jobs.transition(database, job_id, "sent", expect=("nothing",))  # no-op: the guard holds
    with database.transaction() as session:
        session.get(Job, job_id).next_attempt_at = None
    assert jobs.dispatch(database, timeout_s=2) == {"mk3": "deferred"}
    job = jobs.get(database, job_id)
    assert job.attempts == 2 and job.state == "sent"
    assert [jobs.backoff_seconds(n) for n in (1, 2, 3, 10)] == [5, 10, 20, 300]


def test_the_queue_page_lists_each_machines_jobs_escaped(app, client):
    machines.add(services(app).database, machines.parse(PRINTER))
    job_id = make_job(app, state="ready")
    with services(app).database.transaction() as session:
        session.get(Job, job_id).part = "<script>alert(1)</script>"
    assert client.get("/staff/manufacturing").status_code == 302  # login first
    login(client, app)
    page = client.get("/staff/manufacturing")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="machine-mk3"' in html and f'id="job-{job_id}"' in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert f"/staff/manufacturing/jobs/{job_id}/send" in html and 'name="csrf_token"' in html
    refused = client.post(f"/staff/manufacturing/jobs/{job_id}/done")  # no CSRF token
    assert refused.status_code == 400 and jobs.get(services(app).database, job_id).state == "ready"
    form = lxml.html.fromstring(html).xpath(f'//form[contains(@action, "/jobs/{job_id}/done")]')[0]
    done = client.post(form.action, data={"csrf_token": form.inputs["csrf_token"].value})
    assert done.status_code == 303 and jobs.get(services(app).database, job_id).state == "done"
    assert f"Job {job_id}: done." in client.get("/staff/manufacturing").get_data(as_text=True)


# -- from an order to jobs, with a real render and real PrusaSlicer --------------------------------------


@pytest.mark.integration
def test_a_ready_item_becomes_routed_jobs_sliced_with_a_job_sheet(app, client, staff, prusa_slicer):
    database, output = services(app).database, services(app).generation.output_folder
    body = order_body({"template": "wall_shelf", "params": unique_shelf(), "quantity": 1,
                       "material": "pla"})
    assert client.post("/api/v1/orders", json=body).status_code == 201
    run_queue(app)
    with database.session() as session:
        item_id = session.scalar(select(OrderItem.id).where(OrderItem.state == "ready"))
    assert item_id is not None
    # no machine yet: every part is a failed job that says why in plain words
    assert jobs.plan_ready_items(database, output) == []
    with database.session() as session:
        failed = session.scalars(select(Job).where(Job.item_id == item_id)).all()
    assert {j.part for j in failed} == {"board", "bracket"} and {j.state for j in failed} == {"failed"}
    assert any("no printer is set up" in j.last_error for j in failed)
    with database.transaction() as session:
        for job in session.scalars(select(Job)).all():
            session.delete(job)
    add_printer(client, staff)
    new = jobs.plan_ready_items(database, output)
    assert len(new) == 1 and jobs.plan_ready_items(database, output) == []  # planned once
    bracket = jobs.get(database, new[0])
    assert (bracket.part, bracket.machine, bracket.kind, bracket.state) == ("bracket", "mk3", "fdm", "queued")
    assert jobs.prepare(database, output, bracket.id) == "ready"
    assert jobs.prepare(database, output, bracket.id) == "skipped"
    ready = jobs.get(database, bracket.id)
    assert ready.state == "ready"
    assert ready.estimates["print_time_s"] > 0 and ready.estimates["filament_g"] > 0
    gcode = ready.files["gcode"]
    assert gcode.endswith(".gcode") and "G1" in open(gcode).read()
    assert open(ready.files["job_sheet_html"]).read().count("mk3") >= 1
    shown = client.get(f"/api/v1/staff/jobs/{bracket.id}", headers=staff).get_json()
    assert shown["state"] == "ready" and shown["estimates"] == ready.estimates


# -- end to end: real PrusaSlicer, real OctoPrint with its Virtual Printer ------------------------------


@pytest.mark.integration
def test_an_order_is_sliced_sent_printed_once_and_survives_the_host_going_away(app, client, staff, prusa_slicer,
                                                                             octoprint):
    """ready → slicing → ready → (host down: sent, retried with backoff) → printing → done, through the
    queue's own tasks; OctoPrint counts exactly one successful print of the job's one tagged file."""
    from parametric.hosts import JOB_TAG
    from parametric.hosts.octoprint import OctoPrintConnector

    database = services(app).database
    queue = services(app).queue
    record = {**PRINTER, "name": "virtual", "build_volume_mm": [200, 200, 200],
              "host": {"kind": "octoprint", "url": octoprint.url, "api_key": octoprint.api_key}}
    assert add_printer(client, staff, record).status_code == 201
    params = {"leg_diameter": 12, "sleeve_depth": 5, "sole_thickness": 2, "wall_thickness": 1.2}
    body = order_body({"template": "leg_cap", "params": params, "quantity": 1, "material": "pla"})
    assert client.post("/api/v1/orders", json=body).status_code == 201
    run_queue(app)  # render → ready

    def tick() -> None:
        queue.manufacture()  # what the consumer's scheduler does every few seconds
        run_queue(app)

    octoprint.stop()  # the host is down from the start of the queue
    try:
        tick()  # plans the job, prepares it (PrusaSlicer, job sheet); dispatching finds nothing ready yet
        with database.session() as session:
            job = session.scalars(select(Job)).one()
        assert (job.state, job.machine) == ("ready", "virtual") and job.estimates["print_time_s"] > 0
        tick()  # the host does not answer: the job is recorded as sent and retried later
        job = jobs.get(database, job.id)
        assert job.state == "sent" and job.attempts == 1 and job.next_attempt_at is not None
        assert "will retry" in job.last_error
    finally:
        octoprint.start()
    connector = OctoPrintConnector({"url": octoprint.url, "api_key": octoprint.api_key}, "virtual", timeout_s=5)
    time.sleep(max(0.0, (job.next_attempt_at - utcnow()).total_seconds()) + 0.1)
    seen: list[tuple[str, float]] = []
    deadline = time.monotonic() + 200
    while True:
        tick()
        current = jobs.get(database, job.id)
        seen.append((current.state, current.progress))
        if current.state in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(1.5)
    assert current.state == "done", (current.last_error, seen[-5:])
    assert current.progress == 100.0 and current.finished_at is not None
    states = [state for state, _ in seen]
    assert "printing" in states
    assert any(state == "printing" and 0 < progress < 100 for state, progress in seen), seen
    listing = connector._request("GET", "/api/files/local?recursive=true")["files"]
    ours = [f for f in listing if (f.get("userdata") or {}).get(JOB_TAG) == jobs.host_job_id(job.id)]
    assert len(ours) == 1
    upload = connector.find_upload(jobs.host_job_id(job.id))
    assert upload is not None and (upload.successes, upload.failures) == (1, 0)
    tick()  # a later round changes nothing and prints nothing again
    assert jobs.get(database, job.id).state == "done"
    assert connector.find_upload(jobs.host_job_id(job.id)).successes == 1
