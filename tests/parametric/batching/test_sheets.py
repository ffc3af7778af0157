"""CNC sheets: rendered products' parts nested onto a router's stock, each sheet one job for the router.

Measured on what is written, not on the engine's numbers: placements are read back from the
sheet's DXF with shapely (spacing, margin, grain), and the G-code is run through LinuxCNC's
rs274, whose canonical moves must reach every hole, pocket and outline of every placed part.
"""

from __future__ import annotations

import json
import math

import ezdxf
import pytest
from shapely import affinity
from shapely.geometry import LineString, MultiLineString, Point, Polygon, box

import parametric
from parametric.batching import FOUR_WAY
from parametric.batching.sheets import SheetItem, cut_sheets
from parametric.cli import main
from parametric.cnc import CamSettings, check_programs, plan
from parametric.cnc.features import Hole, PartFeatures
from parametric.cnc.sheet import PlacedPart, cam_sheet, cutting_order
from parametric.machines import MachineStore, machine_from_dict

pytestmark = pytest.mark.integration

SETTINGS = CamSettings()


def read_layer(path, layer):
    """The closed polylines of one layer of a DXF, as shapely polygons."""
    space = ezdxf.readfile(path).modelspace()
    return [Polygon([tuple(point)[:2] for point in entity.get_points("xy")])
            for entity in space.query(f'LWPOLYLINE[layer=="{layer}"]')]


def labels(path):
    space = ezdxf.readfile(path).modelspace()
    return [(entity.dxf.text, Point(entity.dxf.align_point.x, entity.dxf.align_point.y))
            for entity in space.query('TEXT[layer=="LABELS"]')]


@pytest.fixture(scope="module", params=["linuxcnc", "grbl"])
def job(request, tmp_path_factory, make_router):
    """Two paperback bookcases (15 mm panels with dados, a 4 mm back nobody stocks) and three kitchen doors
    (18 mm, handle holes and hinge cups), birch plywood, on a router stocking 2500 x 1250 mm sheets."""
    router = machine_from_dict(make_router(request.param))
    book = parametric.render("bookcase", {}, preset="paperback", material="birch_plywood", formats=["step"])
    door = parametric.render("cabinet_door", {}, preset="ikea-60-kitchen", material="birch_plywood",
                             formats=["step"])
    out = tmp_path_factory.mktemp(f"sheets-{request.param}")
    items = [SheetItem(book, 2, "ORD-1", "1"), SheetItem(door, 3, "ORD-2", "1")]
    return cut_sheets(items, router, out, seconds=3), router, out, items


def deepest_crossing(canon, region):
    """The lowest Z of any cutting move that passes through ``region`` (its segments, not only its ends)."""
    lowest = None
    for move in canon.cutting:
        points = move.points()
        track = Point(points[0][:2]) if all(p[:2] == points[0][:2] for p in points) else LineString(
            [p[:2] for p in points])
        if track.intersects(region):
            z = min(p[2] for p in points)
            lowest = z if lowest is None else min(lowest, z)
    return lowest


def placed_features(placed: PlacedPart):
    """A placed part's outline, holes and pockets in sheet coordinates."""

    def moved(geometry):
        return affinity.translate(affinity.rotate(geometry, placed.rotation_deg, origin=(0, 0)), placed.x_mm,
                                  placed.y_mm)

    features = placed.features
    holes = [(moved(Point(hole.center)), hole) for hole in features.holes]
    return moved(features.outline), holes, [(moved(pocket.region), pocket.depth) for pocket in features.pockets]


