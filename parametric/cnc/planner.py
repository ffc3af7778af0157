"""CNC toolpaths for flat sheet parts: features from the B-rep, DXF per operation, G-code per dialect.

A flat part (``Part.flat``) lies on XY with its thickness along +Z and every feature cut
into its top face, so one setup makes it. :func:`extract_features` reads that B-rep:

- the outline (the part's silhouette) and its through openings: circular ones are holes,
  the rest cut-outs;
- pockets (dados, rebates): planar faces looking up, below the top face, with their depth;
  a circular pocket is a blind bore (a hinge cup);
- what this setup cannot make (an edge profile or pocket on the underside, countersinks),
  kept as notes for the job sheet.

:func:`plan` turns features into operations with tools from the router's library (drill
bits for matching holes, the largest end mill that fits for the rest) and toolpaths with
the offsets done here, because GRBL has no cutter compensation: outlines outside by the tool
radius, openings inside, pockets cleared with inward rings, dogbone reliefs plunged into
inside corners so square parts seat, depth in passes of the tool's stepdown, and tabs left
on the final passes of through cuts. :func:`write_gcode` writes them for GRBL (one file per
tool: no M6) or LinuxCNC (tool changes and a tool table); :func:`write_dxf` writes a 1:1 mm
DXF with one layer per operation. Offsets use shapely with round joins.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import FieldError, ParametricError, ValidationError
from ..files import atomic_target, atomic_write
from ..machines import Feeds, Router, Tool
from ..routing import SHEET_MARGIN_MM, THROUGH_CUT_OVERCUT_MM

EPS = 0.01
"""Height above a face at which a section is taken (mm)."""
CIRCLE_TOLERANCE = 0.02
"""How far a ring's vertices may stray from its mean radius and still be a circle (mm)."""
CHORD_TOLERANCE = 0.01
"""Largest distance between an arc and its polyline (mm)."""
DRILL_MATCH = 0.05
"""A drill bit makes a hole if their diameters differ by at most this (mm)."""
DRILL_POINT_FACTOR = 0.3
"""Extra depth for a 118 degree drill point to break through, as a share of the drill diameter."""


class CamError(ParametricError):
    """A part cannot be machined on a router as equipped; ``reason`` says what is missing."""

    def __init__(self, part: str, reason: str):
        self.part = part
        self.reason = reason
        super().__init__(f"{part}: {reason}")


@dataclass(frozen=True)
class CamSettings:
    """Choices about how parts are cut; lengths in mm, times in seconds."""

    margin_mm: float = SHEET_MARGIN_MM
    overcut_mm: float = THROUGH_CUT_OVERCUT_MM
    tab_count: int | None = None
    tab_width_mm: float = 8.0
    tab_height_mm: float = 3.0
    tab_min_size_mm: float = 50.0
    stepover: float = 0.4
    dogbones: bool = True
    climb: bool = False
    clearance_mm: float = 1.0
    spindle_dwell_s: float = 3.0
    tool_change_s: float = 60.0

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


# -- features ---------------------------------------------------------------------------


@dataclass
class Hole:
    """A circular hole: centre (x, y) in part coordinates, diameter, depth below the top (mm)."""

    center: tuple[float, float]
    diameter: float
    depth: float
    through: bool


@dataclass
class Pocket:
    """Material removed from the top face down to a flat floor ``depth`` mm below the top."""

    region: Any  # shapely (Multi)Polygon
    depth: float
    keep: Any  # shapely geometry: the material that stays above the floor


@dataclass
class PartFeatures:
    """What a flat part asks of a router, in part coordinates moved so the outline starts at (0, 0)."""

    name: str
    thickness: float
    outline: Any  # shapely Polygon, no holes
    cutouts: list[Any] = field(default_factory=list)
    holes: list[Hole] = field(default_factory=list)
    pockets: list[Pocket] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.outline.bounds
        return (x1 - x0, y1 - y0)

    def turned(self) -> PartFeatures:
        """The same features turned a quarter turn about Z (and moved back to start at (0, 0))."""
        from shapely import affinity

        height = self.outline.bounds[3]

        def turn(geometry: Any) -> Any:
            return affinity.translate(affinity.rotate(geometry, 90, origin=(0, 0)), xoff=height)

        def turn_point(point: tuple[float, float]) -> tuple[float, float]:
            return (height - point[1], point[0])

        return PartFeatures(
            name=self.name, thickness=self.thickness, outline=turn(self.outline),
            cutouts=[turn(c) for c in self.cutouts],
            holes=[replace(h, center=turn_point(h.center)) for h in self.holes],
            pockets=[Pocket(turn(p.region), p.depth, turn(p.keep)) for p in self.pockets],
            notes=list(self.notes))


def _edge_points(edge: Any) -> list[tuple[float, float]]:
    kind = edge.geomType()
    if kind == "LINE":
        start, end = edge.startPoint(), edge.endPoint()
        return [(start.x, start.y), (end.x, end.y)]
    length = edge.Length()
    if kind == "CIRCLE":
        radius = edge.radius()
        step = 2 * math.acos(max(-1.0, 1 - CHORD_TOLERANCE / radius)) if radius > CHORD_TOLERANCE else math.pi / 2
        count = max(2, math.ceil(length / radius / step) + 1)
    else:
        count = max(8, math.ceil(length / 0.5) + 1)
    return [(p.x, p.y) for p in edge.positions([i / (count - 1) for i in range(count)], mode="length")]


def _face_area(face: Any) -> Any:
    """A planar face (parallel to XY) as a shapely polygon, from its edges."""
    import shapely

    lines = [shapely.LineString(_edge_points(edge)) for edge in face.Edges()]
    return shapely.build_area(shapely.set_precision(shapely.GeometryCollection(lines), 1e-6))


def _section(shape: Any, z: float) -> Any:
    """The part's material at height ``z`` as a shapely geometry."""
    import cadquery as cq
    from shapely.ops import unary_union

    box = shape.BoundingBox()
    size = 3 * max(box.xlen, box.ylen) + 10
    plane = cq.Face.makePlane(size, size, basePnt=cq.Vector(box.center.x, box.center.y, z), dir=cq.Vector(0, 0, 1))
    faces = shape.intersect(plane).Faces()
    return unary_union([_face_area(face) for face in faces]).buffer(0)


