"""Manufacturing in the web app: machines and jobs for staff, as JSON under ``/api/v1/staff`` and as
dashboard pages: ``/staff/manufacturing`` with each machine's queue, live state and progress (polled by
``static/manufacturing.js`` from ``state.json``), and ``/staff/manufacturing/machines`` to add, edit and
remove printers and routers.

Views are thin: the work is in :mod:`web.machines`, :mod:`web.jobs` and the core's
:func:`parametric.machines.printer_record` / :func:`~parametric.machines.router_record`, which read the
same compact specs as ``parametric machines add``; :func:`parametric.machines.machine_from_dict` is the
only validator.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, flash, g, redirect, render_template, request, send_file, url_for
from sqlalchemy import func, select

from parametric import FieldError, ValidationError
from parametric.machines import (
    DIALECTS,
    FEEDS_SPEC,
    GCODE_FLAVORS,
    STOCK_SPEC,
    TOOL_SPEC,
    TOOL_TYPES,
    Machine,
    Printer,
    Router,
    printer_record,
    public_record,
    router_record,
    router_specs,
)
from parametric.materials import materials
from parametric.units import format_duration, format_number

from . import jobs, machines
from .errors import errors_response, json_errors
from .models import Job
from .services import services
from .staff.auth import staff_required
from .staff.dashboard import login_required

log = logging.getLogger(__name__)

api_bp = Blueprint("manufacturing_api", __name__, url_prefix="/api/v1/staff")
bp = Blueprint("manufacturing", __name__, url_prefix="/staff/manufacturing")
MAX_ID = 2**31 - 1


def init_app(app: Flask) -> None:
    """Exempt the API from CSRF, like the other staff endpoints (HTTP basic auth), and document it in
    the OpenAPI document (``create_app`` registers both blueprints)."""
    from .inputs import MULTILINE_FORM_FIELDS
    from .openapi import add_to_openapi
    from .pages import csrf

    csrf.exempt(api_bp)
    MULTILINE_FORM_FIELDS.update(SPEC_LISTS)
    add_to_openapi(app, openapi_paths())


# -- machines ------------------------------------------------------------------------------------


@api_bp.get("/machines")
@staff_required
def list_machines() -> Any:
    return {"machines": [public_record(m) for m in machines.all_machines(services().database)]}


@api_bp.post("/machines")
@staff_required
def add_machine() -> Any:
    """Store a machine given as the core's record (``kind`` printer or router); ``?replace=1`` overwrites."""
    body = request.get_json(silent=True)
    if body is None:
        return errors_response([FieldError("", "send the machine as a JSON object")])
    try:
        machine = machines.parse(body)
        machines.add(services().database, machine, replace=request.args.get("replace") in ("1", "true"))
    except machines.MachineExists as error:
        return errors_response(error.errors, 409)
    except ValidationError as error:
        return errors_response(error.errors)
    log.info("staff %s added machine %s", g.staff_user, machine.name)
    return public_record(machine), 201


@api_bp.delete("/machines/<name>")
@staff_required
def remove_machine(name: str) -> Any:
    """Remove a machine; 409 while it has a job sent to it or in progress on it (see ``jobs.remove_machine``)."""
    try:
        waiting = jobs.remove_machine(services().database, name)
    except jobs.MachineInUse as error:
        return json_errors(409, str(error), "name")
    if waiting is None:
        return json_errors(404, "no machine with this name")
    log.info("staff %s removed machine %s (%s jobs waiting)", g.staff_user, name, waiting)
    return "", 204


# -- jobs ----------------------------------------------------------------------------------------


@api_bp.get("/jobs")
@staff_required
def list_jobs() -> Any:
    """Jobs, oldest first; ``?state=`` and ``?machine=`` filter."""
    state, machine = request.args.get("state"), request.args.get("machine")
    if state is not None and state not in jobs.JOB_STATES:
        return errors_response([FieldError("state", f"one of: {', '.join(jobs.JOB_STATES)}")])
    query = select(Job).order_by(Job.id)
    if state is not None:
        query = query.where(Job.state == state)
    if machine is not None:
        query = query.where(Job.machine == machine)
    with services().database.session() as session:
        found = session.scalars(query.limit(500)).all()
    return {"jobs": [jobs.describe(job) for job in found]}


