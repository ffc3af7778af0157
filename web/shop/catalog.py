"""The catalog: every template with its picture and from-price, computed once and kept.

The from-price is the quote (``web.orders.quotes``) of the cheapest of the template's default
configuration and its presets, each in its own material, quantity one, priced as the
configurator prices it: from PrusaSlicer's estimates where a printer in the shop can make the
part. The measurements behind the prices are builds the workers make at the catalog priority
(below customers' previews, quotes and orders); one background thread of the web process (started
when ``serve`` starts, or by the first visit) asks for them and prices them once they are there, kept
in memory per template version and machine fleet, so the catalog page never waits for a build or a
slicer: a price not known yet shows as "priced when configured". The picture is the default
configuration drawn by a worker with the core's gallery (``parametric.gallery.picture``, :func:`draw`)
into ``<output>/catalog/<cache key>.png`` (a placeholder until then): a new template version or export
setting gives a new key, so a stale picture is never shown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import parametric
from parametric import Template
from parametric.errors import infrastructure_fault

from ..builds import Preparing, build_key, request_build
from ..orders.generation import Generation
from ..orders.placing import ItemRequest, parse_item

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


class Pending(Exception):
    """A from-price whose measurements a worker is still making."""


class Catalog:
    """From-prices and pictures for the shop's front page, kept for the life of the process.

    Nothing is built here: the measurements behind a from-price and the pictures are builds the
    workers make at the catalog priority (below customers' previews, quotes and orders). One thread
    of this process asks for them and, while they are being made, asks again every
    ``BUILD_POLL_SECONDS`` (for at most ``BUILD_STALE_SECONDS``; the next visit asks afresh)."""

    def __init__(self, services: Any):  # web.services.Services
        self.services = services
        self.config = services.config
        self.generation = services.generation
        self.folder = Path(self.config["OUTPUT_FOLDER"]) / "catalog"
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

        return machines.fleet(self.generation.database)

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
        """Wait until every price asked for is known (or given up on for now); ``False`` on timeout."""
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
        poll_s = max(0.2, float(self.config["BUILD_POLL_SECONDS"]))
        deadline = time.monotonic() + float(self.config["BUILD_STALE_SECONDS"])
        while True:
            with self._lock:
                if not self._wanted or time.monotonic() > deadline:
                    self._wanted.clear()  # what is still pending is asked for again at the next visit
                    self._idle.set()
                    return
                round_ = list(self._wanted)
            pending = False
            for template, key in round_:
                try:
                    price = self._cheapest(template)
                except Pending:
                    pending = True
                    continue
                except Exception as error:  # a price that cannot be worked out now is tried again at a later visit
                    fault = infrastructure_fault(error)
                    if fault is not None:
                        log.error("catalog: pricing %s waits for a fault to clear: %s: %s", template.id, fault.kind,
                                  fault.reason)
                    else:
                        log.exception("catalog: pricing %s failed", template.id)
                    price = _UNKNOWN
                with self._lock:
                    self._wanted.remove((template, key))
                    if price is not _UNKNOWN:
                        self._prices[key] = price
                        self._retry_at.pop(key, None)
                    else:
                        self._retry_at[key] = time.monotonic() + float(self.config.get("FAULT_RETRY_SECONDS", 30.0))
            if pending:
                time.sleep(poll_s)

    def _cheapest(self, template: Template) -> FromPrice | None:
        """The cheapest offer's price; :class:`Pending` while a worker measures one of them."""
        from ..builds import BuildFailed
        from ..orders.quotes import price, quote_key, quote_request

        _, fleet_key = self._fleet()
        best, pending = None, False
        for offer in offers(template, int(self.config["MAX_QUANTITY"])):
            key = quote_key(offer.item, self.generation, fleet_key)
            try:
                basis = request_build(self.services.database, self.config, self.services.build_limit, "quote", key,
                                      quote_request(offer.item, fleet_key), None,
                                      lambda level, key=key: self.services.queue.build_quote(key, priority=level),
                                      "catalog", require_space=self.services.generation.cache.require_space)
            except BuildFailed as error:
                log.warning("catalog: %s %s cannot be built: %s", template.id, offer.label, error.reason)
                continue
            if isinstance(basis, Preparing):
                pending = True
                continue
            quoted = price(offer.item, basis, self.config)
            total = quoted["price"]["total"]
            if best is None or total < best.total:
                best = FromPrice(total, quoted["price"]["currency"], offer.label, quoted["material"]["name"])
        if pending:
            raise Pending(template.id)
        return best

    def picture(self, template: Template) -> Path | Preparing:
        """The default configuration's shaded picture, or :class:`Preparing` while a worker draws it."""
        default = offers(template, int(self.config["MAX_QUANTITY"]))[0].item
        target = self.folder / f"{self.generation.key(template, default.params)}.png"
        if target.is_file():
            return target
        key = build_key("picture", target.name)
        request = {"template": template.id, "version": template.version, "params": default.params,
                   "material": default.material, "target": target.name}
        outcome = request_build(self.services.database, self.config, self.services.build_limit, "picture", key,
                                request, None,
                                lambda level: self.services.queue.draw_picture(key, priority=level), "catalog",
                                require_space=self.services.generation.cache.require_space)
        if isinstance(outcome, Preparing):
            return outcome
        if target.is_file():
            return target
        from ..builds import forget

        forget(self.services.database, key)  # drawn, then removed: draw it again
        return Preparing(key, "queued", max(1, int(self.config["BUILD_POLL_SECONDS"])))


_UNKNOWN = FromPrice(0.0, "", "", "")


def draw(request: dict[str, Any], generation: Generation, config: Mapping[str, Any]) -> None:
    """On a worker: the catalog picture of a template's standard configuration (``parametric.gallery``)."""
    from parametric.gallery import picture

    from .preview import PREVIEW_FORMATS

    template = parametric.get_template(request["template"])
    if template.version != request["version"]:
        raise parametric.ValidationError([parametric.FieldError(
            "template", f"{template.id} is now version {template.version}; ask again")])
    manifest = parametric.render(template.id, request["params"], formats=PREVIEW_FORMATS,
                                 material=request["material"], settings=generation.settings, cache=generation.cache,
                                 timeout=generation.render_timeout)
    folder = Path(config["OUTPUT_FOLDER"]) / "catalog"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(request["target"]).name
    if not target.is_file():
        picture(manifest, target)


def templates_by_family() -> dict[str, list[Template]]:
    """The registered templates grouped by family, families and templates in a stable order."""
    grouped: dict[str, list[Template]] = {}
    for template in parametric.templates():
        grouped.setdefault(template.family, []).append(template)
    return dict(sorted(grouped.items()))
