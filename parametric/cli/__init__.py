"""The ``parametric`` command: the same contract as the Python API, for shells and scripts.

One module per command group adds its sub-commands (``add_command``) and handles them: argparse,
printing and exit codes live here only; the core's domain modules return values and raise errors
in plain words.

Exit status: 0 on success, 2 on invalid input (every bad field is printed with what is
allowed), 1 when the geometry kernel, the slicer, CAM or a machine host fails on accepted input.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import GeometryError, ParametricError, ValidationError
from .common import EXIT_GEOMETRY, EXIT_INVALID

COMMANDS = {"templates": "render", "schema": "render", "render": "render", "gallery": "gallery",
            "machines": "machines", "slice": "manufacture", "cam": "manufacture", "jobsheet": "manufacture",
            "send": "send", "nest": "batching", "plate": "plating"}
"""The core's sub-commands by name, and the module of this package that adds each (its ``add_command``)."""


def build_parser(extra: Sequence[Callable[[Any], None]] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parametric", description="Parametric CAD templates to manufacturing files.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in extra:
        add(commands)
    return parser


def _extensions(wanted: str | None = None) -> list[Callable[[Any], None]]:
    """The sub-command adders to load for the command word ``wanted``.

    Only what the command needs is imported, so a cached ``parametric render`` stays fast: a
    core command loads its own module; help or an unknown word loads every core command module
    and then the commands of installed packages. Layers above the core (the web app's ``serve``,
    ``worker``, ``users``) add commands through the ``parametric.commands`` entry point group:
    each entry point is a function taking the sub-parser collection. The core never imports
    them by name.
    """
    if wanted in COMMANDS:
        return [importlib.import_module(f".{COMMANDS[wanted]}", __package__).add_command]
    from importlib.metadata import entry_points

    modules = dict.fromkeys(COMMANDS.values())
    commands = [importlib.import_module(f".{module}", __package__).add_command for module in modules]
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
        print(f"error: invalid input{f' for {subject}' if isinstance(subject, str) else ''}:", file=sys.stderr)
        for problem in error.errors:
            print(f"  {problem.field or '(request)'}: {problem.message}", file=sys.stderr)
        return EXIT_INVALID
    except GeometryError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_GEOMETRY
    except ParametricError as error:  # the slicer, CAM, rs274, a job sheet or a host failed on accepted input
        print(f"error: {error}", file=sys.stderr)
        return EXIT_GEOMETRY
    except KeyboardInterrupt:
        return 130
