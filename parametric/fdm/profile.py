"""A PrusaSlicer profile from the printer and material records and the print settings.

The profile (an ini file of PrusaSlicer's own option names) comes from the printer (bed, height,
nozzle, filament diameter, G-code flavor), the material table (density and cost, so the
estimates carry grams and money), ``data/printing.toml`` (temperatures, fans) and the print
settings (layer height, infill, perimeters).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

from ..errors import FieldError, ValidationError
from ..machines import Printer
from ..materials import get_material

PLATE_SPACING_MM = 6.0
"""Room PrusaSlicer's arrangement keeps between objects (its ``duplicate_distance``)."""
SKIRT_DISTANCE_MM = 3.0
"""How far the skirt runs from the parts (PrusaSlicer's ``skirt_distance``)."""


def border_mm(printer: Printer, settings: PrintSettings, *, skirt: bool = True) -> float:
    """How far beyond the parts the first layer extrudes, each side: the brim, then the skirt (its distance and
    a line and a half of the nozzle's width), so a plate's parts must keep this far from the bed's edges."""
    brim = settings.brim_width_mm
    return brim + (SKIRT_DISTANCE_MM + 1.5 * printer.nozzle_diameter_mm if skirt else 0.0)


@dataclass(frozen=True)
class PrintSettings:
    """Print quality settings a job chooses: layer height (mm), infill (%), walls, solid layers, supports."""

    layer_height_mm: float = 0.2
    infill_percent: float = 15.0
    perimeters: int = 2
    top_solid_layers: int = 4
    bottom_solid_layers: int = 3
    supports: bool = False
    brim_width_mm: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def problems(self, printer: Printer) -> list[FieldError]:
        """What is wrong with these settings on ``printer``, per field."""
        found = []
        nozzle = printer.nozzle_diameter_mm
        if not 0.25 * nozzle <= self.layer_height_mm <= 0.8 * nozzle:
            found.append(FieldError("layer_height", f"{self.layer_height_mm:g} mm is out of range for a {nozzle:g} mm "
                                                    f"nozzle; allowed: {0.25 * nozzle:g} to {0.8 * nozzle:g} mm"))
        if not 0 <= self.infill_percent <= 100:
            found.append(FieldError("infill", f"{self.infill_percent:g}% is out of range; allowed: 0 to 100%"))
        if not 1 <= self.perimeters <= 20:
            found.append(FieldError("perimeters", f"{self.perimeters} is out of range; allowed: 1 to 20"))
        return found


@cache
def printing_data() -> dict[str, dict[str, Any]]:
    """Per-filament temperatures and fans (``data/printing.toml``)."""
    return tomllib.loads(resources.files("parametric.data").joinpath("printing.toml").read_text("utf-8"))


def build_profile(printer: Printer, material_id: str, settings: PrintSettings | None = None, *,
                  skirt: bool = True) -> dict[str, str]:
    """PrusaSlicer options (``--help-fff`` names) for ``printer`` printing ``material_id`` with ``settings``;
    without ``skirt`` when the parts need the bed up to its edges."""
    settings = settings or PrintSettings()
    material = get_material(material_id)
    if material.process != "fdm" or material_id not in printing_data():
        raise ValidationError([FieldError("material", f"{material_id!r} is not a printing material; allowed: "
                                                      f"{', '.join(printing_data())}")])
    filament = printing_data()[material_id]
    x, y, z = printer.build_volume_mm
    nozzle = printer.nozzle_diameter_mm
    first_layer = min(max(settings.layer_height_mm, 0.2), 0.75 * nozzle)
    return {
        "bed_shape": f"0x0,{x:g}x0,{x:g}x{y:g},0x{y:g}",
        "max_print_height": f"{z:g}",
        "nozzle_diameter": f"{nozzle:g}",
        "gcode_flavor": printer.gcode_flavor,
        "filament_diameter": f"{printer.filament_diameter_mm:g}",
        "filament_density": f"{material.density_g_cm3:g}",
        "filament_cost": f"{material.cost_per_kg:g}",
        "filament_type": filament["filament_type"],
        "filament_max_volumetric_speed": f"{filament['max_volumetric_speed']:g}",
        "temperature": f"{filament['temperature']:g}",
        "first_layer_temperature": f"{filament['first_layer_temperature']:g}",
        "bed_temperature": f"{filament['bed_temperature']:g}",
        "first_layer_bed_temperature": f"{filament['first_layer_bed_temperature']:g}",
        "min_fan_speed": f"{filament['min_fan_speed']:g}",
        "max_fan_speed": f"{filament['max_fan_speed']:g}",
        "layer_height": f"{settings.layer_height_mm:g}",
        "first_layer_height": f"{first_layer:g}",
        "fill_density": f"{settings.infill_percent:g}%",
        "fill_pattern": "gyroid" if settings.infill_percent < 100 else "rectilinear",
        "perimeters": str(settings.perimeters),
        "top_solid_layers": str(settings.top_solid_layers),
        "bottom_solid_layers": str(settings.bottom_solid_layers),
        "support_material": "1" if settings.supports else "0",
        "support_material_auto": "1",
        "brim_width": f"{settings.brim_width_mm:g}",
        "skirts": "1" if skirt else "0",
        "skirt_distance": f"{SKIRT_DISTANCE_MM:g}",
        "duplicate_distance": f"{PLATE_SPACING_MM:g}",
        "gcode_label_objects": "1",
        "complete_objects": "0",
        "start_gcode": "G28 ; home all axes\\nG1 Z5 F5000 ; lift nozzle",
        "end_gcode": "M104 S0 ; heater off\\nM140 S0 ; bed off\\nM107 ; fan off\\nG28 X0 ; home X\\nM84 ; motors off",
    }


def profile_text(profile: Mapping[str, str]) -> str:
    return "".join(f"{key} = {value}\n" for key, value in profile.items())


