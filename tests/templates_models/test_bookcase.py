"""Bookcase: the dados measured in the built side match the shelves, the cut list matches the
parts, and the placed parts fill the carcass without overlapping."""

from __future__ import annotations

import itertools

import pytest

import parametric
from parametric import ValidationError
from parametric.joinery import FIT_ALLOWANCE_MM
from parametric.part import solid_of

from ..conftest import require_module

cq = require_module("cadquery")

TEMPLATE = parametric.get_template("bookcase")
TOL = 1e-3


def build(**values):
    params = TEMPLATE.validate(values)
    return params, {part.name: part for part in TEMPLATE.build(params)}


def pocket_walls(side, params) -> list[float]:
    """X positions (along the side's length) of the planar pocket walls cut across the side's face."""
    t, dado = params.thickness, params.dado_depth
    positions = set()
    for face in solid_of(side.shape).Faces():
        if face.geomType() != "PLANE":
            continue
        normal, box = face.normalAt(), face.BoundingBox()
        across = abs(abs(normal.x) - 1) < TOL  # a wall square to the side's length
        in_pocket = box.zmin > t - dado - TOL and box.zmax < t + TOL
        if across and in_pocket:
            positions.add(round(box.xmin, 3))
    return sorted(positions)


@pytest.mark.parametrize(("shelves", "inset", "back"), [(1, 0, True), (4, 0, True), (8, 0, False), (3, 40, True)])
def test_dados_in_the_side_match_the_shelves(shelves, inset, back):
    params, parts = build(height=2200, shelf_count=shelves, end_inset=inset, back_panel=back)
    walls = pocket_walls(parts["side"], params)
    # Every dado has a wall at its lower and upper edge, except where it runs out of the side's end.
    expected = sorted({round(edge, 3) for dado in params.dado_edges() for edge in dado
                       if TOL < edge < params.height - TOL})
    assert walls == pytest.approx(expected, abs=0.01)
    # Each dado is the sheet plus the fit allowance wide, centred on its panel.
    dados = [(max(low, 0.0), min(high, params.height)) for low, high in params.dado_edges()]
    for (low, high), panel in zip(dados[1:-1], params.shelf_positions(), strict=True):
        assert high - low == pytest.approx(params.thickness + FIT_ALLOWANCE_MM, abs=1e-6)
        assert (low + high) / 2 == pytest.approx(panel + params.thickness / 2, abs=1e-6)
    assert len(dados) - 2 == shelves
    # Evenly spaced: equal openings between bottom, shelves and top (less the allowance in the dados).
    openings = [b[0] - a[1] for a, b in itertools.pairwise(dados)]
    assert openings == pytest.approx([params.clear_opening - FIT_ALLOWANCE_MM] * (shelves + 1), abs=0.01)
    assert params.clear_opening >= 100


def test_dado_depth_and_back_rebate_are_measured_in_the_side():
    params, parts = build(dado_depth=7, back_thickness=9)
    side = solid_of(parts["side"].shape)
    floors = [f for f in side.Faces() if f.geomType() == "PLANE" and f.normalAt().z > 1 - TOL
              and abs(f.BoundingBox().zmin - (params.thickness - 7)) < TOL]
    assert floors, "pocket floors 7 mm below the face"
    rebate = [f for f in side.Faces() if f.geomType() == "PLANE" and abs(abs(f.normalAt().y) - 1) < TOL
              and abs(f.BoundingBox().ymin - (params.depth - 9 - FIT_ALLOWANCE_MM)) < TOL]
    assert rebate, "the back rebate's wall 9 mm (the back) plus the allowance in from the back edge"
    assert side.BoundingBox().xlen == pytest.approx(params.height)
    assert side.BoundingBox().ylen == pytest.approx(params.depth)
    assert side.BoundingBox().zlen == pytest.approx(params.thickness)


@pytest.mark.parametrize("back", [True, False])
def test_cut_list_matches_the_parts(back):
    params, parts = build(shelf_count=5, height=2000, back_panel=back)
    rows = TEMPLATE.cut_list(params)
    assert [row["part"] for row in rows] == list(parts)
    for row in rows:
        part = parts[row["part"]]
        box = solid_of(part.shape).BoundingBox()
        assert row["quantity"] == part.quantity == len(part.placements)
        assert (box.xlen, box.ylen, box.zlen) == pytest.approx((row["length"], row["width"], row["thickness"]))
        assert part.flat and part.thickness == pytest.approx(row["thickness"]) and part.process == "cnc"
        assert row["note"]
    assert parts["shelf"].quantity == 5


