"""Production: the one flow from a rendered product to its manufacturing files on one machine.

:func:`make` takes a render's :class:`~parametric.Manifest`, a machine and a choice of parts,
and makes what that machine needs: sliced plates for a printer (PrusaSlicer), toolpaths,
per-part DXF and G-code for a router (CAM, optionally checked by LinuxCNC's ``rs274``), and a
job sheet when asked. It records every file and the slicing or CAM section in a manifest
written beside them. :func:`produce` renders first. The CLI's ``slice``, ``cam`` and
``jobsheet`` and the web app's job preparation both call these, so they cannot drift apart.

Only the parts the machine's process makes are touched, and with ``parts`` only those: a job
for one part of an order item prepares that part alone, so a part no machine can make fails
by itself while the item's other parts are made.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import FieldError, ValidationError
from .files import atomic_write_json
from .joinery import fitted_shapes, stock_fit
from .machines import Machine, Printer, Router
from .manifest import Manifest
from .materials import materials

PROCESS_OF = {"printer": "fdm", "router": "cnc"}
"""The process each kind of machine makes parts by."""
NOUNS = {"fdm": "printed", "cnc": "CNC"}


@dataclass(frozen=True)
class SheetRequest:
    """What a job sheet says about the job: its order and item references, and where its QR code leads
    (without an order, the sheet is a local one: ``LOCAL-`` and the start of the render's cache key)."""

    order_ref: str | None
    item_ref: str
    job_url: str | None  # None: the sheet says it has no link rather than point at a local file
    notes: Sequence[str] = ()
    pdf: bool = True
    stem: str = "jobsheet"
    customer_units: str = "mm"  # the unit system the customer ordered in: lengths shown in it beside the mm


@dataclass
class Production:
    """What :func:`make` made: the manifest recording it, the machine, the material, and per part the
    slicer's plates (printers) or CAM's results (routers), the job sheet, and the verification."""

    manifest: Manifest
    machine: Machine
    material: str
    quantity: int
    slices: list[Any] = field(default_factory=list)  # fdm: SliceResult per plate
    cam: list[Any] = field(default_factory=list)  # cnc: CamResult per part
    sheet: Any = None  # JobSheet, when one was asked for
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def process(self) -> str:
        return PROCESS_OF[self.machine.kind]

    @property
    def out_dir(self) -> Path:
        return self.manifest.directory

    @property
    def machine_time_s(self) -> float:
        """The estimated time on the machine for all copies: PrusaSlicer's print time, or the CAM time."""
        if self.slices:
            return sum(result.estimates.print_time_s for result in self.slices)
        return sum(result.time_s * result.copies for result in self.cam)

    def programs(self) -> list[Path]:
        """Every G-code file made, in the order it runs."""
        if self.slices:
            return [result.gcode for result in self.slices]
        return [self.out_dir / CNC_FOLDER / program.filename for result in self.cam for program in result.programs]


CNC_FOLDER = "cnc"
"""Where CAM's DXF, G-code and tool table go inside the output folder."""


def material_for(template: Any, machine: Machine, requested: str | None = None, preset: str | None = None) -> str:
    """The material ``machine`` makes ``template``'s parts in: ``requested`` when the template offers it
    for the machine's process, else the preset's when it is of that process, else the template's first
    material of that process."""
    process = PROCESS_OF[machine.kind]
    offered = [m for m in template.materials if materials()[m].process == process]
    if requested is None and template.preset_material(preset) in offered:
        requested = template.preset_material(preset)
    if process == "fdm":
        from .fdm import printing_data

        offered = [m for m in offered if m in printing_data()]
    noun = "printing" if process == "fdm" else "sheet"
    if requested is not None:
        if requested not in offered:
            allowed = ", ".join(offered) or f"none (this template has no {NOUNS[process]} parts)"
            raise ValidationError([FieldError("material", f"{requested!r} is not a {noun} material offered for "
                                                          f"{template.id}; allowed: {allowed}")])
        chosen = requested
    elif not offered:
        raise ValidationError([FieldError("template", f"{template.id} has no {NOUNS[process]} parts (process: "
                                                      f"{', '.join(template.process)})")])
    else:
        chosen = offered[0]
    if isinstance(machine, Printer) and chosen not in machine.materials:
        loaded = ", ".join(machine.materials) or "nothing"
        raise ValidationError([FieldError("machine", f"{machine.name} has {loaded} loaded, not {chosen}; load "
                                                     f"{chosen} on it or choose a material among those loaded")])
    return chosen


def formats_for(machine: Machine, *, sheet: bool = False) -> list[str]:
    """The render formats :func:`make` needs on ``machine``: STL to slice, STEP (and DXF) to toolpath, and
    the SVG drawing for a job sheet."""
    formats = ["stl"] if isinstance(machine, Printer) else ["step", "dxf"]
    return formats + (["svg"] if sheet else [])


def produce(template_id: str, params: Mapping[str, Any] | None, machine: Machine, out_dir: str | os.PathLike[str],
            *, preset: str | None = None, material: str | None = None, **options: Any) -> Production:
    """Render ``template_id`` with ``params`` into ``out_dir``, then :func:`make` it on ``machine``
    (``options`` are :func:`make`'s)."""
    manifest, chosen = render_for(template_id, params, machine, out_dir, preset=preset, material=material,
                                  sheet=options.get("sheet") is not None)
    return make(manifest, machine, material=chosen, **options)


def render_for(template_id: str, params: Mapping[str, Any] | None, machine: Machine,
               out_dir: str | os.PathLike[str], *, preset: str | None = None, material: str | None = None,
               sheet: bool = False) -> tuple[Manifest, str]:
    """Render ``template_id`` into ``out_dir`` with the files ``machine`` needs, in the material it makes the
    parts in (:func:`material_for`): the manifest and that material."""
    from .registry import get_template
    from .render import render

    template = get_template(template_id)
    chosen = material_for(template, machine, material, preset)
    manifest = render(template.id, params, out_dir=out_dir, preset=preset, material=chosen,
                      formats=formats_for(machine, sheet=sheet))
    return manifest, chosen


def parts_for(manifest: Manifest, machine: Machine) -> list[dict[str, Any]]:
    """The parts of a rendered product that ``machine``'s process makes (the manifest's part records)."""
    from .registry import get_template

    template = get_template(manifest.template)
    return _select(manifest, template, PROCESS_OF[machine.kind], None)


def make(manifest: Manifest, machine: Machine, out_dir: str | os.PathLike[str] | None = None, *,
         material: str | None = None, parts: Sequence[str] | None = None, quantity: int = 1,
         print_settings: Any = None, cam_settings: Any = None, verify: bool = True,
         sheet: SheetRequest | None = None) -> Production:
    """Make ``quantity`` of the product in ``manifest`` on ``machine`` into ``out_dir`` (default: the
    manifest's folder), and record the files and estimates in ``out_dir/manifest.json``.

    ``parts`` names the parts to make (default: every part of the machine's process). Every CNC program
    (and the tool table it reads) is run through LinuxCNC's rs274 before it is recorded, so nothing
    unchecked is offered; ``verify=False`` is for timing CAM alone. Raises
    :class:`ValidationError` when a part cannot be made on ``machine`` (naming the part and why),
    :class:`~parametric.fdm.SlicerError`, :class:`~parametric.cnc.CamError`,
    :class:`~parametric.cnc.InterpreterError` or :class:`~parametric.jobsheet.JobSheetError`
    when a tool fails on accepted input.
    """
    from .registry import get_template

    started = time.perf_counter()
    template = get_template(manifest.template)
    process = PROCESS_OF[machine.kind]
    selected = _select(manifest, template, process, parts)
    chosen = material or _part_material(template, selected[0], process)
    if quantity < 1:
        raise ValidationError([FieldError("quantity", f"{quantity} is out of range; allowed: 1 or more")])
    out = Path(out_dir).resolve() if out_dir is not None else manifest.directory
    out.mkdir(parents=True, exist_ok=True)  # the render's files are named from it (../ included)
    made = _narrowed(manifest, selected if parts is not None else None, out)
    production = Production(made, machine, chosen, quantity)
    if isinstance(machine, Printer):
        _slice(production, template, print_settings)
    else:
        _toolpath(production, template, cam_settings, verify)
    if sheet is not None:
        _job_sheet(production, sheet)
    production.timings["total_s"] = round(time.perf_counter() - started, 4)
    section = made.extra.get("slicing") or made.extra.get("cam")
    section.setdefault("timings", {})["total_s"] = production.timings["total_s"]
    made.path = atomic_write_json(out / "manifest.json", made.to_dict())
    return production


CUT_ESTIMATE_GENERATION = 1
"""Bump when CAM changes the toolpaths it plans, so cached cut estimates are not served."""


@dataclass(frozen=True)
class CutEstimate:
    """CAM's figures for one copy of a flat part on a router, for a quote: the same toolpaths a job makes."""

    part: str
    machine: str
    time_s: float
    """Machining time of one copy (tool changes included), as :attr:`Production.machine_time_s` counts it."""
    size_mm: tuple[float, float]
    """The part's footprint on the sheet as CAM lays it (turned a quarter turn if the sheet needs it)."""
    thickness_mm: float
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "time_s": round(self.time_s, 1),
                "size_mm": [round(v, 3) for v in self.size_mm], "thickness_mm": self.thickness_mm,
                "cached": self.cached}


