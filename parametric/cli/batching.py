"""``parametric nest``: true-shape nesting of parts drawn in DXF files onto stock sheets.

Every file is read (all problems gathered and reported at once, exit 2), the parts are nested
by :func:`parametric.batching.nest` (checked independently before anything is written), and
per sheet a DXF and pictures plus ``report.json`` go into ``--out``. Parts that fit no sheet
are listed in the report and warned about; the command still succeeds with the rest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import FieldError, Problems, ValidationError
from .common import EXIT_OK


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


def parse_file(text: str) -> tuple[str, int]:
    """``FILE.dxf[:COUNT]`` as (file, count)."""
    name, colon, count = text.rpartition(":")
    if colon and count.strip().isdigit():
        if int(count) < 1:
            raise ValidationError([FieldError(text, f"{count} copies is out of range; allowed: 1 or more")])
        return name, int(count)
    return text, 1


def cmd_nest(args: argparse.Namespace) -> int:
    from ..batching import GRAIN, Part, Sheet, nest
    from ..batching.outlines import outline_from_dxf
    from ..batching.output import write_layout

    problems = Problems()
    sheet = problems.check(parse_sheet, args.sheet)
    rotations = problems.check(parse_rotations, args.rotations)
    for name, value in (("spacing", args.spacing), ("margin", args.margin)):
        if value < 0:
            problems.append(FieldError(name, f"{value:g} mm is out of range; allowed: 0 mm or more"))
    if args.seconds <= 0:
        problems.append(FieldError("seconds", f"{args.seconds:g} is out of range; allowed: more than 0 s"))
    counts: dict[str, int] = {}
    for text in args.files:
        found = problems.check(parse_file, text)
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
    layout = nest(parts, Sheet(*sheet), spacing_mm=args.spacing, margin_mm=args.margin,
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


def add_command(commands: Any) -> None:
    nesting = commands.add_parser("nest", help="nest parts drawn in DXF files onto stock sheets (true shape)")
    nesting.add_argument("files", nargs="+", metavar="FILE.dxf[:COUNT]",
                         help="a part's drawing (largest closed loop = outline, loops inside = holes) and copies")
    nesting.add_argument("--sheet", required=True, metavar="LENGTHxWIDTH", help="sheet size in mm, e.g. 2440x1220")
    nesting.add_argument("--spacing", type=float, default=8.0,
                         help="least gap between parts in mm: tool diameter plus a margin (default 8)")
    nesting.add_argument("--margin", type=float, default=10.0, help="border kept free at the sheet's edges in mm "
                                                                    "(default 10)")
    nesting.add_argument("--rotations", default="0,90,180,270", metavar="0,90,180,270|free",
                         help="turns allowed in degrees (default quarter turns), or free")
    nesting.add_argument("--grain", action="append", metavar="FILE.dxf",
                         help="lock this file's parts to the grain: 0 or 180 degrees only (repeatable)")
    nesting.add_argument("--no-part-in-part", action="store_true", help="never put a part inside another's cut-out")
    nesting.add_argument("--seconds", type=float, default=20.0, help="time for the nesting engines (default 20)")
    nesting.add_argument("--out", type=Path, required=True, help="output folder: sheet-N.dxf/.svg/.png, report.json")
    nesting.set_defaults(handler=cmd_nest)
