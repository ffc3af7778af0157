"""``parametric templates``, ``schema`` and ``render``: the template engine from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_OK, STORE_HELP, parse_assignments, parse_envelope


def cmd_templates(args: argparse.Namespace) -> int:
    from ..registry import templates

    rows = [t.summary() for t in templates()]
    if args.json:
        print(json.dumps([{k: row[k] for k in ("id", "version", "name", "family", "process", "materials")}
                          for row in rows], indent=2))
        return EXIT_OK
    width = max(len(row["id"]) for row in rows)
    for row in rows:
        print(f"{row['id']:<{width}}  {row['version']:<7} {row['family']:<10} {'+'.join(row['process']):<8} "
              f"{row['name']}")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from ..registry import get_template

    stocked = None
    if args.stock:  # the sheet thicknesses the shop's routers stock, per material, on each sheet field
        from ..machines import open_store
        from ..routing import stocked_thicknesses

        stocked = stocked_thicknesses(open_store(args.store).all())
    print(json.dumps(get_template(args.template).schema(stocked), indent=2, default=str))
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    from ..export import ExportSettings
    from ..registry import get_template
    from ..render import default_out_dir, render

    template = get_template(args.template)
    values = parse_assignments(args.set or [])
    envelope = parse_envelope(args.envelope)
    settings = ExportSettings(tolerance=args.tolerance, angular_tolerance=args.angular_tolerance)
    out = args.out
    if out is None:  # validate first, then derive the folder from the cache key
        from ..cache import cache_key

        canonical = template.resolve(values, args.preset).canonical()
        out = default_out_dir(template.id, cache_key(template.id, template.version, canonical, settings.as_dict()))
    manifest = render(template.id, values, out_dir=out, formats=args.formats, preset=args.preset,
                      material=args.material, envelope=envelope, settings=settings)
    print(manifest.path)
    fit = manifest.checks.get("fits_envelope")
    if fit and not fit["fits"]:
        print(f"warning: does not fit the envelope: {fit['reason']}", file=sys.stderr)
    return EXIT_OK


def add_command(commands: Any) -> None:
    listing = commands.add_parser("templates", help="list the templates")
    listing.add_argument("--json", action="store_true", help="machine-readable list")
    listing.set_defaults(handler=cmd_templates)

    schema = commands.add_parser("schema", help="JSON Schema of a template's parameters, with units and presets")
    schema.add_argument("template")
    schema.add_argument("--stock", action="store_true",
                        help="say on each sheet thickness which choices the routers stock, per material (x-stocked)")
    schema.add_argument("--store", metavar="FILE.json|URL", help=STORE_HELP)
    schema.set_defaults(handler=cmd_schema)

    rendering = commands.add_parser("render", help="build, check and export one configuration")
    rendering.add_argument("template")
    rendering.add_argument("--set", action="append", metavar="NAME=VALUE",
                           help="a parameter; lengths may carry units (width=32in); repeatable")
    rendering.add_argument("--preset", help="start from a named preset")
    rendering.add_argument("--formats", help="comma-separated: step,stl,3mf,glb,svg,dxf (default step,stl,3mf,glb)")
    rendering.add_argument("--material", help="material id (default: the template's first)")
    rendering.add_argument("--envelope", help="machine envelope to check, e.g. 250x210x210 (mm or with units)")
    rendering.add_argument("--out", type=Path, help="output folder (default output/<template>/<key>)")
    rendering.add_argument("--tolerance", type=float, default=0.05, help="mesh chord tolerance in mm (default 0.05)")
    rendering.add_argument("--angular-tolerance", type=float, default=0.2, help="mesh angle tolerance in radians")
    rendering.set_defaults(handler=cmd_render)