def test_every_part_is_placed_once_or_unplaced_with_its_reason(job):
    result, _, out, _ = job
    report = json.loads((out / "report.json").read_text())
    placed = sorted((entry["template"], entry["part"], entry["copy"]) for sheet in report["sheets"]
                    for entry in sheet["placements"])
    expected = ([("bookcase", "side", n) for n in range(1, 5)] + [("bookcase", "top", n) for n in (1, 2)]
                + [("bookcase", "bottom", n) for n in (1, 2)] + [("bookcase", "shelf", n) for n in range(1, 9)]
                + [("cabinet_door", "door", n) for n in (1, 2, 3)])
    assert placed == sorted(expected)
    assert [(entry["part"], entry["copy"]) for entry in report["unplaced"]] == [("back", 1), ("back", 2)]
    assert all("needs 4 mm Birch plywood sheet" in entry["reason"] for entry in report["unplaced"])
    stocks = {(stock["material"], stock["thickness_mm"]): stock for stock in report["stocks"]}
    assert set(stocks) == {("birch_plywood", 15.0), ("birch_plywood", 18.0)}
    for sheet in report["sheets"]:
        assert {entry["template"] for entry in sheet["placements"]} == (
            {"bookcase"} if sheet["thickness_mm"] == 15 else {"cabinet_door"})  # one stock per sheet
        assert 0 < sheet["utilisation"] < 1 and sheet["machining_time_s"] > 0 and sheet["verified_moves"] > 0
    assert all(stock["remnant_mm"][0] > 0 for stock in stocks.values())


def test_placements_on_the_dxf_keep_spacing_margin_and_grain(job):
    result, router, out, _ = job
    spacing = router.tool(1).diameter_mm + 2.0
    for sheet in result.sheets:
        outlines = read_layer(out / sheet.program.dxf.name, "PROFILE_THROUGH")
        assert len(outlines) == len(sheet.placed)
        length, width = sheet.layout.sheet.length_mm, sheet.layout.sheet.width_mm
        usable = box(SETTINGS.margin_mm, SETTINGS.margin_mm, length - SETTINGS.margin_mm,
                     width - SETTINGS.margin_mm).buffer(1e-3)
        for index, outline in enumerate(outlines):
            assert usable.covers(outline), outline.bounds
            for other in outlines[index + 1:]:
                assert outline.distance(other) >= spacing - 1e-3
        named = labels(out / sheet.program.dxf.name)
        assert sorted(text for text, _ in named) == sorted(part.label for _, part in sheet.placed)
        for text, spot in named:
            [outline] = [outline for outline in outlines if outline.contains(spot)]
            minx, miny, maxx, maxy = outline.bounds
            if " side " in text or " shelf " in text:  # bookcase panels: grain along their length = along X
                assert maxx - minx > maxy - miny
            if " door " in text:  # a 597 x 797 door: its grain runs up it, so its height lies along the sheet
                assert maxx - minx == pytest.approx(797, abs=0.5) and maxy - miny == pytest.approx(597, abs=0.5)
        for _, part in sheet.placed:
            if "door" in part.label:
                assert part.rotation_deg in (90.0, 270.0)
            else:
                assert part.rotation_deg in (0.0, 180.0)


def test_each_sheet_program_machines_every_hole_pocket_and_outline(job, rs274):
    result, router, out, _ = job
    for sheet in result.sheets:
        canon = check_programs([out / program.filename for program in sheet.program.programs], result.tool_table)
        thickness = sheet.thickness_mm
        through = -(thickness + SETTINGS.overcut_mm)
        final = [move for move in canon.cutting if move.end[2] <= -(thickness - SETTINGS.tab_height_mm) + 1e-6
                 and move.start[2] <= -(thickness - SETTINGS.tab_height_mm) + 1e-6]
        final_lines = MultiLineString([[move.start[:2], move.end[:2]] for move in final
                                       if math.dist(move.start[:2], move.end[:2]) > 1e-6])
        for _, part in sheet.placed:
            outline, holes, pockets = placed_features(part)
            radius = max(op.tool.radius_mm for op in part.operations if op.kind == "profile_outside")
            path = outline.buffer(radius, quad_segs=16).exterior
            samples = [path.interpolate(distance) for distance in range(0, int(path.length), 10)]
            assert all(final_lines.distance(sample) < 0.05 for sample in samples), part.label
            band = outline.buffer(radius + 0.05).difference(outline.buffer(radius - 0.05))
            assert canon.deepest_within(band) == pytest.approx(through, abs=1e-3), part.label
            for centre, hole in holes:
                reached = canon.deepest_within(centre.buffer(hole.diameter / 2 - 0.05))
                assert reached is not None and reached <= -hole.depth + 1e-6, (part.label, hole)
            for region, depth in pockets:
                assert deepest_crossing(canon, region.buffer(-0.5)) == pytest.approx(-depth, abs=1e-6), part.label
        if router.dialect == "linuxcnc":
            assert len(sheet.program.programs) == 1
            assert len(canon.tools) == len(set(canon.tools))  # each tool once per sheet
        else:
            tools = [tuple(tool.number for tool in program.tools) for program in sheet.program.programs]
            assert all(len(entry) == 1 for entry in tools) and len(set(tools)) == len(tools)
        dwell = SETTINGS.spindle_dwell_s * len(canon.spindle_rpm)
        changes = SETTINGS.tool_change_s * (max(0, len(canon.tools) - 1) + max(0, len(sheet.program.programs) - 1))
        assert sheet.program.time_s == pytest.approx(canon.time_s(router.rapid_mm_min) + dwell + changes, rel=0.02)


