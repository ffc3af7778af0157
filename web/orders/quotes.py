"""Quotes: price and lead time of one order line before it is ordered.

Each part is priced in its own material (a wall shelf's oak board is cut, its brackets are
printed in PLA): material + machine time at the process's hourly rate; each process the line
needs adds its setup fee once. The time is the real thing's wherever the shop can make the
part: PrusaSlicer's estimates for the printer a printed part would go to (sliced once per
configuration, then answered from the slice cache), and for a sheet part CAM's toolpaths on
the router it would go to (``parametric.production.estimate_cut``: the same :func:`make` a
job runs, so the job's machining time is this one times its copies). Only when no machine
can make a part is the time the volume at the process's deposition or cutting rate, and the
part says so, and why. A printed part's material is the filament PrusaSlicer counts (else
the solid's mass); a sheet part's is the share of sheet it takes: its footprint divided by
the shop's nesting utilisation (``SHEET_UTILISATION``), at the sheet's thickness.

Nothing is built in the request: the measurements (render, slicing) are a build the workers make
at the quote priority (:func:`measure_parts`, recorded by ``web.builds``), and the request answers
"preparing" until they are there; the price for a quantity is then arithmetic (:func:`price`).
Lead time = the real queue ahead of an order's files (tasks waiting at the order render's priority
or above x each kind's measured time / the workers beating now) + its own render unless cached +
the longest production time of the processes. Rates live in configuration.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import parametric
from parametric import ValidationError
from parametric.errors import InfrastructureError
from parametric.machines import Machine
from parametric.materials import get_material

from .. import builds, workers
from ..builds import Preparing
from ..priorities import PRIORITY
from .generation import Generation
from .placing import ItemRequest

QUOTE_FORMATS = ("stl",)
QUOTE_BASIS = "cam"  # what a quote build measures (sheet parts by CAM): part of its key, so older builds are not reused
_slicer = threading.Lock()  # one PrusaSlicer run at a time for quotes: request threads must not pile them up
log = logging.getLogger(__name__)


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


def quote_request(item: ItemRequest, fleet_key: str) -> dict[str, Any]:
    """What a worker needs to measure ``item`` for a quote (stored with the build)."""
    return {"template": item.template.id, "version": item.template.version, "params": item.params,
            "material": item.material, "fleet": fleet_key}


def quote_key(item: ItemRequest, generation: Generation, fleet_key: str) -> str:
    """The build key of a quote's measurements: the render's cache key, the material and the machine fleet."""
    from ..builds import build_key

    return build_key("quote", generation.key(item.template, item.params), item.material, fleet_key, QUOTE_BASIS)


def _cut(part: dict[str, Any], manifest: parametric.Manifest, material: str, fleet: Sequence[Machine],
         cache_root: Any) -> tuple[dict[str, Any] | None, str]:
    """CAM's machining time for one copy of a sheet part on the router it would be routed to, or ``None``
    and the reason the volume rate is used instead."""
    from parametric.cnc import CamError
    from parametric.cnc.capability import manifest_check
    from parametric.production import estimate_cut
    from parametric.routing import route

    if not any(r["format"] == "step" and r["part"] == part["name"] for r in manifest.files):
        return None, "no STEP file of this part to plan toolpaths from"
    # CAM's own check: only a router CAM can then make the part on is offered, and a refusal is CAM's reason
    verdict = route(part, material, fleet, process="cnc", can_cut=manifest_check(manifest, cache_root=cache_root))
    if verdict.machine is None:
        return None, verdict.reason
    try:
        result = estimate_cut(manifest, verdict.machine, part["name"], material=material,  # type: ignore[arg-type]
                              cache_root=cache_root)
    except (CamError, ValidationError) as error:
        log.warning("quote: CAM of %s for %s failed: %s", part["name"], verdict.machine.name, error)
        return None, f"the toolpaths for {verdict.machine.name} could not be planned: {error}"
    return {"machine": result.machine, "machining_time_s": result.time_s, "size_mm": list(result.size_mm),
            "cached": result.cached}, ""


def sheet_area_mm2(part: Mapping[str, Any], estimate: Mapping[str, Any] | None, utilisation: float) -> float:
    """The sheet one copy of a flat part takes: its footprint (CAM's, else its size) over the nesting utilisation."""
    width, height = (estimate or {}).get("size_mm") or part["size_mm"][:2]
    return float(width) * float(height) / utilisation


def _utilisation(config: Mapping[str, Any]) -> float:
    try:
        value = float(config["SHEET_UTILISATION"])
    except (KeyError, TypeError, ValueError):
        raise RuntimeError("configuration SHEET_UTILISATION has no number") from None
    if not 0 < value <= 1:
        raise RuntimeError(f"configuration SHEET_UTILISATION must be above 0 and at most 1, not {value:g}")
    return value


def measure_parts(request: dict[str, Any], generation: Generation, config: Mapping[str, Any]) -> dict[str, Any]:
    """On a worker: render the configuration (its preview files too: one build serves the preview and the
    quote) and measure each part for pricing, sliced by PrusaSlicer for the printer it would go to where
    there is one. Quantity-free: the price for any quantity is worked out from it in the request."""
    from .. import machines
    from ..shop.preview import PREVIEW_FORMATS

    template = parametric.get_template(request["template"])
    if template.version != request["version"]:
        raise ValidationError([parametric.FieldError("template", f"{template.id} is now version {template.version}; "
                                                                 "ask again")])
    # verified: the STL is handed to the slicer, whose estimates are cached by its recorded SHA-256; CAM reads
    # a sheet part's STEP
    formats = (*PREVIEW_FORMATS, "step") if "cnc" in template.process else PREVIEW_FORMATS
    manifest = parametric.render(template.id, request["params"], formats=formats,
                                 material=request["material"], settings=generation.settings, cache=generation.cache,
                                 verify=True, timeout=generation.render_timeout)
    fleet = machines.all_machines(generation.database)
    chosen = get_material(request["material"])
    parts = []
    for part in manifest.parts:
        process = part.get("process") or chosen.process
        material = get_material(part.get("material") or request["material"])
        if process == "fdm":
            estimate, reason = _sliced(part, manifest, material.id, fleet, float(config["QUOTE_SLICER_WAIT_SECONDS"]))
            cut = None
            if estimate is not None:  # the shop's history, which instant estimates are fitted to
                _record_slice(generation.database, fleet, part, manifest, material.id, estimate)
        else:
            cut, reason = _cut(part, manifest, material.id, fleet, generation.cache.root)
            estimate = None
        parts.append({"name": part["name"], "process": process, "material": material.id,
                      "quantity": int(part.get("quantity", 1)), "volume_mm3": part["volume_mm3"],
                      "size_mm": part["size_mm"], "thickness_mm": part.get("thickness_mm"),
                      "sliced": estimate, "cut": cut, "reason": reason})
    return {"cache_key": manifest.cache_key, "parts": parts,
            "unit": {"mass_g": manifest.mass_g, "volume_mm3": manifest.volume_mm3, "bbox_mm": manifest.bbox_mm}}


def _record_slice(database: Any, fleet: Sequence[Machine], part: dict[str, Any], manifest: parametric.Manifest,
                  material: str, estimate: dict[str, Any]) -> None:
    from .estimates import record_quote_slice

    record = next(r for r in manifest.files if r["format"] == "stl" and r["part"] == part["name"])
    record_quote_slice(database, fleet, manifest.template, part, manifest.directory / record["filename"],
                       record["sha256"], material, estimate)


def quote_line(item: ItemRequest, services: Any, client: str | None = "") -> dict[str, Any] | Preparing:
    """The quote of ``item``, or :class:`Preparing` while a worker measures it (never built here).

    Raises ``parametric.GeometryError`` when the configuration cannot be built and
    :class:`web.limits.RateLimited` when ``client`` asked for too many new builds."""
    from .. import machines
    from ..builds import request_build

    _, fleet_key = machines.fleet(services.database)
    key = quote_key(item, services.generation, fleet_key)
    outcome = request_build(services.database, services.config, services.build_limit, "quote", key,
                            quote_request(item, fleet_key), client,
                            lambda priority: services.queue.build_quote(key, priority=priority), "quote",
                            require_space=services.generation.cache.require_space)
    if isinstance(outcome, Preparing):
        return outcome
    return price(item, outcome, services.config, services.queue)


def instant_quote(item: ItemRequest, services: Any) -> dict[str, Any] | str:
    """While a worker slices ``item`` (its quote is :class:`Preparing`): the quote from its preview files and the
    printers' estimators (``web.orders.estimates``), marked ``"figures": "estimate"`` with its expected error, or
    why there is none (the preview is not there yet, too few past slices, a part unlike those sliced before, a
    sheet part). Never for checkout or an order: they wait for the slice."""
    from .. import machines
    from ..shop.preview import cached_preview
    from .estimates import estimate_basis

    manifest = cached_preview(item, services.generation)
    if manifest is None:
        return "the preview of this configuration is not ready yet"
    basis = estimate_basis(manifest, item.material, machines.all_machines(services.database), services.database)
    if isinstance(basis, str):
        return basis
    if not any(part["estimated"] for part in basis["parts"]):  # nothing to estimate: the worker's figure is coming
        return next(part["reason"] for part in basis["parts"] if part["reason"])
    return price(item, basis, services.config, services.queue)


def price(item: ItemRequest, basis: Mapping[str, Any], config: Mapping[str, Any], queue: Any = None
          ) -> dict[str, Any]:
    """Price and lead time of ``item`` from its measurements (:func:`measure_parts`): arithmetic only."""
    chosen = get_material(item.material)
    parts, processes = [], set()
    errors: list[tuple[float, float]] = []  # (cost, its expected error in %) of each estimated figure
    for part in basis["parts"]:
        process = part["process"]
        material = get_material(part["material"])
        copies = int(part["quantity"]) * item.quantity
        estimate, cut = part["sliced"], part.get("cut")
        guessed = part.get("estimated")
        sheet_mm2 = None
        if estimate is not None:
            hours = estimate["print_time_s"] / 3600
            mass_g = estimate["filament_g"]
            source = {"source": "prusaslicer", **estimate}
        elif guessed is not None:  # an instant estimate until the slice lands (``instant_quote``)
            hours = guessed["print_time_s"] / 3600
            mass_g = guessed["filament_g"]
            source = {"source": "estimate", **guessed}
            errors.append((hours * copies * _rate(config["MACHINE_RATE_PER_HOUR"], process, "MACHINE_RATE_PER_HOUR"),
                           guessed["time_error_pct"]))
            errors.append((mass_g / 1000 * material.cost_per_kg * copies, guessed["filament_error_pct"]))
        elif cut is not None:
            hours = cut["machining_time_s"] / 3600
            source = {"source": "cam", **cut}
        else:
            rate = _rate(config["MACHINE_RATE_MM3_PER_S"], process, "MACHINE_RATE_MM3_PER_S")
            hours = part["volume_mm3"] / rate / 3600
            source = {"source": "volume rate", "reason": part["reason"]}
        if process == "cnc":
            sheet_mm2 = sheet_area_mm2(part, cut, _utilisation(config))
            thickness = float(part.get("thickness_mm") or part["size_mm"][2])
            mass_g = material.mass_g(sheet_mm2 * thickness)
        elif estimate is None and guessed is None:
            mass_g = material.mass_g(part["volume_mm3"])
        hourly = _rate(config["MACHINE_RATE_PER_HOUR"], process, "MACHINE_RATE_PER_HOUR")
        processes.add(process)
        # The time of all the line's copies of the part, as the job will show it (rounded as the job rounds).
        source["machine_time_s"] = round(hours * 3600 * copies, 1)
        shown = {"name": part["name"], "process": process, "material": material.id, "copies": copies,
                 "unit_mass_g": round(mass_g, 2), "unit_machine_hours": round(hours, 4),
                 "material_cost": mass_g / 1000 * material.cost_per_kg * copies,
                 "machine_cost": hours * hourly * copies, "hours": hours * copies, "estimate": source}
        if sheet_mm2 is not None:
            shown["unit_sheet_m2"] = round(sheet_mm2 / 1e6, 4)
        parts.append(shown)
    material_cost = sum(p.pop("material_cost") for p in parts)
    machine_cost = sum(p.pop("machine_cost") for p in parts)
    machine_hours = sum(p.pop("hours") for p in parts)
    setup = sum(_rate(config["SETUP_FEE"], process, "SETUP_FEE") for process in sorted(processes))
    total = material_cost + machine_cost + setup
    production_days = max(int(_rate(config["PRODUCTION_DAYS"], process, "PRODUCTION_DAYS"))
                          for process in processes)
    lead = _lead_time(item, basis, config, queue, production_days)

    def money(value: float) -> float:
        return round(value + 1e-9, 2)

    if errors:  # the price's expected error: each estimated cost at its own error (setup and rates are exact)
        spread = sum(cost * pct / 100 for cost, pct in errors)
        basis_shown: dict[str, Any] = {
            "figures": "estimate",
            "estimate": {"error_pct": round(100 * spread / total, 1) if total else 0.0,
                         "low": money(max(setup, total - spread)), "high": money(total + spread),
                         "slices": min(p["estimate"]["slices"] for p in parts if p["estimate"]["source"] == "estimate"),
                         "note": "an estimate from the printer's past slices; the sliced price replaces it"}}
    else:
        basis_shown = {"figures": "final"}  # sliced, CAM or volume rate: what checkout and the order show
    return {
        **basis_shown,
        "template": item.template.id, "version": item.template.version, "params": item.params,
        "material": {"id": chosen.id, "name": chosen.name, "process": chosen.process,
                     "cost_per_kg": chosen.cost_per_kg},
        "quantity": item.quantity,
        "unit": {**basis["unit"], "machine_hours": round(machine_hours / item.quantity, 3)},
        "parts": parts,
        "price": {"currency": config["CURRENCY"], "material": money(material_cost),
                  "machine": money(machine_cost), "setup": money(setup),
                  "unit": money((material_cost + machine_cost) / item.quantity), "total": money(total)},
        "lead_time": lead,
    }


def _lead_time(item: ItemRequest, basis: Mapping[str, Any], config: Mapping[str, Any], queue: Any,
               production_days: int) -> dict[str, Any]:
    """Days until it ships: the real queue ahead of an order's render (tasks waiting at its priority or above,
    each at its kind's measured mean time, shared among the live workers), its own render unless cached,
    then the longest production time."""
    if queue is None:  # a price without a queue (the catalog's from-price): production time only
        days = production_days
        figures: dict[str, Any] = {"ahead": {}, "wait_s": 0.0, "workers": 0, "mean_s": {}}
        render_s = float(config["DEFAULT_RENDER_SECONDS"])
        own = 0.0
    else:
        figures = lead_seconds(queue, config)
        render_s = figures["mean_s"].get("render", float(config["DEFAULT_RENDER_SECONDS"]))
        own = 0.0 if queue.generation.is_cached(item.template, item.params) else render_s
        days = production_days + math.ceil((figures["wait_s"] + own) / 86400)
    files_in_s = figures["wait_s"] + own
    today = datetime.now(UTC).date()
    return {"days": days, "ships_by": (today + timedelta(days=days)).isoformat(), "production_days": production_days,
            "queue_depth": sum(figures["ahead"].values()), "queue_ahead": figures["ahead"],
            "workers": figures["workers"], "files_ready_in_s": round(files_in_s, 1),
            "average_render_s": round(render_s, 2), "mean_task_s": figures["mean_s"]}


def lead_seconds(queue: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """How long until a new order's files would be started: the tasks waiting at the order render's priority or
    above, each kind at its measured mean time, shared among the workers beating now."""
    database = queue.generation.database
    ahead = queue.ahead_of(PRIORITY["render"])
    means = {"render": queue.generation.average_render_seconds(),
             "preview": builds.mean_seconds(database, "preview"),
             "quote": builds.mean_seconds(database, "quote"),
             "plates": builds.mean_seconds(database, "plates")}
    default = float(config["DEFAULT_RENDER_SECONDS"])
    seconds = sum(count * (means.get(kind) or default) for kind, count in ahead.items())
    live = workers.live_count(database, float(config["WORKER_STALE_SECONDS"]))
    return {"ahead": ahead, "workers": live or max(1, int(config["QUEUE_WORKERS"])),
            "wait_s": seconds / (live or max(1, int(config["QUEUE_WORKERS"]))),
            "mean_s": {kind: round(value, 2) for kind, value in means.items() if value is not None}}


def quote_record(quoted: dict[str, Any]) -> dict[str, Any]:
    """What an order item keeps of the quote it was ordered at: the price, the lead time and each part's
    machine time (all its copies) and where that figure came from."""
    return {"price": quoted["price"], "lead_time": {k: quoted["lead_time"][k] for k in ("days", "ships_by")},
            "parts": [{"name": part["name"], "process": part["process"], "material": part["material"],
                       "copies": part["copies"], "machine_time_s": part["estimate"]["machine_time_s"],
                       "source": part["estimate"]["source"], "machine": part["estimate"].get("machine")}
                      for part in quoted["parts"]]}


def price_order(order: Any, services: Any) -> dict[int, str]:
    """Price an order whose items keep no quote (placed through the API) by the checkout's own flow: each line's
    quote (:func:`quote_line`, asking a worker to measure it if no one has), and once every line has one, the
    charged records (``web.orders.totals.charged_records``: one setup fee per process per order) stored with the
    items in one transaction, as the checkout stores them. Until then nothing is stored; the answer says, by
    position, why a line has no price yet (an empty dict when every line is priced)."""
    from ..builds import BuildFailed
    from ..models import OrderItem
    from .totals import charged_records

    items = sorted(order.items, key=lambda item: item.position)
    if all(item.quote is not None for item in items):
        return {}
    quotes, missing = [], {}
    for item in items:
        if item.quote is not None:  # priced with its order already; re-quoting it could change its share
            return {}
        if item.state == "failed":  # cancelled, or its files could not be made: not made, so not priced (and no
            missing[item.position] = "it is not being made (see its reason), so it has no price"  # more builds)
            continue
        try:
            template = parametric.get_template(item.template)
        except ValidationError:
            template = None
        if template is None or template.version != item.template_version:
            missing[item.position] = (f"it was ordered with version {item.template_version} of its template, which "
                                      "can no longer be priced; our workshop will write to you with its price")
            continue
        request = ItemRequest(template, dict(item.params), item.quantity, item.material)
        try:
            quoted = quote_line(request, services, None)  # the order's own: not counted against the client's builds
        except BuildFailed as error:
            missing[item.position] = f"it cannot be priced: {error.reason}"
            continue
        except InfrastructureError as error:  # ours (a full disk): the order stands, its price is asked again later
            log.warning("order %s item %s: its quote could not be asked for: %s", order.id, item.position, error)
            missing[item.position] = "its price cannot be worked out just now; ask again in a few minutes"
            continue
        if isinstance(quoted, Preparing):
            missing[item.position] = ("its price is being worked out (its parts are being measured and sliced "
                                      f"for our machines); ask again in {quoted.retry_after} s")
            continue
        quotes.append((item.id, quote_record(quoted)))
    if missing:
        return missing
    records = charged_records([record for _, record in quotes], services.config["SETUP_FEE"])
    with services.database.transaction() as session:
        for (item_id, _), record in zip(quotes, records, strict=True):
            stored = session.get(OrderItem, item_id)
            if stored is not None and stored.quote is None:
                stored.quote = record
    for item, record in zip(items, records, strict=True):
        item.quote = record
    return {}
