"""Quotes: price and lead time of one order line before it is ordered.

Each part is priced in its own material (a wall shelf's oak board is cut, its brackets are
printed in PLA): material + machine time at the process's hourly rate; each process the line
needs adds its setup fee once. For a printed part that a printer in the shop can make, the
time and the filament are PrusaSlicer's estimates for that printer (sliced once per
configuration, then answered from the slice cache); otherwise, and for CNC parts, time comes
from the volume at the process's deposition or cutting rate and material from the solid mass.
Each part says which source it used, and why. Lead time = the files' wait in the render queue
(items queued or rendering x the mean render time / workers) + the longest production time of
the processes. Rates live in configuration. The mass comes from the core: a cached
configuration answers from its cache entry without loading the CAD kernel.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import parametric
from parametric import ValidationError
from parametric.machines import Machine
from parametric.materials import get_material

from .generation import Generation
from .placing import ItemRequest

if TYPE_CHECKING:
    from ..services import Services

QUOTE_FORMATS = ("stl",)
_kernel = threading.Lock()  # the CAD kernel is not thread-safe: one build at a time in this process
_slicer = threading.Lock()  # one PrusaSlicer run at a time for quotes: request threads must not pile them up
log = logging.getLogger(__name__)


def measure(item: ItemRequest, generation: Generation) -> parametric.Manifest:
    """The core's render of the line (STL only) for its mass and volume; builds only on a cache miss."""
    key = generation.key(item.template, item.params)

    def render() -> parametric.Manifest:
        # verified: the STL is handed to the slicer, whose estimates are cached by its recorded SHA-256
        return parametric.render(item.template.id, item.params, formats=QUOTE_FORMATS, material=item.material,
                                 settings=generation.settings, cache=generation.cache, verify=True,
                                 timeout=generation.render_timeout)

    if generation.cache.lookup(key, QUOTE_FORMATS) is not None:
        return render()
    with _kernel:
        return render()


def _rate(table: Mapping[str, Any], process: str, name: str) -> float:
    try:
        return float(table[process])
    except (KeyError, TypeError, ValueError):
        raise RuntimeError(f"configuration {name} has no number for process {process!r}") from None


def _sliced(part: dict[str, Any], manifest: parametric.Manifest, material: str, fleet: Sequence[Machine],
            wait_s: float) -> tuple[dict[str, Any] | None, str]:
    """PrusaSlicer's estimates for one copy of a printed part on the printer it would be routed to,
    or ``None`` and the reason the volume rate is used instead (waiting at most ``wait_s`` for the
    slicer when other quotes are using it)."""
    from parametric.fdm import SlicerError, estimate_part
    from parametric.routing import route

    verdict = route(part, material, fleet, process="fdm")
    if verdict.machine is None:
        return None, verdict.reason
    record = next((r for r in manifest.files if r["format"] == "stl" and r["part"] == part["name"]), None)
    if record is None:
        return None, "no STL of this part to slice"
    if not _slicer.acquire(timeout=wait_s):
        return None, f"the slicer was busy with other quotes for more than {wait_s:g} s"
    try:
        result = estimate_part(manifest.directory / record["filename"], part["size_mm"], verdict.machine,
                               material, stl_sha256=record["sha256"], part=part["name"])
    except (SlicerError, ValidationError) as error:
        log.warning("quote: slicing %s for %s failed: %s", part["name"], verdict.machine.name, error)
        if isinstance(error, ValidationError):  # the part's own problem, in plain words
            return None, f"PrusaSlicer could not slice it for {verdict.machine.name}: {error}"
        # the slicer's own output can name server paths: it stays in the log above
        return None, f"PrusaSlicer could not slice it for {verdict.machine.name} just now"
    finally:
        _slicer.release()
    return {"machine": verdict.machine.name, **result.estimates.to_dict(), "cached": result.cached}, ""


