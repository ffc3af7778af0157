"""Nesting a router's parts on its stock: the sheet a material and thickness is cut from, the spacing its
cutter needs, and a flat part's true outline (outline, through cut-outs and through holes) from its CAM features.

The web app's batches and the command line call these, so a batch is laid out the way ``parametric nest``
lays out files. Millimetres throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shapely.geometry import Point, Polygon

from ..errors import FieldError, ValidationError
from ..machines import Router
from .layout import Layout, Part, Sheet
from .nesting import nest

CLEARANCE_MM = 2.0
"""Gap kept between two parts beyond the cutter's diameter (mm)."""
MARGIN_MM = 10.0
"""Border kept free at the sheet's edges (mm): clamps, and the sheet's own edge is rarely square."""
HOLE_SEGMENTS = 16
"""Segments per quarter circle of a through hole in the outline."""


def sheet_for(router: Router, material: str, thickness_mm: float) -> Sheet:
    """The stock sheet ``router`` cuts ``material`` at ``thickness_mm`` from, or a plain-words error."""
    for stock in router.stock:
        if stock.material == material and abs(stock.thickness_mm - thickness_mm) < 1e-6:
            return Sheet(float(stock.size_mm[0]), float(stock.size_mm[1]))
    stocked = ", ".join(f"{s.material} {s.thickness_mm:g} mm" for s in router.stock) or "nothing"
    raise ValidationError([FieldError("material", f"{router.name} stocks {stocked}, not {material} "
                                                  f"{thickness_mm:g} mm")])


def spacing_for(router: Router, clearance_mm: float = CLEARANCE_MM) -> float:
    """The least gap between two parts on ``router``: its widest end mill's diameter plus ``clearance_mm``."""
    mills = [tool.diameter_mm for tool in router.tools if tool.type != "drill"] or [
        tool.diameter_mm for tool in router.tools] or [0.0]
    return max(mills) + clearance_mm


def features_outline(features: Any) -> Polygon:
    """A flat part's true outline from its CAM features (:class:`~parametric.cnc.features.PartFeatures`): the
    outline with its through cut-outs and through holes as holes (pockets and blind bores leave the sheet whole)."""
    rings = [Polygon(cutout.exterior) for cutout in features.cutouts if getattr(cutout, "exterior", None)]
    rings += [Point(hole.center).buffer(hole.diameter / 2, quad_segs=HOLE_SEGMENTS)
              for hole in features.holes if hole.through]
    outline = Polygon(features.outline.exterior)
    holes = [ring for ring in rings if outline.contains(ring)]
    return Polygon(outline.exterior.coords, [ring.exterior.coords for ring in holes])


def nest_on_router(parts: Sequence[Part], router: Router, material: str, thickness_mm: float, *,
                   clearance_mm: float = CLEARANCE_MM, margin_mm: float = MARGIN_MM, part_in_part: bool = True,
                   seconds: float = 10.0) -> tuple[Layout, Sheet, float]:
    """``parts`` nested on ``router``'s stock of ``material`` at ``thickness_mm``: the layout, the sheet and the
    spacing used (its cutter plus ``clearance_mm``)."""
    sheet = sheet_for(router, material, thickness_mm)
    spacing = spacing_for(router, clearance_mm)
    layout = nest(parts, sheet, spacing_mm=spacing, margin_mm=margin_mm, part_in_part=part_in_part,
                  seconds=seconds)
    return layout, sheet, spacing
