"""Manufacturing jobs: each part of a ready order item, routed to a machine, prepared, sent and followed.

A job's ``state`` goes queued → slicing → ready → sent → printing → done, or ends failed or
cancelled; it changes only through :func:`transition`, which refuses any other move. The
work itself is the core's (``routing.route``, ``slicing.slice_copies``, ``cam.cam_manifest``,
``jobsheet.write_job_sheet``, the printer connectors); the queue tasks in ``web.tasks`` call
the functions here. Sending is safe to repeat: the connector finds an upload by its tag
(``job-<id>``) before uploading or starting anything, so a retry never prints twice.

CNC jobs go to a router's hot folder, the folder its sender watches: each program is written
there once, as ``job-<id>-<program>`` (whole, under a ``.partial`` name first), and a resend
finds what is already there by name and content hash. When the sender has taken the programs
out of the folder the job is in progress (``printing``, shown as cutting) until staff mark it
done; a router fed by download has its files fetched by staff from the dashboard. A folder
that cannot be written is retried with backoff like an unreachable print host, never lost.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from .db import Database
from .models import Artifact, Job, MachineRow, OrderItem, utcnow

log = logging.getLogger(__name__)

JOB_STATES = ("queued", "slicing", "ready", "sent", "printing", "done", "failed", "cancelled")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "queued": ("slicing", "failed", "cancelled"),
    "slicing": ("ready", "queued", "failed", "cancelled"),
    "ready": ("sent", "done", "failed", "cancelled"),
    "sent": ("printing", "done", "failed", "cancelled", "ready"),
    "printing": ("done", "failed", "cancelled"),
    "done": (),
    "failed": ("queued",),
    "cancelled": ("queued",),
}
BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 300.0
MAX_PREPARE_ATTEMPTS = 3


class TransitionError(ValueError):
    """A state change the job's state machine does not allow."""


def host_job_id(job_id: int) -> str:
    """The tag a job's upload carries on its print host."""
    return f"job-{job_id}"


def transition(database: Database, job_id: int, to: str, *, expect: tuple[str, ...] | None = None,
               **values: Any) -> bool:
    """Move a job to ``to`` (with other column ``values``) if its state allows it.

    Raises :class:`TransitionError` for a move the state machine forbids; returns ``False``
    when the job changed under us (another worker moved it first) or ``expect`` does not hold.
    """
    if to not in JOB_STATES:
        raise TransitionError(f"unknown job state {to!r}")
    with database.transaction() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise TransitionError(f"no job {job_id}")
        if expect is not None and job.state not in expect:
            return False
        if to not in TRANSITIONS[job.state]:
            raise TransitionError(f"a {job.state} job cannot become {to}")
        now = utcnow()
        extra: dict[str, Any] = {"updated_at": now}
        if to in ("done", "failed", "cancelled"):
            extra["finished_at"] = now
            extra["next_attempt_at"] = None
        if to == "done":
            extra["progress"] = 100.0
        if to == "queued":
            extra.update(attempts=0, next_attempt_at=None, finished_at=None, progress=0.0, last_error=None)
        result = session.execute(update(Job).where(Job.id == job_id, Job.state == job.state)
                                 .values(state=to, **{**extra, **values}).execution_options(synchronize_session=False))
        return result.rowcount == 1


def describe(job: Job) -> dict[str, Any]:
    return {"id": job.id, "item_id": job.item_id, "part": job.part, "machine": job.machine, "kind": job.kind,
            "state": job.state, "progress": round(job.progress or 0.0, 1), "estimates": job.estimates or {},
            "files": job.files or {}, "attempts": job.attempts, "last_error": job.last_error,
            "next_attempt_at": job.next_attempt_at.isoformat() + "Z" if job.next_attempt_at else None,
            "created_at": job.created_at.isoformat() + "Z", "updated_at": job.updated_at.isoformat() + "Z"}


def get(database: Database, job_id: int) -> Job | None:
    with database.session() as session:
        return session.get(Job, job_id)


# -- planning: a ready item becomes jobs ---------------------------------------------------------


