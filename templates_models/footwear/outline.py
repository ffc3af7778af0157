"""The foot outline every footwear template is cut from, and the side profiles that shape it.

The outline is a closed chain of cubic Bézier curves joined with matching tangents,
drawn once for a reference right foot and stretched to a length and a width.
A Bézier curve stays inside the hull of its control points, and every control point of
the reference lies inside the box its four extreme key points span, so the outline's
bounding box is exactly ``length`` by ``width`` for every size. Stretching is affine, so
a stretched Bézier is still a Bézier: no refitting, no overshoot.

Coordinates: x runs from the back of the heel (0) to the tip of the toes (``length``),
y across the foot with the inner (medial, big-toe) side positive for a right foot and
negative for a left one, z up. Pure Python here; CadQuery is imported inside the
functions that make shapes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

Point = tuple[float, float]
Segment = tuple[Point, Point, Point, Point]
Side = Literal["left", "right"]

_REFERENCE_LENGTH = 270.0
_REFERENCE_WIDTH = 100.0
_HANDLE = 0.39  # handle length over chord: 0.39 draws a quarter circle with a cubic Bézier

# Reference right foot (mm), counter-clockwise from the back of the heel: key point, tangent.
_KEYS: tuple[tuple[Point, Point], ...] = (
    ((0.0, 0.0), (0.0, -1.0)),       # back of the heel (smallest x)
    ((34.0, -34.0), (1.0, -0.08)),   # outer heel
    ((110.0, -42.0), (1.0, -0.15)),  # outer midfoot
    ((172.0, -56.0), (1.0, 0.0)),    # fifth metatarsal head (smallest y)
    ((228.0, -44.0), (0.89, 0.45)),  # little toe
    ((270.0, 12.0), (0.0, 1.0)),     # tip of the longest toe (largest x)
    ((236.0, 41.0), (-1.0, 0.0)),    # big toe, inner side
    ((190.0, 44.0), (-1.0, 0.0)),    # first metatarsal head (largest y)
    ((110.0, 37.0), (-1.0, -0.05)),  # inner arch
    ((34.0, 34.0), (-1.0, 0.0)),     # inner heel
)

MEDIAL_EDGE = 0.44
"""Distance of the inner ball edge from the heel axis, as a fraction of the width."""
LATERAL_EDGE = 0.56
"""Distance of the outer ball edge from the heel axis, as a fraction of the width."""
HEEL_CENTRE = 34.0 / _REFERENCE_LENGTH
"""Where the heel is widest, as a fraction of the length from the back of the heel."""
HEEL_HALF_WIDTH = 34.0 / _REFERENCE_WIDTH
"""Half the heel width, as a fraction of the width."""


def _unit(vector: Point) -> Point:
    norm = math.hypot(*vector)
    return vector[0] / norm, vector[1] / norm


def _reference_segments() -> list[Segment]:
    segments = []
    for index, (start, start_tangent) in enumerate(_KEYS):
        end, end_tangent = _KEYS[(index + 1) % len(_KEYS)]
        chord = math.dist(start, end)
        t0, t1 = _unit(start_tangent), _unit(end_tangent)
        handle = _HANDLE * chord
        segments.append((
            (start[0] / _REFERENCE_LENGTH, start[1] / _REFERENCE_WIDTH),
            ((start[0] + t0[0] * handle) / _REFERENCE_LENGTH, (start[1] + t0[1] * handle) / _REFERENCE_WIDTH),
            ((end[0] - t1[0] * handle) / _REFERENCE_LENGTH, (end[1] - t1[1] * handle) / _REFERENCE_WIDTH),
            (end[0] / _REFERENCE_LENGTH, end[1] / _REFERENCE_WIDTH),
        ))
    return segments


_UNIT_SEGMENTS = _reference_segments()


def foot_outline(length: float, width: float, side: Side) -> list[Segment]:
    """The outline's Bézier segments (control points in mm) for a foot ``length`` by ``width``."""
    sign = 1.0 if side == "right" else -1.0
    segments = [tuple((u * length, sign * v * width) for u, v in segment) for segment in _UNIT_SEGMENTS]
    if sign < 0:  # mirroring reverses the direction of travel; keep it counter-clockwise
        segments = [tuple(reversed(segment)) for segment in reversed(segments)]
    return segments  # type: ignore[return-value]


def medial_sign(side: Side) -> float:
    """+1 when the inner (arch) side of the foot is towards +y, -1 when towards -y."""
    return 1.0 if side == "right" else -1.0


def scale_outline(segments: Sequence[Segment], centre: Point, scale_x: float, scale_y: float) -> list[Segment]:
    """The outline stretched by ``scale_x``, ``scale_y`` about ``centre`` (still a closed Bézier chain)."""
    cx, cy = centre
    return [tuple((cx + (x - cx) * scale_x, cy + (y - cy) * scale_y) for x, y in segment)  # type: ignore[misc]
            for segment in segments]


