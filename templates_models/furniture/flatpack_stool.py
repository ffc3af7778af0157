"""Flat-pack stool (and side table): two arched leg panels that cross-halve into an X, under a round or
square seat with a cross housing on its underside. No screws, no hardware: the halving slots and the
housing hold it square, glue makes it permanent.

Every part is cut from one sheet thickness on a router in one setup. Each leg lies on XY with its
width along x (the feet at y = 0, the top edge at y = the leg height) and its thickness along +Z;
leg A's slot opens at the top edge, leg B's at the floor (through the arch), each to the middle of the
leg, as wide as the sheet plus the fit allowance (:mod:`parametric.joinery`) so the legs slide together
by hand. The seat lies underside up: the cross housing the leg tops sit in is a pocket in its top face.

Corners that locate a part (the slots' ends) are left sharp, and CAM plunges a dogbone into each so
the mating part seats fully; every other corner is rounded with a radius larger than any cutter's, so
what is drawn is what is cut.

Assembly coordinates: the stool stands centred on x = y = 0, floor at z = 0; leg A runs along x,
leg B along y.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from parametric.part import Part
from parametric.registry import Check, Preset, Template, register
from parametric.schema import LengthChoice, Mm, TemplateParams, choice, length, rule, switch

SHEET_THICKNESSES = (15, 18, 19, 22)
"""Sheets a stool is cut from (mm): thinner legs flex sideways under a sitting adult."""
SheetMm = Annotated[Literal[SHEET_THICKNESSES], LengthChoice]

SLOT_RUN_MM = 0.5
"""How far each halving slot runs past the middle of the leg (mm), so the leg tops come flush in the seat
housing even when a slot end is not cut quite square."""
MIN_STABILITY = 0.6
"""The feet must span at least this share of the height, or the stool tips when someone leans back."""
MIN_CHEEK_MM = 40.0
"""Wood each side of leg A's slot at the top of the leg (mm): a thinner cheek snaps off when the legs
are pushed together."""
MIN_BRIDGE_MM = 50.0
"""Height of leg A's centre between the top of the arch and the end of its slot (mm); less breaks."""
MIN_LIMB_MM = 35.0
"""Narrowest a leg may be between its outer edge and the arch (mm)."""
MIN_SEAT_EDGE_MM = 20.0
"""Wood between the seat's edge and the housing or the hand hole (mm)."""
HAND_HOLE = (110.0, 32.0)
"""Length and width of the stadium-shaped hand hole for carrying the stool (mm): four fingers."""
FOOT_RADIUS_MM = 10.0
TOP_RADIUS_MM = 10.0
TOE_RADIUS_MM = 6.0

GRAIN = {"leg_a": "y", "leg_b": "y", "seat": None}
"""Grain of each part along its own axis as cut: up the legs (a leg across the grain splits at the
slot); a round seat may lie any way, a square seat along x."""


