"""Machines the shop makes parts on: 3D printers and CNC routers, as plain records.

A machine is a dataclass that turns into a plain dict (JSON or TOML) and back, so the web
layer can keep it in its database and the CLI can keep it in a file. Reading a dict
validates it and reports every bad field at once, named by its path
(``tools[0].feeds.oak.stepdown_mm``), like template parameters.

``parametric machines add|list|show|remove`` and the commands that take ``--machine`` find
their store through :func:`open_store`: the web app's database (the one the staff dashboard
shows) when the web app is installed, else ``machines.json`` under the output folder (or
``$PARAMETRIC_MACHINES``) for makers without it. The core never imports the web app: the
database store reaches it through the ``parametric.machine_stores`` entry point group.

A printer's ``host`` and a router's ``delivery`` name the protocol of a host connector
(:mod:`parametric.hosts`) and hold the settings that connector declares, checked against its
declared fields; stored records keep the shape they always had (``{"kind": ..., "url": ...}``,
``{"method": "hot_folder", "path": ...}``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from .errors import FieldError, ValidationError
from .files import atomic_write_json, file_lock
from .materials import materials
from .units import format_number

TOOL_TYPES = ("endmill", "drill", "ballnose", "vbit")
DOWNLOAD = "download"
"""A router's delivery when staff download its G-code (no connector)."""
GCODE_FLAVORS = ("marlin2", "marlin", "reprap", "klipper", "repetier", "smoothie", "sailfish", "makerware",
                 "teacup", "mach3", "machinekit", "no-extrusion")
"""PrusaSlicer's ``gcode_flavor`` values."""


def dialects() -> tuple[str, ...]:
    """The G-code dialects a router can speak: one per post-processor in ``parametric.cnc.post``."""
    from .cnc.post import POST_PROCESSORS  # when asked, not at import: the CNC package imports this module

    return tuple(POST_PROCESSORS)


def __getattr__(name: str) -> Any:
    if name == "DIALECTS":  # for callers that import the names as a constant: read from the post-processor table
        return dialects()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Feeds:
    """How one tool cuts one material: feed and plunge in mm/min, spindle speed, depth per pass in mm."""

    feed_mm_min: float
    plunge_mm_min: float
    spindle_rpm: float
    stepdown_mm: float


@dataclass(frozen=True)
class Tool:
    """A cutter in a router's tool library; ``feeds`` holds its feeds and speeds per material id."""

    number: int
    diameter_mm: float
    type: str = "endmill"
    flutes: int = 2
    flute_length_mm: float = 25.0
    feeds: dict[str, Feeds] = field(default_factory=dict)
    name: str = ""

    @property
    def radius_mm(self) -> float:
        return self.diameter_mm / 2

    def describe(self) -> str:
        label = self.name or f"{self.diameter_mm:g} mm {self.flutes}-flute {self.type}"
        return f"T{self.number} {label}"


MEASURED_SPREAD = 0.1
"""How far a sheet's measured thickness may differ from its nominal one, as a share of it: real plywood
is a few tenths of a millimetre off; more is a typing slip or the wrong rack."""


@dataclass(frozen=True)
class StockSheet:
    """A sheet the router cuts from: material id, nominal thickness, size (x, y) in mm, and the thickness the
    sheets in the rack measure, when someone measured them (dados, rebates and slots are cut to it)."""

    material: str
    thickness_mm: float
    size_mm: tuple[float, float]
    measured_thickness_mm: float | None = None

    def describe(self) -> str:
        measured = (f" (measures {format_number(self.measured_thickness_mm)})"
                    if self.measured_thickness_mm is not None else "")
        return f"{self.material} {self.thickness_mm:g} mm{measured}"


@dataclass(frozen=True)
class Host:
    """The host that drives a machine: a connector's ``protocol`` (see :mod:`parametric.hosts`) and the
    ``settings`` that connector declares (a URL, an API key, a folder)."""

    protocol: str
    settings: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """The host in a few words, never its secrets."""
        from .hosts import HostError, connector_class

        try:
            return connector_class(self.protocol).describe_settings(self.settings)
        except HostError:
            return self.protocol


