"""``parametric nest``: true-shape nesting of parts onto stock sheets.

Two kinds of input. Parts drawn in DXF files (``FILE.dxf[:COUNT]``): every file is read (all
problems gathered and reported at once, exit 2), the parts are nested by
:func:`parametric.batching.nest` (checked independently before anything is written), and per
sheet a DXF and pictures plus ``report.json`` go into ``--out``. Or templates
(``TEMPLATE[@PRESET][:COUNT]`` with ``--set`` and ``--machine``): they are rendered, their CNC
parts read from the B-rep and nested on the router's stock, one nest per material and thickness,
and :func:`parametric.batching.sheets.cut_sheets` also writes every sheet's G-code (checked by
rs274). Parts that fit no sheet are listed in the report and warned about; the command still
succeeds with the rest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import FieldError, Problems, ValidationError
from .common import EXIT_OK, STORE_HELP, parse_counted

DXF_SPACING_MM = 8.0
"""The default gap between DXF parts: a 6 mm end mill plus 2 mm."""
DXF_MARGIN_MM = 10.0


def parse_sheet(text: str) -> tuple[float, float]:
    """``LENGTHxWIDTH`` (mm unless a unit is given, e.g. ``96inx48in``) as (length, width) in mm."""
    from ..units import UnitError, to_mm

    try:
        sizes = tuple(to_mm(size) for size in text.lower().replace("×", "x").split("x"))
    except UnitError as error:
        raise ValidationError([FieldError("sheet", f"{error}; write LENGTH x WIDTH, e.g. 2440x1220")]) from None
    if len(sizes) != 2 or min(sizes) <= 0:
        raise ValidationError([FieldError("sheet", f"{text!r}: two positive sizes in mm, e.g. 2440x1220")])
    return sizes[0], sizes[1]


def parse_rotations(text: str) -> tuple[float, ...] | None:
    """``0,90,180,270`` (degrees) or ``free`` (any angle: ``None``)."""
    if text.strip().lower() == "free":
        return None
    try:
        turns = tuple(float(word) for word in text.split(",") if word.strip())
    except ValueError:
        turns = ()
    if not turns:
        raise ValidationError([FieldError("rotations", f"{text!r}: angles in degrees separated by commas, "
                                                       "e.g. 0,90,180,270, or free")])
    return turns


def is_drawing(text: str) -> bool:
    """Whether an input names a DXF drawing (``FILE.dxf[:COUNT]``) rather than a template."""
    name, colon, count = text.rpartition(":")
    name = name if colon and count.strip().isdigit() else text
    return name.lower().endswith(".dxf")


def _common_problems(args: argparse.Namespace, problems: Problems) -> None:
    for name, value in (("spacing", args.spacing), ("margin", args.margin)):
        if value is not None and value < 0:
            problems.append(FieldError(name, f"{value:g} mm is out of range; allowed: 0 mm or more"))
    if args.seconds <= 0:
        problems.append(FieldError("seconds", f"{args.seconds:g} is out of range; allowed: more than 0 s"))


def cmd_nest(args: argparse.Namespace) -> int:
    drawings = [is_drawing(text) for text in args.files]
    if all(drawings):
        if args.machine is not None:
            raise ValidationError([FieldError("machine", "G-code is written for templates, whose parts CAM can "
                                                         "read; DXF drawings are nested without a machine")])
        return _nest_drawings(args)
    if any(drawings):
        mixed = [text for text, drawing in zip(args.files, drawings, strict=True) if drawing]
        raise ValidationError([FieldError("files", f"{', '.join(mixed)}: give either DXF files or templates, "
                                                   "not both in one nest")])
    return _nest_templates(args)


def _nest_drawings(args: argparse.Namespace) -> int:
    from ..batching import GRAIN, Part, Sheet, nest
    from ..batching.outlines import outline_from_dxf
    from ..batching.output import write_layout

    problems = Problems()
    if args.sheet is None:
        problems.append(FieldError("sheet", "give the sheet size for DXF parts, e.g. --sheet 2440x1220"))
    sheet = problems.check(parse_sheet, args.sheet) if args.sheet is not None else None
    rotations = problems.check(parse_rotations, args.rotations)
    _common_problems(args, problems)
    for option in ("set", "material"):
        if getattr(args, option):
            problems.append(FieldError(option, f"--{option} is for templates; DXF parts are nested as drawn"))
    for option in ("batch", "url"):
        if getattr(args, option):
            problems.append(FieldError(option, f"--{option} is for templates on a machine, whose batch sheet it "
                                               "names; DXF drawings get no batch sheet"))
    spacing = DXF_SPACING_MM if args.spacing is None else args.spacing
    margin = DXF_MARGIN_MM if args.margin is None else args.margin
    counts: dict[str, int] = {}
    for text in args.files:
        found = problems.check(parse_counted, text)
        if found is not None:
            counts[found[0]] = counts.get(found[0], 0) + found[1]
    grain = set(args.grain or ())
    for name in grain - counts.keys():
        problems.append(FieldError("grain", f"{name} is not one of the files to nest"))
    parts = []
    for name, count in counts.items():
        outline = problems.check(outline_from_dxf, name)
        if outline is not None:
            parts.append(Part(name, outline, count, GRAIN if name in grain else rotations))
    if problems or sheet is None:
        raise ValidationError(problems)
    layout = nest(parts, Sheet(*sheet), spacing_mm=spacing, margin_mm=margin,
                  part_in_part=not args.no_part_in_part, seconds=args.seconds)
    write_layout(layout, parts, args.out)
    print(Path(args.out) / "report.json")
    placed = sum(len(entry.placements) for entry in layout.sheets)
    used = ", ".join(f"{entry.utilisation:.1%}" for entry in layout.sheets)
    print(f"{placed} part(s) on {len(layout.sheets)} sheet(s) of {sheet[0]:g} x {sheet[1]:g} mm "
          f"({layout.sheet_equivalents:.2f} sheet-equivalents; utilisation {used or '-'})", file=sys.stderr)
    if layout.remnant_mm is not None:
        print(f"remnant of the last sheet: {layout.remnant_mm[0]:.0f} x {layout.remnant_mm[1]:.0f} mm",
              file=sys.stderr)
    for entry in layout.unplaced:
        print(f"warning: {parts[entry.part].name} copy {entry.copy} not placed: {entry.reason}", file=sys.stderr)
    return EXIT_OK


def parse_template(text: str) -> tuple[str, str | None, int]:
    """``TEMPLATE[@PRESET][:COUNT]`` as (template, preset, count)."""
    name, count = parse_counted(text)
    template, _, preset = name.partition("@")
    return template.strip(), preset.strip() or None, count


def template_values(templates: list[Any], assignments: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each template's ``--set`` values: ``NAME=VALUE`` goes to every template with that field,
    ``TEMPLATE.NAME=VALUE`` to that template only."""
    by_id = {template.id: template for template in templates}
    values: dict[str, dict[str, Any]] = {template.id: {} for template in templates}
    problems = []
    for name, value in assignments.items():
        scope, dot, field = name.rpartition(".")
        if dot:
            if scope not in by_id:
                problems.append(FieldError(f"set {name}", f"{scope!r} is not one of the templates to nest; "
                                                          f"allowed: {', '.join(by_id)}"))
            else:
                values[scope][field] = value
            continue
        owners = [template.id for template in templates if name in template.Params.model_fields]
        if not owners:
            problems.append(FieldError(f"set {name}", f"none of {', '.join(by_id)} has a parameter {name!r}; "
                                                      "see `parametric schema TEMPLATE`"))
        for owner in owners:
            values[owner][name] = value
    if problems:
        raise ValidationError(problems)
    return values


