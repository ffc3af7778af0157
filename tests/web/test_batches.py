"""Batches in the web app: ready jobs gathered by machine and material, laid out by the core's real nesting,
closed by the shop's policy or by staff, a job taken out and the batch re-nested, the staff REST API and its
OpenAPI entries, and plain 4xx answers to bad requests.

Most jobs here are stored rows whose part outline is given (what ``web.batches.part_record`` would have read);
the nesting, the checks and the pictures are the real ones. The last test reads real drawer fronts' outlines
from their STEP files."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from shapely import affinity
from shapely.geometry import Polygon
from sqlalchemy import select

from parametric.cnc import check_programs
from tests.parametric import conftest as tools
from web import batches, create_app, jobs
from web.models import Batch, BatchPlacement, BatchSheet, Job, Order, OrderItem, utcnow
from web.staff.auth import add_user

from .conftest import STAFF, services, test_config

# the real tools' fixtures (skipped loudly when missing, a failure under CI=true), shared with tests/parametric
zbarimg = tools.zbarimg
octoprint = tools.octoprint  # the session's real OctoPrint with its Virtual Printer

SHEET = (2500.0, 1250.0)


@pytest.fixture
def app(tmp_path: Path, cache_folder: Path) -> Iterator[Flask]:
    app = create_app(test_config(tmp_path, cache_folder, BATCHING=True, BATCH_NEST_SECONDS=1.0,
                                 BATCH_CLOSE_UTILISATION=0.99))
    services(app).database.upgrade()
    yield app
    services(app).database.dispose()


@pytest.fixture
def staff(app: Flask) -> dict[str, str]:
    add_user(services(app).database, *STAFF)
    return {"Authorization": "Basic " + base64.b64encode(":".join(STAFF).encode()).decode()}


def add_router(app: Flask, name: str = "shop-router", hot_folder: Path | None = None) -> None:
    from web import machines

    record = tools.router_record("grbl", name)
    if hot_folder is not None:
        record["delivery"] = {"method": "hot_folder", "path": str(hot_folder)}
    machines.add(services(app).database, machines.parse(record))


def rectangle(width: float, height: float) -> list[list[float]]:
    return [[0, 0], [width, 0], [width, height], [0, height], [0, 0]]


def panel_job(app: Flask, *, machine: str = "shop-router", material: str = "birch_plywood", thickness: float = 18,
              size: tuple[float, float] = (400, 300), copies: int = 1, ordered_days_ago: float = 0,
              holes: list[list[list[float]]] | None = None) -> int:
    """A ready CNC job whose part (a panel, optionally with holes) batching has read."""
    database = services(app).database
    with database.transaction() as session:
        order = Order(id=uuid.uuid4().hex[:12], token_hash="t", customer_name="A", customer_email="a@example.com",
                      created_at=utcnow() - timedelta(days=ordered_days_ago))
        session.add(order)
        session.flush()
        item = OrderItem(order_id=order.id, position=1, template="cabinet_door", template_version="1.0.0",
                         params={}, quantity=copies, material=material, state="ready")
        session.add(item)
        session.flush()
        job = Job(item_id=item.id, part="door", kind="cnc", machine=machine, state="ready",
                  estimates={"copies": copies, "machining_time_s": 90.0 * copies}, files={},
                  batching={"material": material, "thickness_mm": thickness, "copies": copies, "grain": False,
                            "exterior": rectangle(*size), "holes": holes or [], "source": ""})
        session.add(job)
        session.flush()
        return job.id


def gather(app: Flask, **now: Any) -> list[int]:
    return batches.gather(services(app).database, Path(services(app).config["OUTPUT_FOLDER"]),
                          services(app).config, **now)


def batch_of(app: Flask, job_id: int) -> Batch | None:
    job = jobs.get(services(app).database, job_id)
    return batches.get(services(app).database, job.batch_id) if job and job.batch_id else None


def placed_polygons(app: Flask, batch: Batch) -> dict[int, list[Polygon]]:
    """Per sheet index, every placed part rebuilt from its job's outline and its stored placement."""
    database = services(app).database
    found: dict[int, list[Polygon]] = {}
    for sheet in batch.sheets:
        for placement in sheet.placements:
            job = jobs.get(database, placement.job_id)
            outline = Polygon(job.batching["exterior"], job.batching["holes"])
            turned = affinity.rotate(outline, placement.rotation_deg, origin=(0, 0))
            found.setdefault(sheet.index, []).append(affinity.translate(turned, placement.x_mm, placement.y_mm))
    return found


# -- gathering ---------------------------------------------------------------------------------------------------


def test_ready_jobs_are_gathered_by_machine_and_material_and_nested_without_overlap(app):
    add_router(app)
    add_router(app, "second-router")
    first = panel_job(app, copies=2)
    second = panel_job(app, size=(300, 200), copies=3)
    thinner = panel_job(app, thickness=12)
    other_wood = panel_job(app, material="mdf")
    other_router = panel_job(app, machine="second-router")
    changed = gather(app)
    assert len(changed) == 4
    shared = batch_of(app, first)
    assert shared is not None and batch_of(app, second).id == shared.id
    assert (shared.machine, shared.material, shared.thickness_mm, shared.state) == ("shop-router", "birch_plywood",
                                                                                    18, "open")
    assert {batch_of(app, job).id for job in (thinner, other_wood, other_router)}.isdisjoint({shared.id})
    assert len({batch_of(app, job).id for job in (thinner, other_wood, other_router)}) == 3
    assert (batch_of(app, thinner).thickness_mm, batch_of(app, other_wood).material,
            batch_of(app, other_router).machine) == (12, "mdf", "second-router")

    # every copy placed once, inside the sheet's 10 mm margin, never closer than the 6 mm cutter + 2 mm
    placements = sorted((p.job_id, p.copy) for sheet in shared.sheets for p in sheet.placements)
    assert placements == [(first, 1), (first, 2), (second, 1), (second, 2), (second, 3)]
    polygons = placed_polygons(app, shared)
    usable = Polygon(rectangle(SHEET[0] - 20, SHEET[1] - 20)).buffer(1e-3)
    usable = affinity.translate(usable, 10, 10)
    for placed in polygons.values():
        for index, polygon in enumerate(placed):
            assert usable.covers(polygon)
            assert all(polygon.distance(other) >= 8 - 1e-3 for other in placed[index + 1:])
    # utilisation is the parts' area over the sheets' area, measured on the stored placements
    area = sum(polygon.area for placed in polygons.values() for polygon in placed)
    assert shared.utilisation == pytest.approx(area / (len(shared.sheets) * SHEET[0] * SHEET[1]), rel=1e-6)
    assert shared.sheets[0].picture and Path(shared.sheets[0].picture).read_bytes()[:4] == b"\x89PNG"
    assert shared.sheets[0].time_s == pytest.approx(5 * 90.0)  # the parts' own toolpath times, per copy

    # a job that becomes ready later joins the open batch, which is nested again with it
    later = panel_job(app, size=(250, 250))
    gathered = services(app).queue.gather_batches.call_local()  # what the worker runs every minute
    assert gathered["batches"] == [shared.id]
    again = batches.get(services(app).database, shared.id)
    assert sorted({p.job_id for s in again.sheets for p in s.placements}) == sorted([first, second, later])


