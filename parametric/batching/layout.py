"""What nesting takes and gives: parts, sheets, placements and the layout of a whole job.

A placement turns the part's own outline (its drawing coordinates, in mm) by ``rotation_deg``
about the drawing origin and then moves it by ``(x_mm, y_mm)``. A sheet's length runs along X
from 0 and its width along Y from 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shapely import affinity
from shapely.geometry import Polygon

GRAIN: tuple[float, ...] = (0.0, 180.0)
"""The turns allowed to a part whose wood grain must run along the sheet (the grain lock)."""
FOUR_WAY: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)
"""The default turns: quarter turns."""


@dataclass(frozen=True)
class Part:
    """One flat part to cut: its outline with its holes (mm, as drawn), how many copies, and the
    turns allowed in degrees (``None``: any angle)."""

    name: str
    outline: Polygon
    count: int = 1
    rotations: tuple[float, ...] | None = FOUR_WAY


@dataclass(frozen=True)
class Sheet:
    """A stock sheet: its length (along X) and width (along Y) in mm."""

    length_mm: float
    width_mm: float

    @property
    def area_mm2(self) -> float:
        return self.length_mm * self.width_mm


@dataclass(frozen=True)
class Placement:
    """Where one copy (1-based) of ``parts[part]`` goes on its sheet; ``host`` is the (part, copy)
    whose cut-out it sits in, if any."""

    part: int
    copy: int
    x_mm: float
    y_mm: float
    rotation_deg: float
    host: tuple[int, int] | None = None

    def polygon(self, outline: Polygon) -> Polygon:
        """``outline`` turned and moved to this placement (mm, sheet coordinates)."""
        turned = affinity.rotate(outline, self.rotation_deg, origin=(0.0, 0.0))
        return affinity.translate(turned, self.x_mm, self.y_mm)


@dataclass(frozen=True)
class SheetLayout:
    """One sheet of a layout: its placements, the largest X a part reaches (mm) and the share of
    the sheet's area the parts cover (holes excluded)."""

    index: int
    sheet: Sheet
    placements: tuple[Placement, ...]
    used_length_mm: float
    utilisation: float


@dataclass(frozen=True)
class Unplaced:
    """A copy that is on no sheet, and why in plain words."""

    part: int
    copy: int
    reason: str


@dataclass(frozen=True)
class Layout:
    """A nested job: the sheets in cutting order (fill one, then the next) and the copies left out."""

    sheets: tuple[SheetLayout, ...]
    unplaced: tuple[Unplaced, ...] = ()
    engine: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def sheet_equivalents(self) -> float:
        """Full sheets plus the used share of the last one's length (the rest is an offcut)."""
        if not self.sheets:
            return 0.0
        last = self.sheets[-1]
        return len(self.sheets) - 1 + last.used_length_mm / last.sheet.length_mm

    @property
    def remnant_mm(self) -> tuple[float, float] | None:
        """The offcut of the last sheet beyond its last part: (length, width) in mm."""
        if not self.sheets:
            return None
        last = self.sheets[-1]
        return (max(0.0, last.sheet.length_mm - last.used_length_mm), last.sheet.width_mm)

    def placements(self) -> list[tuple[int, Placement]]:
        """Every placement with its sheet's index."""
        return [(sheet.index, placement) for sheet in self.sheets for placement in sheet.placements]
