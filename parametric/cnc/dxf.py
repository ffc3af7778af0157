"""DXF at 1:1 in mm for router shops: one layer per operation (``PROFILE_THROUGH``, ``POCKET_6MM``,
``DRILL_5MM``), closed polylines, circles for drilled holes. :func:`write_dxf` draws a part's
operations for a given router (dogbone reliefs included); :func:`feature_dxf` draws the part's own
features, for a shop whose CAM software offsets its own toolpaths."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..files import atomic_target
from .features import PartFeatures, polygons
from .planner import Operation, layer_size

LAYER_COLOURS = {"PROFILE": 7, "CUTOUT": 1, "POCKET": 5, "DRILL": 3, "COUNTERSINK": 6, "SHEET": 8, "LABELS": 2}
SHEET_LAYER = "SHEET"
"""A nested sheet's edge: drawn for reference, never cut."""
LABELS_LAYER = "LABELS"
"""Each part's order, item and part as text: never cut."""

Label = tuple[str, tuple[float, float], float]
"""A label: its text, where its middle goes (mm) and its height (mm)."""


def _write_layers(layers: Iterable[tuple[str, Sequence[Any], Sequence[tuple[Any, float]]]],
                  target: str | Path, *, sheet_mm: tuple[float, float] | None = None,
                  labels: Sequence[Label] = ()) -> Path:
    """A 1:1 mm DXF from (layer, shapely polygons, (centre, diameter) circles): closed polylines, circles;
    with ``sheet_mm`` the sheet's edge on ``SHEET`` and ``labels`` as text on ``LABELS`` (neither is cut)."""
    import ezdxf

    document = ezdxf.new("R2010", setup=False)
    document.units = ezdxf.units.MM
    document.header["$INSUNITS"] = 4
    document.header["$MEASUREMENT"] = 1
    space = document.modelspace()
    for layer, shapes, circles in layers:
        if layer not in document.layers:
            colour = next((c for prefix, c in LAYER_COLOURS.items() if layer.startswith(prefix)), 7)
            document.layers.add(layer, color=colour)
        for shape in shapes:
            for polygon in polygons(shape):
                for ring in [polygon.exterior, *polygon.interiors]:
                    points = [(round(x, 4), round(y, 4)) for x, y in list(ring.coords)[:-1]]
                    space.add_lwpolyline(points, close=True, dxfattribs={"layer": layer})
        for center, diameter in circles:
            space.add_circle(center, diameter / 2, dxfattribs={"layer": layer})
    if sheet_mm is not None:
        document.layers.add(SHEET_LAYER, color=LAYER_COLOURS[SHEET_LAYER])
        length, width = sheet_mm
        space.add_lwpolyline([(0, 0), (length, 0), (length, width), (0, width)], close=True,
                             dxfattribs={"layer": SHEET_LAYER})
    if labels:
        document.layers.add(LABELS_LAYER, color=LAYER_COLOURS[LABELS_LAYER])
        for text, (x, y), height in labels:
            space.add_text(text, height=height, dxfattribs={"layer": LABELS_LAYER}).set_placement(
                (round(x, 4), round(y, 4)), align=ezdxf.enums.TextEntityAlignment.MIDDLE_CENTER)
    with atomic_target(target) as temporary:
        document.saveas(temporary)
    return Path(target)


def write_dxf(features: PartFeatures, operations: Sequence[Operation], target: str | Path) -> Path:
    """A 1:1 mm DXF of the part with one layer per operation: closed polylines, circles for drilled holes."""
    return _write_layers(((op.layer, op.shapes, op.circles) for op in operations), target)


def sheet_dxf(operations: Sequence[Operation], target: str | Path, sheet_mm: tuple[float, float],
              labels: Sequence[Label]) -> Path:
    """A nested sheet's 1:1 mm DXF: every part's operations on their layers (in sheet coordinates), the
    sheet's edge on ``SHEET`` and the parts' labels on ``LABELS``."""
    layers: dict[str, tuple[list[Any], list[tuple[Any, float]]]] = {}
    for operation in operations:
        shapes, circles = layers.setdefault(operation.layer, ([], []))
        shapes.extend(operation.shapes)
        circles.extend(operation.circles)
    return _write_layers(((name, shapes, circles) for name, (shapes, circles) in layers.items()), target,
                         sheet_mm=sheet_mm, labels=labels)


def feature_dxf(features: PartFeatures, target: str | Path) -> Path:
    """A 1:1 mm DXF of the part's own geometry, no machine needed: one layer per kind of feature.

    ``PROFILE_THROUGH`` the outline, ``CUTOUT_THROUGH`` openings, ``POCKET_<depth>MM`` pocket
    regions, ``DRILL_<dia>MM`` through holes and ``DRILL_<dia>MM_<depth>DEEP`` blind bores. A shop
    whose CAM software offsets its own toolpaths imports this; ``parametric cam`` writes the
    tool-offset version for a given router.
    """
    layers: dict[str, tuple[list[Any], list[tuple[Any, float]]]] = {"PROFILE_THROUGH": ([features.outline], [])}
    if features.cutouts:
        layers["CUTOUT_THROUGH"] = (list(features.cutouts), [])
    for pocket in features.pockets:
        layers.setdefault(f"POCKET_{layer_size(pocket.depth)}MM", ([], []))[0].append(pocket.region)
    for hole in features.holes:
        layer = f"DRILL_{layer_size(hole.diameter)}MM" + ("" if hole.through else f"_{layer_size(hole.depth)}DEEP")
        layers.setdefault(layer, ([], []))[1].append((hole.center, hole.diameter))
    return _write_layers(((name, shapes, circles) for name, (shapes, circles) in layers.items()), target)
