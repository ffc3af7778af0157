"""Insole: a foot-shaped base with a raised inner arch support and a heel cup rim."""

from __future__ import annotations

from typing import Any

from parametric.registry import Check, Preset, register
from parametric.schema import Mm, length, rule

from .outline import foot_outline, heel_pocket, medial_sign, outline_prism, s_curve, side_profile, single_solid
from .pair import PairedTemplate
from .sizing import FootParams

# Where the arch support rises, peaks and ends, as fractions of the insole length.
ARCH_START, ARCH_PEAK, ARCH_END = 0.18, 0.40, 0.68
# Across the foot the support rises from just past the heel axis to full height at this fraction of the width
# towards the inner side, and stays there to the inner edge.
ARCH_RISE_START, ARCH_RISE_END = -0.02, 0.26
# The heel cup rim keeps its full height back from this fraction of the length and fades out by the next.
CUP_FULL, CUP_END = 0.18, 0.45
MIN_RAISED = 1.0
"""Lowest arch support or heel cup (mm) worth printing; below it a feature is 0 or refused."""


class InsoleParams(FootParams):
    thickness: Mm = length(3, ge=1.5, le=8, step=0.5, order=5,
                           description="Thickness of the flat base under the ball and toes.")
    arch_height: Mm = length(10, ge=0, le=25, step=0.5, order=6,
                             description="How far the arch support rises above the base under the inner arch; "
                                         "0 for a flat insole.")
    heel_cup_depth: Mm = length(8, ge=0, le=20, step=0.5, order=7,
                                description="Height of the rim around the heel above the base, which keeps the "
                                            "heel centred; 0 for no heel cup.")
    length_allowance: Mm = length(5, ge=0, le=20, step=0.5, order=8, group="Options",
                                  description="Extra length in front of the toes so the insole fills the shoe; the "
                                              "insole is the foot length plus this.")
    heel_cup_wall: Mm = length(5, ge=3, le=10, step=0.5, order=9, group="Options",
                               description="Thickness of the heel cup rim wall.")

    def insole_length(self) -> float:
        """Length of the insole from heel to toe (mm): the foot plus the length allowance."""
        return self.foot_length + self.length_allowance

    def total_height(self) -> float:
        """Height of the insole's highest point above the floor (mm)."""
        return self.thickness + max(self.arch_height, self.heel_cup_depth)

    @rule("arch_height", "foot_length")
    def _arch_not_too_steep(self) -> str | None:
        if self.arch_height > 0.1 * self.foot_length:
            return (f"an arch support {self.arch_height:g} mm high is too steep for a {self.foot_length:g} mm foot; "
                    f"keep it to a tenth of the foot length ({0.1 * self.foot_length:.1f} mm)")
        return None


    @rule("arch_height")
    def _arch_printable(self) -> str | None:
        if 0 < self.arch_height < MIN_RAISED:
            return (f"an arch support lower than {MIN_RAISED:g} mm is too thin to print and would not be felt; "
                    f"use 0 for a flat insole or at least {MIN_RAISED:g} mm")
        return None

    @rule("heel_cup_depth")
    def _heel_cup_printable(self) -> str | None:
        if 0 < self.heel_cup_depth < MIN_RAISED:
            return (f"a heel cup lower than {MIN_RAISED:g} mm is too thin to print and would not hold the heel; "
                    f"use 0 for none or at least {MIN_RAISED:g} mm")
        return None


