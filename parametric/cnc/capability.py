"""Whether a router can cut a rendered part, asked the way CAM will make it there.

Routing (:func:`parametric.routing.route`), quotes and CAM share this one check: the part's features
read from its B-rep as CAM reads them (its dados, rebates and slots fitted to the router's measured
sheets, as :func:`parametric.production.make` rebuilds them), and the planner's tool choice
(:func:`parametric.cnc.planner.refusal`), the step of planning that decides whether every hole,
pocket, opening and the outline has a tool that reaches, fits and has feeds for the material. So a
part is routed to a router only when CAM can then make it there, and a refusal names what is missing
("the Ø5 mm drill T2 reaches 25 mm; this hole is 31.8 mm deep (a 30 mm board and the drill's point)").

A :class:`CutCheck` keeps the features it read per part and fit, and, given a cache folder, each
verdict on disk by render, part, material, router and settings, so a quote asking again costs a file
read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..joinery import SheetFit, fitted_shapes, stock_fit
from ..machines import Router
from .features import PartFeatures
from .planner import CamSettings, refusal

CHECK_GENERATION = 1
"""Bump when the planner's tool choice changes, so cached verdicts are not served."""

FeatureSource = Callable[[Mapping[str, Any], SheetFit], "PartFeatures | str"]
"""A part's features as CAM reads them with a fit, or the reason they cannot be read."""


class CutCheck:
    """``check(part, router, material)``: why ``router`` cannot make the part (a manifest part record) in
    ``material``, or ``None`` when CAM can make it there. Pass it to :func:`parametric.routing.route`."""

    def __init__(self, source: FeatureSource, *, settings: CamSettings | None = None, render_key: str | None = None,
                 cache_root: str | Path | None = None):
        self.source = source
        self.settings = settings or CamSettings()
        self.render_key = render_key
        self.folder = Path(cache_root) / "cut-checks" if cache_root is not None and render_key else None
        self._features: dict[tuple[str, tuple[tuple[float, float], ...], float], PartFeatures | str] = {}
        self._verdicts: dict[str, str | None] = {}
        self.planned = 0
        """How many verdicts were worked out by the planner here (not read from a cache)."""

    def features(self, part: Mapping[str, Any], fit: SheetFit) -> PartFeatures | str:
        """The part's features with ``fit`` (read once per part and fit), or why they cannot be read."""
        key = (str(part["name"]), tuple(sorted(fit.measured_mm.items())), fit.allowance_mm)
        if key not in self._features:
            self._features[key] = self.source(part, fit)
        return self._features[key]

    def _key(self, part: Mapping[str, Any], router: Router, material: str) -> str:
        from ..machines import machine_to_dict

        record = {k: v for k, v in machine_to_dict(router).items() if k not in ("name", "delivery")}
        document = {"render": self.render_key, "part": part["name"], "material": material, "router": record,
                    "settings": self.settings.as_dict(), "generation": CHECK_GENERATION}
        return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()

    def __call__(self, part: Mapping[str, Any], router: Router, material: str) -> str | None:
        key = self._key(part, router, material)
        if key in self._verdicts:
            return self._verdicts[key]
        record = self.folder / key[:2] / f"{key}.json" if self.folder is not None else None
        if record is not None:
            try:
                verdict = json.loads(record.read_text("utf-8"))["reason"]
                if verdict is None or isinstance(verdict, str):
                    self._verdicts[key] = verdict
                    return verdict
            except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
                pass
        features = self.features(part, stock_fit(router, material))
        verdict = features if isinstance(features, str) else refusal(features, router, material, self.settings)
        self.planned += 1
        self._verdicts[key] = verdict
        if record is not None:
            from ..files import atomic_write_json

            record.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(record, {"reason": verdict})
        return verdict


def features_check(features: Mapping[str, PartFeatures], *, settings: CamSettings | None = None) -> CutCheck:
    """The check over features already read (by part name), as CAM is about to cut them."""

    def source(part: Mapping[str, Any], fit: SheetFit) -> PartFeatures | str:
        found = features.get(str(part["name"]))
        return found if found is not None else f"CAM has not read the part {part['name']!r}"

    return CutCheck(source, settings=settings)


def manifest_check(manifest: Any, *, settings: CamSettings | None = None,
                   cache_root: str | Path | None = None) -> CutCheck:
    """The check over a rendered product (a :class:`~parametric.Manifest` rendered with STEP files): each part
    read from its STEP file, or rebuilt with its housings fitted to a router's measured sheets."""
    from .features import extract_features, load_step

    fitted: dict[tuple[tuple[float, float], ...], dict[str, Any] | None] = {}

    def source(part: Mapping[str, Any], fit: SheetFit) -> PartFeatures | str:
        name = str(part["name"])
        shape = None
        if not fit.nominal:
            key = tuple(sorted(fit.measured_mm.items()))
            if key not in fitted:
                from ..registry import get_template

                fitted[key] = fitted_shapes(manifest, get_template(manifest.template), fit)[0]
            shape = (fitted[key] or {}).get(name)
        if shape is None:
            record = next((r for r in manifest.files if r["format"] == "step" and r["part"] == name), None)
            if record is None:
                return "it was rendered without a STEP file, which its toolpaths are planned from"
            shape = load_step(Path(manifest.directory) / record["filename"])
        return extract_features(shape, name, part.get("thickness_mm"))

    return CutCheck(source, settings=settings, render_key=manifest.cache_key, cache_root=cache_root)
