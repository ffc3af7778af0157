"""A printer's print time and filament guessed from a part's shape, fitted to the shop's own past slices.

PrusaSlicer's estimate of a new part takes seconds; a customer changing a value wants a price at once.
The figures that drive a slice are few: the volume (infill and solid layers), the surface area
(perimeters, top and bottom skins), the height (layer changes, one per layer) and the footprint (the
first layer, the skirt). :func:`fit` solves a least-squares model of print time and of filament over
those features from past slices of one printer, filament and profile, weighted so that the *relative*
error is what is minimised (a 20 min part matters as much as a 6 h one), and keeps the out-of-sample
relative residuals: the expected error of an estimate is what the model got wrong on slices it had
not seen (leave one slice out; leave one product out for a model over several products). With fewer
than :data:`MIN_SLICES` slices there is no model (:class:`TooFewSlices`), and a part outside what the
model has seen is not guessed at (:class:`OutsideModel`): the caller waits for the slice instead.
Pure: numpy in, numbers out; no slicer, no files except :func:`part_features`' STL.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import ParametricError

FEATURES = ("volume_cm3", "side_area_cm2", "flat_area_cm2", "height_mm", "footprint_cm2")
"""What the model reads of a part, in units that keep the least-squares system well conditioned."""
MIN_SLICES = 8
"""Past slices a model needs: its six coefficients and enough left over to measure its error."""
MIN_PRODUCT_SLICES = 4
"""Past slices of one product that give it a scale of its own on the printer's model (and its error)."""
ERROR_QUANTILE = 0.9
"""The expected error is this quantile of the leave-one-out relative errors: 9 estimates in 10 are closer."""
REACH = 1.5
"""How far beyond the largest feature seen a part may be and still be estimated (1.5: half as large again)."""


class NoEstimate(ParametricError):
    """No estimate can be given for a part: the reason is in plain words."""


class TooFewSlices(NoEstimate):
    """The printer has too few past slices in this filament and profile for a model."""


class OutsideModel(NoEstimate):
    """The part is larger (in some feature) than anything the model was fitted to."""


@dataclass(frozen=True)
class PartFeatures:
    """One copy of a part as the model reads it (:data:`FEATURES`), measured from its STL and size."""

    volume_cm3: float
    side_area_cm2: float
    flat_area_cm2: float
    height_mm: float
    footprint_cm2: float

    def row(self) -> list[float]:
        return [1.0, self.volume_cm3, self.side_area_cm2, self.flat_area_cm2, self.height_mm, self.footprint_cm2]

    def to_dict(self) -> dict[str, float]:
        return {name: round(value, 4) for name, value in asdict(self).items()}


def mesh_measures(stl: str | os.PathLike[str]) -> tuple[float, float, float]:
    """(volume mm3, side area mm2, flat area mm2) of a closed binary STL mesh in its print pose, read with numpy
    (no mesh library). The surface is split by where it faces: its walls (perimeters, layer by layer) and, as
    projected on the bed, what faces up or down (top and bottom skins, solid infill)."""
    data = open(stl, "rb").read()  # noqa: SIM115  small file, read whole
    if len(data) < 84:
        raise NoEstimate(f"{os.fspath(stl)} is not a binary STL")
    count = int(np.frombuffer(data, dtype="<u4", count=1, offset=80)[0])
    if len(data) < 84 + 50 * count:
        raise NoEstimate(f"{os.fspath(stl)} is shorter than its {count} triangles")
    record = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    triangles = np.frombuffer(data, dtype=record, count=count, offset=84)["v"].astype(np.float64)
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    cross = np.cross(b - a, c - a)  # normal times twice the triangle's area
    areas = 0.5 * np.linalg.norm(cross, axis=1)
    flat = 0.5 * np.abs(cross[:, 2])  # the area projected on the bed
    side = np.sqrt(np.clip(areas**2 - flat**2, 0, None))  # the area projected sideways
    volume = abs(float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum()) / 6.0)
    return volume, float(side.sum()), float(flat.sum())


