"""The catalog: every template with its picture and from-price, computed once and kept.

The from-price is the quote (``web.orders.quotes``) of the cheapest of the template's default
configuration and its presets, each in its own material, quantity one, priced as the
configurator prices it: from PrusaSlicer's estimates where a printer in the shop can make the
part. Prices are worked out by one background thread (started when ``serve`` starts, or by the
first visit) and kept in memory per template version and machine fleet, so the catalog page
never waits for a build or a slicer: a price not known yet shows as "priced when configured".
The picture is the default configuration drawn by the core's gallery
(``parametric.gallery.picture``) into ``<output>/catalog/<cache key>.png``: a new template
version or export setting gives a new key, so a stale picture is never shown.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import parametric
from parametric import GeometryError, Template
from parametric.errors import infrastructure_fault
from parametric.machines import machine_to_dict

from ..orders.generation import Generation
from ..orders.placing import ItemRequest, parse_item
from ..orders.quotes import quote
from .preview import render_preview

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Offer:
    """A starting configuration the catalog prices: the default or a preset."""

    label: str
    preset: str | None
    item: ItemRequest


@dataclass(frozen=True)
class FromPrice:
    total: float
    currency: str
    label: str          # which configuration it is ("Spice rack")
    material: str


def offers(template: Template, max_quantity: int) -> list[Offer]:
    """The default configuration and every preset, validated as order lines of one piece."""
    found = []
    for preset in (None, *template.presets):
        raw: dict[str, Any] = {"template": template.id, "quantity": 1}
        label = "Standard"
        if preset is not None:
            raw["preset"] = preset
            label = template.presets[preset].label
            if template.presets[preset].material:
                raw["material"] = template.presets[preset].material
        item, problems = parse_item(raw, "", max_quantity)
        if item is not None:
            found.append(Offer(label, preset, item))
        else:
            log.warning("catalog: %s %s does not validate: %s", template.id, preset or "default", problems)
    return found


class Catalog:
    """From-prices and pictures for the shop's front page, kept for the life of the process."""

    def __init__(self, config: Mapping[str, Any], generation: Generation):
        self.config = config
        self.generation = generation
        self.folder = Path(config["OUTPUT_FOLDER"]) / "catalog"
        self._prices: dict[tuple[str, str, str], FromPrice | None] = {}
        self._wanted: list[tuple[Template, tuple[str, str, str]]] = []
        self._retry_at: dict[tuple[str, str, str], float] = {}  # a price that hit a fault of ours: not before
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._worker: threading.Thread | None = None

    def _fleet(self) -> tuple[list[Any], str]:
        """The shop's machines and a fingerprint of them: prices are kept per fleet."""
        from .. import machines

        fleet = machines.all_machines(self.generation.database)
        records = json.dumps([machine_to_dict(m) for m in fleet], sort_keys=True, default=str)
        return fleet, hashlib.sha256(records.encode()).hexdigest()[:16]

    def from_prices(self, templates: list[Template]) -> dict[str, FromPrice | None]:
        """Each template's cheapest quote among its offers, by id; ``None`` while it is being worked out (in
        the background) or when none of them can be built."""
        _, fleet_key = self._fleet()
        keys = {t.id: (t, (t.id, t.version, fleet_key)) for t in templates}
        with self._lock:
            known = {tid: self._prices[key] for tid, (_, key) in keys.items() if key in self._prices}
        self._schedule([entry for tid, entry in keys.items() if tid not in known])
        return {t.id: known.get(t.id) for t in templates}

    def from_price(self, template: Template) -> FromPrice | None:
        """:meth:`from_prices` of one template."""
        return self.from_prices([template])[template.id]

    def warm_up(self) -> None:
        """Work out every template's from-price in the background (``serve`` calls it as it starts)."""
        _, fleet_key = self._fleet()
        self._schedule([(t, (t.id, t.version, fleet_key)) for t in parametric.templates()])

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until every price asked for is known; ``False`` on timeout."""
        return self._idle.wait(timeout)

    def _schedule(self, wanted: list[tuple[Template, tuple[str, str, str]]]) -> None:
        now = time.monotonic()
        with self._lock:
            queued = {key for _, key in self._wanted}
            new = [(t, key) for t, key in wanted if key not in self._prices and key not in queued
                   and self._retry_at.get(key, 0.0) <= now]
            if not new:
                return
            self._wanted.extend(new)
            self._idle.clear()
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="catalog-prices", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._wanted:
                    self._idle.set()
                    return
                template, key = self._wanted.pop(0)
            try:
                price = self._cheapest(template)
            except Exception as error:  # a price that cannot be worked out now is tried again at a later visit
                fault = infrastructure_fault(error)
                if fault is not None:
                    log.error("catalog: pricing %s waits for a fault to clear: %s: %s", template.id, fault.kind,
                              fault.reason)
                else:
                    log.exception("catalog: pricing %s failed", template.id)
                with self._lock:
                    self._retry_at[key] = time.monotonic() + float(self.config.get("FAULT_RETRY_SECONDS", 30.0))
                continue
            with self._lock:
                self._prices[key] = price
                self._retry_at.pop(key, None)

    def _cheapest(self, template: Template) -> FromPrice | None:
        fleet, _ = self._fleet()
        best = None
        for offer in offers(template, int(self.config["MAX_QUANTITY"])):
            try:
                render_preview(offer.item, self.generation)  # one build: the quote, the picture and the preview
                quoted = quote(offer.item, self.generation, self.config, fleet)
            except GeometryError as error:
                log.warning("catalog: %s %s cannot be built: %s", template.id, offer.label, error.reason)
                continue
            total = quoted["price"]["total"]
            if best is None or total < best.total:
                best = FromPrice(total, quoted["price"]["currency"], offer.label, quoted["material"]["name"])
        return best

    def picture(self, template: Template) -> Path:
        """The default configuration's shaded picture, drawn on first use."""
        default = offers(template, int(self.config["MAX_QUANTITY"]))[0].item
        target = self.folder / f"{self.generation.key(template, default.params)}.png"
        if target.is_file():
            return target
        manifest = render_preview(default, self.generation)
        from parametric.gallery import picture

        from .preview import kernel_lock

        with kernel_lock:  # VTK, like the kernel, is kept to one drawing at a time
            if not target.is_file():
                picture(manifest, target)
        return target


def templates_by_family() -> dict[str, list[Template]]:
    """The registered templates grouped by family, families and templates in a stable order."""
    grouped: dict[str, list[Template]] = {}
    for template in parametric.templates():
        grouped.setdefault(template.family, []).append(template)
    return dict(sorted(grouped.items()))
