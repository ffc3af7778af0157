"""Home family: the Gridfinity bin keeps the grid's sizes and counts its compartments, and the
name plate draws the customer's text, refuses what the font cannot draw or the plate cannot
hold, and centres the letters."""

from __future__ import annotations

import pytest

import parametric
from parametric import ValidationError
from parametric.part import solid_of

from ..conftest import require_module

require_module("cadquery")
trimesh = require_module("trimesh")

BIN = parametric.get_template("gridfinity_bin")
PLATE = parametric.get_template("name_plate")


def built(template, **values):
    params = template.validate(values)
    (part,) = template.build(params)
    return params, solid_of(part.shape)


def mesh_of(solid) -> trimesh.Trimesh:
    vertices, triangles = solid.tessellate(0.05, 0.2)
    mesh = trimesh.Trimesh([v.toTuple() for v in vertices], triangles)
    assert mesh.is_watertight and mesh.is_volume
    return mesh


def section_at(solid, z: float):
    """The faces of the solid's cross-section at height z (each with its holes as inner wires)."""
    import cadquery as cq

    return cq.Workplane("XY").add(solid).section(z).faces().vals()


def size_of(shape) -> tuple[float, float]:
    box = shape.BoundingBox()
    return box.xlen, box.ylen


# -- Gridfinity bin ----------------------------------------------------------------------


@pytest.mark.parametrize(("grid_x", "grid_y", "units", "lip"), [(1, 1, 2, True), (3, 2, 6, True), (2, 4, 5, False)])
def test_bin_outer_size_follows_the_grid(grid_x, grid_y, units, lip):
    params, solid = built(BIN, grid_x=grid_x, grid_y=grid_y, height_units=units, stacking_lip=lip)
    assert solid.isValid() and len(solid.Solids()) == 1
    box = solid.BoundingBox()
    assert box.xlen == pytest.approx(42 * grid_x - 0.5, abs=0.01)
    assert box.ylen == pytest.approx(42 * grid_y - 0.5, abs=0.01)
    assert box.zlen == pytest.approx(7 * units + (4.4 if lip else 0), abs=0.01)
    assert (box.xmin + box.xmax, box.ymin + box.ymax, box.zmin) == pytest.approx((0, 0, 0), abs=1e-6)
    assert BIN.expected_size(params) == pytest.approx((box.xlen, box.ylen, box.zlen))


def test_bin_has_one_spec_foot_per_cell():
    _, solid = built(BIN, grid_x=3, grid_y=2)
    mesh_of(solid)
    feet = section_at(solid, 0.001)
    assert len(feet) == 6
    for foot in feet:
        # 41.5 mm at the top, less 2 x (2.15 + 0.8) mm of chamfers at the bottom
        assert size_of(foot) == pytest.approx((35.6, 35.6), abs=0.01)
    assert sorted({round(foot.Center().x, 2) for foot in feet}) == pytest.approx([-42, 0, 42], abs=0.01)
    assert sorted({round(foot.Center().y, 2) for foot in feet}) == pytest.approx([-21, 21], abs=0.01)
    under_the_body = section_at(solid, 4.7)
    assert len(under_the_body) == 6  # still separate: 0.5 mm apart at the top
    assert size_of(under_the_body[0]) == pytest.approx((41.5 - 0.1, 41.5 - 0.1), abs=0.01)


@pytest.mark.parametrize(("dividers_x", "dividers_y"), [(0, 0), (2, 0), (1, 1), (3, 2)])
def test_bin_dividers_make_the_compartments(dividers_x, dividers_y):
    params, solid = built(BIN, grid_x=4, grid_y=3, height_units=6, dividers_x=dividers_x, dividers_y=dividers_y)
    assert solid.isValid() and len(solid.Solids()) == 1
    floor_to_dividers_top = (7 + params.divider_top) / 2
    mesh_of(solid)
    (section,) = section_at(solid, floor_to_dividers_top)
    holes = section.innerWires()
    assert len(holes) == (dividers_x + 1) * (dividers_y + 1)
    widths = [size_of(hole)[0] for hole in holes]
    depths = [size_of(hole)[1] for hole in holes]
    assert widths == pytest.approx([params.compartment(params.size_x, dividers_x)] * len(holes), abs=0.01)
    assert depths == pytest.approx([params.compartment(params.size_y, dividers_y)] * len(holes), abs=0.01)
    # Above the dividers the bin is one open space again.
    (upper,) = section_at(solid, params.divider_top + 0.5)
    assert len(upper.innerWires()) == 1


def test_bin_stacking_lip_opening_matches_the_spec():
    params, solid = built(BIN, grid_x=2, grid_y=1, height_units=4)
    (tip,) = section_at(solid, params.wall_height)
    (hole,) = tip.innerWires()
    assert size_of(hole) == pytest.approx((83.5 - 5.2, 41.5 - 5.2), abs=0.01)
    (rim,) = section_at(solid, params.total_height - 0.001)
    assert size_of(rim.innerWires()[0]) == pytest.approx((83.5 - 0.5, 41.5 - 0.5), abs=0.01)


def test_bin_rules_name_the_field():
    with pytest.raises(ValidationError) as error:
        BIN.validate({"grid_x": 1, "dividers_x": 3})
    assert error.value.errors[0].field == "dividers_x" and "15 mm" in error.value.errors[0].message
    with pytest.raises(ValidationError) as error:
        BIN.validate({"grid_y": 7})
    assert error.value.errors[0].field == "grid_y"


# -- Name plate --------------------------------------------------------------------------