def load_manifest(output_folder: Path, item_id: int, database: Database) -> Any:
    """The core's :class:`~parametric.Manifest` of a ready item, read back from its ``manifest.json``."""
    from parametric import Manifest

    with database.session() as session:
        path = session.scalar(select(Artifact.path).where(Artifact.item_id == item_id, Artifact.format == "manifest"))
    if path is None:
        raise FileNotFoundError(f"item {item_id} has no manifest")
    full = Path(output_folder) / path
    data = json.loads(full.read_text())
    known = ("template", "version", "name", "params", "material", "cache_key", "cache_hit", "files", "parts",
             "checks", "bbox_mm", "volume_mm3", "mass_g", "timings")
    return Manifest(**{k: data[k] for k in known}, directory=full.parent, path=full,
                    extra={k: v for k, v in data.items() if k not in known})


def part_material(template: Any, part: dict[str, Any], material: str, process: str | None) -> str:
    """The material a part is made of: the manifest's (per process), else the order item's for its process."""
    if part.get("material"):
        return str(part["material"])
    return template.materials_by_process(material).get(process or "", material)


def plan_item(database: Database, output_folder: Path, item_id: int) -> list[int]:
    """Create the jobs of a ready item, one per part, routed in the part's own material; a part no machine
    can make is a failed job whose ``last_error`` says why. Does nothing (returns ``[]``) if the item
    already has jobs. (:func:`prepare` adds a job per further plate when the copies need several.)"""
    from parametric import get_template
    from parametric.routing import route

    from . import machines

    with database.session() as session:
        item = session.get(OrderItem, item_id)
        if item is None or item.state != "ready":
            return []
        if session.scalar(select(Job.id).where(Job.item_id == item_id).limit(1)) is not None:
            return []
        material, template_id = item.material, item.template
    manifest = load_manifest(output_folder, item_id, database)
    template = get_template(template_id)
    default_process = template.process[0] if template.process else None
    fleet = machines.all_machines(database)
    created: list[Job] = []
    for part in manifest.parts:
        process = part.get("process") or default_process
        verdict = route(part, part_material(template, part, material, process), fleet, process=process)
        kind = process if process in ("fdm", "cnc") else "fdm"
        job = Job(item_id=item_id, part=str(part.get("name", "part")), kind=kind,
                  machine=verdict.machine.name if verdict.machine else None, estimates={}, files={})
        if not verdict.ok:
            job.state, job.last_error, job.finished_at = "failed", verdict.reason, utcnow()
        created.append(job)
    with database.transaction() as session:
        if session.scalar(select(Job.id).where(Job.item_id == item_id).limit(1)) is not None:
            return []  # another worker planned it first
        session.add_all(created)
        session.flush()
        return [job.id for job in created if job.state == "queued"]


def reroute(database: Database, output_folder: Path, job_id: int) -> str | None:
    """Route a queued job again over the machines set up now, when its machine is gone or can no longer make
    it (a retried job after its printer was removed or unloaded): the machine's name, or ``None`` with the
    job failed and the reason said."""
    from parametric import get_template
    from parametric.routing import route

    from . import machines

    job = get(database, job_id)
    if job is None or job.state != "queued":
        return None
    with database.session() as session:
        item = session.get(OrderItem, job.item_id)
        assert item is not None
        material, template_id = item.material, item.template
    current = machines.get(database, job.machine or "")
    try:
        manifest = load_manifest(output_folder, job.item_id, database)
    except (FileNotFoundError, json.JSONDecodeError):
        if current is not None:
            return current.name  # preparing it says what is wrong with its files
        transition(database, job_id, "failed", expect=("queued",), last_error="the item's files are gone")
        return None
    part = next((p for p in manifest.parts if p.get("name") == job.part), None)
    if part is None:
        transition(database, job_id, "failed", expect=("queued",), last_error=f"the item has no part {job.part!r}")
        return None
    template = get_template(template_id)
    process = part.get("process") or (template.process[0] if template.process else None)
    chosen = part_material(template, part, material, process)
    if current is not None and route(part, chosen, [current], process=process).ok:
        return current.name
    verdict = route(part, chosen, machines.all_machines(database), process=process)
    if verdict.machine is None:
        transition(database, job_id, "failed", expect=("queued",), last_error=verdict.reason)
        return None
    with database.transaction() as session:
        session.execute(update(Job).where(Job.id == job_id, Job.state == "queued")
                        .values(machine=verdict.machine.name, updated_at=utcnow()))
    return verdict.machine.name


class MachineInUse(Exception):
    """A machine with jobs sent to it or in progress on it: removing it would lose track of them."""

    def __init__(self, name: str, active: int):
        self.name, self.active = name, active
        super().__init__(f"{name} has {active} job{'' if active == 1 else 's'} sent to it or in progress on it; "
                         "cancel or finish them first (mark them done once the work is off the machine)")


