"""Manufacturing jobs: each part of a ready order item, routed to a machine, prepared, sent and followed.

A job's ``state`` goes queued → slicing → ready → sent → printing → done, or ends failed or
cancelled; it changes only through :func:`transition`, which refuses any other move. The
work itself is the core's (``routing.route`` to plan, ``production.make`` to slice or toolpath a job's
own part and write its job sheet); the queue tasks in ``web.tasks`` call the functions here.

Sending goes through the machine's connector (:mod:`parametric.hosts`: a printer's print host,
a router's hot folder), and this module keeps only the job's bookkeeping: its state, backoff,
and what the connector must remember (``Job.files["delivered"]``). Sending is safe to repeat:
the connector finds what it sent by the job's tag (``job-<id>``) before sending or starting
anything, so a retry never prints or cuts twice. When a hot folder's sender has taken the
programs the job is in progress (``printing``, shown as cutting) until staff mark it done; a
machine whose files staff download has them fetched from the dashboard. A host that cannot be
reached or written is retried with backoff, never lost.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, true, update

from parametric.errors import infrastructure_fault

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
            extra.update(attempts=0, next_attempt_at=None, finished_at=None, progress=0.0, last_error=None,
                         cancel_reason=None)
        result = session.execute(update(Job).where(Job.id == job_id, Job.state == job.state)
                                 .values(state=to, **{**extra, **values}).execution_options(synchronize_session=False))
        return result.rowcount == 1


def describe(job: Job) -> dict[str, Any]:
    return {"id": job.id, "item_id": job.item_id, "part": job.part, "machine": job.machine, "kind": job.kind,
            "state": job.state, "label": state_label(job),
            "delivered": job.state == "sent" and not not_sent(job) or job.state in ("printing", "done"),
            "progress": round(job.progress or 0.0, 1), "estimates": job.estimates or {},
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
    from parametric.cnc.capability import manifest_check
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
    can_cut = manifest_check(manifest)  # CAM's own check: a router is chosen only if CAM can then cut the part
    created: list[Job] = []
    for part in manifest.parts:
        process = part.get("process") or default_process
        verdict = route(part, part_material(template, part, material, process), fleet, process=process,
                        can_cut=can_cut)
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
    from parametric.cnc.capability import manifest_check
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
    can_cut = manifest_check(manifest)
    if current is not None and route(part, chosen, [current], process=process, can_cut=can_cut).ok:
        return current.name
    verdict = route(part, chosen, machines.all_machines(database), process=process, can_cut=can_cut)
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
    for record in records:  # the item's own checked copy, as its other files are
        place(drawn.directory / record["filename"], manifest.directory / record["filename"], size=record["bytes"],
              sha256=record["sha256"])
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
        customer_units = item.order.units or "mm"
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
                                       job_url=job_url(public_url, job_id), customer_units=customer_units))
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
            plate_files["checksums"] = checksums(plate_files)
        files["checksums"] = checksums(files)
    except ValidationError as error:
        transition(database, job_id, "failed", last_error=str(error))
        return "failed"
    except Exception as error:
        log.exception("preparing job %s failed", job_id)
        fault = infrastructure_fault(error)
        if fault is not None and not fault.counts_as_attempt:  # a full disk, a missing slicer: wait, never give up
            transition(database, job_id, "queued")
            with database.transaction() as session:
                session.execute(update(Job).where(Job.id == job_id).values(
                    last_error=f"waiting for a fault to clear ({fault.kind}): {fault.reason}"))
            return "retry"
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
    if host_job.state != "absent" and not (job.files or {}).get("on_host"):
        with database.transaction() as session:  # the host has the files: from now on the job was sent
            row = session.get(Job, job_id)
            if row is not None:
                row.files = {**(row.files or {}), "on_host": True}
        job = get(database, job_id)
        assert job is not None
    clear = {"next_attempt_at": None, "last_error": None, "updated_at": utcnow()}
    if host_job.state in ("printing", "paused"):
        if job.state == "sent":
            transition(database, job_id, "printing", expect=("sent",))
        with database.transaction() as session:
            session.execute(update(Job).where(Job.id == job_id).values(
                progress=float(host_job.progress or 0.0), **clear))
        return "printing"
    if host_job.state == "taken":  # the machine's sender has the files: in progress; the host sees no further
        if job.state == "sent":
            transition(database, job_id, "printing", expect=("sent",), **clear)
        return _state(database, job_id)
    if host_job.state == "done":
        transition(database, job_id, "done", expect=("sent", "printing"))
        return "done"
    if host_job.state == "failed":
        transition(database, job_id, "failed", expect=("sent", "printing"),
                   last_error="the job stopped on the machine (cancelled there or a machine error)")
        return "failed"
    if host_job.state == "absent" and job.state == "printing":
        transition(database, job_id, "failed", expect=("printing",),
                   last_error="the machine's host no longer has this job's files")
        return "failed"
    if host_job.state == "uploaded" and job.state == "sent":  # on the host, waiting for the machine
        with database.transaction() as session:
            session.execute(update(Job).where(Job.id == job_id, Job.state == "sent").values(**clear))
    return _state(database, job_id)


def programs(job: Job) -> list[Path]:
    """The G-code files of a job, in the order they run (one for a print, one per tool on GRBL)."""
    gcode = (job.files or {}).get("gcode") or []
    return [Path(p) for p in ([gcode] if isinstance(gcode, str) else gcode)]


class _JobRecords:
    """What a job's host cannot tell (a hot folder: the files written, their hashes, the folder's file system),
    kept with the job in ``Job.files["delivered"]``: the connectors' records (:class:`parametric.hosts.Records`)."""

    def __init__(self, database: Database, job_id: int):
        self.database, self.job_id = database, job_id

    def get(self, tag: str) -> dict[str, Any] | None:
        job = get(self.database, self.job_id) if tag == host_job_id(self.job_id) else None
        record = (job.files or {}).get("delivered") if job is not None else None
        return dict(record) if record else None

    def put(self, tag: str, record: dict[str, Any]) -> None:
        if tag != host_job_id(self.job_id):
            raise KeyError(f"job {self.job_id} keeps no record of {tag}")
        with self.database.transaction() as session:
            job = session.get(Job, self.job_id)
            if job is not None:
                job.files = {**(job.files or {}), "delivered": record}


