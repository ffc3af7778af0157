"""Heel lift: a wedge shaped like the back of the foot that raises the heel inside a shoe."""

from __future__ import annotations

import math
from typing import Any

from parametric.registry import Check, Preset, register
from parametric.schema import Degrees, Mm, angle, length, rule

from .outline import foot_outline, heel_pocket, outline_prism, side_profile, single_solid, width_behind
from .pair import PairedTemplate
from .sizing import FootParams

MIN_FRONT = 1.5
"""Thinnest the wedge may run out at its front edge (mm): thinner edges curl and tear."""
MIN_CUP = 1.0
"""Lowest heel cup rim (mm) worth printing."""
# The rim keeps its full height over the back part of the lift and fades out by the second fraction of its length.
CUP_FULL, CUP_END = 0.45, 0.9


class HeelLiftParams(FootParams):
    lift_height: Mm = length(10, ge=3, le=25, step=0.5, order=5,
                             description="Thickness of the lift at the back of the heel: how much the heel is "
                                         "raised.")
    wedge_angle: Degrees = angle(4, ge=0, le=15, step=0.5, order=6,
                                 description="How steeply the top of the lift slopes down towards the toes; 0 for "
                                             "a lift of even thickness.")
    lift_length: Mm = length(90, ge=40, le=140, step=1, order=7,
                             description="Length of the lift from the back of the heel towards the toes.")
    heel_cup_depth: Mm = length(0, ge=0, le=12, step=0.5, order=8,
                                description="Height of a rim around the heel above the lift's top that keeps the "
                                            "heel centred; 0 for a plain wedge.")
    heel_cup_wall: Mm = length(4, ge=2, le=8, step=0.5, order=9, group="Options",
                               description="Thickness of the heel cup rim wall.")

    def front_height(self) -> float:
        """Thickness of the lift at its front edge (mm)."""
        return self.lift_height - self.lift_length * math.tan(math.radians(self.wedge_angle))

    def outline(self) -> list[Any]:
        """The foot outline the lift is cut from (Bézier segments, mm)."""
        return foot_outline(self.foot_length, self.foot_width, self.side)

    def width_range(self) -> tuple[float, float]:
        """Smallest and largest y of the lift (mm): the foot outline behind the lift's front edge."""
        return width_behind(self.outline(), self.lift_length)

    @rule("wedge_angle", "lift_height", "lift_length")
    def _front_not_too_thin(self) -> str | None:
        if self.front_height() < MIN_FRONT:
            return (f"a {self.lift_length:g} mm lift {self.lift_height:g} mm high sloping at {self.wedge_angle:g}° "
                    f"would be {self.front_height():.1f} mm thick at its front edge, thinner than {MIN_FRONT:g} mm; "
                    f"lower the angle, shorten the lift or make it taller")
        return None

    @rule("lift_length", "foot_length")
    def _behind_the_ball(self) -> str | None:
        if self.lift_length > 0.45 * self.foot_length:
            return (f"a heel lift must end behind the ball of the foot: for a {self.foot_length:g} mm foot it can be "
                    f"at most {0.45 * self.foot_length:.0f} mm long")
        return None

    @rule("heel_cup_depth")
    def _heel_cup_printable(self) -> str | None:
        if 0 < self.heel_cup_depth < MIN_CUP:
            return (f"a heel cup lower than {MIN_CUP:g} mm is too thin to print and would not hold the heel; "
                    f"use 0 for none or at least {MIN_CUP:g} mm")
        return None


@register
class HeelLift(PairedTemplate):
    id = "heel_lift"
    version = "1.1.0"
    name = "Heel lift"
    family = "footwear"
    process = ("fdm",)
    materials = ("tpu", "petg", "pla")
    description = ("A wedge that sits under the heel inside a shoe, shaped like the back of your foot: thickest at "
                   "the heel and thinning towards the arch, with an optional rim that cups the heel. Used to even "
                   "out a leg-length difference or ease the Achilles tendon.")
    Params = HeelLiftParams
    presets = {
        "eu42-10mm": Preset("EU 42, 10 mm lift", {"shoe_size": "EU 42", "foot_width": 100},
                            description="A common correction for a small leg-length difference."),
        "us-w8-narrow-cup": Preset("US W 8 narrow foot, cupped 6 mm lift",
                                   {"shoe_size": "US W 8", "foot_width": 86, "lift_height": 6, "wedge_angle": 3,
                                    "lift_length": 80, "heel_cup_depth": 5, "side": "left"},
                                   description="A thin lift with a heel cup for a slim women's shoe (left)."),
        "uk11-wide-achilles": Preset("UK 11 wide foot, 18 mm Achilles wedge",
                                     {"shoe_size": "UK 11", "foot_width": 112, "lift_height": 18, "wedge_angle": 8,
                                      "lift_length": 100},
                                     description="A steep wedge that takes strain off the Achilles tendon.",
                                     material="petg"),
    }

    def build_one(self, p: HeelLiftParams) -> Any:
        slope = math.tan(math.radians(p.wedge_angle))
        length_, height, front = p.lift_length, p.lift_height, p.front_height()
        outline = p.outline()
        top = height + p.heel_cup_depth + 5
        width = p.foot_width
        # Side view of the wedge: flat bottom, sloping top, cut square at the front.
        wedge = side_profile((-5, -1), [((length_, -1),), ((length_, front),), ((-5, height + 5 * slope),)],
                             "XZ", -width, width)
        body: Any = wedge
        if p.heel_cup_depth > 0:
            # A wall standing heel_cup_depth above the sloping top at the back, curving down into the wedge
            # towards the front, with the heel pocket taken out of it.
            rise = p.heel_cup_depth
            full, end = length_ * CUP_FULL, length_ * CUP_END
            base = front / 2
            run = end - full
            start_point = (full, height - full * slope + rise)
            end_point = (end, height - end * slope - front / 3)
            wall = side_profile((-5, base), [
                ((-5, height + 5 * slope + rise),),
                (start_point,),
                ((full + 0.45 * run, start_point[1] - 0.45 * run * slope),
                 (end - 0.45 * run, end_point[1] + 0.45 * run * slope), end_point),
                ((end, base),),
            ], "XZ", -width, width)
            pocket = heel_pocket(outline, p.foot_length, p.foot_width, p.heel_cup_wall)
            body = wedge.fuse(wall.cut(outline_prism(pocket, base / 2, top)))
        return single_solid(outline_prism(outline, 0, top).intersect(body))

    def size_one(self, p: HeelLiftParams) -> tuple[float, float, float]:
        low, high = p.width_range()
        return (p.lift_length, high - low, p.lift_height + p.heel_cup_depth)

    def quality_checks(self, p: HeelLiftParams) -> list[Check]:
        low, high = p.width_range()
        checks = [
            Check("Lift length", p.lift_length, 0.5),
            Check("Height at the back of the heel", p.lift_height, 0.3),
            Check("Height at the front edge", p.front_height(), 0.3),
            Check("Largest width (at the front edge)", high - low, 1.0),
        ]
        if p.heel_cup_depth > 0:
            checks.append(Check("Heel cup rim top above the floor", p.lift_height + p.heel_cup_depth, 0.5))
        return checks
