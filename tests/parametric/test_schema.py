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