def _polygons(geometry: Any) -> list[Any]:
    if geometry.is_empty:
        return []
    if geometry.geom_type == "Polygon":
        return [geometry]
    return [g for g in getattr(geometry, "geoms", []) if g.geom_type == "Polygon" and not g.is_empty]


def circle_of(ring_or_polygon: Any) -> tuple[tuple[float, float], float] | None:
    """(centre, diameter) when a ring or hole-free polygon is a circle, else None."""
    import numpy as np

    ring = ring_or_polygon.exterior if hasattr(ring_or_polygon, "exterior") else ring_or_polygon
    if hasattr(ring_or_polygon, "interiors") and len(ring_or_polygon.interiors):
        return None
    points = np.asarray(ring.coords)[:-1]
    if len(points) < 12:
        return None
    center = points.mean(axis=0)
    radii = np.hypot(*(points - center).T)
    if radii.max() - radii.min() > CIRCLE_TOLERANCE:
        return None
    return (round(float(center[0]), 4), round(float(center[1]), 4)), round(float(2 * radii.mean()), 4)


def _z_extent(shape: Any) -> tuple[float, float]:
    """The exact lowest and highest Z of a shape. ``Shape.BoundingBox()`` uses a triangulation when the
    shape has one, and after meshing that box is grown by the mesh deflection."""
    from OCP.Bnd import Bnd_Box
    from OCP.BRepBndLib import BRepBndLib

    box = Bnd_Box()
    BRepBndLib.AddOptimal_s(shape.wrapped, box, False, False)
    _, _, zmin, _, _, zmax = box.Get()
    return zmin, zmax


def extract_features(shape: Any, name: str, thickness: float | None = None) -> PartFeatures:
    """Read a flat part's outline, openings, holes, pockets and bores from its B-rep (see the module doc)."""
    from shapely import affinity
    from shapely.geometry import Polygon
    from shapely.ops import unary_union

    bottom, top = _z_extent(shape)
    thickness = float(thickness or (top - bottom))
    notes: list[str] = []
    floors: dict[float, list[Any]] = {}
    levels = {bottom, top}
    for face in shape.Faces():
        if face.geomType() != "PLANE":
            continue
        normal = face.normalAt()
        z = face.Center().z
        if abs(normal.z) < 0.999:
            continue
        levels.add(z)
        if normal.z > 0 and bottom + EPS < z < top - EPS:
            floors.setdefault(round(z, 3), []).append(face)
        elif normal.z < 0 and z > bottom + EPS:
            notes.append(f"a face looking down {z - bottom:g} mm above the underside: cut it in a second setup "
                         "with the part turned over")
    countersinks = [face for face in shape.Faces() if face.geomType() == "CONE"]

    ordered = sorted(levels)
    heights = [bottom + EPS, top - EPS] + [(a + b) / 2 for a, b in zip(ordered, ordered[1:], strict=False)]
    sections = {round(z, 4): _section(shape, z) for z in heights}
    silhouette = unary_union(list(sections.values())).buffer(0)
    pieces = _polygons(silhouette)
    if not pieces:
        raise CamError(name, "the part has no material to cut")
    if len(pieces) > 1:
        raise CamError(name, f"the part is in {len(pieces)} separate pieces in plan view; cut them as separate parts")
    body = pieces[0]
    underside = sections[round(bottom + EPS, 4)]
    if body.area - underside.area > 1.0:
        notes.append("the underside is smaller than the outline (an edge profile on the bottom edges): rout it with "
                     "the part turned over")

    dx, dy = -body.bounds[0], -body.bounds[1]

    def moved(geometry: Any) -> Any:
        return affinity.translate(geometry, dx, dy)

    outline = moved(Polygon(body.exterior))
    holes: list[Hole] = []
    cutouts = []
    for interior in body.interiors:
        opening = moved(Polygon(interior))
        circle = circle_of(opening)
        if circle:
            holes.append(Hole(circle[0], circle[1], thickness, True))
        else:
            cutouts.append(opening)

    pockets = []
    for z in sorted(floors, reverse=True):
        depth = round(top - z, 4)
        region = moved(unary_union([_face_area(face) for face in floors[z]]).buffer(0))
        keep = moved(_section(shape, z + EPS))
        rest = []
        for piece in _polygons(region):
            if piece.area < 1.0:
                continue
            circle = circle_of(piece)
            if circle and not keep.intersects(piece.buffer(-CIRCLE_TOLERANCE)):
                holes.append(Hole(circle[0], circle[1], depth, False))
            else:
                rest.append(piece)
        if rest:
            pockets.append(Pocket(unary_union(rest), depth, keep))

    if countersinks:
        sizes: dict[float, int] = {}
        for face in countersinks:
            face_box = face.BoundingBox()
            diameter = round(max(face_box.xlen, face_box.ylen), 1)
            sizes[diameter] = sizes.get(diameter, 0) + 1
        for diameter, count in sorted(sizes.items()):
            notes.append(f"countersink {count} hole{'s' if count > 1 else ''} to {diameter:g} mm at the top face "
                         "(countersink bit, by hand or a second program)")
    holes.sort(key=lambda h: (h.diameter, h.center[1], h.center[0]))
    return PartFeatures(name=name, thickness=round(thickness, 4), outline=outline, cutouts=cutouts, holes=holes,
                        pockets=pockets, notes=list(dict.fromkeys(notes)))


# -- operations and toolpaths --------------------------------------------------------------

Point3 = tuple[float, float, float]


@dataclass
class Toolpath:
    """Moves of one tool: ``("rapid" | "feed" | "plunge", (x, y, z))`` in part coordinates, Z0 = top."""

    moves: list[tuple[str, Point3]] = field(default_factory=list)

    def add(self, kind: str, point: Point3) -> None:
        self.moves.append((kind, (float(point[0]), float(point[1]), float(point[2]))))