def test_inner_features_before_outlines_and_small_parts_before_large(job):
    result, _, _, _ = job
    for sheet in result.sheets:
        operations = sheet.program.operations
        for _, part in sheet.placed:
            mine = [index for index, op in enumerate(operations) if op.description.startswith(part.label + ":")]
            outline = [index for index in mine if operations[index].kind == "profile_outside"]
            assert len(outline) == 1 and all(index < outline[0] for index in mine if index not in outline)
        outlines = [op.shapes[0].area for op in operations if op.kind == "profile_outside"]
        assert all(first <= second + 1e-3 for first, second in zip(outlines, outlines[1:], strict=False))
        assert operations[-1].kind == "profile_outside"


def frame_door():
    """A 400 x 700 mm frame door with a 300 x 600 mm window, as CAM's features (no CAD kernel needed)."""
    return PartFeatures("frame", 18.0, box(0, 0, 400, 700), cutouts=[box(50, 50, 350, 650)],
                        holes=[Hole((25, 350), 5.0, 18.0, True)])


def test_a_part_in_a_window_is_cut_before_the_window(tmp_path, rs274, make_router):
    router = machine_from_dict(make_router("linuxcnc"))
    door = frame_door()
    disc = PartFeatures("disc", 18.0, affinity.translate(Point(0, 0).buffer(60, quad_segs=32), 60, 60))
    door_ops, disc_ops = plan(door, router, "birch_plywood"), plan(disc, router, "birch_plywood")
    parts = [PlacedPart("door", door, door_ops, 0.0, 20.0, 20.0),
             PlacedPart("disc", disc, disc_ops, 0.0, 150.0, 300.0, inside=True)]
    operations = cutting_order(parts)
    window = next(index for index, op in enumerate(operations) if op.description.startswith("door: cut out"))
    disc_outline = next(index for index, op in enumerate(operations) if op.description.startswith("disc:"))
    assert disc_outline < window
    program = cam_sheet(parts, router, "birch_plywood", 18.0, (1000.0, 800.0), tmp_path, "sheet-1")
    from parametric.cnc import write_tool_table

    table = write_tool_table(program.programs, router, tmp_path)
    canon = check_programs([tmp_path / p.filename for p in program.programs], table)
    inside_disc = affinity.translate(disc.outline, 150, 300).buffer(-1)
    assert canon.deepest_within(box(70, 70, 370, 670).difference(inside_disc.buffer(4))) is not None
    assert canon.deepest_within(inside_disc) is None  # nothing cuts into the part in the window


