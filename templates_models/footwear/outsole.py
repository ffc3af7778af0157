"""Outsole: a foot-shaped sole with a heel drop and a tread cut into its walking face."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from parametric.registry import Check, Preset, register
from parametric.schema import Mm, choice, length, rule

from .outline import (
    Segment,
    foot_outline,
    outline_prism,
    outline_wire,
    polygon,
    s_curve,
    scale_outline,
    side_profile,
    single_solid,
)
from .pair import PairedTemplate
from .sizing import FootParams

# The sole is at full heel height back from this fraction of its length and at forefoot height from the next on.
DROP_FULL, DROP_END = 0.25, 0.60
MIN_SOLE_ABOVE_TREAD = 3.0
"""Sole (mm) that must stay above the bottom of the tread under the forefoot."""
MIN_LUG = 4.0
"""Smallest lug or rib (mm) a printer lays down cleanly and a walker does not tear off."""
MIN_TREAD_ELEMENTS = 6
"""Fewest lugs, pockets or ribs that still make a tread."""

Rectangle = tuple[float, float, float, float, float]
"""A tread element seen from below: centre x, centre y, size x, size y, corner radius (mm)."""


class OutsoleParams(FootParams):
    sole_thickness: Mm = length(8, ge=4, le=20, step=0.5, order=5,
                                description="Thickness of the sole under the ball and toes.")
    heel_drop: Mm = length(6, ge=0, le=20, step=0.5, order=6,
                           description="How much thicker the sole is under the heel than under the forefoot; "
                                       "0 for a flat (zero-drop) sole.")
    tread_pattern: Literal["lugs", "waffle", "ribs"] = choice(
        "lugs", choices=("lugs", "waffle", "ribs"), order=7,
        description="Tread cut into the walking face: square lugs standing in a recessed field, a waffle of "
                    "square pockets, or grooves across the sole with ribs left between them.")
    tread_depth: Mm = length(3, ge=1, le=8, step=0.5, order=8,
                             description="Depth of the tread grooves or pockets.")
    tread_pitch: Mm = length(14, ge=10, le=30, step=1, order=9, group="Options",
                             description="Centre-to-centre spacing of the lugs, pockets or ribs.")
    groove_width: Mm = length(4, ge=2, le=10, step=0.5, order=10, group="Options",
                              description="Width of the grooves between lugs (for waffle, of the walls between "
                                          "pockets; for ribs, of each cut across the sole).")
    edge_margin: Mm = length(6, ge=3, le=15, step=0.5, order=11, group="Options",
                             description="Width of the smooth band around the sole's edge that the tread stays "
                                         "inside.")
    length_allowance: Mm = length(10, ge=0, le=30, step=1, order=12, group="Options",
                                  description="How much longer the sole is than the foot; the sole is the foot "
                                              "length plus this.")
    width_allowance: Mm = length(10, ge=0, le=30, step=1, order=13, group="Options",
                                 description="How much wider the sole is than the foot across the ball.")

    def sole_length(self) -> float:
        """Length of the sole, heel to toe (mm)."""
        return self.foot_length + self.length_allowance

    def sole_width(self) -> float:
        """Width of the sole across the ball (mm)."""
        return self.foot_width + self.width_allowance

    def outline(self) -> list[Segment]:
        """The sole's outline (Bézier segments, mm)."""
        return foot_outline(self.sole_length(), self.sole_width(), self.side)

    def tread_outline(self) -> list[Segment]:
        """The outline of the treaded area: the sole outline shrunk about its centre by the edge margin."""
        outline = self.outline()
        ys = [y for segment in outline for _, y in segment]
        centre = (self.sole_length() / 2, (min(ys) + max(ys)) / 2)
        return scale_outline(outline, centre, 1 - 2 * self.edge_margin / self.sole_length(),
                             1 - 2 * self.edge_margin / self.sole_width())

    def tread_elements(self) -> list[Rectangle]:
        """The lugs (or pockets, or ribs) of the tread, each wholly inside the treaded area."""
        points = np.array(polygon(self.tread_outline(), 64))
        low, high = points.min(axis=0), points.max(axis=0)
        centre = (low + high) / 2
        pitch, groove = self.tread_pitch, self.groove_width
        if self.tread_pattern == "ribs":
            # Cuts across the sole, each as long as the treaded area allows at its place along the foot.
            xs = centre[0] + pitch * np.arange(-math.floor((high[0] - low[0]) / 2 / pitch),
                                               math.floor((high[0] - low[0]) / 2 / pitch) + 1)
            candidates = []
            for x in xs:
                band = points[np.abs(points[:, 0] - x) <= groove / 2 + 1.0]
                upper, lower = band[band[:, 1] > centre[1]], band[band[:, 1] <= centre[1]]
                if len(upper) == 0 or len(lower) == 0:
                    continue
                top, bottom = upper[:, 1].min() - 1.0, lower[:, 1].max() + 1.0
                if top - bottom >= 3 * groove:
                    candidates.append((float(x), float((top + bottom) / 2), groove, float(top - bottom), groove / 2))
            clearance = 0.0
        else:
            size = pitch - groove
            radius = 0.0
            steps_x = math.floor((high[0] - low[0]) / 2 / pitch) + 1
            steps_y = math.floor((high[1] - low[1]) / 2 / pitch) + 1
            candidates = [(float(centre[0] + i * pitch), float(centre[1] + j * pitch), size, size, radius)
                          for i in range(-steps_x, steps_x + 1) for j in range(-steps_y, steps_y + 1)]
            clearance = groove if self.tread_pattern == "lugs" else 0.0
        return [c for c in candidates if _inside(points, c, clearance)]

    def tread_area(self) -> float:
        """Area (mm²) of the tread's lugs (for lugs) or of its cuts (for waffle and ribs) seen from below."""
        return sum(w * h - (4 - math.pi) * r * r for _, _, w, h, r in self.tread_elements())

    @rule("tread_depth", "sole_thickness")
    def _tread_leaves_sole(self) -> str | None:
        if self.tread_depth > self.sole_thickness - MIN_SOLE_ABOVE_TREAD:
            return (f"the tread must leave at least {MIN_SOLE_ABOVE_TREAD:g} mm of sole above it under the "
                    f"forefoot: with a {self.sole_thickness:g} mm sole the tread can be at most "
                    f"{self.sole_thickness - MIN_SOLE_ABOVE_TREAD:g} mm deep")
        return None

    @rule("groove_width", "tread_pitch")
    def _lugs_wide_enough(self) -> str | None:
        if self.groove_width > self.tread_pitch - MIN_LUG:
            between = "the sole left between cuts" if self.tread_pattern == "ribs" else "the lugs between grooves"
            return (f"{between} would be narrower than {MIN_LUG:g} mm with {self.groove_width:g} mm grooves at a "
                    f"{self.tread_pitch:g} mm pitch; use a larger pitch or narrower grooves")
        return None

    @rule("tread_pitch", "edge_margin")
    def _tread_fits_sole(self) -> str | None:
        if self.sole_width() - 2 * self.edge_margin < 2 * self.tread_pitch:
            return (f"a {self.sole_width():g} mm wide sole with {self.edge_margin:g} mm edge bands leaves too "
                    f"little room for a {self.tread_pitch:g} mm tread; use a smaller pitch or edge margin")
        elements = len(self.tread_elements())
        if elements < MIN_TREAD_ELEMENTS:
            return (f"only {elements} tread elements fit inside the edge band at this pitch; at least "
                    f"{MIN_TREAD_ELEMENTS} are needed for grip, so use a smaller pitch, narrower grooves or a "
                    f"smaller edge margin")
        return None


