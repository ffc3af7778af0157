"""Batches: ready jobs of one machine and one material, made together on shared sheets (routers) or plates
(printers).

A ready job that is in no batch is gathered (:func:`gather`) into the open batch of its machine and material:
the stock material and thickness for a router, the filament for a printer. The batch is laid out again at once
by the core: :func:`parametric.batching.cutting.nest_on_router` over the parts' true outlines (outline, through
cut-outs and holes, read from their CAM features), or :func:`parametric.fdm.packing.pack_plates` over the printed
parts' footprints. A batch closes by the shop's policy (:class:`Policy`, from the app's configuration): when its
sheets reach a utilisation, when the oldest job's promised ship date needs it to start, or when staff close it.
A closed printer batch is sliced once per plate (:func:`parametric.fdm.make_plates`, PrusaSlicer keeping the
positions). Sending goes through the machine's connector, one sheet or plate per upload, and the batch's jobs
move with it (sent). Jobs keep their own order references and states; a job taken out of a batch is made on its
own and the batch is laid out again without it. Objects of a finished printer batch that did not come out right
are made again on new plates, one object (:func:`remake`) or every object of a stopped plate (:func:`remake_plates`)
at a time, each copy at most once (the original job records which job makes each placement again).

Every state change is one transaction; the layout work is the core's, this module keeps the bookkeeping.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from .db import Database
from .models import Batch, BatchPlacement, BatchSheet, Job, Order, OrderItem, utcnow

log = logging.getLogger(__name__)

OPEN_STATES = ("open", "closed")
"""States in which a batch's layout may still change (re-nest, take a job out)."""
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("closed", "failed"),
    "closed": ("sent", "open", "failed"),
    "sent": ("running", "done", "failed"),
    "running": ("done", "failed"),
    "done": (),
    "failed": ("open",),
}


class BatchError(Exception):
    """A batch action that cannot be done, in plain words; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 409, field: str = "state"):
        self.status, self.field = status, field
        super().__init__(message)


@dataclass(frozen=True)
class Policy:
    """What the shop sets (the app's configuration, ``BATCH_*``): whether ready jobs are batched at all, the
    utilisation at which a batch closes, how long before a promised ship date a batch must be started, and the
    layout's budget and gaps."""

    enabled: bool = False
    close_utilisation: float = 0.75
    ship_margin_hours: float = 24.0
    nest_seconds: float = 10.0
    plate_seconds: float = 3.0
    clearance_mm: float = 2.0
    margin_mm: float = 10.0
    part_in_part: bool = True
    plate_spacing_mm: float | None = None
    production_days: Mapping[str, float] | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Policy:
        return cls(enabled=bool(config.get("BATCHING", False)),
                   close_utilisation=float(config.get("BATCH_CLOSE_UTILISATION", 0.75)),
                   ship_margin_hours=float(config.get("BATCH_SHIP_MARGIN_HOURS", 24.0)),
                   nest_seconds=float(config.get("BATCH_NEST_SECONDS", 10.0)),
                   plate_seconds=float(config.get("BATCH_PLATE_SECONDS", 3.0)),
                   clearance_mm=float(config.get("BATCH_CLEARANCE_MM", 2.0)),
                   margin_mm=float(config.get("BATCH_SHEET_MARGIN_MM", 10.0)),
                   part_in_part=bool(config.get("BATCH_PART_IN_PART", True)),
                   plate_spacing_mm=config.get("BATCH_PLATE_SPACING_MM"),
                   production_days=config.get("PRODUCTION_DAYS"))


def _folder(output_folder: Path, batch_id: int) -> Path:
    return Path(output_folder) / "batches" / f"batch-{batch_id}"


def batch_ref(batch_id: int) -> str:
    """How the batch is named on its batch sheet and to staff: ``B-0012``."""
    return f"B-{batch_id:04d}"


def dashboard_url(config: Mapping[str, Any], batch_id: int) -> str:
    """The batch's page on the staff dashboard, at the app's public address: where its batch sheet's QR code
    points."""
    return f"{str(config.get('PUBLIC_URL') or '').rstrip('/')}/staff/batches/{batch_id}"


SHEET_FORMATS = {"html": "text/html", "pdf": "application/pdf"}
"""The batch sheet's formats and their media types."""


def object_label(index: int) -> str:
    """The G-code object label of the ``index``-th (1-based) object on a plate, as
    :func:`parametric.fdm.make_plates` names it (``; printing object o003.stl``)."""
    return f"o{index:03d}.stl"


# -- what batching needs of a job's part ---------------------------------------------------------------


def part_record(database: Database, output_folder: Path, job: Job) -> dict[str, Any]:
    """What batching needs of ``job``'s part, read from its item's files: its material (and sheet thickness),
    copies, and its true outline with holes (CNC, from the STEP's CAM features) or its footprint and height
    (printers, from the STL). Raises ``ValueError`` in plain words when the files do not say."""
    from parametric import get_template

    from .jobs import load_manifest, part_material

    with database.session() as session:
        item = session.get(OrderItem, job.item_id)
        assert item is not None
        item_material, template_id, quantity = item.material, item.template, item.quantity
    manifest = load_manifest(output_folder, job.item_id, database)
    part = next((p for p in manifest.parts if p.get("name") == job.part), None)
    if part is None:
        raise ValueError(f"the item has no part {job.part!r}")
    template = get_template(template_id)
    material = part_material(template, part, item_material, job.kind)
    copies = int((job.estimates or {}).get("copies") or int(part.get("quantity", 1)) * quantity)
    wanted = "step" if job.kind == "cnc" else "stl"
    record = next((r for r in manifest.files if r["format"] == wanted and r.get("part") == job.part), None)
    if record is None:
        raise ValueError(f"the item has no {wanted.upper()} file of its part {job.part!r}")
    path = manifest.directory / record["filename"]
    info: dict[str, Any] = {"material": material, "copies": copies,
                            "grain": bool(part.get("grain")), "source": str(path)}
    if job.kind == "cnc":
        from parametric.batching.cutting import features_outline
        from parametric.cnc import extract_features
        from parametric.cnc.features import load_step

        thickness = part.get("thickness_mm")
        features = extract_features(load_step(path), job.part, thickness)
        outline = features_outline(features)
        info["thickness_mm"] = float(features.thickness)
    else:
        from parametric.fdm.footprint import footprint, read_mesh

        mesh = read_mesh(path, label=record["filename"])
        outline = footprint(mesh)
        info["height_mm"] = float(mesh.extents[2])
        info["size_mm"] = [float(mesh.extents[0]), float(mesh.extents[1])]
    info["exterior"] = [list(point) for point in outline.exterior.coords]
    info["holes"] = [[list(point) for point in ring.coords] for ring in outline.interiors]
    return info


def _polygon(info: Mapping[str, Any]) -> Any:
    from shapely.geometry import Polygon

    return Polygon(info["exterior"], info.get("holes") or [])


def _key(job: Job) -> tuple[str, str, float | None]:
    info = job.batching or {}
    thickness = info.get("thickness_mm")
    return (job.machine or "", info["material"], round(float(thickness), 3) if thickness is not None else None)


# -- gathering ----------------------------------------------------------------------------------------------


def _gatherable(session: Any) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.state == "ready", Job.batch_id.is_(None),
                                                  Job.machine.is_not(None)).order_by(Job.id)).all())


