"""CNC sheets: the flat parts of rendered products nested onto a router's stock sheets, with each
sheet's DXF, G-code (checked by LinuxCNC's rs274), pictures and report.

:func:`cut_sheets` is the one flow for the command line (``parametric nest TEMPLATE:COUNT ...
--machine NAME``) and for a shop's batches. Per part it reads the real outline with its holes and
openings from the B-rep (CAM's features, not bounding boxes; dados, rebates and slots cut to the
router's measured sheets plus the fit allowance, :mod:`parametric.joinery`) and plans its operations once; parts
of one material and thickness are nested together on that stock's sheets (grain-locked parts along
the sheet's length, when the material has a grain), and each sheet becomes one job for the router
(:mod:`parametric.cnc.sheet`). A part that cannot be cut (no stock at its thickness, no tool for a
hole, larger than every sheet) is listed as unplaced with the reason, and the rest still go on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import FieldError, ValidationError
from ..machines import Router, StockSheet
from ..manifest import Manifest
from .layout import FOUR_WAY, GRAIN, Layout, Part, Sheet, SheetLayout

SPACING_CLEARANCE_MM = 2.0
"""Room beyond the cutter's diameter between two parts, so neither cut touches the other (mm)."""
GRAIN_TURNS = {"x": GRAIN, "y": (90.0, 270.0)}
"""The turns that keep a part's grain (along its own X or Y) along the sheet's length."""


@dataclass(frozen=True)
class SheetItem:
    """One line of work: a render with its STEP files, how many of the product, and how its parts are
    labelled on the sheet (the order and the item, as the shop names them)."""

    manifest: Manifest
    quantity: int = 1
    order_ref: str | None = None
    item_ref: str | None = None

    def label(self, index: int) -> str:
        """The item as its parts' labels name it: ``ORD-9 item 2 bookcase``, or ``#1 bookcase``."""
        order = f"{self.order_ref} " if self.order_ref else ""
        item = f"item {self.item_ref}" if self.item_ref else f"#{index + 1}"
        return f"{order}{item} {self.manifest.template}"


@dataclass
class _Planned:
    """One part of one item as CAM reads and plans it, and how the nesting sees it."""

    item: int
    part: str
    material: str
    thickness: float
    copies: int
    rotations: tuple[float, ...] | None
    features: Any = None
    operations: list[Any] = field(default_factory=list)
    reason: str = ""


@dataclass
class CutSheet:
    """One nested sheet and what CAM made of it."""

    index: int
    material: str
    thickness_mm: float
    layout: SheetLayout
    program: Any  # parametric.cnc.sheet.SheetProgram
    placed: list[tuple[int, Any]]  # (planned part index, PlacedPart) per placement, in the layout's order
    last: bool = False
    """The last sheet of its stock: the free length beyond its parts is kept as an offcut."""
    files: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StockLayout:
    """The nesting of one stock (a material at a thickness): its sheet, the spacing used and the layout."""

    material: str
    thickness_mm: float
    sheet_mm: tuple[float, float]
    spacing_mm: float
    layout: Layout


@dataclass
class SheetJob:
    """Every sheet of a job, the copies left out with their reasons, and the report ``report.json`` holds."""

    sheets: list[CutSheet]
    unplaced: list[dict[str, Any]]
    layouts: list[StockLayout]
    report: dict[str, Any]
    tool_table: Path | None = None

    @property
    def machining_time_s(self) -> float:
        return sum(sheet.program.time_s for sheet in self.sheets)


def stock_sheet(router: Router, material: str, thickness: float) -> StockSheet | None:
    """The largest sheet of ``material`` at ``thickness`` the router stocks, cut to what its bed takes."""
    from ..routing import THICKNESS_TOLERANCE_MM

    stocked = [sheet for sheet in router.stock
               if sheet.material == material and abs(sheet.thickness_mm - thickness) <= THICKNESS_TOLERANCE_MM]
    if not stocked:
        return None
    best = max(stocked, key=lambda sheet: min(sheet.size_mm[0], router.bed_mm[0]) * min(sheet.size_mm[1],
                                                                                      router.bed_mm[1]))
    size = (min(best.size_mm[0], router.bed_mm[0]), min(best.size_mm[1], router.bed_mm[1]))
    return replace(best, size_mm=size)


def _rotations(record: dict[str, Any], material: str, default: tuple[float, ...] | None) -> tuple[float, ...] | None:
    from ..materials import get_material

    grain = record.get("grain")
    if grain in GRAIN_TURNS and get_material(material).grained:
        return GRAIN_TURNS[grain]
    return default


