"""Footwear family: shoe sizes come from the table and set the foot length, the insole is as long
as the table says, the heel lift's height and slope and the outsole's tread and heel drop are
measured on the built solid, and impossible combinations are refused with a reason."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

import parametric
from parametric import ValidationError
from parametric.part import as_parts, solid_of
from templates_models.footwear.outline import area, foot_outline, polygon
from templates_models.footwear.sizing import FootParams, foot_length_from_size, size_ranges, size_table

from ..conftest import require_module

cq = require_module("cadquery")
trimesh = require_module("trimesh")

INSOLE = parametric.get_template("insole")
OUTSOLE = parametric.get_template("outsole")
HEEL_LIFT = parametric.get_template("heel_lift")
FOOTWEAR = [INSOLE, OUTSOLE, HEEL_LIFT]
BARLEYCORN = 25.4 / 3
PARIS_POINT = 20 / 3


def built(template, **values):
    """One foot's part (the right one unless ``side`` says otherwise), checked valid and watertight."""
    values.setdefault("side", "right")
    params = template.validate(values)
    (part,) = as_parts(template.id, template.build(params))
    solid = solid_of(part.shape)
    assert solid.isValid() and len(solid.Solids()) == 1
    vertices, triangles = solid.copy().tessellate(0.1, 0.2)  # a copy: a meshed shape's bounding box grows
    mesh = trimesh.Trimesh([v.toTuple() for v in vertices], triangles)
    assert mesh.is_watertight and mesh.is_volume
    return params, solid


def size(solid) -> tuple[float, float, float]:
    box = solid.BoundingBox()
    return box.xlen, box.ylen, box.zlen


def top_within(solid, x0: float, x1: float, y0: float, y1: float) -> float:
    """Height of the solid's highest point over the rectangle [x0, x1] x [y0, y1]."""
    column = cq.Solid.makeBox(x1 - x0, y1 - y0, 200, pnt=cq.Vector(x0, y0, -50))
    return solid.intersect(column).BoundingBox().zmax


def outline_area(length: float, width: float) -> float:
    return area(polygon(foot_outline(length, width, "right"), 200))


def refusal(template, **values) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        template.validate(values)
    return caught.value


# -- shoe sizes -------------------------------------------------------------------------------


def test_size_table_covers_the_adult_range_in_half_sizes():
    assert size_ranges() == {"EU": (35, 50), "UK": (2.5, 15), "US-M": (3.5, 16), "US-W": (5, 13.5)}
    table = size_table()
    for system, (low, high) in size_ranges().items():
        sizes = sorted(size for (s, size) in table if s == system)
        assert sizes == [low + i / 2 for i in range(int((high - low) * 2) + 1)]


def test_size_table_follows_the_conversion_charts():
    table = size_table()
    for key in [("EU", 42), ("UK", 8), ("US-M", 9), ("US-W", 10.5)]:
        assert table[key] == pytest.approx(265, abs=0.05)
    assert table[("EU", 43)] - table[("EU", 42)] == pytest.approx(PARIS_POINT, abs=0.1)
    assert table[("UK", 9)] - table[("UK", 8)] == pytest.approx(BARLEYCORN, abs=0.1)
    # US men's is one size above UK, US women's two and a half.
    for size in (4, 6.5, 8, 11):
        assert table[("US-M", size + 1)] == pytest.approx(table[("UK", size)], abs=0.05)
        assert table[("US-W", size + 2.5)] == pytest.approx(table[("UK", size)], abs=0.05)


@pytest.mark.parametrize(("text", "system", "size"), [
    ("EU 42", "EU", 42), ("eu42", "EU", 42), ("EU 42.5", "EU", 42.5), ("EUR 38", "EU", 38),
    ("UK 8", "UK", 8), ("uk8", "UK", 8), ("UK 10,5", "UK", 10.5),
    ("US M 9.5", "US-M", 9.5), ("us m9.5", "US-M", 9.5), ("US-M 9.5", "US-M", 9.5), ("USM 12", "US-M", 12),
    ("US W 8", "US-W", 8), ("us w8", "US-W", 8), ("US Women 8", "US-W", 8), (" US-W 13.5 ", "US-W", 13.5),
])
def test_parser_accepts_common_spellings(text, system, size):
    assert foot_length_from_size(text) == size_table()[(system, size)]


