"""Cabinet door: a slab door or drawer front CNC-cut from sheet, with handle holes and hinge cups.

The door is one flat sheet part lying back face up on XY, its thickness along +Z, so the
35 mm hinge cups are bored into the top face in the same setup as the outline. Positions
named by customers (left, right, top) are as seen from the front of the cabinet; lying back
face up, a left-hinged door therefore has its cups along the +X edge.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, model_validator

from parametric.part import Part
from parametric.registry import Check, Hardware, Preset, Template, register
from parametric.schema import LengthChoice, Mm, TemplateParams, choice, count, length, rule

SHEET_THICKNESSES = (16, 18, 19, 22)
HANDLE_SPACINGS = (0, 96, 128, 160)
"""Centre-to-centre spacings of handle screw holes in mm; 0 means no handle holes."""

CUP_DIAMETER = 35.0
"""Diameter (mm) of a standard concealed-hinge cup."""
MIN_CUP_FLOOR = 4.0
"""Material (mm) a hinge cup must leave under it, or the screw-in arm tears the face."""
MIN_HINGE_PITCH = 80.0
"""Least distance (mm) between neighbouring hinge cups: the hinge arms must not clash."""
MIN_PROFILE_TO_CUP = 2.0
"""Material (mm) the front-edge profile must leave under the rim of a hinge cup."""
HANDLE_EDGE_MARGIN = 30.0
"""Least distance (mm) from a handle hole to a door edge along the handle."""
HOLE_TO_CUP_MARGIN = 5.0
"""Least material (mm) between a handle hole and a hinge cup."""


def _no_handle(value: Any) -> Any:
    """``"none"`` for the handle spacing means no handle holes (0)."""
    return 0 if isinstance(value, str) and value.strip().lower() == "none" else value


SheetMm = Annotated[Literal[16, 18, 19, 22], LengthChoice]
SpacingMm = Annotated[Literal[0, 96, 128, 160], LengthChoice, BeforeValidator(_no_handle)]


def hinges_for(edge_length: float) -> int:
    """The usual number of hinges for a door edge of ``edge_length`` mm (hinge makers' tables)."""
    if edge_length <= 900:
        return 2
    if edge_length <= 1600:
        return 3
    if edge_length <= 2000:
        return 4
    return 5


class CabinetDoorParams(TemplateParams):
    width: Mm = length(597, ge=100, le=1200, step=1, order=1,
                       description="Width of the door or drawer front.")
    height: Mm = length(797, ge=100, le=2400, step=1, order=2,
                        description="Height of the door or drawer front.")
    thickness: SheetMm = choice(18, choices=SHEET_THICKNESSES, unit="mm", group="Dimensions", order=3, sheet=True,
                                description="Thickness of the sheet the door is cut from.")
    edge_profile: Literal["radius", "chamfer", "square"] = choice(
        "radius", choices=["radius", "chamfer", "square"], group="Dimensions", order=4,
        description="Profile routed along the front edges: rounded, chamfered or left square.")
    edge_size: Mm = length(2, ge=0.5, le=6, step=0.5, order=5,
                           description="Radius or chamfer width of the front-edge profile (ignored when square).")
    handle_spacing: SpacingMm = choice(128, choices=HANDLE_SPACINGS, unit="mm", order=6,
                                       description="Centre-to-centre spacing of the handle's two screw holes; "
                                                   "0 for no handle holes.")
    handle_position: Literal["side", "top", "centre"] = choice(
        "side", choices=["side", "top", "centre"], order=7,
        description="Where the handle goes: along the edge opposite the hinges (side), across the door near "
                    "the top edge (top), or across the middle (centre, for drawer fronts).")
    handle_offset: Mm = length(40, ge=20, le=200, step=1, order=8, group="Options",
                               description="Distance from the door edge to the centre line of the handle holes, "
                                           "for side and top handles.")
    handle_hole_diameter: Mm = length(5, ge=3, le=8, step=0.1, order=9, group="Options",
                                      description="Diameter of the handle screw holes (5 mm clears an M4 screw).")
    hinge_side: Literal["left", "right", "top", "none"] = choice(
        "left", choices=["left", "right", "top", "none"], group="Hinges", order=10,
        description="Edge carrying the concealed hinges, seen from the front; none for drawer fronts.")
    hinge_count: int | None = count(None, ge=2, le=6, group="Hinges", order=11,
                                    description="Number of hinges; left empty, 2 up to 900 mm of hinged edge, "
                                                "3 up to 1600 mm, 4 up to 2000 mm, 5 beyond.")
    hinge_cup_depth: Mm = length(12, ge=10, le=14, step=0.5, group="Hinges", order=12,
                                 description="Depth of the 35 mm hinge cup bores.")
    hinge_edge_distance: Mm = length(4.5, ge=3, le=6, step=0.5, group="Hinges", order=13,
                                     description="Gap from the door edge to the rim of each hinge cup (the hinge "
                                                 "maker's boring distance, usually 3 to 6 mm).")
    hinge_end_distance: Mm = length(100, ge=50, le=300, step=1, group="Hinges", order=14,
                                    description="Distance from each end of the hinged edge to the centre of the "
                                                "outermost hinge cup.")

    @model_validator(mode="after")
    def _derive_hinge_count(self) -> CabinetDoorParams:
        if self.hinge_count is None and self.hinge_side != "none":
            self.hinge_count = hinges_for(self.hinge_edge_length())
        return self

    # -- derived layout, in part coordinates: back face up, x in [0, width], y in [0, height] --

    def hinge_edge_length(self) -> float:
        """Length (mm) of the edge that carries the hinges."""
        return self.width if self.hinge_side == "top" else self.height

    def hinges(self) -> int:
        """The hinge count, given or derived from the hinged edge; 0 without hinges."""
        if self.hinge_side == "none":
            return 0
        return self.hinge_count or hinges_for(self.hinge_edge_length())

    def cup_inset(self) -> float:
        """Distance (mm) from the hinged edge to the centre of each cup."""
        return self.hinge_edge_distance + CUP_DIAMETER / 2

    def hinge_pitch(self) -> float:
        """Centre distance (mm) between neighbouring hinge cups."""
        n = self.hinges()
        return (self.hinge_edge_length() - 2 * self.hinge_end_distance) / (n - 1) if n > 1 else 0.0

    def cup_positions(self) -> list[tuple[float, float]]:
        """(x, y) centres of the hinge cups on the top (back) face."""
        along = [self.hinge_end_distance + i * self.hinge_pitch() for i in range(self.hinges())]
        inset = self.cup_inset()
        if self.hinge_side == "left":  # the front's left edge lies at +X when the door is face down
            return [(self.width - inset, y) for y in along]
        if self.hinge_side == "right":
            return [(inset, y) for y in along]
        if self.hinge_side == "top":
            return [(x, self.height - inset) for x in along]
        return []

    def handle_is_vertical(self) -> bool:
        """True when the handle holes run up the door (a side handle on a left- or right-hinged door)."""
        return self.handle_position == "side" and self.hinge_side in ("left", "right")

    def handle_positions(self) -> list[tuple[float, float]]:
        """(x, y) centres of the handle holes in part coordinates; empty without a handle."""
        s = self.handle_spacing
        if not s:
            return []
        w, h = self.width, self.height
        if self.handle_position == "centre":
            return [(w / 2 - s / 2, h / 2), (w / 2 + s / 2, h / 2)]
        if self.handle_position == "top":
            return [(w / 2 - s / 2, h - self.handle_offset), (w / 2 + s / 2, h - self.handle_offset)]
        if self.hinge_side == "top":  # the opening edge is the bottom
            return [(w / 2 - s / 2, self.handle_offset), (w / 2 + s / 2, self.handle_offset)]
        # Opposite the hinges; a left-hinged door opens on its right, at x near 0 when face down.
        x = self.handle_offset if self.hinge_side == "left" else w - self.handle_offset
        return [(x, h / 2 - s / 2), (x, h / 2 + s / 2)]

    # -- rules -------------------------------------------------------------------------

    @rule("hinge_cup_depth", "thickness")
    def _cup_leaves_floor(self) -> str | None:
        if self.hinges() and self.thickness - self.hinge_cup_depth < MIN_CUP_FLOOR:
            return (f"a {self.hinge_cup_depth:g} mm hinge cup in a {self.thickness} mm door leaves less than "
                    f"{MIN_CUP_FLOOR:g} mm under it; use at most {self.thickness - MIN_CUP_FLOOR:g} mm or a "
                    "thicker sheet")
        return None

    @rule("edge_size", "hinge_cup_depth", "hinge_edge_distance")
    def _profile_clears_cups(self) -> str | None:
        if not self.hinges() or self.edge_profile == "square":
            return None
        size, gap = self.edge_size, self.hinge_edge_distance
        if self.edge_profile == "chamfer":
            rise = max(0.0, size - gap)
        else:
            rise = size - math.sqrt(size * size - (size - gap) ** 2) if gap < size else 0.0
        left = self.thickness - self.hinge_cup_depth - rise
        if left < MIN_PROFILE_TO_CUP:
            return (f"the {size:g} mm {self.edge_profile} on the front edge would leave only {left:.1f} mm under "
                    f"the rim of the hinge cups (at least {MIN_PROFILE_TO_CUP:g} mm is needed); use a smaller edge "
                    "profile, shallower cups or a larger hinge edge distance")
        return None

    @rule("hinge_count", "hinge_side")
    def _count_needs_side(self) -> str | None:
        if self.hinge_side == "none" and self.hinge_count is not None:
            return "a hinge count is given but the hinge side is none; choose the hinged edge or clear the count"
        return None

    @rule("hinge_count", "hinge_end_distance")
    def _hinges_fit_edge(self) -> str | None:
        n = self.hinges()
        if n and self.hinge_pitch() < MIN_HINGE_PITCH:
            edge = "width" if self.hinge_side == "top" else "height"
            return (f"{n} hinges {self.hinge_end_distance:g} mm from the ends of a {self.hinge_edge_length():g} mm "
                    f"door {edge} would be less than {MIN_HINGE_PITCH:g} mm apart; use fewer hinges, a smaller "
                    "end distance or a larger door")
        return None

    @rule("handle_position", "hinge_side")
    def _handle_side_exists(self) -> str | None:
        if not self.handle_spacing:
            return None
        if self.handle_position == "side" and self.hinge_side == "none":
            return ("a side handle goes on the edge opposite the hinges, but there are no hinges; choose a top or "
                    "centre handle")
        if self.handle_position == "top" and self.hinge_side == "top":
            return "a top handle would sit on the hinged top edge; choose a side handle (it goes at the bottom)"
        return None

    @rule("handle_spacing", "width", "height")
    def _handle_fits(self) -> str | None:
        if not self.handle_spacing:
            return None
        along = self.height if self.handle_is_vertical() else self.width
        if self.handle_spacing > along - 2 * HANDLE_EDGE_MARGIN:
            edge = "height" if self.handle_is_vertical() else "width"
            return (f"a {self.handle_spacing} mm handle needs a door {edge} of at least "
                    f"{self.handle_spacing + 2 * HANDLE_EDGE_MARGIN:g} mm, so its holes stay "
                    f"{HANDLE_EDGE_MARGIN:g} mm from the edges")
        return None

    @rule("handle_offset", "width", "height")
    def _handle_offset_fits(self) -> str | None:
        if not self.handle_spacing or self.handle_position == "centre":
            return None
        across = self.width if self.handle_is_vertical() else self.height
        if self.handle_offset > across / 2:
            return f"the handle offset can be at most half the door's {across:g} mm, or the handle passes the middle"
        return None

    @rule("handle_offset", "hinge_side", "handle_position")
    def _handle_clears_cups(self) -> str | None:
        clearance = CUP_DIAMETER / 2 + self.handle_hole_diameter / 2 + HOLE_TO_CUP_MARGIN
        for hx, hy in self.handle_positions():
            for cx, cy in self.cup_positions():
                if math.hypot(hx - cx, hy - cy) < clearance:
                    return (f"a handle hole would run into a hinge cup; keep the handle at least {clearance:g} mm "
                            "from the cup centres: move the handle or the hinges")
        return None


@register
class CabinetDoor(Template):
    id = "cabinet_door"
    version = "1.0.0"
    name = "Cabinet door"
    family = "furniture"
    process = ("cnc",)
    materials = ("birch_plywood", "mdf", "oak")
    description = ("A slab cabinet door or drawer front cut from sheet: rounded or chamfered front edges, "
                   "screw holes for a handle at a standard spacing and 35 mm cups for concealed hinges.")
    Params = CabinetDoorParams
    groups = ("Dimensions", "Options", "Hinges")
    presets = {
        "ikea-60-kitchen": Preset("IKEA-style 60 cm kitchen door",
                                  {"width": 597, "height": 797, "thickness": 18, "edge_profile": "radius",
                                   "edge_size": 2, "handle_spacing": 128, "handle_position": "side",
                                   "handle_offset": 40, "hinge_side": "left"}, material="mdf"),
        "drawer-front-80": Preset("80 cm drawer front",
                                  {"width": 797, "height": 197, "thickness": 18, "handle_spacing": 160,
                                   "handle_position": "centre", "hinge_side": "none"}, material="mdf"),
        "tall-pantry": Preset("Tall pantry door 60 x 200 cm",
                              {"width": 597, "height": 1997, "thickness": 19, "edge_profile": "chamfer",
                               "edge_size": 1.5, "handle_spacing": 160, "handle_position": "side",
                               "handle_offset": 45, "hinge_side": "right", "hinge_cup_depth": 13},
                              material="oak"),
        "wall-flap": Preset("Lift-up wall-cabinet flap 80 x 40 cm",
                            {"width": 797, "height": 397, "thickness": 16, "handle_spacing": 96,
                             "handle_position": "side", "hinge_side": "top"}, material="birch_plywood"),
    }

    def build(self, p: CabinetDoorParams) -> list[Part]:
        import cadquery as cq

        t = float(p.thickness)
        door = cq.Workplane("XY").box(p.width, p.height, t, centered=False)
        if p.edge_profile == "radius":
            door = door.faces("<Z").edges().fillet(p.edge_size)
        elif p.edge_profile == "chamfer":
            door = door.faces("<Z").edges().chamfer(p.edge_size)

        # Tools overshoot the faces they open through, so no cut leaves a face on a face.
        tools = [cq.Solid.makeCylinder(CUP_DIAMETER / 2, p.hinge_cup_depth + 1,
                                       cq.Vector(x, y, t - p.hinge_cup_depth), cq.Vector(0, 0, 1))
                 for x, y in p.cup_positions()]
        tools += [cq.Solid.makeCylinder(p.handle_hole_diameter / 2, t + 2, cq.Vector(x, y, -1), cq.Vector(0, 0, 1))
                  for x, y in p.handle_positions()]
        if tools:
            door = door.cut(cq.Workplane("XY").add(cq.Compound.makeCompound(tools)))

        notes = "Lies back face up."
        if p.hinges():
            notes += (f" Bore {p.hinges()} x {CUP_DIAMETER:g} mm hinge cups {p.hinge_cup_depth:g} mm deep into "
                      "the top face.")
        if p.edge_profile != "square":
            notes += f" The {p.edge_size:g} mm {p.edge_profile} on the front edges is on the bottom edges."
        # The grain runs the long way, as a cabinet maker lays it: up a door, across a drawer front or a flap.
        grain = "y" if p.height >= p.width else "x"
        return [Part("door", door, flat=True, thickness=t, process="cnc", notes=notes, grain=grain)]

    def expected_size(self, p: CabinetDoorParams) -> tuple[float, float, float]:
        return (p.width, p.height, float(p.thickness))

    def quality_checks(self, p: CabinetDoorParams) -> list[Check]:
        checks = [
            Check("Door width", p.width, 0.5),
            Check("Door height", p.height, 0.5),
            Check("Sheet thickness", float(p.thickness), 0.3),
        ]
        if p.handle_spacing:
            checks.append(Check("Handle hole spacing", float(p.handle_spacing), 0.2))
            checks.append(Check("Handle hole diameter", p.handle_hole_diameter, 0.1))
        if p.hinges():
            checks.append(Check("Hinge cup diameter", CUP_DIAMETER, 0.2))
            checks.append(Check("Hinge cup depth", p.hinge_cup_depth, 0.3))
            checks.append(Check("Hinge cup centre from door edge", p.cup_inset(), 0.3))
            checks.append(Check("Hinge cup pitch", p.hinge_pitch(), 0.5))
        return checks

    def hardware(self, p: CabinetDoorParams) -> list[Hardware]:
        found = []
        if p.hinges():
            found.append(Hardware("35 mm cup concealed hinge with mounting plate", p.hinges(),
                                  f"cup {p.hinge_cup_depth:g} mm deep, {p.cup_inset():g} mm from the edge; overlay to "
                                  "suit the carcass"))
            found.append(Hardware("3.5 x 15 mm chipboard screw", 4 * p.hinges(), "two for each hinge cup's arm, two "
                                  "for each mounting plate"))
        if p.handle_spacing:
            found.append(Hardware(f"handle, {p.handle_spacing:g} mm hole centres", 1, "bought in or printed"))
            found.append(Hardware(f"M4 x {float(p.thickness) + 7:g} mm machine screw", 2,
                                  f"through the {float(p.thickness):g} mm door into the handle"))
        return found

    def assembly(self, p: CabinetDoorParams) -> list[str]:
        steps = ["Sand the edges and faces; finish before fitting hardware"]
        if p.hinges():
            steps += ["Press each hinge into its cup square to the door edge and fix it with two screws",
                      "Screw the mounting plates to the carcass side, clip the door on and adjust the gaps"]
        if p.handle_spacing:
            steps.append("Fix the handle from the back with the two M4 screws")
        return steps
