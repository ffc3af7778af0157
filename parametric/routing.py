"""Routing: which machine makes a part, or why none can, in plain words.

``route(part, material, machines)`` is a pure function of a rendered manifest's part record
(``name``, ``process``, ``size_mm``, ``flat``, ``thickness_mm``) and the machine records.
It tries every machine of the part's process and keeps those that can make it: the
material is loaded (printers) or stocked at the part's thickness (routers), the part fits
the build volume, bed and sheet turned by a quarter turn if need be, and the nozzle or a
cutter suits. Among those it picks the smallest, so large machines stay free for large
parts. When none can, the reason names the part's size and what the shop has:
"420 mm long; the largest printer bed is 250 x 210 mm".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .machines import Machine, Printer, Router, StockSheet, Tool
from .materials import materials
from .units import format_number

CutCheck = Callable[[Mapping[str, Any], Router, str], "str | None"]
"""Why a router cannot make a part (its manifest record) in a material, or None: CAM's own check
(:class:`parametric.cnc.capability.CutCheck`)."""

THICKNESS_TOLERANCE_MM = 0.05
SHEET_MARGIN_MM = 10.0
"""Room kept around a part on a sheet, for the cutter and clamps (mm, each side)."""
THROUGH_CUT_OVERCUT_MM = 0.3
"""How far a through cut goes below the sheet, into the spoilboard (mm)."""


def _fmt(value: float) -> str:
    return format_number(value, 1)


@dataclass(frozen=True)
class Route:
    """Where a part goes: a machine (and, for routers, the sheet and the profile cutter), or why nowhere."""

    part: str
    machine: Machine | None
    reason: str = ""
    quarter_turn: bool = False
    stock: StockSheet | None = None
    tool: Tool | None = None

    @property
    def ok(self) -> bool:
        return self.machine is not None

    def to_dict(self) -> dict[str, Any]:
        return {"part": self.part, "machine": self.machine.name if self.machine else None, "reason": self.reason,
                "quarter_turn": self.quarter_turn,
                "stock": ({"material": self.stock.material, "thickness_mm": self.stock.thickness_mm,
                           "size_mm": list(self.stock.size_mm)} if self.stock else None),
                "tool": self.tool.number if self.tool else None}


def fits(size_mm: Sequence[float], space_mm: Sequence[float], margin_mm: float = 0.0) -> tuple[bool, bool]:
    """Whether a part of ``size_mm`` (x, y and optionally z) fits a machine's space (a bed or sheet x, y, and a
    height when given), as it lies or turned a quarter turn about Z, each side kept ``margin_mm`` from the
    edge: (fits, needs the quarter turn). Parts are made lying as they are modelled, never tipped onto a side.

    The one rule every envelope check uses: routing, the slicer's bed check and a render's envelope check.
    """
    x, y = float(size_mm[0]) + 2 * margin_mm, float(size_mm[1]) + 2 * margin_mm
    ax, ay = float(space_mm[0]), float(space_mm[1])
    if len(size_mm) > 2 and len(space_mm) > 2 and float(size_mm[2]) > float(space_mm[2]) + 1e-6:
        return False, False
    if x <= ax + 1e-6 and y <= ay + 1e-6:
        return True, False
    if y <= ax + 1e-6 and x <= ay + 1e-6:
        return True, True
    return False, False


def _label(material_id: str) -> str:
    material = materials().get(material_id)
    return material.name if material else material_id


def _process_of(part: Mapping[str, Any], process: str | None) -> str | None:
    return part.get("process") or process


def route(part: Mapping[str, Any], material: str, machines: Sequence[Machine], *, process: str | None = None,
          max_nozzle_mm: float | None = None, can_cut: CutCheck | None = None) -> Route:
    """The machine that makes ``part`` in ``material``, or a Route with ``machine=None`` and the reason.

    ``process`` is used when the part record does not carry its own (single-process templates).
    ``max_nozzle_mm`` limits the nozzle for parts with fine detail. ``can_cut`` is CAM's check of a
    sheet part on a router (:func:`parametric.cnc.capability.manifest_check`): with it a router is
    chosen only if CAM can then make the part there, with its tools' real reach, diameters and feeds,
    and the refusal is CAM's. Without it only stock, size and the outline cutter are checked.
    """
    name = str(part.get("name", "part"))
    kind = _process_of(part, process)
    if kind == "fdm":
        return _route_print(name, part, material, [m for m in machines if isinstance(m, Printer)], max_nozzle_mm)
    if kind == "cnc":
        return _route_cut(name, part, material, [m for m in machines if isinstance(m, Router)], can_cut)
    return Route(name, None, f"the part's process {kind!r} is unknown; expected fdm or cnc")


def _route_print(name: str, part: Mapping[str, Any], material: str, printers: list[Printer],
                 max_nozzle_mm: float | None) -> Route:
    x, y, z = (float(v) for v in part["size_mm"])
    if not printers:
        return Route(name, None, "no printer is set up in the shop")
    loaded = [p for p in printers if material in p.materials]
    if not loaded:
        have = "; ".join(f"{p.name} has {', '.join(_label(m) for m in p.materials) or 'nothing'} loaded"
                         for p in printers)
        return Route(name, None, f"no printer has {_label(material)} loaded ({have})")
    nozzled = [p for p in loaded if max_nozzle_mm is None or p.nozzle_diameter_mm <= max_nozzle_mm + 1e-9]
    if not nozzled:
        finest = min(p.nozzle_diameter_mm for p in loaded)
        return Route(name, None, f"its detail needs a nozzle of at most {_fmt(max_nozzle_mm or 0)} mm; the finest "
                                 f"nozzle with {_label(material)} loaded is {_fmt(finest)} mm")
    tall_enough = [p for p in nozzled if z <= p.build_volume_mm[2] + 1e-6]
    if not tall_enough:
        tallest = max(p.build_volume_mm[2] for p in nozzled)
        return Route(name, None, f"{_fmt(z)} mm tall; the tallest printer with {_label(material)} loaded prints "
                                 f"{_fmt(tallest)} mm high")
    fitting = []
    for printer in tall_enough:
        on_bed, turned = fits((x, y), printer.build_volume_mm[:2])
        if on_bed:
            fitting.append((printer, turned))
    if not fitting:
        largest = max(tall_enough, key=lambda p: p.build_volume_mm[0] * p.build_volume_mm[1])
        bx, by = largest.build_volume_mm[:2]
        longest, shortest = max(x, y), min(x, y)
        if longest > max(bx, by) + 1e-6:
            what = f"{_fmt(longest)} mm long"
        else:
            what = f"{_fmt(shortest)} mm wide ({_fmt(longest)} x {_fmt(shortest)} mm)"
        return Route(name, None, f"{what}; the largest printer bed is {_fmt(bx)} x {_fmt(by)} mm")
    printer, turned = min(fitting, key=lambda pair: _volume(pair[0].build_volume_mm))
    return Route(name, printer, quarter_turn=turned)


def _volume(sizes: Sequence[float]) -> float:
    result = 1.0
    for size in sizes:
        result *= size
    return result


def profile_tool(router: Router, material: str, thickness: float) -> Tool | None:
    """The end mill a router cuts a sheet's outline with: has feeds for the material and reaches through."""
    usable = [t for t in router.tools if t.type == "endmill" and material in t.feeds
              and t.flute_length_mm + 1e-6 >= thickness + THROUGH_CUT_OVERCUT_MM]
    # The stiffest cutter that still fits: a larger diameter deflects less through thick sheet.
    return max(usable, key=lambda t: (t.diameter_mm, -t.number), default=None)


