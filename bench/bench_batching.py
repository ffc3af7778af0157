"""Batching benchmark: our true-shape nesting against rectpack on bounding boxes, in the same run.

- Sheets (2440 x 1220 mm, 8 mm spacing = Ø6 end mill + 2 mm, 10 mm margin, grain respected):
  (a) a flat-pack panel set, (b) a shaped-parts set, and (c) the reference's cabinet job A
  (panels with a few shaped parts; held to the panel target), and (d) the project's own bookcases,
  kitchen doors and drawer fronts, their outlines and holes read from the B-rep by CAM (held to
  the panel target), then the whole sheet flow on them (nesting, sheet CAM, rs274) timed.
  Sheet-equivalents = full sheets + the used length share of the last one.
  Targets: (a) never more sheets and at most 1 % more sheet-equivalents than rectpack;
  (b) at least 15 % fewer sheet-equivalents and never more sheets.
- ESICUP strip density (albano, shirts, swim, marques; bench/data/esicup) with ``--seconds``
  each, beside rectpack's shortest strip of the items' bounding boxes (best of its heuristics, the
  instance's quarter turns allowed) and sparrow's best-known densities. Target: within 3.5 points of
  the best-known, per instance and on the mean (the reference's reading, batching.md §7); and at
  least 80 % density within 5 s on albano and marques (``--fast-seconds``, the reference's target).
- Part-in-part: parts placed inside a frame door's window (target: at least one).
- Time to nest 200 parts (target: under 30 s).

Every layout, ours and rectpack's, is re-checked by parametric.batching.validate.

    python bench/bench_batching.py [--seconds 60] [--fast-seconds 5] [--sheet-seconds 20] [--skip-esicup]
                                   [--skip-templates]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import rectpack
from shapely import affinity
from shapely.geometry import Point, Polygon, box

from parametric.batching import FOUR_WAY, GRAIN, Layout, Part, Placement, Sheet, SheetLayout, check_layout, nest

SHEET = Sheet(2440, 1220)
SPACING, MARGIN = 8.0, 10.0
ESICUP = Path(__file__).parent / "data" / "esicup"
BEST_KNOWN = {"albano": 89.82, "shirts": 90.92, "swim": 79.83, "marques": 92.02}
"""sparrow's best-known strip densities in percent (the reference, section 2)."""
ESICUP_HEIGHT = 1220.0
ESICUP_GAP = 3.5
"""Target: within this many points of the best-known density in 60 s."""
ESICUP_FAST = {"albano": 80.0, "marques": 80.0}
"""Target: at least this density (percent) within ``--fast-seconds`` (the reference's 5 s target)."""


# ---- the fixed job sets --------------------------------------------------------------------------------------


def panel(length: float, width: float, holes: tuple[tuple[float, float, float], ...] = ()) -> Polygon:
    plate = box(0, 0, length, width)
    for x, y, radius in holes:
        plate = plate.difference(Point(x, y).buffer(radius, quad_segs=16))
    return plate


def door(length: float = 397, width: float = 900) -> Polygon:
    """A door with two Ø35 hinge cups 22.5 mm from its edge."""
    return panel(length, width, ((22.5, 100, 17.5), (22.5, width - 100, 17.5)))


def frame_door(length: float = 396, width: float = 715, window: tuple[float, float] = (236, 555)) -> Polygon:
    x0, y0 = (length - window[0]) / 2, (width - window[1]) / 2
    return box(0, 0, length, width).difference(box(x0, y0, x0 + window[0], y0 + window[1]))


def disc(diameter: float = 80) -> Polygon:
    return Point(0, 0).buffer(diameter / 2, quad_segs=16)


def arch(width: float = 300, height: float = 250) -> Polygon:
    radius = width / 2
    return box(-radius, 0, radius, height - radius).union(Point(0, height - radius).buffer(radius, quad_segs=16))


def gusset(size: float = 150) -> Polygon:
    return Polygon([(0, 0), (size, 0), (0, size)]).difference(Point(size * 0.3, size * 0.3).buffer(10, quad_segs=8))


