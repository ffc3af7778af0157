"""Instant estimates of printed parts: the shop's past slices, the models fitted to them, and a line's estimate.

Every part a quote slices is recorded (:func:`record_slice`, on the worker, with the part's features and
PrusaSlicer's figures) and its printer, filament and profile's models are refitted at once
(``parametric.fdm.estimator.fit``): one over every product, with each product's own scale on it once it
has a few slices (a product's own past slices tell most about it; a new product gets the larger error). A new
configuration's quote is then answered straight away from its preview files (:func:`estimate_basis`: the
STL the preview already made, read without the CAD kernel, and the stored model), labelled as an estimate
with its expected error, while a worker slices it; the sliced figure replaces it when it lands. Checkout
and orders never use an estimate: they wait for the slice. Without enough past slices, or for a part
unlike any sliced before, there is no estimate and the reason says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from parametric.fdm.estimator import NoEstimate, PartFeatures, Sample, SliceModel, fit, part_features, profile_digest
from parametric.machines import Machine, Printer
from parametric.materials import get_material

from ..db import Database
from ..models import SliceModelRow, SliceRecord, utcnow

log = logging.getLogger(__name__)
FIT_WINDOW = 2000
"""The most recent slices of a printer, filament and profile a model is fitted to."""


def profile_of(printer: Printer, material: str) -> str:
    """The digest of the PrusaSlicer profile a quote slices ``printer`` in ``material`` with."""
    from parametric.fdm import build_profile, profile_text

    return profile_digest(profile_text(build_profile(printer, material)))


def record_slice(database: Database, printer: Printer, material: str, template: str, part_key: str,
                 features: PartFeatures, print_time_s: float, filament_g: float) -> SliceModel | str:
    """Keep one sliced part of ``template`` (once per ``part_key``) and refit its printer, filament and profile's
    model: the model, or why there is none."""
    profile = profile_of(printer, material)
    try:
        with database.transaction() as session:
            known = session.scalar(select(SliceRecord.id).where(
                SliceRecord.printer == printer.name, SliceRecord.material == material,
                SliceRecord.profile == profile, SliceRecord.part_key == part_key))
            if known is None:
                session.add(SliceRecord(template=template, printer=printer.name, material=material, profile=profile,
                                        part_key=part_key, features=features.to_dict(),
                                        print_time_s=float(print_time_s), filament_g=float(filament_g)))
    except IntegrityError:  # another worker recorded the same part a moment ago
        pass
    return refit(database, printer.name, material, profile)


def refit(database: Database, printer: str, material: str, profile: str) -> SliceModel | str:
    """Fit the model of one printer, filament and profile to its recorded slices (each product's among them) and
    store it, or the reason there is none, in one transaction."""
    with database.transaction() as session:
        rows = session.execute(
            select(SliceRecord.features, SliceRecord.print_time_s, SliceRecord.filament_g, SliceRecord.template)
            .where(SliceRecord.printer == printer, SliceRecord.material == material, SliceRecord.profile == profile)
            .order_by(SliceRecord.id.desc()).limit(FIT_WINDOW)).all()
        samples = []
        for features, time_s, grams, product in rows:
            try:
                samples.append(Sample(PartFeatures(**features), time_s, grams, product))
            except TypeError:  # recorded with other features (an older estimator): not used
                continue
        try:
            model: SliceModel | str = fit(samples)
        except NoEstimate as error:
            model = str(error)
        row = session.get(SliceModelRow, (printer, material, profile))
        if row is None:
            row = SliceModelRow(printer=printer, material=material, profile=profile)
            session.add(row)
        row.model = model.to_dict() if isinstance(model, SliceModel) else None
        row.reason = model if isinstance(model, str) else None
        row.slices = len(samples)
        row.fitted_at = utcnow()
    return model


def stored_model(database: Database, printer: Printer, material: str) -> SliceModel | str:
    """The model for ``printer`` in ``material`` with the quote's profile, or why there is none, in plain words."""
    with database.session() as session:
        row = session.get(SliceModelRow, (printer.name, material, profile_of(printer, material)))
    name = get_material(material).name
    if row is None:
        return f"no part has been sliced for {printer.name} in {name} yet"
    if row.model is None:
        return f"{printer.name} in {name}: {row.reason}"
    try:
        return SliceModel.from_dict(row.model)
    except (NoEstimate, KeyError, TypeError, ValueError) as error:
        return f"{printer.name} in {name}: {error}"


def estimate_basis(manifest: Any, chosen_material: str, fleet: Sequence[Machine], database: Database
                   ) -> dict[str, Any] | str:
    """A quote's measurements (the shape :func:`web.orders.quotes.measure_parts` returns) with each printed part's
    print time and filament estimated from its preview STL, or why there is no estimate. Only lines whose parts
    are all printed are estimated: a sheet part waits for its toolpaths."""
    from parametric.routing import route

    parts = []
    for part in manifest.parts:
        process = part.get("process") or get_material(chosen_material).process
        material = get_material(part.get("material") or chosen_material)
        if process != "fdm":
            return "a part is cut on a router: the price waits for its toolpaths"
        verdict = route(part, material.id, fleet, process="fdm")
        estimated, reason = None, verdict.reason
        if isinstance(verdict.machine, Printer):
            record = next((r for r in manifest.files if r["format"] == "stl" and r["part"] == part["name"]), None)
            if record is None:
                return f"no STL of {part['name']} to estimate from"
            model = stored_model(database, verdict.machine, material.id)
            if isinstance(model, str):
                return model
            try:
                figures = model.estimate(part_features(Path(manifest.directory) / record["filename"],
                                                       part["size_mm"]), manifest.template)
            except NoEstimate as error:
                return f"{part['name']} cannot be estimated: {error}"
            estimated = {"machine": verdict.machine.name, **figures.to_dict()}
        parts.append({"name": part["name"], "process": process, "material": material.id,
                      "quantity": int(part.get("quantity", 1)), "volume_mm3": part["volume_mm3"],
                      "size_mm": part["size_mm"], "thickness_mm": part.get("thickness_mm"),
                      "sliced": None, "estimated": estimated, "cut": None, "reason": reason})
    return {"cache_key": manifest.cache_key, "parts": parts,
            "unit": {"mass_g": manifest.mass_g, "volume_mm3": manifest.volume_mm3, "bbox_mm": manifest.bbox_mm}}


def record_quote_slice(database: Database, fleet: Sequence[Machine], template: str, part: Mapping[str, Any],
                       stl: Path, sha256: str, material: str, sliced: Mapping[str, Any]) -> None:
    """After a quote sliced ``part``: record it for the estimator. A failure here is logged, never the quote's."""
    printer = next((m for m in fleet if isinstance(m, Printer) and m.name == sliced["machine"]), None)
    if printer is None:
        return
    try:
        record_slice(database, printer, material, template, sha256, part_features(stl, part["size_mm"]),
                     sliced["print_time_s"], sliced["filament_g"])
    except (NoEstimate, SQLAlchemyError, OSError) as error:
        log.warning("quote: the slice of %s for %s was not recorded for estimates: %s", part["name"],
                    printer.name, error)
