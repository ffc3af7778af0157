"""What a flat sheet part asks of a router, read from its B-rep.

A flat part (``Part.flat``) lies on XY with its thickness along +Z and every feature cut
into its top face, so one setup makes it. :func:`extract_features` reads that B-rep:

- the outline (the part's silhouette) and its through openings: circular ones are holes,
  the rest cut-outs;
- pockets (dados, rebates): planar faces looking up, below the top face, with their depth;
  a circular pocket is a blind bore (a hinge cup);
- what this setup cannot make (an edge profile or pocket on the underside, countersinks),
  kept as notes for the job sheet.

Geometry is shapely, in mm, in part coordinates moved so the outline starts at (0, 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ParametricError

EPS = 0.01
"""Height above a face at which a section is taken (mm)."""
CIRCLE_TOLERANCE = 0.02
"""How far a ring's vertices may stray from its mean radius and still be a circle (mm)."""
CHORD_TOLERANCE = 0.01
"""Largest distance between an arc and its polyline (mm)."""


class CamError(ParametricError):
    """A part cannot be machined on a router as equipped; ``reason`` says what is missing."""

    def __init__(self, part: str, reason: str):
        self.part = part
        self.reason = reason
        super().__init__(f"{part}: {reason}")


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


@dataclass(frozen=True)
class SecondSetup:
    """An operation the sheet program leaves for a second setup (the part turned over, or a hand tool), with the
    tool it takes: what the bench must still do before the part is finished."""

    operation: str
    tool: str

    def to_dict(self) -> dict[str, str]:
        return {"operation": self.operation, "tool": self.tool}


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
    second_setups: list[SecondSetup] = field(default_factory=list)

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
            notes=list(self.notes), second_setups=list(self.second_setups))


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


def polygons(geometry: Any) -> list[Any]:
    """The non-empty polygons of a shapely geometry (none, itself, or the polygons of a collection)."""
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
    setups: list[SecondSetup] = []
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
            setups.append(SecondSetup(f"turn the part over and cut the face looking down {z - bottom:g} mm above "
                                      "the underside", "an end mill from the first setup"))
    countersinks = [face for face in shape.Faces() if face.geomType() == "CONE"]

    ordered = sorted(levels)
    heights = [bottom + EPS, top - EPS] + [(a + b) / 2 for a, b in zip(ordered, ordered[1:], strict=False)]
    sections = {round(z, 4): _section(shape, z) for z in heights}
    silhouette = unary_union(list(sections.values())).buffer(0)
    pieces = polygons(silhouette)
    if not pieces:
        raise CamError(name, "the part has no material to cut")
    if len(pieces) > 1:
        raise CamError(name, f"the part is in {len(pieces)} separate pieces in plan view; cut them as separate parts")
    body = pieces[0]
    underside = sections[round(bottom + EPS, 4)]
    if body.area - underside.area > 1.0:
        setups.append(_edge_profile(shape, body, underside))

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
        for piece in polygons(region):
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
            setups.append(SecondSetup(f"countersink {count} hole{'s' if count > 1 else ''} to {diameter:g} mm at the "
                                      "top face", f"a 90° countersink bit of at least {diameter:g} mm, in a drill or "
                                      "the router"))
    holes.sort(key=lambda h: (h.diameter, h.center[1], h.center[0]))
    return PartFeatures(name=name, thickness=round(thickness, 4), outline=outline, cutouts=cutouts, holes=holes,
                        pockets=pockets, notes=list(dict.fromkeys(notes)),
                        second_setups=list(dict.fromkeys(setups)))


def _edge_profile(shape: Any, body: Any, underside: Any) -> SecondSetup:
    """The bottom edges' profile as a second setup with its cutter: a round-over where the edges are rounded
    (a cylindrical face lying along an edge), a 45° chamfer bit otherwise, sized by how far the underside is in."""
    from OCP.BRepAdaptor import BRepAdaptor_Surface

    cylinders = [BRepAdaptor_Surface(face.wrapped).Cylinder() for face in shape.Faces()
                 if face.geomType() == "CYLINDER"]
    radii = [c.Radius() for c in cylinders if abs(c.Axis().Direction().Z()) < 0.1]  # lying along an edge, not a hole
    if radii:
        radius = round(max(radii), 1)
        return SecondSetup(f"turn the part over and round over the bottom edges, {radius:g} mm radius",
                           f"a {radius:g} mm radius round-over bit with a bearing")
    x0, y0, x1, y1 = body.bounds
    u0, v0, u1, v1 = underside.bounds
    width = round(max(u0 - x0, v0 - y0, x1 - u1, y1 - v1) + EPS, 1)  # the section is EPS above the bottom
    return SecondSetup(f"turn the part over and chamfer the bottom edges, {width:g} mm",
                       f"a 45° chamfer bit with a bearing, set {width:g} mm deep")


def load_step(path: str | Path) -> Any:
    """The B-rep shape in a STEP file."""
    import cadquery as cq

    return cq.importers.importStep(str(path)).val()