def name_plate(length: float = 200, width: float = 60) -> Polygon:
    return box(10, 10, length - 10, width - 10).buffer(10, quad_segs=8)


def l_bracket(length: float = 250, height: float = 180, arm: float = 60) -> Polygon:
    shape = box(0, 0, length, arm).union(box(0, 0, arm, height))
    return shape.difference(Point(arm / 2, arm / 2).buffer(5, quad_segs=8))


def flat_pack() -> list[Part]:
    """(a) three bookcases (sides, tops and bottoms, shelves), doors with hinge cups, spare shelf boards."""
    return [Part("bookcase side 1800x300", panel(1800, 300), 6, GRAIN),
            Part("bookcase top/bottom 762x300", panel(762, 300), 6, GRAIN),
            Part("bookcase shelf 762x280", panel(762, 280), 12, GRAIN),
            Part("door 397x900 with hinge cups", door(), 6, GRAIN),
            Part("shelf board 600x250", panel(600, 250), 6, GRAIN)]


def shaped() -> list[Part]:
    """(b) 200 parts: discs, arches, gussets with holes, L-brackets, rounded plates and frame doors with windows."""
    return [Part("gusset", gusset(), 40, FOUR_WAY), Part("arch", arch(), 30, FOUR_WAY),
            Part("disc 80", disc(), 60, FOUR_WAY), Part("name plate", name_plate(), 40, FOUR_WAY),
            Part("L-bracket", l_bracket(), 26, FOUR_WAY), Part("frame door", frame_door(), 4, GRAIN)]


def cabinet_job_a() -> list[Part]:
    """The reference's job A (56 parts): cabinet panels, doors, frame doors and small shaped parts."""
    return [Part("side", panel(720, 560), 4, GRAIN), Part("top/bottom", panel(764, 560), 4, GRAIN),
            Part("shelf", panel(762, 300), 6, GRAIN), Part("door", door(396, 715), 4, GRAIN),
            Part("frame door", frame_door(), 2, GRAIN), Part("gusset", gusset(), 8, FOUR_WAY),
            Part("name plate", name_plate(), 10, FOUR_WAY), Part("disc 80", disc(), 12, FOUR_WAY),
            Part("arch", arch(), 6, FOUR_WAY)]


def bench_router():
    """A shop router for the templates case: 2440 x 1220 birch plywood, a Ø6 end mill and a 5 mm drill."""
    from parametric.machines import machine_from_dict, router_record

    return machine_from_dict(router_record("bench", bed="2500x1250", dialect="linuxcnc",
                                           tools=["1:6:endmill:2:25", "2:5:drill:2:40"],
                                           stock=["birch_plywood:18:2440x1220"]))


def own_items():
    """(d) three Billy-depth bookcases, six 60 cm kitchen doors and four 80 cm drawer fronts, birch plywood."""
    import parametric
    from parametric.batching.sheets import SheetItem

    def rendered(template, preset):
        return parametric.render(template, {}, preset=preset, material="birch_plywood", formats=["step"])

    return [SheetItem(rendered("bookcase", "billy-depth"), 3, "BENCH", "1"),
            SheetItem(rendered("cabinet_door", "ikea-60-kitchen"), 6, "BENCH", "2"),
            SheetItem(rendered("cabinet_door", "drawer-front-80"), 4, "BENCH", "3")]


def own_templates() -> list[Part]:
    from parametric.batching.sheets import parts_by_stock

    return parts_by_stock(own_items(), bench_router())[("birch_plywood", 18.0)]


def sheet_flow(seconds: float) -> dict:
    """The whole flow on (d): render (cached), features, nesting, sheet CAM and rs274, timed."""
    import tempfile

    from parametric.batching.sheets import cut_sheets
    from parametric.cnc import interpreter_path

    items = own_items()
    with tempfile.TemporaryDirectory(prefix="bench-sheets-") as folder:
        started = time.perf_counter()
        job = cut_sheets(items, bench_router(), folder, seconds=seconds, verify=interpreter_path() is not None,
                         png=False)
        elapsed = time.perf_counter() - started
    parts = sum(len(sheet.placed) for sheet in job.sheets)
    print(f"(d) sheet flow: {parts} parts on {len(job.sheets)} sheets, {elapsed:.1f} s with a {seconds:g} s nesting "
          f"budget per stock (features, nesting, sheet CAM{', rs274' if interpreter_path() else ''}); machining "
          f"{job.machining_time_s / 3600:.2f} h; {len(job.unplaced)} unplaced (backs: 6 mm sheet not stocked)",
          flush=True)
    return {"parts": parts, "sheets": len(job.sheets), "seconds": round(elapsed, 1),
            "machining_time_s": round(job.machining_time_s, 1), "unplaced": len(job.unplaced)}


