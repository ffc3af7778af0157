"""Downloads as a customer and staff save them: names that say order, item, product, part and copies; one
"download all" zip per item, built from checked files; job files named by job and order."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from sqlalchemy import select

from tests.parametric import conftest as tools
from web.models import Artifact

from .conftest import order_body, run_queue, services, unique_width

prusa_slicer = tools.prusa_slicer  # real PrusaSlicer: skipped loudly when missing, a failure under CI=true


def ready_order(app, client, quantity=2):
    order = client.post("/api/v1/orders", json=order_body(
        {"template": "wall_shelf", "params": {"width": unique_width()}, "quantity": quantity,
         "material": "oak"})).get_json()
    assert run_queue(app) == ["done", "ready"]  # the order's quote (its total), then its files
    described = client.get(f"/api/v1/orders/{order['id']}?token={order['token']}").get_json()
    return order, described["items"][0]


def disposition_name(response) -> str:
    header = response.headers["Content-Disposition"]
    assert header.startswith("attachment")
    return header.split("filename=", 1)[1].strip('"')


def test_each_file_is_saved_under_order_item_product_part_and_copies(app, client):
    order, item = ready_order(app, client, quantity=2)
    prefix = f"order-{order['id'][:8]}_item-1_wall_shelf_"
    names = {f["download_name"] for f in item["files"]}
    # a wall shelf is one board and two brackets; two shelves ordered: 2 boards, 4 brackets
    assert f"{prefix}board_x2.stl" in names and f"{prefix}bracket_x4.stl" in names
    assert f"{prefix}bracket_x4.3mf" in names and f"{prefix}board_x2.step" in names
    assert len(names) == len(item["files"])  # no two files of an item share a name
    for record in item["files"]:
        response = client.get(record["url"])
        assert response.status_code == 200
        assert disposition_name(response) == record["download_name"]
        assert hashlib.sha256(response.data).hexdigest() == record["sha256"]


def test_download_all_is_one_zip_of_every_checked_file(app, client):
    order, item = ready_order(app, client)
    assert item["archive"] and f"token={order['token']}" in item["archive"]
    response = client.get(item["archive"])
    assert response.status_code == 200 and response.mimetype == "application/zip"
    stem = f"order-{order['id'][:8]}_item-1_wall_shelf"
    assert disposition_name(response) == f"{stem}.zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    expected = {f"{stem}/{f['download_name']}": f["sha256"] for f in item["files"]}
    assert set(entries) == {*expected, f"{stem}/{stem}_manifest.json"}
    for name, digest in expected.items():
        assert hashlib.sha256(entries[name]).hexdigest() == digest
    # built once, kept beside the files under a hidden name; the same request gets the same bytes
    folder = Path(services(app).config["OUTPUT_FOLDER"]) / "orders" / order["id"] / "1"
    [kept] = folder.glob(".download-all-*.zip")
    assert kept.read_bytes() == response.data and not list(folder.glob("*.part"))
    again = client.get(item["archive"], headers={"If-None-Match": response.headers["ETag"].strip('"')})
    assert again.status_code == 304


def test_download_all_needs_the_token_and_refuses_a_changed_file(app, client):
    order, item = ready_order(app, client)
    url = f"/api/v1/orders/{order['id']}/items/1/archive"
    assert client.get(url).status_code == 403
    assert client.get(f"{url}?token=wrong").status_code == 404
    assert client.get(f"/api/v1/orders/{order['id']}/items/2/archive?token={order['token']}").status_code == 404
    with services(app).database.session() as session:
        board = session.scalars(select(Artifact).where(Artifact.filename == "board.stl")).one()
    path = Path(services(app).config["OUTPUT_FOLDER"]) / board.path
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # same size, other bytes: the order's copy no longer matches its SHA-256
    path.unlink()  # a reflink or copy of the cache: replace it, never write through into the cache
    path.write_bytes(bytes(data))
    response = client.get(f"{url}?token={order['token']}")
    assert response.status_code == 503 and "Retry-After" in response.headers
    assert b"solid" not in response.data and str(path).encode() not in response.data
    folder = path.parent
    assert not list(folder.glob(".download-all-*")) and not list(folder.glob("*.part"))


def test_staff_download_all_and_named_files(app, client, staff):
    order, item = ready_order(app, client, quantity=1)
    response = client.get(f"/api/v1/staff/orders/{order['id']}/items/1/archive", headers=staff)
    assert response.status_code == 200
    assert disposition_name(response) == f"order-{order['id'][:8]}_item-1_wall_shelf.zip"
    assert client.get(f"/api/v1/staff/orders/{order['id']}/items/1/archive").status_code == 401
    described = client.get(f"/api/v1/staff/orders/{order['id']}", headers=staff).get_json()
    [staff_item] = described["items"]
    assert staff_item["archive"] == f"/api/v1/staff/orders/{order['id']}/items/1/archive"
    stl = next(f for f in staff_item["files"] if f["filename"] == "bracket.stl")
    assert disposition_name(client.get(stl["url"], headers=staff)) == \
        f"order-{order['id'][:8]}_item-1_wall_shelf_bracket_x2.stl"


def test_the_tracking_page_offers_download_all_and_named_links(app, client):
    order, item = ready_order(app, client, quantity=1)
    page = client.get(f"/track/{order['id']}?token={order['token']}").get_data(as_text=True)
    assert "Download all files of this item (zip)" in page
    assert f"/api/v1/orders/{order['id']}/items/1/archive?token={order['token']}" in page
    assert f"order-{order['id'][:8]}_item-1_wall_shelf_bracket_x2.stl" in page
    assert ">board.stl<" not in page


def test_openapi_documents_the_archives(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/api/v1/orders/{order_id}/items/{position}/archive",
                 "/api/v1/staff/orders/{order_id}/items/{position}/archive"):
        operation = paths[path]["get"]
        assert "application/zip" in operation["responses"]["200"]["content"]
        assert "422" in operation["responses"] and "404" in operation["responses"]


def test_job_files_are_saved_under_job_order_and_part(app, client, staff, prusa_slicer):
    """Two orders' jobs both have a ``leg_cap.gcode`` and a ``jobsheet.pdf``; saved, they are told apart."""
    from web import jobs

    from .test_manufacturing import PRINTER, add_printer
    from .test_manufacturing_plan import ready_item

    assert add_printer(client, staff, {**PRINTER, "name": "sd-card", "host": None}).status_code == 201
    database, output = services(app).database, services(app).generation.output_folder
    saved, listed_count = {}, 0
    for depth in (8 + unique_width() % 4, 13 + unique_width() % 4):
        item_id = ready_item(app, client, {"template": "leg_cap", "params": {"sleeve_depth": depth},
                                           "material": "pla"})
        order_id = ready_item.order["id"]
        [job_id] = jobs.plan_item(database, output, item_id)
        assert jobs.prepare(database, output, job_id) == "ready"
        listed = client.get(f"/api/v1/staff/jobs/{job_id}/files", headers=staff).get_json()["files"]
        assert {f["kind"] for f in listed} >= {"gcode", "job_sheet_pdf"}
        listed_count += len(listed)
        for record in listed:
            response = client.get(record["url"], headers=staff)
            name = disposition_name(response)
            assert name == record["download_name"]
            assert name.startswith(f"job-{job_id}_order-{order_id[:8]}_")
            saved[name] = record["kind"]
    assert len(saved) == listed_count == 6  # G-code and job sheets (PDF, HTML) of each job, no two alike
    from .conftest import STAFF
    from .test_pages import form_values, page

    form = page(client.get("/staff/login"))
    client.post("/staff/login", data={**form_values(form), "name": STAFF[0], "password": STAFF[1]})
    queue_page = client.get("/staff/manufacturing").get_data(as_text=True)
    for name in saved:
        assert f'download="{name}"' in queue_page