def _outline(features: Any) -> Any:
    """The part as the nesting sees it: its outline with its through openings and holes."""
    from shapely.geometry import Point, Polygon

    holes = [list(cutout.exterior.coords) for cutout in features.cutouts]
    holes += [list(Point(hole.center).buffer(hole.diameter / 2, quad_segs=32).exterior.coords)
              for hole in features.holes if hole.through]
    polygon = Polygon(features.outline.exterior.coords, holes)
    return polygon if polygon.is_valid else Polygon(features.outline.exterior.coords,
                                                    [list(c.exterior.coords) for c in features.cutouts])


def _plan(items: Sequence[SheetItem], router: Router, settings: Any,
          rotations: tuple[float, ...] | None) -> list[_Planned]:
    """Every CNC part of every item, read from its STEP file (rebuilt with its dados, rebates and slots cut to
    the router's measured sheets, as a single product's CAM does) and planned on ``router`` (once per
    configuration, part and material); a part that cannot be cut keeps its reason instead."""
    from ..cnc import CamError, plan
    from ..cnc.capability import CutCheck, manifest_check
    from ..joinery import stock_fit
    from ..routing import route

    checks: dict[tuple[str, tuple[str, ...]], CutCheck] = {}
    done: dict[tuple[str, str, str], tuple[Any, list[Any]] | str] = {}
    planned = []
    for index, item in enumerate(items):
        manifest = item.manifest
        for record in manifest.parts:
            if (record.get("process") or _single_process(manifest)) != "cnc":
                continue
            material = str(record.get("material") or manifest.material["id"])
            thickness = float(record.get("thickness_mm") or record["size_mm"][2])
            entry = _Planned(index, record["name"], material, thickness, int(record["quantity"]) * item.quantity,
                             _rotations(record, material, rotations))
            planned.append(entry)
            if not any(f["format"] == "step" and f["part"] == record["name"] for f in manifest.files):
                raise ValidationError([FieldError("items", f"{manifest.template}: rendered without STEP "
                                                           "files; render it with formats=['step']")])
            # CAM's own check, over the part as it is cut here: its housings fitted to the router's measured sheets
            # Keyed by the files too: the jobs of one product each bring a manifest of their own part only
            # (``Manifest.for_part``), all under the product's cache key.
            steps = tuple(sorted(f["part"] for f in manifest.files if f["format"] == "step"))
            check = checks.setdefault((manifest.cache_key, steps), manifest_check(manifest, settings=settings))
            verdict = route(record, material, [router], process="cnc", can_cut=check)
            if not verdict.ok:
                entry.reason = verdict.reason
                continue
            key = (manifest.cache_key, record["name"], material)
            if key not in done:
                features = check.features(record, stock_fit(router, material))
                assert not isinstance(features, str)  # the check read them, and routing accepted the part
                try:
                    done[key] = (features, plan(features, router, material, settings))
                except CamError as error:
                    done[key] = error.reason
            result = done[key]
            if isinstance(result, str):
                entry.reason = result
            else:
                entry.features, entry.operations = result
    return planned


def parts_by_stock(items: Sequence[SheetItem], router: Router, *, settings: Any = None,
                   rotations: tuple[float, ...] | None = FOUR_WAY) -> dict[tuple[str, float], list[Part]]:
    """The parts :func:`cut_sheets` nests, by stock (material, thickness): each CNC part with its true
    outline from CAM's features, its copies and its allowed turns (grain locks applied)."""
    from ..cnc import CamSettings

    stocks: dict[tuple[str, float], list[Part]] = {}
    labels = [item.label(index) for index, item in enumerate(items)]
    for entry in _plan(items, router, settings or CamSettings(), rotations):
        if not entry.reason:
            stocks.setdefault((entry.material, entry.thickness), []).append(
                Part(f"{labels[entry.item]} {entry.part}", _outline(entry.features), entry.copies, entry.rotations))
    return stocks


def _single_process(manifest: Manifest) -> str | None:
    from ..registry import get_template

    template = get_template(manifest.template)
    return template.process[0] if len(template.process) == 1 else None


