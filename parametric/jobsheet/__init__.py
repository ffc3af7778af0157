"""Job sheets: what a workshop needs to make one ordered item, as HTML and PDF from one template.

A sheet carries the order and item references, the product and its version, the parameter
table with units (from the template's parameter model), material, quantity, machine, the
estimated time and material (from slicing or CAM), bounding box and mass, the drawing view
(drawn from the SVG the core exports, once per SVG), a QR code linking to the job in the
dashboard, the operation checklist, and the quality checks to sign (the template's key
dimensions with tolerances).

The HTML comes from ``templates/jobsheet.html.j2`` (Jinja2); the PDF is WeasyPrint's
rendering of the same HTML, so the two never disagree. A sheet costs little next to slicing
(about 0.2 s in a warm worker; the first in a process also pays WeasyPrint's import and
font set-up, about a second): the drawing is derived once and kept, the font configuration is
kept per thread, and the template's layout avoids WeasyPrint's slow paths (see the template).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .. import units
from ..errors import ParametricError
from ..files import atomic_target, atomic_write
from ..manifest import Manifest
from ..materials import get_material
from .drawing import DRAWING_BOX_MM, drawing_data_uri, sheet_drawing

__all__ = ["DRAWING_BOX_MM", "JobSheet", "JobSheetError", "build_context", "drawing_data_uri", "format_duration",
           "render_html", "sheet_drawing", "write_job_sheet", "write_pdf"]


class JobSheetError(ParametricError):
    """The PDF could not be made (WeasyPrint or its system libraries are missing or failed)."""


@dataclass
class JobSheet:
    """The files of one job sheet and how long they took (seconds)."""

    html: Path
    pdf: Path | None
    timings: dict[str, float] = field(default_factory=dict)
    labels: Path | None = None


def _number(value: float, digits: int = 1) -> str:
    return units.format_number(value, digits)


def format_duration(seconds: float) -> str:
    """``"2 h 05 min"``, ``"12 min"``, ``"40 s"``: how long, for people at a machine (no seconds past a minute)."""
    return units.format_duration(seconds, precise=False)


def format_value(value: Any, unit: str) -> str:
    """A canonical parameter value with its unit, as a customer would read it."""
    if value is None:
        return "derived"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        text = _number(float(value), 2)
        if unit in ("", "count"):
            return text
        return f"{text}°" if unit == "deg" else f"{text} {unit}"
    return str(value)


def parameter_rows(template: Any, params: Mapping[str, Any], shown_in: str = "mm") -> list[dict[str, str]]:
    """One row per parameter: label, value with unit, unit, what is allowed, and the description; lengths also in
    the customer's unit system ``shown_in`` when they ordered in another than mm (``"31.5 in (800.1 mm)"``)."""
    rows = []
    model = template.Params
    for name in model.model_fields:
        meta = model.field_help(name)
        unit = meta.get("unit") or ""
        value = format_value(params.get(name), unit)
        if unit == "mm" and shown_in != "mm" and isinstance(params.get(name), int | float):
            value = f"{units.format_length(params[name], shown_in)} ({value})"
        rows.append({"name": name, "label": name.replace("_", " ").capitalize(),
                     "value": value, "unit": "" if unit == "count" else unit,
                     "allowed": model.allowed(name), "description": meta["description"],
                     "group": meta.get("group", "")})
    return rows


def qr_data_uri(url: str) -> str:
    """A QR code of ``url`` as an SVG data URI (vector, so it stays sharp in the PDF)."""
    import segno

    return segno.make(url, error="m").svg_data_uri(scale=1, border=4, dark="#000", light="#fff")


def _machine_text(machine: Mapping[str, Any] | None) -> str:
    if not machine:
        return "not assigned"
    if machine.get("kind") == "printer":
        x, y, z = machine["build_volume_mm"]
        return (f"{machine['name']} (printer, {_number(x)} x {_number(y)} x {_number(z)} mm, "
                f"{_number(machine['nozzle_diameter_mm'], 2)} mm nozzle)")
    x, y = machine["bed_mm"]
    return f"{machine['name']} (CNC router, {machine['dialect'].upper()}, bed {_number(x)} x {_number(y)} mm)"


