"""Slice printed parts of the project's templates with the real PrusaSlicer and record what it says, as the
estimator's test data (``tests/parametric/fdm/data/template_slices.csv``).

Each printed template that prints in PLA is rendered at its default, its presets and a few values across
the ranges of its numeric fields; every printed part is sliced for one copy on the test printer (mk3,
250 x 210 x 210 mm, 0.4 mm nozzle) in PLA with the default print settings, as a quote slices it. The
file records the part's features (``parametric.fdm.estimator.part_features``) beside PrusaSlicer's
print time and filament, the profile's digest and the slicer's version, so a test can tell when the
recording no longer matches the slicer.

    .venv/bin/python scripts/record_template_slices.py [--out tests/parametric/fdm/data/template_slices.csv]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import parametric
from parametric.fdm import build_profile, estimate_part, profile_text, slicer_path
from parametric.fdm.estimator import part_features, profile_digest
from parametric.machines import Printer

PRINTER = Printer(name="mk3", build_volume_mm=(250, 210, 210), nozzle_diameter_mm=0.4, materials=["pla"])
MATERIAL = "pla"
SHARES = (0.15, 0.5, 0.85)
COLUMNS = ("template", "version", "configuration", "part", "printer", "material", "profile", "volume_cm3",
           "side_area_cm2", "flat_area_cm2", "height_mm", "footprint_cm2", "print_time_s", "filament_g", "slicer")


def configurations(template: Any) -> list[tuple[str, dict[str, Any]]]:
    """The default, each preset, and each of the first numeric fields at a few shares of its range."""
    found: list[tuple[str, dict[str, Any]]] = [("default", {})]
    found += [(f"preset {name}", dict(preset.params)) for name, preset in template.presets.items()]
    properties = template.schema()["properties"]
    numeric = [(name, p) for name, p in properties.items()
               if p.get("type") in ("number", "integer") and p.get("minimum") is not None
               and p.get("maximum") is not None][:3]
    for name, field in numeric:
        for share in SHARES:
            value = field["minimum"] + share * (field["maximum"] - field["minimum"])
            value = round(value) if field["type"] == "integer" else round(value, 1)
            found.append((f"{name}={value}", {name: value}))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="tests/parametric/fdm/data/template_slices.csv")
    parser.add_argument("--template", action="append", help="only this template (repeatable)")
    args = parser.parse_args()
    shown = subprocess.run([slicer_path(), "--help"], capture_output=True, text=True).stdout.splitlines()
    version = next((line.split(" ")[0] for line in shown if line.startswith("PrusaSlicer")), "PrusaSlicer")
    profile = profile_digest(profile_text(build_profile(PRINTER, MATERIAL)))
    rows = []
    templates = [t for t in parametric.templates() if t.process == ("fdm",) and MATERIAL in t.materials]
    for template in templates:
        if args.template and template.id not in args.template:
            continue
        for label, params in configurations(template):
            with tempfile.TemporaryDirectory() as folder:
                try:
                    manifest = parametric.render(template.id, params, out_dir=folder, formats=["stl"],
                                                 material=MATERIAL, cache=None)
                except (parametric.ValidationError, parametric.GeometryError) as error:
                    print(f"{template.id} {label}: skipped ({error})", file=sys.stderr)
                    continue
                for part in manifest.parts:
                    stl = manifest.file("stl", part["name"])
                    try:
                        result = estimate_part(stl, part["size_mm"], PRINTER, MATERIAL, part=part["name"])
                    except (parametric.ValidationError, parametric.ParametricError) as error:
                        print(f"{template.id} {label} {part['name']}: not sliced ({error})", file=sys.stderr)
                        continue
                    features = part_features(stl, part["size_mm"]).to_dict()
                    rows.append({"template": template.id, "version": template.version, "configuration": label,
                                 "part": part["name"], "printer": PRINTER.name, "material": MATERIAL,
                                 "profile": profile, **features,
                                 "print_time_s": result.estimates.print_time_s,
                                 "filament_g": result.estimates.filament_g, "slicer": version})
                    print(f"{template.id} {label} {part['name']}: {result.estimates.print_time_s:.0f} s, "
                          f"{result.estimates.filament_g:.2f} g {json.dumps(features)}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} slices in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
