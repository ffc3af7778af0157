"""Job sheets: one Jinja2 template to HTML and (WeasyPrint) PDF; read back with pdftotext and zbarimg."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
import xml.etree.ElementTree as ElementTree
from dataclasses import replace

import pytest

from parametric import jobsheet, render
from parametric.cache import file_record
from parametric.fdm import PrintSettings, slice_manifest, slicing_record
from parametric.jobsheet import DRAWING_BOX_MM, build_context, format_duration, render_html, write_job_sheet
from parametric.jobsheet import drawing as sheet_drawings
from parametric.machines import MachineStore, Printer, machine_from_dict
from parametric.registry import get_template
from parametric.units import format_number

from ...conftest import require_module

URL = "https://shop.example/dashboard/jobs/ORD-2024-0042/items/3"


@pytest.fixture(scope="module")
def heel_lift_manifest(tmp_path_factory):
    """A heel lift rendered with its drawing, plus a slicing record as the CLI and the web record it."""
    folder = tmp_path_factory.mktemp("sheet")
    return render("heel_lift", {"lift_height": "12mm", "side": "left"}, out_dir=folder, formats=["stl", "svg"])


def with_slicing(manifest, printer, folder):
    results = slice_manifest(manifest, printer, "tpu", folder, quantity=2, process="fdm")
    manifest.extra["slicing"] = slicing_record(results, printer, "tpu", 2, PrintSettings())
    return manifest


def test_context_is_built_from_the_parameter_model(heel_lift_manifest):
    context = build_context(heel_lift_manifest, order_ref="ORD-2024-0042", item_ref="3", job_url=URL, quantity=2)
    rows = {row["name"]: row for row in context["parameters"]}
    assert set(rows) == set(get_template("heel_lift").Params.model_fields)
    assert rows["lift_height"]["value"] == "12 mm" and rows["lift_height"]["allowed"] == "3 to 25 mm"
    assert rows["side"]["value"] == "left" and rows["side"]["allowed"] == "one of: pair, left, right"
    assert rows["wedge_angle"]["value"].endswith("°")
    assert context["parts"][0]["quantity"] == 2 and context["drawing"].startswith("data:image/svg+xml;base64,")
    assert context["qr"].startswith("data:image/svg+xml")
    html = render_html(context)
    assert "ORD-2024-0042" in html and "Heel lift" in html and "Quality checks" in html
    assert "<script" not in html  # a sheet is printed, not run


def test_the_style_sheet_holds_no_order_data(heel_lift_manifest):
    """The footer reads the references from the page (string-set), so the CSS is the same for every sheet."""
    def style(order_ref):
        html = render_html(build_context(heel_lift_manifest, order_ref=order_ref, item_ref="1", job_url=URL))
        return re.search(r"<style>(.*?)</style>", html, re.S).group(1)

    assert style("ORD-1") == style("ORD-\"2</style>") and "ORD" not in style("ORD-1")


def svg_points(svg: str) -> int:
    return len(re.findall(r"-?[\d.]+[, ]-?[\d.]+", " ".join(re.findall(r' d="([^"]*)"', svg))))


def test_the_sheet_drawing_is_the_cadquery_view_thinned_in_print_millimetres(heel_lift_manifest):
    source = heel_lift_manifest.file("svg").read_bytes()
    drawing = sheet_drawings.sheet_drawing(source)
    root = ElementTree.fromstring(drawing)
    width, height = (float(root.get(name).removesuffix("mm")) for name in ("width", "height"))
    assert width <= DRAWING_BOX_MM[0] + 0.01 and height <= DRAWING_BOX_MM[1] + 0.01
    assert max(width / DRAWING_BOX_MM[0], height / DRAWING_BOX_MM[1]) > 0.99  # as large as the frame allows
    paths = root.findall("{http://www.w3.org/2000/svg}path")
    assert [p.get("stroke-dasharray") is not None for p in paths] == [True, False]  # hidden, then visible
    assert all(float(p.get("stroke-width")) > 0 for p in paths)  # CadQuery writes -1.5
    numbers = [float(v) for p in paths for v in re.findall(r"-?[\d.]+", p.get("d"))]
    assert min(numbers) >= 0 and max(numbers) <= max(width, height)  # cropped to the part, inside the view box
    assert 0 < svg_points(drawing) < svg_points(source.decode()) / 2


def test_an_svg_of_another_shape_is_embedded_as_it_is():
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><circle r="4" cx="5" cy="5"/></svg>'
    assert sheet_drawings.sheet_drawing(svg) == svg.decode()


def fresh_render(manifest, folder):
    """The manifest with only its SVG, copied into a folder of its own (no drawing kept there yet)."""
    folder.mkdir()
    (folder / "heel_lift.svg").write_bytes(manifest.file("svg").read_bytes())
    return replace(manifest, directory=folder, files=[file_record(folder, "svg", "assembly", "heel_lift.svg")])


def test_the_drawing_is_made_once_per_svg_content_and_kept_beside_the_render(heel_lift_manifest, tmp_path,
                                                                           monkeypatch):
    folder = tmp_path / "render"
    manifest = fresh_render(heel_lift_manifest, folder)
    source = (folder / "heel_lift.svg").read_bytes()
    monkeypatch.setattr(sheet_drawings, "_drawings", type(sheet_drawings._drawings)())
    made = []
    make = sheet_drawings.sheet_drawing
    monkeypatch.setattr(sheet_drawings, "sheet_drawing", lambda svg: made.append(svg) or make(svg))

    first = sheet_drawings.drawing_data_uri(manifest)
    kept = list(folder.glob("jobsheet-drawing-*.svg"))
    assert len(made) == 1 and [k.name for k in kept] == [
        f"jobsheet-drawing-{manifest.files[0]['sha256'][:32]}-g{sheet_drawings.DRAWING_GENERATION}.svg"]
    assert base64.b64decode(first.split(",", 1)[1]).decode() == kept[0].read_text()
    assert sheet_drawings.drawing_data_uri(manifest) == first and len(made) == 1  # from memory
    sheet_drawings._drawings.clear()
    assert sheet_drawings.drawing_data_uri(manifest) == first and len(made) == 1  # from the file beside the render

    (folder / "heel_lift.svg").write_bytes(source.replace(b"rgb(0,0,0)", b"rgb(0,0,1)"))  # new content, new key
    changed = replace(manifest, files=[file_record(folder, "svg", "assembly", "heel_lift.svg")])
    sheet_drawings.drawing_data_uri(changed)
    assert len(made) == 2 and len(list(folder.glob("jobsheet-drawing-*.svg"))) == 2


def test_the_drawing_still_comes_when_the_render_folder_is_read_only(heel_lift_manifest, tmp_path, monkeypatch):
    manifest = fresh_render(heel_lift_manifest, tmp_path / "render")
    monkeypatch.setattr(sheet_drawings, "_drawings", type(sheet_drawings._drawings)())
    refused = []
    monkeypatch.setattr(sheet_drawings, "atomic_write", lambda path, _: refused.append(path) or (_ for _ in ()).throw(
        PermissionError("read-only")))
    assert sheet_drawings.drawing_data_uri(manifest).startswith("data:image/svg+xml;base64,") and len(refused) == 1
    assert not list((tmp_path / "render").glob("jobsheet-drawing-*"))


def test_a_render_without_a_drawing_has_no_drawing_section(heel_lift_manifest):
    bare = replace(heel_lift_manifest, files=[f for f in heel_lift_manifest.files if f["format"] != "svg"])
    context = build_context(bare, order_ref="ORD-1", item_ref="1", job_url=URL)
    assert context["drawing"] is None and "<h2>Drawing</h2>" not in render_html(context)


def test_the_font_configuration_is_kept_per_thread():
    require_module("weasyprint")
    mine = jobsheet._font_configuration()
    other = []
    worker = threading.Thread(target=lambda: other.append(jobsheet._font_configuration()))
    worker.start()
    worker.join()
    assert jobsheet._font_configuration() is mine and other[0] is not mine


def test_html_escapes_what_it_is_given(heel_lift_manifest):
    html = render_html(build_context(heel_lift_manifest, order_ref="<b>O&1</b>", item_ref="1", job_url=URL))
    assert "&lt;b&gt;O&amp;1&lt;/b&gt;" in html and "<b>O&1</b>" not in html


@pytest.mark.integration
def test_pdf_text_carries_order_parameters_estimates_and_checks(heel_lift_manifest, prusa_slicer, pdftotext,
                                                               printer, tmp_path):
    manifest = with_slicing(heel_lift_manifest, printer, tmp_path)
    sheet = write_job_sheet(manifest, tmp_path, order_ref="ORD-2024-0042", item_ref="3", job_url=URL, quantity=2)
    text = subprocess.run([pdftotext, "-layout", str(sheet.pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    estimates = manifest.extra["slicing"]["estimates"]
    for expected in ("ORD-2024-0042", "Item 3", "Heel lift", "heel_lift", "version 1.1.0", "TPU 95A (flexible)",
                     "mk3 (printer, 250 x 210 x 210 mm, 0.4 mm nozzle)", "Lift height", "12 mm", "left",
                     format_duration(estimates["print_time_s"]), f"{round(estimates['filament_g'], 1):g} g",
                     "heel_lift.gcode", "Quality checks", "Measured", "Signed"):
        assert expected in text, expected
    for check in get_template("heel_lift").quality_checks(get_template("heel_lift").resolve(manifest.params)):
        assert check.label in text
    assert sheet.html.read_text().count("ORD-2024-0042") >= 2
    pages = text.split("\f")[:-1]
    assert len(pages) >= 2 and all("Order ORD-2024-0042 · Item 3 · Quantity 2" in page for page in pages)  # footer
    assert "Drawing" in text


@pytest.mark.integration
def test_the_qr_code_decodes_to_the_job_url(heel_lift_manifest, pdftotext, zbarimg, tmp_path):
    sheet = write_job_sheet(heel_lift_manifest, tmp_path, order_ref="ORD-2024-0042", item_ref="3", job_url=URL)
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(sheet.pdf), str(tmp_path / "page")],
                   check=True)
    page = next(tmp_path.glob("page*.png"))
    decoded = subprocess.run([zbarimg, "-q", "--raw", "-Sdisable", "-Sqrcode.enable", str(page)],
                             capture_output=True, text=True)
    assert decoded.stdout.strip().splitlines() == [URL]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "parametric.cli", *args], capture_output=True, text=True)


def test_a_printed_part_shows_the_filament_it_takes_beside_its_solid_mass(heel_lift_manifest):
    slicing = {"material": "pla", "machine": {"name": "mk3", "kind": "printer", "build_volume_mm": [250, 210, 210],
                                              "nozzle_diameter_mm": 0.4, "filament_diameter_mm": 1.75},
               "settings": {"layer_height_mm": 0.2, "infill_percent": 15, "perimeters": 2},
               "estimates": {"print_time_s": 3600, "filament_g": 25.0, "filament_mm": 8000, "cost": 0.5},
               "plates": [{"part": "lift", "copies": 2, "gcode": "lift.gcode",
                           "estimates": {"print_time_s": 3600, "filament_g": 25.0}}]}
    part = heel_lift_manifest.parts[0]
    manifest = replace(heel_lift_manifest, parts=[{**part, "name": "lift"}],
                       extra={**heel_lift_manifest.extra, "slicing": slicing})
    [row] = build_context(manifest, order_ref="ORD-1", item_ref="1", job_url=URL)["parts"]
    assert row["mass"] == f"12.5 g printed ({format_number(part['mass_g'], 1)} g solid)"


def test_a_sheet_without_a_job_link_says_so_instead_of_linking_a_file(heel_lift_manifest):
    html = render_html(build_context(heel_lift_manifest, order_ref="ORD-1", item_ref="1", job_url=None))
    assert "No QR code: this sheet was made without a link to the job" in html
    assert "file://" not in html and "QR code linking" not in html


@pytest.mark.integration
def test_cli_jobsheet_for_a_cnc_part(rs274, pdftotext, tmp_path, make_router):
    store = tmp_path / "machines.json"
    MachineStore(store).add(machine_from_dict(make_router()))
    result = cli("jobsheet", "cabinet_door", "--set", "width=450", "--machine", "shop-router", "--order", "ORD-9",
                 "--item", "2", "--url", "https://shop.example/j/9-2", "--store", str(store), "--out",
                 str(tmp_path / "door"))
    assert result.returncode == 0, result.stderr
    pdf = result.stdout.strip()
    text = subprocess.run([pdftotext, "-layout", pdf, "-"], capture_output=True, text=True, check=True).stdout
    manifest = json.loads((tmp_path / "door" / "manifest.json").read_text())
    assert manifest["jobsheet"]["order"] == "ORD-9" and manifest["cam"]["machining_time_s"] > 0
    for expected in ("ORD-9", "Item 2", "Cabinet door", "450 mm", "shop-router (CNC router, GRBL",
                     format_duration(manifest["cam"]["machining_time_s"]), "PROFILE_THROUGH", "DRILL_35MM",
                     "Hinge cup depth", "Second setups", "round over the bottom edges"):
        assert expected in text, expected


@pytest.mark.integration
def test_cli_jobsheet_bad_input_exits_2(tmp_path):
    store = tmp_path / "machines.json"
    MachineStore(store).add(Printer("mk3", (250, 210, 210), materials=["pla"]))
    result = cli("jobsheet", "heel_lift", "--set", "lift_height=99", "--machine", "mk3", "--quantity", "0",
                 "--store", str(store), "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    for field in ("lift_height: 99 mm is too long: the lift height must be", "machine: mk3 has pla loaded, not tpu",
                  "quantity"):
        assert field in result.stderr


def test_a_bookcase_sheet_carries_its_cut_list_hardware_and_assembly_steps():
    manifest = render("bookcase", {"height": 1800, "shelf_count": 4}, formats=["step", "svg"])
    context = build_context(manifest, order_ref="ORD-7", item_ref="ORD-7/1", job_url=None, quantity=2)
    rows = {row["part"]: row for row in context["cut_list"]}
    assert rows["side"] == {"part": "side", "copies": "4", "size": "1800 x 280 x 18 mm", "material": "Birch plywood",
                            "grain": "along the length"}
    assert rows["shelf"]["copies"] == "8" and rows["back"]["grain"] == "any way"
    hardware = {row["item"]: row for row in context["hardware"]}
    assert hardware["furniture anti-tip strap with wall plug and screws"]["quantity"] == 2  # one per bookcase
    pins = hardware["25 mm panel pin or 18 gauge brad"]
    assert pins["quantity"] > 40 and "6 mm back" in pins["note"]
    html = render_html(context)
    for heading in ("Cut list", "Hardware", "Assembly"):
        assert f"<h2>{heading}</h2>" in html
    assert html.index("Dry-fit every shelf") < html.index("pin it every 100 mm")  # numbered steps in order


def test_every_template_with_hardware_names_quantities_people_can_buy():
    from parametric.registry import templates

    for template in templates():
        params = template.resolve({})
        for item in template.hardware(params):
            assert item.item and item.quantity >= 1, (template.id, item)
        assert all(step and step[0].isupper() for step in template.assembly(params)), template.id
    door = get_template("cabinet_door")
    no_hinges = door.hardware(door.resolve({"hinge_side": "none", "handle_spacing": 0}))
    assert no_hinges == []  # a drawer front without a handle needs nothing bought in


@pytest.mark.integration
def test_every_part_copy_gets_a_label_with_the_order_and_a_qr_code(pdftotext, zbarimg, tmp_path):
    manifest = render("bookcase", {"shelf_count": 2}, formats=["step", "svg"])
    sheet = write_job_sheet(manifest, tmp_path, order_ref="ORD-9", item_ref="ORD-9/2", job_url=URL)
    text = subprocess.run([pdftotext, "-layout", str(sheet.labels), "-"], capture_output=True, text=True,
                          check=True).stdout
    copies = sum(part["quantity"] for part in manifest.parts)  # 2 sides, top, bottom, 2 shelves, back
    assert text.count("Order ORD-9") == copies == 7
    assert "copy 2 of 2" in text and "shelf" in text and "side" in text and "Bookcase" in text
    subprocess.run(["pdftoppm", "-r", "200", "-png", str(sheet.labels), str(tmp_path / "labels")], check=True)
    decoded = subprocess.run([zbarimg, "-q", "--raw", "-Sdisable", "-Sqrcode.enable",
                              str(next(tmp_path.glob("labels*.png")))], capture_output=True, text=True)
    assert decoded.stdout.strip().splitlines() == [URL] * copies
    unlinked = write_job_sheet(manifest, tmp_path / "nolink", order_ref="ORD-9", item_ref="ORD-9/2", job_url=None)
    words = subprocess.run([pdftotext, str(unlinked.labels), "-"], capture_output=True, text=True, check=True).stdout
    assert " ".join(words.split()).count("no dashboard address set") == copies


@pytest.mark.integration
def test_a_cut_job_sheet_lists_its_second_setups_with_their_tools(router, rs274, tmp_path):
    from parametric.production import SheetRequest, produce

    made = produce("cabinet_door", {"edge_profile": "radius", "edge_size": 3}, router, tmp_path,
                   sheet=SheetRequest(order_ref="ORD-5", item_ref="ORD-5/1", job_url=None, pdf=False))
    html = made.sheet.html.read_text("utf-8")
    assert "<h2>Second setups</h2>" in html
    assert "round over the bottom edges, 3 mm radius" in html and "a 3 mm radius round-over bit" in html
    assert "<h2>Cut list</h2>" in html and "<h2>Hardware</h2>" in html and "35 mm cup concealed hinge" in html
