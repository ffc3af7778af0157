"""Wall coat rack: a shaped back board with curved hooks tenoned through it, all cut from one sheet.

The board lies front face up on XY (x along the wall, y up, its thickness along +Z) with a through
mortise for each hook and countersunk screw holes between them; its top edge is straight or arched.
Each hook lies on XY too, in side view: x out from the board's front face (x = 0), y up; its tenon
(x < 0) goes through the board's mortise and stops 1 mm short of the wall, and the shoulders above
and below the tenon bear on the board's face. The arm leaves the board level and curves up into a
rounded tip, so a coat loop slides to the back and stays.

Mortises are as wide as the sheet plus the fit allowance (:mod:`parametric.joinery`), cut to the
router's measured sheet when it knows it. Corners that locate a part (the tenon's shoulders, the
mortise corners) are left sharp for CAM's dogbones; every other corner is rounded.

Assembly coordinates: x along the wall (the board's left end at x = 0), the wall at y = 0 with the
rack in front of it (-y), z up from the board's lower edge.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from parametric.part import Part
from parametric.registry import Check, Preset, Template, register
from parametric.schema import LengthChoice, Mm, TemplateParams, choice, count, length, rule

SHEET_THICKNESSES = (15, 18, 19, 22)
"""Sheets the rack is cut from (mm): a hook thinner than 15 mm bends under a wet winter coat."""
SheetMm = Annotated[Literal[SHEET_THICKNESSES], LengthChoice]

HOOK_SWEEP_DEG = 100.0
"""How far a hook's arm curves from level: a little past upright, so the tip leans back towards the wall."""
ROOT_FACTOR = 2.0
"""Height of a hook's root against the board, as a multiple of the arm's width."""
SHOULDER_MM = 8.0
"""Shoulder above and below each tenon (mm): it bears on the board's face and hides the mortise."""
WALL_GAP_MM = 1.0
"""How far a tenon stops short of the board's back (mm), so the board lies flat on the wall."""
MIN_MORTISE_EDGE_MM = 25.0
"""Board left above and below a mortise (mm); less splits off under a loaded hook."""
MIN_PITCH_MM = 100.0
"""Least distance between hooks (mm): two coats side by side."""
MIN_THROAT_MM = 25.0
"""Least inside radius of a hook's curve (mm): room for a coat's hanging loop or a bag strap."""
ROOT_RADIUS_MM = 10.0
"""Radius of the inside corner where the arm leaves the hook's root (larger than any router bit)."""
SCREW_HOLE_MM = 5.0
"""Screw holes clear a 4 mm screw into a 6 mm wall plug; countersunk to twice that in the front face."""
LONG_BOARD_MM = 800.0
"""A board longer than this gets a third screw between the middle hooks."""

GRAIN = {"board": "x", "hook": "x"}
"""Grain of each part along its own axis as cut: along the board, and along the hook's arm (a hook with
the grain running up its root snaps off at the tenon)."""


