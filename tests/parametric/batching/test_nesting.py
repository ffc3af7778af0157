"""Nesting checked on the written sheets: the output DXF re-read with ezdxf and measured with shapely."""

from __future__ import annotations

import json

import pytest
from shapely import affinity
from shapely.geometry import Point, Polygon, box

from parametric import ValidationError
from parametric.batching import GRAIN, Layout, LayoutError, Part, Placement, Sheet, SheetLayout, check_layout, nest
from parametric.batching.output import write_layout

from .drawings import read_sheet

SPACING, MARGIN = 8.0, 10.0


def frame(length: float = 300, width: float = 300, stile: float = 50) -> Polygon:
    return box(0, 0, length, width).difference(box(stile, stile, length - stile, width - stile))


def assert_cuttable(sheet_dxf, size: Sheet, count: int) -> list[Polygon]:
    """The parts on a written sheet: ``count`` of them, all inside the margin, none closer than the spacing."""
    polygons = read_sheet(sheet_dxf)
    assert len(polygons) == count
    usable = box(MARGIN, MARGIN, size.length_mm - MARGIN, size.width_mm - MARGIN).buffer(1e-3)
    for index, polygon in enumerate(polygons):
        assert polygon.is_valid and usable.covers(polygon), polygon.bounds
        for other in polygons[index + 1:]:
            assert polygon.distance(other) >= SPACING - 1e-3
    return polygons


def test_grain_locked_parts_spacing_and_margin_on_the_output_dxf(tmp_path):
    # an asymmetric grain-locked rail (a notch near one end shows 0 from 180) and quarter-turn gussets
    rail = box(0, 0, 600, 100).difference(box(500, 60, 520, 100))
    gusset = Polygon([(0, 0), (150, 0), (0, 150)]).difference(Point(40, 40).buffer(10))
    parts = [Part("rail", rail, 4, GRAIN), Part("gusset", gusset, 6)]
    sheet = Sheet(1220, 610)
    layout = nest(parts, sheet, spacing_mm=SPACING, margin_mm=MARGIN, seconds=2)
    assert not layout.unplaced and len(layout.sheets) == 1
    write_layout(layout, parts, tmp_path)
    polygons = assert_cuttable(tmp_path / "sheet-1.dxf", sheet, 10)
    rails = [polygon for polygon in polygons if polygon.area == pytest.approx(rail.area, rel=1e-6)]
    assert len(rails) == 4
    for polygon in rails:  # the grain runs along X: at 0 or 180 degrees the rail is 600 long in X
        minx, miny, maxx, maxy = polygon.bounds
        assert (maxx - minx, maxy - miny) == pytest.approx((600, 100), abs=1e-3)
    report = json.loads((tmp_path / "report.json").read_text())
    for entry in report["sheets"][0]["placements"]:  # the report's transform reproduces the drawn part
        outline = rail if entry["file"] == "rail" else gusset
        if entry["file"] == "rail":
            assert entry["rotation_deg"] % 180 == pytest.approx(0, abs=1e-6)
        placed = affinity.translate(affinity.rotate(outline, entry["rotation_deg"], origin=(0, 0)),
                                    entry["x_mm"], entry["y_mm"])
        assert min(placed.symmetric_difference(drawn).area for drawn in polygons) < 1.0


def test_overflow_fills_one_sheet_then_the_next(tmp_path):
    parts = [Part("panel", box(0, 0, 200, 130), 12)]
    sheet = Sheet(500, 300)  # four panels a sheet at most (2 x 2 in the 480 x 280 inside the margin)
    layout = nest(parts, sheet, spacing_mm=SPACING, margin_mm=MARGIN, seconds=1)
    assert len(layout.sheets) == 3 and not layout.unplaced
    assert sum(len(entry.placements) for entry in layout.sheets) == 12
    assert all(entry.used_length_mm <= sheet.length_mm - MARGIN + 1e-6 for entry in layout.sheets)
    assert layout.sheet_equivalents == pytest.approx(
        len(layout.sheets) - 1 + layout.sheets[-1].used_length_mm / sheet.length_mm)
    write_layout(layout, parts, tmp_path)
    for entry in layout.sheets:
        assert_cuttable(tmp_path / f"sheet-{entry.index}.dxf", sheet, len(entry.placements))


