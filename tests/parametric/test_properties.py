"""Property-based: parameters drawn from each template's own schema either build verified
geometry or are refused by validation with a reason; never a kernel crash, never an invalid
solid on disk."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import parametric
from parametric import GeometryError, ValidationError

PRINTABLE = st.characters(categories=["L", "N", "P", "Zs", "S"], max_codepoint=0x2FFF)


def field_strategy(model: type, name: str) -> st.SearchStrategy[Any]:
    """Values for one field, from its schema: mostly inside the range, sometimes just outside."""
    meta = model.field_help(name)
    default = meta["default"]
    if "choices" in meta:
        return st.sampled_from(meta["choices"])
    if isinstance(default, bool):
        return st.booleans()
    if meta["max_length"] is not None:
        return st.text(alphabet=PRINTABLE, min_size=max(0, (meta["min_length"] or 0) - 1),
                       max_size=meta["max_length"] + 2)
    low, high = meta["minimum"], meta["maximum"]
    if low is None or high is None:
        return st.just(default)
    if meta.get("unit") == "count":
        values = st.integers(int(low) - 1, int(high) + 1)
    else:
        span = high - low
        values = st.one_of(st.floats(low, high), st.sampled_from([low, high]),
                           st.floats(low - 0.1 * span, high + 0.1 * span))
    if default is None or not model.model_fields[name].is_required() and default is None:
        return st.one_of(st.none(), values)
    return values


def params_strategy(template) -> st.SearchStrategy[dict[str, Any]]:
    model = template.Params
    names = [name for name in model.model_fields if name != "shoe_size"]
    return st.fixed_dictionaries({}, optional={name: field_strategy(model, name) for name in names})


def _check(template, params: dict[str, Any]) -> None:
    try:
        validated = template.validate(params)
    except ValidationError as error:
        assert error.errors and all(e.message for e in error.errors)
        return
    try:
        manifest = parametric.render(template.id, params, formats=["stl"])
    except GeometryError as error:  # pragma: no cover - this is the bug the test hunts
        pytest.fail(f"accepted parameters crashed the kernel: {error}")
    assert manifest.checks["valid_solid"] and manifest.checks["watertight"]
    expected = template.expected_size(validated)
    for got, want in zip(manifest.bbox_mm, expected, strict=True):
        assert got == pytest.approx(want, abs=max(1.0, 0.01 * want))


@pytest.mark.slow
@pytest.mark.parametrize("template", parametric.templates(), ids=lambda t: t.id)
def test_schema_drawn_parameters_build_or_are_refused(template):
    @given(params_strategy(template))
    def property_(params):
        _check(template, params)

    property_()