def remove_machine(database: Database, name: str) -> int | None:
    """Remove the machine called ``name`` unless it has sent or in-progress jobs (:class:`MachineInUse`).

    Returns how many of its jobs were still waiting (queued, slicing or ready: a retry routes them
    again), or ``None`` when there is no such machine. The check and the removal are one transaction,
    with the machine's row locked, so a job sent meanwhile cannot slip between them.
    """
    from sqlalchemy import func

    with database.transaction() as session:
        row = session.scalar(select(MachineRow).where(MachineRow.name == name).with_for_update())
        if row is None:
            return None
        counts = dict(session.execute(select(Job.state, func.count()).where(Job.machine == name)
                                      .group_by(Job.state)).all())
        active = sum(counts.get(state, 0) for state in ("sent", "printing"))
        if active:
            raise MachineInUse(name, active)
        session.delete(row)
        return sum(counts.get(state, 0) for state in ("queued", "slicing", "ready"))


def plan_ready_items(database: Database, output_folder: Path, limit: int = 50) -> list[int]:
    """Plan every ready item that has no jobs yet; the ids of the new queued jobs."""
    with database.session() as session:
        ids = session.scalars(select(OrderItem.id).where(OrderItem.state == "ready",
                                                         ~OrderItem.id.in_(select(Job.item_id)))
                              .order_by(OrderItem.id).limit(limit)).all()
    new: list[int] = []
    for item_id in ids:
        try:
            new.extend(plan_item(database, output_folder, item_id))
        except Exception:
            log.exception("planning the jobs of item %s failed", item_id)
    return new


# -- preparing: slice or CAM, and the job sheet ----------------------------------------------------


def job_url(public_url: str, job_id: int) -> str:
    """Where a job's QR code leads: the job on the staff dashboard, absolute when the app's address is known."""
    return f"{public_url.rstrip('/')}/staff/manufacturing#job-{job_id}"


def add_drawing(manifest: Any, cache: Any, settings: Any) -> Any:
    """The item's manifest with its drawing view (the core's SVG export) for the job sheet.

    An order's render makes the drawing with its files (``svg`` in ``ORDER_FORMATS``), so this
    returns at once. An item rendered without it (``ORDER_FORMATS`` without ``svg``, or an
    order from before) gets it here, from the render cache:
    that rebuilds the geometry (0.1 to 1 s) once per configuration. A render made by an older
    template version gets no drawing rather than another geometry's.
    """
    from parametric import get_template, render
    from parametric.files import place

    if any(record["format"] == "svg" for record in manifest.files) or cache is None:
        return manifest
    template = get_template(manifest.template)
    if template.version != manifest.version:
        return manifest
    drawn = render(template.id, manifest.params, formats=("svg",), material=manifest.material["id"],
                   settings=settings, cache=cache)
    records = [record for record in drawn.files if record["format"] == "svg"]
    for record in records:
        place(drawn.directory / record["filename"], manifest.directory / record["filename"])
    manifest.files = [*manifest.files, *records]
    return manifest