class FlatpackStoolParams(TemplateParams):
    height: Mm = length(450, ge=250, le=800, step=5, order=1,
                        description="Height from the floor to the top of the seat (a kitchen stool is 450 mm, a "
                                    "bar stool 650 mm, a side table 500 to 600 mm).")
    seat_shape: Literal["round", "square"] = choice(
        "round", choices=["round", "square"], group="Dimensions", order=2,
        description="Shape of the seat or table top seen from above: round, or square with rounded corners.")
    seat_size: Mm = length(340, ge=250, le=600, step=5, order=3,
                           description="Diameter of a round seat, or the side of a square one.")
    corner_radius: Mm = length(40, ge=10, le=120, step=5, order=4,
                               description="Radius of a square seat's rounded corners (ignored for a round seat).")
    foot_span: Mm = length(360, ge=250, le=700, step=5, order=5,
                           description="How far apart the feet of each leg panel stand: the width of the X "
                                       "on the floor.")
    top_width: Mm = length(240, ge=100, le=500, step=5, order=6,
                           description="Width of each leg panel at the top, under the seat: the legs splay out "
                                       "from this to the foot span.")
    sheet_thickness: SheetMm = choice(18, choices=SHEET_THICKNESSES, unit="mm", group="Dimensions", order=7, sheet=True,
                                      description="Thickness of the sheet the legs and the seat are cut from.")
    arch_height: Mm = length(120, ge=0, le=250, step=5, group="Shape", order=8,
                             description="Height of the arch cut between the feet of each leg panel; 0 for a "
                                         "straight bottom edge.")
    foot_width: Mm = length(55, ge=35, le=150, step=5, group="Shape", order=9,
                            description="Width of each foot where it stands on the floor, either side of the arch.")
    housing_depth: Mm = length(6, ge=3, le=11, step=0.5, group="Joinery", order=10,
                               description="How deep the cross housing for the leg tops is cut into the seat's "
                                           "underside.")
    hand_hole: bool = switch(True, group="Shape", order=11,
                             description="Cut a hand hole in the seat to carry the stool by.")

    # -- derived layout (mm) --------------------------------------------------------------

    @property
    def thickness(self) -> float:
        return float(self.sheet_thickness)

    @property
    def slot_width(self) -> float:
        """Width of the halving slots and of the housing arms: the sheet plus the fit allowance."""
        return self.fit.width(self.thickness)

    @property
    def leg_height(self) -> float:
        """Height of a leg panel: the stool's height less the seat, plus the housing the leg tops sit in."""
        return self.height - self.thickness + self.housing_depth

    def leg_width_at(self, y: float) -> float:
        """Width of a leg panel (mm) at height ``y`` above the floor, without the arch: the legs splay evenly."""
        return self.foot_span - (self.foot_span - self.top_width) * y / self.leg_height

    @property
    def housing_length(self) -> float:
        """Length of each arm of the cross housing: the legs' width where they enter the seat (they splay
        out below the top) plus the fit allowance."""
        return self.leg_width_at(self.leg_height - self.housing_depth) + self.fit.allowance_mm

    def arch_circle(self) -> tuple[float, float, float] | None:
        """(centre x, centre y, radius) of the arch in leg coordinates, or None without an arch."""
        if self.arch_height <= 0:
            return None
        half_chord = self.foot_span / 2 - self.foot_width
        radius = (half_chord ** 2 + self.arch_height ** 2) / (2 * self.arch_height)
        return self.foot_span / 2, self.arch_height - radius, radius

    def narrowest_limb(self) -> float:
        """The least distance (mm) from the arch to a leg's splayed outer edge, over the height of the arch."""
        circle = self.arch_circle()
        if circle is None:
            return self.foot_span
        cx, cy, radius = circle
        run, rise = (self.foot_span - self.top_width) / 2, self.leg_height
        length_ = math.hypot(run, rise)
        start = math.atan2(-cy, self.foot_width - cx)  # the arch's end at the inner toe
        narrowest = math.inf
        for i in range(201):
            angle = start + (math.pi / 2 - start) * i / 200
            x, y = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
            if y < 0:
                continue
            narrowest = min(narrowest, (rise * x - run * y) / length_)  # distance to the line (0,0)-(run,rise)
        return narrowest

    def hand_hole_centre(self) -> tuple[float, float, float]:
        """(x, y, angle in degrees) of the hand hole on the seat, centred on the seat: on a diagonal between two
        housing arms, across the diagonal, as far out as it fits."""
        length_, width = HAND_HOLE
        reach = self.seat_size / 2 - MIN_SEAT_EDGE_MM - width / 2  # centre line's furthest point from the centre
        half = (length_ - width) / 2
        if self.seat_shape == "round":
            distance = math.sqrt(max(reach ** 2 - half ** 2, 0.0))
        else:  # the stadium's outer end caps reach towards the sides
            distance = (reach - half / math.sqrt(2)) * math.sqrt(2)
        return distance / math.sqrt(2), distance / math.sqrt(2), -45.0

    def hand_hole_clearance(self) -> float:
        """Wood (mm) between the hand hole and the nearest housing arm."""
        x, y, _ = self.hand_hole_centre()
        length_, width = HAND_HOLE
        half = (length_ - width) / 2
        end_y = y - half / math.sqrt(2)  # the cap of the stadium nearest the x arm
        return end_y - width / 2 - self.slot_width / 2

    # -- rules -----------------------------------------------------------------------------

    @rule("foot_span", "height")
    def _stands_firm(self) -> str | None:
        if self.foot_span < MIN_STABILITY * self.height:
            return (f"feet {self.foot_span:g} mm apart under a {self.height:g} mm stool tip over when someone leans; "
                    f"spread them at least {math.ceil(MIN_STABILITY * self.height):g} mm or lower the stool")
        return None

    @rule("top_width", "foot_span")
    def _legs_splay_out(self) -> str | None:
        if self.top_width > self.foot_span:
            return (f"the legs are {self.top_width:g} mm wide at the top but only {self.foot_span:g} mm across the "
                    "feet; a top wider than the feet tips over, so keep the top width at most the foot span")
        return None

    @rule("top_width", "sheet_thickness")
    def _slot_cheeks_hold(self) -> str | None:
        least = self.slot_width + 2 * MIN_CHEEK_MM
        if self.top_width < least:
            return (f"a {self.top_width:g} mm leg top leaves less than {MIN_CHEEK_MM:g} mm of wood either side of the "
                    f"{self.slot_width:g} mm slot, which snaps when the legs are pushed together; make the top at "
                    f"least {math.ceil(least):g} mm wide")
        return None

    @rule("top_width", "seat_size")
    def _housing_inside_seat(self) -> str | None:
        half_length, half_width = self.housing_length / 2, self.slot_width / 2
        if self.seat_shape == "round":
            reach = math.hypot(half_length, half_width)
        else:
            reach = half_length
        if reach > self.seat_size / 2 - MIN_SEAT_EDGE_MM:
            return (f"the {self.top_width:g} mm leg tops would reach within {MIN_SEAT_EDGE_MM:g} mm of the seat's "
                    f"edge, where the housing breaks out; use a larger seat or narrower leg tops")
        return None

    @rule("housing_depth", "sheet_thickness")
    def _housing_leaves_seat(self) -> str | None:
        if self.housing_depth > self.thickness / 2:
            return (f"a {self.housing_depth:g} mm housing would leave less than half of the {self.thickness:g} mm "
                    f"seat, which then cracks along it; use at most {self.thickness / 2:g} mm")
        return None

    @rule("arch_height", "foot_width", "foot_span")
    def _arch_fits_between_feet(self) -> str | None:
        if self.arch_height <= 0:
            return None
        half_chord = self.foot_span / 2 - self.foot_width
        if half_chord < MIN_CHEEK_MM:
            return (f"{self.foot_width:g} mm feet under a {self.foot_span:g} mm span leave no room for an arch; use "
                    "narrower feet, a wider span or no arch (0)")
        if self.arch_height > half_chord:
            return (f"an arch {self.arch_height:g} mm high between feet {2 * half_chord:g} mm apart would be more "
                    f"than a half circle and undercut the feet; keep it at most {half_chord:g} mm")
        return None

    @rule("arch_height", "height")
    def _bridge_holds(self) -> str | None:
        room = self.leg_height / 2 - SLOT_RUN_MM - self.arch_height
        if room < MIN_BRIDGE_MM:
            most = self.leg_height / 2 - SLOT_RUN_MM - MIN_BRIDGE_MM
            hint = f"use an arch of at most {max(most, 0):.0f} mm" if most > 0 else "make the stool taller"
            return (f"the arch would leave only {max(room, 0):.0f} mm of leg between its top and the halving slot "
                    f"(at least {MIN_BRIDGE_MM:g} mm is needed or the leg breaks there); {hint}")
        return None

    @rule("arch_height", "foot_width", "top_width")
    def _limbs_hold(self) -> str | None:
        narrowest = self.narrowest_limb()
        if narrowest < MIN_LIMB_MM:
            return (f"the legs would be only {narrowest:.0f} mm wide beside the arch (at least {MIN_LIMB_MM:g} mm is "
                    "needed); use a lower arch, wider feet or a narrower top")
        return None

    @rule("hand_hole", "seat_size")
    def _hand_hole_fits(self) -> str | None:
        if not self.hand_hole:
            return None
        if self.hand_hole_clearance() < MIN_SEAT_EDGE_MM:
            return (f"a {HAND_HOLE[0]:g} mm hand hole does not fit between the leg housing and the edge of a "
                    f"{self.seat_size:g} mm seat with {MIN_SEAT_EDGE_MM:g} mm of wood around it; use a larger seat "
                    "or no hand hole")
        return None

    @rule("corner_radius", "seat_size")
    def _corners_fit(self) -> str | None:
        if self.seat_shape == "square" and self.corner_radius > self.seat_size / 4:
            return (f"a {self.corner_radius:g} mm corner radius would round a {self.seat_size:g} mm seat almost "
                    f"into a circle; use at most {self.seat_size / 4:g} mm or a round seat")
        return None


