"""Manufacturing jobs: each part of a ready order item, routed to a machine, prepared, sent and followed.

A job's ``state`` goes queued → slicing → ready → sent → printing → done, or ends failed or
cancelled; it changes only through :func:`transition`, which refuses any other move. The
work itself is the core's (``routing.route``, ``slicing.slice_copies``, ``cam.cam_manifest``,
``jobsheet.write_job_sheet``, the printer connectors); the queue tasks in ``web.tasks`` call
the functions here. Sending is safe to repeat: the connector finds an upload by its tag
(``job-<id>``) before uploading or starting anything, so a retry never prints twice.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, Float, ForeignKey, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from .db import Artifact, Base, Database, OrderItem, utcnow

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


class Job(Base):
    """One part of an order item on one machine: state, progress, estimates, files and retries."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'slicing', 'ready', 'sent', 'printing', 'done', 'failed', "
                        "'cancelled')", name="state"),
        CheckConstraint("kind IN ('fdm', 'cnc')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id", ondelete="CASCADE"), index=True)
    part: Mapped[str] = mapped_column(String(64))
    machine: Mapped[str | None] = mapped_column(String(80), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    estimates: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    files: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


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
    """Create the jobs of a ready item, one per part, routed; a part no machine can make is a failed job
    whose ``last_error`` says why. Does nothing (returns ``[]``) if the item already has jobs."""
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


def prepare(database: Database, output_folder: Path, job_id: int, job_url: str = "") -> str:
    """Slice (fdm) or toolpath (cnc) a queued job and write its job sheet: ``ready``, ``failed``, ``retry``
    or ``skipped``."""
    from parametric import ValidationError, get_template
    from parametric.jobsheet import write_job_sheet
    from parametric.slicing import PrintSettings, machine_record, slice_copies, slicing_record

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
        whole = load_manifest(output_folder, job.item_id, database)
        part = next(p for p in whole.parts if p.get("name") == job.part)
        material = part_material(get_template(whole.template), part, material, job.kind)
        manifest = whole.for_part(job.part)  # the job sheet shows this job's part, in its own material
        copies = int(part.get("quantity", 1)) * quantity
        if job.kind == "fdm":
            settings = PrintSettings()
            record = next(r for r in manifest.files if r["format"] == "stl" and r["part"] == job.part)
            results = slice_copies(manifest.directory / record["filename"], part["size_mm"], machine, material,
                                   out_dir, copies=copies, stl_sha256=record["sha256"], part=job.part,
                                   settings=settings)
            manifest.extra["slicing"] = slicing_record(results, machine, material, quantity, settings)
            per_plate = [({**r.estimates.to_dict(), "copies": r.copies, "plate": index + 1, "plates": len(results),
                           "slicer_s": round(r.slicer_s, 3)}, {"gcode": str(r.gcode)})
                         for index, r in enumerate(results)]
            (estimates, files), plates = per_plate[0], per_plate[1:]
        else:
            from parametric.cam import CamSettings, cam_manifest, cam_record

            settings_cam = CamSettings()
            results = [r for r in cam_manifest(whole, machine, material, out_dir, quantity=quantity,
                                               settings=settings_cam) if r.part == job.part]
            manifest.extra["cam"] = cam_record(results, machine, material, quantity, settings_cam)
            estimates = {"machining_time_s": round(sum(r.time_s * r.copies for r in results), 1),
                         "copies": copies}
            files = {"dxf": [str(r.dxf) for r in results],
                     "gcode": [str(out_dir / p.filename) for r in results for p in r.programs]}
        sheet = write_job_sheet(manifest, out_dir, order_ref=order_id, item_ref=f"{order_id}/{position}",
                                job_url=job_url or f"/staff/manufacturing#job-{job_id}", quantity=quantity,
                                machine=machine_record(machine))
        sheets = {"job_sheet_html": str(sheet.html), **({"job_sheet_pdf": str(sheet.pdf)} if sheet.pdf else {})}
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
    """Send a ready (or already sent) job to its printer; the job's new state, or ``busy``/``deferred``."""
    from parametric.machines import Printer
    from parametric.printers import HostError, PrinterBusy, connector_for

    from . import machines

    job = get(database, job_id)
    if job is None or job.state not in ("ready", "sent") or job.kind != "fdm":
        return job.state if job else "missing"
    printer = machines.get(database, job.machine or "")
    if not isinstance(printer, Printer):
        transition(database, job_id, "failed", last_error=f"the printer {job.machine!r} is no longer set up")
        return "failed"
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


def dispatch(database: Database, *, timeout_s: float = 10.0) -> dict[str, str]:
    """Per printer: resend its due ``sent`` jobs (idempotent), else start its oldest ready job when idle."""
    from parametric.machines import Printer

    from . import machines

    now = utcnow()
    outcomes: dict[str, str] = {}
    for printer in machines.all_machines(database):
        if not isinstance(printer, Printer):
            continue
        with database.session() as session:
            active = session.scalars(select(Job).where(Job.machine == printer.name,
                                                       Job.state.in_(("sent", "printing")))
                                     .order_by(Job.id)).all()
            oldest_ready = session.scalar(select(Job.id).where(Job.machine == printer.name, Job.state == "ready",
                                                               Job.kind == "fdm")
                                          .order_by(Job.created_at, Job.id).limit(1))
        pending = [j for j in active if j.state == "sent"]
        if pending:
            job = pending[0]
            if job.next_attempt_at is None or job.next_attempt_at <= now:
                outcomes[printer.name] = send(database, job.id, timeout_s=timeout_s)
            continue
        if active or oldest_ready is None:
            continue
        outcomes[printer.name] = send(database, oldest_ready, timeout_s=timeout_s)
    return outcomes


def poll(database: Database, *, timeout_s: float = 10.0) -> dict[int, str]:
    """Read progress of every printing job from its host; done when the host counts the file printed."""
    from parametric.machines import Printer
    from parametric.printers import HostError, connector_for

    from . import machines

    now = utcnow()
    with database.session() as session:
        printing = session.scalars(select(Job).where(Job.state == "printing").order_by(Job.id)).all()
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
    """Cancel a job; a job printing on its printer is cancelled there first."""
    from parametric.machines import Printer
    from parametric.printers import HostError, connector_for

    from . import machines

    job = get(database, job_id)
    if job is None:
        return "missing"
    if "cancelled" not in TRANSITIONS[job.state]:
        raise TransitionError(f"a {job.state} job cannot be cancelled")
    if job.state in ("sent", "printing"):
        printer = machines.get(database, job.machine or "")
        if isinstance(printer, Printer):
            connector = connector_for(printer, timeout_s=timeout_s)
            try:
                current = connector.job(host_job_id(job_id))
                if current.state in ("printing", "paused"):
                    connector.cancel()
            except HostError as error:
                raise TransitionError(f"the printer's host did not take the cancel: {error}") from None
    transition(database, job_id, "cancelled", expect=(job.state,))
    return "cancelled"


# -- queue tasks (registered on the app's huey by web.tasks.create_queue) ------------------------------


def register_tasks(huey: Any, database: Database, output_folder: Path) -> tuple[Any, Any]:
    """The ``prepare_job`` task and the periodic ``manufacture`` task (plan, dispatch, poll) on ``huey``."""
    from huey import crontab
    from huey.exceptions import RetryTask

    @huey.task(name="prepare_job")
    def prepare_job(job_id: int) -> str:
        """Slice or toolpath a job and write its job sheet; a failed attempt is tried again with backoff."""
        outcome = prepare(database, output_folder, job_id)
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
