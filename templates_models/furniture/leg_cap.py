"""Leg cap: a printed foot that slips over a measured round or rectangular furniture leg."""

from __future__ import annotations

from typing import Any, Literal

from parametric.registry import Check, Preset, Template, register
from parametric.schema import Mm, TemplateParams, choice, length, rule, switch

MIN_FELT_COVER = 1.2
"""Least sole material (mm) left between the felt recess and the leg's end."""


class LegCapParams(TemplateParams):
    leg_shape: Literal["round", "rectangular"] = choice("round", choices=["round", "rectangular"], order=1,
                                                        group="Dimensions",
                                                        description="Cross-section of the leg the cap fits.")
    leg_diameter: Mm = length(30, ge=10, le=120, step=0.1, order=2,
                              description="Measured diameter of a round leg (used when the leg is round).")
    leg_width: Mm = length(40, ge=10, le=120, step=0.1, order=3,
                           description="Measured width of a rectangular leg (used when the leg is rectangular).")
    leg_depth: Mm = length(40, ge=10, le=120, step=0.1, order=4,
                           description="Measured depth of a rectangular leg (used when the leg is rectangular).")
    leg_corner_radius: Mm = length(0, ge=0, le=20, step=0.5, order=5,
                                   description="Corner radius of a rectangular leg seen from below; 0 for sharp "
                                               "corners.")
    fit_clearance: Mm = length(0.3, ge=-0.5, le=2, step=0.05, order=6,
                               description="Added to the measured leg size to give the opening: about 0.3 for a "
                                           "slip fit in PLA or PETG, 0 or slightly negative for a snug TPU cap.")
    wall_thickness: Mm = length(2.4, ge=1.2, le=6, step=0.1, order=7,
                                description="Thickness of the sleeve wall around the leg.")
    sleeve_depth: Mm = length(15, ge=5, le=60, step=0.5, order=8,
                              description="How far the leg reaches into the cap.")
    sole_thickness: Mm = length(4, ge=2, le=15, step=0.5, order=9,
                                description="Thickness of the sole under the end of the leg.")
    felt_recess: bool = switch(False, order=10,
                               description="Recess the bottom of the sole to take a stick-on felt pad.")
    felt_thickness: Mm = length(2, ge=1, le=5, step=0.5, order=11, group="Options",
                                description="Depth of the felt recess (the felt's thickness, less a little if it "
                                            "should stand proud).")
    felt_margin: Mm = length(3, ge=1.5, le=10, step=0.5, order=12, group="Options",
                             description="Width of the rim left around the felt recess at the sole's edge.")

    def opening(self) -> tuple[float, float]:
        """Inner opening (x, y) in mm: the measured leg size plus the fit clearance."""
        if self.leg_shape == "round":
            size = self.leg_diameter + self.fit_clearance
            return (size, size)
        return (self.leg_width + self.fit_clearance, self.leg_depth + self.fit_clearance)

    def outside(self) -> tuple[float, float]:
        """Outer footprint (x, y) of the cap in mm."""
        x, y = self.opening()
        return (x + 2 * self.wall_thickness, y + 2 * self.wall_thickness)

    def inner_corner_radius(self) -> float:
        """Corner radius (mm) of a rectangular opening: the leg's, grown by half the clearance."""
        return max(0.0, self.leg_corner_radius + self.fit_clearance / 2)

    def total_height(self) -> float:
        """Height of the cap from the floor to the rim, in mm."""
        return self.sole_thickness + self.sleeve_depth

    @rule("leg_corner_radius", "leg_width", "leg_depth")
    def _corner_fits(self) -> str | None:
        if self.leg_shape == "rectangular" and self.leg_corner_radius > min(self.leg_width, self.leg_depth) / 2 - 1:
            return ("the corner radius must be at least 1 mm less than half the leg's smaller side; for a round "
                    "leg choose the round shape")
        return None

    @rule("felt_thickness", "sole_thickness")
    def _felt_leaves_sole(self) -> str | None:
        if self.felt_recess and self.felt_thickness > self.sole_thickness - MIN_FELT_COVER:
            return (f"the felt recess can be at most {self.sole_thickness - MIN_FELT_COVER:g} mm deep: the sole "
                    f"must keep {MIN_FELT_COVER:g} mm of material over it; use a thicker sole or thinner felt")
        return None

    @rule("felt_margin", "wall_thickness")
    def _felt_pad_size(self) -> str | None:
        pad = min(self.outside()) - 2 * self.felt_margin
        if self.felt_recess and pad < 8:
            return (f"the felt pad would only be {pad:.1f} mm across; the rim around it must leave at least "
                    "8 mm of felt: use a smaller felt margin")
        return None