@register
class FlatpackStool(Template):
    id = "flatpack_stool"
    version = "1.0.0"
    name = "Flat-pack stool"
    family = "furniture"
    process = ("cnc",)
    materials = ("birch_plywood", "oak", "pine", "mdf")
    description = ("A flat-pack stool or side table CNC-cut from one sheet: two arched leg panels slide together "
                   "in a cross-halving joint and carry a round or square seat with a cross housing underneath. "
                   "No screws or tools: push the legs together, drop the seat on, glue to make it permanent.")
    Params = FlatpackStoolParams
    groups = ("Dimensions", "Shape", "Joinery")
    presets = {
        "kitchen-stool": Preset("Kitchen stool, 45 cm",
                                {"height": 450, "seat_shape": "round", "seat_size": 340, "foot_span": 360,
                                 "top_width": 240, "sheet_thickness": 18, "arch_height": 120},
                                description="The everyday stool: round seat at table height, with a hand hole.",
                                material="birch_plywood"),
        "bar-stool": Preset("Bar stool, 65 cm",
                            {"height": 650, "seat_shape": "round", "seat_size": 360, "foot_span": 440,
                             "top_width": 250, "sheet_thickness": 22, "arch_height": 150, "foot_width": 60,
                             "housing_depth": 8},
                            description="Kitchen-counter height, thicker sheet and wider feet.", material="oak"),
        "side-table": Preset("Round side table, 55 cm",
                             {"height": 550, "seat_shape": "round", "seat_size": 450, "foot_span": 400,
                              "top_width": 300, "sheet_thickness": 18, "arch_height": 140, "hand_hole": False},
                             description="A bedside or sofa table with a 45 cm round top.", material="mdf"),
        "kids-stool": Preset("Children's square stool, 30 cm",
                             {"height": 300, "seat_shape": "square", "seat_size": 280, "corner_radius": 50,
                              "foot_span": 280, "top_width": 200, "sheet_thickness": 15, "arch_height": 70,
                              "foot_width": 45, "hand_hole": False},
                             description="Low and square, for a child or as a step.", material="birch_plywood"),
    }

    def build(self, p: FlatpackStoolParams) -> list[Part]:
        import cadquery as cq

        t, slot = p.thickness, p.slot_width
        span, leg_height, top = p.foot_span, p.leg_height, p.top_width
        over = 1.0  # cutters run past open edges so no sliver faces are left
        middle = leg_height / 2

        def vertices_at(face: cq.Face, points: list[tuple[float, float]]) -> list[cq.Vertex]:
            return [v for v in face.Vertices() if any(math.hypot(v.X - x, v.Y - y) < 1e-6 for x, y in points)]

        def leg_face() -> cq.Face:
            foot, inset = p.foot_width, (span - top) / 2
            corners = [(0.0, 0.0), (span, 0.0), (span - inset, leg_height), (inset, leg_height)]
            edges = []
            if p.arch_height > 0:
                toe_left, toe_right = (foot, 0.0), (span - foot, 0.0)
                edges.append(cq.Edge.makeLine(cq.Vector(*corners[0]), cq.Vector(*toe_left)))
                edges.append(cq.Edge.makeThreePointArc(cq.Vector(*toe_left), cq.Vector(span / 2, p.arch_height),
                                                       cq.Vector(*toe_right)))
                edges.append(cq.Edge.makeLine(cq.Vector(*toe_right), cq.Vector(*corners[1])))
            else:
                edges.append(cq.Edge.makeLine(cq.Vector(*corners[0]), cq.Vector(*corners[1])))
            for a, b in zip(corners[1:], [*corners[2:], corners[0]], strict=True):
                edges.append(cq.Edge.makeLine(cq.Vector(*a), cq.Vector(*b)))
            face = cq.Face.makeFromWires(cq.Wire.assembleEdges(edges))
            face = face.fillet2D(FOOT_RADIUS_MM, vertices_at(face, corners[:2]))
            face = face.fillet2D(TOP_RADIUS_MM, vertices_at(face, corners[2:]))
            if p.arch_height > 0:
                face = face.fillet2D(TOE_RADIUS_MM, vertices_at(face, [(foot, 0.0), (span - foot, 0.0)]))
            return face

        blank = cq.Solid.extrudeLinear(leg_face(), cq.Vector(0, 0, t))
        x0 = span / 2 - slot / 2
        slot_from_top = cq.Solid.makeBox(slot, leg_height - middle + SLOT_RUN_MM + over, t + 2 * over,
                                         cq.Vector(x0, middle - SLOT_RUN_MM, -over))
        slot_from_floor = cq.Solid.makeBox(slot, middle + SLOT_RUN_MM + over, t + 2 * over,
                                           cq.Vector(x0, -over, -over))
        leg_a = blank.cut(slot_from_top).clean()
        leg_b = blank.cut(slot_from_floor).clean()

        # The seat, underside up: the cross housing is a pocket in its top face.
        size = p.seat_size
        if p.seat_shape == "round":
            seat = cq.Solid.makeCylinder(size / 2, t, cq.Vector(0, 0, 0), cq.Vector(0, 0, 1))
        else:
            seat = (cq.Workplane("XY").rect(size, size).extrude(t).edges("|Z").fillet(p.corner_radius).val())
        depth = p.housing_depth
        arms = [cq.Solid.makeBox(p.housing_length, slot, depth + over,
                                 cq.Vector(-p.housing_length / 2, -slot / 2, t - depth)),
                cq.Solid.makeBox(slot, p.housing_length, depth + over,
                                 cq.Vector(-slot / 2, -p.housing_length / 2, t - depth))]
        seat = seat.cut(*arms)
        if p.hand_hole:
            x, y, angle = p.hand_hole_centre()
            hole = (cq.Workplane("XY").workplane(offset=-over).center(x, y).slot2D(HAND_HOLE[0], HAND_HOLE[1], angle)
                    .extrude(t + 2 * over).val())
            seat = seat.cut(hole)
        seat = seat.clean()

        # Legs stand up: a quarter turn about X puts the leg's y (its height) on z, its thickness across.
        stand = cq.Location(cq.Vector(0, 0, 0), cq.Vector(1, 0, 0), 90)
        centre = cq.Location(cq.Vector(-span / 2, t / 2, 0))
        quarter = cq.Location(cq.Vector(0, 0, 0), cq.Vector(0, 0, 1), 90)
        flip = cq.Location(cq.Vector(0, 0, p.height), cq.Vector(1, 0, 0), 180)
        grain_note = "Grain runs up the leg."
        return [
            Part("leg_a", leg_a, flat=True, thickness=t, process="cnc", grain=GRAIN["leg_a"],
                 notes=f"Slot opens at the top edge. {grain_note}", placements=[centre * stand]),
            Part("leg_b", leg_b, flat=True, thickness=t, process="cnc", grain=GRAIN["leg_b"],
                 notes=f"Slot opens through the arch at the floor; slide it down over leg A. {grain_note}",
                 placements=[quarter * centre * stand]),
            Part("seat", seat, flat=True, thickness=t, process="cnc",
                 grain=GRAIN["seat"] if p.seat_shape == "round" else "x",
                 notes="Cut underside up; the cross housing sits over the leg tops. Glue the housing to make the "
                       "stool permanent.", placements=[flip]),
        ]

    def expected_size(self, p: FlatpackStoolParams) -> tuple[float, float, float]:
        # the feet's outer corners are rounded (FOOT_RADIUS_MM) where the splayed side meets the floor, which
        # takes r (tan a + sec a - 1) off each end, a being the side's lean from the vertical
        lean = math.atan2((p.foot_span - p.top_width) / 2, p.leg_height)
        feet = p.foot_span - 2 * FOOT_RADIUS_MM * (math.tan(lean) + 1 / math.cos(lean) - 1)
        across = max(feet, p.seat_size)
        return (across, across, p.height)

    def quality_checks(self, p: FlatpackStoolParams) -> list[Check]:
        return [
            Check("Halving slot width (the sheet plus the fit allowance)", p.slot_width, 0.1),
            Check("Halving slot length, from the edge", p.leg_height / 2 + SLOT_RUN_MM, 0.5),
            Check("Housing width in the seat", p.slot_width, 0.1),
            Check("Housing depth in the seat", p.housing_depth, 0.3),
            Check("Leg height", p.leg_height, 1.0),
            Check("Foot span", p.foot_span, 1.0),
            Check("Seat " + ("diameter" if p.seat_shape == "round" else "side"), p.seat_size, 1.0),
        ]
