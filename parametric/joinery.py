"""Joinery fits: how wide a dado, rebate, slot or mortise is cut for the sheet that goes into it.

A housing for a sheet (the dado a shelf sits in, the rebate of a back panel, the slots of a
cross-halving joint, the mortise of a tenon) is cut as wide as the sheet that goes into it plus a
fit allowance, so the parts slide together by hand and leave room for glue. The customer orders a
nominal thickness (18 mm); the sheets in the rack measure what they measure (18 mm birch plywood
often measures 17.6 mm). A template reads a housing's width from its parameters' fit,
``params.fit.width(18)``: when a product is rendered for the shop (preview, quote, drawings) that
is the nominal thickness plus the allowance; when CAM cuts it on a router whose stock record
carries the measured thickness (:class:`parametric.machines.StockSheet`), it is the measured
thickness plus the allowance (:func:`parametric.production.make` rebuilds the parts with
:func:`stock_fit`). The nominal thickness, the parts' size and the order stay as ordered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FIT_ALLOWANCE_MM = 0.2
"""Clearance added to a sheet's thickness for the housing it slides into (mm): a push fit by hand
with room for glue; tighter needs a mallet, looser rattles."""

PANEL_THICKNESSES_MM = (12, 15, 18, 19, 22, 25, 30)
"""Thicknesses plywood and MDF panels are stocked in (mm): metric 12, 15, 18, 22, 25, 30 and the
3/4 in (19 mm) of imported sheet."""
THIN_SHEET_THICKNESSES_MM = (3, 4, 6, 9)
"""Thin plywood, hardboard and MDF for back panels and drawer bottoms (mm)."""


@dataclass(frozen=True)
class SheetFit:
    """The thickness sheets really have, by nominal thickness, and the allowance housings get (mm)."""

    measured_mm: Mapping[float, float] = field(default_factory=dict)
    """Measured thickness of the stocked sheets, by their nominal thickness; a nominal thickness not listed
    is taken as measuring what it says."""
    allowance_mm: float = FIT_ALLOWANCE_MM

    def thickness(self, nominal_mm: float) -> float:
        """The thickness a sheet of ``nominal_mm`` really has."""
        return float(self.measured_mm.get(float(nominal_mm), nominal_mm))

    def width(self, nominal_mm: float) -> float:
        """The width to cut a housing (dado, rebate, slot, mortise) for a sheet of ``nominal_mm``."""
        return round(self.thickness(nominal_mm) + self.allowance_mm, 4)

    @property
    def nominal(self) -> bool:
        """True when every sheet is taken at its nominal thickness."""
        return all(abs(measured - nominal) < 1e-9 for nominal, measured in self.measured_mm.items())

    def as_dict(self) -> dict[str, Any]:
        return {"allowance_mm": self.allowance_mm,
                "measured_mm": {f"{nominal:g}": measured for nominal, measured in sorted(self.measured_mm.items())}}


NOMINAL = SheetFit()
"""Every sheet as thick as it says, with the usual allowance: what a shop-front render uses."""


def stock_fit(router: Any, material: str, allowance_mm: float = FIT_ALLOWANCE_MM) -> SheetFit:
    """The fit a router's stock gives for ``material``: the measured thickness of each stocked sheet that
    has one (:attr:`parametric.machines.StockSheet.measured_thickness_mm`)."""
    measured = {float(sheet.thickness_mm): float(sheet.measured_thickness_mm) for sheet in router.stock
                if sheet.material == material and getattr(sheet, "measured_thickness_mm", None) is not None}
    return SheetFit(measured, allowance_mm)


def fitted_shapes(manifest: Any, template: Any, fit: SheetFit) -> tuple[dict[str, Any] | None, str]:
    """The parts rebuilt with their dados, rebates and slots cut to the router's measured sheets, by name, or
    ``None`` and why not: every sheet measures its nominal thickness, or the order was made with another
    version of the template (its rendered STEP files are then cut as they are, to the nominal sheet). The
    parameters, and so the parts' nominal thickness and size, stay what was ordered."""
    if fit.nominal:
        return None, ""
    if manifest.version != template.version:
        return None, (f"the order was made with {template.id} {manifest.version} (now {template.version}); its "
                      "joints are cut as rendered, to the nominal sheet")
    from .part import as_parts, solid_of

    params = template.validate(manifest.params).fitted(fit)
    return {part.name: solid_of(part.shape) for part in as_parts(template.id, template.build(params))}, ""
