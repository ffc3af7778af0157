"""Planning an ordered item into jobs: each part in its own material on a machine that can make it, and copies
that need more than one plate split into one job per plate. Real render, real PrusaSlicer and real CAM."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.parametric import conftest as tools
from web import jobs
from web.models import Job, OrderItem

from .conftest import order_body, run_queue, services, unique_shelf, unique_width
from .test_manufacturing import PRINTER, add_printer

prusa_slicer = tools.prusa_slicer  # real PrusaSlicer: skipped loudly when missing, a failure under CI=true


def ready_item(app, client, line: dict) -> int:
    response = client.post("/api/v1/orders", json=order_body(line))
    assert response.status_code == 201
    ready_item.order = response.get_json()
    run_queue(app)
    with services(app).database.session() as session:
        item_id = session.scalar(select(OrderItem.id).where(OrderItem.state == "ready").order_by(OrderItem.id.desc()))
    assert item_id is not None
    return item_id


def test_a_mixed_product_routes_each_part_in_its_own_material(app, client, staff):
    """A wall shelf in oak: the oak board goes to the router, the brackets (printed in PLA) to the printer."""
    assert add_printer(client, staff).status_code == 201
    assert client.post("/api/v1/staff/machines", json=tools.router_record(), headers=staff).status_code == 201
    item_id = ready_item(app, client, {"template": "wall_shelf", "params": unique_shelf(),
                                       "material": "oak"})
    database, output = services(app).database, services(app).generation.output_folder
    assert len(jobs.plan_item(database, output, item_id)) == 2
    with database.session() as session:
        planned = {j.part: j for j in session.scalars(select(Job).where(Job.item_id == item_id))}
    assert (planned["board"].machine, planned["board"].kind, planned["board"].state) == ("shop-router", "cnc",
                                                                                          "queued")
    assert (planned["bracket"].machine, planned["bracket"].kind, planned["bracket"].state) == ("mk3", "fdm",
                                                                                              "queued")

    # the customer follows the parts being made, in plain words, on the API and the tracking page
    order = ready_item.order
    shown = client.get(f"/api/v1/orders/{order['id']}?token={order['token']}").get_json()
    production = {job["part"]: job for job in shown["items"][0]["production"]}
    assert {p: (j["label"], j["process"]) for p, j in production.items()} == {
        "board": ("being prepared for its machine", "cutting"),
        "bracket": ("being prepared for its machine", "printing")}
    assert "machine" not in production["board"] and "last_error" not in production["board"]  # workshop details
    # no job has its slicer's or CAM's time yet: each part shows the time it was quoted at, not nothing
    quoted = {part["name"]: part["machine_time_s"] for part in shown["items"][0]["quote"]["parts"]}
    assert {p: j["estimated_time_s"] for p, j in production.items()} == quoted and all(quoted.values())
    page = client.get(f"/track/{order['id']}?token={order['token']}").get_data(as_text=True)
    assert "being prepared for its machine" in page and 'data-making="yes"' in page  # in workshop words


def test_a_part_no_machine_has_the_material_for_fails_with_the_reason(app, client, staff):
    """PETG brackets with a printer that has only PLA loaded: the bracket job fails and says why."""
    assert add_printer(client, staff, {**PRINTER, "materials": ["pla"]}).status_code == 201
    item_id = ready_item(app, client, {"template": "wall_shelf", "params": unique_shelf(),
                                       "material": "petg"})
    database, output = services(app).database, services(app).generation.output_folder
    assert jobs.plan_item(database, output, item_id) == []
    with database.session() as session:
        reasons = {j.part: j.last_error for j in session.scalars(select(Job).where(Job.item_id == item_id))}
    assert "no printer has PETG loaded (mk3 has PLA loaded)" in reasons["bracket"]
    assert "no CNC router is set up" in reasons["board"]


@pytest.mark.integration
def test_copies_that_need_several_plates_become_one_ready_job_per_plate(app, client, staff, prusa_slicer):
    small = {**PRINTER, "name": "mini", "build_volume_mm": [90, 90, 90]}
    assert add_printer(client, staff, small).status_code == 201
    item_id = ready_item(app, client, {"template": "leg_cap", "params": {"sleeve_depth": 7 + unique_width() % 9},
                                       "quantity": 6, "material": "pla"})
    database, output = services(app).database, services(app).generation.output_folder
    [job_id] = jobs.plan_item(database, output, item_id)
    assert jobs.prepare(database, output, job_id) == "ready"
    with database.session() as session:
        plates = session.scalars(select(Job).where(Job.item_id == item_id).order_by(Job.id)).all()
    assert len(plates) > 1 and plates[0].id == job_id
    assert {j.state for j in plates} == {"ready"} and {j.machine for j in plates} == {"mini"}
    assert sum(j.estimates["copies"] for j in plates) == 6
    assert [j.estimates["plate"] for j in plates] == list(range(1, len(plates) + 1))
    assert {j.estimates["plates"] for j in plates} == {len(plates)}
    gcodes = [j.files["gcode"] for j in plates]
    assert len(set(gcodes)) == len(plates)
    for job in plates:
        text = open(job.files["gcode"]).read()
        assert "G1" in text and job.estimates["print_time_s"] > 0
    # the plates share one job sheet, which counts all six copies
    assert len({j.files["job_sheet_pdf"] for j in plates}) == 1
    # the dispatcher sends them one at a time like any other ready jobs
    assert jobs.prepare(database, output, plates[1].id) == "skipped"


@pytest.mark.integration
def test_a_job_sheet_from_the_queue_has_the_drawing_the_estimates_and_a_qr_to_the_job(app, client, staff, tmp_path,
                                                                                    prusa_slicer):
    """The job sheet a workshop prints: the part's drawing view, PrusaSlicer's estimates and the order in the PDF
    text, and a QR code that opens the job on the dashboard at the app's public address."""
    import subprocess

    pdftotext, zbarimg = tools.require("pdftotext", "poppler-utils"), tools.require("zbarimg", "zbar-tools")
    app.config["PUBLIC_URL"] = "https://workshop.example"
    assert add_printer(client, staff).status_code == 201
    item_id = ready_item(app, client, {"template": "heel_lift", "params": {"lift_height": 8 + unique_width() % 5},
                                       "material": "petg"})
    order_id = ready_item.order["id"]
    database, generation = services(app).database, services(app).generation
    left, right = jobs.plan_item(database, generation.output_folder, item_id)  # a pair: a job per foot
    assert {jobs.get(database, left).part, jobs.get(database, right).part} == {"left_heel_lift", "right_heel_lift"}
    job_id = left
    assert jobs.prepare(database, generation.output_folder, job_id, app.config["PUBLIC_URL"],
                        cache=generation.cache, settings=generation.settings) == "ready"
    job = jobs.get(database, job_id)
    html = open(job.files["job_sheet_html"]).read()
    assert "data:image/svg+xml;base64," in html  # the drawing view, exported for the sheet
    text = subprocess.run([pdftotext, "-layout", job.files["job_sheet_pdf"], "-"], capture_output=True,
                          text=True, check=True).stdout
    assert order_id in text and "Print time (PrusaSlicer)" in text and "PETG" in text and "mk3" in text
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", job.files["job_sheet_pdf"],
                    str(tmp_path / "page")], check=True)
    decoded = subprocess.run([zbarimg, "-q", "--raw", "-Sdisable", "-Sqrcode.enable",
                              str(next(tmp_path.glob("page*.png")))], capture_output=True, text=True)
    assert decoded.stdout.strip() == f"https://workshop.example/staff/manufacturing#job-{job_id}"