@api_bp.get("/jobs/<int(max=2147483647):job_id>")
@staff_required
def show_job(job_id: int) -> Any:
    job = jobs.get(services().database, job_id) if job_id <= MAX_ID else None
    if job is None:
        return json_errors(404, "no job with this id")
    return jobs.describe(job)


def act(job_id: int, action: str, reason: str | None = None) -> tuple[str | None, str]:
    """Do a staff action on a job: (error message or None, outcome); ``reason``: a cancel's words to the customer."""
    database = services().database
    job = jobs.get(database, job_id) if job_id <= MAX_ID else None
    if job is None:
        return "missing", ""
    try:
        if action == "send":
            if job.batch_id is not None:
                return f"the job is made in batch {job.batch_id}: send the batch, or take the job out of it", ""
            if job.state not in ("ready", "sent"):
                return f"only a ready (or sent) job can be sent (this one is {job.state})", ""
            outcome = jobs.send(database, job_id)
            if outcome == "busy":
                machine = "router" if job.kind == "cnc" else "printer"
                return f"the {machine} is busy; the job stays ready and goes when it is free", outcome
            if outcome == "deferred":
                later = jobs.get(database, job_id)
                return None, f"not delivered yet, trying again later ({jobs.delivery_error(later) if later else ''})"
            return None, outcome
        if action == "cancel":
            outcome = jobs.cancel(database, job_id, reason=reason)
            later = jobs.get(database, job_id)
            if job.kind == "cnc" and later is not None and later.last_error:
                return None, f"{outcome}; {later.last_error}"  # the router may be cutting: say so
            return None, outcome
        if action == "retry":
            if job.state not in ("failed", "cancelled"):
                return f"only a failed or cancelled job can be retried (this one is {job.state})", ""
            if not jobs.transition(database, job_id, "queued", expect=(job.state,)):
                return "the job changed meanwhile; look again", ""
            if jobs.reroute(database, services().generation.output_folder, job_id) is None:
                failed = jobs.get(database, job_id)
                return f"no machine can make it now: {failed.last_error if failed else 'the job is gone'}", ""
            prepare_job = services().queue.prepare_job
            if prepare_job is not None:
                prepare_job(job_id)
            return None, "queued"
        if action == "done":
            return None, jobs.finish(database, job_id)
    except jobs.TransitionError as error:
        return str(error), ""
    return f"unknown action {action!r}", ""


@api_bp.post("/jobs/<int(max=2147483647):job_id>/send", defaults={"action": "send"})
@api_bp.post("/jobs/<int(max=2147483647):job_id>/cancel", defaults={"action": "cancel"})
@api_bp.post("/jobs/<int(max=2147483647):job_id>/retry", defaults={"action": "retry"})
@api_bp.post("/jobs/<int(max=2147483647):job_id>/done", defaults={"action": "done"})
@staff_required
def job_action(job_id: int, action: str) -> Any:
    """Staff actions: ``send`` now (to the printer, into the router's hot folder, or handed over for download),
    ``cancel`` (on the printer too; programs waiting in a hot folder are taken back), ``retry`` a failed job,
    mark ``done``. A cancel may say why in ``{"reason": ...}``: the customer's tracking page shows it."""
    body = request.get_json(silent=True) if request.content_length else None
    reason = body.get("reason") if isinstance(body, dict) and isinstance(body.get("reason"), str) else None
    error, _outcome = act(job_id, action, reason)
    if error == "missing":
        return json_errors(404, "no job with this id")
    if error is not None:
        return json_errors(409, error, "state")
    log.info("staff %s: %s job %s", g.staff_user, action, job_id)
    job = jobs.get(services().database, job_id)
    assert job is not None
    return jobs.describe(job)


def _output_folder() -> Path:
    return Path(services().config["OUTPUT_FOLDER"])