def prepare(database: Database, output_folder: Path, job_id: int, public_url: str = "", *, cache: Any = None,
            settings: Any = None) -> str:
    """Slice (fdm) or toolpath (cnc) a queued job and write its job sheet: ``ready``, ``failed``, ``retry``
    or ``skipped``. ``public_url`` is the app's address (the sheet's QR code links to the job there);
    ``cache`` and ``settings`` (the render cache and export settings) give the sheet its drawing view."""
    from parametric import ValidationError, get_template
    from parametric.production import SheetRequest, make

    from . import machines

    if not transition(database, job_id, "slicing", expect=("queued",)):
        return "skipped"
    job = get(database, job_id)
    assert job is not None
    with database.session() as session:
        item = session.get(OrderItem, job.item_id)
        assert item is not None
        order_id, quantity, material, position = item.order_id, item.quantity, item.material, item.position
    machine = machines.get(database, job.machine or "")
    if machine is None:
        transition(database, job_id, "failed", last_error=f"the machine {job.machine!r} is no longer set up")
        return "failed"
    out_dir = Path(output_folder) / "jobs" / f"job-{job_id}"
    plates: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (estimates, files) of each further plate
    try:
        whole = add_drawing(load_manifest(output_folder, job.item_id, database), cache, settings)
        part = next(p for p in whole.parts if p.get("name") == job.part)
        material = part_material(get_template(whole.template), part, material, job.kind)
        copies = int(part.get("quantity", 1)) * quantity
        # Only this job's part is made here: another part of the item that cannot be made fails its own job.
        made = make(whole, machine, out_dir, material=material, parts=[job.part], quantity=quantity,
                    sheet=SheetRequest(order_ref=order_id, item_ref=f"{order_id}/{position}",
                                       job_url=job_url(public_url, job_id)))
        if job.kind == "fdm":
            per_plate = [({**r.estimates.to_dict(), "copies": r.copies, "plate": index + 1, "plates": len(made.slices),
                           "slicer_s": round(r.slicer_s, 3)}, {"gcode": str(r.gcode)})
                         for index, r in enumerate(made.slices)]
            (estimates, files), plates = per_plate[0], per_plate[1:]
        else:
            estimates = {"machining_time_s": round(made.machine_time_s, 1), "copies": copies}
            files = {"dxf": [str(r.dxf) for r in made.cam], "gcode": [str(p) for p in made.programs()]}
            tables = sorted({str(r.tool_table) for r in made.cam if r.tool_table})
            if tables:  # LinuxCNC reads tool lengths and diameters from it (G43, cutter compensation)
                files["tool_table"] = tables
        sheets = {"job_sheet_html": str(made.sheet.html),
                  **({"job_sheet_pdf": str(made.sheet.pdf)} if made.sheet.pdf else {})}
        files.update(sheets)
        for _, plate_files in plates:
            plate_files.update(sheets)
    except ValidationError as error:
        transition(database, job_id, "failed", last_error=str(error))
        return "failed"
    except Exception as error:
        log.exception("preparing job %s failed", job_id)
        attempts = job.attempts + 1
        if attempts >= MAX_PREPARE_ATTEMPTS:
            transition(database, job_id, "failed", attempts=attempts, last_error=f"{type(error).__name__}: {error}")
            return "failed"
        transition(database, job_id, "queued")
        with database.transaction() as session:
            session.execute(update(Job).where(Job.id == job_id).values(
                attempts=attempts, last_error=f"{type(error).__name__}: {error}"))
        return "retry"
    # This job becomes ready with the first plate; copies that need more plates become jobs of their own,
    # ready at once, in the same transaction (a crash leaves either all of them or the job still slicing).
    with database.transaction() as session:
        now = utcnow()
        moved = session.execute(update(Job).where(Job.id == job_id, Job.state == "slicing").values(
            state="ready", estimates=estimates, files=files, last_error=None, updated_at=now)
            .execution_options(synchronize_session=False))
        if moved.rowcount != 1:
            return "skipped"  # cancelled while it was being prepared
        session.add_all(Job(item_id=job.item_id, part=job.part, machine=job.machine, kind=job.kind, state="ready",
                            estimates=plate_estimates, files=plate_files, created_at=now, updated_at=now)
                        for plate_estimates, plate_files in plates)
    return "ready"


