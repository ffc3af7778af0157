"""Gridfinity bin: a storage bin that drops into any Gridfinity baseplate and stacks on its peers.

Dimensions follow the published Gridfinity specification (gridfinity.xyz/specification):
a 42 mm grid, bins 0.5 mm smaller than their cells, 7 mm height units, a foot under each
cell (0.8 mm 45° chamfer, 1.8 mm straight, 2.15 mm 45° chamfer; 41.5 mm square with a
3.75 mm corner radius at the top, 0.8 mm at the bottom) and the stacking lip (0.7 mm
chamfer, 1.8 mm straight, 1.9 mm chamfer; 4.4 mm tall, on top of the walls).

The bin stands on z = 0 centred on the origin, printed as it stands.
"""

from __future__ import annotations

from parametric.part import Part
from parametric.registry import Check, Preset, Template, register
from parametric.schema import Mm, TemplateParams, count, length, rule, switch

GRID_PITCH = 42.0
"""Grid cell size (mm)."""
BIN_CLEARANCE = 0.5
"""A bin is this much smaller than its cells (mm), 0.25 mm on each side."""
HEIGHT_UNIT = 7.0
"""One Gridfinity height unit (mm)."""
OUTER_RADIUS = 3.75
"""Corner radius of the bin's outside and of each foot's top (mm)."""
FOOT_BOTTOM_CHAMFER = 0.8
FOOT_STRAIGHT = 1.8
FOOT_TOP_CHAMFER = 2.15
FOOT_HEIGHT = FOOT_BOTTOM_CHAMFER + FOOT_STRAIGHT + FOOT_TOP_CHAMFER  # 4.75 mm
FLOOR_TOP = HEIGHT_UNIT
"""Height of the inside floor (mm): the first height unit is the base."""
LIP_TIP_CHAMFER = 0.7
LIP_STRAIGHT = 1.8
LIP_TOP_CHAMFER = 1.9
LIP_HEIGHT = LIP_TIP_CHAMFER + LIP_STRAIGHT + LIP_TOP_CHAMFER  # 4.4 mm
LIP_DEPTH = LIP_TIP_CHAMFER + LIP_TOP_CHAMFER  # 2.6 mm: how far the lip's tip reaches in from the outside
LIP_SUPPORT = 1.2
"""Straight band under the lip's tip (mm), so the tip is not a knife edge hanging in the air."""
LIP_RIM = 0.25
"""Flat left on top of the lip (mm): the spec's knife edge cannot be made or printed."""
DIVIDER_THICKNESS = 1.2
MIN_COMPARTMENT = 15.0
"""Narrowest compartment (mm) a finger can reach into."""


def outer_size(units: int) -> float:
    """Outside size of a bin `units` cells long: 42 mm per cell, less the 0.5 mm clearance."""
    return GRID_PITCH * units - BIN_CLEARANCE


