"""Batch sheets: made from the real layout reports of nested CNC sheets and packed print plates, read back
from the HTML, with pdftotext (totals) and zbarimg (the QR code)."""

from __future__ import annotations

import json
import re
import subprocess
from html import unescape

import pytest
import trimesh

import parametric
from parametric.batching.sheets import SheetItem, cut_sheets
from parametric.fdm import PlateSource, make_plates
from parametric.jobsheet.batch import NO_URL, build_context, render_html, write_batch_sheet
from parametric.machines import machine_from_dict
from parametric.units import format_duration, format_number

pytestmark = pytest.mark.integration

URL = "https://shop.example/staff/batches/12"


def block(x: float, y: float, z: float) -> trimesh.Trimesh:
    mesh = trimesh.creation.box((x, y, z))
    mesh.apply_translation((x / 2, y / 2, z / 2))
    return mesh


def pdf_text(pdftotext: str, path) -> str:
    return subprocess.run([pdftotext, "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def qr_codes(pdf, folder) -> list[str]:
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(pdf), str(folder / "page")],
                   check=True)
    page = next(folder.glob("page*.png"))
    decoded = subprocess.run(["zbarimg", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", str(page)],
                             capture_output=True, text=True)
    return decoded.stdout.strip().splitlines()


@pytest.fixture(scope="module")
def sheets(tmp_path_factory, make_router):
    """Two orders' drawer fronts and a door of a third on a router's birch plywood, nested and cut."""
    router = machine_from_dict(make_router("grbl"))
    front = parametric.render("cabinet_door", {}, preset="drawer-front-80", material="birch_plywood",
                              formats=["step"])
    door = parametric.render("cabinet_door", {"width": 400}, material="birch_plywood", formats=["step"])
    out = tmp_path_factory.mktemp("batch-sheets")
    items = [SheetItem(front, 2, "ORD-101", "1"), SheetItem(front, 1, "ORD-102", "3"),
             SheetItem(door, 1, "ORD-103", "2")]
    job = cut_sheets(items, router, out, seconds=1, verify=False, batch_ref="B-0012", batch_url=URL)
    return job, out


def test_a_nested_job_writes_its_batch_sheet_beside_its_report_and_lists_it(sheets):
    job, out = sheets
    report = json.loads((out / "report.json").read_text())
    assert report["files"] == {"batch_sheet_html": "batch-sheet.html", "batch_sheet_pdf": "batch-sheet.pdf"}
    assert (out / "batch-sheet.pdf").read_bytes().startswith(b"%PDF")
    html = (out / "batch-sheet.html").read_text()
    for sheet in report["sheets"]:
        numbers = [entry["number"] for entry in sheet["placements"]]
        assert numbers == list(range(1, len(numbers) + 1))
        picture = html.split(f"<h2>Sheet {sheet['index']}</h2>")[1].split("</table>")[0]
        markers = re.findall(r'<div class="no" style="left: ([\d.]+)%; top: ([\d.]+)%">(\d+)</div>', picture)
        assert [int(number) for _, _, number in markers] == numbers  # every number drawn on the picture
        for (left, top, _), entry in zip(markers, sheet["placements"], strict=True):
            x, y = entry["centre_mm"]
            assert float(left) == pytest.approx(100 * x / sheet["size_mm"][0], abs=1e-2)
            assert float(top) == pytest.approx(100 * (1 - y / sheet["size_mm"][1]), abs=1e-2)
        rows = re.findall(r'<tr><td class="value">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>'
                          r'\s*<td>([^<]*)(?:<br>.*?)?</td>\s*<td>([^<]*)</td><td class="small">([^<]*)</td>'
                          r'<td>([^<]*)</td>', picture)
        assert [(int(n), order, item, part, int(copy), turn) for n, order, item, _, part, copy, _, turn in rows] == [
            (entry["number"], entry["order"], entry["item"], entry["part"], entry["copy"],
             f"{format_number(entry['rotation_deg'], 1)}°") for entry in sheet["placements"]]
    orders = sorted(entry["order"] for sheet in report["sheets"] for entry in sheet["placements"])
    assert orders == ["ORD-101", "ORD-101", "ORD-102", "ORD-103"]
    assert "Cabinet door" in html and "Birch plywood" in unescape(html)


def test_the_centre_of_each_part_lies_inside_the_part_on_the_sheet(sheets):
    job, out = sheets
    for sheet, entry in zip(job.sheets, job.report["sheets"], strict=True):
        from shapely.geometry import Point

        for (_, placed), record in zip(sheet.placed, entry["placements"], strict=True):
            assert placed.outline().buffer(0.05).contains(Point(record["centre_mm"]))


def test_the_pdf_has_the_totals_from_the_reports_and_the_products_checks(sheets, pdftotext):
    job, out = sheets
    report = job.report
    text = pdf_text(pdftotext, out / "batch-sheet.pdf")
    stock = report["stocks"][0]
    for expected in ("B-0012", "Machining time (CAM estimate)", format_duration(report["machining_time_s"],
                                                                               precise=False),
                     f"{stock['sheets']} sheet", f"{format_number(stock['sheet_equivalents'], 2)} sheet-equivalents",
                     f"{report['sheets'][0]['utilisation']:.1%} of 1 sheet", "Quality checks", "Door width",
                     "Measured", "Signed", "ORD-103"):
        assert expected in text, expected


def test_the_qr_code_opens_the_batch_on_the_dashboard(sheets, pdftotext, zbarimg, tmp_path):
    job, out = sheets
    assert qr_codes(out / "batch-sheet.pdf", tmp_path) == [URL]


def test_without_a_dashboard_address_the_sheet_says_so(sheets, tmp_path):
    job, out = sheets
    html = render_html(build_context(job.report, out, batch_ref="B-1", batch_url=None))
    assert NO_URL in html and "file://" not in html and "QR code linking" not in html
    assert "no dashboard address set" in NO_URL


def test_a_report_json_path_gives_the_same_sheet(sheets, tmp_path):
    job, out = sheets
    written = write_batch_sheet(out / "report.json", out, batch_ref="B-0012", batch_url=URL, pdf=False)
    assert written.pdf is None and "ORD-102" in written.html.read_text()


@pytest.fixture(scope="module")
def plates(tmp_path_factory, prusa_slicer):
    """Leg caps of one order and blocks from an STL, packed on one printer's plates and sliced."""
    from parametric.fdm.footprint import read_mesh
    from parametric.machines import Printer

    printer = Printer(name="mk3", build_volume_mm=(250, 210, 210), nozzle_diameter_mm=0.4, materials=["pla"])
    cap = parametric.render("leg_cap", {}, formats=["stl"], material="pla")
    record = next(r for r in cap.files if r["format"] == "stl")
    mesh = read_mesh(cap.directory / record["filename"], "leg_cap")
    part = cap.parts[0]["name"]
    sources = [PlateSource(f"leg_cap:{part}", part, mesh, 3, "pla", manifest=cap, part=part, order_ref="ORD-201",
                           item_ref="1"),
               PlateSource("block.stl", "block", block(40, 30, 2), 2, "pla")]
    out = tmp_path_factory.mktemp("batch-plates")
    run = make_plates(sources, printer, out, seconds=1)
    return run, out


def test_a_plate_batch_sheet_numbers_every_object_and_has_print_totals(plates, pdftotext, zbarimg, tmp_path):
    run, out = plates
    report = json.loads((out / "report.json").read_text())
    assert report["files"]["batch_sheet_pdf"] == "batch-sheet.pdf"
    html = (out / "batch-sheet.html").read_text()
    for plate in report["plates"]:
        section = html.split(f"<h2>Plate {plate['index']}</h2>")[1].split("</table>")[0]
        drawn = [int(n) for n in re.findall(r'<div class="no" style="[^"]*">(\d+)</div>', section)]
        assert drawn == [entry["number"] for entry in plate["objects"]] == list(range(1, len(plate["objects"]) + 1))
    caps = [entry for plate in report["plates"] for entry in plate["objects"] if entry["file"].startswith("leg_cap")]
    assert len(caps) == 3 and all(entry["order"] == "ORD-201" and entry["template"] == "leg_cap" for entry in caps)
    assert html.count("ORD-201") >= 3 and "Leg cap" in html
    text = pdf_text(pdftotext, out / "batch-sheet.pdf")
    seconds = sum(plate["estimates"]["print_time_s"] for plate in report["plates"])
    grams = sum(plate["estimates"]["filament_g"] for plate in report["plates"])
    for expected in ("Print time (PrusaSlicer)", format_duration(seconds, precise=False), "Filament PLA",
                     f"{format_number(grams, 1)} g", "Utilisation", NO_URL.split(":")[0]):
        assert expected in text, expected
    assert qr_codes(out / "batch-sheet.pdf", tmp_path) == []  # no address, no code


def test_a_run_without_a_batch_sheet_removes_the_one_an_earlier_run_left(plates, tmp_path):
    import shutil

    from parametric.jobsheet.batch import write_batch_files

    run, out = plates
    folder = tmp_path / "again"
    shutil.copytree(out, folder)
    assert (folder / "batch-sheet.pdf").exists()
    assert write_batch_files(run.report, folder, batch_ref="B-2", batch_url=None, write=False) == {}
    assert not (folder / "batch-sheet.html").exists() and not (folder / "batch-sheet.pdf").exists()
    assert (folder / "plate-1.png").exists()