def _machine(database: Database, job: Job) -> Any:
    """The job's machine if it is still set up and of the job's kind (a printer for fdm, a router for cnc)."""
    from . import machines

    machine = machines.get(database, job.machine or "")
    return machine if machine is not None and machine.process == job.kind else None


def _connector(database: Database, job: Job, machine: Any, timeout_s: float) -> Any:
    """The connector of the job's machine, keeping its records with the job; None when staff download its files."""
    from parametric.hosts import connector_for

    if machine.connection() is None:
        return None
    return connector_for(machine, timeout_s=timeout_s, records=_JobRecords(database, job.id))


def _active_on(database: Database, job: Job) -> int | None:
    """The lowest id of another job sent to (or running on) the job's machine, if there is one."""
    with database.session() as session:
        return session.scalar(select(Job.id).where(Job.machine == job.machine, Job.id != job.id,
                                                   Job.state.in_(("sent", "printing"))).order_by(Job.id).limit(1))


def _state(database: Database, job_id: int) -> str:
    job = get(database, job_id)
    return job.state if job else "missing"


def send(database: Database, job_id: int, *, timeout_s: float = 10.0) -> str:
    """Send a ready (or already sent) job to its machine through the machine's connector (a printer's print host,
    a router's hot folder), or hand it over to staff when they download its files. Safe to repeat: the connector
    finds what it sent before by the job's tag and never sends or starts it twice.

    A machine that takes what it is given by itself (a hot folder's sender: its connector does not start jobs)
    gets one job at a time from this queue; a print host says itself when its printer is busy.

    Returns the job's state afterwards, or ``busy`` (the machine has a job; this one stays ready) or
    ``deferred`` (the host could not be reached or written; tried again with backoff).
    """
    from parametric.hosts import Capability, HostError, PrinterBusy

    job = get(database, job_id)
    if job is None or job.state not in ("ready", "sent"):
        return job.state if job else "missing"
    machine = _machine(database, job)
    if machine is None:
        what = "router" if job.kind == "cnc" else "printer"
        transition(database, job_id, "failed", last_error=f"the {what} {job.machine!r} is no longer set up")
        return "failed"
    try:
        connector = _connector(database, job, machine, timeout_s)
    except HostError as error:  # its connector is not installed (any more)
        transition(database, job_id, "failed", last_error=str(error))
        return "failed"
    if connector is None:  # staff download the files (an SD card, USB, a router's own sender): sending hands over
        if job.state == "ready":
            transition(database, job_id, "sent", expect=("ready",), sent_at=utcnow(), last_error=None)
        return _state(database, job_id)
    one_at_a_time = not connector.can(Capability.STARTS)
    if job.state == "ready":
        if one_at_a_time and _active_on(database, job) is not None:
            return "busy"
        # the intent is recorded before sending: a crash after it leaves a "sent" job that is resent safely
        if not transition(database, job_id, "sent", expect=("ready",), sent_at=utcnow()):
            return _state(database, job_id)
        other = _active_on(database, job) if one_at_a_time else None
        if other is not None and other < job_id:  # sent at the same moment by someone else: the older one goes
            transition(database, job_id, "ready", expect=("sent",))
            return "busy"
    files = programs(job)
    if not files:
        transition(database, job_id, "failed", expect=("sent",),
                   last_error="the job has no G-code; retry the job to prepare it again")
        return "failed"
    try:
        host_job = connector.submit(files, host_job_id(job_id))
    except FileNotFoundError as missing:
        transition(database, job_id, "failed", expect=("sent",),
                   last_error=f"the job's G-code {missing.filename} is missing; retry the job to prepare it again")
        return "failed"
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


