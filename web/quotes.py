"""Quotes: price and lead time of one order line before it is ordered.

Price per unit = material (the part's mass × the material's cost per kg) + machine time
(volume ÷ the process's deposition or cutting rate, at the process's hourly rate); each
line adds the process's setup fee. Lead time = the files' wait in the render queue (items
queued or rendering × the mean render time ÷ workers) + the process's production days.
Rates live in configuration. The mass comes from the core: a cached configuration answers
from its cache entry without loading the CAD kernel; a new one is built here, once.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import parametric
from parametric.materials import get_material

from .generation import Generation
from .orders import ItemRequest

QUOTE_FORMATS = ("stl",)
_kernel = threading.Lock()  # the CAD kernel is not thread-safe: one build at a time in this process


def measure(item: ItemRequest, generation: Generation) -> parametric.Manifest:
    """The core's render of the line (STL only) for its mass and volume; builds only on a cache miss."""
    key = generation.key(item.template, item.params)

    def render() -> parametric.Manifest:
        return parametric.render(item.template.id, item.params, formats=QUOTE_FORMATS, material=item.material,
                                 settings=generation.settings, cache=generation.cache)

    if generation.cache.lookup(key, QUOTE_FORMATS) is not None:
        return render()
    with _kernel:
        return render()


def _rate(table: Mapping[str, Any], process: str, name: str) -> float:
    try:
        return float(table[process])
    except (KeyError, TypeError, ValueError):
        raise RuntimeError(f"configuration {name} has no number for process {process!r}") from None


def quote(item: ItemRequest, generation: Generation, config: Mapping[str, Any]) -> dict[str, Any]:
    """Price and lead time of ``item`` (raises ``parametric.GeometryError`` if it cannot be built)."""
    manifest = measure(item, generation)
    material = get_material(item.material)
    process = material.process
    unit_mass_g = manifest.mass_g
    volume_mm3 = manifest.volume_mm3
    machine_hours = volume_mm3 / _rate(config["MACHINE_RATE_MM3_PER_S"], process, "MACHINE_RATE_MM3_PER_S") / 3600
    material_cost = unit_mass_g / 1000 * material.cost_per_kg
    machine_cost = machine_hours * _rate(config["MACHINE_RATE_PER_HOUR"], process, "MACHINE_RATE_PER_HOUR")
    setup = _rate(config["SETUP_FEE"], process, "SETUP_FEE")
    unit = material_cost + machine_cost
    total = unit * item.quantity + setup

    depth = generation.queue_depth()
    render_s = generation.average_render_seconds()
    workers = max(1, int(config["QUEUE_WORKERS"]))
    files_in_s = (depth * render_s) / workers + (0.0 if generation.is_cached(item.template, item.params)
                                                 else render_s)
    production_days = int(_rate(config["PRODUCTION_DAYS"], process, "PRODUCTION_DAYS"))
    days = production_days + math.ceil(files_in_s / 86400)
    today = datetime.now(UTC).date()

    def money(value: float) -> float:
        return round(value + 1e-9, 2)

    return {
        "template": item.template.id, "version": item.template.version, "params": item.params,
        "material": {"id": material.id, "name": material.name, "process": process,
                     "cost_per_kg": material.cost_per_kg},
        "quantity": item.quantity,
        "unit": {"mass_g": unit_mass_g, "volume_mm3": volume_mm3, "bbox_mm": manifest.bbox_mm,
                 "machine_hours": round(machine_hours, 3)},
        "price": {"currency": config["CURRENCY"], "material": money(material_cost * item.quantity),
                  "machine": money(machine_cost * item.quantity), "setup": money(setup),
                  "unit": money(unit), "total": money(total)},
        "lead_time": {"days": days, "ships_by": (today + timedelta(days=days)).isoformat(),
                      "production_days": production_days, "queue_depth": depth,
                      "files_ready_in_s": round(files_in_s, 1), "average_render_s": round(render_s, 2)},
    }