def estimate_cut(manifest: Manifest, router: Router, part: str, *, material: str | None = None,
                 cam_settings: Any = None, cache_root: str | os.PathLike[str] | None = None) -> CutEstimate:
    """CAM's machining time for one copy of ``part`` of a rendered ``manifest`` (rendered with STEP) on ``router``.

    It runs :func:`make` itself, once per configuration, router, material and settings, in a scratch folder
    and keeps only the figures (in ``cache_root``, default the core's cache folder): a quote then costs a file
    read, and a job made later from the same render plans the same toolpaths, so its time is this one times
    its copies.
    """
    from .cache import output_root
    from .cnc import CamSettings
    from .machines import public_record

    settings = cam_settings or CamSettings()
    root = Path(cache_root) if cache_root is not None else output_root() / "cache"
    root = root / "cuts"
    document = {"render": manifest.cache_key, "part": part, "material": material,
                "router": {k: v for k, v in public_record(router).items() if k not in ("name", "delivery")},
                "settings": settings.as_dict(), "generation": CUT_ESTIMATE_GENERATION}
    key = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()
    record = root / key[:2] / f"{key}.json"
    try:
        known = json.loads(record.read_text("utf-8"))
        return CutEstimate(part, router.name, float(known["time_s"]), tuple(known["size_mm"]),  # type: ignore[arg-type]
                           float(known["thickness_mm"]), cached=True)
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        pass
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".cut-", dir=root) as scratch:
        # the same toolpaths the job plans; rs274 checks the job's programs, a quote needs only their time
        made = make(manifest, router, scratch, material=material, parts=[part], quantity=1, cam_settings=settings,
                    verify=False)
    [result] = made.cam
    width, height = result.features.size
    found = CutEstimate(part, router.name, result.time_s, (width, height), float(result.features.thickness))
    atomic_write_json(record, {"time_s": found.time_s, "size_mm": list(found.size_mm),
                               "thickness_mm": found.thickness_mm})
    return found