def gather(database: Database, output_folder: Path, config: Mapping[str, Any], *, now: datetime | None = None
           ) -> list[int]:
    """Put every ready job in no batch into the open batch of its machine and material (a new one if there is
    none), lay the batches that changed out again and close those the policy says to. Returns their ids.

    A job whose part cannot be read for batching keeps going on its own (the reason is logged), and a job staff
    took out of a batch is never gathered again."""
    from . import machines

    policy = Policy.from_config(config)
    with database.session() as session:
        waiting = _gatherable(session)
    changed: set[int] = set()
    for job in waiting:
        info = job.batching
        if info is not None and info.get("kept_out"):
            continue
        if machines.get(database, job.machine or "") is None:
            continue
        if info is None or "exterior" not in info:
            try:
                info = part_record(database, output_folder, job)
            except Exception as error:  # its files say nothing we can nest: it is made on its own
                log.warning("job %s is not batched: %s", job.id, error)
                info = {"kept_out": True, "reason": f"not batched: {error}"}
            with database.transaction() as session:
                session.execute(update(Job).where(Job.id == job.id).values(batching=info))
            if info.get("kept_out"):
                continue
            job.batching = info
        machine, material, thickness = _key(job)
        with database.transaction() as session:
            batch = session.scalar(select(Batch).where(Batch.machine == machine, Batch.material == material,
                                                       Batch.state == "open", Batch.process == job.kind,
                                                       (Batch.thickness_mm.is_(None) if thickness is None
                                                        else Batch.thickness_mm == thickness))
                                   .order_by(Batch.id).limit(1).with_for_update())
            if batch is None:
                batch = Batch(machine=machine, process=job.kind, material=material, thickness_mm=thickness,
                              state="open", created_at=utcnow(), updated_at=utcnow())
                session.add(batch)
                session.flush()
            moved = session.execute(update(Job).where(Job.id == job.id, Job.state == "ready",
                                                      Job.batch_id.is_(None))
                                    .values(batch_id=batch.id, updated_at=utcnow()))
            if moved.rowcount == 1:
                changed.add(batch.id)
    for batch_id in sorted(changed):
        try:
            lay_out(database, output_folder, config, batch_id)
        except BatchError as error:
            log.warning("batch %s was not laid out: %s", batch_id, error)
            continue
    for batch_id in open_batches(database):
        reason = closing_reason(database, batch_id, policy, now=now)
        if reason is not None:
            try:
                close(database, output_folder, config, batch_id, reason)
                changed.add(batch_id)
            except BatchError as error:
                log.warning("batch %s did not close: %s", batch_id, error)
    return sorted(changed)


def open_batches(database: Database) -> list[int]:
    with database.session() as session:
        return list(session.scalars(select(Batch.id).where(Batch.state == "open").order_by(Batch.id)).all())


def members(database: Database, batch_id: int) -> list[Job]:
    """The batch's jobs, oldest first."""
    with database.session() as session:
        return list(session.scalars(select(Job).where(Job.batch_id == batch_id).order_by(Job.id)).all())


# -- laying out -------------------------------------------------------------------------------------------


def _machine(database: Database, batch: Batch) -> Any:
    from . import machines

    machine = machines.get(database, batch.machine)
    if machine is None or machine.process != batch.process:
        raise BatchError(f"the {'router' if batch.process == 'cnc' else 'printer'} {batch.machine!r} is no "
                         "longer set up")
    return machine


def _grain(info: Mapping[str, Any]) -> tuple[float, ...]:
    from parametric.batching import FOUR_WAY, GRAIN

    return GRAIN if info.get("grain") else FOUR_WAY


def lay_out(database: Database, output_folder: Path, config: Mapping[str, Any], batch_id: int) -> Batch:
    """Lay the batch's jobs out again (nest the sheets, or pack the plates) and store its sheets and placements,
    replacing the previous ones in one transaction; pictures are written into ``batches/batch-N``."""
    policy = Policy.from_config(config)
    batch = get(database, batch_id)
    if batch.state not in OPEN_STATES:
        raise BatchError(f"a {batch.state} batch cannot be laid out again")
    machine = _machine(database, batch)
    jobs_in = [job for job in members(database, batch_id) if job.batching and "exterior" in job.batching]
    folder = _folder(output_folder, batch_id)
    sheets: list[dict[str, Any]] = []
    engine, notes, unplaced = "", [], []
    if jobs_in:
        if batch.process == "cnc":
            sheets, engine, unplaced = _nest_sheets(batch, machine, jobs_in, policy, folder)
        else:
            sheets, engine, unplaced = _pack_plates(machine, jobs_in, policy, folder)
    with database.transaction() as session:
        stored = session.get(Batch, batch_id, with_for_update=True)
        assert stored is not None
        if stored.state not in OPEN_STATES:
            raise BatchError(f"the batch became {stored.state} meanwhile; look again")
        stored.utilisation = _store_sheets(session, batch_id, sheets)
        stored.engine = engine or None
        stored.last_error = ("; ".join(unplaced + notes)[:2000] or None)
        stored.updated_at = utcnow()
    return get(database, batch_id)


def _store_sheets(session: Any, batch_id: int, sheets: list[dict[str, Any]]) -> float | None:
    """Replace the batch's sheets (plates) and their placements with ``sheets`` (as :func:`_nest_sheets`,
    :func:`_pack_plates`, :func:`_cut_sheets` and :func:`_slice_plates` give them), inside the caller's
    transaction. Returns the batch's utilisation: the parts' area over the sheets' area (None without sheets)."""
    session.execute(delete(BatchSheet).where(BatchSheet.batch_id == batch_id))
    for sheet in sheets:
        row = BatchSheet(batch_id=batch_id, index=sheet["index"], length_mm=sheet["length_mm"],
                         width_mm=sheet["width_mm"], utilisation=sheet["utilisation"],
                         used_length_mm=sheet["used_length_mm"], time_s=sheet.get("time_s"),
                         picture=sheet.get("picture"), files=sheet.get("files", {}),
                         estimates=sheet.get("estimates", {}))
        row.placements = [BatchPlacement(job_id=p[0], copy=p[1], x_mm=p[2], y_mm=p[3], rotation_deg=p[4])
                          for p in sheet["placements"]]
        session.add(row)
    total = sum(sheet["length_mm"] * sheet["width_mm"] for sheet in sheets)
    return sum(sheet["parts_area"] for sheet in sheets) / total if total else None


