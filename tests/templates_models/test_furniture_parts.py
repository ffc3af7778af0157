"""Furniture hardware templates (table_leg, drawer_pull, leg_cap, cabinet_door), checked on measured geometry.

Hole counts, spacings, diameters and depths are read back from the B-rep (cylindrical faces
and sections), not from the parameters, so a build that drifts from what it promises fails.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterable

import cadquery as cq
import pytest
from OCP.Bnd import Bnd_Box
from OCP.BRepAdaptor import BRepAdaptor_Surface
from OCP.BRepBndLib import BRepBndLib
from OCP.GeomAbs import GeomAbs_Cylinder

import parametric.registry as registry
from parametric.errors import ValidationError
from parametric.part import as_parts, solid_of

FURNITURE_PARTS = ("table_leg", "drawer_pull", "leg_cap", "cabinet_door")


# -- measuring helpers ---------------------------------------------------------------------


def build(template_id: str, values: dict | None = None, preset: str | None = None):
    """The validated parameters and the single built solid of a template."""
    template = registry.get_template(template_id)
    params = template.resolve(values or {}, preset)
    parts = as_parts(template_id, template.build(params))
    assert len(parts) == 1
    shape = solid_of(parts[0].shape)
    assert shape.isValid() and len(shape.Solids()) == 1
    return params, shape, parts[0]


def vertical_bores(shape, radius: float, tolerance: float = 1e-3) -> list[tuple[float, float, float, float]]:
    """(x, y, z_low, z_high) of every vertical cylindrical face of ``radius`` mm, merged per axis."""
    bores: dict[tuple[float, float], list[float]] = {}
    for face in shape.Faces():
        surface = BRepAdaptor_Surface(face.wrapped)
        if surface.GetType() != GeomAbs_Cylinder:
            continue
        cylinder = surface.Cylinder()
        if abs(cylinder.Radius() - radius) > tolerance:
            continue
        direction = cylinder.Axis().Direction()
        if abs(abs(direction.Z()) - 1) > 1e-6:
            continue
        location = cylinder.Axis().Location()
        key = (round(location.X(), 3), round(location.Y(), 3))
        box = face.BoundingBox()
        low, high = bores.setdefault(key, [box.zmin, box.zmax])
        bores[key] = [min(low, box.zmin), max(high, box.zmax)]
    return sorted((x, y, low, high) for (x, y), (low, high) in bores.items())


def distances(points: Iterable[tuple[float, ...]]) -> list[float]:
    """Centre distances of consecutive points (x, y), in order."""
    points = list(points)
    return [math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(points, points[1:], strict=False)]


def slab(shape, z: float, thickness: float = 0.02):
    """The part of ``shape`` inside a thin horizontal slab centred at height ``z``."""
    cutter = cq.Solid.makeBox(1e4, 1e4, thickness, cq.Vector(-5e3, -5e3, z - thickness / 2))
    return shape.intersect(cutter)


def tight_size(shape) -> tuple[float, float, float]:
    """Exact (x, y, z) extent of a shape (the default box is padded on cones and splines)."""
    box = Bnd_Box()
    BRepBndLib.AddOptimal_s(shape.wrapped, box, False, False)
    x0, y0, z0, x1, y1, z1 = box.Get()
    return x1 - x0, y1 - y0, z1 - z0


def section_size(shape, z: float) -> tuple[float, float]:
    """Outer size (x, y) of the solid's cross-section at height ``z``."""
    return tight_size(slab(shape, z))[:2]


def opening_size(shape, z: float) -> tuple[float, float]:
    """Size (x, y) of the hole in the solid's cross-section at height ``z`` (the inside of a sleeve)."""
    piece = slab(shape, z)
    top = max(piece.Faces(), key=lambda face: face.Center().z)
    inner = top.innerWires()
    assert len(inner) == 1, "expected one opening in the section"
    box = inner[0].BoundingBox()
    return box.xlen, box.ylen


def rejected_fields(template_id: str, values: dict) -> dict[str, str]:
    """Field name -> reason for every problem validation reports."""
    with pytest.raises(ValidationError) as caught:
        registry.get_template(template_id).validate(values)
    return {error.field: error.message for error in caught.value.errors}


# -- all four ------------------------------------------------------------------------------


