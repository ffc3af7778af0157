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
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        if (x0 - x_limit) * (x1 - x_limit) < 0:  # where the cut crosses the outline
            ys.append(y0 + (y1 - y0) * (x_limit - x0) / (x1 - x0))
    return min(ys), max(ys)


def contains(points: Sequence[Point], x: float, y: float) -> bool:
    """Whether (x, y) lies inside the closed polygon ``points`` (even-odd rule)."""
    inside = False
    for (x0, y0), (x1, y1) in zip(points, list(points[1:]) + [points[0]]):
        if (y0 > y) != (y1 > y) and x < x0 + (x1 - x0) * (y - y0) / (y1 - y0):
            inside = not inside
    return inside


def distance_to(points: Sequence[Point], x: float, y: float) -> float:
    """Distance from (x, y) to the closed polygon's boundary."""
    best = math.inf
    for (x0, y0), (x1, y1) in zip(points, list(points[1:]) + [points[0]]):
        dx, dy = x1 - x0, y1 - y0
        span = dx * dx + dy * dy
        t = 0.0 if span == 0 else max(0.0, min(1.0, ((x - x0) * dx + (y - y0) * dy) / span))
        best = min(best, math.hypot(x - x0 - t * dx, y - y0 - t * dy))
    return best


# -- shapes (CadQuery imported inside) ------------------------------------------------------


def outline_wire(segments: Sequence[Segment], z: float = 0.0) -> Any:
    """The outline as a closed CadQuery wire at height ``z``: one cubic B-spline edge through the segments.

    Neighbouring segments share a tangent direction; spacing the knots in the ratio of the handle
    lengths on either side of each joint makes the spline's first derivative continuous too, so the
    joints can be dropped to single knots (C1) and the side of a prism on it is one smooth face.
    """
    import cadquery as cq
    from OCP.BRepBuilderAPI import BRepBuilderAPI_MakeEdge
    from OCP.Geom import Geom_BSplineCurve
    from OCP.gp import gp_Pnt
    from OCP.TColgp import TColgp_Array1OfPnt
    from OCP.TColStd import TColStd_Array1OfInteger, TColStd_Array1OfReal

    count = len(segments)
    spans = [1.0]
    for before, after in zip(segments, segments[1:]):
        spans.append(spans[-1] * math.dist(after[0], after[1]) / math.dist(before[2], before[3]))
    poles = [point for segment in segments for point in segment[:3]] + [segments[-1][3]]
    pole_array = TColgp_Array1OfPnt(1, len(poles))
    for index, (x, y) in enumerate(poles):
        pole_array.SetValue(index + 1, gp_Pnt(x, y, z))
    knots, multiplicities = TColStd_Array1OfReal(1, count + 1), TColStd_Array1OfInteger(1, count + 1)
    knot = 0.0
    for index in range(count + 1):
        knots.SetValue(index + 1, knot)
        multiplicities.SetValue(index + 1, 4 if index in (0, count) else 3)
        knot += spans[index] if index < count else 0.0
    curve = Geom_BSplineCurve(pole_array, knots, multiplicities, 3)
    for index in range(count, 1, -1):
        curve.RemoveKnot(index, 2, 1e-5)  # succeeds where the joint is C1; a refused joint stays as it is
    return cq.Wire.assembleEdges([cq.Edge(BRepBuilderAPI_MakeEdge(curve).Edge())])


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