# -- sending and following -------------------------------------------------------------------------


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff for an unreachable host: 5 s, 10 s, 20 s, ... at most 5 minutes."""
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1))


def _defer(database: Database, job_id: int, error: Exception) -> None:
    with database.transaction() as session:
        job = session.get(Job, job_id)
        if job is None:
            return
        job.attempts += 1
        job.last_error = str(error)
        job.next_attempt_at = utcnow() + timedelta(seconds=backoff_seconds(job.attempts))
        job.updated_at = utcnow()


def _apply(database: Database, job_id: int, host_job: Any) -> str:
    """Record what the host says of a sent or printing job."""
    job = get(database, job_id)
    assert job is not None
    if host_job.state in ("printing", "paused"):
        if job.state == "sent":
            transition(database, job_id, "printing", expect=("sent",))
        with database.transaction() as session:
            session.execute(update(Job).where(Job.id == job_id).values(
                progress=float(host_job.progress or 0.0), next_attempt_at=None, last_error=None, updated_at=utcnow()))
        return "printing"
    if host_job.state == "done":
        transition(database, job_id, "done", expect=("sent", "printing"))
        return "done"
    if host_job.state == "failed":
        transition(database, job_id, "failed", expect=("sent", "printing"),
                   last_error="the print stopped on the printer (cancelled there or a printer error)")
        return "failed"
    if host_job.state == "absent" and job.state == "printing":
        transition(database, job_id, "failed", expect=("printing",),
                   last_error="the printer's host no longer has this job's file")
        return "failed"
    return job.state


def send(database: Database, job_id: int, *, timeout_s: float = 10.0) -> str:
    """Send a ready (or already sent) job to its machine: a print job to its printer's host, a CNC job into its
    router's hot folder (or, for a router fed by download, handed over to staff). Safe to repeat.

    Returns the job's state afterwards, or ``busy`` (the machine has a job; this one stays ready) or
    ``deferred`` (the host or hot folder could not be reached; tried again with backoff).
    """
    job = get(database, job_id)
    if job is None or job.state not in ("ready", "sent"):
        return job.state if job else "missing"
    if job.kind == "cnc":
        return _send_to_router(database, job)
    return _send_to_printer(database, job, timeout_s=timeout_s)


def _send_to_printer(database: Database, job: Job, *, timeout_s: float) -> str:
    from parametric.machines import Printer
    from parametric.printers import HostError, PrinterBusy, connector_for

    from . import machines

    job_id = job.id
    printer = machines.get(database, job.machine or "")
    if not isinstance(printer, Printer):
        transition(database, job_id, "failed", last_error=f"the printer {job.machine!r} is no longer set up")
        return "failed"
    if printer.host is None:  # no print host: staff download the G-code (an SD card, USB); sending hands it over
        if job.state == "ready":
            transition(database, job_id, "sent", expect=("ready",), sent_at=utcnow(), last_error=None)
        return _state(database, job_id)
    if job.state == "ready":
        # the intent is recorded before the upload: a crash after it leaves a "sent" job that is resent safely
        transition(database, job_id, "sent", expect=("ready",), sent_at=utcnow())
    try:
        connector = connector_for(printer, timeout_s=timeout_s)
        host_job = connector.submit(job.files["gcode"], host_job_id(job_id))
    except PrinterBusy:
        if job.state == "ready":
            transition(database, job_id, "ready", expect=("sent",))  # not started: it waits its turn again
        return "busy"
    except HostError as error:
        if not error.retryable:
            transition(database, job_id, "failed", last_error=str(error))
            return "failed"
        _defer(database, job_id, error)
        return "deferred"
    return _apply(database, job_id, host_job)


# -- CNC jobs: a router's hot folder, or files staff download ------------------------------------------


class HotFolderError(Exception):
    """A hot folder that cannot be read or written now (a missing mount, permissions): tried again later."""

    def __init__(self, folder: Path, error: OSError | str):
        if isinstance(error, OSError):
            code = errno.errorcode.get(error.errno or 0)
            error = f"{error.strerror or error}" + (f" ({code})" if code else "")
        self.folder, self.reason = folder, error
        super().__init__(f"hot folder {folder}: {error}; will retry")


def delivered_name(job_id: int, program: str | Path) -> str:
    """The name of a job's program in a hot folder: the job's tag, then the program's own name
    (what ``parametric.cam.deliver`` writes with the tag as prefix)."""
    return f"{host_job_id(job_id)}-{Path(program).name}"


def programs(job: Job) -> list[Path]:
    """The G-code files of a job, in the order they run (one for a print, one per tool on GRBL)."""
    gcode = (job.files or {}).get("gcode") or []
    return [Path(p) for p in ([gcode] if isinstance(gcode, str) else gcode)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _listing(folder: Path) -> tuple[set[str], int]:
    """The names in a hot folder and the id of its file system. A folder that cannot be read is an error,
    never "empty": a name gone from the folder means the sender took it, so a missing mount must not look so."""
    try:
        return set(os.listdir(folder)), os.stat(folder).st_dev
    except OSError as error:
        raise HotFolderError(folder, error) from None


def _active_on(database: Database, job: Job) -> int | None:
    """The lowest id of another job sent to (or running on) the job's machine, if there is one."""
    with database.session() as session:
        return session.scalar(select(Job.id).where(Job.machine == job.machine, Job.id != job.id,
                                                   Job.state.in_(("sent", "printing"))).order_by(Job.id).limit(1))


def _record_delivery(database: Database, job_id: int, delivery: dict[str, Any]) -> None:
    with database.transaction() as session:
        job = session.get(Job, job_id)
        if job is not None:
            job.files = {**(job.files or {}), "delivered": delivery}


