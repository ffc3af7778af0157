"""Walk the registry: every template's defaults and presets build verified geometry."""

from __future__ import annotations

import pytest

import parametric

CASES = [(t.id, None) for t in parametric.templates()] + [
    (t.id, preset) for t in parametric.templates() for preset in t.presets
]


def assert_size_matches(template, params, bbox):
    expected = template.expected_size(template.validate(params) if isinstance(params, dict) else params)
    assert expected is not None, f"{template.id} must say what size its parameters promise"
    for axis, (got, want) in enumerate(zip(bbox, expected, strict=True)):
        assert got == pytest.approx(want, abs=max(1.0, 0.01 * want)), f"{template.id} axis {'xyz'[axis]}"


@pytest.mark.parametrize(("template_id", "preset"), CASES, ids=[f"{t}-{p or 'defaults'}" for t, p in CASES])
def test_builds_one_valid_watertight_solid_per_part(template_id, preset):
    template = parametric.get_template(template_id)
    manifest = parametric.render(template_id, {}, preset=preset, formats=["stl"])
    assert manifest.checks["valid_solid"] and manifest.checks["watertight"] and manifest.checks["manifold"]
    for part in manifest.parts:
        assert part["checks"]["solids"] == 1
        assert part["volume_mm3"] > 0
        assert part["checks"]["mesh_volume_mm3"] == pytest.approx(part["volume_mm3"], rel=0.02)
    assert manifest.volume_mm3 > 0 and manifest.mass_g > 0
    assert_size_matches(template, template.resolve(preset=preset), manifest.bbox_mm)


def test_registry_lists_products_with_their_facts():
    rows = [t.summary() for t in parametric.templates()]
    assert {"wall_shelf", "insole"} <= {r["id"] for r in rows}
    for row in rows:
        assert row["family"] in ("furniture", "footwear", "home")
        assert set(row["process"]) <= {"fdm", "cnc"} and row["materials"]
