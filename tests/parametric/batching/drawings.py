"""DXF drawings for the batching tests, and the sheets read back from the output DXF."""

from __future__ import annotations

from pathlib import Path

import ezdxf
from shapely.geometry import Polygon


def new_drawing(units: int = 4) -> tuple[ezdxf.document.Drawing, object]:
    document = ezdxf.new("R2010", units=units)
    return document, document.modelspace()


def rectangle_dxf(path: Path, length: float, width: float, *, holes: tuple[tuple[float, float, float], ...] = (),
                  windows: tuple[tuple[float, float, float, float], ...] = ()) -> Path:
    """A ``length`` x ``width`` mm plate from (0, 0): circular ``holes`` (x, y, radius) and
    rectangular ``windows`` (x0, y0, x1, y1)."""
    document, space = new_drawing()
    space.add_lwpolyline([(0, 0), (length, 0), (length, width), (0, width)], close=True)
    for x, y, radius in holes:
        space.add_circle((x, y), radius)
    for x0, y0, x1, y1 in windows:
        space.add_lwpolyline([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], close=True)
    document.saveas(path)
    return path


def disc_dxf(path: Path, diameter: float) -> Path:
    document, space = new_drawing()
    space.add_circle((0, 0), diameter / 2)
    document.saveas(path)
    return path


def l_bracket_dxf(path: Path) -> Path:
    """An L-shaped bracket 300 x 200 mm, arms 60 mm, drawn as LINEs (not in order) and an ARC
    fillet at the inside corner, with a Ø10 hole."""
    document, space = new_drawing()
    space.add_line((0, 0), (300, 0))
    space.add_line((0, 200), (0, 0))  # drawn the other way round
    space.add_line((300, 0), (300, 60))
    space.add_line((300, 60), (80, 60))
    space.add_arc((80, 80), 20, 180, 270)  # the inside fillet from (60, 80) to (80, 60)
    space.add_line((60, 80), (60, 200))
    space.add_line((60, 200), (0, 200))
    space.add_circle((30, 30), 5)
    document.saveas(path)
    return path


def read_sheet(path: Path) -> list[Polygon]:
    """The parts on a nested sheet DXF: OUTLINE polylines with the HOLES polylines inside them."""
    space = ezdxf.readfile(path).modelspace()
    rings = {layer: [Polygon([tuple(point)[:2] for point in entity.get_points("xy")])
                     for entity in space.query(f'LWPOLYLINE[layer=="{layer}"]')]
             for layer in ("OUTLINE", "HOLES")}
    parts = []
    for outline in rings["OUTLINE"]:
        inside = [hole for hole in rings["HOLES"] if outline.contains(hole)
                  and not any(other is not outline and other.contains(hole) and outline.contains(other)
                              for other in rings["OUTLINE"])]
        parts.append(Polygon(outline.exterior.coords, [hole.exterior.coords for hole in inside]))
    return parts