@register
class Insole(PairedTemplate):
    id = "insole"
    version = "1.1.0"
    name = "Insole"
    family = "footwear"
    process = ("fdm",)
    materials = ("tpu", "pa12", "petg")
    description = ("A foot-shaped insole sized from your foot or shoe size, with a raised support under the inner "
                   "arch and a rim that cups the heel. Printed flexible in TPU for everyday shoes.")
    Params = InsoleParams
    presets = {
        "eu42-regular": Preset("EU 42 regular foot", {"shoe_size": "EU 42", "foot_width": 100},
                               description="An average men's foot with a medium arch."),
        "eu44-wide-high-arch": Preset("EU 44 wide foot, high arch",
                                      {"shoe_size": "EU 44", "foot_width": 112, "arch_height": 15,
                                       "heel_cup_depth": 10},
                                      description="A broad forefoot that needs more arch support."),
        "us-w8-narrow": Preset("US W 8 narrow foot, low arch",
                               {"shoe_size": "US W 8", "foot_width": 86, "arch_height": 6, "heel_cup_depth": 6,
                                "thickness": 2.5},
                               description="A slim women's foot in a close-fitting shoe."),
        "uk10-running": Preset("UK 10 running shoe, deep heel cup",
                               {"shoe_size": "UK 10", "foot_width": 104, "arch_height": 12, "heel_cup_depth": 14,
                                "thickness": 4, "side": "left"},
                               description="A firmer, deeper heel cup for running (left foot).", material="pa12"),
    }

    def build_one(self, p: InsoleParams) -> Any:
        import cadquery as cq

        insole_length, width, t = p.insole_length(), p.foot_width, p.thickness
        outline = foot_outline(insole_length, width, p.side)
        top = p.total_height() + 5
        base = cq.Solid.makeBox(insole_length + 10, 2 * width, t + 1, pnt=cq.Vector(-5, -width, -1))
        pieces = []

        if p.arch_height > 0:
            # The support is the common part of a lengthwise bump and a crosswise ramp towards the inner side.
            # Both start below the base top so they cross it at an angle rather than touching it tangentially.
            h = t + p.arch_height
            m = medial_sign(p.side)
            start, peak, end = (insole_length * f for f in (ARCH_START, ARCH_PEAK, ARCH_END))
            rise_start, rise_end, beyond = (m * width * f for f in (ARCH_RISE_START, ARCH_RISE_END, 1.0))
            # Each piece only spans where the other one is, so the booleans meet few faces of the outline.
            low_y, high_y = sorted((2 * rise_start, beyond))
            lengthwise = side_profile((start, t / 2), [
                s_curve((start, t / 2), (peak, h)),
                s_curve((peak, h), (end, t / 2)),
                ((end, t / 4),),
                ((start, t / 4),),
            ], "XZ", low_y, high_y)
            crosswise = side_profile((rise_start, t / 5), [
                ((rise_start, t / 3),),
                s_curve((rise_start, t / 3), (rise_end, h)),
                ((beyond, h),),
                ((beyond, t / 5),),
            ], "YZ", start - 1, end + 1)
            pieces.append(lengthwise.intersect(crosswise))

        if p.heel_cup_depth > 0:
            # A wall profile, full height around the heel and sinking into the base towards the midfoot, with
            # the heel pocket (the outline shrunk by the wall thickness about the heel centre) taken out.
            rim_top = t + p.heel_cup_depth
            full, end = insole_length * CUP_FULL, insole_length * CUP_END
            wall = side_profile((-5, t / 4), [
                ((-5, rim_top),),
                ((full, rim_top),),
                s_curve((full, rim_top), (end, t / 2)),
                ((end, t / 4),),
            ], "XZ", -width, width)
            pocket = heel_pocket(outline, insole_length, width, p.heel_cup_wall)
            pieces.append(wall.cut(outline_prism(pocket, t / 8, top)))

        body = base.fuse(*pieces) if pieces else base
        return single_solid(outline_prism(outline, 0, top).intersect(body))

    def size_one(self, p: InsoleParams) -> tuple[float, float, float]:
        return (p.insole_length(), p.foot_width, p.total_height())

    def quality_checks(self, p: InsoleParams) -> list[Check]:
        checks = [
            Check("Insole length, heel to toe", p.insole_length(), 1.0),
            Check("Width across the ball", p.foot_width, 1.0),
            Check("Base thickness under the forefoot", p.thickness, 0.3),
        ]
        if p.arch_height > 0:
            checks.append(Check("Arch support top above the floor", p.thickness + p.arch_height, 0.5))
        if p.heel_cup_depth > 0:
            checks.append(Check("Heel cup rim top above the floor", p.thickness + p.heel_cup_depth, 0.5))
        return checks