def _printing(slicing: Mapping[str, Any]) -> tuple[list[dict[str, str]], list[str], str, str]:
    material = get_material(slicing["material"])
    machine = slicing["machine"]
    estimates = slicing["estimates"]
    facts = [
        {"label": "Print time (PrusaSlicer)", "value": format_duration(estimates["print_time_s"])},
        {"label": "Filament", "value": f"{_number(estimates['filament_g'])} g {material.name}, "
                                       f"{_number(estimates['filament_mm'] / 1000, 2)} m of "
                                       f"{_number(machine['filament_diameter_mm'], 2)} mm"},
        {"label": "Filament cost", "value": f"{estimates['cost']:.2f}"},
        {"label": "Print settings", "value": f"{_number(slicing['settings']['layer_height_mm'], 2)} mm layers, "
                                             f"{_number(slicing['settings']['infill_percent'])}% infill, "
                                             f"{slicing['settings']['perimeters']} perimeters"},
    ]
    steps = [f"Load {material.name} on {machine['name']} and check the {_number(machine['nozzle_diameter_mm'], 2)} "
             "mm nozzle and a clean bed"]
    for plate in slicing["plates"]:
        plate_estimates = plate["estimates"]
        supports = ", with supports" if plate.get("supports") else ""
        steps.append(f"Print {plate['gcode']}: {plate['copies']} x {plate['part']}{supports}, "
                     f"{format_duration(plate_estimates['print_time_s'])}, {_number(plate_estimates['filament_g'])} g")
    steps.append("Remove the parts, the skirt and any support; check the first layer and the top surface")
    return facts, steps, format_duration(estimates["print_time_s"]), f"{_number(estimates['filament_g'])} g " \
                                                                      f"{material.name}"


def _cutting(cam: Mapping[str, Any]) -> tuple[list[dict[str, str]], list[str], str, str]:
    material = get_material(cam["material"])
    area = sum(p["size_mm"][0] * p["size_mm"][1] * p["copies"] for p in cam["parts"]) / 1e6
    thicknesses = sorted({p["thickness_mm"] for p in cam["parts"]})
    pieces = sum(p["copies"] for p in cam["parts"])
    sheet = ", ".join(f"{_number(t)} mm" for t in thicknesses)
    facts = [
        {"label": "Machining time (estimated)", "value": format_duration(cam["machining_time_s"])},
        {"label": "Sheet", "value": f"{material.name}, {sheet}; {pieces} pieces, {_number(area, 2)} m² of parts"},
        {"label": "Cutting", "value": f"tabs {_number(cam['settings']['tab_width_mm'])} x "
                                      f"{_number(cam['settings']['tab_height_mm'])} mm, dogbones "
                                      f"{'on' if cam['settings']['dogbones'] else 'off'}"},
    ]
    fit = cam.get("fit")
    if fit:
        measured = "; ".join(f"{nominal} mm sheet measures {_number(value)} mm"
                             for nominal, value in fit["measured_mm"].items()) if fit.get("rebuilt") else ""
        facts.append({"label": "Joints", "value": "dados, rebates, slots and mortises cut to the sheet "
                                                  f"{'as measured' if measured else 'as nominal'} plus "
                                                  f"{_number(fit['allowance_mm'])} mm"
                                                  + (f" ({measured})" if measured else "")
                                                  + (f"; {fit['kept_nominal']}" if fit.get("kept_nominal") else "")})
    steps = []
    for part in cam["parts"]:
        programs = ", ".join(p["file"] for p in part["programs"])
        steps.append(f"{part['part']} x {part['copies']}: {_number(part['size_mm'][0])} x "
                     f"{_number(part['size_mm'][1])} x {_number(part['thickness_mm'])} mm, {programs}, "
                     f"{format_duration(part['time_s'])} each")
        steps.extend(f"{part['part']}: {line}" for line in part["checklist"])
    return facts, steps, format_duration(cam["machining_time_s"]), f"{_number(area, 2)} m² {material.name} {sheet}"