@dataclass
class Operation:
    """One machining step: what it makes, with which tool, its DXF layer and its toolpath."""

    kind: str  # drill, pocket, bore, profile_inside, profile_outside
    layer: str
    tool: Tool
    feeds: Feeds
    depth: float
    description: str
    shapes: list[Any] = field(default_factory=list)  # shapely polygons for the DXF
    circles: list[tuple[tuple[float, float], float]] = field(default_factory=list)  # (centre, diameter)
    path: Toolpath = field(default_factory=Toolpath)
    dogbones: int = 0
    tabs: int = 0
    passes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layer": self.layer, "tool": self.tool.number, "depth_mm": round(self.depth, 3),
                "description": self.description, "passes": self.passes, "dogbones": self.dogbones,
                "tabs": self.tabs}


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _layer_size(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def pass_depths(depth: float, stepdown: float) -> list[float]:
    """Equal passes down to ``depth``, none deeper than ``stepdown``."""
    count = max(1, math.ceil(depth / stepdown - 1e-9))
    return [depth * (i + 1) / count for i in range(count)]


def _endmills(router: Router, material: str, depth: float) -> list[Tool]:
    """End mills with feeds for the material that reach ``depth``, largest first."""
    return sorted((t for t in router.tools if t.type == "endmill" and material in t.feeds
                   and t.flute_length_mm + 1e-6 >= depth), key=lambda t: (-t.diameter_mm, t.number))


def _ring_sequence(ring: Any, ccw: bool) -> list[tuple[float, float]]:
    """A closed ring's coordinates in the wanted direction."""
    coords = list(ring.coords)
    area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(coords, coords[1:], strict=False))
    if (area > 0) != ccw:
        coords.reverse()
    return coords


def _tab_spans(coords: Sequence[tuple[float, float]], count: int, span: float) -> list[tuple[float, float]]:
    """(start, end) distances along a closed path where tabs stand: spread evenly, each moved onto a
    straight stretch long enough to hold it (a tab across a corner breaks off), never over the start."""
    if count <= 0:
        return []
    stretches = []
    travelled = 0.0
    for (x0, y0), (x1, y1) in zip(coords, coords[1:], strict=False):
        length = math.hypot(x1 - x0, y1 - y0)
        if length >= span + 2.0:
            stretches.append((travelled + 1.0 + span / 2, travelled + length - 1.0 - span / 2))
        travelled += length
    total = travelled
    if total < count * span * 2:
        return []
    spans: list[tuple[float, float]] = []
    for index in range(count):
        target = total * (index + 0.5) / count
        choices = [min(max(target, low), high) for low, high in stretches] or [target]
        for centre in sorted(choices, key=lambda c: abs(c - target)):
            start, end = centre - span / 2, centre + span / 2
            if start > 0 and end < total and all(end + span < s or start > e + span for s, e in spans):
                spans.append((start, end))
                break
    return sorted(spans)


def _split_at(coords: Sequence[tuple[float, float]], marks: Iterable[float]) -> list[tuple[float, float, float]]:
    """The path's points with points inserted at the distances ``marks``: (x, y, distance along)."""
    marks = sorted(marks)
    result = [(coords[0][0], coords[0][1], 0.0)]
    travelled = 0.0
    index = 0
    for (x0, y0), (x1, y1) in zip(coords, coords[1:], strict=False):
        segment = math.hypot(x1 - x0, y1 - y0)
        while index < len(marks) and marks[index] <= travelled + segment:
            if segment > 0 and marks[index] > travelled:
                share = (marks[index] - travelled) / segment
                result.append((x0 + share * (x1 - x0), y0 + share * (y1 - y0), marks[index]))
            index += 1
        travelled += segment
        result.append((x1, y1, travelled))
    return result


