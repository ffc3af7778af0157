"""Printed parts go on the bed the way they print: the pose with the least overhang (or the template's
own), supports where an overhang remains, checked on what PrusaSlicer really extrudes."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from parametric.fdm import slice_manifest
from parametric.fdm.gcode import print_report
from parametric.fdm.orientation import SUPPORT_THRESHOLD_MM2, choose_pose, evaluate, rotation_matrix
from parametric.machines import Printer
from parametric.registry import templates
from parametric.render import render

UNSUPPORTED_SHARE_BOUND = 0.002
"""Unsupported overhang perimeter a plate may keep, as a share of all the perimeter it prints: the roofs of
small holes and the first mm of a chamfer (the bracket on its side keeps about 0.006 %)."""
FIRST_LAYER_COVER = 0.85
"""The first layer must cover at least this share of what the pose puts on the bed (the chamfers and
the first layer's squish take a little; a part that only touches along a line covers far less)."""

LARGE_PRINTER = Printer(name="large-format", build_volume_mm=(360, 360, 400), nozzle_diameter_mm=0.4,
                        materials=["pla", "petg", "tpu"])
"""Large enough for every preset (a 295 mm outsole, a 350 mm coffee-table leg), so every part is sliced."""


def printed_parts():
    """Every printed part of every template's defaults and presets, as (template, preset, part) ids."""
    cases = []
    for template in templates():
        if "fdm" not in template.process:
            continue
        for preset in [None, *template.presets]:
            cases.append(pytest.param(template.id, preset, id=f"{template.id}-{preset or 'defaults'}"))
    return cases


def test_a_bracket_standing_up_overhangs_and_laid_down_does_not():
    back = trimesh.creation.box((40, 8, 150))
    back.apply_translation((0, 4, 75))  # up the wall
    arm = trimesh.creation.box((40, 100, 8))
    arm.apply_translation((0, 50, 146))  # out from its top: 92 mm over air
    standing = trimesh.util.concatenate([back, arm])
    upright = evaluate(standing, np.eye(4))
    assert upright.overhang_mm2 > 500 and upright.supports
    chosen = choose_pose(standing)
    assert chosen.overhang_mm2 < upright.overhang_mm2 / 10 and chosen.contact_mm2 > upright.contact_mm2
    assert not chosen.supports


def test_a_declared_pose_is_kept_even_when_another_touches_more():
    plate = trimesh.creation.box((100, 60, 4))
    declared = choose_pose(plate, (("X", 90),))
    assert declared.declared and declared.height_mm == pytest.approx(60)
    assert choose_pose(plate).height_mm == pytest.approx(4)
    np.testing.assert_allclose(rotation_matrix([("X", 90)])[:3, :3] @ [0, 1, 0], [0, 0, 1], atol=1e-9)


def test_a_tall_narrow_pose_is_not_chosen_to_save_overhang():
    # A rod lying down overhangs along its underside; standing on its 6 mm end it would topple.
    rod = trimesh.creation.cylinder(radius=3, height=150, sections=48)
    rod.apply_transform(rotation_matrix([("Y", 90)]))
    chosen = choose_pose(rod)
    assert chosen.height_mm < 10 and chosen.stands


def test_as_built_wins_a_tie():
    block = trimesh.creation.box((30, 30, 30))
    assert np.allclose(choose_pose(block).matrix[:3, :3], np.eye(3))


def test_unknown_axis_is_refused_plainly():
    with pytest.raises(ValueError, match="allowed X, Y or Z"):
        rotation_matrix([("W", 90)])


def test_the_printed_files_hold_the_pose_and_the_manifest_its_size():
    manifest = render("wall_shelf", formats=["stl", "3mf"])
    bracket = next(p for p in manifest.parts if p["name"] == "bracket")
    stl = next(f for f in manifest.files if f["format"] == "stl" and f["part"] == "bracket")
    mesh = trimesh.load(manifest.directory / stl["filename"])
    np.testing.assert_allclose(mesh.extents, bracket["size_mm"], atol=1e-3)
    assert mesh.bounds[0][2] == pytest.approx(0, abs=1e-6)
    assert bracket["print"]["chosen"] == "declared by the template" and not bracket["print"]["supports"]
    # laid on its side, the bracket is as tall as it is wide
    assert bracket["size_mm"][2] == pytest.approx(manifest.params["bracket_width"], abs=1e-3)
    board = next(p for p in manifest.parts if p["name"] == "board")
    assert "print" not in board  # a CNC part keeps its sheet pose


@pytest.mark.integration
@pytest.mark.parametrize(("template_id", "preset"), printed_parts())
def test_every_printed_part_prints_without_unsupported_overhang(prusa_slicer, tmp_path, template_id, preset):
    printer = LARGE_PRINTER
    manifest = render(template_id, preset=preset, formats=["stl"])
    material = next(m for m in get_template_materials(template_id) if m in printer.materials)
    for result in slice_manifest(manifest, printer, material, tmp_path, process="fdm"):
        part = next(p for p in manifest.parts if p["name"] == result.part)
        report = print_report(result.gcode, printer.filament_diameter_mm)
        assert report.unsupported_share <= UNSUPPORTED_SHARE_BOUND, (
            f"{result.part}: {report.unsupported_overhang_mm:.0f} mm of {report.perimeter_mm:.0f} mm of perimeter "
            f"overhangs unsupported ({report.unsupported_share:.3%}); pose {part['print']}")
        assert result.supports == (part["print"]["overhang_mm2"] > SUPPORT_THRESHOLD_MM2)
        expected = part["print"]["contact_mm2"] * result.copies
        assert report.first_layer_mm2 >= FIRST_LAYER_COVER * expected, (
            f"{result.part}: the first layer covers {report.first_layer_mm2:.0f} mm2 of the "
            f"{expected:.0f} mm2 the part rests on")


def get_template_materials(template_id: str) -> list[str]:
    from parametric.registry import get_template

    return list(get_template(template_id).materials)


def test_print_report_tells_supported_from_unsupported_overhang(tmp_path):
    gcode = tmp_path / "plate.gcode"
    gcode.write_text("\n".join([
        "M83", ";LAYER_CHANGE", ";Z:0.2", ";HEIGHT:0.2", ";TYPE:Skirt/Brim", "G1 X0 Y0 F600", "G1 X50 Y0 E5",
        ";TYPE:External perimeter", "G1 X10 Y10", "G1 X20 Y10 E1",
        ";LAYER_CHANGE", ";Z:0.4", ";HEIGHT:0.2", ";TYPE:Support material", "G1 X30 Y30", "G1 X40 Y30 E1",
        ";LAYER_CHANGE", ";Z:0.6", ";HEIGHT:0.2", ";TYPE:Overhang perimeter", "G1 X30 Y30.5", "G1 X40 Y30.5 E1",
        "G1 X100 Y100", "G1 X110 Y100 E1", ""]))
    report = print_report(gcode, 1.75)
    assert report.overhang_mm == 20 and report.unsupported_overhang_mm == 10 and report.support_mm == 10
    assert report.perimeter_mm == 30
    # the first layer's part extrusion (the skirt left out): 1 mm of 1.75 mm filament over 0.2 mm layers
    assert report.first_layer_mm2 == pytest.approx(3.14159 * 0.875 ** 2 / 0.2, abs=0.1)
