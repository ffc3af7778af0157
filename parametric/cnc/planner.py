"""Operations and toolpaths: what a router does, tool by tool, to make a flat part's features.

:func:`plan` turns features into operations with tools from the router's library (drill
bits for matching holes, the largest end mill that fits for the rest) and toolpaths with
the offsets done here, because GRBL has no cutter compensation: outlines outside by the tool
radius, openings inside, pockets cleared with inward rings, dogbone reliefs plunged into
inside corners so square parts seat, depth in passes of the tool's stepdown, and tabs left
on the final passes of through cuts. The toolpaths are machine-neutral: a post-processor
(:mod:`parametric.cnc.post`) writes them in a controller's dialect. Offsets use shapely
with round joins.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..machines import Feeds, Router, Tool
from ..routing import SHEET_MARGIN_MM, THROUGH_CUT_OVERCUT_MM
from .features import CamError, Hole, PartFeatures, polygons

DRILL_MATCH = 0.05
"""A drill bit makes a hole if their diameters differ by at most this (mm)."""
DRILL_POINT_FACTOR = 0.3
"""Extra depth for a 118 degree drill point to break through, as a share of the drill diameter."""


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


def layer_size(value: float) -> str:
    """A size in a DXF layer name: one decimal at most (``POCKET_6MM``, ``DRILL_7.5MM``)."""
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


@dataclass
class _Choice:
    """The tools a part's features are made with (:meth:`_Planner.choose`), before any toolpath is drawn."""

    profile_tool: Tool
    through: float
    """How deep through cuts go: the sheet and the overcut (mm)."""
    drills: dict[tuple[int, bool, float], list[Hole]] = field(default_factory=dict)
    """Holes by (drill or matching end mill number, through, depth)."""
    pockets: list[tuple[Any, dict[int, list[Any]]]] = field(default_factory=list)
    """Each pocket, shallowest first, with its pieces by end mill number."""
    milled: list[tuple[tuple[float, bool, float], list[Hole], Tool]] = field(default_factory=list)
    """Holes no drill matches, by (diameter, through, depth), with the end mill that mills them."""
    cutouts: dict[int, list[Any]] = field(default_factory=dict)
    """Through openings by end mill number."""


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
        layer = f"DRILL_{layer_size(hole.diameter)}MM" + ("" if through else f"_{layer_size(hole.depth)}DEEP")
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
            for piece in polygons(level):
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
        return Operation(kind, layer, tool, feeds, depth, description, shapes=polygons(reliefs), path=path,
                         dogbones=len(dogbones), passes=len(depths))

    def _dogbones(self, region: Any, keep: Any, radius: float) -> list[tuple[float, float]]:
        """Centres of dogbone plunges: at each inside corner between two walls, a tool radius along the bisector."""
        from shapely.geometry import Point

        centres = []
        probe = 0.05
        solid = keep.buffer(-probe / 4)
        for piece in polygons(region):
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
            pieces = polygons(offset)
            if not pieces:
                raise CamError(self.features.name, f"an opening of {_fmt(shape.area)} mm² is too small for "
                                                   f"{tool.describe()}")
            coords = _ring_sequence(pieces[0].exterior, ccw=(not outside) != self.settings.climb)
            tabs = self.tab_count(shape, outline=outside) if depth >= thickness else 0
            spans = _tab_spans(coords, tabs, self.settings.tab_width_mm + tool.diameter_mm)
            self._ring_passes(path, coords, depths, spans, tab_top)
            corners = []
            if dogbones and self.settings.dogbones:
                if outside:  # notches in the outline (a halving slot, a tenon's shoulders): the air is the region
                    corners = self._dogbones(shape.buffer(10 * radius).difference(shape), shape, radius)
                else:
                    corners = self._dogbones(shape, shape.exterior.buffer(10 * radius).difference(shape), radius)
            for x, y in corners:
                self._plunge_path(path, x, y, depths, retract_each=False)
            disks = [_disk(c, radius) for c in corners]
            if outside:
                drawn.extend(polygons(shape.difference(unary_union(disks)) if disks else shape))
            else:
                drawn.extend(polygons(unary_union([shape, *disks])))
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

    def choose(self) -> _Choice:
        """The tool for every feature, without toolpaths: the part of planning that decides whether the router
        can make the part at all (raising :class:`CamError` with the reason when it cannot). Routing and quotes
        ask this (:func:`check`), and :meth:`operations` plans from it, so they cannot disagree."""
        from shapely.geometry import Point

        features, material = self.features, self.material
        through = features.thickness + self.settings.overcut_mm
        endmills_through = _endmills(self.router, material, through)
        if not endmills_through:
            raise CamError(features.name, f"no end mill with feeds for {material} reaches {_fmt(through)} mm deep "
                                          f"on {self.router.name}")
        choice = _Choice(self._outline_tool(endmills_through), through)

        # holes: a matching drill bit, else an end mill that fits (plunged if it is the hole's size)
        interpolated: list[Hole] = []
        for hole in features.holes:
            drill = self._drill_for(hole)
            if drill is not None:
                choice.drills.setdefault((drill.number, hole.through, hole.depth), []).append(hole)
            else:
                interpolated.append(hole)

        for pocket in sorted(features.pockets, key=lambda p: p.depth):
            by_tool: dict[int, list[Any]] = {}
            for piece in polygons(pocket.region):
                by_tool.setdefault(self._endmill_fitting(piece, pocket.depth, keep=pocket.keep).number,
                                   []).append(piece)
            choice.pockets.append((pocket, by_tool))

        # holes no drill matches: milled inside with an end mill, blind ones cleared as round pockets
        milled: dict[tuple[float, bool, float], list[Hole]] = {}
        for hole in interpolated:
            milled.setdefault((hole.diameter, hole.through, hole.depth), []).append(hole)
        for (diameter, through_hole, depth), holes in sorted(milled.items()):
            circle = Point(holes[0].center).buffer(diameter / 2, quad_segs=64)
            tool = self._endmill_fitting(circle, through if through_hole else depth, hole=holes[0])
            choice.milled.append(((diameter, through_hole, depth), holes, tool))

        for cutout in features.cutouts:
            choice.cutouts.setdefault(self._endmill_fitting(cutout, through).number, []).append(cutout)
        return choice

    def operations(self) -> list[Operation]:
        from shapely.geometry import Point
        from shapely.ops import unary_union

        features = self.features
        choice = self.choose()
        through = choice.through
        operations: list[Operation] = []
        for (number, _, _), holes in sorted(choice.drills.items(), key=lambda item: (item[1][0].diameter,
                                                                                      item[0][2])):
            operations.append(self.drill(holes, self.router.tool(number)))

        for pocket, by_tool in choice.pockets:
            layer = f"POCKET_{layer_size(pocket.depth)}MM"
            for number, pieces in by_tool.items():
                count = len(pieces)
                operations.append(self.pocket(unary_union(pieces), pocket.keep, pocket.depth,
                                              self.router.tool(number), "pocket", layer,
                                              f"{count} pocket{'s' if count > 1 else ''} {_fmt(pocket.depth)} mm "
                                              f"deep ({_fmt(sum(p.area for p in pieces) / 100)} cm²)"))

        for (diameter, through_hole, depth), holes, tool in choice.milled:
            circles = [Point(h.center).buffer(diameter / 2, quad_segs=64) for h in holes]
            count = f"{len(holes)} hole{'s' if len(holes) > 1 else ''}"
            if through_hole:
                operation = self.profile(circles, tool, False, through, f"DRILL_{layer_size(diameter)}MM",
                                         f"mill {count} Ø{_fmt(diameter)} mm through", dogbones=False)
            else:
                region = unary_union(circles)
                operation = self.pocket(region, features.outline.difference(region), depth, tool, "bore",
                                        f"DRILL_{layer_size(diameter)}MM_{layer_size(depth)}DEEP",
                                        f"bore {count} Ø{_fmt(diameter)} mm {_fmt(depth)} mm deep")
            operation.circles = [(h.center, h.diameter) for h in holes]
            operation.shapes = []
            operations.append(operation)

        for number, cutouts in choice.cutouts.items():
            count = len(cutouts)
            operations.append(self.profile(cutouts, self.router.tool(number), False, through, "CUTOUT_THROUGH",
                                           f"cut out {count} opening{'s' if count > 1 else ''} through",
                                           dogbones=True))

        operations.append(self.profile([features.outline], choice.profile_tool, True, through, "PROFILE_THROUGH",
                                       f"cut the outline {_fmt(features.size[0])} x {_fmt(features.size[1])} mm "
                                       "through", dogbones=True))
        return operations

    def _outline_tool(self, tools: Sequence[Tool]) -> Tool:
        """The largest of ``tools`` whose outside path still enters every notch of the outline (a halving slot,
        the gap beside a tenon), leaving at most the corner fillets the dogbones take out; a larger cutter would
        ride over a narrow notch and leave it uncut."""
        outline = self.features.outline
        vertices = list(outline.exterior.coords)
        for tool in tools:
            radius = tool.radius_mm
            swept = outline.buffer(radius, quad_segs=16).buffer(-radius, quad_segs=16)
            missed = swept.difference(outline)
            if all(_near_a_corner(piece, vertices, 1.5 * radius) for piece in polygons(missed) if piece.area > 1e-3):
                return tool
        air = outline.envelope.buffer(1.0).difference(outline)
        narrowest = min((_narrowest(piece) for piece in polygons(air) if piece.area > 1.0), default=0.0)
        have = ", ".join(t.describe() for t in tools)
        raise CamError(self.features.name, f"a notch in the outline about {_fmt(narrowest)} mm wide needs a smaller "
                                           f"end mill reaching through; {self.router.name} has {have}")

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
            vertices = [c for piece in polygons(region) for ring in [piece.exterior, *piece.interiors]
                        for c in ring.coords]
            if all(_near_a_corner(piece, vertices, 1.5 * radius) for piece in polygons(missed) if piece.area > 1e-3):
                return tool
        raise CamError(self.features.name, self._missing(region, depth, hole))

    def _missing(self, region: Any, depth: float, hole: Hole | None) -> str:
        """Why no tool makes ``region``, naming what would and what the router's tools fall short by: "the Ø5 mm
        drill T3 reaches 25 mm; this hole is 30.9 mm deep (a 30 mm board and the drill's point)"."""
        board = f"a {_fmt(self.features.thickness)} mm board"
        if hole is not None:
            what = f"a Ø{_fmt(hole.diameter)} mm {'through ' if hole.through else ''}hole"
            need = self._hole_depth(hole, Tool(0, hole.diameter, "drill"))
            short = [t for t in self.router.tools if t.type in ("drill", "endmill") and self.material in t.feeds
                     and abs(t.diameter_mm - hole.diameter) <= DRILL_MATCH]
            if short:
                tool = max(short, key=lambda t: t.flute_length_mm)
                point = " and the drill's point" if hole.through and tool.type == "drill" else ""
                return (f"{what}: the Ø{_fmt(tool.diameter_mm)} mm {tool.type} T{tool.number} reaches "
                        f"{_fmt(tool.flute_length_mm)} mm; this hole is {_fmt(need)} mm deep ({board}{point}), and no "
                        f"smaller end mill with feeds for {self.material} reaches that deep")
            mill_depth = self._hole_depth(hole, Tool(0, hole.diameter, "endmill"))
            wanted = f"a {_fmt(hole.diameter)} mm drill"
            if abs(mill_depth - need) > 1e-9:  # a drill's point goes deeper than an end mill has to
                wanted += f" reaching {_fmt(need)} mm"
                need = mill_depth
            wanted += f" or an end mill under {_fmt(hole.diameter)} mm"
        else:
            what = f"a {_fmt(depth)} mm deep feature {_fmt(_narrowest(region))} mm wide"
            need = depth
            wanted = f"an end mill under {_fmt(_narrowest(region))} mm"
        reach = [t for t in self.router.tools if self.material in t.feeds]
        have = ", ".join(f"{t.describe()} reaching {_fmt(t.flute_length_mm)} mm" for t in reach) or "no tools"
        return (f"{what} needs {wanted} reaching {_fmt(need)} mm, with feeds for {self.material}; "
                f"{self.router.name} has {have}")


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


def refusal(features: PartFeatures, router: Router, material: str, settings: CamSettings | None = None
            ) -> str | None:
    """Why ``router`` cannot make ``features`` in ``material`` (the reason :func:`plan` would refuse it with), or
    ``None`` when it can: the tool choice of planning without the toolpaths, for routing and quotes."""
    try:
        _Planner(features, router, material, settings or CamSettings()).choose()
    except CamError as error:
        return error.reason
    return None