def _withdraw(database: Database, job: Job, *, timeout_s: float = 10.0) -> tuple[Any, list[str], list[str]]:
    """Take a job's files still waiting on a machine that takes them by itself (a hot folder's sender) back:
    (the machine, names taken back, names the machine had already taken). Raises :class:`TransitionError`
    when the host cannot be reached and something was sent there, because a file left there would still run."""
    from parametric.hosts import Capability, HostError

    machine = _machine(database, job)
    connector = _connector(database, job, machine, timeout_s) if machine is not None else None
    if connector is None or connector.can(Capability.STARTS) or not connector.can(Capability.WITHDRAWS):
        return machine, [], []
    try:
        withdrawal = connector.withdraw(host_job_id(job.id))
    except HostError as error:
        raise TransitionError(f"the job's files could not be taken back from {error.host} ({error.reason}); try "
                              "again when it can be reached") from None
    return machine, list(withdrawal.withdrawn), list(withdrawal.taken)


def finish(database: Database, job_id: int) -> str:
    """Staff mark a job done. Files still waiting on a machine that takes them by itself (a hot folder) are taken
    back first, so the work is not done a second time."""
    job = get(database, job_id)
    if job is None:
        return "missing"
    if "done" not in TRANSITIONS[job.state]:
        raise TransitionError(f"a {job.state} job cannot become done")
    withdrawn: list[str] = []
    machine: Any = None
    expect: tuple[str, ...] = (job.state,)
    if job.state in ("sent", "printing"):
        machine, withdrawn, _ = _withdraw(database, job)
        expect = ("sent", "printing")  # the dispatcher may have seen the machine take it meanwhile
    if not transition(database, job_id, "done", expect=expect, last_error=None):
        raise TransitionError("the job changed meanwhile; look again")
    if withdrawn and machine is not None:
        return f"done; took {', '.join(withdrawn)} back ({machine.connection().describe()})"
    return "done"


def not_sent(job: Job) -> bool:
    """A job marked sent whose upload failed and waits for its retry: its files never reached the machine's host
    (which once answered with them, ``on_host``, or took them into its folder, ``delivered``)."""
    files = job.files or {}
    return (job.state == "sent" and job.next_attempt_at is not None
            and not files.get("on_host") and not files.get("delivered"))


def delivery_error(job: Job) -> str:
    """Why the job's last upload failed, without the host error's own "; will retry" (the pages say when)."""
    return (job.last_error or "").removesuffix("; will retry")