def part_features(stl: str | os.PathLike[str], size_mm: Sequence[float]) -> PartFeatures:
    """The features of one copy of a part from its STL (as exported, in its print pose) and its size (x, y, z mm)."""
    volume, side, flat = mesh_measures(stl)
    x, y, z = (float(v) for v in size_mm)
    return PartFeatures(volume / 1000, side / 100, flat / 100, z, x * y / 100)


def profile_digest(profile_text: str) -> str:
    """A short fingerprint of the PrusaSlicer profile a model belongs to: a changed profile starts a new model."""
    return hashlib.sha256(profile_text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Estimate:
    """A model's print time (s) and filament (g) for one copy of a part, with their expected relative errors."""

    print_time_s: float
    filament_g: float
    time_error_pct: float
    filament_error_pct: float
    slices: int
    fitted_to: str = "printer"  # "product": scaled to this product's own past slices; "printer": every product's

    def to_dict(self) -> dict[str, Any]:
        return {"print_time_s": round(self.print_time_s, 1), "filament_g": round(self.filament_g, 2),
                "time_error_pct": round(self.time_error_pct, 1),
                "filament_error_pct": round(self.filament_error_pct, 1), "slices": self.slices,
                "fitted_to": self.fitted_to}


@dataclass(frozen=True)
class ProductScale:
    """One product's own correction of the printer's model: its slices' figures over the model's, fitted by
    relative least squares, with the leave-one-out error of the scaled estimate (%)."""

    time_scale: float
    filament_scale: float
    time_error_pct: float
    filament_error_pct: float
    slices: int


@dataclass(frozen=True)
class SliceModel:
    """Least-squares coefficients for print time and filament over :meth:`PartFeatures.row`, the leave-one-out
    errors (percent, at :data:`ERROR_QUANTILE`), how many slices it was fitted to and the largest features seen."""

    time_coefficients: tuple[float, ...]
    filament_coefficients: tuple[float, ...]
    time_error_pct: float
    filament_error_pct: float
    slices: int
    largest: tuple[float, ...]
    products: Mapping[str, ProductScale] = field(default_factory=dict)

    def estimate(self, features: PartFeatures, product: str = "") -> Estimate:
        """The estimate for ``features`` of ``product`` (scaled to its own past slices when it has
        :data:`MIN_PRODUCT_SLICES`, at their error; else at the error on a product never sliced);
        :class:`OutsideModel` if the part is bigger than the model can tell."""
        for name, value, top in zip(FEATURES, features.row()[1:], self.largest, strict=True):
            if value > REACH * top:
                raise OutsideModel(f"its {name.split('_')[0]} ({value:.4g}) is beyond the {self.slices} parts "
                                   f"sliced before (up to {top:.4g})")
        row = np.array(features.row())
        time_s = float(row @ np.array(self.time_coefficients))
        grams = float(row @ np.array(self.filament_coefficients))
        if time_s <= 0 or grams <= 0:
            raise OutsideModel("the model gives no sensible figure for a part of this shape")
        own = self.products.get(product) if product else None
        if own is not None:
            return Estimate(time_s * own.time_scale, grams * own.filament_scale, own.time_error_pct,
                            own.filament_error_pct, own.slices, "product")
        return Estimate(time_s, grams, self.time_error_pct, self.filament_error_pct, self.slices, "printer")

    def to_dict(self) -> dict[str, Any]:
        return {"time_coefficients": list(self.time_coefficients),
                "filament_coefficients": list(self.filament_coefficients),
                "time_error_pct": self.time_error_pct, "filament_error_pct": self.filament_error_pct,
                "slices": self.slices, "largest": list(self.largest), "features": list(FEATURES),
                "products": {name: asdict(scale) for name, scale in self.products.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SliceModel:
        if list(data.get("features", [])) != list(FEATURES):
            raise NoEstimate("the stored model reads other features; it is refitted with the next slice")
        return cls(tuple(data["time_coefficients"]), tuple(data["filament_coefficients"]),
                   float(data["time_error_pct"]), float(data["filament_error_pct"]), int(data["slices"]),
                   tuple(data["largest"]),
                   {name: ProductScale(**scale) for name, scale in data.get("products", {}).items()})


@dataclass(frozen=True)
class Sample:
    """One past slice: the part's features, PrusaSlicer's figures for one copy, and the product (template) it
    belongs to when a model is fitted over several."""

    features: PartFeatures
    print_time_s: float
    filament_g: float
    group: str = ""


def _solve(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares coefficients minimising the relative error ``(target - fitted) / target``."""
    weighted = design / target[:, None]
    coefficients, *_ = np.linalg.lstsq(weighted, np.ones_like(target), rcond=None)
    return coefficients


def _relative_fit(design: np.ndarray, target: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients minimising the relative error, and the out-of-sample relative error at the quantile (%).

    Out of sample is leave-one-out (from the hat matrix: what the fit without slice i gets wrong on slice i)
    for one product, and leave-one-product-out over several: a model over every product is used for a
    product with too few slices of its own, so its error is what it gets wrong on a product it has not seen."""
    coefficients = _solve(design, target)
    distinct = np.unique(groups)
    if len(distinct) > 1:
        misses = np.empty_like(target)
        for group in distinct:
            inside = groups == group
            if np.count_nonzero(~inside) < design.shape[1] + 1:
                return coefficients, 100.0  # too few slices of other products to tell: say so, at 100 %
            others = _solve(design[~inside], target[~inside])
            misses[inside] = 1.0 - design[inside] @ others / target[inside]
        return coefficients, float(np.quantile(np.abs(misses), ERROR_QUANTILE) * 100)
    weighted = design / target[:, None]
    residuals = 1.0 - weighted @ coefficients
    leverage = np.einsum("ij,ji->i", weighted, np.linalg.pinv(weighted))
    loo = residuals / np.clip(1.0 - leverage, 1e-6, None)
    return coefficients, float(np.quantile(np.abs(loo), ERROR_QUANTILE) * 100)


def fit(samples: Sequence[Sample]) -> SliceModel:
    """The model of one printer, filament and profile from its past slices; :class:`TooFewSlices` with fewer
    than :data:`MIN_SLICES` (counted once per distinct part)."""
    distinct = {tuple(s.features.row()): s for s in samples if s.print_time_s > 0 and s.filament_g > 0}
    if len(distinct) < MIN_SLICES:
        raise TooFewSlices(f"only {len(distinct)} part{'s' if len(distinct) != 1 else ''} sliced so far; an "
                           f"estimate needs {MIN_SLICES}")
    chosen = list(distinct.values())
    design = np.array([s.features.row() for s in chosen])
    groups = np.array([s.group for s in chosen])
    time_coefficients, time_error = _relative_fit(design, np.array([s.print_time_s for s in chosen]), groups)
    filament_coefficients, filament_error = _relative_fit(design, np.array([s.filament_g for s in chosen]), groups)
    largest = tuple(float(v) for v in design[:, 1:].max(axis=0))
    products = {}
    for product in sorted(set(groups.tolist()) - {""}):
        inside = groups == product
        if np.count_nonzero(inside) < MIN_PRODUCT_SLICES:
            continue
        time_scale, time_pct = _scale(design[inside] @ time_coefficients,
                                      np.array([s.print_time_s for s, i in zip(chosen, inside, strict=True) if i]))
        grams_scale, grams_pct = _scale(design[inside] @ filament_coefficients,
                                        np.array([s.filament_g for s, i in zip(chosen, inside, strict=True) if i]))
        products[product] = ProductScale(round(time_scale, 5), round(grams_scale, 5), round(time_pct, 2),
                                         round(grams_pct, 2), int(np.count_nonzero(inside)))
    return SliceModel(tuple(float(v) for v in time_coefficients), tuple(float(v) for v in filament_coefficients),
                      round(time_error, 2), round(filament_error, 2), len(chosen), largest, products)


def _scale(modelled: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """The factor that brings the model's figures for one product closest to its slices (relative least squares),
    and the leave-one-out relative error of the scaled figures at the quantile (%)."""
    ratio = modelled / target
    scale = float(ratio.sum() / (ratio**2).sum())
    misses = []
    for index in range(len(ratio)):
        others = np.delete(ratio, index)
        misses.append(abs(1.0 - others.sum() / (others**2).sum() * ratio[index]))
    return scale, float(np.quantile(misses, ERROR_QUANTILE) * 100)