def _nest_sheets(batch: Batch, router: Any, jobs_in: list[Job], policy: Policy, folder: Path
                 ) -> tuple[list[dict[str, Any]], str, list[str]]:
    from parametric import ValidationError
    from parametric.batching import LayoutError, Part
    from parametric.batching.cutting import nest_on_router
    from parametric.batching.output import write_layout

    parts = [Part(f"job {job.id} {job.part}", _polygon(job.batching), int(job.batching["copies"]),
                  _grain(job.batching)) for job in jobs_in]
    try:
        layout, _sheet, _spacing = nest_on_router(parts, router, batch.material, float(batch.thickness_mm or 0),
                                                  clearance_mm=policy.clearance_mm, margin_mm=policy.margin_mm,
                                                  part_in_part=policy.part_in_part, seconds=policy.nest_seconds)
    except ValidationError as error:
        raise BatchError(str(error), 422) from None
    except LayoutError as error:
        raise BatchError(str(error)) from None
    written = write_layout(layout, parts, folder)
    per_copy = [float((job.estimates or {}).get("machining_time_s") or 0.0) / max(1, int(job.batching["copies"]))
                for job in jobs_in]
    sheets = []
    for sheet in layout.sheets:
        stem = folder / f"sheet-{sheet.index}"
        time_s = sum(per_copy[entry.part] for entry in sheet.placements)
        sheets.append({
            "index": sheet.index, "length_mm": sheet.sheet.length_mm, "width_mm": sheet.sheet.width_mm,
            "utilisation": sheet.utilisation, "used_length_mm": sheet.used_length_mm,
            "parts_area": sheet.utilisation * sheet.sheet.area_mm2,
            "picture": str(stem.with_suffix(".png")) if stem.with_suffix(".png") in written else None,
            "files": {"dxf": str(stem.with_suffix(".dxf")), "svg": str(stem.with_suffix(".svg")),
                      "gcode": [str(path) for path in sheet_programs(batch, router, layout, sheet, parts, folder)]},
            "time_s": round(time_s, 1),
            "estimates": {"machining_time_s": round(time_s, 1),
                          "source": "the parts' own toolpaths summed; the sheet's program will say exactly"},
            "placements": [(jobs_in[entry.part].id, entry.copy, entry.x_mm, entry.y_mm, entry.rotation_deg)
                           for entry in sheet.placements]})
    unplaced = [f"{parts[entry.part].name} copy {entry.copy} not placed: {entry.reason}" for entry in layout.unplaced]
    return sheets, layout.engine, unplaced


def sheet_programs(batch: Batch, router: Any, layout: Any, sheet: Any, parts: list[Any], folder: Path) -> list[Path]:
    """The G-code of an open batch's nested sheet: none. An open batch's sheets are the layout as it stands; when
    the batch closes the core cuts them (:func:`_cut_sheets`: nested again from the parts' B-rep, one program per
    sheet in the router's dialect, checked by rs274)."""
    return []


def _cut_sheets(database: Database, output_folder: Path, batch: Batch, router: Any, config: Mapping[str, Any],
                folder: Path) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The closed router batch's sheets cut by the core (:func:`parametric.batching.sheets.cut_sheets`: nested
    from the parts' B-rep, one program per sheet in the router's dialect, checked by rs274): per sheet its G-code,
    DXF, picture, machining time and placements, as :func:`lay_out` stores them. ``(None, why)`` when a job's
    files cannot be read: the batch keeps its nesting, without G-code."""
    from parametric import ValidationError
    from parametric.batching.sheets import SheetItem, cut_sheets
    from parametric.errors import ParametricError

    from .jobs import load_manifest

    policy = Policy.from_config(config)
    jobs_in = [job for job in members(database, batch.id) if job.batching and "exterior" in job.batching]
    items = []
    try:
        for job in jobs_in:
            with database.session() as session:
                item = session.get(OrderItem, job.item_id)
                assert item is not None
                quantity, order_id = item.quantity, item.order_id
            manifest = load_manifest(output_folder, job.item_id, database).for_part(job.part)
            items.append(SheetItem(manifest, quantity, order_ref=order_id, item_ref=f"job-{job.id}"))
    except (FileNotFoundError, KeyError, ValueError) as error:
        return None, f"the sheets' G-code was not made (a job's files cannot be read: {error})"
    try:
        cut = cut_sheets(items, router, folder, margin_mm=policy.margin_mm, part_in_part=policy.part_in_part,
                         seconds=policy.nest_seconds, batch_ref=batch_ref(batch.id),
                         batch_url=dashboard_url(config, batch.id))
    except ValidationError as error:
        raise BatchError(str(error), 422) from None
    except ParametricError as error:
        raise BatchError(f"the sheets could not be cut: {error}") from None
    if cut.unplaced:
        raise BatchError("some parts cannot be cut: " + "; ".join(f"{u['label']}: {u['reason']}"
                                                                  for u in cut.unplaced))
    by_ref = {f"job-{job.id}": job.id for job in jobs_in}
    sheets = []
    for sheet, report in zip(cut.sheets, cut.report["sheets"], strict=True):
        layout = sheet.layout
        programs = [str(folder / program.filename) for program in sheet.program.programs]
        sheets.append({
            "index": sheet.index, "length_mm": layout.sheet.length_mm, "width_mm": layout.sheet.width_mm,
            "utilisation": layout.utilisation, "used_length_mm": layout.used_length_mm,
            "parts_area": layout.utilisation * layout.sheet.area_mm2,
            "picture": str(sheet.files["png"]) if sheet.files.get("png") else None,
            "files": {"dxf": str(sheet.program.dxf), "svg": str(sheet.files.get("svg", "")), "gcode": programs,
                      **({"tool_table": str(cut.tool_table)} if cut.tool_table else {})},
            "time_s": round(sheet.program.time_s, 1),
            "estimates": {"machining_time_s": round(sheet.program.time_s, 1),
                          "verified_moves": sheet.program.verified_moves},
            "placements": [(by_ref[p["item"]], p["copy"], p["x_mm"], p["y_mm"], p["rotation_deg"])
                           for p in report["placements"]]})
    return sheets, None


def _print_parts(jobs_in: list[Job]) -> list[Any]:
    from parametric.fdm.packing import PrintPart

    return [PrintPart(f"job {job.id} {job.part}", _polygon(job.batching), int(job.batching["copies"]),
                      float(job.batching.get("height_mm", 0.0)),
                      size_mm=tuple(job.batching["size_mm"]) if job.batching.get("size_mm") else None)
            for job in jobs_in]


def _plate_spacing(policy: Policy) -> float:
    from parametric.fdm import PLATE_SPACING_MM

    return float(policy.plate_spacing_mm) if policy.plate_spacing_mm is not None else PLATE_SPACING_MM


def _pack_plates(printer: Any, jobs_in: list[Job], policy: Policy, folder: Path
                 ) -> tuple[list[dict[str, Any]], str, list[str]]:
    from parametric import ValidationError
    from parametric.batching import LayoutError
    from parametric.batching.output import write_sheet_png
    from parametric.fdm import PrintSettings
    from parametric.fdm.packing import pack_plates
    from parametric.fdm.profile import border_mm

    parts = _print_parts(jobs_in)
    try:
        layout = pack_plates(parts, printer, spacing_mm=_plate_spacing(policy),
                             border_mm=border_mm(printer, PrintSettings()), seconds=policy.plate_seconds)
    except ValidationError as error:
        raise BatchError(str(error), 422) from None
    except LayoutError as error:
        raise BatchError(str(error)) from None
    folder.mkdir(parents=True, exist_ok=True)
    sheets = []
    for plate in layout.sheets:
        picture = write_sheet_png(folder / f"plate-{plate.index}.png", plate, [part.as_part() for part in parts],
                                  px_per_mm=4.0)
        sheets.append({"index": plate.index, "length_mm": plate.sheet.length_mm, "width_mm": plate.sheet.width_mm,
                       "utilisation": plate.utilisation, "used_length_mm": plate.used_length_mm,
                       "parts_area": plate.utilisation * plate.sheet.area_mm2, "picture": str(picture),
                       "placements": [(jobs_in[entry.part].id, entry.copy, entry.x_mm, entry.y_mm,
                                       entry.rotation_deg) for entry in plate.placements]})
    unplaced = [f"{parts[entry.part].name} copy {entry.copy} not placed: {entry.reason}" for entry in layout.unplaced]
    return sheets, layout.engine, unplaced


def _slice_plates(database: Database, batch: Batch, printer: Any, config: Mapping[str, Any], folder: Path
                  ) -> list[dict[str, Any]]:
    """The closed batch's plates packed and sliced once each (PrusaSlicer keeping our positions): per plate its
    G-code, picture, estimates and placements, as :func:`lay_out` stores them."""
    from parametric import ValidationError
    from parametric.batching import LayoutError
    from parametric.fdm import PlateSource, SlicerError, make_plates
    from parametric.fdm.footprint import read_mesh

    policy = Policy.from_config(config)
    jobs_in = [job for job in members(database, batch.id) if job.batching and "exterior" in job.batching]
    sources = [PlateSource(f"job-{job.id}", f"job {job.id} {job.part}", read_mesh(job.batching["source"]),
                           int(job.batching["copies"]), batch.material) for job in jobs_in]
    try:
        run = make_plates(sources, printer, folder, spacing_mm=_plate_spacing(policy), seconds=policy.plate_seconds,
                          batch_ref=batch_ref(batch.id), batch_url=dashboard_url(config, batch.id))
    except ValidationError as error:
        raise BatchError(str(error), 422) from None
    except (LayoutError, SlicerError) as error:
        raise BatchError(f"the plates could not be sliced: {error}") from None
    if run.unplaced:
        raise BatchError("some copies fit no plate: " + "; ".join(f"{u['file']} copy {u['copy']}: {u['reason']}"
                                                                  for u in run.unplaced))
    sheets = []
    for plate in run.plates:
        estimates = plate.result.estimates.to_dict()
        sheets.append({"index": plate.index, "length_mm": plate.layout.sheet.length_mm,
                       "width_mm": plate.layout.sheet.width_mm, "utilisation": plate.layout.utilisation,
                       "used_length_mm": plate.layout.used_length_mm,
                       "parts_area": plate.layout.utilisation * plate.layout.sheet.area_mm2,
                       "picture": str(plate.picture), "files": {"gcode": [str(plate.result.gcode)]},
                       "time_s": estimates.get("print_time_s"), "estimates": estimates,
                       "placements": [(jobs_in[entry.part].id, entry.copy, entry.x_mm, entry.y_mm, entry.rotation_deg)
                                      for entry in plate.layout.placements]})
    return sheets


# -- policy and closing ------------------------------------------------------------------------------------


def promised(database: Database, job: Job, policy: Policy) -> datetime:
    """When the job's order was promised to ship: its order's time plus the production days the quote's lead time
    counts for the job's process."""
    days = float((policy.production_days or {}).get(job.kind, 5))
    with database.session() as session:
        created = session.scalar(select(Order.created_at).join(OrderItem, OrderItem.order_id == Order.id)
                                 .where(OrderItem.id == job.item_id))
    return (created or job.created_at) + timedelta(days=days)


