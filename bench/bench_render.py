"""Render benchmark: per template, warm process, p50/p95 of build, tessellation, each export,
a full render (STEP+STL+3MF+GLB) at defaults, presets and range extremes, and cache hits
through Python and through the CLI. Prints its figures; asserts nothing.

    .venv/bin/python bench/bench_render.py [--repeats 5] [--template ID ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PARAMETRIC_OUTPUT", tempfile.mkdtemp(prefix="parametric-bench-"))

import parametric  # noqa: E402
from parametric.cache import Cache  # noqa: E402
from parametric.errors import ValidationError  # noqa: E402
from parametric.export import ExportSettings  # noqa: E402

FULL = ("step", "stl", "3mf", "glb")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def fmt(values: list[float]) -> str:
    return f"p50 {percentile(values, 50) * 1000:7.1f} ms  p95 {percentile(values, 95) * 1000:7.1f} ms"


def extremes(template) -> dict[str, dict]:
    """Each range at its minimum, and each at its maximum, where the rules allow it."""
    cases = {}
    for end in ("minimum", "maximum"):
        values = {}
        for name in template.Params.model_fields:
            meta = template.Params.field_help(name)
            if meta.get(end) is not None and meta.get("unit") != "count":
                trial = {**values, name: meta[end]}
                try:
                    template.validate(trial)
                    values = trial
                except ValidationError:
                    pass
        cases[end] = values
    return cases


def timed_render(template_id: str, params: dict, preset: str | None, repeats: int, settings: ExportSettings):
    """Full renders with the cache emptied before each one (a warm process, a cold cache)."""
    totals, stages = [], {}
    cache = Cache(Path(tempfile.mkdtemp(prefix="bench-cache-")))
    for _ in range(repeats):
        started = time.perf_counter()
        manifest = parametric.render(template_id, params, preset=preset, formats=FULL, settings=settings,
                                     cache=cache)
        totals.append(time.perf_counter() - started)
        for name, value in manifest.timings.items():
            stages.setdefault(name, []).append(value)
        import shutil

        shutil.rmtree(cache.root)
    return totals, stages, manifest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--template", action="append")
    args = parser.parse_args()
    settings = ExportSettings()
    print(f"parametric render benchmark — {os.cpu_count()} cores, {args.repeats} repeats, tolerance "
          f"{settings.tolerance} mm; cold cache, warm process")

    started = time.perf_counter()
    parametric.render("wall_shelf", {"width": 801}, formats=("stl",), cache=Cache(Path(tempfile.mkdtemp())))
    print(f"first render in a fresh process (imports the CAD kernel): {time.perf_counter() - started:.2f} s\n")

    worst = []
    for template in parametric.templates():
        if args.template and template.id not in args.template:
            continue
        cases = [("defaults", {}, None)] + [(f"preset {k}", {}, k) for k in template.presets]
        cases += [(f"all {end}", values, None) for end, values in extremes(template).items()]
        if template.id == "bookcase":
            cases.append(("8 shelves", {"shelf_count": 8}, None))
        if template.id == "wall_shelf":
            cases.append(("width 800", {"width": 800}, None))
        print(f"== {template.id}")
        for label, params, preset in cases:
            try:
                totals, stages, manifest = timed_render(template.id, params, preset, args.repeats, settings)
            except ValidationError as error:
                print(f"  {label:<28} refused: {error}")
                continue
            worst.append((percentile(totals, 95), template.id, label))
            detail = "  ".join(f"{k.removesuffix('_s')} {statistics.median(v) * 1000:.0f}"
                               for k, v in stages.items() if k != "total_s")
            print(f"  {label:<28} full render {fmt(totals)}   [{detail} ms]")

    print("\n== cache hits (wall_shelf width 800)")
    parametric.render("wall_shelf", {"width": 800}, formats=FULL)
    hits = []
    out = Path(tempfile.mkdtemp())
    for i in range(200):
        started = time.perf_counter()
        parametric.render("wall_shelf", {"width": 800}, formats=FULL, out_dir=out / str(i % 5))
        hits.append(time.perf_counter() - started)
    print(f"  Python render() cache hit, files placed + manifest written:  {fmt(hits)}   (target p50 < 20 ms)")
    cli = []
    for _ in range(max(5, args.repeats)):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "parametric.cli", "render", "wall_shelf", "--set", "width=800",
                        "--out", str(out / "cli")], check=True, capture_output=True)
        cli.append(time.perf_counter() - started)
    print(f"  CLI `parametric render` cache hit, whole process wall time:  {fmt(cli)}   (target < 500 ms)")

    print("\n== slowest full renders (p95)")
    for seconds, template_id, label in sorted(worst, reverse=True)[:5]:
        print(f"  {seconds:6.2f} s  {template_id} {label}")


if __name__ == "__main__":
    main()