@pytest.mark.parametrize(("text", "hint"), [
    ("US 9", "men's or women's"),
    ("EU 60", "EU sizes go from 35 to 50"),
    ("US W 15", "US-W sizes go from 5 to 13.5"),
    ("EU 42.3", "half sizes"),
    ("size nine", "'EU 42', 'UK 8', 'US M 9.5' or 'US W 8'"),
    ("UK W 8", "only US sizes"),
])
def test_parser_refuses_with_a_clear_message(text, hint):
    with pytest.raises(ValueError) as caught:
        foot_length_from_size(text)
    assert hint in str(caught.value)


def test_every_footwear_template_takes_a_shoe_size():
    for template in FOOTWEAR:
        assert issubclass(template.Params, FootParams)
        assert {"foot_length", "shoe_size", "foot_width"} <= set(template.Params.model_fields)
        assert "EU 42" in template.Params.allowed("shoe_size")
        params = template.validate({"shoe_size": "uk 9"})
        assert params.foot_length == pytest.approx(265 + BARLEYCORN, abs=0.05)
        assert params.shoe_size == "UK 9"
        assert template.validate(params.canonical()).canonical() == params.canonical()


def test_a_bad_shoe_size_is_reported_on_the_shoe_size_field():
    error = refusal(INSOLE, shoe_size="US 9")
    assert [e.field for e in error.errors] == ["shoe_size"]
    assert "US M 9" in error.errors[0].message


def test_foot_length_and_shoe_size_must_agree():
    assert INSOLE.validate({"shoe_size": "EU 42", "foot_length": 267}).foot_length == pytest.approx(265)
    error = refusal(INSOLE, shoe_size="EU 42", foot_length=275)
    assert error.errors[0].field == "shoe_size"
    assert "265 mm foot" in error.errors[0].message and "275 mm" in error.errors[0].message


def test_foot_proportions_are_checked():
    error = refusal(INSOLE, foot_length=300, foot_width=70)
    assert "between 30% and 46%" in str(error)