@dataclass(frozen=True)
class Delivery:
    """How G-code reaches a router: ``download`` (staff fetch it), or through a connector (``method`` is its
    protocol: ``hot_folder``, written into the folder the router's sender watches) with its ``settings``."""

    method: str = DOWNLOAD
    settings: Mapping[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str | None:
        """The folder of a hot folder delivery."""
        return self.settings.get("path")


@dataclass
class Printer:
    """An FDM printer: build volume (x, y, z mm), nozzle, the filaments loaded, and its host."""

    kind: ClassVar[str] = "printer"
    process: ClassVar[str] = "fdm"

    name: str
    build_volume_mm: tuple[float, float, float]
    nozzle_diameter_mm: float = 0.4
    materials: list[str] = field(default_factory=list)
    filament_diameter_mm: float = 1.75
    gcode_flavor: str = "marlin2"
    host: Host | None = None

    def connection(self) -> Host | None:
        """The host jobs are sent through, or None (staff download the G-code)."""
        return self.host

    def describe(self) -> str:
        x, y, z = self.build_volume_mm
        return (f"printer {self.name}: {x:g} x {y:g} x {z:g} mm, {self.nozzle_diameter_mm:g} mm nozzle, "
                f"loaded {', '.join(self.materials) or 'nothing'}"
                + (f", {self.host.describe()}" if self.host else ""))


@dataclass
class Router:
    """A CNC router: bed (x, y mm), G-code dialect, tool library, stock sheets, and delivery of its files."""

    kind: ClassVar[str] = "router"
    process: ClassVar[str] = "cnc"

    name: str
    bed_mm: tuple[float, float]
    dialect: str = "grbl"
    tools: list[Tool] = field(default_factory=list)
    stock: list[StockSheet] = field(default_factory=list)
    delivery: Delivery = field(default_factory=Delivery)
    safe_height_mm: float = 5.0
    rapid_mm_min: float = 5000.0

    def connection(self) -> Host | None:
        """The host its G-code is sent through (a hot folder), or None when staff download it."""
        if self.delivery.method == DOWNLOAD:
            return None
        return Host(self.delivery.method, self.delivery.settings)

    def tool(self, number: int) -> Tool:
        for tool in self.tools:
            if tool.number == number:
                return tool
        raise KeyError(f"router {self.name} has no tool {number}")

    def describe(self) -> str:
        x, y = self.bed_mm
        tools = ", ".join(t.describe() for t in self.tools) or "no tools"
        stock = ", ".join(s.describe() for s in self.stock) or "no stock"
        return f"router {self.name}: bed {x:g} x {y:g} mm, {self.dialect}, {tools}; stock {stock}"


Machine = Printer | Router
MACHINE_KINDS: dict[str, type[Printer] | type[Router]] = {"printer": Printer, "router": Router}


# -- plain dicts ------------------------------------------------------------------------


def machine_to_dict(machine: Machine) -> dict[str, Any]:
    """The machine as plain JSON-ready values, with its ``kind``."""
    if isinstance(machine, Printer):
        return {
            "kind": "printer", "name": machine.name, "build_volume_mm": list(machine.build_volume_mm),
            "nozzle_diameter_mm": machine.nozzle_diameter_mm, "materials": list(machine.materials),
            "filament_diameter_mm": machine.filament_diameter_mm, "gcode_flavor": machine.gcode_flavor,
            "host": {"kind": machine.host.protocol, **machine.host.settings} if machine.host else None,
        }
    return {
        "kind": "router", "name": machine.name, "bed_mm": list(machine.bed_mm), "dialect": machine.dialect,
        "tools": [{"number": t.number, "diameter_mm": t.diameter_mm, "type": t.type, "flutes": t.flutes,
                   "flute_length_mm": t.flute_length_mm, "name": t.name,
                   "feeds": {m: {"feed_mm_min": f.feed_mm_min, "plunge_mm_min": f.plunge_mm_min,
                                 "spindle_rpm": f.spindle_rpm, "stepdown_mm": f.stepdown_mm}
                             for m, f in t.feeds.items()}}
                  for t in machine.tools],
        "stock": [{"material": s.material, "thickness_mm": s.thickness_mm, "size_mm": list(s.size_mm),
                   **({"measured_thickness_mm": s.measured_thickness_mm} if s.measured_thickness_mm is not None
                      else {})}
                  for s in machine.stock],
        "delivery": {"method": machine.delivery.method, **({"path": None} if machine.delivery.method == DOWNLOAD
                                                           else {}), **machine.delivery.settings},
        "safe_height_mm": machine.safe_height_mm, "rapid_mm_min": machine.rapid_mm_min,
    }


class _Reader:
    """Reads values out of a plain dict, collecting a FieldError per bad field instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[FieldError] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(FieldError(path, message))

    def mapping(self, value: Any, path: str) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        self.fail(path, "must be an object of name: value pairs")
        return {}

    def unknown(self, data: Mapping[str, Any], known: Sequence[str], path: str) -> None:
        for key in data:
            if key not in known:
                self.fail(f"{path}.{key}" if path else key, f"unknown field; known fields: {', '.join(known)}")

    def text(self, data: Mapping[str, Any], key: str, path: str, *, default: Any = ..., choices: Sequence[str] = (),
             empty: bool = False) -> Any:
        where = f"{path}.{key}" if path else key
        if key not in data or data[key] is None:
            if default is ...:
                self.fail(where, "required")
                return ""
            return default
        value = data[key]
        if not isinstance(value, str) or not (value.strip() or empty):
            self.fail(where, "must be non-empty text" if not empty else "must be text")
            return ""
        if choices and value not in choices:
            self.fail(where, f"{value!r} is not allowed; allowed: {', '.join(choices)}")
        return value.strip()

    def number(self, data: Mapping[str, Any], key: str, path: str, *, default: Any = ..., low: float = 0.0,
               high: float = float("inf"), unit: str = "mm", whole: bool = False) -> Any:
        where = f"{path}.{key}" if path else key
        if key not in data or data[key] is None:
            if default is ...:
                self.fail(where, "required")
                return 0
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and int(value) != value):
            self.fail(where, f"must be a {'whole number' if whole else 'number'}{f' in {unit}' if unit else ''}")
            return 0
        strictly_positive = low == 0 and not whole
        inside = low < value <= high if strictly_positive else low <= value <= high
        if not inside:
            bound = f"more than 0 and at most {high:g}" if strictly_positive else f"{low:g} to {high:g}"
            self.fail(where, f"{value:g}{f' {unit}' if unit else ''} is out of range; allowed: {bound}"
                             f"{f' {unit}' if unit else ''}")
        return int(value) if whole else float(value)

    def sizes(self, data: Mapping[str, Any], key: str, path: str, count: int) -> tuple[float, ...]:
        where = f"{path}.{key}" if path else key
        value = data.get(key)
        if isinstance(value, str):
            from .units import UnitError, to_mm

            try:
                value = [to_mm(v) for v in value.lower().replace("×", "x").split("x")]
            except UnitError as error:
                self.fail(where, str(error))
                return (1.0,) * count
        if (not isinstance(value, (list, tuple)) or len(value) != count
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value)):
            example = "250x210x210" if count == 3 else "2500x1250"
            self.fail(where, f"{count} positive sizes in mm, e.g. {example}")
            return (1.0,) * count
        return tuple(float(v) for v in value)


def public_record(machine: Machine) -> dict[str, Any]:
    """A machine as manifests, job sheets and the staff API show it: its record without the settings its
    host's connector declares secret (all of them when no installed connector says which)."""
    from .hosts import HostError, connector_class

    record = machine_to_dict(machine)
    connection = machine.connection()
    if connection is not None:
        key, protocol_key = ("host", "kind") if isinstance(machine, Printer) else ("delivery", "method")
        try:
            secrets: Sequence[str] = connector_class(connection.protocol).secrets()
        except HostError:
            secrets = list(connection.settings)
        record[key] = {k: v for k, v in record[key].items() if k == protocol_key or k not in secrets}
    return record


def machine_from_dict(data: Any) -> Machine:
    """A machine from plain values (its ``kind`` says which), or a ValidationError listing every bad field."""
    read = _Reader()
    data = read.mapping(data, "machine")
    kind = read.text(data, "kind", "", choices=tuple(MACHINE_KINDS))
    if read.problems:
        raise ValidationError(read.problems)
    machine = _printer(read, data) if kind == "printer" else _router(read, data)
    if read.problems:
        raise ValidationError(read.problems)
    return machine


def _name(read: _Reader, data: Mapping[str, Any]) -> str:
    name = read.text(data, "name", "")
    if name and (len(name) > 64 or any(c in name for c in "/\\\0") or name != name.strip()):
        read.fail("name", "at most 64 characters, no slashes")
    return name


def _printer(read: _Reader, data: Mapping[str, Any]) -> Printer:
    known = ("kind", "name", "build_volume_mm", "nozzle_diameter_mm", "materials", "filament_diameter_mm",
             "gcode_flavor", "host")
    read.unknown(data, known, "")
    fdm = [m.id for m in materials().values() if m.process == "fdm"]
    loaded = data.get("materials", [])
    if not isinstance(loaded, list) or not all(isinstance(m, str) for m in loaded):
        read.fail("materials", f"a list of material ids; allowed: {', '.join(fdm)}")
        loaded = []
    for index, material in enumerate(loaded):
        if material not in fdm:
            read.fail(f"materials[{index}]", f"{material!r} is not a printing material; allowed: {', '.join(fdm)}")
    host = None
    if data.get("host") is not None:
        host = _connection(read, read.mapping(data["host"], "host"), "host", "kind", "printer")
    return Printer(
        name=_name(read, data),
        build_volume_mm=read.sizes(data, "build_volume_mm", "", 3),  # type: ignore[arg-type]
        nozzle_diameter_mm=read.number(data, "nozzle_diameter_mm", "", default=0.4, high=2.0),
        materials=list(dict.fromkeys(loaded)),
        filament_diameter_mm=read.number(data, "filament_diameter_mm", "", default=1.75, high=3.0),
        gcode_flavor=read.text(data, "gcode_flavor", "", default="marlin2", choices=GCODE_FLAVORS),
        host=host,
    )


def _connection(read: _Reader, raw: Mapping[str, Any], where: str, protocol_key: str,
                machine_kind: str) -> Host | None:
    """A host from its record: the protocol under ``protocol_key`` (a printer's ``host.kind``, a router's
    ``delivery.method``), then the settings its connector declares, each problem named by its field."""
    from .hosts import connector_class, implied_protocol, protocols

    choices = protocols(machine_kind) + ((DOWNLOAD,) if machine_kind == "router" else ())
    protocol = read.text(raw, protocol_key, where, default=implied_protocol(machine_kind))
    if not protocol:
        if protocol_key not in raw:
            read.fail(f"{where}.{protocol_key}", f"required; allowed: {', '.join(choices)}")
        return None
    if protocol not in choices:
        read.fail(f"{where}.{protocol_key}", f"{protocol!r} is not allowed; allowed: {', '.join(choices)}")
        return None
    connector = connector_class(protocol, machine_kind)
    settings, problems = connector.read_settings({k: v for k, v in raw.items() if k != protocol_key})
    for problem in problems:
        read.fail(f"{where}.{problem.field}", problem.message)
    return Host(protocol, settings)


def _router(read: _Reader, data: Mapping[str, Any]) -> Router:
    known = ("kind", "name", "bed_mm", "dialect", "tools", "stock", "delivery", "safe_height_mm", "rapid_mm_min")
    read.unknown(data, known, "")
    cnc = [m.id for m in materials().values() if m.process == "cnc"]
    tools = []
    raw_tools = data.get("tools", [])
    if not isinstance(raw_tools, list):
        read.fail("tools", "a list of tools")
        raw_tools = []
    for index, raw in enumerate(raw_tools):
        path = f"tools[{index}]"
        raw = read.mapping(raw, path)
        read.unknown(raw, ("number", "diameter_mm", "type", "flutes", "flute_length_mm", "feeds", "name"), path)
        feeds = {}
        for material, values in read.mapping(raw.get("feeds", {}), f"{path}.feeds").items():
            where = f"{path}.feeds.{material}"
            if material not in cnc:
                read.fail(where, f"{material!r} is not a CNC material; allowed: {', '.join(cnc)}")
            values = read.mapping(values, where)
            read.unknown(values, ("feed_mm_min", "plunge_mm_min", "spindle_rpm", "stepdown_mm"), where)
            feeds[material] = Feeds(
                feed_mm_min=read.number(values, "feed_mm_min", where, high=50000, unit="mm/min"),
                plunge_mm_min=read.number(values, "plunge_mm_min", where, high=20000, unit="mm/min"),
                spindle_rpm=read.number(values, "spindle_rpm", where, high=60000, unit="rpm"),
                stepdown_mm=read.number(values, "stepdown_mm", where, high=50),
            )
        tools.append(Tool(
            number=read.number(raw, "number", path, low=1, high=999, unit="", whole=True),
            diameter_mm=read.number(raw, "diameter_mm", path, high=50),
            type=read.text(raw, "type", path, default="endmill", choices=TOOL_TYPES),
            flutes=read.number(raw, "flutes", path, default=2, low=1, high=8, unit="", whole=True),
            flute_length_mm=read.number(raw, "flute_length_mm", path, default=25.0, high=200),
            feeds=feeds,
            name=read.text(raw, "name", path, default="", empty=True),
        ))
    numbers = [t.number for t in tools]
    for index, number in enumerate(numbers):
        if numbers.index(number) != index:
            read.fail(f"tools[{index}].number", f"tool number {number} is used twice")
    stock = []
    raw_stock = data.get("stock", [])
    if not isinstance(raw_stock, list):
        read.fail("stock", "a list of sheets")
        raw_stock = []
    for index, raw in enumerate(raw_stock):
        path = f"stock[{index}]"
        raw = read.mapping(raw, path)
        read.unknown(raw, ("material", "thickness_mm", "size_mm", "measured_thickness_mm"), path)
        nominal = read.number(raw, "thickness_mm", path, high=200)
        measured = read.number(raw, "measured_thickness_mm", path, default=None, high=200)
        if measured is not None and nominal and abs(measured - nominal) > MEASURED_SPREAD * nominal + 1e-9:
            read.fail(f"{path}.measured_thickness_mm",
                      f"{measured:g} mm measured on {nominal:g} mm sheet is more than {MEASURED_SPREAD:.0%} off; "
                      f"allowed: {nominal * (1 - MEASURED_SPREAD):g} to {nominal * (1 + MEASURED_SPREAD):g} mm "
                      "(measure with calipers in several places and give the mean)")
        stock.append(StockSheet(material=read.text(raw, "material", path, choices=cnc), thickness_mm=nominal,
                                size_mm=read.sizes(raw, "size_mm", path, 2),  # type: ignore[arg-type]
                                measured_thickness_mm=measured))
    raw_delivery = read.mapping(data.get("delivery") or {}, "delivery")
    delivery = Delivery()
    if raw_delivery.get("method", DOWNLOAD) == DOWNLOAD:
        read.unknown(raw_delivery, ("method", "path"), "delivery")
        folder = read.text(raw_delivery, "path", "delivery", default=None)  # kept from a delivery switched off
        delivery = Delivery(DOWNLOAD, {"path": folder} if folder else {})
    else:
        connection = _connection(read, raw_delivery, "delivery", "method", "router")
        if connection is not None:
            delivery = Delivery(connection.protocol, connection.settings)
    return Router(
        name=_name(read, data),
        bed_mm=read.sizes(data, "bed_mm", "", 2),  # type: ignore[arg-type]
        dialect=read.text(data, "dialect", "", default="grbl", choices=dialects()),
        tools=tools,
        stock=stock,
        delivery=delivery,
        safe_height_mm=read.number(data, "safe_height_mm", "", default=5.0, high=100),
        rapid_mm_min=read.number(data, "rapid_mm_min", "", default=5000.0, high=100000, unit="mm/min"),
    )


# -- default feeds and speeds -------------------------------------------------------------


@cache
def cutting_data() -> dict[str, dict[str, float]]:
    """Starting feeds and speeds per CNC material (``data/cutting.toml``), for tools added without their own."""
    return tomllib.loads(resources.files("parametric.data").joinpath("cutting.toml").read_text("utf-8"))


MAX_PECK_MM = 10.0
"""The deepest a drill goes in one peck, whatever its diameter (chips must clear)."""


def default_feeds(material: str, diameter_mm: float, flutes: int, tool_type: str = "endmill") -> Feeds:
    """Conservative feeds and speeds for a tool in a material (``data/cutting.toml``): the spindle speed limited
    by the material's surface speed (a 35 mm bit turns slower than a 6 mm one), the chip load per tooth scaled
    by the diameter, the depth per pass a share of the diameter (drill pecks at most :data:`MAX_PECK_MM`)."""
    row = cutting_data()[material]
    chip_load = row["chip_load_6mm"] * min(max(diameter_mm / 6.0, 0.35), 2.0)
    rpm = round(min(row["spindle_rpm"], row["surface_speed_m_min"] * 1000 / (math.pi * diameter_mm)))
    feed = rpm * flutes * chip_load
    if tool_type == "drill":
        return Feeds(feed_mm_min=round(feed / 3), plunge_mm_min=round(feed / 3), spindle_rpm=rpm,
                     stepdown_mm=round(min(diameter_mm * row["peck_factor"], MAX_PECK_MM), 2))
    return Feeds(feed_mm_min=round(feed), plunge_mm_min=round(feed * row["plunge_factor"]), spindle_rpm=rpm,
                 stepdown_mm=round(diameter_mm * row["stepdown_factor"], 2))


# -- where machines are kept ---------------------------------------------------------------


class Store(Protocol):
    """What the CLI needs of a place machines are kept: a JSON file here, the web app's database there."""

    location: str
    """Where the machines are, for messages (a database URL without its password)."""

    def all(self) -> list[Machine]: ...

    def get(self, name: str) -> Machine: ...

    def add(self, machine: Machine, *, replace: bool = False) -> None: ...

    def remove(self, name: str) -> None: ...


def no_such_machine(name: str, known: Sequence[str]) -> ValidationError:
    """The error every store raises for a machine it does not have, naming the ones it has."""
    names = ", ".join(known) or "none yet"
    return ValidationError([FieldError("machine", f"no machine called {name!r}; known: {names}")])


def name_taken(name: str) -> ValidationError:
    """The error every store raises when adding a machine under a name already stored."""
    return ValidationError([FieldError("name", f"a machine called {name!r} exists already; choose another name, "
                                               "or replace it")])


STORE_ENTRY_POINTS = "parametric.machine_stores"
STORE_CHOICES = ("a machines file ending in .json, or a database URL such as sqlite:///PATH or "
                 "postgresql+psycopg://USER@HOST/DATABASE")


def without_password(location: str) -> str:
    """A store location fit for messages: a URL's password replaced by ``***``."""
    try:
        parts = urlsplit(location)
        password = parts.password
    except ValueError:
        return location
    if not password:
        return location
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def open_store(location: str | os.PathLike[str] | None = None) -> Store:
    """The store at ``location`` (``--store``): a ``.json`` file, or a database URL.

    Without a location: ``$PARAMETRIC_MACHINES`` when set, else the store an installed package
    registers in the ``parametric.machine_stores`` entry point group (the web app: its
    configured database, the one ``parametric serve`` uses), else ``machines.json`` under the
    output folder. A database URL needs such a package; each entry point is a function taking
    the location (``None`` for its default) and returning a :class:`Store`.
    """
    text = None if location is None else os.fspath(location)
    if text is not None and not text.strip():
        raise ValidationError([FieldError("store", f"empty; allowed: {STORE_CHOICES}")])
    if text is None and os.environ.get("PARAMETRIC_MACHINES"):
        return MachineStore()
    if text is not None and text.lower().endswith(".json"):
        return MachineStore(text)
    if text is not None and "://" not in text:
        raise ValidationError([FieldError("store", f"{text!r} is neither a .json file nor a database URL; "
                                                   f"allowed: {STORE_CHOICES}")])
    from importlib.metadata import entry_points

    plugins = sorted(entry_points(group=STORE_ENTRY_POINTS), key=lambda entry_point: entry_point.name)
    if not plugins:
        if text is None:
            return MachineStore()
        raise ValidationError([FieldError("store", f"{without_password(text)} is a database URL, but no database "
                                                   "store is installed (the web app provides one); allowed: a "
                                                   "machines file ending in .json")])
    plugin = plugins[0]
    try:
        factory = plugin.load()
    except Exception as error:  # a broken installation: say so instead of quietly using another store
        raise ValidationError([FieldError("store", f"the machine store {plugin.name!r} ({plugin.value}) cannot be "
                                                   f"loaded: {error}; pass --store FILE.json to use a file")]) from None
    return factory(text)


# -- the machines file (for the CLI without a database) ------------------------------------


def default_store_path() -> Path:
    """``$PARAMETRIC_MACHINES``, or ``machines.json`` under the output folder."""
    from .cache import output_root

    configured = os.environ.get("PARAMETRIC_MACHINES")
    return Path(configured).resolve() if configured else output_root() / "machines.json"


class MachineStore:
    """Machines kept in one JSON file, written atomically under a file lock."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_store_path()
        self.location = str(self.path)

    def _read(self) -> list[dict[str, Any]]:
        try:
            document = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return []
        return list(document.get("machines", []))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with file_lock(self.path.with_name(f".{self.path.name}.lock")):
            yield

    def all(self) -> list[Machine]:
        return [machine_from_dict(row) for row in self._read()]

    def get(self, name: str) -> Machine:
        """The machine called ``name``, or a validation error naming the known ones."""
        machines = self.all()
        for machine in machines:
            if machine.name == name:
                return machine
        raise no_such_machine(name, [m.name for m in machines])

    def add(self, machine: Machine, *, replace: bool = False) -> None:
        with self._locked():
            rows = self._read()
            if any(row.get("name") == machine.name for row in rows) and not replace:
                raise name_taken(machine.name)
            rows = [row for row in rows if row.get("name") != machine.name] + [machine_to_dict(machine)]
            atomic_write_json(self.path, {"machines": rows})

    def remove(self, name: str) -> None:
        with self._locked():
            rows = self._read()
            if not any(row.get("name") == name for row in rows):
                raise no_such_machine(name, [row.get("name", "?") for row in rows])
            atomic_write_json(self.path, {"machines": [row for row in rows if row.get("name") != name]})


# -- records from compact specs: the CLI's options, the staff dashboard's form ------------------------

TOOL_SPEC = "NUMBER:DIAMETER[:TYPE[:FLUTES[:FLUTE_LENGTH[:NAME]]]]"
STOCK_SPEC = "MATERIAL:THICKNESS:LENGTHxWIDTH[:MEASURED]"
FEEDS_SPEC = "TOOL:MATERIAL:FEED:PLUNGE:RPM:STEPDOWN"


def _number_or_text(value: float | str | None) -> float | str | None:
    """A number typed as text, read as a number; empty text is ``None`` (the record's default), and text that
    is no number is passed on as it is, for :func:`machine_from_dict` to name the field."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _tool_spec(text: str, index: int, stock_materials: Sequence[str]) -> dict[str, Any]:
    """A tool from its spec (:data:`TOOL_SPEC`), with default feeds for each stocked material."""
    fields = [part.strip() for part in text.split(":", 5)]
    where = f"tools[{index}]"
    try:
        number, diameter = int(fields[0]), float(fields[1])
        tool_type = fields[2] if len(fields) > 2 and fields[2] else "endmill"
        flutes = int(fields[3]) if len(fields) > 3 and fields[3] else (1 if tool_type == "drill" else 2)
        flute_length = float(fields[4]) if len(fields) > 4 and fields[4] else max(25.0, 4 * diameter)
    except (ValueError, IndexError):
        raise ValidationError([FieldError(where, f"{text!r}: write {TOOL_SPEC}, e.g. 1:6:endmill:2:22")]) from None
    if tool_type not in TOOL_TYPES:
        raise ValidationError([FieldError(f"{where}.type", f"{tool_type!r}; allowed: {', '.join(TOOL_TYPES)}")])
    feeds = {}
    for material in dict.fromkeys(stock_materials):
        if 0 < diameter <= 50 and 1 <= flutes <= 8 and material in cutting_data():
            f = default_feeds(material, diameter, flutes, tool_type)
            feeds[material] = {"feed_mm_min": f.feed_mm_min, "plunge_mm_min": f.plunge_mm_min,
                               "spindle_rpm": f.spindle_rpm, "stepdown_mm": f.stepdown_mm}
    return {"number": number, "diameter_mm": diameter, "type": tool_type, "flutes": flutes,
            "flute_length_mm": flute_length, "feeds": feeds, "name": fields[5] if len(fields) > 5 else ""}


def _stock_spec(text: str, index: int) -> dict[str, Any]:
    """A sheet from its spec (:data:`STOCK_SPEC`), e.g. ``birch_plywood:18:2500x1250``, or with the thickness
    the sheets in the rack measure, ``birch_plywood:18:2500x1250:17.6``."""
    fields = [part.strip() for part in text.split(":")]
    if len(fields) not in (3, 4):
        raise ValidationError([FieldError(f"stock[{index}]", f"{text!r}: write {STOCK_SPEC}, "
                                                             "e.g. birch_plywood:18:2500x1250 or "
                                                             "birch_plywood:18:2500x1250:17.6")])
    record = {"material": fields[0], "thickness_mm": _number_or_text(fields[1]), "size_mm": fields[2]}
    if len(fields) == 4 and fields[3]:
        record["measured_thickness_mm"] = _number_or_text(fields[3])
    return record


def _feeds_spec(text: str, index: int, tools: list[dict[str, Any]] | None) -> None:
    """Set one tool's feeds for one material from its spec (:data:`FEEDS_SPEC`); ``tools`` is ``None`` when
    the tools could not be read (then only the spec's own form is checked)."""
    fields = [part.strip() for part in text.split(":")]
    try:
        if len(fields) != 6:
            raise ValueError
        number, material = int(fields[0]), fields[1]
        feed, plunge, rpm, stepdown = (float(v) for v in fields[2:6])
    except ValueError:
        raise ValidationError([FieldError(f"feeds[{index}]", f"{text!r}: write {FEEDS_SPEC}, "
                                                             "e.g. 1:oak:1800:600:16000:3")]) from None
    if tools is None:
        return
    for tool in tools:
        if tool["number"] == number:
            tool["feeds"][material] = {"feed_mm_min": feed, "plunge_mm_min": plunge, "spindle_rpm": rpm,
                                       "stepdown_mm": stepdown}
            return
    raise ValidationError([FieldError(f"feeds[{index}]", f"no tool {number} among the tools")])


def printer_record(name: str, *, build_volume: str | Sequence[float], nozzle_mm: float | str | None = 0.4,
                   materials: Sequence[str] = (), filament_mm: float | str | None = 1.75,
                   gcode_flavor: str | None = "marlin2", host: str | None = None,
                   host_settings: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """A printer's record (for :func:`machine_from_dict`) from what a person types: sizes like ``250x210x210``,
    numbers as text or numbers; ``host`` is its host's protocol and ``host_settings`` the settings that
    connector declares. Settings typed without a protocol are for the host a record without one means; no
    setting typed at all is no host."""
    record: dict[str, Any] = {
        "kind": "printer", "name": name, "build_volume_mm": build_volume,
        "nozzle_diameter_mm": _number_or_text(nozzle_mm), "materials": list(materials),
        "filament_diameter_mm": _number_or_text(filament_mm), "gcode_flavor": gcode_flavor or None}
    typed = {key: (value.strip() if isinstance(value, str) else value) or None
             for key, value in (host_settings or {}).items()}
    if host or any(typed.values()):
        record["host"] = {**({"kind": host} if host else {}), **typed}
    return record


def router_record(name: str, *, bed: str | Sequence[float], dialect: str | None = "grbl",
                  tools: Sequence[str] = (), stock: Sequence[str] = (), feeds: Sequence[str] = (),
                  hot_folder: str | None = None, delivery: str | None = None,
                  delivery_settings: Mapping[str, str | None] | None = None,
                  safe_height_mm: float | str | None = 5.0,
                  rapid_mm_min: float | str | None = 5000.0) -> dict[str, Any]:
    """A router's record (for :func:`machine_from_dict`) from compact specs: ``tools`` (:data:`TOOL_SPEC`) get
    default feeds for each stocked material (``data/cutting.toml``), which ``feeds`` (:data:`FEEDS_SPEC`)
    override; ``stock`` is :data:`STOCK_SPEC`. ``delivery`` is the protocol of the connector its G-code goes
    through, with ``delivery_settings`` (the settings that connector declares), or ``download``; it is
    ``hot_folder`` when a ``hot_folder`` (the folder's path) is given unless said otherwise.

    A spec that cannot be read raises :class:`ValidationError` naming it (``tools[1]``, ``feeds[0]``) together
    with what :func:`machine_from_dict` finds wrong in the rest of the record, so a form shows every problem.
    """
    problems: list[FieldError] = []
    sheets: list[dict[str, Any]] = []
    for index, text in enumerate(stock):
        try:
            sheets.append(_stock_spec(text, index))
        except ValidationError as error:
            problems.extend(error.errors)
    stock_read = not problems
    cutters: list[dict[str, Any]] = []
    for index, text in enumerate(tools):
        try:
            cutters.append(_tool_spec(text, index, [sheet["material"] for sheet in sheets]))
        except ValidationError as error:
            problems.extend(error.errors)
    tools_read = len(cutters) == len(tools)
    for index, text in enumerate(feeds):
        try:
            _feeds_spec(text, index, cutters if tools_read else None)
        except ValidationError as error:
            problems.extend(error.errors)
    method = delivery or ("hot_folder" if hot_folder else DOWNLOAD)
    settings = {key: (value.strip() if isinstance(value, str) else value) or None
                for key, value in {**({"path": hot_folder} if hot_folder else {}), **(delivery_settings or {})}.items()}
    record = {"kind": "router", "name": name, "bed_mm": bed, "dialect": dialect or None, "tools": cutters,
              "stock": sheets, "safe_height_mm": _number_or_text(safe_height_mm),
              "rapid_mm_min": _number_or_text(rapid_mm_min),
              "delivery": {"method": method} if method == DOWNLOAD else {"method": method, **settings}}
    if problems:
        # the lists that could be read are checked too; a list with an unreadable spec is left out (its
        # positions would no longer match the lines they came from)
        try:
            machine_from_dict({**record, "tools": cutters if tools_read else [], "stock": sheets if stock_read else []})
        except ValidationError as error:
            problems.extend(error.errors)
        raise ValidationError(problems)
    return record


def router_specs(router: Router) -> dict[str, list[str]]:
    """The router's tools, stock and feeds as specs that :func:`router_record` reads back to the same router
    (for editing it in a form): feeds only where they differ from the defaults the specs would give."""
    stocked = [sheet.material for sheet in router.stock]
    tools, feeds = [], []
    for tool in router.tools:
        tools.append(":".join([str(tool.number), format_number(tool.diameter_mm), tool.type, str(tool.flutes),
                               format_number(tool.flute_length_mm), *([tool.name] if tool.name else [])]))
        for material, values in tool.feeds.items():
            if (material in stocked and material in cutting_data()
                    and default_feeds(material, tool.diameter_mm, tool.flutes, tool.type) == values):
                continue
            feeds.append(":".join([str(tool.number), material, format_number(values.feed_mm_min),
                                   format_number(values.plunge_mm_min), format_number(values.spindle_rpm),
                                   format_number(values.stepdown_mm)]))
    stock = [f"{sheet.material}:{format_number(sheet.thickness_mm)}:"
             f"{format_number(sheet.size_mm[0])}x{format_number(sheet.size_mm[1])}"
             + (f":{format_number(sheet.measured_thickness_mm)}" if sheet.measured_thickness_mm is not None else "")
             for sheet in router.stock]
    return {"tools": tools, "stock": stock, "feeds": feeds}
