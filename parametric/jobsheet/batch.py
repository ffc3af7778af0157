"""Batch sheets: the paper that goes with a batch of nested CNC sheets or packed print plates, as HTML and PDF.

A batch sheet shows, per sheet or plate, its picture with every part numbered (the number sits on the
part, at the point the layout report gives as its ``centre_mm``), then a table per part: number, order,
item, product, part, copy, material, turn and what to check on it (its size, from the render's
manifest); the products' quality checks (their key dimensions with tolerances) to measure and sign;
the totals from the layout reports (machining time from CAM, or print time and filament from
PrusaSlicer; sheets and sheet-equivalents; utilisation); and a QR code to the batch on the dashboard.

It is made from a layout report alone, the ``report.json`` that :func:`parametric.batching.sheets.cut_sheets`
(key ``sheets``) and :func:`parametric.fdm.plates.make_plates` (key ``plates``) write, with the pictures
they wrote beside it, so any caller (the command line, the web's batches) gets the same sheet::

    write_batch_sheet(job.report, out_dir, batch_ref="B-0012", batch_url="https://shop.example/staff/batches/12")
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import mimetypes
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import units
from ..errors import ValidationError
from ..files import atomic_write
from ..manifest import Manifest

HTML_NAME = "batch-sheet.html"
PDF_NAME = "batch-sheet.pdf"
NO_URL = "No QR code: no dashboard address set for this batch"


@dataclass
class BatchSheet:
    """The files of one batch sheet and how long they took (seconds)."""

    html: Path
    pdf: Path | None
    timings: dict[str, float] = field(default_factory=dict)

    def files(self) -> dict[str, str]:
        """The sheet's files by role, as a layout report's ``files`` lists them (names in the folder)."""
        written = {"batch_sheet_html": self.html.name}
        if self.pdf is not None:
            written["batch_sheet_pdf"] = self.pdf.name
        return written


def item_record(manifest: Manifest, *, order_ref: str | None, item_ref: str | None, quantity: int) -> dict[str, Any]:
    """What a layout report keeps of one ordered item for its batch sheet: references, product, the quality
    checks of its template for its parameters, and each part's size (mm)."""
    from ..registry import get_template

    template = get_template(manifest.template)
    checks = template.quality_checks(template.resolve(manifest.params))
    return {"order": order_ref, "item": item_ref, "template": manifest.template, "product": template.name,
            "version": manifest.version, "quantity": quantity, "material": manifest.material.get("id"),
            "checks": [{"label": check.label, "nominal_mm": check.nominal_mm, "tolerance_mm": check.tolerance_mm}
                       for check in checks],
            "parts": {part["name"]: [round(float(v), 2) for v in part["size_mm"]] for part in manifest.parts}}


def _number(value: float, digits: int = 1) -> str:
    return units.format_number(value, digits)


def _size(values: Sequence[float]) -> str:
    return " x ".join(_number(v) for v in values) + " mm"


def _material_name(material_id: str | None) -> str:
    from ..materials import get_material

    if not material_id:
        return "not given"
    try:
        return get_material(material_id).name
    except (KeyError, ValueError, LookupError):
        return material_id


def _picture_uri(folder: Path, name: str | None) -> str | None:
    if not name or not (folder / name).is_file():
        return None
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"data:{kind};base64," + base64.b64encode((folder / name).read_bytes()).decode("ascii")


PICTURE_BOX_MM = (186.0, 110.0)
"""The largest a sheet's or plate's picture is printed (width, height), so its table can follow on the page."""


def _picture_box(size_mm: Sequence[float]) -> dict[str, float]:
    """The printed width and height (mm) of a picture of a sheet or bed of ``size_mm``, as large as fits."""
    scale = min(PICTURE_BOX_MM[0] / float(size_mm[0]), PICTURE_BOX_MM[1] / float(size_mm[1]))
    return {"width_mm": round(float(size_mm[0]) * scale, 2), "height_mm": round(float(size_mm[1]) * scale, 2)}


def _marker(entry: Mapping[str, Any], size_mm: Sequence[float]) -> dict[str, Any]:
    """Where a part's number goes on the picture, as shares of its width and height from the top-left corner
    (the pictures draw Y up, as the sheet's and the bed's coordinates run)."""
    x, y = entry.get("centre_mm") or (entry["x_mm"], entry["y_mm"])
    length, width = float(size_mm[0]), float(size_mm[1])
    return {"number": entry["number"], "left": round(100 * min(max(x / length, 0.0), 1.0), 3),
            "top": round(100 * (1 - min(max(y / width, 0.0), 1.0)), 3)}