def test_a_part_larger_than_the_sheet_is_unplaced_and_the_rest_nested(tmp_path):
    parts = [Part("table top", box(0, 0, 1500, 700), 1, GRAIN), Part("shelf", box(0, 0, 400, 200), 3, GRAIN)]
    layout = nest(parts, Sheet(1220, 610), spacing_mm=SPACING, margin_mm=MARGIN, seconds=1)
    assert [(entry.part, entry.copy) for entry in layout.unplaced] == [(0, 1)]
    assert "does not fit" in layout.unplaced[0].reason and "1500.0 x 700.0 mm" in layout.unplaced[0].reason
    assert sorted(entry.copy for _, entry in layout.placements()) == [1, 2, 3]


def test_small_parts_go_into_a_frame_window_unless_turned_off(tmp_path):
    parts = [Part("frame", frame(), 1, GRAIN), Part("disc", Point(0, 0).buffer(40), 3)]
    sheet = Sheet(1000, 500)

    def inside_window(layout: Layout, folder) -> int:
        write_layout(layout, parts, folder)
        drawn = assert_cuttable(folder / "sheet-1.dxf", sheet, 4)
        [window] = [Polygon(polygon.interiors[0]) for polygon in drawn if polygon.interiors]
        return sum(1 for polygon in drawn if window.contains(polygon))

    with_windows = nest(parts, sheet, spacing_mm=SPACING, margin_mm=MARGIN, seconds=1)
    assert len(with_windows.sheets) == 1
    assert inside_window(with_windows, tmp_path / "on") >= 1
    assert any(entry.host == (0, 1) for _, entry in with_windows.placements())
    without = nest(parts, sheet, spacing_mm=SPACING, margin_mm=MARGIN, part_in_part=False, seconds=1)
    assert inside_window(without, tmp_path / "off") == 0


def test_report_json_has_exactly_the_documented_shape(tmp_path):
    parts = [Part("a.dxf", box(0, 0, 300, 200), 2), Part("huge.dxf", box(0, 0, 3000, 200), 1)]
    layout = nest(parts, Sheet(800, 400), spacing_mm=SPACING, margin_mm=MARGIN, seconds=1)
    write_layout(layout, parts, tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report) == {"sheets", "unplaced"}
    [sheet] = report["sheets"]
    assert set(sheet) == {"index", "size_mm", "used_length_mm", "utilisation", "placements"}
    assert sheet["index"] == 1 and sheet["size_mm"] == [800, 400]
    assert sheet["utilisation"] == pytest.approx(2 * 300 * 200 / (800 * 400), abs=1e-4)
    for placement in sheet["placements"]:
        assert set(placement) == {"file", "copy", "x_mm", "y_mm", "rotation_deg"}
    assert sorted((entry["file"], entry["copy"]) for entry in sheet["placements"]) == [("a.dxf", 1), ("a.dxf", 2)]
    drawn = read_sheet(tmp_path / "sheet-1.dxf")
    assert sheet["used_length_mm"] == pytest.approx(max(polygon.bounds[2] for polygon in drawn), abs=1e-3)
    assert report["unplaced"] == [{"file": "huge.dxf", "copy": 1, "reason": layout.unplaced[0].reason}]
    assert (tmp_path / "sheet-1.svg").read_text().startswith("<svg") and (tmp_path / "sheet-1.png").stat().st_size