def test_the_utilisation_policy_closes_a_batch_and_a_small_one_stays_open(app, tmp_path, cache_folder):
    add_router(app)
    config = {**services(app).config, "BATCH_CLOSE_UTILISATION": 0.7}
    big = panel_job(app, size=(1200, 1000), copies=2)  # 2 x 1.2 m2 on a 3.125 m2 sheet: 77 %
    small = panel_job(app, material="oak", size=(200, 100))
    database, output = services(app).database, Path(config["OUTPUT_FOLDER"])
    batches.gather(database, output, config)
    closed, still_open = batch_of(app, big), batch_of(app, small)
    assert closed.state == "closed" and len(closed.sheets) == 1 and closed.closed_at is not None
    assert closed.utilisation == pytest.approx(2 * 1200 * 1000 / (SHEET[0] * SHEET[1]))
    assert "77% utilisation" in closed.close_reason and "70%" in closed.close_reason
    assert still_open.state == "open" and still_open.close_reason is None
    # a closed batch takes no new job: the next one of that material opens a new batch
    newer = panel_job(app, size=(500, 400))
    batches.gather(database, output, config)
    assert batch_of(app, newer).id != closed.id and batch_of(app, newer).state == "open"


def test_the_oldest_jobs_ship_date_closes_a_batch_in_time(app):
    add_router(app)
    fresh = panel_job(app, size=(300, 300))
    gather(app)
    assert batch_of(app, fresh).state == "open"
    # an order 4.5 days old: the quote's 5 production days for CNC leave less than the 24 h margin
    late = panel_job(app, size=(300, 300), ordered_days_ago=4.5)
    gather(app)
    batch = batch_of(app, late)
    assert batch.id == batch_of(app, fresh).id and batch.state == "closed"
    assert f"job {late}" in batch.close_reason and "promised to ship by" in batch.close_reason


def test_a_job_taken_out_keeps_its_state_and_the_batch_is_nested_again(app, client, staff):
    add_router(app)
    kept = panel_job(app, copies=2)
    taken = panel_job(app, size=(600, 500))
    gather(app)
    batch = batch_of(app, kept)
    assert batch_of(app, taken).id == batch.id
    response = client.delete(f"/api/v1/staff/batches/{batch.id}/jobs/{taken}", headers=staff)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["outcome"] == f"job {taken} taken out" and [j["id"] for j in body["job_list"]] == [kept]
    assert sorted((p["job_id"], p["copy"]) for s in body["sheet_list"] for p in s["placements"]) == [(kept, 1),
                                                                                                      (kept, 2)]
    out = jobs.get(services(app).database, taken)
    assert out.batch_id is None and out.state == "ready" and out.batching["kept_out"] is True
    with services(app).database.session() as session:
        assert session.scalars(select(BatchPlacement).where(BatchPlacement.job_id == taken)).all() == []
    # re-nested: the utilisation now counts the kept job's copies alone
    assert body["utilisation"] == pytest.approx(2 * 400 * 300 / (SHEET[0] * SHEET[1]), rel=1e-3)
    # the job taken out is never gathered again: it is made on its own
    gather(app)
    assert jobs.get(services(app).database, taken).batch_id is None
    # taking it out again, or a job of no batch, is refused in plain words
    again = client.delete(f"/api/v1/staff/batches/{batch.id}/jobs/{taken}", headers=staff)
    assert again.status_code == 404
    assert again.get_json()["errors"][0]["message"] == f"job {taken} is not in batch {batch.id}"


# -- the staff API -----------------------------------------------------------------------------------------------