def cut_sheets(items: Sequence[SheetItem], router: Router, out_dir: str | os.PathLike[str], *,
               spacing_mm: float | None = None, margin_mm: float | None = None,
               rotations: tuple[float, ...] | None = FOUR_WAY, part_in_part: bool = True, seconds: float = 20.0,
               sheet_mm: tuple[float, float] | None = None, settings: Any = None, verify: bool = True,
               png: bool = True, batch_sheet: bool = True, batch_ref: str | None = None,
               batch_url: str | None = None) -> SheetJob:
    """Nest the CNC parts of ``items`` onto ``router``'s stock and write each sheet's files into ``out_dir``.

    ``spacing_mm`` defaults to the outline cutter's diameter plus :data:`SPACING_CLEARANCE_MM` and may
    not be less than that diameter; ``margin_mm`` (default CAM's sheet margin) is kept free at the
    edges. ``rotations`` are the turns allowed to parts without a grain lock. ``sheet_mm`` overrides
    the stocked sheet's size. ``seconds`` is the nesting time per stock (material and thickness).
    With ``verify`` every sheet's programs are run through rs274 first. Per sheet ``sheet-N.dxf``
    (operation layers, ``SHEET``, ``LABELS``), its G-code, ``sheet-N.svg`` and ``.png``; one tool table
    for the folder; with ``batch_sheet`` the batch sheet (``batch-sheet.html`` and ``.pdf``, named
    ``batch_ref``, default the folder's name, its QR code to ``batch_url``); ``report.json``, whose
    ``files`` lists the batch sheet.
    """
    from ..cnc import CamSettings, check_programs, write_tool_table
    from ..cnc.sheet import PlacedPart, cam_sheet
    from ..files import atomic_write, atomic_write_json
    from ..jobsheet.batch import write_batch_files
    from ..machines import public_record
    from ..routing import profile_tool
    from .nesting import nest
    from .output import sheet_svg, write_sheet_png

    settings = settings or CamSettings()
    margin = settings.margin_mm if margin_mm is None else float(margin_mm)
    if not items:
        raise ValidationError([FieldError("items", "nothing to nest: give at least one product")])
    if sheet_mm is not None:  # parts are routed against the sheets they will be nested on
        sized = [replace(stock, size_mm=tuple(sheet_mm)) for stock in router.stock]
        planned = _plan(items, replace(router, stock=sized), settings, rotations)
    else:
        planned = _plan(items, router, settings, rotations)
    if not planned:
        raise ValidationError([FieldError("items", "none of these products has CNC parts")])
    groups: dict[tuple[str, float], list[int]] = {}
    unplaced: list[dict[str, Any]] = []
    labels = [item.label(index) for index, item in enumerate(items)]

    def record(entry: _Planned, copy: int, reason: str) -> dict[str, Any]:
        item = items[entry.item]
        return {"file": None, "copy": copy, "reason": reason, "template": item.manifest.template,
                "order": item.order_ref, "item": item.item_ref or str(entry.item + 1), "part": entry.part,
                "label": f"{labels[entry.item]} {entry.part} #{copy}"}

    for index, entry in enumerate(planned):
        if entry.reason:
            unplaced.extend(record(entry, copy, entry.reason) for copy in range(1, entry.copies + 1))
        else:
            groups.setdefault((entry.material, entry.thickness), []).append(index)
    problems = []
    for (material, thickness) in groups:
        tool = profile_tool(router, material, thickness)
        if spacing_mm is not None and tool is not None and spacing_mm < tool.diameter_mm:
            problems.append(FieldError("spacing", f"{spacing_mm:g} mm is less than the {tool.diameter_mm:g} mm "
                                                  f"cutter that cuts the {thickness:g} mm outlines; allowed: "
                                                  f"{tool.diameter_mm:g} mm or more"))
        if tool is not None and margin < tool.diameter_mm / 2:
            problems.append(FieldError("margin", f"{margin:g} mm leaves no room at the sheet's edge for the "
                                                 f"{tool.diameter_mm:g} mm cutter; allowed: "
                                                 f"{tool.diameter_mm / 2:g} mm or more"))
    if problems:
        raise ValidationError(list({problem.message: problem for problem in problems}.values()))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sheets: list[CutSheet] = []
    layouts: list[StockLayout] = []
    for (material, thickness), members in groups.items():
        tool = profile_tool(router, material, thickness)
        assert tool is not None  # every member was routed, and routing found the cutter
        spacing = tool.diameter_mm + SPACING_CLEARANCE_MM if spacing_mm is None else float(spacing_mm)
        stock = stock_sheet(router, material, thickness)
        assert stock is not None
        size = sheet_mm or stock.size_mm
        parts = [Part(f"{labels[planned[m].item]} {planned[m].part}", _outline(planned[m].features),
                      planned[m].copies, planned[m].rotations) for m in members]
        layout = nest(parts, Sheet(*size), spacing_mm=spacing, margin_mm=margin, part_in_part=part_in_part,
                      seconds=seconds)
        layouts.append(StockLayout(material, thickness, size, spacing, layout))
        for missing in layout.unplaced:
            unplaced.append(record(planned[members[missing.part]], missing.copy, missing.reason))
        for position, sheet_layout in enumerate(layout.sheets, start=1):
            number = len(sheets) + 1
            sheet_layout = replace(sheet_layout, index=number)
            placed = []
            for placement in sheet_layout.placements:
                entry = planned[members[placement.part]]
                placed.append((members[placement.part], PlacedPart(
                    f"{labels[entry.item]} {entry.part} #{placement.copy}", entry.features, entry.operations,
                    placement.rotation_deg, placement.x_mm, placement.y_mm, placement.host is not None)))
            header = [f"sheet {number}: {len(placed)} parts, {material} {thickness:g} mm, "
                      f"{size[0]:g} x {size[1]:g} mm"]
            program = cam_sheet([part for _, part in placed], router, material, thickness, size, out,
                                f"sheet-{number}", settings=settings, header=header)
            cut = CutSheet(number, material, thickness, sheet_layout, program, placed, position == len(layout.sheets))
            cut.files["svg"] = atomic_write(out / f"sheet-{number}.svg", sheet_svg(sheet_layout, parts))
            if png:
                cut.files["png"] = write_sheet_png(out / f"sheet-{number}.png", sheet_layout, parts)
            sheets.append(cut)
    table = write_tool_table([program for sheet in sheets for program in sheet.program.programs], router, out)
    if verify:
        for sheet in sheets:
            canon = check_programs([out / program.filename for program in sheet.program.programs], table)
            sheet.program.verified_moves = len(canon.moves)
    _remove_stale(out, sheets)
    job = SheetJob(sheets, unplaced, layouts, {}, table)
    job.report = _report(job, items, planned, labels, router, public_record(router), margin)
    job.report["files"] = write_batch_files(job.report, out, batch_ref=batch_ref or out.resolve().name,
                                            batch_url=batch_url, write=batch_sheet)
    atomic_write_json(out / "report.json", job.report)
    return job