def _send_to_router(database: Database, job: Job) -> str:
    """Deliver a CNC job's programs into its router's hot folder, each at most once, and see whether the
    router's sender has taken them (then the job is in progress); a download router's job is handed over."""
    from parametric.cnc.delivery import deliver
    from parametric.machines import Router

    from . import machines

    router = machines.get(database, job.machine or "")
    if not isinstance(router, Router):
        transition(database, job.id, "failed", last_error=f"the router {job.machine!r} is no longer set up")
        return "failed"
    delivery = dict((job.files or {}).get("delivered") or {})
    hot_folder = delivery.get("folder") or (router.delivery.path if router.delivery.method == "hot_folder" else None)
    if not hot_folder:  # staff download the files: sending records that they were handed over
        if job.state == "ready":
            transition(database, job.id, "sent", expect=("ready",), sent_at=utcnow(), last_error=None)
        return _state(database, job.id)
    if job.state == "ready":  # one job at a time per router: the next goes when this one has ended
        if _active_on(database, job) is not None:
            return "busy"
        # the intent is recorded before writing: a crash after it leaves a "sent" job that is resent safely
        if not transition(database, job.id, "sent", expect=("ready",), sent_at=utcnow()):
            return _state(database, job.id)
        other = _active_on(database, job)
        if other is not None and other < job.id:  # sent at the same moment by someone else: the older one goes
            transition(database, job.id, "ready", expect=("sent",))
            return "busy"
    folder = Path(hot_folder)
    written: dict[str, str] = dict(delivery.get("programs") or {})  # name in the folder -> sha256 delivered
    try:
        present, device = _listing(folder)
        if delivery.get("device") is not None and device != delivery["device"]:
            raise HotFolderError(folder, "not the file system the job was delivered to (is the share mounted?)")
        for source in programs(job):
            name = delivered_name(job.id, source)
            if name in written:
                continue  # delivered before: waiting there or taken by the sender, never written twice
            if not source.is_file():
                transition(database, job.id, "failed", expect=("sent",),
                           last_error=f"the job's G-code {source} is missing; retry the job to prepare it again")
                return "failed"
            digest = _sha256(source)
            try:
                already = name in present and _sha256(folder / name) == digest
            except FileNotFoundError:
                already = True  # it was there (a delivery not yet recorded) and the sender has just taken it
            if not already:
                try:
                    deliver([source], router, prefix=host_job_id(job.id))  # a .partial file, then renamed
                except OSError as error:
                    raise HotFolderError(folder, error) from None
            written[name] = digest
            _record_delivery(database, job.id, {"folder": str(folder), "device": device, "programs": written})
        taken = [name for name in written if name not in _listing(folder)[0]]
    except HotFolderError as error:
        _defer(database, job.id, error)
        return "deferred"
    clear = {"last_error": None, "next_attempt_at": None, "updated_at": utcnow()}
    if taken:  # the sender has started on the job
        transition(database, job.id, "printing", expect=("sent",), **clear)
    else:
        with database.transaction() as session:
            session.execute(update(Job).where(Job.id == job.id, Job.state == "sent").values(**clear))
    return _state(database, job.id)


def _state(database: Database, job_id: int) -> str:
    job = get(database, job_id)
    return job.state if job else "missing"


def _withdraw(database: Database, job: Job) -> tuple[list[str], list[str]]:
    """Take a CNC job's programs still waiting in its hot folder back out of it: (names taken back, names
    the sender had already taken). Raises :class:`TransitionError` when a folder the job was delivered
    into cannot be reached, because a program left there would still be cut."""
    from parametric.machines import Router

    from . import machines

    delivery = (job.files or {}).get("delivered") or {}
    router = machines.get(database, job.machine or "")
    hot_folder = delivery.get("folder") or (router.delivery.path if isinstance(router, Router)
                                            and router.delivery.method == "hot_folder" else None)
    if not hot_folder:
        return [], []
    folder = Path(hot_folder)
    ours = {delivered_name(job.id, p) for p in programs(job)} | set(delivery.get("programs") or {})
    withdrawn: list[str] = []
    try:
        try:
            present, _ = _listing(folder)
        except HotFolderError:
            if not delivery.get("programs"):
                return [], []  # nothing was ever written there (a wrong path, a share never mounted)
            raise
        for name in sorted(ours):
            for candidate in (f".{name}.partial", name):
                if candidate in present:
                    try:
                        (folder / candidate).unlink()
                    except FileNotFoundError:
                        continue  # the sender took it just now
                    except OSError as error:
                        raise HotFolderError(folder, error) from None
                    if candidate == name:
                        withdrawn.append(name)
    except HotFolderError as error:
        raise TransitionError(f"the job's programs could not be taken back out of the hot folder {error.folder} "
                              f"({error.reason}); try again when it can be reached") from None
    taken = [name for name in delivery.get("programs") or {} if name not in withdrawn]
    return withdrawn, taken


