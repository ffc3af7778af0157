"""Downloads as a customer and staff save them: names that say order, item, product, part and copies; one
"download all" zip per item, built from checked files; job files named by job and order."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import lxml.html
from sqlalchemy import select

from tests.parametric import conftest as tools
from web.models import Artifact

from .conftest import order_body, run_queue, services, unique_shelf, unique_width

prusa_slicer = tools.prusa_slicer  # real PrusaSlicer: skipped loudly when missing, a failure under CI=true


def ready_order(app, client, quantity=2):
    order = client.post("/api/v1/orders", json=order_body(
        {"template": "wall_shelf", "params": unique_shelf(), "quantity": quantity,
         "material": "oak"})).get_json()
    assert run_queue(app) == ["done", "ready"]  # the order's quote (its total), then its files
    described = client.get(f"/api/v1/orders/{order['id']}?token={order['token']}").get_json()
    return order, described["items"][0]


def made_ready(app, client, order) -> dict:
    """Run the queue for a just placed order: its quote (its total), then its files, unless the shared cache had
    them already (a configuration another test made is ready at once); its item, which ends ready either way."""
    assert run_queue(app) in (["done", "ready"], ["done"])
    [item] = client.get(f"/api/v1/orders/{order['id']}?token={order['token']}").get_json()["items"]
    assert item["state"] == "ready", item
    return item


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


def test_plates_of_a_wooden_product_are_in_its_printing_material(app, client):
    """A wall shelf in oak: its board is cut from oak, its brackets are printed in the template's filament (PLA, as
    their manufacturing jobs are). The plates offered for the brackets say PLA, never oak, on the API and on the
    tracking page's "print it yourself" help."""
    from parametric.materials import get_material

    order, item = ready_order(app, client, quantity=1)
    assert item["plates"] is not None
    pla = get_material("pla")
    assert item["plate_materials"] == [{"id": "pla", "name": pla.name}]
    page = lxml.html.fromstring(client.get(f"/track/{order['id']}?token={order['token']}").get_data(as_text=True))
    [help_text] = page.xpath('//form[@data-role="plates"]//p[@class="help"]')
    assert f"{pla.name} temperatures" in help_text.text_content()
    assert "Oak temperatures" not in help_text.text_content()


def test_openapi_documents_the_archives(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/api/v1/orders/{order_id}/items/{position}/archive",
                 "/api/v1/staff/orders/{order_id}/items/{position}/archive"):
        operation = paths[path]["get"]
        assert "application/zip" in operation["responses"]["200"]["content"]
        assert "422" in operation["responses"] and "404" in operation["responses"]


