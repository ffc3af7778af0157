"""Manufacturing benchmark: from a rendered part to sliced G-code and to a job sheet, per printed template.

For each template with printed parts (defaults; rendered once, outside the timings) it slices
every printed part with the real PrusaSlicer (the slice cache bypassed) and writes the job
sheet (HTML and PDF), in a warm process. It separates PrusaSlicer's subprocess time from our
own: building the profile, checking the envelope, writing files atomically and reading the
estimates back, and the job sheet. Target: our slicing overhead under 20% of the slicer's time.
A short CAM section times feature extraction, toolpaths and file writing for the CNC templates.
Prints its figures; asserts nothing.

    .venv/bin/python bench/bench_manufacturing.py [--repeats 3] [--template ID ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PARAMETRIC_OUTPUT", tempfile.mkdtemp(prefix="parametric-bench-"))

from parametric import render, templates  # noqa: E402
from parametric.machines import Delivery, Printer, Router, StockSheet, Tool  # noqa: E402
from parametric.materials import materials  # noqa: E402
from parametric.slicing import PrintSettings, printed_material, slice_copies, slicing_record  # noqa: E402

PRINTER = Printer("bench-printer", (350, 350, 350), 0.4,
                  [m.id for m in materials().values() if m.process == "fdm"])
"""Large enough for every template's defaults (an insole is 270 mm long)."""