def test_staff_list_see_close_and_send_a_batch_through_the_api(app, client, staff):
    add_router(app)  # its files are downloaded by staff: sending hands the sheets over
    first, second = panel_job(app, copies=2), panel_job(app, size=(350, 250))
    gather(app)
    batch_id = batch_of(app, first).id
    assert client.get("/api/v1/staff/batches").status_code == 401
    assert client.post(f"/api/v1/staff/batches/{batch_id}/close").status_code == 401
    listed = client.get("/api/v1/staff/batches", headers=staff).get_json()["batches"]
    assert [(b["id"], b["state"], b["jobs"], b["sheets"]) for b in listed] == [(batch_id, "open", 2, 1)]
    assert client.get("/api/v1/staff/batches?state=closed", headers=staff).get_json() == {"batches": []}
    detail = client.get(f"/api/v1/staff/batches/{batch_id}", headers=staff).get_json()
    assert detail["material"] == "birch_plywood" and detail["thickness_mm"] == 18
    sheet = detail["sheet_list"][0]
    assert sheet["size_mm"] == list(SHEET) and 0 < sheet["utilisation"] < 1
    assert {p["job_id"] for p in sheet["placements"]} == {first, second}
    with services(app).database.session() as session:
        order_of = {job.id: session.get(OrderItem, job.item_id).order_id
                    for job in session.scalars(select(Job)).all()}
    assert {(j["id"], j["order_id"]) for j in detail["job_list"]} == {(first, order_of[first]),
                                                                       (second, order_of[second])}
    picture = client.get(sheet["picture"], headers=staff)
    assert picture.status_code == 200 and picture.mimetype == "image/png" and picture.data[:4] == b"\x89PNG"

    # sending an open batch is refused; staff close it, then send it
    refused = client.post(f"/api/v1/staff/batches/{batch_id}/send", headers=staff)
    assert refused.status_code == 409 and "close it first" in refused.get_json()["errors"][0]["message"]
    closed = client.post(f"/api/v1/staff/batches/{batch_id}/close", headers=staff)
    assert closed.status_code == 200 and closed.get_json()["state"] == "closed"
    assert closed.get_json()["close_reason"] == f"closed by staff ({STAFF[0]})"
    twice = client.post(f"/api/v1/staff/batches/{batch_id}/close", headers=staff)
    assert twice.status_code == 409
    assert twice.get_json()["errors"][0]["message"] == "a closed batch cannot be closed; only an open one"
    renested = client.post(f"/api/v1/staff/batches/{batch_id}/renest", headers=staff)
    assert renested.status_code == 200 and renested.get_json()["state"] == "closed"
    # a batch's job is sent with its batch, not alone
    alone = client.post(f"/api/v1/staff/jobs/{first}/send", headers=staff)
    assert alone.status_code == 409 and f"batch {batch_id}" in alone.get_json()["errors"][0]["message"]
    sent = client.post(f"/api/v1/staff/batches/{batch_id}/send", headers=staff)
    assert sent.status_code == 200, sent.get_json()
    assert sent.get_json()["state"] == "sent" and "handed over" in sent.get_json()["outcome"]
    assert [j["state"] for j in sent.get_json()["job_list"]] == ["sent", "sent"]
    # once sent, the batch's layout is fixed
    for method, url in (("post", f"/api/v1/staff/batches/{batch_id}/close"),
                        ("post", f"/api/v1/staff/batches/{batch_id}/renest"),
                        ("delete", f"/api/v1/staff/batches/{batch_id}/jobs/{first}")):
        answer = getattr(client, method)(url, headers=staff)
        assert answer.status_code == 409 and "sent batch" in answer.get_json()["errors"][0]["message"], url
    # staff mark it done once the sheets are cut: its jobs are done with it, each keeping its own order
    finished = client.post(f"/api/v1/staff/batches/{batch_id}/done", headers=staff)
    assert finished.status_code == 200 and finished.get_json()["state"] == "done"
    assert [j["state"] for j in finished.get_json()["job_list"]] == ["done", "done"]
    assert {(j["id"], j["order_id"]) for j in finished.get_json()["job_list"]} == {(first, order_of[first]),
                                                                                    (second, order_of[second])}
    again = client.post(f"/api/v1/staff/batches/{batch_id}/done", headers=staff)
    assert again.status_code == 409
    assert again.get_json()["errors"][0]["message"] == "a done batch cannot be marked done; only a sent or running one"


def test_a_sheet_that_could_not_be_cut_is_not_sent_to_a_hot_folder(app, client, staff, tmp_path):
    hot = tmp_path / "hot"
    hot.mkdir()
    add_router(app, hot_folder=hot)
    job = panel_job(app)
    gather(app)
    batch_id = batch_of(app, job).id
    # the dispatcher never sends a batch's job alone, though the router has a hot folder and the job is ready
    assert jobs.dispatch(services(app).database, batching=True) == {} and list(hot.iterdir()) == []
    assert client.post(f"/api/v1/staff/batches/{batch_id}/close", headers=staff).status_code == 200
    # these jobs have no files to cut from: the batch says so and keeps its nesting, and nothing is sent
    assert "G-code was not made" in batches.get(services(app).database, batch_id).last_error
    refused = client.post(f"/api/v1/staff/batches/{batch_id}/send", headers=staff)
    assert refused.status_code == 409 and "no G-code" in refused.get_json()["errors"][0]["message"]
    assert list(hot.iterdir()) == [] and jobs.get(services(app).database, job).state == "ready"


def test_a_job_read_for_batching_but_not_in_a_batch_yet_is_never_sent_alone(app, tmp_path):
    """Gathering reads a part's outline, then moves the job into its batch: in between (and for a plate object
    made again, until it is on its plate) the dispatcher must not send it alone, or it would be made twice."""
    hot = tmp_path / "hot"
    hot.mkdir()
    add_router(app, hot_folder=hot)
    read = panel_job(app)  # batching has read its outline; it is in no batch yet
    database = services(app).database
    assert jobs.dispatch(database, batching=True) == {}
    assert jobs.get(database, read).state == "ready" and list(hot.iterdir()) == []
    # a job batching keeps out (staff took it out, or its part could not be read) goes alone
    with database.transaction() as session:
        session.get(Job, read).batching = {**session.get(Job, read).batching, "kept_out": True}
    assert jobs.dispatch(database, batching=True) == {"shop-router": "failed"}  # picked (it has no G-code here)
    assert "no G-code" in jobs.get(database, read).last_error


def test_bad_requests_get_plain_4xx_answers(app, client, staff):
    for method, url in (("get", "/api/v1/staff/batches/999"), ("post", "/api/v1/staff/batches/999/close"),
                        ("post", "/api/v1/staff/batches/999/renest"), ("post", "/api/v1/staff/batches/999/send"),
                        ("delete", "/api/v1/staff/batches/999/jobs/1"),
                        ("get", "/api/v1/staff/batches/99999999999")):
        answer = getattr(client, method)(url, headers=staff)
        assert answer.status_code == 404, url
        assert answer.get_json()["errors"][0]["message"] == f"there is no batch {url.split('/')[5]}", url
    assert client.get("/api/v1/staff/batches/999/sheets/1/picture", headers=staff).status_code == 404
    bad = client.get("/api/v1/staff/batches?state=lost", headers=staff)
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "state"
    assert client.post("/api/v1/staff/batches/1/explode", headers=staff).status_code in (404, 405)


def test_the_batch_endpoints_are_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    paths = document["paths"]
    expected = {"/api/v1/staff/batches": ["get"], "/api/v1/staff/batches/{batch_id}": ["get"],
                "/api/v1/staff/batches/{batch_id}/close": ["post"], "/api/v1/staff/batches/{batch_id}/renest": ["post"],
                "/api/v1/staff/batches/{batch_id}/send": ["post"], "/api/v1/staff/batches/{batch_id}/done": ["post"],
                "/api/v1/staff/batches/{batch_id}/jobs/{job_id}": ["delete"],
                "/api/v1/staff/batches/{batch_id}/sheets/{index}/picture": ["get"],
                "/api/v1/staff/batches/{batch_id}/placements/{placement_id}/remake": ["post"],
                "/api/v1/staff/batches/{batch_id}/remake": ["post"],
                "/api/v1/staff/batches/{batch_id}/batch-sheet.html": ["get"],
                "/api/v1/staff/batches/{batch_id}/batch-sheet.pdf": ["get"]}
    for path, methods in expected.items():
        for method in methods:
            operation = paths[path][method]
            assert operation["security"] == [{"staff": []}], path
            assert "401" in operation["responses"] and "404" in operation["responses"] or path.endswith("batches")
    assert "409" in paths["/api/v1/staff/batches/{batch_id}/close"]["post"]["responses"]
    assert {"409", "422"} <= set(paths["/api/v1/staff/batches/{batch_id}/placements/{placement_id}/remake"]["post"]
                                 ["responses"])
    plate = paths["/api/v1/staff/batches/{batch_id}/remake"]["post"]
    assert {"409", "422"} <= set(plate["responses"])
    assert set(plate["requestBody"]["content"]["application/json"]["schema"]["properties"]) == {"plate", "reason"}