def test_listing_footwear_does_not_load_the_cad_kernel():
    code = ("import sys, parametric; ids = [t.id for t in parametric.templates()]; "
            "assert {'insole', 'outsole', 'heel_lift'} <= set(ids), ids; "
            "parametric.get_template('outsole').validate({'shoe_size': 'EU 40'}); "
            "assert 'cadquery' not in sys.modules and 'OCP' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- insole -----------------------------------------------------------------------------------


def test_insole_length_matches_the_size_table():
    params, solid = built(INSOLE, shoe_size="EU 42")
    assert size(solid)[0] == pytest.approx(size_table()[("EU", 42)] + params.length_allowance, abs=0.05)
    assert size(solid) == pytest.approx(INSOLE.expected_size(params), abs=0.05)


def test_us_mens_and_womens_sizes_make_different_insoles():
    _, mens = built(INSOLE, shoe_size="US M 9", length_allowance=0, heel_cup_depth=0, arch_height=0)
    _, womens = built(INSOLE, shoe_size="US W 9", length_allowance=0, heel_cup_depth=0, arch_height=0)
    _, womens_equivalent = built(INSOLE, shoe_size="US W 10.5", length_allowance=0, heel_cup_depth=0,
                                 arch_height=0)
    assert size(mens)[0] - size(womens)[0] == pytest.approx(1.5 * BARLEYCORN, abs=0.1)
    assert size(womens_equivalent)[0] == pytest.approx(size(mens)[0], abs=0.05)


def test_flat_insole_is_the_outline_times_the_thickness():
    params, solid = built(INSOLE, foot_length=250, foot_width=95, thickness=4, arch_height=0, heel_cup_depth=0)
    assert size(solid) == pytest.approx((255, 95, 4), abs=0.05)
    assert solid.Volume() == pytest.approx(outline_area(255, 95) * 4, rel=0.002)


def test_arch_support_rises_on_the_inner_side_of_each_foot():
    for side, inner in (("right", 1), ("left", -1)):
        params, solid = built(INSOLE, side=side, thickness=3, arch_height=14, heel_cup_depth=0)
        length = params.insole_length()
        assert size(solid)[2] == pytest.approx(17, abs=0.05)
        # The peak stands over the inner half of the midfoot; the outer half stays at the base.
        inner_band = sorted((0, inner * 45))
        outer_band = sorted((-inner * 10, -inner * 60))
        assert top_within(solid, 0.35 * length, 0.45 * length, *inner_band) == pytest.approx(17, abs=0.1)
        assert top_within(solid, 0.35 * length, 0.45 * length, *outer_band) == pytest.approx(3, abs=0.05)
        # The forefoot is the flat base.
        assert top_within(solid, 0.75 * length, 0.95 * length, -60, 60) == pytest.approx(3, abs=0.05)


def test_heel_cup_rim_stands_around_a_pocket_at_base_height():
    params, solid = built(INSOLE, thickness=3, arch_height=0, heel_cup_depth=9, heel_cup_wall=5)
    length = params.insole_length()
    heel_centre = 34 / 270 * length
    assert size(solid)[2] == pytest.approx(12, abs=0.05)
    assert top_within(solid, 0, 3, -2, 2) == pytest.approx(12, abs=0.05)  # the rim behind the heel
    assert top_within(solid, heel_centre - 10, heel_centre + 10, -10, 10) == pytest.approx(3, abs=0.05)
    assert top_within(solid, 0.6 * length, length, -60, 60) == pytest.approx(3, abs=0.05)


def test_insole_refuses_an_arch_too_steep_for_the_foot():
    error = refusal(INSOLE, foot_length=200, foot_width=80, arch_height=24)
    assert error.errors[0].field == "arch_height" and "too steep" in error.errors[0].message
    assert "too thin to print" in str(refusal(INSOLE, arch_height=0.5))


# -- heel lift --------------------------------------------------------------------------------


def test_heel_lift_height_angle_and_front_are_measured():
    params, solid = built(HEEL_LIFT, shoe_size="EU 42", lift_height=12, wedge_angle=5, lift_length=85)
    assert size(solid) == pytest.approx(HEEL_LIFT.expected_size(params), abs=0.05)
    assert size(solid)[0] == pytest.approx(85, abs=0.01) and size(solid)[2] == pytest.approx(12, abs=0.01)
    (top,) = [f for f in solid.Faces() if f.geomType() == "PLANE" and f.normalAt().z > 0.5]
    assert math.degrees(math.acos(top.normalAt().z)) == pytest.approx(5, abs=0.01)
    (front,) = [f for f in solid.Faces() if f.geomType() == "PLANE" and f.normalAt().x > 0.99]
    assert front.BoundingBox().zmax == pytest.approx(12 - 85 * math.tan(math.radians(5)), abs=0.01)
    assert front.BoundingBox().zmax == pytest.approx(params.front_height(), abs=0.01)


def test_flat_heel_lift_follows_the_heel_outline():
    params, solid = built(HEEL_LIFT, foot_length=260, foot_width=98, lift_height=6, wedge_angle=0, lift_length=70)
    low, high = params.width_range()
    assert size(solid) == pytest.approx((70, high - low, 6), abs=0.05)
    assert 0.68 * 98 < high - low < 98  # wider than the heel, narrower than the ball


def test_heel_lift_cup_rim_rises_above_the_wedge():
    params, solid = built(HEEL_LIFT, lift_height=10, wedge_angle=3, lift_length=90, heel_cup_depth=6)
    heel_centre = 34 / 270 * params.foot_length
    assert size(solid)[2] == pytest.approx(16, abs=0.05)
    slope = math.tan(math.radians(3))
    pocket_top = top_within(solid, heel_centre - 1, heel_centre + 1, -1, 1)
    assert pocket_top == pytest.approx(10 - (heel_centre - 1) * slope, abs=0.05)


def test_heel_lift_refuses_a_knife_edge_and_a_lift_under_the_ball():
    error = refusal(HEEL_LIFT, lift_height=8, wedge_angle=10, lift_length=100)
    assert error.errors[0].field == "wedge_angle" and "front edge" in error.errors[0].message
    error = refusal(HEEL_LIFT, shoe_size="EU 36", lift_length=120)
    assert "behind the ball" in str(error)


# -- outsole ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["lugs", "waffle", "ribs"])
def test_outsole_tread_is_cut_to_depth(pattern):
    params, solid = built(OUTSOLE, shoe_size="EU 42", tread_pattern=pattern, sole_thickness=8, heel_drop=0,
                          tread_depth=3)
    length, width = params.sole_length(), params.sole_width()
    assert size(solid) == pytest.approx((length, width, 8), abs=0.05)
    blank = outline_area(length, width) * 8
    # Removed: the cuts themselves, or for lugs the field around the lugs.
    field = 0.0
    if pattern == "lugs":
        field = area(polygon(params.tread_outline(), 200))
    removed = abs(field - params.tread_area()) * 3
    assert removed > 0.05 * blank
    assert solid.Volume() == pytest.approx(blank - removed, rel=0.002)
    # The recess ceilings face down at the tread depth: one per cut, or one field around the lugs.
    ceilings = [f for f in solid.Faces() if f.geomType() == "PLANE" and f.normalAt().z < -0.99
                and f.Center().z == pytest.approx(3, abs=1e-6)]
    assert len(ceilings) == (1 if pattern == "lugs" else len(params.tread_elements()))


def test_outsole_tread_stays_inside_the_edge_band():
    params = OUTSOLE.validate({"shoe_size": "US W 8", "foot_width": 88, "tread_pattern": "waffle"})
    inner = polygon(params.tread_outline(), 64)
    xs, ys = [x for x, _ in inner], [y for _, y in inner]
    elements = params.tread_elements()
    assert len(elements) >= 20
    for x, y, w, h, _ in elements:
        assert min(xs) < x - w / 2 and x + w / 2 < max(xs) and min(ys) < y - h / 2 and y + h / 2 < max(ys)
    for index, a in enumerate(elements):  # pockets stay a groove width apart
        for b in elements[index + 1:]:
            gap = max(abs(a[0] - b[0]) - (a[2] + b[2]) / 2, abs(a[1] - b[1]) - (a[3] + b[3]) / 2)
            assert gap >= params.groove_width - 1e-6


def test_outsole_heel_drop_is_measured():
    params, solid = built(OUTSOLE, shoe_size="UK 9", sole_thickness=7, heel_drop=9)
    length = params.sole_length()
    assert size(solid)[2] == pytest.approx(16, abs=0.05)
    assert top_within(solid, 0, 0.2 * length, -70, 70) == pytest.approx(16, abs=0.05)
    assert top_within(solid, 0.65 * length, length, -70, 70) == pytest.approx(7, abs=0.05)


def test_outsole_refuses_treads_the_sole_cannot_hold():
    error = refusal(OUTSOLE, sole_thickness=6, tread_depth=4)
    assert error.errors[0].field == "tread_depth" and "at most 3 mm deep" in error.errors[0].message
    error = refusal(OUTSOLE, tread_pitch=10, groove_width=7)
    assert error.errors[0].field == "groove_width" and "narrower than 4 mm" in error.errors[0].message
    error = refusal(OUTSOLE, shoe_size="EU 35", foot_width=70, width_allowance=0, edge_margin=15, tread_pitch=22)
    assert error.errors[0].field == "tread_pitch"


@pytest.mark.parametrize("template", FOOTWEAR, ids=lambda t: t.id)
def test_a_pair_is_a_left_and_a_right_part_mirror_images_of_each_other(template):
    """Issue 13: one configuration makes both feet. The pair's parts are the left and the right, each a valid
    solid; the left is the right mirrored across the foot's long axis (same volume, same size, bounds mirrored)."""
    params = template.validate({"shoe_size": "EU 40"})
    assert params.side == "pair"
    parts = {part.name: part for part in as_parts(template.id, template.build(params))}
    assert set(parts) == {f"left_{template.id}", f"right_{template.id}"}
    left, right = (solid_of(parts[f"{side}_{template.id}"].shape) for side in ("left", "right"))
    assert left.isValid() and right.isValid()
    assert left.Volume() == pytest.approx(right.Volume(), rel=1e-3)
    lbox, rbox = left.BoundingBox(), right.BoundingBox()
    assert (lbox.xmin, lbox.xmax, lbox.zmin, lbox.zmax) == pytest.approx((rbox.xmin, rbox.xmax, rbox.zmin, rbox.zmax),
                                                                         abs=0.05)
    assert (lbox.ymin, lbox.ymax) == pytest.approx((-rbox.ymax, -rbox.ymin), abs=0.05)
    # the arch (or the heel cup, the tread) is mirrored too: the left's centre of mass is the right's, mirrored
    lc, rc = left.Center(), right.Center()
    assert (lc.x, lc.y, lc.z) == pytest.approx((rc.x, -rc.y, rc.z), abs=0.05)
    one = template.validate({"shoe_size": "EU 40", "side": "right"})
    assert right.Volume() == pytest.approx(solid_of(as_parts(template.id, template.build(one))[0].shape).Volume(),
                                           rel=1e-6)