def finish(database: Database, job_id: int) -> str:
    """Staff mark a job done. A CNC job's programs still waiting in the hot folder are taken back first, so
    the sender does not cut the work a second time."""
    job = get(database, job_id)
    if job is None:
        return "missing"
    if "done" not in TRANSITIONS[job.state]:
        raise TransitionError(f"a {job.state} job cannot become done")
    withdrawn: list[str] = []
    expect: tuple[str, ...] = (job.state,)
    if job.kind == "cnc" and job.state in ("sent", "printing"):
        withdrawn, _ = _withdraw(database, job)
        expect = ("sent", "printing")  # the dispatcher may have seen the sender take it meanwhile
    if not transition(database, job_id, "done", expect=expect, last_error=None):
        raise TransitionError("the job changed meanwhile; look again")
    if withdrawn:
        return f"done; took {', '.join(withdrawn)} back out of the hot folder"
    return "done"


def state_label(job: Job) -> str:
    """The state as the workshop says it: a CNC job in progress is cutting, not printing."""
    return "cutting" if job.kind == "cnc" and job.state == "printing" else job.state


DOWNLOAD_KINDS = (("gcode", "G-code"), ("dxf", "DXF"), ("tool_table", "LinuxCNC tool table"),
                  ("job_sheet_pdf", "job sheet (PDF)"), ("job_sheet_html", "job sheet (HTML)"))
"""The entries of ``Job.files`` staff may download, with how the page names them."""
MIMETYPES = {".gcode": "text/plain", ".nc": "text/plain", ".ngc": "text/plain", ".tbl": "text/plain",
             ".dxf": "image/vnd.dxf",
             ".pdf": "application/pdf", ".html": "text/html"}


@dataclass(frozen=True)
class Download:
    """A file of a job staff may download: its own name (unique within the job), what it is, where it is."""

    name: str
    kind: str
    label: str
    path: Path
    size_bytes: int
    mimetype: str


def downloads(job: Job, output_folder: str | Path) -> list[Download]:
    """The job's files for staff: only paths recorded in ``job.files``, inside the output folder, and present."""
    root = Path(output_folder).resolve()
    found: dict[str, Download] = {}
    for kind, label in DOWNLOAD_KINDS:
        value = (job.files or {}).get(kind)
        for text in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
            if not isinstance(text, str):
                continue
            path = Path(text).resolve()
            if path.name in found or not path.is_relative_to(root) or not path.is_file():
                continue
            found[path.name] = Download(path.name, kind, label, path, path.stat().st_size,
                                        MIMETYPES.get(path.suffix.lower(), "application/octet-stream"))
    return list(found.values())


def download(job: Job, output_folder: str | Path, name: str) -> Download | None:
    """The job's file called ``name``, if staff may download it (see :func:`downloads`)."""
    return next((d for d in downloads(job, output_folder) if d.name == name), None)


# -- the queue: one job at a time per machine ----------------------------------------------------------


def dispatch(database: Database, *, timeout_s: float = 10.0) -> dict[str, str]:
    """Per printer and per hot-folder router, one job at a time: resend its due ``sent`` job (idempotent: the
    print host finds the upload by its tag, the hot folder keeps what is already there, and seeing the
    router's sender take the programs moves the job on), else start its oldest ready job when the machine
    has none sent or in progress. Printers without a host and routers fed by download wait for staff."""
    from parametric.machines import Printer, Router

    from . import machines

    now = utcnow()
    outcomes: dict[str, str] = {}
    for machine in machines.all_machines(database):
        if isinstance(machine, Printer) and machine.host is not None:
            kind = "fdm"
        elif isinstance(machine, Router) and machine.delivery.method == "hot_folder":
            kind = "cnc"
        else:
            continue
        with database.session() as session:
            active = session.scalars(select(Job).where(Job.machine == machine.name,
                                                       Job.state.in_(("sent", "printing")))
                                     .order_by(Job.id)).all()
            oldest_ready = session.scalar(select(Job.id).where(Job.machine == machine.name, Job.state == "ready",
                                                               Job.kind == kind)
                                          .order_by(Job.created_at, Job.id).limit(1))
        pending = [j for j in active if j.state == "sent"]
        if pending:
            job = pending[0]
            if job.next_attempt_at is None or job.next_attempt_at <= now:
                outcomes[machine.name] = send(database, job.id, timeout_s=timeout_s)
            continue
        if active or oldest_ready is None:
            continue
        outcomes[machine.name] = send(database, oldest_ready, timeout_s=timeout_s)
    return outcomes