def test_the_validator_rejects_hand_made_bad_layouts():
    parts = [Part("panel", box(0, 0, 100, 100), 2, GRAIN), Part("frame", frame(), 1), Part("chip", box(0, 0, 20, 20))]
    sheet = Sheet(1000, 500)

    def problems(*placements: Placement, part_in_part: bool = True) -> list[str]:
        used = SheetLayout(1, sheet, placements, 0.0, 0.0)
        return check_layout(Layout((used,)), parts, spacing_mm=SPACING, margin_mm=MARGIN, part_in_part=part_in_part)

    good = (Placement(0, 1, 20, 20, 0), Placement(0, 2, 128, 20, 0), Placement(1, 1, 300, 20, 0),
            Placement(2, 1, 440, 160, 0))
    assert problems(*good) == []
    overlap = problems(Placement(0, 1, 20, 20, 0), Placement(0, 2, 60, 60, 0), *good[2:])
    assert any("overlap" in problem for problem in overlap)
    close = problems(Placement(0, 1, 20, 20, 0), Placement(0, 2, 124, 20, 0), *good[2:])
    assert any("4.00 mm apart; the spacing is 8 mm" in problem for problem in close)
    outside = problems(Placement(0, 1, 5, 20, 0), *good[1:])
    assert any("outside the sheet minus its 10 mm margin" in problem for problem in outside)
    turned = problems(Placement(0, 1, 120, 20, 90), *good[1:])
    assert any("turned 90°; allowed: 0°, 180°" in problem for problem in turned)
    assert any("cut-out" in problem for problem in problems(*good, part_in_part=False))
    missing = problems(*good[:3])
    assert any("chip: copies 1 are neither placed nor unplaced" in problem for problem in missing)
    twice = problems(*good, Placement(0, 1, 20, 300, 0))
    assert any("placed more than once" in problem for problem in twice)


def test_nest_raises_when_every_engine_layout_fails_its_check(monkeypatch):
    from parametric.batching import nesting

    def overlapping(items, height, seconds, spacing, seed):
        return 0.0, [(item, (0.0, 0.0, 0.0)) for item, count in items for _ in range(count)]

    monkeypatch.setattr(nesting, "_strip", overlapping)
    monkeypatch.setattr(nesting, "_box_sheets", lambda *args: None)
    with pytest.raises(LayoutError, match="overlap"):
        nest([Part("panel", box(0, 0, 100, 100), 2)], Sheet(1000, 500), spacing_mm=SPACING, margin_mm=MARGIN,
             seconds=1)


def test_bad_input_is_refused_with_every_field_named():
    bow_tie = Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])
    with pytest.raises(ValidationError) as raised:
        nest([Part("bow", bow_tie, 0)], Sheet(100, 100), spacing_mm=-1, margin_mm=60, seconds=1)
    fields = {problem.field for problem in raised.value.errors}
    assert fields == {"spacing_mm", "margin_mm", "parts[0].count", "parts[0].outline"}


# -- spyrrow's panics: a strip with too little area for its spacing ----------------------------------------------


def test_one_part_alone_needs_no_engine_and_is_cut_where_it_fits():
    # spyrrow panicked here: jagua-rs starts the strip 5000 / 1200 = 4.2 mm long and shrinks it by the 8 mm spacing
    parts = [Part("plate", box(0, 0, 100, 50), 1)]
    layout = nest(parts, Sheet(2440, 1220), spacing_mm=SPACING, margin_mm=MARGIN, seconds=1)
    assert len(layout.sheets) == 1 and not layout.unplaced and not check_layout(
        layout, parts, spacing_mm=SPACING, margin_mm=MARGIN)
    assert layout.sheets[0].used_length_mm <= MARGIN + 50 + 0.5  # laid short side along the sheet, at its corner


def test_a_few_small_parts_on_a_large_sheet_are_nested_not_a_panic(tmp_path):
    parts = [Part("plate", box(0, 0, 100, 50), 1), Part("chip", box(0, 0, 30, 30), 2)]  # 6800 mm² on 1200 mm
    layout = nest(parts, Sheet(2440, 1220), spacing_mm=SPACING, margin_mm=MARGIN, seconds=1)
    assert len(layout.sheets) == 1 and not layout.unplaced
    write_layout(layout, parts, tmp_path)
    assert_cuttable(tmp_path / "sheet-1.dxf", Sheet(2440, 1220), 3)
    assert layout.sheets[0].used_length_mm < 300


