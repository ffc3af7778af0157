"""Bookcase: a flat-pack carcass CNC-cut from sheet stock, joined with housed dados.

Two sides carry the top, the bottom and the fixed shelves in dados cut across their inner
faces; an optional thin back panel sits in a rebate along the back of the sides, top and
bottom. Every part is a flat sheet part: it lies on XY with its thickness along +Z and its
dados and rebates cut as pockets into its top face, so one CNC setup per sheet makes it.

Assembly coordinates: x across the width (left side at x = 0), y front (0) to back, z up.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from parametric.joinery import THIN_SHEET_THICKNESSES_MM
from parametric.part import Part
from parametric.registry import Check, Hardware, Preset, Template, register
from parametric.schema import LengthChoice, Mm, TemplateParams, choice, count, length, rule, switch

SHEET_THICKNESSES = (12, 15, 18, 19, 22)
MIN_CLEAR_OPENING = 100.0
"""Smallest clear height between shelves (mm): a hand and a paperback must fit."""
MAX_SPAN_PER_THICKNESS = 50.0
"""A shelf loaded with books sags visibly beyond about 50 times its thickness between supports."""
MIN_END_INSET = 20.0
"""Side material left beyond an end dado (mm); a thinner strip splits off along the grain."""


SheetMm = Annotated[Literal[12, 15, 18, 19, 22], LengthChoice]
BackMm = Annotated[Literal[THIN_SHEET_THICKNESSES_MM], LengthChoice]


class BookcaseParams(TemplateParams):
    height: Mm = length(1800, ge=300, le=2400, step=10, order=1,
                       description="Overall height of the bookcase, floor to top.")
    width: Mm = length(800, ge=300, le=1140, step=10, order=2,
                       description="Overall width, outside of one side to outside of the other.")
    depth: Mm = length(280, ge=150, le=600, step=5, order=3,
                       description="Overall depth, front edge to back.")
    shelf_count: int = count(4, ge=1, le=8, order=4,
                             description="Number of fixed shelves between the top and the bottom, evenly spaced.")
    sheet_thickness: SheetMm = choice(18, choices=SHEET_THICKNESSES, unit="mm", group="Dimensions", order=5, sheet=True,
                                      description="Thickness of the sheet the sides, top, bottom and shelves "
                                                  "are cut from.")
    dado_depth: Mm = length(6, ge=3, le=11, step=0.5, order=6, group="Joinery",
                            description="How deep the dados for the shelves, top and bottom (and the back "
                                        "rebate) are cut into the panels.")
    end_inset: Mm = length(0, ge=0, le=150, step=5, order=7, group="Joinery",
                           description="How far the top and bottom sit in from the ends of the sides (the same at "
                                       "both ends). 0 sets them flush; more raises the bottom off the floor.")
    back_panel: bool = switch(True, order=8,
                              description="Add a thin back panel in a rebate at the back; it also keeps the "
                                          "carcass square.")
    back_thickness: BackMm = choice(6, choices=THIN_SHEET_THICKNESSES_MM, unit="mm", group="Dimensions", order=9,
                                    sheet="back_panel",
                                    description="Thickness of the back panel sheet (plywood or hardboard), as "
                                                "stocked.")

    # -- derived layout (mm, assembly coordinates) ------------------------------------

    @property
    def thickness(self) -> float:
        return float(self.sheet_thickness)

    @property
    def back_depth(self) -> float:
        """Room the back panel takes at the back of the carcass (0 without a back)."""
        return float(self.back_thickness) if self.back_panel else 0.0

    @property
    def dado_width(self) -> float:
        """Width the dados are cut: the sheet's thickness plus the fit allowance (measured sheet, on a router
        that knows it)."""
        return self.fit.width(self.thickness)

    @property
    def rebate_width(self) -> float:
        """Width of the back rebate: the back panel's thickness plus the fit allowance (0 without a back)."""
        return self.fit.width(self.back_thickness) if self.back_panel else 0.0

    def dado_edges(self) -> list[tuple[float, float]]:
        """(lower, upper) height above the floor of every dado in a side, bottom first: each panel's place
        widened (or narrowed, for thinner sheet) by the same amount on both sides, so the layout still reads
        the same from either end of the side."""
        extra = (self.dado_width - self.thickness) / 2
        return [(z - extra, z + self.thickness + extra) for z in self.dado_positions()]

    @property
    def panel_length(self) -> float:
        """Length of the top, bottom and shelves: the inside width plus a dado at each end."""
        return self.width - 2 * self.thickness + 2 * self.dado_depth

    @property
    def shelf_depth(self) -> float:
        return self.depth - self.back_depth

    @property
    def interior_height(self) -> float:
        """Clear height between the bottom's top face and the top's underside."""
        return self.height - 2 * self.end_inset - 2 * self.thickness

    @property
    def clear_opening(self) -> float:
        """Clear height of each of the equal openings between bottom, shelves and top."""
        return (self.interior_height - self.shelf_count * self.thickness) / (self.shelf_count + 1)

    def shelf_positions(self) -> list[float]:
        """Height of each shelf's underside above the floor, lowest first."""
        first = self.end_inset + self.thickness
        pitch = self.clear_opening + self.thickness
        return [first + self.clear_opening + i * pitch for i in range(self.shelf_count)]

    def dado_positions(self) -> list[float]:
        """Height above the floor of the lower edge of every dado in a side: bottom, shelves, top."""
        return [self.end_inset, *self.shelf_positions(), self.height - self.end_inset - self.thickness]

    @property
    def back_height(self) -> float:
        """Height of the back panel: between the rebates in the bottom and the top."""
        return self.interior_height + 2 * self.dado_depth

    # -- rules -------------------------------------------------------------------------

    @rule("dado_depth", "sheet_thickness")
    def _dado_leaves_half(self) -> str | None:
        if self.dado_depth > self.thickness / 2:
            return (f"a {self.dado_depth:g} mm dado would leave less than half of the {self.thickness:g} mm side "
                    f"panel, which then cracks along the dado; use at most {self.thickness / 2:g} mm")
        return None

    @rule("shelf_count", "height")
    def _shelves_leave_room(self) -> str | None:
        if self.clear_opening < MIN_CLEAR_OPENING:
            most = int((self.interior_height - MIN_CLEAR_OPENING) // (MIN_CLEAR_OPENING + self.thickness))
            if most >= 1:
                hint = f"use at most {most} shel{'f' if most == 1 else 'ves'}"
            else:
                hint = "make the bookcase taller or lower the end inset"
            return (f"{self.shelf_count} shelves in a {self.height:g} mm bookcase leave only "
                    f"{max(self.clear_opening, 0):.0f} mm between shelves; at least {MIN_CLEAR_OPENING:g} mm is "
                    f"needed, so {hint}")
        return None

    @rule("width", "sheet_thickness")
    def _shelves_do_not_sag(self) -> str | None:
        span = self.width - 2 * self.thickness
        limit = MAX_SPAN_PER_THICKNESS * self.thickness
        if span > limit:
            return (f"a {self.thickness:g} mm shelf spanning {span:g} mm between the sides sags under books; "
                    f"keep the width at most {limit + 2 * self.thickness:g} mm or use thicker sheet")
        return None

    @rule("end_inset")
    def _end_strip_holds(self) -> str | None:
        if 0 < self.end_inset < MIN_END_INSET:
            return (f"a {self.end_inset:g} mm strip of side beyond the top and bottom dados would split off; "
                    f"use 0 (flush) or at least {MIN_END_INSET:g} mm")
        return None


@register
class Bookcase(Template):
    id = "bookcase"
    version = "1.1.0"
    name = "Bookcase"
    family = "furniture"
    process = ("cnc",)
    materials = ("birch_plywood", "mdf", "oak", "pine")
    description = ("A flat-pack bookcase CNC-cut from sheet stock: two sides with housed dados carry the top, "
                   "the bottom and evenly spaced fixed shelves, with an optional back panel in a rebate.")
    Params = BookcaseParams
    groups = ("Dimensions", "Joinery", "Options")
    presets = {
        "billy-depth": Preset("IKEA Billy-depth bookcase",
                              {"height": 2020, "width": 800, "depth": 280, "shelf_count": 5,
                               "sheet_thickness": 18},
                              description="Tall living-room bookcase, 28 cm deep like the classic Billy."),
        "paperback": Preset("Paperback shelf",
                            {"height": 1000, "width": 600, "depth": 180, "shelf_count": 4,
                             "sheet_thickness": 15, "dado_depth": 5, "back_thickness": 4},
                            description="Shallow case for paperbacks and DVDs."),
        "low-kids": Preset("Low children's bookcase",
                           {"height": 760, "width": 900, "depth": 300, "shelf_count": 1,
                            "sheet_thickness": 18, "end_inset": 50},
                           description="Two wide openings a child can reach, bottom raised off the floor.",
                           material="birch_plywood"),
    }

    def build(self, p: BookcaseParams) -> list[Part]:
        import cadquery as cq

        t, dado, inset = p.thickness, p.dado_depth, p.end_inset
        height, depth = p.height, p.depth
        over = 1.0  # pocket tools run past open edges so no sliver faces are left

        def board(length_: float, width_: float, thick: float, pockets: list[tuple[float, float, float, float]]
                  ) -> cq.Workplane:
            """A flat board [0, length] x [0, width] x [0, thick] with pockets (x0, x1, y0, y1) `dado` deep."""
            solid = cq.Solid.makeBox(length_, width_, thick)
            if pockets:
                # Separate tools, not one compound: the tools overlap each other (the back rebate
                # crosses every dado), which a single compound argument must not do.
                tools = [cq.Solid.makeBox(x1 - x0, y1 - y0, dado + over, cq.Vector(x0, y0, thick - dado))
                         for x0, x1, y0, y1 in pockets]
                solid = solid.cut(*tools).clean()
            return cq.Workplane("XY").add(solid)

        # Side, in its own coordinates: x runs up the side from the floor, y from front to back,
        # the dados are in the face at z = t. The layout is the same read from either end, so one
        # program cuts both sides; the left one is the right one turned end over end.
        side_pockets = []
        for z0, z1 in p.dado_edges():
            low = -over if z0 <= 1e-6 else z0
            high = height + over if z1 >= height - 1e-6 else z1
            side_pockets.append((low, high, -over, depth + over))
        if p.back_panel:
            side_pockets.append((inset + t - dado, height - inset - t + dado, depth - p.rebate_width, depth + over))
        side = board(height, depth, t, side_pockets)

        # Top and bottom are one design: the back rebate runs along the face that looks into the case.
        end_pockets = ([(-over, p.panel_length + over, depth - p.rebate_width, depth + over)] if p.back_panel
                       else [])
        top = board(p.panel_length, depth, t, end_pockets)
        bottom = board(p.panel_length, depth, t, end_pockets)
        shelf = board(p.panel_length, p.shelf_depth, t, [])

        # The grain runs along each panel's length (its X): up the sides, across the top, bottom and
        # shelves, where it also carries the books. The hidden back may lie any way.
        y_axis, x_axis = cq.Vector(0, 1, 0), cq.Vector(1, 0, 0)
        panel_x = t - dado
        parts = [
            Part("side", side, quantity=2, flat=True, thickness=t, process="cnc", grain="x",
                 notes="Cut two; dados face inwards.",
                 placements=[cq.Location(cq.Vector(0, 0, height), y_axis, 90),
                             cq.Location(cq.Vector(p.width, 0, 0), y_axis, -90)]),
            Part("top", top, flat=True, thickness=t, process="cnc", grain="x", notes="Rebate faces down, at the back.",
                 placements=[cq.Location(cq.Vector(p.width - panel_x, 0, height - inset), y_axis, 180)]),
            Part("bottom", bottom, flat=True, thickness=t, process="cnc", grain="x",
                 notes="Rebate faces up, at the back.",
                 placements=[cq.Location(cq.Vector(panel_x, 0, inset))]),
            Part("shelf", shelf, quantity=p.shelf_count, flat=True, thickness=t, process="cnc", grain="x",
                 placements=[cq.Location(cq.Vector(panel_x, 0, z)) for z in p.shelf_positions()]),
        ]
        if p.back_panel:
            back = board(p.panel_length, p.back_height, p.back_depth, [])
            parts.append(Part("back", back, flat=True, thickness=p.back_depth, process="cnc",
                              notes="Thin sheet (plywood or hardboard); glue or pin into the rebates.",
                              placements=[cq.Location(cq.Vector(panel_x, depth, inset + t - dado), x_axis, 90)]))
        return parts

    def cut_list(self, p: BookcaseParams) -> list[dict[str, Any]]:
        """One row per part for the job sheet: quantity and finished size in mm, with a material note."""
        t = p.thickness
        sheet = f"{t:g} mm sheet"
        dados = p.shelf_count + 2
        rebate = f"; back rebate {p.rebate_width:g} x {p.dado_depth:g} mm" if p.back_panel else ""
        rows = [
            {"part": "side", "quantity": 2, "length": p.height, "width": p.depth, "thickness": t,
             "note": f"{sheet}; {dados} dados {p.dado_width:g} mm wide x {p.dado_depth:g} mm deep on the inner "
                     f"face{rebate}"},
            {"part": "top", "quantity": 1, "length": p.panel_length, "width": p.depth, "thickness": t,
             "note": sheet + rebate},
            {"part": "bottom", "quantity": 1, "length": p.panel_length, "width": p.depth, "thickness": t,
             "note": sheet + rebate},
            {"part": "shelf", "quantity": p.shelf_count, "length": p.panel_length, "width": p.shelf_depth,
             "thickness": t, "note": sheet},
        ]
        if p.back_panel:
            rows.append({"part": "back", "quantity": 1, "length": p.panel_length, "width": p.back_height,
                         "thickness": p.back_depth,
                         "note": f"{p.back_depth:g} mm plywood or hardboard back panel"})
        return rows

    def expected_size(self, p: BookcaseParams) -> tuple[float, float, float]:
        return (p.width, p.depth, p.height)

    def hardware(self, p: BookcaseParams) -> list[Hardware]:
        found = [Hardware("wood glue (PVA)", 1, f"for {2 * (p.shelf_count + 2)} dado joints")]
        if p.back_panel:
            perimeter = 2 * (p.panel_length + p.back_height)
            found.append(Hardware("25 mm panel pin or 18 gauge brad", math.ceil(perimeter / 100),
                                  f"every 100 mm round the {p.back_thickness:g} mm back, into the rebates"))
        if p.height >= 1000:
            found.append(Hardware("furniture anti-tip strap with wall plug and screws", 1,
                                  f"a {p.height:g} mm bookcase must be fixed to the wall"))
        return found

    def assembly(self, p: BookcaseParams) -> list[str]:
        steps = ["Dry-fit every shelf, the top and the bottom into one side's dados, rebates to the back",
                 "Glue the dados and close the other side on; clamp and check the diagonals are equal (square)"]
        if p.back_panel:
            steps.append("Lay the case face down, drop the back into the rebates and pin it every 100 mm")
        steps.append("Wipe off squeezed-out glue; leave clamped for an hour")
        if p.height >= 1000:
            steps.append("Stand it up and fix it to the wall with the anti-tip strap")
        return steps

    def quality_checks(self, p: BookcaseParams) -> list[Check]:
        positions = p.dado_positions()
        return [
            Check("Side length (height)", p.height, 1.0),
            Check("Side width (depth)", p.depth, 1.0),
            Check("Top, bottom and shelf length", p.panel_length, 0.5),
            Check("Dado width (the sheet plus the fit allowance)", p.dado_width, 0.1),
            Check("Dado depth", p.dado_depth, 0.3),
            Check("Dado pitch, lower edge to lower edge", positions[2] - positions[1], 0.5),
            Check("Clear opening between shelves", p.clear_opening, 1.0),
        ]
