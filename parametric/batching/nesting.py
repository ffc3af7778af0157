"""True-shape nesting of flat parts on stock sheets: the one function :func:`nest`.

Outlines in (shapely polygons with their holes, in mm), placements out, and the result checked
by :mod:`.validate` before it is returned. The engines stay inside this module:

- **spyrrow** (sparrow on jagua-rs) fills each sheet as a strip of the sheet's usable width,
  and the strip is cut at the usable length: the parts wholly before the cut are one sheet's
  worth, and what is left is nested again as a fresh strip for the next sheet. The last sheet
  is as short as spyrrow can make it (its offcut is kept).
- **u-nesting** places small parts into the cut-outs of larger ones (a frame door's window)
  before that, when part-in-part is on; a part with its contents is then nested as one. It
  also fills the ragged room left before each cut with parts from the far end of the strip.
- **rectpack** packs the parts' bounding boxes as a second candidate (it wins on plain
  rectangles, its home ground), with its last sheet re-nested by spyrrow.

Every candidate is checked independently; the best that passes (fewest sheets, then fewest
sheet-equivalents) is returned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from shapely import affinity
from shapely.geometry import Polygon

from ..errors import FieldError, ValidationError
from .layout import FOUR_WAY, GRAIN, Layout, Part, Placement, Sheet, SheetLayout, Unplaced
from .validate import LayoutError, check_layout

__all__ = ["FOUR_WAY", "GRAIN", "Layout", "Part", "Placement", "Sheet", "SheetLayout", "Unplaced", "nest"]

ENGINE_PAD_MM = 0.03
"""The engines see each outline grown by this much (then simplified by less), so arcs cut into
short chords and the engines' float32 arithmetic never bring two parts under the spacing."""
SIMPLIFY_MM = 0.02
FREE_ANGLES = tuple(float(angle) for angle in range(0, 180))
"""Angles tried to decide whether a freely turning part fits a sheet at all."""
BOXES_FROM = 0.85
"""rectpack is tried only when the parts fill at least this share of their bounding boxes grown by the spacing:
below it, boxes packed without a gap still hold less than the strips do (time saved for the strips)."""
BOX_RENEST_S = 2.0
"""Time kept back from the strips to re-nest rectpack's last sheet, when that could beat them."""

Transform = tuple[float, float, float]  # rotation_deg, x_mm, y_mm of an engine shape in the sheet's usable area


@dataclass
class _Shape:
    """A part as the engines see it: its outer ring grown and simplified, centred on its bounding
    box (``offset`` is that centre in the part's own coordinates), and the turns that fit a sheet."""

    part: int
    engine: Polygon
    offset: tuple[float, float]
    rotations: tuple[float, ...] | None


@dataclass
class _Item:
    """What the sheet engines place: copies of one part, or one copy of a part carrying others in
    its cut-outs (``contents``: part, rotation_deg, x_mm, y_mm in the carrier's own coordinates)."""

    key: str
    shape: _Shape
    demand: int
    rotations: tuple[float, ...] | None
    contents: list[tuple[int, float, float, float]] = field(default_factory=list)


@dataclass
class _Candidate:
    """One engine's sheets, as (item, transform) lists, with the copies it could not place."""

    engine: str
    sheets: list[list[tuple[_Item, Transform]]]
    unplaced: list[tuple[int, int, str]]  # part, number of copies, reason


def _turned(polygon: Polygon, rotation_deg: float) -> Polygon:
    return affinity.rotate(polygon, rotation_deg, origin=(0.0, 0.0))


def _fits(polygon: Polygon, rotation_deg: float, length: float, width: float) -> bool:
    minx, miny, maxx, maxy = _turned(polygon, rotation_deg).bounds
    return maxx - minx <= length + 1e-9 and maxy - miny <= width + 1e-9


def _prepare(index: int, part: Part, length: float, width: float) -> _Shape:
    solid = Polygon(part.outline.exterior)
    grown = solid.buffer(ENGINE_PAD_MM, join_style="mitre", mitre_limit=2.0).simplify(SIMPLIFY_MM)
    minx, miny, maxx, maxy = grown.bounds
    centre = ((minx + maxx) / 2, (miny + maxy) / 2)
    engine = affinity.translate(grown, -centre[0], -centre[1])
    if part.rotations is None:
        fitting = None if any(_fits(engine, angle, length, width) for angle in FREE_ANGLES) else ()
    else:
        fitting = tuple(dict.fromkeys(turn % 360.0 for turn in part.rotations
                                      if _fits(engine, turn, length, width)))
    return _Shape(index, engine, centre, fitting)


