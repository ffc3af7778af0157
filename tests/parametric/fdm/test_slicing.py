"""Slicing with the real PrusaSlicer: profiles from machine and material records, estimates read back."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from parametric import render
from parametric.errors import ValidationError
from parametric.fdm import (
    Estimates,
    PlateItem,
    PrintSettings,
    SlicerError,
    build_profile,
    copies_per_plate,
    parse_duration,
    parse_estimates,
    read_estimates,
    slice_copies,
    slice_manifest,
    slice_part,
    slice_plate,
)
from parametric.fdm.gcode import Bounds, extrusion_bounds
from parametric.machines import MachineStore, Printer
from parametric.materials import get_material

GCODE_TAIL = """G1 X10 Y10 E1
M84 ; motors off
; filament used [mm] = 683.58
; filament used [cm3] = 1.64
; filament used [g] = 2.04
; filament cost = 0.05
; total filament used [g] = 2.04
; total filament cost = 0.05
; estimated printing time (normal mode) = 1h 9m 39s
; estimated printing time (silent mode) = 1h 10m 0s

; prusaslicer_config = begin
; filament_cost = 25
; prusaslicer_config = end
"""


@pytest.mark.parametrize(("text", "seconds"), [
    ("20m 6s", 1206), ("1h 2m 3s", 3723), ("1d 2h", 93600), ("45s", 45), ("2d 0h 1m 0s", 172860),
])
def test_durations_in_prusaslicer_forms(text, seconds):
    assert parse_duration(text) == seconds


def test_a_duration_that_is_not_one_is_refused():
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_estimates_from_the_end_of_the_gcode():
    assert parse_estimates(GCODE_TAIL) == Estimates(print_time_s=4179, filament_mm=683.58, filament_cm3=1.64,
                                                    filament_g=2.04, cost=0.05)
    two_extruders = GCODE_TAIL.replace("[mm] = 683.58", "[mm] = 600.0, 83.5")
    assert parse_estimates(two_extruders).filament_mm == pytest.approx(683.5)
    with pytest.raises(ValueError, match="estimated printing time"):
        parse_estimates(GCODE_TAIL.replace("estimated printing time", "guess"))


def test_profile_comes_from_the_printer_and_material_records(printer):
    profile = build_profile(printer, "petg", PrintSettings(layer_height_mm=0.15, infill_percent=30))
    assert profile["bed_shape"] == "0x0,250x0,250x210,0x210" and profile["max_print_height"] == "210"
    assert profile["nozzle_diameter"] == "0.4" and profile["filament_diameter"] == "1.75"
    petg = get_material("petg")
    assert float(profile["filament_density"]) == petg.density_g_cm3
    assert float(profile["filament_cost"]) == petg.cost_per_kg
    assert profile["temperature"] == "240" and profile["bed_temperature"] == "85"
    assert profile["layer_height"] == "0.15" and profile["fill_density"] == "30%"
    assert profile["gcode_flavor"] == "marlin2" and profile["gcode_label_objects"] == "1"
    with pytest.raises(ValidationError, match="not a printing material"):
        build_profile(printer, "oak")


def test_envelope_is_checked_before_prusaslicer_runs(printer, tmp_path, monkeypatch):
    # With no slicer to run, only a check made before calling it can answer.
    monkeypatch.setenv("PARAMETRIC_PRUSA_SLICER", "no-such-slicer")
    with pytest.raises(ValidationError) as caught:
        slice_part(tmp_path / "any.stl", (300, 50, 10), printer, "pla", tmp_path / "x.gcode")
    assert caught.value.errors[0].field == "machine"
    assert "300 x 50 mm; the bed of mk3 is 250 x 210 mm" in caught.value.errors[0].message
    with pytest.raises(ValidationError, match="prints up to 210 mm high"):
        slice_part(tmp_path / "any.stl", (20, 20, 250), printer, "pla", tmp_path / "x.gcode")
    (tmp_path / "ok.stl").write_bytes(b"solid x\nendsolid x\n")
    with pytest.raises(SlicerError, match="not installed"):
        slice_part(tmp_path / "ok.stl", (20, 20, 20), printer, "pla", tmp_path / "x.gcode")


def test_layer_height_must_suit_the_nozzle(printer, tmp_path):
    with pytest.raises(ValidationError) as caught:
        slice_part(tmp_path / "a.stl", (20, 20, 20), printer, "pla", tmp_path / "a.gcode",
                   settings=PrintSettings(layer_height_mm=0.5))
    assert caught.value.errors[0].field == "layer_height"


# -- with PrusaSlicer ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def heel_lift(tmp_path_factory):
    return render("heel_lift", {"side": "right"}, out_dir=tmp_path_factory.mktemp("heel"), formats=["stl"])


@pytest.mark.integration
def test_sliced_estimates_match_the_manifest_volume_and_mass(prusa_slicer, heel_lift, printer, tmp_path):
    solid = slice_manifest(heel_lift, printer, "tpu", tmp_path / "solid", process="fdm",
                           settings=PrintSettings(infill_percent=100))
    sparse = slice_manifest(heel_lift, printer, "tpu", tmp_path / "sparse", process="fdm")
    full, light = solid[0].estimates, sparse[0].estimates
    tpu = get_material("tpu")
    # Solid infill: PrusaSlicer's filament volume is the part's volume (skirt and rounding aside).
    assert full.filament_cm3 == pytest.approx(heel_lift.volume_mm3 / 1000, rel=0.06)
    assert full.filament_g == pytest.approx(heel_lift.mass_g, rel=0.06)
    assert full.filament_g == pytest.approx(full.filament_cm3 * tpu.density_g_cm3, abs=0.05)
    assert full.cost == pytest.approx(full.filament_g / 1000 * tpu.cost_per_kg, abs=0.02)
    assert full.filament_mm == pytest.approx(full.filament_cm3 * 1000 / (3.14159 * 1.75 ** 2 / 4), rel=0.01)
    # Sparse infill uses less filament and time, but more than the walls alone.
    assert 0.2 * full.filament_g < light.filament_g < full.filament_g
    assert 0 < light.print_time_s < full.print_time_s
    gcode = sparse[0].gcode.read_text()
    assert "M109 S230" in gcode and "M190 S50" in gcode  # TPU temperatures from the printing table
    assert sparse[0].profile.read_text().startswith("bed_shape = 0x0,250x0,250x210,0x210\n")
    assert not [p for p in (tmp_path / "sparse").iterdir() if p.name.startswith(".")]  # atomic: no temp left


@pytest.mark.integration
def test_a_repeated_slice_comes_from_the_cache(prusa_slicer, heel_lift, printer, tmp_path):
    first = slice_manifest(heel_lift, printer, "tpu", tmp_path / "a", process="fdm")[0]
    again = slice_manifest(heel_lift, printer, "tpu", tmp_path / "b", process="fdm")[0]
    assert again.cached and again.slicer_s == 0
    assert again.gcode.read_bytes() == first.gcode.read_bytes() and again.estimates == first.estimates


def _slice_entry(gcode_bytes: bytes):
    """The slice cache entry holding these G-code bytes."""
    from parametric.fdm.prusaslicer import _slice_cache_root

    [entry] = [g.parent for g in _slice_cache_root().glob("*/*/plate.gcode")
               if g.stat().st_size == len(gcode_bytes) and g.read_bytes() == gcode_bytes]
    return entry


@pytest.mark.integration
@pytest.mark.parametrize("damage", ["truncated", "one byte changed"])
def test_a_damaged_slice_cache_entry_is_sliced_again_never_handed_out(prusa_slicer, heel_lift, printer, tmp_path,
                                                                       damage):
    """The cached G-code is checked (size and SHA-256 against the entry's record) as it is handed out: a damaged
    entry is removed and the plate sliced again, and the copy handed out is a whole G-code."""
    import os

    settings = PrintSettings(infill_percent=23 if damage == "truncated" else 29)  # an entry of this test's own
    first = slice_manifest(heel_lift, printer, "pla", tmp_path / "a", process="fdm", settings=settings)[0]
    entry = _slice_entry(first.gcode.read_bytes())
    cached = entry / "plate.gcode"
    assert cached.stat().st_mode & 0o222 == 0  # written read-only
    data = cached.read_bytes()
    os.chmod(cached, 0o644)
    if damage == "truncated":
        cached.write_bytes(data[: len(data) // 2])
    else:
        middle = len(data) // 2
        cached.write_bytes(data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:])
    again = slice_manifest(heel_lift, printer, "pla", tmp_path / "b", process="fdm", settings=settings)[0]
    assert not again.cached and again.slicer_s > 0  # sliced again, not handed out
    assert read_estimates(again.gcode) == again.estimates == first.estimates  # a whole G-code: estimates at its end
    assert again.gcode.stat().st_size >= len(data) - 200  # the date line aside, as long as the first
    third = slice_manifest(heel_lift, printer, "pla", tmp_path / "c", process="fdm", settings=settings)[0]
    assert third.cached and third.gcode.read_bytes() == again.gcode.read_bytes()  # the rebuilt entry serves


@pytest.mark.integration
def test_copies_share_a_plate_and_multiply_the_estimates(prusa_slicer, heel_lift, printer, tmp_path):
    record = heel_lift.files[0]
    one = slice_copies(heel_lift.file("stl"), heel_lift.parts[0]["size_mm"], printer, "tpu", tmp_path / "one",
                       stl_sha256=record["sha256"], part="heel_lift")
    three = slice_copies(heel_lift.file("stl"), heel_lift.parts[0]["size_mm"], printer, "tpu", tmp_path / "three",
                         copies=3, stl_sha256=record["sha256"], part="heel_lift")
    assert len(three) == 1 and three[0].copies == 3
    assert three[0].estimates.filament_g == pytest.approx(3 * one[0].estimates.filament_g, rel=0.05)
    assert three[0].gcode.read_text().count("; printing object") >= 3


@pytest.mark.integration
def test_a_part_that_fits_only_turned_is_sliced_turned(prusa_slicer, tmp_path):
    import trimesh

    stl = tmp_path / "bar.stl"
    trimesh.creation.box((20, 130, 4)).export(stl)
    narrow = Printer("narrow", (150, 60, 100), materials=["pla"])
    result = slice_part(stl, (20, 130, 4), narrow, "pla", tmp_path / "bar.gcode")
    xs, ys = [], []
    for line in result.gcode.read_text().splitlines():
        if line.startswith("G1 ") and " E" in line:
            x, y = re.search(r" X([-\d.]+)", line), re.search(r" Y([-\d.]+)", line)
            if x and y:
                xs.append(float(x.group(1)))
                ys.append(float(y.group(1)))
    assert 0 <= min(xs) and max(xs) <= 150 and 0 <= min(ys) and max(ys) <= 60
    assert max(xs) - min(xs) > 125  # the 130 mm side runs along X


def cli(*args):
    return subprocess.run([sys.executable, "-m", "parametric.cli", *args], capture_output=True, text=True)


@pytest.mark.integration
def test_cli_slice_writes_gcode_and_estimates_in_the_manifest(prusa_slicer, tmp_path):
    store = tmp_path / "machines.json"
    MachineStore(store).add(Printer("mk3", (250, 210, 210), materials=["pla", "tpu"]))
    result = cli("slice", "heel_lift", "--set", "lift_height=12", "--machine", "mk3", "--quantity", "2",
                 "--store", str(store), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    manifest = json.loads(open(result.stdout.strip()).read())
    slicing = manifest["slicing"]
    assert slicing["machine"]["name"] == "mk3" and slicing["material"] == "tpu"
    assert slicing["plates"][0]["copies"] == 2
    estimates = slicing["estimates"]
    assert estimates["print_time_s"] > 0 and estimates["filament_g"] > 0 and estimates["cost"] > 0
    gcode = [f for f in manifest["files"] if f["format"] == "gcode"]
    assert gcode and (tmp_path / "out" / gcode[0]["filename"]).is_file()
    assert manifest["params"]["lift_height"] == 12


@pytest.mark.integration
def test_cli_slice_refuses_what_the_printer_cannot_make(prusa_slicer, tmp_path):
    store = tmp_path / "machines.json"
    MachineStore(store).add(Printer("mk3", (250, 210, 210), materials=["pla", "petg"]))
    unknown = cli("slice", "heel_lift", "--machine", "nope", "--store", str(store), "--out", str(tmp_path / "a"))
    assert unknown.returncode == 2 and "machine: no machine called 'nope'; known: mk3" in unknown.stderr
    unloaded = cli("slice", "heel_lift", "--machine", "mk3", "--store", str(store), "--out", str(tmp_path / "b"))
    assert unloaded.returncode == 2 and "mk3 has pla, petg loaded, not tpu" in unloaded.stderr
    too_long = cli("slice", "insole", "--machine", "mk3", "--material", "petg", "--store", str(store),
                   "--out", str(tmp_path / "c"))
    assert too_long.returncode == 2, too_long.stderr
    assert "insole: 270 mm long; the largest printer bed is 250 x 210 mm" in too_long.stderr  # each of the pair
    sheet = cli("slice", "bookcase", "--machine", "mk3", "--store", str(store), "--out", str(tmp_path / "d"))
    assert sheet.returncode == 2 and "template: bookcase has no printed parts" in sheet.stderr


@pytest.mark.integration
def test_different_parts_share_a_plate(prusa_slicer, heel_lift, printer, tmp_path):
    cap = render("leg_cap", {"leg_diameter": 20, "sleeve_depth": 8}, out_dir=tmp_path / "cap", formats=["stl"])
    items = [PlateItem(heel_lift.file("stl"), tuple(heel_lift.parts[0]["size_mm"]), 1, "heel_lift"),
             PlateItem(cap.file("stl"), tuple(cap.parts[0]["size_mm"]), 2, "leg_cap")]
    plate = slice_plate(items, printer, "tpu", tmp_path / "plate.gcode")
    alone = [slice_part(i.stl, i.size_mm, printer, "tpu", tmp_path / f"{i.part}.gcode", copies=i.copies)
             for i in items]
    assert plate.copies == 3 and plate.part == "heel_lift+leg_cap"
    assert plate.estimates.filament_g == pytest.approx(sum(r.estimates.filament_g for r in alone), rel=0.05)
    objects = {line.split(" id:")[0] for line in plate.gcode.read_text().splitlines()
               if line.startswith("; printing object")}
    assert len(objects) >= 2 and "--merge" in plate.command
    with pytest.raises(ValidationError) as caught:
        slice_plate([*items, PlateItem(heel_lift.file("stl"), (300, 20, 5), 1, "long")], printer, "tpu",
                    tmp_path / "x.gcode")
    assert caught.value.errors[0].message.startswith("long: 300 x 20 mm; the bed of mk3")


def test_extrusion_bounds_follow_absolute_relative_and_reset_extrusion(tmp_path):
    gcode = tmp_path / "moves.gcode"
    gcode.write_text("G90\nM82\nG92 E0\nG1 X10 Y10 F3000\nG1 X20 Y10 E1.0\nG1 X300 Y300\n"  # travel: not extrusion
                     "G92 E0\nG1 X300 Y300 E-1 ; retract\nG1 X30 Y40\nG1 X35 Y45 E0.5 ; after a reset\n"
                     ";LAYER_CHANGE\nM83\nG1 X5 Y5\nG1 X6 Y50 E0.2\nG1 X0 Y0 E-0.5\n")
    assert extrusion_bounds(gcode) == Bounds(5, 5, 35, 50)
    assert extrusion_bounds(gcode, layers=0) == Bounds(10, 10, 35, 45)  # what comes before the first layer change
    assert not Bounds(-2.75, 0, 252.76, 100).inside(250, 210) and Bounds(0.3, 0, 249.7, 209.9).inside(250, 210)


@pytest.mark.integration
@pytest.mark.parametrize(("size", "skirts"), [((248.8, 100, 3), 0), ((100, 209.5, 10), 1)],
                         ids=["insole-long: no room for a skirt", "bin-deep: turned, the skirt fits"])
def test_a_part_that_needs_the_whole_bed_is_printed_inside_the_bed(prusa_slicer, printer, tmp_path, size, skirts):
    import trimesh

    stl = tmp_path / "part.stl"
    trimesh.creation.box(size).export(stl)
    result = slice_part(stl, size, printer, "pla", tmp_path / "part.gcode")
    bounds = extrusion_bounds(result.gcode)  # every layer, not only the ones slice_plate checks
    assert bounds.inside(250, 210), bounds
    assert f"; skirts = {skirts}" in result.gcode.read_text()[-40000:]


@pytest.mark.integration
def test_copies_per_plate_keep_the_skirt_on_the_bed(prusa_slicer, printer, tmp_path):
    import trimesh

    stl = tmp_path / "tile.stl"
    trimesh.creation.box((120, 60, 2)).export(stl)
    # two 120 mm copies side by side (246 mm with the gap) would put the skirt off a 250 mm bed
    assert copies_per_plate((120, 60, 2), printer, False) == 3
    plates = slice_copies(stl, (120, 60, 2), printer, "pla", tmp_path, copies=6)
    assert [p.copies for p in plates] == [3, 3]
    for plate in plates:
        assert extrusion_bounds(plate.gcode).inside(250, 210)
        assert "; skirts = 1" in plate.gcode.read_text()[-40000:]


@pytest.mark.integration
def test_a_slicer_run_over_its_time_limit_is_stopped_as_a_fault_of_ours(prusa_slicer, heel_lift, printer, tmp_path,
                                                                         monkeypatch):
    """The real PrusaSlicer, given 50 ms for a plate that takes it longer: killed, a timeout fault that
    uses up an attempt (the same plate may take as long again), no G-code left behind."""
    from parametric.errors import infrastructure_fault
    from parametric.fdm.prusaslicer import SlicerTimeout

    monkeypatch.setenv("PARAMETRIC_SLICER_TIMEOUT_SECONDS", "0.05")
    record = heel_lift.files[0]
    with pytest.raises(SlicerTimeout, match="longer than 0.05 s") as caught:
        slice_part(heel_lift.directory / record["filename"], heel_lift.parts[0]["size_mm"], printer, "tpu",
                   tmp_path / "slow.gcode", copies=3, use_cache=False)
    fault = infrastructure_fault(caught.value)
    assert fault is not None and fault.kind == "timeout" and fault.counts_as_attempt
    assert not (tmp_path / "slow.gcode").exists()
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".gcode" or p.name.startswith(".slow")]


def test_a_missing_slicer_is_a_fault_of_the_machine_not_of_the_part(printer, tmp_path, monkeypatch):
    from parametric.errors import infrastructure_fault

    monkeypatch.setenv("PARAMETRIC_PRUSA_SLICER", "no-such-slicer")
    (tmp_path / "ok.stl").write_bytes(b"solid x\nendsolid x\n")
    with pytest.raises(SlicerError) as caught:
        slice_part(tmp_path / "ok.stl", (20, 20, 20), printer, "pla", tmp_path / "x.gcode")
    fault = infrastructure_fault(caught.value)
    assert fault is not None and fault.kind == "missing_tool" and not fault.counts_as_attempt