def test_the_batch_pages_show_the_sheet_pictures_and_placements(app, client, staff):
    from .test_manufacturing_cnc import page_login

    add_router(app)
    job = panel_job(app, copies=2)
    gather(app)
    batch_id = batch_of(app, job).id
    page_login(client)
    listing = client.get("/staff/batches").get_data(as_text=True)
    assert f'id="batch-{batch_id}"' in listing and "birch_plywood" in listing
    page = client.get(f"/staff/batches/{batch_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Sheet 1" in html and f'id="job-{job}"' in html
    src = f"/staff/batches/{batch_id}/sheets/1/picture"
    assert src in html and client.get(src).data[:4] == b"\x89PNG"
    assert client.get("/staff/batches/999").status_code == 404


# -- real parts --------------------------------------------------------------------------------------------------


@pytest.mark.integration  # real CadQuery and CAM, and the job sheet's PDF (WeasyPrint)
def test_real_drawer_fronts_are_nested_by_their_true_outlines_with_holes(app, client, staff):
    from .test_manufacturing_cnc import WIDTH, ready_cnc_jobs

    add_router(app)
    first, second = (job.id for job in ready_cnc_jobs(app, client, items=2))
    gather(app)
    batch = batch_of(app, first)
    assert batch is not None and batch_of(app, second).id == batch.id
    stored = jobs.get(services(app).database, first)
    outline = Polygon(stored.batching["exterior"], stored.batching["holes"])
    assert len(outline.interiors) == 2  # the drawer front's two handle holes, from its STEP's CAM features
    assert outline.bounds[2] - outline.bounds[0] == pytest.approx(WIDTH, abs=0.01)
    assert (stored.batching["material"], stored.batching["thickness_mm"]) == ("birch_plywood", 18)
    assert sum(len(sheet.placements) for sheet in batch.sheets) == 2
    with services(app).database.session() as session:
        assert session.scalar(select(BatchSheet.utilisation).where(BatchSheet.batch_id == batch.id)) == \
            pytest.approx(2 * outline.area / (SHEET[0] * SHEET[1]), rel=1e-6)
    # closing cuts the sheets: one program per tool (GRBL) for the whole sheet, checked by rs274, both doors on it
    closed = client.post(f"/api/v1/staff/batches/{batch.id}/close", headers=staff)
    assert closed.status_code == 200, closed.get_json()
    assert closed.get_json()["last_error"] is None
    sheet = batches.get(services(app).database, batch.id).sheets[0]
    assert sheet.files["gcode"] and all(Path(p).is_file() for p in sheet.files["gcode"])
    assert sheet.estimates["verified_moves"] > 0 and sheet.time_s > 0
    canon = check_programs(sheet.files["gcode"])
    assert canon.cutting and canon.deepest() < -18
    assert sorted((p.job_id, p.copy) for p in sheet.placements) == [(first, 1), (second, 1)]
    sent = client.post(f"/api/v1/staff/batches/{batch.id}/send", headers=staff)
    assert sent.status_code == 200 and [j["state"] for j in sent.get_json()["job_list"]] == ["sent", "sent"]


def print_job(app: Flask, stl: Path, *, copies: int, material: str = "pla", machine: str = "mk3") -> int:
    """A ready printed job whose part is the mesh in ``stl`` (its footprint read by the core, as gathering does)."""
    from parametric.fdm.footprint import footprint, read_mesh

    from .test_manufacturing import stored_job

    mesh = read_mesh(stl)
    outline = footprint(mesh)
    return stored_job(services(app).database, material=material, state="ready", machine=machine,
                      estimates={"copies": copies},
                      batching={"material": material, "copies": copies, "grain": False, "source": str(stl),
                                "exterior": [list(p) for p in outline.exterior.coords], "holes": [],
                                "height_mm": float(mesh.extents[2]), "size_mm": [float(v) for v in mesh.extents[:2]]})


@pytest.mark.integration  # PrusaSlicer
def test_printed_jobs_of_several_orders_share_plates_sliced_once_when_the_batch_closes(app, client, staff, tmp_path):
    import trimesh

    from parametric.fdm import slicer_path
    from web import machines

    slicer_path()  # PrusaSlicer is installed (a SlicerError says how to install it)
    machines.add(services(app).database, machines.parse(
        {"kind": "printer", "name": "mk3", "build_volume_mm": [250, 210, 210], "materials": ["pla", "petg"]}))
    box = tmp_path / "box.stl"
    trimesh.creation.box((40, 30, 5)).apply_translation((20, 15, 2.5)).export(box)
    pull = tmp_path / "pull.stl"
    trimesh.creation.cylinder(radius=12, height=8).apply_translation((0, 0, 4)).export(pull)
    first, second = print_job(app, box, copies=6), print_job(app, pull, copies=4)
    other = print_job(app, box, copies=2, material="petg")
    gather(app)
    batch = batch_of(app, first)
    assert batch_of(app, second).id == batch.id and batch_of(app, other).id != batch.id
    assert (batch.process, batch.material, batch.thickness_mm, len(batch.sheets)) == ("fdm", "pla", None, 1)
    closed = client.post(f"/api/v1/staff/batches/{batch.id}/close", headers=staff)
    assert closed.status_code == 200, closed.get_json()
    plate = batches.get(services(app).database, batch.id).sheets[0]
    gcode = Path(plate.files["gcode"][0])
    text = gcode.read_text()
    assert text.count("; printing object") >= 10  # every object of both orders labelled, on one plate
    assert plate.time_s and plate.time_s > 0 and plate.estimates["filament_g"] > 0  # PrusaSlicer's figures
    assert sorted((p.job_id, p.copy) for p in plate.placements) == sorted(
        [(first, c) for c in range(1, 7)] + [(second, c) for c in range(1, 5)])
    footprints = 6 * 40 * 30 + 4 * Polygon(batches._polygon(jobs.get(services(app).database, second).batching)).area
    assert closed.get_json()["utilisation"] == pytest.approx(footprints / (250 * 210), rel=1e-3)


def batch_sheet_qr(pdf: bytes, zbarimg: str, folder: Path) -> str:
    """What the QR code on the batch sheet's first page decodes to (the page drawn by pdftoppm, read by zbarimg)."""
    import subprocess

    (folder / "sheet.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(folder / "sheet.pdf"),
                    str(folder / "page")], check=True)
    decoded = subprocess.run([zbarimg, "-q", "--raw", "-Sdisable", "-Sqrcode.enable",
                              str(next(folder.glob("page*.png")))], capture_output=True, text=True)
    return decoded.stdout.strip()