def _printed_grams(slicing: Mapping[str, Any]) -> dict[str, float]:
    """The filament one printed copy of each part takes, from PrusaSlicer's estimates of its plates (infill and
    walls, not the solid's mass)."""
    grams: dict[str, float] = {}
    copies: dict[str, int] = {}
    for plate in slicing.get("plates", []):
        grams[plate["part"]] = grams.get(plate["part"], 0.0) + plate["estimates"]["filament_g"]
        copies[plate["part"]] = copies.get(plate["part"], 0) + plate["copies"]
    return {part: grams[part] / copies[part] for part in grams if copies[part]}


def cut_list(manifest: Manifest, quantity: int = 1) -> list[dict[str, str]]:
    """One row per sheet part: copies, finished length x width x thickness, material and grain direction."""
    rows = []
    for part in manifest.parts:
        if not part.get("flat"):
            continue
        x, y, _ = part["size_mm"]
        thickness = part.get("thickness_mm") or part["size_mm"][2]
        grain = {"x": "along the length" if x >= y else "across the width",
                 "y": "along the length" if y > x else "across the width"}.get(part.get("grain") or "", "any way")
        material = get_material(part["material"]).name if part.get("material") else manifest.material["name"]
        rows.append({"part": part["name"], "copies": str(part["quantity"] * quantity),
                     "size": f"{_number(max(x, y))} x {_number(min(x, y))} x {_number(thickness)} mm",
                     "material": material, "grain": grain})
    return rows


def build_context(manifest: Manifest, *, order_ref: str, item_ref: str, job_url: str | None, quantity: int = 1,
                  machine: Mapping[str, Any] | None = None, notes: Sequence[str] = (),
                  created: dt.datetime | None = None, customer_units: str = "mm") -> dict[str, Any]:
    """Everything the job sheet template shows, from a manifest (with its ``slicing`` or ``cam`` section);
    ``customer_units``: the unit system the customer ordered in, shown beside the millimetres."""
    from ..registry import get_template

    template = get_template(manifest.template)
    params = template.resolve(manifest.params)
    production = manifest.extra.get("slicing") or manifest.extra.get("cam")
    machine = machine or (production or {}).get("machine")
    if manifest.extra.get("slicing"):
        facts, steps, time_text, material_text = _printing(manifest.extra["slicing"])
    elif manifest.extra.get("cam"):
        facts, steps, time_text, material_text = _cutting(manifest.extra["cam"])
    else:
        facts, steps, time_text, material_text = [], [], "not estimated", manifest.material["name"]
    checks = [{"label": c.label, "nominal": f"{_number(c.nominal_mm, 2)} mm",
               "tolerance": f"± {_number(c.tolerance_mm, 2)} mm"} for c in template.quality_checks(params)]
    printed = _printed_grams(manifest.extra.get("slicing") or {})
    parts = [{"name": p["name"], "quantity": p["quantity"] * quantity,
              "size": " x ".join(_number(v) for v in p["size_mm"]) + " mm",
              "mass": (f"{_number(printed[p['name']])} g printed ({_number(p['mass_g'])} g solid)"
                       if p["name"] in printed else f"{_number(p['mass_g'])} g"),
              "process": p.get("process") or "+".join(template.process), "notes": p.get("notes", "")}
             for p in manifest.parts]
    hardware = [{"item": h.item, "quantity": h.quantity * quantity, "note": h.note}
                for h in template.hardware(params)]
    created = created or dt.datetime.now(dt.UTC)
    return {
        "order_ref": order_ref, "item_ref": item_ref, "job_url": job_url,
        "qr": qr_data_uri(job_url) if job_url else None,
        "product": template.name, "template_id": template.id, "version": manifest.version,
        "quantity": quantity, "material": manifest.material["name"], "machine": _machine_text(machine),
        "estimated_time": time_text, "estimated_material": material_text, "facts": facts,
        "bbox": " x ".join(_number(v) for v in manifest.bbox_mm) + " mm",
        "mass": (f"{_number(manifest.mass_g / 1000, 3)} kg" if manifest.mass_g >= 1000
                 else f"{_number(manifest.mass_g)} g"),
        "parameters": parameter_rows(template, manifest.params, customer_units), "parts": parts,
        "cut_list": cut_list(manifest, quantity), "hardware": hardware,
        "second_setups": [{"part": part["part"], **setup} for part in (manifest.extra.get("cam") or {}).get("parts", [])
                          for setup in part.get("second_setups", [])], "assembly": template.assembly(params),
        "drawing": drawing_data_uri(manifest), "steps": steps, "checks": checks, "notes": list(notes),
        "cache_key": manifest.cache_key, "created": created.strftime("%Y-%m-%d %H:%M UTC"),
    }


@cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("parametric.jobsheet", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
                              lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def render_html(context: Mapping[str, Any]) -> str:
    """The job sheet as a standalone HTML page (print styles included)."""
    return _environment().get_template("jobsheet.html.j2").render(**context)


_fonts = threading.local()


def _font_configuration() -> Any:
    """This thread's WeasyPrint font configuration, made once: Pango keeps its font and shaping caches
    on it, so a long-lived worker does not look up and measure the same fonts for every sheet (Pango
    objects are not shared between threads)."""
    configuration = getattr(_fonts, "configuration", None)
    if configuration is None:
        from weasyprint.text.fonts import FontConfiguration

        configuration = _fonts.configuration = FontConfiguration()
    return configuration


def write_pdf(html: str, target: str | Path) -> Path:
    """The HTML typeset to PDF by WeasyPrint, written atomically; its text stays extractable."""
    try:
        import weasyprint
    except (ImportError, OSError) as error:  # OSError: pango missing
        raise JobSheetError(f"WeasyPrint is not usable ({error}); pip install weasyprint and the pango libraries "
                            "(scripts/install-system-deps.sh)") from error
    with atomic_target(target) as temporary:
        weasyprint.HTML(string=html).write_pdf(str(temporary), font_config=_font_configuration())
    return Path(target)


def label_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The part labels of a job sheet's context: one per copy of every part, numbered within its part."""
    labels = [{"part": part["name"], "number": copy, "copies": part["quantity"], "size": part["size"]}
              for part in context["parts"] for copy in range(1, part["quantity"] + 1)]
    return {key: context[key] for key in ("order_ref", "item_ref", "product", "qr")} | {"labels": labels}


def write_job_sheet(manifest: Manifest, out_dir: str | Path, *, order_ref: str, item_ref: str, job_url: str | None,
                    quantity: int = 1, machine: Mapping[str, Any] | None = None, notes: Sequence[str] = (),
                    pdf: bool = True, stem: str = "jobsheet", customer_units: str = "mm") -> JobSheet:
    """Write ``<stem>.html`` and ``<stem>.pdf`` for one item into ``out_dir``, and with the PDF the part labels,
    ``<stem>-labels.pdf`` (one per part copy, for 21-up A4 label stock, with the job's QR code); lengths also in
    ``customer_units``."""
    started = time.perf_counter()
    context = build_context(manifest, order_ref=order_ref, item_ref=item_ref, job_url=job_url, quantity=quantity,
                            machine=machine, notes=notes, customer_units=customer_units)
    html = render_html(context)
    html_path = atomic_write(Path(out_dir) / f"{stem}.html", html)
    rendered = time.perf_counter()
    pdf_path = write_pdf(html, Path(out_dir) / f"{stem}.pdf") if pdf else None
    done = time.perf_counter()
    labels = None
    if pdf:
        labels_html = _environment().get_template("labels.html.j2").render(label_context(context))
        labels = write_pdf(labels_html, Path(out_dir) / f"{stem}-labels.pdf")
    return JobSheet(html_path, pdf_path, {"html_s": rendered - started, "pdf_s": done - rendered,
                                          "labels_s": time.perf_counter() - done}, labels)