def poll(database: Database, *, timeout_s: float = 10.0) -> dict[int, str]:
    """Read progress of every job printing on a printer from its host; done when the host counts the file
    printed. (A router reports nothing back: staff mark a cutting job done.)"""
    from parametric.machines import Printer
    from parametric.printers import HostError, connector_for

    from . import machines

    now = utcnow()
    with database.session() as session:
        printing = session.scalars(select(Job).where(Job.state == "printing", Job.kind == "fdm")
                                   .order_by(Job.id)).all()
    outcomes: dict[int, str] = {}
    for job in printing:
        if job.next_attempt_at is not None and job.next_attempt_at > now:
            continue
        printer = machines.get(database, job.machine or "")
        if not isinstance(printer, Printer):
            continue
        try:
            host_job = connector_for(printer, timeout_s=timeout_s).job(host_job_id(job.id))
        except HostError as error:
            _defer(database, job.id, error)
            outcomes[job.id] = "deferred"
            continue
        outcomes[job.id] = _apply(database, job.id, host_job)
    return outcomes


def cancel(database: Database, job_id: int, *, timeout_s: float = 10.0) -> str:
    """Cancel a job: a job printing on its printer is cancelled there first; a CNC job's programs still
    waiting in the hot folder are taken back (a program the sender already took is named in ``last_error``:
    the router may be cutting it and must be stopped by hand)."""
    from parametric.machines import Printer
    from parametric.printers import HostError, connector_for

    from . import machines

    job = get(database, job_id)
    if job is None:
        return "missing"
    if "cancelled" not in TRANSITIONS[job.state]:
        raise TransitionError(f"a {job.state} job cannot be cancelled")
    values: dict[str, Any] = {}
    expect: tuple[str, ...] = (job.state,)
    if job.state in ("sent", "printing") and job.kind == "cnc":
        expect = ("sent", "printing")  # the dispatcher may have seen the sender take it meanwhile
        _, taken = _withdraw(database, job)
        values["last_error"] = (f"cancelled after the router's sender took {', '.join(taken)}: stop the router "
                                "by hand if it is still cutting") if taken else None
    elif job.state in ("sent", "printing"):
        printer = machines.get(database, job.machine or "")
        if isinstance(printer, Printer):
            connector = connector_for(printer, timeout_s=timeout_s)
            try:
                current = connector.job(host_job_id(job_id))
                if current.state in ("printing", "paused"):
                    connector.cancel()
            except HostError as error:
                raise TransitionError(f"the printer's host did not take the cancel: {error}") from None
    if not transition(database, job_id, "cancelled", expect=expect, **values):
        raise TransitionError("the job changed meanwhile; look again")
    return "cancelled"


# -- queue tasks (registered on the app's huey by web.tasks.create_queue) ------------------------------


def register_tasks(huey: Any, database: Database, output_folder: Path, *, public_url: str = "", cache: Any = None,
                   settings: Any = None) -> tuple[Any, Any]:
    """The ``prepare_job`` task and the periodic ``manufacture`` task (plan, dispatch, poll) on ``huey``.

    ``public_url``, ``cache`` and ``settings`` are passed to :func:`prepare` (QR links, drawing views)."""
    from huey import crontab
    from huey.exceptions import RetryTask

    @huey.task(name="prepare_job")
    def prepare_job(job_id: int) -> str:
        """Slice or toolpath a job and write its job sheet; a failed attempt is tried again with backoff."""
        outcome = prepare(database, output_folder, job_id, public_url, cache=cache, settings=settings)
        if outcome == "retry":
            job = get(database, job_id)
            raise RetryTask(f"job {job_id} failed; trying again", delay=backoff_seconds(job.attempts if job else 1))
        return outcome

    @huey.periodic_task(crontab(), name="manufacture")
    def manufacture() -> dict[str, Any]:
        """Make jobs of newly ready items and prepare them, send ready jobs to idle printers, read progress."""
        new = plan_ready_items(database, output_folder)
        for job_id in new:
            prepare_job(job_id)
        return {"planned": new, "sent": dispatch(database), "polled": poll(database)}

    return prepare_job, manufacture