class CoatRackParams(TemplateParams):
    width: Mm = length(600, ge=300, le=1500, step=10, order=1,
                       description="Length of the rack along the wall.")
    board_height: Mm = length(120, ge=90, le=250, step=5, order=2,
                              description="Height of the back board (at its ends, for an arched top).")
    hook_count: int = count(4, ge=2, le=12, group="Dimensions", order=3,
                            description="Number of hooks, evenly spaced along the board.")
    sheet_thickness: SheetMm = choice(18, choices=SHEET_THICKNESSES, unit="mm", group="Dimensions", order=4,
                                      description="Thickness of the sheet the board and the hooks are cut from.")
    hook_reach: Mm = length(100, ge=60, le=200, step=5, group="Hooks", order=5,
                            description="How far each hook stands out from the front of the board.")
    hook_arm_width: Mm = length(32, ge=25, le=60, step=1, group="Hooks", order=6,
                                description="Width of each hook's curved arm, seen from the side.")
    top_edge: Literal["straight", "arched"] = choice(
        "arched", choices=["straight", "arched"], group="Shape", order=7,
        description="The board's top edge: straight, or a gentle arch rising to the middle.")
    arch_rise: Mm = length(30, ge=5, le=80, step=5, group="Shape", order=8,
                           description="How much higher the middle of an arched top is than its ends (ignored "
                                       "for a straight top).")
    corner_radius: Mm = length(15, ge=5, le=40, step=1, group="Shape", order=9,
                               description="Radius of the board's rounded corners.")

    # -- derived layout (mm) --------------------------------------------------------------

    @property
    def thickness(self) -> float:
        return float(self.sheet_thickness)

    @property
    def pitch(self) -> float:
        """Distance between neighbouring hooks; the end hooks stand half a pitch in from the ends."""
        return self.width / self.hook_count

    def hook_positions(self) -> list[float]:
        """x of each hook's centre along the board."""
        return [(i + 0.5) * self.pitch for i in range(self.hook_count)]

    @property
    def root_height(self) -> float:
        """Height of a hook's back edge against the board: the tenon with a shoulder above and below."""
        return ROOT_FACTOR * self.hook_arm_width

    @property
    def tenon_height(self) -> float:
        return self.root_height - 2 * SHOULDER_MM

    @property
    def tenon_length(self) -> float:
        """How far the tenon goes into the board: its (measured) thickness less the gap at the wall."""
        return self.fit.thickness(self.thickness) - WALL_GAP_MM

    @property
    def mortise_width(self) -> float:
        """Width of each mortise across the board: the hook's sheet plus the fit allowance."""
        return self.fit.width(self.thickness)

    @property
    def mortise_length(self) -> float:
        """Height of each mortise: the tenon plus the fit allowance."""
        return self.tenon_height + self.fit.allowance_mm

    @property
    def mortise_y(self) -> float:
        """Height of the mortises' centres on the board."""
        return self.board_height / 2

    @property
    def inner_radius(self) -> float:
        """Inside radius of a hook's curve (its throat)."""
        return self.hook_reach - self.hook_arm_width

    def root_angle(self) -> float | None:
        """Where (degrees along the arm's curve) the root's top edge meets the inside of the arm; None if never."""
        share = (self.hook_reach - self.root_height) / self.inner_radius if self.inner_radius > 0 else 2.0
        if not -1.0 <= share <= 1.0:
            return None
        return math.degrees(math.acos(share))

    @property
    def hook_height(self) -> float:
        """Height of a hook from the bottom of its root to the top of its tip."""
        sweep = math.radians(HOOK_SWEEP_DEG)
        tip_centre = self.hook_reach - (self.hook_reach - self.hook_arm_width / 2) * math.cos(sweep)
        return max(self.root_height, tip_centre + self.hook_arm_width / 2)

    @property
    def hook_base(self) -> float:
        """Height above the board's lower edge of the bottom of each hook."""
        return self.mortise_y - self.root_height / 2

    def screw_positions(self) -> list[tuple[float, float]]:
        """(x, y) of the screw holes: a quarter pitch in from each end, and between the middle hooks on a long
        board, at the mortises' height."""
        xs = [self.pitch / 4, self.width - self.pitch / 4]
        if self.width > LONG_BOARD_MM:
            xs.insert(1, self.pitch * (self.hook_count // 2))
        return [(x, self.mortise_y) for x in xs]

    # -- rules -----------------------------------------------------------------------------

    @rule("hook_count", "width")
    def _hooks_have_room(self) -> str | None:
        if self.pitch < MIN_PITCH_MM:
            most = int(self.width // MIN_PITCH_MM)
            return (f"{self.hook_count} hooks on a {self.width:g} mm board would hang {self.pitch:.0f} mm apart; at "
                    f"least {MIN_PITCH_MM:g} mm keeps two coats apart, so use at most {most} hooks or a longer board")
        return None

    @rule("board_height", "hook_arm_width")
    def _mortises_leave_board(self) -> str | None:
        least = self.tenon_height + 2 * MIN_MORTISE_EDGE_MM
        if self.board_height < least:
            return (f"a {self.hook_arm_width:g} mm hook needs a {self.tenon_height:g} mm tenon, and the board must "
                    f"keep {MIN_MORTISE_EDGE_MM:g} mm above and below its mortise; make the board at least {least:g} "
                    "mm high or the hook arms narrower")
        return None

    @rule("hook_arm_width", "hook_reach")
    def _hook_has_a_throat(self) -> str | None:
        if self.inner_radius < MIN_THROAT_MM:
            return (f"a {self.hook_arm_width:g} mm arm on a hook reaching {self.hook_reach:g} mm leaves less than "
                    f"{MIN_THROAT_MM:g} mm inside the curve for a coat's loop; reach at least "
                    f"{self.hook_arm_width + MIN_THROAT_MM:g} mm or use a narrower arm")
        angle = self.root_angle()
        if angle is None or angle > HOOK_SWEEP_DEG - 15:
            return (f"a hook reaching {self.hook_reach:g} mm is too short for a {self.hook_arm_width:g} mm arm and its "
                    f"{self.root_height:g} mm root; reach further or use a narrower arm")
        return None

    @rule("arch_rise", "width")
    def _arch_is_gentle(self) -> str | None:
        if self.top_edge == "arched" and self.arch_rise > self.width / 8:
            return (f"a {self.arch_rise:g} mm rise on a {self.width:g} mm board is a hump, not an arch; use at most "
                    f"{self.width / 8:g} mm or a straight top")
        return None

    @rule("corner_radius", "board_height")
    def _corners_fit(self) -> str | None:
        if self.corner_radius > self.board_height / 3:
            return (f"a {self.corner_radius:g} mm corner radius on a {self.board_height:g} mm board would round away "
                    f"its ends; use at most {self.board_height / 3:g} mm")
        return None


@register
class CoatRack(Template):
    id = "coat_rack"
    version = "1.0.0"
    name = "Wall coat rack"
    family = "home"
    process = ("cnc",)
    materials = ("birch_plywood", "oak", "pine", "mdf")
    description = ("A wall coat rack cut from one sheet: a back board with a straight or arched top and curved hooks "
                   "that pass through mortises in it, glued, with countersunk holes for two or three wall screws.")
    Params = CoatRackParams
    groups = ("Dimensions", "Hooks", "Shape")
    presets = {
        "hallway": Preset("Hallway rack, 5 hooks",
                          {"width": 800, "hook_count": 5, "board_height": 120, "hook_reach": 100,
                           "top_edge": "arched", "arch_rise": 30}, material="birch_plywood",
                          description="For coats and bags by the front door."),
        "kids": Preset("Children's rack, 3 hooks",
                       {"width": 450, "hook_count": 3, "board_height": 100, "hook_reach": 80,
                        "hook_arm_width": 28, "top_edge": "arched", "arch_rise": 25, "corner_radius": 20},
                       material="pine", description="Low, short hooks for small coats and school bags."),
        "entry-wall": Preset("Entry wall, 8 hooks",
                             {"width": 1200, "hook_count": 8, "board_height": 140, "hook_reach": 120,
                              "hook_arm_width": 36, "sheet_thickness": 22, "top_edge": "straight"},
                             material="oak", description="A long solid-oak rack for a family's coats."),
        "towel": Preset("Towel rail, 2 hooks",
                        {"width": 300, "hook_count": 2, "board_height": 100, "hook_reach": 70,
                         "hook_arm_width": 28, "top_edge": "straight", "corner_radius": 12},
                        material="mdf", description="Two hooks for a bathroom or a kitchen door."),
    }

    def build(self, p: CoatRackParams) -> list[Part]:
        import cadquery as cq

        t = p.thickness
        over = 1.0

        def vertices_at(face: cq.Face, points: list[tuple[float, float]]) -> list[cq.Vertex]:
            return [v for v in face.Vertices() if any(math.hypot(v.X - x, v.Y - y) < 1e-6 for x, y in points)]

        def line(a: tuple[float, float], b: tuple[float, float]) -> cq.Edge:
            return cq.Edge.makeLine(cq.Vector(*a), cq.Vector(*b))

        def arc(a: tuple[float, float], m: tuple[float, float], b: tuple[float, float]) -> cq.Edge:
            return cq.Edge.makeThreePointArc(cq.Vector(*a), cq.Vector(*m), cq.Vector(*b))

        # The board, front face up.
        width, height = p.width, p.board_height
        bottom_corners = [(0.0, 0.0), (width, 0.0)]
        top_corners = [(width, height), (0.0, height)]
        edges = [line(bottom_corners[0], bottom_corners[1]), line(bottom_corners[1], top_corners[0])]
        if p.top_edge == "arched":
            # Two arcs of one circle meeting at the crown, so the crown is a vertex: a mesh of so flat an arc
            # would otherwise cut below it.
            radius = (width ** 2 / 4 + p.arch_rise ** 2) / (2 * p.arch_rise)
            centre_y = height + p.arch_rise - radius
            crown = (width / 2, height + p.arch_rise)
            half = math.asin(width / 2 / radius) / 2
            right = (width / 2 + radius * math.sin(half), centre_y + radius * math.cos(half))
            left = (width / 2 - radius * math.sin(half), right[1])
            edges.append(arc(top_corners[0], right, crown))
            edges.append(arc(crown, left, top_corners[1]))
        else:
            edges.append(line(top_corners[0], top_corners[1]))
        edges.append(line(top_corners[1], bottom_corners[0]))
        face = cq.Face.makeFromWires(cq.Wire.assembleEdges(edges))
        face = face.fillet2D(p.corner_radius, vertices_at(face, bottom_corners + top_corners))
        board = cq.Solid.extrudeLinear(face, cq.Vector(0, 0, t))
        mortises = [cq.Solid.makeBox(p.mortise_width, p.mortise_length, t + 2 * over,
                                     cq.Vector(x - p.mortise_width / 2, p.mortise_y - p.mortise_length / 2, -over))
                    for x in p.hook_positions()]
        board = board.cut(*mortises)  # not clean(): it would merge the two arcs of the crown again
        board = (cq.Workplane("XY").add(board).faces(">Z").workplane(origin=(0, 0, t))
                 .pushPoints(p.screw_positions())
                 .cskHole(SCREW_HOLE_MM, cskDiameter=2 * SCREW_HOLE_MM, cskAngle=90, clean=False).val())

        # A hook in side view: the outer curve from the root's foot, a round tip, the inner curve back to the
        # root, then the root's back edge with the tenon standing out of it.
        reach, arm, inner = p.hook_reach, p.hook_arm_width, p.inner_radius
        sweep = math.radians(HOOK_SWEEP_DEG)
        root_angle = math.radians(p.root_angle() or 0.0)

        def outer(angle: float) -> tuple[float, float]:
            return (reach * math.sin(angle), reach - reach * math.cos(angle))

        def inside(angle: float) -> tuple[float, float]:
            return (inner * math.sin(angle), reach - inner * math.cos(angle))

        middle = reach - arm / 2
        tip = (middle * math.sin(sweep) + arm / 2 * math.cos(sweep),
               reach - middle * math.cos(sweep) + arm / 2 * math.sin(sweep))
        root, low, high = p.root_height, SHOULDER_MM, SHOULDER_MM + p.tenon_height
        meet = inside(root_angle)
        tenon = p.tenon_length
        edges = [
            arc(outer(0.0), outer(sweep / 2), outer(sweep)),
            arc(outer(sweep), tip, inside(sweep)),
            arc(inside(sweep), inside((sweep + root_angle) / 2), meet),
            line(meet, (0.0, root)),
            line((0.0, root), (0.0, high)),
            line((0.0, high), (-tenon, high)),
            line((-tenon, high), (-tenon, low)),
            line((-tenon, low), (0.0, low)),
            line((0.0, low), (0.0, 0.0)),
        ]
        face = cq.Face.makeFromWires(cq.Wire.assembleEdges(edges))
        face = face.fillet2D(ROOT_RADIUS_MM, vertices_at(face, [meet]))
        hook = cq.Solid.extrudeLinear(face, cq.Vector(0, 0, t)).clean()

        stand = cq.Location(cq.Vector(0, 0, 0), cq.Vector(1, 0, 0), 90)  # y up, the front face towards -y
        turn = cq.Location(cq.Vector(0, 0, 0), cq.Vector(0, 0, 1), -90)  # the hook's x out from the wall
        hooks = [cq.Location(cq.Vector(x + t / 2, -t, p.hook_base)) * turn * stand for x in p.hook_positions()]
        screws = len(p.screw_positions())
        return [
            Part("board", board, flat=True, thickness=t, process="cnc", grain=GRAIN["board"],
                 notes=f"Front face up. Countersink the {screws} screw holes from the front; grain along the board.",
                 placements=[stand]),
            Part("hook", hook, quantity=p.hook_count, flat=True, thickness=t, process="cnc", grain=GRAIN["hook"],
                 notes="Glue the tenon into a mortise from the front, shoulders tight on the board, tip up; grain "
                       "along the arm.", placements=hooks),
        ]

    def expected_size(self, p: CoatRackParams) -> tuple[float, float, float]:
        top = p.board_height + (p.arch_rise if p.top_edge == "arched" else 0.0)
        return (p.width, p.thickness + p.hook_reach, max(top, p.hook_base + p.hook_height))

    def quality_checks(self, p: CoatRackParams) -> list[Check]:
        return [
            Check("Mortise width (the sheet plus the fit allowance)", p.mortise_width, 0.1),
            Check("Mortise length", p.mortise_length, 0.2),
            Check("Tenon length (short of the board's back)", p.tenon_length, 0.3),
            Check("Hook pitch", p.pitch, 0.5),
            Check("Hook reach from the board", p.hook_reach, 1.0),
            Check("Board length", p.width, 1.0),
        ]