def _select(manifest: Manifest, template: Any, process: str, names: Sequence[str] | None) -> list[dict[str, Any]]:
    default = _single_process(template)
    of_process = [p for p in manifest.parts if (p.get("process") or default) == process]
    if names is not None:
        known = {p["name"] for p in of_process}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValidationError([FieldError("parts", f"{', '.join(unknown)}: no such {NOUNS[process]} part of "
                                                       f"{template.id}; its {NOUNS[process]} parts: "
                                                       f"{', '.join(sorted(known)) or 'none'}")])
        of_process = [p for p in of_process if p["name"] in names]
    if not of_process:
        raise ValidationError([FieldError("template", f"{template.id} has no {NOUNS[process]} parts")])
    return of_process


def _single_process(template: Any) -> str | None:
    """The process of a single-process template: its parts' process when the manifest names none."""
    return template.process[0] if len(template.process) == 1 else None


def _part_material(template: Any, part: Mapping[str, Any], process: str) -> str:
    """The material a part is made of: the manifest's, else the template's for the part's process."""
    if part.get("material"):
        return str(part["material"])
    return template.materials_by_process().get(process, template.materials[0])


def _narrowed(manifest: Manifest, parts: list[dict[str, Any]] | None, out: Path) -> Manifest:
    """The manifest of what is made here, its files named from ``out``: the whole product, or with ``parts``
    only those (one part with its own size, mass and material) and their files (and the assembly's)."""
    base, records = manifest, manifest.files
    if parts is not None:
        names = {p["name"] for p in parts} | {"assembly"}
        base = manifest.for_part(parts[0]["name"]) if len(parts) == 1 else replace(manifest, parts=list(parts))
        records = [record for record in manifest.files if record.get("part") in names]
    files = [{**record, "filename": _relative(manifest.directory / record["filename"], out)} for record in records]
    return replace(base, files=files, directory=out, path=out / "manifest.json", extra=dict(manifest.extra))