def test_a_part_larger_than_every_sheet_and_an_uncuttable_one_are_listed_the_rest_cut(tmp_path, make_router):
    router = machine_from_dict(make_router("grbl"))
    pantry = parametric.render("cabinet_door", {}, preset="tall-pantry", material="oak", formats=["step"])
    flap = parametric.render("cabinet_door", {}, preset="drawer-front-80", material="birch_plywood", formats=["step"])
    job = cut_sheets([SheetItem(pantry), SheetItem(flap, 2)], router, tmp_path, sheet_mm=(1500.0, 1250.0),
                     seconds=1, verify=False, png=False)
    report = json.loads((tmp_path / "report.json").read_text())
    assert [(entry["template"], entry["part"]) for entry in report["unplaced"]] == [("cabinet_door", "door")]
    assert report["unplaced"][0]["reason"].startswith("1997 mm long; the largest 19 mm Solid oak sheet")
    assert "1500 x 1250 mm" in report["unplaced"][0]["reason"]
    assert sum(len(sheet.placed) for sheet in job.sheets) == 2


def test_spacing_under_the_cutter_is_refused_naming_it(tmp_path, make_router):
    router = machine_from_dict(make_router("grbl"))
    flap = parametric.render("cabinet_door", {}, preset="drawer-front-80", material="birch_plywood", formats=["step"])
    with pytest.raises(parametric.ValidationError) as raised:
        cut_sheets([SheetItem(flap)], router, tmp_path, spacing_mm=4, margin_mm=1, rotations=FOUR_WAY)
    messages = {problem.field: problem.message for problem in raised.value.errors}
    assert "less than the 6 mm cutter" in messages["spacing"] and "allowed: 6 mm or more" in messages["spacing"]
    assert "allowed: 3 mm or more" in messages["margin"]
    assert not (tmp_path / "report.json").exists()