@pytest.mark.integration  # PrusaSlicer, WeasyPrint, zbarimg
def test_a_failed_plate_object_is_printed_again_alone_and_the_other_parts_stay_done(app, client, staff, tmp_path,
                                                                                   zbarimg):
    import re

    import trimesh

    from web import machines

    machines.add(services(app).database, machines.parse(
        {"kind": "printer", "name": "mk3", "build_volume_mm": [250, 210, 210], "materials": ["pla"]}))
    box = tmp_path / "box.stl"
    trimesh.creation.box((30, 20, 4)).apply_translation((15, 10, 2)).export(box)
    pull = tmp_path / "pull.stl"
    trimesh.creation.cylinder(radius=8, height=6).apply_translation((0, 0, 3)).export(pull)
    boxes, pulls = print_job(app, box, copies=3), print_job(app, pull, copies=2)
    gather(app)
    batch_id = batch_of(app, boxes).id
    # an object of a batch still to print is not made again: nothing has failed yet
    detail = client.get(f"/api/v1/staff/batches/{batch_id}", headers=staff).get_json()
    assert detail["batch_sheet"] is None  # an open batch's layout may change: no batch sheet yet
    first = detail["sheet_list"][0]["placements"][0]["id"]
    early = client.post(f"/api/v1/staff/batches/{batch_id}/placements/{first}/remake", headers=staff)
    assert early.status_code == 409 and "only of a done or failed one" in early.get_json()["errors"][0]["message"]
    for action in ("close", "send", "done"):
        answer = client.post(f"/api/v1/staff/batches/{batch_id}/{action}", headers=staff)
        assert answer.status_code == 200, (action, answer.get_json())
    done = answer.get_json()
    assert done["state"] == "done" and [j["state"] for j in done["job_list"]] == ["done", "done"]
    plate = done["sheet_list"][0]
    assert [p["object"] for p in plate["placements"]] == [f"o{n:03d}.stl" for n in range(1, 6)]
    gcode = Path(batches.get(services(app).database, batch_id).sheets[0].files["gcode"][0]).read_text()
    assert set(re.findall(r"; printing object (o\d{3}\.stl)", gcode)) == {p["object"] for p in plate["placements"]}

    # the batch sheet is linked, as HTML and PDF, and its QR code opens the batch on the dashboard
    assert set(done["batch_sheet"]) == {"html", "pdf"}
    pdf = client.get(done["batch_sheet"]["pdf"], headers=staff)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data[:5] == b"%PDF-"
    html = client.get(done["batch_sheet"]["html"], headers=staff)
    assert html.status_code == 200 and html.mimetype == "text/html" and f"B-{batch_id:04d}" in html.get_data(True)
    assert batch_sheet_qr(pdf.data, zbarimg, tmp_path) == \
        f"{services(app).config['PUBLIC_URL'].rstrip('/')}/staff/batches/{batch_id}"
    assert client.get(done["batch_sheet"]["pdf"]).status_code == 401
    from .test_manufacturing_cnc import page_login

    page_login(client)  # the batch's page links its batch sheet and offers each object to print again
    page = client.get(f"/staff/batches/{batch_id}").get_data(as_text=True)
    assert f'href="/staff/batches/{batch_id}/batch-sheet.pdf"' in page and "o005.stl" in page
    assert client.get(f"/staff/batches/{batch_id}/batch-sheet.pdf").data[:5] == b"%PDF-"
    assert page.count('aria-label="Object o0') == 5 and \
        f'action="/staff/batches/{batch_id}/placements/{plate["placements"][0]["id"]}/remake"' in page

    # the pull's second copy failed on the plate: it goes on a plate of its own, sliced and handed over
    failed = next(p for p in plate["placements"] if (p["job_id"], p["copy"]) == (pulls, 2))
    again = client.post(f"/api/v1/staff/batches/{batch_id}/placements/{failed['id']}/remake", headers=staff)
    assert again.status_code == 200, again.get_json()
    body = again.get_json()
    assert body["remade_from"] == batch_id and body["id"] != batch_id and body["state"] == "sent"
    [remake_job] = body["job_list"]
    assert remake_job["copies"] == 1 and remake_job["state"] == "sent"
    assert remake_job["remake_of"] | {"reason": None} == {
        "batch": batch_id, "job": pulls, "reason": None,
        "placements": [{"plate": 1, "placement": failed["id"], "copy": 2, "object": failed["object"]}]}
    assert [(p["job_id"], p["copy"]) for s in body["sheet_list"] for p in s["placements"]] == [(remake_job["id"], 1)]
    new_gcode = Path(batches.get(services(app).database, body["id"]).sheets[0].files["gcode"][0]).read_text()
    assert set(re.findall(r"; printing object (\S+)", new_gcode)) == {"o001.stl"}  # the one object, alone
    # the first batch and its jobs stay done; the placement says which job makes it again
    first_batch = client.get(f"/api/v1/staff/batches/{batch_id}", headers=staff).get_json()
    assert first_batch["state"] == "done" and [j["state"] for j in first_batch["job_list"]] == ["done", "done"]
    assert [p["remade_as"] for p in first_batch["sheet_list"][0]["placements"]] == \
        [remake_job["id"] if p["id"] == failed["id"] else None for p in plate["placements"]]
    # reported twice, it is not made twice
    twice = client.post(f"/api/v1/staff/batches/{batch_id}/placements/{failed['id']}/remake", headers=staff)
    assert twice.status_code == 409 and f"already being made again as job {remake_job['id']}" in \
        twice.get_json()["errors"][0]["message"]
    assert client.post(f"/api/v1/staff/batches/{body['id']}/done", headers=staff).get_json()["state"] == "done"
    # every good copy was made once, the failed one once more: three boxes and two pulls in all
    with services(app).database.session() as session:
        made = session.execute(select(Job.id, BatchPlacement.copy).join(BatchPlacement, BatchPlacement.job_id == Job.id)
                               .where(Job.state == "done")).all()
    assert sorted(made) == sorted([(boxes, 1), (boxes, 2), (boxes, 3), (pulls, 1), (pulls, 2), (remake_job["id"], 1)])
    assert client.post(f"/api/v1/staff/batches/{batch_id}/placements/{2**31}/remake",
                       headers=staff).status_code == 404
    missing = client.post(f"/api/v1/staff/batches/{batch_id}/placements/999999/remake", headers=staff)
    assert missing.status_code == 404 and missing.get_json()["errors"][0]["field"] == "placement_id"