def placed(parts):
    return [(name, solid_of(part.shape).moved(location)) for name, part in parts.items()
            for location in part.placements]


@pytest.mark.parametrize("values", [{}, {"shelf_count": 8, "height": 2300, "sheet_thickness": 22, "dado_depth": 11},
                                    {"end_inset": 60, "back_panel": False, "shelf_count": 2}],
                         ids=["defaults", "eight-shelves", "inset-no-back"])
def test_placed_parts_do_not_overlap_and_fill_the_box(values):
    params, parts = build(**values)
    shapes = placed(parts)
    for (name_a, a), (name_b, b) in itertools.combinations(shapes, 2):
        assert a.intersect(b).Volume() == pytest.approx(0, abs=1e-3), f"{name_a} overlaps {name_b}"
    everything = cq.Compound.makeCompound([s for _, s in shapes]).BoundingBox()
    assert (everything.xmin, everything.ymin, everything.zmin) == pytest.approx((0, 0, 0), abs=1e-6)
    assert (everything.xlen, everything.ylen, everything.zlen) == pytest.approx(TEMPLATE.expected_size(params))
    # Each shelf sits in the dados of both sides: it touches both of them.
    sides = [s for name, s in shapes if name == "side"]
    for name, shelf in shapes:
        if name == "shelf":
            assert all(shelf.distance(side) < 1e-6 for side in sides)


def test_both_sides_have_their_dados_facing_in():
    params, parts = build()
    side = parts["side"]
    face = solid_of(side.shape).faces(">Z")  # the dadoed face, in the side's own coordinates
    centres = [face.moved(location).Center().x for location in side.placements]
    assert sorted(centres) == pytest.approx([params.thickness, params.width - params.thickness])
    shelf = solid_of(parts["shelf"].shape)
    for box in (shelf.moved(location).BoundingBox() for location in parts["shelf"].placements):
        assert box.xmin == pytest.approx(params.thickness - params.dado_depth)
        assert box.xmax == pytest.approx(params.width - params.thickness + params.dado_depth)


def test_rules_refuse_what_cannot_be_built_with_reasons():
    with pytest.raises(ValidationError) as error:
        TEMPLATE.validate({"sheet_thickness": 12, "dado_depth": 8, "width": 600})
    assert [e.field for e in error.value.errors] == ["dado_depth"]
    assert "half" in error.value.errors[0].message
    with pytest.raises(ValidationError) as error:
        TEMPLATE.validate({"height": 900, "shelf_count": 8})
    assert error.value.errors[0].field == "shelf_count" and "at most" in error.value.errors[0].message
    with pytest.raises(ValidationError) as error:
        TEMPLATE.validate({"width": 1100, "sheet_thickness": 15})
    assert error.value.errors[0].field == "width" and "sags" in error.value.errors[0].message
    with pytest.raises(ValidationError) as error:
        TEMPLATE.validate({"end_inset": 10})
    assert error.value.errors[0].field == "end_inset"
    with pytest.raises(ValidationError) as error:
        TEMPLATE.validate({"sheet_thickness": 16})
    assert error.value.errors[0].field == "sheet_thickness" and "12 mm, 15 mm, 18 mm, 19 mm, 22 mm" in str(error.value)


def test_sheet_thickness_accepts_units_and_the_presets_validate():
    assert TEMPLATE.validate({"sheet_thickness": "22mm"}).sheet_thickness == 22
    assert TEMPLATE.validate({"sheet_thickness": "1.5cm", "width": 700}).sheet_thickness == 15
    billy = TEMPLATE.resolve(preset="billy-depth")
    assert billy.depth == 280 and billy.shelf_count == 5
    assert len(TEMPLATE.presets) >= 2


def test_eight_shelves_render_quickly_with_dxf():
    manifest = parametric.render("bookcase", {"shelf_count": 8, "height": 2400}, formats=["step", "stl", "dxf"])
    assert manifest.checks["valid_solid"] and manifest.checks["watertight"]
    assert manifest.bbox_mm == pytest.approx([800, 280, 2400], abs=0.01)
    if not manifest.cache_hit:
        assert manifest.timings["build_s"] < 2.0