# ---- the baseline: rectpack on bounding boxes ----------------------------------------------------------------

RECTPACK_ALGORITHMS = (rectpack.MaxRectsBssf, rectpack.MaxRectsBaf, rectpack.MaxRectsBlsf, rectpack.MaxRectsBl,
                       rectpack.SkylineBl, rectpack.SkylineBlWm, rectpack.SkylineMwf, rectpack.SkylineMwfl,
                       rectpack.GuillotineBssfSas, rectpack.GuillotineBafSas, rectpack.GuillotineBlsfSas,
                       rectpack.GuillotineBssfMaxas)
RECTPACK_SORTS = (rectpack.SORT_AREA, rectpack.SORT_PERI, rectpack.SORT_LSIDE, rectpack.SORT_SSIDE)


def rectpack_baseline(parts: list[Part], sheet: Sheet) -> Layout:
    """The best of rectpack's heuristics on the parts' bounding boxes grown by the spacing. Its
    90° rotation is global, so it is used only when every part may turn a quarter; otherwise
    quarter-turning parts are laid long side along the sheet first."""
    scale = 10
    quarter = all(part.rotations is None or 90.0 in part.rotations for part in parts)
    boxes = []
    for index, part in enumerate(parts):
        turn = 0.0
        minx, miny, maxx, maxy = part.outline.bounds
        if not quarter and part.rotations and 90.0 in part.rotations and maxy - miny > maxx - minx:
            turn = 90.0
        boxes.extend((index, turn) for _ in range(part.count))
    length, width = sheet.length_mm - 2 * MARGIN + SPACING, sheet.width_mm - 2 * MARGIN + SPACING
    best: tuple[tuple[int, float], Layout] | None = None
    for algorithm in RECTPACK_ALGORITHMS:
        for sort in RECTPACK_SORTS:
            for bin_algo in (rectpack.PackingBin.BFF, rectpack.PackingBin.BBF):
                packer = rectpack.newPacker(pack_algo=algorithm, sort_algo=sort, bin_algo=bin_algo, rotation=quarter)
                for rid, (index, turn) in enumerate(boxes):
                    minx, miny, maxx, maxy = affinity.rotate(parts[index].outline, turn, origin=(0, 0)).bounds
                    packer.add_rect(math.ceil((maxx - minx + SPACING) * scale),
                                    math.ceil((maxy - miny + SPACING) * scale), rid)
                packer.add_bin(math.floor(length * scale), math.floor(width * scale), count=len(boxes))
                packer.pack()
                found = packer.rect_list()
                if len(found) < len(boxes):
                    continue
                sheets: dict[int, list[tuple[int, float, float, float]]] = {}
                for bin_index, x, y, w, _, rid in found:
                    index, turn = boxes[rid]
                    minx, _, maxx, _ = affinity.rotate(parts[index].outline, turn, origin=(0, 0)).bounds
                    if w != math.ceil((maxx - minx + SPACING) * scale):
                        turn = (turn + 90.0) % 360.0
                    minx, miny, _, _ = affinity.rotate(parts[index].outline, turn, origin=(0, 0)).bounds
                    sheets.setdefault(bin_index, []).append((index, turn, x / scale + MARGIN - minx,
                                                             y / scale + MARGIN - miny))
                layout = _baseline_layout(parts, sheet, list(sheets.values()))
                score = (len(layout.sheets), layout.sheet_equivalents)
                if best is None or score < best[0]:
                    best = (score, layout)
    assert best is not None, "rectpack placed no layout"
    return best[1]