def closing_reason(database: Database, batch_id: int, policy: Policy, *, now: datetime | None = None) -> str | None:
    """Why the policy closes the open batch now, in plain words, or None: its sheets (plates) reach the
    utilisation the shop set, or its oldest job's promised ship date needs the batch to start."""
    batch = get(database, batch_id)
    if batch.state != "open" or not batch.sheets:
        return None
    noun = "sheets" if batch.process == "cnc" else "plates"
    if batch.utilisation is not None and batch.utilisation + 1e-9 >= policy.close_utilisation:
        return (f"its {noun} reached {batch.utilisation:.0%} utilisation (the shop closes a batch at "
                f"{policy.close_utilisation:.0%})")
    jobs_in = members(database, batch_id)
    if not jobs_in:
        return None
    now = now or utcnow()
    work_s = sum(sheet.time_s or 0.0 for sheet in batch.sheets)
    oldest = min(jobs_in, key=lambda job: promised(database, job, policy))
    ships = promised(database, oldest, policy)
    start_by = ships - timedelta(seconds=work_s, hours=policy.ship_margin_hours)
    if now >= start_by:
        return (f"job {oldest.id} (order {_order_of(database, oldest)}) was promised to ship by "
                f"{ships:%Y-%m-%d %H:%M} UTC: the batch must start now")
    return None


def _order_of(database: Database, job: Job) -> str:
    with database.session() as session:
        return session.scalar(select(OrderItem.order_id).where(OrderItem.id == job.item_id)) or "?"


def close(database: Database, output_folder: Path, config: Mapping[str, Any], batch_id: int, reason: str) -> Batch:
    """Close an open batch for ``reason``: no job joins it any more. A printer's plates are sliced now (once
    each); a router's sheets keep their nesting, pictures and DXF."""
    batch = get(database, batch_id)
    if batch.state != "open":
        raise BatchError(f"a {batch.state} batch cannot be closed; only an open one")
    if not members(database, batch_id):
        raise BatchError("the batch has no jobs to make")
    sheets, note = None, None
    if batch.process == "fdm":
        sheets = _slice_plates(database, batch, _machine(database, batch), config, _folder(output_folder, batch_id))
    else:
        sheets, note = _cut_sheets(database, output_folder, batch, _machine(database, batch), config,
                                   _folder(output_folder, batch_id) / "cut")
    now = utcnow()
    with database.transaction() as session:
        stored = session.get(Batch, batch_id, with_for_update=True)
        assert stored is not None
        if stored.state != "open":
            raise BatchError(f"the batch became {stored.state} meanwhile; look again")
        if sheets is not None:
            stored.utilisation = _store_sheets(session, batch_id, sheets)
        stored.state, stored.closed_at, stored.close_reason, stored.updated_at = "closed", now, reason, now
        if note is not None:
            stored.last_error = note
    log.info("batch %s closed: %s", batch_id, reason)
    return get(database, batch_id)


