"""Plate packing: printed parts of any orders that share a printer and a filament, packed by their footprints onto
as few plates of the printer's bed as it takes, then checked independently before anything is sliced.

Footprints in (shapely polygons, mm, the parts' own XY), placements out, in the nesting's terms
(:mod:`parametric.batching.layout`): a plate is a :class:`~parametric.batching.SheetLayout` whose sheet is the
bed, and a placement turns the part's own coordinates by ``rotation_deg`` about their origin, then moves them by
``(x_mm, y_mm)``. Every object keeps ``spacing_mm`` from the others and the plate's skirt-and-brim ``border_mm``
from the bed's edges.

Plates are filled one after the other, each with the most footprint area it takes: rectpack on the footprints'
bounding boxes (exact for boxes, its home ground) against the project's true-shape nesting
(:func:`parametric.batching.nest`, spyrrow) on what is left, whichever puts more on the plate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shapely import affinity
from shapely.geometry import Polygon

from ..batching import FOUR_WAY, Layout, Part, Placement, Sheet, SheetLayout, Unplaced, check_layout, nest
from ..batching.validate import LayoutError
from ..errors import FieldError, ValidationError
from ..machines import Printer

RECTPACK_SCALE = 100.0
"""rectpack works in integers: 0.01 mm, sizes rounded up and the bed rounded down."""
TRUE_SHAPE_BELOW = 0.95
"""The true-shape nesting is tried when a part's footprint fills less than this share of its bounding box."""
FREE_ANGLES = tuple(float(angle) for angle in range(0, 180))


@dataclass(frozen=True)
class PrintPart:
    """One printed part to put on plates: a name shown on the plate, its footprint (mm, own XY), copies, height (mm)
    and the turns about Z allowed in degrees (``None``: any angle)."""

    name: str
    footprint: Polygon
    count: int = 1
    height_mm: float = 0.0
    rotations: tuple[float, ...] | None = FOUR_WAY
    size_mm: tuple[float, float] | None = None
    """The part's own size on the bed (mm) for messages; default: the footprint's bounding box."""

    def as_part(self, count: int | None = None) -> Part:
        return Part(self.name, self.footprint, self.count if count is None else count, self.rotations)


def bed_sheet(printer: Printer) -> Sheet:
    """The printer's bed as a sheet: X along its length, Y along its width."""
    return Sheet(float(printer.build_volume_mm[0]), float(printer.build_volume_mm[1]))


def _turned(polygon: Polygon, rotation_deg: float) -> Polygon:
    return affinity.rotate(polygon, rotation_deg, origin=(0.0, 0.0))


def _extent(polygon: Polygon) -> tuple[float, float]:
    minx, miny, maxx, maxy = polygon.bounds
    return maxx - minx, maxy - miny


def _turns(part: PrintPart) -> tuple[float, ...]:
    return FREE_ANGLES if part.rotations is None else tuple(turn % 360.0 for turn in part.rotations)


def _why_not(part: PrintPart, printer: Printer, border_mm: float) -> str | None:
    """Why ``part`` can never go on ``printer``'s bed, or None."""
    x, y, z = (float(v) for v in printer.build_volume_mm)
    if part.height_mm > z + 1e-6:
        return f"{part.height_mm:g} mm tall; {printer.name} prints up to {z:g} mm high"
    usable = (x - 2 * border_mm, y - 2 * border_mm)
    if any(w <= usable[0] + 1e-6 and h <= usable[1] + 1e-6
           for w, h in (_extent(_turned(part.footprint, turn)) for turn in _turns(part))):
        return None
    w, h = part.size_mm or _extent(part.footprint)
    turns = "any angle" if part.rotations is None else "/".join(f"{turn:g}" for turn in part.rotations) + "°"
    return (f"{max(w, h):.1f} x {min(w, h):.1f} mm does not fit the {usable[0]:g} x {usable[1]:g} mm of the bed of "
            f"{printer.name} inside its {border_mm:g} mm skirt and brim border, turned {turns}")


