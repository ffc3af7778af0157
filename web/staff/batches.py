"""Batches for staff: ``/api/v1/staff/batches`` (list, detail, close, re-nest, take a job out, send, make a failed
plate object again alone, make every object of a stopped plate again in one step, a sheet's picture, the batch
sheet as HTML and PDF) and the dashboard pages ``/staff/batches`` and ``/staff/batches/<id>`` with the sheet and
plate pictures.

Views are thin: the work is in :mod:`web.batches`; its :class:`~web.batches.BatchError` carries the status and the
plain-words message answered.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, abort, flash, g, redirect, render_template, request, send_file, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from parametric import FieldError

from .. import batches
from ..errors import errors_response, json_errors
from ..models import BATCH_STATES, Batch
from ..services import services
from .auth import staff_required
from .dashboard import login_required

log = logging.getLogger(__name__)

api_bp = Blueprint("batches_api", __name__, url_prefix="/api/v1/staff/batches")
bp = Blueprint("batches", __name__, url_prefix="/staff/batches")
MAX_ID = 2**31 - 1


def init_app(app: Flask) -> None:
    """Exempt the API from CSRF (HTTP basic auth, like the other staff endpoints) and document it."""
    from ..openapi import add_to_openapi
    from ..pages import csrf

    csrf.exempt(api_bp)
    add_to_openapi(app, openapi_paths())


def _output() -> Path:
    return Path(services().config["OUTPUT_FOLDER"])


def _picture_url(batch_id: int, index: int) -> str:
    return url_for("batches_api.sheet_picture", batch_id=batch_id, index=index)


def _sheet_url(batch_id: int, kind: str) -> str:
    return url_for("batches_api.batch_sheet", batch_id=batch_id, kind=kind)


def _detail(batch: Batch, **extra: Any) -> dict[str, Any]:
    """The batch as the API shows it in full, with its pictures' and batch sheet's addresses."""
    return {**batches.describe(services().database, batch, detail=True, picture_url=_picture_url,
                               sheet_url=_sheet_url, output_folder=_output()), **extra}


def _list(state: str | None) -> list[Batch]:
    query = select(Batch).options(selectinload(Batch.sheets)).order_by(Batch.id.desc())
    if state is not None:
        query = query.where(Batch.state == state)
    with services().database.session() as session:
        return list(session.scalars(query.limit(200)).all())


def act(batch_id: int, action: str, job_id: int | None = None, placement_id: int | None = None
        ) -> tuple[Batch, str]:
    """Do a staff action on a batch: (the batch afterwards, what happened). Raises :class:`batches.BatchError`."""
    database, config = services().database, services().config
    if batch_id > MAX_ID:
        raise batches.BatchError(f"there is no batch {batch_id}", 404, "batch_id")
    if action == "close":
        batch = batches.close(database, _output(), config, batch_id, f"closed by staff ({g.staff_user})")
        return batch, "closed"
    if action == "renest":
        return batches.renest(database, _output(), config, batch_id), "laid out again"
    if action == "send":
        return batches.send(database, batch_id)
    if action == "done":
        return batches.finish(database, batch_id), "done"
    if action == "remake" and placement_id is not None:
        if placement_id > MAX_ID:
            raise batches.BatchError(f"batch {batch_id} has no placement {placement_id}", 404, "placement_id")
        return batches.remake(database, _output(), config, batch_id, placement_id,
                              reason=f"reported failed by staff ({g.staff_user})")
    if action == "remove" and job_id is not None:
        return batches.remove_job(database, _output(), config, batch_id, job_id), f"job {job_id} taken out"
    raise batches.BatchError(f"unknown action {action!r}", 404, "action")


REASON_CHARS = 500


def remake_plates(batch_id: int, plate: Any, reason: Any) -> batches.Remade:
    """Make every object of the batch's stopped plate(s) again (``plate``: one plate's index, or None for each
    plate of a failed batch that did not print to the end). Raises :class:`batches.BatchError`, 422 naming the
    field for a bad ``plate`` or ``reason``."""
    if batch_id > MAX_ID:
        raise batches.BatchError(f"there is no batch {batch_id}", 404, "batch_id")
    if plate is not None and (isinstance(plate, bool) or not isinstance(plate, int) or not 1 <= plate <= MAX_ID):
        raise batches.BatchError("plate is the number of a plate of the batch (1, 2, ...), or left out for every "
                                 "plate that stopped", 422, "plate")
    if reason is not None and (not isinstance(reason, str) or len(reason.strip()) > REASON_CHARS):
        raise batches.BatchError(f"reason is what went wrong, in words (at most {REASON_CHARS} characters)", 422,
                                 "reason")
    said = reason.strip() if isinstance(reason, str) and reason.strip() else None
    why = f"{said} (reported by staff {g.staff_user})" if said else None
    return batches.remake_plates(services().database, _output(), services().config, batch_id, plate,
                                 reason=why)


def _failed(error: batches.BatchError) -> Any:
    return json_errors(error.status, str(error), error.field)


# -- the API ---------------------------------------------------------------------------------------------------


@api_bp.get("")
@staff_required
def list_batches() -> Any:
    """Batches, newest first; ``?state=`` filters."""
    state = request.args.get("state")
    if state is not None and state not in BATCH_STATES:
        return errors_response([FieldError("state", f"one of: {', '.join(BATCH_STATES)}")])
    database = services().database
    return {"batches": [batches.describe(database, batch) for batch in _list(state)]}


@api_bp.get("/<int:batch_id>")
@staff_required
def show_batch(batch_id: int) -> Any:
    database = services().database
    try:
        batch = batches.get(database, batch_id) if batch_id <= MAX_ID else None
    except batches.BatchError as error:
        return _failed(error)
    if batch is None:
        return json_errors(404, f"there is no batch {batch_id}", "batch_id")
    return _detail(batch)


@api_bp.post("/<int:batch_id>/close", defaults={"action": "close"})  # one documented route per action
@api_bp.post("/<int:batch_id>/renest", defaults={"action": "renest"})
@api_bp.post("/<int:batch_id>/send", defaults={"action": "send"})
@api_bp.post("/<int:batch_id>/done", defaults={"action": "done"})
@staff_required
def batch_action(batch_id: int, action: str) -> Any:
    """``close`` an open batch, ``renest`` an open or closed one, ``send`` a closed one, mark a sent one ``done``."""
    try:
        batch, outcome = act(batch_id, action)
    except batches.BatchError as error:
        return _failed(error)
    log.info("staff %s: %s batch %s (%s)", g.staff_user, action, batch_id, outcome)
    return _detail(batch, outcome=outcome)


@api_bp.delete("/<int:batch_id>/jobs/<int:job_id>")
@staff_required
def remove_job(batch_id: int, job_id: int) -> Any:
    """Take a job out of an open or closed batch; the batch is laid out again without it."""
    if job_id > MAX_ID:
        return json_errors(404, f"job {job_id} is not in batch {batch_id}", "job_id")
    try:
        batch, outcome = act(batch_id, "remove", job_id)
    except batches.BatchError as error:
        return _failed(error)
    log.info("staff %s: took job %s out of batch %s", g.staff_user, job_id, batch_id)
    return _detail(batch, outcome=outcome)


@api_bp.post("/<int:batch_id>/placements/<int:placement_id>/remake")
@staff_required
def remake_object(batch_id: int, placement_id: int) -> Any:
    """Make one object of a done or failed printer batch again, alone: answered with the batch now holding it."""
    try:
        batch, outcome = act(batch_id, "remake", placement_id=placement_id)
    except batches.BatchError as error:
        return _failed(error)
    log.info("staff %s: placement %s of batch %s made again (%s)", g.staff_user, placement_id, batch_id, outcome)
    return _detail(batch, outcome=outcome, remade_from=batch_id)


@api_bp.post("/<int:batch_id>/remake")
@staff_required
def remake_plate(batch_id: int) -> Any:
    """Make every object of a stopped plate again in one step: ``{"plate": index}`` (one plate of a done or failed
    printer batch) or, without it, each plate of a failed batch that did not print to the end; an optional
    ``"reason"``. Answered with the batch now holding the copies, what was made again and what was skipped."""
    body = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(body, dict):
        return json_errors(422, 'send nothing, or a JSON object such as {"plate": 1, "reason": "spaghetti"}', "")
    unknown = sorted(set(body) - {"plate", "reason"})
    if unknown:
        return json_errors(422, f"{unknown[0]} is not a field here; the fields are plate and reason", unknown[0])
    try:
        made = remake_plates(batch_id, body.get("plate"), body.get("reason"))
    except batches.BatchError as error:
        return _failed(error)
    log.info("staff %s: plate objects of batch %s made again (%s)", g.staff_user, batch_id, made.outcome)
    return _detail(made.batches[0], outcome=made.outcome, remade_from=batch_id, remade=made.remade,
                   skipped=made.skipped, batches=[batch.id for batch in made.batches])


@api_bp.get("/<int:batch_id>/batch-sheet.html", defaults={"kind": "html"})  # two paths, as documented
@api_bp.get("/<int:batch_id>/batch-sheet.pdf", defaults={"kind": "pdf"})
@staff_required
def batch_sheet(batch_id: int, kind: str) -> Any:
    """The batch sheet (HTML or PDF) of a closed, sent or finished batch."""
    return _batch_sheet(batch_id, kind, api=True)


def _batch_sheet(batch_id: int, kind: str, *, api: bool) -> Any:
    try:
        path = batches.batch_sheet(services().database, _output(), batch_id, kind) if batch_id <= MAX_ID else None
    except batches.BatchError:
        path = None
    if path is None:
        message = "no such batch, or it has no batch sheet yet (a batch's sheet is made when it closes)"
        if api:
            return json_errors(404, message)
        abort(404, description=message[0].upper() + message[1:] + ".")
    response = send_file(path, mimetype=batches.SHEET_FORMATS[kind], max_age=0,
                         download_name=f"{batches.batch_ref(batch_id)}-batch-sheet.{kind}")
    response.headers["X-Content-Type-Options"] = "nosniff"
    if kind == "html":  # the sheet is standalone (pictures inline): it needs no script and no other origin
        response.headers["Content-Security-Policy"] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return response


@api_bp.get("/<int:batch_id>/sheets/<int:index>/picture")
@staff_required
def sheet_picture(batch_id: int, index: int) -> Any:
    """The PNG picture of a batch's sheet (plate)."""
    return _picture(batch_id, index, api=True)


