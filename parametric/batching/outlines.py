"""Parts from DXF drawings: closed loops joined from their entities, the largest loop the outline,
the loops inside it its holes.

Lines, arcs, polylines (with bulges), circles, ellipses and splines are read from the model
space (block references exploded); text, dimensions and the like are ignored. Open ends are
joined within :data:`JOIN_TOLERANCE_MM`; an outline that stays open, a loop that crosses
itself, a second outline beside the first or an island inside a hole is refused with the file
and the entity (its type and handle) named, as a :class:`~parametric.ValidationError`.
Drawing units are honoured ($INSUNITS); unitless drawings are read as millimetres.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shapely.geometry import LineString, Point, Polygon

from ..errors import FieldError, ValidationError

JOIN_TOLERANCE_MM = 0.05
"""How far apart two entity ends may be and still be joined (mm)."""
FLATTEN_MM = 0.01
"""The largest gap between a curve and the chords that stand for it (mm)."""
UNITS_MM = {0: 1.0, 1: 25.4, 2: 304.8, 4: 1.0, 5: 10.0, 6: 1000.0, 8: 0.0000254, 9: 0.0254, 10: 914.4, 13: 0.001,
            14: 100.0}
"""Millimetres per drawing unit, by $INSUNITS code."""


@dataclass
class _Piece:
    """One entity's flattened points (mm) and whether it closes on itself."""

    entity: str
    points: list[tuple[float, float]]
    closed: bool


@dataclass
class _Loop:
    entities: list[str]
    points: list[tuple[float, float]]


def _name(entity: object, inside: str | None = None) -> str:
    handle = getattr(entity.dxf, "handle", None)  # type: ignore[attr-defined]
    own = f"{entity.dxftype()} #{handle}" if handle else entity.dxftype()  # type: ignore[attr-defined]
    return f"{own} in {inside}" if inside else own


def _pieces(entities: object, scale: float, inside: str | None = None) -> Iterator[_Piece]:
    from ezdxf import path as dxf_path

    for entity in entities:  # type: ignore[attr-defined]
        kind = entity.dxftype()
        name = _name(entity, inside)
        if kind == "INSERT":
            yield from _pieces(entity.virtual_entities(), scale, inside or name)
            continue
        if kind == "LINE":
            points = [entity.dxf.start, entity.dxf.end]
            closed = False
        elif kind in ("ARC", "CIRCLE", "ELLIPSE", "SPLINE"):
            points = list(entity.flattening(FLATTEN_MM / scale))
            closed = kind == "CIRCLE" or (kind == "ELLIPSE" and math.isclose(
                abs(entity.dxf.end_param - entity.dxf.start_param), math.tau, abs_tol=1e-9))
        elif kind == "LWPOLYLINE" or (kind == "POLYLINE" and not (entity.is_polygon_mesh or entity.is_poly_face_mesh)):
            points = list(dxf_path.make_path(entity).flattening(FLATTEN_MM / scale))
            closed = bool(entity.closed)
        else:
            continue
        flat = [(float(point[0]) * scale, float(point[1]) * scale) for point in points]
        if len(flat) >= 2 and math.dist(flat[0], flat[-1]) <= JOIN_TOLERANCE_MM:
            closed = True
        if closed and len(flat) >= 2 and math.dist(flat[0], flat[-1]) <= JOIN_TOLERANCE_MM:
            flat = flat[:-1]
        if len(flat) >= 2 or closed:
            yield _Piece(name, flat, closed)


