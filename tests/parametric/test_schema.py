"""The parameter model: defaults, ranges, units, unknown fields and cross-field rules."""

import pytest

import parametric
from parametric import ValidationError


def fields_of(error: ValidationError) -> dict[str, str]:
    return {e.field: e.message for e in error.errors}


@pytest.mark.parametrize("template", parametric.templates(), ids=lambda t: t.id)
def test_every_field_declares_default_range_unit_and_description(template):
    for name, info in template.Params.model_fields.items():
        meta = template.Params.field_help(name)
        assert meta["description"], f"{template.id}.{name} has no description"
        assert "unit" in meta, f"{template.id}.{name} has no unit"
        numeric = info.annotation in (float, int) or str(info.annotation).startswith(("float", "int"))
        if "choices" in meta:
            assert meta["choices"], f"{template.id}.{name} has an empty choice list"
        elif numeric or meta["unit"] in ("mm", "deg", "count"):
            assert meta["minimum"] is not None and meta["maximum"] is not None, f"{template.id}.{name} has no range"
        assert template.Params.allowed(name) or meta["max_length"] is not None or meta["unit"] == "", name


@pytest.mark.parametrize("template", parametric.templates(), ids=lambda t: t.id)
def test_defaults_and_presets_validate(template):
    template.validate({})
    assert len(template.presets) >= 2, f"{template.id} needs at least two presets"
    for preset in template.presets:
        template.resolve(preset=preset)


def test_units_are_converted_at_the_edge():
    params = parametric.get_template("wall_shelf").validate({"width": "32in", "depth": "20cm"})
    assert params.width == pytest.approx(812.8)
    assert params.depth == pytest.approx(200)


def test_every_problem_is_reported_with_what_is_allowed():
    shelf = parametric.get_template("wall_shelf")
    with pytest.raises(ValidationError) as caught:
        shelf.validate({"width": 5000, "depth": "ten", "colour": "red", "bracket_count": 2.5})
    problems = fields_of(caught.value)
    assert set(problems) == {"width", "depth", "colour", "bracket_count"}
    assert "300 to 1500 mm" in problems["width"]
    assert "5000 mm is too long: the width must be 300 to 1500 mm" == problems["width"]
    assert "unknown parameter" in problems["colour"] and "width" in problems["colour"]
    assert "whole number from 2 to 8" in problems["bracket_count"]


def test_cross_field_rules_explain_themselves():
    shelf = parametric.get_template("wall_shelf")
    with pytest.raises(ValidationError) as caught:
        shelf.validate({"width": 300, "bracket_count": 8, "hole_pitch": 300})
    message = fields_of(caught.value)["bracket_count"]
    assert "brackets need" in message and "holes" in message


def test_canonical_parameters_are_stable():
    shelf = parametric.get_template("wall_shelf")
    a = shelf.validate({"width": "800mm"}).canonical()
    b = shelf.validate({"width": 800.00001, "bracket_count": 2}).canonical()
    assert a == b
    assert a["bracket_count"] == 2


def test_unknown_template_names_the_known_ones():
    with pytest.raises(ValidationError) as caught:
        parametric.get_template("wal_shelf")
    assert "wall_shelf" in fields_of(caught.value)["template"]


def test_schema_carries_units_ranges_and_presets():
    schema = parametric.get_template("wall_shelf").schema()
    width = schema["properties"]["width"]
    assert (width["minimum"], width["maximum"], width["unit"]) == (300, 1500, "mm")
    assert width["description"]
    assert "spice-rack" in schema["x-presets"]
    assert schema["additionalProperties"] is False


STOCKED = {"birch_plywood": [15.0, 18.0], "oak": [18.0], "mdf": [30.0]}
"""Sheet thicknesses a shop's routers stock, by material (``parametric.routing.stocked_thicknesses``)."""


def test_sheet_thickness_fields_are_declared_in_the_parameter_model():
    assert parametric.get_template("wall_shelf").sheet_fields() == ["board_thickness"]
    assert parametric.get_template("bookcase").sheet_fields() == ["sheet_thickness", "back_thickness"]
    assert parametric.get_template("cabinet_door").sheet_fields() == ["thickness"]
    assert parametric.get_template("insole").sheet_fields() == []


def test_a_sheet_thickness_must_be_stocked_in_the_lines_sheet_material():
    shelf = parametric.get_template("wall_shelf")
    thick = shelf.validate({"board_thickness": 30}).canonical()
    assert shelf.stock_problems(thick, "mdf", STOCKED) == []
    [problem] = shelf.stock_problems(thick, "oak", STOCKED)
    assert problem.field == "board_thickness"
    assert problem.message == "30 mm Solid oak is not stocked; the shop's routers have Solid oak in 18 mm"
    [in_inches] = shelf.stock_problems(thick, "oak", STOCKED, units="in")
    assert in_inches.message.startswith("1.18 in Solid oak is not stocked")
    # a shelf ordered in PLA has its board cut from the template's first sheet material, birch plywood
    [printed] = shelf.stock_problems(thick, "pla", STOCKED)
    assert "Birch plywood in 15 mm, 18 mm" in printed.message
    [none] = shelf.stock_problems(thick, "pine", STOCKED)
    assert none.message.startswith("the shop's routers stock no Pine in a board thickness offered here (12 mm")
    assert shelf.stock_problems(thick, "oak", None) == []  # no routers: nothing to narrow to


def test_a_back_panel_thickness_counts_only_with_a_back_panel():
    bookcase = parametric.get_template("bookcase")
    with_back = bookcase.validate({}).canonical()
    assert [p.field for p in bookcase.stock_problems(with_back, "birch_plywood", STOCKED)] == ["back_thickness"]
    without = bookcase.validate({"back_panel": False}).canonical()
    assert bookcase.stock_problems(without, "birch_plywood", STOCKED) == []


def test_the_schema_says_which_thicknesses_each_material_is_stocked_in():
    schema = parametric.get_template("wall_shelf").schema(STOCKED)
    assert schema["properties"]["board_thickness"]["x-stocked"] == {
        "birch_plywood": [15, 18], "oak": [18], "pine": [], "mdf": [30]}
    assert "x-stocked" not in parametric.get_template("wall_shelf").schema()["properties"]["board_thickness"]