class _Planner:
    """Builds the toolpaths of one part on one router in one material."""

    def __init__(self, features: PartFeatures, router: Router, material: str, settings: CamSettings):
        self.features = features
        self.router = router
        self.material = material
        self.settings = settings
        self.clear_z = settings.clearance_mm
        self.safe_z = router.safe_height_mm

    # toolpath pieces

    def _plunge_path(self, path: Toolpath, x: float, y: float, depths: Sequence[float], retract_each: bool) -> None:
        path.add("rapid", (x, y, self.safe_z))
        path.add("rapid", (x, y, self.clear_z))
        previous = 0.0
        for depth in depths:
            if retract_each and previous > 0:
                path.add("rapid", (x, y, -previous + 0.5))
            path.add("plunge", (x, y, -depth))
            if retract_each:
                path.add("rapid", (x, y, self.clear_z))
            previous = depth
        path.add("rapid", (x, y, self.safe_z))

    def _ring_passes(self, path: Toolpath, coords: Sequence[tuple[float, float]], depths: Sequence[float],
                     tab_spans: Sequence[tuple[float, float]], tab_top: float) -> None:
        """Cut a closed ring at each depth, staying down between passes; on passes below the tabs' top the
        tool rises over each tab span and drops back after it."""
        x, y = coords[0]
        path.add("rapid", (x, y, self.safe_z))
        path.add("rapid", (x, y, self.clear_z))
        marks = [m for span in tab_spans for m in span]
        points = _split_at(coords, marks) if marks else [(px, py, 0.0) for px, py in coords]
        for depth in depths:
            z = -depth
            path.add("plunge", (x, y, z))
            current = z
            for (x0, y0, s0), (x1, y1, s1) in zip(points, points[1:], strict=False):
                middle = (s0 + s1) / 2
                on_tab = z < tab_top - 1e-9 and any(start <= middle <= end for start, end in tab_spans)
                level = tab_top if on_tab else z
                if level != current:
                    path.add("plunge", (x0, y0, level))
                    current = level
                path.add("feed", (x1, y1, level))
            if current != z:
                path.add("plunge", (x, y, z))
        path.add("rapid", (x, y, self.safe_z))

    # operations

    def drill(self, holes: list[Hole], tool: Tool) -> Operation:
        feeds = tool.feeds[self.material]
        path = Toolpath()
        depths_done = []
        for hole in holes:
            depth = self._hole_depth(hole, tool)
            depths_done.append(depth)
            self._plunge_path(path, *hole.center, pass_depths(depth, feeds.stepdown_mm), retract_each=True)
        hole = holes[0]
        through = hole.through
        layer = f"DRILL_{_layer_size(hole.diameter)}MM" + ("" if through else f"_{_layer_size(hole.depth)}DEEP")
        what = "through" if through else f"{_fmt(hole.depth)} mm deep"
        count = len(holes)
        return Operation("drill", layer, tool, feeds, max(depths_done),
                         f"drill {count} hole{'s' if count > 1 else ''} Ø{_fmt(hole.diameter)} mm {what}",
                         circles=[(h.center, h.diameter) for h in holes], path=path,
                         passes=len(pass_depths(max(depths_done), feeds.stepdown_mm)))

    def _hole_depth(self, hole: Hole, tool: Tool) -> float:
        if not hole.through:
            return hole.depth
        return hole.depth + self.settings.overcut_mm + (DRILL_POINT_FACTOR * tool.diameter_mm
                                                        if tool.type == "drill" else 0.0)

    def pocket(self, region: Any, keep: Any, depth: float, tool: Tool, kind: str, layer: str, description: str
               ) -> Operation:
        """Clear ``region`` to ``depth`` with inward rings; plunge dogbones into its inside corners."""
        from shapely.geometry import LineString
        from shapely.ops import unary_union

        feeds = tool.feeds[self.material]
        radius = tool.radius_mm
        allowed = region.buffer(radius).difference(keep.buffer(radius, quad_segs=16)).buffer(0)
        if allowed.is_empty:
            raise CamError(self.features.name, f"{tool.describe()} does not fit into a {_fmt(depth)} mm deep pocket")
        step = self.settings.stepover * tool.diameter_mm
        rings: list[list[tuple[float, float]]] = []
        offset = 0.0
        while True:
            level = allowed.buffer(-offset) if offset else allowed
            if level.is_empty:
                break
            for piece in _polygons(level):
                rings.append(_ring_sequence(piece.exterior, ccw=not self.settings.climb))
                rings.extend(_ring_sequence(hole, ccw=self.settings.climb) for hole in piece.interiors)
            offset += step
        rings.reverse()  # from the middle out: the cutter starts in the open and finishes on the walls
        dogbones = self._dogbones(region, keep, radius) if self.settings.dogbones else []
        margin = allowed.buffer(1e-3)
        path = Toolpath()
        depths = pass_depths(depth, feeds.stepdown_mm)
        for depth_z in depths:
            position = None
            for ring in rings:
                start = ring[0]
                if position is not None and margin.contains(LineString([position, start])):
                    path.add("feed", (*start, -depth_z))
                else:
                    if position is not None:
                        path.add("rapid", (*position, self.safe_z))
                    path.add("rapid", (*start, self.safe_z))
                    path.add("rapid", (*start, self.clear_z))
                    path.add("plunge", (*start, -depth_z))
                for point in ring[1:]:
                    path.add("feed", (*point, -depth_z))
                position = ring[-1]
            if position is not None:
                path.add("rapid", (*position, self.safe_z))
            for x, y in dogbones:
                path.add("rapid", (x, y, self.safe_z))
                path.add("rapid", (x, y, self.clear_z))
                path.add("plunge", (x, y, -depth_z))
                path.add("rapid", (x, y, self.safe_z))
        reliefs = unary_union([region, *(_disk(c, radius) for c in dogbones)]) if dogbones else region
        return Operation(kind, layer, tool, feeds, depth, description, shapes=_polygons(reliefs), path=path,
                         dogbones=len(dogbones), passes=len(depths))

    def _dogbones(self, region: Any, keep: Any, radius: float) -> list[tuple[float, float]]:
        """Centres of dogbone plunges: at each inside corner between two walls, a tool radius along the bisector."""
        from shapely.geometry import Point

        centres = []
        probe = 0.05
        solid = keep.buffer(-probe / 4)
        for piece in _polygons(region):
            for ring in [piece.exterior, *piece.interiors]:
                coords = list(ring.coords)[:-1]
                count = len(coords)
                for i, (vx, vy) in enumerate(coords):
                    ax, ay = coords[i - 1]
                    bx, by = coords[(i + 1) % count]
                    ux, uy = _unit(ax - vx, ay - vy)
                    wx, wy = _unit(bx - vx, by - vy)
                    turn = math.degrees(math.acos(max(-1.0, min(1.0, ux * wx + uy * wy))))
                    if turn > 160:  # nearly straight (or an arc's polyline): not a corner
                        continue
                    bisector = _unit(ux + wx, uy + wy)
                    if not piece.contains(Point(vx + probe * bisector[0], vy + probe * bisector[1])):
                        continue  # the corner points into the region: material there is cut sharp anyway
                    if not (self._is_wall((vx, vy), (ax, ay), piece, solid, probe)
                            and self._is_wall((vx, vy), (bx, by), piece, solid, probe)):
                        continue  # one side is open air (a dado running off the edge)
                    centres.append((vx + radius * bisector[0], vy + radius * bisector[1]))
        return centres

    @staticmethod
    def _is_wall(v: tuple[float, float], a: tuple[float, float], piece: Any, solid: Any, probe: float) -> bool:
        from shapely.geometry import Point

        mx, my = (v[0] + a[0]) / 2, (v[1] + a[1]) / 2
        nx, ny = _unit(-(a[1] - v[1]), a[0] - v[0])
        inside = Point(mx + probe * nx, my + probe * ny)
        outward = (-nx, -ny) if piece.contains(inside) else (nx, ny)
        return bool(solid.contains(Point(mx + probe * outward[0], my + probe * outward[1])))

    def profile(self, shapes: Sequence[Any], tool: Tool, outside: bool, depth: float, layer: str,
                description: str, dogbones: bool) -> Operation:
        """Cut along closed outlines, outside or inside by the tool radius, in passes, leaving tabs."""
        from shapely.geometry import JOIN_STYLE
        from shapely.ops import unary_union

        feeds = tool.feeds[self.material]
        radius = tool.radius_mm
        thickness = self.features.thickness
        tab_height = min(self.settings.tab_height_mm, thickness / 2)
        tab_top = -(thickness - tab_height)
        depths = pass_depths(depth, feeds.stepdown_mm)
        path = Toolpath()
        drawn, tab_total, corner_total = [], 0, 0
        for shape in shapes:
            offset = shape.buffer(radius if outside else -radius, join_style=JOIN_STYLE.round, quad_segs=16)
            pieces = _polygons(offset)
            if not pieces:
                raise CamError(self.features.name, f"an opening of {_fmt(shape.area)} mm² is too small for "
                                                   f"{tool.describe()}")
            coords = _ring_sequence(pieces[0].exterior, ccw=(not outside) != self.settings.climb)
            tabs = self.tab_count(shape, outline=outside) if depth >= thickness else 0
            spans = _tab_spans(coords, tabs, self.settings.tab_width_mm + tool.diameter_mm)
            self._ring_passes(path, coords, depths, spans, tab_top)
            corners = []
            if dogbones and not outside and self.settings.dogbones:
                corners = self._dogbones(shape, shape.exterior.buffer(10 * radius).difference(shape), radius)
            for x, y in corners:
                self._plunge_path(path, x, y, depths, retract_each=False)
            drawn.extend(_polygons(unary_union([shape, *(_disk(c, radius) for c in corners)])))
            tab_total += len(spans)
            corner_total += len(corners)
        return Operation("profile_outside" if outside else "profile_inside", layer, tool, feeds, depth, description,
                         shapes=drawn, path=path, dogbones=corner_total, tabs=tab_total, passes=len(depths))

    def tab_count(self, shape: Any, outline: bool) -> int:
        """Tabs on a through cut: 2 to 8 by perimeter; none on openings whose slug is small enough to drop."""
        if self.settings.tab_count is not None:
            return self.settings.tab_count
        x0, y0, x1, y1 = shape.bounds
        if not outline and min(x1 - x0, y1 - y0) < self.settings.tab_min_size_mm:
            return 0
        return max(2, min(8, round(shape.exterior.length / 500)))

    # the plan

    def operations(self) -> list[Operation]:
        from shapely.geometry import Point
        from shapely.ops import unary_union

        features, material = self.features, self.material
        thickness = features.thickness
        through = thickness + self.settings.overcut_mm
        operations: list[Operation] = []
        endmills_through = _endmills(self.router, material, through)
        if not endmills_through:
            raise CamError(features.name, f"no end mill with feeds for {material} reaches {_fmt(through)} mm deep "
                                          f"on {self.router.name}")
        profile_tool = endmills_through[0]

        # holes: a matching drill bit, else an end mill that fits (plunged if it is the hole's size)
        drills: dict[tuple[int, bool, float], list[Hole]] = {}
        interpolated: list[Hole] = []
        for hole in features.holes:
            drill = self._drill_for(hole)
            if drill is not None:
                drills.setdefault((drill.number, hole.through, hole.depth), []).append(hole)
            else:
                interpolated.append(hole)
        for (number, _, _), holes in sorted(drills.items(), key=lambda item: (item[1][0].diameter, item[0][2])):
            operations.append(self.drill(holes, self.router.tool(number)))

        for pocket in sorted(features.pockets, key=lambda p: p.depth):
            layer = f"POCKET_{_layer_size(pocket.depth)}MM"
            by_tool: dict[int, list[Any]] = {}
            for piece in _polygons(pocket.region):
                by_tool.setdefault(self._endmill_fitting(piece, pocket.depth, keep=pocket.keep).number,
                                   []).append(piece)
            for number, pieces in by_tool.items():
                count = len(pieces)
                operations.append(self.pocket(unary_union(pieces), pocket.keep, pocket.depth,
                                              self.router.tool(number), "pocket", layer,
                                              f"{count} pocket{'s' if count > 1 else ''} {_fmt(pocket.depth)} mm "
                                              f"deep ({_fmt(sum(p.area for p in pieces) / 100)} cm²)"))

        # holes no drill matches: milled inside with an end mill, blind ones cleared as round pockets
        milled: dict[tuple[float, bool, float], list[Hole]] = {}
        for hole in interpolated:
            milled.setdefault((hole.diameter, hole.through, hole.depth), []).append(hole)
        for (diameter, through_hole, depth), holes in sorted(milled.items()):
            circles = [Point(h.center).buffer(diameter / 2, quad_segs=64) for h in holes]
            count = f"{len(holes)} hole{'s' if len(holes) > 1 else ''}"
            if through_hole:
                tool = self._endmill_fitting(circles[0], through, hole=holes[0])
                operation = self.profile(circles, tool, False, through, f"DRILL_{_layer_size(diameter)}MM",
                                         f"mill {count} Ø{_fmt(diameter)} mm through", dogbones=False)
            else:
                tool = self._endmill_fitting(circles[0], depth, hole=holes[0])
                region = unary_union(circles)
                operation = self.pocket(region, features.outline.difference(region), depth, tool, "bore",
                                        f"DRILL_{_layer_size(diameter)}MM_{_layer_size(depth)}DEEP",
                                        f"bore {count} Ø{_fmt(diameter)} mm {_fmt(depth)} mm deep")
            operation.circles = [(h.center, h.diameter) for h in holes]
            operation.shapes = []
            operations.append(operation)

        if features.cutouts:
            tools: dict[int, list[Any]] = {}
            for cutout in features.cutouts:
                tools.setdefault(self._endmill_fitting(cutout, through).number, []).append(cutout)
            for number, cutouts in tools.items():
                count = len(cutouts)
                operations.append(self.profile(cutouts, self.router.tool(number), False, through, "CUTOUT_THROUGH",
                                               f"cut out {count} opening{'s' if count > 1 else ''} through",
                                               dogbones=True))

        operations.append(self.profile([features.outline], profile_tool, True, through, "PROFILE_THROUGH",
                                       f"cut the outline {_fmt(features.size[0])} x {_fmt(features.size[1])} mm "
                                       "through", dogbones=False))
        return operations

    def _drill_for(self, hole: Hole) -> Tool | None:
        depth = self._hole_depth(hole, Tool(0, hole.diameter, "drill"))
        candidates = [t for t in self.router.tools if t.type == "drill" and self.material in t.feeds
                      and abs(t.diameter_mm - hole.diameter) <= DRILL_MATCH and t.flute_length_mm + 1e-6 >= depth]
        if not candidates:
            candidates = [t for t in self.router.tools if t.type == "endmill" and self.material in t.feeds
                          and abs(t.diameter_mm - hole.diameter) <= DRILL_MATCH
                          and t.flute_length_mm + 1e-6 >= depth]
        return min(candidates, key=lambda t: t.number, default=None)

    def _endmill_fitting(self, region: Any, depth: float, hole: Hole | None = None, keep: Any = None) -> Tool:
        """The largest end mill with feeds for the material that reaches ``depth`` and makes ``region``.

        A hole needs a cutter smaller than itself. A pocket or opening needs a cutter that, kept
        clear of the material around (``keep``; for openings, everything outside), sweeps all of it
        but the corner fillets the dogbones take out.
        """
        for tool in _endmills(self.router, self.material, depth):
            if hole is not None:
                if tool.diameter_mm < hole.diameter - DRILL_MATCH:
                    return tool
                continue
            radius = tool.radius_mm
            around = keep if keep is not None else region.envelope.buffer(4 * radius).difference(region)
            allowed = region.buffer(radius).difference(around.buffer(radius, quad_segs=16))
            if allowed.is_empty:
                continue
            missed = region.difference(allowed.buffer(radius * 1.001, quad_segs=16))
            vertices = [c for piece in _polygons(region) for ring in [piece.exterior, *piece.interiors]
                        for c in ring.coords]
            if all(_near_a_corner(piece, vertices, 1.5 * radius) for piece in _polygons(missed) if piece.area > 1e-3):
                return tool
        have = ", ".join(t.describe() for t in self.router.tools) or "no tools"
        what = (f"a Ø{_fmt(hole.diameter)} mm {'through ' if hole.through else ''}hole" if hole is not None
                else f"a {_fmt(depth)} mm deep feature {_fmt(_narrowest(region))} mm wide")
        raise CamError(self.features.name, f"{what} needs a {_fmt(hole.diameter) + ' mm drill or a ' if hole else ''}"
                                           f"smaller end mill with feeds for {self.material}; {self.router.name} has "
                                           f"{have}")


