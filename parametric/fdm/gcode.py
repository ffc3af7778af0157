"""What a sliced G-code really does on the bed: the extent of every extruding move.

PrusaSlicer with a skirt or a brim extrudes beyond the parts, and it checks nothing against the
bed when told where things go; so every plate's G-code is read back and its extrusion compared
with the bed before the plate is offered (:func:`extrusion_bounds`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

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


def extrusion_bounds(gcode: str | os.PathLike[str], layers: int | None = None) -> Bounds | None:
    """The extent of every move that extrudes (``G1`` with the filament going forward), start points
    included, in the whole file or its first ``layers`` layers (PrusaSlicer's ``;LAYER_CHANGE``
    marks: the skirt and brim are on the first); ``None`` when nothing is extruded. Follows absolute
    and relative extrusion (M82/M83), ``G92`` resets and absolute or relative positioning (G90/G91)."""
    x = y = e = 0.0
    relative_e = relative_xy = False
    x_min = y_min = float("inf")
    x_max = y_max = float("-inf")
    changes = 0
    with open(gcode, "rb") as stream:  # read lazily: a first-layer check stops early
        for raw in stream:
            line = raw.rstrip()
            if line.startswith(b";LAYER_CHANGE"):
                changes += 1
                if layers is not None and changes > layers:
                    break
            elif line[:3] in (b"G1 ", b"G0 "):
                new_x, new_y, extruding = x, y, False
                for word in line.split(b";", 1)[0].split()[1:]:
                    letter = word[:1]
                    if letter == b"X":
                        new_x = float(word[1:]) + (x if relative_xy else 0.0)
                    elif letter == b"Y":
                        new_y = float(word[1:]) + (y if relative_xy else 0.0)
                    elif letter == b"E":
                        value = float(word[1:])
                        extruding = value > 1e-9 if relative_e else value > e + 1e-9
                        e = e + value if relative_e else value
                if extruding and line[1:2] == b"1" and (new_x != x or new_y != y):
                    x_min, x_max = min(x_min, x, new_x), max(x_max, x, new_x)
                    y_min, y_max = min(y_min, y, new_y), max(y_max, y, new_y)
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
    if x_min == float("inf"):
        return None
    return Bounds(x_min, y_min, x_max, y_max)