def bench_router() -> Router:
    from parametric.machines import default_feeds

    sheet = [m.id for m in materials().values() if m.process == "cnc"]

    def tool(number: int, diameter: float, kind: str, reach: float) -> Tool:
        return Tool(number, diameter, kind, 2, reach, {m: default_feeds(m, diameter, 2, kind) for m in sheet})

    return Router("bench-router", (3000, 1500), "grbl", [tool(1, 6, "endmill", 30), tool(2, 5, "drill", 40),
                                                         tool(3, 3, "endmill", 12)],
                  [StockSheet(m, t, (2500, 1250)) for m in sheet for t in (4, 6, 12, 15, 16, 18, 19, 22, 30)],
                  Delivery())


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def slice_once(manifest, material: str, folder: Path) -> tuple[float, float, list]:
    """Slice every printed part of a manifest without the slice cache: (total seconds, slicer seconds, results)."""
    started = time.perf_counter()
    results = []
    for part in manifest.parts:
        if (part.get("process") or "fdm") != "fdm":
            continue
        record = next(r for r in manifest.files if r["format"] == "stl" and r["part"] == part["name"])
        results.extend(slice_copies(manifest.directory / record["filename"], part["size_mm"], PRINTER, material,
                                    folder, copies=part["quantity"], stl_sha256=record["sha256"],
                                    part=part["name"], use_cache=False))
    total = time.perf_counter() - started
    return total, sum(r.slicer_s for r in results), results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--template", action="append", help="only this template (repeatable)")
    args = parser.parse_args()
    from parametric.jobsheet import write_job_sheet

    chosen = [t for t in templates() if "fdm" in t.process and (not args.template or t.id in args.template)]
    work = Path(tempfile.mkdtemp(prefix="bench-manufacturing-"))
    print(f"PrusaSlicer slicing and job sheets, warm process, {args.repeats} repeats, medians; printer "
          f"{' x '.join(f'{v:g}' for v in PRINTER.build_volume_mm)} mm\n")
    header = (f"{'template':<15} {'parts':>5} {'slicer s':>9} {'ours s':>8} {'overhead':>9}   "
              f"{'sheet html s':>12} {'sheet pdf s':>11} {'ours+sheet':>11}")
    print(header)
    print("-" * len(header))
    sums = {"slicer": 0.0, "ours": 0.0, "sheet": 0.0}
    warmed = False
    for template in chosen:
        process = template.process[0] if len(template.process) == 1 else None
        material = printed_material(template, None)
        manifest = render(template.id, {}, out_dir=work / template.id, formats=["stl", "svg"],
                          material=material if material in template.materials else None)
        if process is None:  # a mixed product: its printed parts only
            manifest.parts = [p for p in manifest.parts if p.get("process") == "fdm"]
        if not warmed:  # imports (jinja2, WeasyPrint) and the first PrusaSlicer start are not ours to count
            _, _, results = slice_once(manifest, material, work / "warm")
            manifest.extra["slicing"] = slicing_record(results, PRINTER, material, 1, PrintSettings())
            write_job_sheet(manifest, work / "warm", order_ref="BENCH", item_ref="0", job_url="https://x/0")
            warmed = True
        slicer, ours, html, pdf = [], [], [], []
        for repeat in range(args.repeats):
            total, slicer_s, results = slice_once(manifest, material, work / template.id / f"run{repeat}")
            slicer.append(slicer_s)
            ours.append(total - slicer_s)
            manifest.extra["slicing"] = slicing_record(results, PRINTER, material, 1, PrintSettings())
            sheet = write_job_sheet(manifest, work / template.id / f"run{repeat}", order_ref="BENCH-1",
                                    item_ref=str(repeat), job_url=f"https://shop.example/jobs/BENCH-1/{repeat}")
            html.append(sheet.timings["html_s"])
            pdf.append(sheet.timings["pdf_s"])
        parts = sum(1 for p in manifest.parts if (p.get("process") or "fdm") == "fdm")
        s, o, h, p = median(slicer), median(ours), median(html), median(pdf)
        sums["slicer"] += s
        sums["ours"] += o
        sums["sheet"] += h + p
        print(f"{template.id:<15} {parts:>5} {s:>9.2f} {o:>8.3f} {o / s * 100:>8.1f}%   {h:>12.3f} {p:>11.3f} "
              f"{(o + h + p) / s * 100:>10.1f}%")
    if chosen:
        print("-" * len(header))
        total_slicer, total_ours, total_sheet = sums["slicer"], sums["ours"], sums["sheet"]
        print(f"{'all':<15} {'':>5} {total_slicer:>9.2f} {total_ours:>8.3f} "
              f"{total_ours / total_slicer * 100:>8.1f}%   {'':>12} {total_sheet:>11.3f} "
              f"{(total_ours + total_sheet) / total_slicer * 100:>10.1f}%")
        verdict = "met" if total_ours / total_slicer < 0.2 else "NOT met"
        print(f"\nslicing overhead target (ours < 20% of PrusaSlicer's time): {verdict}; "
              f"'ours+sheet' adds the job sheet (Jinja2 + WeasyPrint) to our side")

    cnc = [t for t in templates() if "cnc" in t.process and (not args.template or t.id in args.template)]
    if cnc:
        from parametric.cam import cam_manifest, cut_material

        router = bench_router()
        print(f"\nCAM (features from the B-rep, toolpaths, DXF + G-code), {args.repeats} repeats, medians\n")
        print(f"{'template':<15} {'parts':>5} {'features s':>10} {'toolpaths s':>11} {'write s':>8} "
              f"{'machining':>10}")
        for template in cnc:
            material = cut_material(template, None)
            manifest = render(template.id, {}, out_dir=work / f"{template.id}-cnc", formats=["step"],
                              material=material)
            process = template.process[0] if len(template.process) == 1 else None
            timings: dict[str, list[float]] = {"features_s": [], "toolpaths_s": [], "write_s": []}
            machining = 0.0
            for repeat in range(args.repeats):
                results = cam_manifest(manifest, router, material, work / f"{template.id}-cnc" / f"run{repeat}",
                                       process=process)
                for key in timings:
                    timings[key].append(sum(r.timings[key] for r in results))
                machining = sum(r.time_s * r.copies for r in results)
            print(f"{template.id:<15} {len(results):>5} {median(timings['features_s']):>10.3f} "
                  f"{median(timings['toolpaths_s']):>11.3f} {median(timings['write_s']):>8.3f} "
                  f"{machining / 60:>8.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
