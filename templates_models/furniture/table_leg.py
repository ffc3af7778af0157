"""Table leg: a tapered round or square leg on a mounting plate with countersunk screw holes."""

from __future__ import annotations

import math
from typing import Any, Literal

from parametric.registry import Check, Preset, Template, register
from parametric.schema import Mm, TemplateParams, choice, count, length, rule, switch


class TableLegParams(TemplateParams):
    section: Literal["round", "square"] = choice("round", choices=["round", "square"], order=1, group="Dimensions",
                                                 description="Shape of the leg's cross-section.")
    height: Mm = length(150, ge=40, le=400, step=1, order=2,
                        description="Overall height of the leg, from the mounting plate's top face to the floor.")
    top_size: Mm = length(45, ge=20, le=100, step=0.5, order=3,
                          description="Diameter (round) or side (square) of the leg just under the mounting plate.")
    bottom_size: Mm = length(30, ge=12, le=100, step=0.5, order=4,
                             description="Diameter (round) or side (square) of the leg at the foot.")
    straight_length: Mm = length(0, ge=0, le=380, step=1, order=5,
                                 description="Length of leg below the plate that keeps the top size before the "
                                             "taper starts; 0 tapers the whole leg.")
    plate_shape: Literal["square", "round"] = choice("square", choices=["square", "round"], order=6,
                                                     group="Dimensions",
                                                     description="Outline of the mounting plate.")
    plate_size: Mm = length(75, ge=40, le=180, step=1, order=7,
                            description="Side (square) or diameter (round) of the mounting plate.")
    plate_thickness: Mm = length(6, ge=4, le=15, step=0.5, order=8,
                                 description="Thickness of the mounting plate.")
    hole_count: int = count(4, ge=3, le=8, order=9,
                            description="Number of countersunk screw holes in the plate, spread evenly around the "
                                        "leg (four sit in the corners of a square plate).")
    hole_diameter: Mm = length(4.5, ge=3, le=8, step=0.1, order=10, group="Options",
                               description="Clearance diameter of the screw holes; the countersink is twice this.")
    hole_inset: Mm = length(9, ge=5, le=40, step=0.5, order=11, group="Options",
                            description="Distance from a hole's centre to the plate's edge.")
    insert_bore: bool = switch(False, order=12,
                               description="Bore a hole in the centre of the plate for a threaded insert or "
                                           "hanger bolt.")
    insert_diameter: Mm = length(10, ge=4, le=16, step=0.1, order=13, group="Options",
                                 description="Diameter of the threaded-insert bore (e.g. 10 for an M8 wood insert).")
    insert_depth: Mm = length(15, ge=6, le=50, step=0.5, order=14, group="Options",
                              description="Depth of the threaded-insert bore, measured from the plate's top face.")

    def leg_length(self) -> float:
        """Length of the leg below the mounting plate, in mm."""
        return self.height - self.plate_thickness

    def size_at(self, depth: float) -> float:
        """Leg diameter or side (mm) at ``depth`` mm below the plate's top face."""
        below = depth - self.plate_thickness - self.straight_length
        taper = self.leg_length() - self.straight_length
        if below <= 0 or taper <= 0:
            return self.top_size
        return self.top_size + (self.bottom_size - self.top_size) * min(1.0, below / taper)

    def hole_positions(self) -> list[tuple[float, float]]:
        """(x, y) centres of the plate's screw holes: in the corners of a square plate, else on a circle."""
        n = self.hole_count
        half = self.plate_size / 2 - self.hole_inset
        radius = half * math.sqrt(2) if (self.plate_shape == "square" and n == 4) else half
        return [(radius * math.cos(math.radians(45 + 360 * i / n)), radius * math.sin(math.radians(45 + 360 * i / n)))
                for i in range(n)]

    def hole_spacing(self) -> float:
        """Centre distance between neighbouring screw holes, in mm."""
        (x0, y0), (x1, y1) = self.hole_positions()[:2]
        return math.hypot(x1 - x0, y1 - y0)

    def _clearance_to_leg(self, x: float, y: float) -> float:
        half = self.top_size / 2
        if self.section == "round":
            return math.hypot(x, y) - half
        return math.hypot(max(abs(x) - half, 0.0), max(abs(y) - half, 0.0))

    @rule("bottom_size", "top_size")
    def _narrows_to_foot(self) -> str | None:
        if self.bottom_size > self.top_size:
            return ("the foot may not be wider than the top: the leg is printed plate-down and may only narrow "
                    "toward the foot")
        return None

    @rule("height", "plate_thickness")
    def _leg_below_plate(self) -> str | None:
        if self.leg_length() < 20:
            return "the height must be at least 20 mm more than the plate thickness, or there is no leg"
        return None

    @rule("straight_length", "height")
    def _taper_remains(self) -> str | None:
        if self.straight_length > self.leg_length() - 10:
            return (f"the straight part can be at most {max(self.leg_length() - 10, 0):g} mm (the leg below the "
                    "plate less 10 mm), so there is room for the taper")
        return None

    @rule("plate_size", "top_size")
    def _plate_covers_leg(self) -> str | None:
        needed = self.top_size + 2
        if self.plate_shape == "round" and self.section == "square":
            needed = self.top_size * math.sqrt(2) + 2
        if self.plate_size < needed:
            return f"the mounting plate must be at least {needed:.1f} mm across to cover the top of the leg"
        return None

    @rule("hole_inset", "hole_diameter")
    def _holes_on_plate(self) -> str | None:
        if self.hole_inset < self.hole_diameter + 1:
            return ("each hole must sit at least its diameter plus 1 mm in from the plate's edge, so the "
                    "countersink (twice the hole diameter) stays on the plate")
        return None

    @rule("hole_inset", "plate_size", "top_size", "hole_diameter")
    def _holes_clear_leg(self) -> str | None:
        margin = min(self._clearance_to_leg(x, y) for x, y in self.hole_positions())
        if margin < self.hole_diameter + 1:
            return ("the countersunk holes run into the leg: make the plate larger, the hole inset smaller or the "
                    "top of the leg narrower, so each countersink stays 1 mm clear of the leg")
        return None

    @rule("hole_count", "plate_size", "hole_diameter")
    def _holes_apart(self) -> str | None:
        if self.hole_spacing() < 2 * self.hole_diameter + 2:
            return (f"{self.hole_count} holes are too close together on this plate; the countersinks need 2 mm "
                    "between them: use fewer holes or a larger plate")
        return None

    @rule("plate_thickness", "hole_diameter")
    def _countersink_fits_plate(self) -> str | None:
        if self.plate_thickness < self.hole_diameter / 2 + 2:
            return ("the plate must be at least half the hole diameter plus 2 mm thick, so the countersink leaves "
                    "2 mm of straight hole")
        return None

    @rule("insert_depth", "height")
    def _insert_depth_fits(self) -> str | None:
        if self.insert_bore and self.insert_depth > self.height - 5:
            return "the insert bore must stop at least 5 mm above the floor end of the leg"
        return None

    @rule("insert_diameter", "insert_depth", "bottom_size")
    def _insert_walls(self) -> str | None:
        if self.insert_bore and self.size_at(self.insert_depth) < self.insert_diameter + 4:
            return (f"the leg is only {self.size_at(self.insert_depth):.1f} mm across at the bottom of the insert "
                    "bore; it must be at least the insert diameter plus 4 mm (2 mm walls): use a smaller or "
                    "shallower insert")
        return None