def _problems(parts: Sequence[Part], sheet: Sheet, spacing_mm: float, margin_mm: float,
              seconds: float) -> list[FieldError]:
    problems = []
    for name, value in (("sheet.length_mm", sheet.length_mm), ("sheet.width_mm", sheet.width_mm)):
        if not (math.isfinite(value) and value > 0):
            problems.append(FieldError(name, f"{value} is out of range; allowed: a positive size in mm"))
    if not (math.isfinite(spacing_mm) and spacing_mm >= 0):
        problems.append(FieldError("spacing_mm", f"{spacing_mm} is out of range; allowed: 0 mm or more"))
    if not (math.isfinite(margin_mm) and margin_mm >= 0):
        problems.append(FieldError("margin_mm", f"{margin_mm} is out of range; allowed: 0 mm or more"))
    elif min(sheet.length_mm, sheet.width_mm) <= 2 * margin_mm:
        problems.append(FieldError("margin_mm", f"a {margin_mm:g} mm margin leaves nothing of a "
                                                f"{sheet.length_mm:g} x {sheet.width_mm:g} mm sheet"))
    if not (math.isfinite(seconds) and seconds > 0):
        problems.append(FieldError("seconds", f"{seconds} is out of range; allowed: more than 0 s"))
    for index, part in enumerate(parts):
        where = f"parts[{index}]"
        if part.count < 1:
            problems.append(FieldError(f"{where}.count", f"{part.count} is out of range; allowed: 1 or more"))
        outline = part.outline
        if not isinstance(outline, Polygon) or outline.is_empty or not outline.is_valid or outline.area <= 0:
            from shapely.validation import explain_validity

            reason = explain_validity(outline) if isinstance(outline, Polygon) and not outline.is_empty else "empty"
            problems.append(FieldError(f"{where}.outline", f"{part.name}: not a valid outline ({reason})"))
        if part.rotations is not None and (not part.rotations or not all(map(math.isfinite, part.rotations))):
            problems.append(FieldError(f"{where}.rotations", f"{part.name}: give at least one angle in degrees, "
                                                             "or None for any angle"))
    return problems