def renest(database: Database, output_folder: Path, config: Mapping[str, Any], batch_id: int) -> Batch:
    """Lay an open or closed batch out again; a closed printer batch is sliced again too."""
    batch = get(database, batch_id)
    if batch.state not in OPEN_STATES:
        raise BatchError(f"a {batch.state} batch cannot be re-nested; only an open or closed one")
    return _relayout(database, output_folder, config, batch)


def _relayout(database: Database, output_folder: Path, config: Mapping[str, Any], batch: Batch) -> Batch:
    if batch.state == "closed":  # what was cut or sliced is made again from the new layout
        with database.transaction() as session:
            session.execute(update(Batch).where(Batch.id == batch.id, Batch.state == "closed")
                            .values(state="open", updated_at=utcnow()))
        lay_out(database, output_folder, config, batch.id)
        if not members(database, batch.id):
            return get(database, batch.id)
        return close(database, output_folder, config, batch.id, batch.close_reason or "closed by staff")
    return lay_out(database, output_folder, config, batch.id)


def remove_job(database: Database, output_folder: Path, config: Mapping[str, Any], batch_id: int, job_id: int
               ) -> Batch:
    """Take a job out of an open or closed batch: it keeps its own state and is made on its own (never gathered
    again), and the batch is laid out again without it before anything is sent."""
    batch = get(database, batch_id)
    if batch.state not in OPEN_STATES:
        raise BatchError(f"a job cannot be taken out of a {batch.state} batch; only out of an open or closed one")
    with database.transaction() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.batch_id != batch_id:
            raise BatchError(f"job {job_id} is not in batch {batch_id}", 404, "job_id")
        session.execute(delete(BatchPlacement).where(BatchPlacement.job_id == job_id))
        job.batch_id = None
        job.batching = {**(job.batching or {}), "kept_out": True}
        job.updated_at = utcnow()
    return _relayout(database, output_folder, config, get(database, batch_id))


# -- sending -------------------------------------------------------------------------------------------------


class _SheetRecords:
    """What a sheet's host cannot tell (a hot folder's files and hashes), kept with the sheet."""

    def __init__(self, database: Database, sheet_id: int, tag: str):
        self.database, self.sheet_id, self.tag = database, sheet_id, tag

    def get(self, tag: str) -> dict[str, Any] | None:
        with self.database.session() as session:
            sheet = session.get(BatchSheet, self.sheet_id)
        record = (sheet.files or {}).get("delivered") if sheet is not None and tag == self.tag else None
        return dict(record) if record else None

    def put(self, tag: str, record: dict[str, Any]) -> None:
        if tag != self.tag:
            raise KeyError(f"the sheet keeps no record of {tag}")
        with self.database.transaction() as session:
            sheet = session.get(BatchSheet, self.sheet_id)
            if sheet is not None:
                sheet.files = {**(sheet.files or {}), "delivered": record}


def host_tag(batch_id: int, index: int) -> str:
    """The tag a sheet's or plate's upload carries on its host."""
    return f"batch-{batch_id}-{index}"


def send(database: Database, batch_id: int, *, timeout_s: float = 10.0) -> tuple[Batch, str]:
    """Send a closed batch: each sheet or plate through the machine's connector, once (a resend finds what it
    sent by the sheet's tag), or handed over when staff download the files. The batch and its jobs become sent
    together. Returns the batch and what happened, in plain words. A plate that finds its printer busy waits:
    sending again sends the plates not yet sent."""
    from parametric.hosts import HostError, PrinterBusy, connector_for

    batch = get(database, batch_id)
    if batch.state not in ("closed", "sent", "running"):
        raise BatchError(f"a {batch.state} batch cannot be sent; close it first" if batch.state == "open"
                         else f"a {batch.state} batch cannot be sent")
    machine = _machine(database, batch)
    noun = "sheet" if batch.process == "cnc" else "plate"
    connection = machine.connection()
    delivered: list[int] = []
    waiting: list[int] = []
    if connection is not None:
        missing = [sheet.index for sheet in batch.sheets if not (sheet.files or {}).get("gcode")]
        if missing:
            raise BatchError(f"{noun}s {', '.join(map(str, missing))} have no G-code to send"
                             + (" (they are cut when the batch closes; see the batch's last error, then re-nest "
                                "it)" if batch.process == "cnc" else "; re-nest the batch"))
        for sheet in batch.sheets:
            if (sheet.files or {}).get("delivered"):
                delivered.append(sheet.index)
                continue
            tag = host_tag(batch_id, sheet.index)
            try:
                connector = connector_for(machine, timeout_s=timeout_s,
                                          records=_SheetRecords(database, sheet.id, tag))
                connector.submit([Path(p) for p in sheet.files["gcode"]], tag)
            except PrinterBusy:
                waiting.append(sheet.index)
                break  # one print at a time: the next plates wait their turn
            except HostError as error:
                if not delivered:
                    raise BatchError(f"{noun} {sheet.index} was not delivered: {error}", 502, "machine") from None
                waiting.append(sheet.index)
                break
            except FileNotFoundError as error:
                raise BatchError(f"{noun} {sheet.index}'s G-code {error.filename} is missing; re-nest the "
                                 "batch") from None
            with database.transaction() as session:
                stored = session.get(BatchSheet, sheet.id)
                assert stored is not None
                stored.files = {**(stored.files or {}), "delivered": stored.files.get("delivered") or {"tag": tag}}
            delivered.append(sheet.index)
    if batch.state == "closed" and (connection is None or delivered):
        now = utcnow()
        with database.transaction() as session:
            moved = session.execute(update(Batch).where(Batch.id == batch_id, Batch.state == "closed")
                                    .values(state="sent", sent_at=now, updated_at=now))
            if moved.rowcount != 1:
                raise BatchError("the batch changed meanwhile; look again")
            session.execute(update(Job).where(Job.batch_id == batch_id, Job.state == "ready")
                            .values(state="sent", sent_at=now, updated_at=now, last_error=None))
    done = (f"{len(delivered)} {noun}(s) sent" if connection is not None
            else f"handed over: staff download the {noun}s' files")
    if waiting:
        done += f"; {noun} {waiting[0]} waits for the {machine.kind}"
    return get(database, batch_id), done


def _move(database: Database, batch_id: int, to: str, job_states: tuple[str, ...], job_to: str,
          ended: Mapping[int, str] | None = None, made: Collection[int] = (), **values: Any) -> None:
    """The batch to ``to`` and its jobs in ``job_states`` to ``job_to``, in one transaction; ``ended`` records how
    each sheet (plate), by index, ended on its machine (:data:`PLATE_ENDS`); the jobs ``made`` (every copy of them
    on a plate that printed to the end) become done instead."""
    now = utcnow()
    with database.transaction() as session:
        stored = session.get(Batch, batch_id, with_for_update=True)
        assert stored is not None
        if to not in TRANSITIONS[stored.state]:
            raise BatchError(f"a {stored.state} batch cannot become {to}")
        for sheet in session.scalars(select(BatchSheet).where(BatchSheet.batch_id == batch_id)).all():
            if ended and sheet.index in ended:
                sheet.files = {**(sheet.files or {}), "ended": ended[sheet.index]}
        stored.state, stored.updated_at = to, now
        for key, value in values.items():
            setattr(stored, key, value)
        if to in ("done", "failed"):
            stored.finished_at = now
        extra: dict[str, Any] = {"finished_at": now, "next_attempt_at": None} if job_to in ("done", "failed") else {}
        if job_to == "done":
            extra["progress"] = 100.0
        if job_to == "failed":
            extra["last_error"] = values.get("last_error")
        if made:
            session.execute(update(Job).where(Job.batch_id == batch_id, Job.state.in_(job_states),
                                              Job.id.in_(list(made)))
                            .values(state="done", updated_at=now, finished_at=now, next_attempt_at=None,
                                    progress=100.0))
        session.execute(update(Job).where(Job.batch_id == batch_id, Job.state.in_(job_states))
                        .values(state=job_to, updated_at=now, **extra))