def quote_line(item: ItemRequest, services: Services) -> dict[str, Any]:
    """The quote of ``item`` with the app's services: its rates, render queue and the shop's machines."""
    from .. import machines

    return quote(item, services.generation, services.config, machines.all_machines(services.database))


def quote(item: ItemRequest, generation: Generation, config: Mapping[str, Any],
          fleet: Sequence[Machine] = ()) -> dict[str, Any]:
    """Price and lead time of ``item`` (raises ``parametric.GeometryError`` if it cannot be built).

    ``fleet``: the shop's machines; printed parts a printer can make are priced from PrusaSlicer's
    estimates for it.
    """
    manifest = measure(item, generation)
    chosen = get_material(item.material)
    parts, processes = [], set()
    for part in manifest.parts:
        process = part.get("process") or chosen.process
        material = get_material(part.get("material") or item.material)
        copies = int(part.get("quantity", 1)) * item.quantity
        estimate, reason = (_sliced(part, manifest, material.id, fleet, float(config["QUOTE_SLICER_WAIT_SECONDS"]))
                            if process == "fdm"
                            else (None, "CNC time is estimated from the volume cut"))
        if estimate is not None:
            hours = estimate["print_time_s"] / 3600
            mass_g = estimate["filament_g"]
            source = {"source": "prusaslicer", **estimate}
        else:
            rate = _rate(config["MACHINE_RATE_MM3_PER_S"], process, "MACHINE_RATE_MM3_PER_S")
            hours = part["volume_mm3"] / rate / 3600
            mass_g = material.mass_g(part["volume_mm3"])
            source = {"source": "volume rate", "reason": reason}
        hourly = _rate(config["MACHINE_RATE_PER_HOUR"], process, "MACHINE_RATE_PER_HOUR")
        processes.add(process)
        parts.append({"name": part["name"], "process": process, "material": material.id, "copies": copies,
                      "unit_mass_g": round(mass_g, 2), "unit_machine_hours": round(hours, 4),
                      "material_cost": mass_g / 1000 * material.cost_per_kg * copies,
                      "machine_cost": hours * hourly * copies, "hours": hours * copies, "estimate": source})
    material_cost = sum(p.pop("material_cost") for p in parts)
    machine_cost = sum(p.pop("machine_cost") for p in parts)
    machine_hours = sum(p.pop("hours") for p in parts)
    setup = sum(_rate(config["SETUP_FEE"], process, "SETUP_FEE") for process in sorted(processes))
    total = material_cost + machine_cost + setup

    depth = generation.queue_depth()
    render_s = generation.average_render_seconds()
    workers = max(1, int(config["QUEUE_WORKERS"]))
    files_in_s = (depth * render_s) / workers + (0.0 if generation.is_cached(item.template, item.params)
                                                 else render_s)
    production_days = max(int(_rate(config["PRODUCTION_DAYS"], process, "PRODUCTION_DAYS"))
                          for process in processes)
    days = production_days + math.ceil(files_in_s / 86400)
    today = datetime.now(UTC).date()

    def money(value: float) -> float:
        return round(value + 1e-9, 2)

    return {
        "template": item.template.id, "version": item.template.version, "params": item.params,
        "material": {"id": chosen.id, "name": chosen.name, "process": chosen.process,
                     "cost_per_kg": chosen.cost_per_kg},
        "quantity": item.quantity,
        "unit": {"mass_g": manifest.mass_g, "volume_mm3": manifest.volume_mm3, "bbox_mm": manifest.bbox_mm,
                 "machine_hours": round(machine_hours / item.quantity, 3)},
        "parts": parts,
        "price": {"currency": config["CURRENCY"], "material": money(material_cost),
                  "machine": money(machine_cost), "setup": money(setup),
                  "unit": money((material_cost + machine_cost) / item.quantity), "total": money(total)},
        "lead_time": {"days": days, "ships_by": (today + timedelta(days=days)).isoformat(),
                      "production_days": production_days, "queue_depth": depth,
                      "files_ready_in_s": round(files_in_s, 1), "average_render_s": round(render_s, 2)},
    }
