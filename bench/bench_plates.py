"""Plate benchmark: copies per plate packed by us against PrusaSlicer's own ``--duplicate`` maximum for the same
part, bed and profile, measured in the same run; and a plate of mixed orders.

- Copies per plate (250 x 210 mm bed, 6 mm spacing = PrusaSlicer's ``duplicate_distance``): PrusaSlicer's
  maximum is bisected with ``--duplicate N`` (the largest N it slices), and also the largest N whose G-code keeps
  every extrusion on the bed (its arrange ignores the skirt, so a full plate runs the skirt off the bed). Ours is
  the largest N the packer puts on one plate, then sliced with ``--dont-arrange`` and checked object by object.
  Both with the project's profile (a skirt 3 mm out) and without a skirt. Target: ours >= 95 % of PrusaSlicer's.
- Mixed orders: drawer pulls, leg caps, name plates and a 40 x 30 block from several "orders" on shared plates:
  plates, objects, bed utilisation, PrusaSlicer's time and filament per plate, and our time against the slicer's.

The machine is shared: times are indicative, counts are not.

    python bench/bench_plates.py [--parts 40x30x5,20x20x5,60x40x5] [--skip-mixed]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import trimesh

from parametric.fdm import PLATE_SPACING_MM, PlateSource, PrintSettings, make_plates
from parametric.fdm.footprint import footprint
from parametric.fdm.gcode import extrusion_bounds
from parametric.fdm.packing import PrintPart, pack_plates
from parametric.fdm.profile import border_mm, build_profile, profile_text
from parametric.fdm.prusaslicer import slicer_path
from parametric.machines import Printer

PRINTER = Printer(name="mk3", build_volume_mm=(250, 210, 210), nozzle_diameter_mm=0.4, materials=["pla"])
TARGET = 0.95


def block(x: float, y: float, z: float) -> trimesh.Trimesh:
    mesh = trimesh.creation.box((x, y, z))
    mesh.apply_translation((x / 2, y / 2, z / 2))
    return mesh


def prusaslicer_duplicates(stl: Path, profile: Path, folder: Path, count: int) -> tuple[bool, bool]:
    """(PrusaSlicer sliced ``count`` copies, and every extrusion of its G-code is on the bed)."""
    gcode = folder / f"dup-{count}.gcode"
    completed = subprocess.run([slicer_path(), "--loglevel", "1", "--load", str(profile), "--export-gcode",
                                "--duplicate", str(count), "-o", str(gcode), str(stl)], capture_output=True,
                               text=True, stdin=subprocess.DEVNULL)
    if completed.returncode != 0:
        return False, False
    bounds = extrusion_bounds(gcode, layers=2)
    gcode.unlink()
    return True, bounds is not None and bounds.inside(*PRINTER.build_volume_mm[:2])


def prusaslicer_maximum(stl: Path, profile: Path, folder: Path, ceiling: int) -> tuple[int, int]:
    """PrusaSlicer's largest N it slices (bisected), and the largest N at or below it whose G-code stays on the bed
    (counted down: it is not monotonic, its arrangement spreads out as N grows)."""
    low, high = 1, ceiling
    while low < high:
        middle = (low + high + 1) // 2
        if prusaslicer_duplicates(stl, profile, folder, middle)[0]:
            low = middle
        else:
            high = middle - 1
    on_bed = 0
    for count in range(low, 0, -1):
        if prusaslicer_duplicates(stl, profile, folder, count)[1]:
            on_bed = count
            break
    return low, on_bed


def our_maximum(part: PrintPart, border: float) -> int:
    """The most copies our packer puts on one plate."""
    many = PrintPart(part.name, part.footprint, 200, part.height_mm)
    layout = pack_plates([many], PRINTER, spacing_mm=PLATE_SPACING_MM, border_mm=border, seconds=2)
    return len(layout.sheets[0].placements)


def copies_case(size: tuple[float, float, float], skirt: bool, folder: Path) -> dict:
    settings = PrintSettings()
    mesh = block(*size)
    stl = folder / "part.stl"
    mesh.export(stl)
    profile = folder / f"profile-{skirt}.ini"
    profile.write_text(profile_text(build_profile(PRINTER, "pla", settings, skirt=skirt)))
    border = border_mm(PRINTER, settings, skirt=skirt)
    ceiling = int(PRINTER.build_volume_mm[0] * PRINTER.build_volume_mm[1] // (size[0] * size[1])) + 1
    started = time.perf_counter()
    theirs, theirs_on_bed = prusaslicer_maximum(stl, profile, folder, ceiling)
    theirs_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = our_maximum(PrintPart("part", footprint(mesh), 1, size[2]), border)
    ours_s = time.perf_counter() - started
    # the plate is sliced for real and its G-code checked (every object where placed, all on the bed)
    run = make_plates([PlateSource("part.stl", "part", mesh, ours, "pla")], PRINTER, folder / f"ours-{skirt}",
                      settings=settings, skirt=skirt, seconds=2)
    sliced = len(run.plates) == 1 and len(run.plates[0].layout.placements) == ours
    name = f"{size[0]:g}x{size[1]:g} mm, {'skirt' if skirt else 'no skirt'}"
    ratio = ours / theirs
    print(f"{name:<26} PrusaSlicer --duplicate max {theirs:>3} (on the bed: {theirs_on_bed:>3}, {theirs_s:5.1f} s)  "
          f"ours {ours:>3} ({ours_s:4.1f} s; sliced and checked: {'yes' if sliced else 'NO'})  "
          f"ours/PrusaSlicer {ratio:6.1%} (target >= {TARGET:.0%}: {'met' if ratio >= TARGET else 'NOT met'}); "
          f"against its on-bed plates {ours / max(theirs_on_bed, 1):6.1%}", flush=True)
    return {"part": name, "theirs": theirs, "theirs_on_bed": theirs_on_bed, "ours": ours, "sliced": sliced}


def mixed_case(folder: Path) -> None:
    from parametric import render
    from parametric.fdm.footprint import read_mesh

    orders = [("drawer_pull", {}, 6), ("leg_cap", {}, 8), ("name_plate", {"text": "ADA"}, 2),
              ("name_plate", {"text": "LOVELACE"}, 1), ("leg_cap", {"leg_diameter": "30"}, 4)]
    sources = []
    for number, (template, params, count) in enumerate(orders, start=1):
        manifest = render(template, params, out_dir=folder / f"order-{number}", formats=["stl"], material="pla")
        for part in manifest.parts:
            record = next(r for r in manifest.files if r["format"] == "stl" and r["part"] == part["name"])
            label = f"order-{number}/{template}:{part['name']}"
            sources.append(PlateSource(label, f"{number}:{part['name']}",
                                       read_mesh(manifest.directory / record["filename"], label),
                                       part["quantity"] * count, "pla"))
    sources.append(PlateSource("order-6/block.stl", "6:block", block(40, 30, 5), 10, "pla"))
    started = time.perf_counter()
    run = make_plates(sources, PRINTER, folder / "mixed", seconds=3)
    total_s = time.perf_counter() - started
    slicer_s = sum(plate.result.slicer_s for plate in run.plates)
    copies = sum(source.count for source in sources)
    print(f"mixed orders: {copies} copies of {len(sources)} parts from 6 orders on {len(run.plates)} plate(s); "
          f"{len(run.unplaced)} unplaced; {total_s:.1f} s in all, PrusaSlicer {slicer_s:.1f} s, "
          f"ours {total_s - slicer_s:.1f} s (packing, placing meshes, checks, pictures)")
    for plate in run.plates:
        estimates = plate.result.estimates
        orders_on = sorted({sources[plate.sources[entry.part]].file.split("/")[0]
                            for entry in plate.layout.placements})
        print(f"  plate {plate.index}: {len(plate.layout.placements)} objects from {len(orders_on)} orders, "
              f"{plate.layout.utilisation:.1%} of the bed, PrusaSlicer: {estimates.print_time_s / 3600:.2f} h, "
              f"{estimates.filament_g:.1f} g")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="40x30x5,20x20x5,60x40x5")
    parser.add_argument("--skip-mixed", action="store_true")
    args = parser.parse_args()
    print("Copies per plate on a 250 x 210 mm bed, 6 mm spacing (machine shared: times indicative)", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-plates-") as scratch:
        folder = Path(scratch)
        for text in args.parts.split(","):
            size = tuple(float(v) for v in text.split("x"))
            for skirt in (True, False):
                copies_case(size, skirt, folder)  # type: ignore[arg-type]
        if not args.skip_mixed:
            mixed_case(folder)


if __name__ == "__main__":
    main()