def _send_download(job_id: int, name: str) -> Response | None:
    """The job's file called ``name`` as an attachment; ``None`` for an unknown job or a file it does not have."""
    job = jobs.get(services().database, job_id) if job_id <= MAX_ID else None
    order_id = jobs.order_ids(services().database, [job]).get(job.id) if job is not None else None
    found = jobs.download(job, _output_folder(), name, order_id) if job is not None else None
    if found is None or job is None:
        return None
    source: Any = found.path
    if found.recorded is not None:  # the handle checked (size, SHA-256) is the one sent
        from .orders.downloads import verified_file

        source = verified_file(found.path, *found.recorded)
        if source is None:
            message = jobs.damaged(services().database, job, found, services().queue.prepare_job)
            response = json_errors(503, message, "file")
            response.headers["Retry-After"] = "30"
            return response
    response = send_file(source, mimetype=found.mimetype, as_attachment=True, download_name=found.download_name,
                         max_age=0, etag=found.recorded[1] if found.recorded else True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@api_bp.get("/jobs/<int(max=2147483647):job_id>/files")
@staff_required
def list_job_files(job_id: int) -> Any:
    """The job's files staff may download (G-code, DXF, job sheet), each with its URL."""
    job = jobs.get(services().database, job_id) if job_id <= MAX_ID else None
    if job is None:
        return json_errors(404, "no job with this id")
    order_id = jobs.order_ids(services().database, [job]).get(job.id)
    return {"files": [{"name": d.name, "kind": d.kind, "size_bytes": d.size_bytes, "content_type": d.mimetype,
                       "download_name": d.download_name,
                       "url": url_for("manufacturing_api.download_job_file", job_id=job_id, name=d.name)}
                      for d in jobs.downloads(job, _output_folder(), order_id)]}


@api_bp.get("/jobs/<int(max=2147483647):job_id>/files/<name>")
@staff_required
def download_job_file(job_id: int, name: str) -> Any:
    """One file of a job: only files recorded for it, inside the output folder."""
    response = _send_download(job_id, name)
    if response is None:
        return json_errors(404, "no such file for this job")
    log.info("staff %s downloaded %s of job %s", g.staff_user, name, job_id)
    return response


# -- the dashboard page --------------------------------------------------------------------------

FINISHED = ("done", "failed", "cancelled")
ACTIVE = ("sent", "printing")
"""Jobs a machine has taken (or is being given): removing it would lose track of them."""
WAITING = ("queued", "slicing", "ready")


def _open_jobs(session: Any) -> Sequence[Job]:
    return session.scalars(select(Job).where(Job.state.notin_(FINISHED)).order_by(Job.id)).all()


def _layout(fleet: list[Machine], open_jobs: Sequence[Job]) -> str:
    """A fingerprint of what the page's sections, rows and forms are made of: the machines, and the unfinished
    jobs with their machine, files and estimates. The page's script reloads the page when it changes (a new
    job, a job finished, a job sliced); states, progress and errors it updates in place."""
    rows = [[job.id, job.machine, job.files, job.estimates] for job in open_jobs]
    text = json.dumps([[public_record(m) for m in fleet], rows], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@bp.get("")
@login_required
def queues() -> Any:
    """Each machine with its queue (jobs not yet finished, then the last finished ones)."""
    database = services().database
    fleet = machines.all_machines(database)
    with database.session() as session:
        open_jobs = _open_jobs(session)
        finished = session.scalars(select(Job).where(Job.state.in_(FINISHED))
                                   .order_by(Job.finished_at.desc(), Job.id.desc()).limit(50)).all()
    names = {m.name for m in fleet}
    by_machine: dict[str | None, list[Any]] = {}
    for job in open_jobs:
        by_machine.setdefault(job.machine if job.machine in names else None, []).append(job)
    output = _output_folder()
    orders = jobs.order_ids(database, [*open_jobs, *finished])
    files = {job.id: jobs.downloads(job, output, orders.get(job.id)) for job in [*open_jobs, *finished]}
    return render_template("staff/manufacturing.html", machines=fleet, by_machine=by_machine, finished=finished,
                           unrouted=by_machine.get(None, []), files=files, state_label=jobs.state_label,
                           not_sent=jobs.not_sent, duration=format_duration,
                           delivery={m.name: m.delivery for m in fleet if isinstance(m, Router)},
                           hosted={m.name for m in fleet if getattr(m, "host", None) is not None},
                           layout=_layout(fleet, open_jobs))


@bp.get("/state.json")
@login_required
def live_state() -> Any:
    """What ``static/manufacturing.js`` polls: each unfinished job's state, label and progress, and the
    page's layout fingerprint (:func:`_layout`)."""
    database = services().database
    fleet = machines.all_machines(database)
    with database.session() as session:
        open_jobs = _open_jobs(session)
    return {"layout": _layout(fleet, open_jobs),
            "jobs": [{"id": job.id, "machine": job.machine, "kind": job.kind, "state": job.state,
                      "label": jobs.state_label(job), "progress": round(job.progress or 0.0, 1),
                      "not_sent": jobs.not_sent(job),
                      "last_error": job.last_error or ""} for job in open_jobs]}, 200, {"Cache-Control": "no-store"}


@bp.get("/jobs/<int(max=2147483647):job_id>/files/<name>")
@login_required
def job_file(job_id: int, name: str) -> Any:
    response = _send_download(job_id, name)
    if response is None:
        abort(404, description="This job has no such file.")
    log.info("staff %s downloaded %s of job %s", g.staff_user, name, job_id)
    return response


@bp.post("/jobs/<int(max=2147483647):job_id>/<any(send, cancel, retry, done):action>")
@login_required
def job_form_action(job_id: int, action: str) -> Any:
    error, outcome = act(job_id, action, request.form.get("reason"))
    if error == "missing":
        flash(f"There is no job {job_id}.", "error")
    elif error is not None:
        flash(f"Job {job_id}: {error}.", "error")
    else:
        log.info("staff %s: %s job %s", g.staff_user, action, job_id)
        flash(f"Job {job_id}: {outcome}.", "success")
    return redirect(url_for("manufacturing.queues"), code=303)


# -- machines on the dashboard: add, edit (replace), remove ------------------------------------------

FORM_FIELDS: dict[str, dict[str, str]] = {
    "printer": {"name": "name", "build_volume_mm": "build_volume", "nozzle_diameter_mm": "nozzle",
                "materials": "materials", "filament_diameter_mm": "filament", "gcode_flavor": "flavor"},
    "router": {"name": "name", "bed_mm": "bed", "dialect": "dialect", "tools": "tools", "stock": "stock",
               "feeds": "feeds", "delivery.method": "delivery", "safe_height_mm": "safe_height",
               "rapid_mm_min": "rapid"},
}
"""Where each field of the core's record is typed on the form; the host's settings are placed from its
connector's declared fields (:func:`_host_form_fields`); a field not named is shown above the form."""
HOST_KEYS = {"printer": ("host", "kind"), "router": ("delivery", "method")}
"""Where a machine's record keeps its host, and its protocol within it."""
SPEC_LISTS = ("tools", "stock", "feeds")
"""The router's textareas: one spec a line."""
ERROR_PATH = re.compile(r"^(?P<head>[a-z_]+)(?:\[(?P<index>\d+)\])?(?:\.(?P<rest>.+))?$")


@dataclass(frozen=True)
class HostSetting:
    """One connection setting of a host on the form: its input's name, label, help, input type."""

    name: str
    setting: str
    label: str
    help: str
    input_type: str
    secret: bool


@dataclass(frozen=True)
class HostChoice:
    """A connector as the machine form offers it: its protocol, label, description and settings."""

    protocol: str
    label: str
    description: str
    settings: tuple[HostSetting, ...]


def _sentence(text: str) -> str:
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else ""


def host_choices(kind: str, stored: Machine | None = None) -> list[HostChoice]:
    """The connectors a machine of ``kind`` may be driven by, each with the settings it declares, for the form.
    A secret's help says whether ``stored`` has one (kept when its field is left empty, never shown)."""
    from parametric.hosts import connectors

    connection = stored.connection() if stored is not None else None
    choices = []
    for protocol, cls in connectors(kind).items():
        settings = []
        for index, setting in enumerate(cls.FIELDS):
            help_text = _sentence(setting.help)
            if setting.secret:
                kept = (connection is not None and connection.protocol == protocol
                        and setting.name in connection.settings)
                help_text = ("A key is stored: leave this empty to keep it, or type a new one. It is never shown."
                             if kept else f"{help_text} It is stored, and never shown again.")
            elif index == 0 and kind == "printer":
                help_text += " Leave empty for a printer without a host (its G-code is downloaded)."
            input_type = "password" if setting.secret else "url" if setting.kind == "url" else "text"
            settings.append(HostSetting(cls.form_name(setting), setting.name, setting.label, help_text.strip(),
                                        input_type, setting.secret))
        choices.append(HostChoice(protocol, cls.label, cls.description, tuple(settings)))
    return choices


def _host_values(kind: str, machine: Machine | None) -> dict[str, str]:
    """The host settings' inputs, filled in from ``machine``'s host: never its secrets."""
    connection = machine.connection() if machine is not None else None
    return {setting.name: (connection.settings.get(setting.setting, "")
                           if connection is not None and connection.protocol == choice.protocol else "")
            for choice in host_choices(kind) for setting in choice.settings if not setting.secret}


def _blank(kind: str) -> dict[str, Any]:
    """An empty form, with the record's defaults."""
    if kind == "printer":
        return {"name": "", "build_volume": "", "nozzle": "0.4", "materials": [], "filament": "1.75",
                "flavor": "marlin2", **_host_values(kind, None)}
    return {"name": "", "bed": "", "dialect": "grbl", "tools": "", "stock": "", "feeds": "", "delivery": "download",
            "safe_height": "5", "rapid": "5000", **_host_values(kind, None)}


def _shown(machine: Machine) -> dict[str, Any]:
    """A stored machine as its form shows it, to edit; never its host's secrets."""
    if isinstance(machine, Printer):
        return {"name": machine.name, "build_volume": "x".join(format_number(v) for v in machine.build_volume_mm),
                "nozzle": format_number(machine.nozzle_diameter_mm), "materials": list(machine.materials),
                "filament": format_number(machine.filament_diameter_mm), "flavor": machine.gcode_flavor,
                **_host_values("printer", machine)}
    specs = router_specs(machine)
    return {"name": machine.name, "bed": "x".join(format_number(v) for v in machine.bed_mm), "dialect": machine.dialect,
            **{key: "\n".join(specs[key]) for key in SPEC_LISTS}, "delivery": machine.delivery.method,
            "safe_height": format_number(machine.safe_height_mm), "rapid": format_number(machine.rapid_mm_min),
            **_host_values("router", machine)}


def _submitted(kind: str) -> dict[str, Any]:
    """The form's values as sent (secrets are read apart: they are never shown again)."""
    form = request.form
    hosted = [name for name in _host_values(kind, None)]
    if kind == "printer":
        values: dict[str, Any] = {key: form.get(key, "").strip()
                                  for key in ("name", "build_volume", "nozzle", "filament", "flavor", *hosted)}
        values["materials"] = form.getlist("materials")
        return values
    values = {key: form.get(key, "").strip()
              for key in ("name", "bed", "dialect", "delivery", "safe_height", "rapid", *hosted)}
    values.update({key: form.get(key, "") for key in SPEC_LISTS})
    return values


def _lines(text: str) -> list[tuple[int, str]]:
    """The specs of a textarea: (line number, spec) of each line that is not blank."""
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def _host_settings(kind: str, protocol: str, values: dict[str, Any], stored: Machine | None) -> dict[str, str]:
    """The settings of the ``protocol`` host typed on the form; a secret left empty keeps the stored one."""
    connection = stored.connection() if stored is not None else None
    settings = {}
    for choice in host_choices(kind):
        if choice.protocol != protocol:
            continue
        for setting in choice.settings:
            value = request.form.get(setting.name, "").strip() if setting.secret else values.get(setting.name, "")
            if (setting.secret and not value and connection is not None and connection.protocol == protocol):
                value = connection.settings.get(setting.setting, "")
            settings[setting.setting] = value
    return settings


def _typed_host(kind: str, values: dict[str, Any]) -> str | None:
    """The printer host whose settings are typed in (any of them, secrets too); none typed: no host. Settings of
    several hosts typed at once are refused."""
    typed = [choice.protocol for choice in host_choices(kind)
             if any((request.form.get(s.name, "") if s.secret else values.get(s.name, "")).strip()
                    for s in choice.settings)]
    if len(typed) > 1:
        raise ValidationError([FieldError("host", f"settings of {len(typed)} print hosts are filled in "
                                                  f"({', '.join(typed)}); fill in one")])
    return typed[0] if typed else None


def _record(kind: str, values: dict[str, Any], stored: Machine | None) -> dict[str, Any]:
    """The core's record from the form, built by the same functions as ``parametric machines add``."""
    if kind == "printer":
        protocol = _typed_host(kind, values)
        values["host"] = protocol or ""
        return printer_record(values["name"], build_volume=values["build_volume"] or None, nozzle_mm=values["nozzle"],
                              materials=values["materials"], filament_mm=values["filament"],
                              gcode_flavor=values["flavor"], host=protocol,
                              host_settings=_host_settings(kind, protocol, values, stored) if protocol else None)
    specs = {key: [spec for _, spec in _lines(values[key])] for key in SPEC_LISTS}
    protocol = values["delivery"] or None
    values["host"] = protocol or ""
    return router_record(values["name"], bed=values["bed"] or None, dialect=values["dialect"], delivery=protocol,
                         delivery_settings=_host_settings(kind, protocol, values, stored) if protocol else None,
                         safe_height_mm=values["safe_height"], rapid_mm_min=values["rapid"], **specs)


def _host_form_fields(kind: str, protocol: str) -> dict[str, str]:
    """Where each setting of the ``protocol`` host is typed (``host.url`` → the input its connector names), and
    ``host`` itself at its first setting."""
    key, _ = HOST_KEYS[kind]
    placed: dict[str, str] = {}
    for choice in host_choices(kind):
        if choice.protocol == protocol and choice.settings:
            placed[key] = placed.get(key, choice.settings[0].name)
            placed.update({f"{key}.{s.setting}": s.name for s in choice.settings})
    return placed


def _placed(kind: str, problems: list[FieldError], values: dict[str, Any]) -> dict[str, list[str]]:
    """Each problem under the form field it belongs to (``""``: the form as a whole); a problem with one spec
    of a textarea names its line."""
    fields = {**_host_form_fields(kind, values.get("host", "")), **FORM_FIELDS[kind]}
    placed: dict[str, list[str]] = {}
    for problem in problems:
        path = ERROR_PATH.match(problem.field)
        head, index, rest = (path["head"], path["index"], path["rest"]) if path else ("", None, None)
        field = (fields.get(f"{head}.{rest}") if rest else None) or fields.get(head, "")
        message = problem.message
        if head in SPEC_LISTS and index is not None and kind == "router":
            lines = _lines(values[head])
            where = f"line {lines[int(index)][0]}" if int(index) < len(lines) else f"entry {int(index) + 1}"
            message = f"{where}: {f'{rest}: ' if rest else ''}{message}"
        elif field == "":
            message = f"{problem.field}: {message}" if problem.field else message
        placed.setdefault(field, []).append(message)
    return placed


def _machine_form(kind: str, values: dict[str, Any], *, stored: Machine | None = None,
                  errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    return render_template(
        "staff/machine_form.html", kind=kind, values=values, errors=errors or {}, stored=stored,
        hosts=host_choices(kind, stored),
        fdm=[m for m in materials().values() if m.process == "fdm"],
        cnc=[m for m in materials().values() if m.process == "cnc"], flavors=GCODE_FLAVORS, dialects=DIALECTS,
        tool_types=TOOL_TYPES, specs={"tools": TOOL_SPEC, "stock": STOCK_SPEC, "feeds": FEEDS_SPEC}), status


def _save(kind: str, stored: Machine | None) -> Any:
    """Add (``stored`` is None) or replace a machine from the form; the form again with every problem."""
    values = _submitted(kind)
    if stored is not None:
        values["name"] = stored.name  # its jobs name it: a machine keeps its name (add a new one to rename)
    database = services().database
    try:
        machine = machines.parse(_record(kind, values, stored))
        machines.add(database, machine, replace=stored is not None)
    except machines.MachineExists as error:
        return _machine_form(kind, values, stored=stored, errors=_placed(kind, error.errors, values), status=409)
    except ValidationError as error:
        return _machine_form(kind, values, stored=stored, errors=_placed(kind, error.errors, values), status=422)
    log.info("staff %s %s machine %s", g.staff_user, "replaced" if stored else "added", machine.name)
    flash(f"{'Saved' if stored else 'Added'} {machine.describe()}.", "success")
    return redirect(url_for("manufacturing.machine_list"), code=303)


def _job_counts(database: Any) -> dict[str, dict[str, int]]:
    """Per machine, how many of its jobs are ``active`` (sent, printing or cutting) and ``waiting``."""
    with database.session() as session:
        rows = session.execute(select(Job.machine, Job.state, func.count())
                               .where(Job.state.in_((*ACTIVE, *WAITING)))
                               .group_by(Job.machine, Job.state)).all()
    counts: dict[str, dict[str, int]] = {}
    for machine, state, count in rows:
        entry = counts.setdefault(machine, {"active": 0, "waiting": 0})
        entry["active" if state in ACTIVE else "waiting"] += count
    return counts


def _jobs(count: int) -> str:
    return f"{count} job{'' if count == 1 else 's'}"


@bp.get("/machines")
@login_required
def machine_list() -> Any:
    database = services().database
    return render_template("staff/machines.html", machines=machines.all_machines(database),
                           counts=_job_counts(database))


@bp.route("/machines/new/<any(printer, router):kind>", methods=["GET", "POST"])
@login_required
def new_machine(kind: str) -> Any:
    if request.method == "GET":
        return _machine_form(kind, _blank(kind))
    return _save(kind, None)


@bp.route("/machines/<name>/edit", methods=["GET", "POST"])
@login_required
def edit_machine(name: str) -> Any:
    """The machine's form, filled in; sending it replaces the machine (an empty API key keeps the stored one)."""
    stored = machines.get(services().database, name)
    if stored is None:
        abort(404, description="There is no machine with this name.")
    if request.method == "GET":
        return _machine_form(stored.kind, _shown(stored), stored=stored)
    return _save(stored.kind, stored)


@bp.post("/machines/<name>/remove")
@login_required
def remove_machine_form(name: str) -> Any:
    """Remove a machine, unless it has a job sent to it or in progress on it: the app would lose track of
    that job (no progress, no cancelling on the printer), so staff finish or cancel it first. Jobs only
    waiting for the machine stay listed and fail when prepared or sent; a retry routes them to a machine that
    can make them. The page says so before and after."""
    try:
        waiting = jobs.remove_machine(services().database, name)
    except jobs.MachineInUse as error:
        flash(f"Not removed: {error}.", "error")
        return redirect(url_for("manufacturing.machine_list"), code=303)
    if waiting is None:
        flash(f"There is no machine called {name}.", "error")
        return redirect(url_for("manufacturing.machine_list"), code=303)
    log.info("staff %s removed machine %s", g.staff_user, name)
    flash(f"Removed {name}." + (f" Its {_jobs(waiting)} waiting in the queue can no longer be made there: they "
                                "fail when prepared or sent; retry them to route them to another machine."
                                if waiting else ""), "success")
    return redirect(url_for("manufacturing.machine_list"), code=303)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the manufacturing endpoints (given to ``web.openapi.add_to_openapi``)."""
    staff = [{"staff": []}]

    def errors(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Errors"}}}}

    def ok(description: str = "OK") -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}

    unauthorized = errors("staff login required")
    refusals = {"401": unauthorized, "403": errors("sent from another site's page (Origin or Referer)"),
                "429": {**errors("too many wrong staff passwords: locked out for a while"),
                        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}}}
    not_json = {"415": errors("a body that is not declared JSON (Content-Type: application/json)")}
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1,
                                                                                  "maximum": MAX_ID}}
    paths: dict[str, Any] = {
        "/api/v1/staff/machines": {
            "get": {"operationId": "staffListMachines", "summary": "Every printer and router (no API keys)",
                    "security": staff, "responses": {"200": ok(), **refusals}},
            "post": {"operationId": "staffAddMachine", "summary": "Add a machine given as the core's record",
                     "security": staff,
                     "parameters": [{"name": "replace", "in": "query", "required": False,
                                     "schema": {"type": "string", "enum": ["1", "true"]}}],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object"}}}},
                     "responses": {"201": ok("the machine"), **refusals, **not_json,
                                   "409": errors("the name is taken"), "422": errors("invalid record")}}},
        "/api/v1/staff/machines/{name}": {"delete": {
            "operationId": "staffRemoveMachine", "summary": "Remove a machine", "security": staff,
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"204": {"description": "removed"}, **refusals,
                          "404": errors("no such machine"),
                          "409": errors("it has jobs sent to it or in progress on it")}}},
        "/api/v1/staff/jobs": {"get": {
            "operationId": "staffListJobs", "summary": "Manufacturing jobs, oldest first", "security": staff,
            "parameters": [{"name": "state", "in": "query", "required": False,
                            "schema": {"type": "string", "enum": list(jobs.JOB_STATES)}},
                           {"name": "machine", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {"200": ok(), **refusals, "422": errors("bad query parameters")}}},
        "/api/v1/staff/jobs/{job_id}": {"get": {
            "operationId": "staffShowJob", "summary": "One job: state, progress, estimates, files",
            "security": staff, "parameters": [job_id],
            "responses": {"200": ok(), **refusals, "404": errors("no such job")}}},
        "/api/v1/staff/jobs/{job_id}/files": {"get": {
            "operationId": "staffListJobFiles", "summary": "A job's files to download: G-code, DXF, job sheet",
            "security": staff, "parameters": [job_id],
            "responses": {"200": {"description": "name, kind, size, content type and URL of each file", "content": {
                "application/json": {"schema": {
                    "type": "object", "required": ["files"], "properties": {"files": {"type": "array", "items": {
                        "type": "object", "required": ["name", "kind", "size_bytes", "content_type", "url"],
                        "properties": {"name": {"type": "string"},
                                       "kind": {"type": "string", "enum": [k for k, _ in jobs.DOWNLOAD_KINDS]},
                                       "size_bytes": {"type": "integer", "minimum": 0},
                                       "content_type": {"type": "string"}, "url": {"type": "string"},
                                       "download_name": {"type": "string", "description": "the name it is saved "
                                                         "under: job, order and part (job-12_order-1a2b3c4d_side.nc)"
                                                         }}}}}}}}},
                          **refusals, "404": errors("no such job")}}},
        "/api/v1/staff/jobs/{job_id}/files/{name}": {"get": {
            "operationId": "staffDownloadJobFile",
            "summary": "One file of a job (only files recorded for it, inside the output folder)", "security": staff,
            "parameters": [job_id, {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the file, as an attachment", "content": {
                mimetype: {"schema": {"type": "string", "format": "binary"}}
                for mimetype in sorted({*jobs.MIMETYPES.values(), "application/octet-stream"})}},
                **refusals, "404": errors("no such job or file")}}},
    }
    for action, summary in (("send", "Send a ready job now: to its printer, into its router's hot folder, or "
                                     "handed over (a router fed by download)"),
                            ("cancel", "Cancel a job (on the printer too; programs waiting in a hot folder are "
                                       "taken back)"),
                            ("retry", "Queue a failed or cancelled job again"),
                            ("done", "Mark a job done (programs still waiting in a hot folder are taken back)")):
        paths[f"/api/v1/staff/jobs/{{job_id}}/{action}"] = {"post": {
            "operationId": f"staff{action.title()}Job", "summary": summary, "security": staff,
            "parameters": [job_id],
            "responses": {"200": ok("the job"), **refusals, **not_json, "404": errors("no such job"),
                          "409": errors("not allowed in the job's state")}}}
    return paths
