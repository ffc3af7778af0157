"""Printers people have at home, read from the vendor profiles PrusaSlicer ships (``profiles/<Vendor>.ini``).

``data/home_printers.toml`` names the printers offered (vendor bundle and preset name); their bed, height,
nozzle, G-code flavour and start and end G-code come from the installed PrusaSlicer's own bundle, with the
bundle's ``inherits`` chains resolved, so a plate made for "Original Prusa MINI" is what PrusaSlicer itself would
set up for that printer.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import FieldError, ValidationError
from ..machines import Printer

META_KEYS = {"inherits", "renamed_from", "printer_vendor", "thumbnails",
             "default_filament_profile", "default_print_profile", "printer_settings_id", "compatible_printers",
             "compatible_printers_condition", "alias", "host_type", "printer_notes"}
"""Keys of a vendor preset that describe the preset, not the printer (PrusaSlicer sets them from the bundle)."""


@dataclass(frozen=True)
class HomePrinter:
    """A printer a customer may print at home: its id in our list, the name people know, and its resolved
    PrusaSlicer printer options."""

    id: str
    name: str
    options: dict[str, str]

    def printer(self) -> Printer:
        """The printer as the packer and the profile builder read it (bed from ``bed_shape``, in mm)."""
        points = [tuple(float(v) for v in point.split("x")) for point in self.options["bed_shape"].split(",")]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        nozzle = float(self.options.get("nozzle_diameter", "0.4").split(",")[0])
        return Printer(name=self.name, build_volume_mm=(max(xs) - min(xs), max(ys) - min(ys),
                                                        float(self.options.get("max_print_height", "200"))),
                       nozzle_diameter_mm=nozzle, gcode_flavor=self.options.get("gcode_flavor", "marlin2"),
                       materials=[])


def profiles_folder() -> Path:
    """Where PrusaSlicer keeps its vendor bundles (``PARAMETRIC_PRUSASLICER_PROFILES`` to point elsewhere)."""
    return Path(os.environ.get("PARAMETRIC_PRUSASLICER_PROFILES", "/usr/share/PrusaSlicer/profiles"))


def read_bundle(path: Path) -> dict[str, dict[str, str]]:
    """A vendor bundle's sections (``printer:NAME`` and the rest), each as its own keys (no inheritance)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in path.read_text("utf-8", errors="replace").splitlines():
        if line.startswith("[") and line.rstrip().endswith("]"):
            current = sections.setdefault(line.strip()[1:-1], {})
        elif current is not None and " = " in line and not line.startswith((";", "#")):
            key, value = line.split(" = ", 1)
            current[key.strip()] = value
        elif current is not None and line.rstrip().endswith(" =") and not line.startswith((";", "#")):
            current[line.rstrip()[:-2].strip()] = ""
    return sections


def resolve(sections: dict[str, dict[str, str]], name: str, kind: str = "printer") -> dict[str, str]:
    """The options of preset ``kind:name`` with its ``inherits`` chain applied (parents first, in order)."""
    found = sections.get(f"{kind}:{name}")
    if found is None:
        raise KeyError(f"no {kind} preset {name!r}")
    options: dict[str, str] = {}
    for parent in (p.strip().strip('"') for p in found.get("inherits", "").split(";")):
        if parent:
            options.update(resolve(sections, parent, kind))
    options.update(found)
    return options


@cache
def home_printers() -> dict[str, HomePrinter]:
    """The printers offered, by id, as the installed PrusaSlicer describes them; a printer whose bundle or
    preset is missing from this installation is left out (never guessed)."""
    listing = tomllib.loads(resources.files("parametric.data").joinpath("home_printers.toml").read_text("utf-8"))
    printers: dict[str, HomePrinter] = {}
    bundles: dict[str, dict[str, dict[str, str]]] = {}
    for printer_id, entry in listing.items():
        path = profiles_folder() / f"{entry['vendor']}.ini"
        if entry["vendor"] not in bundles:
            bundles[entry["vendor"]] = read_bundle(path) if path.is_file() else {}
        try:
            options = resolve(bundles[entry["vendor"]], entry["preset"])
        except KeyError:
            continue
        options = {k: v for k, v in options.items() if k not in META_KEYS}
        if "bed_shape" in options:
            printers[printer_id] = HomePrinter(printer_id, entry["name"], options)
    return printers


def get_home_printer(printer_id: Any) -> HomePrinter:
    """The printer called ``printer_id``, or a :class:`ValidationError` listing those offered."""
    found = home_printers().get(printer_id) if isinstance(printer_id, str) else None
    if found is None:
        names = ", ".join(f"{p.id} ({p.name})" for p in home_printers().values()) or "none on this server"
        raise ValidationError([FieldError("printer", f"{str(printer_id)[:40]!r} is not a printer we know; "
                                                     f"choose one of: {names}")])
    return found
