"""The drawing a job sheet embeds, derived once per SVG from the core's isometric drawing view."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import threading
from collections import OrderedDict
from typing import Any

from ..files import atomic_write
from ..manifest import Manifest

# The core exports an isometric view with hidden lines (``export_svg``): CadQuery's SVG, one
# path per B-rep edge, every curve a polyline of hundreds of points in full float precision,
# with a negative stroke width that WeasyPrint reads as one model millimetre (a leg cap came out
# as black blobs). WeasyPrint parses and draws each point in Python, so that drawing cost
# 20-190 ms of every sheet. The sheet embeds a derived drawing instead: the same lines in print
# millimetres, cropped to the part, curves thinned to what a 0.05 mm pen can show, visible and
# hidden lines as two paths with fixed stroke widths. It depends on the SVG's bytes only, so it
# is made once and kept beside the render, named by the SVG's hash (and in memory for a worker).

DRAWING_GENERATION = 1
"""Bump when :func:`sheet_drawing` changes its output, so drawings kept beside renders are remade."""

DRAWING_BOX_MM = (176.0, 85.0)
"""The largest the drawing is printed (width, height), inside the sheet's drawing frame."""

_DRAWING_TOLERANCE_MM = 0.05
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SVG = "{http://www.w3.org/2000/svg}"
_drawings: OrderedDict[str, str] = OrderedDict()  # key -> data URI, the most recently used last
_drawings_lock = threading.Lock()


def _thin(points: Any, tolerance: float) -> Any:
    """The points of a polyline that keep it within ``tolerance`` (Ramer-Douglas-Peucker)."""
    import numpy as np

    count = len(points)
    if count < 3:
        return points
    keep = np.zeros(count, dtype=bool)
    keep[0] = keep[-1] = True
    spans = [(0, count - 1)]
    while spans:
        first, last = spans.pop()
        if last - first < 2:
            continue
        chord = points[last] - points[first]
        inner = points[first + 1:last] - points[first]
        length = float(np.hypot(chord[0], chord[1]))
        distance = (np.abs(inner[:, 0] * chord[1] - inner[:, 1] * chord[0]) / length if length
                    else np.hypot(inner[:, 0], inner[:, 1]))
        worst = int(np.argmax(distance))
        if distance[worst] > tolerance:
            middle = first + 1 + worst
            keep[middle] = True
            spans.extend(((first, middle), (middle, last)))
    return points[keep]


def sheet_drawing(svg: bytes, box_mm: tuple[float, float] = DRAWING_BOX_MM) -> str:
    """The drawing a job sheet embeds, from the core's isometric SVG: an SVG sized in print millimetres to
    fit ``box_mm``, visible lines 0.35 mm black, hidden lines 0.18 mm grey and dashed. An SVG of another
    shape than CadQuery's comes back unchanged (as text)."""
    import xml.etree.ElementTree as ElementTree

    import numpy as np

    try:
        root = ElementTree.fromstring(svg)
        outer = root.find(f"{_SVG}g")
        scale_x, scale_y, shift_x, shift_y = (float(v) for v in _NUMBER.findall(outer.get("transform", ""))[:4])
        lines: dict[bool, list[Any]] = {True: [], False: []}  # hidden? -> polylines in view units
        for group in outer.findall(f"{_SVG}g"):
            hidden = group.get("stroke-dasharray") is not None
            for path in group.iter(f"{_SVG}path"):
                for piece in path.get("d", "").split("M")[1:]:
                    values = [float(v) for v in _NUMBER.findall(piece)]
                    if len(values) >= 4 and len(values) % 2 == 0:
                        points = np.array(values).reshape(-1, 2)
                        lines[hidden].append(np.column_stack(((points[:, 0] + shift_x) * scale_x,
                                                              (points[:, 1] + shift_y) * scale_y)))
    except (ElementTree.ParseError, AttributeError, TypeError, ValueError):
        return svg.decode("utf-8", "replace")
    if not lines[False] and not lines[True]:
        return svg.decode("utf-8", "replace")
    everything = np.vstack(lines[False] + lines[True])
    low, high = everything.min(axis=0), everything.max(axis=0)
    size = np.maximum(high - low, 1e-9)
    margin = 1.0
    scale = min((box_mm[0] - 2 * margin) / size[0], (box_mm[1] - 2 * margin) / size[1])
    width, height = size * scale + 2 * margin
    paths = []
    for hidden, style in ((True, 'stroke="#8a8a8a" stroke-width="0.18" stroke-dasharray="1.2 0.8"'),
                          (False, 'stroke="#000" stroke-width="0.35"')):
        commands = []
        for polyline in lines[hidden]:
            kept = np.round(_thin((polyline - low) * scale + margin, _DRAWING_TOLERANCE_MM), 2)
            commands.append("M" + " L".join(f"{x:g} {y:g}" for x, y in kept))
        if commands:
            paths.append(f'<path fill="none" stroke-linecap="round" stroke-linejoin="round" {style} '
                         f'd="{" ".join(commands)}"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.2f}mm" height="{height:.2f}mm" '
            f'viewBox="0 0 {width:.2f} {height:.2f}">{"".join(paths)}</svg>')


def drawing_data_uri(manifest: Manifest) -> str | None:
    """The sheet's drawing of ``manifest`` as a data URI, or ``None`` when the render has no SVG view.

    Made once per SVG content: kept beside the render as ``jobsheet-drawing-<hash>.svg`` (written
    atomically; a folder that cannot be written only loses the reuse) and in this process's memory.
    """
    record = next((r for r in manifest.files if r["format"] == "svg"), None)
    if record is None:
        return None
    source = manifest.directory / record["filename"]
    digest = record.get("sha256") or hashlib.sha256(source.read_bytes()).hexdigest()
    key = f"{digest[:32]}-g{DRAWING_GENERATION}"
    with _drawings_lock:
        if key in _drawings:
            _drawings.move_to_end(key)
            return _drawings[key]
    kept = source.parent / f"jobsheet-drawing-{key}.svg"
    try:
        text = kept.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        text = sheet_drawing(source.read_bytes())
        with contextlib.suppress(OSError):
            atomic_write(kept, text)
    uri = "data:image/svg+xml;base64," + base64.b64encode(text.encode("utf-8")).decode("ascii")
    with _drawings_lock:
        _drawings[key] = uri
        while len(_drawings) > 64:
            _drawings.popitem(last=False)
    return uri