def _baseline_layout(parts: list[Part], sheet: Sheet, raw: list[list[tuple[int, float, float, float]]]) -> Layout:
    copies = [0] * len(parts)
    sheets = []
    measured = []
    for entries in raw:
        placements = []
        for index, turn, x, y in entries:
            copies[index] += 1
            placements.append(Placement(index, copies[index], x, y, turn))
        polygons = [entry.polygon(parts[entry.part].outline) for entry in placements]
        measured.append((max(polygon.bounds[2] for polygon in polygons), sum(p.area for p in polygons), placements))
    measured.sort(key=lambda entry: -entry[0])  # the least used sheet last: its offcut is kept
    for number, (used, area, placements) in enumerate(measured, start=1):
        sheets.append(SheetLayout(number, sheet, tuple(placements), used, area / sheet.area_mm2))
    return Layout(tuple(sheets), (), "rectpack")


# ---- the figures ---------------------------------------------------------------------------------------------


def checked(layout: Layout, parts: list[Part]) -> int:
    return len(check_layout(layout, parts, spacing_mm=SPACING, margin_mm=MARGIN))


def in_windows(layout: Layout, parts: list[Part]) -> int:
    """Parts whose placed outline lies inside another placed part's cut-out (measured, not the engine's word)."""
    count = 0
    for sheet in layout.sheets:
        polygons = [entry.polygon(parts[entry.part].outline) for entry in sheet.placements]
        holes = [Polygon(ring) for polygon in polygons for ring in polygon.interiors]
        count += sum(1 for polygon in polygons if any(hole.contains(polygon) for hole in holes))
    return count


def sheets_case(name: str, parts: list[Part], seconds: float, target: str) -> dict:
    started = time.perf_counter()
    baseline = rectpack_baseline(parts, SHEET)
    baseline_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = nest(parts, SHEET, spacing_mm=SPACING, margin_mm=MARGIN, seconds=seconds)
    ours_s = time.perf_counter() - started
    ratio = ours.sheet_equivalents / baseline.sheet_equivalents
    if target == "panels":
        met = len(ours.sheets) <= len(baseline.sheets) and ratio <= 1.01
    else:
        met = len(ours.sheets) <= len(baseline.sheets) and ratio <= 0.85
    row = {"case": name, "parts": sum(part.count for part in parts),
           "ours": {"sheets": len(ours.sheets), "sheet_equivalents": round(ours.sheet_equivalents, 3),
                    "engine": ours.engine, "seconds": round(ours_s, 1), "violations": checked(ours, parts),
                    "unplaced": len(ours.unplaced), "in_windows": in_windows(ours, parts),
                    "utilisation": [round(sheet.utilisation, 3) for sheet in ours.sheets],
                    "remnant_mm": ours.remnant_mm},
           "rectpack": {"sheets": len(baseline.sheets), "sheet_equivalents": round(baseline.sheet_equivalents, 3),
                        "seconds": round(baseline_s, 1), "violations": checked(baseline, parts)},
           "ratio": round(ratio, 4), "target": "<= rectpack sheets, <= +1%" if target == "panels"
           else "<= rectpack sheets, >= 15% fewer sheet-eq", "met": met}
    print(f"{name:<28} ours {len(ours.sheets)} sheets ({ours.sheet_equivalents:.3f} eq, {ours.engine}, "
          f"{ours_s:.1f} s, {row['ours']['violations']} violations, {row['ours']['in_windows']} in windows) | "
          f"rectpack {len(baseline.sheets)} ({baseline.sheet_equivalents:.3f} eq, {baseline_s:.1f} s, "
          f"{row['rectpack']['violations']} violations) | ratio {ratio:.3f} ({(ratio - 1) * 100:+.1f}%) "
          f"{'MET' if met else 'NOT MET'}", flush=True)
    return row


def esicup_parts(name: str) -> list[Part]:
    """An ESICUP instance as parts, scaled so the strip is 1220 mm high (density does not depend on scale)."""
    data = json.loads((ESICUP / f"{name}.json").read_text())
    scale = 1220.0 / data["strip_height"]
    parts = []
    for item in data["items"]:
        outline = affinity.scale(Polygon(item["shape"]["data"]), scale, scale, origin=(0, 0))
        turns = item.get("allowed_orientations")
        parts.append(Part(f"{name}-{item['id']}", outline, item["demand"],
                          None if turns is None else tuple(float(turn) for turn in turns)))
    return parts