def heel_pocket(segments: Sequence[Segment], length: float, width: float, wall: float) -> list[Segment]:
    """The outline shrunk about the heel centre so it runs ``wall`` mm inside the heel's back and sides:
    the inside of a heel cup rim on an outline ``length`` by ``width``."""
    heel_centre, heel_half_width = length * HEEL_CENTRE, width * HEEL_HALF_WIDTH
    return scale_outline(segments, (heel_centre, 0.0), 1 - wall / heel_centre, 1 - wall / heel_half_width)


def bezier_point(segment: Segment, t: float) -> Point:
    """The point at parameter ``t`` (0 to 1) of one cubic Bézier segment."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = segment
    a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3
    return a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3


def polygon(segments: Sequence[Segment], per_segment: int = 32) -> list[Point]:
    """The outline sampled as a closed polygon (first point not repeated), for layout decisions."""
    return [bezier_point(segment, i / per_segment) for segment in segments for i in range(per_segment)]


def width_behind(segments: Sequence[Segment], x_limit: float, per_segment: int = 200) -> tuple[float, float]:
    """Smallest and largest y of the outline where x is at most ``x_limit`` (the outline cut square there)."""
    points = polygon(segments, per_segment)
    ys = [y for x, y in points if x <= x_limit]
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True):
        if (x0 - x_limit) * (x1 - x_limit) < 0:  # where the cut crosses the outline
            ys.append(y0 + (y1 - y0) * (x_limit - x0) / (x1 - x0))
    return min(ys), max(ys)


def area(points: Sequence[Point]) -> float:
    """Area (mm²) enclosed by the closed polygon ``points``."""
    closing = list(points[1:]) + [points[0]]
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, closing, strict=True))) / 2


# -- shapes (CadQuery imported inside) ------------------------------------------------------


def outline_wire(segments: Sequence[Segment], z: float = 0.0) -> Any:
    """The outline as a closed CadQuery wire at height ``z``, one Bézier edge per segment.

    (One B-spline edge through all segments would give a single side face, but OCCT's default
    area and volume integration is then off by about 0.2 %; per-segment Bézier edges are exact.)
    """
    import cadquery as cq

    return cq.Wire.assembleEdges([cq.Edge.makeBezier([cq.Vector(x, y, z) for x, y in segment])
                                  for segment in segments])


def outline_prism(segments: Sequence[Segment], bottom: float, top: float) -> Any:
    """A vertical prism on the outline, from ``bottom`` to ``top`` (mm)."""
    import cadquery as cq

    face = cq.Face.makeFromWires(outline_wire(segments, bottom))
    return cq.Solid.extrudeLinear(face, cq.Vector(0, 0, top - bottom))


PathStep = tuple[Point] | tuple[Point, Point, Point]
"""One step of a side profile: a line to a point, or a cubic Bézier (two handles, end point)."""


def s_curve(start: Point, end: Point, handle: float = 0.45) -> tuple[Point, Point, Point]:
    """A Bézier step from ``start`` to ``end`` leaving and arriving level, so it never overshoots either height."""
    run = end[0] - start[0]
    return (start[0] + handle * run, start[1]), (end[0] - handle * run, end[1]), end


def side_profile(start: Point, steps: Sequence[PathStep], plane: Literal["XZ", "YZ"], low: float,
                 high: float) -> Any:
    """A closed profile of lines and Béziers in (a, z), drawn in the XZ or YZ plane and extruded
    across it from ``low`` to ``high`` (along y for XZ, along x for YZ)."""
    import cadquery as cq

    def vector(point: Point) -> Any:
        a, z = point
        return cq.Vector(a, low, z) if plane == "XZ" else cq.Vector(low, a, z)

    edges = []
    current = start
    for step in (*steps, (start,)):
        if len(step) == 1:
            if math.dist(current, step[0]) > 1e-9:
                edges.append(cq.Edge.makeLine(vector(current), vector(step[0])))
        else:
            edges.append(cq.Edge.makeBezier([vector(current), *(vector(p) for p in step)]))
        current = step[-1]
    face = cq.Face.makeFromWires(cq.Wire.assembleEdges(edges))
    direction = cq.Vector(0, high - low, 0) if plane == "XZ" else cq.Vector(high - low, 0, 0)
    return cq.Solid.extrudeLinear(face, direction)


def single_solid(shape: Any) -> Any:
    """The one solid a boolean result holds, cleaned of seams; the shape itself if it holds several."""
    solids = shape.Solids()
    if len(solids) != 1:
        return shape
    solid = solids[0]
    try:
        cleaned = solid.clean()
    except Exception:  # unifying faces is cosmetic; keep the uncleaned solid if OCCT refuses
        return solid
    return cleaned if cleaned.isValid() else solid