def finish(database: Database, batch_id: int) -> Batch:
    """Staff mark a sent or running batch done: the work is off the machine; its jobs are done with it."""
    batch = get(database, batch_id)
    if batch.state not in ("sent", "running"):
        raise BatchError(f"a {batch.state} batch cannot be marked done; only a sent or running one")
    _move(database, batch_id, "done", ("sent", "printing"), "done")
    return get(database, batch_id)


def made_in_full(batch: Batch, ended: Mapping[int, str]) -> set[int]:
    """The jobs of ``batch`` every copy of which is on a sheet (plate) that ``ended`` (by index, as
    :data:`PLATE_ENDS`) says was made to the end."""
    where: dict[int, set[str]] = {}
    for sheet in batch.sheets:
        for placement in sheet.placements:
            where.setdefault(placement.job_id, set()).add(ended.get(sheet.index, "not printed"))
    return {job_id for job_id, ends in where.items() if ends == {"done"}}


def stop(database: Database, batch: Batch, ended: Mapping[int, str]) -> None:
    """A sent or running batch one of whose sheets (plates) stopped on its machine: the batch fails, recording how
    each ended (``ended``, by index: :data:`PLATE_ENDS`). Its jobs fail with it, but for those whose every copy is on
    a plate that printed to the end: they are done, their parts made, and are never made again."""
    noun = "sheet" if batch.process == "cnc" else "plate"
    stopped = [str(index) for index, end in sorted(ended.items()) if end == "stopped"]
    _move(database, batch.id, "failed", ("sent", "printing"), "failed", ended, made=made_in_full(batch, ended),
          last_error=f"{noun} {', '.join(stopped)} stopped on the machine (cancelled there or a machine error)")


def follow(database: Database, *, timeout_s: float = 10.0) -> dict[int, str]:
    """Read each sent or running batch's sheets (plates) from its machine's host: one the machine has taken or
    started makes the batch running (its jobs printing, shown as cutting on a router, with the batch's progress:
    the mean of its plates' completion as the host reports it); every one done makes it done with its jobs; one
    that stopped makes it failed, saying which (:func:`stop`). Plates not sent yet go once the printer is free. Hosts
    that report nothing (a router fed by download) wait for staff to mark the batch done."""
    from parametric.hosts import Capability, HostError, connector_for

    with database.session() as session:
        ids = session.scalars(select(Batch.id).where(Batch.state.in_(("sent", "running"))).order_by(Batch.id)).all()
    outcomes: dict[int, str] = {}
    for batch_id in ids:
        batch = get(database, batch_id)
        try:
            machine = _machine(database, batch)
        except BatchError:
            continue
        if machine.connection() is None:
            continue
        states: list[str] = []
        progress: list[float] = []  # per sheet (plate), 0-100, as far as its host tells
        try:
            for sheet in batch.sheets:
                if not (sheet.files or {}).get("delivered"):
                    states.append("waiting")
                    progress.append(0.0)
                    continue
                tag = host_tag(batch_id, sheet.index)
                connector = connector_for(machine, timeout_s=timeout_s, records=_SheetRecords(database, sheet.id, tag))
                if not (connector.can(Capability.PROGRESS) or connector.can(Capability.REPORTS_END)):
                    states.append("taken" if connector.job(tag).state == "taken" else "uploaded")
                    progress.append(0.0)
                    continue
                host_job = connector.job(tag)
                states.append(host_job.state)
                progress.append(100.0 if host_job.state == "done" else float(host_job.progress or 0.0))
        except HostError as error:
            outcomes[batch_id] = f"not reached: {error}"
            continue
        if "failed" in states:
            stop(database, batch, {sheet.index: ("done" if state == "done" else "stopped" if state == "failed"
                                                 else "not printed")
                                   for sheet, state in zip(batch.sheets, states, strict=True)})
            outcomes[batch_id] = "failed"
        elif states and all(state == "done" for state in states):
            _move(database, batch_id, "done", ("sent", "printing"), "done")
            outcomes[batch_id] = "done"
        elif any(state in ("printing", "paused", "taken", "done") for state in states):
            if batch.state == "sent":
                _move(database, batch_id, "running", ("sent",), "printing")
            with database.transaction() as session:  # the batch's share made, shown on each of its jobs
                session.execute(update(Job).where(Job.batch_id == batch_id, Job.state == "printing")
                                .values(progress=round(sum(progress) / len(progress), 1), updated_at=utcnow()))
            if "waiting" in states and not any(state in ("printing", "paused", "uploaded") for state in states):
                send(database, batch_id, timeout_s=timeout_s)  # the machine is free: its next plate
            outcomes[batch_id] = "running"
    return outcomes


# -- reading -----------------------------------------------------------------------------------------------


def get(database: Database, batch_id: int) -> Batch:
    """The batch with its sheets and placements loaded, or :class:`BatchError` (404)."""
    from sqlalchemy.orm import selectinload

    with database.session() as session:
        batch = session.scalar(select(Batch).where(Batch.id == batch_id)
                               .options(selectinload(Batch.sheets).selectinload(BatchSheet.placements)))
    if batch is None:
        raise BatchError(f"there is no batch {batch_id}", 404, "batch_id")
    return batch