def _nest_templates(args: argparse.Namespace) -> int:
    from ..batching.sheets import SheetItem, cut_sheets
    from ..machines import open_store
    from ..production import material_for
    from ..registry import get_template
    from ..render import render
    from ..units import format_duration
    from .common import parse_assignments

    problems = Problems()
    if args.machine is None:
        problems.append(FieldError("machine", "templates are nested on a router's stock: give --machine NAME "
                                              "(see `parametric machines list`)"))
    if args.grain:
        problems.append(FieldError("grain", "templates declare which of their parts have a grain; --grain is for "
                                            "DXF files"))
    sheet = problems.check(parse_sheet, args.sheet) if args.sheet is not None else None
    rotations = problems.check(parse_rotations, args.rotations)
    _common_problems(args, problems)
    router = None
    if args.machine is not None:
        router = problems.check(open_store(args.store).get, args.machine)
        if router is not None and router.kind != "router":
            problems.append(FieldError("machine", f"{args.machine} is a {router.kind}, not a CNC router"))
            router = None
    specs = []
    for text in args.files:
        spec = problems.check(parse_template, text)
        if spec is None:
            continue
        template = problems.check(get_template, spec[0])
        if template is not None:
            if spec[1] is not None and spec[1] not in template.presets:
                problems.append(FieldError(text, f"unknown preset {spec[1]!r} of {template.id}; allowed: "
                                                 f"{', '.join(template.presets) or 'none'}"))
                continue
            specs.append((template, spec[1], spec[2]))
    assignments = problems.check(parse_assignments, args.set or []) or {}
    values = problems.check(template_values, list({t.id: t for t, _, _ in specs}.values()), assignments) or {}
    chosen = []
    for template, preset, count in specs:
        material = problems.check(material_for, template, router, args.material, preset) if router else None
        params = problems.check(template.resolve, values.get(template.id, {}), preset)
        chosen.append((template, preset, count, material, params))
    if problems or router is None:
        raise ValidationError(problems)
    items = []
    for index, (template, preset, count, material, _) in enumerate(chosen):
        manifest = render(template.id, values.get(template.id, {}), preset=preset, material=material,
                          formats=["step"])
        items.append(SheetItem(manifest, count, None, str(index + 1)))
    job = cut_sheets(items, router, args.out, spacing_mm=args.spacing, margin_mm=args.margin,
                     rotations=rotations,
                     part_in_part=not args.no_part_in_part, seconds=args.seconds,
                     sheet_mm=sheet, verify=not args.no_verify, batch_ref=args.batch, batch_url=args.url)
    print(Path(args.out) / "report.json")
    for stock in job.layouts:
        layout = stock.layout
        used = ", ".join(f"{entry.utilisation:.1%}" for entry in layout.sheets)
        placed = sum(len(entry.placements) for entry in layout.sheets)
        print(f"{stock.material} {stock.thickness_mm:g} mm: {placed} part(s) on {len(layout.sheets)} sheet(s) of "
              f"{stock.sheet_mm[0]:g} x {stock.sheet_mm[1]:g} mm ({layout.sheet_equivalents:.2f} "
              f"sheet-equivalents; utilisation {used or '-'}; spacing {stock.spacing_mm:g} mm)", file=sys.stderr)
        if layout.remnant_mm is not None:
            print(f"  remnant of the last sheet: {layout.remnant_mm[0]:.0f} x {layout.remnant_mm[1]:.0f} mm",
                  file=sys.stderr)
    checked = " (checked by rs274)" if not args.no_verify else ""
    print(f"{len(job.sheets)} sheet program(s) for {router.name} ({router.dialect}){checked}: machining "
          f"{format_duration(job.machining_time_s)}", file=sys.stderr)
    for entry in job.unplaced:
        print(f"warning: {entry['label']} not placed: {entry['reason']}", file=sys.stderr)
    return EXIT_OK