def _route_cut(name: str, part: Mapping[str, Any], material: str, routers: list[Router],
               can_cut: CutCheck | None) -> Route:
    x, y, z = (float(v) for v in part["size_mm"])
    if not part.get("flat"):
        return Route(name, None, f"it is not a flat sheet part ({_fmt(x)} x {_fmt(y)} x {_fmt(z)} mm); "
                                 "the routers cut sheet parts only")
    thickness = float(part.get("thickness_mm") or z)
    if not routers:
        return Route(name, None, "no CNC router is set up in the shop")
    stocked = [(r, s) for r in routers for s in r.stock
               if s.material == material and abs(s.thickness_mm - thickness) <= THICKNESS_TOLERANCE_MM]
    if not stocked:
        have = sorted({f"{s.thickness_mm:g}" for r in routers for s in r.stock if s.material == material},
                      key=float)
        detail = (f"{_label(material)} is stocked in {', '.join(have)} mm only" if have
                  else f"no router stocks {_label(material)}")
        return Route(name, None, f"needs {_fmt(thickness)} mm {_label(material)} sheet; {detail}")
    placed = []
    for router, sheet in stocked:
        on_sheet, turned = fits((x, y), sheet.size_mm, SHEET_MARGIN_MM)
        on_bed, _ = fits((x, y) if not turned else (y, x), router.bed_mm)
        if on_sheet and on_bed:
            placed.append((router, sheet, turned))
    if not placed:
        router, sheet = max(stocked, key=lambda pair: min(_volume(pair[1].size_mm), _volume(pair[0].bed_mm)))
        area = (min(sheet.size_mm[0], router.bed_mm[0]), min(sheet.size_mm[1], router.bed_mm[1]))
        longest = max(x, y)
        what = (f"{_fmt(longest)} mm long" if longest + 2 * SHEET_MARGIN_MM > max(area) + 1e-6
                else f"{_fmt(min(x, y))} mm wide ({_fmt(longest)} x {_fmt(min(x, y))} mm)")
        return Route(name, None, f"{what}; the largest {_fmt(thickness)} mm {_label(material)} sheet that fits a "
                                 f"router bed is {_fmt(area[0])} x {_fmt(area[1])} mm "
                                 f"(with {_fmt(SHEET_MARGIN_MM)} mm margins)")
    tooled = [(r, s, t, profile_tool(r, material, thickness)) for r, s, t in placed]
    tooled = [entry for entry in tooled if entry[3] is not None]
    if not tooled:
        reaches = [t.flute_length_mm for r, _, _ in placed for t in r.tools
                   if t.type == "endmill" and material in t.feeds]
        if reaches:
            return Route(name, None, f"{_fmt(thickness)} mm thick; the longest end mill with feeds for "
                                     f"{_label(material)} cuts {_fmt(max(reaches))} mm deep")
        return Route(name, None, f"no router has an end mill with feeds and speeds for {_label(material)}")
    tooled.sort(key=lambda e: (_volume(e[0].bed_mm), _volume(e[1].size_mm)))
    refused: dict[str, str] = {}
    for router, sheet, turned, tool in tooled:
        if router.name not in refused:
            reason = can_cut(part, router, material) if can_cut is not None else None
            if reason is None:
                return Route(name, router, quarter_turn=turned, stock=sheet, tool=tool)
            refused[router.name] = reason
    if len(refused) == 1:
        return Route(name, None, next(iter(refused.values())))
    return Route(name, None, "; ".join(f"on {router}: {reason}" for router, reason in refused.items()))


def stocked_thicknesses(machines: Sequence[Machine]) -> dict[str, list[float]] | None:
    """The sheet thicknesses (mm) the shop's routers stock, by material, or ``None`` when it has no router (then
    nothing narrows a template's thickness choices)."""
    routers = [m for m in machines if isinstance(m, Router)]
    if not routers:
        return None
    stocked: dict[str, set[float]] = {}
    for router in routers:
        for sheet in router.stock:
            stocked.setdefault(sheet.material, set()).add(float(sheet.thickness_mm))
    return {material: sorted(thicknesses) for material, thicknesses in sorted(stocked.items())}


def route_parts(manifest: Mapping[str, Any], machines: Sequence[Machine], materials_by_process: Mapping[str, str],
                process: str | None = None, can_cut: CutCheck | None = None) -> list[Route]:
    """A route for every part of a manifest (``Manifest.to_dict()``), with the material for each process."""
    routes = []
    for part in manifest["parts"]:
        kind = _process_of(part, process)
        material = materials_by_process.get(kind or "", "")
        routes.append(route(part, material, machines, process=kind, can_cut=can_cut))
    return routes