def _rows(entries: Sequence[Mapping[str, Any]], items: Mapping[tuple[Any, Any], Mapping[str, Any]],
          material: str) -> list[dict[str, str]]:
    from ..registry import get_template

    rows = []
    for entry in entries:
        item = items.get((entry.get("order"), entry.get("item"))) or {}
        part = entry.get("part") or entry.get("file") or ""
        product = item.get("product")
        if product is None and entry.get("template"):
            try:
                product = get_template(entry["template"]).name
            except ValidationError:  # a template not installed here keeps its id
                product = entry["template"]
        size = (item.get("parts") or {}).get(part)
        check = f"size {_size(size)}" if size else "no recorded checks (not a rendered product)"
        if item.get("checks"):
            check += f"; {len(item['checks'])} product checks below"
        rows.append({"number": str(entry["number"]), "order": entry.get("order") or "none",
                     "item": entry.get("item") or "", "product": product or entry.get("file") or "",
                     "part": part, "copy_number": str(entry["copy"]), "material": material,
                     "rotation": f"{_number(float(entry['rotation_deg']))}°", "check": check,
                     "inside": bool(entry.get("inside"))})
    return rows


def _numbered(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries with their numbers (1, 2, ... in the layout's order when a report carries none)."""
    return [{**entry, "number": entry.get("number", position)} for position, entry in enumerate(entries, start=1)]


def build_context(report: Mapping[str, Any], folder: str | os.PathLike[str], *, batch_ref: str,
                  batch_url: str | None, created: dt.datetime | None = None) -> dict[str, Any]:
    """Everything the batch sheet template shows, from a layout report and the folder holding its pictures."""
    from . import format_duration, qr_data_uri

    folder = Path(folder)
    items = {(item.get("order"), item.get("item")): item for item in report.get("items", [])}
    layouts = []
    totals: list[dict[str, str]] = []
    if "sheets" in report:
        kind = "cnc"
        machine = f"{report['machine']} (CNC router, {str(report.get('dialect', '')).upper()})"
        for sheet in report["sheets"]:
            material = f"{_material_name(sheet['material'])} {_number(sheet['thickness_mm'])} mm"
            placements = _numbered(sheet["placements"])
            facts = [f"{_size(sheet['size_mm'])} {material}", f"{len(placements)} parts",
                     f"{sheet['utilisation']:.1%} used", f"machining {format_duration(sheet['machining_time_s'])}",
                     f"programs {', '.join(sheet['gcode'])}"]
            if sheet.get("remnant_mm"):
                facts.append(f"keep the offcut of {_number(sheet['remnant_mm'][0], 0)} x "
                             f"{_number(sheet['remnant_mm'][1], 0)} mm")
            layouts.append({"title": f"Sheet {sheet['index']}", "facts": facts,
                            "picture": _picture_uri(folder, sheet.get("svg") or sheet.get("png")),
                            "box": _picture_box(sheet["size_mm"]),
                            "markers": [_marker(entry, sheet["size_mm"]) for entry in placements],
                            "rows": _rows(placements, items, material)})
        totals.append({"label": "Machining time (CAM estimate)", "value": format_duration(report["machining_time_s"])})
        for stock in report.get("stocks", []):
            totals.append({"label": f"{_material_name(stock['material'])} {_number(stock['thickness_mm'])} mm",
                           "value": f"{stock['sheets']} sheet{'s' if stock['sheets'] != 1 else ''} of "
                                    f"{_size(stock['sheet_mm'])}, {_number(stock['sheet_equivalents'], 2)} "
                                    "sheet-equivalents"})
        areas = [(s["size_mm"][0] * s["size_mm"][1], s["utilisation"]) for s in report["sheets"]]
    else:
        kind = "print"
        machine = f"{report['printer']} (printer, bed {_size(report['bed_mm'])})"
        for plate in report["plates"]:
            material = _material_name(plate["material"])
            objects = _numbered(plate["objects"])
            estimates = plate["estimates"]
            facts = [f"{len(objects)} objects", f"{plate['utilisation']:.1%} of the bed",
                     f"print {format_duration(estimates['print_time_s'])}",
                     f"{_number(estimates['filament_g'])} g {material}", f"program {plate['gcode']}"]
            layouts.append({"title": f"Plate {plate['index']}", "facts": facts,
                            "picture": _picture_uri(folder, plate.get("picture")),
                            "box": _picture_box(report["bed_mm"]),
                            "markers": [_marker(entry, report["bed_mm"]) for entry in objects],
                            "rows": _rows(objects, items, material)})
        seconds = sum(plate["estimates"]["print_time_s"] for plate in report["plates"])
        grams: dict[str, float] = {}
        for plate in report["plates"]:
            grams[plate["material"]] = grams.get(plate["material"], 0.0) + plate["estimates"]["filament_g"]
        totals.append({"label": "Print time (PrusaSlicer)", "value": format_duration(seconds)})
        totals.extend({"label": f"Filament {_material_name(material)}", "value": f"{_number(value)} g"}
                      for material, value in grams.items())
        totals.append({"label": "Plates", "value": str(len(report["plates"]))})
        areas = [(report["bed_mm"][0] * report["bed_mm"][1], p["utilisation"]) for p in report["plates"]]
    area = sum(a for a, _ in areas)
    noun = ("sheet" if kind == "cnc" else "plate") + ("s" if len(areas) != 1 else "")
    used = f"{sum(a * u for a, u in areas) / area:.1%} of {len(areas)} {noun}" if area else "nothing placed"
    totals.append({"label": "Utilisation", "value": used})
    unplaced = report.get("unplaced", [])
    if unplaced:
        totals.append({"label": "Not placed", "value": f"{len(unplaced)} part{'s' if len(unplaced) != 1 else ''}"})
    numbers: dict[tuple[Any, Any], list[str]] = {}
    for layout in layouts:
        for row in layout["rows"]:
            key = (row["order"] if row["order"] != "none" else None, row["item"] or None)
            numbers.setdefault(key, []).append(f"{layout['title'].lower()} no. {row['number']}")
    checks = [{"order": item.get("order") or "none", "item": item.get("item") or "", "product": item["product"],
               "parts": ", ".join(numbers.get((item.get("order"), item.get("item")), [])) or "none placed",
               "checks": [{"label": check["label"], "nominal": f"{_number(check['nominal_mm'], 2)} mm",
                           "tolerance": f"± {_number(check['tolerance_mm'], 2)} mm"} for check in item["checks"]]}
              for item in report.get("items", []) if item.get("checks")]
    created = created or dt.datetime.now(dt.UTC)
    return {"batch_ref": batch_ref, "batch_url": batch_url, "qr": qr_data_uri(batch_url) if batch_url else None,
            "no_url": NO_URL, "kind": kind, "machine": machine, "layouts": layouts, "totals": totals,
            "checks": checks, "unplaced": [{"what": entry.get("label") or f"{entry['file']} copy {entry['copy']}",
                                            "reason": entry["reason"]} for entry in unplaced],
            "created": created.strftime("%Y-%m-%d %H:%M UTC")}


def render_html(context: Mapping[str, Any]) -> str:
    """The batch sheet as a standalone HTML page (print styles included)."""
    from . import _environment

    return _environment().get_template("batchsheet.html.j2").render(**context)


def _read(report: Any) -> dict[str, Any]:
    if isinstance(report, (str, os.PathLike)):
        return json.loads(Path(report).read_text("utf-8"))
    if hasattr(report, "report"):  # a SheetJob or a PlateRun
        return report.report
    return dict(report)


def write_batch_sheet(report: Any, out_dir: str | os.PathLike[str], *, batch_ref: str,
                      batch_url: str | None = None, pdf: bool = True) -> BatchSheet:
    """Write ``batch-sheet.html`` and ``batch-sheet.pdf`` for one batch into ``out_dir`` (atomically).

    ``report`` is a layout report (the dict, a path to its ``report.json``, or the ``SheetJob`` or
    ``PlateRun`` that holds it); its pictures are read from ``out_dir``. ``batch_ref`` names the batch
    on the sheet; ``batch_url`` is the batch's page on the dashboard, which the QR code opens (without
    one the sheet says that no dashboard address is set). Raises :class:`~parametric.jobsheet.JobSheetError`
    when WeasyPrint cannot make the PDF.
    """
    from . import write_pdf

    started = time.perf_counter()
    html = render_html(build_context(_read(report), out_dir, batch_ref=batch_ref, batch_url=batch_url))
    html_path = atomic_write(Path(out_dir) / HTML_NAME, html)
    rendered = time.perf_counter()
    pdf_path = write_pdf(html, Path(out_dir) / PDF_NAME) if pdf else None
    return BatchSheet(html_path, pdf_path, {"html_s": rendered - started, "pdf_s": time.perf_counter() - rendered})


def write_batch_files(report: dict[str, Any], out_dir: str | os.PathLike[str], *, batch_ref: str,
                      batch_url: str | None, write: bool = True) -> dict[str, str]:
    """The batch sheet of a layout report just made in ``out_dir``, as its ``files`` entry; without ``write``,
    a batch sheet an earlier run left there is removed (it would describe other sheets)."""
    if write:
        return write_batch_sheet(report, out_dir, batch_ref=batch_ref, batch_url=batch_url).files()
    for name in (HTML_NAME, PDF_NAME):
        (Path(out_dir) / name).unlink(missing_ok=True)
    return {}