def test_a_routers_part_is_not_made_again_alone(app, client, staff):
    add_router(app)
    job = panel_job(app)
    gather(app)
    batch = batch_of(app, job)
    placement = batch.sheets[0].placements[0].id
    refused = client.post(f"/api/v1/staff/batches/{batch.id}/placements/{placement}/remake", headers=staff)
    assert refused.status_code == 409 and "only a plate's object" in refused.get_json()["errors"][0]["message"]


def follow_until(app: Flask, batch_id: int, wanted: tuple[str, ...], timeout_s: float) -> Batch:
    """Run the worker's batch follower (what its Batcher duty does every few seconds) until the batch is in one
    of ``wanted``."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        batches.follow(services(app).database, timeout_s=5)
        batch = batches.get(services(app).database, batch_id)
        if batch.state in wanted:
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} stayed {batch.state}, not {wanted}"
        time.sleep(1)


@pytest.mark.integration  # PrusaSlicer and a real OctoPrint driving its Virtual Printer
def test_a_plate_is_followed_on_octoprint_cancelled_it_fails_and_one_object_is_printed_again(app, client, staff,
                                                                                             tmp_path, octoprint):
    import time

    from parametric.hosts import JOB_TAG
    from web import machines

    machines.add(services(app).database, machines.parse(
        {"kind": "printer", "name": "mk3", "build_volume_mm": [250, 210, 210], "materials": ["pla"],
         "host": {"kind": "octoprint", "url": octoprint.url, "api_key": octoprint.api_key}}))
    idle_octoprint(octoprint)
    assert octoprint._call("POST", "/api/printer/command", {"commands": ["M220 S2000"]})[0] == 204  # fast moves
    disc, tile = small_parts(tmp_path)
    discs, tiles = print_job(app, disc, copies=2), print_job(app, tile, copies=1)
    gather(app)
    batch_id = batch_of(app, discs).id
    for action in ("close", "send"):
        answer = client.post(f"/api/v1/staff/batches/{batch_id}/{action}", headers=staff)
        assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["outcome"] == "1 plate(s) sent"

    # followed on OctoPrint: running, its jobs printing with the plate's completion as OctoPrint reports it
    running = follow_until(app, batch_id, ("running",), 60)
    assert running.state == "running"
    deadline = time.monotonic() + 120
    while not 0 < jobs.get(services(app).database, discs).progress < 100:
        assert time.monotonic() < deadline, "no progress was read from OctoPrint"
        batches.follow(services(app).database, timeout_s=5)
        time.sleep(0.5)
    assert {jobs.get(services(app).database, job).state for job in (discs, tiles)} == {"printing"}
    # stopped on the printer: the batch and its jobs fail, saying which plate
    assert octoprint._call("POST", "/api/job", {"command": "cancel"})[0] == 204
    failed = follow_until(app, batch_id, ("failed", "done"), 60)
    assert failed.state == "failed" and failed.last_error.startswith("plate 1 stopped on the machine")
    assert {jobs.get(services(app).database, job).state for job in (discs, tiles)} == {"failed"}

    # the tile is printed again alone, on a plate of its own, and followed to its end
    placement = next(p for p in failed.sheets[0].placements if p.job_id == tiles)
    remade = client.post(f"/api/v1/staff/batches/{batch_id}/placements/{placement.id}/remake", headers=staff)
    assert remade.status_code == 200, remade.get_json()
    body = remade.get_json()
    assert body["state"] == "sent" and body["outcome"].endswith("1 plate(s) sent")
    [again] = body["job_list"]
    done = follow_until(app, body["id"], ("done", "failed"), 300)
    assert done.state == "done" and jobs.get(services(app).database, again["id"]).state == "done"
    assert jobs.get(services(app).database, again["id"]).progress == 100.0
    # the cancelled plate is never started again by itself; each plate was uploaded once
    batches.follow(services(app).database, timeout_s=5)
    assert batches.get(services(app).database, batch_id).state == "failed"
    status, listing = octoprint._call("GET", "/api/files/local?recursive=true")
    tagged = {(f.get("userdata") or {}).get(JOB_TAG): f.get("prints") or {} for f in listing["files"]}
    assert {tag for tag in tagged if tag and tag.startswith("batch-")} == {f"batch-{batch_id}-1",
                                                                          f"batch-{body['id']}-1"}
    cancelled, printed = tagged[f"batch-{batch_id}-1"], tagged[f"batch-{body['id']}-1"]
    assert (cancelled.get("success") or 0, cancelled.get("failure")) == (0, 1)
    assert (printed.get("success"), printed.get("failure") or 0) == (1, 0)


def test_a_plate_is_made_again_only_of_a_finished_printer_batch_and_bad_requests_name_the_field(app, client, staff,
                                                                                               tmp_path):
    import trimesh

    from web import machines

    add_router(app)
    panel = panel_job(app)
    machines.add(services(app).database, machines.parse(
        {"kind": "printer", "name": "mk3", "build_volume_mm": [250, 210, 210], "materials": ["pla"]}))
    box = tmp_path / "box.stl"
    trimesh.creation.box((30, 20, 4)).apply_translation((15, 10, 2)).export(box)
    printed = print_job(app, box, copies=2)
    gather(app)
    router_batch, printer_batch = batch_of(app, panel).id, batch_of(app, printed).id
    url = f"/api/v1/staff/batches/{printer_batch}/remake"
    assert client.post(url).status_code == 401
    for body, field, words in (({"plate": "two"}, "plate", "plate is the number of a plate"),
                               ({"plate": 0}, "plate", "plate is the number of a plate"),
                               ({"plate": True}, "plate", "plate is the number of a plate"),
                               ({"reason": 5}, "reason", "at most 500 characters"),
                               ({"reason": "x" * 501}, "reason", "at most 500 characters"),
                               ({"colour": "red"}, "colour", "the fields are plate and reason"),
                               ([1], "", "a JSON object")):
        answer = client.post(url, json=body, headers=staff)
        assert answer.status_code == 422, body
        [error] = answer.get_json()["errors"]
        assert error["field"] == field and words in error["message"], (body, error)
    # an open batch's plate has not been printed: nothing to make again
    still_open = client.post(url, headers=staff)
    assert still_open.status_code == 409
    assert "only of a done or failed one" in still_open.get_json()["errors"][0]["message"]
    cnc = client.post(f"/api/v1/staff/batches/{router_batch}/remake", json={"plate": 1}, headers=staff)
    assert cnc.status_code == 409 and "only a plate's object" in cnc.get_json()["errors"][0]["message"]
    for missing in (999999, 2**31):
        answer = client.post(f"/api/v1/staff/batches/{missing}/remake", headers=staff)
        assert answer.status_code == 404 and answer.get_json()["errors"][0]["field"] == "batch_id"
    # nothing changed: the printed job is still waiting on its open batch, and no job was added
    assert (jobs.get(services(app).database, printed).state, batch_of(app, printed).state) == ("ready", "open")
    with services(app).database.session() as session:
        assert len(session.scalars(select(Job)).all()) == 2


def test_when_one_plate_stops_the_jobs_whose_every_copy_printed_on_other_plates_are_done(app, client, tmp_path):
    """A batch of several plates whose printer stopped one: the parts already printed on the plates that finished
    are made, so their jobs are done (never held up, never made again); a job with a copy on the stopped plate, or
    on one never started, fails with the batch."""
    import lxml.html
    import trimesh

    from web import machines

    database = services(app).database
    machines.add(database, machines.parse(
        {"kind": "printer", "name": "mk3", "build_volume_mm": [90, 90, 90], "materials": ["pla"]}))
    tile = tmp_path / "tile.stl"
    trimesh.creation.box((60, 60, 2)).apply_translation((30, 30, 1)).export(tile)  # one to a plate
    printed, stopped, spread = print_job(app, tile, copies=1), print_job(app, tile, copies=1), print_job(
        app, tile, copies=2)
    gather(app)
    batch = batch_of(app, printed)
    assert batch is not None and {batch_of(app, job).id for job in (stopped, spread)} == {batch.id}
    plate_of: dict[int, list[int]] = {}
    for sheet in batch.sheets:
        for placement in sheet.placements:
            plate_of.setdefault(placement.job_id, []).append(sheet.index)
    assert len(batch.sheets) == 4 and sorted(map(len, plate_of.values())) == [1, 1, 2]
    with database.transaction() as session:  # sent, and the printer started (as follow() records it)
        session.get(Batch, batch.id).state = "running"
        for job_id in (printed, stopped, spread):
            session.get(Job, job_id).state = "printing"
    [first_of_spread, second_of_spread] = plate_of[spread]
    ended = {plate_of[printed][0]: "done", plate_of[stopped][0]: "stopped", first_of_spread: "done",
             second_of_spread: "not printed"}
    batches.stop(database, batches.get(database, batch.id), ended)

    failed = batches.get(database, batch.id)
    assert failed.state == "failed" and {s.index: s.files["ended"] for s in failed.sheets} == ended
    assert failed.last_error == f"plate {plate_of[stopped][0]} stopped on the machine (cancelled there or a machine " \
                                "error)"
    made = jobs.get(database, printed)
    assert (made.state, made.progress, made.finished_at is not None) == ("done", 100.0, True)
    assert {jobs.get(database, job).state for job in (stopped, spread)} == {"failed"}
    assert sorted(batches.stopped_plates(failed)) == sorted([plate_of[stopped][0], second_of_spread])
    for job_id, words in ((printed, "printed"), (stopped, "held up; our workshop is on it")):
        making = lxml.html.fromstring(tracked(app, client, job_id)).xpath("//ul[@class='production']/li")
        assert [li.text_content() for li in making] == [f"{jobs.get(database, job_id).part}: {words}"], job_id


def small_parts(folder: Path) -> tuple[Path, Path]:
    """Two quick prints as STLs in ``folder``: a disc (12 mm across) and a 12 mm square tile, 1.6 mm thick."""
    import trimesh

    disc = folder / "disc.stl"
    trimesh.creation.cylinder(radius=6, height=1.6).apply_translation((0, 0, 0.8)).export(disc)
    tile = folder / "tile.stl"
    trimesh.creation.box((12, 12, 1.6)).apply_translation((6, 6, 0.8)).export(tile)
    return disc, tile


def idle_octoprint(octoprint: Any) -> None:
    """Wait until the session's Virtual Printer is idle, then delete the plates earlier tests uploaded: each test's
    database numbers its batches from 1, so an earlier test's plate would carry the same tag (``batch-1-1``) and be
    taken for this test's (already sent, and cancelled there)."""
    import time

    from parametric.hosts import JOB_TAG

    deadline = time.monotonic() + 240
    while octoprint._call("GET", "/api/job")[1].get("state") != "Operational":  # an earlier print may be ending
        assert time.monotonic() < deadline, "the Virtual Printer never became idle"
        time.sleep(1)
    _, listing = octoprint._call("GET", "/api/files/local?recursive=true")
    for upload in listing.get("files", []):
        if str((upload.get("userdata") or {}).get(JOB_TAG) or "").startswith("batch-"):
            assert octoprint._call("DELETE", f"/api/files/local/{upload['path']}")[0] == 204, upload["path"]


