"""Batching: many parts on few sheets.

``nesting`` places true-shape outlines (with their holes) on sheets, ``validate`` checks any
layout independently before anything is cut, ``outlines`` reads parts from DXF files and
``output`` writes a nested sheet as DXF, SVG and PNG. Millimetres and degrees throughout.
"""

from .layout import FOUR_WAY, GRAIN, Layout, Part, Placement, Sheet, SheetLayout, Unplaced
from .nesting import nest
from .validate import LayoutError, check_layout, validate_layout

__all__ = ["FOUR_WAY", "GRAIN", "Layout", "LayoutError", "Part", "Placement", "Sheet", "SheetLayout", "Unplaced",
           "check_layout", "nest", "validate_layout"]
