"""A nested job on disk: per sheet a DXF to cut and an SVG (and PNG) picture, plus ``report.json``.

The DXF is in millimetres with the sheet's lower-left corner at the origin: part outlines on
layer ``OUTLINE``, their holes on ``HOLES``, the sheet's edge on ``SHEET`` and each part's name
and copy as TEXT on ``LABELS`` (neither of the last two is cut).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from shapely.geometry import Polygon

from ..files import atomic_target, atomic_write, atomic_write_json
from .layout import Layout, Part, SheetLayout

LAYERS = {"SHEET": 8, "OUTLINE": 7, "HOLES": 1, "LABELS": 3}
"""The DXF layers and their colours (AutoCAD colour index)."""
PNG_PX_PER_MM = 0.5


def _placed(sheet: SheetLayout, parts: Sequence[Part]) -> list[tuple[str, Polygon]]:
    return [(f"{parts[entry.part].name} #{entry.copy}", entry.polygon(parts[entry.part].outline))
            for entry in sheet.placements]


def _label_size(polygon: Polygon) -> float:
    minx, miny, maxx, maxy = polygon.bounds
    return max(2.0, min(20.0, (maxy - miny) / 6, (maxx - minx) / 10))


def write_sheet_dxf(path: str | os.PathLike[str], sheet: SheetLayout, parts: Sequence[Part]) -> Path:
    """The sheet's cutting drawing at ``path`` (written atomically)."""
    import ezdxf

    document = ezdxf.new("R2010", units=4)  # 4: millimetres
    document.header["$MEASUREMENT"] = 1
    for name, colour in LAYERS.items():
        document.layers.add(name, color=colour)
    space = document.modelspace()
    size = sheet.sheet
    space.add_lwpolyline([(0, 0), (size.length_mm, 0), (size.length_mm, size.width_mm), (0, size.width_mm)],
                         close=True, dxfattribs={"layer": "SHEET"})
    for label, polygon in _placed(sheet, parts):
        space.add_lwpolyline(list(polygon.exterior.coords)[:-1], close=True, dxfattribs={"layer": "OUTLINE"})
        for ring in polygon.interiors:
            space.add_lwpolyline(list(ring.coords)[:-1], close=True, dxfattribs={"layer": "HOLES"})
        spot = polygon.point_on_surface()
        space.add_text(label, height=_label_size(polygon), dxfattribs={"layer": "LABELS"}).set_placement(
            (spot.x, spot.y), align=ezdxf.enums.TextEntityAlignment.MIDDLE_CENTER)
    with atomic_target(path) as temporary:
        document.saveas(temporary)
    return Path(path)


def _path_data(polygon: Polygon, height: float) -> str:
    rings = [polygon.exterior, *polygon.interiors]
    return " ".join("M " + " L ".join(f"{x:.2f},{height - y:.2f}" for x, y in ring.coords[:-1]) + " Z"
                    for ring in rings)


def sheet_svg(sheet: SheetLayout, parts: Sequence[Part]) -> str:
    """A picture of the sheet (1 SVG unit = 1 mm, Y up as in the DXF), each part outlined and labelled."""
    length, width = sheet.sheet.length_mm, sheet.sheet.width_mm
    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{length:g}mm" height="{width:g}mm" '
             f'viewBox="0 0 {length:g} {width:g}">',
             f"<title>Sheet {sheet.index}: {len(sheet.placements)} parts, {sheet.utilisation:.1%} used</title>",
             f'<rect x="0" y="0" width="{length:g}" height="{width:g}" fill="#f4efe6" stroke="#888" stroke-width="2"/>']
    for label, polygon in _placed(sheet, parts):
        spot = polygon.point_on_surface()
        lines.append(f'<path d="{_path_data(polygon, width)}" fill="#c9a66b" fill-rule="evenodd" stroke="#4a3310" '
                     f'stroke-width="1.5"><title>{escape(label)}</title></path>')
        lines.append(f'<text x="{spot.x:.2f}" y="{width - spot.y:.2f}" font-family="sans-serif" '
                     f'font-size="{_label_size(polygon):.1f}" text-anchor="middle" dominant-baseline="middle" '
                     f'fill="#222">{escape(label)}</text>')
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def write_sheet_png(path: str | os.PathLike[str], sheet: SheetLayout, parts: Sequence[Part],
                    px_per_mm: float = PNG_PX_PER_MM) -> Path:
    """A small raster picture of the sheet (parts filled, holes open) at ``path``."""
    from PIL import Image, ImageDraw

    length, width = sheet.sheet.length_mm, sheet.sheet.width_mm
    image = Image.new("RGB", (max(1, round(length * px_per_mm)), max(1, round(width * px_per_mm))), "#f4efe6")
    draw = ImageDraw.Draw(image)

    def pixels(ring: Any) -> list[tuple[float, float]]:
        return [(x * px_per_mm, (width - y) * px_per_mm) for x, y in ring.coords]

    for label, polygon in _placed(sheet, parts):
        draw.polygon(pixels(polygon.exterior), fill="#c9a66b", outline="#4a3310")
        for ring in polygon.interiors:
            draw.polygon(pixels(ring), fill="#f4efe6", outline="#4a3310")
        spot = polygon.point_on_surface()
        draw.text((spot.x * px_per_mm, (width - spot.y) * px_per_mm), label, fill="#222222", anchor="mm")
    with atomic_target(path) as temporary:
        image.save(temporary, format="PNG")
    return Path(path)


def layout_report(layout: Layout, parts: Sequence[Part]) -> dict[str, Any]:
    """The job as ``report.json`` holds it: sheets with their placements (parts named by their
    ``name``, the source file), and the unplaced copies with their reasons."""
    return {
        "sheets": [{
            "index": sheet.index,
            "size_mm": [sheet.sheet.length_mm, sheet.sheet.width_mm],
            "used_length_mm": round(sheet.used_length_mm, 3),
            "utilisation": round(sheet.utilisation, 4),
            "placements": [{"file": parts[entry.part].name, "copy": entry.copy, "x_mm": round(entry.x_mm, 4),
                            "y_mm": round(entry.y_mm, 4), "rotation_deg": round(entry.rotation_deg, 6)}
                           for entry in sheet.placements],
        } for sheet in layout.sheets],
        "unplaced": [{"file": parts[entry.part].name, "copy": entry.copy, "reason": entry.reason}
                     for entry in layout.unplaced],
    }


def write_layout(layout: Layout, parts: Sequence[Part], out_dir: str | os.PathLike[str], *,
                 png: bool = True) -> list[Path]:
    """``sheet-N.dxf``, ``sheet-N.svg`` (and ``.png``) per sheet and ``report.json`` in ``out_dir``;
    sheet files a previous, longer run left there are removed. Returns the files written."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for sheet in layout.sheets:
        stem = folder / f"sheet-{sheet.index}"
        written.append(write_sheet_dxf(stem.with_suffix(".dxf"), sheet, parts))
        written.append(atomic_write(stem.with_suffix(".svg"), sheet_svg(sheet, parts)))
        if png:
            written.append(write_sheet_png(stem.with_suffix(".png"), sheet, parts))
    for stale in folder.glob("sheet-*.*"):
        if stale.suffix in (".dxf", ".svg", ".png") and stale.stem[6:].isdigit() and stale not in written:
            stale.unlink()
    written.append(atomic_write_json(folder / "report.json", layout_report(layout, parts)))
    return written
