"""``parametric slice``, ``cam`` and ``jobsheet``: a template made on one machine, through the one production flow.

Each command reads its template, values and machine (:func:`~.common.machine_request`), collects
every problem at once, then calls :func:`parametric.production.produce`, the function the web
app's jobs call too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import FieldError, ValidationError
from ..units import format_duration
from .common import EXIT_GEOMETRY, EXIT_OK, add_machine_arguments, machine_request


def cmd_slice(args: argparse.Namespace) -> int:
    from ..fdm import PrintSettings, SlicerError, total_estimates
    from ..production import material_for, produce

    request = machine_request(args, "printer")
    template, printer, problems = request.template, request.machine, request.problems
    settings = PrintSettings(layer_height_mm=args.layer_height, infill_percent=args.infill,
                             perimeters=args.perimeters, supports=args.supports)
    material = None
    if printer is not None:
        problems.extend(settings.problems(printer))
        material = problems.check(material_for, template, printer, args.material, args.preset)
    if problems or printer is None or material is None:
        raise ValidationError(problems)
    try:
        made = produce(template.id, request.values, printer, args.out, preset=args.preset, material=material,
                       quantity=args.quantity, print_settings=settings)
    except SlicerError as error:
        print(f"error: slicing {template.id} failed: {error.reason}", file=sys.stderr)
        return EXIT_GEOMETRY
    total = total_estimates(made.slices)
    print(made.manifest.path)
    print(f"{len(made.slices)} plate(s) on {printer.name}: {format_duration(total.print_time_s)}, "
          f"{total.filament_g:.1f} g {material}, {total.filament_mm / 1000:.2f} m, cost {total.cost:.2f}",
          file=sys.stderr)
    return EXIT_OK


def cmd_cam(args: argparse.Namespace) -> int:
    from ..cnc import CamError, CamSettings, InterpreterError
    from ..production import material_for, produce

    request = machine_request(args, "router")
    template, router, problems = request.template, request.machine, request.problems
    material = None
    if router is not None:
        material = problems.check(material_for, template, router, args.material, args.preset)
        if args.deliver and router.connection() is None:
            problems.append(FieldError("deliver", f"{router.name} gets its G-code by download; it has no hot folder"))
    if problems or router is None or material is None:
        raise ValidationError(problems)
    settings = CamSettings(tab_count=args.tabs, tab_width_mm=args.tab_width, tab_height_mm=args.tab_height,
                           dogbones=not args.no_dogbones)
    try:
        made = produce(template.id, request.values, router, args.out, preset=args.preset, material=material,
                       quantity=args.quantity, cam_settings=settings)
    except CamError as error:
        print(f"error: {template.id} cannot be machined on {router.name}: {error}", file=sys.stderr)
        return EXIT_GEOMETRY
    except InterpreterError as error:
        print(f"error: LinuxCNC's interpreter refused the G-code of {template.id}: {error}", file=sys.stderr)
        return EXIT_GEOMETRY
    if args.deliver:
        from ..hosts import FileRecords, HostError, connector_for, default_records_path

        job_id = args.job or f"cam-{made.manifest.cache_key[:16]}"
        try:
            sent = connector_for(router, records=FileRecords(default_records_path(), router.name)).submit(
                made.programs(), job_id)
        except HostError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_GEOMETRY
        print(f"{job_id}: {len(sent.upload.files) if sent.upload else 0} file(s) {sent.state} "
              f"({router.connection().describe()})", file=sys.stderr)
    print(made.manifest.path)
    print(f"{len(made.cam)} part(s) on {router.name}: machining {format_duration(made.machine_time_s)} "
          f"({sum(r.copies for r in made.cam)} pieces)", file=sys.stderr)
    return EXIT_OK


def cmd_jobsheet(args: argparse.Namespace) -> int:
    from ..cnc import CamError
    from ..fdm import SlicerError
    from ..jobsheet import JobSheetError
    from ..production import SheetRequest, material_for, produce

    request = machine_request(args)
    template, machine, problems = request.template, request.machine, request.problems
    material = None
    if machine is not None:
        material = problems.check(material_for, template, machine, args.material, args.preset)
    for name in ("order", "item"):
        text = getattr(args, name)
        if text is not None and not (0 < len(text) <= 64 and text.isprintable()):
            problems.append(FieldError(name, "1 to 64 printable characters"))
    if problems or machine is None or material is None:
        raise ValidationError(problems)
    out = Path(args.out).resolve()
    sheet = SheetRequest(order_ref=args.order, item_ref=args.item or "1",
                         job_url=args.url)
    try:
        made = produce(template.id, request.values, machine, out, preset=args.preset, material=material,
                       quantity=args.quantity, sheet=sheet)
    except (SlicerError, CamError) as error:
        print(f"error: {template.id} cannot be made on {machine.name}: {error}", file=sys.stderr)
        return EXIT_GEOMETRY
    except JobSheetError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_GEOMETRY
    print(made.sheet.pdf or made.sheet.html)
    return EXIT_OK


def add_command(commands: Any) -> None:
    slicing = commands.add_parser("slice", help="render and slice a template's printed parts for a printer")
    add_machine_arguments(slicing, "printer", "filament (default: the template's first printing material)")
    slicing.add_argument("--layer-height", type=float, default=0.2, help="layer height in mm (default 0.2)")
    slicing.add_argument("--infill", type=float, default=15.0, help="infill in percent (default 15)")
    slicing.add_argument("--perimeters", type=int, default=2, help="walls (default 2)")
    slicing.add_argument("--supports", action="store_true", help="generate support material")
    slicing.add_argument("--out", type=Path, required=True, help="output folder")
    slicing.set_defaults(handler=cmd_slice)

    cam = commands.add_parser("cam", help="render and toolpath a template's flat parts for a CNC router")
    add_machine_arguments(cam, "router", "sheet material (default: the template's first CNC material)")
    cam.add_argument("--tabs", type=int, help="tabs per through cut (default: by size, 2 to 8)")
    cam.add_argument("--tab-width", type=float, default=8.0, help="tab width in mm (default 8)")
    cam.add_argument("--tab-height", type=float, default=3.0, help="tab height in mm (default 3)")
    cam.add_argument("--no-dogbones", action="store_true", help="leave inside corners rounded")
    cam.add_argument("--verify", action="store_true",
                     help="run every program through LinuxCNC's rs274 first (always done; kept for scripts)")
    cam.add_argument("--deliver", action="store_true", help="also put the G-code into the router's hot folder")
    cam.add_argument("--job", help="job id the delivered files are tagged with "
                                          "(default: from the item's cache key)")
    cam.add_argument("--out", type=Path, required=True, help="output folder (G-code and DXF under cnc/)")
    cam.set_defaults(handler=cmd_cam)

    sheet = commands.add_parser("jobsheet", help="make and document one item: slice or CAM, then an HTML and PDF "
                                                 "job sheet")
    add_machine_arguments(sheet, "printer or router",
                          "material (default: the template's first for the machine's process)")
    sheet.add_argument("--order", help="order reference printed on the sheet (default LOCAL-<key>)")
    sheet.add_argument("--item", help="item reference within the order (default 1)")
    sheet.add_argument("--url", help="the job's dashboard URL for the QR code (default: no QR code)")
    sheet.add_argument("--out", type=Path, required=True, help="output folder")
    sheet.set_defaults(handler=cmd_jobsheet)
