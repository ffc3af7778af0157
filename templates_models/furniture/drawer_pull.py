"""Drawer pull: a grip bar on two feet, at a standard screw-hole spacing, with blind M4 holes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import model_validator

from parametric.registry import Check, Hardware, Preset, Template, register
from parametric.schema import LengthChoice, Mm, TemplateParams, choice, length, rule

HOLE_SPACINGS = (64, 96, 128, 160, 192, 224, 256)
"""Standard centre-to-centre spacings of furniture handle screws, in mm (32 mm system)."""

HOLE_DIAMETERS = {"m4_tapped": 3.3, "m4_insert": 5.6}
"""Bore diameter in mm per screw fitting: M4 tap drill, or bore for a heat-set M4 insert."""

END_OVERHANG = 3.0
"""How far (mm) the grip must reach beyond the outer side of each foot."""

FINGER_CLEARANCE = 15.0
"""Smallest gap (mm) between the mounting face and the underside of the grip that fits fingers."""


SpacingMm = Annotated[Literal[64, 96, 128, 160, 192, 224, 256], LengthChoice]


class DrawerPullParams(TemplateParams):
    hole_spacing: SpacingMm = choice(
        128, choices=HOLE_SPACINGS, unit="mm", group="Dimensions", order=1,
        description="Centre-to-centre distance of the two screw holes; match the holes in your drawer.")
    grip_length: Mm | None = length(None, ge=78, le=400, step=1, order=2,
                                    description="Overall length of the grip bar, end to end; left empty, the hole "
                                                "spacing plus twice the foot diameter.")
    height: Mm = length(30, ge=21, le=60, step=0.5, order=3,
                        description="How far the pull stands off the drawer front, to the top of the grip.")
    grip_section: Literal["oval", "rectangular"] = choice(
        "oval", choices=["oval", "rectangular"], group="Dimensions", order=4,
        description="Cross-section of the grip bar: oval (round when width equals thickness) or a rectangle "
                    "with rounded edges.")
    grip_width: Mm = length(12, ge=8, le=30, step=0.5, order=5,
                            description="Width of the grip bar, seen from the front of the drawer.")
    grip_thickness: Mm = length(12, ge=6, le=25, step=0.5, order=6,
                                description="Thickness of the grip bar, measured away from the drawer front.")
    foot_diameter: Mm = length(10, ge=8, le=30, step=0.5, order=7,
                               description="Diameter of the two round feet that stand on the drawer front.")
    screw_fitting: Literal["m4_tapped", "m4_insert"] = choice(
        "m4_tapped", choices=list(HOLE_DIAMETERS), order=8,
        description="M4 tap-drill hole (3.3 mm, cut the thread or let the screw form it) or a 5.6 mm bore for "
                    "a heat-set M4 insert.")
    hole_depth: Mm = length(10, ge=5, le=25, step=0.5, order=9, group="Options",
                            description="Depth of each blind screw hole, from the face that touches the drawer.")

    @model_validator(mode="after")
    def _derive_grip_length(self) -> DrawerPullParams:
        if self.grip_length is None:
            self.grip_length = self.hole_spacing + 2 * self.foot_diameter
        return self

    def length_overall(self) -> float:
        """The grip length, given or derived (hole spacing plus twice the foot diameter), in mm."""
        return self.grip_length or self.hole_spacing + 2 * self.foot_diameter

    def hole_diameter(self) -> float:
        """Diameter (mm) of the blind holes for the chosen screw fitting."""
        return HOLE_DIAMETERS[self.screw_fitting]

    def hole_positions(self) -> list[tuple[float, float]]:
        """(x, y) centres of the two screw holes on the mounting face."""
        return [(-self.hole_spacing / 2, 0.0), (self.hole_spacing / 2, 0.0)]

    @rule("grip_length", "hole_spacing", "foot_diameter")
    def _grip_spans_feet(self) -> str | None:
        needed = self.hole_spacing + self.foot_diameter + 2 * END_OVERHANG
        if self.length_overall() < needed:
            return (f"the grip must reach {END_OVERHANG:g} mm past both feet: at {self.hole_spacing} mm spacing "
                    f"with {self.foot_diameter:g} mm feet it must be at least {needed:g} mm long")
        return None

    @rule("foot_diameter", "grip_width")
    def _feet_not_flush(self) -> str | None:
        if abs(self.foot_diameter - self.grip_width) < 1:
            return ("the feet must be at least 1 mm narrower (or 1 mm wider) than the grip, so their sides do "
                    "not run flush with the grip's sides")
        return None

    @rule("height", "grip_thickness")
    def _finger_room(self) -> str | None:
        if self.height - self.grip_thickness < FINGER_CLEARANCE:
            return (f"the height must be at least the grip thickness plus {FINGER_CLEARANCE:g} mm, "
                    "so fingers fit under the grip")
        return None

    @rule("foot_diameter", "screw_fitting")
    def _foot_around_hole(self) -> str | None:
        if self.foot_diameter < self.hole_diameter() + 4:
            return (f"the feet must be at least {self.hole_diameter() + 4:g} mm across (the "
                    f"{self.hole_diameter():g} mm hole plus 2 mm of wall on each side)")
        return None

    @rule("hole_depth", "height", "grip_thickness")
    def _hole_stays_inside(self) -> str | None:
        deepest = self.height - self.grip_thickness / 2
        if self.hole_depth > deepest:
            return (f"the screw holes can be at most {deepest:g} mm deep (to the middle of the grip), or they "
                    "would break through its top")
        return None

    @rule("grip_width", "grip_thickness", "grip_section")
    def _oval_proportions(self) -> str | None:
        if self.grip_section == "oval":
            ratio = max(self.grip_width, self.grip_thickness) / min(self.grip_width, self.grip_thickness)
            if ratio > 3:
                return "an oval grip can be at most three times as wide as it is thick; use a rectangular grip"
        return None


@register
class DrawerPull(Template):
    id = "drawer_pull"
    version = "1.0.0"
    name = "Drawer pull"
    family = "furniture"
    process = ("fdm",)
    materials = ("pla", "petg", "asa")
    description = ("A bar handle for drawers and cabinet doors: a grip on two round feet at a standard "
                   "screw-hole spacing, fixed from behind with M4 screws into tapped holes or heat-set inserts.")
    Params = DrawerPullParams
    presets = {
        "kitchen-bar-128": Preset("Kitchen bar pull 128 mm",
                                  {"hole_spacing": 128, "grip_length": 188, "height": 35, "grip_section": "oval",
                                   "grip_width": 12, "grip_thickness": 12, "foot_diameter": 10}),
        "wardrobe-192": Preset("Wardrobe flat pull 192 mm",
                               {"hole_spacing": 192, "grip_length": 232, "height": 30,
                                "grip_section": "rectangular", "grip_width": 20, "grip_thickness": 8,
                                "foot_diameter": 16, "screw_fitting": "m4_insert"}),
        "small-drawer-64": Preset("Small drawer pull 64 mm",
                                  {"hole_spacing": 64, "grip_length": 90, "height": 25, "grip_section": "oval",
                                   "grip_width": 14, "grip_thickness": 10, "foot_diameter": 11, "hole_depth": 8}),
    }

    def build(self, p: DrawerPullParams) -> Any:
        import cadquery as cq

        length_, width, thickness = p.length_overall(), p.grip_width, p.grip_thickness
        if p.grip_section == "rectangular":
            # Rounding the ends with a smaller radius than the long edges avoids spherical corner
            # patches, whose tessellation leaves gaps.
            edge_radius = min(3.0, 0.3 * min(width, thickness))
            grip = (cq.Workplane("YZ").rect(width, thickness).extrude(length_ / 2, both=True)
                    .edges("|X").fillet(edge_radius)
                    .faces("<X or >X").edges().fillet(0.6 * edge_radius))
        else:
            # An ellipse edge only takes a fillet smaller than its tightest curvature radius, b^2/a.
            major, minor = max(width, thickness) / 2, min(width, thickness) / 2
            grip = (cq.Workplane("YZ").ellipse(width / 2, thickness / 2).extrude(length_ / 2, both=True)
                    .faces("<X or >X").edges().fillet(min(2.0, 0.8 * minor * minor / major)))
        grip = grip.translate((0, 0, p.height - thickness / 2))

        foot_top = p.height - thickness / 2
        feet = cq.Workplane("XY").pushPoints(p.hole_positions()).circle(p.foot_diameter / 2).extrude(foot_top)
        holes = cq.Workplane("XY").pushPoints(p.hole_positions()).circle(p.hole_diameter() / 2).extrude(p.hole_depth)
        return grip.union(feet).cut(holes)

    def expected_size(self, p: DrawerPullParams) -> tuple[float, float, float]:
        return (p.length_overall(), max(p.grip_width, p.foot_diameter), p.height)

    def hardware(self, p: DrawerPullParams) -> list[Hardware]:
        found = [Hardware("M4 machine screw, pan head", 2,
                          f"drawer front thickness + {p.hole_depth - 2:g} mm long (into {p.hole_depth:g} mm holes)")]
        if p.screw_fitting == "m4_insert":
            found.append(Hardware("M4 heat-set insert", 2, "set into the printed holes with a soldering iron"))
        return found

    def assembly(self, p: DrawerPullParams) -> list[str]:
        steps = []
        if p.screw_fitting == "m4_insert":
            steps.append("Heat-set an M4 insert into each hole, flush with the foot")
        else:
            steps.append("Run an M4 screw into each hole once to form the thread, then back it out")
        steps.append(f"Drill two holes {p.hole_spacing:g} mm apart through the drawer front and screw the pull on "
                     "from inside")
        return steps

    def quality_checks(self, p: DrawerPullParams) -> list[Check]:
        return [
            Check("Screw hole spacing", float(p.hole_spacing), 0.2),
            Check("Screw hole diameter", p.hole_diameter(), 0.1),
            Check("Screw hole depth", p.hole_depth, 0.5),
            Check("Height off the drawer front", p.height, 0.3),
            Check("Grip length", p.length_overall(), 0.5),
            Check("Finger gap under the grip", p.height - p.grip_thickness, 0.5),
        ]

