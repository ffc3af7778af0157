"""Pairs: a left and a right from one configuration, made as two parts.

A footwear template builds one foot (``build_one``, for ``params.side`` of ``"left"`` or
``"right"``) and says its size (``size_one``); :class:`PairedTemplate` turns ``side="pair"``
into two parts, the left one built from the mirrored outline, laid side by side with a gap
between them, so that each is rendered, checked, sliced, priced and made on its own.
"""

from __future__ import annotations

from typing import Any

from parametric.part import Part
from parametric.registry import Template

from .sizing import FootParams

PAIR_GAP = 20.0
"""Space (mm) between the left and the right part where the pair is shown together."""


class PairedTemplate(Template):
    """A footwear template made for one foot, or for both as a pair of mirrored parts."""

    def build_one(self, params: Any) -> Any:
        """The geometry for one foot (``params.side`` is ``"left"`` or ``"right"``); pure, no I/O."""
        raise NotImplementedError

    def size_one(self, params: Any) -> tuple[float, float, float]:
        """The size (mm) one foot's part promises: length, width, height."""
        raise NotImplementedError

    def build(self, params: FootParams) -> Any:
        if params.side != "pair":
            return self.build_one(params)
        import cadquery as cq

        parts = []
        for side in ("left", "right"):
            shape = self.build_one(params.for_side(side))
            box = shape.BoundingBox()
            # The right foot to +y of the gap, the left one (its mirror image) to -y.
            shift = PAIR_GAP / 2 - box.ymin if side == "right" else -PAIR_GAP / 2 - box.ymax
            parts.append(Part(name=f"{side}_{self.id}", shape=shape,
                              placements=[cq.Location(cq.Vector(0, shift, 0))],
                              notes=f"For the {side} foot."))
        return parts

    def expected_size(self, params: FootParams) -> tuple[float, float, float]:
        length, width, height = self.size_one(params.for_side("right") if params.side == "pair" else params)
        if params.side == "pair":
            return (length, 2 * width + PAIR_GAP, height)
        return (length, width, height)
