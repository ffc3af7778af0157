"""Plates: how many copies of a part go on one plate, a rendered product's printed parts sliced onto plates, and
packed plates: parts of many orders and files packed by us (:mod:`.packing`), sliced once per plate keeping our
positions, checked and reported (:func:`make_plates`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import FieldError, ValidationError
from ..machines import Printer, public_record
from .profile import PLATE_SPACING_MM, PrintSettings, border_mm
from .prusaslicer import (
    NO_ESTIMATES,
    Estimates,
    PlateTooFull,
    SlicerError,
    SliceResult,
    fits_printer,
    slice_part,
    slice_placed,
    total_estimates,
)

PLATE_FILL = 0.6
"""Share of the bed area a plate is planned to fill; PrusaSlicer's arrangement needs slack."""


def copies_per_plate(size_mm: Sequence[float], printer: Printer, turned: bool,
                     settings: PrintSettings | None = None) -> int:
    """How many copies of a part to plan on one plate (by area, with spacing and slack), the skirt and brim
    around them kept on the bed."""
    x, y = (size_mm[1], size_mm[0]) if turned else (size_mm[0], size_mm[1])
    border = 2 * border_mm(printer, settings or PrintSettings())
    bx, by = (size - border for size in printer.build_volume_mm[:2])
    per_row = max(1, int((bx + PLATE_SPACING_MM) // (x + PLATE_SPACING_MM)))
    per_column = max(1, int((by + PLATE_SPACING_MM) // (y + PLATE_SPACING_MM)))
    by_area = int(PLATE_FILL * bx * by // ((x + PLATE_SPACING_MM) * (y + PLATE_SPACING_MM)))
    return max(1, min(per_row * per_column, by_area))


def slice_copies(stl: str | os.PathLike[str], size_mm: Sequence[float], printer: Printer, material_id: str,
                 out_dir: str | os.PathLike[str], *, copies: int = 1, settings: PrintSettings | None = None,
                 stl_sha256: str | None = None, part: str | None = None, use_cache: bool = True
                 ) -> list[SliceResult]:
    """Slice ``copies`` of a part onto as many plates as it takes: ``<part>.gcode``, ``<part>-2.gcode``, ...

    Copies per plate are planned by area; a plate PrusaSlicer still cannot arrange is split in two.
    """
    name = part or Path(stl).stem
    fits, turned, reason = fits_printer(size_mm, printer)
    if not fits:
        raise ValidationError([FieldError("machine", reason)])
    per_plate = copies_per_plate(size_mm, printer, turned, settings)
    pending = [min(per_plate, copies - done) for done in range(0, copies, per_plate)]
    results: list[SliceResult] = []
    while pending:
        count = pending.pop(0)
        index = len(results) + 1
        target = Path(out_dir) / (f"{name}.gcode" if index == 1 else f"{name}-{index}.gcode")
        try:
            results.append(slice_part(stl, size_mm, printer, material_id, target, copies=count, settings=settings,
                                      stl_sha256=stl_sha256, part=name, use_cache=use_cache))
        except PlateTooFull:
            if count == 1:
                raise
            pending[:0] = [count - count // 2, count // 2]
    return results


def slice_manifest(manifest: Any, printer: Printer, material_id: str, out_dir: str | os.PathLike[str], *,
                   quantity: int = 1, settings: PrintSettings | None = None, process: str | None = None
                   ) -> list[SliceResult]:
    """Slice every printed part of a rendered manifest (with STL files) for ``printer``."""
    from ..routing import route

    parts = [part for part in manifest.parts if (part.get("process") or process) == "fdm"]
    refused = [FieldError("machine", f"{v.part}: {v.reason}")
               for v in (route(part, material_id, [printer], process=process) for part in parts) if not v.ok]
    if refused:
        raise ValidationError(refused)
    results = []
    for part in parts:
        record = next(r for r in manifest.files if r["format"] == "stl" and r["part"] == part["name"])
        results.extend(slice_copies(manifest.directory / record["filename"], part["size_mm"], printer, material_id,
                                    out_dir, copies=part["quantity"] * quantity, settings=part_settings(part, settings),
                                    stl_sha256=record["sha256"], part=part["name"]))
    return results


def part_settings(part: Mapping[str, Any], settings: PrintSettings | None) -> PrintSettings:
    """The settings a printed part is sliced with: the job's, with supports turned on where the part's pose
    still overhangs (the manifest's ``print`` record, from :mod:`.orientation`)."""
    settings = settings or PrintSettings()
    if (part.get("print") or {}).get("supports") and not settings.supports:
        return replace(settings, supports=True)
    return settings


def slicing_record(results: Sequence[SliceResult], printer: Printer, material_id: str, quantity: int,
                   settings: PrintSettings) -> dict[str, Any]:
    """What a manifest (and a job) records of slicing: machine, material, settings, plates, total estimates."""
    return {"machine": public_record(printer), "material": material_id, "quantity": quantity,
            "settings": settings.as_dict(), "plates": [r.to_dict() for r in results],
            "estimates": total_estimates(results).to_dict(),
            "timings": {"slicer_s": round(sum(r.slicer_s for r in results), 4),
                        "ours_s": round(sum(r.ours_s for r in results), 4)}}


# -- packed plates: parts of many orders on shared plates, sliced once each ---------------------------------------

OBJECT_TOLERANCE_MM = 0.5
"""How far an object's extrusion may reach beyond its placed footprint's bounding box (rounding, extrusion width)."""
PICTURE_PX_PER_MM = 4.0


@dataclass(frozen=True)
class PlateSource:
    """Copies of one printed part to put on plates: ``file`` names it in the report (an STL as given, or
    ``TEMPLATE:PART``), ``name`` on the plate's picture; ``mesh`` is its triangle mesh as it prints (trimesh)."""

    file: str
    name: str
    mesh: Any
    count: int
    material: str
    manifest: Any = None
    """The render the part comes from (a :class:`~parametric.manifest.Manifest`), when it is a template's part:
    the report then names its template, part, order and item, and the batch sheet its quality checks."""
    part: str | None = None
    order_ref: str | None = None
    item_ref: str | None = None


@dataclass
class PackedPlate:
    """One sliced plate: its layout (bed coordinates), its sources' indices, the slicer's result and every
    object's share of the plate's estimates."""

    index: int
    material: str
    layout: Any  # SheetLayout
    sources: list[int]
    parts: list[Any]  # PrintPart per source of the plate's material group, in ``sources`` order
    result: SliceResult
    picture: Path
    shares: list[float]


@dataclass
class PlateRun:
    """Everything :func:`make_plates` made: the plates, the copies left off with their reasons, ``report.json``."""

    plates: list[PackedPlate]
    unplaced: list[dict[str, Any]]
    report: dict[str, Any]
    report_path: Path
    notes: list[str]


def _placed_mesh(mesh: Any, rotation_deg: float, x_mm: float, y_mm: float) -> Any:
    """A copy of ``mesh`` turned about Z through its origin, moved by (x, y) and set down on the bed."""
    import numpy
    import trimesh

    placed = mesh.copy()
    placed.apply_transform(trimesh.transformations.rotation_matrix(numpy.radians(rotation_deg), (0.0, 0.0, 1.0)))
    placed.apply_translation((x_mm, y_mm, -float(placed.bounds[0][2])))
    return placed


class PlateCheck:
    """The check of a sliced plate's G-code against its layout: every object printed, where it was placed, and
    nothing off the bed. ``objects`` maps each G-code label to (what to call it, its placed footprint); after a
    call, ``found`` holds what the G-code extrudes per object."""

    def __init__(self, objects: dict[str, tuple[str, Any]], printer: Printer):
        self.objects = objects
        self.printer = printer
        self.found: Any = None

    def __call__(self, gcode: Path) -> None:
        from .gcode import object_extrusion

        found = object_extrusion(gcode)
        objects, printer = self.objects, self.printer
        problems = []
        for label, (what, polygon) in objects.items():
            entry = found.objects.get(label)
            if entry is None or entry[0] <= 0:
                problems.append(f"{what} is not in the G-code")
                continue
            minx, miny, maxx, maxy = polygon.bounds
            bounds = entry[1]
            if (bounds.x_min < minx - OBJECT_TOLERANCE_MM or bounds.y_min < miny - OBJECT_TOLERANCE_MM
                    or bounds.x_max > maxx + OBJECT_TOLERANCE_MM or bounds.y_max > maxy + OBJECT_TOLERANCE_MM):
                problems.append(f"{what} is printed at X {bounds.x_min:.1f} to {bounds.x_max:.1f}, "
                                f"Y {bounds.y_min:.1f} to {bounds.y_max:.1f} mm, not where it was placed "
                                f"(X {minx:.1f} to {maxx:.1f}, Y {miny:.1f} to {maxy:.1f} mm)")
        strays = sorted(set(found.objects) - set(objects))
        if strays:
            problems.append(f"the G-code prints objects that were not placed: {', '.join(strays)}")
        x, y = printer.build_volume_mm[:2]
        if found.overall is not None and not found.overall.inside(x, y):
            b = found.overall
            problems.append(f"it extrudes beyond the bed of {printer.name} (X {b.x_min:.1f} to {b.x_max:.1f}, "
                            f"Y {b.y_min:.1f} to {b.y_max:.1f} mm on a {x:g} x {y:g} mm bed)")
        if problems:
            raise SlicerError("the sliced plate failed its check: " + "; ".join(problems))
        self.found = found


def _shares(found: Any, labels: Sequence[str]) -> list[float]:
    """Each object's share of the plate: its extruded filament over all the objects' (the skirt, the brim and the
    time between objects are shared out in the same proportion)."""
    total = sum(found.objects[label][0] for label in labels)
    return [found.objects[label][0] / total if total > 0 else 1.0 / len(labels) for label in labels]


def make_plates(sources: Sequence[PlateSource], printer: Printer, out_dir: str | os.PathLike[str], *,
                spacing_mm: float = PLATE_SPACING_MM, settings: PrintSettings | None = None, skirt: bool = True,
                seconds: float = 5.0, left_off: Sequence[dict[str, Any]] = (), batch_sheet: bool = True,
                batch_ref: str | None = None, batch_url: str | None = None) -> PlateRun:
    """Pack every copy of ``sources`` onto as few plates of ``printer`` as the packer manages (one material per
    plate), check each plate's layout, slice each once with PrusaSlicer keeping the positions, check its G-code
    (every object printed where it was placed, nothing beyond the bed), and write into ``out_dir`` per plate
    ``plate-N.gcode`` and ``plate-N.png``, with ``batch_sheet`` the batch sheet (``batch-sheet.html`` and ``.pdf``,
    named ``batch_ref``, default the folder's name, its QR code to ``batch_url``), and ``report.json``, whose
    ``files`` lists the batch sheet.

    Copies that cannot go on this printer (too tall, wider than the bed, a filament not loaded) are listed in
    the report's ``unplaced`` with the reason, after ``left_off`` (copies the caller could not even read, as
    ``{"file", "copy", "reason"}``); the rest are still plated. Raises
    :class:`~parametric.ValidationError` on bad input, :class:`~parametric.batching.LayoutError` when a layout
    fails its check and :class:`SlicerError` when PrusaSlicer fails or its G-code fails the check.
    """
    import tempfile

    from ..batching.output import write_sheet_png
    from ..files import atomic_write_json
    from ..jobsheet.batch import write_batch_files
    from .footprint import footprint
    from .packing import PrintPart, check_plates, pack_plates

    settings = settings or PrintSettings()
    problems = settings.problems(printer)
    if not sources:
        problems.append(FieldError("parts", "give at least one part to plate"))
    problems.extend(FieldError(source.file, f"{source.count} copies is out of range; allowed: 1 or more")
                    for source in sources if source.count < 1)
    if problems:
        raise ValidationError(problems)
    from ..batching.validate import LayoutError

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    border = border_mm(printer, settings, skirt=skirt)
    groups: dict[str, list[int]] = {}
    for index, source in enumerate(sources):
        groups.setdefault(source.material, []).append(index)
    unplaced: list[dict[str, Any]] = [dict(entry) for entry in left_off]
    plates: list[PackedPlate] = []
    notes: list[str] = []
    for material, members in groups.items():
        if material not in printer.materials:
            loaded = ", ".join(printer.materials) or "nothing"
            unplaced.extend({"file": sources[i].file, "copy": copy, "reason": f"{printer.name} has {loaded} loaded, "
                             f"not {material}"} for i in members for copy in range(1, sources[i].count + 1))
            continue
        parts = [PrintPart(sources[i].name, footprint(sources[i].mesh), sources[i].count,
                           float(sources[i].mesh.extents[2]),
                           size_mm=(float(sources[i].mesh.extents[0]), float(sources[i].mesh.extents[1])))
                 for i in members]
        layout = pack_plates(parts, printer, spacing_mm=spacing_mm, border_mm=border, seconds=seconds)
        notes.extend(layout.notes)
        found = check_plates(layout, parts, printer, spacing_mm=spacing_mm, border_mm=border)
        if found:  # checked again here, by itself, right before anything is sliced
            raise LayoutError(found)
        unplaced.extend({"file": sources[members[entry.part]].file, "copy": entry.copy, "reason": entry.reason}
                        for entry in layout.unplaced)
        for sheet in layout.sheets:
            number = len(plates) + 1
            objects: dict[str, tuple[str, Any]] = {}
            with tempfile.TemporaryDirectory(prefix=f".plate-{number}-", dir=folder) as scratch:
                files = []
                for order, entry in enumerate(sheet.placements, start=1):
                    source = sources[members[entry.part]]
                    label = f"o{order:03d}.stl"
                    _placed_mesh(source.mesh, entry.rotation_deg, entry.x_mm, entry.y_mm).export(
                        Path(scratch) / label, file_type="stl")
                    files.append(Path(scratch) / label)
                    objects[label] = (f"{source.file} copy {entry.copy}", entry.polygon(parts[entry.part].footprint))
                verify = PlateCheck(objects, printer)
                result = slice_placed(files, printer, material, folder / f"plate-{number}.gcode", settings=settings,
                                      skirt=skirt, name=f"plate {number}", verify=verify)
            shares = _shares(verify.found, list(objects))
            picture = write_sheet_png(folder / f"plate-{number}.png", replace(sheet, index=number),
                                      [part.as_part() for part in parts], px_per_mm=PICTURE_PX_PER_MM)
            plates.append(PackedPlate(number, material, replace(sheet, index=number), members, parts, result,
                                      picture, shares))
    for stale in folder.glob("plate-*.*"):
        number = stale.stem[6:]
        if stale.suffix in (".gcode", ".png", ".ini") and number.isdigit() and int(number) > len(plates):
            stale.unlink()
    report = plate_report(plates, sources, unplaced, printer)
    report["files"] = write_batch_files(report, folder, batch_ref=batch_ref or folder.resolve().name,
                                        batch_url=batch_url, write=batch_sheet)
    path = atomic_write_json(folder / "report.json", report)
    return PlateRun(plates, unplaced, report, path, notes)


def plate_report(plates: Sequence[PackedPlate], sources: Sequence[PlateSource], unplaced: Sequence[dict[str, Any]],
                 printer: Printer) -> dict[str, Any]:
    """The run as ``report.json`` holds it: per plate its G-code, picture, material, objects (file, copy, where,
    turned how, and its share of the estimates) and PrusaSlicer's estimates; per part (file) its copies, plates
    and share of the estimates summed over them; then the copies left off."""
    def rounded(estimates: Estimates, share: float = 1.0) -> dict[str, float]:
        return {key: round(value * share, 4) for key, value in estimates.to_dict().items()}

    by_file: dict[str, dict[str, Any]] = {}
    for plate in plates:
        for entry, share in zip(plate.layout.placements, plate.shares, strict=True):
            file = sources[plate.sources[entry.part]].file
            summary = by_file.setdefault(file, {"file": file, "copies": 0, "plates": [], "estimates": NO_ESTIMATES})
            summary["copies"] += 1
            if plate.index not in summary["plates"]:
                summary["plates"].append(plate.index)
            summary["estimates"] = summary["estimates"] + _scaled(plate.result.estimates, share)
    return {
        "printer": printer.name,
        "bed_mm": [float(v) for v in printer.build_volume_mm[:2]],
        "shares_by": "each object's extruded filament, read from its object labels in the G-code; the skirt, brim "
                     "and travel are shared out in the same proportion",
        "plates": [{
            "index": plate.index,
            "gcode": plate.result.gcode.name,
            "picture": plate.picture.name,
            "material": plate.material,
            "objects": [{"number": order, "file": sources[plate.sources[entry.part]].file, "copy": entry.copy,
                         "x_mm": round(entry.x_mm, 4), "y_mm": round(entry.y_mm, 4),
                         "rotation_deg": round(entry.rotation_deg, 6), "label": f"o{order:03d}.stl",
                         "centre_mm": _centre(entry, plate.parts[entry.part].footprint),
                         **_origin(sources[plate.sources[entry.part]]),
                         "share": round(share, 6), "estimates": rounded(plate.result.estimates, share)}
                        for order, (entry, share) in enumerate(zip(plate.layout.placements, plate.shares,
                                                                   strict=True), start=1)],
            "utilisation": round(plate.layout.utilisation, 4),
            "estimates": rounded(plate.result.estimates),
        } for plate in plates],
        "parts": [{**summary, "estimates": rounded(summary["estimates"])} for summary in by_file.values()],
        "unplaced": list(unplaced),
        "items": _items(sources),
    }


def _centre(entry: Any, footprint: Any) -> list[float]:
    """A point inside the placed object's footprint (bed mm), where the batch sheet numbers it."""
    spot = entry.polygon(footprint).point_on_surface()
    return [round(spot.x, 2), round(spot.y, 2)]


def _origin(source: PlateSource) -> dict[str, Any]:
    """The template, part, order and item an object comes from, when its source is a template's part."""
    if source.manifest is None:
        return {}
    return {"template": source.manifest.template, "part": source.part or source.name, "order": source.order_ref,
            "item": source.item_ref}


def _items(sources: Sequence[PlateSource]) -> list[dict[str, Any]]:
    """One record per ordered item among the sources (:func:`parametric.jobsheet.batch.item_record`)."""
    from ..jobsheet.batch import item_record

    items: dict[tuple[Any, Any], dict[str, Any]] = {}
    for source in sources:
        if source.manifest is None or (source.order_ref, source.item_ref) in items:
            continue
        per_product = next((int(p["quantity"]) for p in source.manifest.parts
                            if p["name"] == (source.part or source.name)), 1)
        items[(source.order_ref, source.item_ref)] = item_record(
            source.manifest, order_ref=source.order_ref, item_ref=source.item_ref,
            quantity=max(1, source.count // max(1, per_product)))
    return list(items.values())


def _scaled(estimates: Estimates, share: float) -> Estimates:
    return Estimates(*(value * share for value in estimates.to_dict().values()))
