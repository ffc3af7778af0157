"""The ``parametric`` command: the same contract as the Python API, for shells and scripts.

Exit status: 0 on success, 2 on invalid input (every bad field is printed with what is
allowed), 1 when the geometry kernel fails on accepted input.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import FieldError, GeometryError, ValidationError

EXIT_OK, EXIT_GEOMETRY, EXIT_INVALID = 0, 1, 2


def _parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    problems = []
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals or not name.strip():
            problems.append(FieldError(assignment, "write --set NAME=VALUE, e.g. --set width=32in"))
            continue
        values[name.strip()] = value.strip()
    if problems:
        raise ValidationError(problems)
    return values


def _parse_envelope(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    from .units import UnitError, to_mm

    try:
        sizes = tuple(to_mm(part) for part in text.lower().replace("×", "x").split("x"))
    except UnitError as error:
        raise ValidationError([FieldError("envelope", f"{error}; write X x Y x Z, e.g. 250x210x210")]) from None
    if len(sizes) != 3 or min(sizes) <= 0:
        raise ValidationError([FieldError("envelope", "three positive sizes in mm, e.g. 250x210x210")])
    return sizes  # type: ignore[return-value]


MACHINE_NOUNS = {"printer": "printer", "router": "CNC router"}


@dataclass
class MachineRequest:
    """What a command that makes a template on one machine was asked (``slice``, ``cam``, ``jobsheet``)."""

    template: Any
    values: dict[str, Any]
    machine: Any
    problems: Any  # a Problems collector: the command adds its own checks, then raises them all at once


def add_machine_arguments(parser: argparse.ArgumentParser, machine: str, material: str) -> None:
    """The arguments :func:`machine_request` reads: ``TEMPLATE --set --preset --machine --material --quantity
    --store``; ``machine`` and ``material`` are their help texts."""
    parser.add_argument("template")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", help="a parameter (repeatable)")
    parser.add_argument("--preset", help="start from a named preset")
    parser.add_argument("--machine", required=True, help=f"{machine} name (see `parametric machines list`)")
    parser.add_argument("--material", help=material)
    parser.add_argument("--quantity", type=int, default=1, help="how many of the product (default 1)")
    parser.add_argument("--store", metavar="FILE.json|URL", help="machines: a .json file or a database URL "
                        "(default: the web app's database, else output/machines.json)")


def machine_request(args: argparse.Namespace, kind: str | None = None) -> MachineRequest:
    """Read ``TEMPLATE --set ... --preset --machine --store --quantity``, collecting every problem.

    ``kind`` (``printer`` or ``router``) is the machine the command needs; another kind is a
    problem on ``machine`` and leaves ``machine`` unset.
    """
    from .errors import Problems
    from .machines import open_store
    from .registry import get_template

    template = get_template(args.template)
    values = _parse_assignments(args.set or [])
    problems = Problems()
    problems.check(template.resolve, values, args.preset)
    machine = problems.check(open_store(args.store).get, args.machine)
    if kind is not None and machine is not None and machine.kind != kind:
        problems.append(FieldError("machine", f"{args.machine} is a {machine.kind}, not a {MACHINE_NOUNS[kind]}"))
        machine = None
    if args.quantity < 1:
        problems.append(FieldError("quantity", f"{args.quantity} is out of range; allowed: 1 or more"))
    return MachineRequest(template, values, machine, problems)


def cmd_templates(args: argparse.Namespace) -> int:
    from .registry import templates

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
    from .registry import get_template

    print(json.dumps(get_template(args.template).schema(), indent=2, default=str))
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    from .export import ExportSettings
    from .registry import get_template
    from .render import default_out_dir, render

    template = get_template(args.template)
    values = _parse_assignments(args.set or [])
    envelope = _parse_envelope(args.envelope)
    settings = ExportSettings(tolerance=args.tolerance, angular_tolerance=args.angular_tolerance)
    out = args.out
    if out is None:  # validate first, then derive the folder from the cache key
        from .cache import cache_key

        canonical = template.resolve(values, args.preset).canonical()
        out = default_out_dir(template.id, cache_key(template.id, template.version, canonical, settings.as_dict()))
    manifest = render(template.id, values, out_dir=out, formats=args.formats, preset=args.preset,
                      material=args.material, envelope=envelope, settings=settings)
    print(manifest.path)
    fit = manifest.checks.get("fits_envelope")
    if fit and not fit["fits"]:
        print(f"warning: does not fit the envelope: {fit['reason']}", file=sys.stderr)
    return EXIT_OK


def build_parser(extra: Sequence[Callable[[Any], None]] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parametric", description="Parametric CAD templates to manufacturing files.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("templates", help="list the templates")
    listing.add_argument("--json", action="store_true", help="machine-readable list")
    listing.set_defaults(handler=cmd_templates)

    schema = commands.add_parser("schema", help="JSON Schema of a template's parameters, with units and presets")
    schema.add_argument("template")
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

    for add in extra:
        add(commands)
    return parser


BUILT_IN = ("templates", "schema", "render")
CORE_COMMANDS = {"gallery": "gallery", "machines": "machines", "slice": "slicing", "cam": "cam",
                 "jobsheet": "jobsheet", "send": "printers"}
"""Core sub-commands by name, and the module of the core that adds each (its ``add_command``)."""


def _extensions(wanted: str | None = None) -> list[Callable[[Any], None]]:
    """The sub-command adders to load for the command word ``wanted``.

    Only what the command needs is imported, so a cached ``parametric render`` stays fast: the
    built-ins need nothing, a core command its own module; help or an unknown word loads every
    core module and then the commands of installed packages. Layers above the core (the web
    app's ``serve``, ``worker``, ``users``) add commands through the ``parametric.commands``
    entry point group: each entry point is a function taking the sub-parser collection. The
    core never imports them by name.
    """
    if wanted in BUILT_IN:
        return []
    if wanted in CORE_COMMANDS:
        return [importlib.import_module(f".{CORE_COMMANDS[wanted]}", __package__).add_command]
    from importlib.metadata import entry_points

    commands = [importlib.import_module(f".{module}", __package__).add_command for module in CORE_COMMANDS.values()]
    plugins = list(entry_points(group="parametric.commands"))
    named = [entry_point for entry_point in plugins if entry_point.name == wanted]
    for entry_point in named or plugins:
        try:
            commands.append(entry_point.load())
        except Exception as error:  # a broken plugin must not take the core commands down with it
            print(f"warning: command {entry_point.name!r} unavailable: {error}", file=sys.stderr)
    return commands


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    wanted = next((word for word in arguments if not word.startswith("-")), None)
    parser = build_parser(_extensions(wanted))
    args = parser.parse_args(arguments)
    try:
        return args.handler(args)
    except ValidationError as error:
        subject = getattr(args, "template", None)
        print(f"error: invalid input{f' for {subject}' if subject else ''}:", file=sys.stderr)
        for problem in error.errors:
            print(f"  {problem.field or '(request)'}: {problem.message}", file=sys.stderr)
        return EXIT_INVALID
    except GeometryError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_GEOMETRY
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