def describe(database: Database, batch: Batch, *, detail: bool = False,
             picture_url: Any = None, sheet_url: Any = None, output_folder: Path | None = None) -> dict[str, Any]:
    """A batch as the staff API shows it; with ``detail`` its sheets (plates, with how each ended on the printer
    when the batch failed: :data:`PLATE_ENDS`), placements (each with its G-code object label on a plate, and the
    job making it again if it was remade) and jobs with their orders.
    ``picture_url(batch_id, index)`` gives a sheet picture's address, ``sheet_url(batch_id, kind)`` the batch
    sheet's (html, pdf), shown when ``output_folder`` holds it."""
    jobs_in = members(database, batch.id)
    entry: dict[str, Any] = {
        "id": batch.id, "machine": batch.machine, "process": batch.process, "material": batch.material,
        "thickness_mm": batch.thickness_mm, "state": batch.state,
        "utilisation": round(batch.utilisation, 4) if batch.utilisation is not None else None,
        "sheets": len(batch.sheets), "jobs": len(jobs_in), "close_reason": batch.close_reason,
        "last_error": batch.last_error, "engine": batch.engine,
        "time_s": round(sum(sheet.time_s or 0.0 for sheet in batch.sheets), 1),
        "created_at": _iso(batch.created_at), "closed_at": _iso(batch.closed_at), "sent_at": _iso(batch.sent_at)}
    if not detail:
        return entry
    entry["batch_ref"] = batch_ref(batch.id)
    entry["batch_sheet"] = ({kind: sheet_url(batch.id, kind) for kind in SHEET_FORMATS
                             if batch_sheet(database, output_folder, batch.id, kind) is not None}
                            if sheet_url is not None and output_folder is not None else {}) or None
    remade: dict[str, int] = {}
    for job in jobs_in:
        remade.update((job.batching or {}).get("remade") or {})
    with database.session() as session:
        refs = dict(session.execute(select(OrderItem.id, OrderItem.order_id)
                                    .where(OrderItem.id.in_([job.item_id for job in jobs_in]))).all())
        positions = dict(session.execute(select(OrderItem.id, OrderItem.position)
                                         .where(OrderItem.id.in_([job.item_id for job in jobs_in]))).all())
    entry["sheet_list"] = [{
        "index": sheet.index, "size_mm": [sheet.length_mm, sheet.width_mm],
        "utilisation": round(sheet.utilisation, 4), "used_length_mm": round(sheet.used_length_mm, 3),
        "time_s": sheet.time_s, "estimates": sheet.estimates or {},
        "picture": picture_url(batch.id, sheet.index) if picture_url and sheet.picture else None,
        "delivered": bool((sheet.files or {}).get("delivered")), "ended": (sheet.files or {}).get("ended"),
        "placements": [{"id": p.id, "job_id": p.job_id, "copy": p.copy, "x_mm": round(p.x_mm, 4),
                        "y_mm": round(p.y_mm, 4), "rotation_deg": round(p.rotation_deg, 6),
                        "object": object_label(number) if batch.process == "fdm" else None,
                        "remade_as": remade.get(str(p.id))}
                       for number, p in enumerate(sheet.placements, start=1)]}
        for sheet in batch.sheets]
    entry["job_list"] = [{"id": job.id, "part": job.part, "state": job.state, "item_id": job.item_id,
                          "order_id": refs.get(job.item_id), "item": f"{refs.get(job.item_id)}/"
                                                                     f"{positions.get(job.item_id)}",
                          "copies": (job.batching or {}).get("copies"),
                          "remake_of": (job.batching or {}).get("remake_of")} for job in jobs_in]
    return entry


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def picture(database: Database, output_folder: Path, batch_id: int, index: int) -> Path | None:
    """The picture of the batch's sheet (plate) ``index``, if it is inside the output folder and present."""
    batch = get(database, batch_id)
    sheet = next((s for s in batch.sheets if s.index == index), None)
    if sheet is None or not sheet.picture:
        return None
    path = Path(sheet.picture).resolve()
    if not path.is_relative_to(Path(output_folder).resolve()) or not path.is_file():
        return None
    return path


def batch_sheet(database: Database, output_folder: Path, batch_id: int, kind: str) -> Path | None:
    """The batch sheet (``kind`` html or pdf) of a closed, sent or finished batch, as the core wrote it when the
    batch closed (beside its plates, or its cut sheets), if it is inside the output folder and present. An open
    batch has none: its layout may still change."""
    from parametric.jobsheet.batch import HTML_NAME, PDF_NAME

    batch = get(database, batch_id)
    if batch.state == "open" or kind not in SHEET_FORMATS:
        return None
    folder = _folder(output_folder, batch_id) / ("cut" if batch.process == "cnc" else "")
    path = (folder / (HTML_NAME if kind == "html" else PDF_NAME)).resolve()
    if not path.is_relative_to(Path(output_folder).resolve()) or not path.is_file():
        return None
    return path


# -- making failed plate objects again -----------------------------------------------------------------------


REMAKE_STATES = ("done", "failed")
"""States of a printer batch whose objects may be made again: its plates are off the printer."""
PLATE_ENDS = ("done", "stopped", "not printed")
"""How a plate of a failed batch ended, as :func:`follow` records it in the plate's files (``ended``): printed to
the end, stopped on the printer (cancelled there, a machine error), or never started (the batch failed first)."""


@dataclass(frozen=True)
class _Object:
    """One object of a finished plate: its placement (job and copy), plate index and G-code label."""

    placement: BatchPlacement
    plate: int
    label: str

    def named(self) -> str:
        return f"object {self.label} of plate {self.plate} (job {self.placement.job_id} copy {self.placement.copy})"


def _remakable(database: Database, batch_id: int) -> Batch:
    batch = get(database, batch_id)
    if batch.process != "fdm":
        raise BatchError("only a plate's object can be made again alone; a router's part is cut again with its "
                         "item (take the job out, or order it again)")
    if batch.state not in REMAKE_STATES:
        raise BatchError(f"an object of a {batch.state} batch cannot be made again; only of a done or failed one "
                         "(its plates are off the printer)")
    return batch


def _objects(sheet: BatchSheet) -> list[_Object]:
    return [_Object(placement, sheet.index, object_label(number))
            for number, placement in enumerate(sheet.placements, start=1)]


def remake(database: Database, output_folder: Path, config: Mapping[str, Any], batch_id: int, placement_id: int,
           *, reason: str | None = None, timeout_s: float = 10.0) -> tuple[Batch, str]:
    """Make one object of a finished (done or failed) printer batch again, alone: the copy becomes a job of its
    own (one copy of the same item's part), is gathered onto a new plate (with other parts waiting for the same
    printer and filament, if any), which is closed, sliced and sent at once. The batch's other objects and its
    jobs keep their state (a done job stays done); the original job records which copy is made again by which
    job, so that copy is never made again twice. Returns the batch now holding the copy and what happened."""
    batch = _remakable(database, batch_id)
    found = next((item for sheet in batch.sheets for item in _objects(sheet) if item.placement.id == placement_id),
                 None)
    if found is None:
        raise BatchError(f"batch {batch_id} has no placement {placement_id}", 404, "placement_id")
    made = _make_again(database, output_folder, config, batch, [found], field="placement_id",
                       reason=reason or f"object {found.label} failed on plate {found.plate} of batch {batch_id}",
                       timeout_s=timeout_s)
    return made.batches[0], made.outcome


@dataclass(frozen=True)
class Remade:
    """What :func:`remake_plates` did: the batches now holding the copies (normally one), each object made again
    (``object``, ``plate``, ``placement``, ``job``, ``copy``, ``as_job``), the objects skipped and why, and the
    outcome in plain words."""

    batches: list[Batch]
    remade: list[dict[str, Any]]
    skipped: list[str]
    outcome: str


def stopped_plates(batch: Batch) -> list[int]:
    """The plates of a failed printer batch that did not print to the end (stopped, or never started), as
    :func:`follow` recorded them; empty for a done batch (each plate finished) or one that records nothing."""
    if batch.state != "failed":
        return []
    return [sheet.index for sheet in batch.sheets if (sheet.files or {}).get("ended") in ("stopped", "not printed")]


