"""``parametric gallery``: every template's presets rendered, with pictures and an index page."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_gallery(args: argparse.Namespace) -> int:
    from ..gallery import build_gallery

    def report(template_id: str, preset: str, manifest: Any) -> None:
        took = "cached" if manifest.cache_hit else f"{manifest.timings['total_s']:.2f} s"
        size = " x ".join(f"{v:.0f}" for v in manifest.bbox_mm)
        print(f"{template_id:<16} {preset:<24} {size} mm  {took}")

    index = build_gallery(Path(args.out), args.template or None, with_pictures=not args.no_pictures,
                          on_render=report)
    print(index)
    return 0


def add_command(commands: Any) -> None:
    gallery = commands.add_parser("gallery", help="render every preset to pictures and an index page")
    gallery.add_argument("--out", default="output/gallery", help="folder (default output/gallery)")
    gallery.add_argument("--template", action="append", help="only this template (repeatable)")
    gallery.add_argument("--no-pictures", action="store_true", help="files and index only")
    gallery.set_defaults(handler=cmd_gallery)
