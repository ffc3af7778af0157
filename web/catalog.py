"""The catalog: every template with its picture and from-price, computed once and kept.

The from-price is the quote (``web.quotes``) of the cheapest of the template's default
configuration and its presets, each in its own material, quantity one. The picture is the
default configuration drawn by the core's gallery (``parametric.gallery.picture``) into
``<output>/catalog/<cache key>.png``: a new template version or export setting gives a new
key, so a stale picture is never shown. Both cost builds only the first time: the core's
cache answers afterwards without the CAD kernel, and the prices are kept in memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import parametric
from parametric import GeometryError, Template

from .generation import Generation
from .orders import ItemRequest, parse_item
from .preview import render_preview
from .quotes import quote

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
        self._prices: dict[tuple[str, str], FromPrice | None] = {}
        self._lock = threading.Lock()

    def from_price(self, template: Template) -> FromPrice | None:
        """The cheapest quote among the template's offers (``None`` if none can be built)."""
        key = (template.id, template.version)
        with self._lock:
            if key not in self._prices:
                self._prices[key] = self._cheapest(template)
            return self._prices[key]

    def _cheapest(self, template: Template) -> FromPrice | None:
        best = None
        for offer in offers(template, int(self.config["MAX_QUANTITY"])):
            try:
                render_preview(offer.item, self.generation)  # one build: the quote, the picture and the preview
                quoted = quote(offer.item, self.generation, self.config)
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
