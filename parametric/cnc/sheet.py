"""A nested sheet as one router job: every part's operations moved to where the nesting put it,
in one cutting order, written as the sheet's DXF and G-code.

Each part is planned once in its own coordinates (:func:`.planner.plan`); a placement turns its
toolpaths, shapes and holes about the part's origin and moves them onto the sheet. The order keeps
the sheet holding every part until it is cut free:

- tool by tool, each tool once per sheet, in the order the tools are first needed, the outlines'
  tool last (as for one part);
- within a tool, a part sitting in another part's cut-out first (its host's opening would free the
  material it is cut from), then inner features (holes, pockets, bores, openings) before outlines,
  and small parts before large ones (a small part cut free early moves least, and the large ones
  around it still hold the sheet down);
- through cuts keep the tabs the planner left on them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..machines import Router
from .dxf import Label, sheet_dxf
from .features import PartFeatures
from .gcode import Program, write_gcode
from .planner import CamSettings, Operation, Toolpath

OUTLINE_KINDS = ("profile_outside",)
"""Operations that cut a part free of the sheet."""
ORIGIN = "X0 Y0 = sheet lower-left corner; Z0 = sheet top"


@dataclass(frozen=True)
class PlacedPart:
    """One copy of a planned part on the sheet: turned ``rotation_deg`` about its own origin, then moved
    by (``x_mm``, ``y_mm``). ``inside``: it sits in another part's cut-out."""

    label: str
    features: PartFeatures
    operations: Sequence[Operation]
    rotation_deg: float
    x_mm: float
    y_mm: float
    inside: bool = False

    def transform(self, x: float, y: float) -> tuple[float, float]:
        """A point of the part's own coordinates in sheet coordinates (mm)."""
        cos, sin = math.cos(math.radians(self.rotation_deg)), math.sin(math.radians(self.rotation_deg))
        return cos * x - sin * y + self.x_mm, sin * x + cos * y + self.y_mm

    def outline(self) -> Any:
        """The part's outline on the sheet (shapely, openings included)."""
        from shapely import affinity

        return affinity.translate(affinity.rotate(self.features.outline, self.rotation_deg, origin=(0, 0)),
                                  self.x_mm, self.y_mm)

    def moved(self, operation: Operation) -> Operation:
        """``operation`` in sheet coordinates, its description naming the part."""
        from shapely import affinity

        def geometry(shape: Any) -> Any:
            return affinity.translate(affinity.rotate(shape, self.rotation_deg, origin=(0, 0)), self.x_mm, self.y_mm)

        path = Toolpath([(kind, (*self.transform(x, y), z)) for kind, (x, y, z) in operation.path.moves])
        return replace(operation, path=path, shapes=[geometry(shape) for shape in operation.shapes],
                       circles=[(self.transform(*centre), diameter) for centre, diameter in operation.circles],
                       description=f"{self.label}: {operation.description}")


@dataclass
class SheetProgram:
    """What CAM made of one nested sheet: its operations in cutting order, DXF, programs and time."""

    operations: list[Operation]
    programs: list[Program]
    dxf: Path
    tool_change_s: float = 60.0
    verified_moves: int | None = None
    """Canonical moves rs274 made of the programs, when they were checked."""
    tools: list[int] = field(default_factory=list)

    @property
    def time_s(self) -> float:
        """The sheet's machining time: every program, and a tool change between one-tool programs."""
        return sum(p.time_s for p in self.programs) + max(0, len(self.programs) - 1) * self.tool_change_s


def cutting_order(parts: Sequence[PlacedPart]) -> list[Operation]:
    """Every operation of ``parts`` in sheet coordinates, in the order the module doc gives."""
    tools: list[int] = []
    outline_tools: list[int] = []
    for part in parts:
        for operation in part.operations:
            chosen = outline_tools if operation.kind in OUTLINE_KINDS else tools
            if operation.tool.number not in chosen:
                chosen.append(operation.tool.number)
    order = [number for number in tools if number not in outline_tools] + outline_tools
    ranked: list[tuple[tuple[int, int, int, float, int, int], Operation]] = []
    for index, part in enumerate(parts):
        area = float(part.features.outline.area)
        for step, operation in enumerate(part.operations):
            outline = operation.kind in OUTLINE_KINDS
            key = (order.index(operation.tool.number), 0 if part.inside else 1, int(outline), area, index, step)
            ranked.append((key, part.moved(operation)))
    return [operation for _, operation in sorted(ranked, key=lambda entry: entry[0])]


def label_height(polygon: Any) -> float:
    """Text height (mm) that fits a part's label inside it: 3 to 25 mm."""
    minx, miny, maxx, maxy = polygon.bounds
    return max(3.0, min(25.0, (maxy - miny) / 6, (maxx - minx) / 14))


def cam_sheet(parts: Sequence[PlacedPart], router: Router, material: str, thickness: float,
              sheet_mm: tuple[float, float], out_dir: str | Path, stem: str, *,
              settings: CamSettings | None = None, header: Sequence[str] = ()) -> SheetProgram:
    """The DXF (``<stem>.dxf``) and G-code of one nested sheet of ``parts`` on ``router``, into ``out_dir``.

    The dialect decides the programs, as for one part: one program changing tools (LinuxCNC), or one
    per tool (GRBL: ``<stem>-<n>-T<tool>.nc``), each tool once. The tool table is not written here:
    a folder of sheets has one, listing every tool (:func:`.gcode.write_tool_table`).
    """
    settings = settings or CamSettings()
    out = Path(out_dir)
    operations = cutting_order(parts)
    labels: list[Label] = []
    for part in parts:
        outline = part.outline()
        spot = outline.point_on_surface()
        labels.append((part.label, (spot.x, spot.y), label_height(outline)))
    dxf = sheet_dxf(operations, out / f"{stem}.dxf", sheet_mm, labels)
    programs = write_gcode(operations, router, out, stem, material=material, thickness=thickness,
                           settings=settings, header=header, offset_mm=(0.0, 0.0), origin=ORIGIN)
    tools = list(dict.fromkeys(operation.tool.number for operation in operations))
    return SheetProgram(operations, programs, dxf, settings.tool_change_s, tools=tools)