def strip_density(layout: Layout, parts: list[Part]) -> float:
    [sheet] = layout.sheets
    return 100 * sum(part.outline.area * part.count for part in parts) / (sheet.used_length_mm * ESICUP_HEIGHT)


def rectpack_strip(parts: list[Part]) -> Layout:
    """rectpack's shortest strip ESICUP_HEIGHT mm high for the parts' bounding boxes: the best of its heuristics at
    each strip length of a bisection (0.1 mm). Quarter turns only where every part of the instance may take them
    (rectpack's rotation is global); a half turn does not change a bounding box."""
    scale = 10
    quarter = all(part.rotations is None or 90.0 in part.rotations for part in parts)
    boxes = [(index, math.ceil((part.outline.bounds[2] - part.outline.bounds[0]) * scale),
              math.ceil((part.outline.bounds[3] - part.outline.bounds[1]) * scale))
             for index, part in enumerate(parts) for _ in range(part.count)]
    height = math.floor(ESICUP_HEIGHT * scale)

    def packed(length: int) -> list | None:
        for algorithm in RECTPACK_ALGORITHMS:
            for sort in RECTPACK_SORTS:
                packer = rectpack.newPacker(pack_algo=algorithm, sort_algo=sort, rotation=quarter)
                for rid, (_, w, h) in enumerate(boxes):
                    packer.add_rect(w, h, rid)
                packer.add_bin(length, height)
                packer.pack()
                found = packer.rect_list()
                if len(found) == len(boxes):
                    return found
        return None

    low = max(min(w, h) if quarter else w for _, w, h in boxes)  # no strip is shorter than its widest box
    high = sum(max(w, h) for _, w, h in boxes)
    best = packed(high)
    assert best is not None, "rectpack placed no strip"
    while high - low > 1:
        middle = (low + high) // 2
        found = packed(middle)
        if found is None:
            low = middle
        else:
            high, best = middle, found
    copies = [0] * len(parts)
    placements = []
    for _, x, y, w, _, rid in best:
        index, width, _ = boxes[rid]
        turn = 0.0 if w == width else 90.0
        minx, miny, _, _ = affinity.rotate(parts[index].outline, turn, origin=(0, 0)).bounds
        copies[index] += 1
        placements.append(Placement(index, copies[index], x / scale - minx, y / scale - miny, turn))
    used = max(entry.polygon(parts[entry.part].outline).bounds[2] for entry in placements)
    area = sum(part.outline.area * part.count for part in parts)
    sheet = Sheet(high / scale, ESICUP_HEIGHT)
    return Layout((SheetLayout(1, sheet, tuple(placements), used, area / sheet.area_mm2),), (), "rectpack")


