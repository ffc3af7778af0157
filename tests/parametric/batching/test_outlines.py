"""Reading parts from DXF: outlines with holes from any entity mix, and clear refusals."""

from __future__ import annotations

import math

import pytest
from shapely.geometry import Polygon

from parametric import ValidationError
from parametric.batching.outlines import outline_from_dxf

from .drawings import l_bracket_dxf, new_drawing, rectangle_dxf


def test_plate_with_circle_holes_and_a_window(tmp_path):
    path = rectangle_dxf(tmp_path / "plate.dxf", 400, 300, holes=((50, 50, 10), (350, 250, 17.5)),
                         windows=((100, 100, 300, 200),))
    outline = outline_from_dxf(path)
    assert outline.is_valid and len(outline.interiors) == 3
    assert outline.bounds == pytest.approx((0, 0, 400, 300))
    expected = 400 * 300 - 200 * 100 - math.pi * (10**2 + 17.5**2)
    assert outline.area == pytest.approx(expected, rel=1e-3)


def test_lines_and_arcs_out_of_order_join_into_one_outline(tmp_path):
    outline = outline_from_dxf(l_bracket_dxf(tmp_path / "bracket.dxf"))
    assert len(outline.interiors) == 1
    assert outline.bounds == pytest.approx((0, 0, 300, 200))
    fillet = 20 * 20 - math.pi * 20**2 / 4  # the corner material the arc adds to the L
    expected = 300 * 60 + 60 * 140 + fillet - math.pi * 5**2
    assert outline.area == pytest.approx(expected, rel=1e-3)


def test_bulged_polyline_spline_and_inch_units(tmp_path):
    document, space = new_drawing(units=1)  # inches
    # a 4 x 2 in slot: straight sides and half-circle ends as bulges
    space.add_lwpolyline([(1, 0, 0, 0, 0), (3, 0, 0, 0, 1), (3, 2, 0, 0, 0), (1, 2, 0, 0, 1)], format="xyseb",
                         close=True)
    space.add_spline(fit_points=[(1.5, 0.8), (2, 1.3), (2.5, 0.8), (2, 0.5), (1.5, 0.8)])
    document.saveas(tmp_path / "slot.dxf")
    outline = outline_from_dxf(tmp_path / "slot.dxf")
    assert outline.bounds == pytest.approx((0, 0, 4 * 25.4, 2 * 25.4), abs=0.05)
    assert len(outline.interiors) == 1
    inch2 = 25.4**2
    assert outline.exterior.length == pytest.approx((4 + 2 * math.pi) * 25.4, rel=1e-3)
    assert Polygon(outline.exterior).area == pytest.approx((4 + math.pi) * inch2, rel=1e-3)
    assert 0 < Polygon(outline.exterior).area - outline.area < 1 * inch2  # the spline's hole


def test_open_outline_names_the_file_and_the_entity(tmp_path):
    document, space = new_drawing()
    space.add_line((0, 0), (100, 0))
    space.add_line((100, 0), (100, 50))
    dangling = space.add_line((100, 50), (0, 50))  # nothing goes back down to (0, 0)
    document.saveas(tmp_path / "open.dxf")
    with pytest.raises(ValidationError) as raised:
        outline_from_dxf(tmp_path / "open.dxf")
    [problem] = raised.value.errors
    assert problem.field.endswith("open.dxf")
    assert "open outline" in problem.message and f"LINE #{dangling.dxf.handle}" in problem.message


def test_self_crossing_loop_names_the_entity(tmp_path):
    document, space = new_drawing()
    bow_tie = space.add_lwpolyline([(0, 0), (100, 100), (100, 0), (0, 100)], close=True)
    document.saveas(tmp_path / "bow.dxf")
    with pytest.raises(ValidationError) as raised:
        outline_from_dxf(tmp_path / "bow.dxf")
    [problem] = raised.value.errors
    assert problem.field.endswith("bow.dxf")
    assert "crosses itself" in problem.message and f"LWPOLYLINE #{bow_tie.dxf.handle}" in problem.message


def test_two_parts_in_one_file_and_a_non_dxf_are_refused(tmp_path):
    document, space = new_drawing()
    space.add_lwpolyline([(0, 0), (100, 0), (100, 100), (0, 100)], close=True)
    beside = space.add_circle((300, 50), 20)
    document.saveas(tmp_path / "two.dxf")
    with pytest.raises(ValidationError) as raised:
        outline_from_dxf(tmp_path / "two.dxf")
    assert f"CIRCLE #{beside.dxf.handle} is not inside the outline" in raised.value.errors[0].message
    (tmp_path / "notes.dxf").write_text("hello")
    with pytest.raises(ValidationError, match="notes.dxf: is not a readable DXF"):
        outline_from_dxf(tmp_path / "notes.dxf")
    with pytest.raises(ValidationError, match="cannot be read"):
        outline_from_dxf(tmp_path / "missing.dxf")