def _problems(parts: Sequence[PrintPart], spacing_mm: float, border_mm: float, seconds: float) -> list[FieldError]:
    problems = []
    if not (math.isfinite(spacing_mm) and spacing_mm >= 0):
        problems.append(FieldError("spacing", f"{spacing_mm} mm is out of range; allowed: 0 mm or more"))
    if not (math.isfinite(border_mm) and border_mm >= 0):
        problems.append(FieldError("border", f"{border_mm} mm is out of range; allowed: 0 mm or more"))
    if not (math.isfinite(seconds) and seconds > 0):
        problems.append(FieldError("seconds", f"{seconds} is out of range; allowed: more than 0 s"))
    for index, part in enumerate(parts):
        if part.count < 1:
            problems.append(FieldError(f"parts[{index}].count", f"{part.name}: {part.count} copies is out of range; "
                                                                 "allowed: 1 or more"))
        if not part.footprint.is_valid or part.footprint.area <= 0:
            problems.append(FieldError(f"parts[{index}].footprint", f"{part.name}: not a valid footprint"))
    return problems


def _by_boxes(parts: Sequence[PrintPart], left: Sequence[int], length: float, width: float,
              spacing: float) -> list[tuple[int, float, float, float]]:
    """The most footprint area rectpack puts on one plate of ``length`` x ``width`` mm (the usable bed) from the
    ``left`` copies, by bounding box: (part, rotation_deg, x_mm, y_mm) with x, y from the usable bed's corner."""
    import rectpack

    rects = []
    for index, part in enumerate(parts):
        if left[index] <= 0:
            continue
        turns = _turns(part)
        quarter = part.rotations is None or any(abs(((t + 90.0) - u + 180.0) % 360.0 - 180.0) < 1e-6
                                                for t in turns for u in turns)
        fitting = [turn for turn in turns if _fit(part.footprint, turn, length, width)]
        if part.rotations is None:  # any angle: lay the part along its narrowest bounding box
            base = min(fitting, key=lambda turn: math.prod(_extent(_turned(part.footprint, turn))))
        else:
            base = fitting[0]
        w, h = _extent(_turned(part.footprint, base))
        size = (math.ceil((w + spacing) * RECTPACK_SCALE - 1e-6), math.ceil((h + spacing) * RECTPACK_SCALE - 1e-6))
        rects.extend((index, base, quarter, size) for _ in range(left[index]))
    bin_size = (math.floor((length + spacing) * RECTPACK_SCALE + 1e-6),
                math.floor((width + spacing) * RECTPACK_SCALE + 1e-6))
    algorithms = [rectpack.MaxRectsBssf, rectpack.MaxRectsBaf, rectpack.MaxRectsBlsf, rectpack.MaxRectsBl,
                  rectpack.SkylineBl, rectpack.SkylineBlWm, rectpack.SkylineMwf, rectpack.SkylineMwfl,
                  rectpack.GuillotineBssfSas, rectpack.GuillotineBafSas, rectpack.GuillotineBlsfSas]
    sorts = [rectpack.SORT_AREA, rectpack.SORT_LSIDE, rectpack.SORT_SSIDE, rectpack.SORT_PERI, rectpack.SORT_DIFF]
    rotate = all(quarter for _, _, quarter, _ in rects)
    best: tuple[float, list[tuple[int, float, float, float]]] = (-1.0, [])
    for algorithm in algorithms:
        for sort in sorts:
            packer = rectpack.newPacker(mode=rectpack.PackingMode.Offline, pack_algo=algorithm, sort_algo=sort,
                                        rotation=rotate)
            for key, (_, _, _, (w, h)) in enumerate(rects):
                packer.add_rect(w, h, key)
            packer.add_bin(*bin_size)
            packer.pack()
            placed = []
            area = 0.0
            for _, x, y, w, h, key in packer.rect_list():
                index, turn, _, size = rects[key]
                if (w, h) != size:
                    turn = (turn + 90.0) % 360.0
                minx, miny, _, _ = _turned(parts[index].footprint, turn).bounds
                placed.append((index, turn, x / RECTPACK_SCALE - minx, y / RECTPACK_SCALE - miny))
                area += parts[index].footprint.area
            if area > best[0] + 1e-6:
                best = (area, placed)
    return best[1]