def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path.resolve(), folder)).as_posix()


def _record(production: Production, format_: str, part: str, path: Path) -> None:
    from .cache import file_record

    production.manifest.files.append(file_record(production.out_dir, format_, part,
                                                 _relative(path, production.out_dir)))


def _slice(production: Production, template: Any, settings: Any) -> None:
    from .fdm import PrintSettings, slice_manifest, slicing_record

    printer = production.machine
    assert isinstance(printer, Printer)
    settings = settings or PrintSettings()
    problems = settings.problems(printer)
    if problems:
        raise ValidationError(problems)
    results = slice_manifest(production.manifest, printer, production.material, production.out_dir,
                             quantity=production.quantity, settings=settings,
                             process=_single_process(template))
    production.slices = results
    for result in results:
        _record(production, "gcode", result.part, result.gcode)
    production.manifest.extra["slicing"] = slicing_record(results, printer, production.material, production.quantity,
                                                          settings)


def _toolpath(production: Production, template: Any, settings: Any, verify: bool) -> None:
    from .cnc import CamSettings, cam_manifest, cam_record

    router = production.machine
    assert isinstance(router, Router)
    settings = settings or CamSettings()
    folder = production.out_dir / CNC_FOLDER
    fit = stock_fit(router, production.material)
    shapes, kept = fitted_shapes(production.manifest, template, fit)
    results = cam_manifest(production.manifest, router, production.material, folder, quantity=production.quantity,
                           settings=settings, process=_single_process(template), shapes=shapes)
    production.cam = results
    if verify:
        from .cnc import check_programs

        for result in results:
            canon = check_programs([folder / p.filename for p in result.programs], result.tool_table)
            result.verified_moves = len(canon.moves)
    for result in results:
        _record(production, "cam_dxf", result.part, result.dxf)
        for program in result.programs:
            _record(production, "gcode", result.part, folder / program.filename)
        if result.tool_table is not None and not any(r["format"] == "tool_table" for r in production.manifest.files):
            _record(production, "tool_table", "job", result.tool_table)
    production.manifest.extra["cam"] = cam_record(results, router, production.material, production.quantity, settings)
    production.manifest.extra["cam"]["fit"] = {**fit.as_dict(), "rebuilt": shapes is not None,
                                               **({"kept_nominal": kept} if kept else {})}


def _job_sheet(production: Production, request: SheetRequest) -> None:
    from .jobsheet import write_job_sheet
    from .machines import public_record

    order = request.order_ref or f"LOCAL-{production.manifest.cache_key[:8]}"
    sheet = write_job_sheet(production.manifest, production.out_dir, order_ref=order,
                            item_ref=request.item_ref, job_url=request.job_url, quantity=production.quantity,
                            machine=public_record(production.machine), notes=request.notes, pdf=request.pdf,
                            stem=request.stem, customer_units=request.customer_units)
    production.sheet = sheet
    _record(production, "jobsheet_html", "job", sheet.html)
    if sheet.pdf is not None:
        _record(production, "jobsheet_pdf", "job", sheet.pdf)
    if sheet.labels is not None:
        _record(production, "labels_pdf", "job", sheet.labels)
    production.manifest.extra["jobsheet"] = {"order": order, "item": request.item_ref,
                                             "url": request.job_url,
                                             "timings": {k: round(v, 4) for k, v in sheet.timings.items()}}