def test_a_machine_with_work_on_it_is_not_removed_and_a_retry_routes_again(app, client, staff):
    """Removing a printer with a job printing on it is refused (the app would lose track of the print); with only
    waiting jobs it is removed, and retrying such a job routes it to a machine that is set up now."""
    assert add_printer(client, staff).status_code == 201
    item_id = ready_item(app, client, {"template": "leg_cap", "params": {"sleeve_depth": 6 + unique_width() % 9},
                                       "material": "pla"})
    database, output = services(app).database, services(app).generation.output_folder
    [job_id] = jobs.plan_item(database, output, item_id)
    with database.transaction() as session:
        session.get(Job, job_id).state = "printing"
    refused = client.delete("/api/v1/staff/machines/mk3", headers=staff)
    assert refused.status_code == 409
    assert "mk3 has 1 job sent to it or in progress on it" in refused.get_json()["errors"][0]["message"]
    assert client.get("/api/v1/staff/machines", headers=staff).get_json()["machines"][0]["name"] == "mk3"

    with database.transaction() as session:
        session.get(Job, job_id).state = "queued"
    assert client.delete("/api/v1/staff/machines/mk3", headers=staff).status_code == 204
    assert jobs.prepare(database, output, job_id) == "failed"
    assert "no longer set up" in jobs.get(database, job_id).last_error

    # nothing can make it yet: the retry says why and the job stays failed
    retried = client.post(f"/api/v1/staff/jobs/{job_id}/retry", headers=staff)
    assert retried.status_code == 409
    assert "no machine can make it now: no printer is set up" in retried.get_json()["errors"][0]["message"]
    assert jobs.get(database, job_id).state == "failed"

    assert add_printer(client, staff, {**PRINTER, "name": "mk4"}).status_code == 201
    retried = client.post(f"/api/v1/staff/jobs/{job_id}/retry", headers=staff)
    assert retried.status_code == 200, retried.get_json()
    job = jobs.get(database, job_id)
    assert (job.machine, job.state) == ("mk4", "queued")


