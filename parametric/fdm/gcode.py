"""What a sliced G-code really does on the bed: the extent of every extruding move.

PrusaSlicer with a skirt or a brim extrudes beyond the parts, and it checks nothing against the
bed when told where things go; so every plate's G-code is read back and its extrusion compared
with the bed before the plate is offered (:func:`extrusion_bounds`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

_WORD = re.compile(rb"([XYEZ])(-?\d*\.?\d+)")


@dataclass(frozen=True)
class Bounds:
    """The rectangle (mm, bed coordinates) the nozzle extrudes within."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def inside(self, width: float, depth: float, tolerance: float = 0.05) -> bool:
        """Whether it lies on a bed of ``width`` x ``depth`` mm whose corner is the origin."""
        return (self.x_min >= -tolerance and self.y_min >= -tolerance and self.x_max <= width + tolerance
                and self.y_max <= depth + tolerance)


class Move(NamedTuple):
    """One extruding move: the object being printed (PrusaSlicer's ``; printing object NAME`` label, or None),
    the layer (1 is the first) and its height, what PrusaSlicer says it prints (its ``;TYPE:``, e.g.
    ``Overhang perimeter``), start and end, and the filament it pushes (mm)."""

    object: str | None
    layer: int
    height: float
    kind: str
    x0: float
    y0: float
    x1: float
    y1: float
    filament: float


def _extrusions(gcode: str | os.PathLike[str], layers: int | None = None) -> Iterator[Move]:
    """Every extruding move (``G1`` with the filament going forward and the nozzle moving) in the file or its
    first ``layers`` layers. Follows absolute and relative extrusion (M82/M83), ``G92`` resets and absolute
    or relative positioning (G90/G91)."""
    x = y = e = 0.0
    relative_e = relative_xy = False
    changes = 0
    height = 0.0
    kind = ""
    current: str | None = None
    with open(gcode, "rb") as stream:  # read lazily: a first-layer check stops early
        for raw in stream:
            line = raw.rstrip()
            if line.startswith(b";LAYER_CHANGE"):
                changes += 1
                if layers is not None and changes > layers:
                    break
            elif line.startswith(b";TYPE:"):
                kind = line[6:].decode("utf-8", "replace")
            elif line.startswith(b";HEIGHT:"):
                height = float(line[8:])
            elif line.startswith(b"; printing object "):
                current = _label(line[len(b"; printing object "):])
            elif line.startswith(b"; stop printing object"):
                current = None
            elif line[:3] in (b"G1 ", b"G0 "):
                new_x, new_y, pushed = x, y, 0.0
                for word in line.split(b";", 1)[0].split()[1:]:
                    letter = word[:1]
                    if letter == b"X":
                        new_x = float(word[1:]) + (x if relative_xy else 0.0)
                    elif letter == b"Y":
                        new_y = float(word[1:]) + (y if relative_xy else 0.0)
                    elif letter == b"E":
                        value = float(word[1:])
                        pushed = value if relative_e else value - e
                        e = e + value if relative_e else value
                if pushed > 1e-9 and line[1:2] == b"1" and (new_x != x or new_y != y):
                    yield Move(current, changes, height, kind, x, y, new_x, new_y, pushed)
                x, y = new_x, new_y
            elif line.startswith(b"G92"):
                words = dict(_WORD.findall(line))
                x = float(words.get(b"X", x))
                y = float(words.get(b"Y", y))
                e = float(words.get(b"E", e))
            elif line[:3] in (b"M82", b"M83"):
                relative_e = line[:3] == b"M83"
            elif line[:3] in (b"G90", b"G91"):
                relative_xy = line[:3] == b"G91"


def _label(text: bytes) -> str:
    """The object's name in ``NAME id:N copy M`` (PrusaSlicer 2.5's label comment)."""
    words = text.decode("utf-8", "replace").strip()
    match = re.match(r"^(.*?) id:\d+ copy \d+$", words)
    return match.group(1) if match else words


def extrusion_bounds(gcode: str | os.PathLike[str], layers: int | None = None) -> Bounds | None:
    """The extent of every move that extrudes (``G1`` with the filament going forward), start points
    included, in the whole file or its first ``layers`` layers (PrusaSlicer's ``;LAYER_CHANGE``
    marks: the skirt and brim are on the first); ``None`` when nothing is extruded. Follows absolute
    and relative extrusion (M82/M83), ``G92`` resets and absolute or relative positioning (G90/G91)."""
    x_min = y_min = float("inf")
    x_max = y_max = float("-inf")
    for move in _extrusions(gcode, layers):
        x_min, x_max = min(x_min, move.x0, move.x1), max(x_max, move.x0, move.x1)
        y_min, y_max = min(y_min, move.y0, move.y1), max(y_max, move.y0, move.y1)
    if x_min == float("inf"):
        return None
    return Bounds(x_min, y_min, x_max, y_max)