def _chain(pieces: list[_Piece], source: str) -> tuple[list[_Loop], list[FieldError]]:
    """Closed pieces as they are; open ones joined end to end into loops."""
    loops = [_Loop([piece.entity], piece.points) for piece in pieces if piece.closed]
    problems = []
    open_pieces = [piece for piece in pieces if not piece.closed]
    used = [False] * len(open_pieces)
    for start, first in enumerate(open_pieces):
        if used[start]:
            continue
        used[start] = True
        entities, points = [first.entity], list(first.points)
        while math.dist(points[0], points[-1]) > JOIN_TOLERANCE_MM:
            end = points[-1]
            for index, piece in enumerate(open_pieces):
                if used[index]:
                    continue
                if math.dist(piece.points[0], end) <= JOIN_TOLERANCE_MM:
                    points.extend(piece.points[1:])
                elif math.dist(piece.points[-1], end) <= JOIN_TOLERANCE_MM:
                    points.extend(reversed(piece.points[:-1]))
                else:
                    continue
                used[index] = True
                entities.append(piece.entity)
                break
            else:
                problems.append(FieldError(source, (
                    f"an open outline: {entities[-1]} ends at ({end[0]:.3f}, {end[1]:.3f}) and nothing continues "
                    f"from there (the loop started at {entities[0]}, ({points[0][0]:.3f}, {points[0][1]:.3f})); "
                    f"close the gap to within {JOIN_TOLERANCE_MM:g} mm")))
                break
        else:
            loops.append(_Loop(entities, points[:-1] if len(points) > 1 else points))
    return loops, problems


def _crossing(loop: _Loop, source: str, pieces: dict[str, _Piece]) -> FieldError | None:
    """A problem if ``loop`` crosses itself or encloses nothing, naming the entities at the crossing."""
    if len(loop.points) < 3:
        return FieldError(source, f"{', '.join(loop.entities)} encloses no area")
    polygon = Polygon(loop.points)
    if polygon.is_valid:
        return None if polygon.area > 0 else FieldError(source, f"{', '.join(loop.entities)} encloses no area")
    from shapely.validation import explain_validity

    reason = explain_validity(polygon)
    where = None
    if "[" in reason:
        x, y = (float(value) for value in reason[reason.index("[") + 1:reason.rindex("]")].split()[:2])
        where = Point(x, y)
    near = [name for name in loop.entities
            if where is not None and len(pieces[name].points) >= 2
            and LineString(pieces[name].points).distance(where) <= JOIN_TOLERANCE_MM * 10]
    named = ", ".join(near or loop.entities[:3])
    at = f" at ({where.x:.3f}, {where.y:.3f})" if where is not None else ""
    return FieldError(source, f"a loop that crosses itself{at}: {named}; an outline must not cross itself")


def outline_from_dxf(path: str | os.PathLike[str], *, source: str | None = None) -> Polygon:
    """The part drawn in the DXF file at ``path``: its outline with its holes, in mm as drawn.

    ``source`` is how the file is named in errors (default: the path as given).
    """
    import ezdxf

    label = source or str(path)
    if not Path(path).is_file():
        raise ValidationError([FieldError(label, "cannot be read: no such file")])
    try:
        document = ezdxf.readfile(Path(path))
    except (OSError, ezdxf.DXFError) as error:
        raise ValidationError([FieldError(label, f"is not a readable DXF file ({error})")]) from None
    units = int(document.header.get("$INSUNITS", 0))
    scale = UNITS_MM.get(units, 1.0)
    pieces = list(_pieces(document.modelspace(), scale))
    loops, problems = _chain(pieces, label)
    by_name = {piece.entity: piece for piece in pieces}
    good = []
    for loop in loops:
        problem = _crossing(loop, label, by_name)
        if problem is None:
            good.append(loop)
        else:
            problems.append(problem)
    if not good and not problems:
        problems.append(FieldError(label, "has no closed outline (lines, arcs, polylines, circles or splines)"))
    if problems:
        raise ValidationError(problems)
    polygons = sorted(((Polygon(loop.points), loop) for loop in good), key=lambda entry: -entry[0].area)
    outline, _ = polygons[0]
    holes: list[tuple[Polygon, _Loop]] = []
    for polygon, loop in polygons[1:]:
        where = ", ".join(loop.entities[:3])
        if not outline.contains(polygon):
            problems.append(FieldError(label, (
                f"{where} is not inside the outline ({', '.join(polygons[0][1].entities[:3])})"
                if not outline.intersects(polygon) else f"{where} crosses the outline")
                + "; a file holds one part: its largest loop is the outline, the loops inside it its holes"))
        elif any(hole.intersects(polygon) for hole, _ in holes):
            problems.append(FieldError(label, f"{where} lies in or crosses another hole; an island inside a hole "
                                              "is a separate part: give it its own file"))
        else:
            holes.append((polygon, loop))
    if problems:
        raise ValidationError(problems)
    part = Polygon(outline.exterior.coords, [hole.exterior.coords for hole, _ in holes])
    return part
