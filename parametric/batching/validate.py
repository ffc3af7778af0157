"""The independent check of a nested layout, before anything is cut.

It knows nothing of the engine that made the layout: it rebuilds every placed part from its
outline with shapely and measures. Problems: two parts closer than the spacing (or overlapping),
a part outside the sheet minus its margin, a turn the part does not allow, a part inside another
part's cut-out when part-in-part is off, and a copy placed twice, missing or not accounted for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from shapely import STRtree
from shapely.geometry import Polygon, box

from ..errors import ParametricError
from .layout import Layout, Part

TOLERANCE_MM = 1e-3
"""How much closer than the spacing, or how far past the margin, a part may be (float rounding)."""


class LayoutError(ParametricError):
    """A layout failed the independent check; ``problems`` says where, in plain words."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        more = len(self.problems) - 5
        shown = "; ".join(self.problems[:5]) + (f"; and {more} more" if more > 0 else "")
        super().__init__(f"the nested layout failed its check: {shown}")


def _turn_allowed(rotation_deg: float, allowed: tuple[float, ...] | None) -> bool:
    if allowed is None:
        return math.isfinite(rotation_deg)
    return any(abs((rotation_deg - turn + 180.0) % 360.0 - 180.0) < 1e-6 for turn in allowed)


def check_layout(layout: Layout, parts: Sequence[Part], *, spacing_mm: float, margin_mm: float,
                 part_in_part: bool = True, tolerance_mm: float = TOLERANCE_MM) -> list[str]:
    """Every problem of ``layout`` for ``parts`` (empty when it may be cut)."""
    problems: list[str] = []
    seen: set[tuple[int, int]] = set()

    def label(part: int, copy: int) -> str:
        return f"{parts[part].name} copy {copy}" if 0 <= part < len(parts) else f"part #{part} copy {copy}"

    for sheet in layout.sheets:
        size = sheet.sheet
        usable = box(margin_mm, margin_mm, size.length_mm - margin_mm, size.width_mm - margin_mm).buffer(
            tolerance_mm, join_style="mitre")
        polygons: list[Polygon] = []
        names: list[str] = []
        for placement in sheet.placements:
            key = (placement.part, placement.copy)
            if not 0 <= placement.part < len(parts) or not 1 <= placement.copy <= parts[placement.part].count:
                problems.append(f"sheet {sheet.index}: {label(*key)} is not a copy of any part")
                continue
            if key in seen:
                problems.append(f"sheet {sheet.index}: {label(*key)} is placed more than once")
            seen.add(key)
            part = parts[placement.part]
            if not _turn_allowed(placement.rotation_deg, part.rotations):
                problems.append(f"sheet {sheet.index}: {label(*key)} is turned {placement.rotation_deg:g}°; "
                                f"allowed: {', '.join(f'{turn:g}°' for turn in part.rotations or ())}")
            polygon = placement.polygon(part.outline)
            if not usable.covers(polygon):
                problems.append(f"sheet {sheet.index}: {label(*key)} is outside the sheet minus its "
                                f"{margin_mm:g} mm margin (bounds {', '.join(f'{v:.2f}' for v in polygon.bounds)})")
            polygons.append(polygon)
            names.append(label(*key))
        tree = STRtree(polygons)
        reach = max(spacing_mm - tolerance_mm, 0.0)
        for first, second in zip(*tree.query(polygons, predicate="dwithin", distance=reach), strict=True):
            if first >= second:
                continue
            a, b = polygons[first], polygons[second]
            if a.intersection(b).area > tolerance_mm ** 2:
                problems.append(f"sheet {sheet.index}: {names[first]} and {names[second]} overlap")
            elif (gap := a.distance(b)) < reach:
                problems.append(f"sheet {sheet.index}: {names[first]} and {names[second]} are {gap:.2f} mm apart; "
                                f"the spacing is {spacing_mm:g} mm")
        if not part_in_part:
            solid = [Polygon(polygon.exterior) for polygon in polygons]
            for first, second in zip(*STRtree(solid).query(polygons, predicate="within"), strict=True):
                if first != second and polygons[second].interiors:
                    problems.append(f"sheet {sheet.index}: {names[first]} sits in {names[second]}'s cut-out, "
                                    "and part-in-part is off")
    for item in layout.unplaced:
        key = (item.part, item.copy)
        if key in seen:
            problems.append(f"{label(*key)} is both placed and listed as unplaced")
        seen.add(key)
    for index, part in enumerate(parts):
        missing = [copy for copy in range(1, part.count + 1) if (index, copy) not in seen]
        if missing:
            problems.append(f"{part.name}: copies {', '.join(map(str, missing))} are neither placed nor unplaced")
    return problems


def validate_layout(layout: Layout, parts: Sequence[Part], *, spacing_mm: float, margin_mm: float,
                    part_in_part: bool = True, tolerance_mm: float = TOLERANCE_MM) -> Layout:
    """``layout`` if it passes :func:`check_layout`; otherwise raise :class:`LayoutError` with every problem."""
    problems = check_layout(layout, parts, spacing_mm=spacing_mm, margin_mm=margin_mm, part_in_part=part_in_part,
                            tolerance_mm=tolerance_mm)
    if problems:
        raise LayoutError(problems)
    return layout