def remake_plates(database: Database, output_folder: Path, config: Mapping[str, Any], batch_id: int,
                  plate: int | None = None, *, reason: str | None = None, timeout_s: float = 10.0) -> Remade:
    """Make every object of a stopped plate again in one step: the plate ``plate`` of a done or failed printer
    batch, or (without ``plate``) every plate of a failed batch that did not print to the end. Each job's copies
    on those plates become one new job of as many copies (see :func:`remake`), all gathered onto new plates,
    closed, sliced once and sent. Objects already being made again are skipped and named; the objects of plates
    that printed to the end, and their jobs, stay as they are."""
    batch = _remakable(database, batch_id)
    indexes = [sheet.index for sheet in batch.sheets]
    if plate is not None:
        if plate not in indexes:
            raise BatchError(f"batch {batch_id} has no plate {plate}; its plates are "
                             f"{', '.join(map(str, indexes)) or 'none'}", 422, "plate")
        chosen = [plate]
    else:
        chosen = stopped_plates(batch)
        if not chosen:
            raise BatchError(("every plate of this done batch printed to the end" if batch.state == "done" else
                              "this failed batch does not record which plate stopped")
                             + f"; say which plate to make again (plate: {', '.join(map(str, indexes))})",
                             422, "plate")
    objects = [item for sheet in batch.sheets if sheet.index in chosen for item in _objects(sheet)]
    if not objects:
        raise BatchError(f"plate {', '.join(map(str, chosen))} holds no object", 422, "plate")
    plates = f"plate{'s' if len(chosen) > 1 else ''} {', '.join(map(str, chosen))}"
    return _make_again(database, output_folder, config, batch, objects, field="plate",
                       reason=reason or f"{plates} of batch {batch_id} stopped on the printer", timeout_s=timeout_s)


def _make_again(database: Database, output_folder: Path, config: Mapping[str, Any], batch: Batch,
                objects: list[_Object], *, field: str, reason: str, timeout_s: float) -> Remade:
    """Make ``objects`` of the finished printer ``batch`` again: per original job, its copies not already being
    made again become one new ready job of as many copies (its ``remake_of`` names each placement), and the
    original records each placement's new job in ``remade`` (so no copy is ever made again twice); in one
    transaction. The new jobs are then gathered onto new plates, closed (sliced once) and sent."""
    now = utcnow()
    by_job: dict[int, list[_Object]] = {}
    for item in objects:
        by_job.setdefault(item.placement.job_id, []).append(item)
    unmade = {sheet.index for sheet in batch.sheets if batch.state == "failed"
              and (sheet.files or {}).get("ended") != "done"}
    skipped: list[str] = []
    remade: list[dict[str, Any]] = []
    new_jobs: list[int] = []
    with database.transaction() as session:
        for job_id, items in by_job.items():
            original = session.get(Job, job_id, with_for_update=True)
            assert original is not None
            info = dict(original.batching or {})
            records = dict(info.get("remade") or {})
            fresh = []
            for item in items:
                earlier = records.get(str(item.placement.id))
                if earlier is not None:
                    skipped.append(f"{item.named()} is already being made again as job {earlier}")
                else:
                    fresh.append(item)
            if not fresh:
                continue
            if "exterior" not in info:
                raise BatchError(f"job {original.id}'s part has no outline to plate", 422, field)
            copy = Job(item_id=original.item_id, part=original.part, machine=original.machine, kind=original.kind,
                       state="ready", estimates={"copies": len(fresh)}, files={}, created_at=now, updated_at=now,
                       last_error=None,
                       batching={key: value for key, value in info.items()
                                 if key not in ("remade", "remake_of", "superseded")}
                       | {"copies": len(fresh), "remake_of": {
                           "batch": batch.id, "job": original.id, "reason": reason,
                           "placements": [{"plate": item.plate, "placement": item.placement.id,
                                           "copy": item.placement.copy, "object": item.label} for item in fresh]}})
            session.add(copy)
            session.flush()
            for item in fresh:
                records[str(item.placement.id)] = copy.id
                remade.append({"object": item.label, "plate": item.plate, "placement": item.placement.id,
                               "job": original.id, "copy": item.placement.copy, "as_job": copy.id})
            # a failed job whose every copy that did not print is being made again is not held up any more
            lost = {p.id for sheet in batch.sheets if sheet.index in unmade or not unmade
                    for p in sheet.placements if p.job_id == original.id}
            superseded = original.state == "failed" and lost <= set(map(int, records))
            original.batching = {**info, "remade": records, "superseded": superseded}
            original.updated_at = now
            new_jobs.append(copy.id)
    if not new_jobs:
        raise BatchError("; ".join(skipped), 409, "state")
    for entry in remade:
        log.info("batch %s: object %s of plate %s (job %s copy %s) is made again as job %s", batch.id,
                 entry["object"], entry["plate"], entry["job"], entry["copy"], entry["as_job"])
    gather(database, output_folder, config)
    with database.session() as session:
        placed = dict(session.execute(select(Job.id, Job.batch_id).where(Job.id.in_(new_jobs))).all())
    missing = [job_id for job_id in new_jobs if placed.get(job_id) is None]
    if missing:
        raise BatchError(f"job {', '.join(map(str, missing))} (made again) could not be put on a plate; see its "
                         "batching note on the manufacturing page", 409, field)
    copies = ", ".join(f"job {e['job']} copy {e['copy']} as job {e['as_job']}" for e in remade)
    outcomes, held = [], []
    for new_batch_id in sorted(set(placed.values())):
        if get(database, new_batch_id).state == "open":
            close(database, output_folder, config, new_batch_id, f"{reason}: {copies} made again")
        try:
            sent, outcome = send(database, new_batch_id, timeout_s=timeout_s)
        except BatchError as error:
            sent, outcome = get(database, new_batch_id), f"not sent yet: {error}"
        held.append(sent)
        made = ", ".join(f"job {job_id}" for job_id in new_jobs if placed[job_id] == new_batch_id)
        outcomes.append(f"{made} on batch {new_batch_id}: {outcome}")
    outcome = "; ".join(outcomes)
    if skipped:
        outcome += "; skipped: " + "; ".join(skipped)
    return Remade(held, remade, skipped, outcome)


def register_tasks(huey: Any, database: Database, output_folder: Path, config: Mapping[str, Any], *,
                   priority: int = 0) -> Any:
    """The periodic ``gather_batches`` task on ``huey`` (every minute, when ``BATCHING`` is on): gather ready jobs
    into batches, lay them out, close those the policy says to, and follow the batches sent (:func:`follow`)."""
    from huey import crontab

    @huey.periodic_task(crontab(), name="gather_batches", priority=priority)
    def gather_batches() -> dict[str, Any]:
        if not Policy.from_config(config).enabled:
            return {"batches": [], "followed": {}}
        return {"batches": gather(database, output_folder, config), "followed": follow(database)}

    return gather_batches
