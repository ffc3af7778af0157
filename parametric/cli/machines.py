"""``parametric machines``: list, show, add and remove the printers and routers parts are made on."""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any

from ..errors import FieldError, ValidationError
from ..machines import (
    FEEDS_SPEC,
    STOCK_SPEC,
    TOOL_SPEC,
    machine_from_dict,
    machine_to_dict,
    open_store,
    printer_record,
    router_record,
)


def _load_record(path: Path) -> Any:
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise ValidationError([FieldError("file", f"cannot read {path}: {error.strerror}")]) from None
    try:
        return tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise ValidationError([FieldError("file", f"{path} is not valid {path.suffix[1:].upper()}: {error}")]) from None


def _host_options(args: argparse.Namespace) -> tuple[str | None, dict[str, str]]:
    """The printer's host from ``--host PROTOCOL --host-setting NAME=VALUE ...``, or from ``--octoprint URL
    --api-key KEY`` (the options from before hosts had protocols)."""
    settings: dict[str, str] = {}
    for index, text in enumerate(args.host_setting or []):
        name, equals, value = text.partition("=")
        if not equals or not name.strip():
            raise ValidationError([FieldError(f"host_setting[{index}]", f"{text!r}: write NAME=VALUE, "
                                                                        "e.g. url=http://octopi.local")])
        settings[name.strip()] = value
    if args.octoprint or args.api_key:
        if args.host not in (None, "octoprint") or settings:
            raise ValidationError([FieldError("host", "give either --octoprint URL --api-key KEY or --host PROTOCOL "
                                                      "--host-setting NAME=VALUE, not both")])
        return "octoprint", {"url": args.octoprint or "", "api_key": args.api_key or ""}
    return args.host, settings


def cmd_machines(args: argparse.Namespace) -> int:
    if args.action == "hosts":
        _list_hosts()
        return 0
    store = open_store(args.store)
    if args.action == "list":
        machines = store.all()
        if args.json:
            print(json.dumps([machine_to_dict(m) for m in machines], indent=2))
        elif not machines:
            print(f"no machines in {store.location}; add one with `parametric machines add printer|router NAME ...`")
        for machine in machines if not args.json else []:
            print(machine.describe())
        return 0
    if args.action == "show":
        print(json.dumps(machine_to_dict(store.get(args.name)), indent=2))
        return 0
    if args.action == "remove":
        store.remove(args.name)
        print(f"removed {args.name}")
        return 0
    # add
    if args.kind == "file":
        record = _load_record(Path(args.path))
    elif args.kind == "printer":
        host, settings = _host_options(args)
        record = printer_record(args.name, build_volume=args.volume, nozzle_mm=args.nozzle,
                                materials=args.material or [], filament_mm=args.filament, gcode_flavor=args.flavor,
                                host=host, host_settings=settings)
    else:
        record = router_record(args.name, bed=args.bed, dialect=args.dialect, tools=args.tool or [],
                               stock=args.stock or [], feeds=args.feeds or [], hot_folder=args.hot_folder,
                               safe_height_mm=args.safe_height, rapid_mm_min=args.rapid)
    machine = machine_from_dict(record)
    store.add(machine, replace=args.replace)
    print(machine.describe())
    return 0


def _list_hosts() -> None:
    """Each installed host connector: its protocol, what it drives, its settings and what it can do."""
    from ..hosts import CAPABILITY_TEXT, connectors

    for protocol, cls in connectors().items():
        print(f"{protocol}: {cls.label} ({', '.join(cls.machine_kinds)}) - {cls.description}")
        for setting in cls.FIELDS:
            flags = ", ".join(word for word, on in (("required", setting.required), ("secret", setting.secret)) if on)
            print(f"  {setting.name} ({setting.kind}{f', {flags}' if flags else ''}): {setting.help}")
        can = [text for capability, text in CAPABILITY_TEXT.items() if capability in cls.CAPABILITIES]
        print(f"  can: {', '.join(can) or 'nothing more'}")


def add_command(commands: Any) -> None:
    machines = commands.add_parser("machines", help="the printers and CNC routers parts are made on")
    machines.add_argument("--store", metavar="FILE.json|URL",
                          help="where machines are kept: a .json file or a database URL (default: "
                               "$PARAMETRIC_MACHINES, else the web app's database when it is installed, "
                               "else output/machines.json)")
    actions = machines.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list the machines")
    listing.add_argument("--json", action="store_true", help="full records as JSON")
    show = actions.add_parser("show", help="one machine's full record as JSON")
    show.add_argument("name")
    actions.add_parser("hosts", help="the installed host connectors, their settings and what they can do")
    remove = actions.add_parser("remove", help="remove a machine")
    remove.add_argument("name")

    add = actions.add_parser("add", help="add a printer, a router, or a machine from a JSON/TOML file")
    kinds = add.add_subparsers(dest="kind", required=True, metavar="KIND")
    printer = kinds.add_parser("printer", help="an FDM printer")
    printer.add_argument("name")
    printer.add_argument("--volume", required=True, help="build volume X x Y x Z, e.g. 250x210x210")
    printer.add_argument("--nozzle", type=float, default=0.4, help="nozzle diameter in mm (default 0.4)")
    printer.add_argument("--material", action="append", help="a loaded filament, e.g. pla (repeatable)")
    printer.add_argument("--filament", type=float, default=1.75, help="filament diameter in mm (default 1.75)")
    printer.add_argument("--flavor", default="marlin2", help="G-code flavor (default marlin2)")
    printer.add_argument("--octoprint", metavar="URL", help="OctoPrint base URL, e.g. http://octopi.local")
    printer.add_argument("--api-key", help="OctoPrint application key")
    printer.add_argument("--host", metavar="PROTOCOL",
                         help="its print host's protocol (`parametric machines hosts` lists them and their settings)")
    printer.add_argument("--host-setting", action="append", metavar="NAME=VALUE",
                         help="a setting of its print host's connector, e.g. url=http://octopi.local (repeatable)")
    router = kinds.add_parser("router", help="a CNC router")
    router.add_argument("name")
    router.add_argument("--bed", required=True, help="bed size X x Y, e.g. 2500x1250")
    from ..machines import dialects

    router.add_argument("--dialect", default="grbl",
                        help=f"G-code dialect: {', '.join(dialects())} (default grbl)")
    router.add_argument("--tool", action="append", metavar="SPEC",
                        help=f"{TOOL_SPEC}, e.g. 1:6:endmill:2:22; feeds start from the cutting data of each "
                             "stocked material (repeatable)")
    router.add_argument("--feeds", action="append", metavar="SPEC",
                        help=f"{FEEDS_SPEC} to set a tool's feeds (repeatable)")
    router.add_argument("--stock", action="append", metavar="SPEC",
                        help=f"{STOCK_SPEC}, e.g. birch_plywood:18:2500x1250, or birch_plywood:18:2500x1250:17.6 when "
                             "the sheets in the rack measure 17.6 mm: dados, rebates and slots are cut to that "
                             "(repeatable)")
    router.add_argument("--hot-folder", help="deliver G-code into this folder (default: download)")
    router.add_argument("--safe-height", type=float, default=5.0, help="clearance above the stock in mm")
    router.add_argument("--rapid", type=float, default=5000.0, help="rapid rate in mm/min, for time estimates")
    from_file = kinds.add_parser("file", help="a full machine record from a JSON or TOML file")
    from_file.add_argument("path")
    for parser in (printer, router, from_file):
        parser.add_argument("--replace", action="store_true", help="overwrite a machine of the same name")
    machines.set_defaults(handler=cmd_machines)
