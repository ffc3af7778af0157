"""Manufacturing in the web app: machines and jobs for staff, as JSON under ``/api/v1/staff`` and as a
dashboard page, ``/staff/manufacturing``, with each machine's queue, live state and progress.

Views are thin: the work is in :mod:`web.machines` and :mod:`web.jobs`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, flash, g, redirect, render_template, request, send_file, url_for
from sqlalchemy import select

from parametric import FieldError, ValidationError
from parametric.machines import Router

from . import jobs, json_errors, machines
from .api import errors_response, services
from .auth import staff_required
from .dashboard import login_required

log = logging.getLogger(__name__)

api_bp = Blueprint("manufacturing_api", __name__, url_prefix="/api/v1/staff")
bp = Blueprint("manufacturing", __name__, url_prefix="/staff/manufacturing")
MAX_ID = 2**31 - 1


def init_app(app: Flask) -> None:
    """Register the API (CSRF-exempt like the other staff endpoints: HTTP basic auth) and the page."""
    from .openapi import add_to_openapi
    from .pages import csrf

    app.register_blueprint(api_bp)
    app.register_blueprint(bp)
    csrf.exempt(api_bp)
    add_to_openapi(app, openapi_paths())


# -- machines ------------------------------------------------------------------------------------


@api_bp.get("/machines")
@staff_required
def list_machines() -> Any:
    return {"machines": [machines.public(m) for m in machines.all_machines(services().database)]}


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
    return machines.public(machine), 201


@api_bp.delete("/machines/<name>")
@staff_required
def remove_machine(name: str) -> Any:
    if not machines.remove(services().database, name):
        return json_errors(404, "no machine with this name")
    log.info("staff %s removed machine %s", g.staff_user, name)
    return "", 204


# -- jobs ----------------------------------------------------------------------------------------


@api_bp.get("/jobs")
@staff_required
def list_jobs() -> Any:
    """Jobs, oldest first; ``?state=`` and ``?machine=`` filter."""
    state, machine = request.args.get("state"), request.args.get("machine")
    if state is not None and state not in jobs.JOB_STATES:
        return errors_response([FieldError("state", f"one of: {', '.join(jobs.JOB_STATES)}")])
    query = select(jobs.Job).order_by(jobs.Job.id)
    if state is not None:
        query = query.where(jobs.Job.state == state)
    if machine is not None:
        query = query.where(jobs.Job.machine == machine)
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


def act(job_id: int, action: str) -> tuple[str | None, str]:
    """Do a staff action on a job: (error message or None, outcome)."""
    database = services().database
    job = jobs.get(database, job_id) if job_id <= MAX_ID else None
    if job is None:
        return "missing", ""
    try:
        if action == "send":
            if job.state not in ("ready", "sent"):
                return f"only a ready (or sent) job can be sent (this one is {job.state})", ""
            outcome = jobs.send(database, job_id)
            if outcome == "busy":
                machine = "router" if job.kind == "cnc" else "printer"
                return f"the {machine} is busy; the job stays ready and goes when it is free", outcome
            if outcome == "deferred":
                later = jobs.get(database, job_id)
                return None, f"not delivered yet, trying again later ({later.last_error if later else ''})"
            return None, outcome
        if action == "cancel":
            outcome = jobs.cancel(database, job_id)
            later = jobs.get(database, job_id)
            if job.kind == "cnc" and later is not None and later.last_error:
                return None, f"{outcome}; {later.last_error}"  # the router may be cutting: say so
            return None, outcome
        if action == "retry":
            if job.state not in ("failed", "cancelled"):
                return f"only a failed or cancelled job can be retried (this one is {job.state})", ""
            if not jobs.transition(database, job_id, "queued", expect=(job.state,)):
                return "the job changed meanwhile; look again", ""
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
    mark ``done``."""
    error, _outcome = act(job_id, action)
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
    found = jobs.download(job, _output_folder(), name) if job is not None else None
    if found is None:
        return None
    response = send_file(found.path, mimetype=found.mimetype, as_attachment=True, download_name=found.name,
                         max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@api_bp.get("/jobs/<int(max=2147483647):job_id>/files")
@staff_required
def list_job_files(job_id: int) -> Any:
    """The job's files staff may download (G-code, DXF, job sheet), each with its URL."""
    job = jobs.get(services().database, job_id) if job_id <= MAX_ID else None
    if job is None:
        return json_errors(404, "no job with this id")
    return {"files": [{"name": d.name, "kind": d.kind, "size_bytes": d.size_bytes, "content_type": d.mimetype,
                       "url": url_for("manufacturing_api.download_job_file", job_id=job_id, name=d.name)}
                      for d in jobs.downloads(job, _output_folder())]}


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


@bp.get("")
@login_required
def queues() -> Any:
    """Each machine with its queue (jobs not yet finished, then the last finished ones)."""
    database = services().database
    fleet = machines.all_machines(database)
    with database.session() as session:
        open_jobs = session.scalars(select(jobs.Job).where(jobs.Job.state.notin_(("done", "failed", "cancelled")))
                                    .order_by(jobs.Job.id)).all()
        finished = session.scalars(select(jobs.Job).where(jobs.Job.state.in_(("done", "failed", "cancelled")))
                                   .order_by(jobs.Job.finished_at.desc(), jobs.Job.id.desc()).limit(50)).all()
    by_machine: dict[str | None, list[Any]] = {}
    for job in open_jobs:
        by_machine.setdefault(job.machine, []).append(job)
    output = _output_folder()
    files = {job.id: jobs.downloads(job, output) for job in [*open_jobs, *finished]}
    return render_template("staff/manufacturing.html", machines=fleet, by_machine=by_machine, finished=finished,
                           unrouted=by_machine.get(None, []), files=files, state_label=jobs.state_label,
                           delivery={m.name: m.delivery for m in fleet if isinstance(m, Router)})


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
    error, outcome = act(job_id, action)
    if error == "missing":
        flash(f"There is no job {job_id}.", "error")
    elif error is not None:
        flash(f"Job {job_id}: {error}.", "error")
    else:
        log.info("staff %s: %s job %s", g.staff_user, action, job_id)
        flash(f"Job {job_id}: {outcome}.", "success")
    return redirect(url_for("manufacturing.queues"), code=303)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the manufacturing endpoints (given to ``web.openapi.add_to_openapi``)."""
    staff = [{"staff": []}]

    def errors(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Errors"}}}}

    def ok(description: str = "OK") -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}

    unauthorized = errors("staff login required")
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1,
                                                                                  "maximum": MAX_ID}}
    paths: dict[str, Any] = {
        "/api/v1/staff/machines": {
            "get": {"operationId": "staffListMachines", "summary": "Every printer and router (no API keys)",
                    "security": staff, "responses": {"200": ok(), "401": unauthorized}},
            "post": {"operationId": "staffAddMachine", "summary": "Add a machine given as the core's record",
                     "security": staff,
                     "parameters": [{"name": "replace", "in": "query", "required": False,
                                     "schema": {"type": "string", "enum": ["1", "true"]}}],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object"}}}},
                     "responses": {"201": ok("the machine"), "401": unauthorized,
                                   "409": errors("the name is taken"), "422": errors("invalid record")}}},
        "/api/v1/staff/machines/{name}": {"delete": {
            "operationId": "staffRemoveMachine", "summary": "Remove a machine", "security": staff,
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"204": {"description": "removed"}, "401": unauthorized,
                          "404": errors("no such machine")}}},
        "/api/v1/staff/jobs": {"get": {
            "operationId": "staffListJobs", "summary": "Manufacturing jobs, oldest first", "security": staff,
            "parameters": [{"name": "state", "in": "query", "required": False,
                            "schema": {"type": "string", "enum": list(jobs.JOB_STATES)}},
                           {"name": "machine", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {"200": ok(), "401": unauthorized, "422": errors("bad query parameters")}}},
        "/api/v1/staff/jobs/{job_id}": {"get": {
            "operationId": "staffShowJob", "summary": "One job: state, progress, estimates, files",
            "security": staff, "parameters": [job_id],
            "responses": {"200": ok(), "401": unauthorized, "404": errors("no such job")}}},
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
                                       "content_type": {"type": "string"}, "url": {"type": "string"}}}}}}}}},
                          "401": unauthorized, "404": errors("no such job")}}},
        "/api/v1/staff/jobs/{job_id}/files/{name}": {"get": {
            "operationId": "staffDownloadJobFile",
            "summary": "One file of a job (only files recorded for it, inside the output folder)", "security": staff,
            "parameters": [job_id, {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the file, as an attachment", "content": {
                mimetype: {"schema": {"type": "string", "format": "binary"}}
                for mimetype in sorted({*jobs.MIMETYPES.values(), "application/octet-stream"})}},
                "401": unauthorized, "404": errors("no such job or file")}}},
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
            "responses": {"200": ok("the job"), "401": unauthorized, "404": errors("no such job"),
                          "409": errors("not allowed in the job's state")}}}
    return paths
