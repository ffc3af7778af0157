"""CNC: features read from the B-rep, DXF layers, and G-code checked by LinuxCNC's rs274 interpreter.

The measurements come from rs274's canonical moves, not from our own G-code: the cut's
extents, the depth reached inside each hole and pocket, the area swept at each floor,
the tabs on the final pass.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from shapely.geometry import Point

from parametric.cnc import (
    CamError,
    CamSettings,
    InterpreterError,
    cam_part,
    check_programs,
    extract_features,
    final_pass_tabs,
    run_rs274,
)
from parametric.machines import MachineStore, machine_from_dict

T = 18.0
"""Thickness of the test board (mm)."""
CLOSED_POCKET = (40, 150, 120, 40, 8.0)  # x, y, width, height, depth
DADO = (0, 20, 400, 18, 6.0)  # runs off both ends
CUTOUT = (250, 120, 80, 60)
CUP = ((320, 60), 35.0, 12.0)
SMALL_HOLES = [((200, 80), 5.0), ((220, 80), 5.0)]
MILLED_HOLE = ((100, 90), 10.0)


@pytest.fixture(scope="module")
def board():
    """A 400 x 250 x 18 mm board with every kind of feature a flat part has."""
    import cadquery as cq

    def pocket(x, y, width, height, depth):
        return cq.Solid.makeBox(width, height, depth + 1, cq.Vector(x, y, T - depth))

    def cylinder(center, diameter, depth, through=False):
        base = -1 if through else T - depth
        return cq.Solid.makeCylinder(diameter / 2, (T + 2) if through else depth + 1,
                                     cq.Vector(*center, base), cq.Vector(0, 0, 1))

    x, y, width, height, depth = DADO
    tools = [pocket(*CLOSED_POCKET), pocket(x - 1, y, width + 2, height, depth),
             cq.Solid.makeBox(CUTOUT[2], CUTOUT[3], T + 2, cq.Vector(CUTOUT[0], CUTOUT[1], -1)),
             cylinder(CUP[0], CUP[1], CUP[2]), cylinder(*MILLED_HOLE, T, through=True),
             *(cylinder(center, diameter, T, through=True) for center, diameter in SMALL_HOLES)]
    return cq.Solid.makeBox(400, 250, T).cut(*tools).clean()


def rectangle(x, y, width, height):
    from shapely.geometry import box

    return box(x, y, x + width, y + height)


def test_features_come_from_the_brep(board):
    features = extract_features(board, "board", T)
    assert features.outline.bounds == (0, 0, 400, 250) and features.thickness == T
    holes = {(h.center, h.diameter, h.depth, h.through) for h in features.holes}
    assert holes == {((200.0, 80.0), 5.0, 18.0, True), ((220.0, 80.0), 5.0, 18.0, True),
                     ((100.0, 90.0), 10.0, 18.0, True), ((320.0, 60.0), 35.0, 12.0, False)}
    assert len(features.cutouts) == 1 and features.cutouts[0].equals(rectangle(*CUTOUT))
    pockets = {p.depth: p.region for p in features.pockets}
    assert set(pockets) == {6.0, 8.0}
    assert pockets[8.0].equals(rectangle(*CLOSED_POCKET[:4]))
    assert pockets[6.0].equals(rectangle(*DADO[:4]))
    assert features.notes == []


def test_countersinks_and_underside_profiles_are_noted():
    from parametric.part import as_parts, solid_of
    from parametric.registry import get_template

    shelf = get_template("wall_shelf")
    parameters = shelf.resolve({})
    board = next(p for p in as_parts("wall_shelf", shelf.build(parameters)) if p.name == "board")
    features = extract_features(solid_of(board.shape), "board", board.thickness)
    assert len(features.holes) == len(parameters.hole_positions())
    assert all(h.diameter == pytest.approx(parameters.hole_diameter) and h.through for h in features.holes)
    [countersink] = features.second_setups
    assert countersink.operation.startswith(f"countersink {len(features.holes)} holes to 10 mm")
    assert countersink.tool == "a 90° countersink bit of at least 10 mm, in a drill or the router"

    door = get_template("cabinet_door")
    built = as_parts("cabinet_door", door.build(door.resolve({"edge_profile": "radius"})))[0]
    door_features = extract_features(solid_of(built.shape), "door", built.thickness)
    assert door_features.outline.bounds == pytest.approx((0, 0, 597, 797), abs=1e-6)
    [profile] = door_features.second_setups
    radius = door.resolve({"edge_profile": "radius"}).edge_size
    assert profile.operation == f"turn the part over and round over the bottom edges, {radius:g} mm radius"
    assert profile.tool == f"a {radius:g} mm radius round-over bit with a bearing"
    chamfered = as_parts("cabinet_door", door.build(door.resolve({"edge_profile": "chamfer"})))[0]
    [chamfer] = extract_features(solid_of(chamfered.shape), "door", chamfered.thickness).second_setups
    width = door.resolve({"edge_profile": "chamfer"}).edge_size
    assert chamfer.operation == f"turn the part over and chamfer the bottom edges, {width:g} mm"
    assert chamfer.tool == f"a 45° chamfer bit with a bearing, set {width:g} mm deep"
    assert [h.diameter for h in door_features.holes if not h.through] == [35.0, 35.0]


@pytest.fixture(scope="module")
def grbl_job(board, tmp_path_factory, make_router):
    router = machine_from_dict(make_router())
    folder = tmp_path_factory.mktemp("grbl")
    return cam_part(board, "board", router, "birch_plywood", folder, thickness=T), folder


@pytest.fixture(scope="module")
def grbl_canon(grbl_job, rs274):
    result, folder = grbl_job
    return check_programs([folder / p.filename for p in result.programs])


def offset(geometry, result):
    from shapely import affinity

    return affinity.translate(geometry, *result.offset_mm)


def swept(canon, z, radius):
    """The area the cutter sweeps while cutting at height ``z``."""
    from shapely.geometry import LineString
    from shapely.ops import unary_union

    shapes = []
    for move in canon.cutting:
        points = [p[:2] for p in move.points() if abs(p[2] - z) < 1e-6]
        if len(points) >= 2 and abs(move.start[2] - z) < 1e-6 and abs(move.end[2] - z) < 1e-6:
            shapes.append(LineString(points).buffer(radius, quad_segs=16))
        elif points:
            shapes.append(Point(points[-1]).buffer(radius, quad_segs=16))
    return unary_union(shapes)


@pytest.mark.integration
def test_grbl_programs_run_in_rs274_without_errors(grbl_job, grbl_canon):
    result, folder = grbl_job
    assert [p.filename for p in result.programs] == ["board-1-T2.nc", "board-2-T1.nc"]  # drill first, outline last
    for program in result.programs:
        text = (folder / program.filename).read_text()
        words = set(text.replace("(", " ").split())
        assert not words & {"M6", "G41", "G42", "G43", "G81", "G83"}  # GRBL has none of these
        assert text.startswith("(parametric CAM") and "G21 G90 G17" in text and text.rstrip().endswith("M30")
    assert grbl_canon.spindle_rpm and all(rpm == 18000 for rpm in grbl_canon.spindle_rpm)


@pytest.mark.integration
def test_cut_extents_are_the_outline_grown_by_the_tool_radius(grbl_job, grbl_canon):
    result, _ = grbl_job
    radius = 3.0
    margin = result.offset_mm[0]
    assert grbl_canon.extents(0.0) == pytest.approx((margin - radius, margin - radius, margin + 400 + radius,
                                                     margin + 250 + radius), abs=1e-3)
    assert grbl_canon.deepest() == pytest.approx(-(T + 0.3 + 0.3 * 5), abs=1e-3)  # the drill breaks through


@pytest.mark.integration
def test_through_cuts_leave_tabs_on_the_final_pass(grbl_job, grbl_canon):
    result, _ = grbl_job
    settings = CamSettings()
    tabs = final_pass_tabs(grbl_canon, -(T + settings.overcut_mm))
    outline = offset(rectangle(0, 0, 400, 250), result).exterior.buffer(3.0 + 1e-3)
    cutout = offset(rectangle(*CUTOUT), result).exterior.buffer(3.0 + 1e-3)
    on_outline = [t for t in tabs if outline.contains(Point(t.start))]
    on_cutout = [t for t in tabs if cutout.contains(Point(t.start))]
    assert len(on_outline) == next(op.tabs for op in result.operations if op.layer == "PROFILE_THROUGH") >= 2
    assert len(on_cutout) == 2
    for tab in tabs:
        assert tab.z == pytest.approx(-(T - settings.tab_height_mm))  # material left under the tool
        assert tab.length == pytest.approx(settings.tab_width_mm + 6.0, abs=1e-3)


@pytest.mark.integration
def test_every_hole_and_pocket_is_machined_to_its_depth(grbl_job, grbl_canon):
    result, _ = grbl_job
    for (center, diameter), depth in [*((hole, T) for hole in SMALL_HOLES), (MILLED_HOLE, T), (CUP[:2], CUP[2])]:
        inside = offset(Point(center).buffer(diameter / 2), result)
        reached = grbl_canon.deepest_within(inside)
        assert reached is not None and reached <= -depth + 1e-6, (center, diameter, reached)
    for (x, y, width, height, depth) in (CLOSED_POCKET, DADO):
        region = offset(rectangle(x, y, width, height), result)
        assert grbl_canon.deepest_within(region.buffer(-0.5)) == pytest.approx(-depth, abs=1e-6)
        cleared = swept(grbl_canon, -depth, 3.0)
        assert region.difference(cleared).area < 0.05, f"pocket at {x},{y} not cleared"
    cup = offset(Point(CUP[0]).buffer(CUP[1] / 2), result)
    assert cup.difference(swept(grbl_canon, -CUP[2], 3.0)).area < 0.5


@pytest.mark.integration
def test_dogbones_free_the_inside_corners_without_gouging(grbl_job, grbl_canon):
    result, _ = grbl_job
    x, y, width, height, depth = CLOSED_POCKET
    region = offset(rectangle(x, y, width, height), result)
    cleared = swept(grbl_canon, -depth, 3.0)
    for corner in list(region.exterior.coords)[:4]:
        assert cleared.contains(Point(corner).buffer(0.2).intersection(region))
    overcut = cleared.difference(region.buffer(1e-3)).area
    assert 0 < overcut < 4 * math.pi * 3.0 ** 2 / 2  # only the four reliefs reach past the walls
    pocket = next(op for op in result.operations if op.layer == "POCKET_8MM")
    assert pocket.dogbones == 4
    dado = next(op for op in result.operations if op.layer == "POCKET_6MM")
    assert dado.dogbones == 0  # a dado open at both ends has no inside corner


@pytest.mark.integration
def test_machining_time_matches_the_interpreted_moves(grbl_job, grbl_canon):
    result, _ = grbl_job
    dwell = CamSettings().spindle_dwell_s * len(result.programs)
    interpreted = grbl_canon.time_s(5000) + dwell
    assert sum(p.time_s for p in result.programs) == pytest.approx(interpreted, rel=0.02)
    assert result.time_s == pytest.approx(interpreted + CamSettings().tool_change_s, rel=0.02)


def test_dxf_has_one_layer_per_operation_at_full_scale(grbl_job):
    import ezdxf

    result, _ = grbl_job
    document = ezdxf.readfile(result.dxf)
    assert document.header["$INSUNITS"] == 4
    entities = list(document.modelspace())
    layers = {e.dxf.layer for e in entities}
    assert layers == {"PROFILE_THROUGH", "CUTOUT_THROUGH", "POCKET_6MM", "POCKET_8MM", "DRILL_5MM", "DRILL_10MM",
                      "DRILL_35MM_12DEEP"}
    outline = [e for e in entities if e.dxf.layer == "PROFILE_THROUGH"]
    assert len(outline) == 1 and outline[0].closed
    xs, ys = zip(*[(p[0], p[1]) for p in outline[0].get_points()], strict=True)
    assert (min(xs), min(ys), max(xs), max(ys)) == (0, 0, 400, 250)
    drills = [e for e in entities if e.dxf.layer == "DRILL_5MM"]
    assert sorted((e.dxf.center.x, e.dxf.center.y, e.dxf.radius) for e in drills) == [(200, 80, 2.5), (220, 80, 2.5)]
    pocket = [e for e in entities if e.dxf.layer == "POCKET_8MM"]
    assert len(pocket) == 1 and pocket[0].closed and len(pocket[0]) > 4  # the rectangle with its dogbones
    assert all(e.closed for e in entities if e.dxftype() == "LWPOLYLINE")


@pytest.mark.integration
def test_linuxcnc_gets_tool_changes_and_a_tool_table(board, tmp_path, rs274, make_router):
    router = machine_from_dict(make_router("linuxcnc"))
    result = cam_part(board, "board", router, "oak", tmp_path, thickness=T)
    assert [p.filename for p in result.programs] == ["board.ngc"]
    text = (tmp_path / "board.ngc").read_text()
    assert "T2 M6" in text and "T1 M6" in text and "G43 H1" in text
    assert (tmp_path / "tool.tbl").read_text().splitlines()[0].startswith("T1 P1 D6.0000")
    canon = run_rs274(tmp_path / "board.ngc", tmp_path / "tool.tbl")
    assert canon.tools == [2, 1]
    oak = router.tool(1).feeds["oak"]
    assert any(m.feed == oak.feed_mm_min for m in canon.cutting) and oak.spindle_rpm in canon.spindle_rpm
    assert canon.extents(0.0) == pytest.approx((7, 7, 413, 263), abs=1e-3)


@pytest.mark.integration
def test_rs274_reports_interpreter_errors(tmp_path, rs274):
    bad = tmp_path / "bad.ngc"
    bad.write_text("G21 G90\nG1 X10 F0\nM2\n")
    with pytest.raises(InterpreterError, match="zero feed rate"):
        run_rs274(bad)
    grbl = tmp_path / "grbl.nc"
    grbl.write_text("$H\n$X\nG21 G90\nG0 X1 Y2\nG1 Z-1 F100\nM30\n")
    assert run_rs274(grbl).deepest() == -1  # GRBL's $ commands are stripped first


@pytest.mark.integration
def test_an_rs274_run_over_its_time_limit_is_stopped_as_a_fault_of_ours(tmp_path, rs274, monkeypatch):
    """The real rs274 on a long program, given a millisecond: killed, a timeout fault that uses an attempt."""
    from parametric.cnc.verify import InterpreterTimeout
    from parametric.errors import infrastructure_fault

    long = tmp_path / "long.ngc"
    moves = "".join(f"G1 X{i % 500} Y{(i * 7) % 300} F1000\n" for i in range(200_000))
    long.write_text(f"G21 G90\n{moves}M2\n")
    monkeypatch.setenv("PARAMETRIC_RS274_TIMEOUT_SECONDS", "0.001")
    with pytest.raises(InterpreterTimeout, match="longer than 0.001 s") as caught:
        run_rs274(long)
    fault = infrastructure_fault(caught.value)
    assert fault is not None and fault.kind == "timeout" and fault.counts_as_attempt


def test_a_hole_no_tool_can_make_is_refused(board, tmp_path, make_router):
    record = make_router()
    record["tools"] = [record["tools"][0]]  # only the 6 mm end mill
    refusal = (r"Ø5 mm through hole needs a 5 mm drill reaching \d+(\.\d+)? mm or an end mill under 5 mm reaching "
               r"\d+(\.\d+)? mm, with feeds for birch_plywood; shop-router has T1 .* reaching 25 mm")
    with pytest.raises(CamError, match=refusal):
        cam_part(board, "board", machine_from_dict(record), "birch_plywood", tmp_path, thickness=T)


def test_a_drill_too_short_for_the_board_is_named_with_its_reach(board, tmp_path, make_router):
    record = make_router()
    record["tools"] = [record["tools"][0], {**record["tools"][1], "flute_length_mm": 10}]  # a stubby 5 mm drill
    with pytest.raises(CamError) as refused:
        cam_part(board, "board", machine_from_dict(record), "birch_plywood", tmp_path, thickness=T)
    assert "the Ø5 mm drill T2 reaches 10 mm; this hole is" in str(refused.value)
    assert f"a {T:g} mm board and the drill's point" in str(refused.value)


def test_a_part_that_fits_the_sheet_only_turned_is_turned(board, tmp_path, make_router):
    record = make_router()
    result = cam_part(board, "board", machine_from_dict(record), "pine", tmp_path, thickness=T, quarter_turn=True)
    assert result.features.outline.bounds == (0, 0, 250, 400)
    hole = next(h for h in result.features.holes if h.diameter == 35.0)
    assert hole.center == pytest.approx((250 - 60, 320))


def cli(*args):
    return subprocess.run([sys.executable, "-m", "parametric.cli", *args], capture_output=True, text=True)


@pytest.mark.integration
def test_cli_cam_bookcase_cuts_every_dado(rs274, tmp_path, make_router):
    from parametric.registry import get_template

    store = tmp_path / "machines.json"
    record = make_router()
    record["stock"].append({"material": "birch_plywood", "thickness_mm": 4, "size_mm": [2500, 1250]})
    MachineStore(store).add(machine_from_dict(record))
    result = cli("cam", "bookcase", "--preset", "paperback", "--machine", "shop-router", "--verify",
                 "--store", str(store), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    manifest = json.loads(open(result.stdout.strip()).read())
    cam = manifest["cam"]
    assert {p["part"] for p in cam["parts"]} == {"side", "top", "bottom", "shelf", "back"}
    assert all(p["verified_moves"] > 100 for p in cam["parts"])  # every program went through rs274
    assert cam["machining_time_s"] == pytest.approx(sum(p["time_s"] * p["copies"] for p in cam["parts"]), abs=1)
    side = next(p for p in cam["parts"] if p["part"] == "side")
    params = get_template("bookcase").resolve(manifest["params"])
    canon = check_programs([tmp_path / "out" / "cnc" / p["file"] for p in side["programs"]])
    margin = side["offset_mm"][0]
    for low in params.dado_positions():
        dado = rectangle(low + margin, margin + 1, params.thickness, params.depth - 2)
        assert canon.deepest_within(dado) == pytest.approx(-params.dado_depth, abs=1e-6), low
    assert canon.extents(0.0) == pytest.approx((margin - 3, margin - 3, margin + params.height + 3,
                                                margin + params.depth + 3), abs=1e-3)
    assert any(f["format"] == "gcode" and f["part"] == "side" for f in manifest["files"])


@pytest.mark.integration
def test_cli_cam_exit_codes(tmp_path, make_router):
    store = tmp_path / "machines.json"
    record = make_router()
    record["tools"] = [record["tools"][0]]
    MachineStore(store).add(machine_from_dict(record))
    no_drill = cli("cam", "wall_shelf", "--machine", "shop-router", "--store", str(store), "--out", str(tmp_path / "a"))
    # refused by routing's check, which is CAM's own: the machine cannot make it, like a sheet it does not stock
    assert no_drill.returncode == 2 and "machine: board: a Ø5 mm through hole needs a 5 mm drill" in no_drill.stderr
    printed = cli("cam", "leg_cap", "--machine", "shop-router", "--store", str(store), "--out", str(tmp_path / "b"))
    assert printed.returncode == 2 and "template: leg_cap has no CNC parts" in printed.stderr
    unstocked = cli("cam", "wall_shelf", "--material", "oak", "--set", "board_thickness=30", "--machine",
                    "shop-router", "--store", str(store), "--out", str(tmp_path / "c"))
    assert unstocked.returncode == 2
    assert "machine: board: needs 30 mm Solid oak sheet; Solid oak is stocked in 12, 15, 18, 19, 22 mm only" \
        in unstocked.stderr