def test_cli_nests_templates_on_a_machine_and_writes_gcode(tmp_path, capsys, rs274, make_router):
    store = tmp_path / "machines.json"
    MachineStore(store).add(machine_from_dict(make_router("linuxcnc", "shop")))
    out = tmp_path / "out"
    code = main(["nest", "bookcase@paperback:1", "cabinet_door:2", "--set", "cabinet_door.width=400",
                 "--set", "back_panel=false", "--material", "birch_plywood", "--machine", "shop",
                 "--store", str(store), "--seconds", "2", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip() == str(out / "report.json")
    assert "checked by rs274" in captured.err and "remnant of the last sheet" in captured.err
    report = json.loads((out / "report.json").read_text())
    assert report["unplaced"] == []
    assert report["files"] == {"batch_sheet_html": "batch-sheet.html", "batch_sheet_pdf": "batch-sheet.pdf"}
    html = (out / "batch-sheet.html").read_text()
    assert "No QR code: no dashboard address set for this batch" in html and "<h1>Batch sheet</h1>" in html
    assert '<div class="ref">out</div>' in html  # named after the folder when no --batch is given
    for sheet in report["sheets"]:
        assert all((out / name).exists() for name in (sheet["dxf"], sheet["svg"], sheet["png"], *sheet["gcode"]))
        assert sheet["verified_moves"] > 0
        for entry in sheet["placements"]:
            assert {"x_mm", "y_mm", "rotation_deg", "copy", "template", "part"} <= set(entry)
    doors = [entry for sheet in report["sheets"] for entry in sheet["placements"] if entry["part"] == "door"]
    assert len(doors) == 2
    assert (out / "tool.tbl").exists()


def test_cli_template_input_errors_are_listed_and_exit_2(tmp_path, capsys, make_router):
    store = tmp_path / "machines.json"
    MachineStore(store).add(machine_from_dict(make_router("grbl", "shop")))
    code = main(["nest", "bookcase:1", "no_such:2", "cabinet_door@nope", "--set", "wingspan=3",
                 "--set", "table.width=3", "--grain", "x.dxf", "--store", str(store), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "machine: templates are nested on a router's stock" in err
    assert "unknown template 'no_such'" in err and "unknown preset 'nope' of cabinet_door" in err
    assert "has a parameter 'wingspan'" in err and "'table' is not one of the templates" in err
    assert "grain: templates declare" in err
    code = main(["nest", "bookcase:1", "door.dxf", "--machine", "shop", "--store", str(store),
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "give either DXF files or templates" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_labels_never_land_on_a_cut_layer(job):
    result, _, out, _ = job
    for sheet in result.sheets:
        space = ezdxf.readfile(out / sheet.program.dxf.name).modelspace()
        assert {entity.dxf.layer for entity in space.query("TEXT")} == {"LABELS"}
        cut_layers = {entity.dxf.layer for entity in space if entity.dxftype() != "TEXT"} - {"SHEET"}
        assert cut_layers and all(layer.startswith(("PROFILE", "DRILL", "POCKET", "CUTOUT")) for layer in cut_layers)
        [edge] = read_layer(out / sheet.program.dxf.name, "SHEET")
        assert edge.bounds == (0, 0, sheet.layout.sheet.length_mm, sheet.layout.sheet.width_mm)


def test_nested_sheets_cut_dados_to_the_measured_sheet_plus_the_allowance(tmp_path, rs274, make_router):
    """A router whose 18 mm plywood measures 17.6 mm: the nested sheet's G-code, read back through rs274, cuts each
    side's shelf dados 17.6 mm plus the fit allowance wide, as a single product's CAM does; the order keeps 18 mm."""
    from parametric.joinery import FIT_ALLOWANCE_MM
    from parametric.registry import get_template

    from ..cnc.test_measured_stock import BOOKCASE, swept

    record = make_router()
    for sheet in record["stock"]:
        if sheet["material"] == "birch_plywood" and sheet["thickness_mm"] == 18:
            sheet["measured_thickness_mm"] = 17.6
    book = parametric.render("bookcase", BOOKCASE, material="birch_plywood", formats=["step"],
                             out_dir=tmp_path / "render")
    out = tmp_path / "sheets"
    job = cut_sheets([SheetItem(book, 1)], machine_from_dict(record), out, seconds=2, png=False, batch_sheet=False)
    params = get_template("bookcase").resolve(book.params)
    widths = []
    for sheet in job.sheets:
        canon = check_programs([out / program.filename for program in sheet.program.programs], job.tool_table)
        for _, placed in sheet.placed:
            if placed.label.split()[-2] != "side":
                continue
            radius = next(op for op in placed.operations if op.kind == "pocket").tool.radius_mm
            cut = affinity.rotate(affinity.translate(swept(canon, -params.dado_depth, radius), -placed.x_mm,
                                                     -placed.y_mm), -placed.rotation_deg, origin=(0, 0))
            for shelf in params.shelf_positions():
                band = box(shelf - 10, params.depth / 2 - 10, shelf + params.thickness + 10, params.depth / 2 + 10)
                lo, _, hi, _ = cut.intersection(band).bounds
                widths.append(hi - lo)
    assert widths == pytest.approx([17.6 + FIT_ALLOWANCE_MM] * 4, abs=1e-3)  # two sides, two shelves each
    stock = next(s for s in job.report["stocks"] if s["thickness_mm"] == 18)
    assert stock["fit"] == {"allowance_mm": FIT_ALLOWANCE_MM, "measured_mm": {"18": 17.6}}
    assert book.params["sheet_thickness"] == 18


def test_one_product_s_parts_as_separate_jobs_are_each_checked_against_their_own_files(tmp_path, make_router):
    """The web hands each job's part on its own (``Manifest.for_part``: one part's files, the product's cache key):
    each part is checked against its own STEP file, not the first job's (which once refused every part after the
    first as 'rendered without a STEP file')."""
    router = machine_from_dict(make_router("linuxcnc"))
    book = parametric.render("bookcase", {}, preset="paperback", material="birch_plywood", formats=["step"])
    names = [part["name"] for part in book.parts if part["name"] != "back"]
    items = [SheetItem(book.for_part(name), 1, "ORD-1", f"job-{index}") for index, name in enumerate(names, 1)]
    result = cut_sheets(items, router, tmp_path, seconds=2, verify=False, png=False, batch_sheet=False)
    assert result.unplaced == []
    copies = sum(int(part["quantity"]) for part in book.parts if part["name"] in names)
    assert sum(len(sheet.placed) for sheet in result.sheets) == copies
