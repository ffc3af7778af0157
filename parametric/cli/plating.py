"""``parametric plate``: printed parts of any STL files and templates packed onto as few plates of one printer as
it takes, each plate sliced once with PrusaSlicer keeping our positions (:func:`parametric.fdm.make_plates`).

Inputs are ``FILE.stl[:COUNT]`` (any STL, 3MF, OBJ or PLY mesh, printed lying as it is modelled) and
``TEMPLATE[:COUNT]`` (rendered through the one production flow with ``--set``: ``NAME=VALUE`` for every template
given, ``TEMPLATE.NAME=VALUE`` for one). Bad options exit 2 before anything is made. A file that cannot be read,
or a part that cannot go on the printer, is listed in ``report.json``'s ``unplaced`` with its reason and warned
about; the rest are still plated.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import FieldError, Problems, ValidationError
from .common import EXIT_INVALID, EXIT_OK, STORE_HELP, parse_assignments, parse_counted

MESH_SUFFIXES = (".stl", ".3mf", ".obj", ".ply")


def _is_mesh_file(name: str) -> bool:
    return name.lower().endswith(MESH_SUFFIXES) or Path(name).is_file()


def _values_for(template_id: str, assignments: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """``--set`` values for one template: the unscoped ones and those scoped ``TEMPLATE.NAME``."""
    values = {}
    for name, value in assignments.items():
        scope, dot, field = name.partition(".")
        if dot and scope in known:
            if scope == template_id:
                values[field] = value
        else:
            values[name] = value
    return values


def cmd_plate(args: argparse.Namespace) -> int:
    from ..fdm import PrintSettings
    from ..fdm.footprint import read_mesh
    from ..fdm.plates import PlateSource, make_plates
    from ..machines import open_store
    from ..production import parts_for, render_for
    from ..registry import get_template
    from ..units import format_duration

    problems = Problems()
    printer = problems.check(open_store(args.store).get, args.machine)
    if printer is not None and printer.kind != "printer":
        problems.append(FieldError("machine", f"{args.machine} is a {printer.kind}, not a printer"))
        printer = None
    if args.spacing < 0:
        problems.append(FieldError("spacing", f"{args.spacing:g} mm is out of range; allowed: 0 mm or more"))
    if args.seconds <= 0:
        problems.append(FieldError("seconds", f"{args.seconds:g} is out of range; allowed: more than 0 s"))
    settings = PrintSettings(layer_height_mm=args.layer_height, infill_percent=args.infill,
                             brim_width_mm=args.brim)
    if printer is not None:
        problems.extend(settings.problems(printer))
    assignments = problems.check(parse_assignments, args.set or []) or {}
    files: dict[str, int] = {}
    templates: dict[str, int] = {}
    for text in args.parts:
        found = problems.check(parse_counted, text)
        if found is None:
            continue
        name, count = found
        if _is_mesh_file(name):
            files[name] = files.get(name, 0) + count
        elif problems.check(get_template, name) is not None:
            templates[name] = templates.get(name, 0) + count
    scopes = {name.partition(".")[0] for name in assignments if "." in name}
    for scope in scopes - templates.keys():
        given = ", ".join(templates) or "none"
        problems.append(FieldError("set", f"{scope}: not one of the templates given ({given})"))
    if files and printer is not None and args.material is None and not printer.materials:
        problems.append(FieldError("material", f"{printer.name} has no filament loaded; give --material"))
    if problems or printer is None:
        raise ValidationError(problems)

    sources: list[PlateSource] = []
    unreadable: list[dict[str, Any]] = []
    for name, count in files.items():
        try:
            mesh = read_mesh(name)
        except ValidationError as error:
            reason = "; ".join(problem.message for problem in error.errors)
            unreadable.extend({"file": name, "copy": copy, "reason": f"{name} {reason}"}
                              for copy in range(1, count + 1))
            print(f"error: {name} {reason}; its {count} cop{'y is' if count == 1 else 'ies are'} left off",
                  file=sys.stderr)
            continue
        sources.append(PlateSource(name, Path(name).stem, mesh, count, args.material or printer.materials[0]))
    known = set(templates)
    for index, (template_id, count) in enumerate(templates.items(), start=1):
        manifest, material = render_for(template_id, _values_for(template_id, assignments, known), printer,
                                        Path(args.out) / "parts" / template_id, material=args.material)
        for part in parts_for(manifest, printer):
            record = next(r for r in manifest.files if r["format"] == "stl" and r["part"] == part["name"])
            label = f"{template_id}:{part['name']}"
            sources.append(PlateSource(label, part["name"], read_mesh(manifest.directory / record["filename"], label),
                                       int(part["quantity"]) * count, material, manifest=manifest,
                                       part=part["name"], item_ref=str(index)))
    if not sources:
        print("error: nothing to plate: no input could be read", file=sys.stderr)
        return EXIT_INVALID
    run = make_plates(sources, printer, args.out, spacing_mm=args.spacing, settings=settings,
                      skirt=not args.no_skirt, seconds=args.seconds, left_off=unreadable, batch_ref=args.batch,
                      batch_url=args.url)
    print(run.report_path)
    for plate in run.plates:
        estimates = plate.result.estimates
        print(f"plate {plate.index}: {len(plate.layout.placements)} object(s), {plate.layout.utilisation:.0%} of the "
              f"bed, {format_duration(estimates.print_time_s)}, {estimates.filament_g:.1f} g {plate.material} "
              f"({plate.result.gcode.name})", file=sys.stderr)
    for entry in run.report["unplaced"][len(unreadable):]:
        print(f"warning: {entry['file']} copy {entry['copy']} not placed: {entry['reason']}", file=sys.stderr)
    return EXIT_OK if run.plates else EXIT_INVALID


def add_command(commands: Any) -> None:
    from ..fdm import PLATE_SPACING_MM

    plate = commands.add_parser("plate", help="pack printed parts of STL files and templates onto shared plates of "
                                              "one printer, each sliced once")
    plate.add_argument("parts", nargs="+", metavar="FILE.stl[:COUNT]|TEMPLATE[:COUNT]",
                       help="a mesh file (printed lying as modelled) or a template, and how many copies")
    plate.add_argument("--machine", required=True, help="printer name (see `parametric machines list`)")
    plate.add_argument("--set", action="append", metavar="[TEMPLATE.]NAME=VALUE",
                       help="a template parameter, for every template or one (repeatable)")
    plate.add_argument("--material", help="filament (default: the template's, and the printer's first loaded for "
                                          "files)")
    plate.add_argument("--spacing", type=float, default=PLATE_SPACING_MM,
                       help=f"least gap between objects in mm (default {PLATE_SPACING_MM:g}, PrusaSlicer's)")
    plate.add_argument("--no-skirt", action="store_true", help="no skirt: objects may go up to the bed's edges")
    plate.add_argument("--brim", type=float, default=0.0, help="brim width in mm (default 0)")
    plate.add_argument("--layer-height", type=float, default=0.2, help="layer height in mm (default 0.2)")
    plate.add_argument("--infill", type=float, default=15.0, help="infill in percent (default 15)")
    plate.add_argument("--seconds", type=float, default=5.0,
                       help="time for the true-shape packing engine per plate (default 5)")
    plate.add_argument("--store", metavar="FILE.json|URL", help=STORE_HELP)
    plate.add_argument("--batch", metavar="NAME", help="the batch's name on its batch sheet (default the folder's)")
    plate.add_argument("--url", help="the batch's address on the dashboard, for the batch sheet's QR code")
    plate.add_argument("--out", type=Path, required=True,
                       help="output folder: plate-N.gcode, plate-N.png, batch-sheet.html and .pdf, report.json")
    plate.set_defaults(handler=cmd_plate)