@register
class LegCap(Template):
    id = "leg_cap"
    version = "1.0.0"
    name = "Leg cap"
    family = "furniture"
    process = ("fdm",)
    materials = ("tpu", "petg", "pla")
    description = ("A foot that slips over the end of a chair, table or sofa leg to protect the floor: made to "
                   "the measured leg size plus a fit clearance, with an optional recess for a felt pad.")
    Params = LegCapParams
    presets = {
        "chair-tube-22": Preset("Chair glide for 22 mm tube legs",
                                {"leg_shape": "round", "leg_diameter": 22, "fit_clearance": 0, "wall_thickness": 2,
                                 "sleeve_depth": 12, "sole_thickness": 4}, material="tpu"),
        "table-square-45-felt": Preset("Square table leg 45 mm with felt pad",
                                       {"leg_shape": "rectangular", "leg_width": 45, "leg_depth": 45,
                                        "leg_corner_radius": 2, "fit_clearance": 0.4, "wall_thickness": 2.4,
                                        "sleeve_depth": 15, "sole_thickness": 5, "felt_recess": True,
                                        "felt_thickness": 3, "felt_margin": 3}, material="petg"),
        "sofa-round-50": Preset("Sofa leg cap 50 mm",
                                {"leg_shape": "round", "leg_diameter": 50, "fit_clearance": 0.2,
                                 "wall_thickness": 3, "sleeve_depth": 20, "sole_thickness": 6}, material="tpu"),
    }

    def build(self, p: LegCapParams) -> Any:
        import cadquery as cq

        def outline(x: float, y: float, radius: float, height: float, z: float = 0.0) -> Any:
            plane = cq.Workplane("XY").workplane(offset=z)
            if p.leg_shape == "round":
                return plane.circle(x / 2).extrude(height)
            solid = plane.rect(x, y).extrude(height)
            return solid.edges("|Z").fillet(radius) if radius > 0.05 else solid

        inner_radius = p.inner_corner_radius()
        outer_radius = inner_radius + p.wall_thickness
        height = p.total_height()
        cap = outline(*p.outside(), outer_radius, height)
        cap = cap.faces("<Z").chamfer(min(1.0, p.sole_thickness / 3, p.wall_thickness / 2))
        # Overshoot the pocket past the rim so no face of the cut lies on the rim.
        cap = cap.cut(outline(*p.opening(), inner_radius, p.sleeve_depth + 1, z=p.sole_thickness))
        # A small chamfer on both rim edges eases the leg in and takes the sharp edge off the outside.
        cap = cap.faces(">Z").edges().chamfer(min(0.6, p.wall_thickness / 4))
        if p.felt_recess:
            outer_x, outer_y = p.outside()
            pad = outline(outer_x - 2 * p.felt_margin, outer_y - 2 * p.felt_margin,
                          max(0.0, outer_radius - p.felt_margin), p.felt_thickness + 1, z=-1)
            cap = cap.cut(pad)
        return cap

    def expected_size(self, p: LegCapParams) -> tuple[float, float, float]:
        x, y = p.outside()
        return (x, y, p.total_height())

    def quality_checks(self, p: LegCapParams) -> list[Check]:
        x, y = p.opening()
        checks = [Check("Opening width", x, 0.15)]
        if p.leg_shape == "rectangular":
            checks.append(Check("Opening depth", y, 0.15))
        checks += [
            Check("Wall thickness", p.wall_thickness, 0.2),
            Check("Sleeve depth", p.sleeve_depth, 0.3),
            Check("Sole thickness", p.sole_thickness, 0.3),
        ]
        if p.felt_recess:
            checks.append(Check("Felt recess depth", p.felt_thickness, 0.2))
        return checks
