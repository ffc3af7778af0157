"""Wall shelf: a board with rounded corners and countersunk screws, carried by L-brackets."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import model_validator

from parametric.joinery import PANEL_THICKNESSES_MM
from parametric.part import Part
from parametric.registry import Check, Hardware, Preset, Template, register
from parametric.schema import LengthChoice, Mm, TemplateParams, choice, count, length, rule

BoardMm = Annotated[Literal[PANEL_THICKNESSES_MM], LengthChoice]


class WallShelfParams(TemplateParams):
    width: Mm = length(800, ge=300, le=1500, step=10, order=1,
                       description="Length of the shelf along the wall.")
    depth: Mm = length(200, ge=100, le=400, step=5, order=2,
                       description="How far the shelf reaches out from the wall.")
    board_thickness: BoardMm = choice(18, choices=PANEL_THICKNESSES_MM, unit="mm", group="Dimensions", order=3,
                                      sheet=True, description="Thickness of the shelf board, as boards are stocked.")
    corner_radius: Mm = length(10, ge=2, le=40, step=1, order=4,
                               description="Radius of the board's rounded corners, seen from above.")
    bracket_height: Mm = length(150, ge=60, le=300, step=5, order=5,
                                description="Height of each bracket's leg against the wall.")
    bracket_width: Mm = length(30, ge=20, le=60, step=1, order=6, group="Options",
                               description="Width of each bracket along the wall.")
    bracket_thickness: Mm = length(6, ge=4, le=12, step=0.5, order=7, group="Options",
                                   description="Thickness of the bracket's leg and arm.")
    bracket_count: int | None = count(None, ge=2, le=8, order=8,
                                      description="Number of brackets; left empty, one per 450 mm of width "
                                                  "(at least two).")
    hole_diameter: Mm = length(5, ge=3, le=8, step=0.5, order=9, group="Options",
                               description="Screw diameter for the board and bracket holes.")
    hole_pitch: Mm = length(100, ge=40, le=300, step=5, order=10, group="Options",
                            description="Spacing of the countersunk screw holes along the board.")

    @model_validator(mode="after")
    def _derive_bracket_count(self) -> WallShelfParams:
        if self.bracket_count is None:
            self.bracket_count = max(2, math.ceil(self.width / 450))
        return self

    def brackets(self) -> int:
        """The bracket count, given or derived from the width (one per 450 mm, at least two)."""
        return self.bracket_count or max(2, math.ceil(self.width / 450))

    def hole_positions(self) -> list[float]:
        """X positions of the board's screw holes: a centred row at ``hole_pitch``."""
        usable = self.width - 2 * max(self.bracket_width, 4 * self.hole_diameter)
        holes = int(usable // self.hole_pitch) + 1
        start = -(holes - 1) * self.hole_pitch / 2
        return [start + i * self.hole_pitch for i in range(holes)]

    def bracket_positions(self) -> list[float]:
        """X positions of the brackets, each under a screw hole, spread evenly."""
        holes = self.hole_positions()
        n = self.brackets()
        half_span = self.width / 2 - self.bracket_width
        ideal = [-half_span + 2 * half_span * i / (n - 1) for i in range(n)]
        return [min(holes, key=lambda x, target=target: abs(x - target)) for target in ideal]

    @rule("bracket_count", "hole_pitch")
    def _one_hole_per_bracket(self) -> str | None:
        positions = self.bracket_positions()
        if len(set(positions)) < len(positions):
            return (f"{self.brackets()} brackets need {self.brackets()} separate screw holes to hang from, but a "
                    f"{self.width:g} mm board at {self.hole_pitch:g} mm pitch has only "
                    f"{len(self.hole_positions())} holes; use fewer brackets or a smaller hole pitch")
        return None

    @rule("corner_radius", "depth")
    def _corner_fits(self) -> str | None:
        if self.corner_radius >= self.depth / 2 - 1:
            return "the corner radius must be less than half the shelf depth, or the rounded corners would meet"
        return None

    @rule("hole_diameter", "bracket_width")
    def _hole_fits_bracket(self) -> str | None:
        if 2 * self.hole_diameter + 6 > self.bracket_width:
            return ("each bracket must be at least twice the hole diameter plus 6 mm wide, so a screw hole "
                    "leaves 3 mm of material on each side")
        return None

    @rule("hole_diameter", "board_thickness")
    def _countersink_fits_board(self) -> str | None:
        if self.hole_diameter > self.board_thickness - 4:
            return "the countersunk head (twice the hole diameter) needs a board at least 4 mm thicker than the hole"
        return None


@register
class WallShelf(Template):
    id = "wall_shelf"
    version = "1.0.0"
    name = "Wall shelf"
    family = "furniture"
    process = ("fdm", "cnc")
    materials = ("birch_plywood", "oak", "pine", "mdf", "pla", "petg")
    description = ("A floating-look wall shelf: a board with rounded corners, screwed through countersunk "
                   "holes to printed L-brackets that hang on the wall.")
    Params = WallShelfParams
    presets = {
        "spice-rack": Preset("Kitchen spice rack", {"width": 450, "depth": 110, "board_thickness": 15,
                                                    "bracket_height": 90, "hole_pitch": 80}),
        "bookshelf": Preset("Living-room bookshelf", {"width": 1000, "depth": 250, "board_thickness": 22,
                                                      "bracket_height": 200, "bracket_width": 40,
                                                      "bracket_thickness": 8}),
        "floating-desk": Preset("Narrow floating desk top", {"width": 1200, "depth": 400, "board_thickness": 30,
                                                             "bracket_height": 300, "bracket_width": 50,
                                                             "bracket_thickness": 10, "bracket_count": 3,
                                                             "hole_pitch": 150}),
    }

    def build(self, p: WallShelfParams) -> list[Part]:
        import cadquery as cq

        row_y = p.depth / 2
        board = (
            cq.Workplane("XY")
            .box(p.width, p.depth, p.board_thickness, centered=(True, False, False))
            .edges("|Z").fillet(p.corner_radius)
            .faces(">Z").workplane(origin=(0, 0, p.board_thickness))
            .pushPoints([(x, row_y) for x in p.hole_positions()])
            .cskHole(p.hole_diameter, cskDiameter=2 * p.hole_diameter, cskAngle=90)
        )

        t, h = p.bracket_thickness, p.bracket_height
        arm = min(p.depth - 10, row_y + 3 * p.hole_diameter)
        profile = [(0, 0), (t, 0), (t, h - t), (arm, h - t), (arm, h), (0, h)]
        bracket = (
            cq.Workplane("YZ").polyline(profile).close()
            .extrude(p.bracket_width / 2, both=True)
        )
        inner_radius = min(20.0, (h - t) / 3, (arm - t) / 3)
        bracket = bracket.edges("|X").edges(cq.selectors.NearestToPointSelector((0, t, h - t))).fillet(inner_radius)
        wall_holes = [(0, z) for z in (h * 0.3, h * 0.6)]
        bracket = (
            bracket.faces("<Y").workplane(centerOption="ProjectedOrigin", origin=(0, 0, 0))
            .pushPoints(wall_holes).hole(p.hole_diameter, t * 3)
        )
        bracket = (
            bracket.faces(">Z").workplane(centerOption="ProjectedOrigin", origin=(0, 0, h))
            .pushPoints([(0, row_y)]).hole(p.hole_diameter, t * 3)
        )
        # Built with the wall at y = 0 and the shelf reaching +Y; placed turned half a turn so the
        # front faces -Y like every other product (the front view of a drawing looks along +Y).
        positions = p.bracket_positions()
        turn = (cq.Vector(0, 0, 1), 180)
        return [
            Part("board", board, flat=True, thickness=float(p.board_thickness), process="cnc",
                 placements=[cq.Location(cq.Vector(0, 0, h), *turn)]),
            # Printed on its side: the L lies in every layer, so the arm is no overhang and the bend, where
            # the load is, is never split between layers.
            Part("bracket", bracket, quantity=len(positions), process="fdm", print_rotation=(("Y", 90),),
                 placements=[cq.Location(cq.Vector(-x, 0, 0), *turn) for x in positions]),
        ]

    def expected_size(self, p: WallShelfParams) -> tuple[float, float, float]:
        return (p.width, p.depth, p.bracket_height + p.board_thickness)

    def hardware(self, p: WallShelfParams) -> list[Hardware]:
        brackets = len(p.bracket_positions())
        screw = f"{p.hole_diameter - 1:g} mm"
        return [
            Hardware(f"{screw} wood screw, countersunk, {p.board_thickness + p.bracket_thickness - 2:g} mm long",
                     brackets, "board to bracket, through the countersunk holes from the top"),
            Hardware(f"{screw} x 50 mm wall screw", 2 * brackets, "two per bracket, through its wall holes"),
            Hardware(f"wall plug for {screw} screws", 2 * brackets, "for masonry walls; none into studs"),
        ]

    def assembly(self, p: WallShelfParams) -> list[str]:
        return ["Mark the bracket positions on the wall, level, at the spacing the board's holes give",
                "Drill, plug and screw each bracket to the wall, arm out and level",
                "Lay the board on the arms, countersunk holes up, and screw it down into each bracket"]

    def quality_checks(self, p: WallShelfParams) -> list[Check]:
        return [
            Check("Board width", p.width, 1.0),
            Check("Board depth", p.depth, 1.0),
            Check("Board thickness", p.board_thickness, 0.5),
            Check("Screw hole pitch", p.hole_pitch, 0.3),
            Check("Bracket leg height", p.bracket_height, 0.5),
        ]