class GridfinityBinParams(TemplateParams):
    grid_x: int = count(2, ge=1, le=6, order=1, group="Dimensions",
                        description="Width of the bin in 42 mm grid cells (left to right).")
    grid_y: int = count(1, ge=1, le=6, order=2, group="Dimensions",
                        description="Depth of the bin in 42 mm grid cells (front to back).")
    height_units: int = count(6, ge=2, le=12, order=3, group="Dimensions",
                              description="Height of the walls in 7 mm Gridfinity units (the stacking lip adds "
                                          "4.4 mm).")
    dividers_x: int = count(0, ge=0, le=9, order=4,
                            description="Divider walls splitting the bin from left to right; n walls make n + 1 "
                                        "compartments.")
    dividers_y: int = count(0, ge=0, le=9, order=5,
                            description="Divider walls splitting the bin from front to back; n walls make n + 1 "
                                        "compartments.")
    stacking_lip: bool = switch(True, order=6,
                                description="Add the Gridfinity stacking lip so another bin can stand on this one.")
    wall_thickness: Mm = length(1.2, ge=0.8, le=2.4, step=0.05, order=7, group="Options",
                                description="Thickness of the outer walls; 1.2 mm is three lines of a 0.4 mm "
                                            "nozzle.")

    @property
    def size_x(self) -> float:
        return outer_size(self.grid_x)

    @property
    def size_y(self) -> float:
        return outer_size(self.grid_y)

    @property
    def wall_height(self) -> float:
        """Height of the top of the walls (the lip's tip), mm."""
        return HEIGHT_UNIT * self.height_units

    @property
    def total_height(self) -> float:
        return self.wall_height + (LIP_HEIGHT if self.stacking_lip else 0.0)

    def compartment(self, size: float, dividers: int) -> float:
        """Clear width of each of the equal compartments across an outside `size` with `dividers` walls."""
        inside = size - 2 * self.wall_thickness
        return (inside - dividers * DIVIDER_THICKNESS) / (dividers + 1)

    def divider_positions(self, size: float, dividers: int) -> list[float]:
        """Centre lines of the divider walls, measured from the bin's centre (mm)."""
        inside = size - 2 * self.wall_thickness
        gap = self.compartment(size, dividers)
        return [-inside / 2 + (i + 1) * gap + (i + 0.5) * DIVIDER_THICKNESS for i in range(dividers)]

    def compartment_spans(self, size: float, dividers: int) -> list[tuple[float, float]]:
        """(start, end) of each compartment's clear width, measured from the bin's centre (mm)."""
        inside = size - 2 * self.wall_thickness
        edges = [-inside / 2]
        for centre in self.divider_positions(size, dividers):
            edges += [centre - DIVIDER_THICKNESS / 2, centre + DIVIDER_THICKNESS / 2]
        edges.append(inside / 2)
        return list(zip(edges[0::2], edges[1::2], strict=True))

    @property
    def divider_top(self) -> float:
        """Dividers stop under the stacking lip so a bin stacked on top still seats; without a lip, at the rim."""
        if self.stacking_lip:
            return self.wall_height - LIP_SUPPORT - (LIP_DEPTH - self.wall_thickness)
        return self.wall_height

    @rule("dividers_x", "grid_x")
    def _x_compartments_fit(self) -> str | None:
        return self._compartments_fit("dividers_x", self.size_x, self.dividers_x, "wide")

    @rule("dividers_y", "grid_y")
    def _y_compartments_fit(self) -> str | None:
        return self._compartments_fit("dividers_y", self.size_y, self.dividers_y, "deep")

    def _compartments_fit(self, name: str, size: float, dividers: int, word: str) -> str | None:
        if dividers and self.compartment(size, dividers) < MIN_COMPARTMENT:
            most = int((size - 2 * self.wall_thickness - MIN_COMPARTMENT) // (MIN_COMPARTMENT + DIVIDER_THICKNESS))
            return (f"{dividers} dividers leave compartments only {self.compartment(size, dividers):.1f} mm {word}; "
                    f"each must be at least {MIN_COMPARTMENT:g} mm to reach into, so use at most {most} "
                    f"or a bigger bin")
        return None


@register
class GridfinityBin(Template):
    id = "gridfinity_bin"
    version = "1.0.0"
    name = "Gridfinity bin"
    family = "home"
    process = ("fdm",)
    materials = ("pla", "petg")
    description = ("A storage bin for the Gridfinity 42 mm grid: any size from 1x1 to 6x6 cells, 2 to 12 height "
                   "units, optional dividers and stacking lip. Fits every standard Gridfinity baseplate.")
    Params = GridfinityBinParams
    presets = {
        "drawer-3x2": Preset("Kitchen drawer 3x2 bin", {"grid_x": 3, "grid_y": 2, "height_units": 6,
                                                         "dividers_x": 2},
                             description="Three compartments for cutlery and gadgets in a kitchen drawer."),
        "small-parts-2x2": Preset("Small-parts tray 2x2", {"grid_x": 2, "grid_y": 2, "height_units": 3,
                                                            "dividers_x": 1, "dividers_y": 1},
                                  description="Four shallow compartments for screws, nuts and washers."),
        "pen-cup-1x1": Preset("Desk pen cup", {"grid_x": 1, "grid_y": 1, "height_units": 12,
                                               "stacking_lip": False, "wall_thickness": 1.6},
                              description="A tall single-cell cup for pens and tools.", material="petg"),
    }

    def build(self, p: GridfinityBinParams) -> list[Part]:
        import cadquery as cq

        def rounded(size_x: float, size_y: float, radius: float, z: float) -> cq.Wire:
            """A rounded rectangle centred on the z axis at height z."""
            x, y = size_x / 2, size_y / 2
            corners = [(-x, -y, z), (x, -y, z), (x, y, z), (-x, y, z)]
            return cq.Wire.makePolygon(corners, close=True).fillet(radius)

        def ruled(sections: list[tuple[float, float]], size_x: float, size_y: float) -> cq.Solid:
            """A straight-sided solid through (height, inset) sections of a size_x by size_y outline."""
            wires = [rounded(size_x - 2 * inset, size_y - 2 * inset, OUTER_RADIUS - inset, z)
                     for z, inset in sections]
            return cq.Solid.makeLoft(wires, True)

        w, top, divider_top = p.wall_thickness, p.wall_height, p.divider_top
        body = ruled([(FOOT_HEIGHT, 0.0), (p.total_height, 0.0)], p.size_x, p.size_y)

        # The hollow, as cutting tools: the upper part follows the stacking lip's profile and starts
        # where the dividers end; below it, one tool per compartment, so the dividers are what is
        # left standing between them (cheaper and sturdier than fusing crossing walls).
        above = p.total_height + 1.0  # the tool leaves through the top
        if p.stacking_lip:
            upper = [
                (divider_top, w),  # 45° support under the lip starts here
                (top - LIP_SUPPORT, LIP_DEPTH),
                (top, LIP_DEPTH),  # the lip's tip
                (top + LIP_TIP_CHAMFER, LIP_DEPTH - LIP_TIP_CHAMFER),
                (top + LIP_TIP_CHAMFER + LIP_STRAIGHT, LIP_DEPTH - LIP_TIP_CHAMFER),
                (p.total_height - LIP_RIM, LIP_RIM),
                (above, LIP_RIM),
            ]
        else:
            upper = [(divider_top, w), (above, w)]
        tools = [ruled(upper, p.size_x, p.size_y)]
        spans_x = p.compartment_spans(p.size_x, p.dividers_x)
        spans_y = p.compartment_spans(p.size_y, p.dividers_y)
        radius = OUTER_RADIUS - w
        for i, (x0, x1) in enumerate(spans_x):
            for j, (y0, y1) in enumerate(spans_y):
                corners = [(x0, y0, FLOOR_TOP), (x1, y0, FLOOR_TOP), (x1, y1, FLOOR_TOP), (x0, y1, FLOOR_TOP)]
                outline = cq.Wire.makePolygon(corners, close=True)
                # Round only the corners that are corners of the bin's inside.
                round_x = {0: x0} if i == 0 else {}
                if i == len(spans_x) - 1:
                    round_x[1] = x1
                round_y = {0: y0} if j == 0 else {}
                if j == len(spans_y) - 1:
                    round_y[1] = y1
                rounded_corners = [v for v in outline.Vertices()
                                   if any(abs(v.X - x) < 1e-6 for x in round_x.values())
                                   and any(abs(v.Y - y) < 1e-6 for y in round_y.values())]
                if rounded_corners:
                    outline = outline.fillet(radius, rounded_corners)
                tools.append(cq.Solid.extrudeLinear(cq.Face.makeFromWires(outline),
                                                    cq.Vector(0, 0, divider_top - FLOOR_TOP)))
        body = body.cut(*tools)

        cell = GRID_PITCH - BIN_CLEARANCE
        foot = ruled([(0.0, FOOT_TOP_CHAMFER + FOOT_BOTTOM_CHAMFER),
                      (FOOT_BOTTOM_CHAMFER, FOOT_TOP_CHAMFER),
                      (FOOT_BOTTOM_CHAMFER + FOOT_STRAIGHT, FOOT_TOP_CHAMFER),
                      (FOOT_HEIGHT, 0.0)], cell, cell)
        feet = [foot.moved(cq.Location(cq.Vector((i - (p.grid_x - 1) / 2) * GRID_PITCH,
                                                 (j - (p.grid_y - 1) / 2) * GRID_PITCH, 0)))
                for i in range(p.grid_x) for j in range(p.grid_y)]
        # The feet only touch the body's underside, so the faster "glue" fuse applies.
        bin_ = body.fuse(*feet, glue=True).clean()
        return [Part("bin", cq.Workplane("XY").add(bin_), process="fdm")]

    def expected_size(self, p: GridfinityBinParams) -> tuple[float, float, float]:
        return (p.size_x, p.size_y, p.total_height)

    def quality_checks(self, p: GridfinityBinParams) -> list[Check]:
        checks = [
            Check("Outside width (42 mm per cell less 0.5 mm)", p.size_x, 0.2),
            Check("Outside depth (42 mm per cell less 0.5 mm)", p.size_y, 0.2),
            Check("Height including lip" if p.stacking_lip else "Height", p.total_height, 0.3),
            Check("Foot pitch", GRID_PITCH, 0.1),
            Check("Foot bottom width", GRID_PITCH - BIN_CLEARANCE - 2 * (FOOT_TOP_CHAMFER + FOOT_BOTTOM_CHAMFER),
                  0.2),
            Check("Wall thickness", p.wall_thickness, 0.1),
        ]
        if p.stacking_lip:
            checks.append(Check("Opening at the lip's tip", p.size_x - 2 * LIP_DEPTH, 0.2))
        return checks