def test_openapi_documents_that_plates_are_prepared_first(client):
    plates = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/orders/{order_id}/items/{position}/plates"]
    responses = plates["get"]["responses"]
    preparing = responses["202"]
    assert preparing["content"]["application/json"]["schema"]["properties"]["state"]["enum"] == ["preparing"]
    assert preparing["content"]["application/json"]["schema"]["required"] == ["state", "retry_after"]
    assert preparing["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
    assert "Retry-After" in responses["503"]["headers"] and "Retry-After" in responses["429"]["headers"]
    assert set(responses["200"]["content"]) == {"model/3mf", "application/zip"}


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
    embedded configuration is the MINI's own preset; PrusaSlicer slices the 3MF as it is, for that bed. The request
    only asks for the plates (202, Retry-After, nothing sliced yet); a worker slices them; then they are served."""
    import subprocess

    from parametric.fdm.prusaslicer import slicer_path
    from parametric.fdm.vendors import home_printers
    from web.models import Build
    from web.priorities import PRIORITY

    order = client.post("/api/v1/orders", json=order_body(
        {"template": "leg_cap", "params": {"sleeve_depth": 8 + unique_width() % 9}, "quantity": 6,
         "material": "pla"})).get_json()
    item = made_ready(app, client, order)
    assert item["plates"] == f"/api/v1/orders/{order['id']}/items/1/plates"
    url = f"{item['plates']}?token={order['token']}"
    refused = client.get(f"{url}&printer=a-printer-nobody-has")
    assert refused.status_code == 422
    message = refused.get_json()["errors"][0]
    assert message["field"] == "printer" and "Original Prusa MINI / MINI+" in message["message"]
    assert client.get(f"{item['plates']}?printer=prusa_mini").status_code == 403
    output = Path(services(app).config["OUTPUT_FOLDER"])
    assert not list(output.rglob(".plates-*"))  # this test's own output folder: no plate anywhere yet

    import time

    started = time.perf_counter()
    first = client.get(f"{url}&printer=prusa_mini")
    asked_s = time.perf_counter() - started
    assert first.status_code == 202, first.data[:300]
    assert first.get_json() == {"state": "preparing", "retry_after": 2}
    assert first.headers["Retry-After"] == "2" and first.headers["Cache-Control"] == "no-store"
    assert not list(output.rglob(".plates-*")) and not list(output.rglob("*_plate-*.3mf"))  # nothing sliced
    again = client.get(f"{url}&printer=prusa_mini")
    assert again.status_code == 202 and again.get_json()["state"] == "preparing"
    assert services(app).queue.waiting() == {PRIORITY["plates"]: 1}  # asked twice, queued once
    with services(app).database.session() as session:
        [build] = session.query(Build).filter(Build.request["order"].as_string() == order["id"]).all()
        assert (build.state, build.priority, build.request["printer"]) == ("queued", PRIORITY["plates"], "prusa_mini")

    started = time.perf_counter()
    assert run_queue(app) == ["done"]  # the worker: real PrusaSlicer
    print(f"\nplates: the request answered 202 in {asked_s * 1000:.0f} ms; the worker made them in "
          f"{time.perf_counter() - started:.2f} s")
    response = client.get(f"{url}&printer=prusa_mini")
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "model/3mf"
    assert response.headers["ETag"]
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
    later = client.get(f"{url}&printer=prusa_mini")
    assert later.data == response.data  # made once per printer and set of files
    assert client.get(f"{url}&printer=prusa_mini", headers={"If-None-Match": response.headers["ETag"]}
                      ).status_code == 304
    assert run_queue(app) == []  # nothing asked again
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


def test_plates_that_do_not_fit_are_the_customers_to_know_and_a_fault_is_ours(app, client, prusa_slicer):
    """A name plate 200 mm wide: wider than a MINI's 180 mm bed. The worker finds it (PrusaSlicer's
    plates, not the request), and the answer is then a 422 naming ``printer`` and the MINI, every time after, with
    no second build. A changed STL is a fault of ours: answered 503, never blamed on the customer."""
    order = client.post("/api/v1/orders", json=order_body(
        {"template": "name_plate", "params": {"text": f"Plates {unique_width()}", "plate_width": 200},
         "quantity": 1, "material": "pla"})).get_json()
    made_ready(app, client, order)
    url = f"/api/v1/orders/{order['id']}/items/1/plates?token={order['token']}&printer=prusa_mini"
    first = client.get(url)
    assert first.status_code == 202 and first.get_json()["state"] == "preparing"
    assert run_queue(app) == ["failed"]
    for _ in range(2):
        refused = client.get(url)
        assert refused.status_code == 422, refused.data[:300]
        [problem] = refused.get_json()["errors"]
        assert problem["field"] == "printer"
        assert problem["message"].startswith("some parts do not fit on the Original Prusa MINI / MINI+: "), problem
    assert run_queue(app) == []  # answered from the failed build: nothing asked again

    output = Path(services(app).config["OUTPUT_FOLDER"])
    [stl] = [p for p in output.rglob("*.stl") if order["id"] in str(p)]
    good = stl.read_bytes()
    other = url.replace("prusa_mini", "prusa_mk3s")  # 200 mm wide: fits the MK3S's 250 x 210 mm bed
    assert client.get(other).status_code == 202
    stl.write_bytes(good[:-50])  # the order's own copy changes on disk before the worker reads it
    huey = services(app).queue.huey
    huey.execute(huey.dequeue())  # the worker's first attempt: a fault of ours, given back to the queue
    retrying = client.get(other)
    assert retrying.status_code == 503, retrying.data[:300]
    assert retrying.headers["Retry-After"] == "2"
    assert retrying.get_json()["errors"] == [{"field": "", "message": "We can't prepare files right now, please "
                                                                      "try again shortly."}]  # not the customer's
    stl.write_bytes(good)  # mended: the next attempt makes the plates
    assert run_queue(app) == ["done"]
    made = client.get(other)
    assert made.status_code == 200 and made.mimetype == "model/3mf"
    assert disposition_name(made) == f"order-{order['id'][:8]}_item-1_name_plate_prusa_mk3s_plate-1_pla.3mf"

    stl.write_bytes(good[:-50])  # changed before anything is asked: answered at once, nothing queued to fail
    fault = client.get(url.replace("prusa_mini", "voron_v2_250"))
    assert fault.status_code == 503 and fault.headers["Retry-After"]
    assert fault.get_json()["errors"][0]["field"] == ""
    assert run_queue(app) == []


def test_the_tracking_pages_form_waits_on_a_page_then_delivers_the_plates(app, client, prusa_slicer):
    """The "print it yourself" form is a plain GET a browser sends: a page (never JSON) that names the printer and
    refreshes itself while a worker slices, then the 3MF itself."""
    import re

    order = client.post("/api/v1/orders", json=order_body(
        {"template": "leg_cap", "params": {"sleeve_depth": 8 + unique_width() % 9}, "quantity": 2,
         "material": "pla"})).get_json()
    made_ready(app, client, order)
    page = client.get(f"/track/{order['id']}?token={order['token']}").get_data(as_text=True)
    [action] = re.findall(r'<form class="home-plates" data-role="plates" method="get" action="([^"]+)"', page)
    assert action == f"/track/{order['id']}/items/1/plates"
    url = f"{action}?token={order['token']}&printer=ender3_v2"
    waiting = client.get(url, headers={"Accept": "text/html"})
    assert waiting.status_code == 202 and waiting.mimetype == "text/html"
    assert waiting.headers["Retry-After"] == "2" and waiting.headers["Cache-Control"] == "private, no-store"
    assert "Refresh" not in waiting.headers  # the page's script asks again; without it, its <noscript> refresh
    text = waiting.get_data(as_text=True)
    assert "Your print-ready plates are being prepared" in text and "<strong>Creality Ender-3 V2</strong>" in text
    assert f'<noscript><meta http-equiv="refresh" content="2; url={url}"></noscript>' in text.replace("&amp;", "&")
    head = client.head(url)  # what the page's script asks while it waits
    assert head.status_code == 202 and head.headers["Retry-After"] == "2"
    assert f'href="/track/{order["id"]}?token={order["token"]}"' in text  # the way back to the order
    assert client.get(url).status_code == 202  # asked again: still one build
    assert run_queue(app) == ["done"]
    made = client.get(url, headers={"Accept": "text/html"})
    assert made.status_code == 200 and made.mimetype == "model/3mf"
    assert disposition_name(made) == f"order-{order['id'][:8]}_item-1_leg_cap_ender3_v2_plate-1_pla.3mf"
    with zipfile.ZipFile(io.BytesIO(made.data)) as project:
        assert "; bed_shape = 5x0,215x0,215x220,5x220" in project.read("Metadata/Slic3r_PE.config").decode()
    unknown = client.get(f"{action}?token={order['token']}&printer=a-printer-nobody-has")
    assert unknown.status_code == 422 and unknown.mimetype == "text/html"
    text = unknown.get_data(as_text=True)
    assert "These plates cannot be made" in text and "Original Prusa MINI / MINI+" in text
    assert client.get(f"{action}?token=wrong&printer=ender3_v2").status_code == 404