@pytest.mark.integration
def test_a_printer_without_a_host_gets_its_jobs_by_download(app, client, staff, prusa_slicer):
    """A printer fed from an SD card: its sliced jobs wait for staff (never failed for lack of a host); staff
    download the G-code, mark the job handed over, then done."""
    from .conftest import STAFF
    from .test_pages import form_values, page

    assert add_printer(client, staff, {**PRINTER, "name": "sd-card", "host": None}).status_code == 201
    item_id = ready_item(app, client, {"template": "leg_cap", "params": {"sleeve_depth": 8 + unique_width() % 9},
                                       "material": "pla"})
    database, output = services(app).database, services(app).generation.output_folder
    [job_id] = jobs.plan_item(database, output, item_id)
    assert jobs.prepare(database, output, job_id) == "ready"
    assert jobs.dispatch(database) == {}  # nothing to send it to
    assert jobs.get(database, job_id).state == "ready"
    files = {f["name"]: f for f in client.get(f"/api/v1/staff/jobs/{job_id}/files", headers=staff)
             .get_json()["files"]}
    gcode = next(f for f in files.values() if f["kind"] == "gcode")
    assert b"G1" in client.get(gcode["url"], headers=staff).data
    form = page(client.get("/staff/login"))  # the staff fixture made the account; log in on the page
    client.post("/staff/login", data={**form_values(form), "name": STAFF[0], "password": STAFF[1]})
    queue_page = client.get("/staff/manufacturing").get_data(as_text=True)
    assert "This printer has no print host" in queue_page and "Mark handed over" in queue_page
    handed = client.post(f"/api/v1/staff/jobs/{job_id}/send", headers=staff)
    assert handed.status_code == 200 and handed.get_json()["state"] == "sent"
    assert jobs.dispatch(database) == {} and jobs.poll(database) == {}
    assert client.post(f"/api/v1/staff/jobs/{job_id}/done", headers=staff).get_json()["state"] == "done"