def state_label(job: Job, now: Any = None) -> str:
    """The state as the workshop says it: a CNC job in progress is cutting, not printing; a job whose upload
    failed is "not sent yet", with why and when it is tried again, until it is really sent."""
    if not_sent(job):
        wait = max(0.0, ((job.next_attempt_at - (now or utcnow())).total_seconds()))
        machine = "router" if job.kind == "cnc" else "printer"
        reason = delivery_error(job) or f"the {machine} could not be reached"
        from parametric.units import format_duration

        again = f"retrying in {format_duration(wait)}" if wait >= 1 else "retrying now"
        return f"not sent yet: {reason}; {again}"
    return "cutting" if job.kind == "cnc" and job.state == "printing" else job.state


DOWNLOAD_KINDS = (("gcode", "G-code"), ("dxf", "DXF"), ("tool_table", "LinuxCNC tool table"),
                  ("job_sheet_pdf", "job sheet (PDF)"), ("job_sheet_html", "job sheet (HTML)"))
"""The entries of ``Job.files`` staff may download, with how the page names them."""
MIMETYPES = {".gcode": "text/plain", ".nc": "text/plain", ".ngc": "text/plain", ".tbl": "text/plain",
             ".dxf": "image/vnd.dxf",
             ".pdf": "application/pdf", ".html": "text/html"}


@dataclass(frozen=True)
class Download:
    """A file of a job staff may download: its own name (unique within the job), what it is, where it is, the
    size and SHA-256 it had when the job was prepared (``None`` for a job prepared before they were kept), and the
    name it is saved under (``job-12_order-1a2b3c4d_side.nc``: job, order and part, so that downloads from
    several jobs never collide)."""

    name: str
    kind: str
    label: str
    path: Path
    size_bytes: int
    mimetype: str
    recorded: tuple[int, str] | None = None
    download_name: str = ""


def _paths(files: dict[str, Any]) -> list[str]:
    return [text for kind, _ in DOWNLOAD_KINDS
            for text in ([files.get(kind)] if isinstance(files.get(kind), str) else files.get(kind) or [])
            if isinstance(text, str)]


def checksums(files: dict[str, Any]) -> dict[str, list[Any]]:
    """``{path: [bytes, sha256]}`` of every file of a job staff may download, as prepared; checked when one is
    handed out, so a file changed on disk is never delivered as the job's."""
    from parametric.files import sha256_file

    return {text: list(sha256_file(text)) for text in _paths(files) if Path(text).is_file()}


def safe_name(text: str) -> str:
    """``text`` as a piece of a file name: letters, digits, ``.``, ``-`` and ``_`` (anything else becomes ``-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "file"


def saved_name(job: Job, order_id: str | None, name: str) -> str:
    """What a job's file ``name`` is saved as: the job, its order (first 8 characters of the id, as the pages show
    it) and its part, then the file's own name unless that only repeats the part (``side.nc`` of part ``side``)."""
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    pieces = [f"job-{job.id}"] + ([f"order-{order_id[:8]}"] if order_id else []) + [safe_name(job.part)]
    if stem != job.part:
        pieces.append(safe_name(stem))
    return "_".join(pieces) + (f".{safe_name(suffix)}" if suffix else "")


def order_ids(database: Database, jobs_: Sequence[Job]) -> dict[int, str]:
    """The order id of each job's item, by job id (one query)."""
    item_ids = {job.item_id for job in jobs_}
    if not item_ids:
        return {}
    with database.session() as session:
        orders = dict(session.execute(select(OrderItem.id, OrderItem.order_id).where(OrderItem.id.in_(item_ids))).all())
    return {job.id: orders[job.item_id] for job in jobs_ if job.item_id in orders}


def downloads(job: Job, output_folder: str | Path, order_id: str | None = None) -> list[Download]:
    """The job's files for staff: only paths recorded in ``job.files``, inside the output folder, and present;
    each saved under :func:`saved_name` (with ``order_id``, the order's too)."""
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
            recorded = ((job.files or {}).get("checksums") or {}).get(text)
            found[path.name] = Download(path.name, kind, label, path, path.stat().st_size,
                                        MIMETYPES.get(path.suffix.lower(), "application/octet-stream"),
                                        (int(recorded[0]), str(recorded[1])) if recorded else None,
                                        saved_name(job, order_id, path.name))
    return list(found.values())