def add_command(commands: Any) -> None:
    nesting = commands.add_parser("nest", help="nest parts (DXF drawings, or templates on a router) onto stock "
                                               "sheets by their true shape")
    nesting.add_argument("files", nargs="+", metavar="FILE.dxf[:COUNT] | TEMPLATE[@PRESET][:COUNT]",
                         help="a part's drawing (largest closed loop = outline, loops inside = holes) and copies; "
                              "or a template (with --machine) and how many of the product")
    nesting.add_argument("--sheet", metavar="LENGTHxWIDTH",
                         help="sheet size in mm, e.g. 2440x1220 (templates: default the router's stock)")
    nesting.add_argument("--spacing", type=float, default=None,
                         help=f"least gap between parts in mm: tool diameter plus a margin (DXF default "
                              f"{DXF_SPACING_MM:g}; templates: the outline cutter's diameter + 2)")
    nesting.add_argument("--margin", type=float, default=None,
                         help=f"border kept free at the sheet's edges in mm (default {DXF_MARGIN_MM:g})")
    nesting.add_argument("--machine", help="a router (see `parametric machines list`): nest templates on its "
                                           "stock and write each sheet's G-code")
    nesting.add_argument("--set", action="append", metavar="[TEMPLATE.]NAME=VALUE",
                         help="a template parameter, for every template that has it or for TEMPLATE only "
                              "(repeatable)")
    nesting.add_argument("--material", help="sheet material of the templates (default each template's)")
    nesting.add_argument("--store", metavar="FILE.json|URL", help=STORE_HELP)
    nesting.add_argument("--no-verify", action="store_true",
                         help="do not run LinuxCNC's rs274 on the sheets' G-code")
    nesting.add_argument("--rotations", default="0,90,180,270", metavar="0,90,180,270|free",
                         help="turns allowed in degrees (default quarter turns), or free")
    nesting.add_argument("--grain", action="append", metavar="FILE.dxf",
                         help="lock this file's parts to the grain: 0 or 180 degrees only (repeatable)")
    nesting.add_argument("--no-part-in-part", action="store_true", help="never put a part inside another's cut-out")
    nesting.add_argument("--seconds", type=float, default=20.0, help="time for the nesting engines (default 20)")
    nesting.add_argument("--batch", metavar="NAME",
                         help="templates: the batch's name on its batch sheet (default the folder's)")
    nesting.add_argument("--url", help="templates: the batch's address on the dashboard, for the batch sheet's QR "
                                       "code")
    nesting.add_argument("--out", type=Path, required=True,
                         help="output folder: sheet-N.dxf/.svg/.png (and G-code), report.json")
    nesting.set_defaults(handler=cmd_nest)