def test_print_ready_plates_for_the_customers_own_printer(app, client, prusa_slicer, tmp_path):
    """Leg caps ordered as files: every copy on plates of the customer's MINI, as PrusaSlicer projects whose
    embedded configuration is the MINI's own preset; PrusaSlicer slices the 3MF as it is, for that bed."""
    import subprocess

    from parametric.fdm.prusaslicer import slicer_path
    from parametric.fdm.vendors import home_printers

    order = client.post("/api/v1/orders", json=order_body(
        {"template": "leg_cap", "params": {"sleeve_depth": 8 + unique_width() % 9}, "quantity": 6,
         "material": "pla"})).get_json()
    assert run_queue(app) == ["done", "ready"]  # the order's quote (its total), then its files
    [item] = client.get(f"/api/v1/orders/{order['id']}?token={order['token']}").get_json()["items"]
    assert item["plates"] == f"/api/v1/orders/{order['id']}/items/1/plates"
    url = f"{item['plates']}?token={order['token']}"
    refused = client.get(f"{url}&printer=a-printer-nobody-has")
    assert refused.status_code == 422
    message = refused.get_json()["errors"][0]
    assert message["field"] == "printer" and "Original Prusa MINI / MINI+" in message["message"]
    assert client.get(f"{item['plates']}?printer=prusa_mini").status_code == 403
    response = client.get(f"{url}&printer=prusa_mini")
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "model/3mf"
    assert disposition_name(response) == f"order-{order['id'][:8]}_item-1_leg_cap_prusa_mini_plate-1_pla.3mf"
    plate = tmp_path / "plate.3mf"
    plate.write_bytes(response.data)
    with zipfile.ZipFile(plate) as project:
        config = project.read("Metadata/Slic3r_PE.config").decode()
        model = project.read("Metadata/Slic3r_PE_model.config").decode()
    mini = home_printers()["prusa_mini"]
    assert f"; bed_shape = {mini.options['bed_shape']}" in config and "; temperature = 210" in config
    assert sum(f'key="name" value="leg_cap-copy-{n}.stl"' in model for n in range(1, 8)) == 6  # each copy, named
    import re

    offsets = [float(v) for v in re.findall(r'key="source_offset_[xy]" value="([-\d.]+)"', model)]
    assert len(offsets) == 12 and all(0 < v < 180 for v in offsets)  # every copy on the MINI's 180 mm bed
    gcode = tmp_path / "plate.gcode"
    sliced = subprocess.run([slicer_path(), "--loglevel", "1", "--export-gcode", str(plate), "-o", str(gcode)],
                            capture_output=True, text=True, timeout=600)
    assert sliced.returncode == 0, sliced.stderr[-500:]
    text = gcode.read_text()
    assert 'M862.3 P "MINI"' in text  # the MINI's own start G-code, with its model check
    assert "; bed_shape = 0x0,180x0,180x180,0x180" in text
    assert all(f"; printing object leg_cap-copy-{n}.stl" in text for n in range(1, 7))
    again = client.get(f"{url}&printer=prusa_mini")
    assert again.data == response.data  # made once per printer and set of files
    page = client.get(f"/track/{order['id']}?token={order['token']}").get_data(as_text=True)
    assert "Get print-ready plates (3MF)" in page and "Original Prusa MINI / MINI+" in page


def test_an_item_without_printed_parts_offers_no_plates(app, client):
    from .test_orders import place

    order = place(client, order_body({"template": "cabinet_door", "params": {}, "material": "birch_plywood"})
                  ).get_json()
    run_queue(app)  # nothing to run when another test already built the default door (the cache is shared)
    [item] = client.get(f"/api/v1/orders/{order['id']}?token={order['token']}").get_json()["items"]
    assert item["state"] == "ready" and item["plates"] is None
    response = client.get(f"/api/v1/orders/{order['id']}/items/1/plates?token={order['token']}&printer=prusa_mini")
    assert response.status_code == 404