def download(job: Job, output_folder: str | Path, name: str, order_id: str | None = None) -> Download | None:
    """The job's file called ``name``, if staff may download it (see :func:`downloads`)."""
    return next((d for d in downloads(job, output_folder, order_id) if d.name == name), None)


def damaged(database: Database, job: Job, found: Download, prepare: Any) -> str:
    """A file of ``job`` no longer matches its record: what staff are told. A job not yet sent is made again
    (failed with the reason, then queued for ``prepare``); one a machine has already had keeps its state."""
    reason = (f"its file {found.name} changed on disk after it was made (it is not the {found.recorded[0]} bytes "
              "recorded)" if found.recorded else f"its file {found.name} changed on disk")
    log.error("job %s: %s; SHA-256 recorded %s", job.id, reason, found.recorded[1] if found.recorded else None)
    if job.state == "ready" and transition(database, job.id, "failed", expect=("ready",), last_error=reason):
        transition(database, job.id, "queued", expect=("failed",))
        if prepare is not None:
            prepare(job.id)
        return f"{reason}; the job is being prepared again"
    return f"{reason}; retry the job to make it again"


# -- the queue: one job at a time per machine ----------------------------------------------------------


def dispatch(database: Database, *, timeout_s: float = 10.0, batching: bool = False) -> dict[str, str]:
    """Per machine with a host, one job at a time: resend its due ``sent`` job (idempotent: the connector finds
    what it sent by the job's tag, and seeing the machine take or start it moves the job on), else start its
    oldest ready job when the machine has none sent or in progress. Machines whose files staff download wait
    for staff. Jobs in a batch go with their batch; with ``batching`` on, only jobs batching keeps out (taken
    out by staff, or a part it cannot read) go alone."""
    from . import machines

    # only a job batching keeps out (web.batches records why) goes alone; one it has read but not yet put in a
    # batch (gathering reads a part's outline, then moves it into its batch), or a plate object made again waiting
    # for its plate, is not one of them: sent alone, it would be made twice
    unbatched = [Job.batching["kept_out"].as_boolean() == true()] if batching else []

    now = utcnow()
    outcomes: dict[str, str] = {}
    for machine in machines.all_machines(database):
        if machine.connection() is None:
            continue
        with database.session() as session:
            active = session.scalars(select(Job).where(Job.machine == machine.name,
                                                       Job.state.in_(("sent", "printing")))
                                     .order_by(Job.id)).all()
            # a job in a batch goes with its batch's sheet or plate (web.batches), never alone
            oldest_ready = session.scalar(select(Job.id).where(Job.machine == machine.name, Job.state == "ready",
                                                               Job.kind == machine.process, Job.batch_id.is_(None),
                                                               *unbatched)
                                          .order_by(Job.created_at, Job.id).limit(1))
        pending = [j for j in active if j.state == "sent" and j.batch_id is None]
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
    """Read the progress of every job in progress from its machine's host, where the host reports it; done when
    the host counts it finished. (A hot folder reports nothing once its sender took the files: staff mark a
    cutting job done.)"""
    from parametric.hosts import Capability, HostError

    now = utcnow()
    with database.session() as session:
        running = session.scalars(select(Job).where(Job.state == "printing", Job.batch_id.is_(None))
                                  .order_by(Job.id)).all()
    outcomes: dict[int, str] = {}
    for job in running:
        if job.next_attempt_at is not None and job.next_attempt_at > now:
            continue
        machine = _machine(database, job)
        if machine is None:
            continue
        try:
            connector = _connector(database, job, machine, timeout_s)
            if connector is None or not (connector.can(Capability.PROGRESS) or connector.can(Capability.REPORTS_END)):
                continue
            host_job = connector.job(host_job_id(job.id))
        except HostError as error:
            _defer(database, job.id, error)
            outcomes[job.id] = "deferred"
            continue
        outcomes[job.id] = _apply(database, job.id, host_job)
    return outcomes