@dataclass
class ObjectExtrusion:
    """What a labelled G-code extrudes per object (filament mm and extent), and outside every object (the skirt,
    the brim, a purge line), with the extent of all of it."""

    objects: dict[str, tuple[float, Bounds]] = field(default_factory=dict)
    other_mm: float = 0.0
    overall: Bounds | None = None

    @property
    def objects_mm(self) -> float:
        return sum(filament for filament, _ in self.objects.values())


def object_extrusion(gcode: str | os.PathLike[str]) -> ObjectExtrusion:
    """Filament and extent per labelled object (``gcode_label_objects``) over the whole file, so a plate can be
    checked object by object and its estimates shared out by what each object really takes."""
    boxes: dict[str | None, list[float]] = {}
    for name, _, _, _, x0, y0, x1, y1, pushed in _extrusions(gcode):
        entry = boxes.setdefault(name, [float("inf"), float("inf"), float("-inf"), float("-inf"), 0.0])
        entry[0], entry[2] = min(entry[0], x0, x1), max(entry[2], x0, x1)
        entry[1], entry[3] = min(entry[1], y0, y1), max(entry[3], y0, y1)
        entry[4] += pushed
    found = ObjectExtrusion()
    for name, (x_min, y_min, x_max, y_max, filament) in boxes.items():
        if name is None:
            found.other_mm = filament
        else:
            found.objects[name] = (filament, Bounds(x_min, y_min, x_max, y_max))
    if boxes:
        found.overall = Bounds(min(b[0] for b in boxes.values()), min(b[1] for b in boxes.values()),
                               max(b[2] for b in boxes.values()), max(b[3] for b in boxes.values()))
    return found


SUPPORT_TYPES = ("Support material", "Support material interface")
SUPPORT_REACH_MM = 1.5
"""How far from a support line an overhang above it still counts as carried (the support's gap to the
part, PrusaSlicer's ``support_material_xy_spacing``, plus a line width)."""
SUPPORT_LAYERS_BELOW = 3
"""Layers below an overhang searched for the support under it (the contact gap is one layer or two)."""
FIRST_LAYER_SKIPPED = ("Skirt/Brim", "Custom", *SUPPORT_TYPES)


@dataclass(frozen=True)
class PrintReport:
    """What a sliced plate prints over air, read from PrusaSlicer's own ``;TYPE:`` marks: millimetres of
    overhang perimeter (extruded where the layer below does not carry it) and how much of that has no
    support material under it, all perimeters for scale, and the area the first layer covers (skirt and
    brim left out), from the filament it extrudes there."""

    perimeter_mm: float
    overhang_mm: float
    unsupported_overhang_mm: float
    support_mm: float
    first_layer_mm2: float

    @property
    def unsupported_share(self) -> float:
        """Unsupported overhang as a share of every perimeter printed."""
        return self.unsupported_overhang_mm / self.perimeter_mm if self.perimeter_mm else 0.0


def print_report(gcode: str | os.PathLike[str], filament_diameter_mm: float) -> PrintReport:
    """Read a PrusaSlicer G-code's perimeters, overhangs, supports and first layer (see :class:`PrintReport`)."""
    import math

    from shapely import STRtree
    from shapely.geometry import LineString, Point

    filament_area = math.pi * (filament_diameter_mm / 2) ** 2
    first_height = first_volume = perimeter = overhang = support = 0.0
    supports: dict[int, list[LineString]] = {}
    overhangs: list[tuple[int, Point, float]] = []
    for move in _extrusions(gcode):
        length = math.hypot(move.x1 - move.x0, move.y1 - move.y0)
        if move.layer == 1 and move.kind not in FIRST_LAYER_SKIPPED:
            first_height = first_height or move.height
            first_volume += move.filament * filament_area
        if move.kind.lower().endswith("perimeter"):
            perimeter += length
        if move.kind == "Overhang perimeter":
            overhang += length
            overhangs.append((move.layer, Point((move.x0 + move.x1) / 2, (move.y0 + move.y1) / 2), length))
        elif move.kind in SUPPORT_TYPES:
            support += length
            supports.setdefault(move.layer, []).append(LineString([(move.x0, move.y0), (move.x1, move.y1)]))
    trees = {layer: STRtree(lines) for layer, lines in supports.items()}

    def carried(layer: int, probe: Point) -> bool:
        return any(len(trees[below].query(probe, predicate="dwithin", distance=SUPPORT_REACH_MM))
                   for below in range(layer - SUPPORT_LAYERS_BELOW, layer) if below in trees)

    unsupported = sum(length for layer, probe, length in overhangs if not carried(layer, probe))
    first_area = first_volume / first_height if first_height else 0.0
    return PrintReport(round(perimeter, 1), round(overhang, 1), round(unsupported, 1), round(support, 1),
                       round(first_area, 1))
