"""Every limit a template's schema offers is one some order can have: each numeric field at its minimum and at its
maximum is accepted with the other fields at their defaults, or with some other choice of them (searched over their
own ranges and choices). A limit that every rule combination refuses is a promise the form cannot keep."""

from __future__ import annotations

import random
from typing import Any

import pytest

import parametric
from parametric import ValidationError

TRIES = 600


def _accepts(template: Any, values: dict[str, Any]) -> str | None:
    """``None`` when ``values`` are accepted, else the reasons."""
    try:
        template.validate(values)
    except ValidationError as error:
        return "; ".join(f"{e.field}: {e.message}" for e in error.errors)
    return None


def _draw(model: Any, name: str, chance: random.Random) -> Any:
    meta = model.field_help(name)
    if "choices" in meta:
        return chance.choice(list(meta["choices"]))
    if isinstance(meta["default"], bool):
        return chance.random() < 0.5
    if meta["max_length"] is not None:  # text: as given, or as short as allowed (a shorter name plate)
        return chance.choice([meta["default"], str(meta["default"])[:max(1, meta["min_length"] or 0)]])
    low, high = meta["minimum"], meta["maximum"]
    if low is None or high is None:
        return meta["default"]
    if meta["default"] is None:  # optional (worked out when left out, as a foot length from a shoe size)
        return chance.choice([None, low, high, chance.uniform(low, high)])
    if meta.get("unit") == "count":
        return chance.randint(int(low), int(high))
    return chance.choice([low, high, chance.uniform(low, high)])


def unreachable_limits(template: Any) -> list[str]:
    model = template.Params
    others = [name for name in model.model_fields if name != "shoe_size"]
    found = []
    for name in others:
        meta = model.field_help(name)
        if "choices" in meta or meta["minimum"] is None or meta["maximum"] is None or meta["max_length"] is not None:
            continue
        for bound, limit in (("minimum", meta["minimum"]), ("maximum", meta["maximum"])):
            reason = _accepts(template, {name: limit})
            chance = random.Random(f"{template.id}.{name}.{bound}")
            for _ in range(TRIES if reason else 0):
                values = {other: _draw(model, other, chance) for other in others if other != name}
                values = {other: value for other, value in values.items() if value is not None}
                if _accepts(template, {**values, name: limit}) is None:
                    reason = None
                    break
            if reason:
                found.append(f"{name} {bound} {limit:g}: {reason}")
    return found


@pytest.mark.parametrize("template_id", [t.id for t in parametric.templates()])
def test_every_schema_limit_is_reachable(template_id):
    assert unreachable_limits(parametric.get_template(template_id)) == []


def test_the_search_finds_an_unreachable_limit():
    from parametric.registry import Template
    from parametric.schema import Mm, TemplateParams, length, rule

    class Params(TemplateParams):
        width: Mm = length(100, ge=50, le=400, description="Width.")
        depth: Mm = length(50, ge=20, le=100, description="Depth.")

        @rule("width", "depth")
        def _not_too_wide(self) -> str | None:
            return "the width must be at most three times the depth" if self.width > 3 * self.depth else None

    class Probe(Template):
        id, version, name, family, process, materials = "probe", "0.0.1", "Probe", "home", ("fdm",), ("pla",)
        description = "A template to test the test."

        def build(self, p: Any) -> Any:
            raise NotImplementedError

    Probe.Params = Params
    assert unreachable_limits(Probe()) == ["width maximum 400: width: the width must be at most three times the "
                                           "depth"]
