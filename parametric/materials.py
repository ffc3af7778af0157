"""The materials table (``data/materials.toml``): density for mass, cost for quotes."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Material:
    id: str
    name: str
    process: str
    density_g_cm3: float
    cost_per_kg: float
    grained: bool = False
    """Sheets of it have a grain along their length (plywood, solid wood): parts that declare a grain
    are nested along it. MDF, plastics and metal have none, so every part may turn."""

    def mass_g(self, volume_mm3: float) -> float:
        """Mass in grams of a solid of ``volume_mm3`` cubic millimetres."""
        return volume_mm3 / 1000.0 * self.density_g_cm3


@cache
def materials() -> dict[str, Material]:
    """Every material the shop stocks, by id."""
    table = tomllib.loads(resources.files("parametric.data").joinpath("materials.toml").read_text("utf-8"))
    return {key: Material(id=key, **value) for key, value in table.items()}


def get_material(material_id: str) -> Material:
    return materials()[material_id]