def cancel(database: Database, job_id: int, *, timeout_s: float = 10.0, reason: str | None = None) -> str:
    """Cancel a job (``reason``: what the customer is told of it): a job running on a host that cancels (a print
    host) is cancelled there first; files still waiting on a machine that takes them by itself (a hot folder) are
    taken back, and a file the machine had already taken is named in ``last_error``: the machine may be running
    it and must be stopped by hand."""
    from parametric.hosts import Capability, HostError

    job = get(database, job_id)
    if job is None:
        return "missing"
    if "cancelled" not in TRANSITIONS[job.state]:
        raise TransitionError(f"a {job.state} job cannot be cancelled")
    values: dict[str, Any] = {"cancel_reason": (reason or "").strip()[:500] or None}
    expect: tuple[str, ...] = (job.state,)
    if job.state in ("sent", "printing"):
        expect = ("sent", "printing")  # the dispatcher may have seen the machine take or start it meanwhile
        machine = _machine(database, job)
        connector = _connector(database, job, machine, timeout_s) if machine is not None else None
        if connector is not None and connector.can(Capability.CANCELS):
            try:
                current = connector.job(host_job_id(job_id))
                if current.state in ("printing", "paused"):
                    connector.cancel()
            except HostError as error:
                raise TransitionError(f"the {machine.kind}'s host did not take the cancel: {error}") from None
        elif connector is not None:
            machine, _, taken = _withdraw(database, job, timeout_s=timeout_s)
            running = "cutting" if job.kind == "cnc" else "printing"
            values["last_error"] = (f"cancelled after the {machine.kind}'s sender took {', '.join(taken)}: stop the "
                                    f"{machine.kind} by hand if it is still {running}") if taken else None
    if not transition(database, job_id, "cancelled", expect=expect, **values):
        raise TransitionError("the job changed meanwhile; look again")
    return "cancelled"


# -- queue tasks (registered on the app's huey by web.tasks.create_queue) ------------------------------


def manufacture_once(database: Database, output_folder: Path, prepare_job: Any, *, batching: bool = False
                     ) -> dict[str, Any]:
    """One round of the dispatcher: plan newly ready items and enqueue their preparation, send ready jobs to
    idle machines (with ``batching``, only those batching left out: the rest go with their batch), read progress."""
    new = plan_ready_items(database, output_folder)
    for job_id in new:
        prepare_job(job_id)
    return {"planned": new, "sent": dispatch(database, batching=batching), "polled": poll(database)}


def register_tasks(huey: Any, database: Database, output_folder: Path, *, public_url: str = "", cache: Any = None,
                   settings: Any = None, config: Any = None, priority: int = 0, periodic_priority: int = 0
                   ) -> tuple[Any, Any]:
    """The ``prepare_job`` task (at ``priority``) and the periodic ``manufacture`` task (plan, dispatch, poll) on
    ``huey``. Our consumer runs :func:`manufacture_once` in a process of its own instead of queueing it.

    ``public_url``, ``cache`` and ``settings`` are passed to :func:`prepare` (QR links, drawing views)."""
    from huey import crontab
    from huey.exceptions import RetryTask

    @huey.task(name="prepare_job", priority=priority)
    def prepare_job(job_id: int) -> str:
        """Slice or toolpath a job and write its job sheet; a failed attempt is tried again with backoff."""
        outcome = prepare(database, output_folder, job_id, public_url, cache=cache, settings=settings)
        if outcome == "retry":
            job = get(database, job_id)
            raise RetryTask(f"job {job_id} failed; trying again", delay=backoff_seconds(job.attempts if job else 1))
        return outcome

    @huey.periodic_task(crontab(), name="manufacture", priority=periodic_priority)
    def manufacture() -> dict[str, Any]:
        """Make jobs of newly ready items and prepare them, send ready jobs to idle printers, read progress."""
        # with batching on, ready jobs wait for web.batches' gathering (its own periodic task) unless it left them out
        return manufacture_once(database, output_folder, prepare_job, batching=bool((config or {}).get("BATCHING")))

    return prepare_job, manufacture