def esicup_case(name: str, seconds: float) -> dict:
    """Strip packing through nest() (one sheet as long as all the items end to end, spacing and margin 0) beside
    rectpack's shortest bounding-box strip, both checked by check_layout."""
    parts = esicup_parts(name)
    started = time.perf_counter()
    baseline = rectpack_strip(parts)
    baseline_s = time.perf_counter() - started
    baseline_density = strip_density(baseline, parts)
    length = sum(max(p.outline.bounds[2] - p.outline.bounds[0], p.outline.bounds[3] - p.outline.bounds[1]) * p.count
                 for p in parts)
    started = time.perf_counter()
    layout = nest(parts, Sheet(length, ESICUP_HEIGHT), spacing_mm=0.0, margin_mm=0.0, seconds=seconds)
    elapsed = time.perf_counter() - started
    density = strip_density(layout, parts)
    violations = len(check_layout(layout, parts, spacing_mm=0.0, margin_mm=0.0))
    baseline_violations = len(check_layout(baseline, parts, spacing_mm=0.0, margin_mm=0.0))
    gap = BEST_KNOWN[name] - density
    met = gap <= ESICUP_GAP and violations == 0
    print(f"ESICUP {name:<8} {seconds:g} s: density {density:.2f}% ({layout.engine}, {elapsed:.1f} s, "
          f"{violations} violations) | rectpack boxes {baseline_density:.2f}% ({baseline_s:.1f} s, "
          f"{baseline_violations} violations) | {density - baseline_density:+.2f} points on rectpack, "
          f"best-known {BEST_KNOWN[name]:.2f}%, gap {gap:.2f} points (target <= {ESICUP_GAP:g}) "
          f"{'MET' if met else 'NOT MET'}", flush=True)
    return {"instance": name, "seconds_limit": seconds, "density": round(density, 2),
            "rectpack_density": round(baseline_density, 2), "best_known": BEST_KNOWN[name], "gap": round(gap, 2),
            "seconds": round(elapsed, 1), "engine": layout.engine, "violations": violations,
            "rectpack_violations": baseline_violations, "met": met}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="time per ESICUP instance (default 60)")
    parser.add_argument("--fast-seconds", type=float, default=5.0,
                        help="time for the quick ESICUP check on albano and marques (default 5; 0 skips it)")
    parser.add_argument("--sheet-seconds", type=float, default=20.0, help="time per sheet job (default 20)")
    parser.add_argument("--skip-esicup", action="store_true")
    parser.add_argument("--skip-templates", action="store_true", help="skip (d), which renders the templates")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures: dict = {"sheets": [], "esicup": []}
    figures["sheets"].append(sheets_case("(a) flat-pack panels", flat_pack(), args.sheet_seconds, "panels"))
    figures["sheets"].append(sheets_case("(b) shaped parts", shaped(), args.sheet_seconds, "shaped"))
    figures["sheets"].append(sheets_case("(c) cabinet job A (mixed)", cabinet_job_a(), args.sheet_seconds, "panels"))
    if not args.skip_templates:
        figures["sheets"].append(sheets_case("(d) own templates (B-rep)", own_templates(), args.sheet_seconds,
                                             "panels"))
        figures["sheet_flow"] = sheet_flow(args.sheet_seconds)
    windows = figures["sheets"][1]["ours"]["in_windows"]
    print(f"part-in-part: {windows} part(s) inside frame door windows in (b) (target >= 1)", flush=True)
    shaped_row = figures["sheets"][1]
    figures["time_200"] = {"parts": shaped_row["parts"], "seconds": shaped_row["ours"]["seconds"],
                           "budget_s": args.sheet_seconds}
    print(f"time to nest {shaped_row['parts']} parts ((b)): {shaped_row['ours']['seconds']:.1f} s with a "
          f"{args.sheet_seconds:g} s budget (target < 30 s)", flush=True)
    if not args.skip_esicup:
        for name in BEST_KNOWN:
            figures["esicup"].append(esicup_case(name, args.seconds))
        rows = figures["esicup"]
        mean = sum(row["gap"] for row in rows) / len(rows)
        mean_baseline = sum(row["best_known"] - row["rectpack_density"] for row in rows) / len(rows)
        missed = [row["instance"] for row in rows if not row["met"]]
        figures["esicup_mean_gap"] = round(mean, 2)
        print(f"ESICUP mean gap to best-known: {mean:.2f} points, rectpack boxes {mean_baseline:.2f} points "
              f"(target <= {ESICUP_GAP:g}) {'MET' if mean <= ESICUP_GAP else 'NOT MET'}; per instance: "
              f"{len(rows) - len(missed)} of {len(rows)} met" + (f" ({', '.join(missed)} missed)" if missed else ""),
              flush=True)
        if args.fast_seconds > 0:
            figures["esicup_fast"] = []
            for name, floor in ESICUP_FAST.items():
                row = esicup_case(name, args.fast_seconds)
                row["fast_met"] = row["density"] >= floor
                figures["esicup_fast"].append(row)
                print(f"ESICUP {name:<8} within {args.fast_seconds:g} s: {row['density']:.2f}% (target >= {floor:g}%) "
                      f"{'MET' if row['fast_met'] else 'NOT MET'}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