def _remove_stale(out: Path, sheets: Sequence[CutSheet]) -> None:
    """Sheet files a previous, longer run left in ``out``."""
    kept = {sheet.program.dxf.name for sheet in sheets} | {f.name for sheet in sheets for f in sheet.files.values()}
    kept |= {program.filename for sheet in sheets for program in sheet.program.programs}
    for stale in out.glob("sheet-*"):
        number = stale.name[6:].split(".")[0].split("-")[0]
        if number.isdigit() and stale.name not in kept:
            stale.unlink()


def _report(job: SheetJob, items: Sequence[SheetItem], planned: Sequence[_Planned], labels: Sequence[str],
            router: Router, machine: dict[str, Any], margin: float) -> dict[str, Any]:
    from ..jobsheet.batch import item_record
    from ..joinery import stock_fit

    sheets = []
    for sheet in job.sheets:
        layout = sheet.layout
        placements = []
        for number, ((index, placed), placement) in enumerate(zip(sheet.placed, layout.placements, strict=True),
                                                              start=1):
            entry = planned[index]
            item = items[entry.item]
            spot = placed.outline().point_on_surface()
            placements.append({"number": number, "centre_mm": [round(spot.x, 2), round(spot.y, 2)],
                               "file": None, "copy": placement.copy, "x_mm": round(placement.x_mm, 4),
                               "y_mm": round(placement.y_mm, 4), "rotation_deg": round(placement.rotation_deg, 6),
                               "template": item.manifest.template, "order": item.order_ref,
                               "item": item.item_ref or str(entry.item + 1), "part": entry.part,
                               "label": placed.label, "inside": placed.inside})
        sheets.append({
            "index": sheet.index, "size_mm": [layout.sheet.length_mm, layout.sheet.width_mm],
            "material": sheet.material, "thickness_mm": sheet.thickness_mm,
            "used_length_mm": round(layout.used_length_mm, 3), "utilisation": round(layout.utilisation, 4),
            "remnant_mm": ([round(layout.sheet.length_mm - layout.used_length_mm, 1), layout.sheet.width_mm]
                           if sheet.last else None),
            "dxf": sheet.program.dxf.name, "gcode": [program.filename for program in sheet.program.programs],
            "svg": sheet.files["svg"].name, "png": sheet.files["png"].name if "png" in sheet.files else None,
            "tools": sheet.program.tools, "machining_time_s": round(sheet.program.time_s, 1),
            "verified_moves": sheet.program.verified_moves, "placements": placements})
    stocks = [{"material": stock.material, "thickness_mm": stock.thickness_mm, "sheet_mm": list(stock.sheet_mm),
               "spacing_mm": stock.spacing_mm, "sheets": len(stock.layout.sheets),
               "sheet_equivalents": round(stock.layout.sheet_equivalents, 3), "engine": stock.layout.engine,
               "remnant_mm": [round(v, 1) for v in stock.layout.remnant_mm] if stock.layout.remnant_mm else None,
               "fit": stock_fit(router, stock.material).as_dict()}
              for stock in job.layouts]
    return {"machine": machine["name"], "dialect": router.dialect, "margin_mm": margin,
            "tool_table": job.tool_table.name if job.tool_table else None,
            "machining_time_s": round(job.machining_time_s, 1), "stocks": stocks, "sheets": sheets,
            "unplaced": job.unplaced,
            "items": [item_record(item.manifest, order_ref=item.order_ref, item_ref=item.item_ref or str(index + 1),
                                  quantity=item.quantity) for index, item in enumerate(items)]}