@register
class TableLeg(Template):
    id = "table_leg"
    version = "1.0.0"
    name = "Table leg"
    family = "furniture"
    process = ("fdm",)
    materials = ("pla", "petg", "asa")
    description = ("A tapered round or square leg for a table, sofa or cabinet, printed in one piece with a "
                   "mounting plate that screws under the furniture through countersunk holes, with an optional "
                   "bore for a threaded insert.")
    Params = TableLegParams
    presets = {
        "midcentury-sofa": Preset("Mid-century sofa leg 150 mm",
                                  {"section": "round", "height": 150, "top_size": 40, "bottom_size": 25,
                                   "plate_size": 70, "plate_thickness": 6}),
        "cabinet-square": Preset("Square cabinet leg 100 mm",
                                 {"section": "square", "height": 100, "top_size": 40, "bottom_size": 32,
                                  "straight_length": 30, "plate_size": 80, "hole_inset": 10}),
        "coffee-table": Preset("Coffee table leg 350 mm with M8 insert",
                               {"section": "round", "height": 350, "top_size": 55, "bottom_size": 32,
                                "plate_shape": "round", "plate_size": 110, "plate_thickness": 8, "hole_count": 4,
                                "hole_diameter": 5, "hole_inset": 10, "insert_bore": True, "insert_diameter": 10,
                                "insert_depth": 20}, material="petg"),
    }

    def build(self, p: TableLegParams) -> Any:
        import cadquery as cq

        t = p.plate_thickness
        if p.plate_shape == "square":
            plate = (cq.Workplane("XY").box(p.plate_size, p.plate_size, t, centered=(True, True, False))
                     .edges("|Z").fillet(p.hole_inset))  # corner arcs concentric with corner holes
        else:
            plate = cq.Workplane("XY").circle(p.plate_size / 2).extrude(t)
        plate = (
            plate.faces(">Z").workplane(origin=(0, 0, t))
            .pushPoints(p.hole_positions())
            .cskHole(p.hole_diameter, cskDiameter=2 * p.hole_diameter, cskAngle=90)
        )

        # The leg starts inside the plate so the union never meets on a shared face.
        start, bend, foot = t / 2, t + p.straight_length, p.height
        chamfer = min(1.5, p.bottom_size * 0.05)
        if p.section == "round":
            top, bottom = p.top_size / 2, p.bottom_size / 2
            # The taper line reaches the bottom size at the floor; the chamfer then cuts the corner off.
            slope = (top - bottom) / (foot - bend)
            profile = [(0, start), (top, start), (top, bend), (bottom + slope * chamfer, foot - chamfer),
                       (bottom - chamfer, foot), (0, foot)]
            leg = cq.Workplane("XZ").polyline(profile).close().revolve(360, (0, 0, 0), (0, 1, 0))
        else:
            # A tapered extrusion keeps every face planar (a lofted frustum gets B-spline faces).
            taper_deg = math.degrees(math.atan((p.top_size - p.bottom_size) / 2 / (foot - bend)))
            straight = (cq.Workplane("XY").workplane(offset=start).rect(p.top_size, p.top_size)
                        .extrude(bend - start))
            leg = (cq.Workplane("XY").workplane(offset=bend).rect(p.top_size, p.top_size)
                   .extrude(foot - bend, taper=taper_deg)
                   .faces(">Z").chamfer(chamfer)
                   .union(straight))
        body = plate.union(leg)
        if p.insert_bore:
            bore = cq.Workplane("XY").circle(p.insert_diameter / 2).extrude(p.insert_depth)
            body = body.cut(bore)
        return body

    def expected_size(self, p: TableLegParams) -> tuple[float, float, float]:
        return (p.plate_size, p.plate_size, p.height)

    def quality_checks(self, p: TableLegParams) -> list[Check]:
        checks = [
            Check("Overall height", p.height, 0.5),
            Check("Leg size at the plate", p.top_size, 0.3),
            Check("Leg size at the foot", p.bottom_size, 0.3),
            Check("Plate thickness", p.plate_thickness, 0.3),
            Check("Screw hole spacing", p.hole_spacing(), 0.2),
            Check("Screw hole diameter", p.hole_diameter, 0.15),
        ]
        if p.insert_bore:
            checks.append(Check("Insert bore diameter", p.insert_diameter, 0.1))
            checks.append(Check("Insert bore depth", p.insert_depth, 0.5))
        return checks