def _picture(batch_id: int, index: int, *, api: bool) -> Any:
    try:
        path = batches.picture(services().database, _output(), batch_id, index) if batch_id <= MAX_ID else None
    except batches.BatchError:
        path = None
    if path is None:
        if api:
            return json_errors(404, "no such batch or sheet picture")
        abort(404, description="This batch has no such sheet picture.")
    response = send_file(path, mimetype="image/png", max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# -- the dashboard pages ---------------------------------------------------------------------------------------


@bp.get("")
@login_required
def batch_list() -> Any:
    database = services().database
    state = request.args.get("state")
    shown = [batches.describe(database, batch) for batch in _list(state if state in BATCH_STATES else None)]
    return render_template("staff/batches.html", batches=shown, states=BATCH_STATES, state=state)


@bp.get("/<int:batch_id>")
@login_required
def batch_page(batch_id: int) -> Any:
    database = services().database
    try:
        batch = batches.get(database, batch_id) if batch_id <= MAX_ID else None
    except batches.BatchError:
        batch = None
    if batch is None:
        abort(404, description="There is no such batch.")
    shown = batches.describe(database, batch, detail=True,
                             picture_url=lambda b, i: url_for("batches.sheet_picture_page", batch_id=b, index=i),
                             sheet_url=lambda b, kind: url_for("batches.batch_sheet_page", batch_id=b, kind=kind),
                             output_folder=_output())
    return render_template("staff/batch.html", batch=shown)


@bp.get("/<int:batch_id>/sheets/<int:index>/picture")
@login_required
def sheet_picture_page(batch_id: int, index: int) -> Any:
    return _picture(batch_id, index, api=False)


@bp.get("/<int:batch_id>/batch-sheet.<any(html, pdf):kind>")
@login_required
def batch_sheet_page(batch_id: int, kind: str) -> Any:
    return _batch_sheet(batch_id, kind, api=False)


@bp.post("/<int:batch_id>/placements/<int:placement_id>/remake")
@login_required
def remake_form(batch_id: int, placement_id: int) -> Any:
    try:
        batch, outcome = act(batch_id, "remake", placement_id=placement_id)
    except batches.BatchError as error:
        flash(f"Batch {batch_id}: {error}.", "error")
        return redirect(url_for("batches.batch_page", batch_id=batch_id), code=303)
    log.info("staff %s: placement %s of batch %s made again (%s)", g.staff_user, placement_id, batch_id, outcome)
    flash(f"Made again alone: {outcome}.", "success")
    return redirect(url_for("batches.batch_page", batch_id=batch.id), code=303)


@bp.post("/<int:batch_id>/remake")
@login_required
def remake_plate_form(batch_id: int) -> Any:
    plate = request.form.get("plate", "")
    try:
        made = remake_plates(batch_id, int(plate) if plate.isdigit() else plate or None,
                             request.form.get("reason") or None)
    except batches.BatchError as error:
        flash(f"Batch {batch_id}: {error}.", "error")
        return redirect(url_for("batches.batch_page", batch_id=batch_id), code=303)
    log.info("staff %s: plate objects of batch %s made again (%s)", g.staff_user, batch_id, made.outcome)
    flash(f"Made again: {made.outcome}.", "success")
    return redirect(url_for("batches.batch_page", batch_id=made.batches[0].id), code=303)


@bp.post("/<int:batch_id>/<any(close, renest, send, done):action>")
@login_required
def batch_form_action(batch_id: int, action: str) -> Any:
    try:
        _, outcome = act(batch_id, action)
    except batches.BatchError as error:
        flash(f"Batch {batch_id}: {error}.", "error")
    else:
        log.info("staff %s: %s batch %s", g.staff_user, action, batch_id)
        flash(f"Batch {batch_id}: {outcome}.", "success")
    return redirect(url_for("batches.batch_page", batch_id=batch_id), code=303)


@bp.post("/<int:batch_id>/jobs/<int:job_id>/remove")
@login_required
def remove_job_form(batch_id: int, job_id: int) -> Any:
    try:
        _, outcome = act(batch_id, "remove", job_id)
    except batches.BatchError as error:
        flash(f"Batch {batch_id}: {error}.", "error")
    else:
        flash(f"Batch {batch_id}: {outcome}; it is made on its own.", "success")
    return redirect(url_for("batches.batch_page", batch_id=batch_id), code=303)


# -- the OpenAPI description -----------------------------------------------------------------------------------


def openapi_paths() -> dict[str, Any]:
    """The batch endpoints, for ``web.openapi.add_to_openapi``."""
    staff = [{"staff": []}]

    def errors(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/Errors"}}}}

    def ok(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}

    number = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    batch_id = {"name": "batch_id", "in": "path", "required": True, "schema": number}
    unauthorized = errors("staff login required")
    paths: dict[str, Any] = {
        "/api/v1/staff/batches": {"get": {
            "operationId": "staffListBatches", "summary": "Batches of jobs on shared sheets and plates, newest first",
            "security": staff,
            "parameters": [{"name": "state", "in": "query", "required": False,
                            "schema": {"type": "string", "enum": list(BATCH_STATES)}}],
            "responses": {"200": ok("machine, material, state, utilisation, sheets, jobs of each batch"),
                          "401": unauthorized, "422": errors("bad query parameters")}}},
        "/api/v1/staff/batches/{batch_id}": {"get": {
            "operationId": "staffShowBatch",
            "summary": "One batch: its sheets (plates) with pictures, utilisation and time, each copy's placement "
                       "(job, copy, x, y, rotation), its jobs with their orders",
            "security": staff, "parameters": [batch_id],
            "responses": {"200": ok("the batch"), "401": unauthorized, "404": errors("no such batch")}}},
        "/api/v1/staff/batches/{batch_id}/jobs/{job_id}": {"delete": {
            "operationId": "staffRemoveBatchJob",
            "summary": "Take a job out of an open or closed batch (it is made on its own; the batch is laid out "
                       "again)", "security": staff,
            "parameters": [batch_id, {"name": "job_id", "in": "path", "required": True, "schema": number}],
            "responses": {"200": ok("the batch"), "401": unauthorized,
                          "404": errors("no such batch, or the job is not in it"),
                          "409": errors("the batch is sent or finished")}}},
        "/api/v1/staff/batches/{batch_id}/placements/{placement_id}/remake": {"post": {
            "operationId": "staffRemakeBatchObject",
            "summary": "Make one object of a done or failed printer batch again, alone (a placement, as the batch "
                       "lists it with its G-code object label): it becomes a job of one copy on a new plate (with "
                       "other parts waiting for that printer and filament), sliced and sent; the batch's other "
                       "objects and jobs stay as they are", "security": staff,
            "parameters": [batch_id, {"name": "placement_id", "in": "path", "required": True, "schema": number}],
            "responses": {"200": ok("the batch now holding the copy, with ``outcome`` in plain words and "
                                    "``remade_from``"), "401": unauthorized,
                          "404": errors("no such batch, or the placement is not in it"),
                          "409": errors("the batch is not a done or failed printer batch, or the object is "
                                        "already being made again"),
                          "422": errors("the part has no outline to plate")}}},
        "/api/v1/staff/batches/{batch_id}/remake": {"post": {
            "operationId": "staffRemakeBatchPlate",
            "summary": "Make every object of a stopped plate again in one step: the plate given, of a done or failed "
                       "printer batch, or (without one) each plate of a failed batch that did not print to the end. "
                       "Each job's copies on it become one new job of as many copies, all on new plates, sliced "
                       "once and sent; objects already being made again are skipped and named; plates that printed "
                       "to the end, and their jobs, stay as they are", "security": staff,
            "parameters": [batch_id],
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False,
                "properties": {"plate": {**number, "description": "the plate's index (left out: every plate "
                                                                     "that stopped)"},
                               "reason": {"type": "string", "maxLength": REASON_CHARS,
                                          "description": "what went wrong (spaghetti, a power cut)"}}}}}},
            "responses": {"200": ok("the batch now holding the copies, with ``outcome`` in plain words, "
                                    "``remade_from``, ``remade`` (each object: object, plate, placement, job, copy, "
                                    "as_job), ``skipped`` (objects already being made again) and ``batches`` (the "
                                    "ids of the batches holding the copies)"), "401": unauthorized,
                          "404": errors("no such batch"),
                          "409": errors("the batch is not a done or failed printer batch, or every object of the "
                                        "plate is already being made again"),
                          "422": errors("a bad plate or reason, a plate the batch does not have, or no plate given "
                                        "for a batch that does not say which one stopped")}}},
        "/api/v1/staff/batches/{batch_id}/batch-sheet.html": {"get": {
            "operationId": "staffBatchSheetHtml",
            "summary": "The batch sheet of a closed, sent or finished batch as HTML: pictures with numbered parts, "
                       "per part its order, item, product and checks, totals, a QR code to the batch's page",
            "security": staff, "parameters": [batch_id],
            "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
                          "401": unauthorized, "404": errors("no such batch, or it has no batch sheet yet")}}},
        "/api/v1/staff/batches/{batch_id}/batch-sheet.pdf": {"get": {
            "operationId": "staffBatchSheetPdf",
            "summary": "The batch sheet of a closed, sent or finished batch as PDF",
            "security": staff, "parameters": [batch_id],
            "responses": {"200": {"description": "PDF", "content": {"application/pdf": {"schema": {
                "type": "string", "format": "binary"}}}}, "401": unauthorized,
                "404": errors("no such batch, or it has no batch sheet yet")}}},
        "/api/v1/staff/batches/{batch_id}/sheets/{index}/picture": {"get": {
            "operationId": "staffBatchSheetPicture", "summary": "The picture of a batch's sheet or plate",
            "security": staff,
            "parameters": [batch_id, {"name": "index", "in": "path", "required": True,
                                      "schema": {"type": "integer", "minimum": 1}}],
            "responses": {"200": {"description": "PNG", "content": {"image/png": {"schema": {
                "type": "string", "format": "binary"}}}}, "401": unauthorized,
                "404": errors("no such batch or sheet")}}},
    }
    for action, summary, conflict in (
            ("close", "Close an open batch (a printer's plates are sliced now)", "the batch is not open"),
            ("renest", "Lay an open or closed batch out again", "the batch is sent or finished"),
            ("send", "Send a closed batch's sheets or plates through the machine's connector; its jobs become sent",
             "the batch is not closed, or a sheet has no G-code"),
            ("done", "Mark a sent or running batch done (the work is off the machine); its jobs are done with it",
             "the batch is not sent or running")):
        paths[f"/api/v1/staff/batches/{{batch_id}}/{action}"] = {"post": {
            "operationId": f"staff{action.title()}Batch", "summary": summary, "security": staff,
            "parameters": [batch_id],
            "responses": {"200": ok("the batch, with ``outcome`` in plain words"), "401": unauthorized,
                          "404": errors("no such batch"), "409": errors(conflict),
                          **({"502": errors("the machine's host could not be reached")} if action == "send" else {})}}}
    return paths
