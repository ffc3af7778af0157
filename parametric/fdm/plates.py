"""Plates: how many copies of a part go on one plate, and a rendered product's printed parts sliced onto plates."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import FieldError, ValidationError
from ..machines import Printer, public_record
from .profile import PLATE_SPACING_MM, PrintSettings, border_mm
from .prusaslicer import PlateTooFull, SliceResult, fits_printer, slice_part, total_estimates

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
                                    out_dir, copies=part["quantity"] * quantity, settings=settings,
                                    stl_sha256=record["sha256"], part=part["name"]))
    return results


def slicing_record(results: Sequence[SliceResult], printer: Printer, material_id: str, quantity: int,
                   settings: PrintSettings) -> dict[str, Any]:
    """What a manifest (and a job) records of slicing: machine, material, settings, plates, total estimates."""
    return {"machine": public_record(printer), "material": material_id, "quantity": quantity,
            "settings": settings.as_dict(), "plates": [r.to_dict() for r in results],
            "estimates": total_estimates(results).to_dict(),
            "timings": {"slicer_s": round(sum(r.slicer_s for r in results), 4),
                        "ours_s": round(sum(r.ours_s for r in results), 4)}}