def _inside(points: np.ndarray, element: Rectangle, clearance: float) -> bool:
    """Whether a tread element, grown by ``clearance``, stays inside the closed polygon ``points``."""
    x, y, w, h, _ = element
    half_w, half_h = w / 2 + clearance + 0.5, h / 2 + clearance + 0.5
    near = (np.abs(points[:, 0] - x) <= half_w) & (np.abs(points[:, 1] - y) <= half_h)
    if near.any():
        return False
    # No boundary point in the box, so the box is wholly inside or wholly outside: test its centre.
    x0, y0 = points[:, 0], points[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    straddles = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = x0 + (x1 - x0) * (y - y0) / (y1 - y0)
    return bool(np.count_nonzero(straddles & (x < crossing_x)) % 2)


def _rounded_rectangle(element: Rectangle, z: float) -> Any:
    """A closed wire around a tread element at height ``z``: a rectangle, its corners rounded if it has a
    radius (a slot if fully round)."""
    import cadquery as cq

    x, y, w, h, r = element
    r = min(r, w / 2, h / 2)
    centres = [(x + w / 2 - r, y + h / 2 - r), (x - w / 2 + r, y + h / 2 - r),
               (x - w / 2 + r, y - h / 2 + r), (x + w / 2 - r, y - h / 2 + r)]

    def on_corner(index: int, degrees: float) -> Any:
        cx, cy = centres[index % 4]
        return cq.Vector(cx + r * math.cos(math.radians(degrees)), cy + r * math.sin(math.radians(degrees)), z)

    edges = []
    for index in range(4):  # counter-clockwise: a quarter arc round each corner, then a side unless it is nil
        start = 90 * index
        if r > 0:
            edges.append(cq.Edge.makeThreePointArc(on_corner(index, start), on_corner(index, start + 45),
                                                   on_corner(index, start + 90)))
        line_start, line_end = on_corner(index, start + 90), on_corner(index + 1, start + 90)
        if (line_end - line_start).Length > 1e-6:
            edges.append(cq.Edge.makeLine(line_start, line_end))
    return cq.Wire.assembleEdges(edges)


def _recessed_from_below(body: Any, recesses: list[tuple[Any, list[Any]]], depth: float) -> Any:
    """``body`` with recesses ``depth`` deep cut up into its flat bottom face at z = 0.

    Each recess is a closed wire on the bottom face with islands (wires) left standing inside it. Every
    recess lies inside the bottom face, apart from the others and below the top, so the solid is put
    together face by face from shared edges: the body without its bottom, the bottom with a hole per
    recess, each recess's walls and ceiling, and the islands' feet. A boolean cut with hundreds of tool
    faces takes seconds; this takes a fraction of one and leaves nothing to tolerance.
    """
    import cadquery as cq
    from OCP.BRep import BRep_Builder
    from OCP.BRepBuilderAPI import BRepBuilderAPI_MakeSolid
    from OCP.BRepPrimAPI import BRepPrimAPI_MakePrism
    from OCP.gp import gp_Vec
    from OCP.ShapeFix import ShapeFix_Shell
    from OCP.TopAbs import TopAbs_FACE
    from OCP.TopExp import TopExp_Explorer
    from OCP.TopoDS import TopoDS_Shell

    bottom = next(face for face in body.Faces()
                  if face.geomType() == "PLANE" and abs(face.Center().z) < 1e-6 and face.normalAt().z < -0.99)
    builder, shell = BRep_Builder(), TopoDS_Shell()
    builder.MakeShell(shell)
    for face in body.Faces():
        if not face.isSame(bottom):
            builder.Add(shell, face.wrapped)
    builder.Add(shell, _planar_face(bottom.outerWire(), [outer for outer, _ in recesses]).Reversed())
    for outer, islands in recesses:
        floor = _planar_face(outer, islands)
        prism = BRepPrimAPI_MakePrism(floor, gp_Vec(0, 0, depth))
        explorer = TopExp_Explorer(prism.Shape(), TopAbs_FACE)
        while explorer.More():  # walls and ceiling, turned to face into the recess
            if not explorer.Current().IsSame(prism.FirstShape()):
                builder.Add(shell, explorer.Current().Reversed())
            explorer.Next()
        for island in islands:
            builder.Add(shell, _planar_face(island, []).Reversed())
    fix = ShapeFix_Shell(shell)
    fix.FixFaceOrientation(shell)
    return cq.Solid(BRepBuilderAPI_MakeSolid(fix.Shell()).Solid())


def _planar_face(outer: Any, holes: list[Any]) -> Any:
    """A planar OCCT face bounded by the very edges of ``outer`` and ``holes`` (so neighbours can share them)."""
    from OCP.BRepBuilderAPI import BRepBuilderAPI_MakeFace
    from OCP.ShapeFix import ShapeFix_Face
    from OCP.TopoDS import TopoDS

    maker = BRepBuilderAPI_MakeFace(outer.wrapped, True)
    for hole in holes:
        maker.Add(TopoDS.Wire_s(hole.wrapped.Reversed()))
    fix = ShapeFix_Face(maker.Face())
    fix.FixOrientation()
    fix.Perform()
    return fix.Face()


@register
class Outsole(PairedTemplate):
    id = "outsole"
    version = "1.1.0"
    name = "Outsole"
    family = "footwear"
    process = ("fdm",)
    materials = ("tpu", "pa12")
    description = ("The walking sole of a shoe, shaped to your foot or shoe size, thicker under the heel than under "
                   "the toes, with a lug, waffle or rib tread cut into its face. Printed in flexible TPU.")
    Params = OutsoleParams
    presets = {
        "eu42-everyday": Preset("EU 42 everyday shoe", {"shoe_size": "EU 42", "foot_width": 100},
                                description="A medium-width men's sole with square lugs and a 6 mm heel drop."),
        "eu45-wide-hiking": Preset("EU 45 wide foot, hiking lugs",
                                   {"shoe_size": "EU 45", "foot_width": 114, "sole_thickness": 12, "heel_drop": 8,
                                    "tread_depth": 5, "tread_pitch": 18, "groove_width": 6},
                                   description="A thick sole with deep, widely spaced lugs for trails."),
        "us-w8-narrow-flat": Preset("US W 8 narrow foot, zero-drop waffle",
                                    {"shoe_size": "US W 8", "foot_width": 86, "sole_thickness": 6, "heel_drop": 0,
                                     "tread_pattern": "waffle", "tread_depth": 2, "tread_pitch": 10,
                                     "groove_width": 3, "side": "left"},
                                    description="A thin, flat sole for a slim women's foot (left)."),
        "uk9-court": Preset("UK 9 court shoe, ribbed",
                            {"shoe_size": "UK 9", "foot_width": 104, "sole_thickness": 7, "heel_drop": 4,
                             "tread_pattern": "ribs", "tread_depth": 2, "tread_pitch": 10, "groove_width": 3},
                            description="Shallow cross ribs for indoor courts."),
    }

    def build_one(self, p: OutsoleParams) -> Any:
        sole_length, t, heel = p.sole_length(), p.sole_thickness, p.sole_thickness + p.heel_drop
        outline = p.outline()
        if p.heel_drop > 0:
            full, end = sole_length * DROP_FULL, sole_length * DROP_END
            steps = [((sole_length + 5, -1),), ((sole_length + 5, t),), ((end, t),),
                     s_curve((end, t), (full, heel)), ((-5, heel),)]
        else:
            steps = [((sole_length + 5, -1),), ((sole_length + 5, t),), ((-5, t),)]
        width = p.sole_width()
        side_view = side_profile((-5, -1), steps, "XZ", -width, width)
        sole = single_solid(outline_prism(outline, 0, heel + 5).intersect(side_view))

        # The tread: recessed regions (each an outer wire, with islands left standing inside it for lugs).
        elements = [_rounded_rectangle(e, 0) for e in p.tread_elements()]
        if p.tread_pattern == "lugs":
            recesses = [(outline_wire(p.tread_outline(), 0), elements)]
        else:
            recesses = [(wire, []) for wire in elements]
        return _recessed_from_below(sole, recesses, p.tread_depth)

    def size_one(self, p: OutsoleParams) -> tuple[float, float, float]:
        return (p.sole_length(), p.sole_width(), p.sole_thickness + p.heel_drop)

    def quality_checks(self, p: OutsoleParams) -> list[Check]:
        return [
            Check("Sole length, heel to toe", p.sole_length(), 1.0),
            Check("Sole width across the ball", p.sole_width(), 1.0),
            Check("Sole thickness under the forefoot", p.sole_thickness, 0.3),
            Check("Sole thickness under the heel", p.sole_thickness + p.heel_drop, 0.3),
            Check("Tread depth", p.tread_depth, 0.2),
            Check("Tread pitch", p.tread_pitch, 0.3),
        ]