def test_a_spyrrow_panic_is_an_engine_failure_not_a_crash():
    import spyrrow

    from parametric.batching.nesting import EngineFailed, _solve

    instance = spyrrow.StripPackingInstance("s", 1200, [spyrrow.Item("a", [(0, 0), (100, 0), (100, 50), (0, 50)], 1,
                                                                    [0, 90])])
    config = spyrrow.StripPackingConfig(total_computation_time=0, min_items_separation=8.0, seed=1)
    with pytest.raises(EngineFailed, match="the nesting engine \\(spyrrow\\) failed: .*empty polygon"):
        _solve(instance, config)


def test_when_spyrrow_cannot_take_the_strip_the_other_engine_still_nests(tmp_path):
    # two 1150 x 2 mm slivers standing across the sheet: no narrower strip holds them, spyrrow would panic
    parts = [Part("sliver", box(0, 0, 2, 1150), 2, GRAIN)]
    sheet = Sheet(2440, 1220)
    layout = nest(parts, sheet, spacing_mm=SPACING, margin_mm=MARGIN, seconds=1)
    assert layout.engine.startswith("rectpack") and not layout.unplaced
    assert any("too small for the nesting engine's strip" in note for note in layout.notes)
    write_layout(layout, parts, tmp_path)
    assert_cuttable(tmp_path / "sheet-1.dxf", sheet, 2)


# -- driving spyrrow: the strip's full width, fresh strips per sheet, the room before the cut filled -------------


def test_parts_as_wide_as_the_usable_sheet_are_nested_true_shape(tmp_path):
    # right triangles 270 mm a leg in the 280 mm inside the margin: spyrrow kept the 8 mm spacing from its strip's
    # edges too, so none fitted its strip and rectpack's boxes (three a sheet) took two sheets
    triangle = Polygon([(0, 0), (270, 0), (0, 270)])
    parts = [Part("triangle", triangle, 6)]
    sheet = Sheet(1000, 300)
    layout = nest(parts, sheet, spacing_mm=SPACING, margin_mm=MARGIN, seconds=2)
    assert len(layout.sheets) == 1 and not layout.unplaced, layout.notes
    write_layout(layout, parts, tmp_path)
    assert_cuttable(tmp_path / "sheet-1.dxf", sheet, 6)


def test_the_room_before_a_cut_is_filled_with_parts_from_the_far_end():
    from parametric.batching.nesting import _fill_gap, _Item, _prepare

    big = _prepare(0, Part("panel", box(0, 0, 600, 600), 1), 1000, 600)
    disc = _prepare(1, Part("disc", Point(0, 0).buffer(40), 5), 1000, 600)
    panel, discs = _Item("part0", big, 1, big.rotations), _Item("part1", disc, 5, disc.rotations)
    inside = [(panel, (0.0, 300.0, 300.0))]  # the panel from 0 to 600 of a 1000 mm sheet: 392 mm free beyond it
    outside = [(discs, (0.0, 1100.0 + 100 * k, 300.0)) for k in range(5)]
    added = _fill_gap(inside, outside, 1000, 600, SPACING, deadline=float("inf"))
    assert len(added) == 5
    placed = [affinity.translate(disc.engine, x, y) for _, (_, x, y) in added]
    sheet_panel = affinity.translate(big.engine, 300, 300)
    for index, polygon in enumerate(placed):
        assert box(0, 0, 1000, 600).covers(polygon)
        assert polygon.distance(sheet_panel) >= SPACING
        assert all(polygon.distance(other) >= SPACING for other in placed[index + 1:])


def test_free_room_with_parts_standing_in_it_is_cut_into_pieces_without_islands():
    from parametric.batching.nesting import _without_islands

    room = box(0, 0, 1000, 500).difference(box(100, 100, 200, 200)).difference(box(600, 300, 700, 400))
    pieces = _without_islands(room, 10.0)
    assert pieces and all(not piece.interiors for piece in pieces)
    assert sum(piece.area for piece in pieces) == pytest.approx(room.area)