def letters_box(solid, thickness):
    """The bounding box of everything standing above the plate's front face (the raised letters)."""
    import cadquery as cq

    big = 1000.0
    above = cq.Solid.makeBox(big, big, 50, cq.Vector(-big / 2, -big / 2, thickness + 1e-3))
    return solid.intersect(above).BoundingBox()


def test_text_changes_the_geometry():
    _, anna = built(PLATE, text="Anna", plate_width=120)
    _, bob = built(PLATE, text="Bob", plate_width=120)
    assert anna.isValid() and bob.isValid()
    assert anna.Volume() != pytest.approx(bob.Volume(), rel=1e-3)
    assert anna.BoundingBox().xlen == pytest.approx(bob.BoundingBox().xlen)  # same plate
    _, engraved = built(PLATE, text="Anna", plate_width=120, text_style="engraved")
    params = PLATE.validate({"text": "Anna", "plate_width": 120})
    assert engraved.BoundingBox().zlen == pytest.approx(params.thickness)
    assert anna.BoundingBox().zlen == pytest.approx(params.thickness + params.text_depth)
    assert engraved.Volume() < anna.Volume()


def test_letters_are_centred_and_as_tall_as_asked():
    params, solid = built(PLATE, text="HELL", letter_height=20, plate_height=60)
    box = letters_box(solid, params.thickness)
    assert box.zlen == pytest.approx(params.text_depth, abs=0.01)
    assert box.ylen == pytest.approx(20, abs=0.1)  # capitals only: exactly the letter height
    assert ((box.xmin + box.xmax) / 2, (box.ymin + box.ymax) / 2) == pytest.approx((0, 0), abs=0.15)
    assert box.xlen == pytest.approx(params.text_extents().width, abs=0.15)


def test_plate_width_fits_the_text_and_holes_sit_at_the_ends():
    params, solid = built(PLATE, text="Meeting Room", letter_height=14, hole_diameter=4)
    assert params.plate_width == pytest.approx(params.fitted_width())
    assert solid.BoundingBox().xlen == pytest.approx(params.plate_width)
    circles = [edge for edge in solid.Edges() if edge.geomType() == "CIRCLE" and abs(edge.radius() - 2) < 1e-6]
    inset = params.plate_width / 2 - 4 - 3
    assert sorted({round(edge.arcCenter().x, 2) for edge in circles}) == pytest.approx([-inset, inset], abs=0.01)
    assert {round(edge.arcCenter().y, 2) for edge in circles} == {0}


def test_unsupported_character_is_refused_naming_text_and_the_character():
    with pytest.raises(ValidationError) as error:
        PLATE.validate({"text": "Hi 漢字"})
    (problem,) = error.value.errors
    assert problem.field == "text"
    assert "U+6F22" in problem.message and "U+5B57" in problem.message


@pytest.mark.parametrize(("text", "words"), [("x" * 41, "it must be 1 to 40 characters"), ("   ", "only spaces"),
                                             ("a\nb", "one line"),
                                             ("\u200b", "invisible character U+200B ZERO WIDTH SPACE"),
                                             ("שלום", "right-to-left")])
def test_bad_text_is_refused_with_a_reason(text, words):
    with pytest.raises(ValidationError) as error:
        PLATE.validate({"text": text})
    assert error.value.errors[0].field == "text" and words in error.value.errors[0].message


@pytest.mark.parametrize("character", ["\u2729", "\u2592", "\u1da8"])
def test_characters_the_font_draws_badly_are_refused(character):
    with pytest.raises(ValidationError) as error:
        PLATE.validate({"text": f"A{character}B"})
    assert error.value.errors[0].field == "text" and f"U+{ord(character):04X}" in error.value.errors[0].message


def test_text_that_does_not_fit_is_refused():
    with pytest.raises(ValidationError) as error:
        PLATE.validate({"text": "The Wonderful Family", "plate_width": 100})
    assert error.value.errors[0].field == "text" and "100 mm plate" in error.value.errors[0].message
    with pytest.raises(ValidationError) as error:
        PLATE.validate({"text": "W" * 40, "letter_height": 30})
    assert "widest plate is 300 mm" in error.value.errors[0].message
    with pytest.raises(ValidationError) as error:
        PLATE.validate({"text": "Hi", "letter_height": 30, "plate_height": 30})
    assert error.value.errors[0].field == "text" and "taller plate" in error.value.errors[0].message


def test_plate_rules_name_the_field():
    with pytest.raises(ValidationError) as error:
        PLATE.validate({"corner_radius": 1e-9})
    assert error.value.errors[0].field == "corner_radius" and "square" in error.value.errors[0].message
    with pytest.raises(ValidationError) as error:
        PLATE.validate({"text_style": "engraved", "text_depth": 2.5, "thickness": 3})
    assert error.value.errors[0].field == "text_depth"
    with pytest.raises(ValidationError) as error:
        PLATE.validate({"plate_height": 16, "letter_height": 4, "hole_diameter": 6})
    assert error.value.errors[0].field == "hole_diameter"
    assert PLATE.validate({"corner_radius": 0}).corner_radius == 0


def test_any_drawable_unicode_is_accepted_and_normalised():
    params = PLATE.validate({"text": "  Zoë Ångström – Ωμέγα Привет  ", "letter_height": 8})
    assert params.text == "Zoë Ångström – Ωμέγα Привет"
    decomposed = PLATE.validate({"text": "Zoe\u0308"})
    assert decomposed.text == "Zoë"  # NFC: one character, the same plate as the composed spelling
    _, solid = built(PLATE, text="Ωμέγα Привет", text_style="engraved")
    assert solid.isValid() and len(solid.Solids()) == 1
    mesh_of(solid)
