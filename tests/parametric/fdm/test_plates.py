"""Packed print plates: parts of several files and templates packed by their footprints, checked with shapely,
sliced once per plate by the real PrusaSlicer keeping our positions, and the G-code checked object by object."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import trimesh
from shapely.geometry import Point, Polygon, box

from parametric.batching import Layout, Placement, SheetLayout
from parametric.errors import ValidationError
from parametric.fdm import PlateSource, SlicerError, copies_per_plate, make_plates
from parametric.fdm.footprint import footprint, read_mesh
from parametric.fdm.gcode import object_extrusion
from parametric.fdm.packing import PrintPart, bed_sheet, check_plates, pack_plates
from parametric.fdm.plates import PlateCheck
from parametric.fdm.prusaslicer import read_estimates
from parametric.machines import MachineStore, Printer

BORDER = 3.6  # the default profile's skirt: 3 mm away, a line and a half of a 0.4 mm nozzle wide
SPACING = 6.0


def placed_footprints(plate: SheetLayout, parts: list[PrintPart]) -> list[Polygon]:
    return [entry.polygon(parts[entry.part].footprint) for entry in plate.placements]


def assert_plate_valid(plate: SheetLayout, parts: list[PrintPart], printer: Printer, spacing: float,
                       border: float) -> None:
    """Measured here, not taken from the packer: gaps, and every object inside the bed minus the border."""
    x, y = printer.build_volume_mm[:2]
    usable = box(border, border, x - border, y - border).buffer(1e-3, join_style="mitre")
    polygons = placed_footprints(plate, parts)
    for first, polygon in enumerate(polygons):
        assert usable.covers(polygon), f"object {first} reaches {polygon.bounds}"
        for other in polygons[first + 1:]:
            assert polygon.distance(other) >= spacing - 1e-3


def l_shape(arm: float = 60.0, width: float = 15.0, height: float = 4.0) -> trimesh.Trimesh:
    """An L bracket lying flat: its footprint is an L, not its bounding box."""
    outline = box(0, 0, arm, width).union(box(0, 0, width, arm))
    return trimesh.creation.extrude_polygon(outline, height)


def block(x: float, y: float, z: float) -> trimesh.Trimesh:
    mesh = trimesh.creation.box((x, y, z))
    mesh.apply_translation((x / 2, y / 2, z / 2))
    return mesh


# -- packing, no slicer -----------------------------------------------------------------------------------------


def test_the_packer_fits_at_least_what_prusaslicer_fits_of_a_40_by_30_part(printer):
    # PrusaSlicer 2.5 fits 30 copies with --duplicate on this bed (shared/reference/batching.md); the old planner
    # planned 19 by area (17 with the skirt border).
    assert copies_per_plate((40, 30, 5), printer, False) <= 19
    parts = [PrintPart("block", box(0, 0, 40, 30), 40, 5)]
    without_skirt = pack_plates(parts, printer, spacing_mm=SPACING, border_mm=0, seconds=1)
    assert len(without_skirt.sheets[0].placements) >= 30
    with_skirt = pack_plates(parts, printer, spacing_mm=SPACING, border_mm=BORDER, seconds=1)
    # 29: four grid blocks winding round the middle; the best columns or rows hold 27 inside the skirt border,
    # and PrusaSlicer's own 30 runs its skirt 3.4 mm off the bed (bench/bench_plates.py)
    assert len(with_skirt.sheets[0].placements) >= 29
    for layout, border in ((without_skirt, 0.0), (with_skirt, BORDER)):
        assert sum(len(plate.placements) for plate in layout.sheets) == 40 and not layout.unplaced
        for plate in layout.sheets:
            assert_plate_valid(plate, parts, printer, SPACING, border)


def test_mixed_parts_share_plates_and_what_cannot_fit_is_listed_with_a_reason(printer):
    parts = [PrintPart("disc", Point(0, 0).buffer(20), 12, 5),
             PrintPart("bracket", footprint(l_shape()), 10, 4),
             PrintPart("bar", box(0, 0, 148, 12), 3, 30),
             PrintPart("plank", box(0, 0, 300, 20), 1, 5),
             PrintPart("tower", box(0, 0, 20, 20), 1, 250)]
    layout = pack_plates(parts, printer, spacing_mm=SPACING, border_mm=BORDER, seconds=1)
    placed = [entry.part for plate in layout.sheets for entry in plate.placements]
    assert sorted(placed) == sorted([0] * 12 + [1] * 10 + [2] * 3)
    assert len({entry.part for entry in layout.sheets[0].placements}) >= 2  # different parts on one plate
    for plate in layout.sheets:
        assert_plate_valid(plate, parts, printer, SPACING, BORDER)
    reasons = {entry.part: entry.reason for entry in layout.unplaced}
    assert set(reasons) == {3, 4}
    assert "300.0 x 20.0 mm does not fit the 242.8 x 202.8 mm of the bed of mk3" in reasons[3]
    assert "250 mm tall; mk3 prints up to 210 mm high" in reasons[4]


def test_more_plates_when_the_parts_do_not_fit_one(printer):
    parts = [PrintPart("tile", box(0, 0, 100, 90), 5, 3)]
    layout = pack_plates(parts, printer, spacing_mm=SPACING, border_mm=BORDER, seconds=1)
    assert [len(plate.placements) for plate in layout.sheets] == [4, 1]
    assert [entry.copy for plate in layout.sheets for entry in plate.placements] == [1, 2, 3, 4, 5]


def test_the_plate_check_finds_overlaps_gaps_and_objects_off_the_bed(printer):
    parts = [PrintPart("block", box(0, 0, 40, 30), 3, 5)]
    plate = SheetLayout(1, bed_sheet(printer), (Placement(0, 1, 10, 10, 0), Placement(0, 2, 30, 10, 0),
                                                Placement(0, 3, 230, 100, 0)), 270, 0.1)
    problems = check_plates(Layout((plate,)), parts, printer, spacing_mm=SPACING, border_mm=BORDER)
    assert any("block copy 1 and block copy 2 overlap" in problem for problem in problems)
    assert any("block copy 3 is outside" in problem for problem in problems)
    apart = SheetLayout(1, bed_sheet(printer), (Placement(0, 1, 10, 10, 0), Placement(0, 2, 53, 10, 0),
                                                Placement(0, 3, 10, 100, 0)), 93, 0.1)
    problems = check_plates(Layout((apart,)), parts, printer, spacing_mm=SPACING, border_mm=BORDER)
    assert problems == ["plate 1: block copy 1 and block copy 2 are 3.00 mm apart; the spacing is 6 mm"]


def test_bad_spacing_is_refused_in_plain_words(printer):
    with pytest.raises(ValidationError, match="spacing: -1 mm is out of range; allowed: 0 mm or more"):
        pack_plates([PrintPart("block", box(0, 0, 40, 30))], printer, spacing_mm=-1, border_mm=BORDER)


def test_a_footprint_is_the_mesh_outline_in_its_own_coordinates():
    mesh = l_shape()
    mesh.apply_translation((100, 50, 7))
    outline = footprint(mesh)
    assert outline.area == pytest.approx(60 * 15 * 2 - 15 * 15, rel=0.01)  # an L, not its 60 x 60 box
    assert outline.bounds == pytest.approx((100, 50, 160, 110), abs=0.1)
    assert outline.buffer(1e-6).covers(box(100, 50, 160, 65))


def test_bad_mesh_files_are_refused_naming_the_file(tmp_path):
    with pytest.raises(ValidationError, match="missing.stl: cannot be read: no such file"):
        read_mesh(tmp_path / "missing.stl", "missing.stl")
    (tmp_path / "junk.stl").write_text("solid junk\nfacet nonsense\n")
    with pytest.raises(ValidationError) as caught:
        read_mesh(tmp_path / "junk.stl", "junk.stl")
    assert caught.value.errors[0].field == "junk.stl" and "solid part" in caught.value.errors[0].message
    flat = trimesh.Trimesh(vertices=[[0, 0, 0], [10, 0, 0], [0, 10, 0]], faces=[[0, 1, 2]])
    flat.export(tmp_path / "flat.stl")
    with pytest.raises(ValidationError, match="is flat"):
        read_mesh(tmp_path / "flat.stl", "flat.stl")


def test_object_extrusion_follows_the_labels(tmp_path):
    gcode = tmp_path / "labels.gcode"
    gcode.write_text("M82\nG92 E0\n;LAYER_CHANGE\nG1 X5 Y5\nG1 X50 Y5 E2\n"
                     "; printing object a.stl id:0 copy 0\nG1 X10 Y10\nG1 X20 Y10 E3\nG1 X20 Y12 E3.5\n"
                     "; stop printing object a.stl id:0 copy 0\n"
                     "; printing object b two.stl id:1 copy 0\nG92 E0\nG1 X100 Y100\nG1 X110 Y105 E1.25\n"
                     "; stop printing object b two.stl id:1 copy 0\n")
    found = object_extrusion(gcode)
    assert found.objects["a.stl"][0] == pytest.approx(1.5) and found.objects["b two.stl"][0] == pytest.approx(1.25)
    assert found.other_mm == pytest.approx(2.0)
    bounds = found.objects["a.stl"][1]
    assert (bounds.x_min, bounds.y_min, bounds.x_max, bounds.y_max) == (10, 10, 20, 12)
    assert (found.overall.x_min, found.overall.x_max, found.overall.y_max) == (5, 110, 105)


# -- with PrusaSlicer ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """One run of mixed parts: blocks, L brackets and discs in PLA, one part too long, one in PETG not loaded."""
    from tests.parametric.conftest import require

    require("prusa-slicer", "prusa-slicer")
    printer = Printer(name="mk3", build_volume_mm=(250, 210, 210), nozzle_diameter_mm=0.4, materials=["pla", "tpu"])
    out = tmp_path_factory.mktemp("plates")
    disc = trimesh.creation.cylinder(radius=12, height=3, sections=48)
    sources = [PlateSource("block.stl", "block", block(40, 30, 2), 6, "pla"),
               PlateSource("bracket.stl", "bracket", l_shape(height=2), 4, "pla"),
               PlateSource("disc.stl", "disc", disc, 5, "pla"),
               PlateSource("plank.stl", "plank", block(300, 20, 2), 1, "pla"),
               PlateSource("petg.stl", "petg", block(20, 20, 2), 2, "petg")]
    return printer, sources, out, make_plates(sources, printer, out, seconds=1)


@pytest.mark.integration
def test_a_plate_gcode_holds_every_object_where_it_was_placed_within_the_bed(mixed_run):
    printer, sources, out, run = mixed_run
    assert len(run.plates) == 1
    plate = run.plates[0]
    found = object_extrusion(out / "plate-1.gcode")
    labels = re.findall(r"^; printing object (\S+) id:\d+ copy \d+$", (out / "plate-1.gcode").read_text(), re.M)
    assert sorted(set(labels)) == [f"o{number:03d}.stl" for number in range(1, 16)]  # 6 + 4 + 5 objects
    for order, entry in enumerate(plate.layout.placements, start=1):
        filament, bounds = found.objects[f"o{order:03d}.stl"]
        minx, miny, maxx, maxy = entry.polygon(plate.parts[entry.part].footprint).bounds
        assert filament > 0
        assert minx - 0.5 <= bounds.x_min and bounds.x_max <= maxx + 0.5
        assert miny - 0.5 <= bounds.y_min and bounds.y_max <= maxy + 0.5
    assert found.overall.inside(*printer.build_volume_mm[:2], tolerance=0.0)
    assert len({entry.part for entry in plate.layout.placements}) == 3


@pytest.mark.integration
def test_report_json_gives_plates_objects_estimates_and_unplaced(mixed_run):
    printer, sources, out, run = mixed_run
    report = json.loads((out / "report.json").read_text())
    assert {"plates", "unplaced"} <= report.keys()
    plate = report["plates"][0]
    assert {"index", "gcode", "objects", "estimates"} <= plate.keys() and plate["index"] == 1
    assert plate["gcode"] == "plate-1.gcode" and (out / plate["picture"]).stat().st_size > 1000
    for entry in plate["objects"]:
        assert {"file", "copy", "x_mm", "y_mm", "rotation_deg"} <= entry.keys()
    assert sorted((entry["file"], entry["copy"]) for entry in plate["objects"]) == sorted(
        [("block.stl", n) for n in range(1, 7)] + [("bracket.stl", n) for n in range(1, 5)]
        + [("disc.stl", n) for n in range(1, 6)])
    # PrusaSlicer's own figures for the plate, shared out by object so that the shares add up to them
    assert plate["estimates"] == pytest.approx(read_estimates(out / "plate-1.gcode").to_dict(), abs=1e-3)
    assert sum(entry["share"] for entry in plate["objects"]) == pytest.approx(1.0, abs=1e-4)
    assert sum(entry["estimates"]["filament_g"] for entry in plate["objects"]) == pytest.approx(
        plate["estimates"]["filament_g"], rel=1e-3)
    blocks = [entry["share"] for entry in plate["objects"] if entry["file"] == "block.stl"]
    discs = [entry["share"] for entry in plate["objects"] if entry["file"] == "disc.stl"]
    assert min(blocks) > max(discs)  # a 40 x 30 block takes more filament than a 24 mm disc
    parts = {entry["file"]: entry for entry in report["parts"]}
    assert {name: entry["copies"] for name, entry in parts.items()} == {"block.stl": 6, "bracket.stl": 4,
                                                                        "disc.stl": 5}
    assert parts["block.stl"]["plates"] == [1]
    assert parts["block.stl"]["estimates"]["filament_g"] == pytest.approx(
        sum(entry["estimates"]["filament_g"] for entry in plate["objects"] if entry["file"] == "block.stl"), abs=1e-2)
    assert sum(entry["estimates"]["print_time_s"] for entry in parts.values()) == pytest.approx(
        plate["estimates"]["print_time_s"], rel=1e-3)
    unplaced = {(entry["file"], entry["copy"]): entry["reason"] for entry in report["unplaced"]}
    assert set(unplaced) == {("plank.stl", 1), ("petg.stl", 1), ("petg.stl", 2)}
    assert "does not fit" in unplaced[("plank.stl", 1)] and "mk3 has pla, tpu loaded, not petg" in unplaced[
        ("petg.stl", 1)]


@pytest.mark.integration
def test_the_gcode_check_refuses_a_plate_missing_an_object(mixed_run):
    printer, sources, out, run = mixed_run
    plate = run.plates[0]
    objects = {f"o{order:03d}.stl": (f"object {order}", entry.polygon(plate.parts[entry.part].footprint))
               for order, entry in enumerate(plate.layout.placements, start=1)}
    PlateCheck(objects, printer)(out / "plate-1.gcode")  # the plate as sliced passes
    objects["o099.stl"] = ("bracket.stl copy 9", box(10, 10, 20, 20))
    with pytest.raises(SlicerError, match="bracket.stl copy 9 is not in the G-code"):
        PlateCheck(objects, printer)(out / "plate-1.gcode")
    moved = dict(objects)
    moved.pop("o099.stl")
    moved["o001.stl"] = ("object 1", box(200, 150, 210, 160))
    with pytest.raises(SlicerError, match="object 1 is printed at .* not where it was placed"):
        PlateCheck(moved, printer)(out / "plate-1.gcode")
    small = Printer(name="tiny", build_volume_mm=(120, 120, 100), materials=["pla"])
    with pytest.raises(SlicerError, match="extrudes beyond the bed of tiny"):
        PlateCheck(dict(list(objects.items())[:-1]), small)(out / "plate-1.gcode")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "parametric.cli", *args], capture_output=True, text=True)


@pytest.mark.integration
def test_cli_plate_packs_templates_and_files_and_keeps_going_past_bad_input(prusa_slicer, tmp_path):
    store = tmp_path / "machines.json"
    MachineStore(store).add(Printer("mk3", (250, 210, 210), materials=["pla", "petg"]))
    block(40, 30, 2).export(tmp_path / "block.stl")
    block(300, 20, 2).export(tmp_path / "plank.stl")
    (tmp_path / "junk.stl").write_text("solid junk\nfacet nonsense\n")
    out = tmp_path / "out"
    result = cli("plate", "leg_cap:3", "name_plate", f"{tmp_path / 'block.stl'}:2", str(tmp_path / "junk.stl"),
                 str(tmp_path / "plank.stl"), "--set", "name_plate.text=ADA", "--material", "pla",
                 "--batch", "B-7", "--url", "https://shop.example/batches/7",
                 "--machine", "mk3", "--store", str(store), "--seconds", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"error: {tmp_path / 'junk.stl'}" in result.stderr and "plank.stl copy 1 not placed" in result.stderr
    report = json.loads((out / "report.json").read_text())
    assert result.stdout.strip() == str(out / "report.json")
    files = sorted({entry["file"] for plate in report["plates"] for entry in plate["objects"]})
    assert [name for name in files if ":" in name and not name.startswith("/")] == [
        "leg_cap:leg_cap", "name_plate:plate"]
    assert sum(1 for plate in report["plates"] for entry in plate["objects"]) == 3 + 1 + 2
    for plate in report["plates"]:
        gcode = out / plate["gcode"]
        labels = set(re.findall(r"^; printing object (\S+) id:", gcode.read_text(), re.M))
        assert len(labels) == len(plate["objects"])
        assert object_extrusion(gcode).overall.inside(250, 210)
        assert plate["estimates"]["print_time_s"] > 0 and (out / f"plate-{plate['index']}.png").is_file()
    reasons = {entry["file"]: entry["reason"] for entry in report["unplaced"]}
    assert set(reasons) == {str(tmp_path / "junk.stl"), str(tmp_path / "plank.stl")}
    assert report["files"] == {"batch_sheet_html": "batch-sheet.html", "batch_sheet_pdf": "batch-sheet.pdf"}
    html = (out / "batch-sheet.html").read_text()
    assert '<div class="ref">B-7</div>' in html and "https://shop.example/batches/7" in html
    assert "Leg cap" in html and "Name plate" in html and "junk.stl" in html  # the left-off file is listed


@pytest.mark.integration
def test_cli_plate_refuses_bad_options_before_making_anything(tmp_path):
    store = tmp_path / "machines.json"
    MachineStore(store).add(Printer("mk3", (250, 210, 210), materials=["pla"]))
    result = cli("plate", "no_such_template:2", "--machine", "nope", "--spacing", "-2", "--set", "leg_cap.x=1",
                 "--store", str(store), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown template 'no_such_template'" in result.stderr
    assert "spacing: -2 mm is out of range" in result.stderr and "nope" in result.stderr
    assert "leg_cap: not one of the templates given" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.integration
def test_a_full_plate_with_a_skirt_is_sliced_with_every_extrusion_on_the_bed(prusa_slicer, printer, tmp_path):
    # 29 copies of 40 x 30 mm in four corner blocks (a pinwheel), the skirt around them all, 3.6 mm from the edges
    run = make_plates([PlateSource("block.stl", "block", block(40, 30, 2), 29, "pla")], printer, tmp_path,
                      seconds=1, batch_sheet=False)
    [plate] = run.plates
    assert len(plate.layout.placements) == 29
    assert_plate_valid(plate.layout, plate.parts, printer, SPACING, BORDER)
    gcode = tmp_path / "plate-1.gcode"
    found = object_extrusion(gcode)
    assert len(found.objects) == 29
    assert found.overall.inside(*printer.build_volume_mm[:2], tolerance=0.0)
    turns = {entry.rotation_deg for entry in plate.layout.placements}
    assert turns == {0.0, 90.0}  # the blocks are turned both ways


@pytest.mark.integration
def test_parts_in_different_filaments_go_on_plates_of_their_own(prusa_slicer, printer, tmp_path):
    sources = [PlateSource("a.stl", "a", block(20, 20, 1), 2, "pla"),
               PlateSource("b.stl", "b", block(20, 20, 1), 1, "tpu"),
               PlateSource("c.stl", "c", block(10, 30, 1), 1, "pla")]
    run = make_plates(sources, printer, tmp_path, seconds=1)
    assert [(plate.material, len(plate.layout.placements)) for plate in run.plates] == [("pla", 3), ("tpu", 1)]
    assert "filament_type = FLEX" in (tmp_path / "plate-2.ini").read_text()  # the TPU plate is sliced for TPU
    assert "filament_type = PLA" in (tmp_path / "plate-1.ini").read_text()
    assert not run.unplaced