def tracked(app: Flask, client: Any, job_id: int) -> str:
    """The customer's tracking page of the order of ``job_id`` (its order given a token, as placing does)."""
    from web.orders import tokens

    token = tokens.new_token()
    with services(app).database.transaction() as session:
        order = session.get(Order, session.get(OrderItem, session.get(Job, job_id).item_id).order_id)
        order.token_hash = tokens.token_hash(token)
        order_id = order.id
    page = client.get(f"/track/{order_id}?token={token}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


@pytest.mark.integration  # PrusaSlicer and a real OctoPrint driving its Virtual Printer
def test_a_plate_stopped_on_octoprint_is_made_again_whole_in_one_step(app, client, staff, tmp_path, octoprint):
    import re

    import lxml.html

    from web import machines

    from .test_manufacturing_cnc import page_login
    from .test_pages import form_values

    database = services(app).database
    machines.add(database, machines.parse(
        {"kind": "printer", "name": "mk3", "build_volume_mm": [250, 210, 210], "materials": ["pla", "petg"],
         "host": {"kind": "octoprint", "url": octoprint.url, "api_key": octoprint.api_key}}))
    idle_octoprint(octoprint)
    assert octoprint._call("POST", "/api/printer/command", {"commands": ["M220 S2000"]})[0] == 204  # fast moves
    disc, tile = small_parts(tmp_path)
    # two orders on one plate, and a third order's part of another filament, waiting on its own batch
    discs, tiles = print_job(app, disc, copies=2), print_job(app, tile, copies=1)
    other = print_job(app, tile, copies=1, material="petg")
    gather(app)
    batch_id = batch_of(app, discs).id
    other_batch = batch_of(app, other).id
    assert batch_of(app, tiles).id == batch_id and other_batch != batch_id
    for action in ("close", "send"):
        answer = client.post(f"/api/v1/staff/batches/{batch_id}/{action}", headers=staff)
        assert answer.status_code == 200, answer.get_json()
    follow_until(app, batch_id, ("running",), 60)
    assert octoprint._call("POST", "/api/job", {"command": "cancel"})[0] == 204  # spaghetti: staff stop it
    failed = follow_until(app, batch_id, ("failed", "done"), 60)
    assert failed.state == "failed" and failed.sheets[0].files["ended"] == "stopped"
    assert batches.stopped_plates(failed) == [1]
    plate = {p.id: (p.job_id, p.copy) for p in failed.sheets[0].placements}
    assert sorted(plate.values()) == [(discs, 1), (discs, 2), (tiles, 1)]
    assert "held up; our workshop is on it" in tracked(app, client, discs)
    before_other = jobs.get(database, other)

    page_login(client)  # the batch's page offers the stopped plate to be made again whole
    page = client.get(f"/staff/batches/{batch_id}").get_data(as_text=True)
    assert f'action="/staff/batches/{batch_id}/remake"' in page and 'name="plate" value="1"' in page
    assert "Make this plate again" in page and "On the printer: stopped." in page
    form = form_values(lxml.html.fromstring(page), "remake-plate-1")
    assert form["plate"] == "1" and form["csrf_token"]
    forged = client.post(f"/staff/batches/{batch_id}/remake", data={"plate": "1"})
    assert forged.status_code == 400 and jobs.get(database, discs).batching.get("remade") is None  # no CSRF token

    # one call makes every object of the stopped plate again: one new job per order's part, on a new plate
    answer = client.post(f"/api/v1/staff/batches/{batch_id}/remake", json={"reason": "spaghetti"}, headers=staff)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["remade_from"] == batch_id and body["id"] != batch_id and body["batches"] == [body["id"]]
    assert body["state"] == "sent" and body["outcome"].endswith("1 plate(s) sent") and body["skipped"] == []
    assert sorted((e["placement"], e["job"], e["copy"]) for e in body["remade"]) == \
        sorted((placement, *made) for placement, made in plate.items())
    again = {job["remake_of"]["job"]: job for job in body["job_list"]}
    assert set(again) == {discs, tiles} and len(body["job_list"]) == 2
    assert (again[discs]["copies"], again[tiles]["copies"]) == (2, 1)
    assert {job["state"] for job in body["job_list"]} == {"sent"}
    assert again[discs]["remake_of"]["reason"] == f"spaghetti (reported by staff {STAFF[0]})"
    assert sorted(p["copy"] for p in again[discs]["remake_of"]["placements"]) == [1, 2]
    new_plate = [(p["job_id"], p["copy"]) for s in body["sheet_list"] for p in s["placements"]]
    assert sorted(new_plate) == sorted([(again[discs]["id"], 1), (again[discs]["id"], 2), (again[tiles]["id"], 1)])
    # the new plate was sliced once with every object on it, each labelled in its G-code
    [new_sheet] = batches.get(database, body["id"]).sheets
    gcode = Path(new_sheet.files["gcode"][0]).read_text()
    assert set(re.findall(r"; printing object (o\d{3}\.stl)", gcode)) == {"o001.stl", "o002.stl", "o003.stl"}
    # no part is made twice: each placement of the stopped plate is recorded once, by the job making it again
    recorded = {}
    for job_id in (discs, tiles):
        recorded.update(jobs.get(database, job_id).batching["remade"])
    assert {int(k): v for k, v in recorded.items()} == {
        e["placement"]: again[e["job"]]["id"] for e in body["remade"]}
    first = client.get(f"/api/v1/staff/batches/{batch_id}", headers=staff).get_json()
    assert first["state"] == "failed" and {j["state"] for j in first["job_list"]} == {"failed"}
    assert {p["id"]: p["remade_as"] for p in first["sheet_list"][0]["placements"]} == {
        int(k): v for k, v in recorded.items()}
    # the third order's part is as it was
    after_other = jobs.get(database, other)
    assert (after_other.state, after_other.batch_id, after_other.batching) == \
        (before_other.state, before_other.batch_id, before_other.batching)
    assert batches.get(database, other_batch).state == "open"

    # asked again (for every stopped plate, or for plate 1), nothing is made twice
    for repeat in (None, {"plate": 1}):
        twice = client.post(f"/api/v1/staff/batches/{batch_id}/remake", json=repeat, headers=staff)
        assert twice.status_code == 409, twice.get_json()
        message = twice.get_json()["errors"][0]["message"]
        assert message.count("is already being made again as job") == 3 and \
            f"(job {tiles} copy 1) is already being made again as job {again[tiles]['id']}" in message
    resent = client.post(f"/staff/batches/{batch_id}/remake", data={**form, "reason": "spaghetti again"},
                         follow_redirects=True)  # the page's form, as it was before the plate was made again
    assert resent.status_code == 200 and "already being made again as job" in resent.get_data(as_text=True)
    with database.session() as session:
        assert len(session.scalars(select(Job)).all()) == 5
    page = client.get(f"/staff/batches/{batch_id}").get_data(as_text=True)
    assert "Make this plate again" not in page and page.count("made again as job") == 3

    # the customers read that their parts are being made again, not that they are held up
    for job_id in (discs, tiles):
        tracking = tracked(app, client, job_id)
        assert "did not come out right; being made again" in tracking
        assert "being made again: on its machine, about to start" in tracking
        assert "held up" not in tracking
    assert client.post(f"/api/v1/staff/batches/{body['id']}/done", headers=staff).get_json()["state"] == "done"
    tracking = tracked(app, client, discs)
    assert "did not come out right; printed again" in tracking and "made: ready to ship" in tracking
    octoprint._call("POST", "/api/job", {"command": "cancel"})  # the Virtual Printer is left idle for the next test,
    idle_octoprint(octoprint)  # without this test's plates