def _by_columns(parts: Sequence[PrintPart], left: Sequence[int], length: float, width: float,
                spacing: float) -> list[tuple[int, float, float, float]]:
    """Copies of one part in columns, some columns turned a quarter turn (what a grid of ``--duplicate`` copies
    is, bettered by mixing the two ways round): (part, rotation_deg, x_mm, y_mm) from the usable bed's corner.
    Empty unless copies of a single part are left and it may turn a quarter turn."""
    indices = [index for index in range(len(parts)) if left[index] > 0]
    if len(indices) != 1 or parts[indices[0]].rotations is not None and not {0.0, 90.0} <= set(_turns(
            parts[indices[0]])):
        return []
    index = indices[0]
    part = parts[index]
    best: tuple[int, list[tuple[int, float, float, float]]] = (0, [])
    for across in (False, True):  # columns along Y, or rows along X (the bed turned)
        ways = []
        for turn in (0.0, 90.0):
            w, h = _extent(_turned(part.footprint, turn))
            if across:
                w, h = h, w
            span, depth = (width, length) if across else (length, width)
            per_column = int((depth + spacing + 1e-6) // (h + spacing)) if w <= span + 1e-6 else 0
            ways.append((turn, w, h, per_column, span))
        (turn_a, w_a, h_a, n_a, span), (turn_b, w_b, h_b, n_b, _) = ways
        for columns_a in range(int((span + spacing + 1e-6) // (w_a + spacing)) + 1 if n_a else 1):
            room = span - columns_a * (w_a + spacing)
            columns_b = int((room + spacing + 1e-6) // (w_b + spacing)) if n_b and room + 1e-6 >= w_b else 0
            count = min(left[index], columns_a * n_a + columns_b * n_b)
            if count <= best[0]:
                continue
            placed: list[tuple[int, float, float, float]] = []
            offset = 0.0
            for turn, w, h, n, columns in ((turn_a, w_a, h_a, n_a, columns_a), (turn_b, w_b, h_b, n_b, columns_b)):
                minx, miny, _, _ = _turned(part.footprint, turn).bounds
                for column in range(columns):
                    for row in range(n):
                        if len(placed) < count:
                            along, up = offset + column * (w + spacing), row * (h + spacing)
                            x, y = (up, along) if across else (along, up)
                            placed.append((index, turn, x - minx, y - miny))
                offset += columns * (w + spacing)
            best = (count, placed)
    return best[1]


CORNER_BLOCKS_MAX = 160
"""Grid blocks per corner the four-corner search tries at most (more only for tiny parts, where a grid of columns
already wastes little); the search is then a fraction of a second."""


def _by_corners(parts: Sequence[PrintPart], left: Sequence[int], length: float, width: float,
                spacing: float) -> list[tuple[int, float, float, float]]:
    """Copies of one part in four grid blocks, one in each corner of the usable bed, each block's copies all turned
    one way (a pinwheel when the blocks wind round the middle): (part, rotation_deg, x_mm, y_mm) from the usable
    bed's corner. It finds plates no grid of columns or rows holds: 29 copies of a 40 x 30 mm part with 6 mm gaps
    inside a 3.6 mm skirt border of a 250 x 210 mm bed, where the best columns hold 27. Empty unless copies of a
    single part are left."""
    import numpy

    indices = [index for index in range(len(parts)) if left[index] > 0]
    if len(indices) != 1:
        return []
    index = indices[0]
    part = parts[index]
    turns = _turns(part)
    base = min((turn for turn in turns if _fit(part.footprint, turn, length, width)),
               key=lambda turn: math.prod(_extent(_turned(part.footprint, turn))), default=None)
    if base is None:
        return []
    ways = [base] + [turn for turn in turns if abs(((turn - base - 90.0) + 180.0) % 360.0 - 180.0) < 1e-6][:1]
    room_x, room_y = length + spacing, width + spacing  # the copies grown by the spacing fill the bed grown by it
    blocks = [(0.0, 0.0, 0, base, 0.0, 0.0)]  # width, height, copies, turn, grown copy width, height (grown mm)
    seen = set()
    for turn in ways:
        w, h = _extent(_turned(part.footprint, turn))
        cell = (w + spacing, h + spacing)
        if cell in seen or w > length + 1e-6 or h > width + 1e-6:
            continue
        seen.add(cell)
        for columns in range(1, int((room_x + 1e-6) // cell[0]) + 1):
            for rows in range(1, int((room_y + 1e-6) // cell[1]) + 1):
                blocks.append((columns * cell[0], rows * cell[1], columns * rows, turn, *cell))
    if len(blocks) > CORNER_BLOCKS_MAX:
        return []
    size = numpy.array([(block[0], block[1]) for block in blocks])
    count = numpy.array([block[2] for block in blocks])
    rects = []  # per corner (lower left, lower right, upper right, upper left): x0, y0, x1, y1 of every block
    for right, top in ((False, False), (True, False), (True, True), (False, True)):
        x0 = room_x - size[:, 0] if right else numpy.zeros(len(blocks))
        y0 = room_y - size[:, 1] if top else numpy.zeros(len(blocks))
        rects.append(numpy.stack([x0, y0, x0 + size[:, 0], y0 + size[:, 1]], axis=1))
    empty = size[:, 0] <= 0

    def apart(a: int, b: int) -> Any:
        r, s = rects[a][:, None, :], rects[b][None, :, :]
        overlap = ((r[..., 0] < s[..., 2] - 1e-6) & (s[..., 0] < r[..., 2] - 1e-6)
                   & (r[..., 1] < s[..., 3] - 1e-6) & (s[..., 1] < r[..., 3] - 1e-6))
        return ~overlap | empty[:, None] | empty[None, :]

    ok = {(a, b): apart(a, b) for a in range(4) for b in range(a + 1, 4)}
    wanted = left[index]
    pair_sum = count[:, None] + count[None, :]
    best, chosen = -1, (0, 0, 0, 0)
    most = int(count.max())
    for first in numpy.argsort(-count):
        if count[first] + 3 * most <= best or best >= wanted:
            break
        for second in numpy.nonzero(ok[(0, 1)][first])[0]:
            if count[first] + count[second] + 2 * most <= best:
                continue
            thirds = ok[(0, 2)][first] & ok[(1, 2)][second]
            fourths = ok[(0, 3)][first] & ok[(1, 3)][second]
            allowed = ok[(2, 3)] & thirds[:, None] & fourths[None, :]
            totals = numpy.where(allowed, pair_sum, -1)
            flat = int(totals.argmax())
            total = int(count[first] + count[second] + totals.flat[flat])
            if total > best:
                best, chosen = total, (int(first), int(second), *divmod(flat, len(blocks)))
    placed: list[tuple[int, float, float, float]] = []
    for corner, number in enumerate(chosen):
        block_w, block_h, copies, turn, cell_w, cell_h = blocks[number]
        if not copies:
            continue
        x0, y0 = rects[corner][number][:2]
        minx, miny, _, _ = _turned(part.footprint, turn).bounds
        for column in range(int(round(block_w / cell_w))):
            for row in range(int(round(block_h / cell_h))):
                if len(placed) < wanted:
                    placed.append((index, turn, x0 + column * cell_w - minx, y0 + row * cell_h - miny))
    return placed


def _fit(polygon: Polygon, turn: float, length: float, width: float) -> bool:
    w, h = _extent(_turned(polygon, turn))
    return w <= length + 1e-6 and h <= width + 1e-6


def _by_true_shape(parts: Sequence[PrintPart], left: Sequence[int], printer: Printer, spacing: float, border: float,
                   seconds: float, notes: list[str]) -> list[tuple[int, float, float, float]]:
    """The first plate of the true-shape nesting of the ``left`` copies, as (part, rotation_deg, x_mm, y_mm) in bed
    coordinates; empty when the engine fails (its reason goes to ``notes``)."""
    indices = [index for index in range(len(parts)) if left[index] > 0]
    try:
        layout = nest([parts[index].as_part(left[index]) for index in indices], bed_sheet(printer),
                      spacing_mm=spacing, margin_mm=border, part_in_part=False, seconds=seconds)
    except (LayoutError, ValidationError) as error:
        notes.append(f"true-shape nesting: {error}")
        return []
    except BaseException as error:  # spyrrow's Rust panics arrive as pyo3's PanicException (a BaseException)
        if type(error).__name__ != "PanicException":
            raise
        notes.append(f"true-shape nesting failed inside spyrrow: {str(error).splitlines()[0]}")
        return []
    if not layout.sheets:
        return []
    return [(indices[entry.part], entry.rotation_deg, entry.x_mm, entry.y_mm) for entry in layout.sheets[0].placements]


def pack_plates(parts: Sequence[PrintPart], printer: Printer, *, spacing_mm: float, border_mm: float,
                seconds: float = 5.0) -> Layout:
    """Every copy of ``parts`` on as few plates of ``printer``'s bed as the engines manage, checked before it
    returns (:func:`check_plates`).

    ``spacing_mm`` is the least gap between two objects, ``border_mm`` the border kept free at the bed's edges
    (the skirt and brim: :func:`~parametric.fdm.profile.border_mm`), ``seconds`` the true-shape engine's budget
    per plate. A part taller than the printer or wider than its bed at every allowed turn is listed in
    ``unplaced`` with its reason; the rest are still packed. Raises :class:`~parametric.ValidationError` on bad
    input and :class:`~parametric.batching.LayoutError` if a plate fails its check.
    """
    problems = _problems(parts, spacing_mm, border_mm, seconds)
    if problems:
        raise ValidationError(problems)
    x, y = bed_sheet(printer).length_mm, bed_sheet(printer).width_mm
    length, width = x - 2 * border_mm, y - 2 * border_mm
    left = [part.count for part in parts]
    unplaced: list[tuple[int, str]] = []
    for index, part in enumerate(parts):
        reason = _why_not(part, printer, border_mm)
        if reason is not None:
            unplaced.append((index, reason))
            left[index] = 0
    notes: list[str] = []
    raw_plates: list[list[tuple[int, float, float, float]]] = []
    while any(left):
        boxes = [(index, turn, px + border_mm, py + border_mm)
                 for index, turn, px, py in _by_boxes(parts, left, length, width, spacing_mm)]
        columns = [(index, turn, px + border_mm, py + border_mm)
                   for index, turn, px, py in _by_columns(parts, left, length, width, spacing_mm)]
        corners = [(index, turn, px + border_mm, py + border_mm)
                   for index, turn, px, py in _by_corners(parts, left, length, width, spacing_mm)]
        candidates = [boxes, columns, corners]
        shaped = any(left[index] > 0 and (part.rotations is None or part.footprint.area
                                         < TRUE_SHAPE_BELOW * math.prod(_extent(part.footprint)))
                     for index, part in enumerate(parts))
        if shaped and sum(left) > 1:
            true_shape = _by_true_shape(parts, left, printer, spacing_mm, border_mm, seconds, notes)
            candidates.append(true_shape)
        chosen = max(candidates, key=lambda placed: (sum(parts[entry[0]].footprint.area for entry in placed),
                                                     -candidates.index(placed)))
        if not chosen:
            raise LayoutError([f"no engine could place any of the {sum(left)} copies left on an empty plate"])
        for index, _, _, _ in chosen:
            left[index] -= 1
        raw_plates.append(chosen)
    layout = _numbered(raw_plates, parts, printer, unplaced, notes)
    found = check_plates(layout, parts, printer, spacing_mm=spacing_mm, border_mm=border_mm)
    if found:
        raise LayoutError(found)
    return layout


def _numbered(raw_plates: list[list[tuple[int, float, float, float]]], parts: Sequence[PrintPart],
              printer: Printer, unplaced: list[tuple[int, str]], notes: list[str]) -> Layout:
    copies = [0] * len(parts)
    bed = bed_sheet(printer)
    plates = []
    for number, raw in enumerate(raw_plates, start=1):
        placements = []
        for index, turn, px, py in sorted(raw, key=lambda entry: (entry[0], entry[3], entry[2])):
            copies[index] += 1
            placements.append(Placement(index, copies[index], round(px, 6), round(py, 6), turn % 360.0))
        area = sum(parts[entry.part].footprint.area for entry in placements)
        used = max(entry.polygon(parts[entry.part].footprint).bounds[2] for entry in placements)
        plates.append(SheetLayout(number, bed, tuple(placements), round(used, 6), area / bed.area_mm2))
    left = []
    for index, reason in unplaced:
        left.extend(Unplaced(index, copy, reason) for copy in range(1, parts[index].count + 1))
    return Layout(tuple(plates), tuple(left), "plates", tuple(notes))


def check_plates(layout: Layout, parts: Sequence[PrintPart], printer: Printer, *, spacing_mm: float,
                 border_mm: float) -> list[str]:
    """Every problem of ``layout`` for ``parts`` on ``printer``, measured with shapely on the placed footprints
    (empty when every plate may be sliced): objects closer than ``spacing_mm`` or overlapping, an object within
    ``border_mm`` of the bed's edge or off it, a plate on another bed, a turn not allowed, a copy placed twice or
    missing."""
    bed = bed_sheet(printer)
    problems = [f"plate {plate.index} is laid out on a {plate.sheet.length_mm:g} x {plate.sheet.width_mm:g} mm bed, "
                f"not the {bed.length_mm:g} x {bed.width_mm:g} mm bed of {printer.name}"
                for plate in layout.sheets if plate.sheet != bed]
    found = check_layout(layout, [part.as_part() for part in parts], spacing_mm=spacing_mm, margin_mm=border_mm,
                         part_in_part=False)
    return problems + [problem.replace("sheet ", "plate ", 1) for problem in found]