def _near_a_corner(piece: Any, vertices: Sequence[tuple[float, float]], reach: float) -> bool:
    """Whether all of ``piece`` lies within ``reach`` of one of the ``vertices`` (a corner fillet's leftover)."""
    points = list(piece.exterior.coords)
    return any(all(math.dist(point, vertex) <= reach for point in points) for vertex in vertices)


def _narrowest(region: Any) -> float:
    rectangle = region.minimum_rotated_rectangle
    coords = list(rectangle.exterior.coords)
    sides = [math.dist(a, b) for a, b in zip(coords, coords[1:], strict=False)]
    return min(sides) if sides else 0.0


def _unit(x: float, y: float) -> tuple[float, float]:
    length = math.hypot(x, y)
    return (x / length, y / length) if length > 1e-12 else (0.0, 0.0)


def _disk(center: tuple[float, float], radius: float) -> Any:
    from shapely.geometry import Point

    return Point(center).buffer(radius, quad_segs=16)


def plan(features: PartFeatures, router: Router, material: str, settings: CamSettings | None = None
         ) -> list[Operation]:
    """The operations (with toolpaths) that make ``features`` on ``router`` in ``material``, in cutting order."""
    settings = settings or CamSettings()
    operations = _Planner(features, router, material, settings).operations()
    # Tool by tool, in the order tools are first needed, the outline's tool last: the part stays
    # held by the sheet until its profile is cut. Within a tool the order is kept.
    profile_tool = operations[-1].tool.number
    order: list[int] = []
    for operation in operations:
        if operation.tool.number not in order and operation.tool.number != profile_tool:
            order.append(operation.tool.number)
    order.append(profile_tool)
    return sorted(operations, key=lambda op: order.index(op.tool.number))