def test_listing_the_templates_does_not_load_the_cad_kernel():
    code = ("import sys; import templates_models.furniture.table_leg, templates_models.furniture.drawer_pull, "
            "templates_models.furniture.leg_cap, templates_models.furniture.cabinet_door; "
            "assert 'cadquery' not in sys.modules and 'OCP' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("template_id", FURNITURE_PARTS)
def test_declared_with_presets_and_checks(template_id):
    template = registry.get_template(template_id)
    assert template.version == "1.0.0" and template.name and template.description
    assert len(template.presets) >= 2
    params = template.validate({})
    assert template.quality_checks(params)
    for name in template.Params.model_fields:
        meta = template.Params.field_help(name)
        assert meta["description"]
        assert "choices" in meta or isinstance(meta["default"], bool) or meta["minimum"] is not None, name


# -- table leg -----------------------------------------------------------------------------


@pytest.mark.parametrize("section", ["round", "square"])
def test_leg_height_and_taper_are_measured_on_the_solid(section):
    values = {"section": section, "height": 200, "top_size": 50, "bottom_size": 30, "straight_length": 40,
              "plate_size": 90, "plate_thickness": 8}
    params, shape, _ = build("table_leg", values)
    box = shape.BoundingBox()
    assert box.zlen == pytest.approx(200, abs=0.01)
    assert (box.xlen, box.ylen) == (pytest.approx(90, abs=0.01), pytest.approx(90, abs=0.01))

    # Straight just under the plate, then a straight taper to the foot.
    for z in (9, 30, 47):
        assert section_size(shape, z)[0] == pytest.approx(50, abs=0.05), z
    low, high = 60.0, 190.0
    size_low, size_high = section_size(shape, low), section_size(shape, high)
    assert size_low[0] == pytest.approx(size_low[1], abs=0.05)
    taper_per_mm = (size_low[0] - size_high[0]) / (high - low)
    assert taper_per_mm == pytest.approx((50 - 30) / (200 - 8 - 40), rel=1e-3)
    assert size_high[0] == pytest.approx(params.size_at(high), abs=0.05)
    # Extrapolated to the floor (before the small foot chamfer) the taper ends at the bottom size.
    assert size_high[0] - taper_per_mm * (200 - high) == pytest.approx(30, abs=0.05)


@pytest.mark.parametrize(("plate_shape", "hole_count"), [("square", 4), ("round", 3), ("round", 6), ("square", 5)])
def test_leg_plate_has_the_countersunk_holes_asked_for(plate_shape, hole_count):
    values = {"plate_shape": plate_shape, "plate_size": 100, "hole_count": hole_count, "hole_diameter": 5,
              "hole_inset": 10}
    params, shape, _ = build("table_leg", values)
    bores = vertical_bores(shape, 2.5)
    assert len(bores) == hole_count
    cones = [face for face in shape.Faces() if face.geomType() == "CONE"
             and face.BoundingBox().zmax == pytest.approx(params.plate_thickness, abs=1e-3)]
    assert len(cones) == hole_count
    for x, y, low, high in bores:
        assert low == pytest.approx(0, abs=1e-3)  # through the plate
        assert high <= params.plate_thickness
        # the countersink (twice the hole diameter) opens on the leg side of the plate
        radius = math.hypot(x, y)
        assert radius == pytest.approx(math.hypot(*params.hole_positions()[0]), abs=1e-3)
    ordered = sorted(bores, key=lambda b: math.atan2(b[1], b[0]))
    for gap in distances(ordered):
        assert gap == pytest.approx(params.hole_spacing(), abs=0.2)
    if plate_shape == "square" and hole_count == 4:
        for x, y, _, _ in bores:
            assert (abs(x), abs(y)) == (pytest.approx(40, abs=1e-3), pytest.approx(40, abs=1e-3))


def test_leg_insert_bore_is_centred_with_its_depth():
    params, shape, _ = build("table_leg", preset="coffee-table")
    bores = vertical_bores(shape, params.insert_diameter / 2)
    assert len(bores) == 1
    x, y, low, high = bores[0]
    assert (x, y) == (pytest.approx(0, abs=1e-6), pytest.approx(0, abs=1e-6))
    assert (low, high) == (pytest.approx(0, abs=1e-3), pytest.approx(params.insert_depth, abs=1e-3))


def test_leg_rules_name_the_field_and_say_why():
    assert "foot" in rejected_fields("table_leg", {"top_size": 30, "bottom_size": 40})["bottom_size"]
    problems = rejected_fields("table_leg", {"plate_size": 50, "top_size": 45, "hole_inset": 6})
    assert "into the leg" in problems["hole_inset"]
    assert "countersink" in rejected_fields("table_leg", {"plate_thickness": 4, "hole_diameter": 5})["plate_thickness"]
    problems = rejected_fields("table_leg", {"insert_bore": True, "insert_diameter": 16, "top_size": 20,
                                             "bottom_size": 14, "plate_size": 60})
    assert "insert" in problems["insert_diameter"]
    assert "too close" in rejected_fields("table_leg", {"hole_count": 8, "plate_size": 60, "top_size": 20,
                                                        "bottom_size": 12, "hole_diameter": 8,
                                                        "hole_inset": 9})["hole_count"]


# -- drawer pull ---------------------------------------------------------------------------


@pytest.mark.parametrize("spacing", [64, 96, 128, 160, 192, 224, 256])
def test_pull_holes_sit_at_the_standard_spacing(spacing):
    params, shape, _ = build("drawer_pull", {"hole_spacing": spacing})
    bores = vertical_bores(shape, 3.3 / 2)
    assert len(bores) == 2
    (x0, y0, low0, high0), (x1, y1, low1, high1) = bores
    assert x1 - x0 == pytest.approx(spacing, abs=0.01) and y0 == y1 == pytest.approx(0, abs=1e-6)
    assert (x0 + x1) / 2 == pytest.approx(0, abs=1e-6)
    for low, high in ((low0, high0), (low1, high1)):
        assert low == pytest.approx(0, abs=1e-3) and high == pytest.approx(params.hole_depth, abs=1e-3)
    box = shape.BoundingBox()
    assert box.xlen == pytest.approx(spacing + 2 * params.foot_diameter, abs=0.01)
    assert box.zlen == pytest.approx(params.height, abs=0.01)


@pytest.mark.parametrize("section", ["oval", "rectangular"])
def test_pull_insert_holes_are_blind(section):
    values = {"screw_fitting": "m4_insert", "grip_section": section, "grip_width": 14, "grip_thickness": 10,
              "foot_diameter": 12, "height": 32, "hole_depth": 12}
    params, shape, _ = build("drawer_pull", values)
    bores = vertical_bores(shape, 5.6 / 2)
    assert len(bores) == 2 and distances(bores)[0] == pytest.approx(128, abs=0.01)
    for _, _, low, high in bores:
        assert (low, high) == (pytest.approx(0, abs=1e-3), pytest.approx(12, abs=1e-3))
    # blind: the hole's end is a flat floor inside the part and the grip's top is unbroken over each foot
    floors = [face for face in shape.Faces() if face.geomType() == "PLANE"
              and face.Center().z == pytest.approx(12, abs=1e-3)]
    assert len(floors) == 2
    for x, _, _, _ in bores:
        top = slab(shape, params.height - 0.5)
        assert top.isInside(cq.Vector(x, 0, params.height - 0.5))
    # under the grip there is nothing but the two feet: room for fingers
    assert len(slab(shape, params.height - params.grip_thickness - 0.5).Solids()) == 2


def test_pull_rules_name_the_field_and_say_why():
    assert "past both feet" in rejected_fields("drawer_pull", {"hole_spacing": 256, "grip_length": 260})["grip_length"]
    assert "fingers" in rejected_fields("drawer_pull", {"height": 22, "grip_thickness": 10})["height"]
    assert "wall" in rejected_fields("drawer_pull", {"screw_fitting": "m4_insert", "foot_diameter": 9})["foot_diameter"]
    assert "break through" in rejected_fields("drawer_pull", {"height": 22, "grip_thickness": 6,
                                                              "hole_depth": 20})["hole_depth"]
    assert "must be one of: 64 mm, 96 mm" in rejected_fields("drawer_pull", {"hole_spacing": 100})["hole_spacing"]


# -- leg cap -------------------------------------------------------------------------------


@pytest.mark.parametrize("clearance", [-0.3, 0.0, 0.4, 1.5])
def test_cap_opening_is_the_leg_plus_clearance_round(clearance):
    values = {"leg_diameter": 32, "fit_clearance": clearance, "wall_thickness": 2.5, "sleeve_depth": 18,
              "sole_thickness": 5}
    params, shape, _ = build("leg_cap", values)
    inner = vertical_bores(shape, (32 + clearance) / 2)
    assert len(inner) == 1
    _, _, low, high = inner[0]
    assert low == pytest.approx(5, abs=1e-3)  # the sole's top is the bottom of the sleeve
    assert high == pytest.approx(5 + 18 - min(0.6, 2.5 / 4), abs=1e-3)  # up to the lead-in chamfer
    assert opening_size(shape, 5 + 9) == (pytest.approx(32 + clearance, abs=0.01),) * 2
    box = shape.BoundingBox()
    assert (box.xlen, box.ylen, box.zlen) == (pytest.approx(32 + clearance + 5, abs=0.01),) * 2 + (
        pytest.approx(23, abs=0.01),)


def test_cap_opening_is_the_leg_plus_clearance_rectangular():
    params, shape, _ = build("leg_cap", preset="table-square-45-felt")
    assert opening_size(shape, params.sole_thickness + params.sleeve_depth / 2) == (
        pytest.approx(45.4, abs=0.01), pytest.approx(45.4, abs=0.01))
    wide = {"leg_shape": "rectangular", "leg_width": 60, "leg_depth": 25, "fit_clearance": 0.5,
            "leg_corner_radius": 3, "wall_thickness": 3}
    _, shape, _ = build("leg_cap", wide)
    assert opening_size(shape, 10) == (pytest.approx(60.5, abs=0.01), pytest.approx(25.5, abs=0.01))
    assert section_size(shape, 10) == (pytest.approx(66.5, abs=0.01), pytest.approx(31.5, abs=0.01))


def test_cap_felt_recess_depth_and_rim():
    params, shape, _ = build("leg_cap", preset="table-square-45-felt")
    recess_floor = [face for face in shape.Faces() if face.geomType() == "PLANE"
                    and face.Center().z == pytest.approx(params.felt_thickness, abs=1e-3)
                    and face.normalAt().z < -0.99]
    assert len(recess_floor) == 1
    pad = recess_floor[0].BoundingBox()
    outside = params.outside()[0]
    assert pad.xlen == pytest.approx(outside - 2 * params.felt_margin, abs=0.01)
    # the sole keeps material between the felt and the leg
    assert params.sole_thickness - params.felt_thickness >= 1.2
    assert opening_size(shape, params.felt_thickness / 2)[0] == pytest.approx(outside - 2 * params.felt_margin,
                                                                              abs=0.01)


def test_cap_rules_name_the_field_and_say_why():
    problems = rejected_fields("leg_cap", {"felt_recess": True, "felt_thickness": 3, "sole_thickness": 4})
    assert "sole" in problems["felt_thickness"]
    problems = rejected_fields("leg_cap", {"leg_shape": "rectangular", "leg_width": 20, "leg_depth": 20,
                                           "leg_corner_radius": 10})
    assert "corner radius" in problems["leg_corner_radius"]
    problems = rejected_fields("leg_cap", {"felt_recess": True, "leg_diameter": 10, "wall_thickness": 1.2,
                                           "felt_margin": 4})
    assert "felt" in problems["felt_margin"]


# -- cabinet door --------------------------------------------------------------------------


def cups_of(shape) -> list[tuple[float, float, float, float]]:
    """The 35 mm hinge cups of a door: (x, y, z_low, z_high) each."""
    return vertical_bores(shape, 17.5)


def test_door_is_a_flat_cnc_part_of_the_asked_size():
    params, shape, part = build("cabinet_door")
    assert part.flat and part.process == "cnc" and part.thickness == 18
    box = shape.BoundingBox()
    assert (box.xmin, box.ymin, box.zmin) == (pytest.approx(0, abs=1e-6),) * 3
    assert (box.xlen, box.ylen, box.zlen) == (pytest.approx(597, abs=0.01), pytest.approx(797, abs=0.01),
                                              pytest.approx(18, abs=0.01))


def test_door_hinge_cups_are_35mm_at_depth_and_edge_distance():
    params, shape, _ = build("cabinet_door", {"hinge_side": "left", "hinge_cup_depth": 12.5,
                                              "hinge_edge_distance": 4})
    cups = cups_of(shape)
    assert len(cups) == 2
    for x, _, low, high in cups:
        assert high == pytest.approx(18, abs=1e-3) and 18 - low == pytest.approx(12.5, abs=1e-3)
        # a left-hinged door lies face down, so its hinged edge is at +X: 4 mm gap plus the cup radius
        assert 597 - x == pytest.approx(21.5, abs=0.01)
    assert [c[1] for c in cups] == [pytest.approx(100, abs=0.01), pytest.approx(697, abs=0.01)]
    # the diameter measured across the cup's floor edge
    floor_edges = [edge for edge in shape.Edges() if edge.geomType() == "CIRCLE"
                   and edge.Center().z == pytest.approx(18 - 12.5, abs=1e-3)]
    assert len(floor_edges) == 2
    for edge in floor_edges:
        box = edge.BoundingBox()
        assert box.xlen == pytest.approx(35, abs=0.01) and box.ylen == pytest.approx(35, abs=0.01)


@pytest.mark.parametrize(("height", "hinges"), [(700, 2), (900, 2), (1200, 3), (1600, 3), (1997, 4), (2300, 5)])
def test_door_hinge_count_follows_the_height(height, hinges):
    params, shape, _ = build("cabinet_door", {"height": height, "hinge_side": "right"})
    cups = cups_of(shape)
    assert len(cups) == hinges == params.hinges()
    assert all(x == pytest.approx(22, abs=0.01) for x, _, _, _ in cups)
    pitch = distances(sorted(cups, key=lambda c: c[1]))
    assert all(gap == pytest.approx((height - 200) / (hinges - 1), abs=0.01) for gap in pitch)


def test_door_hinge_count_can_be_given_and_top_hinges_run_along_the_width():
    params, shape, _ = build("cabinet_door", preset="wall-flap")
    cups = cups_of(shape)
    assert len(cups) == 2
    assert all(y == pytest.approx(397 - 22, abs=0.01) for _, y, _, _ in cups)
    params, shape, _ = build("cabinet_door", {"hinge_count": 4})
    assert len(cups_of(shape)) == 4


@pytest.mark.parametrize("spacing", [96, 128, 160])
@pytest.mark.parametrize("position", ["side", "top", "centre"])
def test_door_handle_holes_at_the_chosen_spacing_and_position(spacing, position):
    values = {"handle_spacing": spacing, "handle_position": position, "handle_offset": 45,
              "handle_hole_diameter": 5}
    params, shape, _ = build("cabinet_door", values)
    holes = vertical_bores(shape, 2.5)
    assert len(holes) == 2
    for _, _, low, high in holes:
        assert low == pytest.approx(0, abs=1e-3) and high == pytest.approx(18, abs=1e-3)  # through
    assert distances(holes)[0] == pytest.approx(spacing, abs=0.2)
    (x0, y0, _, _), (x1, y1, _, _) = holes
    if position == "side":  # vertical, opposite the left hinges: near x = 0 when lying face down
        assert x0 == x1 == pytest.approx(45, abs=0.01)
        assert (y0 + y1) / 2 == pytest.approx(797 / 2, abs=0.01)
    elif position == "top":
        assert y0 == y1 == pytest.approx(797 - 45, abs=0.01)
        assert (x0 + x1) / 2 == pytest.approx(597 / 2, abs=0.01)
    else:
        assert (x0 + x1) / 2 == pytest.approx(597 / 2, abs=0.01)
        assert y0 == y1 == pytest.approx(797 / 2, abs=0.01)


def test_door_without_handle_or_hinges_has_no_holes():
    params, shape, _ = build("cabinet_door", {"handle_spacing": "none", "hinge_side": "none",
                                              "handle_position": "centre", "thickness": "22mm"})
    assert params.handle_spacing == 0 and params.thickness == 22
    assert not [face for face in shape.Faces() if face.geomType() == "CYLINDER" and face.BoundingBox().zlen > 2]
    assert shape.BoundingBox().zlen == pytest.approx(22, abs=0.01)


def test_door_rules_name_the_field_and_say_why():
    problems = rejected_fields("cabinet_door", {"thickness": 16, "hinge_cup_depth": 13})
    assert "leaves less than 4 mm" in problems["hinge_cup_depth"]
    problems = rejected_fields("cabinet_door", {"width": 200, "handle_spacing": 160, "handle_position": "centre"})
    assert "160 mm handle" in problems["handle_spacing"]
    problems = rejected_fields("cabinet_door", {"hinge_side": "none", "handle_position": "side"})
    assert "opposite the hinges" in problems["handle_position"]
    problems = rejected_fields("cabinet_door", {"height": 250, "hinge_count": 3})
    assert "apart" in problems["hinge_count"]
    problems = rejected_fields("cabinet_door", {"width": 160, "height": 700, "handle_spacing": 96,
                                                "handle_position": "top", "handle_offset": 100})
    assert "hinge cup" in problems["handle_offset"]
    problems = rejected_fields("cabinet_door", {"thickness": 16, "edge_profile": "chamfer", "edge_size": 6,
                                                "hinge_edge_distance": 3})
    assert "under the rim of the hinge cups" in problems["edge_size"]
    assert "must be one of: 16 mm, 18 mm" in rejected_fields("cabinet_door", {"thickness": 17})["thickness"]
