"""What the commands share: ``--set`` parsing, the machine arguments, exit codes, the store option."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import FieldError, ValidationError

EXIT_OK, EXIT_GEOMETRY, EXIT_INVALID = 0, 1, 2
STORE_HELP = ("machines: a .json file or a database URL "
              "(default: the web app's database, else output/machines.json)")


def parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
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


def parse_envelope(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    from ..units import UnitError, to_mm

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
    parser.add_argument("--store", metavar="FILE.json|URL", help=STORE_HELP)


def machine_request(args: argparse.Namespace, kind: str | None = None) -> MachineRequest:
    """Read ``TEMPLATE --set ... --preset --machine --store --quantity``, collecting every problem.

    ``kind`` (``printer`` or ``router``) is the machine the command needs; another kind is a
    problem on ``machine`` and leaves ``machine`` unset.
    """
    from ..errors import Problems
    from ..machines import open_store
    from ..registry import get_template

    template = get_template(args.template)
    values = parse_assignments(args.set or [])
    problems = Problems()
    problems.check(template.resolve, values, args.preset)
    machine = problems.check(open_store(args.store).get, args.machine)
    if kind is not None and machine is not None and machine.kind != kind:
        problems.append(FieldError("machine", f"{args.machine} is a {machine.kind}, not a {MACHINE_NOUNS[kind]}"))
        machine = None
    if args.quantity < 1:
        problems.append(FieldError("quantity", f"{args.quantity} is out of range; allowed: 1 or more"))
    return MachineRequest(template, values, machine, problems)


def parse_counted(text: str) -> tuple[str, int]:
    """An input with an optional count, ``NAME[:COUNT]`` (``side.dxf:4``, ``bookcase:2``), as (name, count)."""
    name, colon, count = text.rpartition(":")
    if colon and count.strip().isdigit():
        if int(count) < 1:
            raise ValidationError([FieldError(text, f"{count} copies is out of range; allowed: 1 or more")])
        return name, int(count)
    return text, 1