# -- G-code ------------------------------------------------------------------------------


@dataclass
class Program:
    """One G-code file: its tools, operations, text and estimated run time (seconds)."""

    filename: str
    tools: list[Tool]
    operations: list[Operation]
    text: str = ""
    time_s: float = 0.0
    cut_length_mm: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.filename, "tools": [t.number for t in self.tools],
                "operations": [op.layer for op in self.operations], "time_s": round(self.time_s, 1),
                "cut_length_mm": round(self.cut_length_mm, 1)}


def _number(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class _Writer:
    """G-code lines with modal feed, and the time they take."""

    def __init__(self, rapid_mm_min: float):
        self.lines: list[str] = []
        self.position: list[float | None] = [None, None, None]
        self.feed: float | None = None
        self.rapid_mm_min = rapid_mm_min
        self.seconds = 0.0
        self.cut_length = 0.0

    def emit(self, line: str) -> None:
        self.lines.append(line)

    def move(self, kind: str, point: Point3, offset: tuple[float, float], feeds: Feeds) -> None:
        target = (point[0] + offset[0], point[1] + offset[1], point[2])
        words = []
        for axis, old, new in zip("XYZ", self.position, target, strict=True):
            if old is None or abs(old - new) > 5e-4:
                words.append(f"{axis}{_number(new)}")
        if not words:
            return
        distance = math.dist([p if p is not None else t for p, t in zip(self.position, target, strict=True)], target) \
            if None not in self.position else 0.0
        if kind == "rapid":
            self.emit("G0 " + " ".join(words))
            self.seconds += distance / self.rapid_mm_min * 60
        else:
            feed = feeds.plunge_mm_min if kind == "plunge" else feeds.feed_mm_min
            if self.feed != feed:
                words.append(f"F{_number(feed)}")
                self.feed = feed
            self.emit("G1 " + " ".join(words))
            self.seconds += distance / feed * 60
            self.cut_length += distance
        self.position = list(target)


def write_gcode(operations: Sequence[Operation], router: Router, out_dir: str | Path, part: str, *,
                material: str, thickness: float, settings: CamSettings | None = None,
                header: Sequence[str] = ()) -> list[Program]:
    """G-code for the operations in the router's dialect, written atomically into ``out_dir``.

    GRBL: one ``.nc`` file per tool (no M6), ``<part>.nc`` when one tool does everything.
    LinuxCNC: one ``<part>.ngc`` with ``T.. M6`` and ``G43`` per tool, and ``tool.tbl`` beside it.
    Coordinates: X0 Y0 at the sheet's lower-left corner with the part ``margin_mm`` in from
    it; Z0 at the top of the sheet.
    """
    settings = settings or CamSettings()
    out_dir = Path(out_dir)
    offset = (settings.margin_mm, settings.margin_mm)
    groups: list[list[Operation]] = []
    for operation in operations:
        if groups and groups[-1][0].tool.number == operation.tool.number:
            groups[-1].append(operation)
        else:
            groups.append([operation])
    if router.dialect == "linuxcnc":
        batches = [[op for group in groups for op in group]]
        extension = "ngc"
    else:
        batches = groups
        extension = "nc"
    programs = []
    for index, batch in enumerate(batches):
        tools = list({op.tool.number: op.tool for op in batch}.values())
        if len(batches) == 1:
            filename = f"{part}.{extension}"
        else:
            filename = f"{part}-{index + 1}-T{tools[0].number}.{extension}"
        writer = _Writer(router.rapid_mm_min)
        writer.emit(f"(parametric CAM: {part}, {material} {_number(thickness)} mm, {router.name} {router.dialect})")
        for line in header:
            writer.emit(f"({_comment(line)})")
        writer.emit(f"(X0 Y0 = sheet lower-left corner, part {_number(settings.margin_mm)} mm in; Z0 = sheet top)")
        if len(batches) > 1:
            writer.emit(f"(program {index + 1} of {len(batches)}: load {_comment(tools[0].describe())})")
        writer.emit("G21 G90 G17 G94" + (" G40 G49 G80" if router.dialect == "linuxcnc" else ""))
        writer.emit(f"G0 Z{_number(router.safe_height_mm)}")
        writer.position[2] = router.safe_height_mm
        current_tool = None
        for operation in batch:
            tool, feeds = operation.tool, operation.feeds
            if tool.number != current_tool:
                if current_tool is not None:
                    writer.emit("M5")
                if router.dialect == "linuxcnc":
                    writer.emit(f"T{tool.number} M6 ({_comment(tool.describe())})")
                    writer.emit(f"G43 H{tool.number}")
                    writer.emit(f"G0 Z{_number(router.safe_height_mm)}")
                    if current_tool is not None:
                        writer.seconds += settings.tool_change_s
                else:
                    writer.emit(f"({_comment(tool.describe())})")
                writer.emit(f"M3 S{_number(feeds.spindle_rpm)}")
                writer.emit(f"G4 P{_number(settings.spindle_dwell_s)}")
                writer.seconds += settings.spindle_dwell_s
                current_tool = tool.number
            elif feeds.spindle_rpm:
                writer.emit(f"S{_number(feeds.spindle_rpm)}")
            writer.emit(f"({_comment(operation.layer)}: {_comment(operation.description)})")
            for kind, point in operation.path.moves:
                writer.move(kind, point, offset, feeds)
        writer.emit(f"G0 Z{_number(router.safe_height_mm)}")
        writer.emit("M5")
        writer.emit("G0 X0 Y0")
        writer.emit("M30")
        text = "\n".join(writer.lines) + "\n"
        atomic_write(out_dir / filename, text)
        programs.append(Program(filename, tools, list(batch), text, writer.seconds, writer.cut_length))
    if router.dialect == "linuxcnc":
        used = {op.tool.number: op.tool for op in operations}
        atomic_write(out_dir / "tool.tbl", tool_table(list(used.values())))
    return programs


def tool_table(tools: Sequence[Tool]) -> str:
    """A LinuxCNC tool table for ``tools``."""
    return "".join(f"T{t.number} P{t.number} D{t.diameter_mm:.4f} Z+0.000 ;{_comment(t.describe())}\n"
                   for t in sorted(tools, key=lambda t: t.number))


def _comment(text: str) -> str:
    """Text safe inside a G-code comment (no nested parentheses), kept short for GRBL's line buffer."""
    text = text.replace("(", "[").replace(")", "]").replace(";", ",").replace("Ø", "dia ").replace("²", "2")
    return text.encode("ascii", "replace").decode("ascii")[:70]


# -- DXF ---------------------------------------------------------------------------------

LAYER_COLOURS = {"PROFILE": 7, "CUTOUT": 1, "POCKET": 5, "DRILL": 3, "COUNTERSINK": 6}


def _write_layers(layers: Iterable[tuple[str, Sequence[Any], Sequence[tuple[Any, float]]]],
                  target: str | Path) -> Path:
    """A 1:1 mm DXF from (layer, shapely polygons, (centre, diameter) circles): closed polylines, circles."""
    import ezdxf

    document = ezdxf.new("R2010", setup=False)
    document.units = ezdxf.units.MM
    document.header["$INSUNITS"] = 4
    document.header["$MEASUREMENT"] = 1
    space = document.modelspace()
    for layer, shapes, circles in layers:
        if layer not in document.layers:
            colour = next((c for prefix, c in LAYER_COLOURS.items() if layer.startswith(prefix)), 7)
            document.layers.add(layer, color=colour)
        for shape in shapes:
            for polygon in _polygons(shape):
                for ring in [polygon.exterior, *polygon.interiors]:
                    points = [(round(x, 4), round(y, 4)) for x, y in list(ring.coords)[:-1]]
                    space.add_lwpolyline(points, close=True, dxfattribs={"layer": layer})
        for center, diameter in circles:
            space.add_circle(center, diameter / 2, dxfattribs={"layer": layer})
    with atomic_target(target) as temporary:
        document.saveas(temporary)
    return Path(target)


def write_dxf(features: PartFeatures, operations: Sequence[Operation], target: str | Path) -> Path:
    """A 1:1 mm DXF of the part with one layer per operation: closed polylines, circles for drilled holes."""
    return _write_layers(((op.layer, op.shapes, op.circles) for op in operations), target)


def feature_dxf(features: PartFeatures, target: str | Path) -> Path:
    """A 1:1 mm DXF of the part's own geometry, no machine needed: one layer per kind of feature.

    ``PROFILE_THROUGH`` the outline, ``CUTOUT_THROUGH`` openings, ``POCKET_<depth>MM`` pocket
    regions, ``DRILL_<dia>MM`` through holes and ``DRILL_<dia>MM_<depth>DEEP`` blind bores. A shop
    whose CAM software offsets its own toolpaths imports this; ``parametric cam`` writes the
    tool-offset version for a given router.
    """
    layers: dict[str, tuple[list[Any], list[tuple[Any, float]]]] = {"PROFILE_THROUGH": ([features.outline], [])}
    if features.cutouts:
        layers["CUTOUT_THROUGH"] = (list(features.cutouts), [])
    for pocket in features.pockets:
        layers.setdefault(f"POCKET_{_layer_size(pocket.depth)}MM", ([], []))[0].append(pocket.region)
    for hole in features.holes:
        layer = f"DRILL_{_layer_size(hole.diameter)}MM" + ("" if hole.through else f"_{_layer_size(hole.depth)}DEEP")
        layers.setdefault(layer, ([], []))[1].append((hole.center, hole.diameter))
    return _write_layers(((name, shapes, circles) for name, (shapes, circles) in layers.items()), target)


# -- whole parts -----------------------------------------------------------------------------


@dataclass
class CamResult:
    """What CAM made for one part: its features, operations, DXF, G-code programs and machining time."""

    part: str
    copies: int
    features: PartFeatures
    operations: list[Operation]
    programs: list[Program]
    dxf: Path
    tool_table: Path | None
    quarter_turn: bool
    offset_mm: tuple[float, float]
    tool_change_s: float = 60.0
    timings: dict[str, float] = field(default_factory=dict)
    verified_moves: int | None = None
    """Canonical moves rs274 made of the programs, when they were checked."""

    @property
    def time_s(self) -> float:
        """Machining time of one copy, tool changes between GRBL programs included."""
        return sum(p.time_s for p in self.programs) + max(0, len(self.programs) - 1) * self.tool_change_s

    def checklist(self) -> list[str]:
        """The operations in order, then what this setup leaves to do, for the job sheet."""
        lines = [f"{op.tool.describe()}: {op.description} ({op.layer}"
                 + (f", {op.passes} passes" if op.passes > 1 else "")
                 + (f", {op.dogbones} dogbones" if op.dogbones else "")
                 + (f", {op.tabs} tabs" if op.tabs else "") + ")" for op in self.operations]
        if any(op.tabs for op in self.operations):
            lines.append("cut the tabs and sand them flush")
        return lines + self.features.notes

    def to_dict(self) -> dict[str, Any]:
        width, height = self.features.size
        return {"part": self.part, "copies": self.copies, "size_mm": [round(width, 3), round(height, 3)],
                "thickness_mm": self.features.thickness, "quarter_turn": self.quarter_turn,
                "offset_mm": list(self.offset_mm), "dxf": self.dxf.name,
                "tool_table": self.tool_table.name if self.tool_table else None,
                "programs": [p.to_dict() for p in self.programs],
                "operations": [op.to_dict() for op in self.operations], "notes": self.features.notes,
                "checklist": self.checklist(), "time_s": round(self.time_s, 1),
                "holes": len(self.features.holes), "pockets": len(self.features.pockets),
                "cutouts": len(self.features.cutouts), "verified_moves": self.verified_moves,
                "timings": {k: round(v, 4) for k, v in self.timings.items()}}


def cam_part(shape: Any, name: str, router: Router, material: str, out_dir: str | Path, *,
             thickness: float | None = None, copies: int = 1, quarter_turn: bool = False,
             settings: CamSettings | None = None, header: Sequence[str] = ()) -> CamResult:
    """Features, operations, DXF and G-code for one flat part's B-rep ``shape`` on ``router``."""
    settings = settings or CamSettings()
    started = time.perf_counter()
    features = extract_features(shape, name, thickness)
    if quarter_turn:
        features = features.turned()
    extracted = time.perf_counter()
    operations = plan(features, router, material, settings)
    planned = time.perf_counter()
    out_dir = Path(out_dir)
    dxf = write_dxf(features, operations, out_dir / f"{name}.dxf")
    programs = write_gcode(operations, router, out_dir, name, material=material, thickness=features.thickness,
                           settings=settings, header=header)
    written = time.perf_counter()
    return CamResult(name, copies, features, operations, programs, dxf,
                     out_dir / "tool.tbl" if router.dialect == "linuxcnc" else None, quarter_turn,
                     (settings.margin_mm, settings.margin_mm), settings.tool_change_s,
                     {"features_s": extracted - started, "toolpaths_s": planned - extracted,
                      "write_s": written - planned})


def load_step(path: str | Path) -> Any:
    """The B-rep shape in a STEP file."""
    import cadquery as cq

    return cq.importers.importStep(str(path)).val()


def cam_manifest(manifest: Any, router: Router, material: str, out_dir: str | Path, *, quantity: int = 1,
                 settings: CamSettings | None = None, process: str | None = None) -> list[CamResult]:
    """CAM for every CNC part of a rendered manifest (rendered with STEP files) on ``router``."""
    from ..routing import route

    parts = [part for part in manifest.parts if (part.get("process") or process) == "cnc"]
    verdicts = [route(part, material, [router], process=process) for part in parts]
    refused = [FieldError("machine", f"{v.part}: {v.reason}") for v in verdicts if not v.ok]
    if refused:
        raise ValidationError(refused)
    results = []
    for part, verdict in zip(parts, verdicts, strict=True):
        record = next(r for r in manifest.files if r["format"] == "step" and r["part"] == part["name"])
        shape = load_step(manifest.directory / record["filename"])
        header = [f"{manifest.template} {manifest.version}, part {part['name']} x{part['quantity'] * quantity}"]
        results.append(cam_part(shape, part["name"], router, material, out_dir, thickness=part.get("thickness_mm"),
                                copies=part["quantity"] * quantity, quarter_turn=verdict.quarter_turn,
                                settings=settings, header=header))
    return results


def cam_record(results: Sequence[CamResult], router: Router, material: str, quantity: int,
               settings: CamSettings) -> dict[str, Any]:
    """What a manifest (and a job) records of CAM: machine, material, settings, parts, total machining time."""
    from ..machines import public_record

    return {"machine": public_record(router), "material": material, "quantity": quantity,
            "settings": settings.as_dict(), "parts": [r.to_dict() for r in results],
            "machining_time_s": round(sum(r.time_s * r.copies for r in results), 1)}