def _fill_cutouts(shapes: list[_Shape], parts: Sequence[Part], remaining: list[int], spacing: float,
                  deadline: float) -> list[_Item]:
    """Carriers: copies of parts with cut-outs, each holding as many smaller parts as u-nesting fits."""
    import u_nesting

    carriers: list[_Item] = []
    hosts = sorted((shape for shape in shapes if parts[shape.part].outline.interiors and shape.rotations != ()),
                   key=lambda shape: -max(Polygon(ring).area for ring in parts[shape.part].outline.interiors))
    for host in hosts:
        outline = parts[host.part].outline
        while remaining[host.part] > 0 and time.monotonic() < deadline:
            carrier_turns = host.rotations
            contents: list[tuple[int, float, float, float]] = []
            placed: list[Polygon] = []
            taken = [0] * len(parts)
            taken[host.part] = 1
            for ring in sorted(outline.interiors, key=lambda ring: -Polygon(ring).area):
                region = Polygon(ring)
                room = region.buffer(-spacing)
                if room.is_empty or room.area <= 0:
                    continue
                geometries = []
                for shape in shapes:
                    left = remaining[shape.part] - taken[shape.part]
                    if left <= 0 or shape.rotations == () or shape.engine.area >= room.area:
                        continue
                    turns = _content_turns(parts[shape.part].rotations, carrier_turns)
                    turns = tuple(turn for turn in turns if _fits(shape.engine, turn, *_extent(room)))
                    if not turns:
                        continue
                    fitting = min(left, int(room.area // shape.engine.area))
                    geometries.append({"id": str(shape.part), "quantity": fitting,
                                       "polygon": [list(point) for point in shape.engine.exterior.coords[:-1]],
                                       "rotations": list(turns)})
                if not geometries:
                    continue
                budget = max(100, int(min(1.0, deadline - time.monotonic()) * 1000))
                result = u_nesting.solve_2d(geometries, {"polygon": [list(p) for p in region.exterior.coords[:-1]]},
                                            {"strategy": "nfp", "spacing": spacing, "margin": spacing,
                                             "time_limit_ms": budget})
                if not result.get("success"):
                    continue
                for found in result["placements"]:
                    shape = shapes[int(found["geometry_id"])]
                    turn = _snap(math.degrees(found["rotation"][0]),
                                 _content_turns(parts[shape.part].rotations, carrier_turns))
                    if turn is None or remaining[shape.part] - taken[shape.part] <= 0:
                        continue
                    x, y = found["position"]
                    engine_placed = affinity.translate(_turned(shape.engine, turn), x, y)
                    if not room.buffer(1e-6).covers(engine_placed) or any(
                            engine_placed.distance(other) < spacing for other in placed):
                        continue  # checked here too: a content the check would refuse is left to the sheets
                    ox, oy = _rotate_point(shape.offset, turn)
                    contents.append((shape.part, turn, x - ox, y - oy))
                    placed.append(engine_placed)
                    taken[shape.part] += 1
            if not contents:
                break
            for part, count in enumerate(taken):
                remaining[part] -= count
            carriers.append(_Item(f"carrier{len(carriers)}", host, 1, carrier_turns, contents))
    return carriers


def _rotate_point(point: tuple[float, float], rotation_deg: float) -> tuple[float, float]:
    cos, sin = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
    return cos * point[0] - sin * point[1], sin * point[0] + cos * point[1]


def _extent(polygon: Polygon) -> tuple[float, float]:
    minx, miny, maxx, maxy = polygon.bounds
    return maxx - minx, maxy - miny


def _content_turns(allowed: tuple[float, ...] | None, carrier: tuple[float, ...] | None) -> tuple[float, ...]:
    """Turns a part may take inside a carrier so that it stays allowed however the carrier turns."""
    if allowed is None:
        return FOUR_WAY
    if carrier is None:
        return ()
    return tuple(turn for turn in allowed
                 if all(_snap(turn + outer, allowed) is not None for outer in carrier))


def _snap(rotation_deg: float, allowed: Sequence[float]) -> float | None:
    for turn in allowed:
        if abs((rotation_deg - turn + 180.0) % 360.0 - 180.0) < 1e-4:
            return turn % 360.0
    return None


class EngineFailed(Exception):
    """The strip engine could not nest a strip (spyrrow panicked, or the strip cannot be given to it); the
    message says why in plain words. :func:`nest` falls back to its other candidates."""


STRIP_START_GAPS = 2.0
"""jagua-rs (under spyrrow) starts a strip as long as the items' area over the strip's height and shrinks it
by the spacing; at or under one spacing the strip is empty and it panics ("Offset resulted in an empty
polygon"). A strip whose items' area gives under this many spacings is nested on a narrower strip."""


def _solve(instance, config):
    """spyrrow's solve, its Rust panics (pyo3's PanicException, a BaseException) turned into :class:`EngineFailed`."""
    try:
        return instance.solve(config)
    except BaseException as error:
        if type(error).__name__ != "PanicException":
            raise
        first = (str(error).strip().splitlines() or ["no reason given"])[0]
        raise EngineFailed(f"the nesting engine (spyrrow) failed: {first}") from None


def _least_height(item: _Item) -> float:
    """The least strip height one copy of ``item`` needs at an allowed turn."""
    turns = FREE_ANGLES if item.rotations is None else item.rotations
    return min(_extent(_turned(item.shape.engine, turn))[1] for turn in turns)


def _alone(item: _Item, height: float) -> tuple[float, list[tuple[_Item, Transform]]]:
    """One copy on its own strip, no engine: the allowed turn that fits ``height`` and is shortest, at the corner."""
    turns = FREE_ANGLES if item.rotations is None else item.rotations
    fitting = [turn for turn in turns if _extent(_turned(item.shape.engine, turn))[1] <= height + 1e-9]
    if not fitting:
        raise EngineFailed(f"{item.key} does not fit a strip {height:g} mm wide at any allowed turn")
    turn = min(fitting, key=lambda option: (_extent(_turned(item.shape.engine, option))[0], option))
    minx, miny, maxx, _ = _turned(item.shape.engine, turn).bounds
    return maxx - minx, [(item, (float(turn), -minx, -miny))]


def _strip(items: list[tuple[_Item, int]], height: float, seconds: int, spacing: float,
           seed: int) -> tuple[float, list[tuple[_Item, Transform]]]:
    """spyrrow on a strip ``height`` mm wide: its length (mm) and each copy's transform. A single copy is laid by
    itself; raises :class:`EngineFailed` when spyrrow fails."""
    import spyrrow

    items = [(item, count) for item, count in items if count > 0]
    if not items:
        return 0.0, []
    if sum(count for _, count in items) == 1:
        return _alone(items[0][0], height)
    area = sum(item.shape.engine.area * count for item, count in items)
    if spacing > 0 and area / height < STRIP_START_GAPS * spacing:  # a few small parts on a wide strip
        need = max(_least_height(item) for item, _ in items)
        height = max(need, area / (STRIP_START_GAPS * spacing))
        if area / height <= spacing * 1.05:
            raise EngineFailed(f"the parts' area ({area:.0f} mm²) is too small for the nesting engine's strip "
                               f"with a {spacing:g} mm spacing")
    by_key = {item.key: item for item, _ in items}
    edge = spacing  # spyrrow keeps the spacing from the strip's edges too: the strip is widened by it each side
    instance = spyrrow.StripPackingInstance("sheet", height + 2 * edge, [
        spyrrow.Item(item.key, [tuple(point) for point in item.shape.engine.exterior.coords[:-1]], count,
                     None if item.rotations is None else list(item.rotations))
        for item, count in items])
    config = spyrrow.StripPackingConfig(total_computation_time=seconds, min_items_separation=spacing or None,
                                        seed=seed)
    solution = _solve(instance, config)
    placed = [(by_key[found.id], (float(found.rotation), float(found.translation[0]), float(found.translation[1])))
              for found in solution.placed_items]
    if not placed:
        return 0.0, []
    start = min(_bounds(*entry)[0] for entry in placed)
    placed = [(item, (rotation, x - start, y - edge)) for item, (rotation, x, y) in placed]
    low = min(_bounds(*entry)[1] for entry in placed)
    high = max(_bounds(*entry)[3] for entry in placed)
    if low < -1e-6 or high > height + 1e-6:
        raise EngineFailed(f"the nesting engine (spyrrow) placed parts {-low if low < 0 else high - height:.3f} mm "
                           "beyond its strip")
    return max(_bounds(*entry)[2] for entry in placed), placed


def _bounds(item: _Item, transform: Transform) -> tuple[float, float, float, float]:
    rotation, x, y = transform
    minx, miny, maxx, maxy = _turned(item.shape.engine, rotation).bounds
    return minx + x, miny + y, maxx + x, maxy + y


def _counts(placed: list[tuple[_Item, Transform]]) -> list[tuple[_Item, int]]:
    counts: dict[str, list] = {}
    for item, _ in placed:
        counts.setdefault(item.key, [item, 0])[1] += 1
    return [(item, count) for item, count in counts.values()]


def _shifted(entries: list[tuple[_Item, Transform]], dx: float) -> list[tuple[_Item, Transform]]:
    return [(item, (rotation, x - dx, y)) for item, (rotation, x, y) in entries]


def _strip_sheets(items: list[_Item], length: float, width: float, spacing: float, seconds: float,
                  seed: int) -> _Candidate:
    """Fill sheets one after the other, each from a fresh strip of the usable width.

    spyrrow nests every part left as one strip; the sheet takes the parts wholly inside the usable length, and
    the ragged room left before the cut is filled with parts from the far end of the strip (u-nesting into
    the free region, :func:`_fill_gap`). What is left is nested again as a fresh strip for the next sheet, so
    no sheet starts with the ragged edge of the one before. The strip that fits one sheet is the last sheet.
    """
    started = time.monotonic()
    area = sum(item.shape.engine.area * item.demand for item in items)
    strips = max(1, math.ceil(area / (length * width * 0.75)))
    counts = {item.key: [item, item.demand] for item in items}
    sheets: list[list[tuple[_Item, Transform]]] = []
    unplaced: list[tuple[int, int, str]] = []
    pending: list[tuple[_Item, Transform]] = []  # the last strip's parts beyond its cut, where it put them
    while any(count for _, count in counts.values()):
        left = seconds - (time.monotonic() - started)
        if pending and left < 1.0:  # out of time: the rest of the last strip, moved up, is the next window
            start = min(_bounds(*entry)[0] for entry in pending)
            placed = _shifted(pending, start)
            placed_length = max(_bounds(*entry)[2] for entry in placed)
        else:
            budget = max(0, int(left / max(1, strips - len(sheets))))
            placed_length, placed = _strip([(item, count) for item, count in counts.values() if count], width,
                                           budget, spacing, seed)  # EngineFailed on the first strip: no candidate
        placed = sorted(placed, key=lambda entry: _bounds(*entry)[0])
        if placed_length <= length + 1e-6 and max(_bounds(*entry)[2] for entry in placed) <= length + 1e-6:
            sheets.append(placed)
            break
        inside = [entry for entry in placed if _bounds(*entry)[2] <= length + 1e-6]
        outside = [entry for entry in placed if _bounds(*entry)[2] > length + 1e-6]
        if not inside:  # nothing wholly inside the window: nest the first part alone
            first = outside[0][0]
            alone_length, alone = _alone(first, width)
            counts[first.key][1] -= 1
            pending = outside[1:]
            if alone_length > length + 1e-6:
                unplaced.append((first.shape.part, 1, "the nesting engine found no room for it on an empty sheet"))
            else:
                sheets.append(alone)
            continue
        deadline = started + seconds
        filled = _fill_gap(inside, outside, length, width, spacing, deadline)
        for item, _ in filled:  # the copies taken are dropped from the far end of what the strip left
            at = max((k for k, entry in enumerate(outside) if entry[0] is item), key=lambda k: _bounds(*outside[k])[0])
            outside.pop(at)
        inside += filled
        for item, _ in inside:
            counts[item.key][1] -= 1
        sheets.append(inside)
        pending = outside
    return _Candidate("spyrrow", sheets, unplaced)


GAP_SECONDS = 0.3
GAP_TOTAL_S = 1.5
"""u-nesting's time for one free region before a sheet's cut, and for all of a sheet's."""


def _fill_gap(inside: list[tuple[_Item, Transform]], outside: list[tuple[_Item, Transform]], length: float,
              width: float, spacing: float, deadline: float) -> list[tuple[_Item, Transform]]:
    """Parts from ``outside`` (the far end of the strip first) that u-nesting fits into the free room of a sheet
    holding ``inside``, each kept only if it clears every part by the spacing (the layout is checked again)."""
    import u_nesting
    from shapely import STRtree
    from shapely.ops import unary_union

    placed = [affinity.translate(_turned(item.shape.engine, rotation), x, y) for item, (rotation, x, y) in inside]
    spare: dict[str, list] = {}
    for item, _ in sorted(outside, key=lambda entry: -_bounds(*entry)[0]):
        if not item.contents:
            spare.setdefault(item.key, [item, 0])[1] += 1
    if not spare or not placed:
        return []
    smallest = min(item.shape.engine.area for item, _ in spare.values())
    taken = unary_union([polygon.buffer(spacing, quad_segs=8) for polygon in placed])
    free = Polygon([(0, 0), (length, 0), (length, width), (0, width)]).difference(taken)
    pieces = [piece for whole in getattr(free, "geoms", [free]) for piece in _without_islands(whole, smallest)
              if piece.area > 1.5 * smallest]
    added: list[tuple[_Item, Transform]] = []
    tree = STRtree(placed)
    deadline = min(deadline, time.monotonic() + GAP_TOTAL_S)
    for piece in sorted(pieces, key=lambda piece: -piece.area):
        if time.monotonic() > deadline:
            break
        region = piece.buffer(-0.05).simplify(0.2)
        if region.is_empty or region.geom_type != "Polygon":
            continue
        geometries = []
        for item, count in spare.values():
            if count <= 0 or item.shape.engine.area >= region.area:
                continue
            turns = FOUR_WAY if item.rotations is None else item.rotations
            turns = tuple(turn for turn in turns if _fits(item.shape.engine, turn, *_extent(region)))
            if turns:
                geometries.append({"id": item.key, "quantity": min(count, int(region.area // item.shape.engine.area)),
                                   "polygon": [list(point) for point in item.shape.engine.exterior.coords[:-1]],
                                   "rotations": list(turns)})
        if not geometries:
            continue
        budget = int(max(0.05, min(GAP_SECONDS, deadline - time.monotonic())) * 1000)
        try:
            result = u_nesting.solve_2d(geometries, {"polygon": [list(p) for p in region.exterior.coords[:-1]]},
                                        {"strategy": "nfp", "spacing": spacing, "margin": 0.0,
                                         "time_limit_ms": budget})
        except Exception:  # u-nesting refuses some regions: the gap stays empty
            continue
        if not result.get("success"):
            continue
        for found in result["placements"]:
            item, count = spare[found["geometry_id"]]
            turns = FOUR_WAY if item.rotations is None else item.rotations
            turn = _snap(math.degrees(found["rotation"][0]), turns)
            if turn is None or count <= 0:
                continue
            x, y = found["position"]
            polygon = affinity.translate(_turned(item.shape.engine, turn), x, y)
            minx, miny, maxx, maxy = polygon.bounds
            if minx < -1e-6 or miny < -1e-6 or maxx > length + 1e-6 or maxy > width + 1e-6:
                continue
            near = tree.query(polygon.buffer(spacing))
            if any(polygon.distance(placed[index]) < spacing + 1e-3 for index in near) or any(
                    polygon.distance(other) < spacing + 1e-3 for other in _added_polygons(added)):
                continue
            added.append((item, (turn, x, y)))
            spare[item.key][1] -= 1
    return added


def _without_islands(region: Polygon, smallest: float, depth: int = 0) -> list[Polygon]:
    """``region`` cut across at its islands (parts standing free in it) into pieces without any, which u-nesting
    takes; pieces smaller than ``smallest`` are dropped."""
    if region.area < smallest:
        return []
    if not region.interiors or depth > 12:
        return [] if region.interiors else [region]
    minx, miny, maxx, maxy = region.bounds
    split = Polygon(region.interiors[0]).centroid.x
    pieces = []
    for half in (Polygon([(minx - 1, miny - 1), (split, miny - 1), (split, maxy + 1), (minx - 1, maxy + 1)]),
                 Polygon([(split, miny - 1), (maxx + 1, miny - 1), (maxx + 1, maxy + 1), (split, maxy + 1)])):
        part = region.intersection(half)
        for piece in getattr(part, "geoms", [part]):
            if piece.geom_type == "Polygon":
                pieces.extend(_without_islands(piece, smallest, depth + 1))
    return pieces


def _added_polygons(added: list[tuple[_Item, Transform]]) -> list[Polygon]:
    return [affinity.translate(_turned(item.shape.engine, rotation), x, y) for item, (rotation, x, y) in added]


def _box_sheets(items: list[_Item], length: float, width: float, spacing: float) -> _Candidate | None:
    """rectpack on the items' bounding boxes, best of several heuristics; ``None`` if it cannot place them all."""
    import rectpack

    scale = 10.0  # rectpack works in 0.1 mm integers: sizes rounded up, the sheet rounded down
    quarter = all(item.rotations is None or any(_snap(turn + 90, item.rotations) is not None for turn in item.rotations)
                  for item in items)
    rects = []
    for item in items:
        turn = 0.0 if item.rotations is None else item.rotations[0]
        if not quarter and item.rotations is not None:  # lay a turnable part long side along the sheet
            turn = max(item.rotations, key=lambda option: _extent(_turned(item.shape.engine, option))[0]
                       if _fits(item.shape.engine, option, length, width) else -1.0)
        w, h = _extent(_turned(item.shape.engine, turn))
        rects.extend((item, turn, math.ceil((w + spacing) * scale), math.ceil((h + spacing) * scale))
                     for _ in range(item.demand))
    bin_w, bin_h = math.floor((length + spacing) * scale), math.floor((width + spacing) * scale)
    best: tuple[tuple[int, float], list[list[tuple[_Item, Transform]]]] | None = None
    small = len(rects) <= 100  # rectpack is pure Python: the wider search only for small jobs
    algorithms = [rectpack.MaxRectsBssf, rectpack.MaxRectsBaf, rectpack.MaxRectsBlsf, rectpack.MaxRectsBl,
                  rectpack.SkylineMwf, rectpack.GuillotineBssfSas]
    if small:
        algorithms += [rectpack.SkylineBl, rectpack.SkylineMwfl, rectpack.GuillotineBafSas, rectpack.GuillotineBlsfSas]
    sorts = [rectpack.SORT_AREA, rectpack.SORT_LSIDE] + ([rectpack.SORT_PERI, rectpack.SORT_SSIDE] if small else [])
    bins = [rectpack.PackingBin.BFF] + ([rectpack.PackingBin.BBF] if small else [])
    for algorithm, sort, bin_algo in ((a, s, b) for a in algorithms for s in sorts for b in bins):
        packer = rectpack.newPacker(pack_algo=algorithm, sort_algo=sort, rotation=quarter, bin_algo=bin_algo)
        for index, (_, _, w, h) in enumerate(rects):
            packer.add_rect(w, h, index)
        packer.add_bin(bin_w, bin_h, count=len(rects))
        packer.pack()
        found = packer.rect_list()
        if len(found) < len(rects):
            continue
        sheets: dict[int, list[tuple[_Item, Transform]]] = {}
        for bin_index, x, y, w, _, index in found:
            item, turn, rect_w, _ = rects[index]
            if w != rect_w:
                turn = (turn + 90.0) % 360.0
            minx, miny, _, _ = _turned(item.shape.engine, turn).bounds
            sheets.setdefault(bin_index, []).append((item, (turn, x / scale - minx, y / scale - miny)))
        ordered = sorted(sheets.values(), key=lambda sheet: -max(_bounds(*entry)[2] for entry in sheet))
        score = (len(ordered), max(_bounds(*entry)[2] for entry in ordered[-1]))
        if best is None or score < best[0]:
            best = (score, ordered)
    return None if best is None else _Candidate("rectpack", best[1], [])


def _equivalents(candidate: _Candidate, length: float, last_length: float | None = None) -> tuple[int, float]:
    """(sheets, sheet-equivalents in usable lengths) of a candidate; ``last_length`` in place of its last sheet's."""
    last = last_length if last_length is not None else max(_bounds(*entry)[2] for entry in candidate.sheets[-1])
    return len(candidate.sheets), len(candidate.sheets) - 1 + last / length


def _box_fill(items: list[_Item], spacing: float) -> float:
    """The share of their bounding boxes grown by the spacing that the items' outlines fill (area-weighted)."""
    area = sum(item.shape.engine.area * item.demand for item in items)
    boxes = sum((_extent(item.shape.engine)[0] + spacing) * (_extent(item.shape.engine)[1] + spacing) * item.demand
                for item in items)
    return area / boxes if boxes > 0 else 1.0


def _may_beat(boxes: _Candidate, strips: _Candidate, length: float, width: float) -> bool:
    """Whether rectpack's sheets, their last re-nested as densely as a strip can be (its parts' area over the
    width), could beat the strips' sheets: otherwise the re-nest is not worth its time."""
    if not strips.sheets:
        return True
    area = sum(item.shape.engine.area for item, _ in boxes.sheets[-1])
    return _equivalents(boxes, length, area / width) < _equivalents(strips, length)


def _layout(candidate: _Candidate, parts: Sequence[Part], sheet: Sheet, margin: float, notes: list[str],
            unplaced: list[Unplaced]) -> Layout:
    """Number the copies in sheet order and move the engine transforms to the parts' own coordinates."""
    copies = [0] * len(parts)

    def placement(part: int, rotation: float, x: float, y: float, host: tuple[int, int] | None = None) -> Placement:
        copies[part] += 1
        return Placement(part, copies[part], round(x, 6), round(y, 6), rotation % 360.0, host)

    sheets = []
    for index, raw in enumerate(candidate.sheets, start=1):
        placements: list[Placement] = []
        for item, (rotation, tx, ty) in raw:
            ox, oy = _rotate_point(item.shape.offset, rotation)
            x, y = tx + margin - ox, ty + margin - oy
            carrier = placement(item.shape.part, rotation, x, y)
            placements.append(carrier)
            for part, turn, cx, cy in item.contents:
                dx, dy = _rotate_point((cx, cy), rotation)
                placements.append(placement(part, rotation + turn, x + dx, y + dy, (carrier.part, carrier.copy)))
        polygons = [entry.polygon(parts[entry.part].outline) for entry in placements]
        used = max((polygon.bounds[2] for polygon in polygons), default=0.0)
        sheets.append(SheetLayout(index, sheet, tuple(placements), round(used, 6),
                                  sum(polygon.area for polygon in polygons) / sheet.area_mm2))
    left = list(unplaced)
    for part, count, reason in candidate.unplaced:
        for _ in range(count):
            copies[part] += 1
            left.append(Unplaced(part, copies[part], reason))
    return Layout(tuple(sheets), tuple(sorted(left, key=lambda entry: (entry.part, entry.copy))), candidate.engine,
                  tuple(notes))


def nest(parts: Sequence[Part], sheet: Sheet, *, spacing_mm: float, margin_mm: float, part_in_part: bool = True,
         seconds: float = 10.0, seed: int = 1) -> Layout:
    """Nest every copy of ``parts`` on as few ``sheet``\\ s as the engines manage, checked before it returns.

    ``spacing_mm`` is the least gap between two parts (tool diameter plus a margin), ``margin_mm``
    the border kept free at the sheet's edges, ``part_in_part`` lets small parts sit in larger
    parts' cut-outs, ``seconds`` is the engines' time budget (roughly the wall time). A part that
    fits no sheet at any allowed turn is listed in ``unplaced`` with its reason; the rest are still
    nested. Raises :class:`~parametric.ValidationError` on bad input and
    :class:`~.validate.LayoutError` if no engine's layout passes the check.
    """
    problems = _problems(parts, sheet, spacing_mm, margin_mm, seconds)
    if problems:
        raise ValidationError(problems)
    started = time.monotonic()
    length, width = sheet.length_mm - 2 * margin_mm, sheet.width_mm - 2 * margin_mm
    shapes = [_prepare(index, part, length, width) for index, part in enumerate(parts)]
    unplaced: list[Unplaced] = []
    remaining = [part.count for part in parts]
    for shape, part in zip(shapes, parts, strict=True):
        if shape.rotations == ():
            w, h = _extent(part.outline)
            turns = "any angle" if part.rotations is None else "/".join(f"{turn:g}" for turn in part.rotations) + "°"
            reason = (f"{w:.1f} x {h:.1f} mm does not fit the {length:g} x {width:g} mm inside the sheet's "
                      f"{margin_mm:g} mm margin at {turns}")
            unplaced.extend(Unplaced(shape.part, copy, reason) for copy in range(1, part.count + 1))
            remaining[shape.part] = 0
    items: list[_Item] = []
    if part_in_part:
        items.extend(_fill_cutouts(shapes, parts, remaining, spacing_mm, started + 0.2 * seconds))
    items.extend(_Item(f"part{shape.part}", shape, remaining[shape.part], shape.rotations)
                 for shape in shapes if remaining[shape.part] > 0)
    notes: list[str] = []
    if not items:
        return Layout((), tuple(unplaced), "", ())
    boxes = _box_sheets(items, length, width, spacing_mm) if _box_fill(items, spacing_mm) >= BOXES_FROM else None
    left = max(0.5, seconds - (time.monotonic() - started))
    candidates = []
    failures: list[str] = []
    try:
        kept = min(BOX_RENEST_S, 0.1 * left) if boxes else 0.0
        candidates.append(_strip_sheets(items, length, width, spacing_mm, left - kept, seed))
    except EngineFailed as error:
        failures.append(str(error))
        if boxes is None:  # the strips failed: rectpack's boxes are the fallback, however little they hold
            boxes = _box_sheets(items, length, width, spacing_mm)
    if boxes is not None:
        last = boxes.sheets[-1]
        if not candidates or _may_beat(boxes, candidates[0], length, width):
            try:
                shorter_length, shorter = _strip(_counts(last), width,
                                                 max(0, int(seconds - (time.monotonic() - started))), spacing_mm, seed)
            except EngineFailed as error:
                failures.append(f"re-nesting rectpack's last sheet: {error}")
                shorter_length, shorter = math.inf, []
            if shorter_length < max(_bounds(*entry)[2] for entry in last):
                boxes.sheets[-1] = shorter
                boxes.engine = "rectpack+spyrrow"
        candidates.append(boxes)
    best: Layout | None = None
    for candidate in candidates:
        layout = _layout(candidate, parts, sheet, margin_mm, notes, unplaced)
        found = check_layout(layout, parts, spacing_mm=spacing_mm, margin_mm=margin_mm, part_in_part=part_in_part)
        if found:
            failures.extend(f"{candidate.engine}: {problem}" for problem in found)
            continue
        if best is None or (len(layout.sheets), layout.sheet_equivalents) < (len(best.sheets), best.sheet_equivalents):
            best = layout
    if best is None:
        raise LayoutError(failures)
    if failures:
        best = Layout(best.sheets, best.unplaced, best.engine, (*best.notes, *failures))
    return best
