"""Grain: templates declare which of their parts have one, renders record it, and the nesting locks it
only in a material that has a grain."""

from __future__ import annotations

import pytest

import parametric
from parametric.batching import FOUR_WAY, GRAIN
from parametric.batching.sheets import GRAIN_TURNS, _rotations
from parametric.materials import materials
from parametric.part import Part


def grains(manifest):
    return {part["name"]: part["grain"] for part in manifest.parts}


def test_bookcase_panels_run_along_their_length_and_the_back_is_free():
    manifest = parametric.render("bookcase", {}, preset="paperback", formats=["step"])
    assert grains(manifest) == {"side": "x", "top": "x", "bottom": "x", "shelf": "x", "back": None}
    side = next(part for part in manifest.parts if part["name"] == "side")
    assert side["size_mm"][0] > side["size_mm"][1]  # its X is its length


@pytest.mark.parametrize(("preset", "grain"), [("ikea-60-kitchen", "y"), ("drawer-front-80", "x"),
                                               ("tall-pantry", "y"), ("wall-flap", "x")])
def test_a_door_grain_runs_the_long_way(preset, grain):
    manifest = parametric.render("cabinet_door", {}, preset=preset, formats=["step"])
    [door] = manifest.parts
    assert door["grain"] == grain
    length_axis = "x" if door["size_mm"][0] > door["size_mm"][1] else "y"
    assert length_axis == grain


def test_the_lock_applies_in_grained_materials_only():
    assert {key for key, material in materials().items() if material.grained} == {"birch_plywood", "oak", "pine"}
    assert _rotations({"grain": "x"}, "oak", FOUR_WAY) == GRAIN
    assert _rotations({"grain": "y"}, "birch_plywood", FOUR_WAY) == GRAIN_TURNS["y"] == (90.0, 270.0)
    assert _rotations({"grain": "y"}, "mdf", FOUR_WAY) == FOUR_WAY  # MDF has no grain: any quarter turn
    assert _rotations({"grain": None}, "oak", None) is None
    assert _rotations({}, "oak", FOUR_WAY) == FOUR_WAY  # a record from before parts declared a grain


def test_a_part_with_an_unknown_grain_is_a_template_bug():
    with pytest.raises(ValueError, match="grain must be one of"):
        Part("side", None, grain="z")
